use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub fn product(handle: &str, sku: &str, status: &str) -> Value {
    json!({
        "title": format!("Product {handle}"),
        "handle": handle,
        "status": status,
        "options": ["Size"],
        "tags": ["demo"],
        "variants": [
            { "sku": format!("{sku}-S"), "option_values": ["S"], "price": "12.50", "compare_at_price": "15", "inventory_quantity": 3 },
            { "sku": format!("{sku}-M"), "option_values": ["M"], "price_minor": 1350, "inventory_quantity": 0 }
        ],
        "images": [{ "url": "https://img.example/a.jpg", "alt": "front" }]
    })
}

#[tokio::test]
async fn product_crud_with_variants_and_money_in_minor_units() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("crud-shop").await;
    let r = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&token)
        .json(&product("tee", "TEE", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let p: Value = r.json().await.unwrap();
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["variants"][0]["price"]["amount_minor"], 1250);
    assert_eq!(p["variants"][0]["price"]["currency"], "EUR");
    assert_eq!(p["variants"][0]["compare_at_price"]["amount_minor"], 1500);
    assert_eq!(p["variants"][1]["price"]["amount_minor"], 1350);
    assert_eq!(p["variants"][1]["title"], "M");
    // Read, list, update, delete.
    let got: Value = app
        .client
        .get(app.url(&format!("/api/v1/products/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["handle"], "tee");
    let mut upd = product("tee", "TEE", "draft");
    upd["title"] = json!("Renamed");
    let r = app
        .client
        .put(app.url(&format!("/api/v1/products/{id}")))
        .bearer_auth(&token)
        .json(&upd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = app
        .client
        .get(app.url("/api/v1/products?status=draft"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["pagination"]["total"], 1);
    assert_eq!(list["data"][0]["title"], "Renamed");
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/products/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .client
        .get(app.url(&format!("/api/v1/products/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn product_validation_names_the_field() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("valid-shop").await;
    let post = |body: Value| {
        app.client
            .post(app.url("/api/v1/products"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let mut bad_price = product("p1", "P1", "active");
    bad_price["variants"][0]["price"] = json!("3.65275E+11");
    let mut abc = product("p2", "P2", "active");
    abc["variants"][1]["price"] = json!("abc");
    abc["variants"][1]["price_minor"] = Value::Null;
    let mut bad_handle = product("Bad Handle!", "P3", "active");
    bad_handle["handle"] = json!("Bad Handle!");
    let mut bad_status = product("p4", "P4", "sold");
    bad_status["status"] = json!("sold");
    let mut long_title = product("p5", "P5", "active");
    long_title["title"] = json!("x".repeat(10_000));
    for (body, field) in [
        (bad_price, "variants[0].price"),
        (abc, "variants[1].price"),
        (bad_handle, "handle"),
        (bad_status, "status"),
        (long_title, "title"),
    ] {
        let r = post(body).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["details"]["field"], field, "{v}");
    }
    // Missing required field: serde names it.
    let r = post(json!({ "variants": [] })).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("title"),
        "{v}"
    );
    // Duplicate handle and SKU are conflicts naming the field.
    assert_eq!(
        post(product("dup", "DUP", "active"))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    let r = post(product("dup", "OTHER", "active")).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "handle_taken"
    );
    let r = post(product("dup-2", "DUP", "active")).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "sku_taken"
    );
}

#[tokio::test]
async fn store_api_lists_only_active_products_with_pagination() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("store-shop").await;
    for i in 0..14 {
        let status = if i < 13 { "active" } else { "draft" };
        let r = app
            .client
            .post(app.url("/api/v1/products"))
            .bearer_auth(&token)
            .json(&product(&format!("item-{i}"), &format!("S{i}"), status))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let v: Value = app
        .client
        .get(app.url("/s/store-shop/api/v1/store/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["pagination"]["total"], 13);
    assert_eq!(v["data"].as_array().unwrap().len(), 12);
    let host = format!("store-shop.localhost:{}", app.port);
    let v: Value = app
        .on_host(reqwest::Method::GET, &host, "/api/v1/store/products?page=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let r = app
        .on_host(
            reqwest::Method::GET,
            &host,
            "/api/v1/store/products/item-13",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "draft products are not public"
    );
    let r = app
        .on_host(reqwest::Method::GET, &host, "/api/v1/store/products/item-0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The Store API needs a store host or path.
    let r = app
        .client
        .get(app.url("/api/v1/store/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_pages_are_newest_first_with_the_total_of_matches() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("search-shop").await;
    for (handle, sku) in [
        ("needle-one", "N1"),
        ("plain-one", "P1"),
        ("needle-two", "N2"),
        ("needle-three", "N3"),
        ("plain-two", "P2"),
    ] {
        let r = app
            .client
            .post(app.url("/api/v1/products"))
            .bearer_auth(&token)
            .json(&product(handle, sku, "active"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let page = |n: u32| {
        let app = &app;
        let token = token.clone();
        async move {
            let v: Value = app
                .client
                .get(app.url(&format!("/api/v1/products?q=NEEDLE&per_page=2&page={n}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let handles: Vec<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["handle"].as_str().unwrap().to_string())
                .collect();
            (handles, v["pagination"]["total"].as_i64().unwrap())
        }
    };
    // Case-insensitive, newest first, total counts every match (not the page).
    assert_eq!(
        page(1).await,
        (vec!["needle-three".into(), "needle-two".into()], 3)
    );
    assert_eq!(page(2).await, (vec!["needle-one".into()], 3));
    // Past the last page: no rows, the total is still right.
    assert_eq!(page(5).await, (vec![], 3));
    app.stop().await;
}
