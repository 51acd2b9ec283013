//! Storage: one SQL text, two backends.
//!
//! [`Db`] wraps either an SQLite pair of pools (many readers, one writer: SQLite allows one
//! writer at a time, so a single writer connection never meets `SQLITE_BUSY`) or a
//! PostgreSQL pool. Every statement is written once with `$N` placeholders and run on
//! either backend through the [`dispatch!`] macro, which expands the same code for both.
//!
//! Tenant-owned data is reached only through [`TenantDb`] (see [`tenant`]), whose tenant id
//! is private and bound into every query. Cross-tenant reads (host → tenant resolution,
//! platform admin lists) live in [`platform`].

pub mod access;
pub mod audit;
pub mod batch;
pub mod carts;
pub mod catalog;
pub mod commerce;
pub mod customers;
pub mod domains;
pub mod events;
pub mod feeds;
pub mod fulfillment;
pub mod imports;
pub mod jobs;
pub mod onboarding;
pub mod orders;
pub mod platform;
pub mod provisioning;
pub mod shop;
pub mod tenant;
pub mod users;
pub mod webhooks;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

pub use tenant::TenantDb;

/// Storage-layer error. The web layer maps each variant once to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit; `field` names the API field that collided.
    #[error("{field} is already taken")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database URL or settings are unusable.
    #[error("{0}")]
    Config(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A storage outage, as opposed to a refusal of the request itself (see
/// [`StoreError::outage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The database cannot grow: SQLite `SQLITE_FULL` ("database or disk is full"),
    /// PostgreSQL `53100 disk_full`. The web layer answers 507 `storage_full`.
    Full,
    /// The database cannot be reached or refused the work for a passing reason: I/O error,
    /// busy/locked, a lost or refused connection, a pool timeout, a PostgreSQL restart
    /// (`57P01`…`57P03`, class `08`), out of memory (`53200`). The web layer answers 503.
    Unavailable,
}

impl Outage {
    /// The `kind` label of `souk_storage_errors_total` and the readiness report.
    pub fn as_str(self) -> &'static str {
        match self {
            Outage::Full => "full",
            Outage::Unavailable => "unavailable",
        }
    }
}

impl StoreError {
    /// Whether this error is a storage outage rather than a problem with the request:
    /// `Some(Full)` for a full disk, `Some(Unavailable)` for I/O errors, busy databases, lost
    /// connections and server restarts, `None` otherwise. Codes: SQLite primary result codes
    /// (<https://sqlite.org/rescode.html>), PostgreSQL SQLSTATE (appendix A of its manual).
    pub fn outage(&self) -> Option<Outage> {
        match self {
            StoreError::Database(e) => sqlx_outage(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => sqlx_outage(e),
            _ => None,
        }
    }

    /// Maps a unique-constraint violation to `Conflict { field }` using the constraint
    /// or column name found in the driver message; other errors pass through.
    pub fn on_unique(err: sqlx::Error, map: &[(&str, &'static str)]) -> StoreError {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            let msg = db.message().to_string();
            let constraint = db.constraint().unwrap_or("").to_string();
            for (needle, field) in map {
                if msg.contains(needle) || constraint.contains(needle) {
                    return StoreError::Conflict {
                        field,
                        message: format!("{field} is already taken"),
                    };
                }
            }
            return StoreError::Conflict {
                field: "id",
                message: "a record with the same key already exists".into(),
            };
        }
        StoreError::Database(err)
    }
}

/// See [`StoreError::outage`].
fn sqlx_outage(e: &sqlx::Error) -> Option<Outage> {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if let Ok(n) = code.parse::<i64>() {
                // SQLite: extended result code; the primary code is its low byte.
                return match n & 0xff {
                    13 => Some(Outage::Full),                         // SQLITE_FULL
                    5 | 6 | 10 | 14 | 7 => Some(Outage::Unavailable), // BUSY, LOCKED, IOERR, CANTOPEN, NOMEM
                    _ => None,
                };
            }
            match code.as_ref() {
                "53100" => Some(Outage::Full),
                c if c.starts_with("08")
                    || c.starts_with("57P")
                    || c == "53200"
                    || c == "53300" =>
                {
                    Some(Outage::Unavailable)
                }
                _ => None,
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => Some(Outage::Unavailable),
        _ => None,
    }
}

/// What this process has seen of its database: storage errors by kind and whether the
/// newest one is still unresolved (no successful write since). Shared by every clone of a
/// [`Db`]; read by the readiness endpoint and `/metrics`.
#[derive(Debug, Default)]
pub struct StorageHealth {
    full: AtomicU64,
    unavailable: AtomicU64,
    /// Microseconds of the first unresolved outage (0: healthy) and its kind (1 full, 2
    /// unavailable).
    degraded_since: AtomicI64,
    degraded_kind: AtomicU32,
    /// Microseconds of the newest outage.
    last_error: AtomicI64,
}

/// How long after its newest storage error a node without a successful write since still
/// reports itself degraded (so a node that a load balancer took out comes back on its own).
pub const DEGRADED_WINDOW_MICROS: i64 = 30_000_000;

/// A snapshot of [`StorageHealth`] for the readiness report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthReport {
    /// `None` when healthy, else the kind of the unresolved outage.
    pub degraded: Option<&'static str>,
    /// Microseconds since the epoch of the first unresolved outage.
    pub degraded_since_micros: Option<i64>,
    pub storage_full_errors: u64,
    pub storage_unavailable_errors: u64,
}

impl StorageHealth {
    /// Counts an outage (also in `souk_storage_errors_total{kind}`) and marks the storage
    /// degraded until [`StorageHealth::write_succeeded`].
    pub fn record(&self, outage: Outage) {
        match outage {
            Outage::Full => self.full.fetch_add(1, Ordering::Relaxed),
            Outage::Unavailable => self.unavailable.fetch_add(1, Ordering::Relaxed),
        };
        metrics::counter!("souk_storage_errors_total", "kind" => outage.as_str()).increment(1);
        let kind = match outage {
            Outage::Full => 1,
            Outage::Unavailable => 2,
        };
        self.degraded_kind.store(kind, Ordering::Relaxed);
        let now = now_micros();
        self.last_error.store(now, Ordering::Relaxed);
        let _ = self
            .degraded_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Records `err` when it is an outage; returns it unchanged.
    pub fn observe(&self, err: StoreError) -> StoreError {
        if let Some(o) = err.outage() {
            self.record(o);
        }
        err
    }

    /// A write committed: the storage is writable again.
    pub fn write_succeeded(&self) {
        if self.degraded_since.load(Ordering::Relaxed) != 0 {
            self.degraded_since.store(0, Ordering::Relaxed);
            self.degraded_kind.store(0, Ordering::Relaxed);
        }
    }

    /// The current state: degraded from the first unresolved outage until a write
    /// succeeds, or [`DEGRADED_WINDOW_MICROS`] pass without another storage error.
    pub fn report(&self) -> HealthReport {
        let mut since = self.degraded_since.load(Ordering::Relaxed);
        if since != 0
            && now_micros() - self.last_error.load(Ordering::Relaxed) > DEGRADED_WINDOW_MICROS
        {
            since = 0;
        }
        HealthReport {
            degraded: match (since, self.degraded_kind.load(Ordering::Relaxed)) {
                (0, _) => None,
                (_, 1) => Some("full"),
                _ => Some("unavailable"),
            },
            degraded_since_micros: (since != 0).then_some(since),
            storage_full_errors: self.full.load(Ordering::Relaxed),
            storage_unavailable_errors: self.unavailable.load(Ordering::Relaxed),
        }
    }
}

/// Runs the same code against whichever backend a [`Db`] (or [`Tx`]) holds.
/// `dispatch!(db, pool => expr)` binds the SQLite read pool / PG pool; use `dispatch_write!`
/// for statements that write outside a transaction.
#[macro_export]
macro_rules! dispatch {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read: $p, .. } => $body,
            $crate::store::Db::Pg { platform: $p, .. } => $body,
        }
    };
}

/// Like [`dispatch!`] but binds the SQLite writer pool.
#[macro_export]
macro_rules! dispatch_write {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write: $p, .. } => $body,
            $crate::store::Db::Pg { platform: $p, .. } => $body,
        }
    };
}

/// Runs the same code against the connection of an open [`Tx`]: `exec_tx!(tx, c => q.execute(&mut **c))`.
#[macro_export]
macro_rules! dispatch_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($c) => $body,
            $crate::store::Tx::Pg($c) => $body,
        }
    };
}

/// Like [`dispatch!`] for `execute` statements: yields `Result<u64, sqlx::Error>` (rows affected).
#[macro_export]
macro_rules! exec {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read: $p, .. } => $body.map(|r| r.rows_affected()),
            $crate::store::Db::Pg { platform: $p, .. } => $body.map(|r| r.rows_affected()),
        }
    };
}

/// Like [`dispatch_write!`] for `execute` statements: yields rows affected.
#[macro_export]
macro_rules! exec_write {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write: $p, .. } => $body.map(|r| r.rows_affected()),
            $crate::store::Db::Pg { platform: $p, .. } => $body.map(|r| r.rows_affected()),
        }
    };
}

/// Like [`dispatch_tx!`] for `execute` statements: yields rows affected.
#[macro_export]
macro_rules! exec_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($c) => $body.map(|r| r.rows_affected()),
            $crate::store::Tx::Pg($c) => $body.map(|r| r.rows_affected()),
        }
    };
}

/// Fetches the rows of one tenant whose `$col` is one of `$ids`, as `$row`:
/// `$head` is `select … from t where tenant_id = ` (the tenant is bound after it), `$tail`
/// follows the `in (…)` list (e.g. `" order by position"`). `$exec` is a pool, or
/// `&mut **c` inside [`dispatch_tx!`]/[`tenant_query!`], so pool and transaction paths share
/// one query. `$ids` must not be empty. Evaluates to `Result<Vec<$row>, sqlx::Error>`.
macro_rules! fetch_in {
    ($exec:expr, $row:ty, $head:expr, $col:literal, $tenant:expr, $ids:expr, $tail:literal) => {{
        let mut qb = sqlx::QueryBuilder::new($head);
        qb.push_bind($tenant).push(concat!(" and ", $col, " in ("));
        let mut sep = qb.separated(", ");
        for id in $ids {
            sep.push_bind(*id);
        }
        qb.push(concat!(")", $tail));
        qb.build_query_as::<$row>().fetch_all($exec).await
    }};
}
pub(crate) use fetch_in;

/// Which SQL backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database handle: chosen from the URL scheme (`sqlite://…` or `postgres://…`).
///
/// On PostgreSQL there are two pools, both running as the non-owner role `souk_app` so
/// that row-level security applies (migrations/postgres/0003_rls.sql):
/// - `platform`: sessions carry `souk.scope = 'platform'` and see every tenant's rows. It is
///   the explicitly named cross-tenant path (this module's `dispatch!` macros, [`Db::begin`]).
/// - `tenant`: sessions see nothing until a transaction sets `souk.tenant_id`; only
///   [`TenantDb`] uses it.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite {
        read: SqlitePool,
        /// The tenant path's read connections (see [`Readers`]).
        readers: Readers,
        /// The connection [`Db::run_checkpointer`] checkpoints the log on.
        checkpointer: Arc<tokio::sync::Mutex<sqlx::SqliteConnection>>,
        write: SqlitePool,
        /// `pragma max_page_count` applied to the writer before each use (0: SQLite's
        /// default). A size cap for the operator, and how tests fill the "disk" without root.
        max_pages: Arc<AtomicU32>,
        health: Arc<StorageHealth>,
    },
    Pg {
        platform: PgPool,
        tenant: PgPool,
        health: Arc<StorageHealth>,
    },
}

/// SQLite read connections held outside sqlx's pool, for the tenant path's reads
/// ([`TenantDb`]). sqlx's pool pings a connection each time it comes back (for SQLite, a
/// round trip to the connection's thread); a local file does not go stale, so these are
/// handed out under a lock instead: the first free one from a rotating start, or else the
/// start's one once it is free.
#[derive(Clone, Debug)]
pub struct Readers {
    conns: Arc<[tokio::sync::Mutex<sqlx::SqliteConnection>]>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl Readers {
    /// Opens `n` (at least 1) connections with `opts` (read-only).
    async fn open(opts: &SqliteConnectOptions, n: u32) -> StoreResult<Self> {
        use sqlx::ConnectOptions;
        let mut conns = Vec::with_capacity(n.max(1) as usize);
        for _ in 0..n.max(1) {
            conns.push(tokio::sync::Mutex::new(opts.connect().await?));
        }
        Ok(Self {
            conns: conns.into(),
            next: Arc::default(),
        })
    }

    /// A read connection for one statement (or a few), held until the guard drops.
    pub(crate) async fn get(&self) -> tokio::sync::MutexGuard<'_, sqlx::SqliteConnection> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if let Ok(g) = self.conns[(start + k) % n].try_lock() {
                return g;
            }
        }
        self.conns[start % n].lock().await
    }
}

/// WAL frames (pages) past which the SQLite writer checkpoints at the end of a commit by
/// itself (SQLite's default is 1,000): a fallback, reached only if the background
/// checkpointer ([`Db::run_checkpointer`]) falls behind or does not run.
const SQLITE_WRITER_AUTOCHECKPOINT: u32 = 8_000;

/// How often the background checkpointer copies the SQLite log into the database file.
const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The PostgreSQL role the application's pools act as (created by migration 0003).
pub const PG_APP_ROLE: &str = "souk_app";

/// A pooled PostgreSQL connection idle for this long is pinged before it is handed out
/// (one idle for less is used as is: a broken one fails its statement and is dropped).
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(10);

/// An open write transaction on either backend.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Db {
    /// Connects and runs the migrations for the backend named by `url`.
    ///
    /// `sqlite://PATH` creates the file if missing and enables WAL with
    /// `synchronous=NORMAL`; `postgres://…` connects a pool of `max_connections`.
    /// Errors: an unknown scheme, an unreachable server, or a failed migration.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Db> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            // Migrations run as the connecting (owner) user, before the role exists.
            let owner = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.clone())
                .await?;
            sqlx::migrate!("migrations/postgres").run(&owner).await?;
            owner.close().await;
            let pool = |platform: bool| {
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    // sqlx pings every idle connection before handing it out (a round trip
                    // per statement on the tenant path); only one idle for a while is
                    // checked, and a connection that breaks in use is dropped by sqlx.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            use sqlx::Connection;
                            if meta.idle_for < PG_PING_AFTER_IDLE {
                                return Ok(true);
                            }
                            Ok(conn.ping().await.is_ok())
                        })
                    })
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("set role souk_app").await?;
                            if platform {
                                conn.execute("set souk.scope = 'platform'").await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(opts.clone())
            };
            Db::Pg {
                platform: pool(true).await?,
                tenant: pool(false).await?,
                health: Arc::default(),
            }
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let max_pages = Arc::new(AtomicU32::new(0));
            let cap = max_pages.clone();
            // The writer checkpoints by itself only past SQLITE_WRITER_AUTOCHECKPOINT
            // frames: [`Db::run_checkpointer`] keeps the log short off the request path.
            let write_opts = opts.clone().pragma(
                "wal_autocheckpoint",
                SQLITE_WRITER_AUTOCHECKPOINT.to_string(),
            );
            let checkpointer = {
                use sqlx::ConnectOptions;
                Arc::new(tokio::sync::Mutex::new(opts.connect().await?))
            };
            // A local file does not go stale: no `ping` round trip to the connection's
            // thread before each use (both pools).
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .before_acquire(move |conn, _| {
                    let n = cap.load(Ordering::Relaxed);
                    Box::pin(async move {
                        if n != 0 {
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "pragma max_page_count = {n}"
                            )))
                            .execute(&mut *conn)
                            .await?;
                        }
                        Ok(true)
                    })
                })
                .after_release(|conn, _| Box::pin(async move { Ok(writer_is_clean(conn).await) }))
                .connect_with(write_opts)
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.max(2))
                .test_before_acquire(false)
                .connect_with(opts.clone().read_only(true))
                .await?;
            let readers = Readers::open(&opts.read_only(true), max_connections.max(2)).await?;
            let db = Db::Sqlite {
                read,
                readers,
                checkpointer,
                write,
                max_pages,
                health: Arc::default(),
            };
            db.migrate_sqlite().await?;
            db
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL scheme in '{}': use sqlite://PATH or postgres://…",
                redact_url(url)
            )));
        };
        Ok(db)
    }

    async fn migrate_sqlite(&self) -> StoreResult<()> {
        if let Db::Sqlite { write, .. } = self {
            sqlx::migrate!("migrations/sqlite").run(write).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Pg { .. } => Backend::Postgres,
        }
    }

    /// Opens a platform-path write transaction (on SQLite, on the single writer connection).
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite { write, .. } => Tx::Sqlite(write.begin().await?),
            Db::Pg { platform, .. } => Tx::Pg(platform.begin().await?),
        })
    }

    /// On SQLite, copies the write-ahead log into the database file every 100 ms with a
    /// `PASSIVE` checkpoint (it never waits for, nor blocks, readers or the writer) on a
    /// connection of its own, until `shutdown` flips to true. Without it SQLite
    /// checkpoints inside the commit that grows the log past 1,000 pages: that request,
    /// and every write queued behind the single writer, waits for the copy and its
    /// `fsync` (about 20 ms here, on one order in twenty). Returns at once on PostgreSQL.
    pub async fn run_checkpointer(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Db::Sqlite { checkpointer, .. } = self else {
            return;
        };
        let mut tick = tokio::time::interval(SQLITE_CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // A dropped sender is a shutdown too (no spinning on its error).
                changed = shutdown.changed() => if changed.is_err() { return; },
            }
            if *shutdown.borrow() {
                return;
            }
            let mut conn = checkpointer.lock().await;
            if let Err(e) = sqlx::query("pragma wal_checkpoint(PASSIVE)")
                .execute(&mut *conn)
                .await
            {
                // A full disk or a locked file: the writer's own checkpoint is the
                // fallback, and the next tick tries again.
                tracing::debug!(error = %e, "background checkpoint failed");
            }
        }
    }

    /// This process's record of storage outages (shared by all clones).
    pub fn health(&self) -> &StorageHealth {
        match self {
            Db::Sqlite { health, .. } | Db::Pg { health, .. } => health,
        }
    }

    /// Caps the SQLite database at `pages` pages (`pragma max_page_count`, applied to the
    /// writer before its next use; 0 leaves the current cap). Writes beyond the cap fail
    /// with `SQLITE_FULL` exactly as on a full disk. No effect on PostgreSQL.
    pub fn set_sqlite_max_pages(&self, pages: u32) {
        if let Db::Sqlite { max_pages, .. } = self {
            max_pages.store(pages, Ordering::Relaxed);
        }
    }

    /// The SQLite database's current size in pages (`pragma page_count`); 0 on PostgreSQL.
    pub async fn sqlite_page_count(&self) -> StoreResult<u32> {
        Ok(match self {
            Db::Sqlite { read, .. } => {
                let n: i64 = sqlx::query_scalar("pragma page_count")
                    .fetch_one(read)
                    .await?;
                n as u32
            }
            Db::Pg { .. } => 0,
        })
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> StoreResult<()> {
        exec!(self, p => sqlx::query("select 1").execute(p).await)?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            Db::Pg {
                platform, tenant, ..
            } => {
                platform.close().await;
                tenant.close().await;
            }
        }
    }
}

/// Refreshes PostgreSQL's planner statistics of every table (`ANALYZE`), connecting as
/// the URL's user (the tables' owner: the application role may not analyze them).
/// Autovacuum does this on a live database; the benchmarks call it after seeding a fresh
/// one. A no-op for SQLite URLs. Errors: the server cannot be reached or refuses.
pub async fn analyze(url: &str) -> StoreResult<()> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(());
    }
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
    sqlx::query("analyze").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Whether the SQLite writer connection can go back to the pool: outside any transaction,
/// both as sqlx counts it and as SQLite itself reports (`sqlite3_get_autocommit`).
///
/// A failed write (full disk, I/O error, a panic while a transaction was open) can leave the
/// two disagreeing: SQLite rolls some failures back on its own, sqlx's `ROLLBACK` then fails
/// and its depth counter stays at 1, so every later `begin` becomes a `SAVEPOINT` inside a
/// transaction that never commits. Such a connection is closed (which rolls back whatever it
/// still holds) and the pool opens a fresh one for the next write.
async fn writer_is_clean(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection;
    // sqlx's depth counter is 0 only once every `BEGIN` it sent was committed or rolled
    // back (a failed `COMMIT`/`ROLLBACK` leaves it above 0, and so does a dropped transaction
    // until its queued `ROLLBACK` ran), and all writes go through its transactions: then
    // SQLite is outside a transaction too, and the check below (a round trip to the
    // connection's thread) is not needed.
    if !conn.is_in_transaction() {
        return true;
    }
    // The handle first: locking it is a command queued behind whatever the connection's
    // worker still has to run, such as the `ROLLBACK` a dropped transaction queued. Only
    // then is sqlx's depth counter read; read before, a dropped (rolled back) transaction
    // would look left open and the writer would be reopened for nothing.
    let sqlite_clean = match conn.lock_handle().await {
        // SAFETY: the handle is locked for us (the worker thread is parked) and valid for
        // the lock's lifetime; sqlite3_get_autocommit only reads the connection's flag.
        Ok(mut h) => unsafe {
            libsqlite3_sys::sqlite3_get_autocommit(h.as_raw_handle().as_ptr()) != 0
        },
        Err(_) => false,
    };
    let sqlx_clean = !conn.is_in_transaction();
    if !(sqlx_clean && sqlite_clean) {
        tracing::warn!(
            sqlx_clean,
            sqlite_clean,
            "SQLite writer left inside a transaction after an error; reopening it"
        );
        metrics::counter!("souk_storage_writer_reopened_total").increment(1);
    }
    sqlx_clean && sqlite_clean
}

/// Replaces the password of a database URL with `***` for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{}:***{}", &url[..s], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `text` with the LIKE wildcards (`%`, `_`) and the escape character (`\`) escaped, for
/// a pattern used with `like $n escape '\'` (same on SQLite and PostgreSQL).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Current time as integer microseconds since the Unix epoch (the storage timestamp unit).
pub fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

/// Microseconds since the epoch → RFC 3339 string for the API.
pub fn micros_to_rfc3339(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A new time-ordered id (UUIDv7).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Serializes a value into the JSON text stored in `text` columns.
pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Parses JSON text from a `text` column.
pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON column: {e}")))
}
