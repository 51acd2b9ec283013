//! The shopper's language, shared by the server-rendered storefront and the Store API.
//!
//! A store offers its base language (the default language of its oldest feed source,
//! else [`FALLBACK_LANGUAGE`]) plus every language its active products have a
//! translation in (marketplace feed items of that language). The language of a request
//! is `?lang=` when it names one of those, else the best-ranked `Accept-Language` tag
//! (q-values, RFC 9110 §12.5.4) that names one, else the base language. Unknown or
//! malformed values fall back, never fail. A response that consulted `Accept-Language`
//! (no `?lang=`) sends `Vary: Accept-Language`.

use crate::store::catalog::Product;
use crate::store::{StoreResult, TenantDb};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The base language of a store without feed sources.
pub const FALLBACK_LANGUAGE: &str = "en";

/// Page-cache key of a tenant's [`StoreLanguages`] (JSON), invalidated with its pages.
const LANGUAGES_KEY: &str = "meta:languages";

/// The languages a store serves: `base` first, then `others` (sorted, without `base`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreLanguages {
    pub base: String,
    pub others: Vec<String>,
}

impl StoreLanguages {
    /// Every language, the base first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.base.as_str()).chain(self.others.iter().map(String::as_str))
    }

    /// Whether the store serves `code`.
    pub fn contains(&self, code: &str) -> bool {
        self.all().any(|l| l == code)
    }
}

/// The store's languages, from the page cache (so cached pages cost no query) or the
/// database.
pub async fn store_languages(
    cache: &crate::web::storefront::PageCache,
    scope: &TenantDb,
    tenant: Uuid,
) -> StoreResult<StoreLanguages> {
    if let Some(hit) = cache.get(tenant, LANGUAGES_KEY)
        && let Ok(l) = serde_json::from_slice::<StoreLanguages>(&hit)
    {
        return Ok(l);
    }
    let (base, others) = scope.store_languages().await?;
    let base = base.unwrap_or_else(|| FALLBACK_LANGUAGE.to_string());
    let others = others.into_iter().filter(|l| *l != base).collect();
    let l = StoreLanguages { base, others };
    if let Ok(b) = serde_json::to_vec(&l) {
        cache.put_setting(tenant, LANGUAGES_KEY, b.into());
    }
    Ok(l)
}

/// The primary subtag of a language tag (`fr-LU` → `fr`), lowercased; `None` unless it
/// is 2 or 3 ASCII letters.
pub fn primary_subtag(raw: &str) -> Option<String> {
    let primary = raw.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    ((2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()))
        .then_some(primary)
}

/// The tags of an `Accept-Language` value, best first: by q-value (default 1; `q=0` and
/// unparsable weights left out), ties in the order listed. `*` is left out.
pub fn accept_language(value: &str) -> Vec<String> {
    let mut tags: Vec<(String, u16)> = vec![];
    for part in value.split(',').take(32) {
        let mut fields = part.split(';');
        let tag = fields.next().unwrap_or("").trim();
        if tag.is_empty() || tag == "*" {
            continue;
        }
        let mut q: Option<u16> = Some(1000);
        for f in fields {
            let f = f.trim();
            if let Some(v) = f.strip_prefix("q=").or_else(|| f.strip_prefix("Q=")) {
                q = v
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .map(|q| (q * 1000.0).round() as u16);
            }
        }
        if let Some(q) = q.filter(|q| *q > 0) {
            tags.push((tag.to_string(), q));
        }
    }
    tags.sort_by_key(|t| std::cmp::Reverse(t.1));
    tags.into_iter().map(|(t, _)| t).collect()
}

/// The language a request is served in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// One of the store's languages.
    pub code: String,
    /// Chosen with `?lang=` (links keep it).
    pub explicit: bool,
    /// `Accept-Language` was consulted (no `?lang=`): the response varies by it.
    pub varies: bool,
    /// `code` is the store's base language (no translation to apply).
    pub is_base: bool,
}

impl Resolved {
    /// `?lang=xx` for links when the language was chosen explicitly, else `""`.
    pub fn query_suffix(&self) -> String {
        if self.explicit {
            format!("?lang={}", self.code)
        } else {
            String::new()
        }
    }

    /// A short page-cache key part: the language, and whether links carry it.
    pub fn cache_key(&self) -> String {
        format!("{}{}", self.code, if self.explicit { "!" } else { "" })
    }
}

/// Resolves the request's language among `langs`: `query` (the `?lang=` value, empty
/// counts as absent), else `Accept-Language`, else the base language.
pub fn resolve(query: Option<&str>, headers: &HeaderMap, langs: &StoreLanguages) -> Resolved {
    let base = |varies| Resolved {
        code: langs.base.clone(),
        explicit: false,
        varies,
        is_base: true,
    };
    match query.map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => match primary_subtag(q).filter(|l| langs.contains(l)) {
            Some(code) => Resolved {
                is_base: code == langs.base,
                code,
                explicit: true,
                varies: false,
            },
            None => base(false),
        },
        None => {
            let header = headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            accept_language(header)
                .iter()
                .filter_map(|t| primary_subtag(t.as_str()))
                .find(|l| langs.contains(l))
                .map(|code| Resolved {
                    is_base: code == langs.base,
                    code,
                    explicit: false,
                    varies: true,
                })
                .unwrap_or_else(|| base(true))
        }
    }
}

/// Adds `Vary: Accept-Language` when the response depended on it.
pub fn add_vary(mut res: Response, lang: &Resolved) -> Response {
    if lang.varies {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("accept-language"));
    }
    res
}

/// Replaces title and description of `products` with their `lang` translations where
/// there are some (the SEO title and description, written in the base language, are
/// dropped for a translated product so the page's metadata follows its language).
pub async fn translate(
    scope: &TenantDb,
    products: &mut [Product],
    lang: &Resolved,
) -> StoreResult<()> {
    if lang.is_base || products.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = products.iter().map(|p| p.id).collect();
    let tr = scope.product_translations(&ids, &lang.code).await?;
    for p in products {
        if let Some((title, body)) = tr.get(&p.id) {
            if let Some(title) = title.as_deref().filter(|t| !t.trim().is_empty()) {
                p.title = title.to_string();
                p.seo_title = None;
            }
            if let Some(body) = body.as_deref().filter(|b| !b.trim().is_empty()) {
                p.body_html = body.to_string();
                p.seo_description = None;
            }
        }
    }
    Ok(())
}

/// The name of a language in itself, for the switcher (the code in capitals when
/// unknown).
pub fn native_name(code: &str) -> String {
    match code {
        "de" => "Deutsch",
        "en" => "English",
        "fr" => "Français",
        "lb" => "Lëtzebuergesch",
        "nl" => "Nederlands",
        "it" => "Italiano",
        "es" => "Español",
        "pt" => "Português",
        "pl" => "Polski",
        "da" => "Dansk",
        "sv" => "Svenska",
        "fi" => "Suomi",
        "cs" => "Čeština",
        "ar" => "العربية",
        _ => return code.to_ascii_uppercase(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs() -> StoreLanguages {
        StoreLanguages {
            base: "de".into(),
            others: vec!["en".into(), "fr".into()],
        }
    }

    fn with_accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn q_values_rank_the_tags() {
        assert_eq!(
            accept_language("en;q=0.5, fr-LU;q=0.9, *;q=0.1, it;q=0, de"),
            vec!["de", "fr-LU", "en"]
        );
        let r = resolve(None, &with_accept("it, en;q=0.4, fr;q=0.8"), &langs());
        assert_eq!(r.code, "fr");
        assert!(r.varies && !r.explicit && !r.is_base);
    }

    #[test]
    fn query_wins_and_unknown_falls_back() {
        let r = resolve(Some("FR"), &with_accept("en"), &langs());
        assert_eq!((r.code.as_str(), r.explicit, r.varies), ("fr", true, false));
        let r = resolve(Some("xx"), &with_accept("en"), &langs());
        assert_eq!(
            (r.code.as_str(), r.explicit, r.is_base),
            ("de", false, true)
        );
        let r = resolve(Some("<script>"), &HeaderMap::new(), &langs());
        assert_eq!(r.code, "de");
        let r = resolve(None, &with_accept("ja, zh;q=0.5"), &langs());
        assert_eq!((r.code.as_str(), r.varies), ("de", true));
    }
}
