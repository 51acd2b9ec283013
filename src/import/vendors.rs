//! Bulk vendor (merchant) CSV parsing.
//!
//! Format (Souk's own, see `shared/data/README.md`), one merchant per row:
//! `vendor_name,subdomain,owner_name,owner_email,owner_phone,business_address,business_city,
//! business_postal_code,business_country,letzshop_csv_url,initial_password`.
//! `vendor_name` and `owner_email` columns are required, all others optional; extra columns
//! are ignored. Subdomains must be DNS labels (RFC 1035 §2.3.1, via
//! [`Subdomain::parse`]); countries are ISO 3166-1 alpha-2 codes.

use super::{ImportError, RowError, Table};
use crate::domain::{Email, Subdomain};
use std::collections::HashMap;

/// One valid merchant to create.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VendorRow {
    /// Row (1-based, header = 1) the merchant came from.
    pub row: usize,
    /// Display name, as written (trimmed).
    pub vendor_name: String,
    /// Unique within the file and not taken on the platform (per the `is_taken` callback).
    pub subdomain: Subdomain,
    /// `true` when the file gave the subdomain, `false` when it was derived from the name.
    pub subdomain_explicit: bool,
    /// The store currency: the `currency` column (ISO 4217), else the usual currency of
    /// `business_country` ([`crate::domain::Currency::of_country`]), else EUR.
    pub currency: crate::domain::Currency,
    /// Owner's full name.
    pub owner_name: Option<String>,
    /// Trimmed and lowercased.
    pub owner_email: Email,
    /// Owner's phone number, as written (e.g. `+352 621 149 174`).
    pub owner_phone: Option<String>,
    /// Street address.
    pub business_address: Option<String>,
    /// City or locality.
    pub business_city: Option<String>,
    /// Postal code, as written (e.g. `L-9779`).
    pub business_postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 code, uppercased (`LU`).
    pub business_country: Option<String>,
    /// An `http://` or `https://` URL of the merchant's Letzshop product feed.
    pub letzshop_csv_url: Option<String>,
    /// Plain-text initial password (at least 8 characters); hash it before storing.
    pub initial_password: Option<String>,
}

/// The result of parsing a vendor CSV.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParsedVendors {
    /// Valid rows, in file order.
    pub rows: Vec<VendorRow>,
    /// Problems, sorted by row; a row with any error is not in `rows` (it may have several).
    pub errors: Vec<RowError>,
    /// Number of (non-blank) data records: `rows.len()` + number of distinct error rows.
    pub total: usize,
    /// Notes on rows that are still imported, e.g. an explicit subdomain written with
    /// accents or `&` that was normalised (`käserei` → `kaserei`).
    pub warnings: Vec<RowError>,
    /// Row → physical line where its record starts (see [`RowError::line`]).
    #[serde(skip)]
    pub lines: HashMap<usize, usize>,
}

/// An explicit subdomain as given, or, when it is not a DNS label (accents, `&`, spaces,
/// capitals), normalised like a derived one ([`Subdomain::slugify`]) with a warning. A
/// reserved one, or one that normalises to nothing usable, stays an error.
fn normalise_subdomain(
    row: usize,
    raw: &str,
    warnings: &mut Vec<RowError>,
) -> Result<Subdomain, crate::domain::DomainError> {
    match Subdomain::parse(raw) {
        Ok(s) => Ok(s),
        Err(e) if e.code == "invalid_subdomain" => {
            let s = Subdomain::parse(&Subdomain::slugify(raw)).map_err(|_| e)?;
            warnings.push(RowError::new(
                row,
                Some("subdomain"),
                format!("subdomain '{raw}' is not a valid DNS label; '{s}' is used instead"),
            ));
            Ok(s)
        }
        Err(e) => Err(e),
    }
}

/// ISO 3166-1 alpha-2 officially assigned codes (249), concatenated.
const COUNTRIES: &str = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZCACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW";

/// Parses a vendor CSV. `is_taken(subdomain)` says whether the platform already uses a
/// subdomain (existing tenants); it is asked about explicit and derived subdomains.
///
/// Row errors: empty `vendor_name`; invalid `owner_email`; an explicit `subdomain` that is not
/// a valid, unreserved DNS label (`5àsec`, `le-réservoir`), or is taken by an earlier row or by
/// `is_taken`; a `(vendor_name, owner_email)` pair repeating an earlier row (case-insensitive);
/// a `business_country` that is not an ISO code; an `initial_password` under 8 characters; a
/// `letzshop_csv_url` that is not http(s).
///
/// Empty `subdomain`: derived with [`Subdomain::slugify`] from `vendor_name`, `-shop` appended
/// when that is shorter than 3 characters or reserved, then `-2`, `-3`, … while it is taken
/// (in the file or by `is_taken`), staying within 63 characters. All valid explicit
/// subdomains of the file are reserved first, so a derived one never takes a name that an
/// explicit row further down asks for.
///
/// Errors: [`ImportError::Empty`], [`ImportError::NotUtf8`], [`ImportError::Csv`], and
/// [`ImportError::MissingColumn`] without a `vendor_name` or `owner_email` column.
pub fn parse_vendors(
    bytes: &[u8],
    is_taken: &dyn Fn(&str) -> bool,
) -> Result<ParsedVendors, ImportError> {
    let t = Table::read_short_rows_ok(bytes)?;
    for required in ["vendor_name", "owner_email"] {
        if !t.has(required) {
            return Err(ImportError::MissingColumn(required.to_string()));
        }
    }
    let mut errors: Vec<RowError> = t.shape_errors.clone();
    let mut warnings: Vec<RowError> = Vec::new();
    let mut err =
        |row: usize, col: &str, msg: String| errors.push(RowError::new(row, Some(col), msg));
    // Pass 1: validate each row on its own; remember explicit subdomains.
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut candidates: Vec<(VendorRow, bool)> = Vec::new(); // (vendor, still valid)
    for (row, rec) in &t.records {
        let row = *row;
        let get = |n: &str| t.opt(rec, n);
        let mut problems: Vec<(&str, String)> = Vec::new();
        let vendor_name = t.get(rec, "vendor_name");
        if vendor_name.is_empty() {
            problems.push(("vendor_name", "vendor_name is empty".into()));
        }
        let owner_email = Email::parse(&t.get(rec, "owner_email"));
        let owner_email = owner_email
            .map_err(|e| problems.push(("owner_email", e.message)))
            .ok();
        let explicit = get("subdomain").map(|raw| normalise_subdomain(row, &raw, &mut warnings));
        let explicit =
            explicit.and_then(|s| s.map_err(|e| problems.push(("subdomain", e.message))).ok());
        let business_country = get("business_country").map(|s| s.to_ascii_uppercase());
        if let Some(cc) = &business_country {
            let known = cc.len() == 2
                && cc.is_ascii()
                && COUNTRIES.as_bytes().chunks(2).any(|k| k == cc.as_bytes());
            if !known {
                let msg =
                    format!("business_country '{cc}' is not an ISO 3166-1 alpha-2 code (e.g. LU)");
                problems.push(("business_country", msg));
            }
        }
        let currency = match get("currency") {
            Some(c) => crate::domain::Currency::parse(&c)
                .map_err(|e| problems.push(("currency", e.message)))
                .unwrap_or(crate::domain::Currency::EUR),
            None => business_country
                .as_deref()
                .and_then(crate::domain::Currency::of_country)
                .unwrap_or(crate::domain::Currency::EUR),
        };
        let initial_password = get("initial_password");
        if initial_password
            .as_ref()
            .is_some_and(|p| p.chars().count() < 8)
        {
            problems.push((
                "initial_password",
                "initial_password must be at least 8 characters".into(),
            ));
        }
        let letzshop_csv_url = get("letzshop_csv_url");
        let http = |u: &&String| u.starts_with("https://") || u.starts_with("http://");
        if let Some(url) = letzshop_csv_url.as_ref().filter(|u| !http(u)) {
            let msg = format!("letzshop_csv_url '{url}' must start with https:// or http://");
            problems.push(("letzshop_csv_url", msg));
        }
        // Duplicates are checked among otherwise valid rows only, so that a corrected copy of
        // a refused row is not refused as well.
        if let (true, Some(email)) = (problems.is_empty(), &owner_email) {
            let key = (vendor_name.to_lowercase(), email.as_str().to_string());
            match seen.get(&key) {
                Some(first) => {
                    let msg =
                        format!("duplicate of row {first} (same vendor_name and owner_email)");
                    problems.push(("vendor_name", msg))
                }
                None => drop(seen.insert(key, row)),
            }
        }
        let ok = problems.is_empty();
        problems
            .into_iter()
            .for_each(|(col, msg)| err(row, col, msg));
        let (Some(owner_email), true) = (owner_email, ok) else {
            continue;
        };
        let subdomain_explicit = explicit.is_some();
        let vendor = VendorRow {
            row,
            subdomain: explicit.unwrap_or_else(placeholder),
            subdomain_explicit,
            currency,
            owner_name: get("owner_name"),
            owner_email,
            owner_phone: get("owner_phone"),
            business_address: get("business_address"),
            business_city: get("business_city"),
            business_postal_code: get("business_postal_code"),
            business_country,
            letzshop_csv_url,
            initial_password,
            vendor_name,
        };
        candidates.push((vendor, true));
    }
    // Pass 2: reserve explicit subdomains, first row wins.
    let mut used: HashMap<String, usize> = HashMap::new();
    for (v, valid) in candidates.iter_mut().filter(|(v, _)| v.subdomain_explicit) {
        let s = v.subdomain.as_str();
        let taken = match used.get(s) {
            Some(first) => Some(format!("subdomain '{s}' is already taken by row {first}")),
            None if is_taken(s) => Some(format!("subdomain '{s}' is already taken")),
            None => None,
        };
        match taken {
            Some(msg) => {
                *valid = false;
                err(v.row, "subdomain", msg);
            }
            None => {
                used.insert(s.to_string(), v.row);
            }
        }
    }
    // Pass 3: derive the missing ones.
    for (v, valid) in candidates.iter_mut().filter(|(v, _)| !v.subdomain_explicit) {
        match derive(&v.vendor_name, &|s| used.contains_key(s) || is_taken(s)) {
            Some(s) => {
                used.insert(s.as_str().to_string(), v.row);
                v.subdomain = s;
            }
            None => {
                *valid = false;
                let msg = format!(
                    "cannot derive a free subdomain from '{}'; give one in the subdomain column",
                    v.vendor_name
                );
                err(v.row, "subdomain", msg);
            }
        }
    }
    t.locate(&mut errors);
    t.locate(&mut warnings);
    errors.sort_by_key(|e| e.row);
    let rows = candidates
        .into_iter()
        .filter(|(_, valid)| *valid)
        .map(|(v, _)| v)
        .collect();
    warnings.sort_by_key(|e| e.row);
    Ok(ParsedVendors {
        warnings,
        rows,
        errors,
        total: t.records.len() + t.rejected.len(),
        lines: t.lines.clone(),
    })
}

/// Stand-in until pass 3 assigns the derived subdomain.
fn placeholder() -> Subdomain {
    Subdomain::parse("pending").unwrap_or_else(|_| unreachable!("'pending' is a valid subdomain"))
}

/// Slug of `name` (with `-shop` when too short or reserved), then `-2`, `-3`, … until free.
/// `None` when the name has no letters or digits.
fn derive(name: &str, taken: &dyn Fn(&str) -> bool) -> Option<Subdomain> {
    let mut base = Subdomain::slugify(name);
    if base.is_empty() {
        return None;
    }
    if base.len() < 3 || Subdomain::parse(&base).is_err() {
        base.push_str("-shop");
    }
    (1..10_000).find_map(|n| {
        let candidate = if n == 1 {
            base.clone()
        } else {
            let suffix = format!("-{n}");
            let cut = &base[..base.len().min(63 - suffix.len())];
            format!("{}{suffix}", cut.trim_end_matches('-'))
        };
        Subdomain::parse(&candidate)
            .ok()
            .filter(|s| !taken(s.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn data(name: &str) -> Option<Vec<u8>> {
        let local = format!("{}/../shared/data/{name}", env!("CARGO_MANIFEST_DIR"));
        let found =
            std::fs::read(&local).or_else(|_| std::fs::read(format!("/work/shared/data/{name}")));
        found
            .map_err(|e| eprintln!("skipping: {name} not found ({e})"))
            .ok()
    }

    const HEADER: &str = "vendor_name,subdomain,owner_name,owner_email,owner_phone,business_address,business_city,business_postal_code,business_country,letzshop_csv_url,initial_password\n";

    fn parse(body: &str, taken: &[&str]) -> ParsedVendors {
        parse_vendors(format!("{HEADER}{body}").as_bytes(), &|s| {
            taken.contains(&s)
        })
        .unwrap()
    }

    fn errs(p: &ParsedVendors, row: usize) -> Vec<(Option<&str>, &str)> {
        p.errors
            .iter()
            .filter(|e| e.row == row)
            .map(|e| (e.column.as_deref(), e.message.as_str()))
            .collect()
    }

    #[test]
    fn luxembourg_300() {
        let Some(bytes) = data("vendors_lu_300.csv") else {
            return;
        };
        let p = parse_vendors(&bytes, &|s| s == "lidl").unwrap();
        assert_eq!(p.total, 300);
        let error_rows: HashSet<usize> = p.errors.iter().map(|e| e.row).collect();
        assert_eq!(p.rows.len() + error_rows.len(), 300);
        // The 3 explicit duplicates (casa, nissan, die-brille), the second '5àsec' (which
        // normalises to the first one's '5asec'), and 'lidl' taken on the platform; the
        // other explicit subdomains that are not DNS labels are normalised with a warning.
        assert_eq!(error_rows.len(), 5, "{:#?}", p.errors);
        assert_eq!(p.warnings.len(), 17, "{:#?}", p.warnings);
        assert!(
            p.errors.iter().any(|e| e
                .message
                .starts_with("subdomain '5asec' is already taken by row")),
            "{:#?}",
            p.errors
        );
        assert!(
            p.errors
                .iter()
                .all(|e| e.column.as_deref() == Some("subdomain"))
        );
        let subs: HashSet<&str> = p.rows.iter().map(|r| r.subdomain.as_str()).collect();
        assert_eq!(subs.len(), p.rows.len(), "subdomains are unique");
        for row in [134, 188, 37, 47, 71, 213, 265, 285] {
            let warned = p
                .warnings
                .iter()
                .any(|w| w.row == row && w.message.contains("is not a valid DNS label"));
            let duplicate = errs(&p, row)
                .iter()
                .any(|(_, m)| m.contains("already taken"));
            assert!(warned || duplicate, "row {row}: {:?}", errs(&p, row));
        }
        assert_eq!(
            errs(&p, 250),
            [(
                Some("subdomain"),
                "subdomain 'casa' is already taken by row 11"
            )]
        );
        assert_eq!(
            errs(&p, 235),
            [(
                Some("subdomain"),
                "subdomain 'nissan' is already taken by row 148"
            )]
        );
        assert_eq!(
            errs(&p, 281),
            [(
                Some("subdomain"),
                "subdomain 'die-brille' is already taken by row 268"
            )]
        );
        assert_eq!(
            errs(&p, 122),
            [(Some("subdomain"), "subdomain 'lidl' is already taken")]
        );
        let sub = |row: usize| {
            p.rows
                .iter()
                .find(|r| r.row == row)
                .map(|r| (r.subdomain.as_str(), r.subdomain_explicit))
        };
        assert_eq!(sub(11), Some(("casa", true)));
        // Six "Fischer" bakeries: the explicit one (row 42) keeps 'fischer' although row 64
        // and later derive from the same name.
        assert_eq!(sub(42), Some(("fischer", true)));
        let fischer = [64, 98, 127, 270, 275].map(|r| sub(r).map(|s| s.0));
        assert_eq!(
            fischer,
            [
                Some("fischer-2"),
                Some("fischer-3"),
                Some("fischer-4"),
                Some("fischer-5"),
                Some("fischer-6")
            ]
        );
        assert_eq!(sub(211), Some(("h-and-m", false)));
        assert_eq!(sub(2).map(|s| s.0), Some("studio-m"));
        let first = &p.rows[0];
        assert_eq!(
            (first.row, first.business_country.as_deref()),
            (2, Some("LU"))
        );
        assert_eq!(first.owner_email.as_str(), "owner.04633d@shops.example.lu");
        assert_eq!(first.business_address, None);
    }

    #[test]
    fn derived_subdomains() {
        let long = "x".repeat(70);
        let body = format!(
            "Bakery Paul,,,a@b.lu\nBakery Paul,,,c@d.lu\nAdmin,,,e@f.lu\nAB,,,g@h.lu\n!!,,,i@j.lu\n{long},,,k@l.lu\n{long},,,m@n.lu\nLate,bakery-paul-3,,o@p.lu\n"
        );
        let p = parse(&body, &["bakery-paul-2"]);
        let subs: Vec<&str> = p.rows.iter().map(|r| r.subdomain.as_str()).collect();
        let long_2 = format!("{}-2", "x".repeat(61));
        assert_eq!(
            subs,
            [
                "bakery-paul",
                "bakery-paul-4",
                "admin-shop",
                "ab-shop",
                &long[..63],
                long_2.as_str(),
                "bakery-paul-3"
            ]
        );
        assert_eq!(
            errs(&p, 6),
            [(
                Some("subdomain"),
                "cannot derive a free subdomain from '!!'; give one in the subdomain column"
            )]
        );
        assert_eq!(p.total, 8);
    }

    #[test]
    fn row_errors() {
        let body = "\
Shop A,,,not-an-email,,,,,LU,,short
Shop B,shop-b,Ann,ann@b.lu,,,,,XX,ftp://x,
,,,x@y.lu
Casa,casa,,c@c.lu
 CASA ,,,C@c.lu
Casa Two,casa,,d@c.lu
Free,le-réservoir,,r@c.lu
Ok Shop,,,ok@shop.lu,,,,,lu,https://letzshop.lu/feed.csv,longenough
Shop B,,,ann@b.lu
";
        let p = parse(body, &[]);
        assert_eq!(
            errs(&p, 2),
            [
                (
                    Some("owner_email"),
                    "'not-an-email' is not a valid e-mail address"
                ),
                (
                    Some("initial_password"),
                    "initial_password must be at least 8 characters"
                )
            ]
        );
        let cols: Vec<_> = errs(&p, 3).into_iter().map(|e| e.0).collect();
        assert_eq!(cols, [Some("business_country"), Some("letzshop_csv_url")]);
        assert_eq!(errs(&p, 4), [(Some("vendor_name"), "vendor_name is empty")]);
        assert_eq!(
            errs(&p, 6),
            [(
                Some("vendor_name"),
                "duplicate of row 5 (same vendor_name and owner_email)"
            )]
        );
        assert_eq!(
            errs(&p, 7),
            [(
                Some("subdomain"),
                "subdomain 'casa' is already taken by row 5"
            )]
        );
        // An explicit subdomain with accents is normalised, with a warning.
        assert!(errs(&p, 8).is_empty());
        assert_eq!(
            p.warnings[0].message,
            "subdomain 'le-réservoir' is not a valid DNS label; 'le-reservoir' is used instead"
        );
        let ok: Vec<_> = p
            .rows
            .iter()
            .map(|r| (r.row, r.subdomain.as_str(), r.business_country.as_deref()))
            .collect();
        assert_eq!(
            ok,
            [
                (5, "casa", None),
                (8, "le-reservoir", None),
                (9, "ok-shop", Some("LU")),
                (10, "shop-b", None)
            ]
        );
        assert_eq!(p.rows[2].initial_password.as_deref(), Some("longenough"));
        assert_eq!((p.total, p.errors.len()), (9, 7));
    }

    #[test]
    fn file_errors() {
        assert!(matches!(
            parse_vendors(b"", &|_| false),
            Err(ImportError::Empty)
        ));
        assert!(
            matches!(parse_vendors(b"name,email\nx,y\n", &|_| false), Err(ImportError::MissingColumn(c)) if c == "vendor_name")
        );
        let crlf = "vendor_name,owner_email\r\nA Shop,a@b.lu\r\n";
        assert_eq!(
            parse_vendors(crlf.as_bytes(), &|_| false).unwrap().rows[0]
                .subdomain
                .as_str(),
            "a-shop"
        );
    }
}
