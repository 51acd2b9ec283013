-- Custom domains that verify themselves (issue 16). Keep in step with
-- migrations/sqlite/0019_custom_domains.sql (column meanings are described there).
--
-- Any store may record a pending claim on a host; only one row per host may hold it
-- verified or active (the partial unique index). `domains` keeps its tenant_isolation
-- policy from 0003/0011.
alter table domains drop constraint domains_host_key;
alter table domains add column unicode_host text;
alter table domains add column status text not null default 'pending';
alter table domains add column verify_token text;
alter table domains add column updated_at bigint not null default 0;
alter table domains add column last_checked_at bigint;
alter table domains add column check_result text;
alter table domains add column checks bigint not null default 0;
alter table domains add column next_check_at bigint;
alter table domains add column verified_at bigint;
alter table domains add column failing_since bigint;
alter table domains add column cert_pem text;
alter table domains add column cert_key_sealed text;
alter table domains add column cert_not_after bigint;
alter table domains add column cert_issued_at bigint;
alter table domains add column cert_error text;
alter table domains add column cert_attempts bigint not null default 0;
alter table domains add column acme_token text;
alter table domains add column acme_key_auth text;
update domains set status = 'active', updated_at = created_at where kind = 'subdomain';
update domains set verify_token = md5(random()::text || id::text), updated_at = created_at,
    next_check_at = created_at where kind = 'custom';
create unique index domains_tenant_host on domains(tenant_id, host);
create unique index domains_host_claimed on domains(host) where status in ('verified', 'active');
create index domains_due on domains(next_check_at) where next_check_at is not null;
create index domains_acme_token on domains(acme_token) where acme_token is not null;

-- The platform's ACME account per directory URL (platform-level, no tenant).
create table acme_accounts (
    directory_url text primary key,
    credentials_sealed text not null,
    created_at bigint not null
);
grant select, insert, update, delete on acme_accounts to souk_app;
alter table acme_accounts enable row level security;
alter table acme_accounts force row level security;
create policy platform_only on acme_accounts
    using ((select coalesce(current_setting('souk.scope', true), '') = 'platform'))
    with check ((select coalesce(current_setting('souk.scope', true), '') = 'platform'));
