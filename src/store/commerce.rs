//! A store's checkout configuration, always through [`TenantDb`]: checkout settings
//! (payment methods, tax-inclusive prices, pickup), shipping zones with their rates, tax
//! rates by country and discount codes.
//!
//! Rates are basis points (1 % = 100); money is integer minor units of the store currency;
//! timestamps integer microseconds.

use super::{StoreResult, TenantDb, Tx, from_json, micros_to_rfc3339};
use crate::pricing::{CountryCode, DiscountValue};
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx};
use serde::Serialize;
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
        let zones = self.list_shipping_zones().await?;
        let mut rates: Vec<ShippingRate> = zones
            .into_iter()
            .filter(|z| z.countries.iter().any(|c| c == country.as_str()))
            .flat_map(|z| z.rates)
            .collect();
        rates.sort_by_key(|r| r.price_minor);
        Ok(rates)
    }

    /// Whether any shipping zone lists `country`.
    pub async fn ships_to(&self, country: CountryCode) -> StoreResult<bool> {
        Ok(self
            .list_shipping_zones()
            .await?
            .iter()
            .any(|z| z.countries.iter().any(|c| c == country.as_str())))
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

    /// [`Self::discount_row_by_code`] inside a transaction.
    pub(crate) async fn discount_row_by_code_tx(
        &self,
        tx: &mut Tx,
        code: &str,
    ) -> StoreResult<Option<DiscountRow>> {
        let code = code.trim().to_uppercase();
        Ok(
            dispatch_tx!(tx, c => sqlx::query_as::<_, DiscountRow>(sqlx::AssertSqlSafe(format!(
            "select {DISCOUNT_COLS} from discount_codes where tenant_id = $1 and code = $2"
        )))
        .bind(self.tenant)
        .bind(code)
        .fetch_optional(&mut **c)
        .await)?,
        )
    }
}
