//! The merchant side of checkout (issue 11, parts 4 and 5): checkout settings, shipping
//! zones and rates, tax rates and discount codes through `/api/v1`, their validation
//! errors (422 naming the field, 409 for duplicates), the audit trail, and the setup
//! guide's payment step mirrored into the checkout settings.

use crate::helpers::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(
    app: &TestApp,
    tok: &str,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app.with_token(m, path, tok);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn field(v: &Value) -> &str {
    v["error"]["details"]["field"].as_str().unwrap_or("")
}

#[tokio::test]
async fn checkout_settings_save_seal_the_webhook_secret_and_refuse_bad_input() {
    let app = spawn_app().await;
    let (_id, tok) = app.provisioned_merchant("setshop").await;
    let (s, v) = call(&app, &tok, Method::GET, "/api/v1/settings/checkout", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["prices_include_tax"], true, "EU default");
    assert_eq!(v["bank_transfer"], false);
    assert_eq!(v["currency"], "EUR");
    assert_eq!(
        v["stripe_webhook_url"].as_str().unwrap_or(""),
        format!(
            "http://setshop.localhost:{}/api/v1/store/payments/stripe/webhook",
            app.port
        )
    );

    // Bank transfer without instructions names the field.
    let (s, e) = call(
        &app,
        &tok,
        Method::PUT,
        "/api/v1/settings/checkout",
        Some(json!({ "bank_transfer": true })),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&e), "bank_instructions");
    for (body, f) in [
        (json!({ "pickup": true }), "pickup_address"),
        (json!({ "notify_email": "not-an-email" }), "notify_email"),
        (
            json!({ "stripe_webhook_secret": "sk_test_123" }),
            "stripe_webhook_secret",
        ),
        (json!({ "card": true }), "card"),
    ] {
        let (s, e) = call(
            &app,
            &tok,
            Method::PUT,
            "/api/v1/settings/checkout",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(field(&e), f, "{body}: {e}");
    }

    let secret = "whsec_abcdefghijklmnop0123456789";
    let (s, v) = call(&app, &tok, Method::PUT, "/api/v1/settings/checkout", Some(json!({
        "bank_transfer": true, "bank_instructions": "IBAN LU12 0019 4006 4475 0000, reference: order number",
        "cash_on_delivery": true, "prices_include_tax": false, "pickup": true,
        "pickup_address": "1 rue du Marché, Luxembourg", "notify_email": "Orders@Setshop.example",
        "stripe_webhook_secret": secret,
    }))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["bank_transfer"], true);
    assert_eq!(v["cash_on_delivery"], true);
    assert_eq!(v["prices_include_tax"], false);
    assert_eq!(v["pickup"], true);
    assert_eq!(v["notify_email"], "orders@setshop.example");
    assert_eq!(v["stripe_webhook_secret_configured"], true);
    assert!(
        !v.to_string().contains(secret),
        "the secret is never returned"
    );

    // A later save that omits fields keeps them, and keeps the secret.
    let (s, v) = call(
        &app,
        &tok,
        Method::PUT,
        "/api/v1/settings/checkout",
        Some(json!({ "cash_on_delivery": false })),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["cash_on_delivery"], false);
    assert_eq!(v["bank_transfer"], true);
    assert_eq!(v["stripe_webhook_secret_configured"], true);
    let (_, v) = call(&app, &tok, Method::GET, "/api/v1/settings/checkout", None).await;
    assert_eq!(v["pickup_address"], "1 rue du Marché, Luxembourg");
    assert!(!v.to_string().contains(secret));

    // Stored sealed: the database holds no clear text.
    let stored: Option<String> = match &app.db {
        souk::store::Db::Sqlite { read, .. } => {
            sqlx::query_scalar("select stripe_webhook_secret from checkout_settings")
                .fetch_one(read)
                .await
                .unwrap()
        }
        souk::store::Db::Pg { platform, .. } => {
            sqlx::query_scalar("select stripe_webhook_secret from checkout_settings")
                .fetch_one(platform)
                .await
                .unwrap()
        }
    };
    let stored = stored.expect("a secret is stored");
    assert!(
        !stored.contains("abcdefghijklmnop"),
        "sealed at rest: {stored}"
    );

    // "" removes the secret.
    let (_, v) = call(
        &app,
        &tok,
        Method::PUT,
        "/api/v1/settings/checkout",
        Some(json!({ "stripe_webhook_secret": "" })),
    )
    .await;
    assert_eq!(v["stripe_webhook_secret_configured"], false);

    // Audited without the secret.
    let (s, log) = call(
        &app,
        &tok,
        Method::GET,
        "/api/v1/audit-log?action=checkout_settings.updated",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert!(
        log["data"].as_array().is_some_and(|a| a.len() >= 3),
        "{log}"
    );
    assert!(!log.to_string().contains(secret));
}

#[tokio::test]
async fn shipping_zones_and_rates_round_trip_with_clear_errors() {
    let app = spawn_app().await;
    let (_id, tok) = app.provisioned_merchant("shipshop").await;
    for (body, f) in [
        (json!({ "name": "EU", "countries": [] }), "countries"),
        (
            json!({ "name": "EU", "countries": ["LU", "XX"] }),
            "countries[1]",
        ),
        (
            json!({ "name": "EU", "countries": ["Luxembourg"] }),
            "countries[0]",
        ),
        (json!({ "name": "  ", "countries": ["LU"] }), "name"),
    ] {
        let (s, e) = call(
            &app,
            &tok,
            Method::POST,
            "/api/v1/shipping-zones",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(field(&e), f, "{body}: {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(f.split('[').next().unwrap()),
            "{e}"
        );
    }
    let (s, z) = call(
        &app,
        &tok,
        Method::POST,
        "/api/v1/shipping-zones",
        Some(json!({ "name": "Benelux", "countries": ["lu", "BE", "NL", "LU"] })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{z}");
    assert_eq!(
        z["countries"],
        json!(["LU", "BE", "NL"]),
        "upper-cased, deduplicated"
    );
    let zid = z["id"].as_str().unwrap().to_string();

    let rates = format!("/api/v1/shipping-zones/{zid}/rates");
    for (body, f) in [
        (
            json!({ "name": "Standard", "price_minor": -1 }),
            "price_minor",
        ),
        (
            json!({ "name": "Standard", "price_minor": 490, "free_over_minor": -5 }),
            "free_over_minor",
        ),
        (json!({ "name": "", "price_minor": 490 }), "name"),
    ] {
        let (s, e) = call(&app, &tok, Method::POST, &rates, Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(field(&e), f);
    }
    let (s, r) = call(
        &app,
        &tok,
        Method::POST,
        &rates,
        Some(json!({ "name": "Standard", "price_minor": 490, "free_over_minor": 5000 })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    let (s, _) = call(
        &app,
        &tok,
        Method::POST,
        &rates,
        Some(json!({ "name": "Express", "price_minor": 1290 })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, list) = call(&app, &tok, Method::GET, &rates, None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["name"], "Standard", "cheapest first");

    // Replace the rate and the zone.
    let (s, r) = call(
        &app,
        &tok,
        Method::PUT,
        &format!("/api/v1/shipping-rates/{rid}"),
        Some(json!({ "name": "Standard", "price_minor": 590 })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["price_minor"], 590);
    assert_eq!(r["free_over_minor"], Value::Null);
    let (s, z) = call(
        &app,
        &tok,
        Method::PUT,
        &format!("/api/v1/shipping-zones/{zid}"),
        Some(json!({ "name": "Benelux + DE", "countries": ["LU", "BE", "NL", "DE"] })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{z}");
    assert_eq!(z["rates"].as_array().unwrap().len(), 2, "rates kept");
    let (_, zones) = call(&app, &tok, Method::GET, "/api/v1/shipping-zones", None).await;
    assert_eq!(zones[0]["name"], "Benelux + DE");

    // Delete a rate, then the zone (with its remaining rate).
    let (s, _) = call(
        &app,
        &tok,
        Method::DELETE,
        &format!("/api/v1/shipping-rates/{rid}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &app,
        &tok,
        Method::GET,
        &format!("/api/v1/shipping-rates/{rid}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        &tok,
        Method::DELETE,
        &format!("/api/v1/shipping-zones/{zid}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, zones) = call(&app, &tok, Method::GET, "/api/v1/shipping-zones", None).await;
    assert_eq!(zones, json!([]));
    let (s, _) = call(
        &app,
        &tok,
        Method::POST,
        &rates,
        Some(json!({ "name": "Late", "price_minor": 1 })),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no rate for a deleted zone");

    let (_, log) = call(
        &app,
        &tok,
        Method::GET,
        "/api/v1/audit-log?action=shipping_zone.deleted",
        None,
    )
    .await;
    assert_eq!(log["data"].as_array().map(Vec::len), Some(1), "{log}");
}

#[tokio::test]
async fn tax_rates_are_unique_per_country_and_accept_a_percent() {
    let app = spawn_app().await;
    let (_id, tok) = app.provisioned_merchant("taxshop").await;
    let (s, t) = call(
        &app,
        &tok,
        Method::POST,
        "/api/v1/tax-rates",
        Some(json!({ "country": "lu", "rate_bp": 1700 })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["country"], "LU");
    assert_eq!(t["name"], "VAT");
    let (s, t2) = call(
        &app,
        &tok,
        Method::POST,
        "/api/v1/tax-rates",
        Some(json!({ "country": "FR", "name": "TVA", "rate": "5.5" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t2}");
    assert_eq!(t2["rate_bp"], 550);
    let (s, e) = call(
        &app,
        &tok,
        Method::POST,
        "/api/v1/tax-rates",
        Some(json!({ "country": "LU", "rate_bp": 800 })),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(field(&e), "country");
    for (body, f) in [
        (json!({ "country": "DE", "rate_bp": 10001 }), "rate_bp"),
        (json!({ "country": "DE", "rate_bp": -1 }), "rate_bp"),
        (json!({ "country": "DE", "rate": "8.875" }), "rate"),
        (json!({ "country": "DE", "rate": "101" }), "rate"),
        (json!({ "country": "DE", "rate": "abc" }), "rate"),
        (json!({ "country": "DE" }), "rate_bp"),
        (json!({ "country": "Germany", "rate_bp": 1900 }), "country"),
    ] {
        let (s, e) = call(
            &app,
            &tok,
            Method::POST,
            "/api/v1/tax-rates",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(field(&e), f, "{body}: {e}");
    }
    let (_, e) = call(
        &app,
        &tok,
        Method::POST,
        "/api/v1/tax-rates",
        Some(json!({ "country": "DE", "rate_bp": 10001 })),
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("10000"),
        "{e}"
    );
    // Update: moving FR onto LU collides.
    let fr = t2["id"].as_str().unwrap();
    let (s, e) = call(
        &app,
        &tok,
        Method::PUT,
        &format!("/api/v1/tax-rates/{fr}"),
        Some(json!({ "country": "LU", "rate": "20" })),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(field(&e), "country");
    let (s, t) = call(
        &app,
        &tok,
        Method::PUT,
        &format!("/api/v1/tax-rates/{fr}"),
        Some(json!({ "country": "FR", "name": "TVA", "rate": "20" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["rate_bp"], 2000);
    let (_, list) = call(&app, &tok, Method::GET, "/api/v1/tax-rates", None).await;
    let countries: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["country"].as_str())
        .collect();
    assert_eq!(countries, ["FR", "LU"]);
    let (s, _) = call(
        &app,
        &tok,
        Method::DELETE,
        &format!("/api/v1/tax-rates/{fr}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = call(&app, &tok, Method::GET, "/api/v1/tax-rates", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn discount_codes_validate_list_search_and_deactivate() {
    let app = spawn_app().await;
    let (_id, tok) = app.provisioned_merchant("discshop").await;
    let (s, d) = call(
        &app,
        &tok,
        Method::POST,
        "/api/v1/discount-codes",
        Some(json!({
            "code": "welcome10", "kind": "percentage", "value": 1000, "min_subtotal_minor": 2000,
            "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00+01:00",
            "usage_limit": 100, "per_customer_limit": 1,
        })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(d["code"], "WELCOME10", "upper-cased");
    assert_eq!(d["active"], true);
    assert_eq!(d["used_count"], 0);
    assert_eq!(d["ends_at"], "2026-12-31T23:00:00Z");
    let (s, e) = call(
        &app,
        &tok,
        Method::POST,
        "/api/v1/discount-codes",
        Some(json!({ "code": "Welcome10", "kind": "fixed", "value": 500 })),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(field(&e), "code");
    let base = json!({ "code": "X", "kind": "fixed", "value": 500 });
    for (patch, f) in [
        (json!({ "code": "" }), "code"),
        (json!({ "code": "TEN OFF" }), "code"),
        (json!({ "code": "A".repeat(41) }), "code"),
        (json!({ "kind": "bogo" }), "kind"),
        (json!({ "value": 0 }), "value"),
        (json!({ "kind": "percentage", "value": 10001 }), "value"),
        (json!({ "min_subtotal_minor": -1 }), "min_subtotal_minor"),
        (json!({ "starts_at": "tomorrow" }), "starts_at"),
        (
            json!({ "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-05-01T00:00:00Z" }),
            "ends_at",
        ),
        (json!({ "usage_limit": 0 }), "usage_limit"),
        (json!({ "per_customer_limit": 0 }), "per_customer_limit"),
    ] {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        let (s, e) = call(
            &app,
            &tok,
            Method::POST,
            "/api/v1/discount-codes",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(field(&e), f, "{body}: {e}");
    }
    for code in ["SUMMER-5", "SUMMER_20", "WINTER"] {
        let (s, _) = call(
            &app,
            &tok,
            Method::POST,
            "/api/v1/discount-codes",
            Some(json!({ "code": code, "kind": "fixed", "value": 500 })),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (_, l) = call(
        &app,
        &tok,
        Method::GET,
        "/api/v1/discount-codes?q=summer",
        None,
    )
    .await;
    assert_eq!(l["pagination"]["total"], 2, "{l}");
    let (_, l) = call(&app, &tok, Method::GET, "/api/v1/discount-codes?q=_", None).await;
    assert_eq!(l["pagination"]["total"], 1, "'_' is not a wildcard: {l}");
    let (_, l) = call(
        &app,
        &tok,
        Method::GET,
        "/api/v1/discount-codes?per_page=2&page=2",
        None,
    )
    .await;
    assert_eq!(l["pagination"]["total"], 4);
    assert_eq!(l["data"].as_array().unwrap().len(), 2);
    assert_eq!(l["data"][1]["code"], "WELCOME10", "newest first");
    let (s, e) = call(
        &app,
        &tok,
        Method::GET,
        "/api/v1/discount-codes?per_page=0",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&e), "per_page");

    // Deactivate (replace with active false); the code is then shown inactive.
    let id = d["id"].as_str().unwrap();
    let (s, d2) = call(
        &app,
        &tok,
        Method::PUT,
        &format!("/api/v1/discount-codes/{id}"),
        Some(json!({
            "code": "WELCOME10", "kind": "percentage", "value": 1000, "active": false,
        })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d2}");
    assert_eq!(d2["active"], false);
    assert_eq!(d2["usage_limit"], Value::Null);
    let (s, e) = call(
        &app,
        &tok,
        Method::PUT,
        &format!("/api/v1/discount-codes/{id}"),
        Some(json!({ "code": "winter", "kind": "fixed", "value": 1 })),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let (s, _) = call(
        &app,
        &tok,
        Method::DELETE,
        &format!("/api/v1/discount-codes/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &app,
        &tok,
        Method::GET,
        &format!("/api/v1/discount-codes/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A viewer may not list codes; an editor (products.edit) may.
    let (_, viewer) = app
        .add_member(&tok, "viewer@discshop.example", "viewer")
        .await;
    let (s, e) = call(&app, &viewer, Method::GET, "/api/v1/discount-codes", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, _) = call(&app, &viewer, Method::GET, "/api/v1/shipping-zones", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_setup_guide_payment_step_is_mirrored_into_checkout_settings() {
    let app = spawn_app().await;
    let (_id, tok) = app.provisioned_merchant("guideshop").await;
    let (s, v) = call(&app, &tok, Method::PATCH, "/api/v1/onboarding/payments", Some(json!({
        "values": { "provider": "manual", "manual_instructions": "IBAN LU00 1111", "cash_on_delivery": "true" },
        "mark": "done",
    }))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["values"]["payments"]["cash_on_delivery"], "true");
    let pay = v["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "payments")
        .cloned()
        .unwrap();
    assert_eq!(pay["done"], true);
    let (_, cs) = call(&app, &tok, Method::GET, "/api/v1/settings/checkout", None).await;
    assert_eq!(cs["bank_transfer"], true, "{cs}");
    assert_eq!(cs["bank_instructions"], "IBAN LU00 1111");
    assert_eq!(cs["cash_on_delivery"], true);
    assert_eq!(cs["card"], false);

    // Cash on delivery alone is a manual method too.
    let (s, v) = call(&app, &tok, Method::PATCH, "/api/v1/onboarding/payments", Some(json!({
        "values": { "provider": "manual", "manual_instructions": "", "cash_on_delivery": "true" }, "mark": "done",
    }))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, cs) = call(&app, &tok, Method::GET, "/api/v1/settings/checkout", None).await;
    assert_eq!(cs["bank_transfer"], false);
    assert_eq!(cs["cash_on_delivery"], true);
    // Neither: the step cannot be finished, naming the instructions.
    let (s, e) = call(&app, &tok, Method::PATCH, "/api/v1/onboarding/payments", Some(json!({
        "values": { "provider": "manual", "manual_instructions": "", "cash_on_delivery": "false" }, "mark": "done",
    }))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&e), "manual_instructions");
    let (s, e) = call(
        &app,
        &tok,
        Method::PATCH,
        "/api/v1/onboarding/payments",
        Some(json!({
            "values": { "cash_on_delivery": "maybe" },
        })),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&e), "cash_on_delivery");

    // Stripe: card payments on, bank transfer off; now card may be enabled by hand too.
    let (s, v) = call(&app, &tok, Method::PATCH, "/api/v1/onboarding/payments", Some(json!({
        "values": { "provider": "stripe", "stripe_secret_key": "sk_test_abcdefghijklmnop", "cash_on_delivery": "false" }, "mark": "done",
    }))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, cs) = call(&app, &tok, Method::GET, "/api/v1/settings/checkout", None).await;
    assert_eq!(cs["card"], true, "{cs}");
    assert_eq!(cs["bank_transfer"], false);
    assert_eq!(cs["cash_on_delivery"], false);
    assert_eq!(cs["stripe_secret_configured"], true);
    let (s, cs) = call(
        &app,
        &tok,
        Method::PUT,
        "/api/v1/settings/checkout",
        Some(json!({ "card": true, "cash_on_delivery": true })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cs}");
    assert_eq!(cs["cash_on_delivery"], true);
}

#[tokio::test]
async fn demo_stores_get_a_ready_checkout_configuration() {
    let app = spawn_app().await;
    let (id, tok) = app.provisioned_merchant("demoshop").await;
    let tenant: uuid::Uuid = id.parse().unwrap();
    souk::demo::seed_checkout(&app.db, tenant, "LU")
        .await
        .expect("seed");
    let (_, cs) = call(&app, &tok, Method::GET, "/api/v1/settings/checkout", None).await;
    assert_eq!(cs["bank_transfer"], true, "{cs}");
    assert!(cs["bank_instructions"].as_str().unwrap().contains("IBAN"));
    assert_eq!(cs["cash_on_delivery"], true);
    assert_eq!(cs["prices_include_tax"], true);
    assert_eq!(cs["pickup"], true);
    let (_, zones) = call(&app, &tok, Method::GET, "/api/v1/shipping-zones", None).await;
    assert_eq!(zones[0]["countries"], json!(["LU", "BE", "DE", "FR", "NL"]));
    assert_eq!(zones[0]["rates"][0]["price_minor"], 490);
    assert_eq!(zones[0]["rates"][0]["free_over_minor"], 5000);
    let (_, taxes) = call(&app, &tok, Method::GET, "/api/v1/tax-rates", None).await;
    let got: Vec<(String, i64)> = taxes
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["country"].as_str().unwrap().to_string(),
                t["rate_bp"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = [
        ("BE", 2100),
        ("DE", 1900),
        ("FR", 2000),
        ("LU", 1700),
        ("NL", 2100),
    ]
    .iter()
    .map(|(c, r)| (c.to_string(), *r))
    .collect();
    assert_eq!(got, want);
    let (_, d) = call(
        &app,
        &tok,
        Method::GET,
        "/api/v1/discount-codes?q=WELCOME10",
        None,
    )
    .await;
    assert_eq!(d["data"][0]["kind"], "percentage");
    assert_eq!(d["data"][0]["value"], 1000);
}

// --- dashboard pages (plain forms, no JavaScript) ------------------------------------------

use crate::ui::{Browser, location};

async fn owner_browser(app: &TestApp, sub: &str) -> (Browser, String) {
    let (_, token) = app.provisioned_merchant(sub).await;
    let b = Browser::new(app);
    b.sign_in(
        "dashboard",
        &format!("owner@{sub}.example"),
        "owner-password-1",
    )
    .await;
    (b, token)
}

#[tokio::test]
async fn dashboard_checkout_page_saves_settings_and_shows_field_errors() {
    let app = spawn_app().await;
    let (b, tok) = owner_browser(&app, "uicheck").await;
    let (s, html) = b.get("/dashboard/settings/checkout").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("uicheck.localhost") && html.contains("payments&#x2f;stripe&#x2f;webhook"),
        "the webhook URL to paste into Stripe: {html}"
    );
    assert!(html.contains("href=\"/dashboard/shipping\""), "navigation");
    let csrf = b.csrf("/dashboard/settings/checkout").await;
    // Bank transfer without instructions: the page again, the error at its field.
    let r = b
        .post_form(
            "/dashboard/settings/checkout",
            &[("_csrf", &csrf), ("bank_transfer", "true")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"e-bank_instructions\" data-error-for=\"bank_instructions\">bank_instructions are required"), "{html}");
    assert!(html.contains("aria-invalid=\"true\""));
    let r = b
        .post_form(
            "/dashboard/settings/checkout",
            &[
                ("_csrf", &csrf),
                ("bank_transfer", "true"),
                ("bank_instructions", "IBAN LU99"),
                ("cash_on_delivery", "true"),
                ("pickup_address", ""),
                ("notify_email", ""),
                ("stripe_webhook_secret", "whsec_0123456789abcdef"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let (_, cs) = call(&app, &tok, Method::GET, "/api/v1/settings/checkout", None).await;
    assert_eq!(cs["bank_transfer"], true);
    assert_eq!(cs["cash_on_delivery"], true);
    assert_eq!(
        cs["prices_include_tax"], false,
        "the unticked box turns tax-inclusive prices off"
    );
    assert_eq!(cs["stripe_webhook_secret_configured"], true);
    let (_, html) = b.get("/dashboard/settings/checkout").await;
    assert!(
        !html.contains("whsec_0123456789abcdef"),
        "the secret is never shown"
    );
    assert!(html.contains("Configured ✓"));
}

#[tokio::test]
async fn dashboard_shipping_taxes_and_discounts_pages_work_without_javascript() {
    let app = spawn_app().await;
    let (b, tok) = owner_browser(&app, "uiship").await;
    let csrf = b.csrf("/dashboard/shipping").await;
    // A bad country is shown at the countries field.
    let r = b
        .post_form(
            "/dashboard/shipping",
            &[
                ("_csrf", &csrf),
                ("name", "EU"),
                ("countries", "LU, Luxembourg"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data-error-for=\"countries\">countries[1]: country &#x27;Luxembourg&#x27;")
            || html.contains("data-error-for=\"countries\">countries[1]"),
        "{html}"
    );
    assert!(
        html.contains("value=\"LU, Luxembourg\""),
        "the input is kept"
    );
    let r = b
        .post_form(
            "/dashboard/shipping",
            &[
                ("_csrf", &csrf),
                ("name", "Benelux"),
                ("countries", "lu be, nl"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let zone_page = location(&r);
    let zid = zone_page.rsplit('/').next().unwrap().to_string();
    // Rates in decimals; an unreadable amount names its field.
    let r = b
        .post_form(
            &format!("/dashboard/shipping/{zid}/rates"),
            &[("_csrf", &csrf), ("name", "Standard"), ("price", "4,9x")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"e-new-price\">price &#x27;4,9x&#x27; is not a number")
            || html.contains("id=\"e-new-price\">price"),
        "{html}"
    );
    let r = b
        .post_form(
            &format!("/dashboard/shipping/{zid}/rates"),
            &[
                ("_csrf", &csrf),
                ("name", "Standard"),
                ("price", "4.90"),
                ("free_over", "50"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, z) = call(
        &app,
        &tok,
        Method::GET,
        &format!("/api/v1/shipping-zones/{zid}"),
        None,
    )
    .await;
    assert_eq!(z["countries"], json!(["LU", "BE", "NL"]));
    assert_eq!(z["rates"][0]["price_minor"], 490);
    assert_eq!(z["rates"][0]["free_over_minor"], 5000);
    let rid = z["rates"][0]["id"].as_str().unwrap().to_string();
    let (s, html) = b.get(&zone_page).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("value=\"4.90\"") && html.contains("value=\"50.00\""),
        "{html}"
    );
    let r = b
        .post_form(
            &format!("/dashboard/shipping/{zid}/rates/{rid}"),
            &[
                ("_csrf", &csrf),
                ("name", "Standard"),
                ("price", "5.50"),
                ("free_over", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, r2) = call(
        &app,
        &tok,
        Method::GET,
        &format!("/api/v1/shipping-rates/{rid}"),
        None,
    )
    .await;
    assert_eq!(r2["price_minor"], 550);
    assert_eq!(r2["free_over_minor"], Value::Null);
    let r = b
        .post_form(
            &format!("/dashboard/shipping/{zid}/delete"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(location(&r), "/dashboard/shipping");
    let (_, zones) = call(&app, &tok, Method::GET, "/api/v1/shipping-zones", None).await;
    assert_eq!(zones, json!([]));

    // Taxes: a percent; a duplicate country is named.
    let r = b
        .post_form(
            "/dashboard/taxes",
            &[
                ("_csrf", &csrf),
                ("country", "LU"),
                ("name", "TVA"),
                ("rate", "17"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b
        .post_form(
            "/dashboard/taxes",
            &[("_csrf", &csrf), ("country", "lu"), ("rate", "3")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("already has a tax rate for that country"),
        "{html}"
    );
    let (_, html) = b.get("/dashboard/taxes").await;
    assert!(html.contains("value=\"17\""), "{html}");

    // Discounts: create, see it listed, deactivate.
    let (s, _) = b.get("/dashboard/discounts/new").await;
    assert_eq!(s, StatusCode::OK);
    let r = b
        .post_form(
            "/dashboard/discounts",
            &[
                ("_csrf", &csrf),
                ("code", "bad code"),
                ("kind", "percentage"),
                ("value", "10"),
                ("active", "true"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("data-error-for=\"code\">code must be 1 to 40")
    );
    let r = b
        .post_form(
            "/dashboard/discounts",
            &[
                ("_csrf", &csrf),
                ("code", "spring15"),
                ("kind", "percentage"),
                ("value", "15"),
                ("min_subtotal", "20"),
                ("ends_at", "2030-01-01T00:00"),
                ("usage_limit", "50"),
                ("active", "true"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let (_, l) = call(&app, &tok, Method::GET, "/api/v1/discount-codes", None).await;
    let d = &l["data"][0];
    assert_eq!(d["code"], "SPRING15");
    assert_eq!(d["value"], 1500);
    assert_eq!(d["min_subtotal_minor"], 2000);
    assert_eq!(d["ends_at"], "2030-01-01T00:00:00Z");
    assert_eq!(d["usage_limit"], 50);
    let id = d["id"].as_str().unwrap().to_string();
    let (_, html) = b.get("/dashboard/discounts?q=spring").await;
    assert!(html.contains("SPRING15") && html.contains("15 %"), "{html}");
    let r = b
        .post_form(
            &format!("/dashboard/discounts/{id}/active"),
            &[("_csrf", &csrf), ("active", "false")],
        )
        .await;
    assert_eq!(location(&r), "/dashboard/discounts");
    let (_, d) = call(
        &app,
        &tok,
        Method::GET,
        &format!("/api/v1/discount-codes/{id}"),
        None,
    )
    .await;
    assert_eq!(d["active"], false);
    assert_eq!(d["usage_limit"], 50, "the rest is kept");
    let (_, html) = b.get(&format!("/dashboard/discounts/{id}")).await;
    assert!(
        html.contains("value=\"15\"") && html.contains("value=\"20.00\""),
        "{html}"
    );
}

#[tokio::test]
async fn an_editor_sees_discounts_but_not_checkout_settings() {
    let app = spawn_app().await;
    let (_, tok) = app.provisioned_merchant("uirole").await;
    app.add_member(&tok, "editor@uirole.example", "editor")
        .await;
    let b = Browser::new(&app);
    b.sign_in("dashboard", "editor@uirole.example", "member-password-1")
        .await;
    let (s, html) = b.get("/dashboard/discounts").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("href=\"/dashboard/discounts\""));
    assert!(
        !html.contains("href=\"/dashboard/shipping\""),
        "no link to a page the role cannot use"
    );
    let (s, _) = b.get("/dashboard/shipping").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = b.get("/dashboard/settings/checkout").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
