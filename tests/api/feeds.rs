//! Marketplace feeds: the real feed files staged with their counts, prices, availability
//! and per-item problems; fetching from a local HTTP server (conditional GET, gzip,
//! failures that keep the staging, size limit, timeout); the SSRF guard; publish, overrides
//! and later feed updates; the vendor CSV's Letzshop URL.

use crate::helpers::{TestApp, shared_data, spawn_app, spawn_with};
use axum::http::{HeaderMap, StatusCode as AxStatus, header};
use axum::response::IntoResponse;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn create_source(app: &TestApp, token: &str, files: Value) -> Value {
    let r = app
        .with_token(Method::POST, "/api/v1/feeds/sources", token)
        .json(&json!({ "marketplace": "letzshop", "files": files }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

async fn upload(
    app: &TestApp,
    token: &str,
    source: &str,
    lang: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/feeds/sources/{source}/upload?language={lang}"),
            token,
        )
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app
        .with_token(Method::GET, path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// Every staged item of a source (pages of 100).
async fn all_items(app: &TestApp, token: &str, source: &str, status: Option<&str>) -> Vec<Value> {
    let mut out = vec![];
    for page in 1.. {
        let st = status.map(|s| format!("&status={s}")).unwrap_or_default();
        let v = get(
            app,
            token,
            &format!("/api/v1/feeds/items?source_id={source}&per_page=100&page={page}{st}"),
        )
        .await;
        let data = v["data"].as_array().unwrap().clone();
        let n = data.len();
        out.extend(data);
        if n < 100 {
            break;
        }
    }
    out
}

fn codes(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn real_feeds_are_staged_with_prices_availability_and_per_item_problems() {
    let (Some(rss), Some(csv), Some(tsv)) = (
        shared_data("gmc_feed_pallmann_fr_eur.xml"),
        shared_data("gmc_style_feed_bilali_eur.csv"),
        shared_data("gmc_feed_emirates_gifts_en.tsv"),
    ) else {
        return;
    };
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("feedshop").await;
    let src = create_source(
        &app,
        &token,
        json!([{ "language": "fr" }, { "language": "en" }, { "language": "de" }]),
    )
    .await;
    let sid = src["id"].as_str().unwrap();

    // RSS 2.0 with g: namespace: 305 items, `in_stock`, `63.60 EUR`.
    let (s, run) = upload(&app, &token, sid, "fr", rss.clone()).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["format"], "rss");
    assert_eq!(run["items_total"], 305);
    assert_eq!(run["items_new"], 305);
    assert_eq!(run["items_with_errors"], 0, "{run}");
    let fr = all_items(&app, &token, sid, None).await;
    assert_eq!(fr.len(), 305);
    let disque = fr
        .iter()
        .find(|i| i["feed_id"] == "7f8b2c81-25aa-4424-a9a5-7783225be410")
        .expect("first item");
    assert_eq!(disque["item"]["price_minor"], 6360);
    assert_eq!(disque["item"]["currency"], "EUR");
    assert_eq!(disque["item"]["availability"], "in_stock");
    assert_eq!(disque["item"]["shipping_weight_grams"], 50_000);
    assert_eq!(disque["item"]["product_type"], "Abrasifs & Outils");
    assert_eq!(disque["item"]["google_product_category"], "2047");
    assert_eq!(disque["language"], "fr");
    assert_eq!(disque["status"], "new");
    assert!(
        disque["item"]["title"]
            .as_str()
            .unwrap()
            .starts_with("Disque Ø150"),
        "{}",
        disque["item"]["title"]
    );
    // Raw attributes are kept, nested g:shipping included.
    assert_eq!(disque["raw"]["shipping"][0], "FR:Standard:15.00 EUR");

    // GMC-style CSV: one-decimal prices, `in stock` with a space, HTML descriptions.
    let (s, run) = upload(&app, &token, sid, "en", csv).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["format"], "csv");
    assert_eq!(run["items_total"], 48);
    assert_eq!(run["items_with_errors"], 0, "{run}");
    let v = get(
        &app,
        &token,
        &format!("/api/v1/feeds/items?source_id={sid}&language=en&q=sophie-top-black"),
    )
    .await;
    let sophie = &v["data"][0];
    assert_eq!(sophie["item"]["price_minor"], 8900);
    assert_eq!(sophie["item"]["availability"], "in_stock");
    assert_eq!(sophie["item"]["brand"], "BILALI The Label");
    assert!(
        sophie["item"]["description"]
            .as_str()
            .unwrap()
            .starts_with("<p>Sporty top.")
    );

    // A TSV that breaks the spec: bare prices (store currency assumed, warned), shipping in
    // AED, 10-digit GTINs, a `quantity` of `100 ML`.
    let (s, run) = upload(&app, &token, sid, "de", tsv).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["format"], "tsv");
    assert_eq!(run["items_total"], 30);
    let unknown = run["report"]["unknown_attributes"].as_array().unwrap();
    assert!(unknown.iter().any(|u| u == "category"), "{unknown:?}");
    let v = get(
        &app,
        &token,
        &format!("/api/v1/feeds/items?source_id={sid}&language=de&q=perfume_001"),
    )
    .await;
    let p1 = &v["data"][0];
    assert_eq!(p1["item"]["price_minor"], 25000);
    assert_eq!(p1["item"]["sale_price_minor"], 21250);
    let w = codes(&p1["warnings"]);
    for code in [
        "no_currency",
        "currency_mismatch",
        "invalid_gtin",
        "invalid_quantity",
    ] {
        assert!(w.iter().any(|c| c == code), "{code} missing from {w:?}");
    }
    assert_eq!(p1["item"]["gtin"], Value::Null);

    // A re-import of the unchanged RSS changes nothing.
    let (_, again) = upload(&app, &token, sid, "fr", rss).await;
    assert_eq!(again["items_unchanged"], 305, "{again}");
    assert_eq!(again["items_new"], 0);
    assert_eq!(again["items_disappeared"], 0);
}

#[tokio::test]
async fn bad_items_are_reported_and_the_rest_is_staged() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("badfeed").await;
    let src = create_source(&app, &token, json!([{ "language": "de" }])).await;
    let sid = src["id"].as_str().unwrap();
    let mut feed = b"id\ttitle\tprice\tavailability\timage_link\titem_group_id\tbrand\n".to_vec();
    feed.extend_from_slice(b"ok-1\tGood\t10.00 EUR\tin stock\thttps://img.test/1.png\t\tAcme\n");
    feed.extend_from_slice(b"\tNo id\t10.00 EUR\tin stock\t\t\t\n");
    feed.extend_from_slice(b"ok-1\tDuplicate\t11.00 EUR\tin stock\t\t\t\n");
    feed.extend_from_slice(b"bad-price\tBad price\tabc EUR\tin stock\t\t\t\n");
    feed.extend_from_slice(b"bad-cur\tUnknown currency\t12 XYZ\tin stock\t\t\t\n");
    feed.extend_from_slice(b"usd\tOther currency\t12.00 USD\tin stock\t\t\t\n");
    feed.extend_from_slice(b"ftp-img\tFTP image\t5 EUR\tin stock\tftp://img.test/x.png\t\t\n");
    feed.extend_from_slice(b"utf8\tBad \xff\xfe text\t5 EUR\tin stock\t\t\t\n");
    feed.extend_from_slice(b"g-1\tShirt S\t5 EUR\tin stock\t\tG\tAcme\n");
    feed.extend_from_slice(b"g-2\tShirt M\t5 EUR\tin stock\t\tG\tOther\n");
    feed.extend_from_slice(b"avail\tWeird\t5 EUR\tsometimes\t\t\t\n");
    let (s, run) = upload(&app, &token, sid, "de", feed).await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["items_total"], 11);
    let refused = run["report"]["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0]["reason"].as_str().unwrap().contains("no id"));
    assert!(
        refused[1]["reason"]
            .as_str()
            .unwrap()
            .contains("duplicate id 'ok-1'")
    );
    let items = all_items(&app, &token, sid, None).await;
    assert_eq!(items.len(), 9);
    let by = |id: &str| items.iter().find(|i| i["feed_id"] == id).unwrap().clone();
    assert_eq!(by("ok-1")["status"], "new");
    assert_eq!(
        by("ok-1")["item"]["title"],
        "Good",
        "the first of two equal ids is kept"
    );
    assert_eq!(codes(&by("bad-price")["errors"]), ["invalid_price"]);
    assert_eq!(codes(&by("bad-cur")["errors"]), ["unknown_currency"]);
    assert_eq!(codes(&by("usd")["errors"]), ["currency_mismatch"]);
    assert_eq!(codes(&by("ftp-img")["errors"]), ["invalid_url"]);
    assert_eq!(codes(&by("utf8")["errors"]), ["invalid_utf8"]);
    assert_eq!(codes(&by("avail")["errors"]), ["invalid_availability"]);
    assert!(codes(&by("g-2")["warnings"]).contains(&"group_mismatch".to_string()));
    let errs = all_items(&app, &token, sid, Some("errors")).await;
    assert_eq!(errs.len(), 6);

    // Whole-file problems: 422 with a code, and the staging stays as it was.
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;">]><rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>&lol1;</g:id></item></channel></rss>"#;
    for (body, code) in [
        (bomb.as_bytes().to_vec(), "xml_entities"),
        (
            b"<!DOCTYPE html><html><body>Login</body></html>".to_vec(),
            "not_a_feed",
        ),
        (b"name,price\nx,1\n".to_vec(), "no_id_column"),
        (
            b"<?xml version=\"1.0\"?><rss><channel><item><g:id>x\xff</g:id></item></channel></rss>"
                .to_vec(),
            "invalid_utf8",
        ),
    ] {
        let (s, v) = upload(&app, &token, sid, "de", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["details"]["import_id"].is_string());
    }
    assert_eq!(all_items(&app, &token, sid, None).await.len(), 9);
    let src = get(&app, &token, &format!("/api/v1/feeds/sources/{sid}")).await;
    assert_eq!(src["last_status"], "failed");
}

/// A local feed server: `/feed.xml` with an ETag (304 on a match), `/feed.xml.gz` gzip
/// encoded, `/broken` 500, `/missing` 404, `/html` a web page, `/slow` after 3 s.
async fn feed_server(rss: Vec<u8>, hits: Arc<AtomicUsize>) -> String {
    use axum::routing::get;
    let rss = Arc::new(rss);
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&rss).unwrap();
        Arc::new(e.finish().unwrap())
    };
    let r1 = rss.clone();
    let app = axum::Router::new()
        .route(
            "/feed.xml",
            get(move |h: HeaderMap| {
                let rss = r1.clone();
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some("\"v1\"")
                    {
                        return AxStatus::NOT_MODIFIED.into_response();
                    }
                    (
                        [
                            (header::ETAG, "\"v1\""),
                            (header::CONTENT_TYPE, "application/rss+xml"),
                        ],
                        rss.to_vec(),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/feed.xml.gz",
            get(move || {
                let gz = gz.clone();
                async move { ([(header::CONTENT_ENCODING, "gzip")], gz.to_vec()).into_response() }
            }),
        )
        .route("/broken", get(|| async { AxStatus::INTERNAL_SERVER_ERROR }))
        .route("/missing", get(|| async { AxStatus::NOT_FOUND }))
        .route(
            "/html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<!DOCTYPE html><html><body>Sign in</body></html>",
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "id\n1\n"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn fetch(app: &TestApp, token: &str, source: &str) -> Value {
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/feeds/sources/{source}/fetch"),
            token,
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn fetching_uses_conditional_get_and_gzip_and_keeps_the_staging_on_failure() {
    let Some(rss) = shared_data("gmc_feed_pallmann_fr_eur.xml") else {
        return;
    };
    let hits = Arc::new(AtomicUsize::new(0));
    let base = feed_server(rss, hits.clone()).await;
    let app = spawn_with(|c| {
        c.feeds.allow_private = true;
        c.feeds.timeout = Duration::from_secs(1);
    })
    .await;
    let (_, token) = app.provisioned_merchant("fetchshop").await;
    let src = create_source(
        &app,
        &token,
        json!([{ "language": "fr", "url": format!("{base}/feed.xml") }, { "language": "de", "url": format!("{base}/feed.xml.gz") }]),
    )
    .await;
    let sid = src["id"].as_str().unwrap();
    let v = fetch(&app, &token, sid).await;
    assert_eq!(v["failures"], json!([]), "{v}");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["status"], "completed");
        assert_eq!(r["items_new"], 305, "{r}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Unchanged: one conditional request, answered 304, nothing staged again.
    let v = fetch(&app, &token, sid).await;
    let fr = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "fr")
        .unwrap()
        .clone();
    assert_eq!(fr["status"], "not_modified", "{v}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let src_now = get(&app, &token, &format!("/api/v1/feeds/sources/{sid}")).await;
    let fr_file = src_now["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["language"] == "fr")
        .unwrap()
        .clone();
    assert_eq!(fr_file["last_status"], "not_modified");

    // Failures: the run and the source say why, the staging stays.
    for (path, code) in [
        ("/broken", "http_status"),
        ("/missing", "http_status"),
        ("/html", "not_a_feed"),
        ("/slow", "fetch_failed"),
    ] {
        let s = create_source(
            &app,
            &token,
            json!([{ "language": "fr", "url": format!("{base}{path}") }]),
        )
        .await;
        let id = s["id"].as_str().unwrap();
        let v = fetch(&app, &token, id).await;
        assert_eq!(v["failures"][0]["code"], code, "{path}: {v}");
        let s = get(&app, &token, &format!("/api/v1/feeds/sources/{id}")).await;
        assert_eq!(s["last_status"], "failed", "{path}");
        assert!(s["last_error"].is_string());
    }
    assert_eq!(all_items(&app, &token, sid, None).await.len(), 610);
    app.stop().await;

    // Over the size limit (compressed or not): refused, nothing staged.
    let app = spawn_with(|c| {
        c.feeds.allow_private = true;
        c.feeds.max_bytes = 100_000;
    })
    .await;
    let (_, token) = app.provisioned_merchant("smallshop").await;
    for path in ["/feed.xml", "/feed.xml.gz"] {
        let s = create_source(
            &app,
            &token,
            json!([{ "language": "fr", "url": format!("{base}{path}") }]),
        )
        .await;
        let id = s["id"].as_str().unwrap();
        let v = fetch(&app, &token, id).await;
        assert_eq!(v["failures"][0]["code"], "too_large", "{path}: {v}");
        assert_eq!(all_items(&app, &token, id, None).await.len(), 0);
    }
}

#[tokio::test]
async fn feed_urls_pass_the_ssrf_guard() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("ssrfshop").await;
    for url in [
        "http://127.0.0.1:8080/feed.xml",
        "http://localhost/feed.xml",
        "https://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/feed.csv",
        "ftp://example.com/feed.csv",
        "https://user:pw@example.com/feed.csv",
    ] {
        let r = app
            .with_token(Method::POST, "/api/v1/feeds/sources", &token)
            .json(
                &json!({ "marketplace": "letzshop", "files": [{ "language": "de", "url": url }] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["details"]["field"], "files.url", "{url}: {v}");
    }
    // A public http URL is accepted (feeds are often plain http).
    let s = create_source(
        &app,
        &token,
        json!([{ "language": "de", "url": "http://feeds.example.com/de.csv" }]),
    )
    .await;
    assert_eq!(s["files"][0]["url"], "http://feeds.example.com/de.csv");
}

fn small_feed(price: &str, title: &str, description: &str, with_b: bool) -> Vec<u8> {
    let mut f = String::from(
        "id;title;description;price;sale_price;availability;image_link;item_group_id;size;atalanda:quantity\n",
    );
    f.push_str(&format!(
        "a-1;{title};{description};{price};;in stock;https://img.test/a.png;;;7\n"
    ));
    if with_b {
        f.push_str(
            "shirt-s;Shirt;Cotton;20.00 EUR;15.00 EUR;in stock;https://img.test/s.png;SHIRT;S;3\n",
        );
        f.push_str(
            "shirt-m;Shirt;Cotton;20.00 EUR;;out of stock;https://img.test/m.png;SHIRT;M;\n",
        );
    }
    f.into_bytes()
}

async fn product(app: &TestApp, token: &str, id: &str) -> Value {
    get(app, token, &format!("/api/v1/products/{id}")).await
}

#[tokio::test]
async fn publish_then_feed_updates_leave_overrides_alone() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("pubshop").await;
    let src = create_source(&app, &token, json!([{ "language": "de" }])).await;
    let sid = src["id"].as_str().unwrap();
    let (s, _) = upload(
        &app,
        &token,
        sid,
        "de",
        small_feed("10.00 EUR", "Vase", "Blue vase", true),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let items = all_items(&app, &token, sid, None).await;
    let id_of = |f: &str| {
        items.iter().find(|i| i["feed_id"] == f).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Selecting one variant publishes its whole item_group_id as one product.
    let r = app
        .with_token(Method::POST, "/api/v1/feeds/items/publish", &token)
        .json(&json!({ "item_ids": [id_of("a-1"), id_of("shirt-s")] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rep: Value = r.json().await.unwrap();
    assert_eq!(rep["failed"], json!([]), "{rep}");
    assert_eq!(rep["published"].as_array().unwrap().len(), 2);
    let vase_id = rep["published"][0]["product_id"]
        .as_str()
        .unwrap()
        .to_string();
    let shirt_id = rep["published"][1]["product_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rep["published"][1]["item_ids"].as_array().unwrap().len(), 2);
    let shirt = product(&app, &token, &shirt_id).await;
    assert_eq!(shirt["options"], json!(["Size"]));
    assert_eq!(shirt["variants"].as_array().unwrap().len(), 2);
    assert_eq!(
        shirt["variants"][0]["price"]["amount_minor"], 1500,
        "sale price sells"
    );
    assert_eq!(
        shirt["variants"][0]["compare_at_price"]["amount_minor"],
        2000
    );
    assert_eq!(shirt["variants"][0]["inventory_quantity"], 3);
    assert_eq!(
        shirt["variants"][1]["inventory_quantity"], 0,
        "out of stock"
    );
    let vase = product(&app, &token, &vase_id).await;
    assert_eq!(vase["title"], "Vase");
    assert_eq!(vase["status"], "active");
    assert_eq!(vase["variants"][0]["price"]["amount_minor"], 1000);
    assert_eq!(vase["variants"][0]["inventory_quantity"], 7);
    assert_eq!(
        all_items(&app, &token, sid, Some("published")).await.len(),
        3
    );
    // Publishing again is refused per item.
    let r = app
        .with_token(Method::POST, "/api/v1/feeds/items/publish", &token)
        .json(&json!({ "item_ids": [id_of("a-1")] }))
        .send()
        .await
        .unwrap();
    let rep: Value = r.json().await.unwrap();
    assert_eq!(rep["failed"][0]["code"], "already_published");

    // Override the title and price of the vase.
    let r = app
        .with_token(
            Method::PUT,
            &format!("/api/v1/feeds/products/{vase_id}"),
            &token,
        )
        .json(&json!({ "title": "Our blue vase", "price": "9.50" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        view["feed"]["title"], "Vase",
        "the feed's value is shown beside the override"
    );
    assert_eq!(view["overrides"]["title"], "Our blue vase");
    let vase = product(&app, &token, &vase_id).await;
    assert_eq!(vase["title"], "Our blue vase");
    assert_eq!(vase["variants"][0]["price"]["amount_minor"], 950);

    // The feed changes title, description and price: only the description follows.
    let (_, run) = upload(
        &app,
        &token,
        sid,
        "de",
        small_feed("12.00 EUR", "Vase XL", "Big blue vase", true),
    )
    .await;
    assert_eq!(run["items_changed"], 1, "{run}");
    assert_eq!(run["products_updated"], 1, "{run}");
    let vase = product(&app, &token, &vase_id).await;
    assert_eq!(vase["title"], "Our blue vase");
    assert_eq!(vase["body_html"], "Big blue vase");
    assert_eq!(vase["variants"][0]["price"]["amount_minor"], 950);
    let item = get(
        &app,
        &token,
        &format!("/api/v1/feeds/items/{}", id_of("a-1")),
    )
    .await;
    let changed: Vec<&str> = item["changed_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"price_minor") && changed.contains(&"title"),
        "{changed:?}"
    );
    assert_eq!(item["status"], "published", "the change was applied");

    // Dropping the price override: the feed's price comes back.
    let r = app
        .with_token(
            Method::PUT,
            &format!("/api/v1/feeds/products/{vase_id}"),
            &token,
        )
        .json(&json!({ "title": "Our blue vase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let vase = product(&app, &token, &vase_id).await;
    assert_eq!(vase["variants"][0]["price"]["amount_minor"], 1200);

    // The shirt group leaves the feed: its product becomes draft, never deleted.
    let (_, run) = upload(
        &app,
        &token,
        sid,
        "de",
        small_feed("12.00 EUR", "Vase XL", "Big blue vase", false),
    )
    .await;
    assert_eq!(run["items_disappeared"], 2, "{run}");
    let shirt = product(&app, &token, &shirt_id).await;
    assert_eq!(shirt["status"], "draft");
    assert_eq!(
        all_items(&app, &token, sid, Some("disappeared"))
            .await
            .len(),
        2
    );

    // Events: feed.import.completed and feed.item.changed on the bus.
    let mut kinds = vec![];
    for _ in 0..200 {
        let v = get(
            &app,
            &token,
            "/api/v1/events?types=feed.import.completed,feed.item.changed&limit=50",
        )
        .await;
        kinds = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        if kinds.iter().any(|k| k == "feed.item.changed")
            && kinds
                .iter()
                .filter(|k| *k == "feed.import.completed")
                .count()
                >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(kinds.iter().any(|k| k == "feed.item.changed"), "{kinds:?}");
    assert!(
        kinds
            .iter()
            .filter(|k| *k == "feed.import.completed")
            .count()
            >= 3,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn an_item_links_to_an_existing_product_by_sku() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("linkshop").await;
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&crate::catalog::product("own-vase", "OWN", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let own: Value = r.json().await.unwrap();
    let src = create_source(&app, &token, json!([{ "language": "de" }])).await;
    let sid = src["id"].as_str().unwrap();
    upload(
        &app,
        &token,
        sid,
        "de",
        b"id,title,price,availability\nOWN-S,Feed vase,33.00 EUR,in stock\n".to_vec(),
    )
    .await;
    let item = &all_items(&app, &token, sid, None).await[0];
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/feeds/items/{}/link", item["id"].as_str().unwrap()),
            &token,
        )
        .json(&json!({ "sku": "OWN-S" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let p = product(&app, &token, own["id"].as_str().unwrap()).await;
    let s = p["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["sku"] == "OWN-S")
        .unwrap()
        .clone();
    assert_eq!(
        s["price"]["amount_minor"], 3300,
        "the feed's price reaches the matched variant"
    );
    let m = p["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["sku"] == "OWN-M")
        .unwrap()
        .clone();
    assert_eq!(
        m["price"]["amount_minor"], 1350,
        "other variants are left alone"
    );
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/feeds/items/{}/link", item["id"].as_str().unwrap()),
            &token,
        )
        .json(&json!({ "sku": "NOPE" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "already linked"
    );
}

#[tokio::test]
async fn the_vendor_csvs_letzshop_url_becomes_the_first_feed_source() {
    let app = spawn_app().await;
    let csv = "vendor_name,subdomain,owner_name,owner_email,owner_phone,business_address,business_city,business_postal_code,business_country,letzshop_csv_url,initial_password\r\nFeed Shop,feed-vendor,Ann,ann@feed-vendor.example,,,,,LU,https://letzshop.lu/feeds/fr/shop.csv,\r\nPlain Shop,plain-vendor,Bob,bob@plain-vendor.example,,,,,LU,,\r\n";
    let r = app
        .client
        .post(app.url("/api/v1/admin/imports/vendors"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rep: Value = r.json().await.unwrap();
    assert_eq!(rep["created"], 2, "{rep}");
    let feed = &rep["merchants"][0]["feed_source"];
    assert_eq!(feed["url"], "https://letzshop.lu/feeds/fr/shop.csv");
    assert_eq!(feed["language"], "fr");
    assert_eq!(rep["merchants"][1]["feed_source"], Value::Null);
    // The owner sees it among the store's sources.
    let tenant = rep["merchants"][0]["id"].as_str().unwrap();
    app.wait_provisioning(tenant).await;
    let pw = "a-long-password-1";
    let tok = app
        .set_password_from_welcome("ann@feed-vendor.example", pw)
        .await;
    let list = get(&app, &tok, "/api/v1/feeds/sources").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["marketplace"], "letzshop");
    assert_eq!(list[0]["id"], feed["id"]);
    assert_eq!(
        list[0]["files"][0]["url"],
        "https://letzshop.lu/feeds/fr/shop.csv"
    );
}

#[tokio::test]
async fn the_exported_feed_reads_back_through_the_same_parser() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("exportshop").await;
    for (h, sku) in [("vase", "EXP-V"), ("shirt", "EXP-S")] {
        let mut body = crate::catalog::product(h, sku, "active");
        if h == "vase" {
            body["options"] = json!([]);
            body["variants"] = json!([{ "sku": sku, "option_values": [], "price": "19.90", "inventory_quantity": 4, "barcode": "4006381333931" }]);
        }
        let r = app
            .with_token(Method::POST, "/api/v1/products", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&crate::catalog::product("hidden", "EXP-H", "draft"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, other) = app.provisioned_merchant("importshop").await;
    let src = create_source(
        &app,
        &other,
        json!([{ "language": "de" }, { "language": "en" }]),
    )
    .await;
    let sid = src["id"].as_str().unwrap();
    for (path, lang, format) in [
        ("/s/exportshop/api/v1/store/feed.xml", "de", "rss"),
        ("/s/exportshop/api/v1/store/feed.tsv", "en", "tsv"),
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body = r.bytes().await.unwrap().to_vec();
        let (s, run) = upload(&app, &other, sid, lang, body).await;
        assert_eq!(s, StatusCode::OK, "{run}");
        assert_eq!(run["format"], format);
        assert_eq!(
            run["items_total"], 3,
            "two shirt variants and the vase, not the draft: {run}"
        );
        assert_eq!(run["items_with_errors"], 0, "{run}");
        let v = get(
            &app,
            &other,
            &format!("/api/v1/feeds/items?source_id={sid}&language={lang}&per_page=10"),
        )
        .await;
        let items = v["data"].as_array().unwrap();
        let vase = items.iter().find(|i| i["feed_id"] == "EXP-V").unwrap();
        assert_eq!(vase["item"]["price_minor"], 1990);
        assert_eq!(vase["item"]["availability"], "in_stock");
        assert_eq!(vase["item"]["gtin"], "4006381333931");
        let s = items.iter().find(|i| i["feed_id"] == "EXP-S-S").unwrap();
        assert_eq!(
            s["item"]["price_minor"], 1500,
            "compare-at becomes price, the price the sale price"
        );
        assert_eq!(s["item"]["sale_price_minor"], 1250);
        assert_eq!(s["item"]["item_group_id"], "shirt");
        assert_eq!(s["item"]["options"], json!([["size", "S"]]));
        let m = items.iter().find(|i| i["feed_id"] == "EXP-S-M").unwrap();
        assert_eq!(m["item"]["availability"], "out_of_stock");
        assert!(
            m["item"]["link"]
                .as_str()
                .unwrap()
                .ends_with("/s/exportshop/products/shirt")
        );
    }
}

/// Polls a source until its `last_status` is not `never`.
async fn wait_run(app: &TestApp, token: &str, source: &str) -> Value {
    for _ in 0..300 {
        let s = get(app, token, &format!("/api/v1/feeds/sources/{source}")).await;
        if s["last_status"] != "never" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("source {source} never ran");
}

#[tokio::test]
async fn background_fetches_admin_monitoring_and_the_mass_trigger() {
    let Some(rss) = shared_data("gmc_feed_pallmann_fr_eur.xml") else {
        return;
    };
    let hits = Arc::new(AtomicUsize::new(0));
    let base = feed_server(rss, hits.clone()).await;
    let app = spawn_with(|c| c.feeds.allow_private = true).await;
    let (a_id, a) = app.provisioned_merchant("monitor-a").await;
    let (_, b) = app.provisioned_merchant("monitor-b").await;
    let sa = create_source(
        &app,
        &a,
        json!([{ "language": "fr", "url": format!("{base}/feed.xml") }]),
    )
    .await;
    let sb = create_source(
        &app,
        &b,
        json!([{ "language": "fr", "url": format!("{base}/missing") }]),
    )
    .await;
    let (sa, sb) = (sa["id"].as_str().unwrap(), sb["id"].as_str().unwrap());
    // A merchant's background fetch: 202, then a job runs it.
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/feeds/sources/{sa}/fetch?background=true"),
            &a,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let s = wait_run(&app, &a, sa).await;
    assert_eq!(s["last_status"], "ok", "{s}");
    assert_eq!(all_items(&app, &a, sa, None).await.len(), 305);

    // The monitor lists every store's sources, failed first once B has run.
    let r = app
        .admin_post(
            "/api/v1/admin/marketplace/import-jobs/trigger",
            json!({ "merchant_id": null, "status": "never" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["queued"], 1, "only B's source had never run: {t}");
    let s = wait_run(&app, &b, sb).await;
    assert_eq!(s["last_status"], "failed");
    let all: Value = app
        .admin_get("/api/v1/admin/marketplace/import-jobs")
        .await
        .json()
        .await
        .unwrap();
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{all}");
    assert_eq!(rows[0]["source_id"], sb, "failed first");
    assert!(rows[0]["last_error"].as_str().unwrap().contains("404"));
    assert_eq!(rows[1]["merchant_id"], a_id);
    assert_eq!(rows[1]["items_total"], 305);
    assert_eq!(rows[1]["staged_items"], 305);
    let failed: Value = app
        .admin_get("/api/v1/admin/marketplace/import-jobs?status=failed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 1);
    // A merchant cannot use the admin endpoints.
    let r = app
        .with_token(Method::GET, "/api/v1/admin/marketplace/import-jobs", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Mass trigger of everything: A's unchanged feed costs one conditional request.
    let before = hits.load(Ordering::SeqCst);
    let r = app
        .admin_post("/api/v1/admin/marketplace/import-jobs/trigger", json!({}))
        .await;
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["queued"], 2, "{t}");
    for _ in 0..300 {
        let s = get(&app, &a, &format!("/api/v1/feeds/sources/{sa}")).await;
        if s["last_status"] == "not_modified" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = get(&app, &a, &format!("/api/v1/feeds/sources/{sa}")).await;
    assert_eq!(s["last_status"], "not_modified");
    assert_eq!(hits.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn the_dashboard_stages_selects_publishes_and_overrides() {
    use crate::ui::{Browser, location};
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("uifeeds").await;
    let b = Browser::new(&app);
    b.sign_in("dashboard", "owner@uifeeds.example", "owner-password-1")
        .await;
    let csrf = b.csrf("/dashboard/feeds").await;
    let r = b
        .post_form(
            "/dashboard/feeds/sources",
            &[
                ("_csrf", &csrf),
                ("marketplace", "letzshop"),
                ("language", "de"),
                ("url", ""),
                ("schedule", "manual"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let src = &get(&app, &token, "/api/v1/feeds/sources").await[0];
    let sid = src["id"].as_str().unwrap().to_string();
    // Upload through the page's multipart form.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(small_feed("10.00 EUR", "Vase", "Blue vase", true))
            .file_name("de.csv"),
    );
    let r = b
        .client
        .post(format!(
            "{}/dashboard/feeds/sources/{sid}/upload?_csrf={csrf}&language=de",
            b.base
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let (s, page) = b.get("/dashboard/feeds").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("3 items (3 new"), "{page}");
    let (s, page) = b.get("/dashboard/feeds/items?status=new").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("3 items") && page.contains("Publish selected"),
        "{page}"
    );
    let items = all_items(&app, &token, &sid, None).await;
    let vase = items.iter().find(|i| i["feed_id"] == "a-1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(page.contains(&format!("value=\"{vase}\"")));
    let r = b
        .post_form(
            "/dashboard/feeds/publish",
            &[("_csrf", &csrf), ("ids", &vase)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/dashboard/feeds/items"));
    let item = get(&app, &token, &format!("/api/v1/feeds/items/{vase}")).await;
    assert_eq!(item["status"], "published");
    let pid = item["product_id"].as_str().unwrap().to_string();
    // The product's feed page shows the feed value; an override is saved and shown beside it.
    let r = b
        .post_form(
            &format!("/dashboard/feeds/products/{pid}"),
            &[
                ("_csrf", &csrf),
                ("title", "Our vase"),
                ("description", ""),
                ("price", "8.00"),
                ("compare_at_price", ""),
                ("status", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, page) = b.get(&format!("/dashboard/feeds/products/{pid}")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("<td>Vase</td><td>Our vase</td>"), "{page}");
    assert!(page.contains("<td>10.00</td><td>8.00</td>"), "{page}");
    let p = get(&app, &token, &format!("/api/v1/products/{pid}")).await;
    assert_eq!(p["title"], "Our vase");
    assert_eq!(p["variants"][0]["price"]["amount_minor"], 800);
}

#[tokio::test]
async fn each_languages_feed_fills_its_translation_in_the_store_api() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("lingua").await;
    let src = create_source(
        &app,
        &token,
        json!([{ "language": "de" }, { "language": "fr" }]),
    )
    .await;
    let sid = src["id"].as_str().unwrap();
    upload(&app, &token, sid, "de", b"id;title;description;price;availability\nv1;Blaue Vase;Eine blaue Vase;10.00 EUR;in stock\n".to_vec()).await;
    let items = all_items(&app, &token, sid, None).await;
    let de = items.iter().find(|i| i["language"] == "de").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rep: Value = app
        .with_token(Method::POST, "/api/v1/feeds/items/publish", &token)
        .json(&json!({ "item_ids": [de] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let handle = rep["published"][0]["handle"].as_str().unwrap().to_string();
    // The French file arrives after publishing: its item becomes the product's translation.
    let (_, run) = upload(
        &app,
        &token,
        sid,
        "fr",
        b"id;title;description;price;availability\nv1;Vase bleu;Un vase bleu;10.00 EUR;in stock\n"
            .to_vec(),
    )
    .await;
    assert_eq!(run["items_new"], 1);
    let fr = all_items(&app, &token, sid, None)
        .await
        .into_iter()
        .find(|i| i["language"] == "fr")
        .unwrap();
    assert_eq!(fr["product_id"], rep["published"][0]["product_id"]);
    let path = format!("/s/lingua/api/v1/store/products/{handle}");
    let base: Value = app
        .client
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(base["title"], "Blaue Vase");
    let v: Value = app
        .client
        .get(app.url(&format!("{path}?lang=fr")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["title"], "Vase bleu");
    assert_eq!(v["body_html"], "Un vase bleu");
    let v: Value = app
        .client
        .get(app.url(&path))
        .header("accept-language", "fr-LU,fr;q=0.9,de;q=0.5")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["title"], "Vase bleu");
    let list: Value = app
        .client
        .get(app.url("/s/lingua/api/v1/store/products?lang=fr"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["title"], "Vase bleu");
    let list: Value = app
        .client
        .get(app.url("/s/lingua/api/v1/store/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["data"][0]["title"], "Blaue Vase",
        "the cache keeps languages apart"
    );
    let xml = app
        .client
        .get(app.url("/s/lingua/api/v1/store/feed.xml?lang=fr"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(xml.contains("<g:title>Vase bleu</g:title>"), "{xml}");
    // A language without a translation shows the base.
    let v: Value = app
        .client
        .get(app.url(&format!("{path}?lang=en")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["title"], "Blaue Vase");
}

#[tokio::test]
async fn the_admin_feeds_page_lists_sources_and_queues_fetches() {
    use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD};
    use crate::ui::Browser;
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("adminfeeds").await;
    create_source(
        &app,
        &token,
        json!([{ "language": "de", "url": "https://feeds.example.com/de.csv" }]),
    )
    .await;
    let b = Browser::new(&app);
    b.sign_in("admin", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (s, page) = b.get("/admin/feeds").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("Shop adminfeeds") && page.contains("1 sources"),
        "{page}"
    );
    let (_, page) = b.get("/admin/feeds?status=failed").await;
    assert!(page.contains("0 sources"), "{page}");
    let csrf = b.csrf("/admin/feeds").await;
    let r = b
        .post_form(
            "/admin/feeds/trigger",
            &[("_csrf", &csrf), ("status", "never"), ("marketplace", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = b.get(&crate::ui::location(&r)).await;
    assert!(page.contains("1 fetches queued."), "{page}");
}
