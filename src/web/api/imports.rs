//! CSV uploads: product catalogs (merchant) and bulk vendor onboarding (admin).
//!
//! The file is sent either as the raw request body (`Content-Type: text/csv`) or as the
//! `file` field of a `multipart/form-data` form. Oversized uploads get 413.

use crate::access::{perm, platform_perm};
use crate::control::{self, ProductImportReport, VendorImportReport};
use crate::store::platform;
use crate::web::AppState;
use crate::web::context::{Authorized, Platform};
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(import_products, list_product_imports))
        .routes(routes!(get_product_import))
        .routes(routes!(confirm_product_import))
        .routes(routes!(import_vendors, list_vendor_imports))
        .routes(routes!(get_vendor_import))
}

/// An uploaded CSV file's bytes, and the file's name when it came as a multipart field
/// that had one.
pub struct CsvUpload(pub Vec<u8>, pub Option<String>);

/// 413 naming the limit (`details.max_bytes`) when it is known.
fn too_large(limit: Option<usize>) -> ApiError {
    let message = match limit {
        Some(n) => format!(
            "the uploaded file is too large: at most {} ({n} bytes) can be imported at once; split the file or ask the operator to raise SOUK_MAX_IMPORT_BYTES",
            human_bytes(n)
        ),
        None => "the uploaded file is too large".to_string(),
    };
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
        .with_details(serde_json::json!({ "field": "file", "max_bytes": limit }))
}

/// `104857600` → `100 MB` (MiB, as upload limits are set).
fn human_bytes(n: usize) -> String {
    const MB: usize = 1024 * 1024;
    if n >= MB && n.is_multiple_of(MB) {
        format!("{} MB", n / MB)
    } else if n >= 1024 {
        format!("{} KB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

impl<S: Send + Sync> FromRequest<S> for CsvUpload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<crate::web::input::BodyLimit>()
            .map(|l| l.0);
        let too_large = || too_large(limit);
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
                        let name = field.file_name().map(clean_file_name);
                        let bytes = field.bytes().await.map_err(|e| {
                            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                                too_large()
                            } else {
                                ApiError::bad_request("malformed_multipart", e.body_text())
                            }
                        })?;
                        return Ok(CsvUpload(bytes.to_vec(), name));
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
        Ok(CsvUpload(bytes.to_vec(), None))
    }
}

/// A file name as shown back to users: the last path component, control characters
/// removed, at most 200 characters.
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Options of the product import.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductImportQuery {
    /// `true`: only report what the import would do (`would_create`, `would_update`, row
    /// errors); nothing is imported. The upload is kept for an hour and can be confirmed
    /// with `POST /api/v1/imports/products/pending/{pending_import_id}`.
    pub dry_run: Option<bool>,
    /// `true`: answer `202 Accepted` with a queued import (see
    /// `GET /api/v1/imports/products/{id}` for its progress and report) instead of
    /// importing within the request.
    pub background: Option<bool>,
    /// Name of the uploaded file, shown in the import history (at most 200 characters;
    /// a multipart upload's own file name is used when this is absent).
    pub file_name: Option<String>,
}

/// Options of confirming a previewed import.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfirmImportQuery {
    /// `true`: answer `202 Accepted` with a queued import instead of importing within
    /// the request.
    pub background: Option<bool>,
}

/// `202 Accepted` with the queued import and its `Location`.
fn accepted(import: crate::store::imports::ProductImport) -> Response {
    (
        StatusCode::ACCEPTED,
        [(
            header::LOCATION,
            format!("/api/v1/imports/products/{}", import.id),
        )],
        Json(import),
    )
        .into_response()
}

/// `200 OK` with the report of an import done (or previewed) within the request.
fn done(report: ProductImportReport) -> Response {
    Json(report).into_response()
}

/// Import a product CSV (Shopify legacy or 2024+ headers, or WooCommerce) into the
/// caller's tenant. Products are matched by handle: re-importing updates. With
/// `?dry_run=true`, a preview: the same report plus `would_create`/`would_update` and
/// `pending_import_id`, and no product is written. With `?background=true`, `202` and a
/// queued import whose progress and report are at `GET /api/v1/imports/products/{id}`;
/// a file that cannot be read at all is still refused at once (422).
#[utoipa::path(post, path = "/api/v1/imports/products", tag = "merchant", security(("bearer" = ["imports.trigger"])),
    params(ProductImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ProductImportReport), (status = 202, body = crate::store::imports::ProductImport), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_products(
    State(st): State<AppState>,
    m: Authorized<perm::ImportsTrigger>,
    Query(q): Query<ProductImportQuery>,
    CsvUpload(bytes, upload_name): CsvUpload,
) -> ApiResult<Response> {
    let file_name = q
        .file_name
        .as_deref()
        .map(clean_file_name)
        .filter(|n| !n.is_empty())
        .or(upload_name);
    if q.dry_run == Some(true) {
        let max = control::max_products(&st.db, m.tenant.id).await?;
        let mut report =
            control::preview_products(&m.scope, &bytes, &m.tenant.currency, max).await?;
        report.pending_import_id = Some(
            m.scope
                .put_pending_import("products", &bytes, file_name.as_deref())
                .await?,
        );
        return Ok(done(report));
    }
    if q.background == Some(true) {
        let import = control::start_product_import(
            &m.scope,
            &m.actor,
            &bytes,
            file_name.as_deref(),
            &m.tenant.currency,
        )
        .await?;
        st.provisioner.wake();
        return Ok(accepted(import));
    }
    let max = control::max_products(&st.db, m.tenant.id).await?;
    let report =
        control::import_products(&m.scope, &m.actor, &bytes, &m.tenant.currency, max).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(done(report))
}

/// Confirm a previewed product import: imports the file kept by
/// `POST /api/v1/imports/products?dry_run=true`. A pending upload works once and expires
/// after an hour (404 after that). `?background=true` queues it (202) like the upload.
#[utoipa::path(post, path = "/api/v1/imports/products/pending/{id}", tag = "merchant", security(("bearer" = ["imports.trigger"])),
    params(("id" = Uuid, Path, description = "pending_import_id of the preview"), ConfirmImportQuery),
    responses((status = 200, body = ProductImportReport), (status = 202, body = crate::store::imports::ProductImport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn confirm_product_import(
    State(st): State<AppState>,
    m: Authorized<perm::ImportsTrigger>,
    Path(id): Path<Uuid>,
    Query(q): Query<ConfirmImportQuery>,
) -> ApiResult<Response> {
    let (bytes, file_name) =
        m.scope
            .take_pending_import("products", id)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => ApiError::not_found("pending import"),
                other => other.into(),
            })?;
    if q.background == Some(true) {
        let import = control::start_product_import(
            &m.scope,
            &m.actor,
            &bytes,
            file_name.as_deref(),
            &m.tenant.currency,
        )
        .await?;
        st.provisioner.wake();
        return Ok(accepted(import));
    }
    let max = control::max_products(&st.db, m.tenant.id).await?;
    let report =
        control::import_products(&m.scope, &m.actor, &bytes, &m.tenant.currency, max).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(done(report))
}

/// Pagination of the import history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportListQuery {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// The tenant's background product imports, newest first (status, progress, counts; the
/// full report is on each import).
#[utoipa::path(get, path = "/api/v1/imports/products", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(ImportListQuery),
    responses((status = 200, body = crate::web::api::ListResponse<crate::store::imports::ProductImport>), (status = 422, body = ErrorBody)))]
async fn list_product_imports(
    m: Authorized<perm::ImportsView>,
    Query(q): Query<ImportListQuery>,
) -> ApiResult<Json<crate::web::api::ListResponse<crate::store::imports::ProductImport>>> {
    let (limit, offset, page) = crate::web::api::PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    let (mut data, total) = m.scope.list_product_imports(limit, offset).await?;
    for i in &mut data {
        i.report = None; // the list stays small; the report is on the import itself
    }
    Ok(Json(crate::web::api::ListResponse {
        data,
        pagination: crate::web::api::Pagination::new(page, limit, total),
    }))
}

/// One background product import: `status` (`queued`, `running`, `completed`,
/// `failed`), progress (`products_done` of `products_total`), counts, and once completed
/// the full `report` with row errors.
#[utoipa::path(get, path = "/api/v1/imports/products/{id}", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(("id" = Uuid, Path, description = "import id")),
    responses((status = 200, body = crate::store::imports::ProductImport), (status = 404, body = ErrorBody)))]
async fn get_product_import(
    m: Authorized<perm::ImportsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<crate::store::imports::ProductImport>> {
    m.scope
        .get_product_import(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("import"))
}

/// Options of the vendor import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VendorImportQuery {
    /// Theme for every created merchant (default `classic`).
    pub theme: Option<String>,
    /// Plan for every created merchant (default `starter`).
    pub plan: Option<String>,
    /// Name of the uploaded file, kept with the stored report (at most 200 characters).
    pub file_name: Option<String>,
}

/// The result of `POST /api/v1/admin/imports/vendors`: the report plus the id under
/// which it is stored (`GET /api/v1/admin/imports/vendors/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoredVendorImport {
    pub id: Uuid,
    #[serde(flatten)]
    pub report: VendorImportReport,
}

/// Bulk-create and provision merchants from the vendor CSV format
/// (`vendor_name,subdomain,owner_name,owner_email,…,initial_password`). The report is
/// stored with each failed row's original cells.
#[utoipa::path(post, path = "/api/v1/admin/imports/vendors", tag = "admin", security(("bearer" = ["platform.merchants.manage"])), params(VendorImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = StoredVendorImport), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import_vendors(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Query(q): Query<VendorImportQuery>,
    CsvUpload(bytes, _): CsvUpload,
) -> ApiResult<Json<StoredVendorImport>> {
    let started = crate::store::now_micros();
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
    let (header, failed) = control::failed_vendor_rows(&bytes, &report);
    let row = platform::VendorImportRow {
        id: crate::store::new_id(),
        created_by: admin.actor.id,
        created_by_label: admin.actor.label.clone(),
        file_name: q
            .file_name
            .map(|n| n.trim().chars().take(200).collect::<String>())
            .filter(|n| !n.is_empty()),
        theme_id: theme,
        plan_id: plan,
        header: serde_json::to_string(&header).map_err(|_| ApiError::internal())?,
        total_rows: report.total_rows as i64,
        created_count: report.created as i64,
        failed_count: report.failed as i64,
        created: serde_json::to_string(&report.merchants).map_err(|_| ApiError::internal())?,
        failed: serde_json::to_string(&failed).map_err(|_| ApiError::internal())?,
        // The start, so the report can find the merchants created during the import.
        created_at: started,
    };
    platform::insert_vendor_import(&st.db, &admin.actor, &row).await?;
    Ok(Json(StoredVendorImport { id: row.id, report }))
}

/// A created merchant of a stored vendor import with its current status.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportedMerchant {
    pub row: usize,
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
    /// Current merchant status (`provisioning`, `active`, …); null when it no longer
    /// exists.
    #[serde(default)]
    pub status: Option<String>,
}

/// A stored vendor import.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VendorImportDto {
    pub id: Uuid,
    pub created_at: String,
    /// Who ran it (e-mail).
    pub created_by: String,
    /// The uploaded file's name, if given.
    pub file_name: Option<String>,
    pub theme: String,
    pub plan: String,
    pub total_rows: i64,
    pub created: i64,
    pub failed: i64,
    /// Created merchants whose provisioning finished (status `active`).
    pub provisioned: i64,
    /// The input's header cells (the failed-rows CSV repeats them, plus `error`).
    pub header: Vec<String>,
    pub merchants: Vec<ImportedMerchant>,
    pub failed_rows: Vec<control::FailedVendorRow>,
}

async fn vendor_import_dto(
    st: &AppState,
    r: platform::VendorImportRow,
    with_rows: bool,
) -> ApiResult<VendorImportDto> {
    let mut merchants: Vec<ImportedMerchant> =
        serde_json::from_str(&r.created).map_err(|_| ApiError::internal())?;
    let statuses: std::collections::HashMap<Uuid, String> =
        platform::statuses_created_between(&st.db, r.created_at, crate::store::now_micros())
            .await?
            .into_iter()
            .collect();
    for m in merchants.iter_mut() {
        m.status = statuses.get(&m.id).cloned();
    }
    let provisioned = merchants
        .iter()
        .filter(|m| m.status.as_deref() == Some("active"))
        .count() as i64;
    Ok(VendorImportDto {
        id: r.id,
        created_at: crate::store::micros_to_rfc3339(r.created_at),
        created_by: r.created_by_label,
        file_name: r.file_name,
        theme: r.theme_id,
        plan: r.plan_id,
        total_rows: r.total_rows,
        created: r.created_count,
        failed: r.failed_count,
        provisioned,
        header: serde_json::from_str(&r.header).map_err(|_| ApiError::internal())?,
        merchants: if with_rows { merchants } else { vec![] },
        failed_rows: if with_rows {
            serde_json::from_str(&r.failed).map_err(|_| ApiError::internal())?
        } else {
            vec![]
        },
    })
}

/// The newest vendor imports (counts only; rows through the single-import route).
#[utoipa::path(get, path = "/api/v1/admin/imports/vendors", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = Vec<VendorImportDto>)))]
async fn list_vendor_imports(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
) -> ApiResult<Json<Vec<VendorImportDto>>> {
    let mut out = vec![];
    for r in platform::list_vendor_imports(&st.db, 20).await? {
        out.push(vendor_import_dto(&st, r, false).await?);
    }
    Ok(Json(out))
}

/// One stored vendor import: counts, created merchants with their current status (how
/// many finished provisioning), and failed rows with reasons and original cells.
#[utoipa::path(get, path = "/api/v1/admin/imports/vendors/{id}", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = VendorImportDto), (status = 404, body = ErrorBody)))]
async fn get_vendor_import(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<VendorImportDto>> {
    let r = platform::get_vendor_import(&st.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("vendor import"))?;
    Ok(Json(vendor_import_dto(&st, r, true).await?))
}
