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
use axum::http::header;
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

/// List active products, newest first (default 12 per page).
#[utoipa::path(get, path = "/api/v1/store/products", tag = "store", params(PageQuery),
    responses((status = 200, body = ListResponse<Product>), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_products(
    State(st): State<AppState>,
    t: StoreTenant,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let (limit, offset, page) = q.resolve(12)?;
    let key = format!("api:products:{limit}:{offset}");
    if let Some(hit) = st.page_cache.get(t.host.tenant.id, &key) {
        return Ok(json_bytes(hit));
    }
    let f = ProductFilter {
        status: Some(ProductStatus::Active),
        ..Default::default()
    };
    let (data, total) = t.scope.list_products(&f, limit, offset).await?;
    let body = serde_json::to_vec(&ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    })
    .map_err(|_| ApiError::internal())?;
    let body = axum::body::Bytes::from(body);
    st.page_cache.put(t.host.tenant.id, key, body.clone());
    Ok(json_bytes(body))
}

/// Get an active product by handle.
#[utoipa::path(get, path = "/api/v1/store/products/{handle}", tag = "store",
    responses((status = 200, body = Product), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get_product(t: StoreTenant, Path(handle): Path<String>) -> ApiResult<axum::Json<Product>> {
    t.scope
        .get_product_by_handle(&handle, true)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("product"))
}
