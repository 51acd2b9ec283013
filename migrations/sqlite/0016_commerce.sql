-- Commerce: checkout settings, shipping zones and rates, tax rates, discount codes,
-- customers (accounts, addresses, sessions, one-time tokens), carts and their lines,
-- idempotency keys, Stripe events received, fulfillments and refunds; new columns on
-- orders and line items. Keep in step with migrations/postgres/0016_commerce.sql.
-- Money is integer minor units in the store currency; rates are basis points
-- (1 % = 100); timestamps are integer microseconds since the Unix epoch.

-- One row per store, created on first save; absent = defaults (tax-inclusive prices,
-- no payment method but the ones the setup guide configured).
create table checkout_settings (
    tenant_id blob primary key references tenants(id) on delete cascade,
    prices_include_tax boolean not null default true,
    bank_transfer boolean not null default false,
    bank_instructions text not null default '',
    cash_on_delivery boolean not null default false,
    card boolean not null default false,
    -- Stripe's webhook signing secret (whsec_…), sealed with SecretBox.
    stripe_webhook_secret text,
    pickup boolean not null default false,
    pickup_address text not null default '',
    -- Where new-order notifications go (empty: the store's members with orders.view).
    notify_email text,
    updated_at bigint not null
);

create table shipping_zones (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    name text not null,
    -- JSON array of ISO 3166-1 alpha-2 codes, upper case.
    countries text not null,
    created_at bigint not null
);
create index shipping_zones_tenant on shipping_zones(tenant_id, created_at);

create table shipping_rates (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    zone_id blob not null references shipping_zones(id) on delete cascade,
    name text not null,
    price_minor bigint not null,
    -- Free when the discounted subtotal reaches this amount.
    free_over_minor bigint,
    created_at bigint not null
);
create index shipping_rates_zone on shipping_rates(tenant_id, zone_id);

create table tax_rates (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    country text not null,
    name text not null,
    rate_bp bigint not null,
    created_at bigint not null,
    unique (tenant_id, country)
);

create table discount_codes (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    -- Upper case; codes are matched case-insensitively.
    code text not null,
    -- percentage (value in basis points) | fixed (value in minor units)
    kind text not null,
    value bigint not null,
    min_subtotal_minor bigint not null default 0,
    starts_at bigint,
    ends_at bigint,
    usage_limit bigint,
    per_customer_limit bigint,
    used_count bigint not null default 0,
    active boolean not null default true,
    created_at bigint not null,
    updated_at bigint not null,
    unique (tenant_id, code)
);

create table customers (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    -- Lower case; one customer per e-mail per store.
    email text not null,
    first_name text,
    last_name text,
    phone text,
    -- argon2id PHC string; null for guests who never registered.
    password_hash text,
    accepts_marketing boolean not null default false,
    created_at bigint not null,
    updated_at bigint not null,
    unique (tenant_id, email)
);
create index customers_list on customers(tenant_id, created_at);

create table customer_addresses (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    customer_id blob not null references customers(id) on delete cascade,
    -- JSON Address {name, line1, line2, city, postal_code, country, phone}.
    address text not null,
    is_default boolean not null default false,
    created_at bigint not null
);
create index customer_addresses_customer on customer_addresses(tenant_id, customer_id);

-- Customer sessions and one-time tokens (login links, password resets): SHA-256 of the
-- random token, never the token itself. Kept apart from staff refresh tokens.
create table customer_tokens (
    token_hash text primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    customer_id blob not null references customers(id) on delete cascade,
    -- session | login_link | password_reset
    purpose text not null,
    expires_at bigint not null,
    used_at bigint,
    created_at bigint not null
);
create index customer_tokens_customer on customer_tokens(tenant_id, customer_id);

create table carts (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    -- The sales channel (the store's online_store channel) and where the cart was made:
    -- 'storefront', or 'store_api' (with the publishable key's prefix).
    channel_id blob,
    source text not null,
    customer_id blob references customers(id) on delete set null,
    email text,
    currency text not null,
    -- JSON Address, once given.
    shipping_address text,
    -- shipping_rates.id, or the string 'pickup' when picked up at the store.
    shipping_option text,
    -- bank_transfer | cash_on_delivery | card
    payment_method text,
    -- Stripe PaymentIntent of a card payment.
    payment_intent_id text,
    discount_code text,
    -- open | completed
    status text not null,
    order_id blob,
    created_at bigint not null,
    updated_at bigint not null
);
create index carts_tenant on carts(tenant_id, updated_at);

create table cart_lines (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    cart_id blob not null references carts(id) on delete cascade,
    variant_id blob not null,
    quantity bigint not null,
    -- The unit price when the line was added or last confirmed: a later catalog change
    -- is shown to the shopper before paying.
    unit_price_minor bigint not null,
    position bigint not null,
    created_at bigint not null,
    unique (cart_id, variant_id)
);
create index cart_lines_cart on cart_lines(tenant_id, cart_id, position);

-- Idempotency-Key of order placement: the same key with the same request returns the
-- same order; with another request it is refused.
create table idempotency_keys (
    tenant_id blob not null references tenants(id) on delete cascade,
    key text not null,
    request_hash text not null,
    order_id blob,
    created_at bigint not null,
    primary key (tenant_id, key)
);

-- Stripe events already processed (by event id): a replayed event is a no-op.
create table stripe_events (
    tenant_id blob not null references tenants(id) on delete cascade,
    event_id text not null,
    kind text not null,
    created_at bigint not null,
    primary key (tenant_id, event_id)
);

create table fulfillments (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    order_id blob not null references orders(id) on delete cascade,
    carrier text,
    tracking_number text,
    -- JSON [{line_item_id, quantity}].
    lines text not null,
    created_at bigint not null
);
create index fulfillments_order on fulfillments(tenant_id, order_id, created_at);

create table refunds (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    order_id blob not null references orders(id) on delete cascade,
    amount_minor bigint not null,
    currency text not null,
    reason text,
    gateway text not null,
    reference text,
    created_at bigint not null
);
create index refunds_order on refunds(tenant_id, order_id, created_at);

alter table orders add column customer_id blob;
alter table orders add column channel_id blob;
alter table orders add column source text;
alter table orders add column cart_id blob;
alter table orders add column discount_minor bigint not null default 0;
alter table orders add column shipping_minor bigint not null default 0;
alter table orders add column tax_minor bigint not null default 0;
alter table orders add column refunded_minor bigint not null default 0;
alter table orders add column prices_include_tax boolean not null default true;
alter table orders add column shipping_address text;
alter table orders add column shipping_method text;
alter table orders add column payment_method text;
alter table orders add column payment_intent_id text;
alter table orders add column discount_code text;
create unique index orders_cart on orders(tenant_id, cart_id);
create index orders_customer on orders(tenant_id, customer_id, number);
create index orders_payment_intent on orders(tenant_id, payment_intent_id);

alter table order_line_items add column variant_title text;
alter table order_line_items add column discount_minor bigint not null default 0;
alter table order_line_items add column tax_minor bigint not null default 0;
alter table order_line_items add column fulfilled_quantity bigint not null default 0;

-- A gateway reference is recorded once per order (a Stripe PaymentIntent paid by both
-- the checkout and the webhook counts once).
create unique index payments_reference on payments(tenant_id, gateway, reference) where gateway = 'stripe';
