//! The storefront's buying pages, plain forms that work without JavaScript: cart, checkout,
//! order confirmation and the customer account (sign in with a password or an e-mailed
//! link, register, reset the password, order history, addresses). Rendered from the
//! store's theme (`cart.html`, `checkout.html`, `order.html`, `account.html`), never
//! cached. The cart is a cookie holding the cart id; the customer session another, both
//! `HttpOnly; SameSite=Lax` and scoped to the store's path; cross-site form posts are
//! refused by `CsrfLayer` (Sec-Fetch-Site / Origin).

use super::AppState;
use super::api::cart::{check_login, parse_cart_update, request_hash, reset_password, send_link};
use super::checkout::{
    self, CART_COOKIE, CUSTOMER_COOKIE, cookie, current_customer, shopper_actor,
};
use super::context::{ClientIp, HostTenant, StoreTenant};
use super::error::ApiError;
use super::storefront::{
    PageMeta, StoreExtras, base_ctx, platform_not_found, prepare, render, store_error,
    tenant_not_found, unavailable,
};
use crate::domain::Email;
use crate::pricing::AddressInput;
use crate::store::TenantDb;
use crate::store::carts::{Cart, PaymentMethod};
use crate::store::customers::Registered;
use crate::store::orders::Order;
use crate::store::platform::TenantRef;
use crate::themes::Theme;
use axum::Router;
use axum::extract::{Extension, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

/// The buying pages' routes (merged into the storefront router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cart", get(cart_page))
        .route("/cart/add", post(cart_add))
        .route("/cart/update", post(cart_update))
        .route("/cart/remove", post(cart_remove))
        .route("/cart/discount", post(cart_discount))
        .route("/checkout", get(checkout_page).post(checkout_details))
        .route("/checkout/place", post(checkout_place))
        .route("/orders/{id}", get(order_page))
        .route("/account", get(account_page))
        .route("/account/login", post(account_login))
        .route("/account/register", post(account_register))
        .route("/account/logout", post(account_logout))
        .route("/account/login-link", post(account_login_link))
        .route("/account/login/{token}", get(account_login_with_link))
        .route("/account/forgot", post(account_forgot))
        .route(
            "/account/reset/{token}",
            get(account_reset_form).post(account_reset),
        )
        .route("/account/addresses", post(account_add_address))
        .layer(tower_http::csrf::CsrfLayer::new())
}

/// Everything a buying page needs: the store, its scope and extras, the theme.
struct Shop {
    h: HostTenant,
    scope: TenantDb,
    extras: StoreExtras,
    theme: std::sync::Arc<Theme>,
}

async fn shop(st: &AppState, tenant: Option<Extension<HostTenant>>) -> Result<Shop, Response> {
    let Some(Extension(h)) = tenant else {
        return Err(platform_not_found().into_response());
    };
    if h.tenant.status != "active" {
        return Err(unavailable(st, &h));
    }
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    let extras = prepare(&st.page_cache, &scope, &h).await?;
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    Ok(Shop {
        h,
        scope,
        extras,
        theme,
    })
}

impl Shop {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.h.base_path)
    }
    fn cookie_path(&self) -> String {
        if self.h.base_path.is_empty() {
            "/".into()
        } else {
            self.h.base_path.clone()
        }
    }
    fn ctx(&self, title: &str, cart_count: i64) -> Value {
        let base = base_ctx(
            &self.h.tenant,
            &self.theme,
            &self.h.base_path,
            title,
            &self.extras,
            &PageMeta::website(""),
        );
        context! { cart_count => cart_count, ..base }
    }
    fn store_api(&self) -> StoreTenant {
        StoreTenant {
            host: self.h.clone(),
            scope: self.scope.clone(),
        }
    }
    fn set_cookie(&self, res: &mut Response, name: &str, value: &str, max_age: i64) {
        let c = format!(
            "{name}={value}; Path={}; HttpOnly; SameSite=Lax; Max-Age={max_age}",
            self.cookie_path()
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    fn redirect(&self, path: &str) -> Response {
        Redirect::to(&self.url(path)).into_response()
    }
}

/// The shopper's open cart, if the cookie names one of this store.
async fn current_cart(s: &Shop, headers: &HeaderMap) -> Result<Option<Cart>, Response> {
    let Some(id) = cookie(headers, CART_COOKIE).and_then(|v| Uuid::parse_str(v).ok()) else {
        return Ok(None);
    };
    match s.scope.cart(id).await {
        Ok(Some(c)) if c.status == "open" => Ok(Some(c)),
        Ok(_) => Ok(None),
        Err(e) => Err(store_error(e)),
    }
}

/// The shopper's cart, created (and its cookie set on `res_cookie`) when there is none.
async fn cart_or_new(s: &Shop, headers: &HeaderMap) -> Result<(Cart, bool), Response> {
    if let Some(c) = current_cart(s, headers).await? {
        return Ok((c, false));
    }
    let customer = current_customer(&s.scope, headers)
        .await
        .map_err(|e| e.into_response())?;
    let mut owner = None;
    if let Some(c) = customer
        && let Ok(Some(rec)) = s.scope.get_customer(c).await
        && let Ok(e) = Email::parse(&rec.email)
    {
        owner = Some((c, e));
    }
    let origin = crate::store::carts::CartOrigin {
        source: "storefront".into(),
    };
    match s
        .scope
        .create_cart(
            &origin,
            &s.h.tenant.currency,
            owner.as_ref().map(|o| o.0),
            owner.as_ref().map(|o| &o.1),
        )
        .await
    {
        Ok(c) => Ok((c, true)),
        Err(e) => Err(store_error(e)),
    }
}

fn cart_value(c: &Cart, base: &str) -> Value {
    let lines: Vec<Value> = c
        .lines
        .iter()
        .map(|l| {
            context! {
                id => l.id.to_string(), variant_id => l.variant_id.to_string(),
                title => l.product_title.clone(),
                variant_title => (l.variant_title != "Default").then(|| l.variant_title.clone()),
                sku => l.sku.clone(), image_url => l.image_url.clone(),
                url => l.product_handle.as_ref().map(|h| format!("{base}/products/{h}")),
                quantity => l.quantity, unit_price => l.unit_price.formatted.clone(),
                total => l.total.formatted.clone(), available => l.available,
            }
        })
        .collect();
    let t = &c.totals;
    context! {
        id => c.id.to_string(), lines => lines, item_count => c.item_count,
        email => c.email.clone(),
        subtotal => t.subtotal.formatted.clone(),
        discount => (t.discount.amount_minor > 0).then(|| t.discount.formatted.clone()),
        shipping => t.shipping.formatted.clone(),
        shipping_name => c.shipping_option_name.clone(),
        tax => t.tax.formatted.clone(), total => t.total.formatted.clone(),
        prices_include_tax => t.prices_include_tax,
        discount_code => c.discount_code.clone(),
        changes => c.changes.iter().map(|x| x.message.clone()).collect::<Vec<_>>(),
        shipping_address => c.shipping_address.as_ref().map(Serde),
        shipping_option => c.shipping_option.clone(),
        payment_method => c.payment_method.map(|m| m.as_str()),
    }
}

/// The cart page's context (also used by the theme check's sample pages).
pub(crate) fn cart_context(
    ctx: Value,
    cart: Option<&Cart>,
    base: &str,
    error: Option<&str>,
) -> Value {
    context! {
        cart => cart.map(|c| cart_value(c, base)),
        form_error => error,
        ..ctx
    }
}

fn error_message(e: &ApiError) -> String {
    e.message.clone()
}

async fn cart_page(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let cart = match current_cart(&s, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let count = cart.as_ref().map_or(0, |c| c.item_count);
    let ctx = cart_context(s.ctx("Cart", count), cart.as_ref(), &s.h.base_path, None);
    render(&s.theme, "cart.html", ctx, StatusCode::OK)
}

async fn cart_error(s: &Shop, headers: &HeaderMap, e: ApiError) -> Response {
    let cart = current_cart(s, headers).await.ok().flatten();
    let count = cart.as_ref().map_or(0, |c| c.item_count);
    let ctx = cart_context(
        s.ctx("Cart", count),
        cart.as_ref(),
        &s.h.base_path,
        Some(&error_message(&e)),
    );
    render(&s.theme, "cart.html", ctx, e.status)
}

#[derive(Deserialize)]
struct AddForm {
    variant_id: String,
    #[serde(default)]
    quantity: Option<String>,
}

fn parse_quantity(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::trim).filter(|q| !q.is_empty()) {
        None => Ok(1),
        Some(q) => q.parse().map_err(|_| {
            ApiError::invalid(
                "quantity",
                "invalid_quantity",
                format!("quantity '{q}' is not a whole number"),
            )
        }),
    }
}

async fn cart_add(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<AddForm>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let qty = match parse_quantity(f.quantity.as_deref()) {
        Ok(q) => q,
        Err(e) => return cart_error(&s, &headers, e).await,
    };
    let Ok(variant) = Uuid::parse_str(f.variant_id.trim()) else {
        return cart_error(
            &s,
            &headers,
            ApiError::invalid("variant_id", "unknown_variant", "choose a variant"),
        )
        .await;
    };
    let (cart, new) = match cart_or_new(&s, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut res = match s.scope.add_to_cart(cart.id, variant, qty).await {
        Ok(_) => s.redirect("/cart"),
        Err(e) => {
            let e: ApiError = e.into();
            let ctx = cart_context(
                s.ctx("Cart", cart.item_count),
                Some(&cart),
                &s.h.base_path,
                Some(&error_message(&e)),
            );
            render(&s.theme, "cart.html", ctx, e.status)
        }
    };
    if new {
        s.set_cookie(&mut res, CART_COOKIE, &cart.id.to_string(), 30 * 24 * 3600);
    }
    res
}

#[derive(Deserialize)]
struct LineForm {
    line_id: String,
    #[serde(default)]
    quantity: Option<String>,
}

async fn cart_update(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<LineForm>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Some(cart)) = current_cart(&s, &headers).await else {
        return s.redirect("/cart");
    };
    let line = Uuid::parse_str(f.line_id.trim()).unwrap_or_default();
    let r = match parse_quantity(f.quantity.as_deref()) {
        // 0 in the quantity box of the cart page means "remove".
        Ok(0) => s
            .scope
            .remove_cart_line(cart.id, line)
            .await
            .map_err(ApiError::from),
        Ok(q) => s
            .scope
            .update_cart_line(cart.id, line, q)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => s.redirect("/cart"),
        Err(e) => cart_error(&s, &headers, e).await,
    }
}

async fn cart_remove(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<LineForm>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Ok(Some(cart)) = current_cart(&s, &headers).await {
        let line = Uuid::parse_str(f.line_id.trim()).unwrap_or_default();
        if let Err(e) = s.scope.remove_cart_line(cart.id, line).await {
            return cart_error(&s, &headers, e.into()).await;
        }
    }
    s.redirect("/cart")
}

#[derive(Deserialize)]
struct DiscountForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    remove: Option<String>,
}

async fn cart_discount(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<DiscountForm>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Some(cart)) = current_cart(&s, &headers).await else {
        return s.redirect("/cart");
    };
    let r = if f.remove.is_some() || f.code.trim().is_empty() {
        s.scope.remove_discount(cart.id).await
    } else {
        s.scope.apply_discount(cart.id, &f.code).await
    };
    match r {
        Ok(_) => s.redirect("/cart"),
        Err(e) => cart_error(&s, &headers, e.into()).await,
    }
}

/// The checkout page's context: the cart, the form values and errors by field, the
/// shipping options for the address and the payment methods offered.
#[allow(clippy::too_many_arguments)] // one value per template variable
pub(crate) fn checkout_context(
    ctx: Value,
    cart: &Cart,
    base: &str,
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
    options: Value,
    methods: Value,
    token: &str,
) -> Value {
    context! {
        cart => cart_value(cart, base),
        values => values, errors => errors,
        form_error => errors.get("_form").cloned(),
        shipping_options => options, payment_methods => methods,
        checkout_token => token,
        ..ctx
    }
}

async fn render_checkout(
    s: &Shop,
    cart: &Cart,
    values: HashMap<String, String>,
    errors: HashMap<String, String>,
    status: StatusCode,
) -> Response {
    let options = match s.scope.shipping_options(cart.id).await {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let settings = match s.scope.checkout_settings_cached().await {
        Ok(x) => x,
        Err(e) => return store_error(e),
    };
    let methods: Vec<Value> = [PaymentMethod::BankTransfer, PaymentMethod::CashOnDelivery]
        .into_iter()
        .filter(|m| m.enabled(&settings, false))
        .map(|m| {
            context! {
                id => m.as_str(), name => m.label(),
                note => (m == PaymentMethod::BankTransfer).then_some("Pay by bank transfer after ordering; the details are on the confirmation page and in the e-mail."),
            }
        })
        .collect();
    let options: Vec<Value> = options
        .iter()
        .map(|o| context! { id => o.id.clone(), name => o.name.clone(), price => o.price.formatted.clone() })
        .collect();
    let mut values = values;
    if let Some(a) = &cart.shipping_address {
        for (k, v) in [
            ("name", Some(a.name.clone())),
            ("line1", Some(a.line1.clone())),
            ("line2", a.line2.clone()),
            ("city", Some(a.city.clone())),
            ("postal_code", Some(a.postal_code.clone())),
            ("country", Some(a.country.to_string())),
            ("phone", a.phone.clone()),
        ] {
            if let Some(v) = v {
                values.entry(k.to_string()).or_insert(v);
            }
        }
    }
    if let Some(e) = &cart.email {
        values.entry("email".into()).or_insert(e.clone());
    }
    let token = values
        .get("checkout_token")
        .cloned()
        .unwrap_or_else(|| crate::auth::random_token(16));
    let ctx = checkout_context(
        s.ctx("Checkout", cart.item_count),
        cart,
        &s.h.base_path,
        &values,
        &errors,
        Value::from(options),
        Value::from(methods),
        &token,
    );
    render(&s.theme, "checkout.html", ctx, status)
}

async fn checkout_page(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let cart = match current_cart(&s, &headers).await {
        Ok(Some(c)) if !c.lines.is_empty() => c,
        Ok(_) => return s.redirect("/cart"),
        Err(r) => return r,
    };
    let mut values = HashMap::new();
    if cart.email.is_none()
        && let Ok(Some(c)) = current_customer(&s.scope, &headers).await
        && let Ok(Some(rec)) = s.scope.get_customer(c).await
    {
        values.insert("email".to_string(), rec.email.clone());
    }
    render_checkout(&s, &cart, values, HashMap::new(), StatusCode::OK).await
}

fn field_errors(e: &ApiError) -> HashMap<String, String> {
    let field = e
        .details
        .get("field")
        .and_then(|f| f.as_str())
        .map(|f| f.trim_start_matches("shipping_address.").to_string())
        .unwrap_or_else(|| "_form".into());
    let mut m = HashMap::new();
    m.insert(field, e.message.clone());
    m
}

async fn checkout_details(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let cart = match current_cart(&s, &headers).await {
        Ok(Some(c)) => c,
        Ok(None) => return s.redirect("/cart"),
        Err(r) => return r,
    };
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let address = AddressInput {
        name: get("name"),
        line1: get("line1"),
        line2: f.get("line2").cloned(),
        city: get("city"),
        postal_code: get("postal_code"),
        country: get("country"),
        phone: f.get("phone").cloned(),
    };
    let r = match parse_cart_update(Some(&get("email")), Some(&address), None, None) {
        Ok(mut patch) => {
            if patch.email.is_none() {
                Err(ApiError::invalid(
                    "email",
                    "required",
                    "an e-mail address is required",
                ))
            } else {
                patch.customer_id = current_customer(&s.scope, &headers).await.ok().flatten();
                s.scope
                    .update_cart(cart.id, &patch, false)
                    .await
                    .map_err(ApiError::from)
            }
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => s.redirect("/checkout#shipping"),
        Err(e) => render_checkout(&s, &cart, f.clone(), field_errors(&e), e.status).await,
    }
}

async fn checkout_place(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let token = f.get("checkout_token").cloned().unwrap_or_default();
    let cart_id = cookie(&headers, CART_COOKIE).and_then(|v| Uuid::parse_str(v).ok());
    let Some(cart_id) = cart_id else {
        return s.redirect("/cart");
    };
    let cart = match s.scope.cart(cart_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return s.redirect("/cart"),
        Err(e) => return store_error(e),
    };
    let idem = (!token.is_empty()).then(|| {
        (
            format!("form:{token}"),
            request_hash(&["complete", &cart_id.to_string()]),
        )
    });
    // A double click: the first submission completed the cart; the same token finds
    // its order.
    if cart.status != "open" {
        if let Some(o) = cart.order_id {
            return s.redirect(&format!("/orders/{o}"));
        }
        return s.redirect("/cart");
    }
    let patch = match parse_cart_update(
        None,
        None,
        f.get("shipping_option").map(String::as_str),
        f.get("payment_method").map(String::as_str),
    ) {
        Ok(p) => p,
        Err(e) => return render_checkout(&s, &cart, f.clone(), field_errors(&e), e.status).await,
    };
    if patch.payment_method == Some(PaymentMethod::Card) {
        let e = ApiError::invalid(
            "payment_method",
            "payment_method_unavailable",
            "card payments are not offered on this storefront",
        );
        return render_checkout(&s, &cart, f.clone(), field_errors(&e), e.status).await;
    }
    let cart = match s.scope.update_cart(cart_id, &patch, false).await {
        Ok(c) => c,
        Err(e) => {
            let e = ApiError::from(e);
            return render_checkout(&s, &cart, f.clone(), field_errors(&e), e.status).await;
        }
    };
    let actor = shopper_actor(cart.email.as_deref(), cart.customer_id, ip);
    let ctx = match checkout::place_context(&st, &s.h, &s.scope, actor, idem).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match s.scope.place_order(cart_id, &ctx).await {
        Ok((order, created)) => {
            st.provisioner.wake();
            if created {
                // Stock moved: cached pages may show a variant as available that is not.
                st.page_cache.invalidate_pages(s.h.tenant.id);
            }
            let mut res = s.redirect(&format!("/orders/{}", order.id));
            s.set_cookie(&mut res, CART_COOKIE, "", 0);
            res
        }
        Err(e) => {
            let e = ApiError::from(e);
            let cart = s.scope.cart(cart_id).await.ok().flatten().unwrap_or(cart);
            render_checkout(&s, &cart, f.clone(), field_errors(&e), e.status).await
        }
    }
}

/// The order page's context.
pub(crate) fn order_context(ctx: Value, o: &Order, bank_instructions: Option<&str>) -> Value {
    let lines: Vec<Value> = o
        .line_items
        .iter()
        .map(|l| context! { title => l.title.clone(), sku => l.sku.clone(), quantity => l.quantity, unit_price => l.unit_price.formatted.clone(), total => l.total.formatted.clone() })
        .collect();
    context! {
        order => context! {
            id => o.id.to_string(), number => o.number, email => o.email.clone(),
            status => o.status.as_str(), financial_status => o.financial_status.as_str(),
            fulfillment_status => o.fulfillment_status.as_str(),
            lines => lines,
            subtotal => o.subtotal.formatted.clone(),
            discount => (o.discount.amount_minor > 0).then(|| o.discount.formatted.clone()),
            discount_code => o.discount_code.clone(),
            shipping => o.shipping.formatted.clone(), shipping_method => o.shipping_method.clone(),
            tax => o.tax.formatted.clone(), total => o.total.formatted.clone(),
            outstanding => o.outstanding.formatted.clone(),
            prices_include_tax => o.prices_include_tax,
            payment_method => o.payment_method.clone(),
            shipping_address => o.shipping_address.as_ref().map(Serde),
            created_at => o.created_at.clone(),
        },
        bank_instructions => bank_instructions,
        ..ctx
    }
}

async fn order_page(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Path(id): Path<String>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let order = match Uuid::parse_str(&id) {
        Ok(id) => s.scope.get_order(id).await,
        Err(_) => Ok(None),
    };
    let order = match order {
        Ok(Some(o)) => o,
        Ok(None) => return tenant_not_found(&st, &s.h, &s.extras, "We could not find that order."),
        Err(e) => return store_error(e),
    };
    let settings = s.scope.checkout_settings_cached().await.unwrap_or_default();
    let bank = (order.payment_method.as_deref() == Some("bank_transfer")
        && order.outstanding.amount_minor > 0)
        .then_some(settings.bank_instructions.as_str());
    let ctx = order_context(s.ctx(&format!("Order #{}", order.number), 0), &order, bank);
    let mut res = render(&s.theme, "order.html", ctx, StatusCode::OK);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    res
}

/// The account page's context: `mode` is `signin`, `account`, `reset` or `message`.
#[allow(clippy::too_many_arguments)] // one value per template variable
pub(crate) fn account_context(
    ctx: Value,
    mode: &str,
    customer: Option<Value>,
    orders: Value,
    addresses: Value,
    message: Option<&str>,
    error: Option<&str>,
    token: Option<&str>,
) -> Value {
    context! {
        mode => mode, customer => customer, orders => orders, addresses => addresses,
        message => message, form_error => error, reset_token => token,
        ..ctx
    }
}

async fn render_account(
    s: &Shop,
    headers: &HeaderMap,
    message: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let customer = current_customer(&s.scope, headers).await.ok().flatten();
    let Some(cid) = customer else {
        let ctx = account_context(
            s.ctx("Sign in", 0),
            "signin",
            None,
            Value::from(()),
            Value::from(()),
            message,
            error,
            None,
        );
        return render(&s.theme, "account.html", ctx, status);
    };
    let (rec, orders, addresses) = match (
        s.scope.get_customer(cid).await,
        s.scope.customer_orders(cid, 50, 0).await,
        s.scope.customer_addresses(cid).await,
    ) {
        (Ok(Some(r)), Ok((o, _)), Ok(a)) => (r, o, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return store_error(e),
        (Ok(None), _, _) => return s.redirect("/account"),
    };
    let orders: Vec<Value> = orders
        .iter()
        .map(|o| context! { id => o.id.to_string(), number => o.number, total => o.total.formatted.clone(), status => o.status.as_str(), financial_status => o.financial_status.as_str(), fulfillment_status => o.fulfillment_status.as_str(), created_at => o.created_at.clone(), url => s.url(&format!("/orders/{}", o.id)) })
        .collect();
    let ctx = account_context(
        s.ctx("Your account", 0),
        "account",
        Some(
            context! { email => rec.email.clone(), first_name => rec.first_name.clone(), last_name => rec.last_name.clone(), lifetime_spend => crate::store::customers::spend(&rec, &s.h.tenant.currency).formatted },
        ),
        Value::from(orders),
        Value::from(Serde(&addresses)),
        message,
        error,
        None,
    );
    render(&s.theme, "account.html", ctx, status)
}

async fn account_page(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
) -> Response {
    match shop(&st, tenant).await {
        Ok(s) => render_account(&s, &headers, None, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

fn signed_in_redirect(s: &Shop, token: &str) -> Response {
    let mut res = s.redirect("/account");
    s.set_cookie(
        &mut res,
        CUSTOMER_COOKIE,
        token,
        crate::store::customers::SESSION_TTL_MICROS / 1_000_000,
    );
    res
}

async fn account_login(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = s.store_api();
    let email = f.get("email").cloned().unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    match check_login(&st, &t, &email, &password).await {
        Ok(id) => match checkout::start_session(&s.scope, id).await {
            Ok(token) => signed_in_redirect(&s, &token),
            Err(e) => e.into_response(),
        },
        Err(e) => render_account(&s, &headers, None, Some(&e.message), e.status).await,
    }
}

async fn account_register(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let email = match Email::parse(&get("email")) {
        Ok(e) => e,
        Err(e) => {
            return render_account(
                &s,
                &headers,
                None,
                Some(&e.message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    if let Err(m) = crate::auth::check_password_policy(&get("password")) {
        return render_account(
            &s,
            &headers,
            None,
            Some(m),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let Ok(hash) = crate::auth::hash_password_async(&get("password")).await else {
        return ApiError::internal().into_response();
    };
    let first = Some(get("first_name"))
        .filter(|x| !x.trim().is_empty())
        .map(|x| x.trim().chars().take(100).collect::<String>());
    let last = Some(get("last_name"))
        .filter(|x| !x.trim().is_empty())
        .map(|x| x.trim().chars().take(100).collect::<String>());
    match s
        .scope
        .register_customer(&email, first.as_deref(), last.as_deref(), &hash, false)
        .await
    {
        Ok(Registered::Created(c)) => match checkout::start_session(&s.scope, c.id).await {
            Ok(token) => signed_in_redirect(&s, &token),
            Err(e) => e.into_response(),
        },
        Ok(Registered::GuestExists(c)) => {
            let t = s.store_api();
            if let Err(e) = send_link(&st, &t, c.id, &email, "password_reset").await {
                return e.into_response();
            }
            render_account(
                &s,
                &headers,
                Some("You have ordered here before: we e-mailed you a link to set your password."),
                None,
                StatusCode::OK,
            )
            .await
        }
        Ok(Registered::AccountExists) => {
            render_account(
                &s,
                &headers,
                None,
                Some("An account with this e-mail exists: sign in, or reset the password."),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => store_error(e),
    }
}

async fn account_logout(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(t) = checkout::customer_token(&headers) {
        let _ = s
            .scope
            .delete_customer_session(&crate::auth::token_hash(&t))
            .await;
    }
    let mut res = s.redirect("/account");
    s.set_cookie(&mut res, CUSTOMER_COOKIE, "", 0);
    res
}

async fn account_login_link(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(email) = Email::parse(f.get("email").map(String::as_str).unwrap_or("")) else {
        return render_account(
            &s,
            &headers,
            None,
            Some("Enter a valid e-mail address."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if let Ok(Some((id, Some(_)))) = s.scope.customer_credentials(&email).await {
        let t = s.store_api();
        if let Err(e) = send_link(&st, &t, id, &email, "login_link").await {
            return e.into_response();
        }
    }
    render_account(
        &s,
        &headers,
        Some("If an account exists for this address, a sign-in link is on its way."),
        None,
        StatusCode::OK,
    )
    .await
}

async fn account_login_with_link(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match s
        .scope
        .use_customer_token(&crate::auth::token_hash(token.trim()), "login_link")
        .await
    {
        Ok(Some(id)) => match checkout::start_session(&s.scope, id).await {
            Ok(t) => signed_in_redirect(&s, &t),
            Err(e) => e.into_response(),
        },
        Ok(None) => {
            render_account(
                &s,
                &headers,
                None,
                Some("This sign-in link is invalid, used or expired."),
                StatusCode::GONE,
            )
            .await
        }
        Err(e) => store_error(e),
    }
}

async fn account_forgot(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(email) = Email::parse(f.get("email").map(String::as_str).unwrap_or("")) else {
        return render_account(
            &s,
            &headers,
            None,
            Some("Enter a valid e-mail address."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if let Ok(Some((id, _))) = s.scope.customer_credentials(&email).await {
        let t = s.store_api();
        if let Err(e) = send_link(&st, &t, id, &email, "password_reset").await {
            return e.into_response();
        }
    }
    render_account(
        &s,
        &headers,
        Some("If an account exists for this address, a link to reset the password is on its way."),
        None,
        StatusCode::OK,
    )
    .await
}

async fn account_reset_form(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Path(token): Path<String>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ctx = account_context(
        s.ctx("Choose a password", 0),
        "reset",
        None,
        Value::from(()),
        Value::from(()),
        None,
        None,
        Some(&token),
    );
    render(&s.theme, "account.html", ctx, StatusCode::OK)
}

async fn account_reset(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Path(token): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let password = f.get("password").cloned().unwrap_or_default();
    let fail = |msg: &str, status| {
        let ctx = account_context(
            s.ctx("Choose a password", 0),
            "reset",
            None,
            Value::from(()),
            Value::from(()),
            None,
            Some(msg),
            Some(&token),
        );
        render(&s.theme, "account.html", ctx, status)
    };
    if let Err(m) = crate::auth::check_password_policy(&password) {
        return fail(m, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let t = s.store_api();
    match reset_password(&t, &token, &password).await {
        Ok(id) => match checkout::start_session(&s.scope, id).await {
            Ok(tok) => signed_in_redirect(&s, &tok),
            Err(e) => e.into_response(),
        },
        Err(e) => fail(&e.message, e.status),
    }
}

async fn account_add_address(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let s = match shop(&st, tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Some(cid)) = current_customer(&s.scope, &headers).await else {
        return s.redirect("/account");
    };
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let a = AddressInput {
        name: get("name"),
        line1: get("line1"),
        line2: f.get("line2").cloned(),
        city: get("city"),
        postal_code: get("postal_code"),
        country: get("country"),
        phone: f.get("phone").cloned(),
    };
    match a.parse() {
        Ok(a) => match s.scope.add_customer_address(cid, &a).await {
            Ok(_) => s.redirect("/account"),
            Err(e) => store_error(e),
        },
        Err(e) => {
            render_account(
                &s,
                &headers,
                None,
                Some(&format!("{}: {}", e.field, e.error.message)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// Sample contexts for the theme check (see `storefront::sample_pages`).
pub(crate) fn sample_contexts(
    t: &TenantRef,
    theme: &Theme,
    base: &str,
    extras: &StoreExtras,
) -> Vec<(&'static str, &'static str, Value)> {
    let ctx = |title: &str| {
        let b = base_ctx(t, theme, base, title, extras, &PageMeta::website(""));
        context! { cart_count => 2, ..b }
    };
    let cart = sample_cart();
    let mut values = HashMap::new();
    values.insert("email".to_string(), "ana@example.com".to_string());
    let mut errors = HashMap::new();
    errors.insert(
        "postal_code".to_string(),
        "postal code '<b>' must be 1–12 letters, digits, spaces or dashes".to_string(),
    );
    let options = Value::from(vec![
        context! { id => "rate", name => "Standard", price => "4.90 EUR" },
    ]);
    let methods = Value::from(vec![
        context! { id => "bank_transfer", name => "Bank transfer", note => "Pay after ordering" },
    ]);
    vec![
        (
            "cart.html",
            "a cart with two lines, a discount and a change",
            cart_context(ctx("Cart"), Some(&cart), base, Some("only 1 left")),
        ),
        (
            "cart.html",
            "an empty cart",
            cart_context(ctx("Cart"), None, base, None),
        ),
        (
            "checkout.html",
            "checkout with an address error",
            checkout_context(
                ctx("Checkout"),
                &cart,
                base,
                &values,
                &errors,
                options,
                methods,
                "tok",
            ),
        ),
        (
            "account.html",
            "sign in",
            account_context(
                ctx("Sign in"),
                "signin",
                None,
                Value::from(()),
                Value::from(()),
                Some("Link sent"),
                Some("wrong password"),
                None,
            ),
        ),
        (
            "account.html",
            "the account",
            account_context(
                ctx("Your account"),
                "account",
                Some(
                    context! { email => "ana@example.com", first_name => "Ana", lifetime_spend => "25.96 EUR" },
                ),
                Value::from(vec![
                    context! { id => "o", number => 1001, total => "25.96 EUR", status => "open", financial_status => "pending", fulfillment_status => "unfulfilled", created_at => "2026-12-02T10:00:00Z", url => "/orders/o" },
                ]),
                Value::from(Vec::<Value>::new()),
                None,
                None,
                None,
            ),
        ),
        (
            "account.html",
            "password reset",
            account_context(
                ctx("Choose a password"),
                "reset",
                None,
                Value::from(()),
                Value::from(()),
                None,
                None,
                Some("tok"),
            ),
        ),
    ]
}

fn sample_cart() -> Cart {
    use crate::store::carts::{CartChange, CartLine, CartTotals};
    use crate::store::catalog::MoneyDto;
    let m = |v| MoneyDto::new(v, "EUR");
    Cart {
        id: Uuid::nil(),
        status: "open".into(),
        currency: "EUR".into(),
        email: Some("ana@example.com".into()),
        customer_id: None,
        shipping_address: None,
        shipping_option: None,
        shipping_option_name: Some("Standard".into()),
        payment_method: None,
        payment_intent_id: None,
        discount_code: Some("WELCOME10".into()),
        lines: vec![CartLine {
            id: Uuid::nil(),
            variant_id: Uuid::nil(),
            product_id: None,
            product_handle: Some("mug".into()),
            product_title: "Mug <Blue> & Co".into(),
            variant_title: "Large".into(),
            sku: Some("MUG-L".into()),
            image_url: None,
            quantity: 2,
            unit_price: m(1170),
            subtotal: m(2340),
            discount: m(234),
            tax: m(306),
            total: m(2106),
            available: true,
        }],
        item_count: 2,
        totals: CartTotals {
            subtotal: m(2340),
            discount: m(234),
            shipping: m(490),
            tax: m(377),
            total: m(2596),
            prices_include_tax: true,
        },
        changes: vec![CartChange {
            code: "price_changed".into(),
            line_id: None,
            message: "the price of Mug changed".into(),
        }],
        order_id: None,
        source: "storefront".into(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}
