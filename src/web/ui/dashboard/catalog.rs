//! Dashboard section: products (list with search, filters, pagination and bulk status
//! change; create and edit with variants and images) and orders (list, detail with
//! status, fulfillment, cancel and payment actions, and a "new order" form with custom
//! line items).
//!
//! The product form works without JavaScript: variant rows are numbered inputs
//! (`variants[0].price`, …) named like the API's error fields, with empty rows to fill
//! and a "Remove" checkbox per row; `dashboard.js` only adds rows and validates on input
//! with the API's rules. A 422 from the API re-renders the form with the message next to
//! the named field.

use super::Nav;
use crate::domain::Currency;
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
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/products/index.html",
        include_str!("../templates/dashboard/products/index.html"),
    ),
    (
        "dashboard/products/form.html",
        include_str!("../templates/dashboard/products/form.html"),
    ),
    (
        "dashboard/orders/index.html",
        include_str!("../templates/dashboard/orders/index.html"),
    ),
    (
        "dashboard/orders/show.html",
        include_str!("../templates/dashboard/orders/show.html"),
    ),
    (
        "dashboard/orders/new.html",
        include_str!("../templates/dashboard/orders/new.html"),
    ),
];

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/products", get(list).post(create))
        .route("/dashboard/products/new", get(new_form))
        .route("/dashboard/products/bulk-status", post(bulk_status))
        .route("/dashboard/products/{id}", get(edit_form).post(update))
        .route("/dashboard/products/{id}/delete", post(delete))
        .route("/dashboard/orders", get(orders).post(order_create))
        .route("/dashboard/orders/new", get(order_new))
        .route("/dashboard/orders/{id}", get(order).post(order_update))
        .route("/dashboard/orders/{id}/cancel", post(order_cancel))
        .route("/dashboard/orders/{id}/payments", post(order_payment))
        .route("/dashboard/orders/{id}/fulfillments", post(order_fulfill))
        .route("/dashboard/orders/{id}/refunds", post(order_refund))
}

/// Products per list page.
const PER_PAGE: i64 = 25;
/// Empty variant rows offered below the filled ones (no-JS "add row").
const EMPTY_ROWS: usize = 2;
/// Most variant rows read from a submitted form (the API allows 100 variants).
const MAX_ROWS: usize = 120;

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    vendor: Option<String>,
    product_type: Option<String>,
    page: Option<i64>,
}

impl ListQuery {
    fn filters(&self) -> [(&'static str, String); 4] {
        [
            ("q", self.q.clone().unwrap_or_default()),
            ("status", self.status.clone().unwrap_or_default()),
            ("vendor", self.vendor.clone().unwrap_or_default()),
            (
                "product_type",
                self.product_type.clone().unwrap_or_default(),
            ),
        ]
    }
}

async fn list(cx: Ctx, Query(f): Query<ListQuery>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let page = f.page.unwrap_or(1).clamp(1, 1_000_000);
        let filters = f.filters();
        let status_filter_ok = matches!(
            f.status.as_deref(),
            None | Some("" | "active" | "draft" | "archived")
        );
        let list = if status_filter_ok {
            cx.get(&format!(
                "/api/v1/products?{}",
                query_string(filters.iter().cloned().chain([
                    ("page", page.to_string()),
                    ("per_page", PER_PAGE.to_string()),
                ]))
            ))
            .await?
        } else {
            json!({ "data": [], "pagination": { "page": 1, "per_page": PER_PAGE, "total": 0, "total_pages": 0 } })
        };
        let filter_query = query_string(filters.iter().cloned());
        cx.render(
            "dashboard/products/index.html",
            context! {
                title => "Products",
                products => Serde(list.get("data")),
                pagination => Serde(list.get("pagination")),
                page,
                f => context! { q => f.q, status => f.status, vendor => f.vendor, product_type => f.product_type },
                filter_query => if filter_query.is_empty() { String::new() } else { format!("&{filter_query}") },
                back => format!("{}{}", filter_query, if page > 1 { format!("&page={page}") } else { String::new() }),
                ..nav.ctx("products")
            },
        )
    }
    .await;
    cx.finish(r)
}

async fn bulk_status(cx: Ctx, CsrfForm(pairs): CsrfForm<Vec<(String, String)>>) -> Response {
    let r = async {
        cx.session()?;
        let ids: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "ids")
            .map(|(_, v)| v.as_str())
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let back = get("back");
        let to = if back.is_empty() {
            "/dashboard/products".to_string()
        } else {
            format!("/dashboard/products?{back}")
        };
        if ids.is_empty() {
            return Ok(redirect_with_flash(&to, "Select at least one product."));
        }
        let status = get("status");
        if status.is_empty() {
            return Ok(redirect_with_flash(&to, "Choose a status to set."));
        }
        match cx
            .post(
                "/api/v1/products/bulk-status",
                json!({ "ids": ids, "status": status }),
            )
            .await
        {
            Ok(v) => {
                let n = v["updated"].as_array().map(Vec::len).unwrap_or(0);
                let msg = format!(
                    "{n} product{} set to {status}.",
                    if n == 1 { "" } else { "s" }
                );
                Ok(redirect_with_flash(&to, &msg))
            }
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash(&to, &e.message)),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

/// A client error the user can fix on the form (not a sign-out or a refusal).
fn is_form_error(e: &ApiFailure) -> bool {
    e.status.is_client_error()
        && e.status != StatusCode::UNAUTHORIZED
        && e.status != StatusCode::FORBIDDEN
        && e.status != StatusCode::NOT_FOUND
}

/// One variant row of the product form, as text.
#[derive(Serialize, Default, Clone)]
struct VariantRow {
    sku: String,
    /// Option values joined with ` / `.
    option_values: String,
    price: String,
    compare_at_price: String,
    inventory_quantity: String,
    /// `true` (count the quantity) or `false`; empty on a new row (the API's default, true).
    inventory_tracked: String,
    /// `deny` or `continue`; empty on a new row (the API's default, deny).
    inventory_policy: String,
}

impl VariantRow {
    fn is_blank(&self) -> bool {
        self.sku.trim().is_empty()
            && self.option_values.trim().is_empty()
            && self.price.trim().is_empty()
            && self.compare_at_price.trim().is_empty()
            && self.inventory_quantity.trim().is_empty()
    }
}

/// The product form, as text.
#[derive(Serialize, Default)]
struct ProductForm {
    title: String,
    handle: String,
    body_html: String,
    status: String,
    vendor: String,
    product_type: String,
    /// Comma-separated.
    tags: String,
    /// Comma-separated option names.
    options: String,
    /// One URL per line.
    images: String,
    seo_title: String,
    seo_description: String,
    featured: bool,
    variants: Vec<VariantRow>,
}

/// `1250` minor units → `"12.50"` with the currency's decimals.
fn minor_to_decimal(minor: i64, currency: &str) -> String {
    let exp = Currency::parse(currency).map(|c| c.exponent()).unwrap_or(2);
    if exp == 0 {
        return minor.to_string();
    }
    let div = 10i64.pow(exp);
    format!(
        "{}{}.{:0width$}",
        if minor < 0 { "-" } else { "" },
        minor.unsigned_abs() / div.unsigned_abs(),
        minor.unsigned_abs() % div.unsigned_abs(),
        width = exp as usize
    )
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn join_strings(v: &Value, sep: &str) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(sep)
        })
        .unwrap_or_default()
}

impl ProductForm {
    fn from_product(p: &Value) -> Self {
        let variants = p["variants"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| VariantRow {
                        sku: text(&v["sku"]),
                        option_values: join_strings(&v["option_values"], " / "),
                        price: v["price"]["amount_minor"]
                            .as_i64()
                            .map(|m| {
                                minor_to_decimal(m, v["price"]["currency"].as_str().unwrap_or(""))
                            })
                            .unwrap_or_default(),
                        compare_at_price: v["compare_at_price"]["amount_minor"]
                            .as_i64()
                            .map(|m| {
                                minor_to_decimal(
                                    m,
                                    v["compare_at_price"]["currency"].as_str().unwrap_or(""),
                                )
                            })
                            .unwrap_or_default(),
                        inventory_quantity: v["inventory_quantity"]
                            .as_i64()
                            .map(|n| n.to_string())
                            .unwrap_or_default(),
                        inventory_tracked: v["inventory_tracked"]
                            .as_bool()
                            .map(|b| b.to_string())
                            .unwrap_or_default(),
                        inventory_policy: text(&v["inventory_policy"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            title: text(&p["title"]),
            handle: text(&p["handle"]),
            body_html: text(&p["body_html"]),
            status: text(&p["status"]),
            vendor: text(&p["vendor"]),
            product_type: text(&p["product_type"]),
            tags: join_strings(&p["tags"], ", "),
            options: join_strings(&p["options"], ", "),
            images: p["images"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i["url"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
            seo_title: text(&p["seo_title"]),
            seo_description: text(&p["seo_description"]),
            featured: p["featured"].as_bool().unwrap_or(false),
            variants,
        }
    }

    /// Reads the submitted form; rows ticked "Remove" are dropped.
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = ProductForm::default();
        let mut rows: Vec<VariantRow> = vec![];
        let mut removed = vec![];
        for (k, v) in pairs {
            match k.as_str() {
                "title" => f.title = v.clone(),
                "handle" => f.handle = v.clone(),
                "body_html" => f.body_html = v.clone(),
                "status" => f.status = v.clone(),
                "vendor" => f.vendor = v.clone(),
                "product_type" => f.product_type = v.clone(),
                "tags" => f.tags = v.clone(),
                "options" => f.options = v.clone(),
                "images" => f.images = v.clone(),
                "seo_title" => f.seo_title = v.clone(),
                "seo_description" => f.seo_description = v.clone(),
                "featured" => f.featured = !v.is_empty(),
                _ => {
                    let Some((i, name)) = variant_field(k) else {
                        continue;
                    };
                    if i >= MAX_ROWS {
                        continue;
                    }
                    if rows.len() <= i {
                        rows.resize(i + 1, VariantRow::default());
                    }
                    let row = &mut rows[i];
                    match name {
                        "sku" => row.sku = v.clone(),
                        "option_values" => row.option_values = v.clone(),
                        "price" => row.price = v.clone(),
                        "compare_at_price" => row.compare_at_price = v.clone(),
                        "inventory_quantity" => row.inventory_quantity = v.clone(),
                        "inventory_tracked" => row.inventory_tracked = v.clone(),
                        "inventory_policy" => row.inventory_policy = v.clone(),
                        "remove" if !v.is_empty() => removed.push(i),
                        _ => {}
                    }
                }
            }
        }
        f.variants = rows
            .into_iter()
            .enumerate()
            .filter(|(i, r)| !removed.contains(i) && !r.is_blank())
            .map(|(_, r)| r)
            .collect();
        f
    }

    /// The API body, or form errors found before calling the API (an inventory that is
    /// not a whole number cannot be sent as JSON).
    fn to_body(&self) -> Result<Value, Value> {
        let split = |s: &str, sep: char| -> Vec<String> {
            s.split(sep)
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        };
        let mut variants = vec![];
        for (i, r) in self.variants.iter().enumerate() {
            let inventory: i64 = if r.inventory_quantity.trim().is_empty() {
                0
            } else {
                r.inventory_quantity.trim().parse().map_err(|_| {
                    json!({ format!("variants[{i}].inventory_quantity"): "inventory quantity must be a whole number" })
                })?
            };
            variants.push(json!({
                "sku": Some(r.sku.trim()).filter(|s| !s.is_empty()),
                "option_values": split(&r.option_values, '/'),
                "price": r.price.trim(),
                "compare_at_price": Some(r.compare_at_price.trim()).filter(|s| !s.is_empty()),
                "inventory_quantity": inventory,
                "inventory_tracked": r.inventory_tracked.trim() != "false",
                "inventory_policy": Some(r.inventory_policy.trim()).filter(|s| !s.is_empty()),
            }));
        }
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let mut body = json!({
            "title": self.title,
            "handle": opt(&self.handle),
            "body_html": self.body_html,
            "status": opt(&self.status),
            "vendor": opt(&self.vendor),
            "product_type": opt(&self.product_type),
            "tags": split(&self.tags, ','),
            "options": split(&self.options, ','),
            "featured": self.featured,
            "variants": variants,
            "images": self.images.lines().map(str::trim).filter(|l| !l.is_empty()).map(|u| json!({ "url": u })).collect::<Vec<_>>(),
        });
        body["seo_title"] = json!(opt(&self.seo_title));
        body["seo_description"] = json!(opt(&self.seo_description));
        Ok(body)
    }

    /// The rows to show: the filled ones plus empty ones to fill in.
    fn rows_for_display(&self) -> Vec<VariantRow> {
        let mut rows = self.variants.clone();
        let extra = if rows.is_empty() {
            EMPTY_ROWS + 1
        } else {
            EMPTY_ROWS
        };
        rows.extend(std::iter::repeat_n(VariantRow::default(), extra));
        rows
    }
}

/// Names of the product form's inputs that the API also uses as error fields.
const PRODUCT_FIELDS: &[&str] = &[
    "_form",
    "title",
    "handle",
    "body_html",
    "status",
    "vendor",
    "product_type",
    "tags",
    "variants",
    "seo_title",
    "seo_description",
];

/// `variants[3].price` → `(3, "price")`.
fn variant_field(k: &str) -> Option<(usize, &str)> {
    let rest = k.strip_prefix("variants[")?;
    let (i, name) = rest.split_once("].")?;
    Some((i.parse().ok()?, name))
}

/// API error fields → form field names: `images[2].url` → `images`; variant fields keep
/// their index (the rows sent are the rows shown, blank and removed ones dropped).
fn form_errors(e: &ApiFailure) -> Value {
    let errors = field_errors(e);
    let Some(obj) = errors.as_object() else {
        return errors;
    };
    let mut out = serde_json::Map::new();
    for (k, v) in obj {
        let name = if k.starts_with("images[") {
            "images".to_string()
        } else if k.starts_with("options") {
            "options".to_string()
        } else if k.starts_with("variants[") || PRODUCT_FIELDS.contains(&k.as_str()) {
            k.clone()
        } else {
            // A field the form has no input for (e.g. `sku` of a conflict): above the form.
            "_form".to_string()
        };
        out.insert(name, v.clone());
    }
    Value::Object(out)
}

async fn render_form(
    cx: &Ctx,
    nav: &Nav,
    product: Option<&Value>,
    form: &ProductForm,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let title = match product {
        Some(p) => format!("Edit {}", p["title"].as_str().unwrap_or("product")),
        None => "New product".to_string(),
    };
    let can_save = match product {
        Some(_) => nav.can("products.edit"),
        None => nav.can("products.create"),
    };
    cx.render_status(
        status,
        "dashboard/products/form.html",
        context! {
            title,
            product => Serde(product),
            form => Serde(form),
            rows => Serde(form.rows_for_display()),
            errors => Serde(errors),
            can_save,
            ..nav.ctx("products")
        },
    )
}

async fn new_form(cx: Ctx) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        if !nav.can("products.create") {
            return Err(forbidden());
        }
        let form = ProductForm {
            status: "draft".into(),
            ..Default::default()
        };
        render_form(&cx, &nav, None, &form, json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

fn forbidden() -> UiError {
    UiError::Api(ApiFailure {
        status: StatusCode::FORBIDDEN,
        code: "forbidden".into(),
        message: "Your role does not allow this.".into(),
        details: Value::Null,
    })
}

async fn create(cx: Ctx, CsrfForm(pairs): CsrfForm<Vec<(String, String)>>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let form = ProductForm::from_pairs(&pairs);
        let body = match form.to_body() {
            Ok(b) => b,
            Err(errors) => {
                return render_form(
                    &cx,
                    &nav,
                    None,
                    &form,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        };
        match cx.post("/api/v1/products", body).await {
            Ok(p) => Ok(redirect_with_flash(
                &format!("/dashboard/products/{}", text(&p["id"])),
                "Product created.",
            )),
            Err(e) if is_form_error(&e) => {
                render_form(&cx, &nav, None, &form, form_errors(&e), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

async fn edit_form(cx: Ctx, Path(id): Path<uuid::Uuid>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let p = cx.get(&format!("/api/v1/products/{id}")).await?;
        let form = ProductForm::from_product(&p);
        render_form(&cx, &nav, Some(&p), &form, json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

async fn update(
    cx: Ctx,
    Path(id): Path<uuid::Uuid>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let p = cx.get(&format!("/api/v1/products/{id}")).await?;
        let form = ProductForm::from_pairs(&pairs);
        let body = match form.to_body() {
            Ok(b) => b,
            Err(errors) => {
                return render_form(
                    &cx,
                    &nav,
                    Some(&p),
                    &form,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        };
        match cx
            .api(Method::PUT, &format!("/api/v1/products/{id}"), Some(body))
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &format!("/dashboard/products/{id}"),
                "Product saved.",
            )),
            Err(e) if is_form_error(&e) => {
                render_form(&cx, &nav, Some(&p), &form, form_errors(&e), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

async fn delete(
    cx: Ctx,
    Path(id): Path<uuid::Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        cx.session()?;
        cx.api(Method::DELETE, &format!("/api/v1/products/{id}"), None)
            .await?;
        Ok(redirect_with_flash(
            "/dashboard/products",
            "Product deleted.",
        ))
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize, Default)]
struct OrderQuery {
    status: Option<String>,
    financial_status: Option<String>,
    page: Option<i64>,
}

async fn orders(cx: Ctx, Query(f): Query<OrderQuery>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let page = f.page.unwrap_or(1).clamp(1, 1_000_000);
        let filters = [
            ("status", f.status.clone().unwrap_or_default()),
            (
                "financial_status",
                f.financial_status.clone().unwrap_or_default(),
            ),
        ];
        let list = cx
            .get(&format!(
                "/api/v1/orders?{}",
                query_string(filters.iter().cloned().chain([
                    ("page", page.to_string()),
                    ("per_page", PER_PAGE.to_string()),
                ]))
            ))
            .await?;
        let filter_query = query_string(filters.iter().cloned());
        cx.render(
            "dashboard/orders/index.html",
            context! {
                title => "Orders",
                orders => Serde(list.get("data")),
                pagination => Serde(list.get("pagination")),
                page,
                f => context! { status => f.status, financial_status => f.financial_status },
                filter_query => if filter_query.is_empty() { String::new() } else { format!("&{filter_query}") },
                ..nav.ctx("orders")
            },
        )
    }
    .await;
    cx.finish(r)
}

async fn order(cx: Ctx, Path(id): Path<uuid::Uuid>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        render_order(&cx, &nav, id, json!({}), json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

/// The event types that change an order after it was created, as the store emits them:
/// `order.updated` (status, fulfillment, note, e-mail, cancellation and financial status;
/// the order as payload) and `payment.received` (the payment with the order under
/// `order`). The order page names them (`data-order-events`) and dashboard.js listens
/// to exactly these.
pub const ORDER_EVENT_TYPES: &[&str] = &["order.updated", "payment.received"];

/// The order page; `errors` (`{field: message}`) and `pay` (the payment form's values)
/// re-show a refused action's form.
async fn render_order(
    cx: &Ctx,
    nav: &Nav,
    id: uuid::Uuid,
    errors: Value,
    pay: Value,
    status: StatusCode,
) -> UiResult {
    let o = cx.get(&format!("/api/v1/orders/{id}")).await?;
    let payments = cx.get(&format!("/api/v1/orders/{id}/payments")).await?;
    let fulfillments = cx.get(&format!("/api/v1/orders/{id}/fulfillments")).await?;
    let refunds = cx.get(&format!("/api/v1/orders/{id}/refunds")).await?;
    cx.render_status(
        status,
        "dashboard/orders/show.html",
        context! {
            title => format!("Order #{}", o["number"]),
            order => Serde(o),
            payments => Serde(payments),
            fulfillments => Serde(fulfillments),
            refunds => Serde(refunds),
            errors => Serde(errors),
            pay => Serde(pay),
            order_events => ORDER_EVENT_TYPES.join(" "),
            ..nav.ctx("orders")
        },
    )
}

/// The value of `key` in submitted form pairs (`""` when absent), trimmed.
fn pair<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .unwrap_or("")
}

/// `POST /dashboard/orders/{id}`: status, fulfillment status, customer e-mail and note
/// (`orders.edit`); a submitted empty e-mail or note clears it.
async fn order_update(
    cx: Ctx,
    Path(id): Path<uuid::Uuid>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let mut body = serde_json::Map::new();
        for k in ["status", "fulfillment_status"] {
            let v = pair(&pairs, k);
            if !v.is_empty() {
                body.insert(k.into(), json!(v));
            }
        }
        // Submitted but empty clears the value.
        for k in ["email", "note"] {
            if pairs.iter().any(|(name, _)| name == k) {
                let v = pair(&pairs, k);
                body.insert(k.into(), if v.is_empty() { Value::Null } else { json!(v) });
            }
        }
        match cx
            .api(
                Method::PATCH,
                &format!("/api/v1/orders/{id}"),
                Some(Value::Object(body)),
            )
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &format!("/dashboard/orders/{id}"),
                "Order updated.",
            )),
            Err(e) if is_form_error(&e) => {
                render_order(&cx, &nav, id, field_errors(&e), json!({}), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/orders/{id}/cancel` (`orders.edit`; final).
async fn order_cancel(
    cx: Ctx,
    Path(id): Path<uuid::Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        match cx
            .post(&format!("/api/v1/orders/{id}/cancel"), json!({}))
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &format!("/dashboard/orders/{id}"),
                "Order cancelled; its unfulfilled items are back in stock.",
            )),
            Err(e) if is_form_error(&e) => {
                let errors = json!({ "_form": e.message });
                render_order(&cx, &nav, id, errors, json!({}), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/orders/{id}/fulfillments`: fulfils every unfulfilled item with an
/// optional carrier and tracking number (`orders.edit`); the shopper is e-mailed.
async fn order_fulfill(
    cx: Ctx,
    Path(id): Path<uuid::Uuid>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let mut body = json!({});
        for k in ["carrier", "tracking_number"] {
            let v = pair(&pairs, k);
            if !v.is_empty() {
                body[k] = json!(v);
            }
        }
        match cx
            .post(&format!("/api/v1/orders/{id}/fulfillments"), body)
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &format!("/dashboard/orders/{id}"),
                "Order fulfilled; the customer was e-mailed.",
            )),
            Err(e) if is_form_error(&e) => {
                let errors = json!({ "_form": e.message });
                render_order(&cx, &nav, id, errors, json!({}), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/orders/{id}/refunds`: refunds an amount (decimal, in the order's
/// currency; through Stripe for card payments) (`orders.edit`).
async fn order_refund(
    cx: Ctx,
    Path(id): Path<uuid::Uuid>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let o = cx.get(&format!("/api/v1/orders/{id}")).await?;
        let exponent = crate::domain::Currency::parse(o["currency"].as_str().unwrap_or("EUR"))
            .map(|c| c.exponent())
            .unwrap_or(2);
        let amount = pair(&pairs, "refund_amount");
        let minor = match crate::domain::parse_decimal_minor(amount, exponent) {
            Ok(m) => m,
            Err(e) => {
                let errors = json!({ "refund_amount": e.message });
                return render_order(
                    &cx,
                    &nav,
                    id,
                    errors,
                    json!({}),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        };
        let mut body = json!({ "amount_minor": minor });
        let reason = pair(&pairs, "reason");
        if !reason.is_empty() {
            body["reason"] = json!(reason);
        }
        match cx.post(&format!("/api/v1/orders/{id}/refunds"), body).await {
            Ok(r) => Ok(redirect_with_flash(
                &format!("/dashboard/orders/{id}"),
                &format!(
                    "Refund of {} recorded.",
                    r["refund"]["amount"]["formatted"]
                        .as_str()
                        .unwrap_or(amount)
                ),
            )),
            Err(e) if is_form_error(&e) => {
                let errors = json!({ "refund_amount": e.message });
                render_order(&cx, &nav, id, errors, json!({}), e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/orders/{id}/payments`: records a payment (`orders.edit`). The API's
/// refusals of the amount (above the outstanding balance, not a number) show next to the
/// amount field; others (a cancelled order) above the page.
async fn order_payment(
    cx: Ctx,
    Path(id): Path<uuid::Uuid>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let (amount, gateway, reference) = (
            pair(&pairs, "amount"),
            pair(&pairs, "gateway"),
            pair(&pairs, "reference"),
        );
        let pay = json!({ "amount": amount, "gateway": gateway, "reference": reference });
        if amount.is_empty() {
            let errors = json!({ "amount": "Enter the amount received." });
            return render_order(
                &cx,
                &nav,
                id,
                errors,
                pay,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        let mut body = json!({ "amount": amount, "gateway": if gateway.is_empty() { "manual" } else { gateway } });
        if !reference.is_empty() {
            body["reference"] = json!(reference);
        }
        match cx
            .post(&format!("/api/v1/orders/{id}/payments"), body)
            .await
        {
            Ok(receipt) => {
                let shown = receipt["amount"]["formatted"]
                    .as_str()
                    .unwrap_or(amount)
                    .to_string();
                Ok(redirect_with_flash(
                    &format!("/dashboard/orders/{id}"),
                    &format!("Payment of {shown} recorded."),
                ))
            }
            Err(e) if is_form_error(&e) => {
                // The API names `amount_minor` for balance refusals; the form has `amount`.
                // A refusal without a field (e.g. a cancelled order) goes above the page.
                let field = match e.details.get("field").and_then(Value::as_str) {
                    Some("gateway") => "gateway",
                    Some("reference") => "reference",
                    Some(_) => "amount",
                    None => "_form",
                };
                let errors = json!({ field: e.message });
                render_order(&cx, &nav, id, errors, pay, e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// Line rows offered on the new-order form (custom items; empty rows are ignored).
const ORDER_ROWS: usize = 5;
/// Most line rows read from a submitted new-order form.
const MAX_ORDER_ROWS: usize = 250;

/// One custom line row of the new-order form, as text.
#[derive(Serialize, Default, Clone)]
struct LineRow {
    title: String,
    sku: String,
    price: String,
    quantity: String,
}

impl LineRow {
    fn is_empty(&self) -> bool {
        self.title.is_empty() && self.sku.is_empty() && self.price.is_empty()
    }
}

/// One catalog line row of the new-order form: a variant and a quantity.
#[derive(Serialize, Default, Clone)]
struct CatalogRow {
    variant_id: String,
    quantity: String,
}

/// Catalog rows offered on the new-order form.
const CATALOG_ROWS: usize = 3;

/// The new-order form's values.
#[derive(Serialize, Default)]
struct OrderForm {
    email: String,
    customer_name: String,
    note: String,
    /// Lines from the catalog (`catalog[i].variant_id`, `catalog[i].quantity`).
    catalog: Vec<CatalogRow>,
    /// Custom lines (`line_items[i].title`, …).
    rows: Vec<LineRow>,
}

/// `line_items[3]` / `catalog[1]` style index of a form field name.
fn row_field<'a>(key: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('[')?;
    let (i, name) = rest.split_once("].")?;
    let i = i.parse::<usize>().ok()?;
    (i < MAX_ORDER_ROWS).then_some((i, name))
}

fn quantity_json(q: &str) -> Option<Value> {
    if q.is_empty() {
        return None;
    }
    // Not a number: the API names the field (an out-of-range quantity is refused).
    Some(q.parse::<i64>().map(|q| json!(q)).unwrap_or(json!(-1)))
}

impl OrderForm {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = OrderForm {
            email: pair(pairs, "email").to_string(),
            customer_name: pair(pairs, "customer_name").to_string(),
            note: pair(pairs, "note").to_string(),
            catalog: vec![],
            rows: vec![],
        };
        for (k, v) in pairs {
            let v = v.trim().to_string();
            if let Some((i, name)) = row_field(k, "catalog") {
                if f.catalog.len() <= i {
                    f.catalog.resize(i + 1, CatalogRow::default());
                }
                match name {
                    "variant_id" => f.catalog[i].variant_id = v,
                    "quantity" => f.catalog[i].quantity = v,
                    _ => {}
                }
                continue;
            }
            let Some((i, name)) = row_field(k, "line_items") else {
                continue;
            };
            if f.rows.len() <= i {
                f.rows.resize(i + 1, LineRow::default());
            }
            let row = &mut f.rows[i];
            match name {
                "title" => row.title = v,
                "sku" => row.sku = v,
                "price" => row.price = v,
                "quantity" => row.quantity = v,
                _ => {}
            }
        }
        f
    }

    /// The API body and, per API line index, the form row it came from (`catalog[i]`
    /// or `line_items[i]`).
    fn body(&self) -> (Value, Vec<String>) {
        let mut lines = vec![];
        let mut index = vec![];
        for (i, r) in self.catalog.iter().enumerate() {
            if r.variant_id.is_empty() {
                continue;
            }
            let mut line = json!({ "variant_id": r.variant_id });
            if let Some(q) = quantity_json(&r.quantity) {
                line["quantity"] = q;
            }
            lines.push(line);
            index.push(format!("catalog[{i}]"));
        }
        for (i, r) in self.rows.iter().enumerate() {
            if r.is_empty() {
                continue;
            }
            let mut line = json!({ "title": r.title, "price": r.price });
            if !r.sku.is_empty() {
                line["sku"] = json!(r.sku);
            }
            if let Some(q) = quantity_json(&r.quantity) {
                line["quantity"] = q;
            }
            lines.push(line);
            index.push(format!("line_items[{i}]"));
        }
        let opt = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
        (
            json!({ "email": opt(&self.email), "customer_name": opt(&self.customer_name),
                "note": opt(&self.note), "line_items": lines }),
            index,
        )
    }

    /// Empty rows to fill after the last filled one. Rows keep their submitted
    /// positions, so errors named by row index stay next to their row.
    fn padded(mut self) -> Self {
        while self.rows.last().is_some_and(LineRow::is_empty) {
            self.rows.pop();
        }
        let n = (self.rows.len() + 2).max(ORDER_ROWS);
        self.rows.resize(n, LineRow::default());
        while self.catalog.last().is_some_and(|r| r.variant_id.is_empty()) {
            self.catalog.pop();
        }
        let n = (self.catalog.len() + 1).max(CATALOG_ROWS);
        self.catalog.resize(n, CatalogRow::default());
        self
    }
}

/// API errors of the new-order form, with line indexes turned back into form rows.
fn order_form_errors(e: &ApiFailure, index: &[String]) -> Value {
    let field = e.details.get("field").and_then(Value::as_str).unwrap_or("");
    let name = match field
        .strip_prefix("line_items[")
        .and_then(|r| r.split_once(']'))
    {
        Some((i, rest)) => match i.parse::<usize>().ok().and_then(|i| index.get(i)) {
            Some(row) => format!("{row}{rest}"),
            None => "line_items".to_string(),
        },
        None if ["email", "customer_name", "note", "line_items"].contains(&field) => {
            field.to_string()
        }
        None => "_form".to_string(),
    };
    let name = if name.ends_with(".price_minor") {
        name.replace(".price_minor", ".price")
    } else {
        name
    };
    json!({ name: e.message })
}

/// Variants offered on the new-order form: `{id, label}` of the first 100 active
/// products' variants (none when the role cannot list products).
async fn catalog_choices(cx: &Ctx) -> Result<Vec<Value>, UiError> {
    let list = match cx.get("/api/v1/products?status=active&per_page=100").await {
        Ok(l) => l,
        Err(e) if e.status == StatusCode::FORBIDDEN => return Ok(vec![]),
        Err(e) => return Err(e.into()),
    };
    let mut out = vec![];
    for p in list["data"].as_array().into_iter().flatten() {
        let title = p["title"].as_str().unwrap_or("");
        for v in p["variants"].as_array().into_iter().flatten() {
            let vt = v["title"].as_str().unwrap_or("");
            let name = if vt.is_empty() || vt == "Default" || vt == "Default Title" {
                title.to_string()
            } else {
                format!("{title} – {vt}")
            };
            let sku = v["sku"]
                .as_str()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            let price = v["price"]["formatted"].as_str().unwrap_or("");
            out.push(json!({ "id": v["id"], "label": format!("{name}{sku} · {price}") }));
        }
    }
    Ok(out)
}

async fn render_order_form(
    cx: &Ctx,
    nav: &Nav,
    form: OrderForm,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let variants = catalog_choices(cx).await?;
    cx.render_status(
        status,
        "dashboard/orders/new.html",
        context! {
            title => "New order",
            form => Serde(form.padded()),
            variants => Serde(variants),
            errors => Serde(errors),
            ..nav.ctx("orders")
        },
    )
}

/// `GET /dashboard/orders/new` (`orders.create`).
async fn order_new(cx: Ctx) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        if !nav.can("orders.create") {
            return Err(forbidden());
        }
        render_order_form(&cx, &nav, OrderForm::default(), json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/orders`: creates an order with catalog and custom line items
/// (`orders.create`).
async fn order_create(cx: Ctx, CsrfForm(pairs): CsrfForm<Vec<(String, String)>>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let form = OrderForm::from_pairs(&pairs);
        let (body, index) = form.body();
        if index.is_empty() {
            let errors = json!({ "line_items": "Add at least one line item: a catalog product or a title and price." });
            return render_order_form(&cx, &nav, form, errors, StatusCode::UNPROCESSABLE_ENTITY)
                .await;
        }
        match cx.post("/api/v1/orders", body).await {
            Ok(o) => {
                let id = o["id"].as_str().unwrap_or_default();
                Ok(redirect_with_flash(
                    &format!("/dashboard/orders/{id}"),
                    &format!("Order #{} created.", o["number"]),
                ))
            }
            Err(e) if is_form_error(&e) => {
                let errors = order_form_errors(&e, &index);
                render_order_form(&cx, &nav, form, errors, e.status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}
