-- A re-import looks its batch's items up by (tenant, source, language, feed id) and reads
-- their hash and product; the run's end finds the items it did not see by import id. The
-- three-column index made the planner scan every item of the source for each batch
-- (quadratic in the feed's size), and the columns it read sit after the large `raw` and
-- `item` texts (on SQLite, in overflow pages). This index covers both lookups.
drop index feed_items_tenant;
create index feed_items_tenant on feed_items(tenant_id, source_id, language, feed_id, hash, product_id, import_id, disappeared_at, id);
