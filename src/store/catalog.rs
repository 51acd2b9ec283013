//! Catalog storage: products, variants, images and collections, always through [`TenantDb`].

use super::audit::{self, Actor, Change};
use super::events;
use super::{
    StoreError, StoreResult, TenantDb, Tx, fetch_in, from_json, new_id, now_micros, to_json,
};
use crate::domain::{Currency, Handle, InventoryPolicy, ProductStatus, Sku, variant_available};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, dispatch_write, exec, exec_tx, exec_write};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
struct ProductRow {
    id: Uuid,
    handle: String,
    title: String,
    body_html: String,
    vendor: Option<String>,
    product_type: Option<String>,
    tags: String,
    status: String,
    options: String,
    featured: bool,
    seo_title: Option<String>,
    seo_description: Option<String>,
    attributes: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct VariantRow {
    id: Uuid,
    product_id: Uuid,
    sku: Option<String>,
    title: String,
    option_values: String,
    price_minor: i64,
    compare_at_minor: Option<i64>,
    currency: String,
    inventory: i64,
    barcode: Option<String>,
    weight_grams: Option<i64>,
    position: i64,
    inventory_policy: String,
    inventory_tracked: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct ImageRow {
    id: Uuid,
    product_id: Uuid,
    url: String,
    alt: Option<String>,
    position: i64,
}

/// A product row with its variants and images as JSON arrays of arrays (the columns of
/// [`VariantRow`] and [`ImageRow`] in order, ids as hex or text), from the one-statement
/// read of [`TenantDb::get_product_by_handle`].
#[derive(Debug, sqlx::FromRow)]
struct ProductDocRow {
    #[sqlx(flatten)]
    product: ProductRow,
    variants_json: String,
    images_json: String,
}

/// One variant as `json_array(...)` returns it (SQLite booleans are 0/1; PostgreSQL's
/// are cast to int in the statement).
type VariantJson = (
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
    String,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    String,
    i64,
);

impl ProductDocRow {
    /// Decodes the aggregated children, sorted by position. Errors: `Internal` when the
    /// JSON does not have the statement's shape (`Corrupt`; a bug, never input).
    fn children(&self) -> StoreResult<(Vec<VariantRow>, Vec<ImageRow>)> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("product {} {what}: {e}", self.product.id))
        };
        let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| bad("id", &e));
        let pid = self.product.id;
        let vs: Vec<VariantJson> =
            serde_json::from_str(&self.variants_json).map_err(|e| bad("variants", &e))?;
        let mut variants = vs
            .into_iter()
            .map(|v| {
                Ok(VariantRow {
                    id: uuid(&v.0)?,
                    product_id: pid,
                    sku: v.1,
                    title: v.2,
                    option_values: v.3,
                    price_minor: v.4,
                    compare_at_minor: v.5,
                    currency: v.6,
                    inventory: v.7,
                    barcode: v.8,
                    weight_grams: v.9,
                    position: v.10,
                    inventory_policy: v.11,
                    inventory_tracked: v.12 != 0,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        variants.sort_by_key(|v| v.position);
        let is: Vec<(String, String, Option<String>, i64)> =
            serde_json::from_str(&self.images_json).map_err(|e| bad("images", &e))?;
        let mut images = is
            .into_iter()
            .map(|i| {
                Ok(ImageRow {
                    id: uuid(&i.0)?,
                    product_id: pid,
                    url: i.1,
                    alt: i.2,
                    position: i.3,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        images.sort_by_key(|i| i.position);
        Ok((variants, images))
    }
}

/// An amount as the API shows it: integer minor units plus ISO 4217 currency.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MoneyDto {
    /// Amount in minor units (cents for EUR).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Display form, e.g. `12.50 EUR`.
    pub formatted: String,
}

impl MoneyDto {
    /// `minor` units of `currency`, with its display form.
    pub(crate) fn new(minor: i64, currency: &str) -> Self {
        let formatted = Currency::parse(currency)
            .map(|c| crate::domain::format_minor(minor, c))
            .unwrap_or_else(|_| format!("{minor} {currency}"));
        Self {
            amount_minor: minor,
            currency: currency.to_string(),
            formatted,
        }
    }
}

/// A product variant as returned by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Variant {
    pub id: Uuid,
    pub sku: Option<String>,
    /// Option values joined with ` / `, or `Default` for a single-variant product.
    pub title: String,
    pub option_values: Vec<String>,
    pub price: MoneyDto,
    pub compare_at_price: Option<MoneyDto>,
    /// Units on hand; may be negative when the policy is `continue`. Only meaningful when
    /// `inventory_tracked`.
    pub inventory_quantity: i64,
    /// `deny` (stop selling at zero, the default) or `continue` (keep selling).
    pub inventory_policy: InventoryPolicy,
    /// False when the quantity is not counted (the variant is always available).
    pub inventory_tracked: bool,
    /// Whether it can be bought now: `!inventory_tracked || inventory_policy = continue ||
    /// inventory_quantity > 0` ([`crate::domain::variant_available`]).
    pub available: bool,
    pub barcode: Option<String>,
    pub weight_grams: Option<i64>,
    pub position: i64,
}

/// A product image.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Image {
    pub id: Uuid,
    pub url: String,
    pub alt: Option<String>,
    pub position: i64,
}

/// A product attribute (specification line), e.g. from a Shopify metafield column
/// `Farbe (product.metafields.shopify.color-pattern)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProductAttribute {
    /// `namespace.key`, e.g. `shopify.color-pattern`.
    pub key: String,
    /// Label to show, e.g. `Farbe` (the header's label; the key when it had none).
    pub name: String,
    /// The value as given.
    pub value: String,
}

/// A product with its variants and images, as returned by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub handle: String,
    pub title: String,
    pub body_html: String,
    pub vendor: Option<String>,
    pub product_type: Option<String>,
    pub tags: Vec<String>,
    pub status: ProductStatus,
    /// Option names (e.g. `["Size","Color"]`), empty for single-variant products.
    pub options: Vec<String>,
    pub featured: bool,
    /// Title for search results; `null` means the product title.
    pub seo_title: Option<String>,
    /// Description for search results; `null` means the product description.
    pub seo_description: Option<String>,
    /// Specification lines (metafields), in file order.
    pub attributes: Vec<ProductAttribute>,
    pub variants: Vec<Variant>,
    pub images: Vec<Image>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

/// A validated variant to write.
#[derive(Debug, Clone)]
pub struct VariantInput {
    pub sku: Option<Sku>,
    pub option_values: Vec<String>,
    pub price_minor: i64,
    pub compare_at_minor: Option<i64>,
    /// Units on hand (may be negative).
    pub inventory: i64,
    /// What happens at or below zero; `deny` by default.
    pub inventory_policy: InventoryPolicy,
    /// Whether `inventory` is counted; `true` by default.
    pub inventory_tracked: bool,
    pub barcode: Option<String>,
    pub weight_grams: Option<i64>,
}

/// A validated image to write.
#[derive(Debug, Clone)]
pub struct ImageInput {
    pub url: String,
    pub alt: Option<String>,
}

/// A product's search-engine listing (each part `None` falls back to the product's own).
#[derive(Debug, Clone, Default)]
pub struct Seo {
    pub title: Option<String>,
    pub description: Option<String>,
}

/// A validated product to write (create, full update or import upsert).
#[derive(Debug, Clone)]
pub struct ProductInput {
    pub handle: Handle,
    pub title: String,
    pub body_html: String,
    pub vendor: Option<String>,
    pub product_type: Option<String>,
    pub tags: Vec<String>,
    pub status: ProductStatus,
    pub options: Vec<String>,
    pub featured: bool,
    /// The search-engine listing to set; `None` keeps the stored one on update (imports
    /// carry none) and stores none on create.
    pub seo: Option<Seo>,
    /// The attributes to set; `None` keeps the stored ones on update and stores none on
    /// create.
    pub attributes: Option<Vec<ProductAttribute>>,
    pub variants: Vec<VariantInput>,
    pub images: Vec<ImageInput>,
    /// Collections to add the product to, as `(handle, title)`; created when missing.
    /// Existing memberships are kept on update.
    pub collections: Vec<(Handle, String)>,
}

impl ProductInput {
    /// What the audit log keeps of a product write: identity, status and prices.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "handle": self.handle.as_str(),
            "title": self.title,
            "status": self.status.as_str(),
            "vendor": self.vendor,
            "variants": self.variants.iter().map(|v| serde_json::json!({
                "sku": v.sku.as_ref().map(|s| s.as_str()),
                "price_minor": v.price_minor,
                "inventory": v.inventory,
                "inventory_policy": v.inventory_policy.as_str(),
                "inventory_tracked": v.inventory_tracked,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The same summary as [`ProductInput::summary`], of a stored product.
fn summary_of(p: &Product) -> serde_json::Value {
    serde_json::json!({
        "handle": p.handle,
        "title": p.title,
        "status": p.status.as_str(),
        "vendor": p.vendor,
        "variants": p.variants.iter().map(|v| serde_json::json!({
            "sku": v.sku,
            "price_minor": v.price.amount_minor,
            "inventory": v.inventory_quantity,
            "inventory_policy": v.inventory_policy.as_str(),
            "inventory_tracked": v.inventory_tracked,
        })).collect::<Vec<_>>(),
    })
}

/// Filters for product lists.
#[derive(Debug, Default, Clone)]
pub struct ProductFilter {
    pub status: Option<ProductStatus>,
    /// Case-insensitive substring of the title or handle.
    pub q: Option<String>,
    pub vendor: Option<String>,
    pub featured: Option<bool>,
    /// Exact product type.
    pub product_type: Option<String>,
}

const VARIANTS_OF: &str = "select id, product_id, sku, title, option_values, price_minor, compare_at_minor, currency, inventory, barcode, weight_grams, position, inventory_policy, inventory_tracked from variants where tenant_id = ";
const IMAGES_OF: &str =
    "select id, product_id, url, alt, position from product_images where tenant_id = ";
const PRODUCT_COLS: &str = "id, handle, title, body_html, vendor, product_type, tags, status, options, featured, seo_title, seo_description, attributes, created_at, updated_at";
const PRODUCTS_OF: &str = "select id, handle, title, body_html, vendor, product_type, tags, status, options, featured, seo_title, seo_description, attributes, created_at, updated_at from products where tenant_id = ";
const WHERE: &str = "tenant_id = $1 and ($2 is null or status = $2) and ($3 is null or lower(title) like $3 or handle like $3) and ($4 is null or vendor = $4) and ($5 is null or featured = $5) and ($6 is null or product_type = $6)";

impl TenantDb {
    /// Lists products, newest first, with variants and images. Returns `(page, total)`.
    pub async fn list_products(
        &self,
        f: &ProductFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Product>, i64)> {
        let q = f.q.as_ref().map(|q| format!("%{}%", q.to_lowercase()));
        let status = f.status.map(|s| s.as_str());
        if q.is_some() {
            return self.search_products(f, &q, status, limit, offset).await;
        }
        let rows = crate::tenant_query!(self, read, p => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(format!(
            "select {PRODUCT_COLS} from products where {WHERE} order by created_at desc, id desc limit $7 offset $8"
        )))
        .bind(self.tenant)
        .bind(status)
        .bind(&q)
        .bind(&f.vendor)
        .bind(f.featured)
        .bind(&f.product_type)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from products where {WHERE}")))
            .bind(self.tenant)
            .bind(status)
            .bind(&q)
            .bind(&f.vendor)
            .bind(f.featured)
            .bind(&f.product_type)
            .fetch_one(p)
            .await)?;
        let products = self.hydrate(rows).await?;
        Ok((products, total))
    }

    /// A search page in one scan: a text search (`lower(title) like` / `handle like`) cannot
    /// use an index, so the page ids and the total come from one query (`count(*) over ()`,
    /// sorting only `(id, created_at)`), then the page's rows are read by id. Without this
    /// the page query and the count query each scanned every product of the tenant.
    async fn search_products(
        &self,
        f: &ProductFilter,
        q: &Option<String>,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Product>, i64)> {
        let hits: Vec<(Uuid, i64)> = crate::tenant_query!(self, read, p => sqlx::query_as::<_, (Uuid, i64)>(sqlx::AssertSqlSafe(format!(
            "select id, count(*) over () from products where {WHERE} order by created_at desc, id desc limit $7 offset $8"
        )))
        .bind(self.tenant)
        .bind(status)
        .bind(q)
        .bind(&f.vendor)
        .bind(f.featured)
        .bind(&f.product_type)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total = match hits.first() {
            Some((_, n)) => *n,
            // Past the last page: the window saw no rows, so count separately.
            None if offset > 0 => {
                crate::tenant_query!(self, read, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from products where {WHERE}")))
                .bind(self.tenant)
                .bind(status)
                .bind(q)
                .bind(&f.vendor)
                .bind(f.featured)
                .bind(&f.product_type)
                .fetch_one(p)
                .await)?
            }
            None => 0,
        };
        if hits.is_empty() {
            return Ok((vec![], total));
        }
        let ids: Vec<Uuid> = hits.iter().map(|(id, _)| *id).collect();
        let mut rows = crate::tenant_query!(self, read, p => fetch_in!(p, ProductRow, PRODUCTS_OF, "id", self.tenant, &ids, ""))?;
        let rank: std::collections::HashMap<Uuid, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        rows.sort_by_key(|r| rank.get(&r.id).copied().unwrap_or(usize::MAX));
        let products = self.hydrate(rows).await?;
        Ok((products, total))
    }

    /// The tenant's products among `handles`, with variants and images, keyed by handle
    /// (for imports that leave absent columns unchanged). One query per 500 handles, plus
    /// the variant and image queries.
    pub async fn products_by_handles(
        &self,
        handles: &[&str],
    ) -> StoreResult<HashMap<String, Product>> {
        let mut out = HashMap::new();
        for chunk in handles.chunks(500) {
            let rows = crate::tenant_query!(self, read, p => fetch_in!(p, ProductRow, PRODUCTS_OF, "handle", self.tenant, chunk, ""))?;
            for product in self.hydrate(rows).await? {
                out.insert(product.handle.clone(), product);
            }
        }
        Ok(out)
    }

    /// Counts all products of the tenant (for plan limits).
    pub async fn count_products(&self) -> StoreResult<i64> {
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_scalar("select count(*) from products where tenant_id = $1")
            .bind(self.tenant)
            .fetch_one(p)
            .await)?,
        )
    }

    /// Loads variants and images for a page of products with two queries.
    async fn hydrate(&self, rows: Vec<ProductRow>) -> StoreResult<Vec<Product>> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let variants = crate::tenant_query!(self, read, p => fetch_in!(p, VariantRow, VARIANTS_OF, "product_id", self.tenant, &ids, " order by position"))?;
        let images = crate::tenant_query!(self, read, p => fetch_in!(p, ImageRow, IMAGES_OF, "product_id", self.tenant, &ids, " order by position"))?;
        assemble(rows, variants, images)
    }

    /// [`Self::hydrate`] through an open transaction (sees its uncommitted writes).
    async fn hydrate_tx(&self, tx: &mut Tx, rows: Vec<ProductRow>) -> StoreResult<Vec<Product>> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let variants = dispatch_tx!(&mut *tx, c => fetch_in!(&mut **c, VariantRow, VARIANTS_OF, "product_id", self.tenant, &ids, " order by position"))?;
        let images = dispatch_tx!(&mut *tx, c => fetch_in!(&mut **c, ImageRow, IMAGES_OF, "product_id", self.tenant, &ids, " order by position"))?;
        assemble(rows, variants, images)
    }

    /// One product as `GET /api/v1/products/{id}` returns it, read through `tx` (event
    /// payloads are built inside the transaction of the change they describe).
    async fn get_product_tx(&self, tx: &mut Tx, id: Uuid) -> StoreResult<Option<Product>> {
        let row = dispatch_tx!(&mut *tx, c => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(format!(
            "select {PRODUCT_COLS} from products where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(self.hydrate_tx(tx, row.into_iter().collect()).await?.pop())
    }

    /// Fetches one product by id. `None` when it does not exist *in this tenant*.
    pub async fn get_product(&self, id: Uuid) -> StoreResult<Option<Product>> {
        let row = crate::tenant_query!(self, read, p => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(format!(
            "select {PRODUCT_COLS} from products where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(self.hydrate(row.into_iter().collect()).await?.pop())
    }

    /// Fetches one product by handle, optionally only if active. The hot read of the
    /// storefront product page and the Store API: one statement that returns the product
    /// row with its variants and images aggregated as JSON arrays (`json_group_array` on
    /// SQLite, `json_agg` on PostgreSQL), so a read is one round trip to the database
    /// (on SQLite: one hop to the connection's thread and one row back instead of one per
    /// statement and per row). On PostgreSQL it runs on a session that has set the tenant
    /// ([`super::tenant::acquire_tenant`]; row-level security applies as everywhere).
    pub async fn get_product_by_handle(
        &self,
        handle: &str,
        active_only: bool,
    ) -> StoreResult<Option<Product>> {
        let pg = matches!(&self.pools, super::tenant::TenantPools::Pg(_));
        // Aggregate ORDER BY: SQLite ≥ 3.44 (bundled) and PostgreSQL alike.
        let (vid, iid, tracked, agg, arr) = if pg {
            (
                "v.id::text",
                "i.id::text",
                "v.inventory_tracked::int",
                "json_agg",
                "json_build_array",
            )
        } else {
            (
                "hex(v.id)",
                "hex(i.id)",
                "v.inventory_tracked",
                "json_group_array",
                "json_array",
            )
        };
        let cols = PRODUCT_COLS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "select {cols},
                 (select coalesce(cast({agg}({arr}({vid}, v.sku, v.title, v.option_values, v.price_minor, v.compare_at_minor, v.currency, v.inventory, v.barcode, v.weight_grams, v.position, v.inventory_policy, {tracked}) order by v.position) as text), '[]')
                    from variants v where v.tenant_id = p.tenant_id and v.product_id = p.id) as variants_json,
                 (select coalesce(cast({agg}({arr}({iid}, i.url, i.alt, i.position) order by i.position) as text), '[]')
                    from product_images i where i.tenant_id = p.tenant_id and i.product_id = p.id) as images_json
             from products p where p.tenant_id = $1 and p.handle = $2 and ($3 = false or p.status = 'active')"
        );
        let row = match &self.pools {
            super::tenant::TenantPools::Sqlite { readers, .. } => {
                let mut conn = readers.get().await;
                sqlx::query_as::<_, ProductDocRow>(sqlx::AssertSqlSafe(sql))
                    .bind(self.tenant)
                    .bind(handle)
                    .bind(active_only)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            super::tenant::TenantPools::Pg(pool) => {
                let mut conn = super::tenant::acquire_tenant(pool, self.tenant).await?;
                sqlx::query_as::<_, ProductDocRow>(sqlx::AssertSqlSafe(sql))
                    .bind(self.tenant)
                    .bind(handle)
                    .bind(active_only)
                    .fetch_optional(&mut *conn)
                    .await?
            }
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let (variants, images) = row.children()?;
        Ok(assemble(vec![row.product], variants, images)?.pop())
    }

    /// Creates a product with its variants and images in one transaction, with its audit
    /// entry and a `product.created` event carrying the product as the API returns it.
    /// Errors: `Conflict{field:"handle"}` or `Conflict{field:"sku"}`.
    pub async fn create_product(
        &self,
        actor: &Actor,
        input: &ProductInput,
        currency: &str,
    ) -> StoreResult<Product> {
        let mut tx = self.begin().await?;
        let id = self.insert_product_tx(&mut tx, input, currency).await?;
        let product = self
            .get_product_tx(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("product.created", "product", id).after(input.summary()),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "product.created", &product).await?;
        tx.commit().await?;
        Ok(product)
    }

    /// Replaces a product's fields, variants and images; emits `product.updated` with the
    /// product as the API returns it. Errors: `NotFound`, `Conflict`.
    pub async fn update_product(
        &self,
        actor: &Actor,
        id: Uuid,
        input: &ProductInput,
        currency: &str,
    ) -> StoreResult<Product> {
        let mut tx = self.begin().await?;
        let before = self
            .get_product_tx(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.replace_product_tx(&mut tx, id, input, currency)
            .await?;
        let product = self
            .get_product_tx(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("product.updated", "product", id)
                .before(summary_of(&before))
                .after(input.summary()),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "product.updated", &product).await?;
        tx.commit().await?;
        Ok(product)
    }

    /// Sets the status of several products in one transaction: per product that changed,
    /// an audit entry (`product.updated`, status before/after) and a `product.updated`
    /// event with the product as the API returns it. Returns `(updated ids, ids not found in
    /// this tenant)`; a product already in `status` counts as updated without a new event.
    pub async fn set_products_status(
        &self,
        actor: &Actor,
        ids: &[Uuid],
        status: ProductStatus,
    ) -> StoreResult<(Vec<Uuid>, Vec<Uuid>)> {
        let mut tx = self.begin().await?;
        let (mut done, mut missing) = (vec![], vec![]);
        let now = now_micros();
        for id in ids {
            let Some(before) = self.get_product_tx(&mut tx, *id).await? else {
                missing.push(*id);
                continue;
            };
            done.push(*id);
            if before.status == status {
                continue;
            }
            exec_tx!(&mut tx, c => sqlx::query("update products set status = $3, updated_at = $4 where tenant_id = $1 and id = $2")
                .bind(self.tenant)
                .bind(*id)
                .bind(status.as_str())
                .bind(now)
                .execute(&mut **c)
                .await)?;
            let after = self
                .get_product_tx(&mut tx, *id)
                .await?
                .ok_or(StoreError::NotFound)?;
            audit::record(
                &mut tx,
                Some(self.tenant),
                actor,
                Change::new("product.updated", "product", id)
                    .before(serde_json::json!({ "status": before.status.as_str() }))
                    .after(serde_json::json!({ "status": status.as_str(), "bulk": true })),
            )
            .await?;
            events::emit_resource(&mut tx, Some(self.tenant), "product.updated", &after).await?;
        }
        tx.commit().await?;
        Ok((done, missing))
    }

    /// Deletes a product (variants and images cascade); emits `product.deleted` carrying
    /// the product as it was. Errors: `NotFound`.
    pub async fn delete_product(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let before = self
            .get_product_tx(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        for sql in [
            "delete from variants where tenant_id = $1 and product_id = $2",
            "delete from product_images where tenant_id = $1 and product_id = $2",
            "delete from collection_products where tenant_id = $1 and product_id = $2",
        ] {
            exec_tx!(&mut tx, c => sqlx::query(sql).bind(self.tenant).bind(id).execute(&mut **c).await)?;
        }
        let r = exec_tx!(&mut tx, c => sqlx::query("delete from products where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(id)
            .execute(&mut **c)
            .await)?;
        if r == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("product.deleted", "product", id).before(summary_of(&before)),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "product.deleted", &before).await?;
        tx.commit().await
    }

    /// Inserts or updates a batch of products by handle in one transaction
    /// (re-importing a file updates, never duplicates). Returns `(created, updated)`
    /// and, per input index, the conflict error of the products that could not be written.
    pub async fn upsert_products(
        &self,
        actor: &Actor,
        inputs: &[ProductInput],
        currency: &str,
        max_products: i64,
    ) -> StoreResult<UpsertOutcome> {
        let mut tx = self.begin().await?;
        let out = self
            .upsert_products_tx(&mut tx, inputs, currency, max_products)
            .await?;
        self.commit_direct_import(tx, actor, &out).await?;
        Ok(out)
    }

    /// The body of [`Self::upsert_products`] inside the caller's transaction, without the
    /// audit entry and the event: background imports call it once per chunk, with the
    /// chunk's progress written in the same transaction. The plan limit counts the
    /// tenant's products as this transaction sees them.
    pub(crate) async fn upsert_products_tx(
        &self,
        tx: &mut Tx,
        inputs: &[ProductInput],
        currency: &str,
        max_products: i64,
    ) -> StoreResult<UpsertOutcome> {
        let mut out = UpsertOutcome::default();
        let mut count: i64 = dispatch_tx!(&mut *tx, c => sqlx::query_scalar("select count(*) from products where tenant_id = $1")
            .bind(self.tenant)
            .fetch_one(&mut **c)
            .await)?;
        for (i, input) in inputs.iter().enumerate() {
            let existing: Option<Uuid> = dispatch_tx!(&mut *tx, c => sqlx::query_scalar("select id from products where tenant_id = $1 and handle = $2")
                .bind(self.tenant)
                .bind(input.handle.as_str())
                .fetch_optional(&mut **c)
                .await)?;
            if existing.is_none() && max_products >= 0 && count >= max_products {
                out.failed.push((
                    i,
                    format!("the plan allows at most {max_products} products"),
                ));
                continue;
            }
            exec_tx!(&mut *tx, c => sqlx::query("savepoint upsert_one").execute(&mut **c).await)?;
            let res = match existing {
                Some(id) => self
                    .replace_product_tx(tx, id, input, currency)
                    .await
                    .map(|changed| {
                        if changed {
                            Written::Updated
                        } else {
                            Written::Unchanged
                        }
                    }),
                None => self
                    .insert_product_tx(tx, input, currency)
                    .await
                    .map(|_| Written::Created),
            };
            match res {
                Ok(Written::Created) => {
                    count += 1;
                    out.created += 1;
                }
                Ok(Written::Updated) => out.updated += 1,
                Ok(Written::Unchanged) => out.unchanged += 1,
                Err(StoreError::Conflict { message, .. }) => {
                    exec_tx!(&mut *tx, c => sqlx::query("rollback to savepoint upsert_one").execute(&mut **c).await)?;
                    out.failed.push((i, message));
                    continue;
                }
                Err(e) => return Err(e),
            }
            exec_tx!(&mut *tx, c => sqlx::query("release savepoint upsert_one").execute(&mut **c).await)?;
        }
        Ok(out)
    }

    async fn insert_product_tx(
        &self,
        tx: &mut Tx,
        input: &ProductInput,
        currency: &str,
    ) -> StoreResult<Uuid> {
        let id = new_id();
        let now = now_micros();
        exec_tx!(tx, c => sqlx::query(
            "insert into products (id, tenant_id, handle, title, body_html, vendor, product_type, tags, status, options, featured, seo_title, seo_description, attributes, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $13, $14, $15, $12, $12)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(input.handle.as_str())
        .bind(&input.title)
        .bind(&input.body_html)
        .bind(&input.vendor)
        .bind(&input.product_type)
        .bind(to_json(&input.tags))
        .bind(input.status.as_str())
        .bind(to_json(&input.options))
        .bind(input.featured)
        .bind(now)
        .bind(input.seo.as_ref().and_then(|s| s.title.clone()))
        .bind(input.seo.as_ref().and_then(|s| s.description.clone()))
        .bind(to_json(&input.attributes.as_deref().unwrap_or(&[])))
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("handle", "handle")]))?;
        self.insert_children_tx(tx, id, input, currency).await?;
        Ok(id)
    }

    /// Updates product `id` to `input` in place, keeping what still exists: variants are
    /// matched to the stored ones by SKU, else by option values, and keep their ids (so an
    /// order line's `variant_id` keeps pointing at its variant); images are matched by URL.
    /// Stored variants and images that match nothing are deleted, inputs that match nothing
    /// are inserted, and only rows that differ are written. `updated_at` moves only when
    /// something differs. Returns whether anything changed (issue 13 item 6).
    /// Errors: `NotFound`, `Conflict{field:"handle"|"sku"}`.
    async fn replace_product_tx(
        &self,
        tx: &mut Tx,
        id: Uuid,
        input: &ProductInput,
        currency: &str,
    ) -> StoreResult<bool> {
        let row = dispatch_tx!(&mut *tx, c => sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(format!(
            "select {PRODUCT_COLS} from products where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?
        .ok_or(StoreError::NotFound)?;
        let ids = [id];
        let stored_variants = dispatch_tx!(&mut *tx, c => fetch_in!(&mut **c, VariantRow, VARIANTS_OF, "product_id", self.tenant, &ids, " order by position"))?;
        let stored_images = dispatch_tx!(&mut *tx, c => fetch_in!(&mut **c, ImageRow, IMAGES_OF, "product_id", self.tenant, &ids, " order by position"))?;
        let vplan = plan_variants(&stored_variants, &input.variants, currency);
        let iplan = plan_images(&stored_images, &input.images);
        let (tags, options) = (to_json(&input.tags), to_json(&input.options));
        let seo_changed = input.seo.as_ref().is_some_and(|seo| {
            seo.title != row.seo_title || seo.description != row.seo_description
        });
        let attributes = match &input.attributes {
            Some(a) => to_json(a),
            None => row.attributes.clone(),
        };
        let fields_changed = row.attributes != attributes
            || row.handle != input.handle.as_str()
            || row.title != input.title
            || row.body_html != input.body_html
            || row.vendor != input.vendor
            || row.product_type != input.product_type
            || row.tags != tags
            || row.status != input.status.as_str()
            || row.options != options
            || row.featured != input.featured
            || seo_changed;
        let changed = fields_changed || !vplan.is_noop() || !iplan.is_noop();
        if changed {
            let (seo_title, seo_description) = match &input.seo {
                Some(seo) => (seo.title.clone(), seo.description.clone()),
                None => (row.seo_title.clone(), row.seo_description.clone()),
            };
            exec_tx!(tx, c => sqlx::query(
                "update products set handle = $3, title = $4, body_html = $5, vendor = $6, product_type = $7, tags = $8,
                    status = $9, options = $10, featured = $11, updated_at = $12, seo_title = $13, seo_description = $14,
                    attributes = $15
                 where tenant_id = $1 and id = $2",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(input.handle.as_str())
            .bind(&input.title)
            .bind(&input.body_html)
            .bind(&input.vendor)
            .bind(&input.product_type)
            .bind(&tags)
            .bind(input.status.as_str())
            .bind(&options)
            .bind(input.featured)
            .bind(now_micros())
            .bind(seo_title)
            .bind(seo_description)
            .bind(&attributes)
            .execute(&mut **c)
            .await)
            .map_err(|e| StoreError::on_unique(e, &[("handle", "handle")]))?;
        }
        // Variants: deletions first, then SKUs that move are cleared (two kept variants may
        // swap SKUs, and `unique (tenant_id, sku)` is checked per statement), then updates,
        // then inserts.
        self.delete_ids_tx(tx, "variants", &vplan.delete).await?;
        self.clear_skus_tx(tx, &vplan.clear_sku).await?;
        for (vid, pos, v) in &vplan.update {
            exec_tx!(tx, c => sqlx::query(
                "update variants set sku = $3, title = $4, option_values = $5, price_minor = $6, compare_at_minor = $7,
                    currency = $8, inventory = $9, barcode = $10, weight_grams = $11, position = $12,
                    inventory_policy = $13, inventory_tracked = $14
                 where tenant_id = $1 and id = $2",
            )
            .bind(self.tenant)
            .bind(*vid)
            .bind(v.sku.as_ref().map(|s| s.as_str()))
            .bind(variant_title(v))
            .bind(to_json(&v.option_values))
            .bind(v.price_minor)
            .bind(v.compare_at_minor)
            .bind(currency)
            .bind(v.inventory)
            .bind(&v.barcode)
            .bind(v.weight_grams)
            .bind(*pos as i64)
            .bind(v.inventory_policy.as_str())
            .bind(v.inventory_tracked)
            .execute(&mut **c)
            .await)
            .map_err(|e| StoreError::on_unique(e, &[("sku", "sku")]))?;
        }
        self.insert_variants_tx(tx, id, &vplan.insert, currency)
            .await?;
        self.delete_ids_tx(tx, "product_images", &iplan.delete)
            .await?;
        for (iid, pos, img) in &iplan.update {
            exec_tx!(tx, c => sqlx::query(
                "update product_images set alt = $3, position = $4 where tenant_id = $1 and id = $2",
            )
            .bind(self.tenant)
            .bind(*iid)
            .bind(&img.alt)
            .bind(*pos as i64)
            .execute(&mut **c)
            .await)?;
        }
        self.insert_images_tx(tx, id, &iplan.insert).await?;
        self.add_to_collections_tx(tx, id, &input.collections)
            .await?;
        Ok(changed)
    }

    /// Deletes rows of `table` (`variants` or `product_images`) of this tenant by id.
    async fn delete_ids_tx(&self, tx: &mut Tx, table: &str, ids: &[Uuid]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let head = match table {
            "variants" => "delete from variants where tenant_id = ",
            _ => "delete from product_images where tenant_id = ",
        };
        exec_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(head);
            qb.push_bind(self.tenant).push(" and id in (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut **c).await
        })?;
        Ok(())
    }

    /// Sets `sku` to null on the given variants of this tenant.
    async fn clear_skus_tx(&self, tx: &mut Tx, ids: &[Uuid]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        exec_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new("update variants set sku = null where tenant_id = ");
            qb.push_bind(self.tenant).push(" and id in (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut **c).await
        })?;
        Ok(())
    }

    async fn insert_children_tx(
        &self,
        tx: &mut Tx,
        product: Uuid,
        input: &ProductInput,
        currency: &str,
    ) -> StoreResult<()> {
        let variants: Vec<(usize, &VariantInput)> = input.variants.iter().enumerate().collect();
        self.insert_variants_tx(tx, product, &variants, currency)
            .await?;
        self.add_to_collections_tx(tx, product, &input.collections)
            .await?;
        let images: Vec<(usize, &ImageInput)> = input.images.iter().enumerate().collect();
        self.insert_images_tx(tx, product, &images).await
    }

    /// Inserts `(position, variant)` pairs of `product` in one statement (an import writes
    /// thousands of products, and on PostgreSQL each statement is a round trip).
    /// Errors: `Conflict{field:"sku"}`.
    async fn insert_variants_tx(
        &self,
        tx: &mut Tx,
        product: Uuid,
        variants: &[(usize, &VariantInput)],
        currency: &str,
    ) -> StoreResult<()> {
        if variants.is_empty() {
            return Ok(());
        }
        exec_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "insert into variants (id, tenant_id, product_id, sku, title, option_values, price_minor, compare_at_minor, currency, inventory, barcode, weight_grams, position, inventory_policy, inventory_tracked) ",
            );
            qb.push_values(variants.iter(), |mut b, (pos, v)| {
                b.push_bind(new_id())
                    .push_bind(self.tenant)
                    .push_bind(product)
                    .push_bind(v.sku.as_ref().map(|s| s.as_str()))
                    .push_bind(variant_title(v))
                    .push_bind(to_json(&v.option_values))
                    .push_bind(v.price_minor)
                    .push_bind(v.compare_at_minor)
                    .push_bind(currency)
                    .push_bind(v.inventory)
                    .push_bind(&v.barcode)
                    .push_bind(v.weight_grams)
                    .push_bind(*pos as i64)
                    .push_bind(v.inventory_policy.as_str())
                    .push_bind(v.inventory_tracked);
            });
            qb.build().execute(&mut **c).await
        })
        .map_err(|e| StoreError::on_unique(e, &[("sku", "sku")]))?;
        Ok(())
    }

    /// Inserts `(position, image)` pairs of `product` in one statement.
    async fn insert_images_tx(
        &self,
        tx: &mut Tx,
        product: Uuid,
        images: &[(usize, &ImageInput)],
    ) -> StoreResult<()> {
        if images.is_empty() {
            return Ok(());
        }
        exec_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "insert into product_images (id, tenant_id, product_id, url, alt, position) ",
            );
            qb.push_values(images.iter(), |mut b, (pos, img)| {
                b.push_bind(new_id())
                    .push_bind(self.tenant)
                    .push_bind(product)
                    .push_bind(&img.url)
                    .push_bind(&img.alt)
                    .push_bind(*pos as i64);
            });
            qb.build().execute(&mut **c).await
        })?;
        Ok(())
    }

    /// Adds `product` to the collections `(handle, title)`, creating missing ones; existing
    /// memberships are kept.
    async fn add_to_collections_tx(
        &self,
        tx: &mut Tx,
        product: Uuid,
        collections: &[(Handle, String)],
    ) -> StoreResult<()> {
        for (handle, title) in collections {
            exec_tx!(tx, c => sqlx::query(
                "insert into collections (id, tenant_id, handle, title, created_at) values ($1, $2, $3, $4, $5)
                 on conflict (tenant_id, handle) do nothing",
            )
            .bind(new_id())
            .bind(self.tenant)
            .bind(handle.as_str())
            .bind(title)
            .bind(now_micros())
            .execute(&mut **c)
            .await)?;
            exec_tx!(tx, c => sqlx::query(
                "insert into collection_products (tenant_id, collection_id, product_id)
                 select $1, id, $3 from collections where tenant_id = $1 and handle = $2
                 on conflict (collection_id, product_id) do nothing",
            )
            .bind(self.tenant)
            .bind(handle.as_str())
            .bind(product)
            .execute(&mut **c)
            .await)?;
        }
        Ok(())
    }

    /// Lists the tenant's collections.
    pub async fn list_collections(&self) -> StoreResult<Vec<Collection>> {
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_as::<_, Collection>(
            "select c.id, c.handle, c.title, (select count(*) from collection_products cp where cp.tenant_id = c.tenant_id and cp.collection_id = c.id) as product_count
             from collections c where c.tenant_id = $1 order by c.title",
        )
        .bind(self.tenant)
        .fetch_all(p)
        .await)?,
        )
    }

    /// Creates a collection. Errors: `Conflict{field:"handle"}`.
    pub async fn create_collection(
        &self,
        actor: &Actor,
        handle: &Handle,
        title: &str,
    ) -> StoreResult<Collection> {
        let id = new_id();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into collections (id, tenant_id, handle, title, created_at) values ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(handle.as_str())
        .bind(title)
        .bind(now_micros())
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("handle", "handle")]))?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("collection.created", "collection", id)
                .after(serde_json::json!({ "handle": handle.as_str(), "title": title })),
        )
        .await?;
        tx.commit().await?;
        Ok(Collection {
            id,
            handle: handle.as_str().to_string(),
            title: title.to_string(),
            product_count: 0,
        })
    }
}

/// Row → DTO assembly shared by the pool and the transaction paths: attaches each
/// product's variants and images (already ordered by position).
fn assemble(
    rows: Vec<ProductRow>,
    variants: Vec<VariantRow>,
    images: Vec<ImageRow>,
) -> StoreResult<Vec<Product>> {
    let mut vmap: HashMap<Uuid, Vec<Variant>> = HashMap::new();
    for v in variants {
        let policy = InventoryPolicy::parse(&v.inventory_policy)
            .map_err(|e| StoreError::Corrupt(e.message))?;
        vmap.entry(v.product_id).or_default().push(Variant {
            id: v.id,
            sku: v.sku,
            title: v.title,
            option_values: from_json(&v.option_values)?,
            price: MoneyDto::new(v.price_minor, &v.currency),
            compare_at_price: v.compare_at_minor.map(|c| MoneyDto::new(c, &v.currency)),
            inventory_quantity: v.inventory,
            inventory_policy: policy,
            inventory_tracked: v.inventory_tracked,
            available: variant_available(v.inventory_tracked, policy, v.inventory),
            barcode: v.barcode,
            weight_grams: v.weight_grams,
            position: v.position,
        });
    }
    let mut imap: HashMap<Uuid, Vec<Image>> = HashMap::new();
    for i in images {
        imap.entry(i.product_id).or_default().push(Image {
            id: i.id,
            url: i.url,
            alt: i.alt,
            position: i.position,
        });
    }
    rows.into_iter()
        .map(|r| {
            Ok(Product {
                variants: vmap.remove(&r.id).unwrap_or_default(),
                images: imap.remove(&r.id).unwrap_or_default(),
                id: r.id,
                handle: r.handle,
                title: r.title,
                body_html: r.body_html,
                vendor: r.vendor,
                product_type: r.product_type,
                tags: from_json(&r.tags)?,
                status: ProductStatus::parse(&r.status)
                    .map_err(|e| StoreError::Corrupt(e.message))?,
                options: from_json(&r.options)?,
                featured: r.featured,
                seo_title: r.seo_title,
                seo_description: r.seo_description,
                attributes: from_json(&r.attributes)?,
                created_at: super::micros_to_rfc3339(r.created_at),
                updated_at: super::micros_to_rfc3339(r.updated_at),
            })
        })
        .collect()
}

/// A variant's display title: option values joined with ` / `, or `Default`.
fn variant_title(v: &VariantInput) -> String {
    if v.option_values.is_empty() {
        "Default".to_string()
    } else {
        v.option_values.join(" / ")
    }
}

/// What writing a product's variants over the stored ones takes (see
/// [`TenantDb::replace_product_tx`]): ids to delete, kept ids whose SKU must be cleared
/// first, `(kept id, position, input)` to update, `(position, input)` to insert.
struct VariantPlan<'a> {
    delete: Vec<Uuid>,
    clear_sku: Vec<Uuid>,
    update: Vec<(Uuid, usize, &'a VariantInput)>,
    insert: Vec<(usize, &'a VariantInput)>,
}

impl VariantPlan<'_> {
    fn is_noop(&self) -> bool {
        self.delete.is_empty() && self.update.is_empty() && self.insert.is_empty()
    }
}

/// Matches input variants to stored ones, first by SKU, then (for the rest) by option
/// values; a stored variant matches at most one input. Matched variants that differ in
/// any stored field (position included) are updated.
fn plan_variants<'a>(
    stored: &[VariantRow],
    inputs: &'a [VariantInput],
    currency: &str,
) -> VariantPlan<'a> {
    let mut taken = vec![false; stored.len()];
    let mut matched: Vec<Option<usize>> = vec![None; inputs.len()];
    let by_sku: HashMap<&str, usize> = stored
        .iter()
        .enumerate()
        .filter_map(|(j, v)| v.sku.as_deref().map(|s| (s, j)))
        .collect();
    for (i, v) in inputs.iter().enumerate() {
        if let Some(&j) = v.sku.as_ref().and_then(|s| by_sku.get(s.as_str()))
            && !taken[j]
        {
            taken[j] = true;
            matched[i] = Some(j);
        }
    }
    let values: Vec<String> = inputs.iter().map(|v| to_json(&v.option_values)).collect();
    for (i, m) in matched.iter_mut().enumerate() {
        if m.is_some() {
            continue;
        }
        if let Some(j) =
            (0..stored.len()).find(|&j| !taken[j] && stored[j].option_values == values[i])
        {
            taken[j] = true;
            *m = Some(j);
        }
    }
    let mut plan = VariantPlan {
        delete: (0..stored.len())
            .filter(|&j| !taken[j])
            .map(|j| stored[j].id)
            .collect(),
        clear_sku: vec![],
        update: vec![],
        insert: vec![],
    };
    for (i, (v, m)) in inputs.iter().zip(&matched).enumerate() {
        let Some(j) = *m else {
            plan.insert.push((i, v));
            continue;
        };
        let s = &stored[j];
        let sku = v.sku.as_ref().map(|s| s.as_str());
        if s.sku.is_some() && s.sku.as_deref() != sku {
            plan.clear_sku.push(s.id);
        }
        let same = s.sku.as_deref() == sku
            && s.title == variant_title(v)
            && s.option_values == values[i]
            && s.price_minor == v.price_minor
            && s.compare_at_minor == v.compare_at_minor
            && s.currency == currency
            && s.inventory == v.inventory
            && s.barcode == v.barcode
            && s.weight_grams == v.weight_grams
            && s.position == i as i64
            && s.inventory_policy == v.inventory_policy.as_str()
            && s.inventory_tracked == v.inventory_tracked;
        if !same {
            plan.update.push((s.id, i, v));
        }
    }
    plan
}

/// Like [`VariantPlan`] for images, matched by URL.
struct ImagePlan<'a> {
    delete: Vec<Uuid>,
    update: Vec<(Uuid, usize, &'a ImageInput)>,
    insert: Vec<(usize, &'a ImageInput)>,
}

impl ImagePlan<'_> {
    fn is_noop(&self) -> bool {
        self.delete.is_empty() && self.update.is_empty() && self.insert.is_empty()
    }
}

fn plan_images<'a>(stored: &[ImageRow], inputs: &'a [ImageInput]) -> ImagePlan<'a> {
    let mut taken = vec![false; stored.len()];
    let mut plan = ImagePlan {
        delete: vec![],
        update: vec![],
        insert: vec![],
    };
    for (i, img) in inputs.iter().enumerate() {
        match (0..stored.len()).find(|&j| !taken[j] && stored[j].url == img.url) {
            Some(j) => {
                taken[j] = true;
                if stored[j].alt != img.alt || stored[j].position != i as i64 {
                    plan.update.push((stored[j].id, i, img));
                }
            }
            None => plan.insert.push((i, img)),
        }
    }
    plan.delete = (0..stored.len())
        .filter(|&j| !taken[j])
        .map(|j| stored[j].id)
        .collect();
    plan
}

/// What an upsert did to one product.
enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Result of [`TenantDb::upsert_products`].
#[derive(Debug, Default, Clone)]
pub struct UpsertOutcome {
    pub created: usize,
    /// Existing products (same handle) that differed from the input and were written.
    pub updated: usize,
    /// Existing products identical to the input: nothing written, `updated_at` kept.
    pub unchanged: usize,
    /// `(index in the input, reason)` of products that could not be written.
    pub failed: Vec<(usize, String)>,
}

/// A collection of products.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Collection {
    pub id: Uuid,
    pub handle: String,
    pub title: String,
    pub product_count: i64,
}
