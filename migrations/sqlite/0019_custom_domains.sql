-- Custom domains that verify themselves (issue 16). Keep in step with
-- migrations/postgres/0019_custom_domains.sql.
--
-- A custom domain goes pending -> verified -> active (see ARCHITECTURE.md, "Domain
-- lifecycle"). Any store may record a pending claim on a host; only one row per host may
-- hold it verified or active (the partial unique index), so the first store whose TXT
-- record checks out owns the host and other claims are refused with 409.
-- SQLite cannot drop the old inline `unique (host)`, so the table is rebuilt.
create table domains_new (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    -- A-label (punycode) form, lowercase, no trailing dot.
    host text not null,
    -- The name as the merchant typed it when it was an IDN (U-label form), else null.
    unicode_host text,
    -- subdomain (platform) | custom
    kind text not null,
    verified boolean not null default false,
    -- pending | verified | active | inactive
    status text not null default 'pending',
    -- Expected TXT value at _souk-challenge.<host>: souk-verification=<token>.
    verify_token text,
    created_at bigint not null,
    updated_at bigint not null default 0,
    -- Last DNS check: when, and JSON of what was found (records, problems).
    last_checked_at bigint,
    check_result text,
    checks bigint not null default 0,
    -- Next time the domain worker looks at this row (check, re-check or certificate);
    -- null: nothing scheduled. Also the lease of a worker holding the row.
    next_check_at bigint,
    verified_at bigint,
    -- Set when a re-check of a verified/active domain failed; cleared when it passes.
    failing_since bigint,
    -- Certificate (Souk's own TLS): PEM chain, private key sealed with SecretBox.
    cert_pem text,
    cert_key_sealed text,
    cert_not_after bigint,
    cert_issued_at bigint,
    -- Last ACME failure (the CA's message) and the attempt count of the current run.
    cert_error text,
    cert_attempts bigint not null default 0,
    -- HTTP-01 challenge being answered for this host: token and key authorization.
    acme_token text,
    acme_key_auth text
);
insert into domains_new (id, tenant_id, host, kind, verified, status, verify_token, created_at, updated_at, next_check_at)
    select id, tenant_id, host, kind, verified,
           case when kind = 'subdomain' then 'active' else 'pending' end,
           case when kind = 'custom' then lower(hex(randomblob(16))) end,
           created_at, created_at,
           case when kind = 'custom' then created_at end
    from domains;
drop table domains;
alter table domains_new rename to domains;
create index domains_tenant on domains(tenant_id);
create unique index domains_tenant_host on domains(tenant_id, host);
create unique index domains_host_claimed on domains(host) where status in ('verified', 'active');
create index domains_due on domains(next_check_at) where next_check_at is not null;
create index domains_acme_token on domains(acme_token) where acme_token is not null;

-- The platform's ACME account per directory URL (platform-level, no tenant): the
-- account credentials JSON sealed with SecretBox.
create table acme_accounts (
    directory_url text primary key,
    credentials_sealed text not null,
    created_at bigint not null
);
