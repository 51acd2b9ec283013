-- Transactional outbox of domain events. Keep in step with migrations/postgres/0004_events.sql.
-- Rows are written in the same transaction as the change they describe; the dispatcher
-- publishes them in id (UUIDv7, time) order and stamps published_at.
create table events (
    id blob primary key,
    tenant_id blob,
    type text not null,
    payload text not null,
    occurred_at integer not null,
    published_at integer
);
create index events_unpublished on events(published_at, id);
create index events_tenant on events(tenant_id, id);
