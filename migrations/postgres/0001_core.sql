-- Souk core schema (PostgreSQL). Keep in step with migrations/sqlite/0001_core.sql.
-- Timestamps are integer microseconds since the Unix epoch; money is integer minor units.

create table plans (
    id text primary key,
    name text not null,
    price_minor bigint not null,
    currency text not null,
    max_products bigint not null,
    max_staff bigint not null,
    features text not null,
    position bigint not null
);

create table tenants (
    id uuid primary key,
    name text not null,
    handle text unique,
    status text not null,
    plan_id text references plans(id),
    theme_id text,
    theme_settings text not null default '{}',
    currency text not null default 'EUR',
    owner_name text,
    owner_email text not null,
    owner_phone text,
    business_address text,
    business_city text,
    business_postal_code text,
    business_country text,
    initial_password_hash text,
    limits text not null default '{}',
    storefront_ready boolean not null default false,
    created_at bigint not null,
    activated_at bigint,
    updated_at bigint not null
);
create index tenants_status on tenants(status, created_at);

create table domains (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    host text not null unique,
    kind text not null,
    verified boolean not null default false,
    created_at bigint not null
);
create index domains_tenant on domains(tenant_id);

create table users (
    id uuid primary key,
    email text not null unique,
    name text,
    password_hash text,
    must_change_password boolean not null default false,
    is_platform_admin boolean not null default false,
    created_at bigint not null
);

create table memberships (
    tenant_id uuid not null references tenants(id) on delete cascade,
    user_id uuid not null references users(id) on delete cascade,
    role text not null,
    created_at bigint not null,
    primary key (tenant_id, user_id)
);
create index memberships_user on memberships(user_id);

create table refresh_tokens (
    id uuid primary key,
    user_id uuid not null references users(id) on delete cascade,
    token_hash text not null unique,
    family_id uuid not null,
    expires_at bigint not null,
    revoked_at bigint,
    created_at bigint not null
);

create table password_tokens (
    id uuid primary key,
    user_id uuid not null references users(id) on delete cascade,
    tenant_id uuid references tenants(id) on delete cascade,
    token_hash text not null unique,
    purpose text not null,
    expires_at bigint not null,
    used_at bigint,
    created_at bigint not null
);

create table sales_channels (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    kind text not null,
    name text not null,
    created_at bigint not null,
    unique (tenant_id, kind)
);

create table products (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    handle text not null,
    title text not null,
    body_html text not null default '',
    vendor text,
    product_type text,
    tags text not null default '[]',
    status text not null,
    options text not null default '[]',
    featured boolean not null default false,
    created_at bigint not null,
    updated_at bigint not null,
    unique (tenant_id, handle)
);
create index products_list on products(tenant_id, status, created_at);

create table variants (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    product_id uuid not null references products(id) on delete cascade,
    sku text,
    title text not null,
    option_values text not null default '[]',
    price_minor bigint not null,
    compare_at_minor bigint,
    currency text not null,
    inventory bigint not null default 0,
    barcode text,
    weight_grams bigint,
    position bigint not null,
    unique (tenant_id, sku)
);
create index variants_product on variants(tenant_id, product_id, position);

create table product_images (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    product_id uuid not null references products(id) on delete cascade,
    url text not null,
    alt text,
    position bigint not null
);
create index images_product on product_images(tenant_id, product_id, position);

create table collections (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    handle text not null,
    title text not null,
    created_at bigint not null,
    unique (tenant_id, handle)
);

create table collection_products (
    tenant_id uuid not null references tenants(id) on delete cascade,
    collection_id uuid not null references collections(id) on delete cascade,
    product_id uuid not null references products(id) on delete cascade,
    primary key (collection_id, product_id)
);

create table provisioning_runs (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    status text not null,
    created_user_id uuid,
    error text,
    started_at bigint,
    finished_at bigint,
    duration_ms bigint,
    created_at bigint not null
);
create index provisioning_runs_tenant on provisioning_runs(tenant_id, created_at);

create table provisioning_steps (
    run_id uuid not null references provisioning_runs(id) on delete cascade,
    tenant_id uuid not null references tenants(id) on delete cascade,
    step text not null,
    position bigint not null,
    status text not null,
    attempts bigint not null default 0,
    started_at bigint,
    finished_at bigint,
    error text,
    primary key (run_id, step)
);

create table jobs (
    id uuid primary key,
    kind text not null,
    tenant_id uuid,
    payload text not null,
    status text not null,
    attempts bigint not null default 0,
    max_attempts bigint not null,
    run_at bigint not null,
    locked_until bigint,
    last_error text,
    dedupe_key text unique,
    created_at bigint not null,
    finished_at bigint
);
create index jobs_ready on jobs(status, run_at);
