//! Commerce rules without I/O: parsed addresses and country codes, and the price
//! calculation every cart, checkout, order and e-mail shows.
//!
//! Money is integer minor units of the store currency throughout. Rates are basis points
//! (1 % = 100 bp).
//!
//! ## The calculation ([`price`])
//! 1. Each line's subtotal is `unit price × quantity`; the cart subtotal is their sum.
//! 2. Discount: a **percentage** code takes `round(line subtotal × bp / 10 000)` from each
//!    line; a **fixed** code (capped at the subtotal) is spread over the lines in
//!    proportion to their subtotals, by the largest-remainder method, so the per-line
//!    amounts add up exactly to the code's value.
//! 3. Shipping is the chosen rate's price, or 0 when the discounted subtotal reaches the
//!    rate's free-shipping amount, or for pickup.
//! 4. Tax is computed **per line** (and on shipping, at the same rate: shipping follows the
//!    goods, as EU VAT does) on the discounted amount, at the destination country's rate.
//!    With tax-inclusive prices (the EU default) the tax contained is
//!    `round(amount × bp / (10 000 + bp))` and the total does not change; with
//!    tax-exclusive prices the tax is `round(amount × bp / 10 000)` and is added.
//! 5. Every `round` here is **half-up on the absolute amount** (0.5 minor units round away
//!    from zero), computed exactly in 128-bit integers.
//!
//! `total = subtotal − discount + shipping (+ tax when prices exclude it)`.

use crate::domain::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 3166-1 alpha-2 country code, upper case (`LU`, `DE`). Parsing checks the form
/// (two ASCII letters) and refuses the user-assigned codes `AA`, `QM`–`QZ`, `XA`–`XZ`
/// (except `XK`, Kosovo, in common use) and `ZZ`. Errors: `invalid_country`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "LU")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        let bad = || {
            DomainError::new(
                "invalid_country",
                format!("country '{raw}' must be an ISO 3166-1 alpha-2 code such as LU or DE"),
            )
        };
        if b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
            return Err(bad());
        }
        let user_assigned =
            s == "AA" || s == "ZZ" || (b[0] == b'X' && s != "XK") || (b[0] == b'Q' && b[1] >= b'M');
        if user_assigned {
            return Err(bad());
        }
        Ok(Self([b[0], b[1]]))
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII upper-case letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }
}

impl TryFrom<String> for CountryCode {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.as_str().to_string()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shipping address as checkout takes it and orders keep it (JSON in storage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    /// The recipient, 1–200 characters.
    pub name: String,
    /// Street and number, 1–200 characters.
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    /// 1–100 characters.
    pub city: String,
    /// 1–12 letters, digits, spaces or dashes, with at least one digit or letter
    /// (`L-1234`, `10115`, `SW1A 1AA`); stored upper case.
    pub postal_code: String,
    pub country: CountryCode,
    #[serde(default)]
    pub phone: Option<String>,
}

/// An address as it arrives, before [`AddressInput::parse`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct AddressInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub postal_code: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// A field-level address error: `field` is `name`, `line1`, `city`, `postal_code`,
/// `country`, … with a stable `code`.
#[derive(Debug, Clone)]
pub struct AddressError {
    pub field: &'static str,
    pub error: DomainError,
}

fn text(field: &'static str, raw: &str, max: usize) -> Result<String, AddressError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(AddressError {
            field,
            error: DomainError::new("required", format!("{field} is required")),
        });
    }
    if v.chars().count() > max {
        return Err(AddressError {
            field,
            error: DomainError::new("too_long", format!("{field} has at most {max} characters")),
        });
    }
    Ok(v.to_string())
}

fn optional(
    field: &'static str,
    raw: &Option<String>,
    max: usize,
) -> Result<Option<String>, AddressError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

/// Parses a postal code: 1–12 of letters, digits, space, `-`; upper-cased.
/// Errors: `invalid_postal_code`.
pub fn parse_postal_code(raw: &str) -> Result<String, DomainError> {
    let v = raw.trim().to_ascii_uppercase();
    let ok = !v.is_empty()
        && v.len() <= 12
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        && v.chars().any(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(v)
    } else {
        Err(DomainError::new(
            "invalid_postal_code",
            format!("postal code '{raw}' must be 1–12 letters, digits, spaces or dashes"),
        ))
    }
}

impl AddressInput {
    /// Checks every field. Errors: the first bad field (`required`, `too_long`,
    /// `invalid_postal_code`, `invalid_country`).
    pub fn parse(&self) -> Result<Address, AddressError> {
        Ok(Address {
            name: text("name", &self.name, 200)?,
            line1: text("line1", &self.line1, 200)?,
            line2: optional("line2", &self.line2, 200)?,
            city: text("city", &self.city, 100)?,
            postal_code: parse_postal_code(&self.postal_code).map_err(|error| AddressError {
                field: "postal_code",
                error,
            })?,
            country: CountryCode::parse(&self.country).map_err(|error| AddressError {
                field: "country",
                error,
            })?,
            phone: optional("phone", &self.phone, 40)?,
        })
    }
}

/// A discount code's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountValue {
    /// Basis points of each line's subtotal, 1..=10 000.
    Percentage(i64),
    /// Minor units off the subtotal (capped at it).
    Fixed(i64),
}

/// One line to price.
#[derive(Debug, Clone, Copy)]
pub struct LineIn {
    pub unit_price_minor: i64,
    pub quantity: i64,
}

/// What to price a cart with.
#[derive(Debug, Clone, Copy, Default)]
pub struct PricingInput {
    pub discount: Option<DiscountValue>,
    /// `(price, free over)` of the chosen shipping rate; `None` for pickup or no rate yet.
    pub shipping: Option<(i64, Option<i64>)>,
    /// The destination country's rate in basis points (0 when the store has none).
    pub tax_rate_bp: i64,
    pub prices_include_tax: bool,
}

/// A priced line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineOut {
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub tax_minor: i64,
    /// `subtotal − discount` (the tax is inside it when prices include tax).
    pub total_minor: i64,
}

/// The totals of a cart or order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    pub lines: Vec<LineOut>,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    /// Tax on lines and shipping (contained in the prices when they include tax).
    pub tax_minor: i64,
    pub total_minor: i64,
}

/// `round(n / d)` half away from zero, for `d > 0`.
fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d { q + n.signum() } else { q }
}

fn tax_of(amount: i64, bp: i64, inclusive: bool) -> i64 {
    if bp <= 0 || amount == 0 {
        return 0;
    }
    let (a, bp) = (amount as i128, bp as i128);
    let t = if inclusive {
        div_round(a * bp, 10_000 + bp)
    } else {
        div_round(a * bp, 10_000)
    };
    t as i64
}

/// Prices `lines` (see the module documentation for the rules). Amounts are assumed to be
/// in range (unit prices ≤ 10^12, quantities ≤ 10 000, at most 250 lines), so the sums fit
/// in `i64`.
pub fn price(lines: &[LineIn], input: &PricingInput) -> Totals {
    let subs: Vec<i64> = lines
        .iter()
        .map(|l| l.unit_price_minor.saturating_mul(l.quantity))
        .collect();
    let subtotal: i64 = subs.iter().sum();
    let discounts: Vec<i64> = match input.discount {
        None => vec![0; subs.len()],
        Some(DiscountValue::Percentage(bp)) => {
            let bp = bp.clamp(0, 10_000) as i128;
            subs.iter()
                .map(|&s| div_round(s as i128 * bp, 10_000) as i64)
                .collect()
        }
        Some(DiscountValue::Fixed(v)) => allocate(v.clamp(0, subtotal), &subs),
    };
    let discount: i64 = discounts.iter().sum();
    let discounted = subtotal - discount;
    let shipping = match input.shipping {
        None => 0,
        Some((_, Some(free_over))) if discounted >= free_over => 0,
        Some((p, _)) => p.max(0),
    };
    let inclusive = input.prices_include_tax;
    let mut out = Vec::with_capacity(subs.len());
    let mut tax = 0;
    for (s, d) in subs.iter().zip(&discounts) {
        let total = s - d;
        let t = tax_of(total, input.tax_rate_bp, inclusive);
        tax += t;
        out.push(LineOut {
            subtotal_minor: *s,
            discount_minor: *d,
            tax_minor: t,
            total_minor: total,
        });
    }
    tax += tax_of(shipping, input.tax_rate_bp, inclusive);
    let total = discounted + shipping + if inclusive { 0 } else { tax };
    Totals {
        lines: out,
        subtotal_minor: subtotal,
        discount_minor: discount,
        shipping_minor: shipping,
        tax_minor: tax,
        total_minor: total,
    }
}

/// Spreads `amount` over `weights` proportionally; the parts add up to `amount` exactly
/// (largest remainder, ties to the earlier line).
fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|&w| w as i128).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut parts: Vec<(i64, i128, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let exact = amount as i128 * w as i128;
            ((exact / sum) as i64, exact % sum, i)
        })
        .collect();
    let mut left = amount - parts.iter().map(|p| p.0).sum::<i64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].1.cmp(&parts[a].1).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i].0 += 1;
        left -= 1;
    }
    parts.sort_by_key(|p| p.2);
    parts.into_iter().map(|p| p.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(unit: i64, q: i64) -> LineIn {
        LineIn {
            unit_price_minor: unit,
            quantity: q,
        }
    }

    #[test]
    fn inclusive_tax_is_contained_and_rounded_half_up_per_line() {
        // 17 % VAT (Luxembourg), prices include it: 11.70 contains 1.70.
        let t = price(
            &[l(1170, 1), l(999, 1)],
            &PricingInput {
                tax_rate_bp: 1700,
                prices_include_tax: true,
                ..Default::default()
            },
        );
        assert_eq!(t.lines[0].tax_minor, 170);
        // 999 × 17/117 = 145.15… → 145
        assert_eq!(t.lines[1].tax_minor, 145);
        assert_eq!(t.total_minor, 2169);
        assert_eq!(t.tax_minor, 315);
    }

    #[test]
    fn exclusive_tax_is_added() {
        // 8.875 % on 10.00: 0.8875 → 0.89 (half-up).
        let t = price(
            &[l(1000, 1)],
            &PricingInput {
                tax_rate_bp: 887,
                prices_include_tax: false,
                ..Default::default()
            },
        );
        // 1000 × 887 / 10000 = 88.7 → 89
        assert_eq!(t.tax_minor, 89);
        assert_eq!(t.total_minor, 1089);
        // exactly half rounds up: 50 × 100 bp = 0.5 → 1
        let t = price(
            &[l(50, 1)],
            &PricingInput {
                tax_rate_bp: 100,
                ..Default::default()
            },
        );
        assert_eq!(t.tax_minor, 1);
    }

    #[test]
    fn percentage_discounts_round_per_line_and_fixed_ones_add_up_exactly() {
        let t = price(
            &[l(333, 1), l(333, 1), l(333, 1)],
            &PricingInput {
                discount: Some(DiscountValue::Percentage(1000)),
                ..Default::default()
            },
        );
        // 33.3 → 33 on each line
        assert_eq!(t.discount_minor, 99);
        assert_eq!(t.total_minor, 900);
        let t = price(
            &[l(100, 1), l(100, 1), l(100, 1)],
            &PricingInput {
                discount: Some(DiscountValue::Fixed(100)),
                ..Default::default()
            },
        );
        assert_eq!(
            t.lines.iter().map(|x| x.discount_minor).collect::<Vec<_>>(),
            vec![34, 33, 33]
        );
        assert_eq!(t.discount_minor, 100);
        // a fixed discount never exceeds the subtotal
        let t = price(
            &[l(500, 1)],
            &PricingInput {
                discount: Some(DiscountValue::Fixed(2000)),
                ..Default::default()
            },
        );
        assert_eq!(t.total_minor, 0);
    }

    #[test]
    fn shipping_is_free_over_the_threshold_after_discount_and_taxed() {
        let input = PricingInput {
            shipping: Some((500, Some(5000))),
            discount: Some(DiscountValue::Fixed(100)),
            tax_rate_bp: 1700,
            prices_include_tax: true,
        };
        let t = price(&[l(5000, 1)], &input);
        assert_eq!(
            t.shipping_minor, 500,
            "4900 after the discount is under 5000"
        );
        assert_eq!(t.total_minor, 5400);
        // 4900×17/117 = 711.96 → 712; 500×17/117 = 72.6 → 73
        assert_eq!(t.tax_minor, 712 + 73);
        let t = price(&[l(5100, 1)], &input);
        assert_eq!(t.shipping_minor, 0);
    }

    #[test]
    fn countries_and_postal_codes_parse() {
        assert_eq!(CountryCode::parse(" lu ").unwrap().as_str(), "LU");
        for bad in ["L", "LUX", "1A", "XA", "ZZ", "QT", ""] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_postal_code("l-1234").unwrap(), "L-1234");
        assert!(parse_postal_code("12345678901234").is_err());
        assert!(parse_postal_code("<script>").is_err());
        assert!(parse_postal_code(" - ").is_err());
    }
}
