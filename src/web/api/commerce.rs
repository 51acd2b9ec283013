//! The merchant side of checkout: checkout settings (`/api/v1/settings/checkout`),
//! shipping zones and rates (`/api/v1/shipping-zones`, `/api/v1/shipping-rates/{id}`),
//! tax rates (`/api/v1/tax-rates`) and discount codes (`/api/v1/discount-codes`).
//!
//! Permissions: settings, shipping and tax need `settings.edit` (reads too: there is no
//! `settings.view`); discount codes need `products.edit` (they change what products
//! cost). Money is integer minor units of the store currency, rates basis points
//! (1 % = 100). Bad input is a 422 naming the field (`details.field`); a duplicate tax
//! country or discount code is a 409 naming `country` / `code`; an id of another store
//! is the same 404 as a missing one. The pricing rules these settings feed are in
//! `crate::pricing` (issue 11, parts 4 and 5).

use super::{ListResponse, PageQuery, Pagination, req_text};
use crate::access::perm;
use crate::domain::Email;
use crate::pricing::{CountryCode, DiscountValue};
use crate::store::commerce::{
    CheckoutSettings, CheckoutSettingsInput, DiscountCode, DiscountInput, RateInput, SecretChange,
    ShippingRate, ShippingZone, TaxRate, TaxRateInput, ZoneInput,
};
use crate::web::AppState;
use crate::web::context::Authorized;
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(get_settings, put_settings))
        .routes(routes!(list_zones, create_zone))
        .routes(routes!(get_zone, update_zone, delete_zone))
        .routes(routes!(list_zone_rates, create_rate))
        .routes(routes!(get_rate, update_rate, delete_rate))
        .routes(routes!(list_tax_rates, create_tax_rate))
        .routes(routes!(get_tax_rate, update_tax_rate, delete_tax_rate))
        .routes(routes!(list_discounts, create_discount))
        .routes(routes!(get_discount, update_discount, delete_discount))
}

/// Largest amount accepted anywhere here: 10^12 minor units.
const MAX_MINOR: i64 = 1_000_000_000_000;

// --- checkout settings ------------------------------------------------------------------

/// The checkout settings as the API shows them, with what the settings page needs
/// around them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutSettingsView {
    #[serde(flatten)]
    pub settings: CheckoutSettings,
    /// The store currency (ISO 4217): every `*_minor` amount is in it.
    pub currency: String,
    /// Whether the setup guide holds a Stripe secret key (card payments need it).
    pub stripe_secret_configured: bool,
    /// The address to paste into Stripe's webhook settings:
    /// `{store base URL}/api/v1/store/payments/stripe/webhook`.
    pub stripe_webhook_url: Option<String>,
}

async fn settings_view(
    st: &AppState,
    m: &crate::web::context::Merchant,
    settings: CheckoutSettings,
) -> ApiResult<CheckoutSettingsView> {
    let onboarding = m.scope.get_onboarding().await?;
    let (scheme, port) = super::admin::split_public_url(&st.config.public_url);
    Ok(CheckoutSettingsView {
        settings,
        currency: m.tenant.currency.clone(),
        stripe_secret_configured: onboarding.payment_secret.is_some(),
        stripe_webhook_url: m.tenant.handle.as_ref().map(|h| {
            format!(
                "{scheme}://{h}.{}{port}/api/v1/store/payments/stripe/webhook",
                st.config.base_domain
            )
        }),
    })
}

/// The store's checkout settings (defaults before the first save). The Stripe webhook
/// secret is never returned: only `stripe_webhook_secret_configured`.
#[utoipa::path(get, path = "/api/v1/settings/checkout", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = CheckoutSettingsView), (status = 403, body = ErrorBody)))]
async fn get_settings(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
) -> ApiResult<Json<CheckoutSettingsView>> {
    let s = m.scope.checkout_settings().await?;
    Ok(Json(settings_view(&st, &m, s).await?))
}

/// Body of `PUT /api/v1/settings/checkout`. Omitted fields keep their current value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// Catalog prices include tax (EU default); `false`: tax is added at checkout.
    pub prices_include_tax: Option<bool>,
    /// Bank transfer; needs `bank_instructions`.
    pub bank_transfer: Option<bool>,
    /// Shown to bank-transfer buyers (IBAN, reference to use); at most 2000 characters.
    pub bank_instructions: Option<String>,
    pub cash_on_delivery: Option<bool>,
    /// Card payments through Stripe; needs the Stripe secret key of the setup guide.
    pub card: Option<bool>,
    /// Pickup at the store (free); needs `pickup_address`.
    pub pickup: Option<bool>,
    /// At most 500 characters.
    pub pickup_address: Option<String>,
    /// New-order notifications go here; `""` or `null`: the store's owners.
    pub notify_email: Option<String>,
    /// Stripe's webhook signing secret (`whsec_…`), stored encrypted and never returned;
    /// `""` removes it.
    pub stripe_webhook_secret: Option<String>,
}

fn long(field: &str, v: &str, max: usize) -> ApiResult<()> {
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Replace the checkout settings (omitted fields are kept). 422 naming the field when
/// bank transfer has no instructions, pickup no address, card payments no Stripe secret,
/// the e-mail or the webhook secret is malformed.
#[utoipa::path(put, path = "/api/v1/settings/checkout", tag = "checkout", security(("bearer" = ["settings.edit"])),
    request_body = SettingsBody,
    responses((status = 200, body = CheckoutSettingsView), (status = 422, body = ErrorBody)))]
async fn put_settings(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    ApiJson(b): ApiJson<SettingsBody>,
) -> ApiResult<Json<CheckoutSettingsView>> {
    let cur = m.scope.checkout_settings().await?;
    let bank_instructions = b
        .bank_instructions
        .map(|s| s.trim().to_string())
        .unwrap_or(cur.bank_instructions);
    long("bank_instructions", &bank_instructions, 2000)?;
    let pickup_address = b
        .pickup_address
        .map(|s| s.trim().to_string())
        .unwrap_or(cur.pickup_address);
    long("pickup_address", &pickup_address, 500)?;
    let notify_email = match b.notify_email.as_deref().map(str::trim) {
        None => cur.notify_email,
        Some("") => None,
        Some(e) => Some(
            Email::parse(e)
                .map_err(|e| ApiError::field("notify_email", e))?
                .as_str()
                .to_string(),
        ),
    };
    let bank_transfer = b.bank_transfer.unwrap_or(cur.bank_transfer);
    if bank_transfer && bank_instructions.is_empty() {
        return Err(ApiError::invalid(
            "bank_instructions",
            "required",
            "bank_instructions are required for bank transfer: tell buyers your IBAN and the reference to use",
        ));
    }
    let pickup = b.pickup.unwrap_or(cur.pickup);
    if pickup && pickup_address.is_empty() {
        return Err(ApiError::invalid(
            "pickup_address",
            "required",
            "pickup_address is required when buyers may pick up their order",
        ));
    }
    let card = b.card.unwrap_or(cur.card);
    if card && b.card == Some(true) && m.scope.get_onboarding().await?.payment_secret.is_none() {
        return Err(ApiError::invalid(
            "card",
            "stripe_not_configured",
            "card payments need your Stripe secret key: enter it in the setup guide's payment step first",
        ));
    }
    let stripe_webhook_secret = match b.stripe_webhook_secret.as_deref().map(str::trim) {
        None => SecretChange::Keep,
        Some("") => SecretChange::Clear,
        Some(s) => {
            let ok = s.len() <= 200
                && s.strip_prefix("whsec_").is_some_and(|r| {
                    r.len() >= 8
                        && r.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c))
                });
            if !ok {
                return Err(ApiError::invalid(
                    "stripe_webhook_secret",
                    "invalid_secret",
                    "stripe_webhook_secret must be the signing secret Stripe shows for the endpoint, starting with whsec_",
                ));
            }
            let sealed = st.secret_box.seal(s).map_err(|e| {
                tracing::error!(error = %e, "sealing the Stripe webhook secret failed");
                ApiError::internal()
            })?;
            SecretChange::Set(sealed)
        }
    };
    let input = CheckoutSettingsInput {
        prices_include_tax: b.prices_include_tax.unwrap_or(cur.prices_include_tax),
        bank_transfer,
        bank_instructions,
        cash_on_delivery: b.cash_on_delivery.unwrap_or(cur.cash_on_delivery),
        card,
        pickup,
        pickup_address,
        notify_email,
        stripe_webhook_secret,
    };
    let saved = m.scope.save_checkout_settings(&m.actor, &input).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(settings_view(&st, &m, saved).await?))
}

// --- shipping ---------------------------------------------------------------------------

/// Body of a shipping zone create or replace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneBody {
    /// 1–100 characters.
    pub name: String,
    /// ISO 3166-1 alpha-2 codes (any case), at least one, at most 250.
    pub countries: Vec<String>,
}

fn parse_zone(b: ZoneBody) -> ApiResult<ZoneInput> {
    let name = req_text("name", &b.name, 100)?;
    if b.countries.is_empty() {
        return Err(ApiError::invalid(
            "countries",
            "required",
            "countries needs at least one ISO country code, e.g. [\"LU\", \"DE\"]",
        ));
    }
    if b.countries.len() > 250 {
        return Err(ApiError::invalid(
            "countries",
            "too_many",
            "countries: at most 250 entries",
        ));
    }
    let mut countries: Vec<CountryCode> = vec![];
    for (i, c) in b.countries.iter().enumerate() {
        let c =
            CountryCode::parse(c).map_err(|e| ApiError::field(&format!("countries[{i}]"), e))?;
        if !countries.contains(&c) {
            countries.push(c);
        }
    }
    Ok(ZoneInput { name, countries })
}

/// Every shipping zone with its rates, oldest first.
#[utoipa::path(get, path = "/api/v1/shipping-zones", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = Vec<ShippingZone>)))]
async fn list_zones(m: Authorized<perm::SettingsEdit>) -> ApiResult<Json<Vec<ShippingZone>>> {
    Ok(Json(m.scope.list_shipping_zones().await?))
}

/// Create a shipping zone (add its rates with `POST /shipping-zones/{id}/rates`).
#[utoipa::path(post, path = "/api/v1/shipping-zones", tag = "checkout", security(("bearer" = ["settings.edit"])),
    request_body = ZoneBody,
    responses((status = 201, body = ShippingZone), (status = 422, body = ErrorBody)))]
async fn create_zone(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    ApiJson(b): ApiJson<ZoneBody>,
) -> ApiResult<(StatusCode, Json<ShippingZone>)> {
    let input = parse_zone(b)?;
    if m.scope.list_shipping_zones().await?.len() >= 100 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "zone_limit_reached",
            "a store has at most 100 shipping zones",
        ));
    }
    let z = m.scope.create_shipping_zone(&m.actor, &input).await?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok((StatusCode::CREATED, Json(z)))
}

/// One shipping zone with its rates.
#[utoipa::path(get, path = "/api/v1/shipping-zones/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = ShippingZone), (status = 404, body = ErrorBody)))]
async fn get_zone(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ShippingZone>> {
    m.scope
        .shipping_zone(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("shipping zone"))
}

fn zone_404(e: crate::store::StoreError) -> ApiError {
    match e {
        crate::store::StoreError::NotFound => ApiError::not_found("shipping zone"),
        e => e.into(),
    }
}

/// Replace a zone's name and countries (its rates are kept).
#[utoipa::path(put, path = "/api/v1/shipping-zones/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    request_body = ZoneBody,
    responses((status = 200, body = ShippingZone), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_zone(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<ZoneBody>,
) -> ApiResult<Json<ShippingZone>> {
    let input = parse_zone(b)?;
    let z = m
        .scope
        .update_shipping_zone(&m.actor, id, &input)
        .await
        .map_err(zone_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(z))
}

/// Delete a zone with its rates.
#[utoipa::path(delete, path = "/api/v1/shipping-zones/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_zone(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .delete_shipping_zone(&m.actor, id)
        .await
        .map_err(zone_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a shipping rate create or replace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    /// Shown to shoppers, e.g. "Standard"; 1–100 characters.
    pub name: String,
    /// Minor units of the store currency, 0 or more.
    pub price_minor: i64,
    /// Free when the discounted subtotal reaches this (minor units, 0 or more);
    /// `null`/omitted: never free.
    pub free_over_minor: Option<i64>,
}

fn parse_rate(b: RateBody) -> ApiResult<RateInput> {
    let name = req_text("name", &b.name, 100)?;
    if !(0..=MAX_MINOR).contains(&b.price_minor) {
        return Err(ApiError::invalid(
            "price_minor",
            "out_of_range",
            "price_minor must be 0 or more minor units (at most 10^12)",
        ));
    }
    if let Some(f) = b.free_over_minor
        && !(0..=MAX_MINOR).contains(&f)
    {
        return Err(ApiError::invalid(
            "free_over_minor",
            "out_of_range",
            "free_over_minor must be 0 or more minor units (at most 10^12), or null",
        ));
    }
    Ok(RateInput {
        name,
        price_minor: b.price_minor,
        free_over_minor: b.free_over_minor,
    })
}

/// A zone's rates, cheapest first.
#[utoipa::path(get, path = "/api/v1/shipping-zones/{id}/rates", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = Vec<ShippingRate>), (status = 404, body = ErrorBody)))]
async fn list_zone_rates(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<ShippingRate>>> {
    m.scope
        .shipping_zone(id)
        .await?
        .map(|z| Json(z.rates))
        .ok_or_else(|| ApiError::not_found("shipping zone"))
}

/// Add a rate to a zone.
#[utoipa::path(post, path = "/api/v1/shipping-zones/{id}/rates", tag = "checkout", security(("bearer" = ["settings.edit"])),
    request_body = RateBody,
    responses((status = 201, body = ShippingRate), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_rate(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RateBody>,
) -> ApiResult<(StatusCode, Json<ShippingRate>)> {
    let input = parse_rate(b)?;
    let zone = m
        .scope
        .shipping_zone(id)
        .await?
        .ok_or_else(|| ApiError::not_found("shipping zone"))?;
    if zone.rates.len() >= 50 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rate_limit_reached",
            "a shipping zone has at most 50 rates",
        ));
    }
    let r = m
        .scope
        .create_shipping_rate(&m.actor, id, &input)
        .await
        .map_err(zone_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok((StatusCode::CREATED, Json(r)))
}

fn rate_404(e: crate::store::StoreError) -> ApiError {
    match e {
        crate::store::StoreError::NotFound => ApiError::not_found("shipping rate"),
        e => e.into(),
    }
}

/// One shipping rate.
#[utoipa::path(get, path = "/api/v1/shipping-rates/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = ShippingRate), (status = 404, body = ErrorBody)))]
async fn get_rate(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ShippingRate>> {
    m.scope
        .shipping_rate(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("shipping rate"))
}

/// Replace a shipping rate.
#[utoipa::path(put, path = "/api/v1/shipping-rates/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    request_body = RateBody,
    responses((status = 200, body = ShippingRate), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_rate(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RateBody>,
) -> ApiResult<Json<ShippingRate>> {
    let input = parse_rate(b)?;
    let r = m
        .scope
        .update_shipping_rate(&m.actor, id, &input)
        .await
        .map_err(rate_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(r))
}

/// Delete a shipping rate.
#[utoipa::path(delete, path = "/api/v1/shipping-rates/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_rate(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .delete_shipping_rate(&m.actor, id)
        .await
        .map_err(rate_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(StatusCode::NO_CONTENT)
}

// --- tax --------------------------------------------------------------------------------

/// Body of a tax rate create or replace: `rate_bp`, or `rate` as a percent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRateBody {
    /// ISO 3166-1 alpha-2 destination country; one rate per country.
    pub country: String,
    /// E.g. "TVA" or "VAT"; default "VAT". At most 100 characters.
    pub name: Option<String>,
    /// Basis points, 0–10000 (1700 = 17 %).
    pub rate_bp: Option<i64>,
    /// The same as a percent decimal string with at most 2 decimals ("17", "5.5").
    pub rate: Option<String>,
}

fn parse_tax(b: TaxRateBody) -> ApiResult<TaxRateInput> {
    let country = CountryCode::parse(&b.country).map_err(|e| ApiError::field("country", e))?;
    let name = match b.name.as_deref().map(str::trim) {
        None | Some("") => "VAT".to_string(),
        Some(n) => req_text("name", n, 100)?,
    };
    let rate_bp = match (b.rate_bp, b.rate.as_deref().map(str::trim)) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "rate",
                "ambiguous_rate",
                "give either rate_bp (basis points) or rate (a percent), not both",
            ));
        }
        (Some(bp), None) => {
            if !(0..=10_000).contains(&bp) {
                return Err(ApiError::invalid(
                    "rate_bp",
                    "out_of_range",
                    "rate_bp must be between 0 and 10000 basis points (0–100 %; 1700 = 17 %)",
                ));
            }
            bp
        }
        (None, Some(pct)) => {
            let bp = crate::domain::parse_decimal_minor(pct, 2).map_err(|_| {
                ApiError::invalid(
                    "rate",
                    "invalid_rate",
                    format!("rate '{pct}' must be a percent between 0 and 100 with at most 2 decimals, e.g. 17 or 5.5"),
                )
            })?;
            if bp > 10_000 {
                return Err(ApiError::invalid(
                    "rate",
                    "out_of_range",
                    format!("rate '{pct}' must be between 0 and 100 (percent)"),
                ));
            }
            bp
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "rate_bp",
                "required",
                "rate_bp (basis points, 1700 = 17 %) or rate (a percent, \"17\") is required",
            ));
        }
    };
    Ok(TaxRateInput {
        country,
        name,
        rate_bp,
    })
}

fn tax_404(e: crate::store::StoreError) -> ApiError {
    match e {
        crate::store::StoreError::NotFound => ApiError::not_found("tax rate"),
        crate::store::StoreError::Conflict { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "country_taken",
            "this store already has a tax rate for that country: edit it instead",
        )
        .with_details(serde_json::json!({ "field": "country" })),
        e => e.into(),
    }
}

/// Every tax rate, by country.
#[utoipa::path(get, path = "/api/v1/tax-rates", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = Vec<TaxRate>)))]
async fn list_tax_rates(m: Authorized<perm::SettingsEdit>) -> ApiResult<Json<Vec<TaxRate>>> {
    Ok(Json(m.scope.list_tax_rates().await?))
}

/// Create a tax rate for a country (409 `country_taken` if the store has one).
#[utoipa::path(post, path = "/api/v1/tax-rates", tag = "checkout", security(("bearer" = ["settings.edit"])),
    request_body = TaxRateBody,
    responses((status = 201, body = TaxRate), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_tax_rate(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    ApiJson(b): ApiJson<TaxRateBody>,
) -> ApiResult<(StatusCode, Json<TaxRate>)> {
    let input = parse_tax(b)?;
    let t = m
        .scope
        .create_tax_rate(&m.actor, &input)
        .await
        .map_err(tax_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok((StatusCode::CREATED, Json(t)))
}

/// One tax rate.
#[utoipa::path(get, path = "/api/v1/tax-rates/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = TaxRate), (status = 404, body = ErrorBody)))]
async fn get_tax_rate(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<TaxRate>> {
    m.scope
        .tax_rate(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("tax rate"))
}

/// Replace a tax rate.
#[utoipa::path(put, path = "/api/v1/tax-rates/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    request_body = TaxRateBody,
    responses((status = 200, body = TaxRate), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_tax_rate(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<TaxRateBody>,
) -> ApiResult<Json<TaxRate>> {
    let input = parse_tax(b)?;
    let t = m
        .scope
        .update_tax_rate(&m.actor, id, &input)
        .await
        .map_err(tax_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(t))
}

/// Delete a tax rate (that country is then taxed at 0 %).
#[utoipa::path(delete, path = "/api/v1/tax-rates/{id}", tag = "checkout", security(("bearer" = ["settings.edit"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_tax_rate(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .delete_tax_rate(&m.actor, id)
        .await
        .map_err(tax_404)?;
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(StatusCode::NO_CONTENT)
}

// --- discounts --------------------------------------------------------------------------

/// Body of a discount code create or replace.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountBody {
    /// 1–40 characters of `A–Z 0–9 _ -` (lower case is upper-cased); unique per store.
    pub code: String,
    /// `percentage` or `fixed`.
    pub kind: String,
    /// Percentage: basis points 1–10000 (1000 = 10 %). Fixed: minor units, more than 0.
    pub value: i64,
    /// The subtotal (minor units) a cart needs; default 0.
    pub min_subtotal_minor: Option<i64>,
    /// RFC 3339; `null`: valid from now on.
    pub starts_at: Option<String>,
    /// RFC 3339, after `starts_at`; `null`: no end.
    pub ends_at: Option<String>,
    /// Total uses allowed, 1 or more; `null`: unlimited.
    pub usage_limit: Option<i64>,
    /// Uses per customer e-mail, 1 or more; `null`: unlimited.
    pub per_customer_limit: Option<i64>,
    /// Default true.
    pub active: Option<bool>,
}

/// Parses an RFC 3339 time into Unix microseconds. Errors: 422 naming `field`.
fn parse_time(field: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    ApiError::invalid(
                        field,
                        "invalid_time",
                        format!("{field} must be an RFC 3339 time, e.g. 2026-12-24T00:00:00Z"),
                    )
                })?;
            Ok(Some((t.unix_timestamp_nanos() / 1000) as i64))
        }
    }
}

/// Checks a discount code's text: trimmed, upper-cased, 1–40 of `[A-Z0-9_-]`.
pub fn parse_code(raw: &str) -> ApiResult<String> {
    let code = raw.trim().to_uppercase();
    if code.is_empty() {
        return Err(ApiError::invalid("code", "required", "code is required"));
    }
    if code.chars().count() > 40
        || !code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(ApiError::invalid(
            "code",
            "invalid_code",
            "code must be 1 to 40 letters A–Z, digits, '_' or '-' (no spaces)",
        ));
    }
    Ok(code)
}

fn parse_discount(b: DiscountBody) -> ApiResult<DiscountInput> {
    let code = parse_code(&b.code)?;
    let value = match b.kind.trim() {
        "percentage" => {
            if !(1..=10_000).contains(&b.value) {
                return Err(ApiError::invalid(
                    "value",
                    "out_of_range",
                    "a percentage discount's value is in basis points, 1 to 10000 (1000 = 10 %)",
                ));
            }
            DiscountValue::Percentage(b.value)
        }
        "fixed" => {
            if !(1..=MAX_MINOR).contains(&b.value) {
                return Err(ApiError::invalid(
                    "value",
                    "out_of_range",
                    "a fixed discount's value is in minor units and must be more than 0",
                ));
            }
            DiscountValue::Fixed(b.value)
        }
        _ => {
            return Err(ApiError::invalid(
                "kind",
                "invalid_kind",
                "kind must be percentage or fixed",
            ));
        }
    };
    let min_subtotal_minor = b.min_subtotal_minor.unwrap_or(0);
    if !(0..=MAX_MINOR).contains(&min_subtotal_minor) {
        return Err(ApiError::invalid(
            "min_subtotal_minor",
            "out_of_range",
            "min_subtotal_minor must be 0 or more minor units",
        ));
    }
    let starts_at = parse_time("starts_at", b.starts_at.as_deref())?;
    let ends_at = parse_time("ends_at", b.ends_at.as_deref())?;
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e <= s
    {
        return Err(ApiError::invalid(
            "ends_at",
            "ends_before_start",
            "ends_at must be after starts_at",
        ));
    }
    for (field, v) in [
        ("usage_limit", b.usage_limit),
        ("per_customer_limit", b.per_customer_limit),
    ] {
        if let Some(n) = v
            && !(1..=1_000_000_000).contains(&n)
        {
            return Err(ApiError::invalid(
                field,
                "out_of_range",
                format!("{field} must be 1 or more, or null for no limit"),
            ));
        }
    }
    Ok(DiscountInput {
        code,
        value,
        min_subtotal_minor,
        starts_at,
        ends_at,
        usage_limit: b.usage_limit,
        per_customer_limit: b.per_customer_limit,
        active: b.active.unwrap_or(true),
    })
}

fn discount_err(e: crate::store::StoreError) -> ApiError {
    match e {
        crate::store::StoreError::NotFound => ApiError::not_found("discount code"),
        crate::store::StoreError::Conflict { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "code_taken",
            "this store already has a discount code with that code",
        )
        .with_details(serde_json::json!({ "field": "code" })),
        e => e.into(),
    }
}

/// Query of the discount code list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscountQuery {
    /// Part of the code (any case).
    pub q: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// List discount codes, newest first, optionally searched by code.
#[utoipa::path(get, path = "/api/v1/discount-codes", tag = "checkout", security(("bearer" = ["products.edit"])),
    params(DiscountQuery),
    responses((status = 200, body = ListResponse<DiscountCode>), (status = 422, body = ErrorBody)))]
async fn list_discounts(
    m: Authorized<perm::ProductsEdit>,
    Query(q): Query<DiscountQuery>,
) -> ApiResult<Json<ListResponse<DiscountCode>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    if q.q.as_deref().is_some_and(|s| s.chars().count() > 100) {
        return Err(ApiError::invalid(
            "q",
            "too_long",
            "q must be at most 100 characters",
        ));
    }
    let (data, total) = m
        .scope
        .list_discount_codes(q.q.as_deref(), limit, offset)
        .await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// Create a discount code (409 `code_taken` if the store has that code).
#[utoipa::path(post, path = "/api/v1/discount-codes", tag = "checkout", security(("bearer" = ["products.edit"])),
    request_body = DiscountBody,
    responses((status = 201, body = DiscountCode), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_discount(
    m: Authorized<perm::ProductsEdit>,
    ApiJson(b): ApiJson<DiscountBody>,
) -> ApiResult<(StatusCode, Json<DiscountCode>)> {
    let input = parse_discount(b)?;
    let d = m
        .scope
        .create_discount_code(&m.actor, &input)
        .await
        .map_err(discount_err)?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// One discount code.
#[utoipa::path(get, path = "/api/v1/discount-codes/{id}", tag = "checkout", security(("bearer" = ["products.edit"])),
    responses((status = 200, body = DiscountCode), (status = 404, body = ErrorBody)))]
async fn get_discount(
    m: Authorized<perm::ProductsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DiscountCode>> {
    m.scope
        .discount_code(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("discount code"))
}

/// Replace a discount code's definition (its use count is kept); `active: false`
/// deactivates it.
#[utoipa::path(put, path = "/api/v1/discount-codes/{id}", tag = "checkout", security(("bearer" = ["products.edit"])),
    request_body = DiscountBody,
    responses((status = 200, body = DiscountCode), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_discount(
    m: Authorized<perm::ProductsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<DiscountBody>,
) -> ApiResult<Json<DiscountCode>> {
    let input = parse_discount(b)?;
    let d = m
        .scope
        .update_discount_code(&m.actor, id, &input)
        .await
        .map_err(discount_err)?;
    Ok(Json(d))
}

/// Delete a discount code (placed orders keep the code's text).
#[utoipa::path(delete, path = "/api/v1/discount-codes/{id}", tag = "checkout", security(("bearer" = ["products.edit"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_discount(
    m: Authorized<perm::ProductsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope
        .delete_discount_code(&m.actor, id)
        .await
        .map_err(discount_err)?;
    Ok(StatusCode::NO_CONTENT)
}
