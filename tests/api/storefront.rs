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
    let app = spawn_app().await;
    let (id, _) = app.provisioned_merchant("domain-shop").await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/domains"),
            json!({ "host": "Shop.Example.COM" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["verified"], false);
    assert_eq!(d["host"], "shop.example.com");
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
