//! Merchant orders API: orders with line items, payments, and support tickets.
//!
//! Permissions: reads need `orders.view`, creating an order or a ticket `orders.create`,
//! changing either and recording payments `orders.edit` (support tickets share the
//! `orders.*` permissions). Amounts are integer minor units of the store currency
//! (`price_minor`, `amount_minor`) or decimal strings (`price`, `amount`: `"12.50"`);
//! responses show them as `{amount_minor, currency, formatted}`.

use super::{ListResponse, PageQuery, Pagination, opt_text, req_text};
use crate::access::perm;
use crate::domain::{
    Currency, Email, FinancialStatus, FulfillmentStatus, OrderStatus, Sku, TicketPriority,
    TicketStatus, parse_decimal_minor,
};
use crate::store::orders::{
    LineItemInput, LineItemSource, Order, OrderFilter, OrderInput, OrderPatch, Payment,
    PaymentInput, PaymentReceipt, SupportTicket, TicketFilter, TicketInput, TicketPatch,
};
use crate::web::AppState;
use crate::web::context::Authorized;
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_orders, create_order))
        .routes(routes!(get_order, update_order))
        .routes(routes!(list_payments, create_payment))
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(get_ticket, update_ticket))
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: absent → `None`,
/// `null` → `Some(None)`, a value → `Some(Some(v))`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An amount given as a decimal string (`dec`) or integer minor units (`minor`), at most
/// one of the two; `None` when neither is given. Errors: 422 naming the field.
fn amount(
    (dec_field, dec): (&str, Option<&str>),
    (minor_field, minor): (&str, Option<i64>),
    cur: Currency,
) -> ApiResult<Option<i64>> {
    match (dec, minor) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            dec_field,
            "ambiguous_amount",
            format!("give {dec_field} or {minor_field}, not both"),
        )),
        (Some(d), None) => parse_decimal_minor(d, cur.exponent())
            .map(Some)
            .map_err(|e| ApiError::field(dec_field, e)),
        (None, Some(m)) if (0..=1_000_000_000_000).contains(&m) => Ok(Some(m)),
        (None, Some(_)) => Err(ApiError::invalid(
            minor_field,
            "invalid_amount",
            format!("{minor_field} must be between 0 and 10^12"),
        )),
        (None, None) => Ok(None),
    }
}

fn email(field: &str, raw: &str) -> ApiResult<Email> {
    Email::parse(raw).map_err(|e| ApiError::field(field, e))
}

fn store_currency(code: &str) -> Currency {
    Currency::parse(code).unwrap_or(Currency::EUR)
}

// ---------------------------------------------------------------- orders

/// A line item: either `variant_id` (a variant of this store's catalog; price, SKU and
/// title are taken from it) or a custom item with `title` and a price (`price` as a decimal
/// string or `price_minor`) and an optional `sku`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineItemBody {
    pub variant_id: Option<Uuid>,
    pub title: Option<String>,
    /// Decimal string in the store currency, e.g. `"12.50"`.
    pub price: Option<String>,
    /// Integer minor units, e.g. `1250`.
    pub price_minor: Option<i64>,
    pub sku: Option<String>,
    /// 1–10000 (default 1).
    pub quantity: Option<i64>,
}

/// Body of order create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    /// The customer's e-mail.
    pub email: Option<String>,
    pub customer_name: Option<String>,
    pub note: Option<String>,
    /// 1–250 line items.
    pub line_items: Vec<LineItemBody>,
}

fn parse_line(i: usize, b: LineItemBody, cur: Currency) -> ApiResult<LineItemInput> {
    let f = |name: &str| format!("line_items[{i}].{name}");
    let price = amount(
        (&f("price"), b.price.as_deref()),
        (&f("price_minor"), b.price_minor),
        cur,
    )?;
    let source = match b.variant_id {
        Some(id) => {
            if b.title.is_some() || price.is_some() || b.sku.is_some() {
                return Err(ApiError::invalid(
                    &f("variant_id"),
                    "ambiguous_line_item",
                    format!(
                        "{}: a variant line takes its title, price and sku from the catalog; leave them out",
                        f("variant_id")
                    ),
                ));
            }
            LineItemSource::Variant(id)
        }
        None => {
            let title = req_text(&f("title"), b.title.as_deref().unwrap_or(""), 255)?;
            let price_minor = price.ok_or_else(|| {
                ApiError::invalid(
                    &f("price"),
                    "required",
                    format!(
                        "{}: a custom line needs a price (or a variant_id)",
                        f("price")
                    ),
                )
            })?;
            let sku = b
                .sku
                .filter(|s| !s.trim().is_empty())
                .map(|s| Sku::parse(&s).map_err(|e| ApiError::field(&f("sku"), e)))
                .transpose()?;
            LineItemSource::Custom {
                title,
                price_minor,
                sku,
            }
        }
    };
    Ok(LineItemInput {
        source,
        quantity: b.quantity.unwrap_or(1),
    })
}

fn parse_order(b: OrderBody, cur: Currency) -> ApiResult<OrderInput> {
    let email = b
        .email
        .filter(|e| !e.trim().is_empty())
        .map(|e| email("email", &e))
        .transpose()?;
    let line_items = b
        .line_items
        .into_iter()
        .enumerate()
        .map(|(i, l)| parse_line(i, l, cur))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(OrderInput {
        email,
        customer_name: opt_text("customer_name", b.customer_name, 255)?,
        note: opt_text("note", b.note, 5000)?,
        line_items,
    })
}

/// Body of order update: every field optional; absent fields keep their value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPatchBody {
    /// `open`, `closed` or `cancelled` (final: a cancelled order cannot change status).
    pub status: Option<String>,
    /// `unfulfilled` or `fulfilled`.
    pub fulfillment_status: Option<String>,
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
    /// The customer's e-mail; `null` or `""` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
}

fn parse_order_patch(b: OrderPatchBody) -> ApiResult<OrderPatch> {
    Ok(OrderPatch {
        status: b
            .status
            .as_deref()
            .map(OrderStatus::parse)
            .transpose()
            .map_err(|e| ApiError::field("status", e))?,
        fulfillment_status: b
            .fulfillment_status
            .as_deref()
            .map(FulfillmentStatus::parse)
            .transpose()
            .map_err(|e| ApiError::field("fulfillment_status", e))?,
        note: b.note.map(|n| opt_text("note", n, 5000)).transpose()?,
        email: b
            .email
            .map(|e| {
                e.filter(|e| !e.trim().is_empty())
                    .map(|e| email("email", &e))
                    .transpose()
            })
            .transpose()?,
    })
}

/// Filters of the order list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// `open`, `closed` or `cancelled`.
    pub status: Option<String>,
    /// `pending`, `partially_paid`, `paid` or `refunded`.
    pub financial_status: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// List the tenant's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = ["orders.view"])), params(OrderQuery),
    responses((status = 200, body = ListResponse<Order>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_orders(
    m: Authorized<perm::OrdersView>,
    Query(q): Query<OrderQuery>,
) -> ApiResult<Json<ListResponse<Order>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    let f = OrderFilter {
        status: q
            .status
            .as_deref()
            .map(OrderStatus::parse)
            .transpose()
            .map_err(|e| ApiError::field("status", e))?,
        financial_status: q
            .financial_status
            .as_deref()
            .map(FinancialStatus::parse)
            .transpose()
            .map_err(|e| ApiError::field("financial_status", e))?,
    };
    let (data, total) = m.scope.list_orders(&f, limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// Create an order in the store currency. Totals are computed from the line items.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = ["orders.create"])), request_body = OrderBody,
    responses((status = 201, body = Order), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_order(
    m: Authorized<perm::OrdersCreate>,
    ApiJson(body): ApiJson<OrderBody>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    let input = parse_order(body, store_currency(&m.tenant.currency))?;
    let order = m
        .scope
        .create_order(&m.actor, &input, &m.tenant.currency)
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// Get one order with its line items.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = ["orders.view"])),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
async fn get_order(
    m: Authorized<perm::OrdersView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Order>> {
    m.scope
        .get_order(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("order"))
}

/// Update an order's status, fulfillment status, note or customer e-mail.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = ["orders.edit"])), request_body = OrderPatchBody,
    responses((status = 200, body = Order), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_order(
    m: Authorized<perm::OrdersEdit>,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<OrderPatchBody>,
) -> ApiResult<Json<Order>> {
    let patch = parse_order_patch(body)?;
    Ok(Json(m.scope.update_order(&m.actor, id, &patch).await?))
}

/// Body of a payment: the amount as `amount_minor` (integer minor units) or `amount`
/// (decimal string), in the order's currency.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    pub amount: Option<String>,
    pub amount_minor: Option<i64>,
    /// Where the money came from (default `manual`), at most 64 characters.
    pub gateway: Option<String>,
    /// The gateway's transaction reference.
    pub reference: Option<String>,
}

/// The payments of an order, oldest first.
#[utoipa::path(get, path = "/api/v1/orders/{id}/payments", tag = "orders", security(("bearer" = ["orders.view"])),
    responses((status = 200, body = Vec<Payment>), (status = 404, body = ErrorBody)))]
async fn list_payments(
    m: Authorized<perm::OrdersView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<Payment>>> {
    Ok(Json(m.scope.list_payments(id).await?))
}

/// Record a payment. It must be > 0 and at most the outstanding balance (422
/// `exceeds_balance`); the order becomes `partially_paid` or `paid`. Returns the payment
/// with the updated order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/payments", tag = "orders", security(("bearer" = ["orders.edit"])), request_body = PaymentBody,
    responses((status = 201, body = PaymentReceipt), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_payment(
    m: Authorized<perm::OrdersEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<PaymentBody>,
) -> ApiResult<(StatusCode, Json<PaymentReceipt>)> {
    // The order's currency is the store's (orders are created in it).
    let order = m
        .scope
        .get_order(id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let amount_minor = amount(
        ("amount", b.amount.as_deref()),
        ("amount_minor", b.amount_minor),
        store_currency(&order.currency),
    )?
    .ok_or_else(|| ApiError::invalid("amount_minor", "required", "amount_minor is required"))?;
    let input = PaymentInput {
        amount_minor,
        gateway: match b.gateway {
            Some(g) => req_text("gateway", &g, 64)?,
            None => "manual".to_string(),
        },
        reference: opt_text("reference", b.reference, 255)?,
    };
    let receipt = m.scope.record_payment(&m.actor, id, &input).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

// ---------------------------------------------------------------- support tickets

/// Body of ticket create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketBody {
    /// 1–255 characters.
    pub subject: String,
    /// 1–20000 characters.
    pub body: String,
    /// The customer's e-mail.
    pub email: String,
    /// An order of this store the ticket is about.
    pub order_id: Option<Uuid>,
    /// `low`, `normal` (default) or `high`.
    pub priority: Option<String>,
}

/// Body of ticket update: every field optional; absent fields keep their value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatchBody {
    pub subject: Option<String>,
    /// `open`, `pending` or `closed`.
    pub status: Option<String>,
    /// `low`, `normal` or `high`.
    pub priority: Option<String>,
    /// An order of this store; `null` unlinks.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub order_id: Option<Option<Uuid>>,
}

/// Filters of the ticket list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// `open`, `pending` or `closed`.
    pub status: Option<String>,
    /// `low`, `normal` or `high`.
    pub priority: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

fn ticket_status(raw: Option<&str>) -> ApiResult<Option<TicketStatus>> {
    raw.map(TicketStatus::parse)
        .transpose()
        .map_err(|e| ApiError::field("status", e))
}

fn ticket_priority(raw: Option<&str>) -> ApiResult<Option<TicketPriority>> {
    raw.map(TicketPriority::parse)
        .transpose()
        .map_err(|e| ApiError::field("priority", e))
}

/// List support tickets, newest first (`orders.view`).
#[utoipa::path(get, path = "/api/v1/support-tickets", tag = "orders", security(("bearer" = ["orders.view"])), params(TicketQuery),
    responses((status = 200, body = ListResponse<SupportTicket>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_tickets(
    m: Authorized<perm::OrdersView>,
    Query(q): Query<TicketQuery>,
) -> ApiResult<Json<ListResponse<SupportTicket>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    let f = TicketFilter {
        status: ticket_status(q.status.as_deref())?,
        priority: ticket_priority(q.priority.as_deref())?,
    };
    let (data, total) = m.scope.list_tickets(&f, limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// Open a support ticket (`orders.create`); it starts `open`.
#[utoipa::path(post, path = "/api/v1/support-tickets", tag = "orders", security(("bearer" = ["orders.create"])), request_body = TicketBody,
    responses((status = 201, body = SupportTicket), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_ticket(
    m: Authorized<perm::OrdersCreate>,
    ApiJson(b): ApiJson<TicketBody>,
) -> ApiResult<(StatusCode, Json<SupportTicket>)> {
    let input = TicketInput {
        subject: req_text("subject", &b.subject, 255)?,
        body: req_text("body", &b.body, 20_000)?,
        email: email("email", &b.email)?,
        order_id: b.order_id,
        priority: ticket_priority(b.priority.as_deref())?.unwrap_or(TicketPriority::Normal),
    };
    let t = m.scope.create_ticket(&m.actor, &input).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Get one support ticket (`orders.view`).
#[utoipa::path(get, path = "/api/v1/support-tickets/{id}", tag = "orders", security(("bearer" = ["orders.view"])),
    responses((status = 200, body = SupportTicket), (status = 404, body = ErrorBody)))]
async fn get_ticket(
    m: Authorized<perm::OrdersView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SupportTicket>> {
    m.scope
        .get_ticket(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("support ticket"))
}

/// Update a support ticket's subject, status, priority or linked order (`orders.edit`).
#[utoipa::path(patch, path = "/api/v1/support-tickets/{id}", tag = "orders", security(("bearer" = ["orders.edit"])), request_body = TicketPatchBody,
    responses((status = 200, body = SupportTicket), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_ticket(
    m: Authorized<perm::OrdersEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<TicketPatchBody>,
) -> ApiResult<Json<SupportTicket>> {
    let patch = TicketPatch {
        subject: b
            .subject
            .map(|s| req_text("subject", &s, 255))
            .transpose()?,
        status: ticket_status(b.status.as_deref())?,
        priority: ticket_priority(b.priority.as_deref())?,
        order_id: b.order_id,
    };
    Ok(Json(m.scope.update_ticket(&m.actor, id, &patch).await?))
}
