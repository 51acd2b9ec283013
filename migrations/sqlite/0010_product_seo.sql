-- Search-engine listing of a product: the title and description search results show
-- (the storefront falls back to the product title and description when they are null).
-- Same in migrations/sqlite and migrations/postgres; the products table's RLS policy
-- (0003) covers the new columns.
alter table products add column seo_title text;
alter table products add column seo_description text;

-- The dashboard's product list (newest first, any status) reads a page in index order
-- instead of sorting every product of the tenant on each request.
create index products_recent on products(tenant_id, created_at, id);
