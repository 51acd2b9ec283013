-- Row-level security: the database's own wall between tenants (the first wall is the
-- `TenantDb` type in the application).
--
-- The application's pools run as role `souk_app` (`set role souk_app` on connect), which owns
-- no table, so the policies below apply to it (and FORCE applies them to the owner too).
-- Two paths:
--   * tenant path: every transaction runs `select set_config('souk.tenant_id', <id>, true)`
--     (SET LOCAL semantics) and sees only that tenant's rows; with no tenant set it sees none;
--   * platform path: a separate pool whose sessions carry `souk.scope = 'platform'`, used by
--     the explicitly named cross-tenant code (host resolution, admin lists, provisioning, jobs).

do $$
begin
    create role souk_app nologin;
exception when others then
    -- Already there (roles are cluster-wide; parallel test databases race to create it).
    null;
end
$$;

grant usage on schema public to souk_app;
grant select, insert, update, delete on all tables in schema public to souk_app;
-- The audit log is append-only for the application.
revoke update, delete on audit_log from souk_app;
alter default privileges in schema public grant select, insert, update, delete on tables to souk_app;

create function souk_row_visible(row_tenant uuid) returns boolean
language sql stable as $$
    select coalesce(current_setting('souk.scope', true), '') = 'platform'
        or row_tenant = nullif(current_setting('souk.tenant_id', true), '')::uuid
$$;

do $$
declare t text;
begin
    foreach t in array array[
        'domains', 'memberships', 'sales_channels', 'products', 'variants', 'product_images',
        'collections', 'collection_products', 'provisioning_runs', 'provisioning_steps',
        'roles', 'invitations', 'api_keys', 'audit_log'
    ] loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format(
            'create policy tenant_isolation on %I using (souk_row_visible(tenant_id)) with check (souk_row_visible(tenant_id))',
            t
        );
    end loop;
end
$$;
