//! After the order: fulfilments (all lines or some, with carrier and tracking number),
//! cancellation (stock returns), refunds (full or partial; through Stripe for card
//! payments, recorded for manual ones) and the Stripe events already processed. Always
//! through [`TenantDb`]; each change writes its audit entry, its event (`order.fulfilled`,
//! `order.cancelled`, `order.refunded`) and its e-mail job in its own transaction.

use super::audit::{self, Actor, Change};
use super::catalog::MoneyDto;
use super::events;
use super::orders::{Order, OrderError, order_summary};
use super::{StoreError, TenantDb, micros_to_rfc3339, new_id, now_micros, to_json};
use crate::domain::{FinancialStatus, FulfillmentStatus, OrderStatus};
use crate::mail::EmailMessage;
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn invalid(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> OrderError {
    let field = field.into();
    OrderError::Invalid {
        message: format!("{field}: {}", message.into()),
        field,
        code,
    }
}

/// Units of one line to fulfil.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FulfillmentLine {
    pub line_item_id: Uuid,
    pub quantity: i64,
}

/// A fulfilment as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Fulfillment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub lines: Vec<FulfillmentLine>,
    /// RFC 3339.
    pub created_at: String,
}

/// A refund as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundRecord {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: MoneyDto,
    pub reason: Option<String>,
    /// `stripe` or `manual`.
    pub gateway: String,
    /// The Stripe refund id, if any.
    pub reference: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// What to fulfil: `lines` empty means every unfulfilled unit.
#[derive(Debug, Clone, Default)]
pub struct FulfillInput {
    pub lines: Vec<FulfillmentLine>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// The store's name and base URL, for the shipping e-mail.
    pub store_name: String,
    pub store_url: String,
}

/// (id, carrier, tracking number, lines JSON, created at).
type FulfillmentRow = (Uuid, Option<String>, Option<String>, String, i64);
/// (id, amount, currency, reason, gateway, reference, created at).
type RefundRow = (
    Uuid,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
);

impl TenantDb {
    /// The order paid through this Stripe PaymentIntent.
    pub async fn order_by_payment_intent(&self, pi: &str) -> Result<Option<Order>, StoreError> {
        let id: Option<Uuid> = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select id from orders where tenant_id = $1 and payment_intent_id = $2",
        )
        .bind(self.tenant)
        .bind(pi)
        .fetch_optional(p)
        .await)?;
        match id {
            Some(id) => self.get_order(id).await,
            None => Ok(None),
        }
    }

    /// Whether this Stripe event id was processed already.
    pub async fn stripe_event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        let n: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(
            "select count(*) from stripe_events where tenant_id = $1 and event_id = $2",
        )
        .bind(self.tenant)
        .bind(event_id)
        .fetch_one(p)
        .await)?;
        Ok(n > 0)
    }

    /// Marks a Stripe event processed.
    pub async fn mark_stripe_event(&self, event_id: &str, kind: &str) -> Result<(), StoreError> {
        crate::tenant_exec!(self, c => sqlx::query(
            "insert into stripe_events (tenant_id, event_id, kind, created_at) values ($1, $2, $3, $4) on conflict do nothing",
        )
        .bind(self.tenant)
        .bind(event_id)
        .bind(kind)
        .bind(now_micros())
        .execute(c)
        .await)?;
        Ok(())
    }

    /// The fulfilments of an order, oldest first.
    pub async fn list_fulfillments(&self, order_id: Uuid) -> Result<Vec<Fulfillment>, StoreError> {
        let rows: Vec<FulfillmentRow> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, carrier, tracking_number, lines, created_at from fulfillments where tenant_id = $1 and order_id = $2 order by created_at, id",
        )
        .bind(self.tenant)
        .bind(order_id)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, carrier, tracking_number, lines, at)| Fulfillment {
                id,
                order_id,
                carrier,
                tracking_number,
                lines: serde_json::from_str(&lines).unwrap_or_default(),
                created_at: micros_to_rfc3339(at),
            })
            .collect())
    }

    /// The refunds of an order, oldest first.
    pub async fn list_refunds(&self, order_id: Uuid) -> Result<Vec<RefundRecord>, StoreError> {
        let rows: Vec<RefundRow> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, amount_minor, currency, reason, gateway, reference, created_at from refunds where tenant_id = $1 and order_id = $2 order by created_at, id",
        )
        .bind(self.tenant)
        .bind(order_id)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, amount, cur, reason, gateway, reference, at)| RefundRecord {
                    id,
                    order_id,
                    amount: MoneyDto::new(amount, &cur),
                    reason,
                    gateway,
                    reference,
                    created_at: micros_to_rfc3339(at),
                },
            )
            .collect())
    }

    /// Fulfils units of an order's lines (all unfulfilled units when `lines` is empty)
    /// and e-mails the shopper (carrier and tracking number when given). The order becomes
    /// `fulfilled` when every unit is.
    ///
    /// Errors: `NotFound("order")`; `InvalidState` for a cancelled or fully fulfilled
    /// order; `Invalid` for an unknown line (`lines[i].line_item_id`) or a quantity
    /// outside 1..=the line's unfulfilled units (`lines[i].quantity`).
    pub async fn fulfill_order(
        &self,
        actor: &Actor,
        order_id: Uuid,
        input: &FulfillInput,
    ) -> Result<(Order, Fulfillment), OrderError> {
        let mut tx = self.begin().await?;
        let before = self
            .get_order_tx(&mut tx, order_id)
            .await?
            .ok_or(OrderError::NotFound("order"))?;
        if before.status == OrderStatus::Cancelled {
            return Err(OrderError::InvalidState(
                "a cancelled order cannot be fulfilled".into(),
            ));
        }
        let lines: Vec<FulfillmentLine> = if input.lines.is_empty() {
            before
                .line_items
                .iter()
                .filter(|l| l.quantity > l.fulfilled_quantity)
                .map(|l| FulfillmentLine {
                    line_item_id: l.id,
                    quantity: l.quantity - l.fulfilled_quantity,
                })
                .collect()
        } else {
            input.lines.clone()
        };
        if lines.is_empty() {
            return Err(OrderError::InvalidState(
                "every item of this order is fulfilled already".into(),
            ));
        }
        for (i, fl) in lines.iter().enumerate() {
            let li = before
                .line_items
                .iter()
                .find(|l| l.id == fl.line_item_id)
                .ok_or_else(|| {
                    invalid(
                        format!("lines[{i}].line_item_id"),
                        "unknown_line_item",
                        "not a line of this order",
                    )
                })?;
            let open = li.quantity - li.fulfilled_quantity;
            if fl.quantity < 1 || fl.quantity > open {
                return Err(invalid(
                    format!("lines[{i}].quantity"),
                    "invalid_quantity",
                    format!("{} has {open} unfulfilled unit(s)", li.title),
                ));
            }
            // The guard is in the statement: two concurrent fulfilments cannot overshoot.
            let n = exec_tx!(&mut tx, c => sqlx::query(
                "update order_line_items set fulfilled_quantity = fulfilled_quantity + $4
                 where tenant_id = $1 and order_id = $2 and id = $3 and fulfilled_quantity + $4 <= quantity",
            )
            .bind(self.tenant)
            .bind(order_id)
            .bind(fl.line_item_id)
            .bind(fl.quantity)
            .execute(&mut **c)
            .await)?;
            if n == 0 {
                return Err(OrderError::InvalidState(format!(
                    "{} was fulfilled meanwhile",
                    li.title
                )));
            }
        }
        let remaining: i64 = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
            "select cast(coalesce(sum(quantity - fulfilled_quantity), 0) as bigint) from order_line_items where tenant_id = $1 and order_id = $2",
        )
        .bind(self.tenant)
        .bind(order_id)
        .fetch_one(&mut **c)
        .await)?;
        let status = if remaining == 0 {
            FulfillmentStatus::Fulfilled
        } else {
            FulfillmentStatus::Unfulfilled
        };
        exec_tx!(&mut tx, c => sqlx::query("update orders set fulfillment_status = $3, updated_at = $4 where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(order_id)
            .bind(status.as_str())
            .bind(now_micros())
            .execute(&mut **c)
            .await)?;
        let id = new_id();
        let now = now_micros();
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into fulfillments (id, tenant_id, order_id, carrier, tracking_number, lines, created_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(order_id)
        .bind(&input.carrier)
        .bind(&input.tracking_number)
        .bind(to_json(&lines))
        .bind(now)
        .execute(&mut **c)
        .await)?;
        let order = self
            .get_order_tx(&mut tx, order_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("order.fulfilled", "order", order_id)
                .before(order_summary(&before))
                .after(serde_json::json!({ "fulfillment_status": order.fulfillment_status.as_str(), "carrier": input.carrier, "tracking_number": input.tracking_number, "units": lines.iter().map(|l| l.quantity).sum::<i64>() })),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "order.fulfilled", &order).await?;
        if let Some(to) = order.email.clone() {
            let items: String = lines
                .iter()
                .filter_map(|fl| {
                    order
                        .line_items
                        .iter()
                        .find(|l| l.id == fl.line_item_id)
                        .map(|l| format!("  {} × {}\n", fl.quantity, l.title))
                })
                .collect();
            let tracking = match (&input.carrier, &input.tracking_number) {
                (Some(c), Some(t)) => format!("Carrier: {c}\nTracking number: {t}\n\n"),
                (None, Some(t)) => format!("Tracking number: {t}\n\n"),
                (Some(c), None) => format!("Carrier: {c}\n\n"),
                (None, None) => String::new(),
            };
            let m = EmailMessage {
                to,
                to_name: order.customer_name.clone(),
                subject: format!(
                    "Your order #{} has shipped – {}",
                    order.number, input.store_name
                ),
                text: format!(
                    "Good news: items of your order #{} are on their way.\n\n{items}\n{tracking}Your order: {}/orders/{}\n\n— {}\n",
                    order.number, input.store_url, order.id, input.store_name
                ),
            };
            self.enqueue_mail(&mut tx, &format!("order-shipped:{id}"), &m)
                .await?;
        }
        tx.commit().await?;
        let f = Fulfillment {
            id,
            order_id,
            carrier: input.carrier.clone(),
            tracking_number: input.tracking_number.clone(),
            lines,
            created_at: micros_to_rfc3339(now),
        };
        Ok((order, f))
    }

    /// Cancels an open order: the unfulfilled units of tracked variants go back into
    /// stock and the discount code's use is given back.
    /// Errors: `NotFound("order")`; `InvalidState` when it is already cancelled.
    pub async fn cancel_order(
        &self,
        actor: &Actor,
        order_id: Uuid,
        reason: Option<&str>,
    ) -> Result<Order, OrderError> {
        let mut tx = self.begin().await?;
        let before = self
            .get_order_tx(&mut tx, order_id)
            .await?
            .ok_or(OrderError::NotFound("order"))?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update orders set status = 'cancelled', updated_at = $3, note = coalesce($4, note) where tenant_id = $1 and id = $2 and status <> 'cancelled'",
        )
        .bind(self.tenant)
        .bind(order_id)
        .bind(now_micros())
        .bind(reason.map(|r| format!("Cancelled: {r}")))
        .execute(&mut **c)
        .await)?;
        if n == 0 {
            return Err(OrderError::InvalidState(
                "the order is already cancelled".into(),
            ));
        }
        for l in &before.line_items {
            let back = l.quantity - l.fulfilled_quantity;
            if let (Some(v), true) = (l.variant_id, back > 0) {
                exec_tx!(&mut tx, c => sqlx::query(
                    "update variants set inventory = inventory + $3 where tenant_id = $1 and id = $2 and inventory_tracked",
                )
                .bind(self.tenant)
                .bind(v)
                .bind(back)
                .execute(&mut **c)
                .await)?;
            }
        }
        if let Some(code) = &before.discount_code {
            exec_tx!(&mut tx, c => sqlx::query(
                "update discount_codes set used_count = used_count - 1 where tenant_id = $1 and code = $2 and used_count > 0",
            )
            .bind(self.tenant)
            .bind(code)
            .execute(&mut **c)
            .await)?;
        }
        let order = self
            .get_order_tx(&mut tx, order_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("order.cancelled", "order", order_id)
                .before(order_summary(&before))
                .after(order_summary(&order)),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "order.cancelled", &order).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// Records a refund of `amount` (≤ paid − refunded) made through `gateway` (`stripe`
    /// with the Stripe refund id, or `manual`). The financial status becomes `refunded`
    /// when everything paid is refunded. Emits `order.refunded`.
    /// Errors: `NotFound("order")`; `Invalid amount_minor` (`invalid_amount`,
    /// `exceeds_refundable`).
    pub async fn record_refund(
        &self,
        actor: &Actor,
        order_id: Uuid,
        amount: i64,
        gateway: &str,
        reference: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(Order, RefundRecord), OrderError> {
        if amount <= 0 {
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
        let updated: Option<(i64, i64)> = dispatch_tx!(&mut tx, c => sqlx::query_as(
            "update orders set refunded_minor = refunded_minor + $3, updated_at = $4
             where tenant_id = $1 and id = $2 and refunded_minor + $3 <= paid_minor returning refunded_minor, paid_minor",
        )
        .bind(self.tenant)
        .bind(order_id)
        .bind(amount)
        .bind(now_micros())
        .fetch_optional(&mut **c)
        .await)?;
        let Some((refunded, paid)) = updated else {
            return Err(invalid(
                "amount_minor",
                "exceeds_refundable",
                format!(
                    "{} is more than the refundable {}",
                    MoneyDto::new(amount, &before.currency).formatted,
                    MoneyDto::new(
                        before.paid.amount_minor - before.refunded.amount_minor,
                        &before.currency
                    )
                    .formatted
                ),
            ));
        };
        if refunded >= paid {
            exec_tx!(&mut tx, c => sqlx::query("update orders set financial_status = $3 where tenant_id = $1 and id = $2")
                .bind(self.tenant)
                .bind(order_id)
                .bind(FinancialStatus::Refunded.as_str())
                .execute(&mut **c)
                .await)?;
        }
        let id = new_id();
        let now = now_micros();
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into refunds (id, tenant_id, order_id, amount_minor, currency, reason, gateway, reference, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(order_id)
        .bind(amount)
        .bind(&before.currency)
        .bind(reason)
        .bind(gateway)
        .bind(reference)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        let order = self
            .get_order_tx(&mut tx, order_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("order.refunded", "order", order_id)
                .before(order_summary(&before))
                .after(serde_json::json!({ "refund_minor": amount, "refunded_minor": refunded, "gateway": gateway })),
        )
        .await?;
        events::emit_resource(&mut tx, Some(self.tenant), "order.refunded", &order).await?;
        tx.commit().await?;
        let r = RefundRecord {
            id,
            order_id,
            amount: MoneyDto::new(amount, &order.currency),
            reason: reason.map(str::to_string),
            gateway: gateway.to_string(),
            reference: reference.map(str::to_string),
            created_at: micros_to_rfc3339(now),
        };
        Ok((order, r))
    }

    /// Brings the order's refunds up to Stripe's `amount_refunded` (a refund made in
    /// Stripe's dashboard, reported by `charge.refunded`): records the difference, if any.
    pub async fn sync_gateway_refund(
        &self,
        actor: &Actor,
        order_id: Uuid,
        amount_refunded: i64,
        event_id: &str,
    ) -> Result<(), OrderError> {
        let Some(order) = self.get_order(order_id).await? else {
            return Err(OrderError::NotFound("order"));
        };
        let missing = amount_refunded - order.refunded.amount_minor;
        if missing > 0 {
            self.record_refund(
                actor,
                order_id,
                missing,
                "stripe",
                Some(event_id),
                Some("refunded in Stripe"),
            )
            .await?;
        }
        Ok(())
    }
}
