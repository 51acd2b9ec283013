//! Several statements sent as one: on SQLite one round trip to the connection's thread
//! (where each round trip costs two or more thread switches and the single writer is held
//! meanwhile), on PostgreSQL one statement after another on the same connection.
//!
//! Each statement is written with its own `$1…$n` placeholders; on SQLite they are
//! renumbered and the statements joined with `;` into one multi-statement prepared
//! statement, which sqlx's SQLite driver runs in order and stops at the first error (sqlx
//! marks multi-statement queries as deprecated, launchbadge/sqlx#3108: should they go,
//! `run_sqlite` is the one place to change to one statement at a time, as on PostgreSQL).
//! Statements that depend on an earlier one's result read it with a subquery, not from
//! Rust; guards are checked from the outcomes after the batch, and a failed guard rolls
//! the transaction back.

use super::{StoreResult, Tx};
use futures_util::TryStreamExt;
use sqlx::{Arguments, Either, Row};
use uuid::Uuid;

/// One bound value. Nulls keep their type (PostgreSQL checks it).
#[derive(Debug, Clone)]
pub enum Arg {
    Uuid(Option<Uuid>),
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
}

/// `From` impls: `$t` becomes `Arg::$variant` through `$conv`.
macro_rules! arg_from {
    ($($t:ty => $variant:ident($v:ident => $conv:expr)),* $(,)?) => {
        $(impl From<$t> for Arg {
            fn from($v: $t) -> Self {
                Arg::$variant($conv)
            }
        })*
    };
}

arg_from! {
    Uuid => Uuid(v => Some(v)),
    Option<Uuid> => Uuid(v => v),
    i64 => Int(v => Some(v)),
    Option<i64> => Int(v => v),
    bool => Bool(v => Some(v)),
    String => Text(v => Some(v)),
    &str => Text(v => Some(v.to_string())),
    &String => Text(v => Some(v.clone())),
    Option<String> => Text(v => v),
    &Option<String> => Text(v => v.clone()),
    Option<&str> => Text(v => v.map(str::to_string)),
}

/// What a statement of a batch gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// Rows affected.
    Count,
    /// The first column of its first row, a uuid (`returning id`).
    Uuid,
    /// The first column of its first row, an integer.
    Int,
}

/// The outcome of one statement, in the order they were pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Count(u64),
    Uuid(Option<Uuid>),
    Int(Option<i64>),
}

impl Outcome {
    /// Rows affected (0 for a statement that returns a value).
    pub fn count(self) -> u64 {
        match self {
            Outcome::Count(n) => n,
            _ => 0,
        }
    }
    pub fn uuid(self) -> Option<Uuid> {
        match self {
            Outcome::Uuid(v) => v,
            _ => None,
        }
    }
    pub fn int(self) -> Option<i64> {
        match self {
            Outcome::Int(v) => v,
            _ => None,
        }
    }
}

struct Statement {
    sql: String,
    args: Vec<Arg>,
    returns: Returns,
}

/// Statements to run in order in one transaction, see the module docs.
#[derive(Default)]
pub struct Batch {
    statements: Vec<Statement>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a statement (`$1…$n` refer to `args`) that reports the rows it affected.
    pub fn push(&mut self, sql: impl Into<String>, args: Vec<Arg>) -> &mut Self {
        self.push_returning(sql, args, Returns::Count)
    }

    /// Adds a statement that returns one value (or none) in its first column.
    pub fn push_returning(
        &mut self,
        sql: impl Into<String>,
        args: Vec<Arg>,
        returns: Returns,
    ) -> &mut Self {
        self.statements.push(Statement {
            sql: sql.into(),
            args,
            returns,
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs the statements in order inside `tx`. The first failing statement ends the
    /// batch with its error (the transaction is then to be dropped, which rolls it back).
    /// Returns one [`Outcome`] per statement.
    pub async fn run(self, tx: &mut Tx) -> StoreResult<Vec<Outcome>> {
        match tx {
            Tx::Sqlite(c) => self.run_sqlite(c).await,
            Tx::Pg(c) => self.run_pg(c).await,
        }
    }

    /// Runs the statements in order for `db`'s tenant without a transaction of their own
    /// on SQLite: each statement commits by itself, in one round trip to the writer, and
    /// the first failing one ends the batch with the earlier ones kept. On PostgreSQL they
    /// run in one tenant transaction (row-level security needs one). For batches where a
    /// prefix of the statements is a consistent state (e.g. a guarded insert, then a
    /// timestamp), such as cart edits.
    pub async fn run_each(self, db: &super::TenantDb) -> StoreResult<Vec<Outcome>> {
        match &db.pools {
            super::tenant::TenantPools::Sqlite { write, .. } => {
                let mut c = write.acquire().await?;
                self.run_sqlite(&mut c).await
            }
            super::tenant::TenantPools::Pg(pool) => {
                let mut tx = super::tenant::begin_tenant(pool, db.tenant).await?;
                let out = self.run_pg(&mut tx).await?;
                tx.commit().await?;
                Ok(out)
            }
        }
    }

    async fn run_sqlite(self, c: &mut sqlx::SqliteConnection) -> StoreResult<Vec<Outcome>> {
        if self.statements.is_empty() {
            return Ok(vec![]);
        }
        let (sql, args) = self.joined()?;
        let mut out = Vec::with_capacity(self.statements.len());
        let mut first: Option<sqlx::sqlite::SqliteRow> = None;
        {
            let mut rows =
                sqlx::Executor::fetch_many(c, sqlx::query_with(sqlx::AssertSqlSafe(sql), args));
            while let Some(item) = rows.try_next().await? {
                match item {
                    Either::Right(row) => {
                        first.get_or_insert(row);
                    }
                    Either::Left(done) => {
                        let st = self.statements.get(out.len()).ok_or_else(|| {
                            super::StoreError::Corrupt(
                                "a batch gave more results than statements".into(),
                            )
                        })?;
                        out.push(outcome(st.returns, done.rows_affected(), first.take())?);
                    }
                }
            }
        }
        if out.len() != self.statements.len() {
            return Err(super::StoreError::Corrupt(format!(
                "a batch of {} statements gave {} results",
                self.statements.len(),
                out.len()
            )));
        }
        Ok(out)
    }

    async fn run_pg(self, c: &mut sqlx::PgConnection) -> StoreResult<Vec<Outcome>> {
        let mut out = Vec::with_capacity(self.statements.len());
        for st in self.statements {
            let mut args = sqlx::postgres::PgArguments::default();
            for a in &st.args {
                add_pg(&mut args, a)?;
            }
            let q = sqlx::query_with(sqlx::AssertSqlSafe(st.sql), args);
            out.push(match st.returns {
                Returns::Count => Outcome::Count(q.execute(&mut *c).await?.rows_affected()),
                r => outcome(r, 0, q.fetch_optional(&mut *c).await?)?,
            });
        }
        Ok(out)
    }

    /// The statements as one SQLite statement text with renumbered placeholders, and the
    /// concatenated arguments.
    fn joined(&self) -> StoreResult<(String, sqlx::sqlite::SqliteArguments)> {
        let mut sql = String::new();
        let mut args = sqlx::sqlite::SqliteArguments::default();
        let mut offset = 0;
        for st in &self.statements {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str(&renumber(&st.sql, offset));
            for a in &st.args {
                let r = match a {
                    Arg::Uuid(v) => args.add(*v),
                    Arg::Int(v) => args.add(*v),
                    Arg::Text(v) => args.add(v.clone()),
                    Arg::Bool(v) => args.add(*v),
                };
                r.map_err(|e| super::StoreError::Corrupt(format!("batch argument: {e}")))?;
            }
            offset += st.args.len();
        }
        Ok((sql, args))
    }
}

fn add_pg(args: &mut sqlx::postgres::PgArguments, a: &Arg) -> StoreResult<()> {
    let r = match a {
        Arg::Uuid(v) => args.add(*v),
        Arg::Int(v) => args.add(*v),
        Arg::Text(v) => args.add(v.clone()),
        Arg::Bool(v) => args.add(*v),
    };
    r.map_err(|e| super::StoreError::Corrupt(format!("batch argument: {e}")))
}

fn outcome<R: Row>(returns: Returns, affected: u64, row: Option<R>) -> StoreResult<Outcome>
where
    usize: sqlx::ColumnIndex<R>,
    Uuid: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(match returns {
        Returns::Count => Outcome::Count(affected),
        Returns::Uuid => Outcome::Uuid(match row {
            Some(r) => Some(r.try_get::<Uuid, _>(0)?),
            None => None,
        }),
        Returns::Int => Outcome::Int(match row {
            Some(r) => Some(r.try_get::<i64, _>(0)?),
            None => None,
        }),
    })
}

/// `sql` with every `$n` placeholder shifted by `offset` (`$1` → `$(1+offset)`). The
/// statements of a batch hold no `$` inside string literals.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, ch)) = chars.next() {
        out.push(ch);
        if ch != '$' {
            continue;
        }
        let mut n = 0usize;
        let mut digits = false;
        while let Some(&(_, d)) = chars.peek() {
            match d.to_digit(10) {
                Some(v) => {
                    n = n * 10 + v as usize;
                    digits = true;
                    chars.next();
                }
                None => break,
            }
        }
        if digits {
            out.push_str(&(n + offset).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn placeholders_are_shifted_and_the_rest_is_kept() {
        assert_eq!(
            renumber("update t set a = $1, b = $12 where c = $2", 3),
            "update t set a = $4, b = $15 where c = $5"
        );
        assert_eq!(renumber("select $1", 0), "select $1");
        assert_eq!(renumber("select '$' || $1", 1), "select '$' || $2");
    }
}
