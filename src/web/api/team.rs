//! Team management for a tenant: members, roles, invitations, API keys and the tenant's
//! audit log. Accepting an invitation is public (the token is the credential).
//!
//! Escalation rule: nobody can grant, through a role, an invitation or an API key, a
//! permission they do not hold themselves (so a Manager cannot invite an Owner).

use super::{ListResponse, PageQuery, Pagination, req_text};
use crate::access::{Permission, PermissionSet, perm};
use crate::auth::{
    API_KEY_PREFIX_PUBLISHABLE, API_KEY_PREFIX_SECRET, check_password_policy, hash_password_async,
    random_token, token_hash,
};
use crate::domain::Email;
use crate::store::access::{self, ApiKey, Invitation, Joiner, Role};
use crate::store::audit::{AuditEntry, AuditFilter};
use crate::store::{micros_to_rfc3339, now_micros};
use crate::web::AppState;
use crate::web::context::{AuthUser, Authorized, ClientIp, Merchant};
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_members))
        .routes(routes!(change_member_role, remove_member))
        .routes(routes!(list_invitations, invite))
        .routes(routes!(revoke_invitation))
        .routes(routes!(resend_invitation))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(update_role, delete_role))
        .routes(routes!(list_permissions))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(tenant_audit_log))
        .routes(routes!(inspect_invitation))
        .routes(routes!(accept_invitation))
}

/// Invitation lifetime: 7 days.
const INVITATION_TTL_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// A team member as the API returns it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberDto {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    /// RFC 3339.
    pub joined_at: String,
}

/// List the team's members.
#[utoipa::path(get, path = "/api/v1/team/members", tag = "team", security(("bearer" = ["team.view"])),
    responses((status = 200, body = Vec<MemberDto>), (status = 403, body = ErrorBody)))]
async fn list_members(m: Authorized<perm::TeamView>) -> ApiResult<Json<Vec<MemberDto>>> {
    let list = m.scope.list_members().await?;
    Ok(Json(
        list.into_iter()
            .map(|x| MemberDto {
                joined_at: micros_to_rfc3339(x.joined_micros),
                user_id: x.user_id,
                email: x.email,
                name: x.name,
                role: x.role,
            })
            .collect(),
    ))
}

/// Loads `key` and checks the caller may hand it out (it grants nothing the caller lacks).
async fn grantable_role(m: &Merchant, key: &str, field: &str) -> ApiResult<Role> {
    let role = m.scope.role(key).await?.ok_or_else(|| {
        ApiError::invalid(
            field,
            "unknown_role",
            format!("{field}: unknown role '{key}'"),
        )
    })?;
    if !m.permissions.covers(role.permission_set()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role_not_grantable",
            format!("you cannot grant the role '{key}': it has permissions you do not hold"),
        )
        .with_details(json!({ "field": field, "role": key })));
    }
    Ok(role)
}

/// Refuses changes to members whose role holds permissions the caller lacks
/// (a custom role with `team.manage` cannot demote an Owner).
async fn check_outranks(m: &Merchant, user: Uuid) -> ApiResult<()> {
    let target = m
        .scope
        .member_role(user)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let perms = m
        .scope
        .role(&target)
        .await?
        .map(|r| r.permission_set())
        .unwrap_or_default();
    if !m.permissions.covers(perms) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!(
                "you cannot change a member whose role ('{}') has permissions you do not hold",
                target
            ),
        ));
    }
    Ok(())
}

/// Body of a member role change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// Role key, e.g. `manager`.
    pub role: String,
}

/// Change a member's role. The last Owner cannot be demoted (409 `last_owner`).
#[utoipa::path(patch, path = "/api/v1/team/members/{user_id}", tag = "team", security(("bearer" = ["team.manage"])),
    request_body = RoleChange,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_member_role(
    m: Authorized<perm::TeamManage>,
    Path(user): Path<Uuid>,
    ApiJson(b): ApiJson<RoleChange>,
) -> ApiResult<StatusCode> {
    let role = grantable_role(&m, b.role.trim(), "role").await?;
    check_outranks(&m, user).await?;
    m.scope
        .change_member_role(&m.actor, user, &role.key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member. Their tokens stop working for this tenant at once. The last Owner
/// cannot be removed (409 `last_owner`).
#[utoipa::path(delete, path = "/api/v1/team/members/{user_id}", tag = "team", security(("bearer" = ["team.remove"])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_member(
    m: Authorized<perm::TeamRemove>,
    Path(user): Path<Uuid>,
) -> ApiResult<StatusCode> {
    check_outranks(&m, user).await?;
    m.scope.remove_member(&m.actor, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List invitations (newest first, with their status).
#[utoipa::path(get, path = "/api/v1/team/invitations", tag = "team", security(("bearer" = ["team.invite"])),
    responses((status = 200, body = Vec<Invitation>)))]
async fn list_invitations(m: Authorized<perm::TeamInvite>) -> ApiResult<Json<Vec<Invitation>>> {
    Ok(Json(m.scope.list_invitations().await?))
}

/// Body of an invitation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    pub email: String,
    /// Role key (default `viewer`).
    pub role: Option<String>,
}

async fn send_invitation(
    st: &AppState,
    m: &Merchant,
    email: &Email,
    role: &Role,
) -> ApiResult<Invitation> {
    let max_seats = crate::control::plan_limit(&st.db, m.tenant.id, "max_staff").await?;
    let token = random_token(32);
    let link = format!("{}/invitations/accept?token={token}", st.config.public_url);
    let shop = m.tenant.name.clone();
    let (to, role_name, inviter) = (email.to_string(), role.name.clone(), m.actor.label.clone());
    let inv = m
        .scope
        .create_invitation(
            &m.actor,
            email.as_str(),
            &role.key,
            &token_hash(&token),
            now_micros() + INVITATION_TTL_MICROS,
            max_seats,
            move |_| {
                crate::store::to_json(&crate::mail::EmailMessage {
                    to,
                    to_name: None,
                    subject: format!("You are invited to join {shop} on Souk"),
                    text: format!(
                        "Hello,\n\n{inviter} invited you to join \"{shop}\" on Souk as {role_name}.\n\nAccept the invitation (the link works once and expires in 7 days):\n{link}\n\nIf you already have a Souk account, sign in first and you will join with one click.\n\n— Souk"
                    ),
                })
            },
        )
        .await?;
    st.provisioner.wake();
    Ok(inv)
}

/// Invite someone by e-mail with a role. The e-mail carries a single-use link valid for
/// 7 days. Pending invitations count against the plan's seat limit.
#[utoipa::path(post, path = "/api/v1/team/invitations", tag = "team", security(("bearer" = ["team.invite"])),
    request_body = InviteBody,
    responses((status = 201, body = Invitation), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn invite(
    State(st): State<AppState>,
    m: Authorized<perm::TeamInvite>,
    ApiJson(b): ApiJson<InviteBody>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let email = Email::parse(&b.email).map_err(|e| ApiError::field("email", e))?;
    let role = grantable_role(&m, b.role.as_deref().unwrap_or("viewer").trim(), "role").await?;
    let inv = send_invitation(&st, &m, &email, &role).await?;
    Ok((StatusCode::CREATED, Json(inv)))
}

/// Resend an invitation: a new link is e-mailed and the old one stops working.
#[utoipa::path(post, path = "/api/v1/team/invitations/{id}/resend", tag = "team", security(("bearer" = ["team.invite"])),
    responses((status = 201, body = Invitation), (status = 404, body = ErrorBody)))]
async fn resend_invitation(
    State(st): State<AppState>,
    m: Authorized<perm::TeamInvite>,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let old = m
        .scope
        .pending_invitation(id)
        .await
        .map_err(|_| ApiError::not_found("pending invitation"))?;
    let email = Email::parse(&old.email).map_err(|e| ApiError::field("email", e))?;
    let role = grantable_role(&m, &old.role, "role").await?;
    let inv = send_invitation(&st, &m, &email, &role).await?;
    Ok((StatusCode::CREATED, Json(inv)))
}

/// Revoke a pending invitation (its link stops working).
#[utoipa::path(delete, path = "/api/v1/team/invitations/{id}", tag = "team", security(("bearer" = ["team.invite"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_invitation(
    m: Authorized<perm::TeamInvite>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .revoke_invitation(&m.actor, id)
        .await
        .map_err(|_| ApiError::not_found("pending invitation"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// List the tenant's roles (default and custom) with their permissions.
#[utoipa::path(get, path = "/api/v1/roles", tag = "team", security(("bearer" = ["team.view"])),
    responses((status = 200, body = Vec<Role>)))]
async fn list_roles(m: Authorized<perm::TeamView>) -> ApiResult<Json<Vec<Role>>> {
    Ok(Json(m.scope.list_roles().await?))
}

/// A permission as listed by `GET /api/v1/permissions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PermissionDto {
    /// `resource.action`.
    pub key: &'static str,
    /// Does the caller hold it?
    pub granted: bool,
}

/// Every permission a role can hold, and whether the caller holds it.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "team", security(("bearer" = [])),
    responses((status = 200, body = Vec<PermissionDto>)))]
async fn list_permissions(m: Merchant) -> ApiResult<Json<Vec<PermissionDto>>> {
    Ok(Json(
        Permission::ALL
            .iter()
            .map(|p| PermissionDto {
                key: p.as_str(),
                granted: m.permissions.allows(*p),
            })
            .collect(),
    ))
}

/// Body of a custom role.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// Display name, 1–64 characters.
    pub name: String,
    /// Stable key (lowercase letters, digits, `-`, `_`); derived from the name if omitted.
    pub key: Option<String>,
    /// `resource.action` strings from `GET /api/v1/permissions`.
    pub permissions: Vec<String>,
}

fn parse_permissions(m: &Merchant, list: &[String]) -> ApiResult<PermissionSet> {
    if list.len() > 64 {
        return Err(ApiError::invalid(
            "permissions",
            "too_many",
            "permissions: at most 64 entries",
        ));
    }
    let unknown: Vec<&str> = list
        .iter()
        .map(String::as_str)
        .filter(|p| Permission::parse(p).is_err())
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::invalid(
            "permissions",
            "unknown_permission",
            format!("permissions: unknown permission(s) {}", unknown.join(", ")),
        )
        .with_details(json!({ "field": "permissions", "unknown": unknown })));
    }
    let set = PermissionSet::from_strings(list);
    if !m.permissions.covers(set) {
        let missing: Vec<&str> = set
            .to_vec()
            .into_iter()
            .filter(|p| !m.permissions.allows(*p))
            .map(|p| p.as_str())
            .collect();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role_not_grantable",
            format!(
                "you cannot grant permissions you do not hold: {}",
                missing.join(", ")
            ),
        )
        .with_details(json!({ "field": "permissions", "missing": missing })));
    }
    Ok(set)
}

fn role_key(raw: Option<&str>, name: &str) -> ApiResult<String> {
    let key = match raw.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => k.to_string(),
        None => crate::domain::slugify(name, 40).replace('-', "_"),
    };
    let ok = !key.is_empty()
        && key.len() <= 40
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(ApiError::invalid(
            "key",
            "invalid_key",
            "key: 1–40 characters among a–z, 0–9, '-' and '_'",
        ));
    }
    Ok(key)
}

/// Create a custom role from the permission list.
#[utoipa::path(post, path = "/api/v1/roles", tag = "team", security(("bearer" = ["team.manage"])),
    request_body = RoleBody,
    responses((status = 201, body = Role), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_role(
    m: Authorized<perm::TeamManage>,
    ApiJson(b): ApiJson<RoleBody>,
) -> ApiResult<(StatusCode, Json<Role>)> {
    let name = req_text("name", &b.name, 64)?;
    let key = role_key(b.key.as_deref(), &name)?;
    let perms = parse_permissions(&m, &b.permissions)?;
    let role = m.scope.create_role(&m.actor, &key, &name, perms).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Replace a custom role's name and permissions (default roles cannot be changed).
#[utoipa::path(put, path = "/api/v1/roles/{key}", tag = "team", security(("bearer" = ["team.manage"])),
    request_body = RoleBody,
    responses((status = 200, body = Role), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_role(
    m: Authorized<perm::TeamManage>,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<RoleBody>,
) -> ApiResult<Json<Role>> {
    let name = req_text("name", &b.name, 64)?;
    let perms = parse_permissions(&m, &b.permissions)?;
    Ok(Json(
        m.scope.update_role(&m.actor, &key, &name, perms).await?,
    ))
}

/// Delete a custom role that no member, invitation or API key uses.
#[utoipa::path(delete, path = "/api/v1/roles/{key}", tag = "team", security(("bearer" = ["team.manage"])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn delete_role(
    m: Authorized<perm::TeamManage>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    m.scope.delete_role(&m.actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List API keys (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "team", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = Vec<ApiKey>)))]
async fn list_api_keys(m: Authorized<perm::SettingsEdit>) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(m.scope.list_api_keys().await?))
}

/// Body of API key creation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyBody {
    /// What the key is for, 1–80 characters.
    pub name: String,
    /// `secret` (server-to-server, `sk_live_…`, carries `role`) or `publishable`
    /// (Store API reads from a browser, `pk_live_…`).
    pub kind: String,
    /// Role a secret key acts with (default `viewer`); not allowed for publishable keys.
    pub role: Option<String>,
}

/// A newly created key: `key` is shown this once and never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The full key. Store it now: only its hash is kept.
    pub key: String,
}

/// Create an API key. The response is the only time the key is shown.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "team", security(("bearer" = ["settings.edit"])),
    request_body = ApiKeyBody,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_api_key(
    m: Authorized<perm::SettingsEdit>,
    ApiJson(b): ApiJson<ApiKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let name = req_text("name", &b.name, 80)?;
    let (prefix, role) = match b.kind.as_str() {
        "secret" => {
            let r =
                grantable_role(&m, b.role.as_deref().unwrap_or("viewer").trim(), "role").await?;
            (API_KEY_PREFIX_SECRET, Some(r.key))
        }
        "publishable" => {
            if b.role.is_some() {
                return Err(ApiError::invalid(
                    "role",
                    "not_allowed",
                    "role: publishable keys only read the Store API and take no role",
                ));
            }
            (API_KEY_PREFIX_PUBLISHABLE, None)
        }
        _ => {
            return Err(ApiError::invalid(
                "kind",
                "invalid_kind",
                "kind must be 'secret' or 'publishable'",
            ));
        }
    };
    let key = format!("{prefix}{}", random_token(24));
    let shown: String = key.chars().take(prefix.len() + 4).collect();
    let api_key = m
        .scope
        .create_api_key(
            &m.actor,
            &name,
            &b.kind,
            role.as_deref(),
            &shown,
            &token_hash(&key),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { api_key, key })))
}

/// Revoke an API key (it stops working at once).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "team", security(("bearer" = ["settings.edit"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_api_key(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .revoke_api_key(&m.actor, id)
        .await
        .map_err(|_| ApiError::not_found("API key"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Filters of an audit-log query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries of this tenant (platform log only).
    pub tenant_id: Option<Uuid>,
    /// Only changes made by this user or API key id.
    pub actor_id: Option<Uuid>,
    /// Only changes whose actor label (a user's e-mail, an API key's name) contains this
    /// text, case-insensitive (`%` and `_` match themselves).
    pub actor: Option<String>,
    /// Exact action (`product.updated`) or a prefix ending in `.` (`product.`).
    pub action: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    pub since: Option<String>,
    /// RFC 3339 upper bound (inclusive).
    pub until: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

fn rfc3339_micros(field: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    v.map(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1000) as i64)
            .map_err(|_| {
                ApiError::invalid(
                    field,
                    "invalid_time",
                    format!("{field} must be an RFC 3339 time such as 2026-11-21T10:00:00Z"),
                )
            })
    })
    .transpose()
}

impl AuditQuery {
    /// Validated filter and `(limit, offset, page)`.
    pub fn resolve(&self) -> ApiResult<(AuditFilter, (i64, i64, i64))> {
        if self.action.as_ref().is_some_and(|a| a.len() > 100) {
            return Err(ApiError::invalid(
                "action",
                "too_long",
                "action must be at most 100 characters",
            ));
        }
        let f = AuditFilter {
            tenant: self.tenant_id,
            actor_id: self.actor_id,
            action: self.action.clone().filter(|a| !a.is_empty()),
            since: rfc3339_micros("since", self.since.as_deref())?,
            until: rfc3339_micros("until", self.until.as_deref())?,
            actor_label: self
                .actor
                .as_ref()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty()),
        };
        let page = PageQuery {
            page: self.page,
            per_page: self.per_page,
        }
        .resolve(50)?;
        Ok((f, page))
    }
}

/// The tenant's audit log, newest first. Entries cannot be changed through any API.
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "team", security(("bearer" = ["settings.edit"])),
    params(AuditQuery), responses((status = 200, body = ListResponse<AuditEntry>)))]
async fn tenant_audit_log(
    m: Authorized<perm::SettingsEdit>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<ListResponse<AuditEntry>>> {
    let (f, (limit, offset, page)) = q.resolve()?;
    let (data, total) = m.scope.list_audit(&f, limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// Body carrying an invitation token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InvitationToken {
    pub token: String,
}

/// What an invitation link offers, for the acceptance page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationPreview {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub email: String,
    pub role: String,
    /// An account exists for the e-mail: sign in, then accept with one click.
    pub account_exists: bool,
}

/// Look at an invitation before accepting it. Errors: 400 invalid, 410 expired/used/revoked.
#[utoipa::path(post, path = "/api/v1/invitations/inspect", tag = "team", request_body = InvitationToken,
    responses((status = 200, body = InvitationPreview), (status = 400, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn inspect_invitation(
    State(st): State<AppState>,
    ApiJson(b): ApiJson<InvitationToken>,
) -> ApiResult<Json<InvitationPreview>> {
    Ok(Json(preview_invitation(&st, &b.token).await?))
}

/// What an invitation token offers (shared by the API and the acceptance page).
pub async fn preview_invitation(st: &AppState, token: &str) -> ApiResult<InvitationPreview> {
    let g = access::invitation_by_token(&st.db, &token_hash(token.trim())).await?;
    let tenant = crate::store::platform::tenant_by_id(&st.db, g.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let account_exists = crate::store::users::user_by_email(&st.db, &g.email)
        .await?
        .is_some();
    Ok(InvitationPreview {
        tenant_id: g.tenant_id,
        tenant_name: tenant.name,
        email: g.email,
        role: g.role,
        account_exists,
    })
}

/// Accepts an invitation from the HTML form: an existing account confirms with its
/// password (throttled like sign-in), a new one is created from `name` and `password`.
/// Returns the shop's name.
pub async fn accept_with_password(
    st: &AppState,
    token: &str,
    name: Option<&str>,
    password: &str,
    ip: Option<String>,
) -> ApiResult<String> {
    let p = preview_invitation(st, token).await?;
    let hash = token_hash(token.trim());
    if p.account_exists {
        let key = format!("acct:{}", p.email.to_lowercase());
        if st.login_limiter.check(&[&key]).is_some() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed attempts; try again later",
            ));
        }
        let user = crate::store::users::user_by_email(&st.db, &p.email)
            .await?
            .ok_or_else(ApiError::internal)?;
        let ok = match user.password_hash.as_deref() {
            Some(h) => crate::auth::verify_password_async(password, h).await,
            None => false,
        };
        if !ok {
            st.login_limiter.fail(&key, st.login_limiter.account);
            return Err(ApiError::unauthorized("wrong password"));
        }
        access::accept_invitation(
            &st.db,
            &hash,
            Joiner::Existing {
                user: user.id,
                email: &user.email,
            },
            ip,
        )
        .await?;
    } else {
        let name = req_text("name", name.unwrap_or(""), 120)?;
        check_password_policy(password)
            .map_err(|e| ApiError::invalid("password", "weak_password", e))?;
        let ph = hash_password_async(password)
            .await
            .map_err(|_| ApiError::internal())?;
        access::accept_invitation(
            &st.db,
            &hash,
            Joiner::New {
                name: &name,
                password_hash: &ph,
            },
            ip,
        )
        .await?;
    }
    Ok(p.tenant_name)
}

/// Body of invitation acceptance.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AcceptBody {
    pub token: String,
    /// New accounts only: display name, 1–120 characters.
    pub name: Option<String>,
    /// New accounts only: at least 8 characters.
    pub password: Option<String>,
}

/// Accept an invitation. Signed in (Bearer token of the invited e-mail's account): joins
/// at once. Not signed in: creates the account from `name` and `password`. Either way the
/// response carries tokens acting for the tenant. The link works once.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "team", request_body = AcceptBody,
    responses((status = 200, body = super::auth::TokenResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn accept_invitation(
    State(st): State<AppState>,
    user: Option<AuthUser>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<AcceptBody>,
) -> ApiResult<Json<super::auth::TokenResponse>> {
    let hash = token_hash(b.token.trim());
    let (user_id, tenant) = match user {
        Some(u) => {
            let me = crate::store::users::user_by_id(&st.db, u.id())
                .await?
                .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
            access::accept_invitation(
                &st.db,
                &hash,
                Joiner::Existing {
                    user: me.id,
                    email: &me.email,
                },
                ip,
            )
            .await?
        }
        None => {
            // Check the token first so a bad link is reported before form errors.
            access::invitation_by_token(&st.db, &hash).await?;
            let name = req_text("name", b.name.as_deref().unwrap_or(""), 120)?;
            let password = b.password.unwrap_or_default();
            check_password_policy(&password)
                .map_err(|e| ApiError::invalid("password", "weak_password", e))?;
            let ph = hash_password_async(&password)
                .await
                .map_err(|_| ApiError::internal())?;
            access::accept_invitation(
                &st.db,
                &hash,
                Joiner::New {
                    name: &name,
                    password_hash: &ph,
                },
                ip,
            )
            .await?
        }
    };
    let u = crate::store::users::user_by_id(&st.db, user_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(super::auth::issue(&st, &u, Some(tenant), None).await?))
}
