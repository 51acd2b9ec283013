//! The store's own catalog as a Google Merchant Center product feed, at a stable public URL
//! on the store's host: `/api/v1/store/feed.xml` (RSS 2.0 with the `g:` namespace) and
//! `/api/v1/store/feed.tsv` (tab-separated, header of attribute names). One item per
//! variant of every active product; variants of one product share `item_group_id` (the
//! product handle). Spec: <https://support.google.com/merchants/answer/7052112>. The output
//! reads back through Souk's own feed parser (`crate::import::feed`), checked by a test.

use crate::domain::ProductStatus;
use crate::import::feed::OPTION_ATTRIBUTES;
use crate::store::catalog::{Product, ProductFilter};
use crate::web::AppState;
use crate::web::context::StoreTenant;
use crate::web::error::{ApiResult, ErrorBody};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(feed_xml)).routes(routes!(feed_tsv))
}

/// Options of the exported feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Language of titles and descriptions (ISO 639-1, e.g. `fr`): products with a
    /// translation in it (from a marketplace feed of that language) use it; the others,
    /// and a missing `lang`, the store's base language.
    pub lang: Option<String>,
}

/// One exported line: a variant with its product's shared fields.
struct Line {
    id: String,
    group: Option<String>,
    title: String,
    description: String,
    link: String,
    image: Option<String>,
    more_images: Vec<String>,
    availability: &'static str,
    price: String,
    sale_price: Option<String>,
    brand: Option<String>,
    gtin: Option<String>,
    product_type: Option<String>,
    options: Vec<(String, String)>,
}

fn money(minor: i64, currency: &str) -> String {
    crate::domain::Currency::parse(currency)
        .map(|c| crate::domain::format_minor(minor, c))
        .unwrap_or_else(|_| format!("{minor} {currency}"))
}

fn lines(p: &Product, base_url: &str) -> Vec<Line> {
    let multi = p.variants.len() > 1;
    p.variants
        .iter()
        .map(|v| {
            let (price, sale) = match &v.compare_at_price {
                Some(c) if c.amount_minor > v.price.amount_minor => (
                    money(c.amount_minor, &c.currency),
                    Some(money(v.price.amount_minor, &v.price.currency)),
                ),
                _ => (money(v.price.amount_minor, &v.price.currency), None),
            };
            let options = p
                .options
                .iter()
                .zip(v.option_values.iter())
                .filter_map(|(name, value)| {
                    let key = name.to_ascii_lowercase().replace([' ', '-'], "_");
                    let key = if key == "colour" { "color".into() } else { key };
                    OPTION_ATTRIBUTES
                        .contains(&key.as_str())
                        .then(|| (key, value.clone()))
                })
                .collect();
            Line {
                id: v.sku.clone().unwrap_or_else(|| v.id.to_string()),
                group: multi.then(|| p.handle.clone()),
                title: if multi {
                    format!("{} - {}", p.title, v.title)
                } else {
                    p.title.clone()
                },
                description: p.body_html.clone(),
                link: format!("{base_url}/products/{}", p.handle),
                image: p.images.first().map(|i| i.url.clone()),
                more_images: p.images.iter().skip(1).map(|i| i.url.clone()).collect(),
                availability: if v.inventory_quantity > 0 {
                    "in_stock"
                } else {
                    "out_of_stock"
                },
                price,
                sale_price: sale,
                brand: p.vendor.clone(),
                gtin: v.barcode.clone(),
                product_type: p.product_type.clone(),
                options,
            }
        })
        .collect()
}

/// The store's public base URL as the shopper reached it (scheme from the platform's
/// public URL, host from the request, `/s/{handle}` when addressed by path).
fn base_url(st: &AppState, t: &StoreTenant, headers: &HeaderMap) -> String {
    let scheme = if st.config.public_url.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}{}", t.host.base_path)
}

/// Every active product, in pages of 100.
async fn all_lines(
    st: &AppState,
    t: &StoreTenant,
    headers: &HeaderMap,
    lang: Option<&str>,
) -> ApiResult<Vec<Line>> {
    let base = base_url(st, t, headers);
    let f = ProductFilter {
        status: Some(ProductStatus::Active),
        ..Default::default()
    };
    let mut out = vec![];
    let mut offset = 0;
    loop {
        let (mut page, total) = t.scope.list_products(&f, 100, offset).await?;
        let n = page.len() as i64;
        if let Some(l) = lang.filter(|l| (2..=3).contains(&l.len())) {
            let ids: Vec<uuid::Uuid> = page.iter().map(|p| p.id).collect();
            let tr = t
                .scope
                .product_translations(&ids, &l.to_ascii_lowercase())
                .await?;
            for p in &mut page {
                if let Some((title, body)) = tr.get(&p.id) {
                    if let Some(x) = title {
                        p.title = x.clone();
                    }
                    if let Some(x) = body {
                        p.body_html = x.clone();
                    }
                }
            }
        }
        for p in &page {
            out.extend(lines(p, &base));
        }
        offset += n;
        if n == 0 || offset >= total {
            break;
        }
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// The catalog as RSS 2.0 with the `g:` namespace (one `<item>` per variant).
#[utoipa::path(get, path = "/api/v1/store/feed.xml", tag = "store", params(ExportQuery),
    responses((status = 200, body = String, content_type = "application/rss+xml"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn feed_xml(
    State(st): State<AppState>,
    t: StoreTenant,
    headers: HeaderMap,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let base = base_url(&st, &t, &headers);
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:g=\"http://base.google.com/ns/1.0\">\n<channel>\n",
    );
    x.push_str(&format!(
        "<title>{}</title>\n<link>{}</link>\n<description>Product feed</description>\n",
        esc(&t.host.tenant.name),
        esc(&base)
    ));
    for l in all_lines(&st, &t, &headers, q.lang.as_deref()).await? {
        x.push_str("<item>\n");
        let mut tag = |name: &str, v: &str| {
            x.push_str(&format!("  <g:{name}>{}</g:{name}>\n", esc(v)));
        };
        tag("id", &l.id);
        tag("title", &l.title);
        tag("description", &l.description);
        tag("link", &l.link);
        if let Some(i) = &l.image {
            tag("image_link", i);
        }
        for i in &l.more_images {
            tag("additional_image_link", i);
        }
        tag("availability", l.availability);
        tag("price", &l.price);
        if let Some(s) = &l.sale_price {
            tag("sale_price", s);
        }
        if let Some(b) = &l.brand {
            tag("brand", b);
        }
        if let Some(g) = &l.gtin {
            tag("gtin", g);
        }
        if let Some(t) = &l.product_type {
            tag("product_type", t);
        }
        if let Some(g) = &l.group {
            tag("item_group_id", g);
        }
        for (k, v) in &l.options {
            tag(k, v);
        }
        tag("condition", "new");
        x.push_str("</item>\n");
    }
    x.push_str("</channel>\n</rss>\n");
    Ok((
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        x,
    )
        .into_response())
}

/// Tab-separated cell: tabs and line breaks become spaces.
fn cell(s: &str) -> String {
    s.replace(['\t', '\r', '\n'], " ")
}

/// The catalog as tab-separated text with a header row of attribute names.
#[utoipa::path(get, path = "/api/v1/store/feed.tsv", tag = "store", params(ExportQuery),
    responses((status = 200, body = String, content_type = "text/tab-separated-values"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn feed_tsv(
    State(st): State<AppState>,
    t: StoreTenant,
    headers: HeaderMap,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let mut cols = vec![
        "id",
        "title",
        "description",
        "link",
        "image_link",
        "additional_image_link",
        "availability",
        "price",
        "sale_price",
        "brand",
        "gtin",
        "product_type",
        "item_group_id",
        "condition",
    ];
    cols.extend(OPTION_ATTRIBUTES);
    let mut x = cols.join("\t");
    x.push('\n');
    for l in all_lines(&st, &t, &headers, q.lang.as_deref()).await? {
        let opt = |name: &str| {
            l.options
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut row = vec![
            l.id.clone(),
            l.title.clone(),
            l.description.clone(),
            l.link.clone(),
            l.image.clone().unwrap_or_default(),
            l.more_images.join(","),
            l.availability.to_string(),
            l.price.clone(),
            l.sale_price.clone().unwrap_or_default(),
            l.brand.clone().unwrap_or_default(),
            l.gtin.clone().unwrap_or_default(),
            l.product_type.clone().unwrap_or_default(),
            l.group.clone().unwrap_or_default(),
            "new".to_string(),
        ];
        row.extend(OPTION_ATTRIBUTES.iter().map(|n| opt(n)));
        x.push_str(&row.iter().map(|c| cell(c)).collect::<Vec<_>>().join("\t"));
        x.push('\n');
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/tab-separated-values; charset=utf-8",
        )],
        x,
    )
        .into_response())
}
