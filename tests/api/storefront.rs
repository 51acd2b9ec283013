use crate::catalog::product;
use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn storefront_pages_render_with_theme_and_branding() {
    let app = spawn_app().await;
    let (id, token) = app.provisioned_merchant("pages-shop").await;
    for i in 0..13 {
        app.client
            .post(app.url("/api/v1/products"))
            .bearer_auth(&token)
            .json(&product(&format!("thing-{i}"), &format!("T{i}"), "active"))
            .send()
            .await
            .unwrap();
    }
    let host = format!("pages-shop.localhost:{}", app.port);
    let home = app
        .on_host(Method::GET, &host, "/")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("<html lang=\"en\">"));
    assert!(home.contains("<title>"));
    assert!(home.contains("Product thing-12"), "home lists products");
    assert!(home.contains("alt=\"front\""), "images carry alt text");
    let page2 = app
        .on_host(Method::GET, &host, "/products?page=2")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page2.contains("Page 2 of 2"), "{page2}");
    let detail = app
        .on_host(Method::GET, &host, "/products/thing-3")
        .send()
        .await
        .unwrap();
    assert_eq!(detail.status(), StatusCode::OK);
    let detail = detail.text().await.unwrap();
    assert!(detail.contains("12.50 EUR") && detail.contains("Size"));
    let css = app
        .on_host(Method::GET, &host, "/branding.css")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("--color-primary"), "{css}");
    let missing = app
        .on_host(Method::GET, &host, "/products/nope")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing.text().await.unwrap().contains("<html lang=\"en\">"),
        "a themed 404 page"
    );
    let _ = id;
}

#[tokio::test]
async fn the_two_themes_look_different() {
    let app = spawn_app().await;
    let a = app
        .client
        .get(app.url("/themes/classic/style.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let b = app
        .client
        .get(app.url("/themes/midnight/style.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(a, b);
    let svg = app
        .client
        .get(app.url("/themes/midnight/preview.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let themes: Value = app
        .admin_get("/api/v1/admin/themes")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(themes.as_array().unwrap().len(), 2);
    let plans: Value = app
        .admin_get("/api/v1/admin/plans")
        .await
        .json()
        .await
        .unwrap();
    assert!(plans.as_array().unwrap().len() >= 3);
}

#[tokio::test]
async fn suspended_store_shows_unavailable_and_unknown_hosts_get_404() {
    let app = spawn_app().await;
    let (id, _) = app.provisioned_merchant("sleepy").await;
    let r = app
        .admin_post(&format!("/api/v1/admin/merchants/{id}/suspend"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.client.get(app.url("/s/sleepy/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("currently unavailable"));
    let r = app
        .client
        .get(app.url("/s/sleepy/api/v1/store/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    app.admin_post(
        &format!("/api/v1/admin/merchants/{id}/reactivate"),
        json!({}),
    )
    .await;
    assert_eq!(
        app.client
            .get(app.url("/s/sleepy/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // Unknown subdomain, unknown custom domain, unknown path handle.
    let r = app
        .on_host(Method::GET, &format!("ghost.localhost:{}", app.port), "/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .on_host(
            Method::GET,
            "shop.unknown-domain.example",
            "/api/v1/store/products",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "tenant_not_found"
    );
    assert_eq!(
        app.client
            .get(app.url("/s/ghost/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn custom_domain_routes_to_its_store() {
    let dns = crate::dns::TestDns::start().await;
    let app = crate::domains::app_with_dns(&dns).await;
    let (id, _) = app.provisioned_merchant("domain-shop").await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/domains"),
            json!({ "host": "Shop.Example.COM" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["status"], "pending");
    assert_eq!(d["host"], "shop.example.com");
    // Unverified: it routes nowhere.
    let r = app
        .on_host(Method::GET, "shop.example.com", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    crate::domains::verify_via_dns(&app, &dns, &d).await;
    let r = app
        .on_host(Method::GET, "shop.example.com", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Shop domain-shop"));
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/domains"),
            json!({ "host": "not a domain" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

// ------------------------------------------------ SEO, description, tracking, logo

/// Creates, activates (with `theme`) and waits for a merchant; returns the owner's token.
pub(crate) async fn merchant_with_theme(
    app: &crate::helpers::TestApp,
    sub: &str,
    theme: &str,
) -> String {
    let email = format!("owner@{sub}.example");
    let id = app.create_merchant(&format!("Shop {sub}"), &email).await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": theme, "plan": "growth", "subdomain": sub }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(app.wait_provisioning(&id).await["status"], "completed");
    app.set_password_from_welcome(&email, "owner-password-1")
        .await
}

async fn page(app: &crate::helpers::TestApp, path: &str) -> (StatusCode, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn patch_step(
    app: &crate::helpers::TestApp,
    token: &str,
    step: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = app
        .with_token(Method::PATCH, &format!("/api/v1/onboarding/{step}"), token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Fills in the required steps and publishes the store (the guide's "coming soon" ends).
pub(crate) async fn publish_store(
    app: &crate::helpers::TestApp,
    token: &str,
    sub: &str,
    description: &str,
) {
    let (s, v) = patch_step(
        app,
        token,
        "business",
        json!({ "mark": "done", "values": { "name": format!("Shop {sub}"),
            "contact_email": format!("hi@{sub}.example"), "description": description } }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = patch_step(
        app,
        token,
        "payments",
        json!({ "mark": "done", "values": { "provider": "manual", "manual_instructions": "Pay by bank transfer" } }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = app
        .with_token(Method::POST, "/api/v1/onboarding/publish", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn product_pages_use_seo_fields_with_fallbacks_in_both_themes() {
    let app = spawn_app().await;
    for (sub, theme) in [("seo-classic", "classic"), ("seo-midnight", "midnight")] {
        let token = merchant_with_theme(&app, sub, theme).await;
        let mut with_seo = product("lamp", "LAMP", "active");
        with_seo["seo_title"] = json!("Brass Lamp <Handmade>");
        with_seo["seo_description"] = json!("A warm \"brass\" lamp for reading.");
        let mut plain = product("mug", "MUG", "active");
        plain["body_html"] = json!(
            "<p>Stoneware mug, glazed by hand.</p><p>Holds 300&nbsp;ml of coffee or tea and keeps it warm for a long, long time while you read the whole morning paper and then some more pages of a book.</p>"
        );
        for body in [with_seo, plain] {
            let r = app
                .with_token(Method::POST, "/api/v1/products", &token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "{}",
                r.text().await.unwrap()
            );
        }
        let (s, html) = page(&app, &format!("/s/{sub}/products/lamp")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            html.contains(&format!(
                "<title>Brass Lamp &lt;Handmade&gt; – Shop {sub}</title>"
            )),
            "{theme}: {html}"
        );
        assert!(
            html.contains(
                "<meta name=\"description\" content=\"A warm &quot;brass&quot; lamp for reading.\">"
            ),
            "{theme}: {html}"
        );
        assert!(
            html.contains("<meta property=\"og:title\" content=\"Brass Lamp &lt;Handmade&gt;\">")
        );
        assert!(html.contains(
            "<meta property=\"og:description\" content=\"A warm &quot;brass&quot; lamp for reading.\">"
        ));
        assert!(html.contains("<meta property=\"og:type\" content=\"product\">"));
        // (minijinja escapes `/` in attribute values as `&#x2f;`.)
        assert!(
            html.contains(
                "<meta property=\"og:image\" content=\"https:&#x2f;&#x2f;img.example&#x2f;a.jpg\">"
            ),
            "{html}"
        );
        // The visible heading stays the product's own title.
        assert!(html.contains(">Product lamp</h1>"), "{theme}");

        // Without SEO fields: the title, and a plain-text excerpt of the description.
        let (_, html) = page(&app, &format!("/s/{sub}/products/mug")).await;
        assert!(html.contains(&format!("<title>Product mug – Shop {sub}</title>")));
        let meta = html
            .split("<meta name=\"description\" content=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{theme}: no meta description in {html}"));
        assert!(
            meta.starts_with("Stoneware mug, glazed by hand. Holds 300 ml"),
            "{meta}"
        );
        assert!(!meta.contains('<') && meta.ends_with('…'), "{meta}");
        assert!(meta.chars().count() <= 160, "{meta}");
    }
}

#[tokio::test]
async fn description_and_tracking_ids_from_the_setup_guide_reach_every_page() {
    let app = spawn_app().await;
    let sub = "tracky";
    let token = merchant_with_theme(&app, sub, "midnight").await;
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&product("cap", "CAP", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    publish_store(
        &app,
        &token,
        sub,
        "Caps for night owls.\nMade in Lisbon & shipped <fast>.",
    )
    .await;

    // Unset ids: no snippet. The description shows on the home page and in its meta.
    let (s, home) = page(&app, &format!("/s/{sub}/")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !home.contains("googletagmanager") && !home.contains("fbq("),
        "{home}"
    );
    assert!(home.contains("<p>Caps for night owls.</p>"), "{home}");
    assert!(
        home.contains("<p>Made in Lisbon &amp; shipped &lt;fast&gt;.</p>"),
        "{home}"
    );
    assert!(home.contains(
        "<meta name=\"description\" content=\"Caps for night owls. Made in Lisbon &amp; shipped &lt;fast&gt;.\">"
    ));

    // Set both ids: the home page (cached before) shows the snippets at once, and so do
    // the catalog, product and 404 pages.
    let (s, v) = patch_step(
        &app,
        &token,
        "marketing",
        json!({ "values": { "google_analytics_id": "G-ABC123XYZ", "meta_pixel_id": "123456789012345" } }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for path in ["/", "/products", "/products/cap", "/products/nope"] {
        let (_, html) = page(&app, &format!("/s/{sub}{path}")).await;
        let head = html.split("</head>").next().unwrap_or_default();
        assert!(
            head.contains(
                "<script async src=\"https://www.googletagmanager.com/gtag/js?id=G-ABC123XYZ\"></script>"
            ),
            "{path}: {head}"
        );
        assert_eq!(
            head.matches("gtag('config',\"G-ABC123XYZ\")").count(),
            1,
            "{path}"
        );
        assert!(head.contains("fbq('init',\"123456789012345\")"), "{path}");
    }

    // Hostile values are refused by the API (naming the field) and change nothing.
    for (field, value) in [
        ("google_analytics_id", "G-1\"</script><script>alert(1)//"),
        ("google_analytics_id", "G-ABC123');alert(1);//"),
        ("meta_pixel_id", "123456789012345</script>"),
        ("meta_pixel_id", "1234567890123456\"+alert(1)+\""),
    ] {
        let (s, v) = patch_step(
            &app,
            &token,
            "marketing",
            json!({ "values": { field: value } }),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value}: {v}");
        assert_eq!(v["error"]["details"]["field"], field);
    }
    let (_, home) = page(&app, &format!("/s/{sub}/")).await;
    assert!(!home.contains("alert(1)"));
    assert!(home.contains("fbq('init',\"123456789012345\")"));

    // Clearing the pixel removes only its snippet.
    let (s, _) = patch_step(
        &app,
        &token,
        "marketing",
        json!({ "values": { "meta_pixel_id": "" } }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, home) = page(&app, &format!("/s/{sub}/")).await;
    assert!(!home.contains("fbq("), "{home}");
    assert!(home.contains("gtag('config',\"G-ABC123XYZ\")"));
}

#[tokio::test]
async fn an_uploaded_logo_shows_in_the_storefront_header() {
    let app = spawn_app().await;
    let token = merchant_with_theme(&app, "logoshop", "classic").await;
    let (_, home) = page(&app, "/s/logoshop/").await;
    assert!(!home.contains("brand__logo"));
    let png = [b"\x89PNG\r\n\x1a\n".to_vec(), b"\0\0\0\rIHDR fake".to_vec()].concat();
    let part = reqwest::multipart::Part::bytes(png)
        .file_name("logo.png")
        .mime_str("image/png")
        .unwrap();
    let r = app
        .with_token(Method::POST, "/api/v1/onboarding/logo", &token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let logo: Value = r.json().await.unwrap();
    let url = logo["logo_url"].as_str().unwrap().replace('/', "&#x2f;");
    // The upload opened the guide: publish to see the store again.
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&product("hat", "HAT", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    publish_store(&app, &token, "logoshop", "").await;
    let (_, home) = page(&app, "/s/logoshop/").await;
    // No store description: the theme's hero text is the home page's description.
    assert!(
        home.contains(
            "<meta name=\"description\" content=\"Thoughtfully chosen goods, made to last.\">"
        ),
        "{home}"
    );
    assert!(
        home.contains(&format!(
            "<img class=\"brand__logo\" src=\"&#x2f;s&#x2f;logoshop{url}\" alt=\"Shop logoshop\""
        )),
        "{home}"
    );
}

/// A zip of the classic theme under `id`, its layout without the `tracking_head` block
/// (like a theme written before the snippets existed).
fn legacy_theme_zip(id: &str) -> Vec<u8> {
    use std::io::Write;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("themes/classic");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let mut config: Value = serde_json::from_str(&read("config.json")).unwrap();
    config["id"] = json!(id);
    config["name"] = json!("Legacy");
    let layout = read("templates/layout.html");
    let start = layout.find("  {%- if tracking_head %}").unwrap();
    let end = layout[start..].find("{%- endif %}").unwrap() + start + "{%- endif %}".len();
    let layout = format!("{}{}", &layout[..start], &layout[end..]);
    assert!(!layout.contains("tracking_head"));
    let mut files = vec![
        ("config.json".to_string(), config.to_string()),
        ("style.css".to_string(), read("style.css")),
        ("preview.svg".to_string(), read("preview.svg")),
        ("templates/layout.html".to_string(), layout),
    ];
    for t in [
        "home.html",
        "catalog.html",
        "product.html",
        "not_found.html",
        "unavailable.html",
        "cart.html",
        "checkout.html",
        "order.html",
        "account.html",
    ] {
        files.push((format!("templates/{t}"), read(&format!("templates/{t}"))));
    }
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (path, body) in files {
        w.start_file(path, opts).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn themes_that_do_not_place_the_snippets_still_get_them_in_head() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/admin/themes"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/zip")
        .body(legacy_theme_zip("legacy"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let token = merchant_with_theme(&app, "legacyshop", "legacy").await;
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&product("box", "BOX", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    publish_store(&app, &token, "legacyshop", "Boxes.").await;
    let (_, home) = page(&app, "/s/legacyshop/").await;
    assert!(!home.contains("gtag("));
    let (s, _) = patch_step(
        &app,
        &token,
        "marketing",
        json!({ "values": { "google_analytics_id": "UA-1234567-1" } }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for path in ["/", "/products/box"] {
        let (_, html) = page(&app, &format!("/s/legacyshop{path}")).await;
        let head = html.split("</head>").next().unwrap_or_default();
        assert_eq!(
            head.matches("gtag('config',\"UA-1234567-1\")").count(),
            1,
            "{path}: {html}"
        );
    }
}

#[tokio::test]
async fn the_store_api_is_coming_soon_too_until_the_store_is_published() {
    let app = spawn_app().await;
    let sub = "soonapi";
    let (_, token) = app.provisioned_merchant(sub).await;
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&product("lamp", "LAMP", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let pk = app
        .with_token(Method::POST, "/api/v1/api-keys", &token)
        .json(&json!({ "name": "Website", "kind": "publishable" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let list = format!("/s/{sub}/api/v1/store/products");
    let one = format!("/s/{sub}/api/v1/store/products/lamp");
    let by_key = || {
        app.client
            .get(app.url("/api/v1/store/products"))
            .header("X-Publishable-Key", &pk)
    };
    // A store that never opened the setup guide serves its catalog (and caches the list).
    for path in [&list, &one] {
        let (s, body) = page(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
        assert!(body.contains("\"handle\":\"lamp\""), "{body}");
    }
    // Opening the guide closes the Store API, as it closes the pages (cached list or not).
    let (s, v) = patch_step(
        &app,
        &token,
        "business",
        json!({ "values": { "name": "Soon Shop" } }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = page(&app, &format!("/s/{sub}/")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    for req in [
        app.client.get(app.url(&list)),
        app.client.get(app.url(&one)),
        app.on_host(
            Method::GET,
            &format!("{sub}.localhost"),
            "/api/v1/store/products",
        ),
        by_key(),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "3600");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "store_not_published", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("coming soon"),
            "{v}"
        );
        assert!(!v.to_string().contains("lamp"), "{v}");
    }
    // Publishing opens it at once (no cached refusal).
    publish_store(&app, &token, sub, "").await;
    for path in [&list, &one] {
        let (s, body) = page(&app, path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
        assert!(body.contains("\"handle\":\"lamp\""), "{body}");
    }
    let r = by_key().send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
