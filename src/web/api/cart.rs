//! Store API for headless storefronts: carts, shipping options, payment, placing the order,
//! customer accounts, and Stripe's webhook. Served on the store's host, under
//! `/s/{handle}/`, or anywhere with `X-Publishable-Key` (Medusa's Store API is the model).
//! Carts are reached by their id (random, 122 bits); customers by `Authorization: Bearer
//! cus_…` tokens, which no merchant route accepts.

use crate::domain::Email;
use crate::pricing::AddressInput;
use crate::store::carts::{Cart, CartOrigin, CartPatch, PaymentMethod, ShippingOption};
use crate::store::customers::{Customer, Registered, SavedAddress};
use crate::store::orders::Order;
use crate::web::AppState;
use crate::web::api::{ListResponse, PageQuery, Pagination};
use crate::web::checkout::{self, current_customer, shopper_actor};
use crate::web::context::{ClientIp, StoreTenant};
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_cart))
        .routes(routes!(get_cart, update_cart))
        .routes(routes!(add_line))
        .routes(routes!(update_line, delete_line))
        .routes(routes!(apply_discount, remove_discount))
        .routes(routes!(list_shipping_options))
        .routes(routes!(set_payment))
        .routes(routes!(complete_cart))
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(login_link))
        .routes(routes!(login_with_link))
        .routes(routes!(password_reset))
        .routes(routes!(password_reset_confirm))
        .routes(routes!(me))
        .routes(routes!(my_orders))
        .routes(routes!(my_addresses, add_my_address))
        .routes(routes!(delete_my_address))
        .routes(routes!(stripe_webhook))
}

/// Where a Store API cart came from: the publishable key's prefix, or the storefront host.
fn origin(headers: &HeaderMap) -> CartOrigin {
    let key = headers
        .get("x-publishable-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.chars().take(16).collect::<String>());
    CartOrigin {
        source: match key {
            Some(k) => format!("store_api:{k}"),
            None => "store_api".into(),
        },
    }
}

fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

/// Body of `POST /store/carts`.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct CreateCart {
    /// The shopper's e-mail (defaults to the signed-in customer's).
    #[serde(default)]
    email: Option<String>,
    /// Lines to start with.
    #[serde(default)]
    items: Vec<AddLine>,
}

/// Create a cart (in the store currency). A signed-in customer's cart is theirs.
#[utoipa::path(post, path = "/api/v1/store/carts", tag = "store", request_body = CreateCart,
    responses((status = 201, body = Cart), (status = 422, body = ErrorBody)))]
async fn create_cart(
    t: StoreTenant,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateCart>,
) -> ApiResult<Response> {
    let customer = current_customer(&t.scope, &headers).await?;
    let email = match &body.email {
        Some(e) => Some(Email::parse(e).map_err(|e| ApiError::field("email", e))?),
        None => None,
    };
    let mut owner = None;
    if let Some(c) = customer
        && let Some(rec) = t.scope.get_customer(c).await?
    {
        owner = Some((
            c,
            Email::parse(&rec.email).map_err(|e| ApiError::field("email", e))?,
        ));
    }
    let mut cart = t
        .scope
        .create_cart(
            &origin(&headers),
            &t.host.tenant.currency,
            owner.as_ref().map(|o| o.0),
            email.as_ref().or(owner.as_ref().map(|o| &o.1)),
        )
        .await?;
    for (i, item) in body.items.iter().enumerate() {
        let v = parse_id(&item.variant_id, "variant").map_err(|_| {
            ApiError::invalid(
                &format!("items[{i}].variant_id"),
                "unknown_variant",
                "not a variant id",
            )
        })?;
        cart = t.scope.add_to_cart(cart.id, v, item.quantity).await?;
    }
    Ok((StatusCode::CREATED, Json(cart)).into_response())
}

/// Get a cart, priced now (`changes` lists what changed since lines were added).
#[utoipa::path(get, path = "/api/v1/store/carts/{id}", tag = "store",
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody)))]
async fn get_cart(t: StoreTenant, Path(id): Path<String>) -> ApiResult<Json<Cart>> {
    let id = parse_id(&id, "cart")?;
    t.scope
        .cart(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("cart"))
}

/// Body of `POST /store/carts/{id}`: any of the fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct UpdateCart {
    email: Option<String>,
    shipping_address: Option<AddressInput>,
    /// A shipping rate id from `shipping-options`, or `pickup`.
    shipping_option: Option<String>,
    /// `bank_transfer`, `cash_on_delivery` (card: use `/payment`).
    payment_method: Option<String>,
}

/// Parses the cart update body into a patch. Errors name the field
/// (`shipping_address.postal_code`, `email`, …).
pub fn parse_cart_update(
    email: Option<&str>,
    address: Option<&AddressInput>,
    shipping_option: Option<&str>,
    payment_method: Option<&str>,
) -> Result<CartPatch, ApiError> {
    let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => Some(Email::parse(e).map_err(|e| ApiError::field("email", e))?),
        None => None,
    };
    let shipping_address = match address {
        Some(a) => Some(
            a.parse()
                .map_err(|e| ApiError::field(&format!("shipping_address.{}", e.field), e.error))?,
        ),
        None => None,
    };
    let payment_method = match payment_method.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => Some(PaymentMethod::parse(m)?),
        None => None,
    };
    Ok(CartPatch {
        email,
        shipping_address,
        shipping_option: shipping_option
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        payment_method,
        customer_id: None,
    })
}

/// Set the e-mail, shipping address, shipping option or a manual payment method.
#[utoipa::path(post, path = "/api/v1/store/carts/{id}", tag = "store", request_body = UpdateCart,
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_cart(
    t: StoreTenant,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateCart>,
) -> ApiResult<Json<Cart>> {
    let id = parse_id(&id, "cart")?;
    let patch = parse_cart_update(
        b.email.as_deref(),
        b.shipping_address.as_ref(),
        b.shipping_option.as_deref(),
        b.payment_method.as_deref(),
    )?;
    if patch.payment_method == Some(PaymentMethod::Card) {
        return Err(ApiError::invalid(
            "payment_method",
            "use_payment_route",
            "card payments are chosen with POST /api/v1/store/carts/{id}/payment",
        ));
    }
    Ok(Json(t.scope.update_cart(id, &patch, false).await?))
}

/// Body of `POST /store/carts/{id}/line-items`.
#[derive(Debug, Deserialize, ToSchema)]
struct AddLine {
    variant_id: String,
    /// 1..=10000.
    quantity: i64,
}

/// Add a variant (adds to its line if the cart has one).
#[utoipa::path(post, path = "/api/v1/store/carts/{id}/line-items", tag = "store", request_body = AddLine,
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_line(
    t: StoreTenant,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<AddLine>,
) -> ApiResult<Json<Cart>> {
    let id = parse_id(&id, "cart")?;
    let v = Uuid::parse_str(b.variant_id.trim()).map_err(|_| {
        ApiError::invalid(
            "variant_id",
            "unknown_variant",
            "variant_id is not a variant id",
        )
    })?;
    Ok(Json(t.scope.add_to_cart(id, v, b.quantity).await?))
}

/// Body of `POST /store/carts/{id}/line-items/{line_id}`.
#[derive(Debug, Deserialize, ToSchema)]
struct UpdateLine {
    /// 1..=10000 (remove a line with DELETE).
    quantity: i64,
}

/// Change a line's quantity.
#[utoipa::path(post, path = "/api/v1/store/carts/{id}/line-items/{line_id}", tag = "store", request_body = UpdateLine,
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_line(
    t: StoreTenant,
    Path((id, line)): Path<(String, String)>,
    ApiJson(b): ApiJson<UpdateLine>,
) -> ApiResult<Json<Cart>> {
    let id = parse_id(&id, "cart")?;
    let line = parse_id(&line, "line")?;
    Ok(Json(t.scope.update_cart_line(id, line, b.quantity).await?))
}

/// Remove a line.
#[utoipa::path(delete, path = "/api/v1/store/carts/{id}/line-items/{line_id}", tag = "store",
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody)))]
async fn delete_line(
    t: StoreTenant,
    Path((id, line)): Path<(String, String)>,
) -> ApiResult<Json<Cart>> {
    let id = parse_id(&id, "cart")?;
    let line = parse_id(&line, "line")?;
    Ok(Json(t.scope.remove_cart_line(id, line).await?))
}

/// Body of `POST /store/carts/{id}/discounts`.
#[derive(Debug, Deserialize, ToSchema)]
struct ApplyDiscount {
    code: String,
}

/// Apply a discount code.
#[utoipa::path(post, path = "/api/v1/store/carts/{id}/discounts", tag = "store", request_body = ApplyDiscount,
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn apply_discount(
    t: StoreTenant,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ApplyDiscount>,
) -> ApiResult<Json<Cart>> {
    let id = parse_id(&id, "cart")?;
    Ok(Json(t.scope.apply_discount(id, &b.code).await?))
}

/// Remove the discount code.
#[utoipa::path(delete, path = "/api/v1/store/carts/{id}/discounts", tag = "store",
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody)))]
async fn remove_discount(t: StoreTenant, Path(id): Path<String>) -> ApiResult<Json<Cart>> {
    let id = parse_id(&id, "cart")?;
    Ok(Json(t.scope.remove_discount(id).await?))
}

/// The shipping options for the cart's address.
#[utoipa::path(get, path = "/api/v1/store/carts/{id}/shipping-options", tag = "store",
    responses((status = 200, body = Vec<ShippingOption>), (status = 404, body = ErrorBody)))]
async fn list_shipping_options(
    t: StoreTenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ShippingOption>>> {
    let id = parse_id(&id, "cart")?;
    Ok(Json(t.scope.shipping_options(id).await?))
}

/// Body of `POST /store/carts/{id}/payment`.
#[derive(Debug, Deserialize, ToSchema)]
struct SetPayment {
    /// `bank_transfer`, `cash_on_delivery` or `card`.
    method: String,
}

/// The cart with the card payment's client secret.
#[derive(Debug, Serialize, ToSchema)]
struct PaymentResponse {
    cart: Cart,
    /// For `card`: the PaymentIntent's client secret, confirmed in the browser with
    /// Stripe.js; `null` for manual methods.
    client_secret: Option<String>,
}

/// Choose the payment method; `card` creates the Stripe PaymentIntent of the cart's total.
#[utoipa::path(post, path = "/api/v1/store/carts/{id}/payment", tag = "store", request_body = SetPayment,
    responses((status = 200, body = PaymentResponse), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn set_payment(
    State(st): State<AppState>,
    t: StoreTenant,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SetPayment>,
) -> ApiResult<Json<PaymentResponse>> {
    let id = parse_id(&id, "cart")?;
    let method = PaymentMethod::parse(&b.method)?;
    let (cart, client_secret) = checkout::choose_payment(&st, &t.scope, id, method).await?;
    Ok(Json(PaymentResponse {
        cart,
        client_secret,
    }))
}

/// SHA-256 of the parts of a request that an idempotent repeat must share.
pub fn request_hash(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Place the order. Idempotent: a repeat with the same `Idempotency-Key` returns the same
/// order (200); the same key for another cart is refused (422). A changed price, stock or
/// discount answers 409 `cart_changed` with the changes (confirm and retry).
#[utoipa::path(post, path = "/api/v1/store/carts/{id}/complete", tag = "store",
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe")),
    responses((status = 201, body = Order), (status = 200, body = Order, description = "an idempotent repeat"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn complete_cart(
    State(st): State<AppState>,
    t: StoreTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, "cart")?;
    let key = match headers.get("idempotency-key") {
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Idempotency-Key",
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1–255 visible characters",
                    )
                })?;
            Some((k.to_string(), request_hash(&["complete", &id.to_string()])))
        }
        None => None,
    };
    // The cart's e-mail and customer complete the actor in `place_order`.
    let actor = shopper_actor(None, None, ip);
    let ctx = checkout::place_context(&st, &t.host, &t.scope, actor, key).await?;
    let (order, created) = t.scope.place_order(id, &ctx).await?;
    st.provisioner.wake();
    if created {
        // Stock moved: cached pages may show a variant as available that is not.
        st.page_cache.invalidate_pages(t.host.tenant.id);
    }
    let order = checkout::settle_card_order(&st, &t.scope, order).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(order)).into_response())
}

// ---------------------------------------------------------------- customers

/// Body of `POST /store/customers`.
#[derive(Debug, Deserialize, ToSchema)]
struct Register {
    email: String,
    password: String,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default)]
    accepts_marketing: bool,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
struct SessionResponse {
    /// `cus_…`: send as `Authorization: Bearer`; valid 30 days.
    token: String,
    customer: Customer,
}

/// Register a customer account at this store. An e-mail that only has guest orders gets
/// a link to set the password instead (202), so nobody takes over someone's history.
#[utoipa::path(post, path = "/api/v1/store/customers", tag = "store", request_body = Register,
    responses((status = 201, body = SessionResponse), (status = 202, body = ErrorBody, description = "check your e-mail"), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register(
    State(st): State<AppState>,
    t: StoreTenant,
    ApiJson(b): ApiJson<Register>,
) -> ApiResult<Response> {
    let email = Email::parse(&b.email).map_err(|e| ApiError::field("email", e))?;
    crate::auth::check_password_policy(&b.password)
        .map_err(|m| ApiError::invalid("password", "weak_password", m))?;
    let first = super::opt_text("first_name", b.first_name, 100)?;
    let last = super::opt_text("last_name", b.last_name, 100)?;
    let hash = crate::auth::hash_password_async(&b.password)
        .await
        .map_err(|_| ApiError::internal())?;
    match t
        .scope
        .register_customer(
            &email,
            first.as_deref(),
            last.as_deref(),
            &hash,
            b.accepts_marketing,
        )
        .await?
    {
        Registered::Created(c) => {
            let token = checkout::start_session(&t.scope, c.id).await?;
            Ok((
                StatusCode::CREATED,
                Json(SessionResponse { token, customer: c }),
            )
                .into_response())
        }
        Registered::GuestExists(c) => {
            send_link(&st, &t, c.id, &email, "password_reset").await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(
                    serde_json::json!({ "message": "we e-mailed you a link to set your password" }),
                ),
            )
                .into_response())
        }
        Registered::AccountExists => Err(ApiError::new(
            StatusCode::CONFLICT,
            "account_exists",
            "an account with this e-mail exists: sign in or reset the password",
        )
        .with_details(serde_json::json!({ "field": "email" }))),
    }
}

/// E-mails a one-time link (`login_link` or `password_reset`) to a customer.
pub async fn send_link(
    st: &AppState,
    t: &StoreTenant,
    customer: Uuid,
    email: &Email,
    purpose: &str,
) -> Result<(), ApiError> {
    let token = crate::auth::random_token(32);
    let base = checkout::store_url(st, &t.host);
    let (subject, text) = if purpose == "login_link" {
        (
            format!("Your sign-in link for {}", t.host.tenant.name),
            format!(
                "Sign in to {} with this link (it works once, for 1 hour):\n{base}/account/login/{token}\n\nIf you did not ask for it, ignore this e-mail.\n",
                t.host.tenant.name
            ),
        )
    } else {
        (
            format!("Set your password for {}", t.host.tenant.name),
            format!(
                "Choose a new password for your account at {} (the link works once, for 1 hour):\n{base}/account/reset/{token}\n\nIf you did not ask for it, ignore this e-mail.\n",
                t.host.tenant.name
            ),
        )
    };
    let mail = crate::mail::EmailMessage {
        to: email.as_str().to_string(),
        to_name: None,
        subject,
        text,
    };
    t.scope
        .create_customer_token_with_mail(customer, purpose, &crate::auth::token_hash(&token), &mail)
        .await?;
    st.provisioner.wake();
    Ok(())
}

/// Body of `POST /store/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
struct Login {
    email: String,
    password: String,
}

/// Checks a customer's e-mail and password. Errors: 401 `invalid_credentials` (the same
/// for an unknown e-mail, a guest without password and a wrong password).
pub async fn check_login(
    st: &AppState,
    t: &StoreTenant,
    email: &str,
    password: &str,
) -> Result<Uuid, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the e-mail or password is wrong",
        )
    };
    let email = Email::parse(email).map_err(|_| bad())?;
    let key = format!("customer:{}:{}", t.host.tenant.id, email.as_str());
    if let Some(wait) = st.login_limiter.check(&[&key]) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "too many failed sign-ins; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let Some((id, Some(hash))) = t.scope.customer_credentials(&email).await? else {
        st.login_limiter.fail(&key, st.login_limiter.account);
        return Err(bad());
    };
    if !crate::auth::verify_password_async(password, &hash).await {
        st.login_limiter.fail(&key, st.login_limiter.account);
        return Err(bad());
    }
    st.login_limiter.clear(&key);
    Ok(id)
}

/// Sign in with e-mail and password.
#[utoipa::path(post, path = "/api/v1/store/auth/login", tag = "store", request_body = Login,
    responses((status = 200, body = SessionResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(st): State<AppState>,
    t: StoreTenant,
    ApiJson(b): ApiJson<Login>,
) -> ApiResult<Json<SessionResponse>> {
    let id = check_login(&st, &t, &b.email, &b.password).await?;
    let token = checkout::start_session(&t.scope, id).await?;
    let customer = t
        .scope
        .get_customer(id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(Json(SessionResponse { token, customer }))
}

/// Sign out (ends this session).
#[utoipa::path(post, path = "/api/v1/store/auth/logout", tag = "store",
    responses((status = 204)))]
async fn logout(t: StoreTenant, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(token) = checkout::customer_token(&headers) {
        t.scope
            .delete_customer_session(&crate::auth::token_hash(&token))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Body of the e-mailed-link requests.
#[derive(Debug, Deserialize, ToSchema)]
struct EmailOnly {
    email: String,
}

/// E-mail a one-time sign-in link. Always 202, whether or not the e-mail has an account.
#[utoipa::path(post, path = "/api/v1/store/auth/login-link", tag = "store", request_body = EmailOnly,
    responses((status = 202), (status = 422, body = ErrorBody)))]
async fn login_link(
    State(st): State<AppState>,
    t: StoreTenant,
    ApiJson(b): ApiJson<EmailOnly>,
) -> ApiResult<StatusCode> {
    let email = Email::parse(&b.email).map_err(|e| ApiError::field("email", e))?;
    if let Some((id, Some(_))) = t.scope.customer_credentials(&email).await? {
        send_link(&st, &t, id, &email, "login_link").await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Body of `POST /store/auth/login-link/verify`.
#[derive(Debug, Deserialize, ToSchema)]
struct TokenBody {
    token: String,
}

/// Exchange a one-time sign-in link's token for a session.
#[utoipa::path(post, path = "/api/v1/store/auth/login-link/verify", tag = "store", request_body = TokenBody,
    responses((status = 200, body = SessionResponse), (status = 410, body = ErrorBody)))]
async fn login_with_link(
    t: StoreTenant,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult<Json<SessionResponse>> {
    let id = t
        .scope
        .use_customer_token(&crate::auth::token_hash(b.token.trim()), "login_link")
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::GONE,
                "link_expired",
                "this sign-in link is invalid, used or expired",
            )
        })?;
    let token = checkout::start_session(&t.scope, id).await?;
    let customer = t
        .scope
        .get_customer(id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(Json(SessionResponse { token, customer }))
}

/// E-mail a password-reset link. Always 202.
#[utoipa::path(post, path = "/api/v1/store/auth/password-reset", tag = "store", request_body = EmailOnly,
    responses((status = 202), (status = 422, body = ErrorBody)))]
async fn password_reset(
    State(st): State<AppState>,
    t: StoreTenant,
    ApiJson(b): ApiJson<EmailOnly>,
) -> ApiResult<StatusCode> {
    let email = Email::parse(&b.email).map_err(|e| ApiError::field("email", e))?;
    if let Some((id, _)) = t.scope.customer_credentials(&email).await? {
        send_link(&st, &t, id, &email, "password_reset").await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Body of `POST /store/auth/password-reset/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
struct ResetConfirm {
    token: String,
    password: String,
}

/// Set a new password with the e-mailed token; signs in (other sessions end).
#[utoipa::path(post, path = "/api/v1/store/auth/password-reset/confirm", tag = "store", request_body = ResetConfirm,
    responses((status = 200, body = SessionResponse), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn password_reset_confirm(
    t: StoreTenant,
    ApiJson(b): ApiJson<ResetConfirm>,
) -> ApiResult<Json<SessionResponse>> {
    crate::auth::check_password_policy(&b.password)
        .map_err(|m| ApiError::invalid("password", "weak_password", m))?;
    let id = reset_password(&t, &b.token, &b.password).await?;
    let token = checkout::start_session(&t.scope, id).await?;
    let customer = t
        .scope
        .get_customer(id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(Json(SessionResponse { token, customer }))
}

/// Uses a reset token and sets the password. Errors: 410 `link_expired`.
pub async fn reset_password(
    t: &StoreTenant,
    token: &str,
    password: &str,
) -> Result<Uuid, ApiError> {
    let hash = crate::auth::hash_password_async(password)
        .await
        .map_err(|_| ApiError::internal())?;
    let id = t
        .scope
        .use_customer_token(&crate::auth::token_hash(token.trim()), "password_reset")
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::GONE,
                "link_expired",
                "this link is invalid, used or expired; ask for a new one",
            )
        })?;
    t.scope.set_customer_password(id, &hash).await?;
    Ok(id)
}

async fn signed_in(t: &StoreTenant, headers: &HeaderMap) -> Result<Uuid, ApiError> {
    current_customer(&t.scope, headers).await?.ok_or_else(|| {
        ApiError::unauthorized("sign in as a customer of this store (Authorization: Bearer cus_…)")
    })
}

/// The signed-in customer.
#[utoipa::path(get, path = "/api/v1/store/customers/me", tag = "store",
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody)))]
async fn me(t: StoreTenant, headers: HeaderMap) -> ApiResult<Json<Customer>> {
    let id = signed_in(&t, &headers).await?;
    t.scope
        .get_customer(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unauthorized("the session ended"))
}

/// The signed-in customer's orders, newest first.
#[utoipa::path(get, path = "/api/v1/store/customers/me/orders", tag = "store", params(PageQuery),
    responses((status = 200, body = ListResponse<Order>), (status = 401, body = ErrorBody)))]
async fn my_orders(
    t: StoreTenant,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<ListResponse<Order>>> {
    let id = signed_in(&t, &headers).await?;
    let (limit, offset, page) = q.resolve(20)?;
    let (data, total) = t.scope.customer_orders(id, limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// The signed-in customer's saved addresses.
#[utoipa::path(get, path = "/api/v1/store/customers/me/addresses", tag = "store",
    responses((status = 200, body = Vec<SavedAddress>), (status = 401, body = ErrorBody)))]
async fn my_addresses(t: StoreTenant, headers: HeaderMap) -> ApiResult<Json<Vec<SavedAddress>>> {
    let id = signed_in(&t, &headers).await?;
    Ok(Json(t.scope.customer_addresses(id).await?))
}

/// Save an address.
#[utoipa::path(post, path = "/api/v1/store/customers/me/addresses", tag = "store", request_body = AddressInput,
    responses((status = 201, body = SavedAddress), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_my_address(
    t: StoreTenant,
    headers: HeaderMap,
    ApiJson(b): ApiJson<AddressInput>,
) -> ApiResult<Response> {
    let id = signed_in(&t, &headers).await?;
    let a = b.parse().map_err(|e| ApiError::field(e.field, e.error))?;
    let saved = t.scope.add_customer_address(id, &a).await?;
    Ok((StatusCode::CREATED, Json(saved)).into_response())
}

/// Delete a saved address.
#[utoipa::path(delete, path = "/api/v1/store/customers/me/addresses/{address_id}", tag = "store",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_my_address(
    t: StoreTenant,
    headers: HeaderMap,
    Path(address_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = signed_in(&t, &headers).await?;
    let a = parse_id(&address_id, "address")?;
    if t.scope.delete_customer_address(id, a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("address"))
    }
}

// ---------------------------------------------------------------- Stripe webhook

#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: StripeEventData,
}
#[derive(Debug, Deserialize)]
struct StripeEventData {
    object: serde_json::Value,
}

/// Stripe's webhook for this store (`payment_intent.succeeded`, `charge.refunded`):
/// the `Stripe-Signature` is verified with the signing secret saved in the checkout
/// settings (400 and nothing changes when it is missing or wrong); each event id is
/// processed once.
#[utoipa::path(post, path = "/api/v1/store/payments/stripe/webhook", tag = "store",
    responses((status = 200), (status = 400, body = ErrorBody)))]
async fn stripe_webhook(
    State(st): State<AppState>,
    t: StoreTenant,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let sealed = t
        .scope
        .stripe_webhook_secret_sealed()
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "webhook_not_configured",
                "this store has no Stripe webhook signing secret",
            )
        })?;
    let secret = st
        .secret_box
        .open(&sealed)
        .map_err(|_| ApiError::internal())?;
    let sig = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = crate::store::now_micros() / 1_000_000;
    crate::payments::verify_signature(sig, &body, &secret, now)
        .map_err(|e| ApiError::bad_request("invalid_signature", e.to_string()))?;
    let ev: StripeEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_event", format!("not a Stripe event: {e}")))?;
    if t.scope.stripe_event_seen(&ev.id).await? {
        return Ok(Json(
            serde_json::json!({ "received": true, "duplicate": true }),
        ));
    }
    let obj = &ev.data.object;
    let pi_id = match ev.kind.as_str() {
        "payment_intent.succeeded" => obj.get("id").and_then(|v| v.as_str()),
        "charge.refunded" => obj.get("payment_intent").and_then(|v| v.as_str()),
        _ => None,
    };
    if let Some(pi_id) = pi_id
        && let Some(order) = t.scope.order_by_payment_intent(pi_id).await?
    {
        match ev.kind.as_str() {
            "payment_intent.succeeded" => {
                let amount = obj
                    .get("amount_received")
                    .or_else(|| obj.get("amount"))
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                checkout::record_stripe_payment(&t.scope, order.id, pi_id, amount).await?;
            }
            "charge.refunded" => {
                let refunded = obj
                    .get("amount_refunded")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                t.scope
                    .sync_gateway_refund(
                        &crate::store::audit::Actor::system("stripe"),
                        order.id,
                        refunded,
                        &ev.id,
                    )
                    .await?;
            }
            _ => {}
        }
    }
    t.scope.mark_stripe_event(&ev.id, &ev.kind).await?;
    Ok(Json(serde_json::json!({ "received": true })))
}
