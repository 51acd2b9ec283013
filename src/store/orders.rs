//! Orders (with line items and payments) and support tickets, always through [`TenantDb`].
//!
//! Money is integer minor units in the order's currency (the store currency when the order
//! was created). Every mutation writes its audit entry and its event in the transaction of
//! the change; event payloads are the resource exactly as the API returns it, read back
//! through that transaction before it commits.

use super::audit::{self, Actor, Change};
use super::catalog::MoneyDto;
use super::events;
use super::{
    StoreError, StoreResult, TenantDb, Tx, fetch_in, micros_to_rfc3339, new_id, now_micros,
};
use crate::domain::{
    Email, FinancialStatus, FulfillmentStatus, OrderStatus, Sku, TicketPriority, TicketStatus,
};
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// At most this many line items per order.
pub const MAX_LINE_ITEMS: usize = 250;
/// A line item's quantity is 1..=MAX_QUANTITY.
pub const MAX_QUANTITY: i64 = 10_000;
/// A unit price is 0..=MAX_PRICE_MINOR minor units (as for catalog prices).
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000_000;
/// The first order number of every tenant; later orders count up from it.
pub const FIRST_ORDER_NUMBER: i64 = 1001;
/// The first support ticket number of every tenant.
pub const FIRST_TICKET_NUMBER: i64 = 1;

/// Why an order, payment or ticket change was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// A value breaks a rule (HTTP 422). `field` is the API field, with the line index
    /// for line items (`line_items[2].quantity`); `code` is stable (`unknown_variant`,
    /// `invalid_quantity`, `exceeds_balance`, …).
    #[error("{message}")]
    Invalid {
        field: String,
        code: &'static str,
        message: String,
    },
    /// The resource's state forbids the change (HTTP 409 `invalid_state`), e.g. paying or
    /// reopening a cancelled order.
    #[error("{0}")]
    InvalidState(String),
    /// No such resource in this tenant (HTTP 404); names what was looked for.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OrderError {
    fn from(e: sqlx::Error) -> Self {
        OrderError::Store(e.into())
    }
}

fn invalid(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> OrderError {
    let field = field.into();
    OrderError::Invalid {
        message: format!("{field}: {}", message.into()),
        field,
        code,
    }
}

fn corrupt(e: crate::domain::DomainError) -> StoreError {
    StoreError::Corrupt(e.message)
}

// ---------------------------------------------------------------- inputs

/// What a line item sells.
#[derive(Debug, Clone)]
pub enum LineItemSource {
    /// A catalog variant of this tenant: price, SKU and title are copied from it.
    Variant(Uuid),
    /// A custom item: its own title, unit price (minor units) and optional SKU.
    Custom {
        title: String,
        price_minor: i64,
        sku: Option<Sku>,
    },
}

/// A line item to create: what and how many (1..=[`MAX_QUANTITY`]).
#[derive(Debug, Clone)]
pub struct LineItemInput {
    pub source: LineItemSource,
    pub quantity: i64,
}

/// A parsed order to create.
#[derive(Debug, Clone)]
pub struct OrderInput {
    pub email: Option<Email>,
    pub customer_name: Option<String>,
    pub note: Option<String>,
    /// 1..=[`MAX_LINE_ITEMS`] items.
    pub line_items: Vec<LineItemInput>,
}

impl OrderInput {
    /// Checks counts, quantities and prices. Errors: `Invalid` naming the field.
    fn check(&self) -> Result<(), OrderError> {
        if self.line_items.is_empty() {
            return Err(invalid(
                "line_items",
                "required",
                "an order needs at least one line item",
            ));
        }
        if self.line_items.len() > MAX_LINE_ITEMS {
            return Err(invalid(
                "line_items",
                "too_many_line_items",
                format!("an order has at most {MAX_LINE_ITEMS} line items"),
            ));
        }
        for (i, li) in self.line_items.iter().enumerate() {
            if !(1..=MAX_QUANTITY).contains(&li.quantity) {
                return Err(invalid(
                    format!("line_items[{i}].quantity"),
                    "invalid_quantity",
                    format!("quantity must be between 1 and {MAX_QUANTITY}"),
                ));
            }
            if let LineItemSource::Custom { price_minor, .. } = &li.source
                && !(0..=MAX_PRICE_MINOR).contains(price_minor)
            {
                return Err(invalid(
                    format!("line_items[{i}].price_minor"),
                    "invalid_price",
                    "price_minor must be between 0 and 10^12",
                ));
            }
        }
        Ok(())
    }
}

/// A partial order update; `None` keeps the current value. `note`/`email` as
/// `Some(None)` clear the field.
#[derive(Debug, Clone, Default)]
pub struct OrderPatch {
    pub status: Option<OrderStatus>,
    pub fulfillment_status: Option<FulfillmentStatus>,
    pub note: Option<Option<String>>,
    pub email: Option<Option<Email>>,
}

impl OrderPatch {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.fulfillment_status.is_none()
            && self.note.is_none()
            && self.email.is_none()
    }
}

/// A payment to record against an order.
#[derive(Debug, Clone)]
pub struct PaymentInput {
    /// Minor units of the order's currency, > 0 and at most the outstanding balance.
    pub amount_minor: i64,
    /// Where the money came from, e.g. `manual`.
    pub gateway: String,
    /// The gateway's transaction reference, if any.
    pub reference: Option<String>,
}

/// Filters of the order list; `None` matches every order.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub financial_status: Option<FinancialStatus>,
}

/// A parsed support ticket to create (status starts `open`).
#[derive(Debug, Clone)]
pub struct TicketInput {
    pub subject: String,
    pub body: String,
    pub email: Email,
    /// An order of this tenant the ticket is about.
    pub order_id: Option<Uuid>,
    pub priority: TicketPriority,
}

/// A partial ticket update; `None` keeps the current value, `order_id: Some(None)` unlinks.
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub status: Option<TicketStatus>,
    pub priority: Option<TicketPriority>,
    pub order_id: Option<Option<Uuid>>,
}

impl TicketPatch {
    fn is_empty(&self) -> bool {
        self.subject.is_none()
            && self.status.is_none()
            && self.priority.is_none()
            && self.order_id.is_none()
    }
}

/// Filters of the ticket list; `None` matches every ticket.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub priority: Option<TicketPriority>,
}

// ---------------------------------------------------------------- DTOs

/// An order line as the API returns it. A line is a snapshot: it keeps its SKU, title and
/// price when the catalog variant changes or is deleted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LineItem {
    pub id: Uuid,
    /// The catalog variant it was created from (`null` for custom items).
    pub variant_id: Option<Uuid>,
    pub product_id: Option<Uuid>,
    pub sku: Option<String>,
    /// Product title, plus ` - <variant title>` for variants other than `Default`.
    pub title: String,
    pub quantity: i64,
    pub unit_price: MoneyDto,
    /// `unit_price × quantity − discount` (tax is inside it when the order's prices
    /// include tax).
    pub total: MoneyDto,
    /// 0-based position in the order.
    pub position: i64,
    /// The variant's title when the order was placed (`null` for custom items and
    /// orders from before checkout existed).
    pub variant_title: Option<String>,
    /// This line's share of the order's discount.
    pub discount: MoneyDto,
    /// Tax on this line (see `Order.prices_include_tax`).
    pub tax: MoneyDto,
    /// Units already fulfilled (0..=quantity).
    pub fulfilled_quantity: i64,
}

/// An order as the API (and its events) return it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    /// Per-tenant sequential number, starting at 1001.
    pub number: i64,
    /// The customer's e-mail (lowercase).
    pub email: Option<String>,
    pub customer_name: Option<String>,
    /// ISO 4217; every amount of the order is in it.
    pub currency: String,
    pub status: OrderStatus,
    pub financial_status: FinancialStatus,
    pub fulfillment_status: FulfillmentStatus,
    /// Sum of `unit_price × quantity` over the lines (before the discount).
    pub subtotal: MoneyDto,
    /// The discount code's amount (0 without one).
    pub discount: MoneyDto,
    pub shipping: MoneyDto,
    /// Tax on lines and shipping: contained in the prices when `prices_include_tax`,
    /// added to the total otherwise.
    pub tax: MoneyDto,
    pub prices_include_tax: bool,
    /// What the customer owes: `subtotal − discount + shipping (+ tax when prices exclude
    /// it)`. For orders typed in by staff: the subtotal.
    pub total: MoneyDto,
    /// Sum of the recorded payments.
    pub paid: MoneyDto,
    /// `total − paid`.
    pub outstanding: MoneyDto,
    /// Sum of the refunds.
    pub refunded: MoneyDto,
    pub note: Option<String>,
    /// The store's customer record (guests get one by e-mail too).
    pub customer_id: Option<Uuid>,
    /// `storefront`, `store_api` (with the publishable key's prefix) or `null` (staff).
    pub source: Option<String>,
    /// The sales channel the order came from.
    pub channel_id: Option<Uuid>,
    pub shipping_address: Option<crate::pricing::Address>,
    /// The shipping rate's name, or `Pickup`.
    pub shipping_method: Option<String>,
    /// `bank_transfer`, `cash_on_delivery`, `card` or `null` (staff orders).
    pub payment_method: Option<String>,
    pub discount_code: Option<String>,
    /// The Stripe PaymentIntent of a card payment.
    pub payment_intent_id: Option<String>,
    pub line_items: Vec<LineItem>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

/// A payment recorded against an order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    /// In the order's currency.
    pub amount: MoneyDto,
    pub gateway: String,
    pub reference: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A recorded payment with the order as it is after the payment: the response of
/// `POST /api/v1/orders/{id}/payments` and the payload of `payment.received`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentReceipt {
    #[serde(flatten)]
    pub payment: Payment,
    pub order: Order,
}

/// A support ticket as the API (and its events) return it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SupportTicket {
    pub id: Uuid,
    /// Per-tenant sequential number, starting at 1.
    pub number: i64,
    pub subject: String,
    pub body: String,
    /// The customer's e-mail (lowercase).
    pub email: String,
    pub order_id: Option<Uuid>,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

// ---------------------------------------------------------------- rows

#[derive(Debug, sqlx::FromRow)]
pub(super) struct OrderRow {
    pub(super) id: Uuid,
    pub(super) number: i64,
    pub(super) email: Option<String>,
    pub(super) customer_name: Option<String>,
    pub(super) currency: String,
    pub(super) status: String,
    pub(super) financial_status: String,
    pub(super) fulfillment_status: String,
    pub(super) subtotal_minor: i64,
    pub(super) total_minor: i64,
    pub(super) paid_minor: i64,
    pub(super) note: Option<String>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    pub(super) customer_id: Option<Uuid>,
    pub(super) channel_id: Option<Uuid>,
    pub(super) source: Option<String>,
    pub(super) discount_minor: i64,
    pub(super) shipping_minor: i64,
    pub(super) tax_minor: i64,
    pub(super) refunded_minor: i64,
    pub(super) prices_include_tax: bool,
    pub(super) shipping_address: Option<String>,
    pub(super) shipping_method: Option<String>,
    pub(super) payment_method: Option<String>,
    pub(super) payment_intent_id: Option<String>,
    pub(super) discount_code: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct LineItemRow {
    pub(super) id: Uuid,
    pub(super) order_id: Uuid,
    pub(super) variant_id: Option<Uuid>,
    pub(super) product_id: Option<Uuid>,
    pub(super) sku: Option<String>,
    pub(super) title: String,
    pub(super) quantity: i64,
    pub(super) unit_price_minor: i64,
    pub(super) total_minor: i64,
    pub(super) position: i64,
    pub(super) variant_title: Option<String>,
    pub(super) discount_minor: i64,
    pub(super) tax_minor: i64,
    pub(super) fulfilled_quantity: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct PaymentRow {
    id: Uuid,
    order_id: Uuid,
    amount_minor: i64,
    currency: String,
    gateway: String,
    reference: Option<String>,
    created_at: i64,
}

impl From<PaymentRow> for Payment {
    fn from(r: PaymentRow) -> Self {
        Payment {
            id: r.id,
            order_id: r.order_id,
            amount: MoneyDto::new(r.amount_minor, &r.currency),
            gateway: r.gateway,
            reference: r.reference,
            created_at: micros_to_rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct TicketRow {
    id: Uuid,
    number: i64,
    subject: String,
    body: String,
    email: String,
    order_id: Option<Uuid>,
    status: String,
    priority: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<TicketRow> for SupportTicket {
    type Error = StoreError;
    fn try_from(r: TicketRow) -> StoreResult<Self> {
        Ok(SupportTicket {
            id: r.id,
            number: r.number,
            subject: r.subject,
            body: r.body,
            email: r.email,
            order_id: r.order_id,
            status: TicketStatus::parse(&r.status).map_err(corrupt)?,
            priority: TicketPriority::parse(&r.priority).map_err(corrupt)?,
            created_at: micros_to_rfc3339(r.created_at),
            updated_at: micros_to_rfc3339(r.updated_at),
        })
    }
}

/// A catalog variant as a line item copies it.
#[derive(Debug, sqlx::FromRow)]
struct CatalogVariantRow {
    id: Uuid,
    product_id: Uuid,
    sku: Option<String>,
    title: String,
    product_title: String,
    price_minor: i64,
    currency: String,
}

pub(crate) const ORDER_COLS: &str = "id, number, email, customer_name, currency, status, financial_status, fulfillment_status, subtotal_minor, total_minor, paid_minor, note, created_at, updated_at,
    customer_id, channel_id, source, discount_minor, shipping_minor, tax_minor, refunded_minor, prices_include_tax, shipping_address, shipping_method, payment_method, payment_intent_id, discount_code";
const ORDER_WHERE: &str =
    "tenant_id = $1 and ($2 is null or status = $2) and ($3 is null or financial_status = $3)";
const LINES_OF: &str = "select id, order_id, variant_id, product_id, sku, title, quantity, unit_price_minor, total_minor, position, variant_title, discount_minor, tax_minor, fulfilled_quantity from order_line_items where tenant_id = ";
const VARIANTS_BY_ID: &str = "select v.id, v.product_id, v.sku, v.title, p.title as product_title, v.price_minor, v.currency
     from variants v join products p on p.tenant_id = v.tenant_id and p.id = v.product_id where v.tenant_id = ";
const PAYMENT_COLS: &str = "id, order_id, amount_minor, currency, gateway, reference, created_at";
const TICKET_COLS: &str =
    "id, number, subject, body, email, order_id, status, priority, created_at, updated_at";
const TICKET_WHERE: &str =
    "tenant_id = $1 and ($2 is null or status = $2) and ($3 is null or priority = $3)";

/// Row → DTO assembly shared by the pool and the transaction paths.
pub(super) fn assemble_orders(
    rows: Vec<OrderRow>,
    lines: Vec<LineItemRow>,
) -> StoreResult<Vec<Order>> {
    let mut by_order: HashMap<Uuid, Vec<LineItemRow>> = HashMap::new();
    for l in lines {
        by_order.entry(l.order_id).or_default().push(l);
    }
    rows.into_iter()
        .map(|r| {
            let cur = r.currency.as_str();
            let line_items = by_order
                .remove(&r.id)
                .unwrap_or_default()
                .into_iter()
                .map(|l| LineItem {
                    id: l.id,
                    variant_id: l.variant_id,
                    product_id: l.product_id,
                    sku: l.sku,
                    title: l.title,
                    quantity: l.quantity,
                    unit_price: MoneyDto::new(l.unit_price_minor, cur),
                    total: MoneyDto::new(l.total_minor, cur),
                    position: l.position,
                    variant_title: l.variant_title,
                    discount: MoneyDto::new(l.discount_minor, cur),
                    tax: MoneyDto::new(l.tax_minor, cur),
                    fulfilled_quantity: l.fulfilled_quantity,
                })
                .collect();
            Ok(Order {
                id: r.id,
                number: r.number,
                email: r.email,
                customer_name: r.customer_name,
                status: OrderStatus::parse(&r.status).map_err(corrupt)?,
                financial_status: FinancialStatus::parse(&r.financial_status).map_err(corrupt)?,
                fulfillment_status: FulfillmentStatus::parse(&r.fulfillment_status)
                    .map_err(corrupt)?,
                subtotal: MoneyDto::new(r.subtotal_minor, cur),
                discount: MoneyDto::new(r.discount_minor, cur),
                shipping: MoneyDto::new(r.shipping_minor, cur),
                tax: MoneyDto::new(r.tax_minor, cur),
                prices_include_tax: r.prices_include_tax,
                total: MoneyDto::new(r.total_minor, cur),
                paid: MoneyDto::new(r.paid_minor, cur),
                outstanding: MoneyDto::new(r.total_minor - r.paid_minor, cur),
                refunded: MoneyDto::new(r.refunded_minor, cur),
                note: r.note,
                customer_id: r.customer_id,
                channel_id: r.channel_id,
                source: r.source,
                shipping_address: r
                    .shipping_address
                    .as_deref()
                    .and_then(|a| serde_json::from_str(a).ok()),
                shipping_method: r.shipping_method,
                payment_method: r.payment_method,
                payment_intent_id: r.payment_intent_id,
                discount_code: r.discount_code,
                line_items,
                created_at: micros_to_rfc3339(r.created_at),
                updated_at: micros_to_rfc3339(r.updated_at),
                currency: r.currency,
            })
        })
        .collect()
}

/// What the audit log keeps of an order: identity, states and amounts.
pub(crate) fn order_summary(o: &Order) -> serde_json::Value {
    serde_json::json!({
        "number": o.number,
        "email": o.email,
        "status": o.status.as_str(),
        "financial_status": o.financial_status.as_str(),
        "fulfillment_status": o.fulfillment_status.as_str(),
        "total_minor": o.total.amount_minor,
        "paid_minor": o.paid.amount_minor,
        "currency": o.currency,
        "line_items": o.line_items.len(),
    })
}

/// What the audit log keeps of a ticket.
fn ticket_summary(t: &SupportTicket) -> serde_json::Value {
    serde_json::json!({
        "number": t.number,
        "subject": t.subject,
        "email": t.email,
        "order_id": t.order_id,
        "status": t.status.as_str(),
        "priority": t.priority.as_str(),
    })
}

impl TenantDb {
    // ------------------------------------------------------------ orders: reads

    /// Lists orders, newest (highest number) first, with their line items.
    /// Returns `(page, total)`.
    pub async fn list_orders(
        &self,
        f: &OrderFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Order>, i64)> {
        let status = f.status.map(|s| s.as_str());
        let financial = f.financial_status.map(|s| s.as_str());
        let rows = crate::tenant_query!(self, read, p => sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
            "select {ORDER_COLS} from orders where {ORDER_WHERE} order by number desc limit $4 offset $5"
        )))
        .bind(self.tenant)
        .bind(status)
        .bind(financial)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from orders where {ORDER_WHERE}"
        )))
        .bind(self.tenant)
        .bind(status)
        .bind(financial)
        .fetch_one(p)
        .await)?;
        if rows.is_empty() {
            return Ok((vec![], total));
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let lines = crate::tenant_query!(self, read, p => fetch_in!(p, LineItemRow, LINES_OF, "order_id", self.tenant, &ids, " order by position"))?;
        Ok((assemble_orders(rows, lines)?, total))
    }

    /// Orders of this tenant by id, with their line items, in the order of `ids` (ids of
    /// other tenants find nothing). Two statements whatever the count.
    pub(crate) async fn orders_by_ids(&self, ids: &[Uuid]) -> StoreResult<Vec<Order>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let head = format!("select {ORDER_COLS} from orders where tenant_id = ");
        let rows = crate::tenant_query!(self, read, p => {
            let mut qb = sqlx::QueryBuilder::new(head.as_str());
            qb.push_bind(self.tenant).push(" and id in (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build_query_as::<OrderRow>().fetch_all(p).await
        })?;
        let lines = crate::tenant_query!(self, read, p => fetch_in!(p, LineItemRow, LINES_OF, "order_id", self.tenant, ids, " order by position"))?;
        let mut orders = assemble_orders(rows, lines)?;
        orders.sort_by_key(|o| ids.iter().position(|i| *i == o.id));
        Ok(orders)
    }

    /// One order with its line items. `None` when it does not exist *in this tenant*.
    pub async fn get_order(&self, id: Uuid) -> StoreResult<Option<Order>> {
        let row = crate::tenant_query!(self, read, p => sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
            "select {ORDER_COLS} from orders where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        let lines = crate::tenant_query!(self, read, p => fetch_in!(p, LineItemRow, LINES_OF, "order_id", self.tenant, &[id], " order by position"))?;
        Ok(assemble_orders(vec![row], lines)?.pop())
    }

    /// [`Self::get_order`] through an open transaction (sees its uncommitted writes).
    pub(crate) async fn get_order_tx(&self, tx: &mut Tx, id: Uuid) -> StoreResult<Option<Order>> {
        let row = dispatch_tx!(&mut *tx, c => sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
            "select {ORDER_COLS} from orders where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        let lines = dispatch_tx!(&mut *tx, c => fetch_in!(&mut **c, LineItemRow, LINES_OF, "order_id", self.tenant, &[id], " order by position"))?;
        Ok(assemble_orders(vec![row], lines)?.pop())
    }

    /// The payments of an order, oldest first. Errors: `NotFound("order")`.
    pub async fn list_payments(&self, order_id: Uuid) -> Result<Vec<Payment>, OrderError> {
        let exists: Option<Uuid> = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select id from orders where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(order_id)
        .fetch_optional(p)
        .await)?;
        if exists.is_none() {
            return Err(OrderError::NotFound("order"));
        }
        let rows = crate::tenant_query!(self, read, p => sqlx::query_as::<_, PaymentRow>(sqlx::AssertSqlSafe(format!(
            "select {PAYMENT_COLS} from payments where tenant_id = $1 and order_id = $2 order by created_at, id"
        )))
        .bind(self.tenant)
        .bind(order_id)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    // ------------------------------------------------------------ orders: writes

    /// Takes the next value of the tenant's counter `name` (the first is `first`), in `tx`.
    pub(crate) async fn next_number(
        &self,
        tx: &mut Tx,
        name: &str,
        first: i64,
    ) -> StoreResult<i64> {
        Ok(dispatch_tx!(tx, c => sqlx::query_scalar(NEXT_NUMBER_SQL)
        .bind(self.tenant)
        .bind(name)
        .bind(first)
        .fetch_one(&mut **c)
        .await)?)
    }

    /// Creates an order in `currency` (the store currency) with its line items, audit
    /// entry and `order.created` event in one transaction. Variant lines copy price, SKU and
    /// title from this tenant's catalog. Starts `open` / `unfulfilled`, and `pending`
    /// (`paid` when the total is 0).
    ///
    /// Errors: `Invalid` for an empty or oversized order, a quantity outside 1..=10000, a
    /// custom price outside 0..=10^12, a variant that is not in this tenant's catalog
    /// (`line_items[i].variant_id`, `unknown_variant`) or priced in another currency.
    pub async fn create_order(
        &self,
        actor: &Actor,
        input: &OrderInput,
        currency: &str,
    ) -> Result<Order, OrderError> {
        input.check()?;
        let mut tx = self.begin().await?;
        let variant_ids: Vec<Uuid> = input
            .line_items
            .iter()
            .filter_map(|l| match l.source {
                LineItemSource::Variant(id) => Some(id),
                LineItemSource::Custom { .. } => None,
            })
            .collect();
        let variants: HashMap<Uuid, CatalogVariantRow> = if variant_ids.is_empty() {
            HashMap::new()
        } else {
            dispatch_tx!(&mut tx, c => fetch_in!(&mut **c, CatalogVariantRow, VARIANTS_BY_ID, "v.id", self.tenant, &variant_ids, ""))?
                .into_iter()
                .map(|v| (v.id, v))
                .collect()
        };
        struct Line<'a> {
            variant_id: Option<Uuid>,
            product_id: Option<Uuid>,
            sku: Option<&'a str>,
            title: String,
            quantity: i64,
            unit: i64,
            total: i64,
        }
        let mut lines = Vec::with_capacity(input.line_items.len());
        let mut subtotal: i64 = 0;
        let too_large = |i: usize| {
            invalid(
                format!("line_items[{i}]"),
                "amount_too_large",
                "the amounts of this order are too large",
            )
        };
        for (i, li) in input.line_items.iter().enumerate() {
            let (variant_id, product_id, sku, title, unit) = match &li.source {
                LineItemSource::Variant(id) => {
                    let v = variants.get(id).ok_or_else(|| {
                        invalid(
                            format!("line_items[{i}].variant_id"),
                            "unknown_variant",
                            format!("variant {id} not found in this store's catalog"),
                        )
                    })?;
                    if v.currency != currency {
                        return Err(invalid(
                            format!("line_items[{i}].variant_id"),
                            "currency_mismatch",
                            format!(
                                "variant {id} is priced in {}, the store sells in {currency}",
                                v.currency
                            ),
                        ));
                    }
                    let title = if v.title == "Default" {
                        v.product_title.clone()
                    } else {
                        format!("{} - {}", v.product_title, v.title)
                    };
                    (
                        Some(v.id),
                        Some(v.product_id),
                        v.sku.as_deref(),
                        title,
                        v.price_minor,
                    )
                }
                LineItemSource::Custom {
                    title,
                    price_minor,
                    sku,
                } => (
                    None,
                    None,
                    sku.as_ref().map(|s| s.as_str()),
                    title.clone(),
                    *price_minor,
                ),
            };
            let total = unit.checked_mul(li.quantity).ok_or_else(|| too_large(i))?;
            subtotal = subtotal.checked_add(total).ok_or_else(|| too_large(i))?;
            lines.push(Line {
                variant_id,
                product_id,
                sku,
                title,
                quantity: li.quantity,
                unit,
                total,
            });
        }
        let number = self
            .next_number(&mut tx, "order", FIRST_ORDER_NUMBER)
            .await?;
        let id = new_id();
        let now = now_micros();
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into orders (id, tenant_id, number, email, customer_name, currency, status, financial_status, fulfillment_status,
                subtotal_minor, total_minor, paid_minor, note, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 0, $11, $12, $12)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(number)
        .bind(input.email.as_ref().map(|e| e.as_str()))
        .bind(&input.customer_name)
        .bind(currency)
        .bind(OrderStatus::Open.as_str())
        .bind(FinancialStatus::of(0, subtotal).as_str())
        .bind(FulfillmentStatus::Unfulfilled.as_str())
        .bind(subtotal)
        .bind(&input.note)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        for (pos, l) in lines.iter().enumerate() {
            exec_tx!(&mut tx, c => sqlx::query(
                "insert into order_line_items (id, tenant_id, order_id, variant_id, product_id, sku, title, quantity, unit_price_minor, total_minor, position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(new_id())
            .bind(self.tenant)
            .bind(id)
            .bind(l.variant_id)
            .bind(l.product_id)
            .bind(l.sku)
            .bind(&l.title)
            .bind(l.quantity)
            .bind(l.unit)
            .bind(l.total)
            .bind(pos as i64)
            .execute(&mut **c)
            .await)?;
        }
        let order = self
            .get_order_tx(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("order.created", "order", id).after(order_summary(&order)),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "order.created", &order).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// Changes status, fulfillment status, note or e-mail; emits `order.updated`. An empty
    /// patch changes nothing and emits nothing.
    /// Errors: `NotFound("order")`; `InvalidState` when moving a cancelled order to
    /// another status.
    pub async fn update_order(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &OrderPatch,
    ) -> Result<Order, OrderError> {
        let mut tx = self.begin().await?;
        let before = self
            .get_order_tx(&mut tx, id)
            .await?
            .ok_or(OrderError::NotFound("order"))?;
        if patch.is_empty() {
            return Ok(before);
        }
        // One statement, so concurrent patches of different fields do not undo each other;
        // the cancelled check is in the statement for the same reason.
        let changed = exec_tx!(&mut tx, c => sqlx::query(
            "update orders set status = coalesce($3, status), fulfillment_status = coalesce($4, fulfillment_status),
                note = case when $5 then $6 else note end, email = case when $7 then $8 else email end, updated_at = $9
             where tenant_id = $1 and id = $2 and (status <> 'cancelled' or $3 is null or $3 = 'cancelled')",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(patch.status.map(|s| s.as_str()))
        .bind(patch.fulfillment_status.map(|s| s.as_str()))
        .bind(patch.note.is_some())
        .bind(patch.note.clone().flatten())
        .bind(patch.email.is_some())
        .bind(patch.email.as_ref().and_then(|e| e.as_ref().map(|e| e.as_str().to_string())))
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        if changed == 0 {
            return Err(OrderError::InvalidState(
                "a cancelled order cannot be reopened or closed".into(),
            ));
        }
        let order = self
            .get_order_tx(&mut tx, id)
            .await?
            .ok_or(OrderError::NotFound("order"))?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("order.updated", "order", id)
                .before(order_summary(&before))
                .after(order_summary(&order)),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "order.updated", &order).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// Records a payment in the order's currency, adds it to `paid` and derives the
    /// financial status (`partially_paid`, then `paid` at the total). Emits
    /// `payment.received` (the [`PaymentReceipt`]) and, when the financial status changed,
    /// `order.updated`.
    ///
    /// Errors: `NotFound("order")`; `Invalid` (`amount_minor`) for an amount ≤ 0
    /// (`invalid_amount`) or above the outstanding balance (`exceeds_balance`);
    /// `InvalidState` for a cancelled order.
    pub async fn record_payment(
        &self,
        actor: &Actor,
        order_id: Uuid,
        input: &PaymentInput,
    ) -> Result<PaymentReceipt, OrderError> {
        if input.amount_minor <= 0 {
            return Err(invalid(
                "amount_minor",
                "invalid_amount",
                "the amount must be greater than 0",
            ));
        }
        let mut tx = self.begin().await?;
        let before = self
            .get_order_tx(&mut tx, order_id)
            .await?
            .ok_or(OrderError::NotFound("order"))?;
        let now = now_micros();
        // The balance check is in the statement: two concurrent payments cannot both pass
        // it (PostgreSQL re-checks the condition on the locked row).
        let updated: Option<(i64, i64)> = dispatch_tx!(&mut tx, c => sqlx::query_as(
            "update orders set paid_minor = paid_minor + $3, updated_at = $4
             where tenant_id = $1 and id = $2 and status <> 'cancelled' and paid_minor + $3 <= total_minor
             returning paid_minor, total_minor",
        )
        .bind(self.tenant)
        .bind(order_id)
        .bind(input.amount_minor)
        .bind(now)
        .fetch_optional(&mut **c)
        .await)?;
        let Some((paid, total)) = updated else {
            let current = self
                .get_order_tx(&mut tx, order_id)
                .await?
                .ok_or(OrderError::NotFound("order"))?;
            if current.status == OrderStatus::Cancelled {
                return Err(OrderError::InvalidState(
                    "a cancelled order cannot take payments".into(),
                ));
            }
            return Err(invalid(
                "amount_minor",
                "exceeds_balance",
                format!(
                    "{} exceeds the outstanding balance of {}",
                    MoneyDto::new(input.amount_minor, &current.currency).formatted,
                    current.outstanding.formatted
                ),
            ));
        };
        exec_tx!(&mut tx, c => sqlx::query(
            "update orders set financial_status = $3 where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(order_id)
        .bind(FinancialStatus::of(paid, total).as_str())
        .execute(&mut **c)
        .await)?;
        let payment_id = new_id();
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into payments (id, tenant_id, order_id, amount_minor, currency, gateway, reference, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(payment_id)
        .bind(self.tenant)
        .bind(order_id)
        .bind(input.amount_minor)
        .bind(&before.currency)
        .bind(&input.gateway)
        .bind(&input.reference)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        let payment: PaymentRow = dispatch_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {PAYMENT_COLS} from payments where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(payment_id)
        .fetch_one(&mut **c)
        .await)?;
        let order = self
            .get_order_tx(&mut tx, order_id)
            .await?
            .ok_or(OrderError::NotFound("order"))?;
        let receipt = PaymentReceipt {
            payment: payment.into(),
            order,
        };
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("payment.received", "payment", payment_id).after(serde_json::json!({
                "order_id": order_id,
                "order_number": receipt.order.number,
                "amount_minor": input.amount_minor,
                "currency": receipt.order.currency,
                "gateway": input.gateway,
                "financial_status": receipt.order.financial_status.as_str(),
            })),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "payment.received", &receipt).await?;
        if receipt.order.financial_status != before.financial_status {
            events::emit_resource(&mut tx, Some(self.tenant), "order.updated", &receipt.order)
                .await?;
        }
        tx.commit().await?;
        Ok(receipt)
    }

    // ------------------------------------------------------------ support tickets

    /// Lists tickets, newest (highest number) first. Returns `(page, total)`.
    pub async fn list_tickets(
        &self,
        f: &TicketFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<SupportTicket>, i64)> {
        let status = f.status.map(|s| s.as_str());
        let priority = f.priority.map(|s| s.as_str());
        let rows = crate::tenant_query!(self, read, p => sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(format!(
            "select {TICKET_COLS} from support_tickets where {TICKET_WHERE} order by number desc limit $4 offset $5"
        )))
        .bind(self.tenant)
        .bind(status)
        .bind(priority)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from support_tickets where {TICKET_WHERE}"
        )))
        .bind(self.tenant)
        .bind(status)
        .bind(priority)
        .fetch_one(p)
        .await)?;
        let tickets = rows
            .into_iter()
            .map(SupportTicket::try_from)
            .collect::<StoreResult<_>>()?;
        Ok((tickets, total))
    }

    /// One ticket. `None` when it does not exist *in this tenant*.
    pub async fn get_ticket(&self, id: Uuid) -> StoreResult<Option<SupportTicket>> {
        let row = crate::tenant_query!(self, read, p => sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(format!(
            "select {TICKET_COLS} from support_tickets where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        row.map(SupportTicket::try_from).transpose()
    }

    async fn get_ticket_tx(&self, tx: &mut Tx, id: Uuid) -> StoreResult<Option<SupportTicket>> {
        let row = dispatch_tx!(tx, c => sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(format!(
            "select {TICKET_COLS} from support_tickets where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?;
        row.map(SupportTicket::try_from).transpose()
    }

    /// Errors with `Invalid` (`order_id`, `unknown_order`) unless the order is this tenant's.
    async fn check_order_exists(&self, tx: &mut Tx, order_id: Uuid) -> Result<(), OrderError> {
        let found: Option<Uuid> = dispatch_tx!(tx, c => sqlx::query_scalar(
            "select id from orders where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(order_id)
        .fetch_optional(&mut **c)
        .await)?;
        match found {
            Some(_) => Ok(()),
            None => Err(invalid(
                "order_id",
                "unknown_order",
                format!("order {order_id} not found in this store"),
            )),
        }
    }

    /// Opens a ticket (status `open`) with its audit entry and `support_ticket.created`
    /// event. Errors: `Invalid` (`order_id`) when the order is not this tenant's.
    pub async fn create_ticket(
        &self,
        actor: &Actor,
        input: &TicketInput,
    ) -> Result<SupportTicket, OrderError> {
        let mut tx = self.begin().await?;
        if let Some(order_id) = input.order_id {
            self.check_order_exists(&mut tx, order_id).await?;
        }
        let number = self
            .next_number(&mut tx, "support_ticket", FIRST_TICKET_NUMBER)
            .await?;
        let id = new_id();
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into support_tickets (id, tenant_id, number, subject, body, email, order_id, status, priority, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(number)
        .bind(&input.subject)
        .bind(&input.body)
        .bind(input.email.as_str())
        .bind(input.order_id)
        .bind(TicketStatus::Open.as_str())
        .bind(input.priority.as_str())
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        let ticket = self
            .get_ticket_tx(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("support_ticket.created", "support_ticket", id)
                .after(ticket_summary(&ticket)),
        )
        .await?;
        events::emit_resource(
            &mut tx,
            Some(self.tenant),
            "support_ticket.created",
            &ticket,
        )
        .await?;
        tx.commit().await?;
        Ok(ticket)
    }

    /// Changes subject, status, priority or the linked order; emits
    /// `support_ticket.updated`. An empty patch changes nothing and emits nothing.
    /// Errors: `NotFound("support ticket")`; `Invalid` (`order_id`) for another tenant's
    /// or an unknown order.
    pub async fn update_ticket(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &TicketPatch,
    ) -> Result<SupportTicket, OrderError> {
        let mut tx = self.begin().await?;
        let before = self
            .get_ticket_tx(&mut tx, id)
            .await?
            .ok_or(OrderError::NotFound("support ticket"))?;
        if patch.is_empty() {
            return Ok(before);
        }
        if let Some(Some(order_id)) = patch.order_id {
            self.check_order_exists(&mut tx, order_id).await?;
        }
        exec_tx!(&mut tx, c => sqlx::query(
            "update support_tickets set subject = coalesce($3, subject), status = coalesce($4, status),
                priority = coalesce($5, priority), order_id = case when $6 then $7 else order_id end, updated_at = $8
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(&patch.subject)
        .bind(patch.status.map(|s| s.as_str()))
        .bind(patch.priority.map(|s| s.as_str()))
        .bind(patch.order_id.is_some())
        .bind(patch.order_id.flatten())
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        let ticket = self
            .get_ticket_tx(&mut tx, id)
            .await?
            .ok_or(OrderError::NotFound("support ticket"))?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("support_ticket.updated", "support_ticket", id)
                .before(ticket_summary(&before))
                .after(ticket_summary(&ticket)),
        )
        .await?;
        events::emit_resource(
            &mut tx,
            Some(self.tenant),
            "support_ticket.updated",
            &ticket,
        )
        .await?;
        tx.commit().await?;
        Ok(ticket)
    }
}

impl TenantDb {
    /// Moves an order's `created_at` and `updated_at` to `at` (µs since the epoch), for
    /// demo data that should look like weeks of trading (`serve --demo`). Changes nothing
    /// else (no event, no audit entry: it rewrites no business fact). Errors: database
    /// errors only; an unknown id changes nothing.
    pub async fn backdate_order(&self, order_id: Uuid, at: i64) -> Result<(), StoreError> {
        crate::tenant_exec!(self, c => sqlx::query("update orders set created_at = $3, updated_at = $3 where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(order_id)
            .bind(at)
            .execute(c)
            .await)?;
        Ok(())
    }
}

/// Takes the next value of a per-tenant counter (`$1` tenant, `$2` name, `$3` first value).
pub(crate) const NEXT_NUMBER_SQL: &str =
    "insert into tenant_counters (tenant_id, name, value) values ($1, $2, $3)
     on conflict (tenant_id, name) do update set value = tenant_counters.value + 1
     returning value";
