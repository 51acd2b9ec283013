//! Control-plane operations shared by the admin API, the CLI, the demo and the benchmark:
//! create merchants, activate them (start provisioning), bulk-import vendors and
//! import product catalogs.

use crate::domain::{Currency, DomainError, Subdomain};
use crate::import::products::{ParsedCatalog, parse_products};
use crate::import::vendors::parse_vendors;
use crate::import::{ImportError, RowError};
use crate::store::audit::Actor;
use crate::store::catalog::{ImageInput, ProductInput, VariantInput};
use crate::store::platform::{self, NewMerchant};
use crate::store::provisioning::{self as prov, Activation};
use crate::store::{Db, StoreError, TenantDb};
use crate::themes::Themes;
use serde::Serialize;
use std::collections::HashSet;
use uuid::Uuid;

/// Control-plane errors; the web layer maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown theme '{0}'")]
    UnknownTheme(String),
    #[error("unknown plan '{0}'")]
    UnknownPlan(String),
    #[error("{field}: {error}")]
    Invalid {
        field: &'static str,
        error: DomainError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Starts provisioning a pending merchant with `theme`, `plan` and `subdomain`
/// (`None`: the subdomain requested at creation, else one derived from the name).
/// Returns the provisioning run id at once; the work happens in the job worker.
pub async fn activate(
    db: &Db,
    actor: &Actor,
    themes: &Themes,
    merchant: Uuid,
    theme: &str,
    plan: &str,
    subdomain: Option<&str>,
) -> Result<Uuid, ControlError> {
    let t = themes
        .get(theme)
        .ok_or_else(|| ControlError::UnknownTheme(theme.to_string()))?;
    let p = platform::get_plan(db, plan)
        .await?
        .ok_or_else(|| ControlError::UnknownPlan(plan.to_string()))?;
    let m = platform::get_merchant(db, merchant)
        .await?
        .ok_or(StoreError::NotFound)?;
    let handle = match subdomain.or(m.handle.as_deref()) {
        Some(s) => Subdomain::parse(s).map_err(|error| ControlError::Invalid {
            field: "subdomain",
            error,
        })?,
        None => free_subdomain(db, &m.name).await?,
    };
    let limits = serde_json::json!({ "max_products": p.max_products, "max_staff": p.max_staff, "features": serde_json::from_str::<serde_json::Value>(&p.features).unwrap_or_default() });
    let run = prov::start_run(
        db,
        actor,
        &Activation {
            tenant: merchant,
            plan_id: p.id,
            theme_id: t.manifest.id.clone(),
            handle,
            theme_settings: serde_json::Value::Object(t.default_settings()).to_string(),
            limits: limits.to_string(),
        },
    )
    .await?;
    Ok(run)
}

/// Derives a free subdomain from a name (`-2`, `-3`… when taken).
pub async fn free_subdomain(db: &Db, name: &str) -> Result<Subdomain, ControlError> {
    let mut base = Subdomain::slugify(name);
    if Subdomain::parse(&base).is_err() {
        base = format!("{base}-shop").trim_start_matches('-').to_string();
    }
    base.truncate(56);
    for n in 1..1000 {
        let cand = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        if let Ok(s) = Subdomain::parse(&cand)
            && !platform::handle_taken(db, s.as_str()).await?
        {
            return Ok(s);
        }
    }
    Err(ControlError::Invalid {
        field: "subdomain",
        error: DomainError::new(
            "subdomain_taken",
            "no free subdomain could be derived from the name",
        ),
    })
}

/// One failed row of a bulk import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedRow {
    /// 1-based line of the record in the file (the header is row 1).
    pub row: usize,
    pub column: Option<String>,
    pub reason: String,
}

/// A created merchant of a bulk vendor import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedMerchant {
    pub row: usize,
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
}

/// Summary of a bulk vendor import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VendorImportReport {
    pub total_rows: usize,
    pub created: usize,
    pub failed: usize,
    pub merchants: Vec<CreatedMerchant>,
    pub errors: Vec<FailedRow>,
}

impl From<RowError> for FailedRow {
    fn from(e: RowError) -> Self {
        Self {
            row: e.row,
            column: e.column,
            reason: e.message,
        }
    }
}

/// Creates and activates one merchant per valid row of a bulk vendor CSV. Invalid rows
/// are reported with row, column and reason; valid rows around them are still created.
/// `progress(done, total)` is called after each row.
pub async fn import_vendors(
    db: &Db,
    actor: &Actor,
    themes: &Themes,
    bytes: &[u8],
    theme: &str,
    plan: &str,
    mut progress: impl FnMut(usize, usize),
) -> Result<VendorImportReport, ControlError> {
    themes
        .get(theme)
        .ok_or_else(|| ControlError::UnknownTheme(theme.to_string()))?;
    platform::get_plan(db, plan)
        .await?
        .ok_or_else(|| ControlError::UnknownPlan(plan.to_string()))?;
    let taken: HashSet<String> = platform::all_handles(db).await?.into_iter().collect();
    let parsed = parse_vendors(bytes, &|s: &str| taken.contains(s))?;
    let mut report = VendorImportReport {
        total_rows: parsed.total,
        created: 0,
        failed: 0,
        merchants: vec![],
        errors: parsed.errors.into_iter().map(FailedRow::from).collect(),
    };
    let existing: HashSet<(String, String)> =
        platform::merchant_keys(db).await?.into_iter().collect();
    let total = parsed.rows.len();
    for (i, row) in parsed.rows.into_iter().enumerate() {
        if existing.contains(&(
            row.vendor_name.to_lowercase(),
            row.owner_email.as_str().to_string(),
        )) {
            report.errors.push(FailedRow {
                row: row.row,
                column: Some("vendor_name".into()),
                reason: format!(
                    "merchant '{}' with owner {} already exists",
                    row.vendor_name, row.owner_email
                ),
            });
            progress(i + 1, total);
            continue;
        }
        let password_hash = match &row.initial_password {
            Some(p) => Some(crate::auth::hash_password_async(p).await.map_err(|e| {
                ControlError::Invalid {
                    field: "initial_password",
                    error: DomainError::new("invalid_password", e),
                }
            })?),
            None => None,
        };
        let new = NewMerchant {
            name: row.vendor_name.clone(),
            owner_name: row.owner_name.clone(),
            owner_email: row.owner_email.clone(),
            owner_phone: row.owner_phone.clone(),
            business_address: row.business_address.clone(),
            business_city: row.business_city.clone(),
            business_postal_code: row.business_postal_code.clone(),
            business_country: row.business_country.clone(),
            currency: Currency::EUR,
            handle: Some(row.subdomain.clone()),
            initial_password_hash: password_hash,
        };
        let res = async {
            let m = platform::create_merchant(db, actor, &new).await?;
            activate(
                db,
                actor,
                themes,
                m.id,
                theme,
                plan,
                Some(row.subdomain.as_str()),
            )
            .await?;
            Ok::<_, ControlError>(m.id)
        }
        .await;
        match res {
            Ok(id) => report.merchants.push(CreatedMerchant {
                row: row.row,
                id,
                name: row.vendor_name,
                subdomain: row.subdomain.to_string(),
            }),
            Err(ControlError::Store(StoreError::Conflict { field, message })) => {
                report.errors.push(FailedRow {
                    row: row.row,
                    column: Some(if field == "subdomain" {
                        "subdomain".into()
                    } else {
                        field.to_string()
                    }),
                    reason: message,
                })
            }
            Err(e) => return Err(e),
        }
        progress(i + 1, total);
    }
    report.errors.sort_by_key(|e| e.row);
    report.created = report.merchants.len();
    report.failed = report
        .errors
        .iter()
        .map(|e| e.row)
        .collect::<HashSet<_>>()
        .len();
    Ok(report)
}

/// Summary of a product import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductImportReport {
    /// `shopify_legacy`, `shopify2024` or `woo_commerce`.
    pub format: crate::import::products::Dialect,
    pub rows: usize,
    pub products: usize,
    pub variants: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
    pub errors: Vec<FailedRow>,
}

/// Imports a Shopify (legacy or 2024+) or WooCommerce product CSV into one tenant.
/// Products are matched by handle, so re-importing updates instead of duplicating.
pub async fn import_products(
    scope: &TenantDb,
    actor: &Actor,
    bytes: &[u8],
    currency: &str,
    max_products: i64,
) -> Result<ProductImportReport, ControlError> {
    let cur = Currency::parse(currency).unwrap_or(Currency::EUR);
    let ParsedCatalog {
        dialect,
        products,
        errors,
        rows,
    } = parse_products(bytes, cur)?;
    let mut report = ProductImportReport {
        format: dialect,
        rows,
        products: products.len(),
        variants: products.iter().map(|p| p.variants.len()).sum(),
        created: 0,
        updated: 0,
        failed: 0,
        errors: errors.into_iter().map(FailedRow::from).collect(),
    };
    let inputs: Vec<ProductInput> = products
        .iter()
        .map(|p| ProductInput {
            handle: p.handle.clone(),
            title: p.title.clone(),
            body_html: p.body_html.clone(),
            vendor: p.vendor.clone(),
            product_type: p.product_type.clone(),
            tags: p.tags.clone(),
            status: p.status,
            options: p.options.clone(),
            featured: false,
            variants: p
                .variants
                .iter()
                .map(|v| VariantInput {
                    sku: v.sku.clone(),
                    option_values: v.option_values.clone(),
                    price_minor: v.price_minor,
                    compare_at_minor: v.compare_at_minor,
                    inventory: v.inventory,
                    barcode: v.barcode.clone(),
                    weight_grams: v.weight_grams,
                })
                .collect(),
            images: p
                .images
                .iter()
                .map(|i| ImageInput {
                    url: i.url.clone(),
                    alt: i.alt.clone(),
                })
                .collect(),
            // "Clothing > Tshirts" becomes the collection `clothing-tshirts` titled "Tshirts".
            collections: p
                .categories
                .iter()
                .filter_map(|c| {
                    let title = c.rsplit('>').next().unwrap_or(c).trim().to_string();
                    crate::domain::Handle::from_title(c)
                        .ok()
                        .map(|h| (h, title))
                })
                .collect(),
        })
        .collect();
    let mut seen_skus: HashSet<String> = HashSet::new();
    let mut ok_inputs = Vec::with_capacity(inputs.len());
    let mut ok_rows = Vec::with_capacity(inputs.len());
    for (i, mut input) in inputs.into_iter().enumerate() {
        // A SKU repeated inside one file: keep the first, drop the SKU on later variants.
        for v in input.variants.iter_mut() {
            if let Some(s) = &v.sku
                && !seen_skus.insert(s.as_str().to_string())
            {
                report.errors.push(FailedRow {
                    row: products[i].row,
                    column: Some("SKU".into()),
                    reason: format!("SKU '{}' appears more than once in the file; kept on its first product only", s.as_str()),
                });
                v.sku = None;
            }
        }
        ok_rows.push(products[i].row);
        ok_inputs.push(input);
    }
    let out = scope
        .upsert_products(actor, &ok_inputs, currency, max_products)
        .await?;
    report.created = out.created;
    report.updated = out.updated;
    for (i, reason) in out.failed {
        report.errors.push(FailedRow {
            row: ok_rows[i],
            column: None,
            reason,
        });
    }
    report.errors.sort_by_key(|e| e.row);
    report.failed = report
        .errors
        .iter()
        .map(|e| e.row)
        .collect::<HashSet<_>>()
        .len();
    Ok(report)
}

/// Reads the product limit of a tenant's plan snapshot (`-1` = unlimited).
pub async fn max_products(db: &Db, tenant: Uuid) -> Result<i64, ControlError> {
    plan_limit(db, tenant, "max_products").await
}

/// A numeric limit recorded from the plan at activation (`max_products`, `max_staff`);
/// -1 when unlimited or unknown.
pub async fn plan_limit(db: &Db, tenant: Uuid, name: &str) -> Result<i64, ControlError> {
    let m = platform::get_merchant(db, tenant)
        .await?
        .ok_or(StoreError::NotFound)?;
    let limits: serde_json::Value = serde_json::from_str(&m.limits).unwrap_or_default();
    Ok(limits.get(name).and_then(|v| v.as_i64()).unwrap_or(-1))
}
