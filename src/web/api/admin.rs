//! Platform admin API: merchants, activation and provisioning, plans, themes, domains.

use super::{ListResponse, PageQuery, Pagination, opt_text, req_text};
use crate::access::platform_perm;
use crate::control;
use crate::domain::{Currency, DomainName, Email, Subdomain};
use crate::store::platform::{
    self, DomainRow, Merchant, MerchantFilter, MerchantStatus, NewMerchant, Plan,
};
use crate::store::provisioning::{self as prov, ProvisioningView};
use crate::store::{StoreError, TenantDb, micros_to_rfc3339};
use crate::themes::ThemeInfo;
use crate::web::AppState;
use crate::web::context::Platform;
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_merchant, list_merchants))
        .routes(routes!(get_merchant))
        .routes(routes!(activate))
        .routes(routes!(get_provisioning))
        .routes(routes!(retry_provisioning))
        .routes(routes!(rollback_provisioning))
        .routes(routes!(suspend))
        .routes(routes!(reactivate))
        .routes(routes!(add_domain, list_domains))
        .routes(routes!(list_plans))
        .routes(routes!(list_themes, upload_theme))
        .routes(routes!(enable_theme))
        .routes(routes!(disable_theme))
        .routes(routes!(platform_audit_log))
        .routes(routes!(check_subdomain))
        .routes(routes!(merchant_usage))
        .routes(routes!(provisioning_history))
        .routes(routes!(overview))
        .routes(routes!(my_permissions))
}

/// The audit log across tenants, newest first, filterable by tenant, actor, action and
/// time. Entries cannot be changed through any API.
#[utoipa::path(get, path = "/api/v1/admin/audit-log", tag = "admin", security(("bearer" = ["platform.audit.view"])),
    params(super::team::AuditQuery), responses((status = 200, body = ListResponse<crate::store::audit::AuditEntry>)))]
async fn platform_audit_log(
    State(st): State<AppState>,
    _staff: Platform<platform_perm::AuditView>,
    Query(q): Query<super::team::AuditQuery>,
) -> ApiResult<Json<ListResponse<crate::store::audit::AuditEntry>>> {
    let (f, (limit, offset, page)) = q.resolve()?;
    let (data, total) = crate::store::audit::list_all(&st.db, &f, limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// A merchant as the admin API returns it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MerchantDto {
    pub id: Uuid,
    pub name: String,
    /// Platform subdomain (also the path handle `/s/{handle}/`), once chosen.
    pub handle: Option<String>,
    /// `pending`, `provisioning`, `active` or `suspended`.
    pub status: String,
    pub plan: Option<String>,
    pub theme: Option<String>,
    pub currency: String,
    pub owner_name: Option<String>,
    pub owner_email: String,
    pub owner_phone: Option<String>,
    pub business_address: Option<String>,
    pub business_city: Option<String>,
    pub business_postal_code: Option<String>,
    pub business_country: Option<String>,
    /// Storefront URL by subdomain, once deployed.
    pub storefront_url: Option<String>,
    /// Storefront URL by path, once deployed.
    pub storefront_path_url: Option<String>,
    pub created_at: String,
    pub activated_at: Option<String>,
    /// Duration of the newest provisioning run in milliseconds (list only; null until
    /// one completed).
    pub provisioning_ms: Option<i64>,
}

impl MerchantDto {
    fn from(m: Merchant, st: &AppState) -> Self {
        let deployed = m.storefront_ready && m.handle.is_some();
        let (scheme, port) = split_public_url(&st.config.public_url);
        let h = m.handle.clone().unwrap_or_default();
        Self {
            storefront_url: deployed
                .then(|| format!("{scheme}://{h}.{}{port}/", st.config.base_domain)),
            storefront_path_url: deployed.then(|| format!("{}/s/{h}/", st.config.public_url)),
            id: m.id,
            name: m.name,
            handle: m.handle,
            status: m.status,
            plan: m.plan_id,
            theme: m.theme_id,
            currency: m.currency,
            owner_name: m.owner_name,
            owner_email: m.owner_email,
            owner_phone: m.owner_phone,
            business_address: m.business_address,
            business_city: m.business_city,
            business_postal_code: m.business_postal_code,
            business_country: m.business_country,
            created_at: micros_to_rfc3339(m.created_at),
            activated_at: m.activated_at.map(micros_to_rfc3339),
            provisioning_ms: None,
        }
    }
}

/// `http://localhost:8080` → (`http`, `:8080`).
pub(crate) fn split_public_url(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let hostport = rest.split('/').next().unwrap_or("");
    let port = hostport
        .rsplit_once(':')
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default();
    (scheme.to_string(), port)
}

/// Body of `POST /api/v1/admin/merchants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    /// Shop name shown on the storefront (1–120 characters).
    pub name: String,
    pub owner_email: String,
    pub owner_name: Option<String>,
    pub owner_phone: Option<String>,
    pub business_address: Option<String>,
    pub business_city: Option<String>,
    pub business_postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub business_country: Option<String>,
    /// ISO 4217 store currency (default EUR).
    pub currency: Option<String>,
    /// Requested subdomain, reserved now (may also be given at activation).
    pub subdomain: Option<String>,
}

/// Create a pending merchant.
#[utoipa::path(post, path = "/api/v1/admin/merchants", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    request_body = CreateMerchant,
    responses((status = 201, body = MerchantDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_merchant(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    ApiJson(body): ApiJson<CreateMerchant>,
) -> ApiResult<(StatusCode, Json<MerchantDto>)> {
    let country = opt_text("business_country", body.business_country, 2)?
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.len() == 2 && c.chars().all(|x| x.is_ascii_uppercase()) {
                Ok(c)
            } else {
                Err(ApiError::invalid(
                    "business_country",
                    "invalid_country",
                    "business_country must be an ISO 3166-1 alpha-2 code such as LU",
                ))
            }
        })
        .transpose()?;
    let new = NewMerchant {
        name: req_text("name", &body.name, 120)?,
        owner_email: Email::parse(&body.owner_email)
            .map_err(|e| ApiError::field("owner_email", e))?,
        owner_name: opt_text("owner_name", body.owner_name, 120)?,
        owner_phone: opt_text("owner_phone", body.owner_phone, 40)?,
        business_address: opt_text("business_address", body.business_address, 200)?,
        business_city: opt_text("business_city", body.business_city, 100)?,
        business_postal_code: opt_text("business_postal_code", body.business_postal_code, 20)?,
        business_country: country,
        currency: match body.currency {
            Some(c) => Currency::parse(&c).map_err(|e| ApiError::field("currency", e))?,
            None => Currency::EUR,
        },
        handle: body
            .subdomain
            .filter(|s| !s.trim().is_empty())
            .map(|s| Subdomain::parse(&s).map_err(|e| ApiError::field("subdomain", e)))
            .transpose()?,
        initial_password_hash: None,
    };
    let m = platform::create_merchant(&st.db, &admin.actor, &new).await?;
    Ok((StatusCode::CREATED, Json(MerchantDto::from(m, &st))))
}

/// Filters of `GET /api/v1/admin/merchants`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MerchantQuery {
    /// `pending`, `provisioning`, `active` or `suspended`.
    pub status: Option<String>,
    /// Substring of name, subdomain or owner e-mail, case-insensitive (`%` and `_` match
    /// themselves); merchants whose subdomain or name is exactly this text come first.
    pub q: Option<String>,
    pub plan: Option<String>,
    /// Theme id.
    pub theme: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// List merchants (newest first) with filters and pagination.
#[utoipa::path(get, path = "/api/v1/admin/merchants", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    params(MerchantQuery), responses((status = 200, body = ListResponse<MerchantDto>)))]
async fn list_merchants(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Query(q): Query<MerchantQuery>,
) -> ApiResult<Json<ListResponse<MerchantDto>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    if let Some(s) = &q.status
        && MerchantStatus::parse(s).is_none()
    {
        return Err(ApiError::invalid(
            "status",
            "invalid_status",
            "status must be one of pending, provisioning, active, suspended",
        ));
    }
    let f = MerchantFilter {
        status: q.status,
        q: q.q.filter(|s| !s.is_empty()),
        plan: q.plan.filter(|s| !s.is_empty()),
        theme: q.theme.filter(|s| !s.is_empty()),
    };
    let (rows, total) = platform::list_merchants(&st.db, &f, limit, offset).await?;
    Ok(Json(ListResponse {
        data: rows
            .into_iter()
            .map(|r| MerchantDto {
                provisioning_ms: r.provisioning_ms,
                ..MerchantDto::from(r.merchant, &st)
            })
            .collect(),
        pagination: Pagination::new(page, limit, total),
    }))
}

async fn load(st: &AppState, id: Uuid) -> ApiResult<Merchant> {
    platform::get_merchant(&st.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("merchant"))
}

/// Get one merchant.
#[utoipa::path(get, path = "/api/v1/admin/merchants/{id}", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = MerchantDto), (status = 404, body = ErrorBody)))]
async fn get_merchant(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<MerchantDto>> {
    Ok(Json(MerchantDto::from(load(&st, id).await?, &st)))
}

/// Body of the activation request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    /// Theme id, e.g. `classic` or `midnight`.
    pub theme: String,
    /// Plan id, e.g. `starter`, `growth`, `scale`.
    pub plan: String,
    /// Platform subdomain: a DNS label of 3–63 of `a-z0-9-`, not reserved. Optional if
    /// given at creation; derived from the name otherwise.
    pub subdomain: Option<String>,
    /// A custom host name to record for the store (unverified), e.g. `shop.example.com`.
    pub custom_domain: Option<String>,
}

/// Activate a pending merchant: starts provisioning and returns at once (202).
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/activate", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    request_body = ActivateBody,
    responses((status = 202, body = ProvisioningView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn activate(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ActivateBody>,
) -> ApiResult<(StatusCode, Json<ProvisioningView>)> {
    load(&st, id).await?;
    let sub = body.subdomain.as_deref().filter(|s| !s.trim().is_empty());
    // The custom domain is checked before anything starts, so a bad one refuses the
    // whole activation.
    let custom = match body.custom_domain.as_deref().map(str::trim) {
        Some(h) if !h.is_empty() => {
            let host = parse_custom_host(&st, "custom_domain", h)?;
            if platform::tenant_by_custom_domain(&st.db, host.as_str())
                .await?
                .is_some()
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!(
                        "custom_domain: {} is already used by a store",
                        host.as_str()
                    ),
                )
                .with_details(serde_json::json!({ "field": "custom_domain" })));
            }
            Some(host)
        }
        _ => None,
    };
    control::activate(
        &st.db,
        &admin.actor,
        &st.themes,
        id,
        &body.theme,
        &body.plan,
        sub,
    )
    .await?;
    if let Some(host) = custom {
        platform::add_custom_domain(&st.db, &admin.actor, id, &host)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { message, .. } => ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("custom_domain: {message}"),
                )
                .with_details(serde_json::json!({ "field": "custom_domain" })),
                other => other.into(),
            })?;
        st.tenant_cache.invalidate();
    }
    st.provisioner.wake();
    let view = prov::view(&st.db, id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Provisioning status of a merchant: overall status, each step, total duration.
#[utoipa::path(get, path = "/api/v1/admin/merchants/{id}/provisioning", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = ProvisioningView), (status = 404, body = ErrorBody)))]
async fn get_provisioning(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ProvisioningView>> {
    load(&st, id).await?;
    prov::view(&st.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("provisioning (the merchant has not been activated)"))
}

/// Resume a failed provisioning from its failed step.
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/provisioning/retry", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    responses((status = 202, body = ProvisioningView), (status = 409, body = ErrorBody)))]
async fn retry_provisioning(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<ProvisioningView>)> {
    load(&st, id).await?;
    prov::retry_run(&st.db, &admin.actor, id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("provisioning"),
            other => other.into(),
        })?;
    st.provisioner.wake();
    let view = prov::view(&st.db, id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// Roll back a failed provisioning: removes everything its steps created and returns
/// the merchant to `pending` (its subdomain is released).
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/provisioning/rollback", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    responses((status = 200, body = ProvisioningView), (status = 409, body = ErrorBody)))]
async fn rollback_provisioning(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ProvisioningView>> {
    load(&st, id).await?;
    let run = prov::latest_run(&st.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("provisioning"))?;
    if run.status != "failed" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            format!(
                "provisioning is {}; only a failed provisioning can be rolled back",
                run.status
            ),
        ));
    }
    TenantDb::new(st.db.clone(), id)
        .rollback_run(&st.db, &admin.actor, &run)
        .await?;
    st.tenant_cache.invalidate();
    metrics::counter!("souk_provisioning_total", "outcome" => "rolled_back").increment(1);
    Ok(Json(
        prov::view(&st.db, id)
            .await?
            .ok_or_else(ApiError::internal)?,
    ))
}

/// Suspend an active merchant: its storefront shows "store unavailable".
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/suspend", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    responses((status = 200, body = MerchantDto), (status = 409, body = ErrorBody)))]
async fn suspend(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<MerchantDto>> {
    change_status(&st, &admin.actor, id, "active", MerchantStatus::Suspended).await
}

/// Reactivate a suspended merchant.
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/reactivate", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    responses((status = 200, body = MerchantDto), (status = 409, body = ErrorBody)))]
async fn reactivate(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<MerchantDto>> {
    change_status(&st, &admin.actor, id, "suspended", MerchantStatus::Active).await
}

async fn change_status(
    st: &AppState,
    actor: &crate::store::audit::Actor,
    id: Uuid,
    from: &str,
    to: MerchantStatus,
) -> ApiResult<Json<MerchantDto>> {
    let m = load(st, id).await?;
    if m.status != from {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            format!("merchant is {}; expected {from}", m.status),
        ));
    }
    platform::set_status(&st.db, actor, id, to).await?;
    st.tenant_cache.invalidate();
    st.page_cache.invalidate_tenant(id);
    Ok(Json(MerchantDto::from(load(st, id).await?, st)))
}

/// Body of `POST /api/v1/admin/merchants/{id}/domains`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// A custom host name, e.g. `shop.example.com` (recorded unverified).
    pub host: String,
}

/// Record a custom domain for a merchant (unverified; it already routes to the store).
#[utoipa::path(post, path = "/api/v1/admin/merchants/{id}/domains", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    request_body = AddDomain,
    responses((status = 201, body = DomainRow), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_domain(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<DomainRow>)> {
    load(&st, id).await?;
    let host = parse_custom_host(&st, "host", &body.host)?;
    let d = platform::add_custom_domain(&st.db, &admin.actor, id, &host).await?;
    st.tenant_cache.invalidate();
    Ok((StatusCode::CREATED, Json(d)))
}

/// Parses a custom host name; refuses names under the platform's base domain.
fn parse_custom_host(st: &AppState, field: &str, raw: &str) -> ApiResult<DomainName> {
    let host = DomainName::parse(raw).map_err(|e| ApiError::field(field, e))?;
    if host.as_str() == st.config.base_domain
        || host
            .as_str()
            .ends_with(&format!(".{}", st.config.base_domain))
    {
        return Err(ApiError::invalid(
            field,
            "invalid_domain",
            format!("{field}: a custom domain cannot be under the platform's base domain"),
        ));
    }
    Ok(host)
}

/// List a merchant's domains.
#[utoipa::path(get, path = "/api/v1/admin/merchants/{id}/domains", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = Vec<DomainRow>)))]
async fn list_domains(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<DomainRow>>> {
    load(&st, id).await?;
    Ok(Json(platform::list_domains(&st.db, id).await?))
}

/// List plans.
#[utoipa::path(get, path = "/api/v1/admin/plans", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = Vec<Plan>)))]
async fn list_plans(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
) -> ApiResult<Json<Vec<Plan>>> {
    Ok(Json(platform::list_plans(&st.db).await?))
}

/// List themes (built-in and uploaded) with their settings, enabled flag and templates
/// (preview at `/themes/{id}/preview.svg`).
#[utoipa::path(get, path = "/api/v1/admin/themes", tag = "admin", security(("bearer" = ["platform.themes.view"])),
    responses((status = 200, body = Vec<ThemeInfo>)))]
async fn list_themes(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::ThemesView>,
) -> ApiResult<Json<Vec<ThemeInfo>>> {
    Ok(Json(st.themes.infos()))
}

/// Upload a theme as a zip archive (raw body or the `file` field of a multipart form):
/// `config.json` (the theme manifest), `style.css`, `preview.svg` and `templates/*.html`
/// including every template the built-in themes have, all compiling, and each rendering
/// with sample data shaped like the storefront's (a store, products with variants,
/// prices and images, a paged catalog, the theme's default settings) without using a
/// value the storefront does not provide. A bad archive is refused with 422 and
/// `details.reasons` listing every problem (a render failure names the template and
/// minijinja's error). Re-uploading an uploaded theme's id replaces it; built-in ids are
/// refused.
#[utoipa::path(post, path = "/api/v1/admin/themes", tag = "admin", security(("bearer" = ["platform.themes.manage"])),
    request_body(content = Vec<u8>, content_type = "application/zip"),
    responses((status = 201, body = ThemeInfo), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload_theme(
    State(st): State<AppState>,
    admin: Platform<platform_perm::ThemesManage>,
    super::imports::CsvUpload(bytes, _): super::imports::CsvUpload,
) -> ApiResult<(StatusCode, Json<ThemeInfo>)> {
    let check = |t: &crate::themes::Theme| t.check_render(&crate::web::storefront::sample_pages(t));
    let manifest = control::install_theme(&st.db, &admin.actor, &st.themes, &bytes, check)
        .await
        .map_err(|e| match e {
            Ok(reasons) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_theme",
                format!("the theme is not valid: {}", reasons.join("; ")),
            )
            .with_details(serde_json::json!({ "field": "file", "reasons": reasons })),
            Err(c) => c.into(),
        })?;
    let info = theme_info(&st, &manifest.id)?;
    Ok((StatusCode::CREATED, Json(info)))
}

fn theme_info(st: &AppState, id: &str) -> ApiResult<ThemeInfo> {
    st.themes
        .infos()
        .into_iter()
        .find(|t| t.manifest.id == id)
        .ok_or_else(|| ApiError::not_found("theme"))
}

async fn toggle_theme(
    st: &AppState,
    actor: &crate::store::audit::Actor,
    id: &str,
    enabled: bool,
) -> ApiResult<Json<ThemeInfo>> {
    theme_info(st, id)?;
    if !enabled && id == crate::themes::DEFAULT_THEME {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            "the default theme cannot be disabled",
        ));
    }
    platform::set_theme_enabled(&st.db, actor, id, enabled).await?;
    st.themes.set_enabled(id, enabled);
    Ok(Json(theme_info(st, id)?))
}

/// Enable a theme: offered again at activation.
#[utoipa::path(post, path = "/api/v1/admin/themes/{id}/enable", tag = "admin", security(("bearer" = ["platform.themes.manage"])),
    responses((status = 200, body = ThemeInfo), (status = 404, body = ErrorBody)))]
async fn enable_theme(
    State(st): State<AppState>,
    admin: Platform<platform_perm::ThemesManage>,
    Path(id): Path<String>,
) -> ApiResult<Json<ThemeInfo>> {
    toggle_theme(&st, &admin.actor, &id, true).await
}

/// Disable a theme: no longer offered at activation and refused by it (stores already
/// using it keep it). The default theme cannot be disabled (409).
#[utoipa::path(post, path = "/api/v1/admin/themes/{id}/disable", tag = "admin", security(("bearer" = ["platform.themes.manage"])),
    responses((status = 200, body = ThemeInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn disable_theme(
    State(st): State<AppState>,
    admin: Platform<platform_perm::ThemesManage>,
    Path(id): Path<String>,
) -> ApiResult<Json<ThemeInfo>> {
    toggle_theme(&st, &admin.actor, &id, false).await
}

/// Availability of a platform subdomain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubdomainCheck {
    pub subdomain: String,
    pub available: bool,
    /// Why not: `invalid`, `reserved` or `taken`; null when available.
    pub reason: Option<String>,
    /// Human-readable explanation.
    pub message: String,
}

/// Check whether a subdomain can be chosen: valid DNS label, not reserved, not taken.
#[utoipa::path(get, path = "/api/v1/admin/subdomains/{name}", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = SubdomainCheck)))]
async fn check_subdomain(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Path(name): Path<String>,
) -> ApiResult<Json<SubdomainCheck>> {
    let raw = name.trim().to_string();
    let (available, reason, message) = match Subdomain::parse(&raw) {
        Err(e) => (
            false,
            Some(if e.code == "reserved_subdomain" {
                "reserved"
            } else {
                "invalid"
            }),
            e.message,
        ),
        Ok(s) if platform::handle_taken(&st.db, s.as_str()).await? => (
            false,
            Some("taken"),
            format!("{} is already taken", s.as_str()),
        ),
        Ok(s) => (
            true,
            None,
            format!("{}.{} is available", s.as_str(), st.config.base_domain),
        ),
    };
    Ok(Json(SubdomainCheck {
        subdomain: raw,
        available,
        reason: reason.map(str::to_string),
        message,
    }))
}

/// A merchant's usage against its plan's limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageDto {
    pub usage: platform::Usage,
    /// The plan the merchant is on (null before activation).
    pub plan: Option<Plan>,
    /// Limits recorded at activation (`max_products`, `max_staff`: -1 = unlimited).
    #[schema(value_type = Object)]
    pub limits: serde_json::Value,
}

/// Usage of a merchant (products, staff, orders, domains) against its plan limits.
#[utoipa::path(get, path = "/api/v1/admin/merchants/{id}/usage", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = UsageDto), (status = 404, body = ErrorBody)))]
async fn merchant_usage(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<UsageDto>> {
    let m = load(&st, id).await?;
    let plan = match &m.plan_id {
        Some(p) => platform::get_plan(&st.db, p).await?,
        None => None,
    };
    Ok(Json(UsageDto {
        usage: platform::usage(&st.db, id).await?,
        plan,
        limits: serde_json::from_str(&m.limits).unwrap_or_default(),
    }))
}

/// Every provisioning run of a merchant (newest first) with steps and timings.
#[utoipa::path(get, path = "/api/v1/admin/merchants/{id}/provisioning/runs", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = Vec<ProvisioningView>), (status = 404, body = ErrorBody)))]
async fn provisioning_history(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<ProvisioningView>>> {
    load(&st, id).await?;
    let mut out = vec![];
    for run in platform::provisioning_runs(&st.db, id).await? {
        out.push(prov::view_of_run(&st.db, run).await?);
    }
    Ok(Json(out))
}

/// Provisioning statistics over a window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvisioningStats {
    /// Runs started in the window.
    pub runs: i64,
    pub completed: i64,
    pub failed: i64,
    /// Still pending or in progress.
    pub running: i64,
    /// completed / (completed + failed), 0–1; null without finished runs.
    pub success_rate: Option<f64>,
    /// Median duration of completed runs, ms.
    pub p50_ms: Option<i64>,
    /// 95th percentile duration of completed runs, ms.
    pub p95_ms: Option<i64>,
}

/// One day of provisioning outcomes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub completed: i64,
    pub failed: i64,
}

/// The platform overview.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Overview {
    /// Merchants by status (every status present, 0 when none).
    pub merchants: BTreeMap<String, i64>,
    pub merchants_total: i64,
    pub provisioning_24h: ProvisioningStats,
    pub provisioning_7d: ProvisioningStats,
    /// The last 7 days, oldest first.
    pub provisioning_per_day: Vec<DayCount>,
    /// Jobs by status (`queued`, `running`, `failed`, …).
    pub jobs: BTreeMap<String, i64>,
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn stats(runs: &[(String, Option<i64>, i64)], since: i64) -> ProvisioningStats {
    let window: Vec<_> = runs.iter().filter(|r| r.2 >= since).collect();
    let completed = window.iter().filter(|r| r.0 == "completed").count() as i64;
    let failed = window.iter().filter(|r| r.0 == "failed").count() as i64;
    let mut d: Vec<i64> = window
        .iter()
        .filter(|r| r.0 == "completed")
        .filter_map(|r| r.1)
        .collect();
    d.sort_unstable();
    ProvisioningStats {
        runs: window.len() as i64,
        completed,
        failed,
        running: window
            .iter()
            .filter(|r| r.0 == "pending" || r.0 == "in_progress")
            .count() as i64,
        success_rate: (completed + failed > 0)
            .then(|| completed as f64 / (completed + failed) as f64),
        p50_ms: percentile(&d, 0.5),
        p95_ms: percentile(&d, 0.95),
    }
}

/// Platform overview: merchants by status, provisioning duration p50/p95 and success
/// rate over the last 24 hours and 7 days, runs per day, jobs by status.
#[utoipa::path(get, path = "/api/v1/admin/overview", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = Overview)))]
async fn overview(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
) -> ApiResult<Json<Overview>> {
    const DAY: i64 = 86_400_000_000;
    let now = crate::store::now_micros();
    let mut merchants: BTreeMap<String, i64> = ["pending", "provisioning", "active", "suspended"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for (s, n) in platform::merchant_status_counts(&st.db).await? {
        merchants.insert(s, n);
    }
    let runs = platform::runs_since(&st.db, now - 7 * DAY).await?;
    let today = now - now.rem_euclid(DAY);
    let provisioning_per_day = (0..7)
        .rev()
        .map(|i| {
            let start = today - i * DAY;
            let of = |status: &str| {
                runs.iter()
                    .filter(|r| r.0 == status && r.2 >= start && r.2 < start + DAY)
                    .count() as i64
            };
            DayCount {
                day: micros_to_rfc3339(start).chars().take(10).collect(),
                completed: of("completed"),
                failed: of("failed"),
            }
        })
        .collect();
    let mut jobs: BTreeMap<String, i64> = ["queued", "running", "failed"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for (s, n) in platform::job_status_counts(&st.db).await? {
        jobs.insert(s, n);
    }
    Ok(Json(Overview {
        merchants_total: merchants.values().sum(),
        merchants,
        provisioning_24h: stats(&runs, now - DAY),
        provisioning_7d: stats(&runs, now - 7 * DAY),
        provisioning_per_day,
        jobs,
    }))
}

/// The caller's platform role and permissions (the admin panel hides what is missing).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffPermissions {
    /// `super_admin` or `support`.
    pub role: String,
    pub permissions: Vec<String>,
}

/// The signed-in staff member's platform role and permissions.
#[utoipa::path(get, path = "/api/v1/admin/permissions", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    responses((status = 200, body = StaffPermissions)))]
async fn my_permissions(admin: Platform<platform_perm::MerchantsView>) -> Json<StaffPermissions> {
    Json(StaffPermissions {
        role: admin.role.as_str().to_string(),
        permissions: crate::access::PlatformPermission::ALL
            .iter()
            .filter(|p| admin.role.allows(**p))
            .map(|p| p.as_str().to_string())
            .collect(),
    })
}
