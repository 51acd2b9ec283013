//! Orders, payments and support tickets through HTTP: totals in minor units, validation
//! errors naming the field, pagination and filters, payments and financial status, tenant
//! isolation, permissions, and the full resource payloads of their events (and of
//! product events).

use crate::catalog::product;
use crate::events::Stream;
use crate::helpers::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.with_token(method, path, token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, path, token, Some(body)).await
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::PATCH, path, token, Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path, token, None).await
}

/// Creates the catalog's test product (variants `{sku}-S` 12.50 and `{sku}-M` 13.50);
/// returns it as the API does.
async fn make_product(app: &TestApp, token: &str, handle: &str, sku: &str) -> Value {
    let (s, p) = post(
        app,
        token,
        "/api/v1/products",
        product(handle, sku, "active"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    p
}

/// A one-line custom order of `minor` units; returns it.
async fn simple_order(app: &TestApp, token: &str, minor: i64) -> Value {
    let (s, o) = post(
        app,
        token,
        "/api/v1/orders",
        json!({ "line_items": [{ "title": "Service", "price_minor": minor }] }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o
}

fn assert_invalid(status: StatusCode, body: &Value, field: &str, code: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["details"]["field"], field, "{body}");
}

#[tokio::test]
async fn orders_take_variant_and_custom_lines_with_totals_in_minor_units() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("ord-create").await;
    let p = make_product(&app, &owner, "tee", "TEE").await;
    let small = p["variants"][0]["id"].as_str().unwrap();
    let (s, o) = post(
        &app,
        &owner,
        "/api/v1/orders",
        json!({
            "email": "Buyer@Example.com",
            "customer_name": "Ada Buyer",
            "note": "ring twice",
            "line_items": [
                { "variant_id": small, "quantity": 2 },
                { "title": "Gift wrap", "price": "3.00" },
                { "title": "Engraving", "price_minor": 450, "sku": "ENG-1", "quantity": 3 }
            ]
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["number"], 1001);
    assert_eq!(o["email"], "buyer@example.com");
    assert_eq!(o["customer_name"], "Ada Buyer");
    assert_eq!(o["currency"], "EUR");
    assert_eq!(o["status"], "open");
    assert_eq!(o["financial_status"], "pending");
    assert_eq!(o["fulfillment_status"], "unfulfilled");
    let lines = o["line_items"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["variant_id"], small);
    assert_eq!(lines[0]["product_id"], p["id"]);
    assert_eq!(lines[0]["sku"], "TEE-S");
    assert_eq!(lines[0]["title"], "Product tee - S");
    assert_eq!(lines[0]["unit_price"]["amount_minor"], 1250);
    assert_eq!(lines[0]["total"]["amount_minor"], 2500);
    assert_eq!(lines[1]["variant_id"], Value::Null);
    assert_eq!(lines[1]["sku"], Value::Null);
    assert_eq!(lines[1]["quantity"], 1);
    assert_eq!(lines[1]["total"]["amount_minor"], 300);
    assert_eq!(lines[2]["sku"], "ENG-1");
    assert_eq!(lines[2]["total"]["amount_minor"], 1350);
    assert_eq!(lines[2]["position"], 2);
    assert_eq!(o["subtotal"]["amount_minor"], 4150);
    assert_eq!(o["total"]["amount_minor"], 4150);
    assert_eq!(o["total"]["currency"], "EUR");
    assert_eq!(o["total"]["formatted"], "41.50 EUR");
    assert_eq!(o["paid"]["amount_minor"], 0);
    assert_eq!(o["outstanding"]["amount_minor"], 4150);

    // Read back exactly as created; numbers count up per tenant.
    let id = o["id"].as_str().unwrap();
    let (s, got) = get(&app, &owner, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, o);
    assert_eq!(simple_order(&app, &owner, 100).await["number"], 1002);
    let (_, other_owner) = app.provisioned_merchant("ord-create-b").await;
    assert_eq!(
        simple_order(&app, &other_owner, 100).await["number"],
        1001,
        "numbers are per tenant"
    );

    // The line is a snapshot: editing the product does not change the order.
    let mut changed = product("tee", "TEE", "active");
    changed["variants"][0]["price"] = json!("99.00");
    let (s, _) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/products/{}", p["id"].as_str().unwrap()),
        &owner,
        Some(changed),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, got) = get(&app, &owner, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(got["line_items"][0]["unit_price"]["amount_minor"], 1250);
}

#[tokio::test]
async fn invalid_orders_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("ord-invalid").await;
    let (_, owner_b) = app.provisioned_merchant("ord-invalid-b").await;
    let foreign = make_product(&app, &owner_b, "secret", "SEC").await;
    let foreign_variant = foreign["variants"][0]["id"].clone();
    let custom = json!({ "title": "X", "price_minor": 100 });
    let cases = [
        (
            json!({ "line_items": [{ "variant_id": "0195a3c2-0000-7000-8000-00000000abcd" }] }),
            "line_items[0].variant_id",
            "unknown_variant",
        ),
        (
            // Another tenant's variant does not exist here.
            json!({ "line_items": [custom, { "variant_id": foreign_variant }] }),
            "line_items[1].variant_id",
            "unknown_variant",
        ),
        (
            json!({ "line_items": [custom, custom, { "title": "Y", "price": "1.00", "quantity": 0 }] }),
            "line_items[2].quantity",
            "invalid_quantity",
        ),
        (
            json!({ "line_items": [{ "title": "Y", "price": "1.00", "quantity": 10001 }] }),
            "line_items[0].quantity",
            "invalid_quantity",
        ),
        (
            json!({ "email": "not-an-email", "line_items": [custom] }),
            "email",
            "invalid_email",
        ),
        (json!({ "line_items": [] }), "line_items", "required"),
        (
            json!({ "line_items": [{ "title": "No price" }] }),
            "line_items[0].price",
            "required",
        ),
        (
            json!({ "line_items": [{ "title": "Bad price", "price": "abc" }] }),
            "line_items[0].price",
            "invalid_price",
        ),
        (
            json!({ "line_items": [{ "title": "Negative", "price_minor": -5 }] }),
            "line_items[0].price_minor",
            "invalid_amount",
        ),
        (
            json!({ "line_items": [{ "price_minor": 5 }] }),
            "line_items[0].title",
            "required",
        ),
        (
            json!({ "line_items": (0..251).map(|_| custom.clone()).collect::<Vec<_>>() }),
            "line_items",
            "too_many_line_items",
        ),
    ];
    for (body, field, code) in cases {
        let (s, b) = post(&app, &owner, "/api/v1/orders", body).await;
        assert_invalid(s, &b, field, code);
    }
    // Unknown fields, at the top and in a line.
    for body in [
        json!({ "line_items": [custom], "coupon": "FREE" }),
        json!({ "line_items": [{ "title": "X", "price_minor": 1, "discount": 1 }] }),
    ] {
        let (s, b) = post(&app, &owner, "/api/v1/orders", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["error"]["code"], "invalid_body");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown field"),
            "{b}"
        );
    }
    // Nothing was written.
    let (_, list) = get(&app, &owner, "/api/v1/orders").await;
    assert_eq!(list["pagination"]["total"], 0, "{list}");
    assert_eq!(simple_order(&app, &owner, 1).await["number"], 1001);
}

#[tokio::test]
async fn order_lists_paginate_newest_first_and_filter() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("ord-list").await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(
            simple_order(&app, &owner, 1000 + i).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (s, page1) = get(&app, &owner, "/api/v1/orders?per_page=2").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert_eq!(page1["data"][0]["number"], 1005);
    assert_eq!(page1["data"][1]["number"], 1004);
    assert_eq!(page1["pagination"]["total"], 5);
    assert_eq!(page1["pagination"]["total_pages"], 3);
    let (_, page3) = get(&app, &owner, "/api/v1/orders?per_page=2&page=3").await;
    assert_eq!(page3["data"].as_array().unwrap().len(), 1);
    assert_eq!(page3["data"][0]["number"], 1001);
    assert_eq!(page3["data"][0]["line_items"][0]["title"], "Service");

    let (s, _) = patch(
        &app,
        &owner,
        &format!("/api/v1/orders/{}", ids[0]),
        json!({ "status": "cancelled" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post(
        &app,
        &owner,
        &format!("/api/v1/orders/{}/payments", ids[1]),
        json!({ "amount_minor": 1001 }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    for (query, total) in [
        ("status=cancelled", 1),
        ("status=open", 4),
        ("financial_status=paid", 1),
        ("financial_status=pending", 4),
        ("status=open&financial_status=pending", 3),
        ("financial_status=refunded", 0),
    ] {
        let (s, l) = get(&app, &owner, &format!("/api/v1/orders?{query}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(l["pagination"]["total"], total, "{query}: {l}");
        assert_eq!(l["data"].as_array().unwrap().len(), total as usize);
    }
    let (_, paid) = get(&app, &owner, "/api/v1/orders?financial_status=paid").await;
    assert_eq!(paid["data"][0]["id"], ids[1].as_str());
    let (s, b) = get(&app, &owner, "/api/v1/orders?status=shipped").await;
    assert_invalid(s, &b, "status", "invalid_status");
    let (s, b) = get(&app, &owner, "/api/v1/orders?per_page=500").await;
    assert_invalid(s, &b, "per_page", "invalid_page");
}

#[tokio::test]
async fn updates_and_payments_move_the_order_through_its_states() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("ord-pay").await;
    let o = simple_order(&app, &owner, 1000).await;
    let path = format!("/api/v1/orders/{}", o["id"].as_str().unwrap());

    let (s, u) = patch(
        &app,
        &owner,
        &path,
        json!({ "fulfillment_status": "fulfilled", "note": "Leave at the door", "email": "New@Example.com" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["fulfillment_status"], "fulfilled");
    assert_eq!(u["note"], "Leave at the door");
    assert_eq!(u["email"], "new@example.com");
    assert_eq!(u["status"], "open");
    let (_, u) = patch(&app, &owner, &path, json!({ "note": null })).await;
    assert_eq!(u["note"], Value::Null);
    assert_eq!(u["email"], "new@example.com", "absent fields are kept");
    let (s, b) = patch(&app, &owner, &path, json!({ "status": "shipped" })).await;
    assert_invalid(s, &b, "status", "invalid_status");
    let (s, b) = patch(&app, &owner, &path, json!({ "email": "nope" })).await;
    assert_invalid(s, &b, "email", "invalid_email");
    let (s, b) = patch(&app, &owner, &path, json!({ "paid_minor": 1000 })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "invalid_body");

    // Partial, refused overpayment, then the rest.
    let pay = format!("{path}/payments");
    let (s, r) = post(&app, &owner, &pay, json!({ "amount_minor": 400 })).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["amount"]["amount_minor"], 400);
    assert_eq!(r["amount"]["currency"], "EUR");
    assert_eq!(r["gateway"], "manual");
    assert_eq!(r["order_id"], o["id"]);
    assert_eq!(r["order"]["financial_status"], "partially_paid");
    assert_eq!(r["order"]["paid"]["amount_minor"], 400);
    assert_eq!(r["order"]["outstanding"]["amount_minor"], 600);
    let (s, b) = post(&app, &owner, &pay, json!({ "amount": "6.01" })).await;
    assert_invalid(s, &b, "amount_minor", "exceeds_balance");
    let (s, b) = post(&app, &owner, &pay, json!({ "amount_minor": 0 })).await;
    assert_invalid(s, &b, "amount_minor", "invalid_amount");
    let (s, b) = post(&app, &owner, &pay, json!({ "gateway": "manual" })).await;
    assert_invalid(s, &b, "amount_minor", "required");
    let (s, b) = post(&app, &owner, &pay, json!({ "amount_minor": 1, "tip": 2 })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, r) = post(
        &app,
        &owner,
        &pay,
        json!({ "amount": "6.00", "gateway": "stripe", "reference": "ch_123" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["order"]["financial_status"], "paid");
    assert_eq!(r["order"]["outstanding"]["amount_minor"], 0);
    let (s, b) = post(&app, &owner, &pay, json!({ "amount_minor": 1 })).await;
    assert_invalid(s, &b, "amount_minor", "exceeds_balance");
    let (s, list) = get(&app, &owner, &pay).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["amount"]["amount_minor"], 400);
    assert_eq!(list[1]["gateway"], "stripe");
    assert_eq!(list[1]["reference"], "ch_123");
    let (_, got) = get(&app, &owner, &path).await;
    assert_eq!(got["paid"]["amount_minor"], 1000);
    assert_eq!(got["financial_status"], "paid");

    // Cancelled is final and takes no payments.
    let o2 = simple_order(&app, &owner, 500).await;
    let path2 = format!("/api/v1/orders/{}", o2["id"].as_str().unwrap());
    let (s, _) = patch(&app, &owner, &path2, json!({ "status": "cancelled" })).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = post(
        &app,
        &owner,
        &format!("{path2}/payments"),
        json!({ "amount_minor": 100 }),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "invalid_state");
    let (s, b) = patch(&app, &owner, &path2, json!({ "status": "open" })).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, _) = patch(&app, &owner, &path2, json!({ "note": "refund by hand" })).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "other fields of a cancelled order can change"
    );

    // Unknown orders.
    let missing = "/api/v1/orders/0195a3c2-0000-7000-8000-00000000dead";
    for (m, p, body) in [
        (Method::GET, missing.to_string(), None),
        (
            Method::PATCH,
            missing.to_string(),
            Some(json!({ "note": "x" })),
        ),
        (Method::GET, format!("{missing}/payments"), None),
        (
            Method::POST,
            format!("{missing}/payments"),
            Some(json!({ "amount_minor": 1 })),
        ),
    ] {
        let (s, b) = call(&app, m.clone(), &p, &owner, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {p}: {b}");
        assert_eq!(b["error"]["code"], "not_found");
    }

    // The audit log has the changes.
    let (_, audit) = get(&app, &owner, "/api/v1/audit-log?action=payment.").await;
    assert_eq!(audit["pagination"]["total"], 2, "{audit}");
    let (_, audit) = get(&app, &owner, "/api/v1/audit-log?action=order.").await;
    assert!(
        audit["pagination"]["total"].as_i64().unwrap() >= 6,
        "{audit}"
    );
}

#[tokio::test]
async fn support_tickets_are_created_updated_and_listed() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("tickets").await;
    let order = simple_order(&app, &owner, 100).await;
    let (s, t1) = post(
        &app,
        &owner,
        "/api/v1/support-tickets",
        json!({ "subject": "Where is my parcel?", "body": "Ordered last week.", "email": "Ada@Example.com",
                "order_id": order["id"], "priority": "high" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t1}");
    assert_eq!(t1["number"], 1);
    assert_eq!(t1["status"], "open");
    assert_eq!(t1["priority"], "high");
    assert_eq!(t1["email"], "ada@example.com");
    assert_eq!(t1["order_id"], order["id"]);
    let (s, t2) = post(
        &app,
        &owner,
        "/api/v1/support-tickets",
        json!({ "subject": "Invoice", "body": "Please send one.", "email": "bob@example.com" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t2}");
    assert_eq!(t2["number"], 2);
    assert_eq!(t2["priority"], "normal");
    assert_eq!(t2["order_id"], Value::Null);

    for (body, field, code) in [
        (
            json!({ "subject": "x", "body": "y", "email": "bad" }),
            "email",
            "invalid_email",
        ),
        (
            json!({ "subject": " ", "body": "y", "email": "a@b.example" }),
            "subject",
            "required",
        ),
        (
            json!({ "subject": "x", "body": "y", "email": "a@b.example", "priority": "urgent" }),
            "priority",
            "invalid_priority",
        ),
        (
            json!({ "subject": "x", "body": "y", "email": "a@b.example", "order_id": "0195a3c2-0000-7000-8000-00000000beef" }),
            "order_id",
            "unknown_order",
        ),
    ] {
        let (s, b) = post(&app, &owner, "/api/v1/support-tickets", body).await;
        assert_invalid(s, &b, field, code);
    }

    let p1 = format!("/api/v1/support-tickets/{}", t1["id"].as_str().unwrap());
    let (s, u) = patch(
        &app,
        &owner,
        &p1,
        json!({ "status": "pending", "order_id": null }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["status"], "pending");
    assert_eq!(u["order_id"], Value::Null);
    assert_eq!(u["priority"], "high", "absent fields are kept");
    let (s, b) = patch(&app, &owner, &p1, json!({ "status": "done" })).await;
    assert_invalid(s, &b, "status", "invalid_status");
    let (s, b) = patch(&app, &owner, &p1, json!({ "assignee": "me" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, got) = get(&app, &owner, &p1).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, u);

    let (_, all) = get(&app, &owner, "/api/v1/support-tickets").await;
    assert_eq!(all["pagination"]["total"], 2);
    assert_eq!(all["data"][0]["number"], 2, "newest first");
    for (query, total) in [
        ("status=open", 1),
        ("status=pending", 1),
        ("status=closed", 0),
        ("priority=high", 1),
        ("priority=low", 0),
    ] {
        let (_, l) = get(&app, &owner, &format!("/api/v1/support-tickets?{query}")).await;
        assert_eq!(l["pagination"]["total"], total, "{query}: {l}");
    }
    let (_, page2) = get(&app, &owner, "/api/v1/support-tickets?per_page=1&page=2").await;
    assert_eq!(page2["data"][0]["number"], 1);
    assert_eq!(page2["pagination"]["total_pages"], 2);
    let (s, _) = get(
        &app,
        &owner,
        "/api/v1/support-tickets/0195a3c2-0000-7000-8000-00000000dead",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_tenant_cannot_see_or_change_orders_and_tickets() {
    let app = spawn_app().await;
    let (_, owner_a) = app.provisioned_merchant("ord-iso-a").await;
    let (_, owner_b) = app.provisioned_merchant("ord-iso-b").await;
    let order = simple_order(&app, &owner_a, 700).await;
    let order_path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    let (_, ticket) = post(
        &app,
        &owner_a,
        "/api/v1/support-tickets",
        json!({ "subject": "A's", "body": "private", "email": "a@a.example", "order_id": order["id"] }),
    )
    .await;
    let ticket_path = format!("/api/v1/support-tickets/{}", ticket["id"].as_str().unwrap());
    for (m, p, body) in [
        (Method::GET, order_path.clone(), None),
        (
            Method::PATCH,
            order_path.clone(),
            Some(json!({ "status": "cancelled" })),
        ),
        (Method::GET, format!("{order_path}/payments"), None),
        (
            Method::POST,
            format!("{order_path}/payments"),
            Some(json!({ "amount_minor": 700 })),
        ),
        (Method::GET, ticket_path.clone(), None),
        (
            Method::PATCH,
            ticket_path.clone(),
            Some(json!({ "status": "closed" })),
        ),
    ] {
        let (s, b) = call(&app, m.clone(), &p, &owner_b, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "B on {m} {p}: {b}");
    }
    let (_, l) = get(&app, &owner_b, "/api/v1/orders").await;
    assert_eq!(l["pagination"]["total"], 0);
    let (_, l) = get(&app, &owner_b, "/api/v1/support-tickets").await;
    assert_eq!(l["pagination"]["total"], 0);
    // B cannot link a ticket to A's order.
    let (s, b) = post(
        &app,
        &owner_b,
        "/api/v1/support-tickets",
        json!({ "subject": "x", "body": "y", "email": "b@b.example", "order_id": order["id"] }),
    )
    .await;
    assert_invalid(s, &b, "order_id", "unknown_order");
    // A's order is untouched.
    let (_, got) = get(&app, &owner_a, &order_path).await;
    assert_eq!(got["status"], "open");
    assert_eq!(got["paid"]["amount_minor"], 0);
    let (_, got) = get(&app, &owner_a, &ticket_path).await;
    assert_eq!(got["status"], "open");
}

#[tokio::test]
async fn a_viewer_reads_orders_but_cannot_create_or_change_them() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("ord-viewer").await;
    let (_, viewer) = app
        .add_member(&owner, "v@ord-viewer.example", "viewer")
        .await;
    let (_, editor) = app
        .add_member(&owner, "e@ord-viewer.example", "editor")
        .await;
    let order = simple_order(&app, &owner, 100).await;
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    let (s, l) = get(&app, &viewer, "/api/v1/orders").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["pagination"]["total"], 1);
    let (s, _) = get(&app, &viewer, &path).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = get(&app, &viewer, "/api/v1/support-tickets").await;
    assert_eq!(s, StatusCode::OK);
    for (m, p, required) in [
        (Method::POST, "/api/v1/orders".to_string(), "orders.create"),
        (Method::PATCH, path.clone(), "orders.edit"),
        (Method::POST, format!("{path}/payments"), "orders.edit"),
        (
            Method::POST,
            "/api/v1/support-tickets".to_string(),
            "orders.create",
        ),
    ] {
        let body = json!({ "line_items": [{ "title": "X", "price_minor": 1 }], "amount_minor": 1 });
        let (s, b) = call(&app, m.clone(), &p, &viewer, Some(body)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}: {b}");
        assert_eq!(b["error"]["code"], "permission_denied");
        assert_eq!(b["error"]["details"]["required"], required);
    }
    // An Editor holds orders.edit but not orders.create.
    let (s, _) = patch(&app, &editor, &path, json!({ "note": "checked" })).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = post(
        &app,
        &editor,
        "/api/v1/orders",
        json!({ "line_items": [{ "title": "X", "price_minor": 1 }] }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
}

/// The JSON envelopes (`{id, type, tenant_id, occurred_at, data}`) of the `kind` messages
/// received so far.
fn events_of(s: &Stream, kind: &str) -> Vec<Value> {
    s.text()
        .split("\n\n")
        .filter(|m| m.lines().any(|l| l == format!("event: {kind}")))
        .filter_map(|m| {
            let data: String = m
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .collect::<Vec<_>>()
                .join("\n");
            serde_json::from_str(&data).ok()
        })
        .collect()
}

/// Waits until at least `n` `kind` events arrived; returns them.
async fn wait_events(s: &Stream, kind: &str, n: usize) -> Vec<Value> {
    for _ in 0..250 {
        let found = events_of(s, kind);
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} {kind} events: {}", s.text());
}

#[tokio::test]
async fn events_carry_the_full_resources() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("ord-events").await;
    // A role that may see the catalog but not orders.
    let r = app
        .with_token(Method::POST, "/api/v1/roles", &owner)
        .json(&json!({ "name": "Catalog only", "key": "catalog_only", "permissions": ["products.view"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, catalog_only) = app
        .add_member(&owner, "c@ord-events.example", "catalog_only")
        .await;
    let s = Stream::open(&app, &owner, None).await;
    let limited = Stream::open(&app, &catalog_only, None).await;

    // Product events carry the product as GET /products/{id} returns it.
    let p = make_product(&app, &owner, "mug", "MUG").await;
    let pid = p["id"].as_str().unwrap().to_string();
    let created = wait_events(&s, "product.created", 1).await;
    let data = &created[0]["data"];
    assert_eq!(data["variants"][0]["id"], p["variants"][0]["id"]);
    assert_eq!(data["images"][0]["url"], "https://img.example/a.jpg");
    let (_, fetched) = get(&app, &owner, &format!("/api/v1/products/{pid}")).await;
    assert_eq!(data, &fetched);
    let mut changed = product("mug", "MUG", "active");
    changed["title"] = json!("Big Mug");
    let (_, updated_product) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/products/{pid}"),
        &owner,
        Some(changed),
    )
    .await;
    let updated = wait_events(&s, "product.updated", 1).await;
    assert_eq!(updated[0]["data"], updated_product);

    // order.created: the order as the API returned it.
    let variant = updated_product["variants"][1]["id"].clone();
    let (st, order) = post(
        &app,
        &owner,
        "/api/v1/orders",
        json!({ "email": "e@example.com", "line_items": [{ "variant_id": variant, "quantity": 2 }, { "title": "Box", "price_minor": 100 }] }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{order}");
    let oc = wait_events(&s, "order.created", 1).await;
    assert_eq!(oc[0]["data"], order);
    assert_eq!(oc[0]["data"]["number"], 1001);
    assert_eq!(oc[0]["data"]["line_items"][0]["sku"], "MUG-M");
    assert_eq!(oc[0]["data"]["total"]["amount_minor"], 2800);

    // Payments: payment.received each time (payment + full order); order.updated only when
    // the financial status changes (pending → partially_paid, partially_paid → paid).
    let pay = format!("/api/v1/orders/{}/payments", order["id"].as_str().unwrap());
    let mut receipts = vec![];
    for amount in [1000, 800, 1000] {
        let (st, r) = post(&app, &owner, &pay, json!({ "amount_minor": amount })).await;
        assert_eq!(st, StatusCode::CREATED, "{r}");
        receipts.push(r);
    }
    let received = wait_events(&s, "payment.received", 3).await;
    for (e, r) in received.iter().zip(&receipts) {
        assert_eq!(&e["data"], r);
    }
    assert_eq!(received[0]["data"]["amount"]["amount_minor"], 1000);
    assert_eq!(
        received[0]["data"]["order"]["financial_status"],
        "partially_paid"
    );
    assert_eq!(
        received[0]["data"]["order"]["line_items"][0]["sku"],
        "MUG-M"
    );
    assert_eq!(received[2]["data"]["order"]["financial_status"], "paid");
    let ou = wait_events(&s, "order.updated", 2).await;
    assert_eq!(ou[0]["data"]["financial_status"], "partially_paid");
    assert_eq!(ou[1]["data"]["financial_status"], "paid");
    assert_eq!(ou[1]["data"], receipts[2]["order"]);
    let (_, patched) = patch(
        &app,
        &owner,
        &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
        json!({ "fulfillment_status": "fulfilled" }),
    )
    .await;
    let ou = wait_events(&s, "order.updated", 3).await;
    assert_eq!(
        ou.len(),
        3,
        "no order.updated for a payment that kept the status"
    );
    assert_eq!(ou[2]["data"], patched);

    // Tickets.
    let (_, ticket) = post(
        &app,
        &owner,
        "/api/v1/support-tickets",
        json!({ "subject": "Chipped mug", "body": "Photo attached.", "email": "e@example.com", "order_id": order["id"] }),
    )
    .await;
    let tc = wait_events(&s, "support_ticket.created", 1).await;
    assert_eq!(tc[0]["data"], ticket);
    assert_eq!(tc[0]["data"]["number"], 1);
    assert_eq!(tc[0]["data"]["subject"], "Chipped mug");
    let (_, closed) = patch(
        &app,
        &owner,
        &format!("/api/v1/support-tickets/{}", ticket["id"].as_str().unwrap()),
        json!({ "status": "closed" }),
    )
    .await;
    let tu = wait_events(&s, "support_ticket.updated", 1).await;
    assert_eq!(tu[0]["data"], closed);

    // product.deleted carries the last full product.
    let (st, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/products/{pid}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let deleted = wait_events(&s, "product.deleted", 1).await;
    assert_eq!(deleted[0]["data"], updated_product);

    // Without orders.view: product events yes, order/payment/ticket events no.
    assert!(limited.wait_for("event: product.deleted").await);
    let text = limited.text();
    for kind in ["order.", "payment.", "support_ticket."] {
        assert!(!text.contains(&format!("event: {kind}")), "{kind}: {text}");
    }
}
