//! Custom domains API.
//!
//! Merchant (`settings.edit`): `/api/v1/domains` add, list, get, remove, `check` (Check
//! now). Platform: `/api/v1/admin/domains` (every custom domain with its state, last check
//! and certificate expiry), re-check and revoke. Public: `/api/v1/tls/ask?domain=…`, the
//! check Caddy's on-demand TLS calls before it asks a CA for a certificate.

use crate::access::{perm, platform_perm};
use crate::custom_domains::{self, CheckError, CheckReport, DnsInstruction};
use crate::domain::CustomDomain;
use crate::store::audit::Actor;
use crate::store::domains::DomainRow;
use crate::store::{TenantDb, platform};
use crate::web::AppState;
use crate::web::api::{PageQuery, Pagination};
use crate::web::context::{Authorized, Platform};
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_domains, add_domain))
        .routes(routes!(get_domain, remove_domain))
        .routes(routes!(check_domain))
        .routes(routes!(admin_list_domains))
        .routes(routes!(admin_check_domain))
        .routes(routes!(admin_revoke_domain))
        .routes(routes!(tls_ask))
}

/// A domain as the API shows it: state, the records to create, what the last check found
/// and the certificate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainDto {
    pub id: Uuid,
    /// A-label (punycode) form: what DNS, TLS and browsers' `Host` carry.
    pub host: String,
    /// Unicode form, when the domain is internationalized.
    pub unicode_host: Option<String>,
    /// `subdomain` (the platform's) or `custom`.
    pub kind: String,
    /// `pending` → `verified` → `active`; `inactive` after its records stayed wrong past
    /// the grace period or an admin revoked it.
    pub status: String,
    /// True while the domain routes to the store (`verified` or `active`).
    pub routes: bool,
    /// The DNS records to create (custom domains only).
    pub dns_records: Vec<DnsInstruction>,
    /// The last DNS check's findings; `null` before the first check.
    pub last_check: Option<CheckReport>,
    /// RFC 3339.
    pub last_checked_at: Option<String>,
    pub next_check_at: Option<String>,
    pub verified_at: Option<String>,
    /// Set while re-checks fail; the domain is deactivated after the grace period.
    pub failing_since: Option<String>,
    pub created_at: String,
    pub certificate: Option<CertificateDto>,
}

/// Certificate state of a domain (Souk's own TLS).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CertificateDto {
    /// RFC 3339 `notAfter` of the live certificate; `null` until one is issued.
    pub expires_at: Option<String>,
    pub issued_at: Option<String>,
    /// The CA's message for the last failed order (rate limit, failed validation, …).
    pub last_error: Option<String>,
    /// Failed orders in a row (retried with backoff).
    pub failed_attempts: i64,
}

fn rfc3339(us: Option<i64>) -> Option<String> {
    us.map(crate::store::micros_to_rfc3339)
}

impl DomainDto {
    pub fn from(d: DomainRow, st: &AppState) -> Self {
        let custom = d.kind == "custom";
        let dns_records = match (&d.verify_token, custom) {
            (Some(t), true) => {
                custom_domains::instructions(&st.domains.config, &st.config.base_domain, &d.host, t)
            }
            _ => vec![],
        };
        let certificate = (custom && st.domains.issues_certificates()).then(|| CertificateDto {
            expires_at: rfc3339(d.cert_not_after),
            issued_at: rfc3339(d.cert_issued_at),
            last_error: d.cert_error.clone(),
            failed_attempts: d.cert_attempts,
        });
        Self {
            id: d.id,
            routes: matches!(d.status.as_str(), "verified" | "active"),
            last_check: d
                .check_result
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            last_checked_at: rfc3339(d.last_checked_at),
            next_check_at: rfc3339(d.next_check_at),
            verified_at: rfc3339(d.verified_at),
            failing_since: rfc3339(d.failing_since),
            created_at: crate::store::micros_to_rfc3339(d.created_at),
            host: d.host,
            unicode_host: d.unicode_host,
            kind: d.kind,
            status: d.status,
            dns_records,
            certificate,
        }
    }
}

/// Body of `POST /api/v1/domains`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomainBody {
    /// A host name such as `shop.example.lu` or `bücher.example` (converted to A-labels).
    pub host: String,
}

/// Parses and records a custom domain for `scope`'s store (shared with the admin API and
/// activation). Errors: 422 naming `field` (invalid name, IP literal, platform domain,
/// over 253 characters), 409 `domain_taken` when another store has verified it (without
/// saying which) or this store already has it.
pub async fn add_for(
    st: &AppState,
    scope: &TenantDb,
    actor: &Actor,
    field: &str,
    raw: &str,
) -> ApiResult<DomainRow> {
    let host =
        CustomDomain::parse(raw, &st.config.base_domain).map_err(|e| ApiError::field(field, e))?;
    let taken = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "domain_taken",
            format!(
                "{field}: {} is already connected to a store",
                host.ascii().as_str()
            ),
        )
        .with_details(serde_json::json!({ "field": field }))
    };
    if platform::host_claimed_elsewhere(&st.db, host.ascii().as_str(), scope.tenant_id()).await? {
        return Err(taken());
    }
    let row = scope
        .add_custom_domain(actor, &host, &custom_domains::new_token())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "domain_taken",
                format!(
                    "{field}: {} is already one of this store's domains",
                    host.ascii().as_str()
                ),
            )
            .with_details(serde_json::json!({ "field": field })),
            other => other.into(),
        })?;
    st.domains.notify.notify_one();
    Ok(row)
}

/// Add a custom domain. The response lists the DNS records to create; Souk checks them
/// by itself soon after and then with backoff for 72 h.
#[utoipa::path(post, path = "/api/v1/domains", tag = "merchant", security(("bearer" = ["settings.edit"])),
    request_body = AddDomainBody,
    responses((status = 201, body = DomainDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_domain(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    ApiJson(b): ApiJson<AddDomainBody>,
) -> ApiResult<(StatusCode, Json<DomainDto>)> {
    let row = add_for(&st, &m.scope, &m.actor, "host", &b.host).await?;
    Ok((StatusCode::CREATED, Json(DomainDto::from(row, &st))))
}

/// List the store's domains (the platform subdomain first).
#[utoipa::path(get, path = "/api/v1/domains", tag = "merchant", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = Vec<DomainDto>)))]
async fn list_domains(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
) -> ApiResult<Json<Vec<DomainDto>>> {
    let rows = m.scope.list_domains().await?;
    Ok(Json(
        rows.into_iter().map(|d| DomainDto::from(d, &st)).collect(),
    ))
}

/// One of the store's domains.
#[utoipa::path(get, path = "/api/v1/domains/{id}", tag = "merchant", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = DomainDto), (status = 404, body = ErrorBody)))]
async fn get_domain(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DomainDto>> {
    let d = m
        .scope
        .get_domain(id)
        .await?
        .ok_or_else(|| ApiError::not_found("domain"))?;
    Ok(Json(DomainDto::from(d, &st)))
}

/// Remove a custom domain: it stops routing at once and its certificate is dropped.
#[utoipa::path(delete, path = "/api/v1/domains/{id}", tag = "merchant", security(("bearer" = ["settings.edit"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_domain(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let d = m
        .scope
        .remove_domain(&m.actor, id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("domain"),
            other => other.into(),
        })?;
    if let Some(c) = &st.domains.certs {
        c.remove(&d.host);
    }
    st.tenant_cache.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

fn check_error(e: CheckError) -> ApiError {
    match e {
        CheckError::NotFound => ApiError::not_found("domain"),
        CheckError::Store(e) => e.into(),
    }
}

/// Check now: looks the domain's DNS records up at once and returns what was found (a
/// verified domain routes to the store from this response on).
#[utoipa::path(post, path = "/api/v1/domains/{id}/check", tag = "merchant", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = DomainDto), (status = 404, body = ErrorBody)))]
async fn check_domain(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DomainDto>> {
    m.scope
        .get_domain(id)
        .await?
        .filter(|d| d.kind == "custom")
        .ok_or_else(|| ApiError::not_found("domain"))?;
    let d = st.domains.check_now(id).await.map_err(check_error)?;
    Ok(Json(DomainDto::from(d, &st)))
}

/// A custom domain of the admin list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminDomainDto {
    #[serde(flatten)]
    pub domain: DomainDto,
    pub merchant_id: Uuid,
    pub merchant_name: String,
    pub merchant_subdomain: Option<String>,
    /// True when the live certificate expires within 14 days (no successful renewal).
    pub certificate_expiring: bool,
}

/// Query of the admin domain list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminDomainQuery {
    /// `pending`, `verified`, `active` or `inactive`.
    pub status: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// The admin domain list with the count of certificates about to expire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminDomainList {
    pub data: Vec<AdminDomainDto>,
    pub pagination: Pagination,
    /// Active certificates expiring within 14 days without a successful renewal.
    pub certificates_expiring: i64,
}

/// Every custom domain with its state, last check and certificate expiry.
#[utoipa::path(get, path = "/api/v1/admin/domains", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    params(AdminDomainQuery), responses((status = 200, body = AdminDomainList), (status = 422, body = ErrorBody)))]
async fn admin_list_domains(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Query(q): Query<AdminDomainQuery>,
) -> ApiResult<Json<AdminDomainList>> {
    let status = q.status.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = status
        && !matches!(s, "pending" | "verified" | "active" | "inactive")
    {
        return Err(ApiError::invalid(
            "status",
            "invalid_status",
            format!("status: '{s}' is not one of pending, verified, active, inactive"),
        ));
    }
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(50)?;
    let (rows, total) = platform::list_custom_domains(&st.db, status, limit, offset).await?;
    let soon = crate::store::now_micros() + 14 * 86_400 * 1_000_000;
    let expiring = platform::certificates_expiring_before(&st.db, soon).await?;
    let data = rows
        .into_iter()
        .map(|r| AdminDomainDto {
            merchant_id: r.domain.tenant_id,
            certificate_expiring: r.domain.status == "active"
                && r.domain.cert_not_after.is_some_and(|t| t < soon),
            domain: DomainDto::from(r.domain, &st),
            merchant_name: r.tenant_name,
            merchant_subdomain: r.tenant_handle,
        })
        .collect();
    Ok(Json(AdminDomainList {
        data,
        pagination: Pagination::new(page, limit, total),
        certificates_expiring: expiring,
    }))
}

/// Re-check a custom domain now.
#[utoipa::path(post, path = "/api/v1/admin/domains/{id}/check", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    responses((status = 200, body = DomainDto), (status = 404, body = ErrorBody)))]
async fn admin_check_domain(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DomainDto>> {
    let d = st.domains.check_now(id).await.map_err(check_error)?;
    Ok(Json(DomainDto::from(d, &st)))
}

/// Revoke a custom domain: it stops routing, its certificate is dropped and checks stop
/// (the owner can add it again).
#[utoipa::path(post, path = "/api/v1/admin/domains/{id}/revoke", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    responses((status = 200, body = DomainDto), (status = 404, body = ErrorBody)))]
async fn admin_revoke_domain(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DomainDto>> {
    let d = platform::revoke_domain(&st.db, &admin.actor, id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::not_found("domain"),
            other => other.into(),
        })?;
    if let Some(c) = &st.domains.certs {
        c.remove(&d.host);
    }
    st.tenant_cache.invalidate();
    Ok(Json(DomainDto::from(d, &st)))
}

/// Query of the `ask` endpoint (Caddy sends `?domain=<name>`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AskQuery {
    pub domain: Option<String>,
}

/// Caddy on-demand TLS `ask`: 200 only for an active custom domain or the subdomain of a
/// live store, 404 otherwise (400 without `domain`), so a proxy in front of Souk never
/// requests certificates for arbitrary names.
#[utoipa::path(get, path = "/api/v1/tls/ask", tag = "ops",
    params(AskQuery), responses((status = 200, description = "a certificate may be issued"), (status = 404, body = ErrorBody)))]
async fn tls_ask(State(st): State<AppState>, Query(q): Query<AskQuery>) -> ApiResult<StatusCode> {
    let raw = q.domain.unwrap_or_default();
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(ApiError::invalid(
            "domain",
            "required",
            "domain: the query parameter domain=<host name> is required",
        ));
    }
    let refuse = || ApiError::not_found("an active domain with this name");
    let base = st.config.base_domain.as_str();
    if let Some(handle) = name.strip_suffix(base).and_then(|p| p.strip_suffix('.')) {
        if handle.contains('.') {
            return Err(refuse());
        }
        let t = platform::tenant_by_handle(&st.db, handle).await?;
        return match t {
            Some(t)
                if t.storefront_ready && matches!(t.status.as_str(), "active" | "suspended") =>
            {
                Ok(StatusCode::OK)
            }
            _ => Err(refuse()),
        };
    }
    if platform::active_custom_domain(&st.db, &name).await? {
        Ok(StatusCode::OK)
    } else {
        Err(refuse())
    }
}
