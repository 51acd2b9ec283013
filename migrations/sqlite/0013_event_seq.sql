-- Commit-ordered event sequence. Keep in step with migrations/postgres/0013_event_seq.sql.
-- The dispatcher stamps seq (max + 1, …) together with published_at, inside its one
-- transaction (SQLite: the single writer), so seq order is commit order and has no gaps;
-- streams replay and resume by seq. Events already published get their seq in id order.
alter table events add column seq integer;
update events set seq = r.n
  from (select id, row_number() over (order by id) as n from events where published_at is not null) as r
  where events.id = r.id;
create unique index events_seq on events(seq);
create index events_tenant_seq on events(tenant_id, seq);
