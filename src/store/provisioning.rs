//! Provisioning records (runs and their steps) and the tenant-scoped effects of each step.
//!
//! Every step effect is idempotent (`on conflict do nothing`, or a check first), so a step
//! that ran but whose completion was not recorded (crash) can safely run again.

use super::audit::{self, Actor, Change};
use super::jobs::{NewJob, enqueue_tx};
use super::{Db, StoreError, StoreResult, TenantDb, Tx, new_id, now_micros, to_json};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, dispatch_write, exec, exec_tx, exec_write};
use serde::Serialize;
use uuid::Uuid;

/// The steps of a provisioning, in order.
pub const STEPS: &[&str] = &[
    "create_workspace",
    "create_owner",
    "deploy_storefront",
    "seed_starter_data",
    "send_welcome_email",
];

/// What the admin chose at activation.
#[derive(Debug, Clone)]
pub struct Activation {
    pub tenant: Uuid,
    pub plan_id: String,
    pub theme_id: String,
    pub handle: crate::domain::Subdomain,
    /// Theme settings defaults (JSON object text) bound at activation.
    pub theme_settings: String,
    /// Plan limits snapshot (JSON object text).
    pub limits: String,
}

/// Starts a provisioning: moves the merchant `pending → provisioning`, reserves its
/// subdomain, records the run and its steps and enqueues the durable job, all in one
/// transaction. Errors: `NotFound`; `Conflict{field:"status"}` when not pending;
/// `Conflict{field:"subdomain"}` when the subdomain is taken.
pub async fn start_run(db: &Db, actor: &Actor, a: &Activation) -> StoreResult<Uuid> {
    let mut tx = db.begin().await?;
    let run = start_run_tx(&mut tx, actor, a).await?;
    tx.commit().await?;
    Ok(run)
}

/// [`start_run`] inside the caller's transaction.
pub async fn start_run_tx(tx: &mut Tx, actor: &Actor, a: &Activation) -> StoreResult<Uuid> {
    let tx = &mut *tx;
    let now = now_micros();
    let status: Option<String> = dispatch_tx!(tx, c => sqlx::query_scalar("select status from tenants where id = $1")
        .bind(a.tenant)
        .fetch_optional(&mut **c)
        .await)?;
    match status.as_deref() {
        None => return Err(StoreError::NotFound),
        Some("pending") => {}
        Some(other) => {
            return Err(StoreError::Conflict {
                field: "status",
                message: format!("merchant is {other}; only a pending merchant can be activated"),
            });
        }
    }
    exec_tx!(tx, c => sqlx::query(
        "update tenants set status = 'provisioning', handle = $2, plan_id = $3, theme_id = $4, theme_settings = $5, limits = $6, updated_at = $7 where id = $1",
    )
    .bind(a.tenant)
    .bind(a.handle.as_str())
    .bind(&a.plan_id)
    .bind(&a.theme_id)
    .bind(&a.theme_settings)
    .bind(&a.limits)
    .bind(now)
    .execute(&mut **c)
    .await)
    .map_err(|e| StoreError::on_unique(e, &[("handle", "subdomain")]))?;
    let run = new_id();
    exec_tx!(tx, c => sqlx::query("insert into provisioning_runs (id, tenant_id, status, created_at) values ($1, $2, 'pending', $3)")
        .bind(run)
        .bind(a.tenant)
        .bind(now)
        .execute(&mut **c)
        .await)?;
    for (pos, step) in STEPS.iter().enumerate() {
        exec_tx!(tx, c => sqlx::query(
            "insert into provisioning_steps (run_id, tenant_id, step, position, status) values ($1, $2, $3, $4, 'pending')",
        )
        .bind(run)
        .bind(a.tenant)
        .bind(*step)
        .bind(pos as i64)
        .execute(&mut **c)
        .await)?;
    }
    enqueue_tx(
        tx,
        NewJob {
            kind: "provision",
            tenant_id: Some(a.tenant),
            payload: to_json(&serde_json::json!({ "run_id": run })),
            dedupe_key: Some(format!("provision:{run}")),
            max_attempts: 100,
        },
    )
    .await?;
    let after = serde_json::json!({ "subdomain": a.handle.as_str(), "plan": a.plan_id, "theme": a.theme_id, "run_id": run });
    audit::record(
        tx,
        Some(a.tenant),
        actor,
        Change::new("merchant.activation_started", "merchant", a.tenant).after(after),
    )
    .await?;
    Ok(run)
}

/// Re-queues a failed run from its failed step. Errors: `NotFound`, `Conflict` unless failed.
pub async fn retry_run(db: &Db, actor: &Actor, tenant: Uuid) -> StoreResult<Uuid> {
    let run = latest_run(db, tenant).await?.ok_or(StoreError::NotFound)?;
    if run.status != "failed" {
        return Err(StoreError::Conflict {
            field: "status",
            message: format!(
                "provisioning is {}; only a failed provisioning can be retried",
                run.status
            ),
        });
    }
    let mut tx = db.begin().await?;
    exec_tx!(&mut tx, c => sqlx::query("update provisioning_runs set status = 'pending', error = null, finished_at = null where id = $1")
        .bind(run.id)
        .execute(&mut **c)
        .await)?;
    exec_tx!(&mut tx, c => sqlx::query("update provisioning_steps set status = 'pending', attempts = 0, error = null where run_id = $1 and status = 'failed'")
        .bind(run.id)
        .execute(&mut **c)
        .await)?;
    enqueue_tx(
        &mut tx,
        NewJob {
            kind: "provision",
            tenant_id: Some(tenant),
            payload: to_json(&serde_json::json!({ "run_id": run.id })),
            dedupe_key: Some(format!("provision:{}:retry:{}", run.id, now_micros())),
            max_attempts: 100,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        Some(tenant),
        actor,
        Change::new("merchant.provisioning_retried", "merchant", tenant),
    )
    .await?;
    tx.commit().await?;
    Ok(run.id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: String,
    pub created_user_id: Option<Uuid>,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepRow {
    pub step: String,
    pub position: i64,
    pub status: String,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

/// The newest run of a tenant.
pub async fn latest_run(db: &Db, tenant: Uuid) -> StoreResult<Option<RunRow>> {
    Ok(dispatch_write!(db, p => sqlx::query_as::<_, RunRow>(
        "select * from provisioning_runs where tenant_id = $1 order by created_at desc, id desc limit 1",
    )
    .bind(tenant)
    .fetch_optional(p)
    .await)?)
}

pub async fn run_by_id(db: &Db, run: Uuid) -> StoreResult<Option<RunRow>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, RunRow>("select * from provisioning_runs where id = $1")
        .bind(run)
        .fetch_optional(p)
        .await)?,
    )
}

pub async fn steps_of(db: &Db, run: Uuid) -> StoreResult<Vec<StepRow>> {
    Ok(dispatch_write!(db, p => sqlx::query_as::<_, StepRow>(
        "select step, position, status, attempts, started_at, finished_at, error from provisioning_steps where run_id = $1 order by position",
    )
    .bind(run)
    .fetch_all(p)
    .await)?)
}

/// Marks the run in progress (first start only keeps its `started_at`).
pub async fn mark_run_started(db: &Db, run: Uuid) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query(
        "update provisioning_runs set status = 'in_progress', started_at = coalesce(started_at, $2) where id = $1",
    )
    .bind(run)
    .bind(now_micros())
    .execute(p)
    .await)?;
    Ok(())
}

pub async fn mark_step_started(db: &Db, run: Uuid, step: &str) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query(
        "update provisioning_steps set status = 'in_progress', attempts = attempts + 1, started_at = coalesce(started_at, $3), error = null where run_id = $1 and step = $2",
    )
    .bind(run)
    .bind(step)
    .bind(now_micros())
    .execute(p)
    .await)?;
    Ok(())
}

pub async fn mark_step_error(
    db: &Db,
    run: Uuid,
    step: &str,
    error: &str,
    final_failure: bool,
) -> StoreResult<()> {
    let now = now_micros();
    let status = if final_failure {
        "failed"
    } else {
        "in_progress"
    };
    exec_write!(db, p => sqlx::query(
        "update provisioning_steps set status = $3, error = $4, finished_at = case when $3 = 'failed' then $5 else finished_at end where run_id = $1 and step = $2",
    )
    .bind(run)
    .bind(step)
    .bind(status)
    .bind(error)
    .bind(now)
    .execute(p)
    .await)?;
    if final_failure {
        exec_write!(db, p => sqlx::query(
            "update provisioning_runs set status = 'failed', error = $2, finished_at = $3 where id = $1",
        )
        .bind(run)
        .bind(format!("step {step} failed: {error}"))
        .bind(now)
        .execute(p)
        .await)?;
    }
    Ok(())
}

/// A step effect's transaction handle plus the bookkeeping to mark the step done in it.
pub struct StepTx {
    pub tx: super::Tx,
    tenant: Uuid,
    run: Uuid,
    step: &'static str,
}

impl StepTx {
    pub async fn begin(db: &Db, tenant: Uuid, run: Uuid, step: &'static str) -> StoreResult<Self> {
        Ok(Self {
            tx: db.begin().await?,
            tenant,
            run,
            step,
        })
    }

    /// Records the step as completed in the same transaction as its effects, and commits.
    pub async fn complete(mut self) -> StoreResult<()> {
        exec_tx!(&mut self.tx, c => sqlx::query(
            "update provisioning_steps set status = 'completed', finished_at = $3, error = null where run_id = $1 and step = $2",
        )
        .bind(self.run)
        .bind(self.step)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        super::events::emit(
            &mut self.tx,
            Some(self.tenant),
            "merchant.provisioning_updated",
            &serde_json::json!({ "merchant_id": self.tenant, "run_id": self.run, "step": self.step, "status": "completed" }),
        )
        .await?;
        self.tx.commit().await
    }
}

impl TenantDb {
    /// Step 1: default roles, default sales channel. Idempotent.
    pub async fn step_workspace(&self, t: &mut StepTx) -> StoreResult<()> {
        super::access::seed_system_roles(&mut t.tx, self.tenant).await?;
        exec_tx!(&mut t.tx, c => sqlx::query(
            "insert into sales_channels (id, tenant_id, kind, name, created_at) values ($1, $2, 'online_store', 'Online Store', $3)
             on conflict (tenant_id, kind) do nothing",
        )
        .bind(new_id())
        .bind(self.tenant)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        Ok(())
    }

    /// Step 2: owner user (reused when the e-mail already has an account) and its
    /// `owner` membership. Returns the user id and whether this step created it.
    pub async fn step_owner(
        &self,
        t: &mut StepTx,
        email: &str,
        name: Option<&str>,
        initial_password_hash: Option<&str>,
    ) -> StoreResult<(Uuid, bool)> {
        let existing: Option<Uuid> = dispatch_tx!(&mut t.tx, c => sqlx::query_scalar("select id from users where email = $1")
            .bind(email)
            .fetch_optional(&mut **c)
            .await)?;
        let (user, created) = match existing {
            Some(id) => (id, false),
            None => {
                let id = new_id();
                exec_tx!(&mut t.tx, c => sqlx::query(
                    "insert into users (id, email, name, password_hash, must_change_password, is_platform_admin, created_at)
                     values ($1, $2, $3, $4, $5, false, $6)",
                )
                .bind(id)
                .bind(email)
                .bind(name)
                .bind(initial_password_hash)
                .bind(initial_password_hash.is_some())
                .bind(now_micros())
                .execute(&mut **c)
                .await)?;
                exec_tx!(&mut t.tx, c => sqlx::query("update provisioning_runs set created_user_id = $2 where id = $1")
                    .bind(t.run)
                    .bind(id)
                    .execute(&mut **c)
                    .await)?;
                (id, true)
            }
        };
        exec_tx!(&mut t.tx, c => sqlx::query(
            "insert into memberships (tenant_id, user_id, role, created_at) values ($1, $2, 'owner', $3)
             on conflict (tenant_id, user_id) do nothing",
        )
        .bind(self.tenant)
        .bind(user)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        Ok((user, created))
    }

    /// Step 3: register the platform subdomain and mark the storefront ready.
    pub async fn step_storefront(&self, t: &mut StepTx, host: &str) -> StoreResult<()> {
        exec_tx!(&mut t.tx, c => sqlx::query(
            "insert into domains (id, tenant_id, host, kind, verified, status, created_at, updated_at) values ($1, $2, $3, 'subdomain', true, 'active', $4, $4)
             on conflict (tenant_id, host) do nothing",
        )
        .bind(new_id())
        .bind(self.tenant)
        .bind(host)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        exec_tx!(&mut t.tx, c => sqlx::query("update tenants set storefront_ready = true where id = $1")
            .bind(self.tenant)
            .execute(&mut **c)
            .await)?;
        Ok(())
    }

    /// Step 4: starter data: a `frontpage` collection. Idempotent.
    pub async fn step_starter_data(&self, t: &mut StepTx) -> StoreResult<()> {
        exec_tx!(&mut t.tx, c => sqlx::query(
            "insert into collections (id, tenant_id, handle, title, created_at) values ($1, $2, 'frontpage', 'Featured', $3)
             on conflict (tenant_id, handle) do nothing",
        )
        .bind(new_id())
        .bind(self.tenant)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        Ok(())
    }

    /// Step 5: a one-time set-password token (stored hashed) and the welcome e-mail job,
    /// deduplicated per tenant so a re-run never sends twice.
    pub async fn step_welcome(
        &self,
        t: &mut StepTx,
        user: Uuid,
        token_hash: Option<&str>,
        expires_at: i64,
        email_payload: String,
    ) -> StoreResult<()> {
        let inserted = enqueue_tx(
            &mut t.tx,
            NewJob {
                kind: "email",
                tenant_id: Some(self.tenant),
                payload: email_payload,
                dedupe_key: Some(format!("welcome:{}", self.tenant)),
                max_attempts: 8,
            },
        )
        .await?;
        if inserted && let Some(hash) = token_hash {
            exec_tx!(&mut t.tx, c => sqlx::query(
                "insert into password_tokens (id, user_id, tenant_id, token_hash, purpose, expires_at, created_at)
                 values ($1, $2, $3, $4, 'set_password', $5, $6)",
            )
            .bind(new_id())
            .bind(user)
            .bind(self.tenant)
            .bind(hash)
            .bind(expires_at)
            .bind(now_micros())
            .execute(&mut **c)
            .await)?;
        }
        Ok(())
    }

    /// Final: the merchant becomes active and the run completed, in one transaction.
    pub async fn finish_run(&self, db: &Db, run: Uuid) -> StoreResult<i64> {
        let mut tx = db.begin().await?;
        let now = now_micros();
        let started: Option<i64> = dispatch_tx!(&mut tx, c => sqlx::query_scalar("select created_at from provisioning_runs where id = $1")
            .bind(run)
            .fetch_optional(&mut **c)
            .await)?;
        let duration_ms = (now - started.unwrap_or(now)) / 1000;
        exec_tx!(&mut tx, c => sqlx::query(
            "update provisioning_runs set status = 'completed', finished_at = $2, duration_ms = $3, error = null where id = $1",
        )
        .bind(run)
        .bind(now)
        .bind(duration_ms)
        .execute(&mut **c)
        .await)?;
        exec_tx!(&mut tx, c => sqlx::query(
            "update tenants set status = 'active', activated_at = $2, updated_at = $2 where id = $1 and status = 'provisioning'",
        )
        .bind(self.tenant)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        super::events::emit(
            &mut tx,
            Some(self.tenant),
            "merchant.activated",
            &serde_json::json!({ "id": self.tenant, "run_id": run, "duration_ms": duration_ms }),
        )
        .await?;
        tx.commit().await?;
        Ok(duration_ms)
    }

    /// Removes everything the steps created and returns the merchant to `pending`
    /// (its subdomain is released). The owner user is deleted only if this run created
    /// it and it has no other membership.
    pub async fn rollback_run(&self, db: &Db, actor: &Actor, run: &RunRow) -> StoreResult<()> {
        let mut tx = db.begin().await?;
        for sql in [
            "delete from collection_products where tenant_id = $1",
            "delete from collections where tenant_id = $1",
            "delete from product_images where tenant_id = $1",
            "delete from variants where tenant_id = $1",
            "delete from products where tenant_id = $1",
            "delete from sales_channels where tenant_id = $1",
            "delete from domains where tenant_id = $1",
            "delete from password_tokens where tenant_id = $1",
            "delete from memberships where tenant_id = $1",
            "delete from jobs where tenant_id = $1 and status in ('queued', 'failed')",
        ] {
            exec_tx!(&mut tx, c => sqlx::query(sql).bind(self.tenant).execute(&mut **c).await)?;
        }
        if let Some(user) = run.created_user_id {
            exec_tx!(&mut tx, c => sqlx::query(
                "delete from users where id = $1 and is_platform_admin = false and not exists (select 1 from memberships where user_id = $1)",
            )
            .bind(user)
            .execute(&mut **c)
            .await)?;
        }
        exec_tx!(&mut tx, c => sqlx::query(
            "update tenants set status = 'pending', handle = null, plan_id = null, theme_id = null, storefront_ready = false, updated_at = $2 where id = $1",
        )
        .bind(self.tenant)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        exec_tx!(&mut tx, c => sqlx::query("update provisioning_runs set status = 'rolled_back', finished_at = $2 where id = $1")
            .bind(run.id)
            .bind(now_micros())
            .execute(&mut **c)
            .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("merchant.provisioning_rolled_back", "merchant", self.tenant),
        )
        .await?;
        tx.commit().await
    }
}

/// A step as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub name: String,
    /// `pending`, `in_progress`, `completed` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// RFC 3339, or null.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// From start to finish of the step's last attempt, in milliseconds (null until done).
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
}

/// A provisioning as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProvisioningView {
    pub id: Uuid,
    pub merchant_id: Uuid,
    /// `pending`, `in_progress`, `completed`, `failed` or `rolled_back`.
    pub status: String,
    pub error: Option<String>,
    pub steps: Vec<StepView>,
    /// From activation to completion (or to now while running), in milliseconds.
    pub duration_ms: Option<i64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// Loads the newest run of a tenant with its steps.
pub async fn view(db: &Db, tenant: Uuid) -> StoreResult<Option<ProvisioningView>> {
    let Some(run) = latest_run(db, tenant).await? else {
        return Ok(None);
    };
    view_of_run(db, run).await.map(Some)
}

/// A run with its steps, as the API shows it.
pub async fn view_of_run(db: &Db, run: RunRow) -> StoreResult<ProvisioningView> {
    let steps = steps_of(db, run.id).await?;
    let ts = |v: Option<i64>| v.map(super::micros_to_rfc3339);
    let duration_ms = run
        .duration_ms
        .or_else(|| run.finished_at.map(|f| (f - run.created_at) / 1000))
        .or_else(|| Some((now_micros() - run.created_at) / 1000));
    Ok(ProvisioningView {
        id: run.id,
        merchant_id: run.tenant_id,
        status: run.status,
        error: run.error,
        steps: steps
            .into_iter()
            .map(|s| StepView {
                name: s.step,
                status: s.status,
                attempts: s.attempts,
                duration_ms: match (s.started_at, s.finished_at) {
                    (Some(a), Some(b)) => Some((b - a).max(0) / 1000),
                    _ => None,
                },
                started_at: ts(s.started_at),
                finished_at: ts(s.finished_at),
                error: s.error,
            })
            .collect(),
        duration_ms,
        created_at: super::micros_to_rfc3339(run.created_at),
        started_at: ts(run.started_at),
        finished_at: ts(run.finished_at),
    })
}
