-- Merchant onboarding wizard, uploaded store assets (logos) and pending product imports
-- (PostgreSQL). Keep in step with migrations/sqlite/0009_onboarding.sql.

-- One row per tenant that opened the setup guide. `steps` is a JSON object
-- {step: "done" | "skipped"}; `data` holds the saved values of each step (never secrets);
-- `payment_secret` is the card provider's secret key sealed with the platform SecretBox.
-- While a row exists with `published_at` null, the storefront shows "coming soon".
create table onboarding (
    tenant_id uuid primary key references tenants(id) on delete cascade,
    steps text not null default '{}',
    data text not null default '{}',
    payment_secret text,
    published_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);

-- Images uploaded by the merchant (the logo), served by the storefront at /store-assets/{id}.
create table store_assets (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    kind text not null,
    content_type text not null,
    body bytea not null,
    created_at bigint not null
);
create index store_assets_tenant on store_assets(tenant_id, kind);

-- An uploaded CSV kept between the dry-run preview and the confirmation (expires after an hour).
create table pending_imports (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    kind text not null,
    body bytea not null,
    created_at bigint not null,
    expires_at bigint not null
);
create index pending_imports_tenant on pending_imports(tenant_id, expires_at);

grant select, insert, update, delete on onboarding, store_assets, pending_imports to souk_app;

do $$
declare t text;
begin
    foreach t in array array['onboarding', 'store_assets', 'pending_imports'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I using (souk_row_visible(tenant_id)) with check (souk_row_visible(tenant_id))',
            t
        );
    end loop;
end
$$;
