//! Storefront languages (the product's feed translations on the home, catalog and product
//! pages of both built-in themes: `?lang=`, `Accept-Language` with q-values, the base
//! language; the switcher, `hreflang` links, `<html lang>`, `Vary`), and editing a feed
//! source after creation (API and dashboard).

use crate::helpers::{TestApp, spawn_app};
use crate::storefront::merchant_with_theme;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn upload(app: &TestApp, token: &str, source: &str, lang: &str, body: &str) -> Value {
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/feeds/sources/{source}/upload?language={lang}"),
            token,
        )
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app
        .with_token(Method::GET, path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// A store `sub` (theme `theme`) with a de/fr source whose German item is published and
/// whose French item is its translation. Returns the product's handle.
async fn bilingual_store(app: &TestApp, sub: &str, theme: &str) -> String {
    let token = merchant_with_theme(app, sub, theme).await;
    let r = app
        .with_token(Method::POST, "/api/v1/feeds/sources", &token)
        .json(&json!({ "marketplace": "letzshop", "files": [{ "language": "de" }, { "language": "fr" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    upload(
        app,
        &token,
        &sid,
        "de",
        "id;title;description;price;availability\nv1;Blaue Vase;Eine blaue Vase;10.00 EUR;in stock\n",
    )
    .await;
    let items = get_json(app, &token, &format!("/api/v1/feeds/items?source_id={sid}")).await;
    let item = items["data"][0]["id"].as_str().unwrap().to_string();
    let rep: Value = app
        .with_token(Method::POST, "/api/v1/feeds/items/publish", &token)
        .json(&json!({ "item_ids": [item] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let handle = rep["published"][0]["handle"].as_str().unwrap().to_string();
    upload(
        app,
        &token,
        &sid,
        "fr",
        "id;title;description;price;availability\nv1;Vase bleu;Un vase bleu;10.00 EUR;in stock\n",
    )
    .await;
    handle
}

async fn page(app: &TestApp, path: &str, accept: Option<&str>) -> (StatusCode, String, String) {
    let mut req = app.client.get(app.url(path));
    if let Some(a) = accept {
        req = req.header("accept-language", a);
    }
    let r = req.send().await.unwrap();
    let vary = r
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    // minijinja escapes `/` in attributes; a browser reads both the same.
    let status = r.status();
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    (status, vary, html)
}

#[tokio::test]
async fn storefront_pages_serve_the_shoppers_language_in_both_themes() {
    let app = spawn_app().await;
    for (sub, theme) in [("lang-classic", "classic"), ("lang-midnight", "midnight")] {
        let handle = bilingual_store(&app, sub, theme).await;
        let base = format!("/s/{sub}");
        let product_path = format!("{base}/products/{handle}");
        for path in [
            format!("{base}/"),
            format!("{base}/products"),
            product_path.clone(),
        ] {
            // No choice: the base language, varying by Accept-Language.
            let (s, vary, html) = page(&app, &path, None).await;
            assert_eq!(s, StatusCode::OK, "{theme} {path}");
            assert!(html.contains("Blaue Vase"), "{theme} {path}: {html}");
            assert!(!html.contains("Vase bleu"), "{theme} {path}");
            assert!(html.contains("<html lang=\"de\">"), "{theme} {path}");
            assert!(vary.contains("accept-language"), "{theme} {path}: {vary}");
            // hreflang links for each language and x-default, absolute.
            // Addressed by path: the platform URL's origin, never the request's Host.
            let origin = format!("http://localhost:{}", app.port);
            for (code, q) in [("de", "?lang=de"), ("fr", "?lang=fr"), ("x-default", "")] {
                let link = format!(
                    "<link rel=\"alternate\" hreflang=\"{code}\" href=\"{origin}{path}{q}\">"
                );
                assert!(html.contains(&link), "{theme} {path}: {link} in {html}");
            }
            // The switcher lists both languages.
            assert!(html.contains("aria-label=\"Language\""), "{theme} {path}");
            assert!(
                html.contains(&format!(
                    "href=\"{path}?lang=fr\" hreflang=\"fr\" lang=\"fr\">Français</a>"
                )),
                "{theme} {path}: {html}"
            );
            assert!(
                html.contains(&format!(
                    "href=\"{path}?lang=de\" hreflang=\"de\" lang=\"de\" aria-current=\"true\">Deutsch</a>"
                )),
                "{theme} {path}"
            );

            // ?lang=fr: the translation, links keep the language, no Vary.
            let (s, vary, html) = page(&app, &format!("{path}?lang=fr"), Some("de")).await;
            assert_eq!(s, StatusCode::OK);
            assert!(html.contains("Vase bleu"), "{theme} {path}?lang=fr: {html}");
            assert!(!html.contains("Blaue Vase"), "{theme} {path}?lang=fr");
            assert!(html.contains("<html lang=\"fr\">"), "{theme} {path}");
            assert!(!vary.contains("accept-language"), "{theme} {path}: {vary}");
            assert!(
                html.contains(&format!("href=\"{base}/products?lang=fr\"")),
                "{theme} {path}: the nav keeps the language"
            );
            if !path.contains("/products/") {
                assert!(
                    html.contains(&format!("href=\"{product_path}?lang=fr\"")),
                    "{theme} {path}: product cards keep the language"
                );
            }

            // Accept-Language with q-values: fr outranks en (not served) and de.
            let (_, vary, html) =
                page(&app, &path, Some("en;q=0.9, de;q=0.5, fr-LU;q=0.8, it")).await;
            assert!(html.contains("Vase bleu"), "{theme} {path}: q-values");
            assert!(html.contains("<html lang=\"fr\">"));
            assert!(vary.contains("accept-language"));
            assert!(
                html.contains(&format!("href=\"{base}/products\"")),
                "{theme} {path}: a header choice needs no parameter in links"
            );

            // The cache keeps languages apart: the base again without a choice.
            let (_, _, html) = page(&app, &path, Some("de-DE")).await;
            assert!(html.contains("Blaue Vase"), "{theme} {path}: after fr");
            assert!(html.contains("<html lang=\"de\">"));

            // An unknown or malformed language falls back to the base, never fails.
            for bad in ["xx", "%3Cb%3E", "", "toolongvalue"] {
                let (s, _, html) = page(&app, &format!("{path}?lang={bad}"), Some("fr")).await;
                assert_eq!(s, StatusCode::OK, "{theme} {path}?lang={bad}");
                assert!(
                    html.contains("<html lang=\"de\">") || bad.is_empty(),
                    "{bad}"
                );
                if !bad.is_empty() {
                    assert!(html.contains("Blaue Vase"), "{theme} {path}?lang={bad}");
                }
            }
        }
    }
    // On the store's own host, the links are absolute on that host.
    let host = format!("lang-classic.localhost:{}", app.port);
    let html = app
        .on_host(Method::GET, &host, "/products")
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(html.contains("Vase bleu"));
    assert!(
        html.contains(&format!(
            "<link rel=\"alternate\" hreflang=\"fr\" href=\"http://{host}/products?lang=fr\">"
        )),
        "{html}"
    );
    assert!(html.contains("href=\"/products?lang=de\" hreflang=\"de\""));
    // A forged Host on a path-addressed page is not echoed.
    let r = app
        .client
        .get(app.url("/s/lang-classic/"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("hreflang=\"x-default\""), "{html}");
    assert!(!html.contains("evil.example"));
    // The Store API varies by Accept-Language too, and ranks by q-value.
    let r = app
        .client
        .get(app.url("/s/lang-classic/api/v1/store/products"))
        .header("accept-language", "en;q=0.9, fr;q=0.8")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap_or("").contains("accept-language"))
    );
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["data"][0]["title"], "Vase bleu");
    let r = app
        .client
        .get(app.url("/s/lang-classic/api/v1/store/products?lang=fr"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("vary").is_none());
}

#[tokio::test]
async fn a_store_without_translations_has_one_language_and_no_switcher() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("monolingual").await;
    let r = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&token)
        .json(&crate::catalog::product("solo", "Solo", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (s, _, html) = page(&app, "/s/monolingual/?lang=fr", Some("fr")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("<html lang=\"en\">"),
        "no feed: en is the base"
    );
    assert!(
        !html.contains("aria-label=\"Language\""),
        "no switcher: {html}"
    );
    assert!(html.contains("hreflang=\"x-default\""));
    assert!(html.contains("hreflang=\"en\""));
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .with_token(Method::PATCH, &format!("/api/v1/feeds/sources/{id}"), token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_feed_source_is_edited_with_validation() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("editfeeds").await;
    let r = app
        .with_token(Method::POST, "/api/v1/feeds/sources", &token)
        .json(&json!({ "marketplace": "letzshop", "name": "Letzshop",
            "files": [{ "language": "de", "url": "https://feeds.example.com/de.csv" }, { "language": "fr" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let src: Value = r.json().await.unwrap();
    let sid = src["id"].as_str().unwrap().to_string();
    upload(
        &app,
        &token,
        &sid,
        "fr",
        "id;title;price;availability\nf1;Vase;10.00 EUR;in stock\n",
    )
    .await;

    // Everything at once.
    let (s, v) = patch(
        &app,
        &token,
        &sid,
        json!({
            "name": "  Google DE/EN ", "marketplace": "Google_Merchant", "schedule": "daily",
            "enabled": false, "draft_on_disappear": false,
            "files": [
                { "language": "de", "url": "https://feeds.example.com/de-v2.csv" },
                { "language": "EN", "url": "https://feeds.example.com/en.csv" }
            ]
        }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "Google DE/EN");
    assert_eq!(v["marketplace"], "google_merchant");
    assert_eq!(v["schedule"], "daily");
    assert_eq!(v["enabled"], false);
    assert_eq!(v["draft_on_disappear"], false);
    assert_eq!(v["default_language"], "de");
    let files: Vec<(String, String)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["language"].as_str().unwrap().to_string(),
                f["url"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        files,
        vec![
            ("de".into(), "https://feeds.example.com/de-v2.csv".into()),
            ("en".into(), "https://feeds.example.com/en.csv".into())
        ]
    );
    // The removed French file took its staged items with it.
    let items = get_json(
        &app,
        &token,
        &format!("/api/v1/feeds/items?source_id={sid}&language=fr"),
    )
    .await;
    assert_eq!(items["pagination"]["total"], 0);
    // An empty patch keeps everything; GET shows the same.
    let (s, same) = patch(&app, &token, &sid, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(same["name"], "Google DE/EN");
    assert_eq!(same["files"], v["files"]);
    let got = get_json(&app, &token, &format!("/api/v1/feeds/sources/{sid}")).await;
    assert_eq!(got["schedule"], "daily");

    // Refusals name the field and change nothing.
    for (body, field, code) in [
        (
            json!({ "marketplace": "amazon" }),
            "marketplace",
            "invalid_marketplace",
        ),
        (
            json!({ "schedule": "weekly" }),
            "schedule",
            "invalid_schedule",
        ),
        (json!({ "name": "   " }), "name", "required"),
        (json!({ "name": "x".repeat(201) }), "name", "too_long"),
        (json!({ "files": [] }), "files", "invalid_files"),
        (
            json!({ "files": [{ "language": "de", "url": "http://127.0.0.1:9/de.csv" }] }),
            "files.url",
            "invalid_url",
        ),
        (
            json!({ "files": [{ "language": "de", "url": "ftp://feeds.example.com/de.csv" }] }),
            "files.url",
            "invalid_url",
        ),
        (
            json!({ "files": [{ "language": "fr", "url": "https://feeds.example.com/fr.csv" }] }),
            "files",
            "default_language_required",
        ),
        (
            json!({ "files": [{ "language": "de" }, { "language": "DE" }] }),
            "files.language",
            "duplicate_language",
        ),
        (
            json!({ "files": [{ "language": "deutsch" }] }),
            "files.language",
            "invalid_language",
        ),
    ] {
        let (s, e) = patch(&app, &token, &sid, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["error"]["code"], code, "{body}: {e}");
        assert_eq!(e["error"]["details"]["field"], field, "{body}: {e}");
        assert!(!e["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    // A field the API does not know is refused, not ignored.
    let (s, e) = patch(&app, &token, &sid, json!({ "default_language": "en" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let after = get_json(&app, &token, &format!("/api/v1/feeds/sources/{sid}")).await;
    assert_eq!(after["files"], v["files"], "refusals changed nothing");
    assert_eq!(after["marketplace"], "google_merchant");

    // imports.configure: a manager (imports.view and trigger only) may not edit.
    let (_, manager) = app
        .add_member(&token, "manager@editfeeds.example", "manager")
        .await;
    let (s, _) = patch(&app, &manager, &sid, json!({ "name": "Mine" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A missing source is a 404.
    let (s, e) = patch(
        &app,
        &token,
        &uuid::Uuid::now_v7().to_string(),
        json!({ "name": "x" }),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
}

#[tokio::test]
async fn the_dashboard_edits_a_feed_source() {
    use crate::ui::Browser;
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("uiedit").await;
    let r = app
        .with_token(Method::POST, "/api/v1/feeds/sources", &token)
        .json(&json!({ "marketplace": "letzshop", "files": [{ "language": "de" }, { "language": "fr" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = Browser::new(&app);
    b.sign_in("dashboard", "owner@uiedit.example", "owner-password-1")
        .await;
    let (s, html) = b.get("/dashboard/feeds").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Edit source"), "{html}");
    assert!(html.contains(&format!("action=\"/dashboard/feeds/sources/{sid}/edit\"")));
    assert!(html.contains("name=\"url_fr\""));
    assert!(
        html.contains("<option value=\"letzshop\" selected>"),
        "the form shows the current values"
    );
    assert!(html.contains("name=\"remove_fr\""));
    assert!(
        !html.contains("name=\"remove_de\""),
        "the default language stays"
    );
    let csrf = b.csrf("/dashboard/feeds").await;
    let r = b
        .post_form(
            &format!("/dashboard/feeds/sources/{sid}/edit"),
            &[
                ("_csrf", &csrf),
                ("name", "Letzshop DE"),
                ("marketplace", "letzshop"),
                ("schedule", "hourly"),
                ("enabled", "on"),
                ("url_de", "https://feeds.example.com/de.xml"),
                ("url_fr", ""),
                ("remove_fr", "on"),
                ("new_language", "en"),
                ("new_url", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let v = get_json(&app, &token, &format!("/api/v1/feeds/sources/{sid}")).await;
    assert_eq!(v["name"], "Letzshop DE");
    assert_eq!(v["schedule"], "hourly");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["draft_on_disappear"], false, "an unticked checkbox");
    let langs: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["language"].as_str().unwrap())
        .collect();
    assert_eq!(langs, vec!["de", "en"]);
    assert_eq!(v["files"][0]["url"], "https://feeds.example.com/de.xml");
    let (_, html) = b.get("/dashboard/feeds").await;
    assert!(html.contains("Feed source saved."), "{html}");
    // A refusal comes back as the page's message, and nothing changes.
    let r = b
        .post_form(
            &format!("/dashboard/feeds/sources/{sid}/edit"),
            &[
                ("_csrf", &csrf),
                ("name", "Letzshop DE"),
                ("schedule", "hourly"),
                ("url_de", "http://10.0.0.1/feed.xml"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get("/dashboard/feeds").await;
    assert!(html.contains("The source was not changed"), "{html}");
    let v = get_json(&app, &token, &format!("/api/v1/feeds/sources/{sid}")).await;
    assert_eq!(v["files"][0]["url"], "https://feeds.example.com/de.xml");
}
