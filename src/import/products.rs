//! Product catalogue CSV parsing: Shopify (legacy and 2024+ header dialects) and WooCommerce.
//!
//! Format rules follow Shopify's help page "Using CSV files to import and export products"
//! (both header sets; rows sharing a handle form one product, the first row carries the
//! product fields, later rows add variants and images) and WooCommerce's "Product CSV Importer
//! and Exporter" column schema (types simple/variable/variation/grouped/external, variations
//! pointing to their parent by SKU or `id:NN`). The sample files under `shared/data` are the
//! reference inputs; see its README for the traps they contain.

use super::{ImportError, Records, RowError, Table};
use crate::domain::{Currency, Handle, InventoryPolicy, ProductStatus, Sku, parse_decimal_minor};
use csv::StringRecord;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// The header dialect a product CSV was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Shopify before 2024: `Handle, Title, Body (HTML), …, Variant Price, …, Image Src`.
    ShopifyLegacy,
    /// Shopify 2024+: `Title, URL handle, Description, …, Price, …, Product image URL`.
    Shopify2024,
    /// WooCommerce's built-in product exporter: `ID, Type, SKU, Name, …, Regular price, Parent`.
    WooCommerce,
}

/// The result of parsing a product CSV: the importable products plus per-row problems.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParsedCatalog {
    /// Which header dialect was detected.
    pub dialect: Dialect,
    /// Products in order of first appearance; each has at least one variant.
    pub products: Vec<ImportProduct>,
    /// Row problems, sorted by row. A row can have several; a product whose every variant row
    /// failed is left out of `products` (its rows' errors say why).
    pub errors: Vec<RowError>,
    /// Number of (non-blank) data records read.
    pub rows: usize,
    /// Headers of the columns the import read, in file order.
    pub columns_used: Vec<String>,
    /// Headers of the columns it did not use (e.g. Shopify Markets `Price / <market>`,
    /// `Google Shopping / …`, variant metafields): their values were not imported.
    pub columns_ignored: Vec<String>,
    /// Which product fields the file carries; an absent one leaves existing products'
    /// value unchanged.
    #[serde(skip)]
    pub columns: Columns,
    /// Notes about the whole file that did not stop it (its encoding converted, the
    /// delimiter detected), for the report's `file_warnings`.
    pub notes: Vec<String>,
    /// Row → physical line where its record starts (see [`RowError::line`]).
    #[serde(skip)]
    pub lines: HashMap<usize, usize>,
}

/// The product and variant fields a file carries (Shopify and WooCommerce column groups). A
/// field whose column is absent is "leave unchanged" for an existing product; a new product
/// needs a price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    /// The header of the dialect's price column (`Variant Price`, `Price`, `Regular
    /// price`), named by the error for a new product in a file without it.
    pub price_header: &'static str,
    pub price: bool,
    pub compare_at: bool,
    pub inventory: bool,
    /// `Variant Inventory Tracker` or a quantity column.
    pub tracked: bool,
    pub policy: bool,
    pub barcode: bool,
    pub weight: bool,
    pub body: bool,
    pub vendor: bool,
    pub product_type: bool,
    pub tags: bool,
    /// `Status` or `Published`.
    pub status: bool,
    /// Option names or values.
    pub options: bool,
    /// Product or variant image columns.
    pub images: bool,
    /// Product metafield columns.
    pub attributes: bool,
}

impl Columns {
    /// Every field present.
    pub fn all() -> Self {
        Self {
            price_header: "Variant Price",
            price: true,
            compare_at: true,
            inventory: true,
            tracked: true,
            policy: true,
            barcode: true,
            weight: true,
            body: true,
            vendor: true,
            product_type: true,
            tags: true,
            status: true,
            options: true,
            images: true,
            attributes: true,
        }
    }

    /// Without prices or options the file cannot say which variants a product has: its
    /// variants update the matching stored ones and the others are kept.
    pub fn partial(&self) -> bool {
        !self.price || !self.options
    }

    /// Names of the fields a file of these columns updates, for the preview.
    pub fn updated_fields(&self) -> Vec<&'static str> {
        let mut out = vec!["title"];
        for (on, name) in [
            (self.body, "description"),
            (self.vendor, "vendor"),
            (self.product_type, "type"),
            (self.tags, "tags"),
            (self.status, "status"),
            (self.options, "options"),
            (self.images, "images"),
            (self.attributes, "attributes"),
            (self.price, "price"),
            (self.compare_at, "compare-at price"),
            (self.inventory, "inventory"),
            (self.tracked, "inventory tracking"),
            (self.policy, "inventory policy"),
            (self.barcode, "barcode"),
            (self.weight, "weight"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// One product to create or update, keyed by `handle`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportProduct {
    /// Row (1-based, header = 1) of the product's first record.
    pub row: usize,
    /// Shopify `Handle`/`URL handle` (or derived from the title); WooCommerce: slug of `Name`,
    /// made unique within the file with `-2`, `-3`, ….
    pub handle: Handle,
    /// Product name (Shopify `Title`, WooCommerce `Name`).
    pub title: String,
    /// Description as HTML, exactly as in the file (non-breaking spaces become plain spaces).
    pub body_html: String,
    /// Brand or maker (Shopify `Vendor`).
    pub vendor: Option<String>,
    /// Shopify `Type`, a free-form grouping.
    pub product_type: Option<String>,
    /// Comma-separated tags, trimmed, empties and exact duplicates dropped.
    pub tags: Vec<String>,
    /// Shopify `Status`, else `Published` (TRUE → active, FALSE → draft, empty → active);
    /// WooCommerce `Published` 1 → active, anything else → draft.
    pub status: ProductStatus,
    /// Option names (0 to 3 for Shopify); empty for single-variant `Title`/`Default Title`
    /// products and WooCommerce simple products.
    pub options: Vec<String>,
    /// At least one.
    pub variants: Vec<ImportVariant>,
    /// Deduplicated by URL, ordered, `position` renumbered 1, 2, 3…; variant images that were
    /// not listed as product images are appended.
    pub images: Vec<ImportImage>,
    /// Full category paths as written, e.g. `Clothing > Tshirts` or Shopify's
    /// `Apparel & Accessories > Clothing > Clothing Tops > T-Shirts`.
    pub categories: Vec<String>,
    /// Shopify `SEO Title` / `SEO Description` (2024+: `SEO title` / `SEO description`) of
    /// the product's first row; `None` when the file has neither column (then an update
    /// keeps the stored ones).
    pub seo: Option<(Option<String>, Option<String>)>,
    /// Shopify product metafield columns (`Label (product.metafields.ns.key)`, labels in any
    /// language) with a value on the product's first row, in column order.
    pub attributes: Vec<crate::store::catalog::ProductAttribute>,
    /// Rows of this product that carry no variant (Shopify image-only continuation rows).
    pub extra_rows: Vec<usize>,
    /// Whether the product's first row carried a variant (imported or refused).
    pub first_row_variant: bool,
}

/// One purchasable variant of an [`ImportProduct`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportVariant {
    /// Row the variant came from.
    pub row: usize,
    /// Stock-keeping unit, unique within the file (a repeat is dropped with a row error).
    pub sku: Option<Sku>,
    /// One value per product option, same order. WooCommerce variations leave a value empty
    /// when they apply to "any" value of that attribute.
    pub option_values: Vec<String>,
    /// Price in minor units of the import currency (cents for EUR).
    pub price_minor: i64,
    /// "Compare at" (was) price in minor units; WooCommerce: the regular price when on sale.
    pub compare_at_minor: Option<i64>,
    /// Stock on hand; may be negative (Shopify allows overselling). Empty → 0.
    pub inventory: i64,
    /// Shopify `Variant Inventory Policy` (`deny`/`continue`), 2024+ `Continue selling when
    /// out of stock` (TRUE → `continue`); WooCommerce `Backorders allowed?` (1 or `notify`
    /// → `continue`). Empty or absent → `deny`.
    pub inventory_policy: InventoryPolicy,
    /// Shopify: `Variant Inventory Tracker` (2024+ `Inventory tracker`) non-empty; without
    /// that column, whether the quantity cell is filled. WooCommerce: `Stock` is filled
    /// (`In stock? = 1` with an empty `Stock` is in stock, untracked; `In stock? = 0` with
    /// an empty `Stock` is tracked at 0, i.e. sold out).
    pub inventory_tracked: bool,
    /// GTIN/EAN/UPC with a spreadsheet-guard apostrophe removed.
    pub barcode: Option<String>,
    /// Weight in grams, rounded (Shopify `Variant Grams` is grams whatever the display
    /// `Variant Weight Unit`; WooCommerce weights are converted from the header's unit).
    pub weight_grams: Option<i64>,
    /// Image shown for this variant; also listed in the product's images.
    pub image_url: Option<String>,
}

/// A product image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportImage {
    /// Absolute URL as in the file (to be fetched by the caller).
    pub url: String,
    /// Alternative text, when given.
    pub alt: Option<String>,
    /// 1-based display order.
    pub position: i32,
}

/// Recognises the dialect from a header record (case-insensitive, BOM and spaces ignored).
/// Returns `None` for anything else, including the vendor CSV format.
pub fn detect(headers: &StringRecord) -> Option<Dialect> {
    let lower: Vec<String> = headers
        .iter()
        .map(|h| super::clean(h.trim_start_matches('\u{feff}')).to_lowercase())
        .collect();
    detect_with(|n| lower.iter().any(|h| h == n))
}

fn detect_with(has: impl Fn(&str) -> bool) -> Option<Dialect> {
    if has("handle") && (has("title") || has("variant price") || has("variant sku")) {
        Some(Dialect::ShopifyLegacy)
    } else if has("url handle")
        || (has("title") && (has("product image url") || has("published on online store")))
    {
        Some(Dialect::Shopify2024)
    } else if has("name")
        && has("type")
        && (has("regular price") || has("parent") || has("sku") || has("in stock?"))
    {
        Some(Dialect::WooCommerce)
    } else {
        None
    }
}

/// Shopify legacy header → its 2024+ name, for the columns that were renamed. The code reads
/// Shopify files by legacy names; `Title`, `Vendor`, `Type`, `Tags`, `Status`, `Product
/// category`, `Image position`, `Image alt text` and `OptionN name/value` are shared.
const RENAMED_2024: &[(&str, &str)] = &[
    ("handle", "url handle"),
    ("body (html)", "description"),
    ("published", "published on online store"),
    ("variant sku", "sku"),
    ("variant grams", "weight value (grams)"),
    ("variant inventory qty", "inventory quantity"),
    ("variant inventory tracker", "inventory tracker"),
    (
        "variant inventory policy",
        "continue selling when out of stock",
    ),
    ("variant price", "price"),
    ("variant compare at price", "compare-at price"),
    ("variant barcode", "barcode"),
    ("image src", "product image url"),
    ("variant image", "variant image url"),
];

/// Parses a product CSV of any supported [`Dialect`]; prices are read in `currency`'s minor
/// units (a price with more decimals than the currency has is a row error).
///
/// Row errors (the row, or just the offending value, is skipped; the rest is imported):
/// a price that is empty (Shopify variant, WooCommerce simple/variation), not a plain decimal
/// (`abc`) or in exponent notation (`3.65275E+11`) skips that variant; a barcode in exponent
/// notation, a bad compare-at price, weight, stock or a repeated SKU only drops that value;
/// a missing option value or repeated option combination skips the variant; an unusable
/// handle/name, or a WooCommerce variation whose `Parent` (SKU or `id:NN`) is not a variable
/// product of the file, skips the row.
///
/// WooCommerce grouped products (a container listing other products, with no price of its
/// own) are imported as **draft** products with one variant priced 0, so their content is
/// kept without anything becoming sellable for free. External products become ordinary
/// products (the external URL is dropped); variable products take their options from the
/// `Attribute N name` columns and their variants from the `variation` rows.
///
/// A Shopify file may lack any column but `Title` (a partial file, e.g. a stock sync):
/// [`ParsedCatalog::columns`] says which fields it carries, and variants of a file without
/// a price column carry price 0 for the caller to replace with the stored price.
///
/// Errors: [`ImportError::Empty`], [`ImportError::NotUtf8`], [`ImportError::Csv`],
/// [`ImportError::UnknownFormat`], and [`ImportError::MissingColumn`] when a Shopify file
/// lacks `Title` or a WooCommerce file `Name` or `Regular price`.
pub fn parse_products(bytes: &[u8], currency: Currency) -> Result<ParsedCatalog, ImportError> {
    let mut stream = ProductStream::new(bytes, currency)?;
    let mut products = Vec::new();
    loop {
        let chunk = stream.next_chunk(PARSE_CHUNK);
        if chunk.is_empty() {
            break;
        }
        products.extend(chunk);
    }
    let (dialect, columns) = (stream.dialect(), stream.columns());
    let end = stream.finish();
    Ok(ParsedCatalog {
        dialect,
        products,
        errors: end.errors,
        rows: end.rows,
        columns_used: end.columns_used,
        columns_ignored: end.columns_ignored,
        columns,
        notes: end.notes,
        lines: end.lines,
    })
}

/// Products [`parse_products`] asks a [`ProductStream`] for at a time.
const PARSE_CHUNK: usize = 500;

/// What a [`ProductStream`] found besides its products, once it has yielded them all.
#[derive(Debug, Clone)]
pub struct StreamEnd {
    /// Row problems of the whole file, sorted by row (see [`ParsedCatalog::errors`]).
    pub errors: Vec<RowError>,
    /// Number of (non-blank) data records read.
    pub rows: usize,
    /// Headers of the columns the import read, in file order.
    pub columns_used: Vec<String>,
    /// Headers of the columns it did not use.
    pub columns_ignored: Vec<String>,
    /// Notes about the whole file (encoding converted, delimiter detected).
    pub notes: Vec<String>,
    /// Row → physical line where its record starts.
    pub lines: HashMap<usize, usize>,
}

/// A product CSV parsed a chunk of products at a time, so that a large file's products
/// are never all in memory: [`parse_products`] with the products handed out as they are
/// complete, in the same order (first appearance) and with the same row errors.
///
/// [`ProductStream::new`] reads the file once as a whole (whole-file errors, row → line
/// numbers, refused rows) and, for Shopify files, notes the last row of every handle;
/// [`ProductStream::next_chunk`] then reads the records again one at a time and hands out
/// each product once the read has passed the last row of its handle (rows of a handle that
/// comes back later in the file still join it) and every earlier product has been handed
/// out. A WooCommerce file (variations may precede their parent) is parsed whole on the
/// first call and then handed out in chunks.
pub struct ProductStream<'b> {
    b: Builder,
    records: Records<'b>,
    dialect: Dialect,
    columns: Columns,
    /// Complete products in file order, not yet handed out.
    ready: VecDeque<ImportProduct>,
    /// All records have been read.
    ended: bool,
    /// Products (handles; WooCommerce: product rows) the first read found.
    handles: usize,
}

impl std::fmt::Debug for ProductStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductStream")
            .field("dialect", &self.dialect)
            .field("handles", &self.handles)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<'b> ProductStream<'b> {
    /// Reads `bytes` once (see [`parse_products`] for the whole-file errors); the products
    /// come from [`ProductStream::next_chunk`].
    pub fn new(bytes: &'b [u8], currency: Currency) -> Result<Self, ImportError> {
        let mut scan = HandleScan::default();
        let mut t = Table::read_streaming_with(
            bytes,
            &mut |index: &HashMap<String, usize>, row: usize, rec: &StringRecord| {
                scan.visit(index, row, rec)
            },
        )?;
        let dialect = detect_with(|n| t.has(n)).ok_or_else(|| ImportError::UnknownFormat {
            headers: t.header_list(),
            detected: t.detected(),
        })?;
        // Files may be partial (a stock sync: `Handle, Title, Variant SKU, Variant Inventory
        // Qty`, a WooCommerce export without `Regular price`): absent columns leave existing
        // products unchanged (see `Columns`).
        type Renames = &'static [(&'static str, &'static str)];
        let (renamed, required): (Renames, &[(&str, &str)]) = match dialect {
            Dialect::ShopifyLegacy => (&[][..], &[("title", "Title")]),
            Dialect::Shopify2024 => (RENAMED_2024, &[("title", "Title")]),
            Dialect::WooCommerce => (&[][..], &[("name", "Name")]),
        };
        if let Some((_, name)) = required.iter().find(|(l, _)| !t.has(l)) {
            return Err(ImportError::MissingColumn((*name).to_string()));
        }
        let has = |legacy: &str| {
            let name = renamed
                .iter()
                .find(|(l, _)| *l == legacy)
                .map_or(legacy, |(_, r)| *r);
            t.has(name)
        };
        let woo_price = t.has("regular price");
        let columns = match dialect {
            Dialect::WooCommerce => Columns {
                price_header: "Regular price",
                // `Sale price` alone cannot say whether a product is on sale: without `Regular
                // price` both prices are left as stored (and `Sale price` is not read).
                price: woo_price,
                compare_at: woo_price,
                inventory: t.has("stock"),
                tracked: t.has("stock") || t.has("in stock?"),
                policy: t.has("backorders allowed?"),
                barcode: false,
                weight: t
                    .headers
                    .iter()
                    .any(|h| h.to_lowercase().starts_with("weight (")),
                body: t.has("description") || t.has("short description"),
                vendor: false,
                product_type: false,
                tags: t.has("tags"),
                status: t.has("published"),
                options: t.has("attribute 1 name"),
                images: t.has("images"),
                attributes: false,
            },
            _ => Columns {
                price_header: if dialect == Dialect::Shopify2024 {
                    "Price"
                } else {
                    "Variant Price"
                },
                price: has("variant price"),
                compare_at: has("variant compare at price"),
                inventory: has("variant inventory qty"),
                tracked: has("variant inventory tracker") || has("variant inventory qty"),
                policy: has("variant inventory policy"),
                barcode: has("variant barcode"),
                weight: has("variant grams"),
                body: has("body (html)"),
                vendor: has("vendor"),
                product_type: has("type"),
                tags: has("tags"),
                status: has("status") || has("published"),
                options: has("option1 name") || has("option1 value"),
                images: has("image src") || has("variant image"),
                attributes: !metafield_columns(&t).is_empty(),
            },
        };
        let records = t.records(bytes);
        let handles = match dialect {
            Dialect::WooCommerce => scan.woo_products,
            _ => scan.last_row.len(),
        };
        let b = Builder {
            t: Arc::new(t),
            renamed,
            currency,
            errors: Vec::new(),
            drafts: VecDeque::new(),
            base: 0,
            skus: HashMap::new(),
            resolver: Resolver::default(),
            by_handle: HashMap::new(),
            last_row: scan.last_row,
        };
        Ok(Self {
            b,
            records,
            dialect,
            columns,
            ready: VecDeque::new(),
            ended: false,
            handles,
        })
    }

    /// The header dialect of the file.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Which product fields the file carries (see [`ParsedCatalog::columns`]).
    pub fn columns(&self) -> Columns {
        self.columns
    }

    /// Products in the file as the first read counted them (Shopify: handles; WooCommerce:
    /// rows other than variations): what the stream hands out, less the products all of
    /// whose variant rows fail.
    pub fn products_hint(&self) -> usize {
        self.handles
    }

    /// The physical line where row `row`'s record starts.
    pub fn line_of(&self, row: usize) -> usize {
        self.b.t.line_of(row)
    }

    /// The next at most `max` (at least 1) products in file order; empty once all have
    /// been handed out.
    pub fn next_chunk(&mut self, max: usize) -> Vec<ImportProduct> {
        let max = max.max(1);
        while self.ready.len() < max && !self.ended {
            if self.dialect == Dialect::WooCommerce {
                self.b.woocommerce(&mut self.records);
                self.b.pop_complete(None, &mut self.ready);
                self.ended = true;
                break;
            }
            match self.records.next() {
                Some((row, rec)) => {
                    self.b.shopify_row(row, &rec);
                    self.b.pop_complete(Some(row), &mut self.ready);
                }
                None => {
                    self.b.pop_complete(None, &mut self.ready);
                    self.ended = true;
                }
            }
        }
        let n = max.min(self.ready.len());
        self.ready.drain(..n).collect()
    }

    /// The row errors, counts and column lists of the whole file; call it once
    /// [`ProductStream::next_chunk`] came back empty (products not yet handed out are
    /// parsed and dropped).
    pub fn finish(mut self) -> StreamEnd {
        while !self.next_chunk(usize::MAX).is_empty() {}
        let t = &self.b.t;
        let mut errors = std::mem::take(&mut self.b.errors);
        errors.extend(t.shape_errors.iter().cloned());
        t.locate(&mut errors);
        errors.sort_by_key(|e| e.row);
        StreamEnd {
            errors,
            rows: t.rows,
            columns_used: t.used_columns(),
            columns_ignored: t.ignored_columns(),
            notes: t.notes.clone(),
            lines: t.lines.clone(),
        }
    }
}

/// The first read's look at each record of a Shopify file: where each product's last row
/// is (resolving handles exactly as [`Builder::shopify_row`] will); of a WooCommerce file,
/// how many rows are products.
#[derive(Default)]
struct HandleScan {
    /// `Some` once the header is known: the handle and title columns (Shopify), or the
    /// type column (WooCommerce, `woo` true).
    cols: Option<ScanCols>,
    resolver: Resolver,
    /// Resolved handle → last row of that product.
    last_row: HashMap<Handle, usize>,
    woo_products: usize,
}

#[derive(Clone, Copy)]
struct ScanCols {
    handle: Option<usize>,
    title: Option<usize>,
    kind: Option<usize>,
    woo: bool,
}

impl HandleScan {
    fn visit(&mut self, index: &HashMap<String, usize>, row: usize, rec: &StringRecord) {
        let cols = *self.cols.get_or_insert_with(|| {
            let dialect = detect_with(|n| index.contains_key(n));
            let handle = match dialect {
                Some(Dialect::Shopify2024) => "url handle",
                _ => "handle",
            };
            ScanCols {
                handle: index.get(handle).copied(),
                title: index.get("title").copied(),
                kind: index.get("type").copied(),
                woo: dialect == Some(Dialect::WooCommerce),
            }
        });
        let cell = |i: Option<usize>| {
            i.and_then(|i| rec.get(i))
                .map(super::clean)
                .unwrap_or_default()
        };
        if cols.woo {
            let kind = cell(cols.kind).to_lowercase();
            if !kind.split(',').any(|k| k.trim() == "variation") {
                self.woo_products += 1;
            }
            return;
        }
        let (raw, title) = (cell(cols.handle), cell(cols.title));
        let last_row = &mut self.last_row;
        match self
            .resolver
            .resolve(raw, &title, |h| last_row.contains_key(h))
        {
            Resolved::Known(h) | Resolved::New(h) => {
                last_row.insert(h, row);
            }
            Resolved::Skip(_) => {}
        }
    }
}

/// Shopify rows to products: the handle of each row, from its `Handle` cell (or title),
/// as the rows before it left things (a handle cell first seen as an alias of a title's
/// handle stays that; one that gave no product is skipped from then on).
#[derive(Default)]
struct Resolver {
    /// Raw handle cell → the product handle it resolved to.
    aliases: HashMap<String, Handle>,
    /// Raw handle cells whose product was refused: their later rows are skipped silently.
    broken: HashSet<String>,
}

/// A row's product, per [`Resolver::resolve`].
enum Resolved {
    /// A product earlier rows started.
    Known(Handle),
    /// A new product, started by this row.
    New(Handle),
    /// No product: the row is skipped, with the row error (column, message) if any.
    Skip(Option<(&'static str, String)>),
}

impl Resolver {
    /// `known(h)`: whether a product of handle `h` was started by an earlier row.
    fn resolve(&mut self, raw: String, title: &str, known: impl Fn(&Handle) -> bool) -> Resolved {
        if self.broken.contains(&raw) {
            return Resolved::Skip(None);
        }
        let resolved = match self.aliases.get(&raw) {
            Some(h) => Ok(h.clone()),
            None if title.is_empty() => Handle::parse(&raw),
            None => Handle::parse(&raw).or_else(|_| Handle::from_title(title)),
        };
        let handle = match resolved {
            Ok(h) => h,
            Err(e) if raw.is_empty() => {
                let msg = format!("row has neither a handle nor a usable title: {e}");
                return Resolved::Skip(Some(("handle", msg)));
            }
            Err(e) => {
                self.broken.insert(raw);
                return Resolved::Skip(Some(("handle", e.message)));
            }
        };
        if !raw.is_empty() && !self.aliases.contains_key(&raw) {
            self.aliases.insert(raw.clone(), handle.clone());
        }
        if known(&handle) {
            return Resolved::Known(handle);
        }
        if title.is_empty() {
            let msg = format!("the first row of product '{handle}' has no title; product skipped");
            self.broken.insert(raw);
            return Resolved::Skip(Some(("title", msg)));
        }
        Resolved::New(handle)
    }
}

/// Whether `raw` is an absolute `http`/`https` URL with a host, at most 2,048 characters
/// (what the product API accepts; `not-a-url`, `javascript:…`, `manual` or `TRUE` are not).
pub fn is_image_url(raw: &str) -> bool {
    raw.len() <= 2048
        && url::Url::parse(raw).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        })
}

/// Product metafield columns of a Shopify file: `(lowercase header, "namespace.key",
/// label)` for each header of the form `Label (product.metafields.namespace.key)`; the label
/// is the key when the header has none.
fn metafield_columns(t: &Table) -> Vec<(String, String, String)> {
    t.headers
        .iter()
        .filter_map(|h| {
            let lower = h.to_lowercase();
            let at = lower.find("(product.metafields.")?;
            let key = h[at + "(product.metafields.".len()..]
                .trim_end()
                .strip_suffix(')')?
                .trim()
                .to_string();
            let label = h[..at].trim();
            let name = if label.is_empty() {
                key.clone()
            } else {
                label.to_string()
            };
            Some((lower, key, name)).filter(|(_, k, _)| !k.is_empty())
        })
        .collect()
}

/// Adds variant images not yet listed, orders by position, renumbers 1..=n.
fn finish_images(mut p: ImportProduct) -> ImportProduct {
    for url in p
        .variants
        .iter()
        .filter_map(|v| v.image_url.clone())
        .collect::<Vec<_>>()
    {
        add_image(&mut p.images, url, None, None);
    }
    p.images.sort_by_key(|i| i.position);
    for (i, img) in p.images.iter_mut().enumerate() {
        img.position = i as i32 + 1;
    }
    p
}

/// Adds an image unless its URL is already there (then only a missing alt text is filled in);
/// without a position it goes last.
fn add_image(
    images: &mut Vec<ImportImage>,
    url: String,
    alt: Option<String>,
    position: Option<i32>,
) {
    if let Some(img) = images.iter_mut().find(|i| i.url == url) {
        img.alt = img.alt.take().or(alt);
        return;
    }
    let position =
        position.unwrap_or_else(|| images.iter().map(|i| i.position).max().unwrap_or(0) + 1);
    images.push(ImportImage { url, alt, position });
}

/// Comma-separated list, trimmed, without empties or repeats. `\,` (WooCommerce's escape) is a
/// literal comma.
fn split_list(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in raw.replace("\\,", "\u{0}").split(',') {
        let part = part.replace('\u{0}', ",").trim().to_string();
        if !part.is_empty() && !out.contains(&part) {
            out.push(part);
        }
    }
    out
}

/// A product being assembled, with bookkeeping.
struct Draft {
    p: ImportProduct,
    /// Variant rows attempted (to tell "no variant rows" from "all variant rows failed").
    tried: usize,
    /// Option combination → row, to refuse duplicate variants.
    combos: HashMap<Vec<String>, usize>,
    /// WooCommerce parent weight, inherited by variations without their own.
    weight: Option<i64>,
}

struct Builder {
    /// Shared with the row loops, which read cells while `&mut self` records errors.
    t: Arc<Table>,
    /// Column renames applied to the (legacy Shopify or WooCommerce) names used in the code.
    renamed: &'static [(&'static str, &'static str)],
    currency: Currency,
    errors: Vec<RowError>,
    /// Products being assembled, in order of first appearance; `drafts[0]` is draft number
    /// `base` (the ones before it were handed out).
    drafts: VecDeque<Draft>,
    base: usize,
    /// Variant SKU → row, to refuse duplicates within the file.
    skus: HashMap<String, usize>,
    /// Shopify: row → product handle.
    resolver: Resolver,
    /// Shopify: product handle → draft number.
    by_handle: HashMap<Handle, usize>,
    /// Shopify: product handle → the last row of that product (from the first read).
    last_row: HashMap<Handle, usize>,
}

impl Builder {
    fn col<'n>(&self, name: &'n str) -> &'n str {
        self.renamed
            .iter()
            .find(|(l, _)| *l == name)
            .map_or(name, |(_, r)| r)
    }
    fn get(&self, rec: &StringRecord, name: &str) -> String {
        self.t.get(rec, self.col(name))
    }
    fn opt(&self, rec: &StringRecord, name: &str) -> Option<String> {
        self.t.opt(rec, self.col(name))
    }
    fn err(&mut self, row: usize, name: &str, msg: impl Into<String>) {
        let col = self.t.label(self.col(name));
        self.errors.push(RowError::new(row, Some(&col), msg));
    }
    /// [`Builder::err`], then `None`.
    fn fail<T>(&mut self, row: usize, name: &str, msg: impl Into<String>) -> Option<T> {
        self.err(row, name, msg);
        None
    }

    /// `Ok(None)` when empty; a RowError and `Err(())` when invalid.
    fn price(&mut self, row: usize, rec: &StringRecord, name: &str) -> Result<Option<i64>, ()> {
        let raw = self.get(rec, name);
        if raw.is_empty() {
            return Ok(None);
        }
        parse_decimal_minor(&raw, self.currency.exponent())
            .map(Some)
            .map_err(|e| self.err(row, name, e.message))
    }

    fn sku(&mut self, row: usize, rec: &StringRecord, name: &str) -> Option<Sku> {
        let sku = match Sku::parse(&self.opt(rec, name)?) {
            Ok(sku) => sku,
            Err(e) => return self.fail(row, name, e.message),
        };
        if let Some(first) = self.skus.get(sku.as_str()) {
            let msg = format!(
                "SKU '{}' is already used by row {first}; the SKU is dropped",
                sku.as_str()
            );
            return self.fail(row, name, msg);
        }
        self.skus.insert(sku.as_str().to_string(), row);
        Some(sku)
    }

    fn barcode(&mut self, row: usize, rec: &StringRecord, name: &str) -> Option<String> {
        let raw = self.get(rec, name);
        let s = raw.trim_start_matches('\'').trim();
        let mangled = s.contains(['e', 'E'])
            && s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_digit() || "eE+-.".contains(c));
        if mangled {
            let msg = format!(
                "barcode '{s}' is in exponent notation (a spreadsheet mangled it); re-export it as text"
            );
            return self.fail(row, name, msg);
        }
        Some(s.to_string()).filter(|s| !s.is_empty())
    }

    fn inventory(&mut self, row: usize, rec: &StringRecord, name: &str) -> i64 {
        let raw = self.get(rec, name);
        if raw.is_empty() {
            return 0;
        }
        raw.parse().unwrap_or_else(|_| {
            self.err(
                row,
                name,
                format!("stock '{raw}' is not a whole number; 0 used"),
            );
            0
        })
    }

    /// `raw` when it is an absolute http(s) URL ([`is_image_url`]); else a row error on
    /// that image (the product and its other images are kept) and `None`.
    fn image_url(&mut self, row: usize, name: &str, raw: String) -> Option<String> {
        if is_image_url(&raw) {
            return Some(raw);
        }
        self.fail(
            row,
            name,
            format!("image URL '{raw}' is not an absolute http(s) URL; the image is skipped"),
        )
    }

    /// Shopify `Variant Inventory Policy` (`deny`/`continue`) or 2024+ `Continue selling
    /// when out of stock` (`TRUE`/`FALSE`, also `deny`/`continue`); empty → `deny`, anything
    /// else a row error on that value (deny used).
    fn shopify_policy(&mut self, row: usize, rec: &StringRecord) -> InventoryPolicy {
        let raw = self.get(rec, "variant inventory policy");
        match raw.to_ascii_lowercase().as_str() {
            "" | "deny" | "false" | "no" | "0" => InventoryPolicy::Deny,
            "continue" | "true" | "yes" | "1" => InventoryPolicy::Continue,
            _ => {
                self.err(
                    row,
                    "variant inventory policy",
                    format!("inventory policy '{raw}' must be deny or continue (TRUE or FALSE); deny used"),
                );
                InventoryPolicy::Deny
            }
        }
    }

    /// Whether Shopify counts this variant's stock: `Variant Inventory Tracker` names the
    /// tracker (`shopify`, or an app) and is empty for untracked variants; a file without
    /// that column tracks exactly the variants whose quantity cell is filled.
    fn shopify_tracked(&self, rec: &StringRecord) -> bool {
        let tracker = self.col("variant inventory tracker");
        if self.t.has(tracker) {
            !self.t.get(rec, tracker).is_empty()
        } else {
            !self.get(rec, "variant inventory qty").is_empty()
        }
    }

    /// WooCommerce `Backorders allowed?`: `1`/`notify` → `continue`, `0`/empty → `deny`.
    fn woo_policy(&mut self, row: usize, rec: &StringRecord) -> InventoryPolicy {
        let raw = self.get(rec, "backorders allowed?");
        match raw.to_ascii_lowercase().as_str() {
            "" | "0" | "no" => InventoryPolicy::Deny,
            "1" | "yes" | "notify" => InventoryPolicy::Continue,
            _ => {
                self.err(
                    row,
                    "backorders allowed?",
                    format!("backorders '{raw}' must be 1, 0 or notify; 0 used"),
                );
                InventoryPolicy::Deny
            }
        }
    }

    /// WooCommerce manages stock when `Stock` is filled. An empty `Stock` with
    /// `In stock? = 0` is kept as tracked (quantity 0), so the product shows sold out.
    fn woo_tracked(&self, rec: &StringRecord) -> bool {
        let (stock, in_stock) = (self.get(rec, "stock"), self.get(rec, "in stock?"));
        !stock.is_empty() || in_stock == "0"
    }

    /// Grams from a decimal cell in a unit worth `factor` grams.
    fn weight(&mut self, row: usize, rec: &StringRecord, name: &str, factor: f64) -> Option<i64> {
        let raw = self.opt(rec, name)?;
        match raw.replace(',', ".").parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 && v * factor < 1e12 => {
                Some((v * factor).round() as i64)
            }
            _ => self.fail(
                row,
                name,
                format!("weight '{raw}' is not a non-negative number"),
            ),
        }
    }

    /// Claims option combination `values` of draft `di` for `row`; a RowError and `false` when
    /// an earlier variant has it (checked before the variant is built, so its SKU stays free).
    fn claim(&mut self, di: usize, row: usize, values: &[String], col: &str) -> bool {
        let Some(&first) = self.draft(di).combos.get(values) else {
            self.draft(di).combos.insert(values.to_vec(), row);
            return true;
        };
        self.err(
            row,
            col,
            format!(
                "duplicate variant: options [{}] already used by row {first}",
                values.join(" / ")
            ),
        );
        false
    }

    fn new_draft(&mut self, row: usize, handle: Handle, title: String) -> usize {
        let (body_html, status) = (String::new(), ProductStatus::Active);
        let (vendor, product_type, tags, options, variants, images, categories) =
            Default::default();
        let (seo, attributes, extra_rows) = Default::default();
        let p = ImportProduct {
            row,
            handle,
            title,
            body_html,
            vendor,
            product_type,
            tags,
            status,
            options,
            variants,
            images,
            categories,
            seo,
            attributes,
            extra_rows,
            first_row_variant: false,
        };
        self.drafts.push_back(Draft {
            p,
            tried: 0,
            combos: HashMap::new(),
            weight: None,
        });
        self.base + self.drafts.len() - 1
    }

    /// Draft number `di` (not yet handed out).
    fn draft(&mut self, di: usize) -> &mut Draft {
        &mut self.drafts[di - self.base]
    }

    /// Hands out the drafts at the front that are complete: every one when `upto` is
    /// `None` (the file is read), else those whose last row is at most `upto`. A product
    /// without variants is dropped (with an error when it had no variant row at all).
    fn pop_complete(&mut self, upto: Option<usize>, ready: &mut VecDeque<ImportProduct>) {
        while let Some(front) = self.drafts.front() {
            if let Some(row) = upto {
                // A handle the first read did not see cannot happen; should it, the
                // product is kept until the end rather than handed out unfinished.
                let last = self.last_row.get(&front.p.handle).copied();
                if last.is_none_or(|last| last > row) {
                    break;
                }
            }
            let Some(Draft { p, tried, .. }) = self.drafts.pop_front() else {
                break;
            };
            self.base += 1;
            if !p.variants.is_empty() {
                ready.push_back(finish_images(p));
            } else if tried == 0 {
                let msg = format!("product '{}' has no variant row; not imported", p.handle);
                self.errors.push(RowError::new(p.row, None, msg));
            }
        }
    }

    /// One record of a Shopify file, either dialect (columns are named by their legacy
    /// names, see [`RENAMED_2024`]).
    fn shopify_row(&mut self, row: usize, rec: &StringRecord) {
        let (raw, title) = (self.get(rec, "handle"), self.get(rec, "title"));
        let by_handle = &self.by_handle;
        let di = match self
            .resolver
            .resolve(raw, &title, |h| by_handle.contains_key(h))
        {
            Resolved::Skip(None) => return,
            Resolved::Skip(Some((col, msg))) => {
                self.err(row, col, msg);
                return;
            }
            Resolved::Known(h) => by_handle[&h],
            Resolved::New(h) => {
                let di = self.new_draft(row, h.clone(), title);
                self.by_handle.insert(h, di);
                self.shopify_product(row, rec, di);
                di
            }
        };
        if let Some(url) = self
            .opt(rec, "image src")
            .and_then(|u| self.image_url(row, "image src", u))
        {
            let (pos, alt) = (
                self.get(rec, "image position").parse().ok(),
                self.opt(rec, "image alt text"),
            );
            add_image(&mut self.draft(di).p.images, url, alt, pos);
        }
        let values: Vec<String> = (1..=3)
            .map(|i| self.get(rec, &format!("option{i} value")))
            .collect();
        let has_variant = ["variant sku", "variant price"]
            .iter()
            .any(|c| !self.get(rec, c).is_empty());
        if !has_variant && values.iter().all(String::is_empty) {
            self.draft(di).p.extra_rows.push(row);
            return; // image-only (or empty) continuation row
        }
        self.draft(di).tried += 1;
        if self.draft(di).p.row == row {
            self.draft(di).p.first_row_variant = true;
        }
        let options = self.draft(di).p.options.clone();
        let mut ok = true;
        for (i, (v, name)) in values.iter().zip(&options).enumerate() {
            if v.is_empty() {
                self.err(
                    row,
                    &format!("option{} value", i + 1),
                    format!("missing value for option '{name}'"),
                );
                ok = false;
            }
        }
        let price = if self.t.has(self.col("variant price")) {
            self.price(row, rec, "variant price")
        } else {
            Ok(Some(0)) // a partial file: the stored price is kept (control::merge)
        };
        if price == Ok(None) {
            self.err(row, "variant price", "price is empty");
        }
        let compare_at_minor = self
            .price(row, rec, "variant compare at price")
            .ok()
            .flatten();
        let option_values: Vec<String> = values.into_iter().take(options.len()).collect();
        let (Ok(Some(price_minor)), true) = (price, ok) else {
            return;
        };
        if !self.claim(di, row, &option_values, "option1 value") {
            return;
        }
        let v = ImportVariant {
            row,
            sku: self.sku(row, rec, "variant sku"),
            option_values,
            price_minor,
            compare_at_minor,
            inventory: self.inventory(row, rec, "variant inventory qty"),
            inventory_policy: self.shopify_policy(row, rec),
            inventory_tracked: self.shopify_tracked(rec),
            barcode: self.barcode(row, rec, "variant barcode"),
            weight_grams: self.weight(row, rec, "variant grams", 1.0),
            image_url: self
                .opt(rec, "variant image")
                .and_then(|u| self.image_url(row, "variant image", u)),
        };
        self.draft(di).p.variants.push(v);
    }

    /// Fills the product-level fields of draft `di` from its first row.
    fn shopify_product(&mut self, row: usize, rec: &StringRecord, di: usize) {
        let status = match (
            self.opt(rec, "status"),
            self.get(rec, "published").to_lowercase().as_str(),
        ) {
            (Some(s), _) => ProductStatus::parse(&s).unwrap_or_else(|e| {
                self.err(row, "status", format!("{}; draft used", e.message));
                ProductStatus::Draft
            }),
            (None, "" | "true" | "1" | "yes") => ProductStatus::Active,
            (None, "false" | "0" | "no") => ProductStatus::Draft,
            (None, other) => {
                self.err(
                    row,
                    "published",
                    format!("published '{other}' must be TRUE or FALSE; draft used"),
                );
                ProductStatus::Draft
            }
        };
        let mut options: Vec<String> = (1..=3)
            .map(|i| self.get(rec, &format!("option{i} name")))
            .take_while(|s| !s.is_empty())
            .collect();
        if options.len() == 1
            && options[0].eq_ignore_ascii_case("title")
            && self
                .get(rec, "option1 value")
                .eq_ignore_ascii_case("default title")
        {
            options.clear();
        }
        let (body, vendor, ptype) = (
            self.get(rec, "body (html)"),
            self.opt(rec, "vendor"),
            self.opt(rec, "type"),
        );
        let (tags, category) = (
            split_list(&self.get(rec, "tags")),
            self.opt(rec, "product category"),
        );
        let t = Arc::clone(&self.t);
        let seo = (t.has("seo title") || t.has("seo description"))
            .then(|| (self.opt(rec, "seo title"), self.opt(rec, "seo description")));
        let attributes = metafield_columns(&t)
            .into_iter()
            .filter_map(|(col, key, name)| {
                t.opt(rec, &col)
                    .map(|value| crate::store::catalog::ProductAttribute { key, name, value })
            })
            .collect();
        let p = &mut self.draft(di).p;
        (p.seo, p.attributes) = (seo, attributes);
        (p.body_html, p.vendor, p.product_type, p.tags) = (body, vendor, ptype, tags);
        (p.status, p.options, p.categories) = (status, options, category.into_iter().collect());
    }

    /// A whole WooCommerce file (`records`), variations attached to their parents.
    fn woocommerce(&mut self, records: &mut Records<'_>) {
        let t = Arc::clone(&self.t);
        let weight_col = t
            .headers
            .iter()
            .map(|h| h.to_lowercase())
            .find(|h| h.starts_with("weight ("));
        let factor = match weight_col
            .as_deref()
            .map(|h| h.trim_start_matches("weight (").trim_end_matches(')'))
        {
            Some("lbs" | "lb") => 453.592,
            Some("kg") => 1000.0,
            Some("oz") => 28.349_523,
            _ => 1.0, // grams, or no weight column
        };
        let attrs: Vec<(String, String)> = (1..)
            .map(|i| {
                (
                    format!("attribute {i} name"),
                    format!("attribute {i} value(s)"),
                )
            })
            .take_while(|(n, _)| t.has(n))
            .collect();
        let mut used: HashSet<Handle> = HashSet::new();
        let mut parents: HashMap<String, usize> = HashMap::new();
        let mut variations = Vec::new();
        // Pass 1: everything but variations, so that a variation may precede its parent.
        for (row, owned) in records {
            let kind = self.get(&owned, "type").to_lowercase();
            let kinds: Vec<&str> = kind.split(',').map(str::trim).collect();
            let is = |k: &str| kinds.contains(&k);
            if is("variation") {
                variations.push((row, owned));
                continue;
            }
            let rec = &owned;
            if !["variable", "grouped", "external", "simple"]
                .iter()
                .any(|k| is(k))
            {
                self.err(row, "type", format!("unknown product type '{kind}'"));
                continue;
            }
            let title = self.get(rec, "name");
            let base = match Handle::from_title(&title) {
                Ok(h) => h,
                Err(e) => {
                    self.err(
                        row,
                        "name",
                        format!("name '{title}' gives no usable handle: {e}"),
                    );
                    continue;
                }
            };
            let stem = base.as_str()[..base.as_str().len().min(249)].trim_end_matches('-');
            let handle = (1..100_000)
                .map(|i| {
                    if i == 1 {
                        Ok(base.clone())
                    } else {
                        Handle::parse(&format!("{stem}-{i}"))
                    }
                })
                .find_map(|h| h.ok().filter(|h| !used.contains(h)))
                .unwrap_or_else(|| base.clone());
            used.insert(handle.clone());
            let di = self.new_draft(row, handle, title);
            let weight = weight_col
                .as_deref()
                .and_then(|c| self.weight(row, rec, c, factor));
            let (body, short) = (
                self.opt(rec, "description"),
                self.get(rec, "short description"),
            );
            let (tags, categories, images) = (
                self.get(rec, "tags"),
                self.get(rec, "categories"),
                self.get(rec, "images"),
            );
            let d = self.draft(di);
            d.weight = weight;
            d.p.body_html = body.unwrap_or(short);
            (d.p.tags, d.p.categories) = (split_list(&tags), split_list(&categories));
            let active = t.get(rec, "published") == "1" && !is("grouped");
            d.p.status = if active {
                ProductStatus::Active
            } else {
                ProductStatus::Draft
            };
            let urls: Vec<String> = split_list(&images)
                .into_iter()
                .filter_map(|u| self.image_url(row, "images", u))
                .collect();
            let d = self.draft(di);
            for (i, url) in urls.into_iter().enumerate() {
                add_image(&mut d.p.images, url, None, Some(i as i32 + 1));
            }
            if is("variable") {
                d.p.options = attrs.iter().filter_map(|(n, _)| t.opt(rec, n)).collect();
                for key in [
                    t.opt(rec, "sku"),
                    t.opt(rec, "id").map(|id| format!("id:{id}")),
                ]
                .into_iter()
                .flatten()
                {
                    parents.insert(key, di);
                }
                continue;
            }
            d.tried += 1;
            d.p.first_row_variant = true;
            let price = if is("grouped") {
                Some((0, None))
            } else {
                self.woo_price(row, rec)
            };
            if let Some(price) = price {
                let v = self.woo_variant(row, rec, price, weight, Vec::new());
                self.draft(di).p.variants.push(v);
            }
        }
        // Pass 2: variations, attached to their variable parent.
        for (row, rec) in &variations {
            let (row, rec) = (*row, rec);
            let key = t.get(rec, "parent");
            let Some(&di) = parents.get(&key) else {
                self.err(
                    row,
                    "parent",
                    format!("parent '{key}' is not a variable product of this file"),
                );
                continue;
            };
            self.draft(di).tried += 1;
            let Some(price) = self.woo_price(row, rec) else {
                continue;
            };
            let own = weight_col
                .as_deref()
                .and_then(|c| self.weight(row, rec, c, factor));
            let weight = own.or(self.draft(di).weight);
            let mine: Vec<(String, String)> = attrs
                .iter()
                .map(|(n, val)| (t.get(rec, n).to_lowercase(), t.get(rec, val)))
                .collect();
            let value = |o: &String| {
                mine.iter()
                    .find(|(n, _)| *n == o.to_lowercase())
                    .map(|(_, v)| v.clone())
            };
            let values: Vec<String> = self
                .draft(di)
                .p
                .options
                .iter()
                .map(|o| value(o).unwrap_or_default())
                .collect();
            if self.claim(di, row, &values, "name") {
                let v = self.woo_variant(row, rec, price, weight, values);
                self.draft(di).p.variants.push(v);
            }
        }
    }

    /// `(price, compare_at)`: the sale price if set (then compare-at = regular), else the
    /// regular price. `None` after a RowError (invalid, or both empty). A file without
    /// `Regular price` gives `(0, None)`: the stored prices are kept (`control::merge`).
    fn woo_price(&mut self, row: usize, rec: &StringRecord) -> Option<(i64, Option<i64>)> {
        if !self.t.has("regular price") {
            return Some((0, None));
        }
        let sale = self.price(row, rec, "sale price").ok()?;
        match (sale, self.price(row, rec, "regular price").ok()?) {
            (Some(s), regular) => Some((s, regular)),
            (None, Some(r)) => Some((r, None)),
            (None, None) => self.fail(row, "regular price", "price is empty"),
        }
    }

    fn woo_variant(
        &mut self,
        row: usize,
        rec: &StringRecord,
        price: (i64, Option<i64>),
        weight: Option<i64>,
        option_values: Vec<String>,
    ) -> ImportVariant {
        ImportVariant {
            row,
            sku: self.sku(row, rec, "sku"),
            option_values,
            price_minor: price.0,
            compare_at_minor: price.1,
            inventory: self.inventory(row, rec, "stock"),
            inventory_policy: self.woo_policy(row, rec),
            inventory_tracked: self.woo_tracked(rec),
            barcode: None,
            weight_grams: weight,
            image_url: split_list(&self.get(rec, "images"))
                .into_iter()
                .next()
                .filter(|u| is_image_url(u)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> Option<Vec<u8>> {
        let local = format!("{}/../shared/data/{name}", env!("CARGO_MANIFEST_DIR"));
        let found =
            std::fs::read(&local).or_else(|_| std::fs::read(format!("/work/shared/data/{name}")));
        found
            .map_err(|e| eprintln!("skipping: {name} not found ({e})"))
            .ok()
    }

    fn parse(csv: &str) -> ParsedCatalog {
        parse_products(csv.as_bytes(), Currency::EUR).unwrap()
    }

    fn product<'a>(c: &'a ParsedCatalog, handle: &str) -> &'a ImportProduct {
        c.products
            .iter()
            .find(|p| p.handle.as_str() == handle)
            .unwrap_or_else(|| panic!("no product {handle}"))
    }

    fn values(p: &ImportProduct) -> Vec<String> {
        p.variants
            .iter()
            .map(|v| v.option_values.join("/"))
            .collect()
    }

    /// The records are streamed from the file (not held): rows of a handle that comes back
    /// after another product still join their product, the rows and lines stay those of
    /// the file (a quoted multi-line description shifts lines, not rows), and a refused
    /// short row is counted and reported without shifting the streamed records.
    #[test]
    fn streamed_records_keep_rows_lines_and_handles_that_reappear() {
        let c = parse(
            "Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant SKU,Variant Price\n\
             a,A,\"<p>one\ntwo</p>\",Size,S,A-S,1.00\n\
             b,B,,Size,S,B-S,2.00\n\
             a,,,,M,A-M,1.50\n\
             b,,\n\
             b,,,,M,B-M,2.50\n",
        );
        assert_eq!(c.rows, 5);
        let handles: Vec<_> = c.products.iter().map(|p| p.handle.as_str()).collect();
        assert_eq!(handles, ["a", "b"]);
        let a = product(&c, "a");
        assert_eq!(values(a), ["S", "M"]);
        assert_eq!(a.variants.iter().map(|v| v.row).collect::<Vec<_>>(), [2, 4]);
        let b = product(&c, "b");
        assert_eq!(values(b), ["S", "M"]);
        assert_eq!(b.variants[1].row, 6);
        assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
        assert_eq!((c.errors[0].row, c.errors[0].line), (5, 6));
        assert_eq!(c.lines.get(&6), Some(&7));
    }

    /// A product is handed out as soon as the read has passed its handle's last row, and
    /// not before: chunks of one product give what the whole parse gives, in the same
    /// order, while at most the products still open are held.
    #[test]
    fn the_stream_hands_out_products_once_their_last_row_is_read() {
        let csv = "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price\n\
             a,A,Size,S,A-S,1\n\
             b,B,Size,S,B-S,2\n\
             c,C,Size,S,C-S,3\n\
             a,,,M,A-M,1\n\
             d,D,Size,S,D-S,4\n\
             e,E,Size,S,C-S,5\n\
             e,,,M,E-M,5\n";
        let whole = parse(csv);
        let mut s = ProductStream::new(csv.as_bytes(), Currency::EUR).unwrap();
        assert_eq!(s.products_hint(), 5);
        let mut seen = Vec::new();
        let mut open = Vec::new();
        loop {
            let chunk = s.next_chunk(1);
            if chunk.is_empty() {
                break;
            }
            open.push((s.ready.len(), s.b.drafts.len()));
            seen.extend(chunk);
        }
        let handles = |ps: &[ImportProduct]| -> Vec<String> {
            ps.iter().map(|p| p.handle.as_str().to_string()).collect()
        };
        assert_eq!(handles(&seen), handles(&whole.products));
        assert_eq!(handles(&seen), ["a", "b", "c", "d", "e"]);
        assert_eq!(values(&seen[0]), ["S", "M"]);
        // `a` comes back on row 5: b and c are complete before it but wait behind it;
        // d is handed out before e's rows are read (no draft open).
        assert_eq!(open, [(2, 0), (1, 0), (0, 0), (0, 0), (0, 0)]);
        let end = s.finish();
        assert_eq!(end.errors, whole.errors);
        assert_eq!(
            (end.errors.len(), end.errors[0].row),
            (1, 7),
            "{:?}",
            end.errors
        );
        assert_eq!(end.rows, 7);
    }

    fn shopify_file(name: &str, products: usize, variants: usize) -> Option<ParsedCatalog> {
        let c = parse_products(&data(name)?, Currency::EUR).unwrap();
        assert_eq!(c.dialect, Dialect::ShopifyLegacy);
        assert_eq!(c.errors, []);
        assert_eq!(c.products.len(), products);
        assert_eq!(
            c.products.iter().map(|p| p.variants.len()).sum::<usize>(),
            variants
        );
        Some(c)
    }

    #[test]
    fn shopify_apparel() {
        let Some(c) = shopify_file("shopify_apparel.csv", 20, 22) else {
            return;
        };
        assert_eq!(c.rows, 22);
        let top = product(&c, "classic-varsity-top");
        assert_eq!(
            (top.options.clone(), values(top)),
            (
                vec!["Size".into()],
                vec!["Small".into(), "Medium".into(), "Large".into()]
            )
        );
        assert_eq!(
            top.variants.iter().map(|v| v.row).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let shirt = &c.products[0];
        assert_eq!(
            (shirt.handle.as_str(), shirt.title.as_str(), shirt.status),
            (
                "ocean-blue-shirt",
                "Ocean Blue Shirt",
                ProductStatus::Active
            )
        );
        assert_eq!(
            (shirt.options.len(), shirt.variants[0].option_values.len()),
            (0, 0)
        );
        assert_eq!(
            (shirt.variants[0].price_minor, shirt.tags.clone()),
            (5000, vec!["men".to_string()])
        );
        assert_eq!(
            (shirt.vendor.as_deref(), shirt.product_type.as_deref()),
            (Some("partners-demo"), None)
        );
        assert!(c.products.iter().all(|p| !p.body_html.contains('\u{a0}')));
        assert!(
            product(&c, "yellow-wool-jumper")
                .body_html
                .contains("wide sleeves")
        );
    }

    #[test]
    fn shopify_home_and_garden() {
        let Some(c) = shopify_file("shopify_home-and-garden.csv", 20, 21) else {
            return;
        };
        let pot = product(&c, "clay-plant-pot");
        assert_eq!(values(pot), ["Regular", "Large"]);
        let prices: Vec<_> = pot
            .variants
            .iter()
            .map(|v| (v.price_minor, v.inventory))
            .collect();
        assert_eq!(prices, [(999, 1), (1599, 3)]);
        assert_eq!(pot.images.len(), 2);
        assert_eq!(product(&c, "pink-armchair").images[0].position, 1);
        assert_eq!(
            product(&c, "copper-light").variants[0].compare_at_minor,
            Some(7500)
        );
    }

    #[test]
    fn shopify_jewelery() {
        let Some(c) = shopify_file("shopify_jewelery.csv", 20, 23) else {
            return;
        };
        let chain = product(&c, "chain-bracelet");
        assert_eq!(
            (chain.title.as_str(), chain.options.clone(), values(chain)),
            (
                "7 Shakra Bracelet",
                vec!["Color".into()],
                vec!["Blue".into(), "Black".into()]
            )
        );
        assert_eq!(chain.variants[0].compare_at_minor, Some(4499));
        assert_eq!(
            chain.variants[0].image_url.as_deref(),
            Some("https://burst.shopifycdn.com/photos/navy-blue-chakra-bracelet_925x.jpg")
        );
        assert_eq!(chain.images.len(), 2);
        assert_eq!(product(&c, "gemstone").options, ["Colour"]);
        assert_eq!(product(&c, "gemstone").images.len(), 4);
        assert_eq!(product(&c, "leather-anchor").variants[1].price_minor, 5500);
        assert_eq!(
            product(&c, "boho-earrings").variants[0].weight_grams,
            Some(28)
        );
        assert_eq!(
            product(&c, "boho-earrings")
                .images
                .iter()
                .map(|i| i.position)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(
            product(&c, "leather-anchor").tags,
            ["Anchor", "Gold", "Leather", "Silver"]
        );
        // The pendant's body spans lines 14-21: rows are spreadsheet records (14, 16), the
        // lines (14, 23) are kept beside them.
        let pendant = product(&c, "choker-with-gold-pendant");
        assert!(
            pendant
                .body_html
                .contains("<li>Length, 12\" with 2.5\" extender</li>")
        );
        assert_eq!(
            (pendant.row, product(&c, "choker-with-triangle").row),
            (14, 16)
        );
        assert_eq!((c.lines[&14], c.lines[&16]), (14, 23));
    }

    #[test]
    fn shopify_template_statuses_and_markets() {
        let Some(c) = shopify_file("shopify_product_template.csv", 3, 16) else {
            return;
        };
        let statuses: Vec<_> = c.products.iter().map(|p| p.status).collect();
        assert_eq!(
            statuses,
            [
                ProductStatus::Active,
                ProductStatus::Draft,
                ProductStatus::Archived
            ]
        );
        let shirt = product(&c, "example-shirt");
        assert_eq!(
            (
                shirt.options.clone(),
                shirt.variants.len(),
                shirt.images.len()
            ),
            (vec!["Color".into(), "Size".into()], 12, 7)
        );
        assert_eq!(shirt.variants[11].option_values, ["Purple", "L"]);
        assert_eq!(
            shirt.categories,
            ["Apparel & Accessories > Clothing > Clothing Tops > T-Shirts"]
        );
        let v = &shirt.variants[0];
        assert_eq!(
            (
                v.sku.as_ref().map(Sku::as_str),
                v.barcode.as_deref(),
                v.weight_grams
            ),
            (Some("SRT_COT_111"), Some("365275101829"), Some(145))
        );
        assert_eq!(
            shirt.images[1].alt.as_deref(),
            Some("T-Shirt color swatches")
        );
        let pants = product(&c, "example-pants");
        assert_eq!(
            (
                pants.variants[0].weight_grams,
                pants.variants[0].compare_at_minor,
                pants.images.len()
            ),
            (Some(227), Some(6495), 4)
        );
        assert!(product(&c, "example-hat").options.is_empty());
    }

    #[test]
    fn woocommerce_sample() {
        let Some(bytes) = data("woocommerce_sample_products.csv") else {
            return;
        };
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let c = parse_products(&bytes, Currency::EUR).unwrap();
        assert_eq!(
            (c.dialect, c.rows, c.products.len()),
            (Dialect::WooCommerce, 25, 18)
        );
        assert_eq!(c.errors, []);
        let tee = product(&c, "v-neck-t-shirt");
        assert_eq!(
            (tee.title.as_str(), tee.options.clone()),
            ("V-Neck T-Shirt", vec!["Color".into(), "Size".into()])
        );
        assert_eq!(values(tee), ["Red/", "Green/", "Blue/"]);
        let v: Vec<_> = tee
            .variants
            .iter()
            .map(|v| {
                (
                    v.sku.as_ref().map(|s| s.as_str().to_string()),
                    v.price_minor,
                    v.weight_grams,
                )
            })
            .collect();
        assert_eq!(v[2], (Some("woo-vneck-tee-blue".into()), 1500, Some(227)));
        assert_eq!(
            (tee.categories.clone(), tee.images.len()),
            (vec!["Clothing > Tshirts".to_string()], 3)
        );
        let hoodie = product(&c, "hoodie");
        assert_eq!(
            values(hoodie),
            ["Red/No", "Green/No", "Blue/No", "Blue/Yes"]
        );
        assert_eq!(
            (
                hoodie.variants[0].price_minor,
                hoodie.variants[0].compare_at_minor
            ),
            (4200, Some(4500))
        );
        let beanie = &product(&c, "beanie").variants[0];
        assert_eq!(
            (
                beanie.price_minor,
                beanie.compare_at_minor,
                beanie.inventory,
                beanie.weight_grams
            ),
            (1800, Some(2000), 0, Some(91))
        );
        assert!(product(&c, "beanie").options.is_empty());
        let group = product(&c, "logo-collection");
        assert_eq!(
            (
                group.status,
                group.variants[0].price_minor,
                group.images.len()
            ),
            (ProductStatus::Draft, 0, 4)
        );
        assert_eq!(product(&c, "album").variants[0].price_minor, 1500);
        assert_eq!(
            product(&c, "wordpress-pennant").variants[0].price_minor,
            1105
        );
    }

    #[test]
    fn woocommerce_rules() {
        let c = parse(
            "\u{feff}ID,Type,SKU,Name,Published,Weight (kg),Sale price,Regular price,Parent,Attribute 1 name,Attribute 1 value(s)\n\
            10,variable,cup,Cup,0,0.25,,,,Size,\"S, L\"\n\
            11,variation,cup-s,Cup - S,1,,,5,id:10,Size,S\n\
            12,variation,cup-l,Cup - L,1,0.4,,abc,cup,Size,L\n\
            13,variation,x,Lost,1,,,5,nope,Size,S\n\
            14,simple,mug,Cup,-1,,,7.5,,,\n",
        );
        let (cup, mug) = (&c.products[0], &c.products[1]);
        assert_eq!((cup.handle.as_str(), mug.handle.as_str()), ("cup", "cup-2"));
        assert_eq!(
            (cup.status, mug.status),
            (ProductStatus::Draft, ProductStatus::Draft)
        );
        assert_eq!(
            (values(cup), cup.variants[0].weight_grams),
            (vec!["S".to_string()], Some(250))
        );
        let errs: Vec<_> = c
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_deref()))
            .collect();
        assert_eq!(errs, [(4, Some("Regular price")), (5, Some("Parent"))]);
    }

    #[test]
    fn shopify_2024_headers() {
        let c = parse(
            "Title,URL handle,Description,Vendor,Product category,Type,Tags,Published on online store,Status,SKU,Barcode,Option1 name,Option1 value,Option2 name,Option2 value,Price,Compare-at price,Inventory quantity,Weight value (grams),Product image URL,Image position,Image alt text,Variant image URL\n\
            Linen Shirt,linen-shirt,<p>Soft</p>,Acme,Apparel & Accessories > Clothing,Shirts,\"a, b, a\",TRUE,active,LS-S,'4006381333931,Size,S,Color,White,49.90,59.90,3,180,https://i/1.jpg,1,Front,https://i/3.jpg\n\
            ,linen-shirt,,,,,,,,LS-M,,,M,,White,49.90,,2,,https://i/2.jpg,2,,\n\
            Wool Scarf,,,,,,,FALSE,,,,Title,Default Title,,,20,,,,,,,\n",
        );
        assert_eq!(c.dialect, Dialect::Shopify2024);
        assert_eq!(c.errors, []);
        let shirt = &c.products[0];
        assert_eq!(
            (shirt.options.clone(), values(shirt)),
            (
                vec!["Size".into(), "Color".into()],
                vec!["S/White".into(), "M/White".into()]
            )
        );
        assert_eq!(
            (shirt.tags.clone(), shirt.categories.len()),
            (vec!["a".into(), "b".into()], 1)
        );
        let v = &shirt.variants[0];
        assert_eq!(
            (
                v.price_minor,
                v.compare_at_minor,
                v.inventory,
                v.weight_grams
            ),
            (4990, Some(5990), 3, Some(180))
        );
        assert_eq!(v.barcode.as_deref(), Some("4006381333931"));
        let urls: Vec<_> = shirt
            .images
            .iter()
            .map(|i| (i.url.as_str(), i.position))
            .collect();
        assert_eq!(
            urls,
            [
                ("https://i/1.jpg", 1),
                ("https://i/2.jpg", 2),
                ("https://i/3.jpg", 3)
            ]
        );
        let scarf = &c.products[1];
        assert_eq!(
            (
                scarf.handle.as_str(),
                scarf.status,
                scarf.options.len(),
                scarf.variants[0].price_minor
            ),
            ("wool-scarf", ProductStatus::Draft, 0, 2000)
        );
    }

    #[test]
    fn bad_prices_are_row_errors() {
        let c = parse(
            "Handle,Title,Option1 Name,Option1 Value,Variant Price,Variant Barcode\r\n\
            bad,Bad,Title,Default Title,abc,\r\n\
            mixed,Mixed,Size,S,3.65275E+11,\r\n\
            mixed,,,M,12,\r\n\
            \"good\",\"Good\r\nThing\",Title,Default Title,9.5,3.65275E+11\r\n\
            good,,,,,\r\n\
            Ok Handle,Ok,Title,Default Title,,\r\n",
        );
        assert_eq!(c.rows, 6);
        let handles: Vec<_> = c.products.iter().map(|p| p.handle.as_str()).collect();
        assert_eq!(handles, ["mixed", "good"]);
        assert_eq!(values(&c.products[0]), ["M"]);
        assert_eq!(
            (
                c.products[1].variants[0].price_minor,
                c.products[1].variants[0].barcode.as_deref()
            ),
            (950, None)
        );
        let errs: Vec<_> = c
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_deref().unwrap_or(""), e.message.as_str()))
            .collect();
        assert_eq!(errs[0], (2, "Variant Price", "price 'abc' is not a number"));
        assert_eq!(
            (errs[1].0, errs[1].1, errs[1].2.contains("exponent")),
            (3, "Variant Price", true)
        );
        assert_eq!((errs[2].0, errs[2].1), (5, "Variant Barcode"));
        // Row 5's title spans two lines: the next record is row 6 on line 7, and so on.
        assert_eq!(
            (errs[3].0, errs[3].1, errs[3].2),
            (7, "Variant Price", "price is empty")
        );
        assert_eq!(c.errors[3].line, 8);
        assert_eq!(errs.len(), 4);
    }

    #[test]
    fn handles_and_duplicates() {
        let c = parse(
            "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price\n\
            Ocean Blue,Ocean Blue Shirt,Size,S,A1,10\nOcean Blue,,,M,A1,11\nOcean Blue,,,M,A2,12\nOcean Blue,,,L,A2,13\n\
            NoTitle,,Size,S,B,1\nNoTitle,,,M,C,1\n",
        );
        let p = &c.products[0];
        assert_eq!(
            (c.products.len(), p.handle.as_str(), values(p)),
            (
                1,
                "ocean-blue-shirt",
                vec!["S".into(), "M".into(), "L".into()]
            )
        );
        assert_eq!(
            p.variants
                .iter()
                .map(|v| v.sku.as_ref().map(Sku::as_str))
                .collect::<Vec<_>>(),
            [Some("A1"), None, Some("A2")]
        );
        let errs: Vec<_> = c
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            errs,
            [(3, "Variant SKU"), (4, "Option1 Value"), (6, "Handle")]
        );
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(
            parse_products(b"", Currency::EUR),
            Err(ImportError::Empty)
        ));
        assert!(matches!(
            parse_products(b"\xEF\xBB\xBF\r\n", Currency::EUR),
            Err(ImportError::Empty)
        ));
        let vendors = b"vendor_name,subdomain,owner_email\nA,a,a@b.lu\n";
        match parse_products(vendors, Currency::EUR) {
            Err(e @ ImportError::UnknownFormat { .. }) => assert!(
                e.to_string()
                    .ends_with("found headers: vendor_name, subdomain, owner_email")
            ),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(parse_products(b"Handle,Variant SKU\nx,X\n", Currency::EUR), Err(ImportError::MissingColumn(c)) if c == "Title")
        );
        // Without a price column a Shopify file is partial: read, the prices left to the store.
        let partial = parse("Handle,Title,Variant SKU,Variant Inventory Qty\nx,X,X-1,4\n");
        assert!(partial.columns.partial() && !partial.columns.price);
        assert_eq!(partial.products[0].variants[0].inventory, 4);
        let bom = parse("\u{feff}Handle,Title,Variant Price\r\nmug,Mug,5\r\n");
        assert_eq!(
            (bom.dialect, bom.products.len()),
            (Dialect::ShopifyLegacy, 1)
        );
        let e = parse_products(b"Artikel;Preis\nK\xE4se;4,50\n", Currency::EUR)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.ends_with("found headers: Artikel, Preis (the file was Windows-1252, not UTF-8; converted to UTF-8 (check accented letters; to avoid this, save it as \"CSV UTF-8 (Comma delimited)\"); the file is semicolon-delimited (a European spreadsheet export); read with ';' as the delimiter)"),
            "{e}"
        );
        let hdr =
            csv::StringRecord::from(vec!["\u{feff}ID", "Type", "SKU", "Name", "Regular price"]);
        assert_eq!(detect(&hdr), Some(Dialect::WooCommerce));
    }
}
