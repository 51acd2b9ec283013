-- Background product imports (SQLite). Keep in step with
-- migrations/postgres/0012_product_imports.sql (which explains the columns).
create table product_imports (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    status text not null,
    file_name text,
    body blob not null,
    products_total bigint not null,
    products_done bigint not null default 0,
    created bigint not null default 0,
    updated bigint not null default 0,
    failures text not null default '[]',
    report text,
    error text,
    actor_kind text not null,
    actor_id blob,
    actor_label text not null,
    actor_ip text,
    created_at bigint not null,
    started_at bigint,
    finished_at bigint
);
create index product_imports_tenant on product_imports(tenant_id, created_at);

alter table pending_imports add column file_name text;
