use crate::helpers::{TestApp, shared_data, spawn_app, spawn_with, spawn_with_fault};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
        // Re-importing the same file neither duplicates nor rewrites: every product is
        // found unchanged.
        let again: Value = upload(&app, &token, bytes).await.json().await.unwrap();
        assert_eq!(again["created"], 0, "{file}: {again}");
        assert_eq!(again["updated"], 0, "{file}: {again}");
        assert_eq!(again["unchanged"], products, "{file}: {again}");
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
    // Imports have their own, larger limit than other bodies (issue 13 item 9).
    let app = spawn_with(|c| {
        c.max_body_bytes = 16 * 1024;
        c.max_import_bytes = 64 * 1024;
    })
    .await;
    let (_, token) = app.provisioned_merchant("big-shop").await;
    let mut csv = String::from("Handle,Title,Variant Price\n");
    while csv.len() < 40 * 1024 {
        csv.push_str("x-product,X Product,1.00\n");
    }
    let r = upload(&app, &token, csv.clone().into_bytes()).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "40 KB is over the body limit but not the import limit"
    );
    while csv.len() < 200 * 1024 {
        csv.push_str("x-product,X Product,1.00\n");
    }
    let r = upload(&app, &token, csv.into_bytes()).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "payload_too_large");
    assert_eq!(e["error"]["details"]["max_bytes"], 64 * 1024, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 64 KB"),
        "{e}"
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
    // Every row but the genuine duplicates: casa, nissan, die-brille and the second
    // '5àsec' (normalised to the first one's '5asec').
    assert_eq!(v["created"], 296, "{}", v["errors"]);
    let errors = v["errors"].as_array().unwrap();
    let row = |n: u64| {
        errors
            .iter()
            .find(|e| e["row"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let warned = |n: u64| {
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["row"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        warned(37)["reason"],
        "subdomain 'le-réservoir' is not a valid DNS label; 'le-reservoir' is used instead",
        "an explicit subdomain with accents is normalised, not refused"
    );
    assert!(
        errors.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .starts_with("subdomain '5asec' is already taken")),
        "{}",
        v["errors"]
    );
    assert!(
        row(250)["reason"].as_str().unwrap().contains("casa"),
        "casa is taken twice"
    );
    // Every created merchant reaches active.
    for m in v["merchants"].as_array().unwrap().iter().take(296) {
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
    assert_eq!(list["pagination"]["total"], 296);
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
    // The same rows are recognised as already provisioned, not failed.
    assert_eq!(v["already_provisioned"], 296, "{}", v["errors"]);
    assert_eq!(v["failed"], 4, "{}", v["errors"]);
}

/// A vendor import killed between creating a merchant and activating it (the two used to
/// be separate transactions) left it `pending` with its subdomain reserved; uploading the
/// same file again must activate it rather than report "already exists" / "subdomain taken".
#[tokio::test]
async fn vendor_csv_reupload_resumes_a_merchant_left_pending() {
    let app = spawn_app().await;
    let csv = "vendor_name,subdomain,owner_name,owner_email\n\
               Stranded Shop,stranded,Ann Owner,ann@stranded.example\n\
               Fresh Shop,fresh,Bob Owner,bob@fresh.example\n";
    // The state an interrupted import left behind: merchant created, never activated.
    let r = app
        .admin_post(
            "/api/v1/admin/merchants",
            json!({ "name": "Stranded Shop", "owner_email": "ann@stranded.example", "owner_name": "Ann Owner", "subdomain": "stranded" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let stranded = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let upload = || async {
        app.client
            .post(app.url("/api/v1/admin/imports/vendors"))
            .bearer_auth(&app.admin_token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let v = upload().await;
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["created"], 2, "{v}");
    let outcomes: Vec<(String, String)> = v["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["subdomain"].as_str().unwrap().to_string(),
                m["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        outcomes.contains(&("stranded".into(), "resumed".into())),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("fresh".into(), "created".into())),
        "{outcomes:?}"
    );
    let p = app.wait_provisioning(&stranded).await;
    assert_eq!(p["status"], "completed", "{p}");
    // A third upload changes nothing and fails nothing.
    let v = upload().await;
    assert_eq!(
        (
            v["created"].as_u64(),
            v["already_provisioned"].as_u64(),
            v["failed"].as_u64()
        ),
        (Some(0), Some(2), Some(0)),
        "{v}"
    );
}

/// `GET path` with `token`, as JSON.
async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    app.with_token(reqwest::Method::GET, path, token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls a background import until it ends; returns the import.
async fn wait_for_import(app: &TestApp, token: &str, location: &str) -> Value {
    let mut seen_done: Vec<i64> = vec![];
    for _ in 0..400 {
        let v: Value = get_json(app, token, location).await;
        seen_done.push(v["products_done"].as_i64().unwrap());
        if v["status"] == "completed" || v["status"] == "failed" {
            // Progress only moves forward.
            assert!(seen_done.windows(2).all(|w| w[0] <= w[1]), "{seen_done:?}");
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the import did not end: {seen_done:?}");
}

#[tokio::test]
async fn background_imports_report_progress_then_the_same_report_as_a_direct_import() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("bg-import").await;
    // A product already in the store holds SKU BG-TAKEN.
    let r = app
        .with_token(reqwest::Method::POST, "/api/v1/products", &token)
        .json(&serde_json::json!({ "title": "Existing", "variants": [{ "price": "1.00", "sku": "BG-TAKEN" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // 450 products with 2 variants each (3 chunks of 200): one row with a bad price, and
    // one product the database refuses (its SKU is the existing product's).
    let mut csv =
        String::from("Handle,Title,Option1 Name,Option1 Value,Variant Price,Variant SKU\n");
    for i in 0..450 {
        let price = if i == 7 { "abc" } else { "12.50" };
        let sku_b = if i == 300 {
            "BG-TAKEN".to_string()
        } else {
            format!("BG-{i}-B")
        };
        csv.push_str(&format!("bg-{i},Background {i},Size,S,{price},BG-{i}-A\n"));
        csv.push_str(&format!("bg-{i},,Size,M,13.00,{sku_b}\n"));
    }
    let r = app
        .with_token(
            reqwest::Method::POST,
            "/api/v1/imports/products?background=true&file_name=catalog%2Fbig.csv",
            &token,
        )
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let queued: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!(
            "/api/v1/imports/products/{}",
            queued["id"].as_str().unwrap()
        )
    );
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["products_total"], 450);
    assert_eq!(
        queued["file_name"], "big.csv",
        "the path is dropped: {queued}"
    );
    let done = wait_for_import(&app, &token, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["products_done"], 450);
    assert_eq!(done["created"], 449, "{done}");
    let report = &done["report"];
    assert_eq!(report["created"], 449, "{report}");
    assert_eq!(report["updated"], 0);
    assert_eq!(report["failed"], 2, "{report}");
    let rows: Vec<i64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_i64().unwrap())
        .collect();
    // Row 16 is bg-7's first line (a bad price); rows 602/603 hold bg-300, whose SKU is
    // the existing product's.
    assert!(rows.contains(&16), "{report}");
    assert!(rows.iter().any(|r| *r == 602 || *r == 603), "{report}");
    let products: Value = get_json(&app, &token, "/api/v1/products?per_page=1").await;
    assert_eq!(
        products["pagination"]["total"], 450,
        "449 imported + the existing one"
    );

    // Importing the same file again finds every product unchanged; the history lists
    // both, newest first.
    let r = app
        .with_token(
            reqwest::Method::POST,
            "/api/v1/imports/products?background=true",
            &token,
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location2 = r.headers()["location"].to_str().unwrap().to_string();
    let again = wait_for_import(&app, &token, &location2).await;
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(
        (&again["updated"], &again["unchanged"]),
        (&json!(0), &json!(449)),
        "{again}"
    );
    let list: Value = get_json(&app, &token, "/api/v1/imports/products").await;
    assert_eq!(list["pagination"]["total"], 2, "{list}");
    assert_eq!(list["data"][0]["id"], again["id"]);
    assert_eq!(list["data"][1]["file_name"], "big.csv");
    assert!(
        list["data"][0]["report"].is_null(),
        "the list leaves reports out"
    );

    // The audit log names the import.
    let audit: Value = app
        .with_token(
            reqwest::Method::GET,
            "/api/v1/audit-log?action=products.imported",
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains(again["id"].as_str().unwrap()),
        "{audit}"
    );
}

#[tokio::test]
async fn background_imports_refuse_bad_files_at_once_and_stay_in_their_tenant() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("bg-own").await;
    let (_, other) = app.provisioned_merchant("bg-other").await;
    // A file that cannot be read is refused before anything is queued.
    let r = app
        .with_token(
            reqwest::Method::POST,
            "/api/v1/imports/products?background=true",
            &owner,
        )
        .header("content-type", "text/csv")
        .body("foo,bar\n1,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().is_some(), "{e}");
    let list: Value = get_json(&app, &owner, "/api/v1/imports/products").await;
    assert_eq!(list["pagination"]["total"], 0, "{list}");

    // The storefront's product list is cached before the import...
    let store = |app: &TestApp| {
        app.client
            .get(app.url("/s/bg-own/api/v1/store/products"))
            .send()
    };
    let before: Value = store(&app).await.unwrap().json().await.unwrap();
    assert_eq!(before["data"].as_array().map(Vec::len), Some(0), "{before}");
    let r = app
        .with_token(
            reqwest::Method::POST,
            "/api/v1/imports/products?background=true",
            &owner,
        )
        .header("content-type", "text/csv")
        .body("Handle,Title,Variant Price\nmine,Mine,1.00\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let done = wait_for_import(&app, &owner, &location).await;
    assert_eq!(done["created"], 1, "{done}");
    // ...and shows the imported product as soon as the import has completed.
    let after: Value = store(&app).await.unwrap().json().await.unwrap();
    assert_eq!(after["data"][0]["handle"], "mine", "{after}");
    // Another tenant sees neither the import nor it in its history.
    let r = app
        .with_token(reqwest::Method::GET, &location, &other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let list: Value = get_json(&app, &other, "/api/v1/imports/products").await;
    assert_eq!(list["pagination"]["total"], 0, "{list}");
    // A viewer may follow imports but not start one.
    let (_, viewer) = app
        .add_member(&owner, "viewer@bg-own.example", "viewer")
        .await;
    let r = app
        .with_token(reqwest::Method::GET, &location, &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .with_token(
            reqwest::Method::POST,
            "/api/v1/imports/products?background=true",
            &viewer,
        )
        .header("content-type", "text/csv")
        .body("Handle,Title,Variant Price\nnope,Nope,1.00\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .with_token(
            reqwest::Method::GET,
            "/api/v1/imports/products/not-a-uuid",
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}

#[tokio::test]
async fn an_import_stopped_between_chunks_resumes_without_redoing_committed_chunks() {
    use std::sync::{Arc, Mutex};
    // The worker stops (as a crash would) before the second chunk, once.
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = calls.clone();
    let app = spawn_with_fault(Arc::new(move |point: &str| {
        if !point.starts_with("import_chunk:") {
            return None;
        }
        let mut c = seen.lock().unwrap();
        c.push(point.to_string());
        (point == "import_chunk:200" && c.iter().filter(|p| *p == point).count() == 1)
            .then(|| "worker stopped".to_string())
    }))
    .await;
    let (_, token) = app.provisioned_merchant("bg-resume").await;
    let mut csv = String::from("Handle,Title,Variant Price,Variant SKU\n");
    for i in 0..450 {
        csv.push_str(&format!("r-{i},Resumed {i},3.00,R-{i}\n"));
    }
    let r = app
        .with_token(
            reqwest::Method::POST,
            "/api/v1/imports/products?background=true",
            &token,
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    // While stopped, the first chunk is committed and shown.
    let mut stopped = Value::Null;
    for _ in 0..200 {
        stopped = get_json(&app, &token, &location).await;
        if calls
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "import_chunk:200")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        stopped["products_done"].as_i64().unwrap() <= 200,
        "{stopped}"
    );
    // The job is retried (after its backoff) and finishes from the second chunk.
    let done = wait_for_import(&app, &token, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["created"], 450, "created once each: {done}");
    assert_eq!(done["updated"], 0, "nothing applied twice: {done}");
    assert_eq!(done["report"]["created"], 450);
    assert_eq!(
        *calls.lock().unwrap(),
        [
            "import_chunk:0",
            "import_chunk:200",
            "import_chunk:200",
            "import_chunk:400"
        ],
        "the committed first chunk was not redone"
    );
    let products: Value = get_json(&app, &token, "/api/v1/products?per_page=1").await;
    assert_eq!(products["pagination"]["total"], 450);
}

/// A background import parses and applies a chunk of products at a time; a product whose
/// handle comes back at the end of the file (after several chunks of other products) still
/// gets every variant, the products are applied in file order, and the report's rows and
/// counts are those of a direct import of the same file.
#[tokio::test]
async fn a_handle_that_comes_back_after_several_chunks_keeps_all_its_variants() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("bg-late").await;
    let mut csv =
        String::from("Handle,Title,Option1 Name,Option1 Value,Variant Price,Variant SKU\n");
    csv.push_str("late,Late Comer,Size,S,5.00,LATE-S\n");
    for i in 0..450 {
        csv.push_str(&format!("p-{i},Product {i},Size,S,2.00,P-{i}\n"));
    }
    // The late product's second variant, and a SKU repeated from the first chunk.
    csv.push_str("late,,,M,6.00,LATE-M\n");
    csv.push_str("dup,Dup,Size,S,1.00,P-3\n");
    let r = app
        .with_token(
            reqwest::Method::POST,
            "/api/v1/imports/products?background=true",
            &token,
        )
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let queued: Value = r.json().await.unwrap();
    assert_eq!(queued["products_total"], 452, "{queued}");
    let done = wait_for_import(&app, &token, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            &done["created"],
            &done["products_done"],
            &done["products_total"]
        ),
        (&json!(452), &json!(452), &json!(452)),
        "{done}"
    );
    let report = &done["report"];
    assert_eq!(
        (
            &report["products"],
            &report["variants"],
            &report["warnings"]
        ),
        (&json!(452), &json!(453), &json!(1)),
        "{report}"
    );
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(
        (&errors[0]["row"], &errors[0]["column"]),
        (&json!(454), &json!("Variant SKU"))
    );
    let late: Value = get_json(&app, &token, "/api/v1/products?q=late").await;
    let variants = late["data"][0]["variants"].as_array().unwrap();
    let skus: Vec<&str> = variants.iter().filter_map(|v| v["sku"].as_str()).collect();
    assert_eq!(skus, ["LATE-S", "LATE-M"], "{late}");

    // The same file imported directly into another store reports the same.
    let (_, token2) = app.provisioned_merchant("bg-late-direct").await;
    let r = app
        .with_token(reqwest::Method::POST, "/api/v1/imports/products", &token2)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let direct: Value = r.json().await.unwrap();
    for key in [
        "created", "products", "variants", "warnings", "failed", "errors",
    ] {
        assert_eq!(direct[key], report[key], "{key}: {direct}");
    }
}
