//! `serve --demo` gives each store customers and weeks of orders in various states,
//! placed through the real checkout path.

use crate::checkout::product_with_stock;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashSet;

#[tokio::test]
async fn demo_stores_get_weeks_of_orders_in_various_states() {
    let app = spawn_app().await;
    let (id, tok) = app.provisioned_merchant("livingshop").await;
    let tenant: uuid::Uuid = id.parse().unwrap();
    souk::demo::seed_checkout(&app.db, tenant, "LU")
        .await
        .expect("checkout settings");
    let a = product_with_stock(&app, &tok, "House Blend", "12.00", 100).await;
    product_with_stock(&app, &tok, "Espresso Cup", "8.50", 100).await;
    product_with_stock(&app, &tok, "Sold Out Mug", "9.00", 0).await;
    souk::demo::seed_orders(
        &app.db,
        tenant,
        "Living Shop",
        "http://livingshop.localhost",
    )
    .await
    .expect("demo orders");

    let r = app
        .with_token(Method::GET, "/api/v1/orders?per_page=100", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let orders: Value = r.json().await.unwrap();
    assert_eq!(orders["pagination"]["total"], 14, "{orders}");
    let list = orders["data"].as_array().unwrap();
    let count = |k: &str, v: &str| list.iter().filter(|o| o[k] == v).count();
    assert_eq!(count("status", "cancelled"), 1);
    assert!(count("financial_status", "paid") >= 5, "{orders}");
    assert!(count("financial_status", "pending") >= 2, "{orders}");
    assert!(count("fulfillment_status", "fulfilled") >= 3, "{orders}");
    let customers: HashSet<&str> = list
        .iter()
        .filter_map(|o| o["customer_id"].as_str())
        .collect();
    assert_eq!(customers.len(), 5);
    // Spread over three weeks, not all created now.
    let dates: HashSet<&str> = list
        .iter()
        .map(|o| &o["created_at"].as_str().unwrap()[..10])
        .collect();
    assert!(dates.len() >= 10, "{dates:?}");
    // Real checkout: stock went down for what was sold (and came back for the cancel).
    let r = app
        .with_token(Method::GET, "/api/v1/products?per_page=10", &tok)
        .send()
        .await
        .unwrap();
    let prods: Value = r.json().await.unwrap();
    let stock: i64 = prods["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["variants"].as_array().unwrap().iter())
        .filter(|v| v["id"].as_str() == Some(a.as_str()))
        .map(|v| v["inventory_quantity"].as_i64().unwrap())
        .sum();
    assert!(stock < 100, "{prods}");
}
