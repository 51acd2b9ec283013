-- Product attributes (issue 13 item 5): Shopify metafield columns such as
-- `Farbe (product.metafields.shopify.color-pattern)` are kept per product as a JSON list of
-- {"key": "shopify.color-pattern", "name": "Farbe", "value": "Blau"} (namespace.key, the
-- header's label, the cell), shown on the product page as a specification list and in the
-- APIs. JSON is text, as everywhere; the products table's RLS policy (0003, 0011) covers it.
-- Same in migrations/sqlite and migrations/postgres.
alter table products add column attributes text not null default '[]';
