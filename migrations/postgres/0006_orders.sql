-- Orders, their line items and payments, and support tickets (PostgreSQL).
-- Keep in step with migrations/sqlite/0006_orders.sql. Money is integer minor units in
-- the order's currency; timestamps are integer microseconds since the Unix epoch.
-- (0005 is the webhooks migration.)

-- Per-tenant counters for human-facing sequential numbers (order #1001, ticket #1). Bumped
-- with one `insert … on conflict do update … returning` inside the writing transaction, so
-- two concurrent writers never receive the same number.
create table tenant_counters (
    tenant_id uuid not null references tenants(id) on delete cascade,
    name text not null,
    value bigint not null,
    primary key (tenant_id, name)
);

create table orders (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    number bigint not null,
    email text,
    customer_name text,
    currency text not null,
    status text not null,
    financial_status text not null,
    fulfillment_status text not null,
    subtotal_minor bigint not null,
    total_minor bigint not null,
    paid_minor bigint not null default 0,
    note text,
    created_at bigint not null,
    updated_at bigint not null,
    unique (tenant_id, number)
);
create index orders_list on orders(tenant_id, status, financial_status, number);

-- variant_id/product_id are kept as references without foreign keys: a line item is a
-- snapshot (sku, title, price) that outlives edits and deletion of the catalog entry.
create table order_line_items (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    order_id uuid not null references orders(id) on delete cascade,
    variant_id uuid,
    product_id uuid,
    sku text,
    title text not null,
    quantity bigint not null,
    unit_price_minor bigint not null,
    total_minor bigint not null,
    position bigint not null
);
create index order_line_items_order on order_line_items(tenant_id, order_id, position);

create table payments (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    order_id uuid not null references orders(id) on delete cascade,
    amount_minor bigint not null,
    currency text not null,
    gateway text not null,
    reference text,
    created_at bigint not null
);
create index payments_order on payments(tenant_id, order_id, created_at);

create table support_tickets (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    number bigint not null,
    subject text not null,
    body text not null,
    email text not null,
    order_id uuid references orders(id) on delete set null,
    status text not null,
    priority text not null,
    created_at bigint not null,
    updated_at bigint not null,
    unique (tenant_id, number)
);
create index support_tickets_list on support_tickets(tenant_id, status, priority, number);

grant select, insert, update, delete on tenant_counters, orders, order_line_items, payments, support_tickets to souk_app;

do $$
declare t text;
begin
    foreach t in array array['tenant_counters', 'orders', 'order_line_items', 'payments', 'support_tickets'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I using (souk_row_visible(tenant_id)) with check (souk_row_visible(tenant_id))',
            t
        );
    end loop;
end
$$;
