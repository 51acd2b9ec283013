-- Admin panel (PostgreSQL). Keep in step with migrations/sqlite/0008_admin_ui.sql.
-- Platform-level tables (no tenant_id): written only by the admin API through the platform
-- pool; row-level security hides them from tenant sessions entirely.

create table vendor_imports (
    id uuid primary key,
    created_by uuid,
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

create table platform_themes (
    id text primary key,
    enabled boolean not null default true,
    archive bytea,
    created_at bigint not null,
    updated_at bigint not null
);

grant select, insert, update, delete on vendor_imports, platform_themes to souk_app;

do $$
declare t text;
begin
    foreach t in array array['vendor_imports', 'platform_themes'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy platform_only on %I using (coalesce(current_setting(''souk.scope'', true), '''') = ''platform'') with check (coalesce(current_setting(''souk.scope'', true), '''') = ''platform'')',
            t
        );
    end loop;
end
$$;
