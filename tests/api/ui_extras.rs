//! Dashboard order actions (new order, status and fulfillment, cancel, payments) driven
//! like a browser without JavaScript, including what a role without the permission sees
//! and what the API refuses.

use crate::helpers::*;
use crate::ui::{Browser, location};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn api_get(app: &TestApp, token: &str, path: &str) -> Value {
    app.with_token(Method::GET, path, token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The error text shown next to field `name` (the macros' `<p id="e-{name}">`).
fn field_error(html: &str, name: &str) -> String {
    let marker = format!("id=\"e-{name}\" data-error-for=\"{name}\"");
    html.split(&marker)
        .nth(1)
        .and_then(|r| r.split_once('>'))
        .and_then(|(_, r)| r.split("</p>").next())
        .unwrap_or_else(|| panic!("no error slot for {name}"))
        .to_string()
}

#[tokio::test]
async fn owner_creates_an_order_records_payments_fulfils_and_cancels_it() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("ordershop").await;
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&crate::catalog::product("tote", "TOTE", "active"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tote: Value = r.json().await.unwrap();
    let tote_s = tote["variants"][0]["id"].as_str().unwrap().to_string();
    let b = Browser::new(&app);
    b.sign_in("dashboard", "owner@ordershop.example", "owner-password-1")
        .await;

    let (status, html) = b.get("/dashboard/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("href=\"/dashboard/orders/new\""),
        "owner may create"
    );
    let (status, html) = b.get("/dashboard/orders/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<title>New order"), "{html}");
    assert!(html.contains("<label for=\"f-line_items[0].price\">Unit price</label>"));
    assert!(
        html.contains(&format!(
            "<option value=\"{tote_s}\">Product tote – S [TOTE-S] · 12.50"
        )),
        "{html}"
    );
    let csrf = b.csrf("/dashboard/orders/new").await;

    // Nothing filled in: refused on the form.
    let r = b.post_form("/dashboard/orders", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Add at least one line item")
    );

    // A bad price in the third row (the second row left empty): the API's error shows
    // next to that row's field, and the values are kept.
    let lines = [
        ("_csrf", csrf.as_str()),
        ("customer_name", "Ada Buyer"),
        ("email", "ada@buyer.example"),
        ("line_items[0].title", "Gift wrap"),
        ("line_items[0].price", "5.00"),
        ("line_items[0].quantity", "2"),
        ("line_items[2].title", "Custom poster"),
        ("line_items[2].price", "twelve"),
        ("catalog[1].variant_id", tote_s.as_str()),
        ("catalog[1].quantity", "2"),
    ];
    let r = b.post_form("/dashboard/orders", &lines).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        !field_error(&html, "line_items[2].price").is_empty(),
        "{html}"
    );
    assert!(field_error(&html, "line_items[0].price").is_empty());
    // Rows keep their positions: the error sits in the row the poster was typed in.
    assert!(
        html.contains(
            "id=\"f-line_items[2].title\" name=\"line_items[2].title\" type=\"text\" value=\"Custom poster\""
        ),
        "{html}"
    );
    assert!(
        html.contains(&format!("<option value=\"{tote_s}\" selected>")),
        "catalog choice kept"
    );
    assert!(html.contains("value=\"Ada Buyer\""));

    let mut fixed = lines.to_vec();
    fixed[7] = ("line_items[2].price", "20.00");
    let r = b.post_form("/dashboard/orders", &fixed).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let page = location(&r);
    let id = page.trim_start_matches("/dashboard/orders/").to_string();
    let order = api_get(&app, &token, &format!("/api/v1/orders/{id}")).await;
    // 2 × 12.50 (catalog) + 2 × 5.00 + 20.00.
    assert_eq!(order["total"]["amount_minor"], 5500, "{order}");
    assert_eq!(order["customer_name"], "Ada Buyer");
    assert_eq!(order["line_items"].as_array().unwrap().len(), 3);
    assert_eq!(order["line_items"][0]["sku"], "TOTE-S");

    let (status, html) = b.get(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("created."), "flash: {html}");
    assert!(html.contains("Record a payment") && html.contains("Cancel order"));

    // More than the outstanding balance: refused, the message next to the amount.
    let csrf = b.csrf(&page).await;
    let r = b
        .post_form(
            &format!("{page}/payments"),
            &[("_csrf", &csrf), ("amount", "60.00"), ("gateway", "cash")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    let err = field_error(&html, "amount");
    assert!(err.contains("exceeds the outstanding balance"), "{err}");
    assert!(html.contains("value=\"60.00\""), "the amount is kept");
    let payments = api_get(&app, &token, &format!("/api/v1/orders/{id}/payments")).await;
    assert_eq!(payments.as_array().unwrap().len(), 0);

    // A partial payment is recorded.
    let r = b
        .post_form(
            &format!("{page}/payments"),
            &[
                ("_csrf", &csrf),
                ("amount", "10.00"),
                ("gateway", "bank_transfer"),
                ("reference", "TX-42"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), page);
    let (_, html) = b.get(&page).await;
    assert!(html.contains("Payment of 10.00"), "{html}");
    assert!(html.contains("via bank transfer (TX-42)"));
    let order = api_get(&app, &token, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(order["financial_status"], "partially_paid");
    assert_eq!(order["outstanding"]["amount_minor"], 4500);

    // Fulfilment.
    let r = b
        .post_form(
            &page,
            &[
                ("_csrf", &csrf),
                ("status", "open"),
                ("fulfillment_status", "fulfilled"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let order = api_get(&app, &token, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(order["fulfillment_status"], "fulfilled");
    assert_eq!(order["email"], "ada@buyer.example", "not submitted: kept");
    // E-mail and note: a bad e-mail is refused next to its field; empty clears.
    let r = b
        .post_form(
            &page,
            &[
                ("_csrf", &csrf),
                ("email", "not-an-email"),
                ("note", "Gift"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!field_error(&r.text().await.unwrap(), "email").is_empty());
    let r = b
        .post_form(
            &page,
            &[
                ("_csrf", &csrf),
                ("email", ""),
                ("note", "Leave at the door"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let order = api_get(&app, &token, &format!("/api/v1/orders/{id}")).await;
    assert!(order["email"].is_null(), "{order}");
    assert_eq!(order["note"], "Leave at the door");
    // An unknown value: the API's refusal shows next to the field.
    let r = b
        .post_form(
            &page,
            &[("_csrf", &csrf), ("fulfillment_status", "shipped-ish")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!field_error(&r.text().await.unwrap(), "fulfillment_status").is_empty());

    // Cancel: final; the action forms disappear and a forged payment is refused on the page.
    let r = b
        .post_form(&format!("{page}/cancel"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get(&page).await;
    assert!(html.contains("Order cancelled"));
    assert!(!html.contains("Record a payment") && !html.contains("Cancel order"));
    let order = api_get(&app, &token, &format!("/api/v1/orders/{id}")).await;
    assert_eq!(order["status"], "cancelled");
    let r = b
        .post_form(
            &format!("{page}/payments"),
            &[("_csrf", &csrf), ("amount", "1.00")],
        )
        .await;
    assert!(r.status().is_client_error());
    let html = r.text().await.unwrap();
    assert!(
        html.contains(
            "<div class=\"alert\" role=\"alert\">a cancelled order cannot take payments</div>"
        ),
        "{html}"
    );

    // Without the CSRF token nothing happens.
    let r = b
        .post_form(&format!("{page}/payments"), &[("amount", "1.00")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn roles_without_orders_edit_or_create_see_no_controls_and_are_refused() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("orderroles").await;
    let r = app
        .with_token(Method::POST, "/api/v1/orders", &token)
        .json(&serde_json::json!({ "line_items": [{ "title": "Thing", "price": "9.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let order: Value = r.json().await.unwrap();
    let page = format!("/dashboard/orders/{}", order["id"].as_str().unwrap());

    // Viewer: orders.view only.
    app.add_member(&token, "viewer@orderroles.example", "viewer")
        .await;
    let v = Browser::new(&app);
    v.sign_in(
        "dashboard",
        "viewer@orderroles.example",
        "member-password-1",
    )
    .await;
    let (status, html) = v.get(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Thing"));
    assert!(!html.contains("Record a payment") && !html.contains("Cancel order"));
    assert!(!html.contains("Manage order"));
    let (_, list) = v.get("/dashboard/orders").await;
    assert!(!list.contains("/dashboard/orders/new"));
    let csrf = v.csrf(&page).await;
    // Forged posts are refused by the API: a 403 page, nothing recorded or changed.
    let r = v
        .post_form(
            &format!("{page}/payments"),
            &[("_csrf", &csrf), ("amount", "1.00")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = v
        .post_form(&format!("{page}/cancel"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = v
        .post_form(
            &page,
            &[("_csrf", &csrf), ("fulfillment_status", "fulfilled")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let now = api_get(
        &app,
        &token,
        &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(now["status"], "open");
    assert_eq!(now["fulfillment_status"], "unfulfilled");
    assert_eq!(now["paid"]["amount_minor"], 0);

    // Editor: orders.edit but not orders.create.
    app.add_member(&token, "editor@orderroles.example", "editor")
        .await;
    let e = Browser::new(&app);
    e.sign_in(
        "dashboard",
        "editor@orderroles.example",
        "member-password-1",
    )
    .await;
    let (_, list) = e.get("/dashboard/orders").await;
    assert!(!list.contains("/dashboard/orders/new"));
    let (status, _) = e.get("/dashboard/orders/new").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let csrf = e.csrf(&page).await;
    let r = e
        .post_form(
            "/dashboard/orders",
            &[
                ("_csrf", &csrf),
                ("line_items[0].title", "Sneaky"),
                ("line_items[0].price", "1.00"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // …but may record a payment.
    let (_, html) = e.get(&page).await;
    assert!(html.contains("Record a payment"));
    let r = e
        .post_form(
            &format!("{page}/payments"),
            &[("_csrf", &csrf), ("amount", "9.00")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let now = api_get(
        &app,
        &token,
        &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(now["financial_status"], "paid");
    let orders = api_get(&app, &token, "/api/v1/orders").await;
    assert_eq!(
        orders["pagination"]["total"], 1,
        "the editor created nothing"
    );
}
