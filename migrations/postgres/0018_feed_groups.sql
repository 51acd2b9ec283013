-- The item_group_id of a staged item as a column, so a group's variants are found by index
-- (PostgreSQL). Keep in step with migrations/sqlite/0018_feed_groups.sql.
alter table feed_items add column item_group text;
create index feed_items_group on feed_items(tenant_id, source_id, language, item_group);
