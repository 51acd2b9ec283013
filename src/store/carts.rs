//! Carts and checkout, always through [`TenantDb`]: a cart holds variant lines, the
//! shopper's e-mail, shipping address and option, payment method and discount code; it
//! is priced live from the catalog (see [`crate::pricing`]) and completed into an order.
//!
//! ## The reservation rule
//! Stock is checked when a line is added or changed, and taken when the order is placed:
//! each line is one `update variants set inventory = inventory - q where … and (stock
//! suffices or the variant may be oversold) returning …` inside the order's transaction,
//! so two buyers of the last unit cannot both succeed (SQLite serializes writers;
//! PostgreSQL locks the row and re-checks the guard). Cancelling an order puts the stock
//! back. A variant whose inventory is not tracked, or whose policy is `continue`, is never
//! refused for stock.
//!
//! ## Idempotent placement
//! A cart becomes at most one order (`orders.cart_id` is unique and the cart's
//! `open → completed` update is guarded). An `Idempotency-Key` (API) or the checkout
//! form's token is stored with a hash of the request: the same key again returns the
//! same order, the same key with another request is refused.
//!
//! ## Prices are confirmed
//! A line remembers the unit price it was added at. If the catalog price changed, the
//! product was unpublished, stock ran short or the discount code stopped applying, the
//! cart lists the change in `changes` and placing the order is refused with 409
//! `cart_changed` (the stored prices are then updated, so a second attempt, after the
//! shopper has seen the new totals, succeeds). Orders keep line snapshots (title,
//! variant title, SKU, unit price, discount, tax), so later catalog edits never change them.

use super::audit::{self, Actor, Change};
use super::batch::{Batch, Returns};
use super::catalog::MoneyDto;
use super::commerce::{CheckoutSettings, DiscountRow};
use super::events;
use super::jobs::{self, NewJob};
use super::orders::{
    FIRST_ORDER_NUMBER, LineItemRow, MAX_QUANTITY, Order, OrderRow, assemble_orders, order_summary,
};
use super::{
    StoreError, StoreResult, TenantDb, Tx, micros_to_rfc3339, new_id, now_micros, to_json,
};
use crate::domain::{Email, FinancialStatus, FulfillmentStatus, OrderStatus};
use crate::mail::EmailMessage;
use crate::pricing::{self, Address, LineIn, PricingInput};
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// At most this many distinct lines per cart.
pub const MAX_CART_LINES: usize = 100;
/// The shipping option id of picking up at the store.
pub const PICKUP: &str = "pickup";

/// Why a cart change or a checkout was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// A value breaks a rule (HTTP 422): `field` is the API field (`quantity`,
    /// `variant_id`, `shipping_address.postal_code`, `discount_code`, …).
    #[error("{message}")]
    Invalid {
        field: String,
        code: &'static str,
        message: String,
    },
    /// The cart's state forbids it (HTTP 409): `cart_completed`, `cart_changed`,
    /// `out_of_stock`, `discount_invalid`; `details` say what (e.g. the changes, or the
    /// order a completed cart became).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: serde_json::Value,
    },
    /// No such resource in this store (HTTP 404).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CheckoutError {
    fn from(e: sqlx::Error) -> Self {
        CheckoutError::Store(e.into())
    }
}

fn invalid(
    field: impl Into<String>,
    code: &'static str,
    message: impl Into<String>,
) -> CheckoutError {
    CheckoutError::Invalid {
        field: field.into(),
        code,
        message: message.into(),
    }
}

/// Payment methods a shopper can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    BankTransfer,
    CashOnDelivery,
    Card,
}

impl PaymentMethod {
    /// Errors: `invalid_payment_method`.
    pub fn parse(raw: &str) -> Result<Self, CheckoutError> {
        match raw.trim() {
            "bank_transfer" => Ok(Self::BankTransfer),
            "cash_on_delivery" => Ok(Self::CashOnDelivery),
            "card" => Ok(Self::Card),
            other => Err(invalid(
                "payment_method",
                "invalid_payment_method",
                format!("payment method '{other}' must be bank_transfer, cash_on_delivery or card"),
            )),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BankTransfer => "bank_transfer",
            Self::CashOnDelivery => "cash_on_delivery",
            Self::Card => "card",
        }
    }
    /// The shopper-facing name.
    pub fn label(&self) -> &'static str {
        match self {
            Self::BankTransfer => "Bank transfer",
            Self::CashOnDelivery => "Cash on delivery",
            Self::Card => "Card",
        }
    }
    /// Whether `settings` (plus a configured Stripe secret for cards) offer it.
    pub fn enabled(&self, s: &CheckoutSettings, stripe_configured: bool) -> bool {
        match self {
            Self::BankTransfer => s.bank_transfer,
            Self::CashOnDelivery => s.cash_on_delivery,
            Self::Card => s.card && stripe_configured,
        }
    }
}

/// Where a cart was made: the sales channel and the interface.
#[derive(Debug, Clone)]
pub struct CartOrigin {
    /// `storefront`, or `store_api:<publishable key prefix>`.
    pub source: String,
}

/// A cart line as the API returns it, priced at today's catalog price.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartLine {
    pub id: Uuid,
    pub variant_id: Uuid,
    pub product_id: Option<Uuid>,
    pub product_handle: Option<String>,
    pub product_title: String,
    pub variant_title: String,
    pub sku: Option<String>,
    pub image_url: Option<String>,
    pub quantity: i64,
    /// Today's price (the price the line was added at may differ: see `changes`).
    pub unit_price: MoneyDto,
    pub subtotal: MoneyDto,
    pub discount: MoneyDto,
    pub tax: MoneyDto,
    pub total: MoneyDto,
    /// Whether the line can be bought now (product active, stock suffices).
    pub available: bool,
}

/// Something that changed since a line was added, shown before paying.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartChange {
    /// `price_changed`, `unavailable`, `out_of_stock`, `discount_invalid`.
    pub code: String,
    pub line_id: Option<Uuid>,
    pub message: String,
}

/// The totals of a cart.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartTotals {
    pub subtotal: MoneyDto,
    pub discount: MoneyDto,
    pub shipping: MoneyDto,
    pub tax: MoneyDto,
    pub total: MoneyDto,
    pub prices_include_tax: bool,
}

/// A shipping option offered for the cart's address.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShippingOption {
    /// A shipping rate id, or `pickup`.
    pub id: String,
    pub name: String,
    /// What it costs this cart (0 when over the free-shipping amount).
    pub price: MoneyDto,
    /// Free from this discounted subtotal, if the rate has such an amount.
    pub free_over: Option<MoneyDto>,
}

/// A cart as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Cart {
    pub id: Uuid,
    /// `open` or `completed`.
    pub status: String,
    pub currency: String,
    pub email: Option<String>,
    pub customer_id: Option<Uuid>,
    pub shipping_address: Option<Address>,
    /// The chosen option's id (a shipping rate id, or `pickup`).
    pub shipping_option: Option<String>,
    pub shipping_option_name: Option<String>,
    pub payment_method: Option<PaymentMethod>,
    pub payment_intent_id: Option<String>,
    pub discount_code: Option<String>,
    pub lines: Vec<CartLine>,
    /// Units over all lines (the mini-cart count).
    pub item_count: i64,
    pub totals: CartTotals,
    pub changes: Vec<CartChange>,
    /// The order the cart became, once completed.
    pub order_id: Option<Uuid>,
    pub source: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A partial cart update; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct CartPatch {
    pub email: Option<Email>,
    pub shipping_address: Option<Address>,
    /// A shipping rate id or `pickup`; checked against the cart's address.
    pub shipping_option: Option<String>,
    pub payment_method: Option<PaymentMethod>,
    pub customer_id: Option<Uuid>,
}

/// What placing an order needs besides the cart: who, and what the e-mails say.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    /// Who places it. A shopper's actor ([`Actor::is_shopper`]) takes its e-mail and
    /// customer from the cart, so the caller need not read the cart first.
    pub actor: Actor,
    /// `Idempotency-Key` (or the form's token) and a hash of the request.
    pub idempotency: Option<(String, String)>,
    /// The store's display name and public base URL (for the e-mails' links).
    pub store_name: String,
    pub store_url: String,
    /// Where the new-order notification goes.
    pub notify_to: Vec<String>,
    /// Whether the store can take card payments (Stripe configured).
    pub stripe_configured: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct CartRow {
    id: Uuid,
    status: String,
    currency: String,
    email: Option<String>,
    customer_id: Option<Uuid>,
    shipping_address: Option<String>,
    shipping_option: Option<String>,
    payment_method: Option<String>,
    payment_intent_id: Option<String>,
    discount_code: Option<String>,
    order_id: Option<Uuid>,
    source: String,
    channel_id: Option<Uuid>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct LineRow {
    id: Uuid,
    variant_id: Uuid,
    quantity: i64,
    unit_price_minor: i64,
    product_id: Option<Uuid>,
    sku: Option<String>,
    variant_title: Option<String>,
    price_minor: Option<i64>,
    currency: Option<String>,
    inventory: Option<i64>,
    inventory_tracked: Option<bool>,
    inventory_policy: Option<String>,
    product_title: Option<String>,
    handle: Option<String>,
    product_status: Option<String>,
    image_url: Option<String>,
}

// The stock columns are selected through these two expressions so that the catalog's
// inventory settings are read in one place.
const LINES_SQL: &str = "select l.id, l.variant_id, l.quantity, l.unit_price_minor,
        v.product_id, v.sku, v.title as variant_title, v.price_minor, v.currency, v.inventory,
        v.inventory_tracked, v.inventory_policy,
        p.title as product_title, p.handle, p.status as product_status,
        (select i.url from product_images i where i.tenant_id = l.tenant_id and i.product_id = v.product_id order by i.position limit 1) as image_url
     from cart_lines l
     left join variants v on v.tenant_id = l.tenant_id and v.id = l.variant_id
     left join products p on p.tenant_id = v.tenant_id and p.id = v.product_id
     where l.tenant_id = $1 and l.cart_id = $2 order by l.position, l.id";

/// A cart with one of its lines: the cart and its lines come in one statement
/// ([`CART_WITH_LINES_SQL`]), one row per line, a cart without lines as one row whose
/// `l_*` columns are null.
#[derive(Debug, sqlx::FromRow)]
struct CartLineRow {
    #[sqlx(flatten)]
    cart: CartRow,
    l_id: Option<Uuid>,
    l_variant_id: Option<Uuid>,
    l_quantity: Option<i64>,
    l_unit_price_minor: Option<i64>,
    product_id: Option<Uuid>,
    sku: Option<String>,
    variant_title: Option<String>,
    price_minor: Option<i64>,
    line_currency: Option<String>,
    inventory: Option<i64>,
    inventory_tracked: Option<bool>,
    inventory_policy: Option<String>,
    product_title: Option<String>,
    handle: Option<String>,
    product_status: Option<String>,
    image_url: Option<String>,
}

impl CartLineRow {
    fn split(self) -> (CartRow, Option<LineRow>) {
        let line = match (
            self.l_id,
            self.l_variant_id,
            self.l_quantity,
            self.l_unit_price_minor,
        ) {
            (Some(id), Some(variant_id), Some(quantity), Some(unit_price_minor)) => Some(LineRow {
                id,
                variant_id,
                quantity,
                unit_price_minor,
                product_id: self.product_id,
                sku: self.sku,
                variant_title: self.variant_title,
                price_minor: self.price_minor,
                currency: self.line_currency,
                inventory: self.inventory,
                inventory_tracked: self.inventory_tracked,
                inventory_policy: self.inventory_policy,
                product_title: self.product_title,
                handle: self.handle,
                product_status: self.product_status,
                image_url: self.image_url,
            }),
            _ => None,
        };
        (self.cart, line)
    }
}

/// The cart (every column of [`CartRow`]) and its lines as [`LINES_SQL`] reads them.
const CART_WITH_LINES_SQL: &str = "select c.id, c.status, c.currency, c.email, c.customer_id, c.shipping_address,
        c.shipping_option, c.payment_method, c.payment_intent_id, c.discount_code, c.order_id, c.source,
        c.channel_id, c.created_at, c.updated_at,
        l.id as l_id, l.variant_id as l_variant_id, l.quantity as l_quantity, l.unit_price_minor as l_unit_price_minor,
        v.product_id, v.sku, v.title as variant_title, v.price_minor, v.currency as line_currency, v.inventory,
        v.inventory_tracked, v.inventory_policy,
        p.title as product_title, p.handle, p.status as product_status,
        (select i.url from product_images i where i.tenant_id = l.tenant_id and i.product_id = v.product_id order by i.position limit 1) as image_url
     from carts c
     left join cart_lines l on l.tenant_id = c.tenant_id and l.cart_id = c.id
     left join variants v on v.tenant_id = l.tenant_id and v.id = l.variant_id
     left join products p on p.tenant_id = v.tenant_id and p.id = v.product_id
     where c.tenant_id = $1 and c.id = $2 order by l.position, l.id";

/// Whether `qty` units may be sold from a variant with this stock and settings.
fn stock_allows(inventory: i64, tracked: bool, policy: &str, qty: i64) -> bool {
    !tracked || policy == "continue" || inventory >= qty
}

impl LineRow {
    fn sellable(&self) -> bool {
        self.product_status.as_deref() == Some("active") && self.price_minor.is_some()
    }
    fn stock_ok(&self, qty: i64) -> bool {
        stock_allows(
            self.inventory.unwrap_or(0),
            self.inventory_tracked.unwrap_or(true),
            self.inventory_policy.as_deref().unwrap_or("deny"),
            qty,
        )
    }
    fn title(&self) -> String {
        match (&self.product_title, &self.variant_title) {
            (Some(p), Some(v)) if v != "Default" => format!("{p} - {v}"),
            (Some(p), _) => p.clone(),
            _ => "Unavailable item".to_string(),
        }
    }
}

/// A loaded cart before pricing.
struct Loaded {
    row: CartRow,
    lines: Vec<LineRow>,
    settings: CheckoutSettings,
    tax_bp: i64,
    shipping: Option<(String, String, i64, Option<i64>)>,
    discount: Option<DiscountRow>,
    discount_problem: Option<String>,
}

/// A priced cart plus what placing it needs.
struct Priced {
    cart: Cart,
    totals: pricing::Totals,
    /// Indexes into `lines` of the lines priced (the sellable ones), in order.
    priced_lines: Vec<usize>,
}

fn address_of(raw: &Option<String>) -> Option<Address> {
    raw.as_deref().and_then(|a| serde_json::from_str(a).ok())
}

/// The amount of today's date-bound check of a discount code: `Err(message)` when it does
/// not apply to a cart of `subtotal` now.
fn discount_problem(d: &DiscountRow, subtotal: i64, now: i64, currency: &str) -> Option<String> {
    if !d.active {
        return Some(format!("the code {} is not active", d.code));
    }
    if d.starts_at.is_some_and(|s| now < s) {
        return Some(format!("the code {} is not valid yet", d.code));
    }
    if d.ends_at.is_some_and(|e| now >= e) {
        return Some(format!("the code {} has expired", d.code));
    }
    if d.usage_limit.is_some_and(|l| d.used_count >= l) {
        return Some(format!("the code {} has reached its usage limit", d.code));
    }
    if subtotal < d.min_subtotal_minor {
        return Some(format!(
            "the code {} needs a subtotal of at least {}",
            d.code,
            MoneyDto::new(d.min_subtotal_minor, currency).formatted
        ));
    }
    None
}

impl TenantDb {
    /// Creates an empty open cart in the store currency, for a signed-in `customer` and
    /// with the shopper's `email` when they are known.
    pub async fn create_cart(
        &self,
        origin: &CartOrigin,
        currency: &str,
        customer: Option<Uuid>,
        email: Option<&Email>,
    ) -> StoreResult<Cart> {
        let id = Uuid::new_v4();
        let now = now_micros();
        let channel = self.checkout_config().await?.channel;
        let mut b = Batch::new();
        b.push(
            "insert into carts (id, tenant_id, channel_id, source, customer_id, email, currency, status, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $8)",
            vec![
                id.into(),
                self.tenant.into(),
                channel.into(),
                (&origin.source).into(),
                customer.into(),
                email.map(|e| e.as_str()).into(),
                currency.into(),
                now.into(),
            ],
        );
        b.run_each(self).await?;
        // The cart as written (no read back).
        let row = CartRow {
            id,
            status: "open".into(),
            currency: currency.to_string(),
            email: email.map(|e| e.as_str().to_string()),
            customer_id: customer,
            shipping_address: None,
            shipping_option: None,
            payment_method: None,
            payment_intent_id: None,
            discount_code: None,
            order_id: None,
            source: origin.source.clone(),
            channel_id: channel,
            created_at: now,
            updated_at: now,
        };
        let l = self.assemble(row, vec![]).await?;
        Ok(self.price_loaded(l).await?.cart)
    }

    async fn load_cart(&self, id: Uuid) -> StoreResult<Option<Loaded>> {
        let rows = crate::tenant_query!(self, read, p => sqlx::query_as::<_, CartLineRow>(CART_WITH_LINES_SQL)
            .bind(self.tenant)
            .bind(id)
            .fetch_all(p)
            .await)?;
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let (row, line) = first.split();
        let mut lines: Vec<LineRow> = line.into_iter().collect();
        lines.extend(rows.filter_map(|r| r.split().1));
        Ok(Some(self.assemble(row, lines).await?))
    }

    /// A cart row and its lines with what pricing needs: the store's settings, the tax
    /// rate of its address, its shipping option and discount code resolved.
    async fn assemble(&self, row: CartRow, lines: Vec<LineRow>) -> StoreResult<Loaded> {
        let config = self.checkout_config().await?;
        let settings = config.settings.clone();
        let address = address_of(&row.shipping_address);
        let tax_bp = address.as_ref().map_or(0, |a| config.tax_bp(a.country));
        let shipping = match row.shipping_option.as_deref() {
            Some(PICKUP) if settings.pickup => {
                Some((PICKUP.to_string(), "Pickup".to_string(), 0, None))
            }
            Some(rate) => match Uuid::parse_str(rate) {
                Ok(rid) => config.rate(rid).map(|r| {
                    (
                        r.id.to_string(),
                        r.name.clone(),
                        r.price_minor,
                        r.free_over_minor,
                    )
                }),
                Err(_) => None,
            },
            None => None,
        };
        let discount = match row.discount_code.as_deref() {
            Some(code) => self.discount_row_by_code(code).await?,
            None => None,
        };
        Ok(Loaded {
            row,
            lines,
            settings,
            tax_bp,
            shipping,
            discount_problem: None,
            discount,
        })
    }

    /// Per-customer uses of a discount code by `email` (orders not cancelled).
    async fn discount_uses_by(&self, code: &str, email: &str) -> StoreResult<i64> {
        Ok(crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select count(*) from orders where tenant_id = $1 and discount_code = $2 and email = $3 and status <> 'cancelled'",
        )
        .bind(self.tenant)
        .bind(code)
        .bind(email)
        .fetch_one(p)
        .await)?)
    }

    async fn price_loaded(&self, mut l: Loaded) -> StoreResult<Priced> {
        let cur = l.row.currency.clone();
        let mut changes = vec![];
        let mut priced_lines = vec![];
        let mut inputs = vec![];
        for (i, line) in l.lines.iter().enumerate() {
            if !line.sellable() || line.currency.as_deref() != Some(cur.as_str()) {
                changes.push(CartChange {
                    code: "unavailable".into(),
                    line_id: Some(line.id),
                    message: format!("{} is no longer available", line.title()),
                });
                continue;
            }
            let price = line.price_minor.unwrap_or(0);
            if price != line.unit_price_minor {
                changes.push(CartChange {
                    code: "price_changed".into(),
                    line_id: Some(line.id),
                    message: format!(
                        "the price of {} changed from {} to {}",
                        line.title(),
                        MoneyDto::new(line.unit_price_minor, &cur).formatted,
                        MoneyDto::new(price, &cur).formatted
                    ),
                });
            }
            if !line.stock_ok(line.quantity) {
                changes.push(CartChange {
                    code: "out_of_stock".into(),
                    line_id: Some(line.id),
                    message: format!(
                        "only {} of {} left in stock",
                        line.inventory.unwrap_or(0).max(0),
                        line.title()
                    ),
                });
            }
            priced_lines.push(i);
            inputs.push(LineIn {
                unit_price_minor: price,
                quantity: line.quantity,
            });
        }
        let subtotal: i64 = inputs.iter().map(|x| x.unit_price_minor * x.quantity).sum();
        let now = now_micros();
        let mut discount = None;
        if let Some(d) = &l.discount {
            let mut problem = discount_problem(d, subtotal, now, &cur);
            if problem.is_none()
                && let (Some(limit), Some(email)) = (d.per_customer_limit, l.row.email.as_deref())
                && self.discount_uses_by(&d.code, email).await? >= limit
            {
                problem = Some(format!("the code {} was already used by {email}", d.code));
            }
            match problem {
                None => discount = Some(d.value()),
                Some(p) => {
                    l.discount_problem = Some(p.clone());
                    changes.push(CartChange {
                        code: "discount_invalid".into(),
                        line_id: None,
                        message: p,
                    });
                }
            }
        } else if l.row.discount_code.is_some() {
            changes.push(CartChange {
                code: "discount_invalid".into(),
                line_id: None,
                message: "the discount code no longer exists".into(),
            });
        }
        let totals = pricing::price(
            &inputs,
            &PricingInput {
                discount,
                shipping: l.shipping.as_ref().map(|s| (s.2, s.3)),
                tax_rate_bp: l.tax_bp,
                prices_include_tax: l.settings.prices_include_tax,
            },
        );
        let m = |v: i64| MoneyDto::new(v, &cur);
        let mut lines = vec![];
        let mut priced_iter = priced_lines.iter().zip(&totals.lines).peekable();
        for (i, line) in l.lines.iter().enumerate() {
            let out = match priced_iter.peek() {
                Some((pi, _)) if **pi == i => priced_iter.next().map(|(_, o)| *o),
                _ => None,
            };
            let out = out.unwrap_or_default();
            lines.push(CartLine {
                id: line.id,
                variant_id: line.variant_id,
                product_id: line.product_id,
                product_handle: line.handle.clone(),
                product_title: line
                    .product_title
                    .clone()
                    .unwrap_or_else(|| "Unavailable item".into()),
                variant_title: line.variant_title.clone().unwrap_or_default(),
                sku: line.sku.clone(),
                image_url: line.image_url.clone(),
                quantity: line.quantity,
                unit_price: m(line.price_minor.unwrap_or(line.unit_price_minor)),
                subtotal: m(out.subtotal_minor),
                discount: m(out.discount_minor),
                tax: m(out.tax_minor),
                total: m(out.total_minor),
                available: line.sellable() && line.stock_ok(line.quantity),
            });
        }
        let r = &l.row;
        let cart = Cart {
            id: r.id,
            status: r.status.clone(),
            currency: cur.clone(),
            email: r.email.clone(),
            customer_id: r.customer_id,
            shipping_address: address_of(&r.shipping_address),
            shipping_option: l.shipping.as_ref().map(|s| s.0.clone()),
            shipping_option_name: l.shipping.as_ref().map(|s| s.1.clone()),
            payment_method: r
                .payment_method
                .as_deref()
                .and_then(|p| PaymentMethod::parse(p).ok()),
            payment_intent_id: r.payment_intent_id.clone(),
            discount_code: r.discount_code.clone(),
            item_count: l.lines.iter().map(|x| x.quantity).sum(),
            lines,
            totals: CartTotals {
                subtotal: m(totals.subtotal_minor),
                discount: m(totals.discount_minor),
                shipping: m(totals.shipping_minor),
                tax: m(totals.tax_minor),
                total: m(totals.total_minor),
                prices_include_tax: l.settings.prices_include_tax,
            },
            changes,
            order_id: r.order_id,
            source: r.source.clone(),
            created_at: micros_to_rfc3339(r.created_at),
            updated_at: micros_to_rfc3339(r.updated_at),
        };
        Ok(Priced {
            cart,
            totals,
            priced_lines,
        })
    }

    /// A cart of this store, priced now. `None` when it does not exist *in this store*.
    pub async fn cart(&self, id: Uuid) -> StoreResult<Option<Cart>> {
        match self.load_cart(id).await? {
            Some(l) => Ok(Some(self.price_loaded(l).await?.cart)),
            None => Ok(None),
        }
    }

    async fn open_cart(&self, id: Uuid) -> Result<Loaded, CheckoutError> {
        let l = self
            .load_cart(id)
            .await?
            .ok_or(CheckoutError::NotFound("cart"))?;
        if l.row.status != "open" {
            return Err(completed(l.row.order_id));
        }
        Ok(l)
    }

    /// The cart after a change of its lines: the lines read again, the rest of the loaded
    /// cart (row, settings, rates, discount) kept, priced now.
    async fn refreshed(&self, mut l: Loaded) -> Result<Cart, CheckoutError> {
        let id = l.row.id;
        l.lines = crate::tenant_query!(self, read, p => sqlx::query_as::<_, LineRow>(LINES_SQL)
            .bind(self.tenant)
            .bind(id)
            .fetch_all(p)
            .await)?;
        l.row.updated_at = now_micros();
        Ok(self.price_loaded(l).await?.cart)
    }

    /// Stamps the cart's `updated_at`, in the transaction of its line change (one turn on
    /// SQLite's single writer for the change and the stamp).
    async fn touch_tx(&self, tx: &mut Tx, id: Uuid) -> StoreResult<()> {
        exec_tx!(tx, c => sqlx::query("update carts set updated_at = $3 where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(id)
            .bind(now_micros())
            .execute(&mut **c)
            .await)?;
        Ok(())
    }

    /// Adds `quantity` of a variant (to its line, if the cart has one).
    /// Errors: `Invalid` for a quantity outside 1..=10000 (the line's new total too), a
    /// variant not in this store (`variant_id`, `unknown_variant`), a product that is not
    /// active (`product_unavailable`), too little stock (`out_of_stock`), too many lines;
    /// `Conflict cart_completed`; `NotFound("cart")`.
    pub async fn add_to_cart(
        &self,
        cart_id: Uuid,
        variant_id: Uuid,
        quantity: i64,
    ) -> Result<Cart, CheckoutError> {
        check_quantity(quantity)?;
        let l = self.open_cart(cart_id).await?;
        let existing = l.lines.iter().find(|x| x.variant_id == variant_id);
        let new_qty = existing.map_or(0, |x| x.quantity) + quantity;
        if new_qty > MAX_QUANTITY {
            return Err(invalid(
                "quantity",
                "invalid_quantity",
                format!(
                    "a line holds at most {MAX_QUANTITY} units (the cart has {} already)",
                    new_qty - quantity
                ),
            ));
        }
        if existing.is_none() && l.lines.len() >= MAX_CART_LINES {
            return Err(invalid(
                "variant_id",
                "too_many_lines",
                format!("a cart holds at most {MAX_CART_LINES} lines"),
            ));
        }
        let v = self.sellable_variant(variant_id, &l.row.currency).await?;
        if !stock_allows(
            v.inventory,
            v.inventory_tracked,
            &v.inventory_policy,
            new_qty,
        ) {
            return Err(out_of_stock_invalid(&v.title, v.inventory));
        }
        let now = now_micros();
        let line_id = new_id();
        // One round trip to the writer: the cart's stamp, only while it is open, then the
        // line, under the same guard. On SQLite each statement commits on its own, so the
        // line comes last: a failure leaves at most a new stamp, never a line the shopper
        // was told failed (and would add again).
        let mut b = Batch::new();
        b.push(
            "update carts set updated_at = $3 where tenant_id = $1 and id = $2 and status = 'open'",
            vec![self.tenant.into(), cart_id.into(), now.into()],
        );
        b.push(
            "insert into cart_lines (id, tenant_id, cart_id, variant_id, quantity, unit_price_minor, position, created_at)
             select $1, $2, $3, $4, $5, $6, (select coalesce(max(position), -1) + 1 from cart_lines where tenant_id = $2 and cart_id = $3), $7
             where exists (select 1 from carts where tenant_id = $2 and id = $3 and status = 'open')
             on conflict (cart_id, variant_id) do update set quantity = cart_lines.quantity + excluded.quantity,
                unit_price_minor = excluded.unit_price_minor",
            vec![
                line_id.into(),
                self.tenant.into(),
                cart_id.into(),
                variant_id.into(),
                quantity.into(),
                v.price_minor.into(),
                now.into(),
            ],
        );
        let out = b.run_each(self).await?;
        if out.get(1).map_or(0, |o| o.count()) == 0 {
            return Err(completed(self.cart_order(cart_id).await?.map(|o| o.id)));
        }
        // The cart as loaded plus this change (no second read): the line takes the
        // variant's current data.
        let mut l = l;
        let fresh = LineRow {
            id: line_id,
            variant_id,
            quantity,
            unit_price_minor: v.price_minor,
            product_id: Some(v.product_id),
            sku: v.sku,
            variant_title: Some(v.variant_title),
            price_minor: Some(v.price_minor),
            currency: Some(v.currency),
            inventory: Some(v.inventory),
            inventory_tracked: Some(v.inventory_tracked),
            inventory_policy: Some(v.inventory_policy),
            product_title: Some(v.product_title),
            handle: Some(v.handle),
            product_status: Some(v.status),
            image_url: v.image_url,
        };
        match l.lines.iter_mut().find(|x| x.variant_id == variant_id) {
            Some(line) => {
                *line = LineRow {
                    id: line.id,
                    quantity: line.quantity + quantity,
                    ..fresh
                }
            }
            None => l.lines.push(fresh),
        }
        l.row.updated_at = now;
        Ok(self.price_loaded(l).await?.cart)
    }

    /// Sets a line's quantity (1..=10000; remove a line with [`Self::remove_cart_line`]).
    /// Errors as [`Self::add_to_cart`], `NotFound("line")`.
    pub async fn update_cart_line(
        &self,
        cart_id: Uuid,
        line_id: Uuid,
        quantity: i64,
    ) -> Result<Cart, CheckoutError> {
        check_quantity(quantity)?;
        let l = self.open_cart(cart_id).await?;
        let line = l
            .lines
            .iter()
            .find(|x| x.id == line_id)
            .ok_or(CheckoutError::NotFound("line"))?;
        if quantity > line.quantity && line.sellable() && !line.stock_ok(quantity) {
            return Err(out_of_stock_invalid(
                &line.title(),
                line.inventory.unwrap_or(0),
            ));
        }
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "update cart_lines set quantity = $4, unit_price_minor = coalesce((select price_minor from variants where tenant_id = $1 and id = cart_lines.variant_id), unit_price_minor)
             where tenant_id = $1 and cart_id = $2 and id = $3",
        )
        .bind(self.tenant)
        .bind(cart_id)
        .bind(line_id)
        .bind(quantity)
        .execute(&mut **c)
        .await)?;
        self.touch_tx(&mut tx, cart_id).await?;
        tx.commit().await?;
        self.refreshed(l).await
    }

    /// Removes a line. Errors: `NotFound("line")`, `NotFound("cart")`, `Conflict cart_completed`.
    pub async fn remove_cart_line(
        &self,
        cart_id: Uuid,
        line_id: Uuid,
    ) -> Result<Cart, CheckoutError> {
        let l = self.open_cart(cart_id).await?;
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query("delete from cart_lines where tenant_id = $1 and cart_id = $2 and id = $3")
            .bind(self.tenant)
            .bind(cart_id)
            .bind(line_id)
            .execute(&mut **c)
            .await)?;
        if n == 0 {
            return Err(CheckoutError::NotFound("line"));
        }
        self.touch_tx(&mut tx, cart_id).await?;
        tx.commit().await?;
        self.refreshed(l).await
    }

    /// Applies a discount code (any case). Errors: `Invalid discount_code` with
    /// `unknown_discount` or `discount_invalid` (expired, not started, over its usage
    /// limit, below its minimum subtotal, already used by this e-mail).
    pub async fn apply_discount(&self, cart_id: Uuid, code: &str) -> Result<Cart, CheckoutError> {
        let l = self.open_cart(cart_id).await?;
        let d = self.discount_row_by_code(code).await?.ok_or_else(|| {
            invalid(
                "discount_code",
                "unknown_discount",
                format!("the discount code '{}' does not exist", code.trim()),
            )
        })?;
        let priced = self.price_loaded(l).await?;
        let subtotal = priced.totals.subtotal_minor;
        if let Some(p) = discount_problem(&d, subtotal, now_micros(), &priced.cart.currency) {
            return Err(invalid("discount_code", "discount_invalid", p));
        }
        if let (Some(limit), Some(email)) = (d.per_customer_limit, priced.cart.email.as_deref())
            && self.discount_uses_by(&d.code, email).await? >= limit
        {
            return Err(invalid(
                "discount_code",
                "discount_invalid",
                format!("the code {} was already used by {email}", d.code),
            ));
        }
        self.set_cart_discount(cart_id, Some(&d.code)).await?;
        self.cart(cart_id)
            .await?
            .ok_or(CheckoutError::NotFound("cart"))
    }

    /// Removes the cart's discount code.
    pub async fn remove_discount(&self, cart_id: Uuid) -> Result<Cart, CheckoutError> {
        self.open_cart(cart_id).await?;
        self.set_cart_discount(cart_id, None).await?;
        self.cart(cart_id)
            .await?
            .ok_or(CheckoutError::NotFound("cart"))
    }

    async fn set_cart_discount(&self, cart_id: Uuid, code: Option<&str>) -> StoreResult<()> {
        crate::tenant_exec!(self, c => sqlx::query("update carts set discount_code = $3, updated_at = $4 where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(cart_id)
            .bind(code)
            .bind(now_micros())
            .execute(c)
            .await)?;
        Ok(())
    }

    /// The shipping options for the cart's address (pickup when the store offers it, even
    /// without an address). Errors: `NotFound("cart")`.
    pub async fn shipping_options(
        &self,
        cart_id: Uuid,
    ) -> Result<Vec<ShippingOption>, CheckoutError> {
        let l = self
            .load_cart(cart_id)
            .await?
            .ok_or(CheckoutError::NotFound("cart"))?;
        let cur = l.row.currency.clone();
        let address = address_of(&l.row.shipping_address);
        let pickup = l.settings.pickup;
        let priced = self.price_loaded(l).await?;
        let discounted = priced.totals.subtotal_minor - priced.totals.discount_minor;
        let mut out = vec![];
        if let Some(a) = address {
            for r in self.shipping_rates_for(a.country).await? {
                let free = r.free_over_minor.is_some_and(|f| discounted >= f);
                out.push(ShippingOption {
                    id: r.id.to_string(),
                    name: r.name,
                    price: MoneyDto::new(if free { 0 } else { r.price_minor }, &cur),
                    free_over: r.free_over_minor.map(|f| MoneyDto::new(f, &cur)),
                });
            }
        }
        if pickup {
            out.push(ShippingOption {
                id: PICKUP.into(),
                name: "Pickup".into(),
                price: MoneyDto::new(0, &cur),
                free_over: None,
            });
        }
        Ok(out)
    }

    /// Updates e-mail, shipping address, shipping option, payment method or customer.
    /// Errors: `Invalid` for a country the store does not ship to
    /// (`shipping_address.country`, `country_not_served`), an option not offered for the
    /// address (`shipping_option`, `shipping_option_unavailable`), a payment method the
    /// store does not offer (`payment_method`, `payment_method_unavailable`);
    /// `Conflict cart_completed`; `NotFound("cart")`.
    pub async fn update_cart(
        &self,
        cart_id: Uuid,
        patch: &CartPatch,
        stripe_configured: bool,
    ) -> Result<Cart, CheckoutError> {
        let l = self.open_cart(cart_id).await?;
        let address = patch
            .shipping_address
            .clone()
            .or_else(|| address_of(&l.row.shipping_address));
        if let Some(a) = &patch.shipping_address
            && !self.ships_to(a.country).await?
        {
            return Err(invalid(
                "shipping_address.country",
                "country_not_served",
                format!("this store does not ship to {}", a.country),
            ));
        }
        // A new address may invalidate the chosen option: keep it only if still offered.
        let mut option = patch
            .shipping_option
            .clone()
            .or(l.row.shipping_option.clone());
        if let Some(o) = option.clone() {
            let ok = if o == PICKUP {
                l.settings.pickup
            } else {
                match (Uuid::parse_str(&o), &address) {
                    (Ok(rid), Some(a)) => self
                        .shipping_rates_for(a.country)
                        .await?
                        .iter()
                        .any(|r| r.id == rid),
                    _ => false,
                }
            };
            if !ok {
                if patch.shipping_option.is_some() {
                    return Err(invalid(
                        "shipping_option",
                        "shipping_option_unavailable",
                        match &address {
                            Some(a) => {
                                format!("shipping option '{o}' is not offered for {}", a.country)
                            }
                            None => format!("shipping option '{o}' needs a shipping address first"),
                        },
                    ));
                }
                option = None;
            }
        }
        if let Some(m) = patch.payment_method
            && !m.enabled(&l.settings, stripe_configured)
        {
            return Err(invalid(
                "payment_method",
                "payment_method_unavailable",
                format!("this store does not offer {}", m.label().to_lowercase()),
            ));
        }
        let now = now_micros();
        let mut b = Batch::new();
        b.push(
            "update carts set email = coalesce($3, email), shipping_address = coalesce($4, shipping_address), shipping_option = $5,
                payment_method = coalesce($6, payment_method), customer_id = coalesce($7, customer_id), updated_at = $8
             where tenant_id = $1 and id = $2 and status = 'open'",
            vec![
                self.tenant.into(),
                cart_id.into(),
                patch.email.as_ref().map(|e| e.as_str()).into(),
                patch.shipping_address.as_ref().map(to_json).into(),
                option.clone().into(),
                patch.payment_method.map(|m| m.as_str()).into(),
                patch.customer_id.into(),
                now.into(),
            ],
        );
        if b.run_each(self).await?.first().map_or(0, |o| o.count()) == 0 {
            return Err(completed(self.cart_order(cart_id).await?.map(|o| o.id)));
        }
        // The cart as loaded with this change applied (no read back).
        let mut row = l.row;
        if let Some(e) = &patch.email {
            row.email = Some(e.as_str().to_string());
        }
        if let Some(a) = &patch.shipping_address {
            row.shipping_address = Some(to_json(a));
        }
        row.shipping_option = option;
        if let Some(m) = patch.payment_method {
            row.payment_method = Some(m.as_str().to_string());
        }
        row.customer_id = patch.customer_id.or(row.customer_id);
        row.updated_at = now;
        let l = self.assemble(row, l.lines).await?;
        Ok(self.price_loaded(l).await?.cart)
    }

    /// Remembers the Stripe PaymentIntent made for this cart.
    pub async fn set_cart_payment_intent(&self, cart_id: Uuid, intent: &str) -> StoreResult<()> {
        crate::tenant_exec!(self, c => sqlx::query("update carts set payment_intent_id = $3, payment_method = 'card', updated_at = $4 where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(cart_id)
            .bind(intent)
            .bind(now_micros())
            .execute(c)
            .await)?;
        Ok(())
    }

    /// Confirms today's prices on every line (after the shopper saw `changes`).
    async fn confirm_prices(&self, cart_id: Uuid) -> StoreResult<()> {
        crate::tenant_exec!(self, c => sqlx::query(
            "update cart_lines set unit_price_minor = coalesce((select price_minor from variants where tenant_id = $1 and id = cart_lines.variant_id), unit_price_minor)
             where tenant_id = $1 and cart_id = $2",
        )
        .bind(self.tenant)
        .bind(cart_id)
        .execute(c)
        .await)?;
        Ok(())
    }

    /// The order a completed cart became (the order a retried checkout returns).
    pub async fn cart_order(&self, cart_id: Uuid) -> StoreResult<Option<Order>> {
        let id: Option<Option<Uuid>> = crate::tenant_query!(self, read, p => sqlx::query_scalar("select order_id from carts where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(cart_id)
            .fetch_optional(p)
            .await)?;
        match id.flatten() {
            Some(o) => self.get_order(o).await,
            None => Ok(None),
        }
    }

    async fn idempotent_order(
        &self,
        key: &str,
        hash: &str,
    ) -> Result<Option<Order>, CheckoutError> {
        let row: Option<(String, Option<Uuid>)> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select request_hash, order_id from idempotency_keys where tenant_id = $1 and key = $2",
        )
        .bind(self.tenant)
        .bind(key)
        .fetch_optional(p)
        .await)?;
        match row {
            None => Ok(None),
            Some((h, _)) if h != hash => Err(invalid(
                "Idempotency-Key",
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )),
            Some((_, Some(order))) => Ok(self.get_order(order).await?),
            Some((_, None)) => Ok(None),
        }
    }

    /// Places the order: validates the cart, takes the stock, counts the discount use,
    /// links or creates the customer by e-mail, writes the order with line snapshots, its
    /// audit entry, `order.created` event and e-mail jobs (confirmation to the shopper,
    /// notification to the store), all in one transaction. Returns the order, and whether
    /// it was created now (`false`: an idempotent repeat).
    ///
    /// Errors: `Invalid` for a missing e-mail (`email`), address (`shipping_address`),
    /// shipping option (`shipping_option`), payment method (`payment_method`), an empty
    /// cart (`lines`), a reused idempotency key; `Conflict` `cart_completed` (details:
    /// `order_id`), `cart_changed` (details: `changes`; the cart's prices are confirmed
    /// so the next attempt may pass), `out_of_stock`, `discount_invalid`.
    pub async fn place_order(
        &self,
        cart_id: Uuid,
        ctx: &PlaceOrder,
    ) -> Result<(Order, bool), CheckoutError> {
        if let Some((key, hash)) = &ctx.idempotency
            && let Some(o) = self.idempotent_order(key, hash).await?
        {
            return Ok((o, false));
        }
        let l = self
            .load_cart(cart_id)
            .await?
            .ok_or(CheckoutError::NotFound("cart"))?;
        if l.row.status != "open" {
            return Err(completed(l.row.order_id));
        }
        let settings = l.settings.clone();
        let discount_row = l.discount.clone();
        let lines_rows = l.lines.clone();
        let channel = l.row.channel_id;
        let priced = self.price_loaded(l).await?;
        let cart = &priced.cart;
        if cart.lines.is_empty() {
            return Err(invalid("lines", "cart_empty", "the cart is empty"));
        }
        let email = cart.email.clone().ok_or_else(|| {
            invalid(
                "email",
                "required",
                "an e-mail address is required to place the order",
            )
        })?;
        let shipping = cart
            .shipping_option
            .clone()
            .ok_or_else(|| invalid("shipping_option", "required", "choose a shipping option"))?;
        if shipping != PICKUP && cart.shipping_address.is_none() {
            return Err(invalid(
                "shipping_address",
                "required",
                "a shipping address is required",
            ));
        }
        let method = cart
            .payment_method
            .ok_or_else(|| invalid("payment_method", "required", "choose a payment method"))?;
        if !method.enabled(&settings, ctx.stripe_configured) {
            return Err(invalid(
                "payment_method",
                "payment_method_unavailable",
                format!(
                    "this store does not offer {}",
                    method.label().to_lowercase()
                ),
            ));
        }
        if !cart.changes.is_empty() {
            let price_only = cart.changes.iter().all(|c| c.code == "price_changed");
            if price_only {
                self.confirm_prices(cart_id).await?;
            }
            return Err(CheckoutError::Conflict {
                code: "cart_changed",
                message: format!(
                    "the cart changed since it was filled: {}",
                    cart.changes
                        .iter()
                        .map(|c| c.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                details: json!({ "changes": cart.changes }),
            });
        }

        let actor = if ctx.actor.is_shopper() {
            Actor::shopper(
                cart.email.as_deref(),
                cart.customer_id,
                ctx.actor.ip.clone(),
            )
        } else {
            ctx.actor.clone()
        };
        let mut tx = self.begin().await?;
        let now = now_micros();
        // First batch (one round trip on SQLite): the guest's customer record, the cart
        // becoming this order exactly once (attached to that customer), one guarded
        // statement per line that takes the stock only if the price is the one the
        // shopper saw and the product is still active, the discount's use, the order
        // number. A guard that took nothing rolls the whole transaction back below.
        let order_id = new_id();
        let mut first = Batch::new();
        let guest = cart.customer_id.is_none();
        if guest {
            first.push_returning(
                "insert into customers (id, tenant_id, email, first_name, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)
                 on conflict (tenant_id, email) do update set updated_at = excluded.updated_at returning id",
                vec![
                    new_id().into(),
                    self.tenant.into(),
                    (&email).into(),
                    cart.shipping_address.as_ref().map(|a| a.name.clone()).into(),
                    now.into(),
                ],
                Returns::Uuid,
            );
        }
        first.push(
            "update carts set status = 'completed', order_id = $3, updated_at = $4,
                customer_id = coalesce(customer_id, (select id from customers where tenant_id = $1 and email = $5))
             where tenant_id = $1 and id = $2 and status = 'open'",
            vec![
                self.tenant.into(),
                cart_id.into(),
                order_id.into(),
                now.into(),
                (&email).into(),
            ],
        );
        for &i in &priced.priced_lines {
            let line = &lines_rows[i];
            first.push(
                "update variants set inventory = inventory - $3
                 where tenant_id = $1 and id = $2 and price_minor = $4
                   and (inventory_tracked = false or inventory_policy = 'continue' or inventory >= $3)
                   and exists (select 1 from products p where p.tenant_id = variants.tenant_id and p.id = variants.product_id and p.status = 'active')",
                vec![
                    self.tenant.into(),
                    line.variant_id.into(),
                    line.quantity.into(),
                    line.price_minor.into(),
                ],
            );
        }
        if let Some(d) = &discount_row {
            first.push(
                "update discount_codes set used_count = used_count + 1, updated_at = $3
                 where tenant_id = $1 and id = $2 and active and (usage_limit is null or used_count < usage_limit)",
                vec![self.tenant.into(), d.id.into(), now.into()],
            );
        }
        first.push_returning(
            super::orders::NEXT_NUMBER_SQL,
            vec![
                self.tenant.into(),
                "order".into(),
                FIRST_ORDER_NUMBER.into(),
            ],
            Returns::Int,
        );
        let mut out = first.run(&mut tx).await?.into_iter();
        let mut next = || {
            out.next()
                .ok_or_else(|| StoreError::Corrupt("a batch result is missing".into()))
        };
        let customer_id = match cart.customer_id {
            Some(c) => c,
            None => next()?
                .uuid()
                .ok_or_else(|| StoreError::Corrupt("the customer upsert returned no id".into()))?,
        };
        if next()?.count() == 0 {
            drop(tx);
            if let Some((key, hash)) = &ctx.idempotency
                && let Some(o) = self.idempotent_order(key, hash).await?
            {
                return Ok((o, false));
            }
            return Err(completed(self.cart_order(cart_id).await?.map(|o| o.id)));
        }
        // When a line took nothing, a read says whether its price or its stock changed.
        for &i in &priced.priced_lines {
            let line = &lines_rows[i];
            if next()?.count() == 1 {
                continue;
            }
            let price: Option<i64> = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
                "select v.price_minor from variants v join products p on p.tenant_id = v.tenant_id and p.id = v.product_id
                 where v.tenant_id = $1 and v.id = $2 and p.status = 'active'",
            )
            .bind(self.tenant)
            .bind(line.variant_id)
            .fetch_optional(&mut **c)
            .await)?;
            if price != line.price_minor {
                return Err(CheckoutError::Conflict {
                    code: "cart_changed",
                    message: format!(
                        "{} changed while the order was placed; please review the cart",
                        line.title()
                    ),
                    details: json!({ "line_id": line.id }),
                });
            }
            return Err(CheckoutError::Conflict {
                code: "out_of_stock",
                message: format!("{} sold out while the order was placed", line.title()),
                details: json!({ "line_id": line.id, "variant_id": line.variant_id }),
            });
        }
        if let Some(d) = &discount_row
            && next()?.count() == 0
        {
            return Err(CheckoutError::Conflict {
                code: "discount_invalid",
                message: format!(
                    "the code {} reached its usage limit while the order was placed",
                    d.code
                ),
                details: json!({ "discount_code": d.code }),
            });
        }
        let number = next()?
            .int()
            .ok_or_else(|| StoreError::Corrupt("the order counter returned no value".into()))?;
        let t = &priced.totals;
        // The order and its line snapshots are written from these rows, and the order
        // returned (and put in its event and e-mails) is assembled from the same rows,
        // as a read would (the columns not set here start at 0 / null).
        let row = OrderRow {
            id: order_id,
            number,
            email: Some(email.clone()),
            customer_name: cart.shipping_address.as_ref().map(|a| a.name.clone()),
            currency: cart.currency.clone(),
            status: OrderStatus::Open.as_str().into(),
            financial_status: FinancialStatus::of(0, t.total_minor).as_str().into(),
            fulfillment_status: FulfillmentStatus::Unfulfilled.as_str().into(),
            subtotal_minor: t.subtotal_minor,
            total_minor: t.total_minor,
            paid_minor: 0,
            note: None,
            created_at: now,
            updated_at: now,
            customer_id: Some(customer_id),
            channel_id: channel,
            source: Some(cart.source.clone()),
            discount_minor: t.discount_minor,
            shipping_minor: t.shipping_minor,
            tax_minor: t.tax_minor,
            refunded_minor: 0,
            prices_include_tax: settings.prices_include_tax,
            shipping_address: cart.shipping_address.as_ref().map(to_json),
            shipping_method: cart.shipping_option_name.clone(),
            payment_method: Some(method.as_str().into()),
            payment_intent_id: cart.payment_intent_id.clone(),
            discount_code: cart
                .discount_code
                .clone()
                .filter(|_| discount_row.is_some()),
        };
        let line_rows: Vec<LineItemRow> = priced
            .priced_lines
            .iter()
            .zip(&t.lines)
            .enumerate()
            .map(|(pos, (&i, out))| {
                let line = &lines_rows[i];
                LineItemRow {
                    id: new_id(),
                    order_id,
                    variant_id: Some(line.variant_id),
                    product_id: line.product_id,
                    sku: line.sku.clone(),
                    title: line.title(),
                    quantity: line.quantity,
                    unit_price_minor: line.price_minor.unwrap_or(0),
                    total_minor: out.total_minor,
                    position: pos as i64,
                    variant_title: line.variant_title.clone(),
                    discount_minor: out.discount_minor,
                    tax_minor: out.tax_minor,
                    fulfilled_quantity: 0,
                }
            })
            .collect();
        // Second batch: the order, its line snapshots, the idempotency key, the audit
        // entry, the `order.created` event and the e-mails, then the commit.
        let mut second = Batch::new();
        second.push(
            "insert into orders (id, tenant_id, number, email, customer_name, currency, status, financial_status, fulfillment_status,
                subtotal_minor, total_minor, paid_minor, note, created_at, updated_at,
                customer_id, channel_id, source, cart_id, discount_minor, shipping_minor, tax_minor, prices_include_tax,
                shipping_address, shipping_method, payment_method, payment_intent_id, discount_code, refunded_minor)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)",
            vec![
                row.id.into(),
                self.tenant.into(),
                row.number.into(),
                (&row.email).into(),
                (&row.customer_name).into(),
                (&row.currency).into(),
                (&row.status).into(),
                (&row.financial_status).into(),
                (&row.fulfillment_status).into(),
                row.subtotal_minor.into(),
                row.total_minor.into(),
                row.paid_minor.into(),
                (&row.note).into(),
                row.created_at.into(),
                row.updated_at.into(),
                row.customer_id.into(),
                row.channel_id.into(),
                (&row.source).into(),
                cart_id.into(),
                row.discount_minor.into(),
                row.shipping_minor.into(),
                row.tax_minor.into(),
                row.prices_include_tax.into(),
                (&row.shipping_address).into(),
                (&row.shipping_method).into(),
                (&row.payment_method).into(),
                (&row.payment_intent_id).into(),
                (&row.discount_code).into(),
                row.refunded_minor.into(),
            ],
        );
        // The order's line snapshots, in one statement (a placed cart has a priced line).
        let mut sql = String::from(
            "insert into order_line_items (id, tenant_id, order_id, variant_id, product_id, sku, title, quantity, unit_price_minor, total_minor, position,
                variant_title, discount_minor, tax_minor, fulfilled_quantity) values ",
        );
        let mut args = Vec::with_capacity(line_rows.len() * 15);
        for (i, l) in line_rows.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = i * 15;
            sql.push('(');
            sql.push_str(
                &(1..=15)
                    .map(|k| format!("${}", n + k))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            sql.push(')');
            args.extend([
                l.id.into(),
                self.tenant.into(),
                l.order_id.into(),
                l.variant_id.into(),
                l.product_id.into(),
                (&l.sku).into(),
                (&l.title).into(),
                l.quantity.into(),
                l.unit_price_minor.into(),
                l.total_minor.into(),
                l.position.into(),
                (&l.variant_title).into(),
                l.discount_minor.into(),
                l.tax_minor.into(),
                l.fulfilled_quantity.into(),
            ]);
        }
        second.push(sql, args);
        if let Some((key, hash)) = &ctx.idempotency {
            second.push(
                "insert into idempotency_keys (tenant_id, key, request_hash, order_id, created_at) values ($1, $2, $3, $4, $5)",
                vec![
                    self.tenant.into(),
                    key.into(),
                    hash.into(),
                    order_id.into(),
                    now.into(),
                ],
            );
        }
        let order = assemble_orders(vec![row], line_rows)?
            .pop()
            .ok_or(StoreError::NotFound)?;
        audit::record_into(
            &mut second,
            Some(self.tenant),
            &actor,
            Change::new("order.created", "order", order_id).after(order_summary(&order)),
        );
        let payload = serde_json::to_value(&order)
            .map_err(|e| StoreError::Corrupt(format!("event payload of order.created: {e}")))?;
        events::emit_into(&mut second, Some(self.tenant), "order.created", &payload);
        let instructions =
            (method == PaymentMethod::BankTransfer).then_some(settings.bank_instructions.as_str());
        let confirmation = order_confirmation_mail(&order, ctx, instructions);
        // The shopper's confirmation and the team's notifications: one insert.
        let mut mails = vec![(format!("order-confirmation:{order_id}"), confirmation)];
        for (i, to) in ctx.notify_to.iter().enumerate() {
            mails.push((
                format!("order-notification:{order_id}:{i}"),
                new_order_notification(&order, ctx, to),
            ));
        }
        let jobs: Vec<NewJob> = mails.iter().map(|(key, m)| self.mail_job(key, m)).collect();
        jobs::enqueue_many_into(&mut second, &jobs);
        second.run(&mut tx).await?;
        tx.commit().await?;
        Ok((order, true))
    }

    /// Enqueues an e-mail job (deduplicated by `key`) in `tx`.
    pub(crate) async fn enqueue_mail(
        &self,
        tx: &mut Tx,
        key: &str,
        m: &EmailMessage,
    ) -> StoreResult<()> {
        jobs::enqueue_tx(tx, self.mail_job(key, m)).await?;
        Ok(())
    }

    /// The durable job that sends `m` (deduplicated by `key` within the tenant).
    fn mail_job(&self, key: &str, m: &EmailMessage) -> NewJob<'static> {
        NewJob {
            kind: "email",
            tenant_id: Some(self.tenant),
            payload: to_json(m),
            dedupe_key: Some(format!("{}:{key}", self.tenant)),
            max_attempts: 8,
        }
    }

    async fn sellable_variant(
        &self,
        id: Uuid,
        currency: &str,
    ) -> Result<SellableVariant, CheckoutError> {
        let row: Option<SellableVariant> = crate::tenant_query!(self, read, p => sqlx::query_as::<_, SellableVariant>(
            "select v.price_minor, v.currency, v.inventory, v.inventory_tracked, v.inventory_policy, p.status,
                case when v.title = 'Default' then p.title else p.title || ' - ' || v.title end as title,
                v.product_id, v.sku, v.title as variant_title, p.title as product_title, p.handle,
                (select i.url from product_images i where i.tenant_id = v.tenant_id and i.product_id = v.product_id order by i.position limit 1) as image_url
             from variants v join products p on p.tenant_id = v.tenant_id and p.id = v.product_id
             where v.tenant_id = $1 and v.id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        let v = row.ok_or_else(|| {
            invalid(
                "variant_id",
                "unknown_variant",
                format!("variant {id} is not in this store's catalog"),
            )
        })?;
        if v.status != "active" {
            return Err(invalid(
                "variant_id",
                "product_unavailable",
                format!("{} is not for sale ({})", v.title, v.status),
            ));
        }
        if v.currency != currency {
            return Err(invalid(
                "variant_id",
                "currency_mismatch",
                format!(
                    "{} is priced in {}, the cart is in {currency}",
                    v.title, v.currency
                ),
            ));
        }
        Ok(v)
    }
}

#[derive(Debug, sqlx::FromRow)]
struct SellableVariant {
    price_minor: i64,
    currency: String,
    inventory: i64,
    inventory_tracked: bool,
    inventory_policy: String,
    status: String,
    title: String,
    product_id: Uuid,
    sku: Option<String>,
    variant_title: String,
    product_title: String,
    handle: String,
    image_url: Option<String>,
}

fn check_quantity(q: i64) -> Result<(), CheckoutError> {
    if (1..=MAX_QUANTITY).contains(&q) {
        Ok(())
    } else {
        Err(invalid(
            "quantity",
            "invalid_quantity",
            format!("quantity must be between 1 and {MAX_QUANTITY} (got {q})"),
        ))
    }
}

fn out_of_stock_invalid(title: &str, inventory: i64) -> CheckoutError {
    invalid(
        "quantity",
        "out_of_stock",
        if inventory > 0 {
            format!("only {inventory} of {title} left in stock")
        } else {
            format!("{title} is sold out")
        },
    )
}

fn completed(order: Option<Uuid>) -> CheckoutError {
    CheckoutError::Conflict {
        code: "cart_completed",
        message: "this cart was already checked out".into(),
        details: json!({ "order_id": order }),
    }
}

/// The lines and totals of an order as plain text (e-mails).
pub fn order_text_summary(o: &Order) -> String {
    let mut s = String::new();
    for l in &o.line_items {
        s.push_str(&format!(
            "  {} × {}  {}\n",
            l.quantity, l.title, l.total.formatted
        ));
    }
    s.push_str(&format!("\n  Subtotal  {}\n", o.subtotal.formatted));
    if o.discount.amount_minor > 0 {
        s.push_str(&format!(
            "  Discount{}  −{}\n",
            o.discount_code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            o.discount.formatted
        ));
    }
    s.push_str(&format!(
        "  Shipping{}  {}\n",
        o.shipping_method
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
        o.shipping.formatted
    ));
    if o.prices_include_tax {
        s.push_str(&format!(
            "  Total  {}\n  (includes {} tax)\n",
            o.total.formatted, o.tax.formatted
        ));
    } else {
        s.push_str(&format!(
            "  Tax  {}\n  Total  {}\n",
            o.tax.formatted, o.total.formatted
        ));
    }
    s
}

fn order_confirmation_mail(
    o: &Order,
    ctx: &PlaceOrder,
    bank_instructions: Option<&str>,
) -> EmailMessage {
    let mut text = format!(
        "Thank you for your order!\n\nOrder #{} at {}\n\n{}\n",
        o.number,
        ctx.store_name,
        order_text_summary(o)
    );
    if let Some(a) = &o.shipping_address {
        text.push_str(&format!(
            "Ship to:\n  {}\n  {}\n{}  {} {}\n  {}\n\n",
            a.name,
            a.line1,
            a.line2
                .as_deref()
                .map(|l| format!("  {l}\n"))
                .unwrap_or_default(),
            a.postal_code,
            a.city,
            a.country
        ));
    }
    match (o.payment_method.as_deref(), bank_instructions) {
        (Some("bank_transfer"), Some(i)) => text.push_str(&format!(
            "Payment by bank transfer. Please transfer {} with the reference \"Order {}\":\n{}\n\n",
            o.total.formatted, o.number, i
        )),
        (Some("cash_on_delivery"), _) => text.push_str(&format!(
            "Payment: cash on delivery ({}).\n\n",
            o.total.formatted
        )),
        (Some("card"), _) => text.push_str("Payment: card.\n\n"),
        _ => {}
    }
    text.push_str(&format!(
        "Your order: {}/orders/{}\n\n— {}\n",
        ctx.store_url, o.id, ctx.store_name
    ));
    EmailMessage {
        to: o.email.clone().unwrap_or_default(),
        to_name: o.customer_name.clone(),
        subject: format!("Order #{} confirmed – {}", o.number, ctx.store_name),
        text,
    }
}

fn new_order_notification(o: &Order, ctx: &PlaceOrder, to: &str) -> EmailMessage {
    EmailMessage {
        to: to.to_string(),
        to_name: None,
        subject: format!(
            "New order #{} ({}) – {}",
            o.number, o.total.formatted, ctx.store_name
        ),
        text: format!(
            "A new order was placed at {}.\n\nOrder #{} by {}\nPayment: {}\n\n{}\nOpen it in the dashboard to fulfil it.\n",
            ctx.store_name,
            o.number,
            o.email.as_deref().unwrap_or("a guest"),
            o.payment_method.as_deref().unwrap_or("-"),
            order_text_summary(o)
        ),
    }
}
