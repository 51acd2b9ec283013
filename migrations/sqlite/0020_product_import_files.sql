-- The kept file of a background product import in a table of its own (SQLite). Keep in
-- step with migrations/postgres/0020_product_import_files.sql (which explains why).
create table product_import_files (
    import_id blob primary key references product_imports(id) on delete cascade,
    tenant_id blob not null references tenants(id) on delete cascade,
    body blob not null
);
create index product_import_files_tenant on product_import_files(tenant_id);
insert into product_import_files (import_id, tenant_id, body)
    select id, tenant_id, body from product_imports where length(body) > 0;
update product_imports set body = x'' where length(body) > 0;
