-- Background product imports (PostgreSQL). Keep in step with
-- migrations/sqlite/0012_product_imports.sql.
--
-- One row per import started with `?background=true` (the dashboard always does). A
-- `product_import` job applies the file in chunks; each chunk's products and the row's
-- progress are written in one transaction, so a worker that dies mid-import is resumed
-- from the last committed chunk by the next one, and nothing is written twice.
create table product_imports (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    -- queued | running | completed | failed
    status text not null,
    file_name text,
    -- The uploaded CSV; emptied when the import ends.
    body bytea not null,
    products_total bigint not null,
    products_done bigint not null default 0,
    created bigint not null default 0,
    updated bigint not null default 0,
    -- JSON [{row, reason}] of the products the database refused so far.
    failures text not null default '[]',
    -- JSON ProductImportReport, once completed.
    report text,
    error text,
    actor_kind text not null,
    actor_id uuid,
    actor_label text not null,
    actor_ip text,
    created_at bigint not null,
    started_at bigint,
    finished_at bigint
);
create index product_imports_tenant on product_imports(tenant_id, created_at);

-- The preview keeps the uploaded file's name for the import history.
alter table pending_imports add column file_name text;

grant select, insert, update, delete on product_imports to souk_app;
alter table product_imports enable row level security;
alter table product_imports force row level security;
create policy tenant_isolation on product_imports
    using ((select coalesce(current_setting('souk.scope', true), '') = 'platform')
           or tenant_id = (select nullif(current_setting('souk.tenant_id', true), '')::uuid))
    with check ((select coalesce(current_setting('souk.scope', true), '') = 'platform')
           or tenant_id = (select nullif(current_setting('souk.tenant_id', true), '')::uuid));
