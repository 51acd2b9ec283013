-- The kept file of a background product import in a table of its own (PostgreSQL). Keep in
-- step with migrations/sqlite/0020_product_import_files.sql.
--
-- In `product_imports.body` every chunk's progress update rewrote the whole row, file
-- included (on SQLite a 50 MB file meant reading and writing 50 MB per chunk of 200
-- products). `product_imports.body` stays, always empty.
create table product_import_files (
    import_id uuid primary key references product_imports(id) on delete cascade,
    tenant_id uuid not null references tenants(id) on delete cascade,
    -- The uploaded CSV; the row is deleted when the import ends.
    body bytea not null
);
create index product_import_files_tenant on product_import_files(tenant_id);
insert into product_import_files (import_id, tenant_id, body)
    select id, tenant_id, body from product_imports where length(body) > 0;
update product_imports set body = ''::bytea where length(body) > 0;

grant select, insert, update, delete on product_import_files to souk_app;
alter table product_import_files enable row level security;
alter table product_import_files force row level security;
create policy tenant_isolation on product_import_files
    using ((select coalesce(current_setting('souk.scope', true), '') = 'platform')
           or tenant_id = (select nullif(current_setting('souk.tenant_id', true), '')::uuid))
    with check ((select coalesce(current_setting('souk.scope', true), '') = 'platform')
           or tenant_id = (select nullif(current_setting('souk.tenant_id', true), '')::uuid));
