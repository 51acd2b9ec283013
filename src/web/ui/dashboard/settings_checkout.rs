//! Dashboard section: the merchant side of checkout (issue 11, parts 4 and 5).
//! `/dashboard/settings/checkout` (payment methods, bank instructions, tax-inclusive
//! prices, pickup, notification e-mail, the Stripe webhook secret and the address to give
//! Stripe), `/dashboard/shipping` (zones and their rates), `/dashboard/taxes` (rates by
//! country) and `/dashboard/discounts` (codes: list, search, create, edit, deactivate).
//!
//! Every page calls the API (`/api/v1/settings/checkout`, `/shipping-zones`,
//! `/shipping-rates`, `/tax-rates`, `/discount-codes`) as the signed-in member, so the
//! permissions and validation messages are the API's. Amounts are typed as decimals
//! (`4.90`) and percentages as percent (`10`) and converted to minor units / basis points
//! here; an unreadable amount is an error on its own field. Plain forms: no JavaScript.

use super::Nav;
use super::team::act;
use crate::domain::{Currency, parse_decimal_minor};
use crate::web::AppState;
use crate::web::ui::{
    ApiFailure, CsrfForm, Ctx, UiError, UiResult, field_errors, query_string, redirect_with_flash,
};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/settings/macros.html",
        include_str!("../templates/dashboard/settings/macros.html"),
    ),
    (
        "dashboard/settings/checkout.html",
        include_str!("../templates/dashboard/settings/checkout.html"),
    ),
    (
        "dashboard/settings/shipping.html",
        include_str!("../templates/dashboard/settings/shipping.html"),
    ),
    (
        "dashboard/settings/zone.html",
        include_str!("../templates/dashboard/settings/zone.html"),
    ),
    (
        "dashboard/settings/taxes.html",
        include_str!("../templates/dashboard/settings/taxes.html"),
    ),
    (
        "dashboard/settings/discounts.html",
        include_str!("../templates/dashboard/settings/discounts.html"),
    ),
    (
        "dashboard/settings/discount.html",
        include_str!("../templates/dashboard/settings/discount.html"),
    ),
];

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard/settings/checkout",
            get(checkout_page).post(checkout_save),
        )
        .route("/dashboard/settings/currency", post(currency_save))
        .route("/dashboard/shipping", get(shipping_page).post(zone_create))
        .route("/dashboard/shipping/{id}", get(zone_page).post(zone_save))
        .route("/dashboard/shipping/{id}/delete", post(zone_delete))
        .route("/dashboard/shipping/{id}/rates", post(rate_create))
        .route("/dashboard/shipping/{id}/rates/{rate}", post(rate_save))
        .route(
            "/dashboard/shipping/{id}/rates/{rate}/delete",
            post(rate_delete),
        )
        .route("/dashboard/taxes", get(taxes_page).post(tax_create))
        .route("/dashboard/taxes/{id}", post(tax_save))
        .route("/dashboard/taxes/{id}/delete", post(tax_delete))
        .route(
            "/dashboard/discounts",
            get(discounts_page).post(discount_create),
        )
        .route("/dashboard/discounts/new", get(discount_new))
        .route(
            "/dashboard/discounts/{id}",
            get(discount_page).post(discount_save),
        )
        .route("/dashboard/discounts/{id}/active", post(discount_toggle))
        .route("/dashboard/discounts/{id}/delete", post(discount_delete))
}

type Pairs = Vec<(String, String)>;

/// The last value of `key` in a submitted form ("" when absent).
fn val<'a>(p: &'a [(String, String)], key: &str) -> &'a str {
    p.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// A ticked checkbox (sent at all, with any value but "false").
fn ticked(p: &[(String, String)], key: &str) -> bool {
    p.iter().any(|(k, v)| k == key && v != "false")
}

/// The submitted form as a map for re-rendering (checkboxes as `true`/absent).
fn form_map(p: &[(String, String)]) -> Map<String, Value> {
    p.iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

fn is_form_error(e: &ApiFailure) -> bool {
    e.status.is_client_error()
        && e.status != StatusCode::UNAUTHORIZED
        && e.status != StatusCode::FORBIDDEN
        && e.status != StatusCode::NOT_FOUND
}

/// API error → `{form field: message}`: API field names are renamed to the form's
/// (`price_minor` → `price`, `countries[2]` → `countries`); a field the form does not
/// have becomes the form-level `_form` message.
fn form_errors(e: &ApiFailure, rename: &[(&str, &str)], fields: &[&str]) -> Value {
    let errors = field_errors(e);
    let Some(obj) = errors.as_object() else {
        return errors;
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let base = k.split('[').next().unwrap_or(k);
        let name = rename
            .iter()
            .find(|(api, _)| *api == base)
            .map_or(base, |(_, f)| *f);
        let name = if fields.contains(&name) {
            name
        } else {
            "_form"
        };
        out.insert(name.to_string(), v.clone());
    }
    Value::Object(out)
}

/// Parses a decimal amount of `field` into minor units; empty is `None` when
/// `optional`. A problem goes into `errors` under `field`.
fn amount(
    p: &[(String, String)],
    field: &str,
    label: &str,
    exp: u32,
    optional: bool,
    errors: &mut Map<String, Value>,
) -> Option<i64> {
    let raw = val(p, field).trim();
    if raw.is_empty() {
        if !optional {
            errors.insert(field.into(), json!(format!("{label} is required")));
        }
        return None;
    }
    match parse_decimal_minor(raw, exp) {
        Ok(v) => Some(v),
        Err(e) => {
            let why = e.message.replacen("price", label, 1);
            errors.insert(field.into(), json!(why));
            None
        }
    }
}

/// A whole number of `field` (empty: `None`).
fn count(
    p: &[(String, String)],
    field: &str,
    label: &str,
    errors: &mut Map<String, Value>,
) -> Option<i64> {
    let raw = val(p, field).trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.insert(
                field.into(),
                json!(format!("{label} must be a whole number")),
            );
            None
        }
    }
}

/// `minor` units as a decimal string with `exp` decimals (`490` → `4.90`).
fn decimal(minor: i64, exp: u32) -> String {
    if exp == 0 {
        return minor.to_string();
    }
    let p = 10_i64.pow(exp);
    format!("{}.{:0w$}", minor / p, minor % p, w = exp as usize)
}

/// The store currency and its decimals (`/api/v1/shop`, any member may read it).
async fn currency(cx: &Ctx) -> Result<(String, u32), UiError> {
    let s = cx.get("/api/v1/shop").await?;
    let c = s["currency"].as_str().unwrap_or("EUR").to_string();
    let exp = Currency::parse(&c).map(|c| c.exponent()).unwrap_or(2);
    Ok((c, exp))
}

// --- checkout settings -------------------------------------------------------------------

async fn checkout_render(
    cx: &Ctx,
    form: Option<&Pairs>,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let nav = Nav::load(cx).await?;
    let s = cx.get("/api/v1/settings/checkout").await?;
    let shop = cx.get("/api/v1/shop").await?;
    let form = match form {
        Some(p) => {
            let mut m = form_map(p);
            for k in [
                "prices_include_tax",
                "bank_transfer",
                "cash_on_delivery",
                "card",
                "pickup",
            ] {
                m.insert(k.into(), json!(ticked(p, k)));
            }
            Value::Object(m)
        }
        None => s.clone(),
    };
    cx.render_status(
        status,
        "dashboard/settings/checkout.html",
        context! {
            title => "Checkout",
            settings => Serde(&s),
            currency => shop["currency"].as_str().unwrap_or("EUR").to_string(),
            form => Serde(&form),
            errors => Serde(errors),
            ..nav.ctx("checkout")
        },
    )
}

async fn checkout_page(cx: Ctx) -> Response {
    let r = checkout_render(&cx, None, json!({}), StatusCode::OK).await;
    cx.finish(r)
}

/// `POST /dashboard/settings/currency`: changes the store currency through
/// `PUT /api/v1/shop/currency`; the API's refusal (the store has orders, …) is the flash.
async fn currency_save(cx: Ctx, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let code = val(&p, "currency").trim().to_ascii_uppercase();
    let r = act(
        &cx,
        Method::PUT,
        "/api/v1/shop/currency",
        Some(json!({ "currency": code })),
        "/dashboard/settings/checkout",
        &format!("Store currency set to {code}."),
    )
    .await;
    cx.finish(r)
}

async fn checkout_save(cx: Ctx, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = async {
        cx.session()?;
        let mut body = json!({
            "prices_include_tax": ticked(&p, "prices_include_tax"),
            "bank_transfer": ticked(&p, "bank_transfer"),
            "bank_instructions": val(&p, "bank_instructions"),
            "cash_on_delivery": ticked(&p, "cash_on_delivery"),
            "pickup": ticked(&p, "pickup"),
            "pickup_address": val(&p, "pickup_address"),
            "notify_email": val(&p, "notify_email"),
        });
        // Card payments: only sent when changed, so a store whose Stripe key was removed
        // can still save its other settings.
        let current = cx.get("/api/v1/settings/checkout").await?;
        if current["card"].as_bool() != Some(ticked(&p, "card")) {
            body["card"] = json!(ticked(&p, "card"));
        }
        if ticked(&p, "remove_webhook_secret") {
            body["stripe_webhook_secret"] = json!("");
        } else if !val(&p, "stripe_webhook_secret").trim().is_empty() {
            body["stripe_webhook_secret"] = json!(val(&p, "stripe_webhook_secret"));
        }
        const FIELDS: &[&str] = &[
            "bank_instructions",
            "pickup_address",
            "notify_email",
            "stripe_webhook_secret",
            "card",
        ];
        match cx
            .api(Method::PUT, "/api/v1/settings/checkout", Some(body))
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                "/dashboard/settings/checkout",
                "Checkout settings saved.",
            )),
            Err(e) if is_form_error(&e) => {
                checkout_render(&cx, Some(&p), form_errors(&e, &[], FIELDS), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

// --- shipping ----------------------------------------------------------------------------

/// "LU, be  NL" → `["LU", "be", "NL"]` (the API checks and upper-cases each).
fn country_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const ZONE_FIELDS: &[&str] = &["name", "countries"];

async fn shipping_render(
    cx: &Ctx,
    form: Option<&Pairs>,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let nav = Nav::load(cx).await?;
    let zones = cx.get("/api/v1/shipping-zones").await?;
    let (cur, _) = currency(cx).await?;
    cx.render_status(
        status,
        "dashboard/settings/shipping.html",
        context! {
            title => "Shipping",
            zones => Serde(&zones),
            currency => cur,
            form => Serde(form.map(|p| form_map(p)).unwrap_or_default()),
            errors => Serde(errors),
            ..nav.ctx("shipping")
        },
    )
}

async fn shipping_page(cx: Ctx) -> Response {
    let r = shipping_render(&cx, None, json!({}), StatusCode::OK).await;
    cx.finish(r)
}

async fn zone_create(cx: Ctx, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = async {
        cx.session()?;
        let body =
            json!({ "name": val(&p, "name"), "countries": country_list(val(&p, "countries")) });
        match cx.post("/api/v1/shipping-zones", body).await {
            Ok(z) => Ok(redirect_with_flash(
                &format!("/dashboard/shipping/{}", z["id"].as_str().unwrap_or("")),
                "Shipping zone created: now add its rates.",
            )),
            Err(e) if is_form_error(&e) => {
                shipping_render(&cx, Some(&p), form_errors(&e, &[], ZONE_FIELDS), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// Which form of the zone page was submitted (its values and errors are shown there).
#[derive(Default)]
struct ZoneForms {
    zone: Option<Pairs>,
    zone_errors: Value,
    /// `new` or a rate id.
    rate_key: Option<String>,
    rate: Option<Pairs>,
    rate_errors: Value,
}

async fn zone_render(cx: &Ctx, id: Uuid, f: ZoneForms, status: StatusCode) -> UiResult {
    let nav = Nav::load(cx).await?;
    let zone = cx.get(&format!("/api/v1/shipping-zones/{id}")).await?;
    let (cur, exp) = currency(cx).await?;
    let zone_form = match &f.zone {
        Some(p) => Value::Object(form_map(p)),
        None => json!({
            "name": zone["name"],
            "countries": zone["countries"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        }),
    };
    // Each rate's edit form: its stored values, or what was just submitted for it.
    let rates: Vec<Value> = zone["rates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let rid = r["id"].as_str().unwrap_or("");
            let mine = f.rate_key.as_deref() == Some(rid);
            let form = match (&f.rate, mine) {
                (Some(p), true) => Value::Object(form_map(p)),
                _ => json!({
                    "name": r["name"],
                    "price": decimal(r["price_minor"].as_i64().unwrap_or(0), exp),
                    "free_over": r["free_over_minor"].as_i64().map(|m| decimal(m, exp)).unwrap_or_default(),
                }),
            };
            json!({ "rate": r, "form": form, "errors": if mine { f.rate_errors.clone() } else { json!({}) } })
        })
        .collect();
    let new_mine = f.rate_key.as_deref() == Some("new");
    cx.render_status(
        status,
        "dashboard/settings/zone.html",
        context! {
            title => format!("Shipping zone {}", zone["name"].as_str().unwrap_or("")),
            zone => Serde(&zone),
            currency => cur,
            zone_form => Serde(zone_form),
            zone_errors => Serde(if f.zone.is_some() { f.zone_errors } else { json!({}) }),
            rates => Serde(rates),
            new_form => Serde(if new_mine { f.rate.as_ref().map(|p| form_map(p)).unwrap_or_default() } else { Map::new() }),
            new_errors => Serde(if new_mine { f.rate_errors } else { json!({}) }),
            ..nav.ctx("shipping")
        },
    )
}

async fn zone_page(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = zone_render(&cx, id, ZoneForms::default(), StatusCode::OK).await;
    cx.finish(r)
}

async fn zone_save(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = async {
        cx.session()?;
        let body =
            json!({ "name": val(&p, "name"), "countries": country_list(val(&p, "countries")) });
        match cx
            .api(
                Method::PUT,
                &format!("/api/v1/shipping-zones/{id}"),
                Some(body),
            )
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &format!("/dashboard/shipping/{id}"),
                "Shipping zone saved.",
            )),
            Err(e) if is_form_error(&e) => {
                let errors = form_errors(&e, &[], ZONE_FIELDS);
                zone_render(
                    &cx,
                    id,
                    ZoneForms {
                        zone: Some(p),
                        zone_errors: errors,
                        ..Default::default()
                    },
                    e.status,
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

async fn zone_delete(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(_): CsrfForm<Pairs>) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/shipping-zones/{id}"),
        None,
        "/dashboard/shipping",
        "Shipping zone deleted with its rates.",
    )
    .await;
    cx.finish(r)
}

const RATE_FIELDS: &[&str] = &["name", "price", "free_over"];
const RATE_RENAME: &[(&str, &str)] = &[("price_minor", "price"), ("free_over_minor", "free_over")];

/// The rate body from the form, or the amount errors.
fn rate_body(p: &[(String, String)], exp: u32) -> Result<Value, Value> {
    let mut errors = Map::new();
    let price = amount(p, "price", "price", exp, false, &mut errors);
    let free = amount(
        p,
        "free_over",
        "free shipping amount",
        exp,
        true,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(Value::Object(errors));
    }
    Ok(json!({ "name": val(p, "name"), "price_minor": price, "free_over_minor": free }))
}

/// Creates (`rate` = None) or replaces a rate from the zone page's forms.
async fn rate_submit(cx: &Ctx, zone: Uuid, rate: Option<Uuid>, p: Pairs) -> UiResult {
    cx.session()?;
    let (_, exp) = currency(cx).await?;
    let key = rate.map_or("new".to_string(), |r| r.to_string());
    let fail = |p: Pairs, errors: Value| ZoneForms {
        rate_key: Some(key.clone()),
        rate: Some(p),
        rate_errors: errors,
        ..Default::default()
    };
    let body = match rate_body(&p, exp) {
        Ok(b) => b,
        Err(errors) => {
            return zone_render(cx, zone, fail(p, errors), StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let res = match rate {
        None => {
            cx.post(&format!("/api/v1/shipping-zones/{zone}/rates"), body)
                .await
        }
        Some(r) => {
            cx.api(
                Method::PUT,
                &format!("/api/v1/shipping-rates/{r}"),
                Some(body),
            )
            .await
        }
    };
    match res {
        Ok(_) => Ok(redirect_with_flash(
            &format!("/dashboard/shipping/{zone}"),
            if rate.is_none() {
                "Rate added."
            } else {
                "Rate saved."
            },
        )),
        Err(e) if is_form_error(&e) => {
            let errors = form_errors(&e, RATE_RENAME, RATE_FIELDS);
            zone_render(cx, zone, fail(p, errors), e.status).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn rate_create(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = rate_submit(&cx, id, None, p).await;
    cx.finish(r)
}

async fn rate_save(
    cx: Ctx,
    Path((id, rate)): Path<(Uuid, Uuid)>,
    CsrfForm(p): CsrfForm<Pairs>,
) -> Response {
    let r = rate_submit(&cx, id, Some(rate), p).await;
    cx.finish(r)
}

async fn rate_delete(
    cx: Ctx,
    Path((id, rate)): Path<(Uuid, Uuid)>,
    CsrfForm(_): CsrfForm<Pairs>,
) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/shipping-rates/{rate}"),
        None,
        &format!("/dashboard/shipping/{id}"),
        "Rate deleted.",
    )
    .await;
    cx.finish(r)
}

// --- taxes -------------------------------------------------------------------------------

const TAX_FIELDS: &[&str] = &["country", "name", "rate"];
const TAX_RENAME: &[(&str, &str)] = &[("rate_bp", "rate")];

/// `1700` bp → `"17"`, `550` → `"5.5"`.
fn percent(bp: i64) -> String {
    let s = decimal(bp, 2);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

async fn taxes_render(
    cx: &Ctx,
    key: Option<String>,
    form: Option<&Pairs>,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let nav = Nav::load(cx).await?;
    let list = cx.get("/api/v1/tax-rates").await?;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let id = t["id"].as_str().unwrap_or("");
            let mine = key.as_deref() == Some(id);
            let f = match (form, mine) {
                (Some(p), true) => Value::Object(form_map(p)),
                _ => json!({ "country": t["country"], "name": t["name"], "rate": percent(t["rate_bp"].as_i64().unwrap_or(0)) }),
            };
            json!({ "tax": t, "form": f, "errors": if mine { errors.clone() } else { json!({}) } })
        })
        .collect();
    let new_mine = key.as_deref() == Some("new");
    cx.render_status(
        status,
        "dashboard/settings/taxes.html",
        context! {
            title => "Taxes",
            rows => Serde(rows),
            new_form => Serde(if new_mine { form.map(|p| form_map(p)).unwrap_or_default() } else { Map::new() }),
            new_errors => Serde(if new_mine { errors.clone() } else { json!({}) }),
            ..nav.ctx("taxes")
        },
    )
}

async fn taxes_page(cx: Ctx) -> Response {
    let r = taxes_render(&cx, None, None, json!({}), StatusCode::OK).await;
    cx.finish(r)
}

async fn tax_submit(cx: &Ctx, id: Option<Uuid>, p: Pairs) -> UiResult {
    cx.session()?;
    let body =
        json!({ "country": val(&p, "country"), "name": val(&p, "name"), "rate": val(&p, "rate") });
    let res = match id {
        None => cx.post("/api/v1/tax-rates", body).await,
        Some(id) => {
            cx.api(Method::PUT, &format!("/api/v1/tax-rates/{id}"), Some(body))
                .await
        }
    };
    match res {
        Ok(_) => Ok(redirect_with_flash("/dashboard/taxes", "Tax rate saved.")),
        Err(e) if is_form_error(&e) => {
            let key = id.map_or("new".to_string(), |i| i.to_string());
            taxes_render(
                cx,
                Some(key),
                Some(&p),
                form_errors(&e, TAX_RENAME, TAX_FIELDS),
                e.status,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn tax_create(cx: Ctx, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = tax_submit(&cx, None, p).await;
    cx.finish(r)
}

async fn tax_save(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = tax_submit(&cx, Some(id), p).await;
    cx.finish(r)
}

async fn tax_delete(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(_): CsrfForm<Pairs>) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/tax-rates/{id}"),
        None,
        "/dashboard/taxes",
        "Tax rate deleted.",
    )
    .await;
    cx.finish(r)
}

// --- discounts ---------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct DiscountFilter {
    q: Option<String>,
    page: Option<i64>,
}

async fn discounts_page(cx: Ctx, Query(f): Query<DiscountFilter>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let page = f.page.unwrap_or(1).clamp(1, 1_000_000);
        let q = f.q.clone().unwrap_or_default();
        let list = cx
            .get(&format!(
                "/api/v1/discount-codes?{}",
                query_string([("q", q.clone()), ("page", page.to_string()), ("per_page", "25".to_string())])
            ))
            .await?;
        let (cur, _) = currency(&cx).await?;
        let codes: Vec<Value> = list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                let mut d = d.clone();
                d["percent"] = json!(percent(d["value"].as_i64().unwrap_or(0)));
                d
            })
            .collect();
        let filter_query = query_string([("q", q.clone())]);
        cx.render(
            "dashboard/settings/discounts.html",
            context! {
                title => "Discounts",
                codes => Serde(codes),
                pagination => Serde(list.get("pagination")),
                page, q,
                currency => cur,
                filter_query => if filter_query.is_empty() { String::new() } else { format!("&{filter_query}") },
                ..nav.ctx("discounts")
            },
        )
    }
    .await;
    cx.finish(r)
}

const DISCOUNT_FIELDS: &[&str] = &[
    "code",
    "kind",
    "value",
    "min_subtotal",
    "starts_at",
    "ends_at",
    "usage_limit",
    "per_customer_limit",
];
const DISCOUNT_RENAME: &[(&str, &str)] = &[("min_subtotal_minor", "min_subtotal")];

/// A stored code as its form shows it.
fn discount_form(d: &Value, exp: u32) -> Value {
    let kind = d["kind"].as_str().unwrap_or("percentage");
    let v = d["value"].as_i64().unwrap_or(0);
    let local = |t: &Value| {
        t.as_str()
            .map(|s| s.get(..16).unwrap_or(s).to_string())
            .unwrap_or_default()
    };
    json!({
        "code": d["code"], "kind": kind,
        "value": if kind == "percentage" { percent(v) } else { decimal(v, exp) },
        "min_subtotal": match d["min_subtotal_minor"].as_i64() { Some(0) | None => String::new(), Some(m) => decimal(m, exp) },
        "starts_at": local(&d["starts_at"]), "ends_at": local(&d["ends_at"]),
        "usage_limit": d["usage_limit"].as_i64().map(|n| n.to_string()).unwrap_or_default(),
        "per_customer_limit": d["per_customer_limit"].as_i64().map(|n| n.to_string()).unwrap_or_default(),
        "active": d["active"].as_bool().unwrap_or(true),
    })
}

/// `2026-12-24T10:00` (a `datetime-local` input, taken as UTC) → RFC 3339; other text is
/// passed on for the API to refuse by name.
fn rfc3339(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    Some(if s.len() == 16 && s.as_bytes().get(10) == Some(&b'T') {
        format!("{s}:00Z")
    } else {
        s.to_string()
    })
}

/// The discount body from the form, or the amount errors.
fn discount_body(p: &[(String, String)], exp: u32) -> Result<Value, Value> {
    let mut errors = Map::new();
    let kind = val(p, "kind");
    // A percentage is typed as percent (2 decimals → basis points), a fixed amount in
    // the store currency.
    let value = if kind == "percentage" {
        amount(p, "value", "percentage", 2, false, &mut errors)
    } else {
        amount(p, "value", "amount", exp, false, &mut errors)
    };
    let min = amount(
        p,
        "min_subtotal",
        "minimum subtotal",
        exp,
        true,
        &mut errors,
    );
    let usage = count(p, "usage_limit", "usage limit", &mut errors);
    let per = count(p, "per_customer_limit", "limit per customer", &mut errors);
    if !errors.is_empty() {
        return Err(Value::Object(errors));
    }
    Ok(json!({
        "code": val(p, "code"), "kind": kind, "value": value.unwrap_or(0),
        "min_subtotal_minor": min.unwrap_or(0),
        "starts_at": rfc3339(val(p, "starts_at")), "ends_at": rfc3339(val(p, "ends_at")),
        "usage_limit": usage, "per_customer_limit": per,
        "active": ticked(p, "active"),
    }))
}

async fn discount_render(
    cx: &Ctx,
    d: Option<&Value>,
    form: Value,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let nav = Nav::load(cx).await?;
    let (cur, _) = currency(cx).await?;
    cx.render_status(
        status,
        "dashboard/settings/discount.html",
        context! {
            title => d.and_then(|d| d["code"].as_str()).map_or("New discount code".to_string(), |c| format!("Discount {c}")),
            discount => Serde(d),
            form => Serde(form),
            errors => Serde(errors),
            currency => cur,
            ..nav.ctx("discounts")
        },
    )
}

async fn discount_new(cx: Ctx) -> Response {
    let r = async {
        cx.session()?;
        let form = json!({ "kind": "percentage", "active": true });
        discount_render(&cx, None, form, json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

async fn discount_page(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        let d = cx.get(&format!("/api/v1/discount-codes/{id}")).await?;
        let (_, exp) = currency(&cx).await?;
        discount_render(
            &cx,
            Some(&d),
            discount_form(&d, exp),
            json!({}),
            StatusCode::OK,
        )
        .await
    }
    .await;
    cx.finish(r)
}

async fn discount_submit(cx: &Ctx, id: Option<Uuid>, p: Pairs) -> UiResult {
    cx.session()?;
    let (_, exp) = currency(cx).await?;
    let stored = match id {
        Some(id) => Some(cx.get(&format!("/api/v1/discount-codes/{id}")).await?),
        None => None,
    };
    let mut shown = form_map(&p);
    shown.insert("active".into(), json!(ticked(&p, "active")));
    let body = match discount_body(&p, exp) {
        Ok(b) => b,
        Err(errors) => {
            return discount_render(
                cx,
                stored.as_ref(),
                Value::Object(shown),
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let res = match id {
        None => cx.post("/api/v1/discount-codes", body).await,
        Some(id) => {
            cx.api(
                Method::PUT,
                &format!("/api/v1/discount-codes/{id}"),
                Some(body),
            )
            .await
        }
    };
    match res {
        Ok(d) => Ok(redirect_with_flash(
            &format!("/dashboard/discounts/{}", d["id"].as_str().unwrap_or("")),
            "Discount code saved.",
        )),
        Err(e) if is_form_error(&e) => {
            let errors = form_errors(&e, DISCOUNT_RENAME, DISCOUNT_FIELDS);
            discount_render(cx, stored.as_ref(), Value::Object(shown), errors, e.status).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn discount_create(cx: Ctx, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = discount_submit(&cx, None, p).await;
    cx.finish(r)
}

async fn discount_save(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = discount_submit(&cx, Some(id), p).await;
    cx.finish(r)
}

/// `POST /dashboard/discounts/{id}/active` with `active=true|false`: the stored code
/// replaced with only its active flag changed.
async fn discount_toggle(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(p): CsrfForm<Pairs>) -> Response {
    let r = async {
        cx.session()?;
        let d = cx.get(&format!("/api/v1/discount-codes/{id}")).await?;
        let on = val(&p, "active") == "true";
        let body = json!({
            "code": d["code"], "kind": d["kind"], "value": d["value"],
            "min_subtotal_minor": d["min_subtotal_minor"], "starts_at": d["starts_at"],
            "ends_at": d["ends_at"], "usage_limit": d["usage_limit"],
            "per_customer_limit": d["per_customer_limit"], "active": on,
        });
        act(
            &cx,
            Method::PUT,
            &format!("/api/v1/discount-codes/{id}"),
            Some(body),
            "/dashboard/discounts",
            if on {
                "Discount code activated."
            } else {
                "Discount code deactivated: shoppers can no longer use it."
            },
        )
        .await
    }
    .await;
    cx.finish(r)
}

async fn discount_delete(cx: Ctx, Path(id): Path<Uuid>, CsrfForm(_): CsrfForm<Pairs>) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/discount-codes/{id}"),
        None,
        "/dashboard/discounts",
        "Discount code deleted.",
    )
    .await;
    cx.finish(r)
}
