//! Merchant A must never see, change or learn of merchant B's data, whichever way the
//! tenant is resolved (token claim, X-Tenant-ID, subdomain, custom domain, path).

use crate::catalog::product;
use crate::helpers::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn two_merchants(app: &TestApp) -> (String, String, String, String, String) {
    let (a_id, a) = app.provisioned_merchant("alpha").await;
    let (b_id, b) = app.provisioned_merchant("bravo").await;
    for (tok, h, sku) in [(&a, "alpha-only", "A1"), (&b, "bravo-secret", "B1")] {
        let r = app
            .client
            .post(app.url("/api/v1/products"))
            .bearer_auth(tok)
            .json(&product(h, sku, "active"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let bl: Value = app
        .client
        .get(app.url("/api/v1/products"))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_product = bl["data"][0]["id"].as_str().unwrap().to_string();
    (a_id, a, b_id, b, b_product)
}

#[tokio::test]
async fn merchant_api_never_crosses_tenants() {
    let app = spawn_app().await;
    let (_a_id, a, b_id, b, b_product) = two_merchants(&app).await;
    // Lists show only the caller's rows.
    let al: Value = app
        .client
        .get(app.url("/api/v1/products"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(al["pagination"]["total"], 1);
    assert_eq!(al["data"][0]["handle"], "alpha-only");
    let cl: Value = app
        .client
        .get(app.url("/api/v1/collections"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        cl.as_array().unwrap().len(),
        1,
        "only A's starter collection"
    );
    // B's product by id: 404 for read, update and delete, and it is left untouched.
    let path = format!("/api/v1/products/{b_product}");
    assert_eq!(
        app.client
            .get(app.url(&path))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = app
        .client
        .put(app.url(&path))
        .bearer_auth(&a)
        .json(&product("hijack", "H1", "draft"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.client
            .delete(app.url(&path))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let still: Value = app
        .client
        .get(app.url(&path))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["handle"], "bravo-secret");
    assert_eq!(still["status"], "active");
    // A's SKU and handle namespace is separate from B's: the same values are fine in A.
    let r = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&a)
        .json(&product("bravo-secret", "B1", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // X-Tenant-ID naming B (a real tenant) and a random id get the same 403.
    let random = uuid::Uuid::now_v7().to_string();
    let mut bodies = vec![];
    for tenant in [b_id.clone(), random] {
        for (m, p) in [
            (Method::GET, "/api/v1/products"),
            (Method::GET, "/api/v1/shop"),
            (Method::POST, "/api/v1/imports/products"),
            (Method::GET, path.as_str()),
        ] {
            let r = app
                .client
                .request(m, app.url(p))
                .bearer_auth(&a)
                .header("X-Tenant-ID", &tenant)
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{p}");
            bodies.push(r.text().await.unwrap());
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "no hint whether the tenant exists"
    );
    // A's token on B's host or path is refused.
    let r = app
        .on_host(
            Method::GET,
            &format!("bravo.localhost:{}", app.port),
            "/api/v1/products",
        )
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .get(app.url("/s/bravo/api/v1/products"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // B still sees only its own product.
    let bl: Value = app
        .client
        .get(app.url("/api/v1/products"))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bl["pagination"]["total"], 1);
}

#[tokio::test]
async fn store_api_and_storefront_never_cross_tenants() {
    let dns = crate::dns::TestDns::start().await;
    let app = crate::domains::app_with_dns(&dns).await;
    let (a_id, _a, _b_id, _b, _) = two_merchants(&app).await;
    let d: Value = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{a_id}/domains"),
            json!({ "host": "alpha.example.org" }),
        )
        .await
        .json()
        .await
        .unwrap();
    crate::domains::verify_via_dns(&app, &dns, &d).await;
    let port = app.port;
    let hosts = [
        format!("alpha.localhost:{port}"),
        "alpha.example.org".to_string(),
    ];
    for host in &hosts {
        let v: Value = app
            .on_host(Method::GET, host, "/api/v1/store/products")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let handles: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["handle"].as_str().unwrap())
            .collect();
        assert_eq!(handles, ["alpha-only"], "{host}");
        let r = app
            .on_host(Method::GET, host, "/api/v1/store/products/bravo-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = app
            .on_host(Method::GET, host, "/products/bravo-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let home = app
            .on_host(Method::GET, host, "/")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!home.contains("bravo"), "{host}");
    }
    let r = app
        .client
        .get(app.url("/s/alpha/api/v1/store/products/bravo-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .get(app.url("/s/alpha/products/bravo-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let catalog = app
        .client
        .get(app.url("/s/alpha/products"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(catalog.contains("alpha-only") && !catalog.contains("bravo"));
}

#[tokio::test]
async fn imports_land_in_the_callers_tenant_only() {
    let app = spawn_app().await;
    let (_a_id, a, _b_id, b, _) = two_merchants(&app).await;
    let csv = "Handle,Title,Variant Price,Variant SKU\nimported-a,Imported A,5.00,IMP-A\n";
    let r = app
        .client
        .post(app.url("/api/v1/imports/products"))
        .bearer_auth(&a)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let bl: Value = app
        .client
        .get(app.url("/api/v1/products?q=imported"))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bl["pagination"]["total"], 0);
    let al: Value = app
        .client
        .get(app.url("/api/v1/products?q=imported"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(al["pagination"]["total"], 1);
}

/// Custom domains: store B using store A's domain id gets the same 404 as for a missing
/// id, on every route; A's domain is untouched.
#[tokio::test]
async fn domains_never_cross_tenants() {
    let app = spawn_app().await;
    let (_a_id, a, _b_id, b, _) = two_merchants(&app).await;
    let r = app
        .with_token(Method::POST, "/api/v1/domains", &a)
        .json(&json!({ "host": "alpha-private.example" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let missing = uuid::Uuid::now_v7().to_string();
    let mut bodies = vec![];
    for target in [&id, &missing] {
        for (m, path) in [
            (Method::GET, format!("/api/v1/domains/{target}")),
            (Method::DELETE, format!("/api/v1/domains/{target}")),
            (Method::POST, format!("/api/v1/domains/{target}/check")),
        ] {
            let r = app.with_token(m.clone(), &path, &b).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{m} {path}");
            bodies.push(r.text().await.unwrap().replace(target.as_str(), "ID"));
        }
    }
    assert_eq!(
        bodies[..3],
        bodies[3..],
        "A's id and a missing id answer alike"
    );
    let list: Value = app
        .with_token(Method::GET, "/api/v1/domains", &b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!list.to_string().contains("alpha-private"), "{list}");
    let r = app
        .with_token(Method::GET, &format!("/api/v1/domains/{id}"), &a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
