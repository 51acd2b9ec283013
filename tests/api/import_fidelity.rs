//! Issue 13: imports that real merchants' files survive. Stock semantics (tracking and the
//! out-of-stock policy) through the API, the Store API, the storefront and the CSV
//! importers; re-imports and API updates that keep variant and image ids.
//! Fixtures are the project's own, in `tests/fixtures/imports/`.

use crate::helpers::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/imports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn upload(app: &TestApp, token: &str, body: Vec<u8>) -> Value {
    let r = app
        .with_token(Method::POST, "/api/v1/imports/products", token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app
        .with_token(Method::GET, path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// The product with `handle`, as the merchant API returns it.
async fn by_handle(app: &TestApp, token: &str, handle: &str) -> Value {
    let list = get(app, token, "/api/v1/products?per_page=100").await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["handle"] == handle)
        .cloned()
        .unwrap_or_else(|| panic!("no product {handle} in {list}"))
}

/// `(sku, inventory_tracked, inventory_policy, inventory_quantity, available)` per variant.
fn stock(p: &Value) -> Vec<(String, bool, String, i64, bool)> {
    p["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["sku"].as_str().unwrap_or("").to_string(),
                v["inventory_tracked"].as_bool().unwrap(),
                v["inventory_policy"].as_str().unwrap().to_string(),
                v["inventory_quantity"].as_i64().unwrap(),
                v["available"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn s(
    sku: &str,
    tracked: bool,
    policy: &str,
    qty: i64,
    available: bool,
) -> (String, bool, String, i64, bool) {
    (sku.to_string(), tracked, policy.to_string(), qty, available)
}

fn ids(p: &Value, list: &str, key: &str) -> Vec<(String, String)> {
    p[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[key].as_str().unwrap_or("").to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn api_stores_stock_tracking_and_policy_and_storefronts_show_availability() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("stock-api").await;
    let body = json!({
        "title": "Cap", "status": "active", "options": ["Size"],
        "variants": [
            { "sku": "CAP-S", "option_values": ["S"], "price": "10", "inventory_quantity": 0 },
            { "sku": "CAP-M", "option_values": ["M"], "price": "10", "inventory_quantity": 0, "inventory_tracked": false },
            { "sku": "CAP-L", "option_values": ["L"], "price": "10", "inventory_quantity": -51, "inventory_policy": "continue" },
            { "option_values": ["XL"], "price": "10", "inventory_quantity": 2 }
        ]
    });
    let r = app
        .with_token(Method::POST, "/api/v1/products", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        stock(&created),
        [
            s("CAP-S", true, "deny", 0, false),
            s("CAP-M", false, "deny", 0, true),
            s("CAP-L", true, "continue", -51, true),
            s("", true, "deny", 2, true),
        ]
    );
    // The Store API and the storefront page show the same availability.
    let store: Value = app
        .client
        .get(app.url("/s/stock-api/api/v1/store/products/cap"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let avail: Vec<_> = store["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["available"].as_bool().unwrap())
        .collect();
    assert_eq!(avail, [false, true, true, true]);
    let html = app
        .client
        .get(app.url("/s/stock-api/products/cap"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("Sold out").count(), 1, "{html}");
    assert_eq!(html.matches("In stock").count(), 3, "{html}");

    // An update keeps the variants' ids (matched by SKU, else by option values) and
    // moves updated_at; an identical update does not.
    let id = created["id"].as_str().unwrap();
    let mut body2 = body.clone();
    body2["variants"][0]["inventory_policy"] = json!("continue");
    body2["variants"].as_array_mut().unwrap().swap(1, 2);
    let updated: Value = app
        .with_token(Method::PUT, &format!("/api/v1/products/{id}"), &token)
        .json(&body2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut before = ids(&created, "variants", "title");
    let mut after = ids(&updated, "variants", "title");
    before.sort();
    after.sort();
    assert_eq!(before, after, "{updated}");
    assert_eq!(updated["variants"][0]["available"], true);
    assert_eq!(updated["variants"][1]["sku"], "CAP-L");
    assert_ne!(updated["updated_at"], created["updated_at"]);
    let same: Value = app
        .with_token(Method::PUT, &format!("/api/v1/products/{id}"), &token)
        .json(&body2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(same["updated_at"], updated["updated_at"]);
    assert_eq!(
        ids(&same, "variants", "title"),
        ids(&updated, "variants", "title")
    );

    // A bad policy is refused naming the field.
    body2["variants"][2]["inventory_policy"] = json!("backorder");
    let r = app
        .with_token(Method::PUT, &format!("/api/v1/products/{id}"), &token)
        .json(&body2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_inventory_policy", "{e}");
    assert_eq!(
        e["error"]["details"]["field"],
        "variants[2].inventory_policy"
    );
}

#[tokio::test]
async fn csv_stock_columns_of_every_dialect_set_tracking_and_policy() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("stock-csv").await;
    let v = upload(&app, &token, fixture("stock_shopify_legacy.csv")).await;
    assert_eq!(
        (v["created"].as_i64(), v["errors"].clone()),
        (Some(3), json!([])),
        "{v}"
    );
    // Empty tracker: not tracked, so sellable whatever the (empty) quantity says.
    assert_eq!(
        stock(&by_handle(&app, &token, "untracked-tee").await),
        [s("UT-1", false, "deny", 0, true)]
    );
    assert_eq!(
        stock(&by_handle(&app, &token, "sold-out-mug").await),
        [s("SO-1", true, "deny", 0, false)]
    );
    assert_eq!(
        stock(&by_handle(&app, &token, "oversold-cap").await),
        [
            s("OC-S", true, "continue", -51, true),
            s("OC-M", true, "deny", 3, true)
        ]
    );
    // 2024+ dialect: "Continue selling when out of stock" TRUE/FALSE.
    let v = upload(&app, &token, fixture("stock_shopify_2024.csv")).await;
    assert_eq!(v["created"], 2, "{v}");
    assert_eq!(
        stock(&by_handle(&app, &token, "preorder-lamp").await),
        [s("PL-1", true, "continue", 0, true)]
    );
    assert_eq!(
        stock(&by_handle(&app, &token, "plain-lamp").await),
        [s("PL-2", true, "deny", 0, false)]
    );
    // A file without any quantity column: nothing is tracked, nothing shows sold out.
    let v = upload(&app, &token, fixture("stock_no_quantity_column.csv")).await;
    assert_eq!(v["created"], 1, "{v}");
    assert_eq!(
        stock(&by_handle(&app, &token, "soy-candle").await),
        [s("SC-1", false, "deny", 0, true)]
    );
    // WooCommerce: In stock? = 1 with an empty Stock is in stock, untracked.
    let v = upload(&app, &token, fixture("stock_woocommerce.csv")).await;
    assert_eq!(
        (v["created"].as_i64(), v["errors"].clone()),
        (Some(4), json!([])),
        "{v}"
    );
    assert_eq!(
        stock(&by_handle(&app, &token, "always-mug").await),
        [s("W-1", false, "deny", 0, true)]
    );
    assert_eq!(
        stock(&by_handle(&app, &token, "gone-mug").await),
        [s("W-2", true, "deny", 0, false)]
    );
    assert_eq!(
        stock(&by_handle(&app, &token, "counted-mug").await),
        [s("W-3", true, "deny", 5, true)]
    );
    assert_eq!(
        stock(&by_handle(&app, &token, "backorder-mug").await),
        [s("W-4", true, "continue", 0, true)]
    );
    // The storefront agrees: the untracked tee is in stock, the mug sold out.
    for (handle, shown) in [("untracked-tee", "In stock"), ("sold-out-mug", "Sold out")] {
        let html = app
            .client
            .get(app.url(&format!("/s/stock-csv/products/{handle}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains(shown), "{handle}: {html}");
    }
}

#[tokio::test]
async fn reimports_keep_variant_and_image_ids_and_touch_only_changed_products() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("reimport").await;
    let v = upload(&app, &token, fixture("reimport_v1.csv")).await;
    assert_eq!(v["created"], 2, "{v}");
    let shirt1 = by_handle(&app, &token, "linen-shirt").await;
    let scarf1 = by_handle(&app, &token, "wool-scarf").await;

    // The same file again: nothing written, reported as unchanged.
    let v = upload(&app, &token, fixture("reimport_v1.csv")).await;
    assert_eq!(
        (&v["created"], &v["updated"], &v["unchanged"]),
        (&json!(0), &json!(0), &json!(2)),
        "{v}"
    );
    let shirt = by_handle(&app, &token, "linen-shirt").await;
    assert_eq!(
        shirt, shirt1,
        "an identical re-import changes nothing, ids included"
    );

    // A changed file: M repriced and its image replaced, L gone, XL new.
    let v = upload(&app, &token, fixture("reimport_v2.csv")).await;
    assert_eq!(
        (&v["created"], &v["updated"], &v["unchanged"]),
        (&json!(0), &json!(1), &json!(1)),
        "{v}"
    );
    let shirt2 = by_handle(&app, &token, "linen-shirt").await;
    let old = ids(&shirt1, "variants", "sku");
    let new = ids(&shirt2, "variants", "sku");
    assert_eq!(new[0], old[0], "S kept its id");
    assert_eq!(new[1], old[1], "M kept its id");
    assert_eq!(new[2].0, "LS-XL");
    assert!(
        old.iter().all(|(_, id)| *id != new[2].1),
        "XL is a new variant"
    );
    assert_eq!(shirt2["variants"][1]["price"]["amount_minor"], 4490);
    let old_img = ids(&shirt1, "images", "url");
    let new_img = ids(&shirt2, "images", "url");
    assert_eq!(new_img[0], old_img[0], "the kept image kept its id");
    assert_eq!(new_img[1].0, "https://img.example/ls-3.jpg");
    assert_eq!(new_img.len(), 2);
    assert_ne!(shirt2["updated_at"], shirt1["updated_at"]);
    let scarf2 = by_handle(&app, &token, "wool-scarf").await;
    assert_eq!(scarf2, scarf1, "the unchanged product was not touched");
}

#[tokio::test]
async fn the_dashboard_product_form_edits_stock_tracking_and_policy() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("stock-ui").await;
    let b = crate::ui::Browser::new(&app);
    b.sign_in("dashboard", "owner@stock-ui.example", "owner-password-1")
        .await;
    let (status, html) = b.get("/dashboard/products/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<label for=\"f-variants[0].inventory_tracked\">Stock tracking"),
        "{html}"
    );
    let csrf = b.csrf("/dashboard/products/new").await;
    let r = b
        .post_form(
            "/dashboard/products",
            &[
                ("_csrf", &csrf),
                ("title", "Preorder Kettle"),
                ("status", "active"),
                ("variants[0].sku", "PK-1"),
                ("variants[0].price", "30"),
                ("variants[0].inventory_quantity", "-2"),
                ("variants[0].inventory_tracked", "true"),
                ("variants[0].inventory_policy", "continue"),
                ("variants[1].sku", "PK-2"),
                ("variants[1].price", "30"),
                ("variants[1].inventory_tracked", "false"),
                ("variants[1].inventory_policy", "deny"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = crate::ui::location(&r);
    let p = by_handle(&app, &token, "preorder-kettle").await;
    assert_eq!(
        stock(&p),
        [
            s("PK-1", true, "continue", -2, true),
            s("PK-2", false, "deny", 0, true)
        ]
    );
    // The edit page shows the stored choices selected.
    let (_, html) = b.get(&to).await;
    assert!(
        html.contains("<option value=\"continue\" selected>Continue selling"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"false\" selected>Don&#x27;t track"),
        "{html}"
    );
}

/// `(row, column, message)` of a report's errors.
fn errors(v: &Value) -> Vec<(i64, String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().unwrap(),
                e["column"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn rows_longer_or_shorter_than_the_header_are_reported_not_shifted_and_bad_image_urls_skipped()
 {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("shape").await;
    let v = upload(&app, &token, fixture("shifted_rows_and_bad_images.csv")).await;
    assert_eq!(v["created"], 3, "{v}");
    let errs = errors(&v);
    assert_eq!(
        errs.iter().map(|e| (e.0, e.1.as_str())).collect::<Vec<_>>(),
        [
            (3, ""),
            (5, "Product image URL"),
            (6, "Product image URL"),
            (8, "")
        ],
        "{v}"
    );
    assert!(
        errs[0]
            .2
            .starts_with("row has 8 fields but the header has 6"),
        "{v}"
    );
    assert!(
        errs[1]
            .2
            .contains("'not-a-url' is not an absolute http(s) URL"),
        "{v}"
    );
    assert!(errs[2].2.contains("javascript:alert(1)"), "{v}");
    assert!(
        errs[3]
            .2
            .starts_with("row has 3 fields but the header has 6"),
        "{v}"
    );
    // The shifted row was not imported: no variant priced from the wrong column, no
    // image URL "manual" or "TRUE".
    let desk = by_handle(&app, &token, "desk-lamp").await;
    assert_eq!(stock(&desk), [s("DL-1", true, "deny", 10, true)]);
    let urls = |p: &Value| -> Vec<String> {
        p["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["url"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(urls(&desk), ["https://img.example/lamp.jpg"]);
    // Trailing empty cells are tolerated.
    let floor = by_handle(&app, &token, "floor-lamp").await;
    assert_eq!(urls(&floor), ["https://img.example/floor.jpg"]);
    // Bad image URLs are skipped, the product and its good image kept.
    let wall = by_handle(&app, &token, "wall-lamp").await;
    assert_eq!(urls(&wall), ["https://img.example/wall.jpg"]);
    assert_eq!(wall["variants"][0]["sku"], "WL-1");
}
