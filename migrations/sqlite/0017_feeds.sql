-- Marketplace feeds (SQLite). Keep in step with migrations/postgres/0017_feeds.sql.
-- A store's marketplace feed: Letzshop (atalanda's Google Shopping variant), Google
-- Merchant Center or another feed in the same format. `schedule`: manual | hourly | daily.
-- `draft_on_disappear`: an item that leaves the feed makes its published product draft.
create table feed_sources (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    marketplace text not null,
    name text not null,
    schedule text not null,
    enabled boolean not null,
    default_language text not null,
    draft_on_disappear boolean not null,
    -- ok | failed | not_modified | never
    last_status text not null default 'never',
    last_error text,
    last_run_at bigint,
    next_run_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);
create index feed_sources_tenant on feed_sources(tenant_id, created_at);

-- One file per language of a source: a URL fetched with conditional GET (etag,
-- last_modified from the previous answer), or null when the merchant uploads the file.
create table feed_files (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    source_id blob not null references feed_sources(id) on delete cascade,
    language text not null,
    url text,
    etag text,
    last_modified text,
    last_status text not null default 'never',
    last_error text,
    last_fetched_at bigint,
    unique (source_id, language)
);
create index feed_files_tenant on feed_files(tenant_id, source_id);

-- One staging run of one file: counts and a JSON report (file warnings, items refused).
-- status: running | completed | failed | not_modified
create table feed_imports (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    source_id blob not null references feed_sources(id) on delete cascade,
    language text not null,
    trigger text not null,
    status text not null,
    format text,
    items_total bigint not null default 0,
    items_new bigint not null default 0,
    items_changed bigint not null default 0,
    items_unchanged bigint not null default 0,
    items_disappeared bigint not null default 0,
    items_with_errors bigint not null default 0,
    products_updated bigint not null default 0,
    report text,
    error text,
    actor_label text not null,
    created_at bigint not null,
    finished_at bigint
);
create index feed_imports_tenant on feed_imports(tenant_id, source_id, created_at);

-- The staging area: every item of every file, by feed id. `raw` is the item's attributes
-- as read (JSON {name: [values]}), `item` the normalised fields (JSON FeedProduct),
-- `hash` a digest of `item` (a re-import with the same hash is unchanged),
-- `changed_fields` what the last re-import changed. `product_id` is the published (or
-- linked) product; `published_hash` the hash last applied to it; `overrides` the fields
-- the merchant set on the product that feed updates leave alone (JSON).
create table feed_items (
    id blob primary key,
    tenant_id blob not null references tenants(id) on delete cascade,
    source_id blob not null references feed_sources(id) on delete cascade,
    language text not null,
    feed_id text not null,
    raw text not null,
    item text not null,
    hash text not null,
    errors text not null default '[]',
    warnings text not null default '[]',
    changed_fields text not null default '[]',
    title text,
    import_id blob not null,
    first_seen_at bigint not null,
    updated_at bigint not null,
    disappeared_at bigint,
    product_id blob references products(id) on delete set null,
    published_hash text,
    published_at bigint,
    overrides text not null default '{}',
    unique (source_id, language, feed_id)
);
create index feed_items_tenant on feed_items(tenant_id, source_id, language);
create index feed_items_product on feed_items(tenant_id, product_id);
