//! Request context, resolved once per request: the tenant (middleware) and the caller
//! (extractors). Handlers declare what they need in their signature.
//!
//! Tenant resolution order for a request:
//! 1. path prefix `/s/{handle}/…` (the prefix is stripped and kept as `base_path`);
//! 2. `Host` equal to a custom domain (exact match);
//! 3. `Host` = `{handle}.{base_domain}`;
//! 4. for authenticated merchant API calls: `X-Tenant-ID`, else the token's tenant claim,
//!    else the host's tenant — and the caller must be a member of it.

use super::AppState;
use super::error::ApiError;
use crate::access::{Need, Permission, PermissionSet, PlatformNeed, PlatformRole};
use crate::auth::{Claims, token_hash};
use crate::store::audit::Actor;
use crate::store::platform::{self, TenantRef};
use crate::store::{TenantDb, access, users};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The tenant a request's host or path names.
#[derive(Debug, Clone)]
pub struct HostTenant {
    pub tenant: Arc<TenantRef>,
    /// `""` on the tenant's own host, `/s/{handle}` when addressed by path.
    pub base_path: String,
}

/// A short-lived cache of host/handle → tenant lookups (positive and negative).
#[derive(Default)]
pub struct TenantCache {
    map: RwLock<HashMap<String, CacheEntry>>,
}

/// A cached lookup result (None = no such tenant), when it was stored, and whether a
/// request is looking it up again since it expired.
type CacheEntry = (Option<Arc<TenantRef>>, Instant, AtomicBool);

const CACHE_TTL: Duration = Duration::from_secs(5);

impl TenantCache {
    /// The cached lookup. Past [`CACHE_TTL`] the first caller gets `None` and looks the
    /// host up again; the others keep the previous answer until it has (at most one more
    /// TTL), so an expiry never sends every concurrent request to the database.
    fn get(&self, key: &str) -> Option<Option<Arc<TenantRef>>> {
        let map = self.map.read().ok()?;
        let (v, at, refreshing) = map.get(key)?;
        let age = at.elapsed();
        if age < CACHE_TTL
            || (age < 2 * CACHE_TTL && refreshing.swap(true, std::sync::atomic::Ordering::AcqRel))
        {
            return Some(v.clone());
        }
        None
    }
    fn put(&self, key: String, v: Option<Arc<TenantRef>>) {
        if let Ok(mut map) = self.map.write() {
            if map.len() > 100_000 {
                map.clear();
            }
            map.insert(key, (v, Instant::now(), AtomicBool::new(false)));
        }
    }
    /// Drops the entries that resolve to `tenant` (another node changed its status,
    /// theme or settings); lookups that found nothing stay.
    pub fn invalidate_tenant(&self, tenant: uuid::Uuid) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, (v, _, _)| v.as_ref().is_none_or(|t| t.id != tenant));
        }
    }

    /// Drops every cached entry (after a status, domain or theme change).
    pub fn invalidate(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}

pub(crate) fn host_of(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().host().map(str::to_string))?;
    let host = if raw.starts_with('[') {
        raw.split(']')
            .next()
            .map(|s| format!("{s}]"))
            .unwrap_or(raw.clone())
    } else {
        raw.split(':').next().unwrap_or("").to_string()
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

async fn lookup(st: &AppState, key: String) -> Result<Option<Arc<TenantRef>>, ApiError> {
    if let Some(v) = st.tenant_cache.get(&key) {
        return Ok(v);
    }
    let found = match key.split_once(':') {
        Some(("h", handle)) => platform::tenant_by_handle(&st.db, handle).await?,
        Some(("d", host)) => platform::tenant_by_custom_domain(&st.db, host).await?,
        _ => None,
    };
    // Only merchants with a deployed storefront are reachable by host or path.
    let found = found
        .filter(|t| matches!(t.status.as_str(), "active" | "suspended") && t.storefront_ready)
        .map(Arc::new);
    st.tenant_cache.put(key, found.clone());
    Ok(found)
}

fn not_found_response(path: &str, what: &str) -> Response {
    if path.starts_with("/api/") {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            format!("no store is served at {what}"),
        )
        .into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::response::Html(super::storefront::platform_not_found_page(what)),
        )
            .into_response()
    }
}

/// Middleware: resolves the host/path tenant once and stores a [`HostTenant`] in the
/// request extensions. Unknown tenant → 404 (JSON under `/api/`, a page otherwise).
pub async fn resolve_tenant(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // 1. path prefix /s/{handle}/...
    if let Some(rest) = path.strip_prefix("/s/") {
        let (handle, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let handle = handle.to_ascii_lowercase();
        match lookup(&st, format!("h:{handle}")).await {
            Ok(Some(t)) => {
                let new_path = if tail.is_empty() { "/" } else { tail };
                let pq = match req.uri().query() {
                    Some(q) => format!("{new_path}?{q}"),
                    None => new_path.to_string(),
                };
                if let Ok(uri) = pq.parse::<Uri>() {
                    *req.uri_mut() = uri;
                }
                req.extensions_mut().insert(HostTenant {
                    tenant: t,
                    base_path: format!("/s/{handle}"),
                });
                return next.run(req).await;
            }
            Ok(None) => return not_found_response(tail, &format!("/s/{handle}/")),
            Err(e) => return e.into_response(),
        }
    }
    let Some(host) = host_of(&req) else {
        return next.run(req).await;
    };
    let base = st.config.base_domain.as_str();
    let is_platform_host = host == base
        || host.parse::<std::net::IpAddr>().is_ok()
        || host.starts_with('[')
        || st.config.platform_hosts.iter().any(|h| h == &host);
    if is_platform_host {
        return next.run(req).await;
    }
    // `{handle}.{base}` is a platform subdomain; any other host is a custom domain.
    let key = match host.strip_suffix(base).and_then(|p| p.strip_suffix('.')) {
        Some(sub) if !sub.contains('.') => format!("h:{sub}"),
        _ => format!("d:{host}"),
    };
    match lookup(&st, key).await {
        Ok(Some(t)) => {
            req.extensions_mut().insert(HostTenant {
                tenant: t,
                base_path: String::new(),
            });
            next.run(req).await
        }
        Ok(None) => not_found_response(&path, &host),
        Err(e) => e.into_response(),
    }
}

/// An authenticated caller (valid, unexpired access token in `Authorization: Bearer`).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub claims: Claims,
    /// When the credential expires (seconds since the epoch): the access token's `exp`,
    /// or for a WebSocket ticket the `exp` of the access token it was issued for.
    pub expires_at: i64,
    /// Client address (see [`client_ip`]).
    pub ip: Option<String>,
}

impl AuthUser {
    pub fn id(&self) -> Uuid {
        self.claims.sub
    }
}

/// The client's IP address: the TCP peer, or the first `X-Forwarded-For` entry when the
/// operator runs behind a proxy (`--trust-proxy`).
pub fn client_ip(parts: &Parts, st: &AppState) -> Option<String> {
    if st.config.trust_proxy
        && let Some(f) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
    {
        return Some(f.to_string());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <access token>"))?;
    header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("Authorization header must be 'Bearer <access token>'")
        })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        // The event WebSocket also takes a short-lived ticket in the query string.
        if parts.headers.get(header::AUTHORIZATION).is_none()
            && parts.uri.path().ends_with("/events/ws")
            && let Some(ticket) = parts.uri.query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "ticket")
                    .map(|(_, v)| v.into_owned())
            })
        {
            let (claims, expires_at) = st.keys.verify_ticket_session(&ticket).map_err(|_| {
                ApiError::unauthorized("the WebSocket ticket is invalid or expired")
            })?;
            return Ok(AuthUser {
                claims,
                expires_at,
                ip: client_ip(parts, st),
            });
        }
        let token = bearer(parts)?;
        let claims = st
            .keys
            .verify(token)
            .map_err(|_| ApiError::unauthorized("the access token is invalid or expired"))?;
        Ok(AuthUser {
            expires_at: claims.exp,
            claims,
            ip: client_ip(parts, st),
        })
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    /// `None` without an `Authorization` header; an invalid token is still an error.
    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            return Ok(None);
        }
        <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, st)
            .await
            .map(Some)
    }
}

impl AuthUser {
    /// The audit actor for this user, labelled with their e-mail.
    pub fn actor(&self, email: &str) -> Actor {
        Actor {
            kind: "user",
            id: Some(self.id()),
            label: email.to_string(),
            ip: self.ip.clone(),
        }
    }
}

/// The client's IP address (see [`client_ip`]); never fails.
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, st)))
    }
}

/// Refuses tokens issued while an initial password was still to be changed
/// (`POST /api/v1/auth/change-password`, then sign in again).
fn require_password_changed(user: &AuthUser) -> Result<(), ApiError> {
    if user.claims.mcp {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "password_change_required",
            "change your initial password (POST /api/v1/auth/change-password), then sign in again",
        ));
    }
    Ok(())
}

/// A platform staff member (super admin or support) holding permission `P`.
/// 403 for anyone else; the role is re-read from the database on every request.
pub struct Platform<P: PlatformNeed> {
    pub user: AuthUser,
    pub role: PlatformRole,
    pub actor: Actor,
    _p: PhantomData<P>,
}

impl<P: PlatformNeed> FromRequestParts<AppState> for Platform<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, st).await?;
        require_password_changed(&user)?;
        let denied = || ApiError::forbidden("this endpoint requires platform staff");
        let u = users::user_by_id(&st.db, user.id())
            .await?
            .ok_or_else(denied)?;
        let role = u
            .platform_role
            .as_deref()
            .and_then(|r| PlatformRole::parse(r).ok())
            .ok_or_else(denied)?;
        if !role.allows(P::PERMISSION) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                format!(
                    "this action needs the '{}' permission",
                    P::PERMISSION.as_str()
                ),
            )
            .with_details(
                serde_json::json!({ "required": P::PERMISSION.as_str(), "role": role.as_str() }),
            ));
        }
        let actor = Actor {
            kind: "user",
            id: Some(u.id),
            label: u.email,
            ip: user.ip.clone(),
        };
        Ok(Platform {
            user,
            role,
            actor,
            _p: PhantomData,
        })
    }
}

/// A caller acting for one tenant: a member user, platform staff, or a secret API key
/// (`Authorization: Bearer sk_live_…`), with the permissions of its role there.
///
/// Tenant selection for users: `X-Tenant-ID`, else the token's tenant claim, else the
/// host's tenant; the caller must be a member (or platform staff). An API key is bound to
/// its own tenant: naming any other tenant is a 403. Non-members get the same 403 whether
/// or not the tenant exists.
pub struct Merchant {
    /// Who acts (for the audit log).
    pub actor: Actor,
    /// The signed-in user, `None` for an API key.
    pub user_id: Option<Uuid>,
    /// Role key in the tenant (`owner`, `editor`, a custom key), or `platform:<role>`.
    pub role: String,
    pub permissions: PermissionSet,
    pub tenant: Arc<TenantRef>,
    pub scope: TenantDb,
    /// What authenticated the caller, for long-lived streams to re-check ([`recheck`]).
    pub credential: Credential,
    /// When the credential expires (seconds since the epoch); `None` for API keys.
    pub expires_at: Option<i64>,
}

/// The credential behind a [`Merchant`], as an open event stream re-checks it when the
/// tenant's access changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A user (a member, or platform staff) acting in `tenant`.
    User { user: Uuid, tenant: Uuid },
    /// A secret API key of `tenant`.
    ApiKey { key: Uuid, tenant: Uuid },
}

/// The role key and permissions of a user in a tenant: their membership's role, else
/// their platform staff role; `None` for neither. The second value says platform staff.
fn user_role(u: &users::TenantAccess) -> Option<(String, PermissionSet, bool)> {
    match &u.role {
        Some(r) => {
            let list: Vec<String> = u
                .permissions
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            Some((r.clone(), PermissionSet::from_strings(&list), false))
        }
        None => u
            .platform_role
            .as_deref()
            .and_then(|r| PlatformRole::parse(r).ok())
            .map(|pr| {
                (
                    format!("platform:{}", pr.as_str()),
                    pr.tenant_permissions(),
                    true,
                )
            }),
    }
}

/// Re-reads what a credential may do now: the member's role (or staff role) and its
/// permissions, or the API key (unrevoked) and its role's permissions, and the tenant's
/// status. `None` when access is withdrawn: not a member any more, key revoked, tenant
/// gone or suspended (platform staff keep access to suspended tenants).
pub async fn recheck(
    db: &crate::store::Db,
    credential: &Credential,
) -> crate::store::StoreResult<Option<PermissionSet>> {
    let (tenant, found) = match *credential {
        Credential::User { user, tenant } => {
            let found = users::access_in(db, user, tenant)
                .await?
                .as_ref()
                .and_then(user_role)
                .map(|(_, p, staff)| (p, staff));
            (tenant, found)
        }
        Credential::ApiKey { key, tenant } => {
            let found = match access::api_key_role(db, key).await? {
                Some(role) => Some((
                    access::role_permissions(db, tenant, &role)
                        .await?
                        .unwrap_or_default(),
                    false,
                )),
                None => None,
            };
            (tenant, found)
        }
    };
    let Some((perms, staff)) = found else {
        return Ok(None);
    };
    let Some(t) = platform::tenant_by_id(db, tenant).await? else {
        return Ok(None);
    };
    Ok((staff || t.status != "suspended").then_some(perms))
}

fn header_tenant(parts: &Parts) -> Result<Option<Uuid>, ApiError> {
    match parts.headers.get("x-tenant-id") {
        Some(v) => {
            let bad = || ApiError::bad_request("invalid_tenant_id", "X-Tenant-ID must be a UUID");
            let s = v.to_str().map_err(|_| bad())?;
            Ok(Some(Uuid::parse_str(s.trim()).map_err(|_| bad())?))
        }
        None => Ok(None),
    }
}

impl FromRequestParts<AppState> for Merchant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let denied = || ApiError::forbidden("you are not a member of this tenant");
        let host_tenant = parts.extensions.get::<HostTenant>().map(|h| h.tenant.id);
        let asked = header_tenant(parts)?;
        let ip = client_ip(parts, st);
        if bearer(parts).is_ok_and(|t| t.starts_with(crate::auth::API_KEY_PREFIX_PUBLISHABLE)) {
            return Err(ApiError::unauthorized(
                "publishable keys only read the Store API; use a secret key (sk_live_…) or a user token",
            ));
        }
        if let Ok(token) = bearer(parts)
            && token.starts_with(crate::auth::API_KEY_PREFIX_SECRET)
        {
            let key = access::api_key_by_hash(&st.db, &token_hash(token))
                .await?
                .filter(|k| k.kind == "secret")
                .ok_or_else(|| ApiError::unauthorized("the API key is invalid or revoked"))?;
            if asked.is_some_and(|t| t != key.tenant_id)
                || host_tenant.is_some_and(|t| t != key.tenant_id)
            {
                return Err(denied());
            }
            let role = key.role.clone().unwrap_or_default();
            let permissions = access::role_permissions(&st.db, key.tenant_id, &role)
                .await?
                .unwrap_or_default();
            let tenant = platform::tenant_by_id(&st.db, key.tenant_id)
                .await?
                .ok_or_else(denied)?;
            return Ok(Merchant {
                credential: Credential::ApiKey {
                    key: key.id,
                    tenant: tenant.id,
                },
                expires_at: None,
                actor: Actor {
                    kind: "api_key",
                    id: Some(key.id),
                    label: key.label,
                    ip,
                },
                user_id: None,
                role,
                permissions,
                scope: TenantDb::new(st.db.clone(), tenant.id),
                tenant: Arc::new(tenant),
            });
        }
        let user = AuthUser::from_request_parts(parts, st).await?;
        require_password_changed(&user)?;
        let tenant_id = asked.or(user.claims.tid).or(host_tenant).ok_or_else(|| {
            ApiError::bad_request(
                "tenant_required",
                "no tenant selected: send X-Tenant-ID or use a token issued for a tenant",
            )
        })?;
        // When the host names a tenant, the credentials must be for that same tenant.
        if host_tenant.is_some_and(|h| h != tenant_id) {
            return Err(denied());
        }
        let u = users::access_in(&st.db, user.id(), tenant_id)
            .await?
            .ok_or_else(denied)?;
        let (role, permissions, _) = user_role(&u).ok_or_else(denied)?;
        let tenant = platform::tenant_by_id(&st.db, tenant_id)
            .await?
            .ok_or_else(denied)?;
        Ok(Merchant {
            credential: Credential::User {
                user: user.id(),
                tenant: tenant.id,
            },
            expires_at: Some(user.expires_at),
            actor: Actor {
                kind: "user",
                id: Some(user.id()),
                label: u.email,
                ip,
            },
            user_id: Some(user.id()),
            role,
            permissions,
            scope: TenantDb::new(st.db.clone(), tenant.id),
            tenant: Arc::new(tenant),
        })
    }
}

impl Merchant {
    /// 403 `merchant_suspended` for a write (any method but `GET`, `HEAD`, `OPTIONS`) by a
    /// member or API key of a suspended merchant; platform staff pass.
    pub fn refuse_suspended_write(&self, method: &axum::http::Method) -> Result<(), ApiError> {
        use axum::http::Method;
        let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if read || self.tenant.status != "suspended" || self.role.starts_with("platform:") {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "merchant_suspended",
            format!(
                "{} is suspended: its data can be read and exported, but not changed",
                self.tenant.name
            ),
        )
        .with_details(serde_json::json!({ "status": "suspended" })))
    }

    /// 403 `permission_denied` (details name the permission and role) unless granted.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.permissions.allows(p) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!(
                "your role ('{}') lacks the '{}' permission",
                self.role,
                p.as_str()
            ),
        )
        .with_details(serde_json::json!({ "required": p.as_str(), "role": self.role })))
    }
}

/// A [`Merchant`] holding permission `P`: handlers declare their permission with it
/// (`Authorized<perm::ProductsEdit>`). Refusal: 403 `permission_denied`.
///
/// A suspended merchant's members and API keys keep reading (`GET`, `HEAD`), but every
/// other method is refused with 403 `merchant_suspended` before the body is read;
/// platform staff acting in the tenant are not affected (they suspend and reactivate).
pub struct Authorized<P: Need> {
    pub merchant: Merchant,
    _p: PhantomData<P>,
}

impl<P: Need> std::ops::Deref for Authorized<P> {
    type Target = Merchant;
    fn deref(&self) -> &Merchant {
        &self.merchant
    }
}

impl<P: Need> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let merchant = Merchant::from_request_parts(parts, st).await?;
        merchant.require(P::PERMISSION)?;
        merchant.refuse_suspended_write(&parts.method)?;
        Ok(Authorized {
            merchant,
            _p: PhantomData,
        })
    }
}

/// The public storefront tenant (Store API): from the host or path, or from a
/// publishable key (`X-Publishable-Key: pk_live_…`) for calls to the platform host.
/// A key of another tenant than the host's is a 403. 503 unless the store is active,
/// and 503 `store_not_published` (with `Retry-After`) while the storefront shows
/// "coming soon" (setup guide opened, store not published), as its HTML pages do.
pub struct StoreTenant {
    pub host: HostTenant,
    pub scope: TenantDb,
}

/// Page-cache key marking a store whose Store API is open (not "coming soon").
const STORE_OPEN_KEY: &str = "meta:store-api-open";

async fn publishable_tenant(
    parts: &Parts,
    st: &AppState,
) -> Result<Option<Arc<TenantRef>>, ApiError> {
    let Some(v) = parts.headers.get("x-publishable-key") else {
        return Ok(None);
    };
    let invalid = || ApiError::unauthorized("the publishable key is invalid or revoked");
    let key = v.to_str().map_err(|_| invalid())?.trim();
    if !key.starts_with(crate::auth::API_KEY_PREFIX_PUBLISHABLE) {
        return Err(ApiError::unauthorized(
            "X-Publishable-Key takes a publishable key (pk_live_…); never send a secret key to a browser",
        ));
    }
    let k = access::api_key_by_hash(&st.db, &token_hash(key))
        .await?
        .filter(|k| k.kind == "publishable")
        .ok_or_else(invalid)?;
    let t = platform::tenant_by_id(&st.db, k.tenant_id)
        .await?
        .ok_or_else(invalid)?;
    Ok(Some(Arc::new(t)))
}

impl FromRequestParts<AppState> for StoreTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let by_key = publishable_tenant(parts, st).await?;
        let by_host = parts.extensions.get::<HostTenant>().cloned();
        let host = match (by_host, by_key) {
            (Some(h), Some(k)) if h.tenant.id != k.id => {
                return Err(ApiError::forbidden(
                    "this publishable key belongs to another store",
                ));
            }
            (Some(h), _) => Some(h),
            (None, Some(k)) => Some(HostTenant {
                tenant: k,
                base_path: String::new(),
            }),
            (None, None) => None,
        };
        let host = host.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "tenant_not_found",
                "the Store API is served on a store's host (handle.base-domain or custom domain) or under /s/{handle}/",
            )
        })?;
        if host.tenant.status != "active" {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "this store is currently unavailable",
            ));
        }
        let scope = TenantDb::new(st.db.clone(), host.tenant.id);
        // An open store is remembered in the page cache, which every change of the
        // setup guide (and the publication) clears; "coming soon" is never remembered,
        // so a publication opens the API at once.
        if st.page_cache.get(host.tenant.id, STORE_OPEN_KEY).is_none() {
            if scope.storefront_coming_soon().await? {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_not_published",
                    format!("{} is coming soon: the store is not published yet", host.tenant.name),
                )
                .with_details(serde_json::json!({ "retry_after": super::storefront::COMING_SOON_RETRY_AFTER }))
                .with_retry_after(super::storefront::COMING_SOON_RETRY_AFTER));
            }
            st.page_cache
                .put_setting(host.tenant.id, STORE_OPEN_KEY, Default::default());
        }
        Ok(StoreTenant { scope, host })
    }
}
