//! Roles, team members, invitations and API keys.
//!
//! Tenant-side operations are [`TenantDb`] methods; the two lookups that must find a
//! tenant from a credential (an invitation token, an API key) are platform-path functions.

use super::audit::{self, Actor, Change};
use super::{
    Db, StoreError, StoreResult, TenantDb, Tx, from_json, micros_to_rfc3339, new_id, now_micros,
    to_json,
};
use crate::access::{OWNER_ROLE, PermissionSet, SYSTEM_ROLES};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, dispatch_write, exec_tx, exec_write};
use serde::Serialize;
use uuid::Uuid;

/// A role of a tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Role {
    pub id: Uuid,
    /// Stable key used in memberships and API keys (`owner`, `manager`, … or a custom slug).
    pub key: String,
    pub name: String,
    /// `resource.action` strings.
    pub permissions: Vec<String>,
    /// Default roles cannot be edited or deleted.
    pub is_system: bool,
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: Uuid,
    key: String,
    name: String,
    permissions: String,
    is_system: bool,
}

impl RoleRow {
    fn into_role(self) -> StoreResult<Role> {
        Ok(Role {
            id: self.id,
            key: self.key,
            name: self.name,
            permissions: from_json(&self.permissions)?,
            is_system: self.is_system,
        })
    }
}

impl Role {
    pub fn permission_set(&self) -> PermissionSet {
        PermissionSet::from_strings(&self.permissions)
    }
}

/// A member of a tenant's team.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    #[serde(skip)]
    pub joined_micros: i64,
}

/// A pending (or past) invitation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: &'static str,
    /// RFC 3339.
    pub expires_at: String,
    pub created_at: String,
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: Uuid,
    tenant_id: Uuid,
    email: String,
    role: String,
    expires_at: i64,
    accepted_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

impl InvitationRow {
    fn status(&self, now: i64) -> &'static str {
        if self.accepted_at.is_some() {
            "accepted"
        } else if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= now {
            "expired"
        } else {
            "pending"
        }
    }
    fn view(&self, now: i64) -> Invitation {
        Invitation {
            id: self.id,
            email: self.email.clone(),
            role: self.role.clone(),
            status: self.status(now),
            expires_at: micros_to_rfc3339(self.expires_at),
            created_at: micros_to_rfc3339(self.created_at),
        }
    }
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// `publishable` or `secret`.
    pub kind: String,
    /// Role whose permissions a secret key carries.
    pub role: Option<String>,
    /// The key's first characters, e.g. `sk_live_Ab12`.
    pub prefix: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub created_at: String,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    kind: String,
    role: Option<String>,
    prefix: String,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

impl ApiKeyRow {
    fn view(self) -> ApiKey {
        ApiKey {
            id: self.id,
            name: self.name,
            kind: self.kind,
            role: self.role,
            prefix: self.prefix,
            last_used_at: self.last_used_at.map(micros_to_rfc3339),
            revoked_at: self.revoked_at.map(micros_to_rfc3339),
            created_at: micros_to_rfc3339(self.created_at),
        }
    }
}

const KEY_COLS: &str =
    "id, tenant_id, name, kind, role, prefix, last_used_at, revoked_at, created_at";
const INV_COLS: &str =
    "id, tenant_id, email, role, expires_at, accepted_at, revoked_at, created_at";

/// Inserts the default roles of a tenant (idempotent), inside a provisioning transaction.
pub async fn seed_system_roles(tx: &mut Tx, tenant: Uuid) -> StoreResult<()> {
    for r in SYSTEM_ROLES {
        let perms = PermissionSet::of(r.permissions).to_strings();
        exec_tx!(tx, c => sqlx::query(
            "insert into roles (id, tenant_id, key, name, permissions, is_system, created_at) values ($1, $2, $3, $4, $5, true, $6)
             on conflict (tenant_id, key) do nothing",
        )
        .bind(new_id())
        .bind(tenant)
        .bind(r.key)
        .bind(r.name)
        .bind(to_json(&perms))
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
    }
    Ok(())
}

/// Why a team change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("a tenant must keep at least one owner")]
    LastOwner,
    #[error("the plan allows at most {0} team members (pending invitations count)")]
    SeatLimit(i64),
    #[error("unknown role '{0}'")]
    UnknownRole(String),
    #[error("{0} is already a member of this tenant")]
    AlreadyMember(String),
    #[error("role '{0}' is still assigned to members or API keys")]
    RoleInUse(String),
    #[error("default roles cannot be changed")]
    SystemRole,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TeamError {
    fn from(e: sqlx::Error) -> Self {
        TeamError::Store(e.into())
    }
}

impl TenantDb {
    pub async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        let rows: Vec<RoleRow> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, key, name, permissions, is_system from roles where tenant_id = $1 order by is_system desc, created_at, key",
        )
        .bind(self.tenant)
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(RoleRow::into_role).collect()
    }

    pub async fn role(&self, key: &str) -> StoreResult<Option<Role>> {
        let row: Option<RoleRow> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, key, name, permissions, is_system from roles where tenant_id = $1 and key = $2",
        )
        .bind(self.tenant)
        .bind(key)
        .fetch_optional(p)
        .await)?;
        row.map(RoleRow::into_role).transpose()
    }

    /// Creates a custom role. Errors: `Conflict{field:"key"}`.
    pub async fn create_role(
        &self,
        actor: &Actor,
        key: &str,
        name: &str,
        perms: PermissionSet,
    ) -> StoreResult<Role> {
        let id = new_id();
        let list = perms.to_strings();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into roles (id, tenant_id, key, name, permissions, is_system, created_at) values ($1, $2, $3, $4, $5, false, $6)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(key)
        .bind(name)
        .bind(to_json(&list))
        .bind(now_micros())
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("key", "key")]))?;
        let role = Role {
            id,
            key: key.to_string(),
            name: name.to_string(),
            permissions: list,
            is_system: false,
        };
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("role.created", "role", key).after(&role),
        )
        .await?;
        tx.commit().await?;
        Ok(role)
    }

    /// Replaces a custom role's name and permissions.
    pub async fn update_role(
        &self,
        actor: &Actor,
        key: &str,
        name: &str,
        perms: PermissionSet,
    ) -> Result<Role, TeamError> {
        let before = self.role(key).await?.ok_or(StoreError::NotFound)?;
        if before.is_system {
            return Err(TeamError::SystemRole);
        }
        let list = perms.to_strings();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query("update roles set name = $3, permissions = $4 where tenant_id = $1 and key = $2")
            .bind(self.tenant)
            .bind(key)
            .bind(name)
            .bind(to_json(&list))
            .execute(&mut **c)
            .await)?;
        let after = Role {
            name: name.to_string(),
            permissions: list,
            ..before.clone()
        };
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("role.updated", "role", key)
                .before(&before)
                .after(&after),
        )
        .await?;
        super::events::emit_access_changed(&mut tx, self.tenant, "role_updated", None).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Deletes a custom role that no member or API key uses.
    pub async fn delete_role(&self, actor: &Actor, key: &str) -> Result<(), TeamError> {
        let before = self.role(key).await?.ok_or(StoreError::NotFound)?;
        if before.is_system {
            return Err(TeamError::SystemRole);
        }
        let mut tx = self.begin().await?;
        let used: i64 = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
            "select (select count(*) from memberships where tenant_id = $1 and role = $2)
                  + (select count(*) from api_keys where tenant_id = $1 and role = $2 and revoked_at is null)
                  + (select count(*) from invitations where tenant_id = $1 and role = $2 and accepted_at is null and revoked_at is null)",
        )
        .bind(self.tenant)
        .bind(key)
        .fetch_one(&mut **c)
        .await)?;
        if used > 0 {
            return Err(TeamError::RoleInUse(key.to_string()));
        }
        exec_tx!(&mut tx, c => sqlx::query("delete from roles where tenant_id = $1 and key = $2")
            .bind(self.tenant)
            .bind(key)
            .execute(&mut **c)
            .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("role.deleted", "role", key).before(&before),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_members(&self) -> StoreResult<Vec<Member>> {
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_as::<_, Member>(
            "select m.user_id, u.email, u.name, m.role, m.created_at as joined_micros
             from memberships m join users u on u.id = m.user_id where m.tenant_id = $1 order by m.created_at, u.email",
        )
        .bind(self.tenant)
        .fetch_all(p)
        .await)?,
        )
    }

    /// The role key of a member, `None` when not a member.
    pub async fn member_role(&self, user: Uuid) -> StoreResult<Option<String>> {
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_scalar("select role from memberships where tenant_id = $1 and user_id = $2")
            .bind(self.tenant)
            .bind(user)
            .fetch_optional(p)
            .await)?,
        )
    }

    async fn owners_tx(&self, tx: &mut Tx) -> StoreResult<i64> {
        Ok(
            dispatch_tx!(tx, c => sqlx::query_scalar("select count(*) from memberships where tenant_id = $1 and role = $2")
            .bind(self.tenant)
            .bind(OWNER_ROLE)
            .fetch_one(&mut **c)
            .await)?,
        )
    }

    async fn member_role_tx(&self, tx: &mut Tx, user: Uuid) -> StoreResult<Option<String>> {
        Ok(
            dispatch_tx!(tx, c => sqlx::query_scalar("select role from memberships where tenant_id = $1 and user_id = $2")
            .bind(self.tenant)
            .bind(user)
            .fetch_optional(&mut **c)
            .await)?,
        )
    }

    /// Changes a member's role; the last owner cannot be demoted.
    /// Errors: `NotFound` (no such member), `UnknownRole`, `LastOwner`.
    pub async fn change_member_role(
        &self,
        actor: &Actor,
        user: Uuid,
        role: &str,
    ) -> Result<(), TeamError> {
        if self.role(role).await?.is_none() {
            return Err(TeamError::UnknownRole(role.to_string()));
        }
        let mut tx = self.begin().await?;
        let current = self
            .member_role_tx(&mut tx, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current == OWNER_ROLE && role != OWNER_ROLE && self.owners_tx(&mut tx).await? <= 1 {
            return Err(TeamError::LastOwner);
        }
        exec_tx!(&mut tx, c => sqlx::query("update memberships set role = $3 where tenant_id = $1 and user_id = $2")
            .bind(self.tenant)
            .bind(user)
            .bind(role)
            .execute(&mut **c)
            .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("member.role_changed", "member", user)
                .before(serde_json::json!({ "role": current }))
                .after(serde_json::json!({ "role": role })),
        )
        .await?;
        super::events::emit_access_changed(&mut tx, self.tenant, "member_role_changed", Some(user))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a member. Their access ends at once: every request re-checks membership,
    /// and a refresh cannot re-enter the tenant. Errors: `NotFound`, `LastOwner`.
    pub async fn remove_member(&self, actor: &Actor, user: Uuid) -> Result<(), TeamError> {
        let mut tx = self.begin().await?;
        let current = self
            .member_role_tx(&mut tx, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current == OWNER_ROLE && self.owners_tx(&mut tx).await? <= 1 {
            return Err(TeamError::LastOwner);
        }
        exec_tx!(&mut tx, c => sqlx::query("delete from memberships where tenant_id = $1 and user_id = $2")
            .bind(self.tenant)
            .bind(user)
            .execute(&mut **c)
            .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("member.removed", "member", user)
                .before(serde_json::json!({ "role": current })),
        )
        .await?;
        super::events::emit_access_changed(&mut tx, self.tenant, "member_removed", Some(user))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_invitations(&self) -> StoreResult<Vec<Invitation>> {
        let now = now_micros();
        let rows: Vec<InvitationRow> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {INV_COLS} from invitations where tenant_id = $1 order by created_at desc limit 500"
        )))
        .bind(self.tenant)
        .fetch_all(p)
        .await)?;
        Ok(rows.iter().map(|r| r.view(now)).collect())
    }

    /// Creates an invitation and its e-mail job in one transaction, after checking the
    /// seat limit (`max_seats < 0`: unlimited) and that the e-mail is not yet a member.
    /// Any earlier pending invitation for the same e-mail is revoked.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_invitation(
        &self,
        actor: &Actor,
        email: &str,
        role: &str,
        token_hash: &str,
        expires_at: i64,
        max_seats: i64,
        mail: impl FnOnce(Uuid) -> String,
    ) -> Result<Invitation, TeamError> {
        let mut tx = self.begin().await?;
        let member: i64 = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
            "select count(*) from memberships m join users u on u.id = m.user_id where m.tenant_id = $1 and u.email = $2",
        )
        .bind(self.tenant)
        .bind(email)
        .fetch_one(&mut **c)
        .await)?;
        if member > 0 {
            return Err(TeamError::AlreadyMember(email.to_string()));
        }
        let now = now_micros();
        exec_tx!(&mut tx, c => sqlx::query(
            "update invitations set revoked_at = $3 where tenant_id = $1 and email = $2 and accepted_at is null and revoked_at is null",
        )
        .bind(self.tenant)
        .bind(email)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        if max_seats >= 0 {
            let used: i64 = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
                "select (select count(*) from memberships where tenant_id = $1)
                      + (select count(*) from invitations where tenant_id = $1 and accepted_at is null and revoked_at is null and expires_at > $2)",
            )
            .bind(self.tenant)
            .bind(now)
            .fetch_one(&mut **c)
            .await)?;
            if used >= max_seats {
                return Err(TeamError::SeatLimit(max_seats));
            }
        }
        let id = new_id();
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(email)
        .bind(role)
        .bind(token_hash)
        .bind(actor.id.filter(|_| actor.kind == "user"))
        .bind(expires_at)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        super::jobs::enqueue_tx(
            &mut tx,
            super::jobs::NewJob {
                kind: "email",
                tenant_id: Some(self.tenant),
                payload: mail(id),
                dedupe_key: None,
                max_attempts: 8,
            },
        )
        .await?;
        let row = InvitationRow {
            id,
            tenant_id: self.tenant,
            email: email.to_string(),
            role: role.to_string(),
            expires_at,
            accepted_at: None,
            revoked_at: None,
            created_at: now,
        };
        let view = row.view(now);
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("invitation.created", "invitation", id).after(&view),
        )
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// A pending invitation of this tenant. Errors: `NotFound`.
    pub async fn pending_invitation(&self, id: Uuid) -> StoreResult<Invitation> {
        let now = now_micros();
        let row: Option<InvitationRow> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {INV_COLS} from invitations where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        row.filter(|r| matches!(r.status(now), "pending" | "expired"))
            .map(|r| r.view(now))
            .ok_or(StoreError::NotFound)
    }

    /// Revokes a pending invitation. Errors: `NotFound` (unknown or no longer pending).
    pub async fn revoke_invitation(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update invitations set revoked_at = $3 where tenant_id = $1 and id = $2 and accepted_at is null and revoked_at is null",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("invitation.revoked", "invitation", id),
        )
        .await?;
        tx.commit().await
    }

    /// Creates an API key (only its hash is stored).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        name: &str,
        kind: &str,
        role: Option<&str>,
        prefix: &str,
        token_hash: &str,
    ) -> StoreResult<ApiKey> {
        let id = new_id();
        let now = now_micros();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into api_keys (id, tenant_id, name, kind, role, prefix, token_hash, created_by, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(name)
        .bind(kind)
        .bind(role)
        .bind(prefix)
        .bind(token_hash)
        .bind(actor.id.filter(|_| actor.kind == "user"))
        .bind(now)
        .execute(&mut **c)
        .await)?;
        let key = ApiKeyRow {
            id,
            tenant_id: self.tenant,
            name: name.to_string(),
            kind: kind.to_string(),
            role: role.map(str::to_string),
            prefix: prefix.to_string(),
            last_used_at: None,
            revoked_at: None,
            created_at: now,
        }
        .view();
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("api_key.created", "api_key", id).after(&key),
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    pub async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows: Vec<ApiKeyRow> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {KEY_COLS} from api_keys where tenant_id = $1 order by created_at desc"
        )))
        .bind(self.tenant)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(ApiKeyRow::view).collect())
    }

    /// Revokes an API key. Errors: `NotFound` (unknown or already revoked).
    pub async fn revoke_api_key(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update api_keys set revoked_at = $3 where tenant_id = $1 and id = $2 and revoked_at is null",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("api_key.revoked", "api_key", id),
        )
        .await?;
        super::events::emit_access_changed(&mut tx, self.tenant, "api_key_revoked", Some(id))
            .await?;
        tx.commit().await
    }
}

/// A live API key found by its hash (platform path: the key names its tenant).
#[derive(Debug, Clone)]
pub struct KeyAuth {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub role: Option<String>,
    pub label: String,
}

/// Looks up an unrevoked API key by hash and records its use (at most once a minute).
pub async fn api_key_by_hash(db: &Db, hash: &str) -> StoreResult<Option<KeyAuth>> {
    let row: Option<ApiKeyRow> = dispatch!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {KEY_COLS} from api_keys where token_hash = $1 and revoked_at is null"
    )))
    .bind(hash)
    .fetch_optional(p)
    .await)?;
    let Some(row) = row else { return Ok(None) };
    let now = now_micros();
    if row.last_used_at.is_none_or(|t| now - t > 60_000_000) {
        exec_write!(db, p => sqlx::query("update api_keys set last_used_at = $2 where id = $1")
            .bind(row.id)
            .bind(now)
            .execute(p)
            .await)?;
    }
    Ok(Some(KeyAuth {
        id: row.id,
        tenant_id: row.tenant_id,
        kind: row.kind,
        role: row.role,
        label: format!("{} ({}…)", row.name, row.prefix),
    }))
}

/// The role of API key `id` while it is unrevoked (platform path; open event streams
/// re-check their key with it). `None`: unknown or revoked.
pub async fn api_key_role(db: &Db, id: Uuid) -> StoreResult<Option<String>> {
    let row: Option<(Option<String>,)> = dispatch!(db, p => sqlx::query_as("select role from api_keys where id = $1 and revoked_at is null")
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(row.map(|(r,)| r.unwrap_or_default()))
}

/// The permissions of role `key` in `tenant` (platform path; used when authenticating).
pub async fn role_permissions(
    db: &Db,
    tenant: Uuid,
    key: &str,
) -> StoreResult<Option<PermissionSet>> {
    let perms: Option<String> = dispatch!(db, p => sqlx::query_scalar("select permissions from roles where tenant_id = $1 and key = $2")
        .bind(tenant)
        .bind(key)
        .fetch_optional(p)
        .await)?;
    perms
        .map(|s| from_json::<Vec<String>>(&s).map(|v| PermissionSet::from_strings(&v)))
        .transpose()
}

/// A pending invitation found by its token (platform path: the token names its tenant).
#[derive(Debug, Clone)]
pub struct InvitationGrant {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
}

/// Why an invitation token was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("this invitation link is invalid")]
    Invalid,
    #[error("this invitation has expired; ask for a new one")]
    Expired,
    #[error("this invitation has already been used")]
    Used,
    #[error("this invitation has been revoked")]
    Revoked,
    #[error("this invitation was sent to another e-mail address")]
    WrongUser,
    #[error("an account already exists for this e-mail: sign in and accept the invitation")]
    AccountExists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for InvitationError {
    fn from(e: sqlx::Error) -> Self {
        InvitationError::Store(e.into())
    }
}

/// Checks an invitation token without consuming it.
pub async fn invitation_by_token(db: &Db, hash: &str) -> Result<InvitationGrant, InvitationError> {
    let row: Option<InvitationRow> = dispatch!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {INV_COLS} from invitations where token_hash = $1"
    )))
    .bind(hash)
    .fetch_optional(p)
    .await)?;
    let row = row.ok_or(InvitationError::Invalid)?;
    match row.status(now_micros()) {
        "accepted" => Err(InvitationError::Used),
        "revoked" => Err(InvitationError::Revoked),
        "expired" => Err(InvitationError::Expired),
        _ => Ok(InvitationGrant {
            id: row.id,
            tenant_id: row.tenant_id,
            email: row.email,
            role: row.role,
        }),
    }
}

/// How the accepting person is identified.
pub enum Joiner<'a> {
    /// A signed-in user (their account's e-mail must match the invitation).
    Existing { user: Uuid, email: &'a str },
    /// A new account with this name and password hash.
    New {
        name: &'a str,
        password_hash: &'a str,
    },
}

/// Consumes an invitation: marks it accepted (single use, checked in the same statement),
/// creates the user if new, adds the membership, and audits `member.joined`, in one
/// transaction. Returns the user id.
pub async fn accept_invitation(
    db: &Db,
    hash: &str,
    joiner: Joiner<'_>,
    ip: Option<String>,
) -> Result<(Uuid, Uuid), InvitationError> {
    let grant = invitation_by_token(db, hash).await?;
    let mut tx = db.begin().await?;
    let now = now_micros();
    let n = exec_tx!(&mut tx, c => sqlx::query(
        "update invitations set accepted_at = $2 where id = $1 and accepted_at is null and revoked_at is null and expires_at > $2",
    )
    .bind(grant.id)
    .bind(now)
    .execute(&mut **c)
    .await)?;
    if n == 0 {
        return Err(InvitationError::Used);
    }
    let user = match joiner {
        Joiner::Existing { user, email } => {
            if !email.eq_ignore_ascii_case(&grant.email) {
                return Err(InvitationError::WrongUser);
            }
            user
        }
        Joiner::New {
            name,
            password_hash,
        } => {
            let exists: i64 = dispatch_tx!(&mut tx, c => sqlx::query_scalar("select count(*) from users where email = $1")
                .bind(&grant.email)
                .fetch_one(&mut **c)
                .await)?;
            if exists > 0 {
                return Err(InvitationError::AccountExists);
            }
            let id = new_id();
            exec_tx!(&mut tx, c => sqlx::query(
                "insert into users (id, email, name, password_hash, must_change_password, is_platform_admin, created_at) values ($1, $2, $3, $4, false, false, $5)",
            )
            .bind(id)
            .bind(&grant.email)
            .bind(name)
            .bind(password_hash)
            .bind(now)
            .execute(&mut **c)
            .await)?;
            id
        }
    };
    exec_tx!(&mut tx, c => sqlx::query(
        "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, $3, $4) on conflict (tenant_id, user_id) do nothing",
    )
    .bind(grant.tenant_id)
    .bind(user)
    .bind(&grant.role)
    .bind(now)
    .execute(&mut **c)
    .await)?;
    let actor = Actor {
        kind: "user",
        id: Some(user),
        label: grant.email.clone(),
        ip,
    };
    audit::record(
        &mut tx,
        Some(grant.tenant_id),
        &actor,
        Change::new("member.joined", "member", user)
            .after(serde_json::json!({ "role": grant.role, "invitation_id": grant.id })),
    )
    .await?;
    super::events::emit(
        &mut tx,
        Some(grant.tenant_id),
        "member.joined",
        &serde_json::json!({ "user_id": user, "email": grant.email, "role": grant.role }),
    )
    .await?;
    tx.commit().await?;
    Ok((user, grant.tenant_id))
}
