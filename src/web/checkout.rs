//! Checkout steps shared by the Store API (`api::cart`) and the storefront's forms
//! (`shop`): who is buying (customer sessions), the context of placing an order (links and
//! recipients of the e-mails), and card payments through Stripe (the store's secret key
//! from the setup guide, the configured API base).

use super::AppState;
use super::context::HostTenant;
use super::error::ApiError;
use crate::payments::{Stripe, StripeError};
use crate::store::TenantDb;
use crate::store::audit::Actor;
use crate::store::carts::{Cart, CheckoutError, PaymentMethod, PlaceOrder};
use crate::store::orders::{Order, PaymentInput};
use axum::http::{HeaderMap, StatusCode, header};
use uuid::Uuid;

/// Prefix of customer session tokens (never accepted by the merchant API or dashboard).
pub const CUSTOMER_TOKEN_PREFIX: &str = "cus_";
/// The storefront's session cookie.
pub const CUSTOMER_COOKIE: &str = "souk_customer";
/// The storefront's cart cookie.
pub const CART_COOKIE: &str = "souk_cart";

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::Invalid {
                field,
                code,
                message,
            } => ApiError::invalid(&field, code, message),
            CheckoutError::Conflict {
                code,
                message,
                details,
            } => ApiError::new(StatusCode::CONFLICT, code, message).with_details(details),
            CheckoutError::NotFound(what) => ApiError::not_found(what),
            CheckoutError::Store(s) => s.into(),
        }
    }
}

impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Api { message, code, .. } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_failed",
                format!("the card payment failed: {message}"),
            )
            .with_details(serde_json::json!({ "stripe_code": code })),
            StripeError::Transport(m) => {
                tracing::warn!(error = %m, "Stripe unreachable");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "payment_provider_unavailable",
                    "the card payment provider cannot be reached; your cart is kept, please try again",
                )
            }
        }
    }
}

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The customer token of a request: `Authorization: Bearer cus_…` (Store API) or the
/// storefront's session cookie.
pub fn customer_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(CUSTOMER_TOKEN_PREFIX));
    bearer
        .or_else(|| cookie(headers, CUSTOMER_COOKIE))
        .map(str::to_string)
}

/// The signed-in customer of this store, if the request carries a valid session.
/// A token of another store finds nothing (tokens are looked up within the tenant).
pub async fn current_customer(
    scope: &TenantDb,
    headers: &HeaderMap,
) -> Result<Option<Uuid>, ApiError> {
    let Some(token) = customer_token(headers) else {
        return Ok(None);
    };
    Ok(scope
        .customer_by_session(&crate::auth::token_hash(&token))
        .await?)
}

/// Starts a customer session: returns the new token (`cus_…`).
pub async fn start_session(scope: &TenantDb, customer: Uuid) -> Result<String, ApiError> {
    let token = format!("{CUSTOMER_TOKEN_PREFIX}{}", crate::auth::random_token(32));
    scope
        .create_customer_token(
            customer,
            "session",
            &crate::auth::token_hash(&token),
            crate::store::customers::SESSION_TTL_MICROS,
        )
        .await?;
    Ok(token)
}

/// The public base URL of a store's storefront (for links in e-mails): the platform URL
/// with the store's path prefix.
pub fn store_url(st: &AppState, h: &HostTenant) -> String {
    let base = st.config.public_url.trim_end_matches('/');
    match &h.tenant.handle {
        Some(handle) => format!("{base}/s/{handle}"),
        None => base.to_string(),
    }
}

/// The store's Stripe client, when the setup guide stored a secret key.
pub async fn stripe_for(st: &AppState, scope: &TenantDb) -> Result<Option<Stripe>, ApiError> {
    let Some(sealed) = scope.stripe_secret_cached().await? else {
        return Ok(None);
    };
    let secret = st.secret_box.open(&sealed).map_err(|e| {
        tracing::error!(error = %e, "opening the Stripe secret failed");
        ApiError::internal()
    })?;
    Ok(Some(Stripe::new(&st.config.stripe_api_base, &secret)?))
}

/// What placing an order needs: the actor, the e-mails' store name, links and the
/// new-order notification's recipient (the checkout settings' address, else the owner).
pub async fn place_context(
    st: &AppState,
    h: &HostTenant,
    scope: &TenantDb,
    actor: Actor,
    idempotency: Option<(String, String)>,
) -> Result<PlaceOrder, ApiError> {
    let settings = scope.checkout_settings_cached().await?;
    let notify_to = match settings.notify_email {
        Some(e) if !e.is_empty() => vec![e],
        _ => owner_email(st, h.tenant.id).await?.into_iter().collect(),
    };
    let stripe_configured = scope.stripe_secret_cached().await?.is_some();
    Ok(PlaceOrder {
        actor,
        idempotency,
        store_name: h.tenant.name.clone(),
        store_url: store_url(st, h),
        notify_to,
        stripe_configured,
    })
}

/// Page-cache setting holding the owner's e-mail (the new-order notification's default
/// recipient): read once per [`crate::web::cache::PAGE_TTL`], not once per order.
const OWNER_EMAIL_KEY: &str = "meta:owner-email";

async fn owner_email(st: &AppState, tenant: Uuid) -> Result<Option<String>, ApiError> {
    if let Some(b) = st.page_cache.get(tenant, OWNER_EMAIL_KEY) {
        return Ok(std::str::from_utf8(&b)
            .ok()
            .filter(|e| !e.is_empty())
            .map(str::to_string));
    }
    let e = crate::store::platform::owner_email(&st.db, tenant).await?;
    st.page_cache.put_setting(
        tenant,
        OWNER_EMAIL_KEY,
        e.clone().unwrap_or_default().into_bytes().into(),
    );
    Ok(e)
}

/// The actor of a shopper's change (audit log): [`Actor::shopper`].
pub fn shopper_actor(email: Option<&str>, customer: Option<Uuid>, ip: Option<String>) -> Actor {
    Actor::shopper(email, customer, ip)
}

/// Chooses the cart's payment method; for `card`, creates (or re-prices) the Stripe
/// PaymentIntent of the cart's total and returns its client secret, which the shopper's
/// browser confirms with Stripe.js.
///
/// Errors: the cart's (`payment_method_unavailable`, …); 402 `payment_failed` or 502 when
/// Stripe refuses or cannot be reached (the cart is kept).
pub async fn choose_payment(
    st: &AppState,
    scope: &TenantDb,
    cart_id: Uuid,
    method: PaymentMethod,
) -> Result<(Cart, Option<String>), ApiError> {
    let stripe = if method == PaymentMethod::Card {
        stripe_for(st, scope).await?
    } else {
        None
    };
    let patch = crate::store::carts::CartPatch {
        payment_method: Some(method),
        ..Default::default()
    };
    let cart = scope.update_cart(cart_id, &patch, stripe.is_some()).await?;
    let Some(stripe) = stripe else {
        return Ok((cart, None));
    };
    let amount = cart.totals.total.amount_minor;
    let intent = match &cart.payment_intent_id {
        Some(id) => {
            let pi = stripe.payment_intent(id).await?;
            if pi.amount != amount && pi.status != "succeeded" {
                stripe.update_payment_intent_amount(id, amount).await?
            } else {
                pi
            }
        }
        None => {
            let pi = stripe
                .create_payment_intent(
                    amount,
                    &cart.currency,
                    &[
                        ("souk_tenant", scope.tenant_id().to_string()),
                        ("souk_cart", cart_id.to_string()),
                    ],
                    &format!("cart-{cart_id}-{amount}"),
                )
                .await?;
            scope.set_cart_payment_intent(cart_id, &pi.id).await?;
            pi
        }
    };
    let cart = scope
        .cart(cart_id)
        .await?
        .ok_or_else(|| ApiError::not_found("cart"))?;
    Ok((cart, intent.client_secret))
}

/// After a card order is placed: if its PaymentIntent already succeeded (the browser
/// confirmed it before completing), record the payment now; Stripe's webhook records it
/// otherwise. Recording is idempotent (one payment per PaymentIntent).
pub async fn settle_card_order(
    st: &AppState,
    scope: &TenantDb,
    order: Order,
) -> Result<Order, ApiError> {
    let Some(pi_id) = order.payment_intent_id.clone() else {
        return Ok(order);
    };
    let Some(stripe) = stripe_for(st, scope).await? else {
        return Ok(order);
    };
    let pi = match stripe.payment_intent(&pi_id).await {
        Ok(pi) => pi,
        Err(e) => {
            // The order is placed; the webhook will settle it.
            tracing::warn!(error = %e, "reading a PaymentIntent after checkout failed");
            return Ok(order);
        }
    };
    if pi.status == "succeeded" {
        record_stripe_payment(scope, order.id, &pi_id, pi.amount).await?;
        return Ok(scope.get_order(order.id).await?.unwrap_or(order));
    }
    Ok(order)
}

/// Records a Stripe payment once per PaymentIntent (a second call changes nothing).
pub async fn record_stripe_payment(
    scope: &TenantDb,
    order_id: Uuid,
    pi_id: &str,
    amount: i64,
) -> Result<bool, ApiError> {
    let order = scope
        .get_order(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let amount = amount.min(order.outstanding.amount_minor);
    let already = scope
        .list_payments(order_id)
        .await?
        .iter()
        .any(|p| p.gateway == "stripe" && p.reference.as_deref() == Some(pi_id));
    if amount <= 0 || already {
        return Ok(false);
    }
    let r = scope
        .record_payment(
            &Actor::system("stripe"),
            order_id,
            &PaymentInput {
                amount_minor: amount,
                gateway: "stripe".into(),
                reference: Some(pi_id.to_string()),
            },
        )
        .await;
    match r {
        Ok(_) => Ok(true),
        // The unique (gateway, reference) index: a concurrent recording won.
        Err(crate::store::orders::OrderError::Store(crate::store::StoreError::Database(
            sqlx::Error::Database(d),
        ))) if d.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}
