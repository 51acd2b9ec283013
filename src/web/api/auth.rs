//! Sign-in: login, refresh (rotating), logout, current user, set/change password.

use crate::auth::{
    check_password_policy, hash_password_async, random_token, token_hash, verify_password_async,
};
use crate::domain::Email;
use crate::store::users::{self, Membership, RefreshUse};
use crate::store::{new_id, now_micros};
use crate::web::AppState;
use crate::web::context::{AuthUser, ClientIp};
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(set_password))
        .routes(routes!(change_password))
        .routes(routes!(switch_tenant))
        .routes(routes!(forgot_password))
}

/// Refresh-token lifetime: 30 days.
const REFRESH_TTL_MICROS: i64 = 30 * 24 * 3600 * 1_000_000;

/// Body of `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
    /// Tenant to act for (must be a membership); default: the first membership.
    pub tenant_id: Option<Uuid>,
}

/// Tokens returned by login and refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT (HS256) for `Authorization: Bearer`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// Opaque, single-use refresh token (rotated on every use).
    pub refresh_token: String,
    /// The tenant the access token acts for, if any.
    pub tenant_id: Option<Uuid>,
    pub must_change_password: bool,
}

pub(crate) async fn issue(
    st: &AppState,
    user: &users::User,
    tenant: Option<Uuid>,
    family: Option<Uuid>,
) -> ApiResult<TokenResponse> {
    let family = family.unwrap_or_else(new_id);
    let access = st
        .keys
        .issue(
            user.id,
            user.is_platform_admin,
            tenant,
            user.must_change_password,
            Some(family),
        )
        .map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            ApiError::internal()
        })?;
    let refresh = random_token(32);
    users::insert_refresh_token(
        &st.db,
        user.id,
        &token_hash(&refresh),
        family,
        now_micros() + REFRESH_TTL_MICROS,
    )
    .await?;
    // The tenant travels with the refresh token so a refresh keeps the same tenant.
    let refresh = match tenant {
        Some(t) => format!("{refresh}.{t}"),
        None => refresh,
    };
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: st.keys.access_ttl,
        refresh_token: refresh,
        tenant_id: tenant,
        must_change_password: user.must_change_password,
    })
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid e-mail or password")
}

/// A throttling key for an e-mail as typed (bounded: unparseable input still counts,
/// but cannot grow the limiter's memory with huge keys).
fn limiter_key(kind: &str, email: &str) -> String {
    let e: String = email.trim().to_lowercase().chars().take(254).collect();
    format!("{kind}:{e}")
}

fn too_many_attempts(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed sign-in attempts; try again in {secs} seconds"),
    )
    .with_details(serde_json::json!({ "retry_after": secs }))
}

/// Sign in with e-mail and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<TokenResponse>, LoginRefused> {
    let account_key = limiter_key("acct", &body.email);
    let ip_key = format!("ip:{}", ip.as_deref().unwrap_or("unknown"));
    if let Some(wait) = st.login_limiter.check(&[&account_key, &ip_key]) {
        return Err(LoginRefused(too_many_attempts(wait), Some(wait)));
    }
    let fail = || {
        st.login_limiter
            .fail(&account_key, st.login_limiter.account);
        st.login_limiter.fail(&ip_key, st.login_limiter.ip);
        LoginRefused(invalid_credentials(), None)
    };
    let Ok(email) = Email::parse(&body.email) else {
        return Err(fail());
    };
    if body.password.len() > 256 {
        return Err(fail());
    }
    let user = users::user_by_email(&st.db, email.as_str()).await?;
    let Some(user) = user.filter(|u| u.password_hash.is_some()) else {
        // Same work as a real check, so timing does not reveal whether the e-mail exists.
        let _ = verify_password_async(&body.password, DUMMY_HASH).await;
        return Err(fail());
    };
    let hash = user.password_hash.as_deref().unwrap_or_default();
    if !verify_password_async(&body.password, hash).await {
        return Err(fail());
    }
    st.login_limiter.clear(&account_key);
    let memberships = users::memberships_of(&st.db, user.id).await?;
    let tenant = match body.tenant_id {
        Some(t) if memberships.iter().any(|m| m.tenant_id == t) || user.is_platform_admin => {
            Some(t)
        }
        Some(_) => return Err(ApiError::forbidden("you are not a member of this tenant").into()),
        None => memberships.first().map(|m| m.tenant_id),
    };
    Ok(Json(issue(&st, &user, tenant, None).await?))
}

/// A refused sign-in: the error, plus the `Retry-After` wait when rate limited.
pub struct LoginRefused(ApiError, Option<std::time::Duration>);

impl From<ApiError> for LoginRefused {
    fn from(e: ApiError) -> Self {
        LoginRefused(e, None)
    }
}

impl From<crate::store::StoreError> for LoginRefused {
    fn from(e: crate::store::StoreError) -> Self {
        LoginRefused(e.into(), None)
    }
}

impl axum::response::IntoResponse for LoginRefused {
    fn into_response(self) -> axum::response::Response {
        let mut res = self.0.into_response();
        if let Some(wait) = self.1
            && let Ok(v) = axum::http::HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        res
    }
}

/// A valid argon2id hash of a random password, used to equalize login timing.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0MNeuLFwkkX9SdFQ3aP8WnPO8zYCpEhcblsjSFWv+VM";

/// Body of refresh and logout.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    pub refresh_token: String,
}

fn split_refresh(token: &str) -> (String, Option<Uuid>) {
    match token.split_once('.') {
        Some((t, tenant)) => (t.to_string(), tenant.parse().ok()),
        None => (token.to_string(), None),
    }
}

/// Exchange a refresh token for new tokens. The old one stops working; presenting it
/// again revokes the whole session family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
async fn refresh(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<TokenResponse>> {
    let (raw, tenant) = split_refresh(&body.refresh_token);
    match users::use_refresh_token(&st.db, &token_hash(&raw)).await? {
        RefreshUse::Rotated { user, family } => {
            let user = users::user_by_id(&st.db, user)
                .await?
                .ok_or_else(|| ApiError::unauthorized("invalid refresh token"))?;
            // Membership is re-checked: a removed member cannot refresh into the tenant.
            let tenant = match tenant {
                Some(t)
                    if users::role_in(&st.db, user.id, t).await?.is_some()
                        || user.is_platform_admin =>
                {
                    Some(t)
                }
                _ => None,
            };
            Ok(Json(issue(&st, &user, tenant, Some(family)).await?))
        }
        RefreshUse::Reused => Err(ApiError::unauthorized(
            "refresh token already used; the session has been revoked",
        )),
        RefreshUse::Invalid => Err(ApiError::unauthorized("invalid or expired refresh token")),
    }
}

/// Revoke a refresh token and its session family.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshBody, responses((status = 204)))]
async fn logout(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<StatusCode> {
    let (raw, _) = split_refresh(&body.refresh_token);
    users::revoke_refresh_token(&st.db, &token_hash(&raw)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub is_platform_admin: bool,
    pub must_change_password: bool,
    pub active_tenant_id: Option<Uuid>,
    pub memberships: Vec<Membership>,
    /// Permissions (`resource.action`) held in the active tenant; empty without one.
    /// Clients use it to hide controls the role does not allow (the routes refuse anyway).
    pub permissions: Vec<String>,
}

/// Current user and their memberships.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)))]
async fn me(State(st): State<AppState>, user: AuthUser) -> ApiResult<Json<MeResponse>> {
    let u = users::user_by_id(&st.db, user.id())
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    let permissions = match user.claims.tid {
        Some(t) => match users::access_in(&st.db, u.id, t).await? {
            Some(a) => match (a.role, a.platform_role) {
                (Some(_), _) => a
                    .permissions
                    .as_deref()
                    .and_then(|p| serde_json::from_str::<Vec<String>>(p).ok())
                    .unwrap_or_default(),
                (None, Some(pr)) => crate::access::PlatformRole::parse(&pr)
                    .map(|r| r.tenant_permissions().to_strings())
                    .unwrap_or_default(),
                (None, None) => Vec::new(),
            },
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    Ok(Json(MeResponse {
        permissions,
        memberships: users::memberships_of(&st.db, u.id).await?,
        id: u.id,
        email: u.email,
        name: u.name,
        is_platform_admin: u.is_platform_admin,
        must_change_password: u.must_change_password,
        active_tenant_id: user.claims.tid,
    }))
}

/// Body of `POST /api/v1/auth/set-password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetPasswordBody {
    /// The one-time token from the welcome e-mail link.
    pub token: String,
    /// At least 8 characters.
    pub password: String,
}

/// Set a password with the one-time token of a welcome (or reset) e-mail.
#[utoipa::path(post, path = "/api/v1/auth/set-password", tag = "auth", request_body = SetPasswordBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_password(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<SetPasswordBody>,
) -> ApiResult<StatusCode> {
    set_password_with_token(&st, &body.token, &body.password, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shared by the JSON endpoint and the HTML form.
pub async fn set_password_with_token(
    st: &AppState,
    token: &str,
    password: &str,
    ip: Option<String>,
) -> ApiResult<Uuid> {
    check_password_policy(password)
        .map_err(|m| ApiError::invalid("password", "weak_password", m))?;
    let hash = hash_password_async(password)
        .await
        .map_err(|_| ApiError::internal())?;
    users::consume_password_token(&st.db, &token_hash(token.trim()), "set_password", &hash, ip)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::bad_request(
                "invalid_token",
                "this link is invalid, already used or expired",
            ),
            other => other.into(),
        })
}

/// Body of `POST /api/v1/auth/change-password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// Change the signed-in user's password (required after an initial password).
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordBody,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_password(
    State(st): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> ApiResult<StatusCode> {
    let u = users::user_by_id(&st.db, user.id())
        .await?
        .ok_or_else(invalid_credentials)?;
    let current_ok = match u.password_hash.as_deref() {
        Some(h) => verify_password_async(&body.current_password, h).await,
        None => false,
    };
    if !current_ok {
        return Err(ApiError::invalid(
            "current_password",
            "invalid_password",
            "current_password is wrong",
        ));
    }
    check_password_policy(&body.new_password)
        .map_err(|m| ApiError::invalid("new_password", "weak_password", m))?;
    let hash = hash_password_async(&body.new_password)
        .await
        .map_err(|_| ApiError::internal())?;
    let actor = user.actor(&u.email);
    users::set_password(&st.db, &actor, u.id, &hash, user.claims.sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/auth/switch-tenant`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SwitchTenantBody {
    pub tenant_id: Uuid,
}

/// Switch the active tenant: new tokens acting for another merchant the user belongs to
/// (see `GET /api/v1/auth/me` for the memberships). Errors: 403 when not a member.
#[utoipa::path(post, path = "/api/v1/auth/switch-tenant", tag = "auth", security(("bearer" = [])),
    request_body = SwitchTenantBody,
    responses((status = 200, body = TokenResponse), (status = 403, body = ErrorBody)))]
async fn switch_tenant(
    State(st): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<SwitchTenantBody>,
) -> ApiResult<Json<TokenResponse>> {
    let u = users::user_by_id(&st.db, user.id())
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    let member = users::role_in(&st.db, u.id, body.tenant_id)
        .await?
        .is_some();
    if !member && u.platform_role.is_none() {
        return Err(ApiError::forbidden("you are not a member of this tenant"));
    }
    Ok(Json(
        issue(&st, &u, Some(body.tenant_id), user.claims.sid).await?,
    ))
}

/// Body of `POST /api/v1/auth/forgot-password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ForgotPasswordBody {
    pub email: String,
}

/// Reset-link lifetime: 1 hour.
const RESET_TTL_MICROS: i64 = 3600 * 1_000_000;

/// Request a password-reset e-mail. Always 202, whether or not the account exists; the
/// e-mail (if any) carries a single-use link valid for one hour, used with
/// `POST /api/v1/auth/set-password`.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = ForgotPasswordBody,
    responses((status = 202), (status = 429, body = ErrorBody)))]
async fn forgot_password(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<ForgotPasswordBody>,
) -> Result<StatusCode, LoginRefused> {
    let ip_key = format!("reset-ip:{}", ip.as_deref().unwrap_or("unknown"));
    let account_key = limiter_key("reset", &body.email);
    if let Some(wait) = st.login_limiter.check(&[&ip_key, &account_key]) {
        return Err(LoginRefused(too_many_attempts(wait), Some(wait)));
    }
    // Every request counts, so the mailbox cannot be flooded.
    st.login_limiter
        .fail(&account_key, st.login_limiter.account);
    st.login_limiter.fail(&ip_key, st.login_limiter.ip);
    if let Ok(email) = Email::parse(&body.email)
        && let Some(user) = users::user_by_email(&st.db, email.as_str()).await?
    {
        let token = random_token(32);
        let text = format!(
            "Hello{name},\n\nSomeone (hopefully you) asked to reset the password of your Souk account.\n\nSet a new password (the link works once and expires in 1 hour):\n{public}/set-password?token={token}\n\nIf you did not ask for this, ignore this e-mail; your password is unchanged.\n\n— Souk",
            name = user
                .name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            public = st.config.public_url,
        );
        let payload = crate::store::to_json(&crate::mail::EmailMessage {
            to: user.email.clone(),
            to_name: user.name.clone(),
            subject: "Reset your Souk password".into(),
            text,
        });
        users::create_password_token(
            &st.db,
            user.id,
            &token_hash(&token),
            now_micros() + RESET_TTL_MICROS,
            payload,
        )
        .await?;
        st.provisioner.wake();
    }
    Ok(StatusCode::ACCEPTED)
}
