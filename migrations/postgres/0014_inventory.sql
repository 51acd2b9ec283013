-- Stock semantics per variant (issue 13 item 3). `inventory_policy`: `deny` (stop selling
-- at zero) or `continue` (keep selling at or below zero, Shopify's "continue selling when
-- out of stock"); `inventory_tracked`: false when the quantity is not counted (Shopify's
-- empty `Variant Inventory Tracker`, WooCommerce's `In stock? = 1` with no `Stock`).
-- A variant is available when it is untracked, or its policy is `continue`, or its
-- inventory is above zero. Same in migrations/sqlite and migrations/postgres; the
-- variants table's RLS policy (0003, 0011) covers the new columns.
alter table variants add column inventory_policy text not null default 'deny'
    check (inventory_policy in ('deny', 'continue'));
alter table variants add column inventory_tracked boolean not null default true;

-- Re-imports keep variant and image ids and write only what changed (issue 13 item 6);
-- a background import counts the products it found identical.
alter table product_imports add column unchanged bigint not null default 0;
