//! Store-wide settings of one tenant that live on its `tenants` row (methods on
//! [`TenantDb`]): the store currency.

use super::audit::{self, Actor, Change};
use super::{StoreError, StoreResult, TenantDb, now_micros};
use crate::domain::Currency;
use crate::{dispatch_tx, exec_tx};

impl TenantDb {
    /// Changes the store currency to `to`, with an audit entry, in one transaction: the
    /// tenant's currency, the currency of every variant price and of every cart. Prices keep
    /// their amounts (`19.99 EUR` becomes `19.99 SEK`: the merchant re-prices if needed).
    /// Returns the previous currency (equal to `to` when nothing changed).
    ///
    /// Errors: [`StoreError::Conflict`] on `currency` once the store has an order (orders,
    /// payments and refunds keep the currency they were placed in, so the store's must not
    /// change under them), or when `to` has a different number of decimals than the current
    /// currency (e.g. EUR → JPY) while the store has products (their minor-unit amounts
    /// would change meaning).
    #[tracing::instrument(skip_all, fields(tenant = %self.tenant))]
    pub async fn set_currency(&self, actor: &Actor, to: Currency) -> StoreResult<Currency> {
        let mut tx = self.begin().await?;
        // Takes the row lock (PostgreSQL) before the checks; SQLite has one writer anyway.
        exec_tx!(&mut tx, c => sqlx::query("update tenants set updated_at = updated_at where id = $1")
            .bind(self.tenant)
            .execute(&mut **c)
            .await)?;
        let current: String = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
            "select currency from tenants where id = $1")
            .bind(self.tenant)
            .fetch_one(&mut **c)
            .await)?;
        let from = Currency::parse(&current).unwrap_or(Currency::EUR);
        if from == to {
            return Ok(from);
        }
        let orders: i64 = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
            "select count(*) from orders where tenant_id = $1")
            .bind(self.tenant)
            .fetch_one(&mut **c)
            .await)?;
        if orders > 0 {
            return Err(StoreError::Conflict {
                field: "currency",
                message: format!(
                    "the store currency cannot be changed once the store has orders ({orders} so far, in {}): orders, payments and refunds keep the currency they were placed in",
                    from.as_str()
                ),
            });
        }
        if from.exponent() != to.exponent() {
            let products: i64 = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
                "select count(*) from products where tenant_id = $1")
                .bind(self.tenant)
                .fetch_one(&mut **c)
                .await)?;
            if products > 0 {
                return Err(StoreError::Conflict {
                    field: "currency",
                    message: format!(
                        "{} has {} decimal places and {} has {}: the prices of the store's {products} products would change meaning; change the currency before adding products, or to one with {} decimal places",
                        from.as_str(),
                        from.exponent(),
                        to.as_str(),
                        to.exponent(),
                        from.exponent()
                    ),
                });
            }
        }
        let now = now_micros();
        exec_tx!(&mut tx, c => sqlx::query("update tenants set currency = $2, updated_at = $3 where id = $1")
            .bind(self.tenant)
            .bind(to.as_str())
            .bind(now)
            .execute(&mut **c)
            .await)?;
        exec_tx!(&mut tx, c => sqlx::query("update variants set currency = $2 where tenant_id = $1")
            .bind(self.tenant)
            .bind(to.as_str())
            .execute(&mut **c)
            .await)?;
        exec_tx!(&mut tx, c => sqlx::query("update carts set currency = $2 where tenant_id = $1")
            .bind(self.tenant)
            .bind(to.as_str())
            .execute(&mut **c)
            .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("store.currency_changed", "tenant", self.tenant)
                .before(serde_json::json!({ "currency": from.as_str() }))
                .after(serde_json::json!({ "currency": to.as_str() })),
        )
        .await?;
        tx.commit().await?;
        Ok(from)
    }
}
