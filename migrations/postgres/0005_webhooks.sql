-- Webhook endpoints, deliveries and delivery attempts. Keep in step with
-- migrations/sqlite/0005_webhooks.sql.
create table webhook_endpoints (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    url text not null,
    description text,
    -- JSON array of event types or patterns (`order.*`, `*`).
    event_types text not null,
    enabled boolean not null default true,
    -- Why Souk disabled it: `gone` (410), `failing` (5 days of failures); null when the merchant did.
    disabled_reason text,
    secret text not null,
    -- The secret before the last rotation; it keeps signing until previous_secret_expires_at.
    previous_secret text,
    previous_secret_expires_at bigint,
    -- Start of the current run of failed attempts (null after a success).
    failing_since bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create index webhook_endpoints_tenant on webhook_endpoints(tenant_id, created_at);

create table webhook_deliveries (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    endpoint_id uuid not null references webhook_endpoints(id) on delete cascade,
    event_id uuid not null,
    event_type text not null,
    -- The exact request body (signed anew at each attempt).
    payload text not null,
    -- pending | succeeded | failed
    status text not null,
    attempt_count bigint not null default 0,
    -- Index into the retry schedule of the next attempt (reset by a redelivery).
    retry_step bigint not null default 0,
    next_attempt_at bigint,
    locked_until bigint,
    last_status bigint,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null,
    unique (endpoint_id, event_id)
);
create index webhook_deliveries_due on webhook_deliveries(status, next_attempt_at);
create index webhook_deliveries_endpoint on webhook_deliveries(endpoint_id, created_at);

create table webhook_attempts (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    delivery_id uuid not null references webhook_deliveries(id) on delete cascade,
    attempt bigint not null,
    started_at bigint not null,
    duration_ms bigint not null,
    -- JSON object of the request headers Souk sent.
    request_headers text not null,
    response_status bigint,
    -- At most the first 1 KiB of the response body.
    response_body text,
    error text
);
create index webhook_attempts_delivery on webhook_attempts(delivery_id, attempt);

grant select, insert, update, delete on webhook_endpoints, webhook_deliveries, webhook_attempts to souk_app;
do $$
declare t text;
begin
    foreach t in array array['webhook_endpoints', 'webhook_deliveries', 'webhook_attempts'] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I using (souk_row_visible(tenant_id)) with check (souk_row_visible(tenant_id))',
            t
        );
    end loop;
end
$$;
