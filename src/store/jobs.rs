//! A small durable job queue (the outbox for side effects).
//!
//! Jobs are written in the same transaction as the change that causes them
//! ([`enqueue_tx`]); workers claim one at a time with a lease, so a job whose worker
//! died becomes claimable again when its lease expires (or at start-up on SQLite,
//! which is single-node by nature). A `dedupe_key` makes enqueueing idempotent.

use super::{Db, StoreResult, Tx, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, dispatch_write, exec, exec_tx, exec_write};
use uuid::Uuid;

/// A claimed job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: Option<Uuid>,
    /// JSON text.
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub max_attempts: i64,
}

/// What to enqueue.
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub tenant_id: Option<Uuid>,
    pub payload: String,
    /// Enqueueing a second job with the same key is a no-op.
    pub dedupe_key: Option<String>,
    pub max_attempts: i64,
}

/// Enqueues a job inside an open transaction. Returns false when the dedupe key existed.
pub async fn enqueue_tx(tx: &mut Tx, job: NewJob<'_>) -> StoreResult<bool> {
    Ok(enqueue_many_tx(tx, std::slice::from_ref(&job)).await? > 0)
}

/// Enqueues several jobs inside an open transaction with one statement (jobs whose dedupe
/// key exists are skipped). Returns how many were enqueued.
pub async fn enqueue_many_tx(tx: &mut Tx, jobs: &[NewJob<'_>]) -> StoreResult<u64> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let mut b = super::batch::Batch::new();
    enqueue_many_into(&mut b, jobs);
    Ok(b.run(tx).await?.first().map_or(0, |o| o.count()))
}

/// [`enqueue_many_tx`] as one statement of `batch`; nothing is added for no jobs.
pub fn enqueue_many_into(batch: &mut super::batch::Batch, jobs: &[NewJob<'_>]) {
    if jobs.is_empty() {
        return;
    }
    let now = now_micros();
    let mut sql = String::from(
        "insert into jobs (id, kind, tenant_id, payload, status, attempts, max_attempts, run_at, dedupe_key, created_at) values ",
    );
    let mut args = Vec::with_capacity(jobs.len() * 7);
    for (i, job) in jobs.iter().enumerate() {
        let n = i * 7;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, 'queued', 0, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6,
            n + 7,
            n + 6
        ));
        args.extend([
            new_id().into(),
            job.kind.into(),
            job.tenant_id.into(),
            (&job.payload).into(),
            job.max_attempts.into(),
            now.into(),
            (&job.dedupe_key).into(),
        ]);
    }
    sql.push_str(" on conflict (dedupe_key) do nothing");
    batch.push(sql, args);
}

/// On PostgreSQL, how often a claim looks for expired leases first (microseconds).
const EXPIRED_SWEEP_MICROS: i64 = 5_000_000;

/// Claims the next runnable job (queued and due, or running with an expired lease).
pub async fn claim(db: &Db, lease_secs: i64) -> StoreResult<Option<Job>> {
    let now = now_micros();
    let lease = now + lease_secs * 1_000_000;
    // The two statements differ only by `for update skip locked`, which SQLite lacks
    // (it has a single writer, so no two workers can claim the same row there).
    let job = match db {
        Db::Sqlite { read, write, .. } => {
            // Ask a reader first: the single writer is shared with every checkout and
            // import, and most wake-ups (one per successful write request) find no job.
            // The claim itself stays one guarded statement on the writer.
            let ready: bool = sqlx::query_scalar(
                "select exists(select 1 from jobs where (status = 'queued' and run_at <= $1) or (status = 'running' and locked_until < $1))",
            )
            .bind(now)
            .fetch_one(read)
            .await?;
            if !ready {
                return Ok(None);
            }
            sqlx::query_as::<_, Job>(
                "update jobs set status = 'running', attempts = attempts + 1, locked_until = $2
                 where id = (select id from jobs where (status = 'queued' and run_at <= $1) or (status = 'running' and locked_until < $1)
                             order by run_at limit 1)
                 returning id, kind, tenant_id, payload, attempts, max_attempts",
            )
            .bind(now)
            .bind(lease)
            .fetch_optional(write)
            .await?
        }
        Db::Pg { platform: pool, .. } => {
            // Two statements, each a plain index scan of `jobs_ready` in `run_at` order that
            // stops at its first row: such a scan marks the index entries of dead row
            // versions (every claim and completion leaves some) as dead, so the next scan
            // skips them. One statement with `or` is a bitmap scan, which reads every dead
            // entry again on each claim until autovacuum comes by. Expired leases are
            // looked for when nothing is queued, and at least every few seconds.
            const QUEUED: &str =
                "update jobs set status = 'running', attempts = attempts + 1, locked_until = $2
                 where id = (select id from jobs where status = 'queued' and run_at <= $1
                             order by run_at limit 1 for update skip locked)
                 returning id, kind, tenant_id, payload, attempts, max_attempts";
            const EXPIRED: &str =
                "update jobs set status = 'running', attempts = attempts + 1, locked_until = $2
                 where id = (select id from jobs where status = 'running' and locked_until < $1
                             order by run_at limit 1 for update skip locked)
                 returning id, kind, tenant_id, payload, attempts, max_attempts";
            static LAST_EXPIRED_SWEEP: std::sync::atomic::AtomicI64 =
                std::sync::atomic::AtomicI64::new(0);
            let sweep_due = now - LAST_EXPIRED_SWEEP.load(std::sync::atomic::Ordering::Relaxed)
                > EXPIRED_SWEEP_MICROS;
            let order = if sweep_due {
                LAST_EXPIRED_SWEEP.store(now, std::sync::atomic::Ordering::Relaxed);
                [EXPIRED, QUEUED]
            } else {
                [QUEUED, EXPIRED]
            };
            let mut found = None;
            for sql in order {
                found = sqlx::query_as::<_, Job>(sql)
                    .bind(now)
                    .bind(lease)
                    .fetch_optional(pool)
                    .await?;
                if found.is_some() {
                    break;
                }
            }
            found
        }
    };
    Ok(job)
}

/// Pushes a running job's lease `lease_secs` from now (a long job's heartbeat, so that no
/// other worker claims it while it is still making progress).
pub async fn extend_lease(db: &Db, id: Uuid, lease_secs: i64) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query("update jobs set locked_until = $2 where id = $1 and status = 'running'")
        .bind(id)
        .bind(now_micros() + lease_secs * 1_000_000)
        .execute(p)
        .await)?;
    Ok(())
}

/// Marks the queued job with `dedupe_key` done: its work was carried out by the caller
/// directly (e.g. the CLI running an import in process). A job a worker already holds
/// is left to that worker.
pub async fn complete_queued_by_key(db: &Db, dedupe_key: &str) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query("update jobs set status = 'done', finished_at = $2 where dedupe_key = $1 and status = 'queued'")
        .bind(dedupe_key)
        .bind(now_micros())
        .execute(p)
        .await)?;
    Ok(())
}

/// Marks a job done.
pub async fn complete(db: &Db, id: Uuid) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query("update jobs set status = 'done', finished_at = $2, locked_until = null where id = $1")
        .bind(id)
        .bind(now_micros())
        .execute(p)
        .await)?;
    Ok(())
}

/// Records a failure: requeues at `retry_at` (µs) or marks the job failed for good.
pub async fn fail(db: &Db, id: Uuid, error: &str, retry_at: Option<i64>) -> StoreResult<()> {
    match retry_at {
        Some(at) => {
            exec_write!(db, p => sqlx::query("update jobs set status = 'queued', run_at = $2, last_error = $3, locked_until = null where id = $1")
            .bind(id)
            .bind(at)
            .bind(error)
            .execute(p)
            .await)?
        }
        None => {
            exec_write!(db, p => sqlx::query("update jobs set status = 'failed', last_error = $2, finished_at = $3, locked_until = null where id = $1")
            .bind(id)
            .bind(error)
            .bind(now_micros())
            .execute(p)
            .await)?
        }
    };
    Ok(())
}

/// Makes every `running` job claimable now. Called at start-up on SQLite, where the
/// only process that could hold a lease is the one that just died.
pub async fn release_all_leases(db: &Db) -> StoreResult<u64> {
    let r = exec_write!(db, p => sqlx::query("update jobs set status = 'queued', locked_until = null where status = 'running'")
        .execute(p)
        .await)?;
    Ok(r)
}
