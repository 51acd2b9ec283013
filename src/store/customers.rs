//! A store's customers, always through [`TenantDb`]: one record per e-mail per store
//! (the same e-mail at two stores is two unrelated customers), created by a guest
//! checkout or a registration; accounts (argon2id password hashes, computed by the
//! caller), sessions and one-time tokens (login links, password resets) stored as SHA-256
//! hashes in `customer_tokens`, separate from staff sessions; saved addresses.

use super::catalog::MoneyDto;
use super::orders::Order;
use super::{StoreError, StoreResult, TenantDb, micros_to_rfc3339, new_id, now_micros, to_json};
use crate::domain::Email;
use crate::pricing::Address;
use serde::Serialize;
use uuid::Uuid;

/// Session lifetime: 30 days.
pub const SESSION_TTL_MICROS: i64 = 30 * 24 * 3600 * 1_000_000;
/// Login links and password-reset links work once, for 1 hour.
pub const ONE_TIME_TTL_MICROS: i64 = 3600 * 1_000_000;

/// A customer as the APIs return it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: Uuid,
    /// Lower case.
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    /// Whether the customer has an account (a password); guests have none.
    pub has_account: bool,
    pub accepts_marketing: bool,
    /// Orders placed (cancelled ones included) and the sum of the totals of the orders
    /// not cancelled, in the store currency.
    pub orders_count: i64,
    pub lifetime_spend_minor: i64,
    /// RFC 3339.
    pub created_at: String,
}

/// A saved address.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SavedAddress {
    pub id: Uuid,
    #[serde(flatten)]
    pub address: Address,
    pub is_default: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct CustomerRow {
    id: Uuid,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    password_hash: Option<String>,
    accepts_marketing: bool,
    created_at: i64,
    orders_count: i64,
    lifetime_spend_minor: i64,
}

const CUSTOMER_SELECT: &str = "select c.id, c.email, c.first_name, c.last_name, c.phone, c.password_hash, c.accepts_marketing, c.created_at,
        (select count(*) from orders o where o.tenant_id = c.tenant_id and o.customer_id = c.id) as orders_count,
        (select cast(coalesce(sum(o.total_minor), 0) as bigint) from orders o where o.tenant_id = c.tenant_id and o.customer_id = c.id and o.status <> 'cancelled') as lifetime_spend_minor
     from customers c";

impl From<CustomerRow> for Customer {
    fn from(r: CustomerRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            phone: r.phone,
            has_account: r.password_hash.is_some(),
            accepts_marketing: r.accepts_marketing,
            orders_count: r.orders_count,
            lifetime_spend_minor: r.lifetime_spend_minor,
            created_at: micros_to_rfc3339(r.created_at),
        }
    }
}

/// What registering found.
pub enum Registered {
    /// A new account.
    Created(Customer),
    /// A guest record with this e-mail existed (earlier orders): it gets no password
    /// until the owner of the address proves it through the e-mailed link.
    GuestExists(Customer),
    /// An account with this e-mail exists.
    AccountExists,
}

/// A customer's lifetime spend with its currency, for display.
pub fn spend(c: &Customer, currency: &str) -> MoneyDto {
    MoneyDto::new(c.lifetime_spend_minor, currency)
}

impl TenantDb {
    /// Lists customers, newest first, optionally searching e-mail and names (case
    /// insensitive substring). Returns `(page, total)`.
    pub async fn list_customers(
        &self,
        q: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Customer>, i64)> {
        let pattern = q
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| format!("%{}%", s.to_lowercase().replace(['%', '_'], "")));
        let rows = crate::tenant_query!(self, read, p => sqlx::query_as::<_, CustomerRow>(sqlx::AssertSqlSafe(format!(
            "{CUSTOMER_SELECT} where c.tenant_id = $1 and ($2 is null or lower(c.email) like $2 or lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) like $2)
             order by c.created_at desc, c.id desc limit $3 offset $4"
        )))
        .bind(self.tenant)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select count(*) from customers c where c.tenant_id = $1 and ($2 is null or lower(c.email) like $2 or lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) like $2)",
        )
        .bind(self.tenant)
        .bind(&pattern)
        .fetch_one(p)
        .await)?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }

    /// One customer of this store.
    pub async fn get_customer(&self, id: Uuid) -> StoreResult<Option<Customer>> {
        let row = crate::tenant_query!(self, read, p => sqlx::query_as::<_, CustomerRow>(sqlx::AssertSqlSafe(format!(
            "{CUSTOMER_SELECT} where c.tenant_id = $1 and c.id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(Into::into))
    }

    async fn customer_row_by_email(&self, email: &Email) -> StoreResult<Option<CustomerRow>> {
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_as::<_, CustomerRow>(sqlx::AssertSqlSafe(format!(
            "{CUSTOMER_SELECT} where c.tenant_id = $1 and c.email = $2"
        )))
        .bind(self.tenant)
        .bind(email.as_str())
        .fetch_optional(p)
        .await)?,
        )
    }

    /// The customer with this e-mail, if any.
    pub async fn customer_by_email(&self, email: &Email) -> StoreResult<Option<Customer>> {
        Ok(self.customer_row_by_email(email).await?.map(Into::into))
    }

    /// The orders of a customer, newest first.
    pub async fn customer_orders(
        &self,
        customer: Uuid,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Order>, i64)> {
        let ids: Vec<Uuid> = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select id from orders where tenant_id = $1 and customer_id = $2 order by number desc limit $3 offset $4",
        )
        .bind(self.tenant)
        .bind(customer)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select count(*) from orders where tenant_id = $1 and customer_id = $2",
        )
        .bind(self.tenant)
        .bind(customer)
        .fetch_one(p)
        .await)?;
        let out = self.orders_by_ids(&ids).await?;
        Ok((out, total))
    }

    /// Registers an account. `password_hash` is argon2id (the caller hashes). A guest
    /// record of the same e-mail is not taken over here: see [`Registered::GuestExists`].
    pub async fn register_customer(
        &self,
        email: &Email,
        first_name: Option<&str>,
        last_name: Option<&str>,
        password_hash: &str,
        accepts_marketing: bool,
    ) -> StoreResult<Registered> {
        if let Some(c) = self.customer_row_by_email(email).await? {
            return Ok(if c.password_hash.is_some() {
                Registered::AccountExists
            } else {
                Registered::GuestExists(c.into())
            });
        }
        let id = new_id();
        let now = now_micros();
        let r = crate::tenant_exec!(self, c => sqlx::query(
            "insert into customers (id, tenant_id, email, first_name, last_name, password_hash, accepts_marketing, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8) on conflict (tenant_id, email) do nothing",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(email.as_str())
        .bind(first_name)
        .bind(last_name)
        .bind(password_hash)
        .bind(accepts_marketing)
        .bind(now)
        .execute(c)
        .await)?;
        if r == 0 {
            return Ok(Registered::AccountExists);
        }
        Ok(Registered::Created(
            self.get_customer(id).await?.ok_or(StoreError::NotFound)?,
        ))
    }

    /// The id and password hash of the account with this e-mail (guests have no hash).
    pub async fn customer_credentials(
        &self,
        email: &Email,
    ) -> StoreResult<Option<(Uuid, Option<String>)>> {
        Ok(self
            .customer_row_by_email(email)
            .await?
            .map(|r| (r.id, r.password_hash)))
    }

    /// Sets a customer's password hash (reset, or first password of a guest record).
    pub async fn set_customer_password(
        &self,
        customer: Uuid,
        password_hash: &str,
    ) -> StoreResult<()> {
        crate::tenant_exec!(self, c => sqlx::query("update customers set password_hash = $3, updated_at = $4 where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(customer)
            .bind(password_hash)
            .bind(now_micros())
            .execute(c)
            .await)?;
        // A new password ends every other session.
        crate::tenant_exec!(self, c => sqlx::query("delete from customer_tokens where tenant_id = $1 and customer_id = $2 and purpose = 'session'")
            .bind(self.tenant)
            .bind(customer)
            .execute(c)
            .await)?;
        Ok(())
    }

    /// Stores a token hash for `purpose` (`session`, `login_link`, `password_reset`).
    pub async fn create_customer_token(
        &self,
        customer: Uuid,
        purpose: &str,
        token_hash: &str,
        ttl_micros: i64,
    ) -> StoreResult<()> {
        let now = now_micros();
        crate::tenant_exec!(self, c => sqlx::query(
            "insert into customer_tokens (token_hash, tenant_id, customer_id, purpose, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(self.tenant)
        .bind(customer)
        .bind(purpose)
        .bind(now + ttl_micros)
        .bind(now)
        .execute(c)
        .await)?;
        Ok(())
    }

    /// Stores a one-time token and its e-mail job together (login link, password reset).
    pub async fn create_customer_token_with_mail(
        &self,
        customer: Uuid,
        purpose: &str,
        token_hash: &str,
        mail: &crate::mail::EmailMessage,
    ) -> StoreResult<()> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        crate::exec_tx!(&mut tx, c => sqlx::query(
            "insert into customer_tokens (token_hash, tenant_id, customer_id, purpose, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(self.tenant)
        .bind(customer)
        .bind(purpose)
        .bind(now + ONE_TIME_TTL_MICROS)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        self.enqueue_mail(&mut tx, &format!("{purpose}:{token_hash}"), mail)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The customer a session token hash belongs to, if it is valid.
    pub async fn customer_by_session(&self, token_hash: &str) -> StoreResult<Option<Uuid>> {
        Ok(crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select customer_id from customer_tokens where tenant_id = $1 and token_hash = $2 and purpose = 'session' and expires_at > $3",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(now_micros())
        .fetch_optional(p)
        .await)?)
    }

    /// Uses a one-time token of `purpose` once: returns its customer, or `None` when it is
    /// unknown, expired or used.
    pub async fn use_customer_token(
        &self,
        token_hash: &str,
        purpose: &str,
    ) -> StoreResult<Option<Uuid>> {
        Ok(crate::tenant_query!(self, write, p => sqlx::query_scalar(
            "update customer_tokens set used_at = $4 where tenant_id = $1 and token_hash = $2 and purpose = $3 and used_at is null and expires_at > $4
             returning customer_id",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(purpose)
        .bind(now_micros())
        .fetch_optional(p)
        .await)?)
    }

    /// Ends a session.
    pub async fn delete_customer_session(&self, token_hash: &str) -> StoreResult<()> {
        crate::tenant_exec!(self, c => sqlx::query("delete from customer_tokens where tenant_id = $1 and token_hash = $2 and purpose = 'session'")
            .bind(self.tenant)
            .bind(token_hash)
            .execute(c)
            .await)?;
        Ok(())
    }

    /// A customer's saved addresses, default first.
    pub async fn customer_addresses(&self, customer: Uuid) -> StoreResult<Vec<SavedAddress>> {
        let rows: Vec<(Uuid, String, bool)> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, address, is_default from customer_addresses where tenant_id = $1 and customer_id = $2 order by is_default desc, created_at",
        )
        .bind(self.tenant)
        .bind(customer)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, a, d)| {
                serde_json::from_str(&a).ok().map(|address| SavedAddress {
                    id,
                    address,
                    is_default: d,
                })
            })
            .collect())
    }

    /// Saves an address (the first one becomes the default).
    pub async fn add_customer_address(
        &self,
        customer: Uuid,
        a: &Address,
    ) -> StoreResult<SavedAddress> {
        let id = new_id();
        let first = self.customer_addresses(customer).await?.is_empty();
        crate::tenant_exec!(self, c => sqlx::query(
            "insert into customer_addresses (id, tenant_id, customer_id, address, is_default, created_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(customer)
        .bind(to_json(a))
        .bind(first)
        .bind(now_micros())
        .execute(c)
        .await)?;
        Ok(SavedAddress {
            id,
            address: a.clone(),
            is_default: first,
        })
    }

    /// Deletes a saved address. Returns false when it is not this customer's.
    pub async fn delete_customer_address(&self, customer: Uuid, id: Uuid) -> StoreResult<bool> {
        let n = crate::tenant_exec!(self, c => sqlx::query("delete from customer_addresses where tenant_id = $1 and customer_id = $2 and id = $3")
            .bind(self.tenant)
            .bind(customer)
            .bind(id)
            .execute(c)
            .await)?;
        Ok(n > 0)
    }
}
