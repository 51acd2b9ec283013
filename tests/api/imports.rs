use crate::helpers::{TestApp, shared_data, spawn_app, spawn_with};
use reqwest::StatusCode;
use serde_json::Value;

async fn upload(app: &TestApp, token: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/imports/products"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn real_shopify_and_woocommerce_exports_import_with_expected_counts() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("import-shop").await;
    let files = [
        ("shopify_apparel.csv", "shopify_legacy", 20, 22),
        ("shopify_home-and-garden.csv", "shopify_legacy", 20, 21),
        ("shopify_jewelery.csv", "shopify_legacy", 20, 23),
        ("shopify_product_template.csv", "shopify_legacy", 3, 16),
        ("woocommerce_sample_products.csv", "woo_commerce", 18, 23),
    ];
    let mut total = 0;
    for (file, format, products, variants) in files {
        let Some(bytes) = shared_data(file) else {
            return;
        };
        let r = upload(&app, &token, bytes.clone()).await;
        assert_eq!(r.status(), StatusCode::OK, "{file}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["format"], format, "{file}: {v}");
        assert_eq!(v["products"], products, "{file}: {v}");
        assert_eq!(v["variants"], variants, "{file}: {v}");
        total += products;
        // Re-importing the same file updates instead of duplicating.
        let again: Value = upload(&app, &token, bytes).await.json().await.unwrap();
        assert_eq!(again["created"], 0, "{file}: {again}");
        assert_eq!(again["updated"], products, "{file}: {again}");
    }
    let all: Value = app
        .client
        .get(app.url("/api/v1/products?per_page=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["pagination"]["total"], total);
    // Variants are grouped under their product.
    let v: Value = app
        .client
        .get(app.url("/s/import-shop/api/v1/store/products/chain-bracelet"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["options"], serde_json::json!(["Color"]));
    assert_eq!(v["variants"].as_array().unwrap().len(), 2);
    assert_eq!(v["variants"][0]["price"]["amount_minor"], 4299);
    // WooCommerce categories became collections.
    let c: Value = app
        .client
        .get(app.url("/api/v1/collections"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tshirts = c
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["handle"] == "clothing-tshirts")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(tshirts["title"], "Tshirts", "{c}");
    assert!(tshirts["product_count"].as_i64().unwrap() >= 1, "{c}");
}

#[tokio::test]
async fn bad_product_rows_are_reported_and_good_rows_kept() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("rows-shop").await;
    let csv = "\u{feff}Handle,Title,Variant Price,Variant SKU\r\ngood-one,Good One,9.99,G1\r\nbad-exp,Bad Exp,3.65275E+11,B1\r\nbad-abc,Bad Abc,abc,B2\r\ngood-two,Good Two,.5,G2\r\n";
    let v: Value = upload(&app, &token, csv.as_bytes().to_vec())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["created"], 2, "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{v}");
    assert_eq!(errors[0]["row"], 3);
    assert_eq!(errors[0]["column"], "Variant Price");
    assert_eq!(errors[1]["row"], 4);
    // Unknown dialect and empty file are whole-file errors.
    let r = upload(&app, &token, b"foo,bar\n1,2\n".to_vec()).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_format"
    );
    let r = upload(&app, &token, vec![]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn oversized_upload_is_413() {
    let app = spawn_with(|c| c.max_body_bytes = 64 * 1024).await;
    let (_, token) = app.provisioned_merchant("big-shop").await;
    let mut csv = String::from("Handle,Title,Variant Price\n");
    while csv.len() < 200 * 1024 {
        csv.push_str("x-product,X Product,1.00\n");
    }
    let r = upload(&app, &token, csv.into_bytes()).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
}

#[tokio::test]
async fn vendor_csv_provisions_every_valid_row_and_reports_the_rest() {
    let app = spawn_app().await;
    let Some(bytes) = shared_data("vendors_lu_300.csv") else {
        return;
    };
    let r = app
        .client
        .post(app.url("/api/v1/admin/imports/vendors?theme=midnight&plan=starter"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["total_rows"], 300);
    assert_eq!(
        v["created"].as_u64().unwrap() + v["failed"].as_u64().unwrap(),
        300,
        "{}",
        v["errors"]
    );
    assert_eq!(v["created"], 280, "{}", v["errors"]);
    let errors = v["errors"].as_array().unwrap();
    let row = |n: u64| {
        errors
            .iter()
            .find(|e| e["row"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        row(37)["column"],
        "subdomain",
        "le-réservoir is not a DNS label"
    );
    assert_eq!(row(134)["column"], "subdomain", "5àsec is not a DNS label");
    assert!(
        row(250)["reason"].as_str().unwrap().contains("casa"),
        "casa is taken twice"
    );
    // Every created merchant reaches active.
    for m in v["merchants"].as_array().unwrap().iter().take(280) {
        let id = m["id"].as_str().unwrap();
        let p = app.wait_provisioning(id).await;
        assert_eq!(p["status"], "completed", "{p}");
    }
    let list: Value = app
        .admin_get("/api/v1/admin/merchants?status=active&per_page=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["pagination"]["total"], 280);
    // A second import of the same file creates nobody: every subdomain is now taken.
    let Some(bytes) = shared_data("vendors_lu_300.csv") else {
        return;
    };
    let v: Value = app
        .client
        .post(app.url("/api/v1/admin/imports/vendors"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(bytes)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["created"], 0, "{v}");
}
