//! Merchant catalog API: products (with variants and images) and collections.
//! Every handler takes [`Merchant`], so it only ever sees its own tenant's rows.

use super::{ListResponse, PageQuery, Pagination, opt_text, req_text};
use crate::access::perm;
use crate::domain::{Currency, Handle, InventoryPolicy, ProductStatus, Sku, parse_decimal_minor};
use crate::store::catalog::{
    Collection, ImageInput, Product, ProductAttribute, ProductFilter, ProductInput, Seo,
    VariantInput,
};
use crate::web::AppState;
use crate::web::context::{Authorized, Merchant};
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_products, create_product))
        .routes(routes!(bulk_status))
        .routes(routes!(get_product, update_product, delete_product))
        .routes(routes!(list_collections, create_collection))
        .routes(routes!(shop))
        .routes(routes!(set_currency))
}

/// A variant in a create/update body. Prices are decimal strings in the store currency
/// (`"12.50"`) or integer minor units (`price_minor: 1250`); give one of the two.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantBody {
    pub sku: Option<String>,
    #[serde(default)]
    pub option_values: Vec<String>,
    pub price: Option<String>,
    pub price_minor: Option<i64>,
    pub compare_at_price: Option<String>,
    #[serde(default)]
    pub inventory_quantity: i64,
    /// `deny` (default: not sold at or below zero) or `continue` (sold when out of stock).
    pub inventory_policy: Option<String>,
    /// Whether `inventory_quantity` is counted (default `true`); an untracked variant is
    /// always available.
    pub inventory_tracked: Option<bool>,
    pub barcode: Option<String>,
    pub weight_grams: Option<i64>,
}

/// An image in a create/update body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageBody {
    /// Absolute http(s) URL.
    pub url: String,
    pub alt: Option<String>,
}

/// Body of product create (all required fields) and update (full replacement).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    pub title: String,
    /// Derived from the title when omitted.
    pub handle: Option<String>,
    #[serde(default)]
    pub body_html: String,
    pub vendor: Option<String>,
    pub product_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `active`, `draft` (default) or `archived`.
    pub status: Option<String>,
    /// Option names, at most 3 (e.g. `["Size", "Color"]`).
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub featured: bool,
    /// Title for search results, at most 70 characters; the product title when omitted.
    pub seo_title: Option<String>,
    /// Description for search results, at most 320 characters.
    pub seo_description: Option<String>,
    /// Specification lines (`key` = `namespace.key`, `name` = label, `value`), at most
    /// 100; omitted on update: the stored ones are kept.
    pub attributes: Option<Vec<ProductAttribute>>,
    /// At least one variant.
    pub variants: Vec<VariantBody>,
    #[serde(default)]
    pub images: Vec<ImageBody>,
}

fn money(field: &str, raw: &str, cur: Currency) -> ApiResult<i64> {
    parse_decimal_minor(raw, cur.exponent()).map_err(|e| ApiError::field(field, e))
}

/// Checks attribute lines: at most 100; key and name 1–255 characters, value at most 1,024.
fn parse_attributes(list: Vec<ProductAttribute>) -> ApiResult<Vec<ProductAttribute>> {
    if list.len() > 100 {
        return Err(ApiError::invalid(
            "attributes",
            "too_many_attributes",
            "a product has at most 100 attributes",
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, a)| {
            Ok(ProductAttribute {
                key: req_text(&format!("attributes[{i}].key"), &a.key, 255)?,
                name: req_text(&format!("attributes[{i}].name"), &a.name, 255)?,
                value: opt_text(&format!("attributes[{i}].value"), Some(a.value), 1024)?
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Parses and validates a product body into a [`ProductInput`]. Errors name the field,
/// with the variant index for variant fields (`variants[1].price`).
fn parse_product(b: ProductBody, currency: &str) -> ApiResult<ProductInput> {
    let cur = Currency::parse(currency).unwrap_or(Currency::EUR);
    let title = req_text("title", &b.title, 255)?;
    let handle = match b.handle.filter(|h| !h.trim().is_empty()) {
        Some(h) => Handle::parse(&h).map_err(|e| ApiError::field("handle", e))?,
        None => Handle::from_title(&title).map_err(|e| ApiError::field("handle", e))?,
    };
    let status = match b.status {
        Some(s) => ProductStatus::parse(&s).map_err(|e| ApiError::field("status", e))?,
        None => ProductStatus::Draft,
    };
    if b.options.len() > 3 {
        return Err(ApiError::invalid(
            "options",
            "too_many_options",
            "a product has at most 3 options",
        ));
    }
    if b.variants.is_empty() {
        return Err(ApiError::invalid(
            "variants",
            "required",
            "a product needs at least one variant",
        ));
    }
    if b.variants.len() > 100 {
        return Err(ApiError::invalid(
            "variants",
            "too_many_variants",
            "a product has at most 100 variants",
        ));
    }
    if b.tags.len() > 250 || b.tags.iter().any(|t| t.chars().count() > 255) {
        return Err(ApiError::invalid(
            "tags",
            "too_long",
            "at most 250 tags of at most 255 characters",
        ));
    }
    let mut variants = Vec::with_capacity(b.variants.len());
    for (i, v) in b.variants.into_iter().enumerate() {
        let f = |name: &str| format!("variants[{i}].{name}");
        if v.option_values.len() != b.options.len() {
            return Err(ApiError::invalid(
                &f("option_values"),
                "option_mismatch",
                format!(
                    "{}: expected {} values, one per option",
                    f("option_values"),
                    b.options.len()
                ),
            ));
        }
        let price_minor = match (v.price.as_deref(), v.price_minor) {
            (Some(p), _) => money(&f("price"), p, cur)?,
            (None, Some(m)) if (0..=1_000_000_000_000).contains(&m) => m,
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    &f("price_minor"),
                    "invalid_price",
                    "price_minor must be between 0 and 10^12",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    &f("price"),
                    "required",
                    format!("{} is required", f("price")),
                ));
            }
        };
        let compare_at_minor = v
            .compare_at_price
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|p| money(&f("compare_at_price"), p, cur))
            .transpose()?;
        if !(-1_000_000_000..=1_000_000_000).contains(&v.inventory_quantity) {
            return Err(ApiError::invalid(
                &f("inventory_quantity"),
                "out_of_range",
                "inventory_quantity is too large",
            ));
        }
        variants.push(VariantInput {
            sku: v
                .sku
                .filter(|s| !s.trim().is_empty())
                .map(|s| Sku::parse(&s).map_err(|e| ApiError::field(&f("sku"), e)))
                .transpose()?,
            option_values: v.option_values,
            price_minor,
            compare_at_minor,
            inventory: v.inventory_quantity,
            inventory_policy: v
                .inventory_policy
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .map(InventoryPolicy::parse)
                .transpose()
                .map_err(|e| ApiError::field(&f("inventory_policy"), e))?
                .unwrap_or_default(),
            inventory_tracked: v.inventory_tracked.unwrap_or(true),
            barcode: opt_text(&f("barcode"), v.barcode, 64)?,
            weight_grams: v.weight_grams,
        });
    }
    let mut images = Vec::with_capacity(b.images.len());
    for (i, img) in b.images.into_iter().enumerate() {
        if !(img.url.starts_with("https://") || img.url.starts_with("http://"))
            || img.url.len() > 2048
        {
            return Err(ApiError::invalid(
                &format!("images[{i}].url"),
                "invalid_url",
                "image url must be an absolute http(s) URL",
            ));
        }
        images.push(ImageInput {
            url: img.url,
            alt: opt_text(&format!("images[{i}].alt"), img.alt, 512)?,
        });
    }
    Ok(ProductInput {
        handle,
        title,
        body_html: b.body_html,
        vendor: opt_text("vendor", b.vendor, 255)?,
        product_type: opt_text("product_type", b.product_type, 255)?,
        tags: b
            .tags
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        status,
        options: b.options,
        featured: b.featured,
        seo: Some(Seo {
            title: opt_text("seo_title", b.seo_title, 70)?,
            description: opt_text("seo_description", b.seo_description, 320)?,
        }),
        attributes: match b.attributes {
            Some(list) => Some(parse_attributes(list)?),
            None => None,
        },
        variants,
        images,
        collections: vec![],
    })
}

/// Filters of the merchant product list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// `active`, `draft` or `archived`.
    pub status: Option<String>,
    /// Substring of title or handle.
    pub q: Option<String>,
    pub vendor: Option<String>,
    /// Exact product type.
    pub product_type: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// List the tenant's products.
#[utoipa::path(get, path = "/api/v1/products", tag = "merchant", security(("bearer" = ["products.view"])), params(ProductQuery),
    responses((status = 200, body = ListResponse<Product>), (status = 403, body = ErrorBody)))]
async fn list_products(
    m: Authorized<perm::ProductsView>,
    Query(q): Query<ProductQuery>,
) -> ApiResult<Json<ListResponse<Product>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    let f = ProductFilter {
        status: q
            .status
            .as_deref()
            .map(ProductStatus::parse)
            .transpose()
            .map_err(|e| ApiError::field("status", e))?,
        q: q.q.filter(|s| !s.is_empty()),
        vendor: q.vendor.filter(|s| !s.is_empty()),
        featured: None,
        product_type: q.product_type.filter(|s| !s.is_empty()),
    };
    let (data, total) = m.scope.list_products(&f, limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// Create a product.
#[utoipa::path(post, path = "/api/v1/products", tag = "merchant", security(("bearer" = ["products.create"])), request_body = ProductBody,
    responses((status = 201, body = Product), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_product(
    State(st): State<AppState>,
    m: Authorized<perm::ProductsCreate>,
    ApiJson(body): ApiJson<ProductBody>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    let input = parse_product(body, &m.tenant.currency)?;
    let max = crate::control::max_products(&st.db, m.tenant.id).await?;
    if max >= 0 && m.scope.count_products().await? >= max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "plan_limit_reached",
            format!("your plan allows at most {max} products"),
        ));
    }
    let p = m
        .scope
        .create_product(&m.actor, &input, &m.tenant.currency)
        .await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok((StatusCode::CREATED, Json(p)))
}

/// Body of a bulk status change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkStatusBody {
    /// Product ids, 1–100.
    pub ids: Vec<Uuid>,
    /// `active`, `draft` or `archived`.
    pub status: String,
}

/// Result of a bulk status change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkStatusResult {
    /// Products now in the requested status.
    pub updated: Vec<Uuid>,
    /// Ids that are not products of this tenant (nothing was changed for them).
    pub not_found: Vec<Uuid>,
}

/// Set the status of several products at once. Each changed product gets an audit entry
/// and a `product.updated` event, as a single update would.
#[utoipa::path(post, path = "/api/v1/products/bulk-status", tag = "merchant", security(("bearer" = ["products.edit"])), request_body = BulkStatusBody,
    responses((status = 200, body = BulkStatusResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn bulk_status(
    State(st): State<AppState>,
    m: Authorized<perm::ProductsEdit>,
    ApiJson(b): ApiJson<BulkStatusBody>,
) -> ApiResult<Json<BulkStatusResult>> {
    let status = ProductStatus::parse(&b.status).map_err(|e| ApiError::field("status", e))?;
    if b.ids.is_empty() || b.ids.len() > 100 {
        return Err(ApiError::invalid(
            "ids",
            "invalid_count",
            "ids: select between 1 and 100 products",
        ));
    }
    let mut ids = b.ids;
    ids.sort();
    ids.dedup();
    let (updated, not_found) = m.scope.set_products_status(&m.actor, &ids, status).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(BulkStatusResult { updated, not_found }))
}

/// Get one product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "merchant", security(("bearer" = ["products.view"])),
    responses((status = 200, body = Product), (status = 404, body = ErrorBody)))]
async fn get_product(
    m: Authorized<perm::ProductsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Product>> {
    m.scope
        .get_product(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("product"))
}

/// Replace a product (fields, variants and images).
#[utoipa::path(put, path = "/api/v1/products/{id}", tag = "merchant", security(("bearer" = ["products.edit"])), request_body = ProductBody,
    responses((status = 200, body = Product), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_product(
    State(st): State<AppState>,
    m: Authorized<perm::ProductsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ProductBody>,
) -> ApiResult<Json<Product>> {
    let input = parse_product(body, &m.tenant.currency)?;
    let p = m
        .scope
        .update_product(&m.actor, id, &input, &m.tenant.currency)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("product"),
            other => other.into(),
        })?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(p))
}

/// Delete a product.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "merchant", security(("bearer" = ["products.delete"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_product(
    State(st): State<AppState>,
    m: Authorized<perm::ProductsDelete>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .delete_product(&m.actor, id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("product"),
            other => other.into(),
        })?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(StatusCode::NO_CONTENT)
}

/// List collections.
#[utoipa::path(get, path = "/api/v1/collections", tag = "merchant", security(("bearer" = ["products.view"])),
    responses((status = 200, body = Vec<Collection>)))]
async fn list_collections(m: Authorized<perm::ProductsView>) -> ApiResult<Json<Vec<Collection>>> {
    Ok(Json(m.scope.list_collections().await?))
}

/// Body of collection create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionBody {
    pub title: String,
    pub handle: Option<String>,
}

/// Create a collection.
#[utoipa::path(post, path = "/api/v1/collections", tag = "merchant", security(("bearer" = ["products.edit"])), request_body = CollectionBody,
    responses((status = 201, body = Collection), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_collection(
    m: Authorized<perm::ProductsEdit>,
    ApiJson(b): ApiJson<CollectionBody>,
) -> ApiResult<(StatusCode, Json<Collection>)> {
    let title = req_text("title", &b.title, 255)?;
    let handle = match b.handle.filter(|h| !h.is_empty()) {
        Some(h) => Handle::parse(&h),
        None => Handle::from_title(&title),
    }
    .map_err(|e| ApiError::field("handle", e))?;
    Ok((
        StatusCode::CREATED,
        Json(m.scope.create_collection(&m.actor, &handle, &title).await?),
    ))
}

/// The current tenant as its members see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShopDto {
    pub id: Uuid,
    pub name: String,
    pub handle: Option<String>,
    pub status: String,
    pub currency: String,
    pub theme: Option<String>,
    /// The caller's role in this tenant.
    pub role: String,
}

/// The shop (tenant) the caller is acting for.
#[utoipa::path(get, path = "/api/v1/shop", tag = "merchant", security(("bearer" = [])),
    responses((status = 200, body = ShopDto), (status = 403, body = ErrorBody)))]
async fn shop(m: Merchant) -> ApiResult<Json<ShopDto>> {
    Ok(Json(ShopDto {
        id: m.tenant.id,
        name: m.tenant.name.clone(),
        handle: m.tenant.handle.clone(),
        status: m.tenant.status.clone(),
        currency: m.tenant.currency.clone(),
        theme: m.tenant.theme_id.clone(),
        role: m.role.clone(),
    }))
}

/// Body of `PUT /api/v1/shop/currency`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CurrencyBody {
    /// ISO 4217 code, e.g. `SEK`.
    pub currency: String,
}

/// Change the store currency (`settings.edit`) while the store has no orders. Variant
/// prices keep their amounts in the new currency. 409 `currency_locked` once the store has
/// an order, or when the new currency has a different number of decimals and the store
/// already has products; 422 for a code that is not ISO 4217-shaped.
#[utoipa::path(put, path = "/api/v1/shop/currency", tag = "merchant", security(("bearer" = ["settings.edit"])),
    request_body = CurrencyBody,
    responses((status = 200, body = ShopDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_currency(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    ApiJson(b): ApiJson<CurrencyBody>,
) -> ApiResult<Json<ShopDto>> {
    let to = Currency::parse(&b.currency).map_err(|e| ApiError::field("currency", e))?;
    m.scope.set_currency(&m.actor, to).await?;
    // The host → tenant cache carries the currency; storefront pages show prices in it.
    st.tenant_cache.invalidate();
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(ShopDto {
        id: m.tenant.id,
        name: m.tenant.name.clone(),
        handle: m.tenant.handle.clone(),
        status: m.tenant.status.clone(),
        currency: to.as_str().to_string(),
        theme: m.tenant.theme_id.clone(),
        role: m.role.clone(),
    }))
}
