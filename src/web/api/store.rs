//! Public Store API for headless storefronts and apps, served on the store's host
//! (`{handle}.{base-domain}`, a custom domain) or under `/s/{handle}/`. Active products only.
//! While the store is not published (setup guide opened, "coming soon" on its pages),
//! every route answers 503 `store_not_published` with `Retry-After` (see [`StoreTenant`]).

use super::{ListResponse, PageQuery, Pagination};
use crate::domain::ProductStatus;
use crate::store::catalog::{Product, ProductFilter};
use crate::web::AppState;
use crate::web::context::StoreTenant;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_products))
        .routes(routes!(get_product))
}

fn json_bytes(body: axum::body::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The shopper's language: `?lang=` wins, else the first `Accept-Language` tag's primary
/// subtag (RFC 9110 §12.5.4; weights are not ranked, browsers list the preferred first).
/// `None`: the store's base language.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// ISO 639-1 code, e.g. `fr`: titles and descriptions in that language where the
    /// product has a translation (from a marketplace feed of that language).
    pub lang: Option<String>,
}

fn shopper_language(q: &LangQuery, headers: &HeaderMap) -> Option<String> {
    let raw = q.lang.clone().or_else(|| {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|t| t.split(';').next().unwrap_or("").to_string())
    })?;
    let primary: String = raw.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    ((2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()))
        .then_some(primary)
}

/// Replaces title and description with their `lang` translations where there are some.
async fn translate(t: &StoreTenant, products: &mut [Product], lang: Option<&str>) -> ApiResult<()> {
    let Some(lang) = lang else { return Ok(()) };
    let ids: Vec<uuid::Uuid> = products.iter().map(|p| p.id).collect();
    let tr = t.scope.product_translations(&ids, lang).await?;
    for p in products {
        if let Some((title, body)) = tr.get(&p.id) {
            if let Some(title) = title {
                p.title = title.clone();
            }
            if let Some(body) = body {
                p.body_html = body.clone();
            }
        }
    }
    Ok(())
}

/// List active products, newest first (default 12 per page), in the shopper's language.
#[utoipa::path(get, path = "/api/v1/store/products", tag = "store", params(PageQuery, LangQuery),
    responses((status = 200, body = ListResponse<Product>), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_products(
    State(st): State<AppState>,
    t: StoreTenant,
    Query(q): Query<PageQuery>,
    Query(lq): Query<LangQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (limit, offset, page) = q.resolve(12)?;
    let lang = shopper_language(&lq, &headers);
    let key = format!(
        "api:products:{limit}:{offset}:{}",
        lang.as_deref().unwrap_or("")
    );
    if let Some(hit) = st.page_cache.get(t.host.tenant.id, &key) {
        return Ok(json_bytes(hit));
    }
    let f = ProductFilter {
        status: Some(ProductStatus::Active),
        ..Default::default()
    };
    let (mut data, total) = t.scope.list_products(&f, limit, offset).await?;
    translate(&t, &mut data, lang.as_deref()).await?;
    let body = serde_json::to_vec(&ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    })
    .map_err(|_| ApiError::internal())?;
    let body = axum::body::Bytes::from(body);
    st.page_cache.put(t.host.tenant.id, key, body.clone());
    Ok(json_bytes(body))
}

/// Get an active product by handle, in the shopper's language (`?lang=`, else
/// `Accept-Language`). The document is cached per handle and language like the list
/// (cleared by every catalog change, see `web::cache`).
#[utoipa::path(get, path = "/api/v1/store/products/{handle}", tag = "store", params(LangQuery),
    responses((status = 200, body = Product), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get_product(
    State(st): State<AppState>,
    t: StoreTenant,
    Path(handle): Path<String>,
    Query(lq): Query<LangQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let lang = shopper_language(&lq, &headers);
    let key = format!("api:product:{handle}:{}", lang.as_deref().unwrap_or(""));
    if let Some(hit) = st.page_cache.get(t.host.tenant.id, &key) {
        return Ok(json_bytes(hit));
    }
    let p = t
        .scope
        .get_product_by_handle(&handle, true)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    let mut one = [p];
    translate(&t, &mut one, lang.as_deref()).await?;
    let body =
        axum::body::Bytes::from(serde_json::to_vec(&one[0]).map_err(|_| ApiError::internal())?);
    st.page_cache.put(t.host.tenant.id, key, body.clone());
    Ok(json_bytes(body))
}
