//! Shoppers buy: carts, checkout, orders from the Store API and the storefront, stock
//! reservation, idempotency, discounts, shipping, tax, customers, fulfilment, refunds.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Seeds a store's checkout configuration with SQL (tests only): bank transfer and cash
/// on delivery, tax-inclusive prices, a zone LU/DE/FR with a 4.90 rate free over 50.00,
/// pickup, LU 17 % and DE 19 %, and the codes WELCOME10 (10 %) and FIVE (5.00 off, min
/// 20.00, 1 use in all).
pub async fn seed_checkout(app: &TestApp, tenant: &str) -> String {
    let t = uuid::Uuid::parse_str(tenant).unwrap();
    let zone = uuid::Uuid::now_v7();
    let rate = uuid::Uuid::now_v7();
    let now = 1_700_000_000_000_000i64;
    macro_rules! run {
        ($pool:expr) => {{
            let p = $pool;
            sqlx::query("insert into checkout_settings (tenant_id, prices_include_tax, bank_transfer, bank_instructions, cash_on_delivery, card, pickup, pickup_address, updated_at) values ($1, true, true, 'IBAN LU00 0000 0000 0000', true, false, true, '1 Rue du Test', $2)")
                .bind(t).bind(now).execute(p).await.unwrap();
            sqlx::query("insert into shipping_zones (id, tenant_id, name, countries, created_at) values ($1, $2, 'Benelux+', '[\"LU\",\"DE\",\"FR\"]', $3)")
                .bind(zone).bind(t).bind(now).execute(p).await.unwrap();
            sqlx::query("insert into shipping_rates (id, tenant_id, zone_id, name, price_minor, free_over_minor, created_at) values ($1, $2, $3, 'Standard', 490, 5000, $4)")
                .bind(rate).bind(t).bind(zone).bind(now).execute(p).await.unwrap();
            for (c, bp) in [("LU", 1700i64), ("DE", 1900)] {
                sqlx::query("insert into tax_rates (id, tenant_id, country, name, rate_bp, created_at) values ($1, $2, $3, 'VAT', $4, $5)")
                    .bind(uuid::Uuid::now_v7()).bind(t).bind(c).bind(bp).bind(now).execute(p).await.unwrap();
            }
            sqlx::query("insert into discount_codes (id, tenant_id, code, kind, value, min_subtotal_minor, created_at, updated_at) values ($1, $2, 'WELCOME10', 'percentage', 1000, 0, $3, $3)")
                .bind(uuid::Uuid::now_v7()).bind(t).bind(now).execute(p).await.unwrap();
            sqlx::query("insert into discount_codes (id, tenant_id, code, kind, value, min_subtotal_minor, usage_limit, created_at, updated_at) values ($1, $2, 'FIVE', 'fixed', 500, 2000, 1, $3, $3)")
                .bind(uuid::Uuid::now_v7()).bind(t).bind(now).execute(p).await.unwrap();
        }};
    }
    match &app.db {
        souk::store::Db::Sqlite { write, .. } => run!(write),
        souk::store::Db::Pg { platform, .. } => run!(platform),
    }
    rate.to_string()
}

/// Creates an active product with one variant and returns the variant id.
pub async fn product_with_stock(
    app: &TestApp,
    token: &str,
    title: &str,
    price: &str,
    stock: i64,
) -> String {
    let r = app
        .with_token(Method::POST, "/api/v1/products", token)
        .json(&json!({ "title": title, "status": "active", "variants": [{ "sku": title.to_uppercase().replace(' ', "-"), "price": price, "inventory_quantity": stock }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["variants"][0]["id"].as_str().unwrap().to_string()
}

pub async fn store(
    app: &TestApp,
    sub: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(&format!("/s/{sub}/api/v1/store{path}")));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub fn lu_address() -> Value {
    json!({ "name": "Ana Shopper", "line1": "12 Rue de la Gare", "city": "Luxembourg", "postal_code": "L-1611", "country": "LU" })
}

/// A cart with `qty` of `variant`, the address, the standard rate and bank transfer.
pub async fn ready_cart(app: &TestApp, sub: &str, variant: &str, qty: i64, rate: &str) -> String {
    let (s, cart) = store(
        app,
        sub,
        Method::POST,
        "/carts",
        Some(json!({ "email": "ana@shopper.example" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cart}");
    let id = cart["id"].as_str().unwrap().to_string();
    let (s, c) = store(
        app,
        sub,
        Method::POST,
        &format!("/carts/{id}/line-items"),
        Some(json!({ "variant_id": variant, "quantity": qty })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let (s, c) = store(app, sub, Method::POST, &format!("/carts/{id}"), Some(json!({ "shipping_address": lu_address(), "shipping_option": rate, "payment_method": "bank_transfer" }))).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    id
}

#[tokio::test]
async fn a_guest_buys_over_the_store_api_with_totals_tax_shipping_and_a_discount() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("beans").await;
    let rate = seed_checkout(&app, &tenant).await;
    let v = product_with_stock(&app, &owner, "House Blend", "11.70", 5).await;

    let (s, cart) = store(&app, "beans", Method::POST, "/carts", Some(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = cart["id"].as_str().unwrap().to_string();
    let (s, c) = store(
        &app,
        "beans",
        Method::POST,
        &format!("/carts/{id}/line-items"),
        Some(json!({ "variant_id": v, "quantity": 2 })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["item_count"], 2);
    assert_eq!(c["totals"]["subtotal"]["amount_minor"], 2340);
    // Add again: same line, quantity adds up.
    let (_, c) = store(
        &app,
        "beans",
        Method::POST,
        &format!("/carts/{id}/line-items"),
        Some(json!({ "variant_id": v, "quantity": 1 })),
    )
    .await;
    assert_eq!(c["lines"].as_array().unwrap().len(), 1);
    assert_eq!(c["lines"][0]["quantity"], 3);
    let line = c["lines"][0]["id"].as_str().unwrap().to_string();
    let (_, c) = store(
        &app,
        "beans",
        Method::POST,
        &format!("/carts/{id}/line-items/{line}"),
        Some(json!({ "quantity": 2 })),
    )
    .await;
    assert_eq!(c["lines"][0]["quantity"], 2);

    // Address, options, discount.
    let (s, c) = store(
        &app,
        "beans",
        Method::POST,
        &format!("/carts/{id}"),
        Some(json!({ "email": "Ana@Shopper.example", "shipping_address": lu_address() })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["email"], "ana@shopper.example");
    let (s, opts) = store(
        &app,
        "beans",
        Method::GET,
        &format!("/carts/{id}/shipping-options"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = opts
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![rate.as_str(), "pickup"]);
    let (s, c) = store(
        &app,
        "beans",
        Method::POST,
        &format!("/carts/{id}"),
        Some(json!({ "shipping_option": rate, "payment_method": "bank_transfer" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let (s, c) = store(
        &app,
        "beans",
        Method::POST,
        &format!("/carts/{id}/discounts"),
        Some(json!({ "code": "welcome10" })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    // 23.40 − 2.34 = 21.06, + 4.90 shipping = 25.96; LU 17 % contained:
    // lines 21.06 × 17/117 = 3.06, shipping 4.90 × 17/117 = 0.71.
    assert_eq!(c["totals"]["discount"]["amount_minor"], 234);
    assert_eq!(c["totals"]["shipping"]["amount_minor"], 490);
    assert_eq!(c["totals"]["total"]["amount_minor"], 2596);
    assert_eq!(c["totals"]["tax"]["amount_minor"], 306 + 71);

    let r = app
        .client
        .post(app.url(&format!("/s/beans/api/v1/store/carts/{id}/complete")))
        .header("Idempotency-Key", "k-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let order: Value = r.json().await.unwrap();
    assert_eq!(order["number"], 1001);
    assert_eq!(order["total"]["amount_minor"], 2596);
    assert_eq!(order["financial_status"], "pending");
    assert_eq!(order["payment_method"], "bank_transfer");
    assert_eq!(order["discount_code"], "WELCOME10");
    assert_eq!(order["shipping_address"]["postal_code"], "L-1611");
    assert_eq!(order["line_items"][0]["title"], "House Blend");
    assert_eq!(order["line_items"][0]["unit_price"]["amount_minor"], 1170);
    assert_eq!(order["line_items"][0]["discount"]["amount_minor"], 234);
    assert!(order["customer_id"].is_string());
    assert!(order["source"].as_str().unwrap().starts_with("store_api"));

    // The same key again: the same order, nothing new.
    let r = app
        .client
        .post(app.url(&format!("/s/beans/api/v1/store/carts/{id}/complete")))
        .header("Idempotency-Key", "k-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["id"], order["id"]);
    // Without the key, a completed cart is refused and points at its order.
    let (s, e) = store(
        &app,
        "beans",
        Method::POST,
        &format!("/carts/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "cart_completed");
    assert_eq!(e["error"]["details"]["order_id"], order["id"]);
    // The same key for another cart is refused.
    let other = ready_cart(&app, "beans", &v, 1, &rate).await;
    let r = app
        .client
        .post(app.url(&format!("/s/beans/api/v1/store/carts/{other}/complete")))
        .header("Idempotency-Key", "k-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Stock was taken: 5 − 2.
    let p: Value = app
        .with_token(Method::GET, "/api/v1/orders?per_page=5", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["data"].as_array().unwrap().len(), 1);
    let prods: Value = app
        .with_token(Method::GET, "/api/v1/products", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prods["data"][0]["variants"][0]["inventory_quantity"], 3);

    // E-mails: the shopper's confirmation and the owner's notification.
    let outbox = app.data_dir.join("outbox");
    let mut found = (false, false);
    for _ in 0..100 {
        let all: String = std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        found = (
            all.contains("Order #1001 confirmed"),
            all.contains("New order #1001"),
        );
        if found == (true, true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found, (true, true), "confirmation and notification e-mails");
}

#[tokio::test]
async fn bad_cart_input_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("grind").await;
    let rate = seed_checkout(&app, &tenant).await;
    let v = product_with_stock(&app, &owner, "Grinder", "49.00", 2).await;
    let draft = {
        let r = app
            .with_token(Method::POST, "/api/v1/products", &owner)
            .json(&json!({ "title": "Secret", "status": "draft", "variants": [{ "sku": "SECRET", "price": "1.00", "inventory_quantity": 5 }] }))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["variants"][0]["id"].as_str().unwrap().to_string()
    };
    let (_, other_owner) = app.provisioned_merchant("other").await;
    let foreign = product_with_stock(&app, &other_owner, "Foreign", "1.00", 5).await;

    let (_, cart) = store(&app, "grind", Method::POST, "/carts", Some(json!({}))).await;
    let id = cart["id"].as_str().unwrap();
    for (body, field, code) in [
        (
            json!({ "variant_id": v, "quantity": 0 }),
            "quantity",
            "invalid_quantity",
        ),
        (
            json!({ "variant_id": v, "quantity": -1 }),
            "quantity",
            "invalid_quantity",
        ),
        (
            json!({ "variant_id": v, "quantity": 10001 }),
            "quantity",
            "invalid_quantity",
        ),
        (
            json!({ "variant_id": v, "quantity": 3 }),
            "quantity",
            "out_of_stock",
        ),
        (
            json!({ "variant_id": draft, "quantity": 1 }),
            "variant_id",
            "product_unavailable",
        ),
        (
            json!({ "variant_id": foreign, "quantity": 1 }),
            "variant_id",
            "unknown_variant",
        ),
    ] {
        let (s, e) = store(
            &app,
            "grind",
            Method::POST,
            &format!("/carts/{id}/line-items"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {e}");
        assert_eq!(e["error"]["code"], code, "{body} → {e}");
        assert_eq!(e["error"]["details"]["field"], field, "{body} → {e}");
    }
    let mut bad_country = lu_address();
    bad_country["country"] = json!("US");
    let mut bad_postal = lu_address();
    bad_postal["postal_code"] = json!("<b>");
    for (body, field, code) in [
        (json!({ "email": "not-an-email" }), "email", "invalid_email"),
        (
            json!({ "shipping_address": bad_country }),
            "shipping_address.country",
            "country_not_served",
        ),
        (
            json!({ "shipping_address": bad_postal }),
            "shipping_address.postal_code",
            "invalid_postal_code",
        ),
        (
            json!({ "shipping_option": uuid::Uuid::now_v7().to_string() }),
            "shipping_option",
            "shipping_option_unavailable",
        ),
        (
            json!({ "payment_method": "bitcoin" }),
            "payment_method",
            "invalid_payment_method",
        ),
    ] {
        let (s, e) = store(
            &app,
            "grind",
            Method::POST,
            &format!("/carts/{id}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {e}");
        assert_eq!(e["error"]["details"]["field"], field, "{body} → {e}");
        assert_eq!(e["error"]["code"], code, "{body} → {e}");
    }
    for (code, err) in [("NOPE", "unknown_discount"), ("FIVE", "discount_invalid")] {
        let (s, e) = store(
            &app,
            "grind",
            Method::POST,
            &format!("/carts/{id}/discounts"),
            Some(json!({ "code": code })),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["code"], err, "{e}");
    }
    // Nothing valid was lost: the cart is still there and empty; completing it says why.
    let (s, e) = store(
        &app,
        "grind",
        Method::POST,
        &format!("/carts/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["details"]["field"], "lines");
    // A cart of store A on store B's host is a 404, like a missing one.
    let (s, _) = store(&app, "other", Method::GET, &format!("/carts/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s2, _) = store(
        &app,
        "other",
        Method::GET,
        &format!("/carts/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(s2, StatusCode::NOT_FOUND);
    let _ = rate;
}

#[tokio::test]
async fn a_changed_price_is_shown_before_the_order_is_placed() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("pricey").await;
    let rate = seed_checkout(&app, &tenant).await;
    let v = product_with_stock(&app, &owner, "Kettle", "30.00", 5).await;
    let cart = ready_cart(&app, "pricey", &v, 1, &rate).await;
    let prods: Value = app
        .with_token(Method::GET, "/api/v1/products", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = prods["data"][0]["id"].as_str().unwrap();
    let r = app
        .with_token(Method::PUT, &format!("/api/v1/products/{pid}"), &owner)
        .json(&json!({ "title": "Kettle", "status": "active", "variants": [{ "sku": "KETTLE", "price": "35.00", "inventory_quantity": 5 }] }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (_, c) = store(&app, "pricey", Method::GET, &format!("/carts/{cart}"), None).await;
    assert_eq!(c["changes"][0]["code"], "price_changed", "{c}");
    let (s, e) = store(
        &app,
        "pricey",
        Method::POST,
        &format!("/carts/{cart}/complete"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "cart_changed");
    // Seen: the second attempt places the order at the new price.
    let (s, o) = store(
        &app,
        "pricey",
        Method::POST,
        &format!("/carts/{cart}/complete"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["line_items"][0]["unit_price"]["amount_minor"], 3500);
}

async fn oversell(app: &TestApp, sub: &str) {
    let (tenant, owner) = app.provisioned_merchant(sub).await;
    let rate = seed_checkout(app, &tenant).await;
    let v = product_with_stock(app, &owner, "Last Units", "5.00", 10).await;
    let mut carts = vec![];
    for _ in 0..100 {
        carts.push(ready_cart(app, sub, &v, 1, &rate).await);
    }
    let mut tasks = vec![];
    for c in carts {
        let client = app.client.clone();
        let url = app.url(&format!("/s/{sub}/api/v1/store/carts/{c}/complete"));
        tasks.push(tokio::spawn(async move {
            client.post(url).send().await.map(|r| r.status())
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 10);
    assert_eq!(refused, 90);
    let prods: Value = app
        .with_token(Method::GET, "/api/v1/products", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prods["data"][0]["variants"][0]["inventory_quantity"], 0);
    let orders: Value = app
        .with_token(Method::GET, "/api/v1/orders?per_page=100", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["pagination"]["total"], 10);
}

#[tokio::test]
async fn a_hundred_buyers_for_the_last_ten_units_make_exactly_ten_orders() {
    let app = spawn_app().await;
    oversell(&app, "rush").await;
}

fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencoding(k), urlencoding(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

trait FormBody {
    fn form(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(encode(pairs))
    }
}

/// A client that keeps cookies and does not follow redirects (like a browser's forms).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_guest_buys_on_the_storefront_with_plain_forms_and_a_customer_signs_in() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("forms").await;
    let rate = seed_checkout(&app, &tenant).await;
    let v = product_with_stock(&app, &owner, "Pour Over", "20.00", 3).await;
    let b = browser();
    let base = app.url("/s/forms");
    let page = b
        .get(format!("{base}/products/pour-over"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/cart/add"),
        "the product page has an add-to-cart form"
    );
    assert!(page.contains(&v));
    let r = b
        .post(format!("{base}/cart/add"))
        .form(&[("variant_id", v.as_str()), ("quantity", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cart = b
        .get(format!("{base}/cart"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cart.contains("Pour Over") && cart.contains("40.00 EUR"),
        "{cart}"
    );
    assert!(cart.contains("Cart <span class=\"cart-count\">(2)</span>"));
    // A bad quantity is explained and the cart kept.
    let r = b
        .post(format!("{base}/cart/add"))
        .form(&[("variant_id", v.as_str()), ("quantity", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("left in stock"));
    // Details with a bad postal code: the field error, the values kept.
    let mut form = vec![
        ("email", "guest@shop.example"),
        ("name", "Guest"),
        ("line1", "1 Rue"),
        ("city", "Luxembourg"),
        ("postal_code", "<b>"),
        ("country", "LU"),
    ];
    let r = b
        .post(format!("{base}/checkout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"e-postal_code\""), "{html}");
    assert!(html.contains("guest@shop.example"));
    form[4] = ("postal_code", "L-1234");
    let r = b
        .post(format!("{base}/checkout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b
        .get(format!("{base}/checkout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&rate) && html.contains("bank_transfer"),
        "{html}"
    );
    let token = html
        .split("name=\"checkout_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let place = [
        ("shipping_option", rate.as_str()),
        ("payment_method", "bank_transfer"),
        ("checkout_token", token.as_str()),
    ];
    let r = b
        .post(format!("{base}/checkout/place"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&place))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/s/forms/orders/"), "{loc}");
    let conf = b
        .get(app.url(&loc))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        conf.contains("Order #1001") && conf.contains("IBAN LU00"),
        "{conf}"
    );
    // A double click: the same form again changes nothing (one order).
    let _ = b
        .post(format!("{base}/checkout/place"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&place))
        .send()
        .await
        .unwrap();
    let orders: Value = app
        .with_token(Method::GET, "/api/v1/orders", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["pagination"]["total"], 1);
    assert_eq!(orders["data"][0]["source"], "storefront");

    // Register, sign out, sign in, see the history (a new account has no guest orders).
    let r = b
        .post(format!("{base}/account/register"))
        .form(&[
            ("email", "member@shop.example"),
            ("password", "member-pass-1"),
            ("first_name", "Mia"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let acct = b
        .get(format!("{base}/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        acct.contains("Hello Mia") && acct.contains("No orders yet"),
        "{acct}"
    );
    // The customer cookie never opens the dashboard or the merchant API.
    let r = b.get(app.url("/api/v1/orders")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let _ = b
        .post(format!("{base}/account/logout"))
        .send()
        .await
        .unwrap();
    let r = b
        .post(format!("{base}/account/login"))
        .form(&[
            ("email", "member@shop.example"),
            ("password", "wrong-pass-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = b
        .post(format!("{base}/account/login"))
        .form(&[
            ("email", "member@shop.example"),
            ("password", "member-pass-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Signed in, buy: the order lands in the history.
    b.post(format!("{base}/cart/add"))
        .form(&[("variant_id", v.as_str())])
        .send()
        .await
        .unwrap();
    let form = [
        ("email", "member@shop.example"),
        ("name", "Mia"),
        ("line1", "2 Rue"),
        ("city", "Esch"),
        ("postal_code", "L-4000"),
        ("country", "LU"),
    ];
    b.post(format!("{base}/checkout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&form))
        .send()
        .await
        .unwrap();
    let r = b
        .post(format!("{base}/checkout/place"))
        .form(&[
            ("shipping_option", rate.as_str()),
            ("payment_method", "cash_on_delivery"),
            ("checkout_token", "t2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let acct = b
        .get(format!("{base}/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(acct.contains("#1002"), "{acct}");
    // The same e-mail at another store is another customer: no session there.
    app.provisioned_merchant("elsewhere").await;
    let other = b
        .get(app.url("/s/elsewhere/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(other.contains("Create an account"));
}
