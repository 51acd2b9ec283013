//! Control-plane operations shared by the admin API, the CLI, the demo and the benchmark:
//! create merchants, activate them (start provisioning), bulk-import vendors and
//! import product catalogs.

use crate::domain::{Currency, DomainError, Subdomain};
use crate::import::products::{ImportProduct, ProductStream};
use crate::import::vendors::parse_vendors;
use crate::import::{ImportError, RowError};
use crate::store::audit::Actor;
use crate::store::catalog::{ImageInput, ProductInput, Seo, VariantInput};
use crate::store::platform::{self, NewMerchant};
use crate::store::provisioning::{self as prov, Activation};
use crate::store::{Db, StoreError, TenantDb};
use crate::themes::Themes;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Test hook for provisioning steps and import chunks: called with the step's or chunk's
/// name (`"import_chunk:3"`), returns `Some(error)` to make that attempt fail. Defined
/// here, below `provision`, so the dependency between the two runs one way.
pub type FaultHook = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Control-plane errors; the web layer maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown theme '{0}'")]
    UnknownTheme(String),
    #[error("theme '{0}' is disabled")]
    DisabledTheme(String),
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
    /// A background job stopped before its end (the worker's test hook; a real crash
    /// simply ends the process). The job is retried from its last committed step.
    #[error("interrupted: {0}")]
    Interrupted(String),
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
    let settings = theme_and_plan(db, themes, theme, plan).await?;
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
    let a = activation(&settings, merchant, handle);
    Ok(prov::start_run(db, actor, &a).await?)
}

/// The theme and plan an activation uses, looked up once (a bulk import reuses them for
/// every row). Errors: `UnknownTheme`, `DisabledTheme`, `UnknownPlan`.
async fn theme_and_plan(
    db: &Db,
    themes: &Themes,
    theme: &str,
    plan: &str,
) -> Result<(std::sync::Arc<crate::themes::Theme>, platform::Plan), ControlError> {
    let t = enabled_theme(themes, theme)?;
    let p = platform::get_plan(db, plan)
        .await?
        .ok_or_else(|| ControlError::UnknownPlan(plan.to_string()))?;
    Ok((t, p))
}

/// The provisioning settings of activating `merchant` on `handle` with theme `t` and plan `p`.
fn activation(
    (t, p): &(std::sync::Arc<crate::themes::Theme>, platform::Plan),
    merchant: Uuid,
    handle: Subdomain,
) -> Activation {
    let limits = serde_json::json!({ "max_products": p.max_products, "max_staff": p.max_staff, "features": serde_json::from_str::<serde_json::Value>(&p.features).unwrap_or_default() });
    Activation {
        tenant: merchant,
        plan_id: p.id.clone(),
        theme_id: t.manifest.id.clone(),
        handle,
        theme_settings: serde_json::Value::Object(t.default_settings()).to_string(),
        limits: limits.to_string(),
    }
}

/// A theme that may be chosen for a new activation. Errors: `UnknownTheme`,
/// `DisabledTheme`.
fn enabled_theme(
    themes: &Themes,
    id: &str,
) -> Result<std::sync::Arc<crate::themes::Theme>, ControlError> {
    themes.get_enabled(id).ok_or_else(|| {
        if themes.is_disabled(id) {
            ControlError::DisabledTheme(id.to_string())
        } else {
            ControlError::UnknownTheme(id.to_string())
        }
    })
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
    /// The record number a spreadsheet shows (the header is row 1, each CSV record one
    /// more, a multi-line quoted cell still one record).
    pub row: usize,
    /// 1-based physical line of the file where that record starts (0 when unknown).
    #[serde(default)]
    pub line: usize,
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
    /// `created` (new merchant, provisioning started), `resumed` (the merchant existed from
    /// an earlier, interrupted upload of this row and was still pending: now activated) or
    /// `already_provisioned` (it existed and was already activated: nothing done).
    pub outcome: VendorOutcome,
    /// The store's first marketplace feed source, created from the row's
    /// `letzshop_csv_url` together with the merchant (`null`: the row had none, or the
    /// merchant existed before this upload).
    pub feed_source: Option<CreatedFeedSource>,
}

/// A feed source a vendor import created (see [`CreatedMerchant::feed_source`]).
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CreatedFeedSource {
    pub id: Uuid,
    pub url: String,
    /// Guessed from the URL (`/fr/`, `_fr.`, `lang=fr`, …), else `de`.
    pub language: String,
}

/// The language of a Letzshop feed URL: `fr`, `en` or `lb` when the URL says so
/// (`/fr/`, `_fr.`, `-fr.`, `lang=fr`, `locale=fr`), else `de`.
pub fn feed_language_of(url: &str) -> String {
    let u = url.to_ascii_lowercase();
    for l in ["fr", "en", "lb", "de"] {
        if [
            format!("/{l}/"),
            format!("_{l}."),
            format!("-{l}."),
            format!("lang={l}"),
            format!("locale={l}"),
            format!("language={l}"),
        ]
        .iter()
        .any(|p| u.contains(p.as_str()))
        {
            return l.to_string();
        }
    }
    "de".into()
}

/// What a bulk vendor import did with a valid row (see [`CreatedMerchant::outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VendorOutcome {
    Created,
    Resumed,
    AlreadyProvisioned,
}

/// Summary of a bulk vendor import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VendorImportReport {
    pub total_rows: usize,
    /// Merchants created or resumed (activated) by this import.
    pub created: usize,
    /// Rows whose merchant (same name and owner e-mail) was already activated by an
    /// earlier upload: listed in `merchants`, not counted as failed.
    #[serde(default)]
    pub already_provisioned: usize,
    pub failed: usize,
    pub merchants: Vec<CreatedMerchant>,
    pub errors: Vec<FailedRow>,
    /// Notes on rows that were still imported (an explicit subdomain normalised, …).
    #[serde(default)]
    pub warnings: Vec<FailedRow>,
}

impl From<RowError> for FailedRow {
    fn from(e: RowError) -> Self {
        Self {
            row: e.row,
            line: e.line,
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
    let settings = theme_and_plan(db, themes, theme, plan).await?;
    // A re-upload of a file whose import was interrupted finds some of its merchants
    // already made: their subdomains are theirs, not taken.
    let known: HashMap<(String, String), platform::VendorKey> = platform::vendor_keys(db)
        .await?
        .into_iter()
        .map(|k| ((k.name.to_lowercase(), k.owner_email.clone()), k))
        .collect();
    let in_file: HashSet<(String, String)> = parse_vendors(bytes, &|_| false)?
        .rows
        .iter()
        .map(|r| {
            (
                r.vendor_name.to_lowercase(),
                r.owner_email.as_str().to_string(),
            )
        })
        .collect();
    let taken: HashSet<String> = known
        .iter()
        .filter(|(key, _)| !in_file.contains(*key))
        .filter_map(|(_, k)| k.handle.clone())
        .collect();
    let parsed = parse_vendors(bytes, &|s: &str| taken.contains(s))?;
    let lines = parsed.lines.clone();
    let mut report = VendorImportReport {
        total_rows: parsed.total,
        created: 0,
        already_provisioned: 0,
        failed: 0,
        merchants: vec![],
        errors: parsed.errors.into_iter().map(FailedRow::from).collect(),
        warnings: parsed.warnings.into_iter().map(FailedRow::from).collect(),
    };
    let total = parsed.rows.len();
    for (i, row) in parsed.rows.into_iter().enumerate() {
        let key = (
            row.vendor_name.to_lowercase(),
            row.owner_email.as_str().to_string(),
        );
        let res = match known.get(&key) {
            Some(k) if k.status != "pending" => Ok((
                k.id,
                VendorOutcome::AlreadyProvisioned,
                k.handle.clone().unwrap_or_default(),
                None,
            )),
            Some(k) => {
                // Created by an earlier upload that stopped before activating it.
                let handle = match k.handle.as_deref().map(Subdomain::parse) {
                    Some(Ok(h)) => h,
                    _ => row.subdomain.clone(),
                };
                let sub = handle.to_string();
                async {
                    let a = activation(&settings, k.id, handle);
                    prov::start_run(db, actor, &a).await?;
                    Ok::<_, ControlError>((k.id, VendorOutcome::Resumed, sub, None))
                }
                .await
            }
            None => {
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
                    currency: row.currency,
                    handle: Some(row.subdomain.clone()),
                    initial_password_hash: password_hash,
                };
                // Created and activated in one transaction: a crash leaves either nothing
                // or a merchant whose provisioning is queued.
                async {
                    let mut tx = db.begin().await?;
                    let id = platform::create_merchant_tx(&mut tx, actor, &new).await?;
                    let a = activation(&settings, id, row.subdomain.clone());
                    prov::start_run_tx(&mut tx, actor, &a).await?;
                    // The row's Letzshop feed becomes the store's first feed source.
                    let mut feed = None;
                    if let Some(url) = &row.letzshop_csv_url {
                        let language = feed_language_of(url);
                        let source = TenantDb::new(db.clone(), id)
                            .create_feed_source_tx(
                                &mut tx,
                                actor,
                                &crate::store::feeds::NewSource {
                                    marketplace: "letzshop".into(),
                                    name: "Letzshop".into(),
                                    schedule: "daily".into(),
                                    enabled: true,
                                    default_language: language.clone(),
                                    draft_on_disappear: true,
                                    files: vec![(language.clone(), Some(url.clone()))],
                                },
                            )
                            .await?;
                        feed = Some(CreatedFeedSource {
                            id: source,
                            url: url.clone(),
                            language,
                        });
                    }
                    tx.commit().await?;
                    Ok::<_, ControlError>((
                        id,
                        VendorOutcome::Created,
                        row.subdomain.to_string(),
                        feed,
                    ))
                }
                .await
            }
        };
        match res {
            Ok((id, outcome, subdomain, feed_source)) => report.merchants.push(CreatedMerchant {
                row: row.row,
                id,
                name: row.vendor_name,
                subdomain,
                outcome,
                feed_source,
            }),
            Err(ControlError::Store(StoreError::Conflict { field, message })) => {
                report.errors.push(FailedRow {
                    row: row.row,
                    line: 0,
                    column: Some(field.to_string()),
                    reason: message,
                })
            }
            Err(e) => return Err(e),
        }
        progress(i + 1, total);
    }
    for e in &mut report.errors {
        if e.line == 0 {
            e.line = lines.get(&e.row).copied().unwrap_or(e.row);
        }
    }
    report.errors.sort_by_key(|e| e.row);
    report.already_provisioned = report
        .merchants
        .iter()
        .filter(|m| m.outcome == VendorOutcome::AlreadyProvisioned)
        .count();
    report.created = report.merchants.len() - report.already_provisioned;
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
    /// Existing products (same handle) that the file changed.
    pub updated: usize,
    /// Existing products the file left exactly as they were (nothing written,
    /// `updated_at` kept).
    pub unchanged: usize,
    /// Rows not imported at all (their variant or product was refused; see `errors`).
    pub failed: usize,
    /// Rows imported with a problem noted in `errors` (a repeated SKU dropped, an image or
    /// barcode skipped, a value replaced by its default).
    #[serde(default)]
    pub warnings: usize,
    /// What an update of an existing product takes from this file: the fields whose
    /// columns it has (`title`, `price`, `inventory`, …); the others keep their stored values.
    #[serde(default)]
    pub updates: Vec<String>,
    /// The file lacks price or option columns: it updates the variants it lists (matched
    /// by SKU, else option values) and keeps the stored variants it does not list; without
    /// a price column it creates no product or variant (each such row is an error naming
    /// the price column).
    #[serde(default)]
    pub partial: bool,
    pub errors: Vec<FailedRow>,
    /// True for a preview (`?dry_run=true`): nothing was written.
    pub dry_run: bool,
    /// Headers of the file's columns the import read, in file order.
    #[serde(default)]
    pub columns_used: Vec<String>,
    /// Headers of the file's columns it did not use (their values were not imported), e.g.
    /// Shopify Markets `Price / <market>` or `Google Shopping / …`: no column disappears
    /// without being named here.
    #[serde(default)]
    pub columns_ignored: Vec<String>,
    /// Notes about the file as a whole that did not stop the import: an encoding that was
    /// converted ("the file was Windows-1252, not UTF-8; converted to UTF-8 …"), a
    /// semicolon or tab delimiter that was detected.
    #[serde(default)]
    pub file_warnings: Vec<String>,
    /// Preview only: per product of the file, whether the import would create it, update it
    /// (and which fields would change) or leave it unchanged, in file order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ProductChange>>,
    /// Preview only: products the import would create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_create: Option<usize>,
    /// Preview only: existing products (same handle) the import would update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_update: Option<usize>,
    /// Preview only: how many of `would_update` the file would leave exactly as they are
    /// (their `changes` entry says `unchanged`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_leave_unchanged: Option<usize>,
    /// Preview only: the kept upload, to confirm with
    /// `POST /api/v1/imports/products/pending/{id}` within an hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_import_id: Option<Uuid>,
}

/// What a preview says an import would do with one product of the file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductChange {
    /// Row of the product's first record (header = 1).
    pub row: usize,
    /// Physical line where that record starts.
    pub line: usize,
    pub handle: String,
    /// `create`, `update` or `unchanged`.
    pub action: &'static str,
    /// For `update`: the fields that would change (`title`, `description`, `price`,
    /// `inventory_quantity`, `barcode`, `variants` when variants are added or removed, …);
    /// empty otherwise.
    pub fields: Vec<&'static str>,
}

/// The fields of stored product `p` that writing `input` (already merged with it) would
/// change; empty when the import would leave it as it is. Variants are paired as the import
/// pairs them (SKU, else option values, else position).
fn changed_fields(input: &ProductInput, p: &crate::store::catalog::Product) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut add = |on: bool, name: &'static str| {
        if on && !out.contains(&name) {
            out.push(name);
        }
    };
    add(input.title != p.title, "title");
    add(input.body_html != p.body_html, "description");
    add(input.vendor != p.vendor, "vendor");
    add(input.product_type != p.product_type, "type");
    add(input.tags != p.tags, "tags");
    add(input.status != p.status, "status");
    add(input.options != p.options, "options");
    add(
        input
            .seo
            .as_ref()
            .is_some_and(|s| s.title != p.seo_title || s.description != p.seo_description),
        "seo",
    );
    add(
        input
            .attributes
            .as_ref()
            .is_some_and(|a| *a != p.attributes),
        "attributes",
    );
    let images_differ = input.images.len() != p.images.len()
        || input
            .images
            .iter()
            .zip(&p.images)
            .any(|(a, b)| a.url != b.url || a.alt != b.alt);
    add(images_differ, "images");
    let mut used = vec![false; p.variants.len()];
    for (j, v) in input.variants.iter().enumerate() {
        let free = |k: &usize| !used[*k];
        let k = (0..p.variants.len())
            .filter(free)
            .find(|&k| {
                v.sku.is_some()
                    && p.variants[k].sku.as_deref() == v.sku.as_ref().map(|s| s.as_str())
            })
            .or_else(|| {
                (0..p.variants.len())
                    .filter(free)
                    .find(|&k| p.variants[k].option_values == v.option_values)
            })
            .or_else(|| Some(j).filter(|j| *j < used.len() && !used[*j]));
        let Some(k) = k else {
            add(true, "variants");
            continue;
        };
        used[k] = true;
        let sv = &p.variants[k];
        add(
            sv.sku.as_deref() != v.sku.as_ref().map(|s| s.as_str()),
            "sku",
        );
        add(sv.option_values != v.option_values, "option_values");
        add(sv.price.amount_minor != v.price_minor, "price");
        add(
            sv.compare_at_price.as_ref().map(|m| m.amount_minor) != v.compare_at_minor,
            "compare_at_price",
        );
        add(sv.inventory_quantity != v.inventory, "inventory_quantity");
        add(
            sv.inventory_policy != v.inventory_policy,
            "inventory_policy",
        );
        add(
            sv.inventory_tracked != v.inventory_tracked,
            "inventory_tracked",
        );
        add(sv.barcode != v.barcode, "barcode");
        add(sv.weight_grams != v.weight_grams, "weight_grams");
    }
    add(used.iter().any(|u| !u), "variants");
    out
}

/// A product CSV being imported a chunk at a time, so that a large file's products are
/// never all in memory: parsed by a [`ProductStream`], each chunk of products turned into
/// inputs and merged with the store's products of the
/// same handles ([`merge_product`]), with the per-row errors found so far. Rows of every
/// input handed out are kept (a few numbers per product) for the report.
struct ChunkedImport<'b> {
    stream: ProductStream<'b>,
    /// Counts, columns and the errors of the conversion and the merge so far (the parse's
    /// own row errors join them in [`ChunkedImport::finish`]).
    report: ProductImportReport,
    /// The fields the file carries.
    columns: crate::import::products::Columns,
    /// CSV row of each input handed out (for error reports).
    rows: Vec<usize>,
    /// CSV row of each variant of each input (for the preview's SKU errors), then the
    /// input's variant-less rows.
    variant_rows: Vec<Vec<usize>>,
    /// Per input: whether its first row carried a variant (imported or refused).
    first_row_tried: Vec<bool>,
}

/// Inputs `first..first + inputs.len()` of a [`ChunkedImport`].
struct InputChunk {
    inputs: Vec<ProductInput>,
    first: usize,
    /// The store's products of the chunk's handles, when asked for (the preview compares
    /// them).
    stored: HashMap<String, crate::store::catalog::Product>,
}

/// Products parsed, merged and (by a background import) applied at a time; also the
/// handles whose stored products one query loads.
const MERGE_BATCH: usize = IMPORT_CHUNK;

impl<'b> ChunkedImport<'b> {
    /// Reads `bytes` once (whole-file errors: [`ControlError::Import`]); the inputs come
    /// from [`ChunkedImport::next`].
    fn new(bytes: &'b [u8], currency: &str) -> Result<Self, ControlError> {
        let cur = Currency::parse(currency).unwrap_or(Currency::EUR);
        Ok(Self::of(ProductStream::new(bytes, cur)?))
    }

    fn of(stream: ProductStream<'b>) -> Self {
        let columns = stream.columns();
        let report = ProductImportReport {
            format: stream.dialect(),
            rows: 0,
            products: 0,
            variants: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            failed: 0,
            warnings: 0,
            updates: columns
                .updated_fields()
                .into_iter()
                .map(str::to_string)
                .collect(),
            partial: columns.partial(),
            errors: vec![],
            dry_run: false,
            columns_used: vec![],
            columns_ignored: vec![],
            file_warnings: vec![],
            changes: None,
            would_create: None,
            would_update: None,
            would_leave_unchanged: None,
            pending_import_id: None,
        };
        Self {
            stream,
            report,
            columns,
            rows: vec![],
            variant_rows: vec![],
            first_row_tried: vec![],
        }
    }

    /// The next chunk of inputs (from the next [`MERGE_BATCH`] products of the file; it
    /// may be empty when the merge refused them all), `None` at the end of the file.
    ///
    /// The merge fills what the file does not say from the store: for each input whose
    /// handle is an existing product, fields of absent columns keep their stored values (a
    /// stock-sync file with only `Handle, Title, Variant SKU, Variant Inventory Qty`
    /// changes only the quantities), `featured` is kept (no CSV column sets it), and its
    /// variants are matched to the stored ones by SKU, else option values. In a partial
    /// file (no price or no option columns) stored variants the file does not list are
    /// kept; a variant the store does not have, or a new product, needs a price: without
    /// the column it is a row error and is left out. `keep_stored` returns the stored
    /// products in the chunk.
    async fn next(
        &mut self,
        scope: &TenantDb,
        keep_stored: bool,
    ) -> Result<Option<InputChunk>, ControlError> {
        let products = self.stream.next_chunk(MERGE_BATCH);
        if products.is_empty() {
            return Ok(None);
        }
        self.report.products += products.len();
        self.report.variants += products.iter().map(|p| p.variants.len()).sum::<usize>();
        let mut batch = Vec::with_capacity(products.len());
        for p in products {
            let row = p.row;
            let tried = p.first_row_variant;
            let variant_rows: Vec<usize> = p
                .variants
                .iter()
                .map(|v| v.row)
                .chain(p.extra_rows.iter().copied())
                .collect();
            // A SKU repeated inside the file is already dropped by the parser (a row error
            // at the later variant), so the inputs' SKUs are unique.
            let input = to_input(p);
            batch.push((input, row, variant_rows, tried));
        }
        let handles: Vec<&str> = batch.iter().map(|(p, ..)| p.handle.as_str()).collect();
        let stored = scope.products_by_handles(&handles).await?;
        let cols = self.columns;
        let first = self.rows.len();
        let mut inputs = Vec::with_capacity(batch.len());
        for (mut input, row, variant_rows, tried) in batch {
            match stored.get(input.handle.as_str()) {
                None if !cols.price => {
                    self.report.errors.push(FailedRow {
                        row,
                        line: 0,
                        column: Some(cols.price_header.to_string()),
                        reason: format!(
                            "product '{}' is not in the store and the file has no '{}' column: a new product needs a price; not imported",
                            input.handle, cols.price_header
                        ),
                    });
                    continue;
                }
                None => {}
                Some(p) => {
                    merge_product(&mut input, p, &cols, &variant_rows, &mut self.report.errors);
                    if input.variants.is_empty() {
                        continue;
                    }
                }
            }
            self.rows.push(row);
            self.variant_rows.push(variant_rows);
            self.first_row_tried.push(tried);
            inputs.push(input);
        }
        Ok(Some(InputChunk {
            inputs,
            first,
            stored: if keep_stored { stored } else { HashMap::new() },
        }))
    }

    /// Inputs handed out so far.
    fn len(&self) -> usize {
        self.rows.len()
    }

    /// The report once every chunk was handed out (rows, columns, notes, every row error
    /// so far: the parse's first, then the conversion's and the merge's) and the rows of
    /// the inputs, for [`finish_report`].
    fn finish(self) -> (ProductImportReport, PreparedRows) {
        let Self {
            stream,
            mut report,
            rows,
            variant_rows,
            first_row_tried,
            ..
        } = self;
        let end = stream.finish();
        report.rows = end.rows;
        report.columns_used = end.columns_used;
        report.columns_ignored = end.columns_ignored;
        report.file_warnings = end.notes;
        let mut errors: Vec<FailedRow> = end.errors.into_iter().map(FailedRow::from).collect();
        errors.append(&mut report.errors);
        report.errors = errors;
        let prepared = PreparedRows::new(rows, variant_rows, &first_row_tried, end.lines);
        (report, prepared)
    }
}

/// A parsed product as the store's input ("Clothing > Tshirts" becomes the collection
/// `clothing-tshirts` titled "Tshirts").
fn to_input(p: ImportProduct) -> ProductInput {
    ProductInput {
        handle: p.handle,
        title: p.title,
        body_html: p.body_html,
        vendor: p.vendor,
        product_type: p.product_type,
        tags: p.tags,
        status: p.status,
        options: p.options,
        featured: false,
        seo: p.seo.map(|(title, description)| Seo { title, description }),
        attributes: Some(p.attributes),
        variants: p
            .variants
            .into_iter()
            .map(|v| VariantInput {
                sku: v.sku,
                option_values: v.option_values,
                price_minor: v.price_minor,
                compare_at_minor: v.compare_at_minor,
                inventory: v.inventory,
                inventory_policy: v.inventory_policy,
                inventory_tracked: v.inventory_tracked,
                barcode: v.barcode,
                weight_grams: v.weight_grams,
            })
            .collect(),
        images: p
            .images
            .into_iter()
            .map(|i| ImageInput {
                url: i.url,
                alt: i.alt,
            })
            .collect(),
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
    }
}

/// [`ChunkedImport::next`]'s merge of one product `p` already in the store.
fn merge_product(
    input: &mut ProductInput,
    p: &crate::store::catalog::Product,
    cols: &crate::import::products::Columns,
    variant_rows: &[usize],
    errors: &mut Vec<FailedRow>,
) {
    input.featured = p.featured;
    if !cols.body {
        input.body_html = p.body_html.clone();
    }
    if !cols.vendor {
        input.vendor = p.vendor.clone();
    }
    if !cols.product_type {
        input.product_type = p.product_type.clone();
    }
    if !cols.tags {
        input.tags = p.tags.clone();
    }
    if !cols.status {
        input.status = p.status;
    }
    if !cols.options {
        input.options = p.options.clone();
    }
    if !cols.attributes {
        input.attributes = None;
    }
    if !cols.images {
        input.images = p
            .images
            .iter()
            .map(|i| ImageInput {
                url: i.url.clone(),
                alt: i.alt.clone(),
            })
            .collect();
    }
    let mut used = vec![false; p.variants.len()];
    // Per merged variant: the stored variant it matched, if any.
    let mut matched_to: Vec<Option<usize>> = Vec::with_capacity(input.variants.len());
    let mut merged = Vec::with_capacity(input.variants.len());
    for (j, v) in input.variants.drain(..).enumerate() {
        let by_sku = v.sku.as_ref().and_then(|s| {
            p.variants
                .iter()
                .enumerate()
                .position(|(k, sv)| !used[k] && sv.sku.as_deref() == Some(s.as_str()))
        });
        let found = by_sku.or_else(|| {
            // A single-variant product without options (a WooCommerce simple product, a
            // Shopify `Default Title` one) is its own match even without option columns.
            let only = p.variants.len() == 1
                && !used[0]
                && p.variants[0].option_values.is_empty()
                && v.option_values.is_empty()
                && (v.sku.is_none() || p.variants[0].sku.is_none());
            (cols.options || only)
                .then(|| {
                    p.variants
                        .iter()
                        .enumerate()
                        .position(|(k, sv)| !used[k] && sv.option_values == v.option_values)
                })
                .flatten()
        });
        let Some(k) = found else {
            if cols.price {
                merged.push(v);
                matched_to.push(None);
            } else {
                errors.push(FailedRow {
                    row: variant_rows.get(j).copied().unwrap_or(0),
                    line: 0,
                    column: Some(cols.price_header.to_string()),
                    reason: format!(
                        "variant {} of '{}' is not in the store and the file has no '{}' column; not imported",
                        v.sku.as_ref().map_or_else(|| v.option_values.join(" / "), |s| s.as_str().to_string()),
                        input.handle, cols.price_header
                    ),
                });
            }
            continue;
        };
        used[k] = true;
        let sv = &p.variants[k];
        let mut v = v;
        if !cols.options {
            v.option_values = sv.option_values.clone();
        }
        if !cols.price {
            v.price_minor = sv.price.amount_minor;
        }
        if !cols.compare_at {
            v.compare_at_minor = sv.compare_at_price.as_ref().map(|m| m.amount_minor);
        }
        if !cols.inventory {
            v.inventory = sv.inventory_quantity;
        }
        if !cols.tracked {
            v.inventory_tracked = sv.inventory_tracked;
        }
        if !cols.policy {
            v.inventory_policy = sv.inventory_policy;
        }
        if !cols.barcode {
            v.barcode = sv.barcode.clone();
        }
        if !cols.weight {
            v.weight_grams = sv.weight_grams;
        }
        if v.sku.is_none() {
            v.sku = sv
                .sku
                .as_deref()
                .and_then(|s| crate::domain::Sku::parse(s).ok());
        }
        merged.push(v);
        matched_to.push(Some(k));
    }
    if cols.partial() {
        // The stored variants in their order, those the file lists updated, then new ones.
        let mut by_stored: Vec<Option<VariantInput>> = vec![None; p.variants.len()];
        let mut added = vec![];
        for (v, m) in merged.into_iter().zip(matched_to) {
            match m {
                Some(k) => by_stored[k] = Some(v),
                None => added.push(v),
            }
        }
        let mut out = Vec::with_capacity(p.variants.len() + added.len());
        for (k, sv) in p.variants.iter().enumerate() {
            if let Some(v) = by_stored[k].take() {
                out.push(v);
            } else {
                out.push(VariantInput {
                    sku: sv
                        .sku
                        .as_deref()
                        .and_then(|s| crate::domain::Sku::parse(s).ok()),
                    option_values: sv.option_values.clone(),
                    price_minor: sv.price.amount_minor,
                    compare_at_minor: sv.compare_at_price.as_ref().map(|m| m.amount_minor),
                    inventory: sv.inventory_quantity,
                    inventory_policy: sv.inventory_policy,
                    inventory_tracked: sv.inventory_tracked,
                    barcode: sv.barcode.clone(),
                    weight_grams: sv.weight_grams,
                });
            }
        }
        out.extend(added);
        input.variants = out;
        return;
    }
    input.variants = merged;
}

/// Sorts the errors and counts them apart: a row with an error that still went into a
/// written product (e.g. a repeated SKU dropped, a bad image or barcode skipped) is a
/// `warnings` row; a row that did not go in at all (its variant or product refused) is a
/// `failed` row. `kept[i]` says whether input `i` was (or in a preview would be) written;
/// its product row and variant rows are the rows that went in.
fn finish_report(report: &mut ProductImportReport, prepared: &PreparedRows, kept: &[bool]) {
    for e in &mut report.errors {
        if e.line == 0 {
            e.line = prepared.lines.get(&e.row).copied().unwrap_or(e.row);
        }
    }
    report.errors.sort_by_key(|e| e.row);
    let mut went_in: HashSet<usize> = HashSet::new();
    for (i, ok) in kept.iter().enumerate() {
        if *ok {
            went_in.extend(prepared.variant_rows[i].iter().copied());
            // A first row that is no variant's (a WooCommerce variable parent) went in with
            // the product; a first row whose own variant failed did not.
            if !prepared.product_row_was_variant[i] {
                went_in.insert(prepared.rows[i]);
            }
        }
    }
    let rows: HashSet<usize> = report.errors.iter().map(|e| e.row).collect();
    report.warnings = rows.iter().filter(|r| went_in.contains(r)).count();
    report.failed = rows.len() - report.warnings;
}

/// The CSV rows of each prepared input: its first row, each variant's row (then its
/// variant-less rows), and whether its first row was a variant row of the file (whether it
/// went in or not).
struct PreparedRows {
    rows: Vec<usize>,
    variant_rows: Vec<Vec<usize>>,
    product_row_was_variant: Vec<bool>,
    /// Row → physical line.
    lines: HashMap<usize, usize>,
}

impl PreparedRows {
    fn new(
        rows: Vec<usize>,
        variant_rows: Vec<Vec<usize>>,
        tried: &[bool],
        lines: HashMap<usize, usize>,
    ) -> Self {
        Self {
            rows,
            variant_rows,
            product_row_was_variant: tried.to_vec(),
            lines,
        }
    }
}

/// `kept` for [`finish_report`] from the `(input index, reason)` refusals of an upsert.
fn kept_except(n: usize, refused: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut kept = vec![true; n];
    for i in refused {
        if let Some(k) = kept.get_mut(i) {
            *k = false;
        }
    }
    kept
}

/// Imports a Shopify (legacy or 2024+) or WooCommerce product CSV into one tenant.
/// Products are matched by handle, so re-importing updates instead of duplicating. The
/// whole file is one transaction (nothing is written unless all of it is), applied a
/// chunk of products at a time as they are parsed.
pub async fn import_products(
    scope: &TenantDb,
    actor: &Actor,
    bytes: &[u8],
    currency: &str,
    max_products: i64,
) -> Result<ProductImportReport, ControlError> {
    let mut imp = ChunkedImport::new(bytes, currency)?;
    let mut tx = scope.begin().await?;
    let mut out = crate::store::catalog::UpsertOutcome::default();
    while let Some(chunk) = imp.next(scope, false).await? {
        let part = scope
            .upsert_products_tx(&mut tx, &chunk.inputs, currency, max_products)
            .await?;
        out.created += part.created;
        out.updated += part.updated;
        out.unchanged += part.unchanged;
        out.failed
            .extend(part.failed.into_iter().map(|(i, r)| (chunk.first + i, r)));
    }
    scope.commit_direct_import(tx, actor, &out).await?;
    let n = imp.len();
    let (mut report, prepared) = imp.finish();
    report.created = out.created;
    report.updated = out.updated;
    report.unchanged = out.unchanged;
    let kept = kept_except(n, out.failed.iter().map(|(i, _)| *i));
    for (i, reason) in out.failed {
        report.errors.push(FailedRow {
            row: prepared.rows[i],
            line: 0,
            column: None,
            reason,
        });
    }
    finish_report(&mut report, &prepared, &kept);
    Ok(report)
}

/// Products applied per transaction by a background import: the progress a merchant
/// sees moves in steps of this size, and a crash loses at most one chunk of work (which
/// the next worker redoes).
pub const IMPORT_CHUNK: usize = 200;

/// Starts a background import of a product CSV: the file is read once now (a file that
/// cannot be read at all is refused here, with the same errors as [`import_products`];
/// its products are counted, not parsed), then stored with a `product_import` job that
/// parses and applies it in chunks of [`IMPORT_CHUNK`] products
/// ([`run_product_import`]). Returns the queued import.
pub async fn start_product_import(
    scope: &TenantDb,
    actor: &Actor,
    bytes: &[u8],
    file_name: Option<&str>,
    currency: &str,
) -> Result<crate::store::imports::ProductImport, ControlError> {
    let (import, _) = start_product_import_read(scope, actor, bytes, file_name, currency).await?;
    Ok(import)
}

/// [`start_product_import`], also returning the file as read, for a caller that runs the
/// import itself ([`run_product_import_of`]) without reading the file again.
pub async fn start_product_import_read<'b>(
    scope: &TenantDb,
    actor: &Actor,
    bytes: &'b [u8],
    file_name: Option<&str>,
    currency: &str,
) -> Result<(crate::store::imports::ProductImport, ProductStream<'b>), ControlError> {
    let cur = Currency::parse(currency).unwrap_or(Currency::EUR);
    let stream = ProductStream::new(bytes, cur)?;
    let total = i64::try_from(stream.products_hint()).unwrap_or(i64::MAX);
    let import = scope
        .start_product_import(actor, file_name, bytes, total)
        .await?;
    Ok((import, stream))
}

/// Runs (or resumes) a background product import to its end: the job handler of
/// `product_import`. Parses the kept file a chunk at a time (parsing is deterministic, so
/// the products and their order are the same on every attempt), applies the chunks not
/// yet committed, then completes the import with its report. A file that no longer parses
/// fails the import (not the job); storage errors are returned so that the job is retried.
/// `fault` is the test hook of the job worker: asked with `import_chunk:<first index>`
/// before each chunk, an error it returns stops the run there as a crash would.
pub async fn run_product_import(
    db: &Db,
    scope: &TenantDb,
    import_id: Uuid,
    fault: Option<&FaultHook>,
) -> Result<(), ControlError> {
    run_product_import_of(db, scope, import_id, fault, None).await
}

/// [`run_product_import`] by a caller that still holds the file it started the import
/// with, as [`start_product_import_read`] read it (the CLI): `file` is parsed instead of
/// reading the kept copy back from the database, so that a large file is in memory once
/// and read no more than needed.
pub async fn run_product_import_of(
    db: &Db,
    scope: &TenantDb,
    import_id: Uuid,
    fault: Option<&FaultHook>,
    file: Option<ProductStream<'_>>,
) -> Result<(), ControlError> {
    let Some(mut work) = scope
        .claim_product_import(import_id, file.is_none())
        .await?
    else {
        return Ok(()); // unknown, or already ended
    };
    let Some(merchant) = platform::get_merchant(db, scope.tenant_id()).await? else {
        return Ok(());
    };
    let currency = merchant.currency;
    let max = max_products(db, scope.tenant_id()).await?;
    // The kept file (when the caller has none) is held while its chunks are parsed: the
    // parse borrows it and holds no more than a chunk of products at a time.
    let kept = std::mem::take(&mut work.body);
    let read = match file {
        Some(stream) => Ok(ChunkedImport::of(stream)),
        None => ChunkedImport::new(&kept, &currency),
    };
    let mut imp = match read {
        Ok(p) => p,
        Err(e @ ControlError::Store(_)) => return Err(e),
        Err(e) => {
            scope
                .fail_product_import(import_id, &format!("the file cannot be read: {e}"))
                .await?;
            return Ok(());
        }
    };
    // Inputs before `products_done` were committed by an earlier attempt: parsed (to
    // know where the file is) but not applied again.
    let skip = usize::try_from(work.products_done).unwrap_or(0);
    let mut pending: std::collections::VecDeque<ProductInput> = Default::default();
    let mut ended = false;
    while !ended {
        match imp.next(scope, false).await? {
            Some(chunk) => {
                let already = skip.saturating_sub(chunk.first).min(chunk.inputs.len());
                pending.extend(chunk.inputs.into_iter().skip(already));
            }
            None => ended = true,
        }
        while pending.len() >= IMPORT_CHUNK || (ended && !pending.is_empty()) {
            let start = usize::try_from(work.products_done).unwrap_or(0);
            if let Some(err) = fault.and_then(|f| f(&format!("import_chunk:{start}"))) {
                return Err(ControlError::Interrupted(err));
            }
            let n = pending.len().min(IMPORT_CHUNK);
            let inputs: Vec<ProductInput> = pending.drain(..n).collect();
            let rows = imp.rows.get(start..start + n).unwrap_or_default().to_vec();
            scope
                .apply_import_chunk(&mut work, &inputs, &rows, &currency, max)
                .await?;
        }
    }
    let (mut report, prepared) = imp.finish();
    drop(kept);
    report.created = usize::try_from(work.created).unwrap_or(0);
    report.updated = usize::try_from(work.updated).unwrap_or(0);
    report.unchanged = usize::try_from(work.unchanged).unwrap_or(0);
    // Refusals are stored by product row; product rows are distinct within a file.
    let refused_rows: HashSet<usize> = work.failures.iter().map(|(r, _)| *r).collect();
    let kept: Vec<bool> = prepared
        .rows
        .iter()
        .map(|r| !refused_rows.contains(r))
        .collect();
    for (row, reason) in &work.failures {
        report.errors.push(FailedRow {
            row: *row,
            line: 0,
            column: None,
            reason: reason.clone(),
        });
    }
    finish_report(&mut report, &prepared, &kept);
    let value = serde_json::to_value(&report).unwrap_or(serde_json::Value::Null);
    scope
        .complete_product_import(&work, &value, report.failed)
        .await?;
    Ok(())
}

/// Dry run of [`import_products`]: parses the file and reports what an import would do
/// (`would_create`, `would_update`, the row errors, the plan limit) without writing
/// anything. A product carrying a SKU that another existing product of the store (another
/// handle) already has is reported at that variant's row and not counted, as the import
/// would refuse it. Products are walked in file order as the import applies them, so a
/// SKU that an earlier product of the file gives up is free for the later ones. The file
/// is walked a chunk of products at a time, as the import does.
pub async fn preview_products(
    scope: &TenantDb,
    bytes: &[u8],
    currency: &str,
    max_products: i64,
) -> Result<ProductImportReport, ControlError> {
    let mut imp = ChunkedImport::new(bytes, currency)?;
    let mut skus_in_store = SkuOwners::default();
    let mut count = scope.count_products().await?;
    let (mut create, mut update) = (0, 0);
    let mut changes = Vec::new();
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    while let Some(chunk) = imp.next(scope, true).await? {
        let handles: Vec<String> = chunk
            .inputs
            .iter()
            .map(|p| p.handle.as_str().to_string())
            .collect();
        let existing = scope.existing_product_handles(&handles).await?;
        let skus: Vec<String> = chunk
            .inputs
            .iter()
            .flat_map(|p| p.variants.iter().filter_map(|v| v.sku.as_ref()))
            .map(|s| s.as_str().to_string())
            .collect();
        skus_in_store.load(scope.sku_owners(&skus).await?);
        for (j, input) in chunk.inputs.iter().enumerate() {
            let i = chunk.first + j;
            let row = imp.rows[i];
            kept.push(false);
            let handle = input.handle.as_str();
            let exists = existing.contains(handle);
            if !exists && max_products >= 0 && count >= max_products {
                errors.push(FailedRow {
                    row,
                    line: 0,
                    column: None,
                    reason: format!("the plan allows at most {max_products} products"),
                });
                continue;
            }
            let mut refused = false;
            for (j, v) in input.variants.iter().enumerate() {
                let Some(sku) = &v.sku else { continue };
                if let Some(owner) = skus_in_store.other_owner(sku.as_str(), handle) {
                    errors.push(FailedRow {
                        row: imp.variant_rows[i].get(j).copied().unwrap_or(row),
                        line: 0,
                        column: Some("SKU".into()),
                        reason: format!(
                            "SKU '{}' is already used by product '{owner}'; this product would not be imported",
                            sku.as_str()
                        ),
                    });
                    refused = true;
                }
            }
            if refused {
                continue;
            }
            skus_in_store.replace(
                handle,
                input
                    .variants
                    .iter()
                    .filter_map(|v| v.sku.as_ref())
                    .map(|s| s.as_str().to_string())
                    .collect(),
            );
            kept[i] = true;
            let (action, fields) = match chunk.stored.get(handle) {
                Some(p) => {
                    let fields = changed_fields(input, p);
                    (
                        if fields.is_empty() {
                            "unchanged"
                        } else {
                            "update"
                        },
                        fields,
                    )
                }
                None => ("create", vec![]),
            };
            changes.push(ProductChange {
                row,
                line: imp.stream.line_of(row),
                handle: handle.to_string(),
                action,
                fields,
            });
            if exists {
                update += 1;
            } else {
                count += 1;
                create += 1;
            }
        }
    }
    let (mut report, prepared) = imp.finish();
    report.errors.extend(errors);
    report.dry_run = true;
    report.would_leave_unchanged = Some(changes.iter().filter(|c| c.action == "unchanged").count());
    report.changes = Some(changes);
    report.would_create = Some(create);
    report.would_update = Some(update);
    finish_report(&mut report, &prepared, &kept);
    Ok(report)
}

/// The store's owners of a file's SKUs as a preview walks the file: an applied product
/// gives up the SKUs it had and takes those of its new variants. Loaded a chunk of the
/// file's SKUs at a time ([`SkuOwners::load`]).
#[derive(Default)]
struct SkuOwners {
    /// SKU → handle of the product carrying it.
    owner: HashMap<String, String>,
    /// Handle → its SKUs (among the file's).
    by_handle: HashMap<String, Vec<String>>,
    /// Handles of the file's products walked so far: their SKUs are those the file gave
    /// them, whatever the store says.
    replaced: HashSet<String>,
}

impl SkuOwners {
    /// Adds the store's owners of a chunk's SKUs (SKU → handle), except where the walk
    /// already knows better: a SKU a walked product took, or one of a walked product
    /// (which carries only the file's SKUs now).
    fn load(&mut self, stored: HashMap<String, String>) {
        for (sku, handle) in stored {
            if self.replaced.contains(&handle) || self.owner.contains_key(&sku) {
                continue;
            }
            self.by_handle
                .entry(handle.clone())
                .or_default()
                .push(sku.clone());
            self.owner.insert(sku, handle);
        }
    }

    /// The handle of the product other than `handle` that carries `sku`, if any.
    fn other_owner(&self, sku: &str, handle: &str) -> Option<&str> {
        self.owner
            .get(sku)
            .map(String::as_str)
            .filter(|o| *o != handle)
    }

    /// Records that product `handle` now carries exactly `skus` (of the file's SKUs).
    fn replace(&mut self, handle: &str, skus: Vec<String>) {
        for old in self.by_handle.remove(handle).unwrap_or_default() {
            if self.owner.get(&old).is_some_and(|o| o == handle) {
                self.owner.remove(&old);
            }
        }
        for sku in &skus {
            self.owner.insert(sku.clone(), handle.to_string());
        }
        self.by_handle.insert(handle.to_string(), skus);
        self.replaced.insert(handle.to_string());
    }
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

/// Applies stored theme rows changed since `seen` (id → `updated_at` already applied):
/// at start (empty `seen`) it loads every uploaded theme and disabled flag; later calls
/// pick up uploads and toggles made through another node. A stored archive that no
/// longer validates is logged and skipped.
pub async fn sync_themes(
    db: &Db,
    themes: &Themes,
    seen: &mut std::collections::HashMap<String, i64>,
) -> Result<(), ControlError> {
    for row in platform::theme_rows(db).await? {
        if seen.get(&row.id) == Some(&row.updated_at) {
            continue;
        }
        seen.insert(row.id.clone(), row.updated_at);
        if let Some(archive) = &row.archive {
            match crate::themes::Theme::from_zip(archive) {
                Ok(t) => {
                    if let Err(e) = themes.install(t) {
                        tracing::warn!(theme = %row.id, error = %e, "stored theme skipped");
                        continue;
                    }
                }
                Err(errors) => {
                    tracing::warn!(theme = %row.id, errors = ?errors, "stored theme no longer validates; skipped");
                    continue;
                }
            }
        }
        themes.set_enabled(&row.id, row.enabled);
    }
    Ok(())
}

/// Validates an uploaded theme zip, stores it and installs it at once. `check` runs on
/// the parsed theme before anything is stored and returns its reasons to refuse it (the
/// API passes the storefront's render check with sample data). Only uploads get that
/// check: stored themes are re-read with [`crate::themes::Theme::from_zip`] alone, so a
/// stricter check never drops a theme stores already use. Errors: `Err(Ok(reasons))`
/// with every problem found; `Err(Err(store error))`.
pub async fn install_theme(
    db: &Db,
    actor: &Actor,
    themes: &Themes,
    archive: &[u8],
    check: impl FnOnce(&crate::themes::Theme) -> Vec<String>,
) -> Result<crate::themes::ThemeManifest, Result<Vec<String>, ControlError>> {
    let theme = crate::themes::Theme::from_zip(archive).map_err(Ok)?;
    let reasons = check(&theme);
    if !reasons.is_empty() {
        return Err(Ok(reasons));
    }
    let manifest = theme.manifest.clone();
    if themes.get(&manifest.id).is_some_and(|t| t.builtin) {
        return Err(Ok(vec![format!(
            "config.json: id '{}' is a built-in theme and cannot be replaced",
            manifest.id
        )]));
    }
    platform::save_theme_archive(db, actor, &manifest.id, &manifest.name, archive)
        .await
        .map_err(|e| Err(e.into()))?;
    themes.install(theme).map_err(|e| Ok(vec![e]))?;
    themes.set_enabled(&manifest.id, true);
    Ok(manifest)
}

/// A failed row of a stored vendor import: the report's reasons plus the row's original
/// cells, so the failed rows can be downloaded, fixed and uploaded again.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FailedVendorRow {
    pub row: usize,
    /// Physical line where the row's record starts (see [`FailedRow::line`]).
    #[serde(default)]
    pub line: usize,
    /// The columns named by the errors (comma-separated), if any.
    pub column: Option<String>,
    /// Every reason for this row, joined with "; ".
    pub reason: String,
    /// The record's cells as uploaded.
    pub values: Vec<String>,
}

/// Groups a report's errors by row and attaches each row's original cells. Returns the
/// file's header and the failed rows in row order.
pub fn failed_vendor_rows(
    bytes: &[u8],
    report: &VendorImportReport,
) -> (Vec<String>, Vec<FailedVendorRow>) {
    let (header, records) = match crate::import::Table::read_short_rows_ok(bytes) {
        Ok(t) => (t.headers, [t.records, t.rejected].concat()),
        Err(_) => (vec![], vec![]),
    };
    let mut out: Vec<FailedVendorRow> = vec![];
    for e in &report.errors {
        match out.last_mut() {
            Some(last) if last.row == e.row => {
                last.reason = format!("{}; {}", last.reason, e.reason);
                if let Some(c) = &e.column {
                    last.column = Some(match &last.column {
                        Some(prev) if !prev.split(", ").any(|p| p == c) => format!("{prev}, {c}"),
                        Some(prev) => prev.clone(),
                        None => c.clone(),
                    });
                }
            }
            _ => out.push(FailedVendorRow {
                row: e.row,
                line: e.line,
                column: e.column.clone(),
                reason: e.reason.clone(),
                values: records
                    .iter()
                    .find(|(line, _)| *line == e.row)
                    .map(|(_, r)| r.iter().map(str::to_string).collect())
                    .unwrap_or_default(),
            }),
        }
    }
    (header, out)
}
