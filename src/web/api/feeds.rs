//! Marketplace feeds: sources (`imports.configure`), runs (`imports.trigger` to start,
//! `imports.view` to read), the staging area (`imports.view`), publishing and linking
//! (`products.create`) and overrides (`products.edit`). See `crate::feeds`.

use crate::access::perm;
use crate::domain::{Currency, ProductStatus};
use crate::feeds::{self, FeedsError, LinkTarget, PublishReport};
use crate::import::feed::FeedProduct;
use crate::store::feeds::{
    FeedImport, FeedSource, ItemFilter, NewSource, Overrides, SourceChanges, StagedItem,
};
use crate::web::AppState;
use crate::web::api::imports::CsvUpload;
use crate::web::api::{ListResponse, PageQuery, Pagination};
use crate::web::context::Authorized;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_source, list_sources))
        .routes(routes!(get_source, update_source, delete_source))
        .routes(routes!(fetch_source))
        .routes(routes!(upload_file))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(list_items))
        .routes(routes!(get_item))
        .routes(routes!(publish_items))
        .routes(routes!(link_item))
        .routes(routes!(get_feed_product, put_overrides))
}

impl From<FeedsError> for ApiError {
    fn from(e: FeedsError) -> Self {
        match e {
            FeedsError::Store(s) => s.into(),
            FeedsError::NotFound(what) => ApiError::not_found(what),
            FeedsError::Invalid {
                field,
                code,
                message,
            } => ApiError::invalid(field, code, message),
            FeedsError::File {
                code,
                message,
                import_id,
            } => {
                let status = match code {
                    "fetch_failed" | "http_status" => StatusCode::BAD_GATEWAY,
                    "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, code, message)
                    .with_details(json!({ "field": "file", "import_id": import_id }))
            }
        }
    }
}

fn currency_of(m: &crate::web::context::Merchant) -> Result<Currency, ApiError> {
    Currency::parse(&m.tenant.currency).map_err(|_| ApiError::internal())
}

/// One file of a new source.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FileIn {
    /// ISO 639-1 code, e.g. `de`, `fr`, `en`.
    pub language: String,
    /// http(s) URL fetched by the source; absent for a file the merchant uploads.
    pub url: Option<String>,
}

/// A new feed source.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SourceIn {
    /// `letzshop`, `google_merchant` or `generic`.
    pub marketplace: String,
    /// Shown in the dashboard (default: the marketplace).
    pub name: Option<String>,
    /// `manual` (default), `hourly` or `daily`.
    pub schedule: Option<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
    /// The language whose items create products (default: the first file's).
    pub default_language: Option<String>,
    /// Make a product draft when its item leaves the feed (default `true`).
    pub draft_on_disappear: Option<bool>,
    /// One per language (at least one, languages distinct).
    pub files: Vec<FileIn>,
}

/// `de`, `fr`, `en`, `lb`, … : two or three lowercase ASCII letters.
fn parse_language(field: &'static str, raw: &str) -> Result<String, ApiError> {
    let l = raw.trim().to_ascii_lowercase();
    if (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(l)
    } else {
        Err(ApiError::invalid(
            field,
            "invalid_language",
            format!("{field}: '{raw}' is not an ISO 639-1 language code such as de, fr or en"),
        ))
    }
}

/// `letzshop`, `google_merchant` or `generic` (trimmed, case-insensitive).
fn parse_marketplace(raw: &str) -> Result<String, ApiError> {
    let marketplace = raw.trim().to_ascii_lowercase();
    if matches!(
        marketplace.as_str(),
        "letzshop" | "google_merchant" | "generic"
    ) {
        Ok(marketplace)
    } else {
        Err(ApiError::invalid(
            "marketplace",
            "invalid_marketplace",
            "marketplace must be letzshop, google_merchant or generic",
        ))
    }
}

/// `manual`, `hourly` or `daily`.
fn parse_schedule(raw: &str) -> Result<String, ApiError> {
    let schedule = raw.trim();
    if matches!(schedule, "manual" | "hourly" | "daily") {
        Ok(schedule.to_string())
    } else {
        Err(ApiError::invalid(
            "schedule",
            "invalid_schedule",
            "schedule must be manual, hourly or daily",
        ))
    }
}

/// 1 to 20 files with distinct languages; URLs pass the SSRF guard (empty: uploaded).
fn parse_files(st: &AppState, files: &[FileIn]) -> Result<Vec<(String, Option<String>)>, ApiError> {
    if files.is_empty() || files.len() > 20 {
        return Err(ApiError::invalid(
            "files",
            "invalid_files",
            "files must list 1 to 20 languages",
        ));
    }
    let mut out: Vec<(String, Option<String>)> = vec![];
    for f in files {
        let lang = parse_language("files.language", &f.language)?;
        if out.iter().any(|(l, _)| *l == lang) {
            return Err(ApiError::invalid(
                "files.language",
                "duplicate_language",
                format!("files: language {lang} is listed twice"),
            ));
        }
        let url = match f.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => Some(st.feeds.check_url(u).map_err(|e| {
                ApiError::invalid("files.url", "invalid_url", format!("files.url: {e}"))
            })?),
        };
        out.push((lang, url));
    }
    Ok(out)
}

/// Create a feed source with one file per language. URLs must be http(s) and may not
/// point at loopback, private or link-local addresses (the webhook SSRF rules).
#[utoipa::path(post, path = "/api/v1/feeds/sources", tag = "merchant", security(("bearer" = ["imports.configure"])),
    request_body = SourceIn,
    responses((status = 201, body = FeedSource), (status = 422, body = ErrorBody)))]
async fn create_source(
    State(st): State<AppState>,
    m: Authorized<perm::ImportsConfigure>,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<SourceIn>,
) -> ApiResult<(StatusCode, Json<FeedSource>)> {
    let marketplace = parse_marketplace(&body.marketplace)?;
    let schedule = parse_schedule(body.schedule.as_deref().unwrap_or("manual"))?;
    let files = parse_files(&st, &body.files)?;
    let default_language = match &body.default_language {
        Some(l) => parse_language("default_language", l)?,
        None => files[0].0.clone(),
    };
    if !files.iter().any(|(l, _)| *l == default_language) {
        return Err(ApiError::invalid(
            "default_language",
            "invalid_language",
            "default_language must be one of the files' languages",
        ));
    }
    let name = crate::web::api::opt_text("name", body.name, 200)?
        .unwrap_or_else(|| marketplace.replace('_', " "));
    let src = m
        .scope
        .create_feed_source(
            &m.actor,
            &NewSource {
                marketplace,
                name,
                schedule,
                enabled: body.enabled.unwrap_or(true),
                default_language,
                draft_on_disappear: body.draft_on_disappear.unwrap_or(true),
                files,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(src)))
}

/// The store's feed sources with their files and last outcomes.
#[utoipa::path(get, path = "/api/v1/feeds/sources", tag = "merchant", security(("bearer" = ["imports.view"])),
    responses((status = 200, body = Vec<FeedSource>)))]
async fn list_sources(m: Authorized<perm::ImportsView>) -> ApiResult<Json<Vec<FeedSource>>> {
    Ok(Json(m.scope.list_feed_sources().await?))
}

/// One feed source.
#[utoipa::path(get, path = "/api/v1/feeds/sources/{id}", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(("id" = Uuid, Path, description = "source id")),
    responses((status = 200, body = FeedSource), (status = 404, body = ErrorBody)))]
async fn get_source(
    m: Authorized<perm::ImportsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<FeedSource>> {
    m.scope
        .get_feed_source(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("feed source"))
}

/// A change to a feed source: every field is optional, an absent one is kept.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    /// `letzshop`, `google_merchant` or `generic`.
    pub marketplace: Option<String>,
    /// Shown in the dashboard (1 to 200 characters).
    pub name: Option<String>,
    /// `manual`, `hourly` or `daily`.
    pub schedule: Option<String>,
    pub enabled: Option<bool>,
    /// Make a product draft when its item leaves the feed.
    pub draft_on_disappear: Option<bool>,
    /// The whole new set of files, one per language (1 to 20, distinct, the source's
    /// default language included). A language whose URL changes is fetched in full next
    /// time; a language left out loses its file and its staged items.
    pub files: Option<Vec<FileIn>>,
}

/// Edit a feed source: name, marketplace, schedule, enabled, draft-on-disappear and its
/// files (URL per language). The same rules as at creation (SSRF-checked http(s) URLs,
/// known marketplaces and schedules); the default language cannot be removed.
#[utoipa::path(patch, path = "/api/v1/feeds/sources/{id}", tag = "merchant", security(("bearer" = ["imports.configure"])),
    params(("id" = Uuid, Path, description = "source id")),
    request_body = SourcePatch,
    responses((status = 200, body = FeedSource), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_source(
    State(st): State<AppState>,
    m: Authorized<perm::ImportsConfigure>,
    Path(id): Path<Uuid>,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<SourcePatch>,
) -> ApiResult<Json<FeedSource>> {
    let src = m
        .scope
        .get_feed_source(id)
        .await?
        .ok_or_else(|| ApiError::not_found("feed source"))?;
    let name = match body.name {
        Some(n) => Some(crate::web::api::req_text("name", &n, 200)?),
        None => None,
    };
    let files = match &body.files {
        Some(f) => {
            let files = parse_files(&st, f)?;
            if !files.iter().any(|(l, _)| *l == src.default_language) {
                return Err(ApiError::invalid(
                    "files",
                    "default_language_required",
                    format!(
                        "files must keep the source's default language ({})",
                        src.default_language
                    ),
                ));
            }
            Some(files)
        }
        None => None,
    };
    let changes = SourceChanges {
        marketplace: body
            .marketplace
            .as_deref()
            .map(parse_marketplace)
            .transpose()?,
        name,
        schedule: body.schedule.as_deref().map(parse_schedule).transpose()?,
        enabled: body.enabled,
        draft_on_disappear: body.draft_on_disappear,
        files,
    };
    let src = m
        .scope
        .update_feed_source(&m.actor, id, &changes)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("feed source"),
            e => e.into(),
        })?;
    // Removed languages take their translations with them.
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(src))
}

/// Delete a feed source, its runs and its staged items. Published products stay in the
/// catalog, no longer linked to a feed.
#[utoipa::path(delete, path = "/api/v1/feeds/sources/{id}", tag = "merchant", security(("bearer" = ["imports.configure"])),
    params(("id" = Uuid, Path, description = "source id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_source(
    m: Authorized<perm::ImportsConfigure>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .delete_feed_source(&m.actor, id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("feed source"),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which file of a source.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LanguageQuery {
    /// The file's language; default: every URL file of the source (fetch) or the source's
    /// default language (upload).
    pub language: Option<String>,
    /// Fetch only: `true` queues a job (every URL file of the source) and answers 202 at
    /// once; the runs appear under the source's imports.
    pub background: Option<bool>,
}

/// The runs a fetch started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FetchResult {
    pub runs: Vec<FeedImport>,
    /// Files that failed: `{language, code, message, import_id}`.
    #[schema(value_type = Vec<Object>)]
    pub failures: Vec<serde_json::Value>,
}

/// Fetch a source's URL files now and stage them (one run per language). An unchanged file
/// (`304` to the conditional GET) costs one request and gives a `not_modified` run. A file
/// that fails (404/500, timeout, not a feed, too large) is listed in `failures` and the
/// previous staging stays; the other languages go on.
#[utoipa::path(post, path = "/api/v1/feeds/sources/{id}/fetch", tag = "merchant", security(("bearer" = ["imports.trigger"])),
    params(("id" = Uuid, Path, description = "source id"), LanguageQuery),
    responses((status = 200, body = FetchResult), (status = 202, body = FetchResult), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn fetch_source(
    State(st): State<AppState>,
    m: Authorized<perm::ImportsTrigger>,
    Path(id): Path<Uuid>,
    Query(q): Query<LanguageQuery>,
) -> ApiResult<(StatusCode, Json<FetchResult>)> {
    let currency = currency_of(&m)?;
    let src = m
        .scope
        .get_feed_source(id)
        .await?
        .ok_or_else(|| ApiError::not_found("feed source"))?;
    if q.background == Some(true) {
        crate::store::platform::queue_feed_fetch(&st.db, m.tenant.id, src.id, "fetch").await?;
        st.provisioner.wake();
        return Ok((
            StatusCode::ACCEPTED,
            Json(FetchResult {
                runs: vec![],
                failures: vec![],
            }),
        ));
    }
    let langs: Vec<String> = match &q.language {
        Some(l) => vec![parse_language("language", l)?],
        None => src
            .files
            .iter()
            .filter(|f| f.url.is_some())
            .map(|f| f.language.clone())
            .collect(),
    };
    let mut out = FetchResult {
        runs: vec![],
        failures: vec![],
    };
    for lang in langs {
        match feeds::fetch_and_stage(
            &m.scope, &m.actor, &st.feeds, &src, &lang, "fetch", currency,
        )
        .await
        {
            Ok(Some(run)) => {
                if let Some(r) = m.scope.get_feed_import(run).await? {
                    out.runs.push(r);
                }
            }
            Ok(None) => {}
            Err(FeedsError::File {
                code,
                message,
                import_id,
            }) => out.failures.push(json!({
                "language": lang, "code": code, "message": message, "import_id": import_id,
            })),
            Err(e) => return Err(e.into()),
        }
    }
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok((StatusCode::OK, Json(out)))
}

/// Upload one file of a source (raw body or multipart `file`; gzip accepted) and stage it.
/// Answers the completed run; a file that is not a readable feed is 422 with its code
/// (`not_a_feed`, `no_id_column`, `xml_entities`, `malformed_xml`, `invalid_utf8`, …) and
/// `details.import_id`, and the previous staging stays.
#[utoipa::path(post, path = "/api/v1/feeds/sources/{id}/upload", tag = "merchant", security(("bearer" = ["imports.trigger"])),
    params(("id" = Uuid, Path, description = "source id"), LanguageQuery),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = FeedImport), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload_file(
    State(st): State<AppState>,
    m: Authorized<perm::ImportsTrigger>,
    Path(id): Path<Uuid>,
    Query(q): Query<LanguageQuery>,
    CsvUpload(bytes, _): CsvUpload,
) -> ApiResult<Json<FeedImport>> {
    let currency = currency_of(&m)?;
    let src = m
        .scope
        .get_feed_source(id)
        .await?
        .ok_or_else(|| ApiError::not_found("feed source"))?;
    let lang = match &q.language {
        Some(l) => parse_language("language", l)?,
        None => src.default_language.clone(),
    };
    if !src.files.iter().any(|f| f.language == lang) {
        return Err(ApiError::invalid(
            "language",
            "unknown_language",
            format!("the source has no {lang} file"),
        ));
    }
    let run = if feeds::is_gzip(&bytes) {
        let path = st
            .feeds
            .config
            .spool_dir
            .join(format!("upload-{}.gz", Uuid::now_v7()));
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|_| ApiError::internal())?;
        feeds::stage_spooled(
            &m.scope,
            &m.actor,
            &st.feeds.config,
            &src,
            &lang,
            "upload",
            path,
            true,
            currency,
        )
        .await?
    } else {
        let (reader, hit) =
            feeds::open_bytes(std::io::Cursor::new(bytes), st.feeds.config.max_bytes);
        feeds::stage(
            &m.scope, &m.actor, &src, &lang, "upload", reader, hit, currency,
        )
        .await?
    };
    st.page_cache.invalidate_tenant(m.tenant.id);
    m.scope
        .get_feed_import(run)
        .await?
        .map(Json)
        .ok_or_else(ApiError::internal)
}

/// The runs of a source, newest first (at most 50).
#[utoipa::path(get, path = "/api/v1/feeds/sources/{id}/imports", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(("id" = Uuid, Path, description = "source id")),
    responses((status = 200, body = Vec<FeedImport>), (status = 404, body = ErrorBody)))]
async fn list_runs(
    m: Authorized<perm::ImportsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<FeedImport>>> {
    if m.scope.get_feed_source(id).await?.is_none() {
        return Err(ApiError::not_found("feed source"));
    }
    Ok(Json(m.scope.list_feed_imports(id, 50).await?))
}

/// One run: status, counts and report (`refused` items, unknown attributes).
#[utoipa::path(get, path = "/api/v1/feeds/imports/{id}", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(("id" = Uuid, Path, description = "run id")),
    responses((status = 200, body = FeedImport), (status = 404, body = ErrorBody)))]
async fn get_run(
    m: Authorized<perm::ImportsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<FeedImport>> {
    m.scope
        .get_feed_import(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("feed import"))
}

/// Filters of the staging list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    pub source_id: Option<Uuid>,
    pub language: Option<String>,
    /// `new`, `changed`, `published`, `errors` or `disappeared`.
    pub status: Option<String>,
    /// Substring of the title or feed id.
    pub q: Option<String>,
    pub page: Option<i64>,
    /// 1–100 (default 50).
    pub per_page: Option<i64>,
}

/// Browse and search the staging area.
#[utoipa::path(get, path = "/api/v1/feeds/items", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(ItemQuery),
    responses((status = 200, body = ListResponse<StagedItem>), (status = 422, body = ErrorBody)))]
async fn list_items(
    m: Authorized<perm::ImportsView>,
    Query(q): Query<ItemQuery>,
) -> ApiResult<Json<ListResponse<StagedItem>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(50)?;
    if let Some(s) = &q.status
        && !matches!(
            s.as_str(),
            "new" | "changed" | "published" | "errors" | "disappeared"
        )
    {
        return Err(ApiError::invalid(
            "status",
            "invalid_status",
            "status must be new, changed, published, errors or disappeared",
        ));
    }
    let language = match &q.language {
        Some(l) => Some(parse_language("language", l)?),
        None => None,
    };
    let f = ItemFilter {
        source_id: q.source_id,
        language,
        status: q.status.clone(),
        q: crate::web::api::opt_text("q", q.q.clone(), 200)?,
    };
    let (data, total) = m.scope.list_staged_items(&f, limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// One staged item with its raw attributes, normalised fields, errors and warnings.
#[utoipa::path(get, path = "/api/v1/feeds/items/{id}", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(("id" = Uuid, Path, description = "staged item id")),
    responses((status = 200, body = StagedItem), (status = 404, body = ErrorBody)))]
async fn get_item(
    m: Authorized<perm::ImportsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<StagedItem>> {
    m.scope
        .get_staged_items(&[id])
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("staged item"))
}

/// Items to publish.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PublishIn {
    /// 1–1000 staged item ids.
    pub item_ids: Vec<Uuid>,
}

/// Publish selected staged items as products (one per item, or per `item_group_id` with
/// the group's items as variants). Items that cannot be published are listed in `failed`
/// with a code (`not_found`, `item_has_errors`, `already_published`, `disappeared`,
/// `conflict`); the others are published.
#[utoipa::path(post, path = "/api/v1/feeds/items/publish", tag = "merchant", security(("bearer" = ["products.create"])),
    request_body = PublishIn,
    responses((status = 200, body = PublishReport), (status = 422, body = ErrorBody)))]
async fn publish_items(
    State(st): State<AppState>,
    m: Authorized<perm::ProductsCreate>,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<PublishIn>,
) -> ApiResult<Json<PublishReport>> {
    if body.item_ids.is_empty() || body.item_ids.len() > 1000 {
        return Err(ApiError::invalid(
            "item_ids",
            "invalid_selection",
            "item_ids must list 1 to 1000 staged items",
        ));
    }
    let report = feeds::publish(&m.scope, &m.actor, &body.item_ids, currency_of(&m)?).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(report))
}

/// The existing product to link to: exactly one of the fields.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LinkIn {
    pub product_id: Option<Uuid>,
    pub handle: Option<String>,
    /// A variant SKU of the product.
    pub sku: Option<String>,
    /// A variant barcode (GTIN) of the product.
    pub gtin: Option<String>,
}

/// The product a link or publish reached.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Linked {
    pub product_id: Uuid,
}

/// Link a staged item to an existing product (by id, handle, SKU or GTIN) instead of
/// creating one; the feed's values (price, stock, title, description, images) are applied
/// to it at once and on every later run, overrides excepted.
#[utoipa::path(post, path = "/api/v1/feeds/items/{id}/link", tag = "merchant", security(("bearer" = ["products.create"])),
    params(("id" = Uuid, Path, description = "staged item id")),
    request_body = LinkIn,
    responses((status = 200, body = Linked), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn link_item(
    State(st): State<AppState>,
    m: Authorized<perm::ProductsCreate>,
    Path(id): Path<Uuid>,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<LinkIn>,
) -> ApiResult<Json<Linked>> {
    let mut targets = vec![];
    if let Some(p) = body.product_id {
        targets.push(LinkTarget::Product(p));
    }
    if let Some(h) = body.handle.filter(|s| !s.trim().is_empty()) {
        targets.push(LinkTarget::Handle(h.trim().to_string()));
    }
    if let Some(s) = body.sku.filter(|s| !s.trim().is_empty()) {
        targets.push(LinkTarget::Sku(s.trim().to_string()));
    }
    if let Some(g) = body.gtin.filter(|s| !s.trim().is_empty()) {
        targets.push(LinkTarget::Gtin(g.trim().to_string()));
    }
    if targets.len() != 1 {
        return Err(ApiError::invalid(
            "product_id",
            "invalid_target",
            "give exactly one of product_id, handle, sku or gtin",
        ));
    }
    let target = targets.remove(0);
    let product = feeds::link(&m.scope, &m.actor, id, target, currency_of(&m)?).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(Linked {
        product_id: product,
    }))
}

/// A published product's feed side: the feed's values and the merchant's overrides.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedProductView {
    pub product_id: Uuid,
    /// The feed's values (of the source's default-language item, or the first).
    pub feed: FeedProduct,
    pub overrides: Overrides,
    /// Every staged item linked to the product (all languages, variants).
    pub items: Vec<StagedItem>,
}

/// The feed values and overrides of a published product.
#[utoipa::path(get, path = "/api/v1/feeds/products/{id}", tag = "merchant", security(("bearer" = ["imports.view"])),
    params(("id" = Uuid, Path, description = "product id")),
    responses((status = 200, body = FeedProductView), (status = 404, body = ErrorBody)))]
async fn get_feed_product(
    m: Authorized<perm::ImportsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<FeedProductView>> {
    let items = m.scope.staged_items_of_product(id).await?;
    let Some(first) = items.first() else {
        return Err(ApiError::not_found("feed product"));
    };
    Ok(Json(FeedProductView {
        product_id: id,
        feed: first.item.clone(),
        overrides: first.overrides.clone(),
        items,
    }))
}

/// Overrides to set (the whole set: a field left out follows the feed again).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OverridesIn {
    /// Decimal in the store currency, e.g. `"19.90"`.
    pub price: Option<String>,
    pub compare_at_price: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// http(s) image URLs, in order.
    pub images: Option<Vec<String>>,
    /// `active`, `draft` or `archived`.
    pub status: Option<String>,
    /// Stock of every variant.
    pub inventory: Option<i64>,
}

/// Set the overrides of a published product and apply them at once. Later feed runs change
/// only the fields that are not overridden.
#[utoipa::path(put, path = "/api/v1/feeds/products/{id}", tag = "merchant", security(("bearer" = ["products.edit"])),
    params(("id" = Uuid, Path, description = "product id")),
    request_body = OverridesIn,
    responses((status = 200, body = FeedProductView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_overrides(
    State(st): State<AppState>,
    m: Authorized<perm::ProductsEdit>,
    Path(id): Path<Uuid>,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<OverridesIn>,
) -> ApiResult<Json<FeedProductView>> {
    let currency = currency_of(&m)?;
    let money = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => crate::domain::parse_decimal_minor(s, currency.exponent())
                .map(Some)
                .map_err(|e| ApiError::field(field, e)),
        }
    };
    let mut images = None;
    if let Some(list) = &body.images {
        for u in list {
            if !crate::import::feed::is_http_url(u) {
                return Err(ApiError::invalid(
                    "images",
                    "invalid_url",
                    format!("images: '{u}' is not an http(s) URL"),
                ));
            }
        }
        images = Some(list.iter().map(|u| u.trim().to_string()).collect());
    }
    if let Some(s) = &body.status {
        ProductStatus::parse(s).map_err(|e| ApiError::field("status", e))?;
    }
    if body
        .inventory
        .is_some_and(|n| !(0..=1_000_000_000).contains(&n))
    {
        return Err(ApiError::invalid(
            "inventory",
            "invalid_inventory",
            "inventory must be between 0 and 1000000000",
        ));
    }
    let o = Overrides {
        price_minor: money("price", &body.price)?,
        compare_at_minor: money("compare_at_price", &body.compare_at_price)?,
        title: crate::web::api::opt_text("title", body.title, 255)?,
        description: crate::web::api::opt_text("description", body.description, 100_000)?,
        images,
        status: body.status.map(|s| s.trim().to_ascii_lowercase()),
        inventory: body.inventory,
    };
    feeds::set_overrides(&m.scope, &m.actor, id, &o, currency).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    let items = m.scope.staged_items_of_product(id).await?;
    let first = items
        .first()
        .ok_or_else(|| ApiError::not_found("feed product"))?;
    Ok(Json(FeedProductView {
        product_id: id,
        feed: first.item.clone(),
        overrides: first.overrides.clone(),
        items,
    }))
}
