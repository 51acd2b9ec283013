-- Access control: roles with permissions, invitations, API keys, the audit log.
-- Keep in step with migrations/sqlite/0002_access.sql.

create table roles (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    key text not null,
    name text not null,
    -- JSON array of permission strings (`resource.action`).
    permissions text not null,
    is_system boolean not null default false,
    created_at bigint not null,
    unique (tenant_id, key)
);

-- Default roles for tenants provisioned before this migration.
insert into roles (id, tenant_id, key, name, permissions, is_system, created_at)
select gen_random_uuid(), id, 'owner', 'Owner',
  '["team.manage","team.invite","team.remove","products.create","products.edit","products.delete","products.view","orders.create","orders.edit","orders.view","imports.trigger","imports.view","imports.configure","settings.edit","analytics.view"]',
  true, created_at from tenants;
insert into roles (id, tenant_id, key, name, permissions, is_system, created_at)
select gen_random_uuid(), id, 'manager', 'Manager',
  '["team.invite","team.view","products.create","products.edit","products.view","orders.create","orders.edit","orders.view","imports.trigger","imports.view","analytics.view"]',
  true, created_at from tenants;
insert into roles (id, tenant_id, key, name, permissions, is_system, created_at)
select gen_random_uuid(), id, 'editor', 'Editor',
  '["products.create","products.edit","products.view","orders.view","orders.edit","imports.view"]',
  true, created_at from tenants;
insert into roles (id, tenant_id, key, name, permissions, is_system, created_at)
select gen_random_uuid(), id, 'viewer', 'Viewer',
  '["products.view","orders.view","imports.view"]',
  true, created_at from tenants;

-- Platform staff: 'super_admin' (everything) or 'support' (read-only); null for merchants.
alter table users add column platform_role text;
update users set platform_role = 'super_admin' where is_platform_admin = true;

create table invitations (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    email text not null,
    role text not null,
    token_hash text not null unique,
    invited_by uuid references users(id) on delete set null,
    expires_at bigint not null,
    accepted_at bigint,
    revoked_at bigint,
    created_at bigint not null
);
create index invitations_tenant on invitations(tenant_id, created_at);

create table api_keys (
    id uuid primary key,
    tenant_id uuid not null references tenants(id) on delete cascade,
    name text not null,
    -- 'publishable' or 'secret'
    kind text not null,
    -- role key whose permissions a secret key carries
    role text,
    -- first characters of the key, shown in lists (`sk_live_AbCd`)
    prefix text not null,
    token_hash text not null unique,
    created_by uuid references users(id) on delete set null,
    last_used_at bigint,
    revoked_at bigint,
    created_at bigint not null
);
create index api_keys_tenant on api_keys(tenant_id, created_at);

-- Append-only. No tenant foreign key: entries outlive what they describe.
create table audit_log (
    id uuid primary key,
    tenant_id uuid,
    actor_type text not null,
    actor_id uuid,
    actor_label text not null,
    action text not null,
    resource_type text not null,
    resource_id text,
    ip text,
    before text,
    after text,
    created_at bigint not null
);
create index audit_tenant on audit_log(tenant_id, created_at);
create index audit_time on audit_log(created_at);
