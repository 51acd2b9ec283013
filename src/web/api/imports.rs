//! CSV uploads: product catalogs (merchant) and bulk vendor onboarding (admin).
//!
//! The file is sent either as the raw request body (`Content-Type: text/csv`) or as the
//! `file` field of a `multipart/form-data` form. Oversized uploads get 413.

use crate::access::{perm, platform_perm};
use crate::control::{self, ProductImportReport, VendorImportReport};
use crate::web::AppState;
use crate::web::context::{Authorized, Platform};
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(import_products))
        .routes(routes!(import_vendors))
}

/// An uploaded CSV file's bytes.
pub struct CsvUpload(pub Vec<u8>);

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the uploaded file is too large",
    )
    .with_details(serde_json::json!({ "field": "file" }))
}

impl<S: Send + Sync> FromRequest<S> for CsvUpload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ct.starts_with("multipart/form-data") {
            let mut mp = Multipart::from_request(req, state)
                .await
                .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
            loop {
                match mp.next_field().await {
                    Ok(Some(field)) if field.name() == Some("file") => {
                        let bytes = field.bytes().await.map_err(|e| {
                            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                                too_large()
                            } else {
                                ApiError::bad_request("malformed_multipart", e.body_text())
                            }
                        })?;
                        return Ok(CsvUpload(bytes.to_vec()));
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => {
                        return Err(ApiError::invalid(
                            "file",
                            "required",
                            "the form has no 'file' field",
                        ));
                    }
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(too_large());
                    }
                    Err(e) => {
                        return Err(ApiError::bad_request("malformed_multipart", e.body_text()));
                    }
                }
            }
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::bad_request("bad_body", e.body_text())
                }
            })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid(
                "file",
                "empty_file",
                "the uploaded file is empty",
            ));
        }
        Ok(CsvUpload(bytes.to_vec()))
    }
}

/// Import a product CSV (Shopify legacy or 2024+ headers, or WooCommerce) into the
/// caller's tenant. Products are matched by handle: re-importing updates.
#[utoipa::path(post, path = "/api/v1/imports/products", tag = "merchant", security(("bearer" = ["imports.trigger"])),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ProductImportReport), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_products(
    State(st): State<AppState>,
    m: Authorized<perm::ImportsTrigger>,
    CsvUpload(bytes): CsvUpload,
) -> ApiResult<Json<ProductImportReport>> {
    let max = control::max_products(&st.db, m.tenant.id).await?;
    let report =
        control::import_products(&m.scope, &m.actor, &bytes, &m.tenant.currency, max).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(report))
}

/// Options of the vendor import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct VendorImportQuery {
    /// Theme for every created merchant (default `classic`).
    pub theme: Option<String>,
    /// Plan for every created merchant (default `starter`).
    pub plan: Option<String>,
}

/// Bulk-create and provision merchants from the vendor CSV format
/// (`vendor_name,subdomain,owner_name,owner_email,…,initial_password`).
#[utoipa::path(post, path = "/api/v1/admin/imports/vendors", tag = "admin", security(("bearer" = ["platform.merchants.manage"])), params(VendorImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = VendorImportReport), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_vendors(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Query(q): Query<VendorImportQuery>,
    CsvUpload(bytes): CsvUpload,
) -> ApiResult<Json<VendorImportReport>> {
    let theme = q
        .theme
        .unwrap_or_else(|| crate::themes::DEFAULT_THEME.into());
    let plan = q.plan.unwrap_or_else(|| "starter".into());
    let report = control::import_vendors(
        &st.db,
        &admin.actor,
        &st.themes,
        &bytes,
        &theme,
        &plan,
        |_, _| {},
    )
    .await?;
    st.provisioner.wake();
    Ok(Json(report))
}
