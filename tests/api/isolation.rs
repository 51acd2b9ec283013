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
            (Method::PUT, "/api/v1/shop/currency"),
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

/// Checkout configuration (issue 11): B's shipping zones, rates, tax rates and discount
/// codes used with A's credentials answer exactly the 404 of a missing id, on every
/// route, and stay untouched; lists and settings show only the caller's own.
#[tokio::test]
async fn checkout_configuration_never_crosses_tenants() {
    let app = spawn_app().await;
    let (_a_id, a) = app.provisioned_merchant("alpha").await;
    let (_b_id, b) = app.provisioned_merchant("bravo").await;
    let send = |tok: &str, m: Method, p: &str, body: Option<Value>| {
        let mut r = app.with_token(m, p, tok);
        if let Some(body) = body {
            r = r.json(&body);
        }
        r.send()
    };
    let created = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let zone = created(
        send(
            &b,
            Method::POST,
            "/api/v1/shipping-zones",
            Some(json!({ "name": "B zone", "countries": ["DE"] })),
        )
        .await
        .unwrap(),
    )
    .await;
    let rate = created(
        send(
            &b,
            Method::POST,
            &format!("/api/v1/shipping-zones/{zone}/rates"),
            Some(json!({ "name": "B rate", "price_minor": 700 })),
        )
        .await
        .unwrap(),
    )
    .await;
    let tax = created(
        send(
            &b,
            Method::POST,
            "/api/v1/tax-rates",
            Some(json!({ "country": "DE", "rate_bp": 1900 })),
        )
        .await
        .unwrap(),
    )
    .await;
    let disc = created(
        send(
            &b,
            Method::POST,
            "/api/v1/discount-codes",
            Some(json!({ "code": "BRAVO", "kind": "fixed", "value": 100 })),
        )
        .await
        .unwrap(),
    )
    .await;
    let r = send(
        &b,
        Method::PUT,
        "/api/v1/settings/checkout",
        Some(json!({ "cash_on_delivery": true })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let missing = uuid::Uuid::now_v7().to_string();
    let zone_body = json!({ "name": "hijack", "countries": ["LU"] });
    let rate_body = json!({ "name": "hijack", "price_minor": 1 });
    let tax_body = json!({ "country": "LU", "rate_bp": 1 });
    let disc_body = json!({ "code": "HIJACK", "kind": "fixed", "value": 1 });
    type Case = (Method, &'static str, Option<Value>);
    let cases: Vec<(String, Vec<Case>)> = vec![
        (
            zone.clone(),
            vec![
                (Method::GET, "/api/v1/shipping-zones/{}", None),
                (Method::PUT, "/api/v1/shipping-zones/{}", Some(zone_body)),
                (Method::DELETE, "/api/v1/shipping-zones/{}", None),
                (Method::GET, "/api/v1/shipping-zones/{}/rates", None),
                (
                    Method::POST,
                    "/api/v1/shipping-zones/{}/rates",
                    Some(rate_body.clone()),
                ),
            ],
        ),
        (
            rate.clone(),
            vec![
                (Method::GET, "/api/v1/shipping-rates/{}", None),
                (Method::PUT, "/api/v1/shipping-rates/{}", Some(rate_body)),
                (Method::DELETE, "/api/v1/shipping-rates/{}", None),
            ],
        ),
        (
            tax.clone(),
            vec![
                (Method::GET, "/api/v1/tax-rates/{}", None),
                (Method::PUT, "/api/v1/tax-rates/{}", Some(tax_body)),
                (Method::DELETE, "/api/v1/tax-rates/{}", None),
            ],
        ),
        (
            disc.clone(),
            vec![
                (Method::GET, "/api/v1/discount-codes/{}", None),
                (Method::PUT, "/api/v1/discount-codes/{}", Some(disc_body)),
                (Method::DELETE, "/api/v1/discount-codes/{}", None),
            ],
        ),
    ];
    for (b_id, routes) in &cases {
        for (m, tpl, body) in routes {
            let theirs = send(&a, m.clone(), &tpl.replace("{}", b_id), body.clone())
                .await
                .unwrap();
            let (ts, tb) = (theirs.status(), theirs.text().await.unwrap());
            let none = send(&a, m.clone(), &tpl.replace("{}", &missing), body.clone())
                .await
                .unwrap();
            let (ns, nb) = (none.status(), none.text().await.unwrap());
            assert_eq!(ts, StatusCode::NOT_FOUND, "{m} {tpl}: {tb}");
            assert_eq!(
                (ts, &tb),
                (ns, &nb),
                "{m} {tpl}: B's id looks like a missing one"
            );
        }
    }
    // B's rows are intact.
    let zones: Value = send(&b, Method::GET, "/api/v1/shipping-zones", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(zones[0]["name"], "B zone");
    assert_eq!(zones[0]["rates"][0]["id"], rate.as_str());
    assert_eq!(zones[0]["rates"][0]["price_minor"], 700);
    let t: Value = send(&b, Method::GET, &format!("/api/v1/tax-rates/{tax}"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["rate_bp"], 1900);
    let d: Value = send(
        &b,
        Method::GET,
        &format!("/api/v1/discount-codes/{disc}"),
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(d["code"], "BRAVO");
    // A's lists and settings show none of B's.
    for p in ["/api/v1/shipping-zones", "/api/v1/tax-rates"] {
        let l: Value = send(&a, Method::GET, p, None)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(l, json!([]), "{p}");
    }
    let l: Value = send(&a, Method::GET, "/api/v1/discount-codes?q=BRAVO", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(l["pagination"]["total"], 0);
    let s: Value = send(&a, Method::GET, "/api/v1/settings/checkout", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["cash_on_delivery"], false, "B's settings are B's");
    // The same code and country are free in A.
    let r = send(
        &a,
        Method::POST,
        "/api/v1/discount-codes",
        Some(json!({ "code": "BRAVO", "kind": "fixed", "value": 100 })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &a,
        Method::POST,
        "/api/v1/tax-rates",
        Some(json!({ "country": "DE", "rate_bp": 1900 })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn feed_sources_items_and_overrides_never_cross_tenants() {
    let app = spawn_app().await;
    let (_a_id, a, _b_id, b, _) = two_merchants(&app).await;
    // B stages and publishes a feed item.
    let r = app
        .with_token(Method::POST, "/api/v1/feeds/sources", &b)
        .json(&json!({ "marketplace": "generic", "files": [{ "language": "de" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let src: Value = r.json().await.unwrap();
    let sid = src["id"].as_str().unwrap().to_string();
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/feeds/sources/{sid}/upload"),
            &b,
        )
        .header("content-type", "text/plain")
        .body("id,title,price,availability\nb-secret,Secret,5.00 EUR,in stock\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let run: Value = r.json().await.unwrap();
    let run_id = run["id"].as_str().unwrap().to_string();
    let items: Value = app
        .with_token(Method::GET, "/api/v1/feeds/items", &b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = items["data"][0]["id"].as_str().unwrap().to_string();
    let rep: Value = app
        .with_token(Method::POST, "/api/v1/feeds/items/publish", &b)
        .json(&json!({ "item_ids": [item] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = rep["published"][0]["product_id"]
        .as_str()
        .unwrap()
        .to_string();

    // A sees none of it in lists.
    let al: Value = app
        .with_token(Method::GET, "/api/v1/feeds/items", &a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(al["pagination"]["total"], 0);
    let asrc: Value = app
        .with_token(Method::GET, "/api/v1/feeds/sources", &a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asrc, json!([]));

    // B's ids on A answer exactly like ids that do not exist.
    let missing = uuid::Uuid::now_v7().to_string();
    let cases: Vec<(Method, String, Option<Value>, Option<&str>)> = vec![
        (Method::GET, "/api/v1/feeds/sources/{}".into(), None, None),
        (
            Method::PATCH,
            "/api/v1/feeds/sources/{}".into(),
            Some(
                json!({ "name": "Taken over", "enabled": false, "files": [{ "language": "de", "url": "https://feeds.example.com/a.csv" }] }),
            ),
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/feeds/sources/{}".into(),
            None,
            None,
        ),
        (
            Method::POST,
            "/api/v1/feeds/sources/{}/fetch".into(),
            None,
            None,
        ),
        (
            Method::POST,
            "/api/v1/feeds/sources/{}/upload".into(),
            None,
            Some("id,title\nx,y\n"),
        ),
        (
            Method::GET,
            "/api/v1/feeds/sources/{}/imports".into(),
            None,
            None,
        ),
    ];
    for (m, path, body, text) in cases {
        let mut out = vec![];
        for id in [&sid, &missing] {
            let mut req = app.with_token(m.clone(), &path.replace("{}", id), &a);
            if let Some(b) = &body {
                req = req.json(b);
            }
            if let Some(t) = text {
                req = req.header("content-type", "text/plain").body(t);
            }
            let r = req.send().await.unwrap();
            out.push((r.status(), r.text().await.unwrap()));
        }
        assert_eq!(out[0].0, StatusCode::NOT_FOUND, "{m} {path}");
        assert_eq!(out[0], out[1], "{m} {path}");
    }
    for (m, path, body) in [
        (Method::GET, "/api/v1/feeds/imports/{}".to_string(), None),
        (Method::GET, "/api/v1/feeds/items/{}".to_string(), None),
        (
            Method::POST,
            "/api/v1/feeds/items/{}/link".to_string(),
            Some(json!({ "handle": "alpha-only" })),
        ),
        (Method::GET, "/api/v1/feeds/products/{}".to_string(), None),
        (
            Method::PUT,
            "/api/v1/feeds/products/{}".to_string(),
            Some(json!({ "title": "Mine" })),
        ),
    ] {
        let own = match path.as_str() {
            p if p.contains("imports") => &run_id,
            p if p.contains("items") => &item,
            _ => &product,
        };
        let mut out = vec![];
        for id in [own, &missing] {
            let mut req = app.with_token(m.clone(), &path.replace("{}", id), &a);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            out.push((r.status(), r.text().await.unwrap()));
        }
        assert_eq!(out[0].0, StatusCode::NOT_FOUND, "{m} {path}: {}", out[0].1);
        assert_eq!(out[0], out[1], "{m} {path}");
    }
    // Publishing B's item from A: `not_found`, like a missing id.
    let rep: Value = app
        .with_token(Method::POST, "/api/v1/feeds/items/publish", &a)
        .json(&json!({ "item_ids": [item] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rep["failed"][0]["code"], "not_found");
    assert_eq!(rep["published"], json!([]));
    // B's product is untouched.
    let p: Value = app
        .with_token(Method::GET, &format!("/api/v1/products/{product}"), &b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["title"], "Secret");
    // B's source is untouched by A's PATCH.
    let bs: Value = app
        .with_token(Method::GET, &format!("/api/v1/feeds/sources/{sid}"), &b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bs["name"], src["name"]);
    assert_eq!(bs["enabled"], true);
    assert_eq!(bs["files"][0]["url"], Value::Null);
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
