//! Domain types, parsed once at the edge. Core code only sees these, never raw strings.
//!
//! Every type here has private fields and a `parse` constructor that returns a
//! [`DomainError`] naming what is wrong, so an invalid value cannot exist past the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused. The edge that parsed it names the field in its own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    /// Stable, machine-readable reason, e.g. `invalid_subdomain`.
    pub code: &'static str,
    /// Human-readable explanation of what is wrong with the value.
    pub message: String,
}

impl DomainError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Subdomains that may never be given to a merchant: they name platform surfaces
/// or are commonly abused for phishing.
pub const RESERVED_SUBDOMAINS: &[&str] = &[
    "admin",
    "api",
    "www",
    "app",
    "dashboard",
    "mail",
    "smtp",
    "imap",
    "pop",
    "ftp",
    "static",
    "assets",
    "cdn",
    "status",
    "help",
    "support",
    "docs",
    "blog",
    "souk",
    "root",
    "system",
    "billing",
    "auth",
    "login",
    "signup",
    "account",
    "accounts",
    "store",
    "shop",
    "s",
    "ws",
    "metrics",
    "healthz",
    "localhost",
];

/// A merchant's URL handle and platform subdomain: one DNS label (RFC 1035 §2.3.1,
/// lowercase), 3–63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`,
/// and not one of [`RESERVED_SUBDOMAINS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct Subdomain(String);

impl Subdomain {
    /// Parses a subdomain. Uppercase ASCII is folded to lowercase; anything else
    /// outside `[a-z0-9-]` is refused (`5àsec` is not a DNS label).
    ///
    /// Errors: `invalid_subdomain` (shape), `reserved_subdomain`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.len() < 3 {
            return Err(DomainError::new(
                "invalid_subdomain",
                format!("subdomain '{raw}' is too short (3 characters at least)"),
            ));
        }
        if s.len() > 63 {
            return Err(DomainError::new(
                "invalid_subdomain",
                format!("subdomain '{raw}' is too long (63 characters at most)"),
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(DomainError::new(
                "invalid_subdomain",
                format!(
                    "subdomain '{raw}' is not a DNS label: '{bad}' is not allowed (use a-z, 0-9 and '-')"
                ),
            ));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(DomainError::new(
                "invalid_subdomain",
                format!("subdomain '{raw}' may not start or end with '-'"),
            ));
        }
        if RESERVED_SUBDOMAINS.contains(&s.as_str()) {
            return Err(DomainError::new(
                "reserved_subdomain",
                format!("subdomain '{s}' is reserved by the platform"),
            ));
        }
        Ok(Self(s))
    }

    /// Derives a subdomain candidate from a free-form name in any script: transliterates
    /// it to ASCII with `deunicode` (`Blažek` → `blazek`, `Kiğılı` → `kigili`, `Đak` →
    /// `dak`, `ユニクロ` → `yunikuro`, `Снежная королева` → `snezhnaia-koroleva`; no
    /// language-specific rules such as German `ö` → `oe`), lowercases, turns every other run
    /// of characters into one `-` (`&` becomes `and`), and cuts to 63 characters. The result
    /// still goes through [`Subdomain::parse`].
    pub fn slugify(name: &str) -> String {
        slugify(&deunicode::deunicode(name), 63)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Subdomain {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Subdomain> for String {
    fn from(value: Subdomain) -> Self {
        value.0
    }
}

impl fmt::Display for Subdomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase ASCII slug: accents folded, runs of other characters collapsed to `-`.
pub fn slugify(name: &str, max: usize) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        let folded: &str = match c {
            'à' | 'á' | 'â' | 'ã' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Å' => "a",
            'ä' | 'Ä' | 'æ' | 'Æ' => "ae",
            'ç' | 'Ç' => "c",
            'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "i",
            'ñ' | 'Ñ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ø' => "o",
            'ö' | 'Ö' | 'œ' | 'Œ' => "oe",
            'ù' | 'ú' | 'û' | 'Ù' | 'Ú' | 'Û' => "u",
            'ü' | 'Ü' => "ue",
            'ß' => "ss",
            '&' => "-and-",
            '\'' | '’' => "",
            _ => "",
        };
        if !folded.is_empty() {
            for f in folded.chars() {
                if f == '-' {
                    if !dash && !out.is_empty() {
                        out.push('-');
                        dash = true;
                    }
                } else {
                    out.push(f);
                    dash = false;
                }
            }
        } else if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if c == '\'' || c == '’' {
            // apostrophes vanish: "Ferrari's" -> "ferraris"
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    let mut s = out.trim_matches('-').to_string();
    if s.len() > max {
        s.truncate(max);
        s = s.trim_end_matches('-').to_string();
    }
    s
}

/// A product handle: the URL slug of a product, unique per tenant. 1–255 characters
/// of `a-z`, `0-9` and `-` (Shopify product CSV "Handle" / "URL handle" column rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    /// Errors: `invalid_handle` when empty, too long or containing other characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DomainError::new(
                "invalid_handle",
                "handle must not be empty",
            ));
        }
        if s.len() > 255 {
            return Err(DomainError::new(
                "invalid_handle",
                "handle is too long (255 characters at most)",
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(DomainError::new(
                "invalid_handle",
                format!("handle '{s}' contains '{bad}': use lowercase a-z, 0-9 and '-'"),
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// Builds a handle from a title (`"Ocean Blue Shirt"` → `ocean-blue-shirt`).
    /// Errors when the title has no letters or digits at all.
    pub fn from_title(title: &str) -> Result<Self, DomainError> {
        Self::parse(&slugify(title, 255))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Handle {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Handle> for String {
    fn from(value: Handle) -> Self {
        value.0
    }
}
impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address, trimmed and lowercased. Deliberately simple (one `@`, a local part,
/// a domain with a dot and no spaces, at most 254 characters per RFC 5321 §4.5.3.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Errors: `invalid_email`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_lowercase();
        let err = || {
            DomainError::new(
                "invalid_email",
                format!("'{raw}' is not a valid e-mail address"),
            )
        };
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err());
        }
        let (local, domain) = s.split_once('@').ok_or_else(err)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(err());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Email {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}
impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217 currency code (three uppercase letters) with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");
    pub const USD: Currency = Currency(*b"USD");

    /// Errors: `invalid_currency` unless three ASCII letters (case folded to upper).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 3 || !b.iter().all(|c| c.is_ascii_uppercase()) {
            return Err(DomainError::new(
                "invalid_currency",
                format!("'{raw}' is not an ISO 4217 currency code (e.g. EUR)"),
            ));
        }
        Ok(Self([b[0], b[1], b[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII by construction.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of decimal places of the minor unit (ISO 4217 table; 2 for most).
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "CLP" | "ISK" | "VND" | "XAF" | "XOF" | "XPF" | "UGX" | "PYG"
            | "BIF" | "DJF" | "GNF" | "KMF" | "RWF" | "VUV" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
            _ => 2,
        }
    }
}
impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_string()
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Currency {
    /// The usual currency of a country (ISO 3166-1 alpha-2, any case): the euro area →
    /// EUR, SE → SEK, CH/LI → CHF, GB → GBP, US → USD, NO → NOK, DK → DKK, PL → PLN,
    /// CZ → CZK, HU → HUF, RO → RON, BG → BGN, IS → ISK, CA → CAD, AU → AUD, JP → JPY.
    /// `None` for other countries.
    pub fn of_country(country: &str) -> Option<Currency> {
        const EURO: &[&str] = &[
            "AT", "BE", "HR", "CY", "EE", "FI", "FR", "DE", "GR", "IE", "IT", "LV", "LT", "LU",
            "MT", "NL", "PT", "SK", "SI", "ES", "MC", "SM", "VA", "AD", "ME", "XK",
        ];
        let cc = country.trim().to_ascii_uppercase();
        let code = match cc.as_str() {
            c if EURO.contains(&c) => "EUR",
            "SE" => "SEK",
            "CH" | "LI" => "CHF",
            "GB" => "GBP",
            "US" => "USD",
            "NO" => "NOK",
            "DK" => "DKK",
            "PL" => "PLN",
            "CZ" => "CZK",
            "HU" => "HUF",
            "RO" => "RON",
            "BG" => "BGN",
            "IS" => "ISK",
            "CA" => "CAD",
            "AU" => "AUD",
            "JP" => "JPY",
            _ => return None,
        };
        Currency::parse(code).ok()
    }
}

/// Parses a plain decimal amount (`12`, `12.5`, `.5`, or `9,95` with a single `,` as the
/// decimal mark) into integer minor units with `exponent` decimals (see
/// [`Currency::exponent`]). Money is always stored and computed as minor units plus an
/// ISO 4217 code, never as a float.
///
/// Errors (`invalid_price`): empty, exponent notation (`3.65275E+11`), negative, more
/// decimals than the currency has, an ambiguous `1,000`, or above 10^12 minor units.
pub fn parse_decimal_minor(raw: &str, exponent: u32) -> Result<i64, DomainError> {
    let s = raw.trim();
    let err = |why: &str| DomainError::new("invalid_price", format!("price '{raw}' {why}"));
    if s.is_empty() {
        return Err(err("is empty"));
    }
    // Only a number written like `3.65275E+11` is exponent notation; `true`, `free` or
    // `19.99 EUR` are simply not numbers (reported below).
    if s.contains(['e', 'E'])
        && s.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && s.chars()
            .all(|c| c.is_ascii_digit() || "eE+-.,".contains(c))
    {
        return Err(err(
            "uses exponent notation (a spreadsheet may have mangled it)",
        ));
    }
    if s.starts_with('-') {
        return Err(err("is negative"));
    }
    if let Some((_, after)) = s.split_once(',')
        && !s.contains('.')
        && after.len() == 3
        && after.chars().all(|c| c.is_ascii_digit())
    {
        return Err(err(
            "is ambiguous: ',' followed by three digits may be a thousands separator",
        ));
    }
    let s = if s.matches(',').count() == 1 && !s.contains('.') {
        s.replace(',', ".")
    } else {
        s.to_string()
    };
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s.as_str(), ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(err(
            if s.chars().any(char::is_alphabetic) && s.chars().any(|c| c.is_ascii_digit()) {
                "is not a number (write the amount alone, e.g. 19.99, in the store currency)"
            } else {
                "is not a number"
            },
        ));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() as u32 > exponent {
        return Err(err(&format!("has more than {exponent} decimals")));
    }
    let int_v: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err("is too large"))?
    };
    let mut frac_v: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err("is not a number"))?
    };
    for _ in frac.len() as u32..exponent {
        frac_v *= 10;
    }
    int_v
        .checked_mul(10_i64.pow(exponent))
        .and_then(|v| v.checked_add(frac_v))
        .filter(|v| *v <= 1_000_000_000_000)
        .ok_or_else(|| err("is too large"))
}

/// `1250, EUR` → `"12.50 EUR"`.
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let e = currency.exponent();
    if e == 0 {
        return format!("{minor} {currency}");
    }
    let p = 10_i64.pow(e);
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.abs();
    format!(
        "{sign}{}.{:0width$} {currency}",
        m / p,
        m % p,
        width = e as usize
    )
}

/// A stock-keeping unit: 1–64 printable characters, no whitespace at the ends; unique per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// Errors: `invalid_sku`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().trim_start_matches('\'');
        if s.is_empty() || s.len() > 64 || s.chars().any(|c| c.is_control()) {
            return Err(DomainError::new(
                "invalid_sku",
                format!("SKU '{raw}' must be 1 to 64 printable characters"),
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Sku {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Sku> for String {
    fn from(value: Sku) -> Self {
        value.0
    }
}

/// A custom domain name (RFC 1035 host name, lowercase, at least two labels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// Errors: `invalid_domain`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let err = || {
            DomainError::new(
                "invalid_domain",
                format!("'{raw}' is not a valid domain name"),
            )
        };
        if s.len() > 253 || !s.contains('.') {
            return Err(err());
        }
        for label in s.split('.') {
            if label.is_empty()
                || label.len() > 63
                || label.starts_with('-')
                || label.ends_with('-')
                || !label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(err());
            }
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for DomainName {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<DomainName> for String {
    fn from(value: DomainName) -> Self {
        value.0
    }
}

/// A custom domain a merchant brings (`shop.example.lu`, `bücher.example`), parsed once at
/// the edge: the A-label (punycode, RFC 5890) form that DNS, TLS and the `Host` header use,
/// plus the Unicode form when the name was given as an IDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDomain {
    ascii: DomainName,
    unicode: Option<String>,
}

impl CustomDomain {
    /// Parses a host name typed by a merchant. Unicode names are converted to A-labels
    /// with UTS #46 (the `idna` crate), so `Bücher.Example` becomes
    /// `xn--bcher-kva.example`. `base_domain` is the platform's own domain: it and its
    /// subdomains are refused.
    ///
    /// Errors (codes): `domain_too_long` (over 253 characters in A-label form),
    /// `ip_literal` (an IPv4/IPv6 address), `invalid_domain` (not a host name with at
    /// least two labels of letters, digits and inner hyphens, each ≤ 63 characters),
    /// `platform_domain` (the base domain or a name under it).
    pub fn parse(raw: &str, base_domain: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim().trim_end_matches('.');
        let shown: String = trimmed.chars().take(80).collect();
        if trimmed.is_empty() {
            return Err(DomainError::new(
                "invalid_domain",
                "a domain name is required",
            ));
        }
        let bare = trimmed.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Err(DomainError::new(
                "ip_literal",
                format!("'{shown}' is an IP address; give a host name such as shop.example.com"),
            ));
        }
        if trimmed.contains("://") || trimmed.contains('/') || trimmed.contains(':') {
            return Err(DomainError::new(
                "invalid_domain",
                format!("'{shown}' is not a bare host name: leave out the scheme, port and path"),
            ));
        }
        let is_ascii = trimmed.is_ascii();
        let ascii = if is_ascii {
            trimmed.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(trimmed).map_err(|_| {
                DomainError::new(
                    "invalid_domain",
                    format!("'{shown}' is not a valid internationalized domain name"),
                )
            })?
        };
        if ascii.len() > 253 {
            return Err(DomainError::new(
                "domain_too_long",
                format!(
                    "the domain is {} characters long (in A-label form); at most 253 are allowed",
                    ascii.len()
                ),
            ));
        }
        let base = base_domain.trim_end_matches('.').to_ascii_lowercase();
        if ascii == base || ascii.ends_with(&format!(".{base}")) {
            return Err(DomainError::new(
                "platform_domain",
                format!(
                    "'{ascii}' is the platform's own domain or under it; platform subdomains need no verification"
                ),
            ));
        }
        let ascii = DomainName::parse(&ascii)
            .map_err(|_| DomainError::new("invalid_domain", format!("'{shown}' is not a valid host name (letters, digits and hyphens, at least two labels)")))?;
        // Punycode labels must decode (no `xn--` garbage).
        let (unicode, decoded) = idna::domain_to_unicode(ascii.as_str());
        if decoded.is_err() {
            return Err(DomainError::new(
                "invalid_domain",
                format!("'{shown}' holds an A-label (xn--…) that does not decode"),
            ));
        }
        let unicode = (unicode != ascii.as_str()).then_some(unicode);
        Ok(Self { ascii, unicode })
    }

    /// The A-label form (what DNS, SNI and `Host` carry).
    pub fn ascii(&self) -> &DomainName {
        &self.ascii
    }

    /// The Unicode form, when it differs from the A-label form.
    pub fn unicode(&self) -> Option<&str> {
        self.unicode.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_states_parse_and_derive() {
        assert_eq!(
            OrderStatus::parse(" Cancelled "),
            Ok(OrderStatus::Cancelled)
        );
        assert_eq!(
            FinancialStatus::parse("partially_paid").map(|s| s.as_str()),
            Ok("partially_paid")
        );
        let e = TicketPriority::parse("urgent").unwrap_err();
        assert_eq!(e.code, "invalid_priority");
        assert!(e.message.contains("low, normal, high"), "{}", e.message);
        assert_eq!(FinancialStatus::of(0, 1000), FinancialStatus::Pending);
        assert_eq!(FinancialStatus::of(1, 1000), FinancialStatus::PartiallyPaid);
        assert_eq!(FinancialStatus::of(1000, 1000), FinancialStatus::Paid);
        assert_eq!(FinancialStatus::of(0, 0), FinancialStatus::Paid);
    }

    #[test]
    fn custom_domains() {
        let d = CustomDomain::parse(" Shop.Example.LU. ", "souk.test").unwrap();
        assert_eq!(d.ascii().as_str(), "shop.example.lu");
        assert_eq!(d.unicode(), None);
        let d = CustomDomain::parse("Bücher.example", "souk.test").unwrap();
        assert_eq!(d.ascii().as_str(), "xn--bcher-kva.example");
        assert_eq!(d.unicode(), Some("bücher.example"));
        let d = CustomDomain::parse("xn--bcher-kva.example", "souk.test").unwrap();
        assert_eq!(d.unicode(), Some("bücher.example"));
        let code = |s: &str| CustomDomain::parse(s, "souk.test").unwrap_err().code;
        assert_eq!(code("127.0.0.1"), "ip_literal");
        assert_eq!(code("[::1]"), "ip_literal");
        assert_eq!(code("souk.test"), "platform_domain");
        assert_eq!(code("shop.souk.test"), "platform_domain");
        assert_eq!(code("localhost"), "invalid_domain");
        assert_eq!(code("https://shop.example.com/"), "invalid_domain");
        assert_eq!(code("bad_name.example"), "invalid_domain");
        assert_eq!(code("xn--zz.example"), "invalid_domain");
        let long = format!("{}.example", vec!["a".repeat(60); 5].join("."));
        assert_eq!(code(&long), "domain_too_long");
    }

    #[test]
    fn subdomain_rules() {
        assert_eq!(Subdomain::parse("Casa").unwrap().as_str(), "casa");
        assert_eq!(
            Subdomain::parse("5àsec").unwrap_err().code,
            "invalid_subdomain"
        );
        assert_eq!(
            Subdomain::parse("admin").unwrap_err().code,
            "reserved_subdomain"
        );
        assert!(Subdomain::parse("ab").is_err());
        assert!(Subdomain::parse(&"a".repeat(64)).is_err());
        assert!(Subdomain::parse("-abc").is_err());
        assert_eq!(Subdomain::slugify("5àsec"), "5asec");
        assert_eq!(
            Subdomain::slugify("Ferrari's Café & Bar"),
            "ferraris-cafe-and-bar"
        );
    }

    #[test]
    fn prices() {
        assert_eq!(parse_decimal_minor("12.99", 2).unwrap(), 1299);
        assert_eq!(parse_decimal_minor(".5", 2).unwrap(), 50);
        assert_eq!(parse_decimal_minor("50", 2).unwrap(), 5000);
        assert_eq!(parse_decimal_minor("9,95", 2).unwrap(), 995);
        assert_eq!(parse_decimal_minor("1.500", 2).unwrap(), 150);
        assert!(parse_decimal_minor("3.65275E+11", 2).is_err());
        assert!(parse_decimal_minor("abc", 2).is_err());
        assert!(
            parse_decimal_minor("1,000", 2).is_err(),
            "ambiguous thousands separator"
        );
        assert!(parse_decimal_minor("1.234", 2).is_err());
        assert!(parse_decimal_minor("-1", 2).is_err());
        assert_eq!(format_minor(1250, Currency::EUR), "12.50 EUR");
    }

    #[test]
    fn emails() {
        assert!(Email::parse("Owner@Shop.LU").is_ok());
        assert!(Email::parse("not-an-email").is_err());
        assert!(Email::parse("a@b").is_err());
        assert!(Email::parse("a b@c.de").is_err());
    }
}

/// Product lifecycle: only `Active` products are visible on the storefront and Store API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Active,
    Draft,
    Archived,
}

impl ProductStatus {
    /// Errors: `invalid_status` for anything but active/draft/archived (case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(Self::Active),
            "draft" => Ok(Self::Draft),
            "archived" => Ok(Self::Archived),
            _ => Err(DomainError::new(
                "invalid_status",
                format!("status '{raw}' must be one of active, draft, archived"),
            )),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draft => "draft",
            Self::Archived => "archived",
        }
    }
}

/// Defines a closed set of lowercase wire strings as an enum with `parse` (case-insensitive,
/// error code `$code` naming the allowed values) and `as_str`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, $code:literal { $( $variant:ident = $s:literal ),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $( $variant ),+ }

        impl $name {
            #[doc = concat!("Errors: `", $code, "` for anything but ", $( "`", $s, "` ", )+ "(case-insensitive).")]
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                match raw.trim().to_ascii_lowercase().as_str() {
                    $( $s => Ok(Self::$variant), )+
                    _ => Err(DomainError::new(
                        $code,
                        format!(
                            "{} '{raw}' must be one of {}",
                            $what,
                            [$( $s ),+].join(", ")
                        ),
                    )),
                }
            }

            /// The wire and storage form.
            pub fn as_str(&self) -> &'static str {
                match self { $( Self::$variant => $s ),+ }
            }
        }
    };
}

wire_enum!(
    /// Order lifecycle. `cancelled` is final: a cancelled order cannot be reopened, closed
    /// or paid.
    OrderStatus, "status", "invalid_status" {
        Open = "open",
        Closed = "closed",
        Cancelled = "cancelled",
    }
);

wire_enum!(
    /// How much of an order is paid; derived from the recorded payments, never set directly.
    /// `refunded` once refunds reach what was paid (`store::fulfillment::record_refund`).
    FinancialStatus, "financial_status", "invalid_financial_status" {
        Pending = "pending",
        PartiallyPaid = "partially_paid",
        Paid = "paid",
        Refunded = "refunded",
    }
);

impl FinancialStatus {
    /// The status of an order of `total` minor units of which `paid` are paid.
    pub fn of(paid: i64, total: i64) -> Self {
        if paid >= total {
            Self::Paid
        } else if paid > 0 {
            Self::PartiallyPaid
        } else {
            Self::Pending
        }
    }
}

wire_enum!(
    /// Whether an order's goods have been shipped or handed over.
    FulfillmentStatus, "fulfillment_status", "invalid_fulfillment_status" {
        Unfulfilled = "unfulfilled",
        Fulfilled = "fulfilled",
    }
);

wire_enum!(
    /// Support ticket lifecycle: `pending` waits on the customer.
    TicketStatus, "status", "invalid_status" {
        Open = "open",
        Pending = "pending",
        Closed = "closed",
    }
);

wire_enum!(
    /// Support ticket priority.
    TicketPriority, "priority", "invalid_priority" {
        Low = "low",
        Normal = "normal",
        High = "high",
    }
);

wire_enum!(
    /// What happens to a variant whose tracked inventory is at or below zero (Shopify's
    /// `Variant Inventory Policy`, 2024+ `Continue selling when out of stock`): `deny`
    /// (the default) stops selling it, `continue` keeps selling (oversell, backorder).
    InventoryPolicy, "inventory_policy", "invalid_inventory_policy" {
        Deny = "deny",
        Continue = "continue",
    }
);

// `wire_enum!` derives the enum, so `#[default]` cannot be put on a variant.
#[allow(clippy::derivable_impls)]
impl Default for InventoryPolicy {
    fn default() -> Self {
        Self::Deny
    }
}

/// Whether a variant can be bought: its stock is not tracked, or it may be sold when
/// out of stock (`continue`), or its `inventory` (units on hand, may be negative) is
/// above zero. The one rule storefronts, the Store API and checkout share.
pub fn variant_available(tracked: bool, policy: InventoryPolicy, inventory: i64) -> bool {
    !tracked || policy == InventoryPolicy::Continue || inventory > 0
}

#[cfg(test)]
mod inventory_tests {
    use super::*;

    #[test]
    fn subdomains_from_names_in_any_script() {
        for (name, want) in [
            ("Blažek", "blazek"),
            ("Kiğılı", "kigili"),
            ("An Phước", "an-phuoc"),
            ("Đak", "dak"),
            ("Åhléns Örebro", "ahlens-orebro"),
            ("ユニクロ", "yunikuro"),
            ("Снежная королева", "snezhnaia-koroleva"),
            ("ოკაიდი", "okaidi"),
            ("artemis-&-passion", "artemis-and-passion"),
            ("le-réservoir", "le-reservoir"),
        ] {
            assert_eq!(Subdomain::slugify(name), want, "{name}");
        }
    }

    #[test]
    fn prices_with_letters_are_not_exponent_notation() {
        for raw in ["true", "free", "19.99 EUR", "e"] {
            let m = parse_decimal_minor(raw, 2).unwrap_err().message;
            assert!(!m.contains("exponent"), "{raw}: {m}");
            assert!(m.contains("is not a number"), "{raw}: {m}");
        }
        assert!(
            parse_decimal_minor("19.99 EUR", 2)
                .unwrap_err()
                .message
                .contains("amount alone")
        );
        assert!(
            parse_decimal_minor("3.65275E+11", 2)
                .unwrap_err()
                .message
                .contains("exponent")
        );
    }

    #[test]
    fn availability_follows_tracking_and_policy() {
        assert!(variant_available(false, InventoryPolicy::Deny, 0));
        assert!(variant_available(true, InventoryPolicy::Continue, -51));
        assert!(variant_available(true, InventoryPolicy::Deny, 1));
        assert!(!variant_available(true, InventoryPolicy::Deny, 0));
        assert!(!variant_available(true, InventoryPolicy::Deny, -3));
        assert_eq!(InventoryPolicy::default(), InventoryPolicy::Deny);
        assert_eq!(
            InventoryPolicy::parse(" Continue ").map(|p| p.as_str()),
            Ok("continue")
        );
        assert_eq!(
            InventoryPolicy::parse("later").map_err(|e| e.code),
            Err("invalid_inventory_policy")
        );
    }
}
