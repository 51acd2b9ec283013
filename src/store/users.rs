//! Users, memberships, refresh tokens and one-time password tokens.
//!
//! Users are platform-level (one person may belong to several merchants); memberships
//! link a user to a tenant with a role.

use super::audit::{self, Actor, Change};
use super::{Db, StoreError, StoreResult, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, dispatch_write, exec, exec_tx, exec_write};
use uuid::Uuid;

/// A stored user account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    /// Any platform staff (super admin or support).
    pub is_platform_admin: bool,
    pub created_at: i64,
    /// `super_admin` or `support` for platform staff.
    pub platform_role: Option<String>,
}

pub async fn user_by_email(db: &Db, email: &str) -> StoreResult<Option<User>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, User>("select * from users where email = $1")
        .bind(email)
        .fetch_optional(p)
        .await)?,
    )
}

pub async fn user_by_id(db: &Db, id: Uuid) -> StoreResult<Option<User>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, User>("select * from users where id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)?,
    )
}

/// Creates a platform staff user with `role` (`super_admin` or `support`), or promotes and
/// resets the password of an existing user.
pub async fn upsert_platform_admin(
    db: &Db,
    email: &str,
    name: &str,
    password_hash: &str,
    role: crate::access::PlatformRole,
) -> StoreResult<Uuid> {
    if let Some(u) = user_by_email(db, email).await? {
        exec_write!(db, p => sqlx::query("update users set is_platform_admin = true, platform_role = $3, password_hash = $2 where id = $1")
            .bind(u.id)
            .bind(password_hash)
            .bind(role.as_str())
            .execute(p)
            .await)?;
        return Ok(u.id);
    }
    let id = new_id();
    exec_write!(db, p => sqlx::query(
        "insert into users (id, email, name, password_hash, must_change_password, is_platform_admin, platform_role, created_at)
         values ($1, $2, $3, $4, false, true, $6, $5)",
    )
    .bind(id)
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(now_micros())
    .bind(role.as_str())
    .execute(p)
    .await)
    .map_err(|e| StoreError::on_unique(e, &[("email", "email")]))?;
    Ok(id)
}

/// Is any platform admin present?
pub async fn has_platform_admin(db: &Db) -> StoreResult<bool> {
    let n: i64 = dispatch_write!(db, p => sqlx::query_scalar("select count(*) from users where platform_role = 'super_admin'")
        .fetch_one(p)
        .await)?;
    Ok(n > 0)
}

/// A membership of the user in a tenant, with the tenant's handle and name.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub tenant_id: Uuid,
    pub role: String,
    pub tenant_name: String,
    pub tenant_handle: Option<String>,
    pub tenant_status: String,
}

pub async fn memberships_of(db: &Db, user: Uuid) -> StoreResult<Vec<Membership>> {
    Ok(dispatch!(db, p => sqlx::query_as::<_, Membership>(
        "select m.tenant_id, m.role, t.name as tenant_name, t.handle as tenant_handle, t.status as tenant_status
         from memberships m join tenants t on t.id = m.tenant_id where m.user_id = $1 order by t.name",
    )
    .bind(user)
    .fetch_all(p)
    .await)?)
}

/// The user's role in `tenant`, or `None` when not a member.
pub async fn role_in(db: &Db, user: Uuid, tenant: Uuid) -> StoreResult<Option<String>> {
    Ok(
        dispatch!(db, p => sqlx::query_scalar("select role from memberships where user_id = $1 and tenant_id = $2")
        .bind(user)
        .bind(tenant)
        .fetch_optional(p)
        .await)?,
    )
}

/// What a user may do in one tenant, read in one query on every merchant request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantAccess {
    pub email: String,
    /// `super_admin` / `support` for platform staff.
    pub platform_role: Option<String>,
    /// Role key of the membership, `None` when not a member.
    pub role: Option<String>,
    /// JSON list of the role's permissions.
    pub permissions: Option<String>,
}

/// The user's e-mail, platform role, membership role in `tenant` and that role's
/// permissions. `None` when the user does not exist.
pub async fn access_in(db: &Db, user: Uuid, tenant: Uuid) -> StoreResult<Option<TenantAccess>> {
    Ok(dispatch!(db, p => sqlx::query_as::<_, TenantAccess>(
        "select u.email, u.platform_role, m.role, r.permissions from users u
         left join memberships m on m.user_id = u.id and m.tenant_id = $2
         left join roles r on r.tenant_id = m.tenant_id and r.key = m.role
         where u.id = $1",
    )
    .bind(user)
    .bind(tenant)
    .fetch_optional(p)
    .await)?)
}

/// Stores a refresh token hash. `family` groups rotated tokens of one login.
pub async fn insert_refresh_token(
    db: &Db,
    user: Uuid,
    hash: &str,
    family: Uuid,
    expires_at: i64,
) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query(
        "insert into refresh_tokens (id, user_id, token_hash, family_id, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(user)
    .bind(hash)
    .bind(family)
    .bind(expires_at)
    .bind(now_micros())
    .execute(p)
    .await)?;
    Ok(())
}

/// Outcome of presenting a refresh token.
pub enum RefreshUse {
    /// Valid: the token is now revoked; issue a new one in `family`.
    Rotated { user: Uuid, family: Uuid },
    /// Already used: the whole family has been revoked (token theft suspected).
    Reused,
    /// Unknown or expired.
    Invalid,
}

/// Consumes a refresh token (rotation). A reused token revokes its whole family.
pub async fn use_refresh_token(db: &Db, hash: &str) -> StoreResult<RefreshUse> {
    let row: Option<(Uuid, Uuid, i64, Option<i64>)> = dispatch_write!(db, p => sqlx::query_as(
        "select user_id, family_id, expires_at, revoked_at from refresh_tokens where token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(p)
    .await)?;
    let now = now_micros();
    let Some((user, family, expires, revoked)) = row else {
        return Ok(RefreshUse::Invalid);
    };
    if revoked.is_some() {
        exec_write!(db, p => sqlx::query("update refresh_tokens set revoked_at = $2 where family_id = $1 and revoked_at is null")
            .bind(family)
            .bind(now)
            .execute(p)
            .await)?;
        return Ok(RefreshUse::Reused);
    }
    if expires < now {
        return Ok(RefreshUse::Invalid);
    }
    let r = exec_write!(db, p => sqlx::query("update refresh_tokens set revoked_at = $2 where token_hash = $1 and revoked_at is null")
        .bind(hash)
        .bind(now)
        .execute(p)
        .await)?;
    if r == 0 {
        return Ok(RefreshUse::Reused);
    }
    Ok(RefreshUse::Rotated { user, family })
}

/// Revokes a refresh token family (logout).
pub async fn revoke_refresh_token(db: &Db, hash: &str) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query(
        "update refresh_tokens set revoked_at = $2 where family_id = (select family_id from refresh_tokens where token_hash = $1) and revoked_at is null",
    )
    .bind(hash)
    .bind(now_micros())
    .execute(p)
    .await)?;
    Ok(())
}

/// Consumes a one-time password token (`purpose` e.g. `set_password`) and sets the
/// password. Errors: `NotFound` when unknown, used or expired.
pub async fn consume_password_token(
    db: &Db,
    hash: &str,
    purpose: &str,
    password_hash: &str,
    ip: Option<String>,
) -> StoreResult<Uuid> {
    let mut tx = db.begin().await?;
    let now = now_micros();
    let user: Option<Uuid> = crate::dispatch_tx!(&mut tx, c => sqlx::query_scalar(
        "update password_tokens set used_at = $3 where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3 returning user_id",
    )
    .bind(hash)
    .bind(purpose)
    .bind(now)
    .fetch_optional(&mut **c)
    .await)?;
    let user = user.ok_or(StoreError::NotFound)?;
    crate::exec_tx!(&mut tx, c => sqlx::query("update users set password_hash = $2, must_change_password = false where id = $1")
        .bind(user)
        .bind(password_hash)
        .execute(&mut **c)
        .await)?;
    // Other sessions end when a password is (re)set.
    crate::exec_tx!(&mut tx, c => sqlx::query("update refresh_tokens set revoked_at = $2 where user_id = $1 and revoked_at is null")
        .bind(user)
        .bind(now)
        .execute(&mut **c)
        .await)?;
    let email: String = crate::dispatch_tx!(&mut tx, c => sqlx::query_scalar("select email from users where id = $1")
        .bind(user)
        .fetch_one(&mut **c)
        .await)?;
    let actor = Actor {
        kind: "user",
        id: Some(user),
        label: email,
        ip,
    };
    audit::record(
        &mut tx,
        None,
        &actor,
        Change::new("user.password_set", "user", user),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Stores a one-time password token (`set_password` purpose) for `user`, expiring at
/// `expires_at`, and enqueues its e-mail, in one transaction.
pub async fn create_password_token(
    db: &Db,
    user: Uuid,
    hash: &str,
    expires_at: i64,
    email_payload: String,
) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    crate::exec_tx!(&mut tx, c => sqlx::query(
        "insert into password_tokens (id, user_id, token_hash, purpose, expires_at, created_at) values ($1, $2, $3, 'set_password', $4, $5)",
    )
    .bind(new_id())
    .bind(user)
    .bind(hash)
    .bind(expires_at)
    .bind(now_micros())
    .execute(&mut **c)
    .await)?;
    super::jobs::enqueue_tx(
        &mut tx,
        super::jobs::NewJob {
            kind: "email",
            tenant_id: None,
            payload: email_payload,
            dedupe_key: None,
            max_attempts: 8,
        },
    )
    .await?;
    tx.commit().await
}

/// Changes the password of a signed-in user (clears must-change) and ends every other
/// session: refresh-token families other than `keep_session` are revoked.
pub async fn set_password(
    db: &Db,
    actor: &Actor,
    user: Uuid,
    password_hash: &str,
    keep_session: Option<Uuid>,
) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    crate::exec_tx!(&mut tx, c => sqlx::query("update users set password_hash = $2, must_change_password = false where id = $1")
        .bind(user)
        .bind(password_hash)
        .execute(&mut **c)
        .await)?;
    crate::exec_tx!(&mut tx, c => sqlx::query(
        "update refresh_tokens set revoked_at = $3 where user_id = $1 and revoked_at is null and ($2 is null or family_id <> $2)",
    )
    .bind(user)
    .bind(keep_session)
    .bind(now_micros())
    .execute(&mut **c)
    .await)?;
    audit::record(
        &mut tx,
        None,
        actor,
        Change::new("user.password_changed", "user", user),
    )
    .await?;
    tx.commit().await
}
