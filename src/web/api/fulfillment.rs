//! Merchant API after the order: fulfilments, cancellation, refunds (through Stripe for
//! card payments, recorded for manual ones), and the store's customers.

use super::{ListResponse, PageQuery, Pagination, opt_text};
use crate::access::perm;
use crate::store::customers::Customer;
use crate::store::fulfillment::{FulfillInput, Fulfillment, FulfillmentLine, RefundRecord};
use crate::store::orders::Order;
use crate::web::AppState;
use crate::web::context::Authorized;
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_fulfillments, create_fulfillment))
        .routes(routes!(cancel_order))
        .routes(routes!(list_refunds, create_refund))
        .routes(routes!(list_customers))
        .routes(routes!(get_customer))
}

/// Body of `POST /orders/{id}/fulfillments`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FulfillBody {
    /// Lines and units to fulfil; empty or absent: every unfulfilled unit.
    #[serde(default)]
    lines: Vec<FulfillmentLine>,
    /// e.g. `DHL`, at most 100 characters.
    carrier: Option<String>,
    /// At most 100 characters.
    tracking_number: Option<String>,
}

/// A fulfilment with the order after it.
#[derive(Debug, Serialize, ToSchema)]
struct FulfillmentResponse {
    fulfillment: Fulfillment,
    order: Order,
}

fn store_url(st: &AppState, handle: Option<&str>) -> String {
    let base = st.config.public_url.trim_end_matches('/');
    match handle {
        Some(h) => format!("{base}/s/{h}"),
        None => base.to_string(),
    }
}

/// The fulfilments of an order.
#[utoipa::path(get, path = "/api/v1/orders/{id}/fulfillments", tag = "orders", security(("bearer" = ["orders.view"])),
    responses((status = 200, body = Vec<Fulfillment>), (status = 404, body = ErrorBody)))]
async fn list_fulfillments(
    m: Authorized<perm::OrdersView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<Fulfillment>>> {
    m.scope
        .get_order(id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    Ok(Json(m.scope.list_fulfillments(id).await?))
}

/// Fulfil all or some units (carrier and tracking number optional); the shopper gets the
/// shipping e-mail. Emits `order.fulfilled`.
#[utoipa::path(post, path = "/api/v1/orders/{id}/fulfillments", tag = "orders", security(("bearer" = ["orders.edit"])), request_body = FulfillBody,
    responses((status = 201, body = FulfillmentResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_fulfillment(
    State(st): State<AppState>,
    m: Authorized<perm::OrdersEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<FulfillBody>,
) -> ApiResult<Response> {
    let input = FulfillInput {
        lines: b.lines,
        carrier: opt_text("carrier", b.carrier, 100)?,
        tracking_number: opt_text("tracking_number", b.tracking_number, 100)?,
        store_name: m.tenant.name.clone(),
        store_url: store_url(&st, m.tenant.handle.as_deref()),
    };
    let (order, fulfillment) = m.scope.fulfill_order(&m.actor, id, &input).await?;
    st.provisioner.wake();
    Ok((
        StatusCode::CREATED,
        Json(FulfillmentResponse { fulfillment, order }),
    )
        .into_response())
}

/// Body of `POST /orders/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    /// Kept in the order's note, at most 500 characters.
    reason: Option<String>,
}

/// Cancel an order: unfulfilled units of tracked variants go back into stock, the
/// discount code's use is given back. Refund what was paid separately. Emits
/// `order.cancelled`.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = ["orders.edit"])), request_body = CancelBody,
    responses((status = 200, body = Order), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_order(
    State(st): State<AppState>,
    m: Authorized<perm::OrdersEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<CancelBody>,
) -> ApiResult<Json<Order>> {
    let reason = opt_text("reason", b.reason, 500)?;
    let order = m
        .scope
        .cancel_order(&m.actor, id, reason.as_deref())
        .await?;
    // Unfulfilled stock returned: cached pages may show a variant as sold out.
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(order))
}

/// Body of `POST /orders/{id}/refunds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    /// Minor units of the order's currency, 1..=paid − refunded.
    amount_minor: i64,
    reason: Option<String>,
}

/// A refund with the order after it.
#[derive(Debug, Serialize, ToSchema)]
struct RefundResponse {
    refund: RefundRecord,
    order: Order,
}

/// The refunds of an order.
#[utoipa::path(get, path = "/api/v1/orders/{id}/refunds", tag = "orders", security(("bearer" = ["orders.view"])),
    responses((status = 200, body = Vec<RefundRecord>), (status = 404, body = ErrorBody)))]
async fn list_refunds(
    m: Authorized<perm::OrdersView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<RefundRecord>>> {
    m.scope
        .get_order(id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    Ok(Json(m.scope.list_refunds(id).await?))
}

/// Refund fully or partly. An order paid by card through Stripe is refunded through
/// Stripe (`POST /v1/refunds`, idempotent per order and amount so far), then recorded;
/// a manual payment's refund is recorded only (the money goes back outside Souk).
/// Errors: 422 `exceeds_refundable`/`invalid_amount` on `amount_minor`; 402/502 when
/// Stripe refuses or is unreachable (nothing is recorded).
#[utoipa::path(post, path = "/api/v1/orders/{id}/refunds", tag = "orders", security(("bearer" = ["orders.edit"])), request_body = RefundBody,
    responses((status = 201, body = RefundResponse), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn create_refund(
    State(st): State<AppState>,
    m: Authorized<perm::OrdersEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RefundBody>,
) -> ApiResult<Response> {
    let reason = opt_text("reason", b.reason, 500)?;
    let order = m
        .scope
        .get_order(id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let refundable = order.paid.amount_minor - order.refunded.amount_minor;
    if b.amount_minor <= 0 {
        return Err(ApiError::invalid(
            "amount_minor",
            "invalid_amount",
            "amount_minor: the amount must be greater than 0",
        ));
    }
    if b.amount_minor > refundable {
        return Err(ApiError::invalid(
            "amount_minor",
            "exceeds_refundable",
            format!(
                "amount_minor: {} is more than the refundable {}",
                b.amount_minor, refundable
            ),
        ));
    }
    let stripe_paid = m
        .scope
        .list_payments(id)
        .await?
        .into_iter()
        .find(|p| p.gateway == "stripe")
        .and_then(|p| p.reference);
    let (gateway, reference) = match stripe_paid {
        Some(pi) => {
            let stripe = crate::web::checkout::stripe_for(&st, &m.scope)
                .await?
                .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "stripe_not_configured", "this card payment can only be refunded with the store's Stripe key, which is not set"))?;
            let key = format!(
                "refund-{id}-{}-{}",
                order.refunded.amount_minor, b.amount_minor
            );
            let r = stripe.refund(&pi, b.amount_minor, &key).await?;
            ("stripe", Some(r.id))
        }
        None => ("manual", None),
    };
    let (order, refund) = m
        .scope
        .record_refund(
            &m.actor,
            id,
            b.amount_minor,
            gateway,
            reference.as_deref(),
            reason.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(RefundResponse { refund, order })).into_response())
}

/// Query of the customer list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CustomerQuery {
    /// Search e-mail and names (substring, any case).
    q: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

/// The store's customers (guests included), newest first, with orders count and
/// lifetime spend (minor units of the store currency).
#[utoipa::path(get, path = "/api/v1/customers", tag = "orders", security(("bearer" = ["orders.view"])), params(CustomerQuery),
    responses((status = 200, body = ListResponse<Customer>), (status = 422, body = ErrorBody)))]
async fn list_customers(
    m: Authorized<perm::OrdersView>,
    Query(q): Query<CustomerQuery>,
) -> ApiResult<Json<ListResponse<Customer>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    let search = opt_text("q", q.q, 200)?;
    let (data, total) = m
        .scope
        .list_customers(search.as_deref(), limit, offset)
        .await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// A customer with their orders.
#[derive(Debug, Serialize, ToSchema)]
struct CustomerDetail {
    #[serde(flatten)]
    customer: Customer,
    orders: Vec<Order>,
    addresses: Vec<crate::store::customers::SavedAddress>,
}

/// One customer with their orders (newest 50) and saved addresses.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "orders", security(("bearer" = ["orders.view"])),
    responses((status = 200, body = CustomerDetail), (status = 404, body = ErrorBody)))]
async fn get_customer(
    m: Authorized<perm::OrdersView>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<CustomerDetail>> {
    let customer = m
        .scope
        .get_customer(id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    let (orders, _) = m.scope.customer_orders(id, 50, 0).await?;
    let addresses = m.scope.customer_addresses(id).await?;
    Ok(Json(CustomerDetail {
        customer,
        orders,
        addresses,
    }))
}
