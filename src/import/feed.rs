//! Marketplace product feeds: the Google Merchant Center product data format and the
//! atalanda/Letzshop variant of it. Parsing only (no I/O beyond the reader it is given).
//!
//! The format is detected, not chosen ([`FeedReader::open`]): delimited text (tab, comma or
//! semicolon; a header row of attribute names, with or without the `g:` prefix), RSS 2.0
//! with the `g:` namespace (`<item>` elements) or Atom 1.0 with the `g:` namespace
//! (`<entry>` elements). Spec: <https://support.google.com/merchants/answer/7052112>
//! (attributes), <https://support.google.com/merchants/answer/160589> (file formats).
//!
//! Reading streams: [`FeedReader`] yields one [`RawItem`] at a time (a delimited record or
//! one `<item>`/`<entry>` element), so memory stays bounded whatever the feed size.
//! [`normalize`] turns a raw item into a [`FeedProduct`] plus per-item errors and warnings;
//! an item with errors is still returned (and staged) so the rest of the feed goes on.

use crate::domain::{Currency, parse_decimal_minor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;

/// At most this many bytes in one attribute value; larger values refuse the file.
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// At most this many attributes in one item.
pub const MAX_ATTRIBUTES: usize = 500;
/// Deepest element nesting accepted in an XML feed.
const MAX_DEPTH: usize = 32;

/// The detected layout of a feed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedFormat {
    /// Tab-separated text.
    Tsv,
    /// Comma-separated text.
    Csv,
    /// Semicolon-separated text.
    Semicolon,
    /// RSS 2.0 with the `g:` namespace.
    Rss,
    /// Atom 1.0 with the `g:` namespace.
    Atom,
}

impl FeedFormat {
    /// `tsv`, `csv`, `semicolon`, `rss`, `atom`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Tsv => "tsv",
            FeedFormat::Csv => "csv",
            FeedFormat::Semicolon => "semicolon",
            FeedFormat::Rss => "rss",
            FeedFormat::Atom => "atom",
        }
    }
}

/// Why a whole feed file cannot be read (as opposed to one item of it).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct FeedError {
    /// Stable code: `empty_feed`, `not_a_feed` (an HTML page or another document),
    /// `no_id_column`, `xml_entities` (a DTD declaring entities: entity-expansion bombs are
    /// refused), `malformed_xml`, `invalid_utf8`, `field_too_large`, `too_deep`.
    pub code: &'static str,
    pub message: String,
}

impl FeedError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A per-item problem: the attribute it concerns, a stable code and a sentence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Issue {
    /// Attribute name (without `g:`), e.g. `price`.
    pub field: String,
    /// e.g. `invalid_price`, `currency_mismatch`, `missing`, `invalid_url`.
    pub code: String,
    pub message: String,
}

fn issue(field: &str, code: &str, message: impl Into<String>) -> Issue {
    Issue {
        field: field.to_string(),
        code: code.to_string(),
        message: message.into(),
    }
}

/// One item as read from the file: its 1-based position and its attributes by name
/// (`g:` prefix removed, other prefixes such as `atalanda:` kept; repeated elements such as
/// `additional_image_link` keep every value, in order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawItem {
    pub position: u64,
    pub attrs: BTreeMap<String, Vec<String>>,
    /// Columns of a delimited record that were not valid UTF-8 (replaced lossily).
    pub invalid_utf8: Vec<String>,
}

impl RawItem {
    /// The first non-empty value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .get(name)?
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
    }
}

/// Availability in the Google spelling (`in_stock`; feeds also write `in stock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    InStock,
    OutOfStock,
    Preorder,
    Backorder,
}

impl Availability {
    /// Accepts `in_stock`/`in stock`, `out_of_stock`/`out of stock`, `preorder`/`pre-order`,
    /// `backorder`, case-insensitively.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        match s.as_str() {
            "in_stock" | "instock" => Some(Self::InStock),
            "out_of_stock" | "outofstock" | "sold_out" => Some(Self::OutOfStock),
            "preorder" | "pre_order" => Some(Self::Preorder),
            "backorder" | "back_order" => Some(Self::Backorder),
            _ => None,
        }
    }

    /// `in_stock`, `out_of_stock`, `preorder`, `backorder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InStock => "in_stock",
            Self::OutOfStock => "out_of_stock",
            Self::Preorder => "preorder",
            Self::Backorder => "backorder",
        }
    }
}

/// The normalised fields of one feed item. Money is minor units of `currency` (the
/// store's currency: an item priced in another currency has an error).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedProduct {
    /// The feed's `id` (unique per source and language).
    pub id: String,
    pub title: Option<String>,
    /// As given (often HTML).
    pub description: Option<String>,
    pub link: Option<String>,
    pub image_link: Option<String>,
    pub additional_image_links: Vec<String>,
    pub availability: Option<Availability>,
    pub price_minor: Option<i64>,
    pub sale_price_minor: Option<i64>,
    pub currency: Option<String>,
    pub brand: Option<String>,
    pub gtin: Option<String>,
    pub mpn: Option<String>,
    pub condition: Option<String>,
    pub item_group_id: Option<String>,
    pub google_product_category: Option<String>,
    pub product_type: Option<String>,
    /// `shipping_weight` in grams.
    pub shipping_weight_grams: Option<i64>,
    /// Variant options present on the item, in this order: size, color, material,
    /// pattern, gender, age_group.
    pub options: Vec<(String, String)>,
    /// `atalanda:quantity` (or a whole-number `quantity` column).
    pub quantity: Option<i64>,
    /// `atalanda:tax_rate`, percent as written (e.g. `19`).
    pub tax_rate: Option<String>,
    pub preorder_days: Option<i64>,
    /// `atalanda:boost_sort`, 0.0–10.0 as written.
    pub boost_sort: Option<String>,
    /// `nationwide`, `package_delivery` or `self_collect`.
    pub delivery_method: Option<String>,
    /// `atalanda:additional_product_type_1..3`.
    pub additional_product_types: Vec<String>,
}

/// A normalised item with its problems. `errors` make it unpublishable; `warnings` do not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedItem {
    pub position: u64,
    pub product: FeedProduct,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

/// Option attributes that make variants of one `item_group_id`, in option order.
pub const OPTION_ATTRIBUTES: [&str; 6] = [
    "size",
    "color",
    "material",
    "pattern",
    "gender",
    "age_group",
];

/// Attribute names this parser knows (the rest is kept raw and reported once per file).
const KNOWN: &[&str] = &[
    "id",
    "title",
    "description",
    "link",
    "mobile_link",
    "image_link",
    "additional_image_link",
    "availability",
    "availability_date",
    "price",
    "sale_price",
    "sale_price_effective_date",
    "brand",
    "gtin",
    "mpn",
    "identifier_exists",
    "condition",
    "item_group_id",
    "google_product_category",
    "product_type",
    "shipping",
    "shipping_weight",
    "shipping_label",
    "size",
    "color",
    "material",
    "pattern",
    "gender",
    "age_group",
    "adult",
    "multipack",
    "is_bundle",
    "unit_pricing_measure",
    "custom_label_0",
    "custom_label_1",
    "custom_label_2",
    "custom_label_3",
    "custom_label_4",
    "atalanda:tax_rate",
    "atalanda:quantity",
    "atalanda:preorder_days",
    "atalanda:additional_product_type_1",
    "atalanda:additional_product_type_2",
    "atalanda:additional_product_type_3",
    "atalanda:boost_sort",
    "atalanda:delivery_method",
    "atalanda:options",
    // RSS/Atom container elements
    "updated",
    "summary",
    "content",
    "guid",
    "pubdate",
];

/// Whether `name` (as a [`RawItem`] key) is an attribute of the Google or atalanda spec.
pub fn is_known_attribute(name: &str) -> bool {
    KNOWN.contains(&name)
}

/// ISO 4217 active codes (2024).
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL";

/// An amount read from a feed: minor units, its currency, and whether the currency was
/// written (a bare `119.99` means the store currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPrice {
    pub minor: i64,
    pub currency: Currency,
    pub explicit_currency: bool,
}

/// Parses a feed price in every real form: `63.60 EUR`, `15.0 EUR`, `AED 15`, `63.60EUR`,
/// `9,95 EUR`, or a bare `119.99` (in `store`, the atalanda documented form). Errors:
/// `(code, message)` with code `invalid_price` (no number) or `unknown_currency` (not an
/// ISO 4217 code).
pub fn parse_price(raw: &str, store: Currency) -> Result<FeedPrice, (&'static str, String)> {
    let s = raw.trim();
    let numeric = |t: &str| t.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == ',');
    let toks: Vec<&str> = s.split_whitespace().collect();
    let (num, cur) = match toks.as_slice() {
        [] => (String::new(), String::new()),
        [a, b] if numeric(a) => (a.to_string(), b.to_string()),
        [a, b] if numeric(b) => (b.to_string(), a.to_string()),
        [_, _] => (String::new(), String::new()),
        [t] if numeric(t) => match t.find(|c: char| c.is_ascii_alphabetic()) {
            // glued form `63.60EUR`
            Some(i) => (t[..i].to_string(), t[i..].to_string()),
            None => (t.to_string(), String::new()),
        },
        [_] => (String::new(), String::new()),
        _ => {
            return Err((
                "invalid_price",
                format!("price '{raw}' is not a number followed by a currency code"),
            ));
        }
    };
    if num.is_empty() {
        return Err(("invalid_price", format!("price '{raw}' has no number")));
    }
    let (currency, explicit) = if cur.is_empty() {
        (store, false)
    } else {
        let up = cur.to_ascii_uppercase();
        if up.len() != 3 || !ISO_4217.split(' ').any(|c| c == up) {
            return Err((
                "unknown_currency",
                format!("price '{raw}': '{cur}' is not an ISO 4217 currency code"),
            ));
        }
        (
            Currency::parse(&up).map_err(|e| ("unknown_currency", e.message))?,
            true,
        )
    };
    let minor = parse_decimal_minor(&num, currency.exponent()).map_err(|e| {
        (
            "invalid_price",
            format!("price '{raw}': {}", e.message.trim_start_matches("price ")),
        )
    })?;
    Ok(FeedPrice {
        minor,
        currency,
        explicit_currency: explicit,
    })
}

/// `50 kg`, `1.5 lb`, `300 g`, `12 oz` → grams (rounded). `None` when unreadable.
pub fn parse_weight_grams(raw: &str) -> Option<i64> {
    let s = raw.trim().to_ascii_lowercase();
    let i = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = (s[..i].trim().replace(',', "."), s[i..].trim());
    let n: f64 = n
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let factor = match unit {
        "g" | "gr" | "gram" | "grams" => 1.0,
        "kg" | "kgs" => 1000.0,
        "lb" | "lbs" => 453.592,
        "oz" => 28.3495,
        _ => return None,
    };
    Some((n * factor).round() as i64)
}

/// Is `s` an http(s) URL with a host?
pub fn is_http_url(s: &str) -> bool {
    url::Url::parse(s.trim())
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
}

/// GTIN-8/12/13/14 with a valid check digit.
fn valid_gtin(s: &str) -> bool {
    if !matches!(s.len(), 8 | 12 | 13 | 14) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let d: Vec<u32> = s.bytes().map(|b| (b - b'0') as u32).collect();
    let (body, check) = d.split_at(d.len() - 1);
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { v * 3 } else { *v })
        .sum();
    (10 - sum % 10) % 10 == check[0]
}

/// Normalises one raw item against the store's currency. Never fails: problems become
/// per-item `errors` (missing `id`/`title`/`price`, a price without a number, an unknown
/// currency or one other than the store's, an unknown availability, an `image_link` that is
/// not http(s), a value that was not UTF-8) or `warnings` (a price without currency, an
/// invalid GTIN, an unreadable weight or quantity, additional images that are not http(s),
/// shipping priced in another currency, an `id` over 50 characters).
pub fn normalize(raw: &RawItem, store: Currency) -> FeedItem {
    let mut errors = vec![];
    let mut warnings = vec![];
    let text = |k: &str| raw.get(k).map(str::to_string);
    for col in &raw.invalid_utf8 {
        errors.push(issue(
            col,
            "invalid_utf8",
            format!("{col} is not valid UTF-8 text"),
        ));
    }
    let id = raw.get("id").unwrap_or("").to_string();
    if id.is_empty() {
        errors.push(issue("id", "missing", "the item has no id"));
    } else if id.chars().count() > 50 {
        warnings.push(issue(
            "id",
            "too_long",
            "id is longer than the 50 characters Google allows",
        ));
    }
    let title = text("title");
    if title.is_none() {
        errors.push(issue("title", "missing", "the item has no title"));
    }
    let mut p = FeedProduct {
        id,
        title,
        description: text("description"),
        link: text("link"),
        brand: text("brand"),
        mpn: text("mpn"),
        condition: text("condition"),
        item_group_id: text("item_group_id"),
        google_product_category: text("google_product_category"),
        product_type: text("product_type"),
        tax_rate: text("atalanda:tax_rate"),
        boost_sort: text("atalanda:boost_sort"),
        delivery_method: text("atalanda:delivery_method"),
        ..Default::default()
    };
    let mut price_of = |field: &str, required: bool, errors: &mut Vec<Issue>| -> Option<i64> {
        let Some(v) = raw.get(field) else {
            if required {
                errors.push(issue(field, "missing", format!("the item has no {field}")));
            }
            return None;
        };
        match parse_price(v, store) {
            Ok(fp) if fp.currency != store => {
                errors.push(issue(
                    field,
                    "currency_mismatch",
                    format!(
                        "{field} '{v}' is in {}, but the store sells in {store}",
                        fp.currency
                    ),
                ));
                None
            }
            Ok(fp) => {
                if !fp.explicit_currency {
                    warnings.push(issue(
                        field,
                        "no_currency",
                        format!("{field} '{v}' has no currency code; {store} assumed"),
                    ));
                }
                Some(fp.minor)
            }
            Err((code, msg)) => {
                errors.push(issue(field, code, msg));
                None
            }
        }
    };
    p.price_minor = price_of("price", true, &mut errors);
    p.sale_price_minor = price_of("sale_price", false, &mut errors);
    if p.price_minor.is_some() || p.sale_price_minor.is_some() {
        p.currency = Some(store.as_str().to_string());
    }
    if let (Some(price), Some(sale)) = (p.price_minor, p.sale_price_minor)
        && sale > price
    {
        warnings.push(issue(
            "sale_price",
            "above_price",
            "sale_price is higher than price; ignored",
        ));
        p.sale_price_minor = None;
    }
    match raw.get("availability") {
        None => warnings.push(issue(
            "availability",
            "missing",
            "the item has no availability",
        )),
        Some(a) => match Availability::parse(a) {
            Some(a) => p.availability = Some(a),
            None => errors.push(issue(
                "availability",
                "invalid_availability",
                format!(
                    "availability '{a}' is not one of in_stock, out_of_stock, preorder, backorder"
                ),
            )),
        },
    }
    match raw.get("image_link") {
        Some(u) if is_http_url(u) => p.image_link = Some(u.to_string()),
        Some(u) => errors.push(issue(
            "image_link",
            "invalid_url",
            format!("image_link '{u}' is not an http(s) URL"),
        )),
        None => warnings.push(issue("image_link", "missing", "the item has no image_link")),
    }
    for v in raw.attrs.get("additional_image_link").into_iter().flatten() {
        // Delimited feeds list several links in one cell, comma-separated.
        for u in v.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if is_http_url(u) {
                p.additional_image_links.push(u.to_string());
            } else {
                warnings.push(issue(
                    "additional_image_link",
                    "invalid_url",
                    format!("additional_image_link '{u}' is not an http(s) URL; skipped"),
                ));
            }
        }
    }
    if let Some(g) = raw.get("gtin") {
        let g = g.trim_start_matches('\'');
        if valid_gtin(g) {
            p.gtin = Some(g.to_string());
        } else {
            warnings.push(issue(
                "gtin",
                "invalid_gtin",
                format!("gtin '{g}' is not a GTIN-8/12/13/14 with a valid check digit; ignored"),
            ));
        }
    }
    if let Some(w) = raw.get("shipping_weight") {
        p.shipping_weight_grams = parse_weight_grams(w);
        if p.shipping_weight_grams.is_none() {
            warnings.push(issue(
                "shipping_weight",
                "invalid_weight",
                format!("shipping_weight '{w}' is not a number with g, kg, lb or oz"),
            ));
        }
    }
    if let Some(s) = raw.get("shipping") {
        // country:region:service:price, or only a price (`AED 15`)
        let last = s.rsplit(':').next().unwrap_or(s);
        if let Ok(fp) = parse_price(last, store)
            && fp.currency != store
        {
            warnings.push(issue(
                "shipping",
                "currency_mismatch",
                format!(
                    "shipping '{s}' is priced in {}, not the store's {store}; ignored",
                    fp.currency
                ),
            ));
        }
    }
    for name in OPTION_ATTRIBUTES {
        if let Some(v) = raw.get(name) {
            p.options.push((name.to_string(), v.to_string()));
        }
    }
    let qty_field = if raw.get("atalanda:quantity").is_some() {
        "atalanda:quantity"
    } else {
        "quantity"
    };
    if let Some(q) = raw.get(qty_field) {
        match q.parse::<i64>() {
            Ok(n) if n >= 0 => p.quantity = Some(n),
            _ => warnings.push(issue(
                qty_field,
                "invalid_quantity",
                format!("{qty_field} '{q}' is not a whole number of items; ignored"),
            )),
        }
    }
    if let Some(d) = raw.get("atalanda:preorder_days") {
        match d.parse::<i64>() {
            Ok(n) if n >= 0 => p.preorder_days = Some(n),
            _ => warnings.push(issue(
                "atalanda:preorder_days",
                "invalid_number",
                format!("atalanda:preorder_days '{d}' is not a whole number of days"),
            )),
        }
    }
    if let Some(b) = &p.boost_sort
        && !b.parse::<f64>().is_ok_and(|v| (0.0..=10.0).contains(&v))
    {
        warnings.push(issue(
            "atalanda:boost_sort",
            "invalid_number",
            format!("atalanda:boost_sort '{b}' is not between 0.0 and 10.0"),
        ));
    }
    if let Some(d) = &p.delivery_method
        && !matches!(
            d.as_str(),
            "nationwide" | "package_delivery" | "self_collect"
        )
    {
        warnings.push(issue(
            "atalanda:delivery_method",
            "invalid_value",
            format!(
                "atalanda:delivery_method '{d}' is not nationwide, package_delivery or self_collect"
            ),
        ));
    }
    for i in 1..=3 {
        if let Some(t) = raw.get(&format!("atalanda:additional_product_type_{i}")) {
            p.additional_product_types.push(t.to_string());
        }
    }
    FeedItem {
        position: raw.position,
        product: p,
        errors,
        warnings,
    }
}

/// Maps an element or column name to an attribute name: `g:price` → `price`, `price` →
/// `price`, `atalanda:quantity` kept. Returns the name and whether it carried `g:`.
fn attribute_name(name: &str) -> (String, bool) {
    let n = name.trim().trim_matches(['\'', '"']).trim();
    match n.split_once(':') {
        Some((prefix, local)) if prefix.eq_ignore_ascii_case("g") => {
            (local.to_ascii_lowercase(), true)
        }
        Some((prefix, local)) => (
            format!(
                "{}:{}",
                prefix.to_ascii_lowercase(),
                local.to_ascii_lowercase()
            ),
            false,
        ),
        None => (n.to_ascii_lowercase(), false),
    }
}

/// A streaming feed reader over any `BufRead`. Iterate it for items; a file-level error
/// ends the iteration (items yielded before it stay valid).
pub struct FeedReader<R: BufRead> {
    format: FeedFormat,
    inner: Inner<R>,
    position: u64,
    done: bool,
    /// Columns (delimited) or attribute names (XML, as met) outside the spec.
    unknown: Vec<String>,
}

enum Inner<R: BufRead> {
    Delimited {
        reader: csv::Reader<R>,
        headers: Vec<String>,
        record: csv::ByteRecord,
    },
    Xml {
        reader: quick_xml::Reader<R>,
        buf: Vec<u8>,
        item_tag: &'static str,
    },
}

impl<R: BufRead> FeedReader<R> {
    /// Detects the format from the first bytes (a UTF-8 BOM and leading whitespace
    /// skipped): `<` starts XML, whose root must be `<rss>` or `<feed>` (an `<html>` page is
    /// refused as `not_a_feed`); anything else is delimited text whose delimiter is the one
    /// of tab, semicolon and comma found most in the header line (tab wins when present).
    /// Errors: `empty_feed`, `not_a_feed`, `no_id_column`, `malformed_xml`, `xml_entities`.
    pub fn open(mut input: R) -> Result<Self, FeedError> {
        let io = |e: std::io::Error| FeedError::new("unreadable", format!("read failed: {e}"));
        // Skip BOM and whitespace.
        loop {
            let buf = input.fill_buf().map_err(io)?;
            if buf.is_empty() {
                return Err(FeedError::new("empty_feed", "the feed is empty"));
            }
            if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                input.consume(3);
                continue;
            }
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if ws == 0 {
                break;
            }
            input.consume(ws);
        }
        let first = input.fill_buf().map_err(io)?;
        if first.first() == Some(&b'<') {
            return Self::open_xml(input);
        }
        // Header line from what is buffered (a header longer than the buffer is read with
        // the csv reader anyway; detection only needs a sample).
        let sample: Vec<u8> = first
            .iter()
            .copied()
            .take_while(|b| *b != b'\n')
            .take(64 * 1024)
            .collect();
        let count = |d: u8| sample.iter().filter(|b| **b == d).count();
        let (tabs, semis, commas) = (count(b'\t'), count(b';'), count(b','));
        let (delim, format) = if tabs > 0 {
            (b'\t', FeedFormat::Tsv)
        } else if semis > commas {
            (b';', FeedFormat::Semicolon)
        } else {
            (b',', FeedFormat::Csv)
        };
        let lower = String::from_utf8_lossy(&sample).to_ascii_lowercase();
        if lower.contains("<html") || lower.contains("<!doctype") {
            return Err(FeedError::new(
                "not_a_feed",
                "the file is an HTML page, not a product feed",
            ));
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delim)
            .flexible(true)
            .has_headers(false)
            .quoting(delim != b'\t')
            .from_reader(input);
        let mut head = csv::ByteRecord::new();
        let got = reader.read_byte_record(&mut head).map_err(|e| {
            FeedError::new("unreadable", format!("the header row is unreadable: {e}"))
        })?;
        if !got {
            return Err(FeedError::new("empty_feed", "the feed is empty"));
        }
        let headers: Vec<String> = head
            .iter()
            .map(|h| attribute_name(&String::from_utf8_lossy(h)).0)
            .collect();
        if !headers.iter().any(|h| h == "id") {
            let shown: String = lower.chars().take(120).collect();
            return Err(FeedError::new(
                "no_id_column",
                format!(
                    "the header row has no 'id' column, so this is not a product feed (header: {shown})"
                ),
            ));
        }
        let unknown = headers
            .iter()
            .filter(|h| !h.is_empty() && !is_known_attribute(h))
            .cloned()
            .collect();
        Ok(Self {
            format,
            inner: Inner::Delimited {
                reader,
                headers,
                record: csv::ByteRecord::new(),
            },
            position: 0,
            done: false,
            unknown,
        })
    }

    fn open_xml(input: R) -> Result<Self, FeedError> {
        let mut reader = quick_xml::Reader::from_reader(input);
        reader.config_mut().trim_text(false);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let ev = reader
                .read_event_into(&mut buf)
                .map_err(|e| xml_error(&reader, e))?;
            use quick_xml::events::Event;
            match ev {
                Event::DocType(d) => {
                    let t = d.into_inner().to_ascii_lowercase();
                    if t.contains("<!entity") {
                        return Err(FeedError::new(
                            "xml_entities",
                            "the feed declares XML entities in a DOCTYPE; refused (entity expansion)",
                        ));
                    }
                    if t.trim_start().starts_with("html") {
                        return Err(FeedError::new(
                            "not_a_feed",
                            "the file is an HTML page, not a product feed",
                        ));
                    }
                }
                Event::Start(s) | Event::Empty(s) => {
                    let name = s.local_name().as_ref().to_ascii_lowercase();
                    let (format, item_tag) = match name.as_str() {
                        "rss" => (FeedFormat::Rss, "item"),
                        "feed" => (FeedFormat::Atom, "entry"),
                        "html" => {
                            return Err(FeedError::new(
                                "not_a_feed",
                                "the file is an HTML page, not a product feed",
                            ));
                        }
                        other => {
                            return Err(FeedError::new(
                                "not_a_feed",
                                format!(
                                    "the XML root element is <{other}>, not an RSS <rss> or Atom <feed> product feed"
                                ),
                            ));
                        }
                    };
                    return Ok(Self {
                        format,
                        inner: Inner::Xml {
                            reader,
                            buf,
                            item_tag,
                        },
                        position: 0,
                        done: false,
                        unknown: vec![],
                    });
                }
                Event::Eof => {
                    return Err(FeedError::new("empty_feed", "the XML document is empty"));
                }
                _ => {}
            }
        }
    }

    /// The detected format.
    pub fn format(&self) -> FeedFormat {
        self.format
    }

    /// Attribute names outside the Google and atalanda specs met so far (for delimited
    /// feeds: the columns of the header row).
    pub fn unknown_attributes(&self) -> &[String] {
        &self.unknown
    }

    fn next_delimited(&mut self) -> Option<Result<RawItem, FeedError>> {
        let Inner::Delimited {
            reader,
            headers,
            record,
        } = &mut self.inner
        else {
            return None;
        };
        loop {
            match reader.read_byte_record(record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    return Some(Err(FeedError::new(
                        "unreadable",
                        format!("record after item {} is unreadable: {e}", self.position),
                    )));
                }
            }
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue; // blank line
            }
            self.position += 1;
            let mut item = RawItem {
                position: self.position,
                ..Default::default()
            };
            for (i, field) in record.iter().enumerate() {
                let Some(name) = headers.get(i).filter(|h| !h.is_empty()) else {
                    continue;
                };
                if field.len() > MAX_FIELD_BYTES {
                    return Some(Err(FeedError::new(
                        "field_too_large",
                        format!(
                            "item {}: {name} is larger than {MAX_FIELD_BYTES} bytes",
                            self.position
                        ),
                    )));
                }
                let value = match std::str::from_utf8(field) {
                    Ok(s) => s.to_string(),
                    Err(_) => {
                        item.invalid_utf8.push(name.clone());
                        String::from_utf8_lossy(field).into_owned()
                    }
                };
                // atalanda's example quotes values with single quotes.
                let v = value.trim();
                let v = if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
                    v[1..v.len() - 1].to_string()
                } else {
                    value
                };
                item.attrs.entry(name.clone()).or_default().push(v);
            }
            return Some(Ok(item));
        }
    }

    fn next_xml(&mut self) -> Option<Result<RawItem, FeedError>> {
        use quick_xml::events::Event;
        let Inner::Xml {
            reader,
            buf,
            item_tag,
        } = &mut self.inner
        else {
            return None;
        };
        let mut item: Option<RawItem> = None;
        // Names of the elements open inside the item: [child, grandchild, …].
        let mut stack: Vec<(String, bool)> = vec![];
        let mut text = String::new();
        let mut subs: Vec<String> = vec![];
        let mut from_g: std::collections::HashSet<String> = Default::default();
        let mut depth = 1usize;
        loop {
            buf.clear();
            let ev = match reader.read_event_into(buf) {
                Ok(ev) => ev,
                Err(e) => return Some(Err(xml_error(reader, e))),
            };
            match ev {
                Event::Start(s) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some(Err(FeedError::new(
                            "too_deep",
                            format!("elements are nested deeper than {MAX_DEPTH} levels"),
                        )));
                    }
                    let qname = s.name().as_ref().to_string();
                    let local = s.local_name().as_ref().to_ascii_lowercase();
                    match &mut item {
                        None if local == *item_tag => {
                            self.position += 1;
                            item = Some(RawItem {
                                position: self.position,
                                ..Default::default()
                            });
                            stack.clear();
                        }
                        None => {}
                        Some(_) => {
                            stack.push(attribute_name(&qname));
                            if stack.len() == 1 {
                                text.clear();
                                subs.clear();
                            } else {
                                text.clear();
                            }
                        }
                    }
                }
                Event::Empty(s) => {
                    if let Some(it) = &mut item
                        && stack.is_empty()
                    {
                        let (name, _) = attribute_name(s.name().as_ref());
                        // Atom: <link rel="alternate" href="…"/>
                        if name == "link" {
                            let mut href = None;
                            let mut rel = None;
                            for a in s.attributes().flatten() {
                                match a.key.as_ref() {
                                    "href" => {
                                        href = a
                                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                            .ok()
                                            .map(|v| v.into_owned())
                                    }
                                    "rel" => {
                                        rel = a
                                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                            .ok()
                                            .map(|v| v.into_owned())
                                    }
                                    _ => {}
                                }
                            }
                            if let Some(h) = href
                                && rel.as_deref().is_none_or(|r| r == "alternate")
                                && !it.attrs.contains_key("link")
                            {
                                it.attrs.insert("link".into(), vec![h]);
                            }
                        }
                    }
                }
                Event::Text(t) if item.is_some() && !stack.is_empty() => {
                    text.push_str(&t.xml10_content());
                }
                Event::CData(t) if item.is_some() && !stack.is_empty() => {
                    text.push_str(&t.into_inner());
                }
                Event::GeneralRef(r) if item.is_some() && !stack.is_empty() => {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => text.push(c),
                        _ => {
                            let name = r.into_inner();
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(v) => text.push_str(v),
                                None => {
                                    text.push('&');
                                    text.push_str(&name);
                                    text.push(';');
                                }
                            }
                        }
                    }
                }
                Event::End(e) => {
                    depth = depth.saturating_sub(1);
                    let Some(it) = &mut item else {
                        continue;
                    };
                    if stack.is_empty() {
                        // the item's own end tag
                        if e.local_name().as_ref().eq_ignore_ascii_case(item_tag) {
                            return item.take().map(Ok);
                        }
                        continue;
                    }
                    if text.len() > MAX_FIELD_BYTES {
                        return Some(Err(FeedError::new(
                            "field_too_large",
                            format!(
                                "item {}: a value is larger than {MAX_FIELD_BYTES} bytes",
                                it.position
                            ),
                        )));
                    }
                    let (name, is_g) = stack.pop().unwrap_or_default();
                    if !stack.is_empty() {
                        // nested attribute (g:shipping/g:price): collected into the parent
                        let v = text.trim();
                        if !v.is_empty() {
                            subs.push(v.to_string());
                        }
                        text.clear();
                        continue;
                    }
                    let value = if subs.is_empty() {
                        std::mem::take(&mut text)
                    } else {
                        subs.join(":")
                    };
                    subs.clear();
                    text.clear();
                    let name = match (self.format, name.as_str()) {
                        (FeedFormat::Atom, "summary" | "content") => "description".to_string(),
                        _ => name,
                    };
                    if it.attrs.len() >= MAX_ATTRIBUTES && !it.attrs.contains_key(&name) {
                        continue;
                    }
                    if !is_g && !name.contains(':') && from_g.contains(&name) {
                        continue; // the g: form wins over the plain RSS/Atom element
                    }
                    if is_g && !from_g.contains(&name) {
                        from_g.insert(name.clone());
                        it.attrs.remove(&name);
                    }
                    if !is_known_attribute(&name)
                        && !self.unknown.contains(&name)
                        && self.unknown.len() < 100
                    {
                        self.unknown.push(name.clone());
                    }
                    it.attrs.entry(name).or_default().push(value);
                }
                Event::Eof => {
                    if item.is_some() {
                        return Some(Err(FeedError::new(
                            "malformed_xml",
                            format!("the feed ends inside item {}", self.position),
                        )));
                    }
                    return None;
                }
                Event::DocType(_) => {
                    return Some(Err(FeedError::new(
                        "malformed_xml",
                        "a DOCTYPE inside the document",
                    )));
                }
                _ => {}
            }
        }
    }
}

fn xml_error<R>(reader: &quick_xml::Reader<R>, e: quick_xml::Error) -> FeedError {
    let pos = reader.error_position();
    match &e {
        quick_xml::Error::Encoding(_) => FeedError::new(
            "invalid_utf8",
            format!("the feed is not valid UTF-8 (near byte {pos})"),
        ),
        _ => FeedError::new(
            "malformed_xml",
            format!("the XML is malformed near byte {pos}: {e}"),
        ),
    }
}

impl<R: BufRead> Iterator for FeedReader<R> {
    type Item = Result<RawItem, FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match self.inner {
            Inner::Delimited { .. } => self.next_delimited(),
            Inner::Xml { .. } => self.next_xml(),
        };
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Result<Vec<FeedItem>, FeedError> {
        let r = FeedReader::open(text.as_bytes())?;
        r.map(|i| i.map(|i| normalize(&i, Currency::EUR))).collect()
    }

    #[test]
    fn prices_in_every_form() {
        let eur = Currency::EUR;
        assert_eq!(parse_price("63.60 EUR", eur).unwrap().minor, 6360);
        assert_eq!(parse_price("15.0 EUR", eur).unwrap().minor, 1500);
        let bare = parse_price("119.99", eur).unwrap();
        assert_eq!((bare.minor, bare.explicit_currency), (11999, false));
        let aed = parse_price("AED 15", eur).unwrap();
        assert_eq!((aed.minor, aed.currency.as_str()), (1500, "AED"));
        assert_eq!(parse_price("63.60EUR", eur).unwrap().minor, 6360);
        assert_eq!(parse_price("EUR", eur).unwrap_err().0, "invalid_price");
        assert_eq!(
            parse_price("12 XYZ", eur).unwrap_err().0,
            "unknown_currency"
        );
        assert_eq!(parse_price("abc EUR", eur).unwrap_err().0, "invalid_price");
    }

    #[test]
    fn atom_with_g_namespace_and_cdata() {
        let feed = r#"<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
 <entry>
  <id>tag:x,1</id><g:id>A1</g:id>
  <title>Plain</title><g:title><![CDATA[Tom & <b>Jerry</b>]]></g:title>
  <link rel="alternate" href="https://x.test/a1"/>
  <summary>Caf&#233; &amp; more</summary>
  <g:price>10.00 EUR</g:price><g:availability>in stock</g:availability>
  <g:image_link>ftp://x.test/a.png</g:image_link>
  <g:additional_image_link>https://x.test/1.png</g:additional_image_link>
  <g:additional_image_link>https://x.test/2.png</g:additional_image_link>
 </entry>
</feed>"#;
        let r = FeedReader::open(feed.as_bytes()).unwrap();
        assert_eq!(r.format(), FeedFormat::Atom);
        let it = items(feed).unwrap().remove(0);
        assert_eq!(it.product.id, "A1");
        assert_eq!(it.product.title.as_deref(), Some("Tom & <b>Jerry</b>"));
        assert_eq!(it.product.description.as_deref(), Some("Café & more"));
        assert_eq!(it.product.link.as_deref(), Some("https://x.test/a1"));
        assert_eq!(it.product.availability, Some(Availability::InStock));
        assert_eq!(it.product.additional_image_links.len(), 2);
        assert_eq!(it.errors[0].code, "invalid_url");
    }

    #[test]
    fn entity_declarations_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><rss><channel><item><g:id>&lol2;</g:id></item></channel></rss>"#;
        assert_eq!(items(bomb).unwrap_err().code, "xml_entities");
    }

    #[test]
    fn html_is_not_a_feed() {
        let e = items("<!DOCTYPE html><html><body>hi</body></html>").unwrap_err();
        assert_eq!(e.code, "not_a_feed");
        let e = items("name,price\nx,1\n").unwrap_err();
        assert_eq!(e.code, "no_id_column");
    }

    #[test]
    fn semicolon_with_quotes_and_stray_delimiter() {
        let feed = "id;title;price;availability;atalanda:quantity;atalanda:tax_rate;\n'1';'Schal';'119.99';'in stock';'3';'19'\n";
        let r = FeedReader::open(feed.as_bytes()).unwrap();
        assert_eq!(r.format(), FeedFormat::Semicolon);
        let it = items(feed).unwrap().remove(0);
        assert_eq!(it.product.price_minor, Some(11999));
        assert_eq!(it.product.quantity, Some(3));
        assert_eq!(it.product.tax_rate.as_deref(), Some("19"));
        assert!(it.warnings.iter().any(|w| w.code == "no_currency"));
        assert!(it.errors.is_empty(), "{:?}", it.errors);
    }
}
