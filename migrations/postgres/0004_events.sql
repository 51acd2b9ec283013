-- Transactional outbox of domain events. Keep in step with migrations/sqlite/0004_events.sql.
create table events (
    id uuid primary key,
    tenant_id uuid,
    type text not null,
    payload text not null,
    occurred_at bigint not null,
    published_at bigint
);
create index events_unpublished on events(published_at, id);
create index events_tenant on events(tenant_id, id);

grant select, insert, update, delete on events to souk_app;
alter table events enable row level security;
alter table events force row level security;
create policy tenant_isolation on events using (souk_row_visible(tenant_id)) with check (souk_row_visible(tenant_id));
