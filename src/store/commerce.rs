//! A store's checkout configuration, always through [`TenantDb`]: checkout settings
//! (payment methods, tax-inclusive prices, pickup), shipping zones with their rates, tax
//! rates by country and discount codes.
//!
//! Rates are basis points (1 % = 100); money is integer minor units of the store currency;
//! timestamps integer microseconds.

use super::audit::{self, Actor, Change};
use super::{
    StoreError, StoreResult, TenantDb, Tx, from_json, micros_to_rfc3339, new_id, now_micros,
    to_json,
};
use crate::pricing::{CountryCode, DiscountValue};
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// A store's checkout settings (defaults until the first save: prices include tax, no
/// payment method enabled here; the setup guide's manual instructions enable bank
/// transfer, its Stripe secret enables card payments).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckoutSettings {
    /// Prices in the catalog include tax (EU default); otherwise tax is added at checkout.
    pub prices_include_tax: bool,
    pub bank_transfer: bool,
    /// Shown on the confirmation page and in the e-mail of bank-transfer orders.
    pub bank_instructions: String,
    pub cash_on_delivery: bool,
    /// Card payments through Stripe (needs the Stripe secret key of the setup guide).
    pub card: bool,
    /// Whether a Stripe webhook signing secret is stored (the secret itself never leaves).
    pub stripe_webhook_secret_configured: bool,
    /// Shoppers may pick up their order at the store (free).
    pub pickup: bool,
    pub pickup_address: String,
    /// Where new-order notifications go; `null`: the store's owner(s).
    pub notify_email: Option<String>,
}

impl Default for CheckoutSettings {
    fn default() -> Self {
        Self {
            prices_include_tax: true,
            bank_transfer: false,
            bank_instructions: String::new(),
            cash_on_delivery: false,
            card: false,
            stripe_webhook_secret_configured: false,
            pickup: false,
            pickup_address: String::new(),
            notify_email: None,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct SettingsRow {
    prices_include_tax: bool,
    bank_transfer: bool,
    bank_instructions: String,
    cash_on_delivery: bool,
    card: bool,
    stripe_webhook_secret: Option<String>,
    pickup: bool,
    pickup_address: String,
    notify_email: Option<String>,
}

impl From<SettingsRow> for CheckoutSettings {
    fn from(r: SettingsRow) -> Self {
        Self {
            prices_include_tax: r.prices_include_tax,
            bank_transfer: r.bank_transfer,
            bank_instructions: r.bank_instructions,
            cash_on_delivery: r.cash_on_delivery,
            card: r.card,
            stripe_webhook_secret_configured: r.stripe_webhook_secret.is_some(),
            pickup: r.pickup,
            pickup_address: r.pickup_address,
            notify_email: r.notify_email,
        }
    }
}

const SETTINGS_COLS: &str = "prices_include_tax, bank_transfer, bank_instructions, cash_on_delivery, card, stripe_webhook_secret, pickup, pickup_address, notify_email";

/// A shipping rate of a zone.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShippingRate {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub name: String,
    /// Minor units of the store currency.
    pub price_minor: i64,
    /// Free when the discounted subtotal reaches this (minor units); `null`: never free.
    pub free_over_minor: Option<i64>,
}

/// A shipping zone: the countries it covers and its rates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShippingZone {
    pub id: Uuid,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    pub rates: Vec<ShippingRate>,
    /// RFC 3339.
    pub created_at: String,
}

/// A tax rate for one destination country.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaxRate {
    pub id: Uuid,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub name: String,
    /// Basis points: 1700 = 17 %.
    pub rate_bp: i64,
}

/// A discount code.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiscountCode {
    pub id: Uuid,
    /// Upper case; shoppers may type it in any case.
    pub code: String,
    /// `percentage` (value in basis points) or `fixed` (value in minor units).
    pub kind: String,
    pub value: i64,
    /// The subtotal (minor units) a cart needs for the code to apply.
    pub min_subtotal_minor: i64,
    /// RFC 3339; `null`: no bound.
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    /// Total uses allowed (`null`: unlimited) and uses so far (placed orders).
    pub usage_limit: Option<i64>,
    pub used_count: i64,
    /// Uses allowed per customer e-mail (`null`: unlimited).
    pub per_customer_limit: Option<i64>,
    pub active: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct DiscountRow {
    pub id: Uuid,
    pub code: String,
    pub kind: String,
    pub value: i64,
    pub min_subtotal_minor: i64,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub usage_limit: Option<i64>,
    pub per_customer_limit: Option<i64>,
    pub used_count: i64,
    pub active: bool,
}

impl DiscountRow {
    /// The code's effect.
    #[allow(dead_code)] // used by order placement (carts/checkout)
    pub(crate) fn value(&self) -> DiscountValue {
        if self.kind == "percentage" {
            DiscountValue::Percentage(self.value)
        } else {
            DiscountValue::Fixed(self.value)
        }
    }
}

impl From<DiscountRow> for DiscountCode {
    fn from(r: DiscountRow) -> Self {
        Self {
            id: r.id,
            code: r.code,
            kind: r.kind,
            value: r.value,
            min_subtotal_minor: r.min_subtotal_minor,
            starts_at: r.starts_at.map(micros_to_rfc3339),
            ends_at: r.ends_at.map(micros_to_rfc3339),
            usage_limit: r.usage_limit,
            used_count: r.used_count,
            per_customer_limit: r.per_customer_limit,
            active: r.active,
        }
    }
}

pub(crate) const DISCOUNT_COLS: &str = "id, code, kind, value, min_subtotal_minor, starts_at, ends_at, usage_limit, per_customer_limit, used_count, active";

#[derive(Debug, sqlx::FromRow)]
struct ZoneRow {
    id: Uuid,
    name: String,
    countries: String,
    created_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct RateRow {
    id: Uuid,
    zone_id: Uuid,
    name: String,
    price_minor: i64,
    free_over_minor: Option<i64>,
}

impl From<RateRow> for ShippingRate {
    fn from(r: RateRow) -> Self {
        Self {
            id: r.id,
            zone_id: r.zone_id,
            name: r.name,
            price_minor: r.price_minor,
            free_over_minor: r.free_over_minor,
        }
    }
}

/// What carts and checkout read on every request, for one tenant: the checkout settings,
/// the shipping zones with their rates, the tax rates and the online store's sales
/// channel. Cached per tenant in this process (see [`TenantDb::checkout_config`]): every
/// write of these settings in this module forgets the tenant's entry after its commit,
/// another node's write arrives as the tenant's cache invalidation
/// ([`forget_checkout_config`]), and an entry older than [`CONFIG_TTL`] is reloaded.
#[derive(Debug)]
pub(crate) struct CheckoutConfig {
    pub settings: CheckoutSettings,
    pub zones: Vec<ShippingZone>,
    pub tax: Vec<TaxRate>,
    pub channel: Option<Uuid>,
    /// The setup guide's Stripe secret key, sealed (`None`: no card payments).
    pub stripe_secret_sealed: Option<String>,
}

impl CheckoutConfig {
    /// The tax rate of `country` in basis points (0 without one).
    pub fn tax_bp(&self, country: CountryCode) -> i64 {
        self.tax
            .iter()
            .find(|t| t.country == country.as_str())
            .map_or(0, |t| t.rate_bp)
    }

    /// One shipping rate by id.
    pub fn rate(&self, id: Uuid) -> Option<&ShippingRate> {
        self.zones
            .iter()
            .flat_map(|z| z.rates.iter())
            .find(|r| r.id == id)
    }

    /// Whether any zone lists `country`.
    pub fn ships_to(&self, country: CountryCode) -> bool {
        self.zones
            .iter()
            .any(|z| z.countries.iter().any(|c| c == country.as_str()))
    }

    /// The rates of the zones that list `country`, cheapest first.
    pub fn rates_for(&self, country: CountryCode) -> Vec<ShippingRate> {
        let mut rates: Vec<ShippingRate> = self
            .zones
            .iter()
            .filter(|z| z.countries.iter().any(|c| c == country.as_str()))
            .flat_map(|z| z.rates.iter().cloned())
            .collect();
        rates.sort_by_key(|r| r.price_minor);
        rates
    }
}

/// How long a cached [`CheckoutConfig`] is used before it is read again (a bound on
/// staleness should an invalidation from another node be lost).
pub(crate) const CONFIG_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// At most this many tenants' configurations are cached; beyond, the cache starts over.
const CONFIG_CACHE_TENANTS: usize = 20_000;

#[derive(Default)]
struct ConfigCache {
    /// Bumped by every forget: a load that started before a forget is not stored.
    generation: u64,
    entries: std::collections::HashMap<Uuid, (std::time::Instant, Arc<CheckoutConfig>)>,
}

static CONFIG_CACHE: std::sync::LazyLock<std::sync::RwLock<ConfigCache>> =
    std::sync::LazyLock::new(Default::default);

/// Forgets the cached checkout configuration of `tenant` (`None`: of every tenant), e.g.
/// when another node reports that the tenant's settings changed.
pub fn forget_checkout_config(tenant: Option<Uuid>) {
    if let Ok(mut c) = CONFIG_CACHE.write() {
        c.generation += 1;
        match tenant {
            Some(t) => {
                c.entries.remove(&t);
            }
            None => c.entries.clear(),
        }
    }
}

impl TenantDb {
    /// The tenant's [`CheckoutConfig`], from this process's cache when it is fresh, else
    /// read (five statements) and cached.
    pub(crate) async fn checkout_config(&self) -> StoreResult<Arc<CheckoutConfig>> {
        let generation = match CONFIG_CACHE.read() {
            Ok(c) => {
                if let Some((at, cfg)) = c.entries.get(&self.tenant)
                    && at.elapsed() < CONFIG_TTL
                {
                    return Ok(cfg.clone());
                }
                c.generation
            }
            Err(_) => u64::MAX,
        };
        let channel: Option<Uuid> = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select id from sales_channels where tenant_id = $1 and kind = 'online_store'",
        )
        .bind(self.tenant)
        .fetch_optional(p)
        .await)?;
        let cfg = Arc::new(CheckoutConfig {
            settings: self.checkout_settings().await?,
            zones: self.list_shipping_zones().await?,
            tax: self.list_tax_rates().await?,
            channel,
            stripe_secret_sealed: self.onboarding_payment_secret().await?,
        });
        if let Ok(mut c) = CONFIG_CACHE.write()
            && c.generation == generation
        {
            if c.entries.len() >= CONFIG_CACHE_TENANTS {
                c.entries.clear();
            }
            c.entries
                .insert(self.tenant, (std::time::Instant::now(), cfg.clone()));
        }
        Ok(cfg)
    }

    /// The checkout settings as carts and checkout see them (cached, see
    /// [`CheckoutConfig`]); the settings pages read [`Self::checkout_settings`].
    pub async fn checkout_settings_cached(&self) -> StoreResult<CheckoutSettings> {
        Ok(self.checkout_config().await?.settings.clone())
    }

    /// The setup guide's sealed Stripe secret key, cached like [`Self::checkout_settings_cached`].
    pub async fn stripe_secret_cached(&self) -> StoreResult<Option<String>> {
        Ok(self.checkout_config().await?.stripe_secret_sealed.clone())
    }

    /// Commits a write of the checkout configuration and forgets the cached one.
    async fn commit_config(&self, tx: Tx) -> StoreResult<()> {
        tx.commit().await?;
        forget_checkout_config(Some(self.tenant));
        Ok(())
    }
}

impl TenantDb {
    /// The store's checkout settings, or the defaults before the first save.
    pub async fn checkout_settings(&self) -> StoreResult<CheckoutSettings> {
        let row = crate::tenant_query!(self, read, p => sqlx::query_as::<_, SettingsRow>(sqlx::AssertSqlSafe(format!(
            "select {SETTINGS_COLS} from checkout_settings where tenant_id = $1"
        )))
        .bind(self.tenant)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(Into::into).unwrap_or_default())
    }

    /// The sealed Stripe webhook signing secret, if stored.
    pub async fn stripe_webhook_secret_sealed(&self) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select stripe_webhook_secret from checkout_settings where tenant_id = $1",
        )
        .bind(self.tenant)
        .fetch_optional(p)
        .await)?;
        Ok(v.flatten())
    }

    /// Every shipping zone with its rates, oldest first.
    pub async fn list_shipping_zones(&self) -> StoreResult<Vec<ShippingZone>> {
        let zones = crate::tenant_query!(self, read, p => sqlx::query_as::<_, ZoneRow>(
            "select id, name, countries, created_at from shipping_zones where tenant_id = $1 order by created_at, id",
        )
        .bind(self.tenant)
        .fetch_all(p)
        .await)?;
        let rates = crate::tenant_query!(self, read, p => sqlx::query_as::<_, RateRow>(
            "select id, zone_id, name, price_minor, free_over_minor from shipping_rates where tenant_id = $1 order by price_minor, created_at",
        )
        .bind(self.tenant)
        .fetch_all(p)
        .await)?;
        zones
            .into_iter()
            .map(|z| {
                Ok(ShippingZone {
                    rates: rates
                        .iter()
                        .filter(|r| r.zone_id == z.id)
                        .map(|r| ShippingRate {
                            id: r.id,
                            zone_id: r.zone_id,
                            name: r.name.clone(),
                            price_minor: r.price_minor,
                            free_over_minor: r.free_over_minor,
                        })
                        .collect(),
                    countries: from_json(&z.countries)?,
                    id: z.id,
                    name: z.name,
                    created_at: micros_to_rfc3339(z.created_at),
                })
            })
            .collect()
    }

    /// The rates offered for `country`: every rate of every zone that lists it, cheapest
    /// first.
    pub async fn shipping_rates_for(&self, country: CountryCode) -> StoreResult<Vec<ShippingRate>> {
        Ok(self.checkout_config().await?.rates_for(country))
    }

    /// Whether any shipping zone lists `country`.
    pub async fn ships_to(&self, country: CountryCode) -> StoreResult<bool> {
        Ok(self.checkout_config().await?.ships_to(country))
    }

    /// One shipping rate by id (this tenant only).
    pub async fn shipping_rate(&self, id: Uuid) -> StoreResult<Option<ShippingRate>> {
        let row = crate::tenant_query!(self, read, p => sqlx::query_as::<_, RateRow>(
            "select id, zone_id, name, price_minor, free_over_minor from shipping_rates where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(Into::into))
    }

    /// Every tax rate, by country.
    pub async fn list_tax_rates(&self) -> StoreResult<Vec<TaxRate>> {
        let rows: Vec<(Uuid, String, String, i64)> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, country, name, rate_bp from tax_rates where tenant_id = $1 order by country",
        )
        .bind(self.tenant)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, country, name, rate_bp)| TaxRate {
                id,
                country,
                name,
                rate_bp,
            })
            .collect())
    }

    /// The tax rate (basis points) for `country`; 0 when the store has none for it.
    pub async fn tax_rate_bp(&self, country: CountryCode) -> StoreResult<i64> {
        let v: Option<i64> = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select rate_bp from tax_rates where tenant_id = $1 and country = $2",
        )
        .bind(self.tenant)
        .bind(country.as_str())
        .fetch_optional(p)
        .await)?;
        Ok(v.unwrap_or(0))
    }

    /// A discount code by its code (any case). `None` when it does not exist.
    pub async fn discount_by_code(&self, code: &str) -> StoreResult<Option<DiscountCode>> {
        Ok(self.discount_row_by_code(code).await?.map(Into::into))
    }

    pub(crate) async fn discount_row_by_code(
        &self,
        code: &str,
    ) -> StoreResult<Option<DiscountRow>> {
        let code = code.trim().to_uppercase();
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_as::<_, DiscountRow>(sqlx::AssertSqlSafe(format!(
            "select {DISCOUNT_COLS} from discount_codes where tenant_id = $1 and code = $2"
        )))
        .bind(self.tenant)
        .bind(code)
        .fetch_optional(p)
        .await)?,
        )
    }
}

// ---------------------------------------------------------------------------------------
// Writes (the merchant API `/api/v1/settings/checkout`, `/shipping-zones`, `/tax-rates`,
// `/discount-codes`). Each change and its audit entry commit in one transaction.
// ---------------------------------------------------------------------------------------

/// What to do with the stored Stripe webhook signing secret on a settings save.
#[derive(Debug, Clone, Default)]
pub enum SecretChange {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Replace it with this sealed value (`crate::crypto::SecretBox`).
    Set(String),
    /// Remove it.
    Clear,
}

/// A validated checkout-settings save: the complete new settings (the API merges omitted
/// fields from the stored ones before building it).
#[derive(Debug, Clone)]
pub struct CheckoutSettingsInput {
    pub prices_include_tax: bool,
    pub bank_transfer: bool,
    pub bank_instructions: String,
    pub cash_on_delivery: bool,
    pub card: bool,
    pub pickup: bool,
    pub pickup_address: String,
    pub notify_email: Option<String>,
    pub stripe_webhook_secret: SecretChange,
}

/// The payment choice of the setup guide's payment step, mirrored into the checkout
/// settings (see [`TenantDb::mirror_payment_step_tx`]).
#[derive(Debug, Clone)]
pub struct PaymentStepMirror {
    /// `manual` or `stripe`.
    pub provider: String,
    /// The merchant's payment instructions (bank details).
    pub manual_instructions: String,
    pub cash_on_delivery: bool,
}

/// A validated shipping zone: a name and at least one country (deduplicated).
#[derive(Debug, Clone)]
pub struct ZoneInput {
    pub name: String,
    pub countries: Vec<CountryCode>,
}

/// A validated shipping rate: `price_minor >= 0`, `free_over_minor >= 0` when set.
#[derive(Debug, Clone)]
pub struct RateInput {
    pub name: String,
    pub price_minor: i64,
    pub free_over_minor: Option<i64>,
}

/// A validated tax rate: `rate_bp` in 0..=10 000.
#[derive(Debug, Clone)]
pub struct TaxRateInput {
    pub country: CountryCode,
    pub name: String,
    pub rate_bp: i64,
}

/// A validated discount code (see the API's rules: code `[A-Z0-9_-]{1,40}`, percentage
/// 1..=10 000 bp or fixed > 0 minor units, `ends_at > starts_at`, limits ≥ 1).
#[derive(Debug, Clone)]
pub struct DiscountInput {
    pub code: String,
    pub value: DiscountValue,
    pub min_subtotal_minor: i64,
    /// Unix microseconds.
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub usage_limit: Option<i64>,
    pub per_customer_limit: Option<i64>,
    pub active: bool,
}

impl DiscountInput {
    fn kind_value(&self) -> (&'static str, i64) {
        match self.value {
            DiscountValue::Percentage(bp) => ("percentage", bp),
            DiscountValue::Fixed(m) => ("fixed", m),
        }
    }
}

fn zone_summary(z: &ZoneInput) -> serde_json::Value {
    serde_json::json!({
        "name": z.name,
        "countries": z.countries.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
    })
}

fn discount_summary(d: &DiscountInput) -> serde_json::Value {
    let (kind, value) = d.kind_value();
    serde_json::json!({ "code": d.code, "kind": kind, "value": value, "active": d.active })
}

impl TenantDb {
    /// Saves the checkout settings (upsert of the store's one row). The webhook secret
    /// arrives sealed; the audit entry names the settings, never the secret.
    pub async fn save_checkout_settings(
        &self,
        actor: &Actor,
        input: &CheckoutSettingsInput,
    ) -> StoreResult<CheckoutSettings> {
        let before = self.checkout_settings().await?;
        let (secret, keep) = match &input.stripe_webhook_secret {
            SecretChange::Keep => (None, true),
            SecretChange::Set(s) => (Some(s.as_str()), false),
            SecretChange::Clear => (None, false),
        };
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into checkout_settings (tenant_id, prices_include_tax, bank_transfer, bank_instructions, cash_on_delivery, card, stripe_webhook_secret, pickup, pickup_address, notify_email, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             on conflict (tenant_id) do update set prices_include_tax = $2, bank_transfer = $3,
               bank_instructions = $4, cash_on_delivery = $5, card = $6,
               stripe_webhook_secret = case when $12 then checkout_settings.stripe_webhook_secret else $7 end,
               pickup = $8, pickup_address = $9, notify_email = $10, updated_at = $11",
        )
        .bind(self.tenant)
        .bind(input.prices_include_tax)
        .bind(input.bank_transfer)
        .bind(&input.bank_instructions)
        .bind(input.cash_on_delivery)
        .bind(input.card)
        .bind(secret)
        .bind(input.pickup)
        .bind(&input.pickup_address)
        .bind(&input.notify_email)
        .bind(now_micros())
        .bind(keep)
        .execute(&mut **c)
        .await)?;
        let summary = |s: &CheckoutSettings| {
            serde_json::json!({
                "prices_include_tax": s.prices_include_tax, "bank_transfer": s.bank_transfer,
                "cash_on_delivery": s.cash_on_delivery, "card": s.card, "pickup": s.pickup,
                "stripe_webhook_secret_configured": s.stripe_webhook_secret_configured,
            })
        };
        let after = CheckoutSettings {
            prices_include_tax: input.prices_include_tax,
            bank_transfer: input.bank_transfer,
            bank_instructions: input.bank_instructions.clone(),
            cash_on_delivery: input.cash_on_delivery,
            card: input.card,
            stripe_webhook_secret_configured: match &input.stripe_webhook_secret {
                SecretChange::Keep => before.stripe_webhook_secret_configured,
                SecretChange::Set(_) => true,
                SecretChange::Clear => false,
            },
            pickup: input.pickup,
            pickup_address: input.pickup_address.clone(),
            notify_email: input.notify_email.clone(),
        };
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new(
                "checkout_settings.updated",
                "checkout_settings",
                self.tenant,
            )
            .before(summary(&before))
            .after(summary(&after)),
        )
        .await?;
        self.commit_config(tx).await?;
        Ok(after)
    }

    /// Mirrors the setup guide's payment step into the checkout settings, inside the
    /// guide's own transaction: `manual` turns bank transfer on (with the instructions,
    /// when there are any) and card payments off; `stripe` turns card payments on and bank
    /// transfer off; cash on delivery follows the step's checkbox either way. Other
    /// settings are left as they are (the row is created with defaults if missing).
    pub async fn mirror_payment_step_tx(
        &self,
        tx: &mut Tx,
        m: &PaymentStepMirror,
    ) -> StoreResult<()> {
        let manual = m.provider == "manual";
        let bank = manual && !m.manual_instructions.trim().is_empty();
        let card = m.provider == "stripe";
        exec_tx!(tx, c => sqlx::query(
            "insert into checkout_settings (tenant_id, bank_transfer, bank_instructions, cash_on_delivery, card, updated_at)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (tenant_id) do update set bank_transfer = $2,
               bank_instructions = case when $7 then $3 else checkout_settings.bank_instructions end,
               cash_on_delivery = $4, card = $5, updated_at = $6",
        )
        .bind(self.tenant)
        .bind(bank)
        .bind(m.manual_instructions.trim())
        .bind(m.cash_on_delivery)
        .bind(card)
        .bind(now_micros())
        .bind(manual)
        .execute(&mut **c)
        .await)?;
        Ok(())
    }

    /// One shipping zone with its rates (this tenant only).
    pub async fn shipping_zone(&self, id: Uuid) -> StoreResult<Option<ShippingZone>> {
        Ok(self
            .list_shipping_zones()
            .await?
            .into_iter()
            .find(|z| z.id == id))
    }

    /// Creates a shipping zone (no rates yet).
    pub async fn create_shipping_zone(
        &self,
        actor: &Actor,
        input: &ZoneInput,
    ) -> StoreResult<ShippingZone> {
        let id = new_id();
        let countries: Vec<&str> = input.countries.iter().map(|c| c.as_str()).collect();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into shipping_zones (id, tenant_id, name, countries, created_at) values ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(&input.name)
        .bind(to_json(&countries))
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("shipping_zone.created", "shipping_zone", id).after(zone_summary(input)),
        )
        .await?;
        self.commit_config(tx).await?;
        self.shipping_zone(id).await?.ok_or(StoreError::NotFound)
    }

    /// Replaces a zone's name and countries. Errors: `NotFound`.
    pub async fn update_shipping_zone(
        &self,
        actor: &Actor,
        id: Uuid,
        input: &ZoneInput,
    ) -> StoreResult<ShippingZone> {
        let before = self.shipping_zone(id).await?.ok_or(StoreError::NotFound)?;
        let countries: Vec<&str> = input.countries.iter().map(|c| c.as_str()).collect();
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update shipping_zones set name = $3, countries = $4 where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(&input.name)
        .bind(to_json(&countries))
        .execute(&mut **c)
        .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("shipping_zone.updated", "shipping_zone", id)
                .before(serde_json::json!({ "name": before.name, "countries": before.countries }))
                .after(zone_summary(input)),
        )
        .await?;
        self.commit_config(tx).await?;
        self.shipping_zone(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a zone with its rates. Errors: `NotFound`.
    pub async fn delete_shipping_zone(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let before = self.shipping_zone(id).await?.ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query("delete from shipping_rates where tenant_id = $1 and zone_id = $2")
            .bind(self.tenant).bind(id).execute(&mut **c).await)?;
        let n = exec_tx!(&mut tx, c => sqlx::query("delete from shipping_zones where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(id).execute(&mut **c).await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("shipping_zone.deleted", "shipping_zone", id).before(
                serde_json::json!({ "name": before.name, "countries": before.countries, "rates": before.rates.len() }),
            ),
        )
        .await?;
        self.commit_config(tx).await
    }

    /// Adds a rate to a zone of this tenant. Errors: `NotFound` (no such zone here).
    pub async fn create_shipping_rate(
        &self,
        actor: &Actor,
        zone_id: Uuid,
        input: &RateInput,
    ) -> StoreResult<ShippingRate> {
        let id = new_id();
        let mut tx = self.begin().await?;
        // The zone must be this tenant's: the insert copies nothing from another tenant.
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "insert into shipping_rates (id, tenant_id, zone_id, name, price_minor, free_over_minor, created_at)
             select $1, $2, id, $4, $5, $6, $7 from shipping_zones where tenant_id = $2 and id = $3",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(zone_id)
        .bind(&input.name)
        .bind(input.price_minor)
        .bind(input.free_over_minor)
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
            Change::new("shipping_rate.created", "shipping_rate", id).after(serde_json::json!({
                "zone_id": zone_id, "name": input.name, "price_minor": input.price_minor,
                "free_over_minor": input.free_over_minor,
            })),
        )
        .await?;
        self.commit_config(tx).await?;
        self.shipping_rate(id).await?.ok_or(StoreError::NotFound)
    }

    /// Replaces a rate's name, price and free-shipping amount. Errors: `NotFound`.
    pub async fn update_shipping_rate(
        &self,
        actor: &Actor,
        id: Uuid,
        input: &RateInput,
    ) -> StoreResult<ShippingRate> {
        let before = self.shipping_rate(id).await?.ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update shipping_rates set name = $3, price_minor = $4, free_over_minor = $5 where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(&input.name)
        .bind(input.price_minor)
        .bind(input.free_over_minor)
        .execute(&mut **c)
        .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("shipping_rate.updated", "shipping_rate", id)
                .before(serde_json::json!({ "name": before.name, "price_minor": before.price_minor, "free_over_minor": before.free_over_minor }))
                .after(serde_json::json!({ "name": input.name, "price_minor": input.price_minor, "free_over_minor": input.free_over_minor })),
        )
        .await?;
        self.commit_config(tx).await?;
        self.shipping_rate(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a rate. Errors: `NotFound`.
    pub async fn delete_shipping_rate(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let before = self.shipping_rate(id).await?.ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query("delete from shipping_rates where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(id).execute(&mut **c).await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("shipping_rate.deleted", "shipping_rate", id).before(
                serde_json::json!({ "zone_id": before.zone_id, "name": before.name, "price_minor": before.price_minor }),
            ),
        )
        .await?;
        self.commit_config(tx).await
    }

    /// One tax rate by id (this tenant only).
    pub async fn tax_rate(&self, id: Uuid) -> StoreResult<Option<TaxRate>> {
        let row: Option<(Uuid, String, String, i64)> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, country, name, rate_bp from tax_rates where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(id, country, name, rate_bp)| TaxRate {
            id,
            country,
            name,
            rate_bp,
        }))
    }

    /// Creates a tax rate. Errors: `Conflict { field: "country" }` when the store already
    /// has a rate for that country.
    pub async fn create_tax_rate(
        &self,
        actor: &Actor,
        input: &TaxRateInput,
    ) -> StoreResult<TaxRate> {
        let id = new_id();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into tax_rates (id, tenant_id, country, name, rate_bp, created_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(input.country.as_str())
        .bind(&input.name)
        .bind(input.rate_bp)
        .bind(now_micros())
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("country", "country"), ("tax_rates", "country")]))?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("tax_rate.created", "tax_rate", id).after(serde_json::json!({
                "country": input.country.as_str(), "name": input.name, "rate_bp": input.rate_bp,
            })),
        )
        .await?;
        self.commit_config(tx).await?;
        self.tax_rate(id).await?.ok_or(StoreError::NotFound)
    }

    /// Replaces a tax rate. Errors: `NotFound`; `Conflict { field: "country" }`.
    pub async fn update_tax_rate(
        &self,
        actor: &Actor,
        id: Uuid,
        input: &TaxRateInput,
    ) -> StoreResult<TaxRate> {
        let before = self.tax_rate(id).await?.ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update tax_rates set country = $3, name = $4, rate_bp = $5 where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(input.country.as_str())
        .bind(&input.name)
        .bind(input.rate_bp)
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("country", "country"), ("tax_rates", "country")]))?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("tax_rate.updated", "tax_rate", id)
                .before(serde_json::json!({ "country": before.country, "name": before.name, "rate_bp": before.rate_bp }))
                .after(serde_json::json!({ "country": input.country.as_str(), "name": input.name, "rate_bp": input.rate_bp })),
        )
        .await?;
        self.commit_config(tx).await?;
        self.tax_rate(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a tax rate. Errors: `NotFound`.
    pub async fn delete_tax_rate(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let before = self.tax_rate(id).await?.ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query("delete from tax_rates where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(id).execute(&mut **c).await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("tax_rate.deleted", "tax_rate", id).before(
                serde_json::json!({ "country": before.country, "rate_bp": before.rate_bp }),
            ),
        )
        .await?;
        self.commit_config(tx).await
    }

    /// One discount code by id (this tenant only).
    pub async fn discount_code(&self, id: Uuid) -> StoreResult<Option<DiscountCode>> {
        let row = crate::tenant_query!(self, read, p => sqlx::query_as::<_, DiscountRow>(sqlx::AssertSqlSafe(format!(
            "select {DISCOUNT_COLS} from discount_codes where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(Into::into))
    }

    /// Discount codes, newest first; `search` matches a part of the code (any case).
    /// Returns `(page, total)`.
    pub async fn list_discount_codes(
        &self,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<DiscountCode>, i64)> {
        let pattern = search
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| format!("%{}%", super::escape_like(&s.to_uppercase())));
        let rows = crate::tenant_query!(self, read, p => sqlx::query_as::<_, DiscountRow>(sqlx::AssertSqlSafe(format!(
            "select {DISCOUNT_COLS} from discount_codes where tenant_id = $1 and ($2 is null or code like $2 escape '\\')
             order by created_at desc, id desc limit $3 offset $4"
        )))
        .bind(self.tenant)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select count(*) from discount_codes where tenant_id = $1 and ($2 is null or code like $2 escape '\\')",
        )
        .bind(self.tenant)
        .bind(&pattern)
        .fetch_one(p)
        .await)?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }

    /// Creates a discount code. Errors: `Conflict { field: "code" }` when the store
    /// already has that code.
    pub async fn create_discount_code(
        &self,
        actor: &Actor,
        input: &DiscountInput,
    ) -> StoreResult<DiscountCode> {
        let id = new_id();
        let now = now_micros();
        let (kind, value) = input.kind_value();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into discount_codes (id, tenant_id, code, kind, value, min_subtotal_minor, starts_at, ends_at, usage_limit, per_customer_limit, used_count, active, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $12)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(&input.code)
        .bind(kind)
        .bind(value)
        .bind(input.min_subtotal_minor)
        .bind(input.starts_at)
        .bind(input.ends_at)
        .bind(input.usage_limit)
        .bind(input.per_customer_limit)
        .bind(input.active)
        .bind(now)
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("code", "code"), ("discount_codes", "code")]))?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("discount_code.created", "discount_code", id)
                .after(discount_summary(input)),
        )
        .await?;
        tx.commit().await?;
        self.discount_code(id).await?.ok_or(StoreError::NotFound)
    }

    /// Replaces a discount code's definition (its use count is kept). Errors: `NotFound`;
    /// `Conflict { field: "code" }`.
    pub async fn update_discount_code(
        &self,
        actor: &Actor,
        id: Uuid,
        input: &DiscountInput,
    ) -> StoreResult<DiscountCode> {
        let before = self.discount_code(id).await?.ok_or(StoreError::NotFound)?;
        let (kind, value) = input.kind_value();
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update discount_codes set code = $3, kind = $4, value = $5, min_subtotal_minor = $6, starts_at = $7,
               ends_at = $8, usage_limit = $9, per_customer_limit = $10, active = $11, updated_at = $12
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(&input.code)
        .bind(kind)
        .bind(value)
        .bind(input.min_subtotal_minor)
        .bind(input.starts_at)
        .bind(input.ends_at)
        .bind(input.usage_limit)
        .bind(input.per_customer_limit)
        .bind(input.active)
        .bind(now_micros())
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("code", "code"), ("discount_codes", "code")]))?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("discount_code.updated", "discount_code", id)
                .before(serde_json::json!({ "code": before.code, "kind": before.kind, "value": before.value, "active": before.active }))
                .after(discount_summary(input)),
        )
        .await?;
        tx.commit().await?;
        self.discount_code(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a discount code (orders keep the code's text). Errors: `NotFound`.
    pub async fn delete_discount_code(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let before = self.discount_code(id).await?.ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query("delete from discount_codes where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(id).execute(&mut **c).await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("discount_code.deleted", "discount_code", id).before(
                serde_json::json!({ "code": before.code, "used_count": before.used_count }),
            ),
        )
        .await?;
        tx.commit().await
    }
}
