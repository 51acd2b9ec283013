-- Admin panel (SQLite). Keep in step with migrations/postgres/0008_admin_ui.sql.
-- Platform-level tables (no tenant_id): written only by the admin API.

-- Bulk vendor imports: the stored report, so it can be shown again and its failed rows
-- downloaded. `header` is the input's header row (JSON array of strings); `created` is a
-- JSON array of {row, id, name, subdomain}; `failed` a JSON array of
-- {row, column, reason, values: [original cells]}.
create table vendor_imports (
    id blob primary key,
    created_by blob,
    created_by_label text not null,
    file_name text,
    theme_id text not null,
    plan_id text not null,
    header text not null,
    total_rows bigint not null,
    created_count bigint not null,
    failed_count bigint not null,
    created text not null,
    failed text not null,
    created_at bigint not null
);
create index vendor_imports_created on vendor_imports(created_at);

-- Themes: uploaded themes (archive = the zip as uploaded) and the enabled flag of every
-- theme (built-in themes have a row only once toggled; archive null).
create table platform_themes (
    id text primary key,
    enabled boolean not null default true,
    archive blob,
    created_at bigint not null,
    updated_at bigint not null
);
