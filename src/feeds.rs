//! Marketplace feeds, the operations: fetching a source's file (SSRF-guarded, conditional
//! GET, gzip, size limit), staging it ([`stage`]), publishing staged items into the catalog
//! ([`publish`], [`link`]) and keeping published products in step with later feed runs
//! without undoing the merchant's overrides ([`apply_to_product`]).
//!
//! Parsing lives in [`crate::import::feed`], storage in [`crate::store::feeds`]; products
//! are written only through the catalog's `TenantDb` functions (`create_product`,
//! `update_product`), so their audit entries and `product.*` events are the catalog's.

use crate::domain::{Currency, DomainError, Handle, ProductStatus, Sku};
use crate::import::feed::{
    self, Availability, FeedError, FeedProduct, FeedReader, Issue, OPTION_ATTRIBUTES,
};
use crate::store::audit::Actor;
use crate::store::catalog::{ImageInput, Product, ProductInput, VariantInput};
use crate::store::feeds::{FeedSource, ImportCounts, Overrides, StageInput, StagedItem};
use crate::store::{StoreError, TenantDb};
use crate::webhooks::target::{EndpointUrl, GuardedResolver};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Items written per staging transaction.
pub const STAGE_BATCH: usize = 500;
/// Stock given to a variant whose feed says it is available without a quantity
/// (`in_stock`, `preorder`, `backorder` and no `atalanda:quantity`): the storefront sells a
/// variant while its stock is above zero.
pub const UNCOUNTED_STOCK: i64 = 9_999;

/// Fetching settings.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Allow loopback/private targets and plain http (development and tests only: it
    /// disables the SSRF guard, like `--webhooks-allow-private`).
    pub allow_private: bool,
    /// Largest feed accepted, in bytes, compressed and decompressed (default 100 MB).
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, headers, body).
    pub timeout: Duration,
    /// Where fetched files are spooled while they are staged (deleted afterwards).
    pub spool_dir: PathBuf,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_bytes: 100 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(300),
            spool_dir: std::env::temp_dir(),
        }
    }
}

/// Errors of feed operations; the web layer maps each once.
#[derive(Debug, thiserror::Error)]
pub enum FeedsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A request value is wrong: 422 naming the field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    /// The file could not be fetched or read as a feed; the run `import_id` records it and
    /// the previous staging is kept. Codes: those of [`FeedError`], plus `fetch_failed`,
    /// `http_status`, `too_large`, `url_refused`.
    #[error("{message}")]
    File {
        code: &'static str,
        message: String,
        import_id: Option<Uuid>,
    },
}

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> FeedsError {
    FeedsError::Invalid {
        field,
        code,
        message: message.into(),
    }
}

/// The HTTP client of feed fetches: no proxy, names resolved through the SSRF guard, at
/// most 5 redirects each checked by the same URL rules.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    pub config: Arc<FeedConfig>,
}

/// The result of a fetch.
#[derive(Debug)]
pub enum Fetched {
    /// `304 Not Modified`: one request, nothing else done.
    NotModified,
    /// The body spooled to `path` (delete it after use), with the new validators.
    Body {
        path: PathBuf,
        etag: Option<String>,
        last_modified: Option<String>,
        gzip: bool,
    },
}

impl Fetcher {
    /// Builds the client. Errors: a message (TLS set-up).
    pub fn new(config: FeedConfig) -> Result<Self, String> {
        let allow = config.allow_private;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("more than 5 redirects")
                } else if let Err(e) = EndpointUrl::parse(attempt.url().as_str(), allow) {
                    attempt.error(format!("redirect refused: {e}"))
                } else {
                    attempt.follow()
                }
            }))
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("Souk-Feeds/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: allow,
            }))
            .build()
            .map_err(|e| format!("feed HTTP client: {e}"))?;
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    /// Checks a feed URL as a source is saved: http(s), no credentials, no internal host
    /// (unless private targets are allowed). Errors: the reason.
    pub fn check_url(&self, url: &str) -> Result<String, String> {
        let u = EndpointUrl::parse(url, true)?;
        if !self.config.allow_private {
            EndpointUrl::parse(url, false)
                .or_else(|e| {
                    // Feeds may be plain http; only the address rules apply.
                    if url.trim().starts_with("http://") && e == "url must use https" {
                        Ok(u.clone())
                    } else {
                        Err(e)
                    }
                })
                .and_then(|_| {
                    let https = url.trim().replacen("http://", "https://", 1);
                    EndpointUrl::parse(&https, false).map(|_| u.clone())
                })?;
        }
        Ok(u.as_str().to_string())
    }

    /// GETs `url` with `If-None-Match`/`If-Modified-Since` from the previous answer and
    /// `Accept-Encoding: gzip`; spools the body (at most `max_bytes`) to a file. Errors:
    /// `(code, message)`: `url_refused`, `fetch_failed` (DNS, connect, timeout), `http_status`
    /// (not 2xx/304), `too_large`.
    pub async fn fetch(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Fetched, (&'static str, String)> {
        self.check_url(url).map_err(|e| ("url_refused", e))?;
        let mut req = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip");
        if let Some(e) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        if let Some(m) = last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, m);
        }
        let mut res = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else if e.is_redirect() {
                "redirect refused"
            } else {
                "request failed"
            };
            (
                "fetch_failed",
                format!("fetching {url}: {kind} ({})", error_chain(&e)),
            )
        })?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(("http_status", format!("the feed URL answered {status}")));
        }
        let max = self.config.max_bytes;
        if res.content_length().is_some_and(|n| n > max) {
            return Err((
                "too_large",
                format!("the feed is larger than the {max}-byte limit"),
            ));
        }
        let header = |n: reqwest::header::HeaderName| {
            res.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let new_etag = header(reqwest::header::ETAG);
        let new_lm = header(reqwest::header::LAST_MODIFIED);
        let gzip = header(reqwest::header::CONTENT_ENCODING)
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let path = self
            .config
            .spool_dir
            .join(format!("feed-{}.part", Uuid::now_v7()));
        let io = |e: std::io::Error| ("fetch_failed", format!("spooling the feed: {e}"));
        let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
        let mut total: u64 = 0;
        let result = async {
            use tokio::io::AsyncWriteExt;
            loop {
                let chunk = res.chunk().await.map_err(|e| {
                    (
                        "fetch_failed",
                        format!("reading the feed body: {}", error_chain(&e)),
                    )
                })?;
                let Some(chunk) = chunk else { break };
                total += chunk.len() as u64;
                if total > max {
                    return Err((
                        "too_large",
                        format!("the feed is larger than the {max}-byte limit"),
                    ));
                }
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        Ok(Fetched::Body {
            path,
            etag: new_etag,
            last_modified: new_lm,
            gzip,
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// A reader that fails once more than `limit` bytes came through it (and says so in
/// `hit`): bounds what a gzip body expands to.
struct Limited<R> {
    inner: R,
    left: u64,
    hit: Arc<AtomicBool>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.hit.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("feed larger than the size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Opens feed bytes for parsing, refusing more than `max_bytes` (the flag tells a limit
/// error apart from other read errors). Gzip is expanded beforehand by [`gunzip_spooled`].
pub fn open_bytes<R: Read + Send + 'static>(
    inner: R,
    max_bytes: u64,
) -> (Box<dyn BufRead + Send>, Arc<AtomicBool>) {
    let hit = Arc::new(AtomicBool::new(false));
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
        64 * 1024,
        Limited {
            inner,
            left: max_bytes,
            hit: hit.clone(),
        },
    ));
    (reader, hit)
}

/// Whether `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Expands a gzip stream into a new spool file in `dir`, at most `max_bytes`, before
/// anything is staged (so a feed that expands beyond the limit changes nothing). Blocking:
/// run it on the blocking pool. Errors: `too_large`, `invalid_gzip`.
pub fn gunzip_spooled(
    src: impl Read,
    dir: &std::path::Path,
    max_bytes: u64,
) -> Result<PathBuf, (&'static str, String)> {
    let path = dir.join(format!("feed-{}.xml.part", Uuid::now_v7()));
    let io = |e: std::io::Error| ("fetch_failed", format!("spooling the feed: {e}"));
    let mut out = std::fs::File::create(&path).map_err(io)?;
    let mut dec = flate2::read::MultiGzDecoder::new(src).take(max_bytes + 1);
    let n = match std::io::copy(&mut dec, &mut out) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err((
                "invalid_gzip",
                format!("the feed is not a valid gzip stream: {e}"),
            ));
        }
    };
    if n > max_bytes {
        let _ = std::fs::remove_file(&path);
        return Err((
            "too_large",
            format!("the feed expands beyond the {max_bytes}-byte limit"),
        ));
    }
    Ok(path)
}

/// Stages a spooled file (gunzipping it first when `gzip` or when it starts with the gzip
/// magic); the spool files are deleted afterwards.
#[allow(clippy::too_many_arguments)]
pub async fn stage_spooled(
    tdb: &TenantDb,
    actor: &Actor,
    config: &FeedConfig,
    source: &FeedSource,
    language: &str,
    trigger: &str,
    path: PathBuf,
    gzip: bool,
    currency: Currency,
) -> Result<Uuid, FeedsError> {
    let mut magic = [0u8; 2];
    let head = std::fs::File::open(&path)
        .and_then(|mut f| f.read(&mut magic).map(|n| n == 2))
        .unwrap_or(false);
    let plain = if gzip || (head && is_gzip(&magic)) {
        let (src, dir, max) = (path.clone(), config.spool_dir.clone(), config.max_bytes);
        let r = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&src).map_err(|e| ("fetch_failed", e.to_string()))?;
            gunzip_spooled(f, &dir, max)
        })
        .await
        .unwrap_or_else(|e| Err(("fetch_failed", format!("gunzip task: {e}"))));
        let _ = tokio::fs::remove_file(&path).await;
        match r {
            Ok(p) => p,
            Err((code, message)) => {
                let import = tdb
                    .begin_feed_import(actor, source.id, language, trigger)
                    .await?;
                tdb.fail_feed_import(import, "failed", Some(&message))
                    .await?;
                tdb.record_feed_fetch(source.id, language, "failed", Some(&message), None)
                    .await?;
                return Err(FeedsError::File {
                    code,
                    message,
                    import_id: Some(import),
                });
            }
        }
    } else {
        path
    };
    let result = match std::fs::File::open(&plain) {
        Ok(f) => {
            let (reader, hit) = open_bytes(f, config.max_bytes);
            stage(tdb, actor, source, language, trigger, reader, hit, currency).await
        }
        Err(e) => Err(FeedsError::File {
            code: "fetch_failed",
            message: format!("reading the spooled feed: {e}"),
            import_id: None,
        }),
    };
    let _ = tokio::fs::remove_file(&plain).await;
    result
}

/// An item the run could not stage (no id, duplicate id): it is reported, not stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefusedItem {
    /// 1-based position of the item in the file.
    pub position: u64,
    pub id: Option<String>,
    pub reason: String,
}

/// Most refused items listed in a run's report.
const MAX_REFUSED: usize = 1000;

/// Stages one file of `source` in `language`: detects the format, normalises every item
/// against the store currency, writes them in batches of [`STAGE_BATCH`] (new, changed in
/// place, unchanged), marks items missing from the file as disappeared, stores the run's
/// counts and report, writes `feed.import.completed`, and then brings published products in
/// step ([`apply_to_product`]). Returns the run's id.
///
/// Errors: `File` (the file is not a readable feed: the run is `failed`, the staging area
/// keeps what it had; items staged before a mid-file error keep their new content but
/// nothing is marked disappeared), `Store`.
#[allow(clippy::too_many_arguments)]
pub async fn stage(
    tdb: &TenantDb,
    actor: &Actor,
    source: &FeedSource,
    language: &str,
    trigger: &str,
    input: Box<dyn BufRead + Send>,
    limit_hit: Arc<AtomicBool>,
    currency: Currency,
) -> Result<Uuid, FeedsError> {
    let import = tdb
        .begin_feed_import(actor, source.id, language, trigger)
        .await?;
    let fail = |code: &'static str, message: String| async move {
        let _ = tdb.fail_feed_import(import, "failed", Some(&message)).await;
        let _ = tdb
            .record_feed_fetch(source.id, language, "failed", Some(&message), None)
            .await;
        FeedsError::File {
            code,
            message,
            import_id: Some(import),
        }
    };
    let file_error = |e: FeedError, hit: &AtomicBool| {
        if hit.load(Ordering::Relaxed) {
            ("too_large", "the feed is larger than the size limit".into())
        } else {
            (e.code, e.message)
        }
    };
    let mut reader = match FeedReader::open(input) {
        Ok(r) => r,
        Err(e) => {
            let (c, m) = file_error(e, &limit_hit);
            return Err(fail(c, m).await);
        }
    };
    let format = reader.format();
    let mut counts = ImportCounts::default();
    let mut refused: Vec<RefusedItem> = vec![];
    let mut refused_total = 0usize;
    // Feed ids staged by this run (duplicates are refused; the run's end marks the
    // source's other items disappeared).
    let mut seen: HashSet<String> = HashSet::new();
    let mut groups: HashMap<String, (String, Option<String>, Option<String>)> = HashMap::new();
    let mut batch: Vec<StageInput> = Vec::with_capacity(STAGE_BATCH);
    let mut changed: Vec<(Uuid, Vec<String>)> = vec![];
    loop {
        let next = reader.next();
        let raw = match next {
            None => None,
            Some(Ok(raw)) => Some(raw),
            Some(Err(e)) => {
                flush(
                    tdb,
                    import,
                    source.id,
                    language,
                    &mut batch,
                    &mut counts,
                    &mut changed,
                )
                .await?;
                let (c, m) = file_error(e, &limit_hit);
                return Err(fail(c, m).await);
            }
        };
        let Some(raw) = raw else { break };
        counts.items_total += 1;
        let mut it = feed::normalize(&raw, currency);
        let id = it.product.id.clone();
        if id.is_empty() {
            refused_total += 1;
            if refused.len() < MAX_REFUSED {
                refused.push(RefusedItem {
                    position: it.position,
                    id: None,
                    reason: "the item has no id".into(),
                });
            }
            continue;
        }
        if !seen.insert(id.clone()) {
            refused_total += 1;
            if refused.len() < MAX_REFUSED {
                refused.push(RefusedItem {
                    position: it.position,
                    id: Some(id.clone()),
                    reason: format!("duplicate id '{id}': an earlier item has the same id; this one was not staged"),
                });
            }
            continue;
        }
        if let Some(g) = it.product.item_group_id.clone() {
            group_check(&mut groups, &g, &mut it.product, &mut it.warnings);
        }
        let raw_json = serde_json::to_value(&raw.attrs).unwrap_or_default();
        batch.push(StageInput {
            item: it.product,
            raw: raw_json,
            errors: it.errors,
            warnings: it.warnings,
        });
        if batch.len() >= STAGE_BATCH {
            flush(
                tdb,
                import,
                source.id,
                language,
                &mut batch,
                &mut counts,
                &mut changed,
            )
            .await?;
        }
    }
    flush(
        tdb,
        import,
        source.id,
        language,
        &mut batch,
        &mut counts,
        &mut changed,
    )
    .await?;
    let report = serde_json::json!({
        "format": format.as_str(),
        "unknown_attributes": reader.unknown_attributes(),
        "refused_total": refused_total,
        "refused": refused,
    });
    let gone = tdb
        .complete_feed_import(
            import,
            source.id,
            language,
            format.as_str(),
            &counts,
            &report,
            &seen,
        )
        .await?;
    tdb.link_translations(source.id, &source.default_language)
        .await?;
    // Bring published products in step: changed items and those that disappeared.
    let mut products: Vec<Uuid> = vec![];
    let mut touched: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
    touched.extend(gone);
    for item in tdb.get_staged_items(&touched).await? {
        if let Some(p) = item.product_id
            && !products.contains(&p)
        {
            products.push(p);
        }
    }
    let mut updated = 0;
    for p in products {
        match apply_to_product(tdb, actor, p, currency, Some(source)).await {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(product = %p, error = %e, "feed sync of a product failed"),
        }
    }
    if updated > 0 {
        tdb.set_feed_import_products_updated(import, updated)
            .await?;
    }
    Ok(import)
}

/// Items of one `item_group_id` must agree on the fields a product shares (brand,
/// product_type): a later item that disagrees gets a warning naming the first.
fn group_check(
    groups: &mut HashMap<String, (String, Option<String>, Option<String>)>,
    g: &str,
    p: &mut FeedProduct,
    warnings: &mut Vec<Issue>,
) {
    match groups.get(g) {
        None => {
            groups.insert(
                g.to_string(),
                (p.id.clone(), p.brand.clone(), p.product_type.clone()),
            );
        }
        Some((first, brand, ptype)) => {
            for (field, mine, theirs) in [
                ("brand", &p.brand, brand),
                ("product_type", &p.product_type, ptype),
            ] {
                if mine != theirs {
                    warnings.push(Issue {
                        field: field.into(),
                        code: "group_mismatch".into(),
                        message: format!(
                            "item_group_id '{g}': {field} '{}' differs from item {first}'s '{}'; the product keeps the first item's",
                            mine.as_deref().unwrap_or(""),
                            theirs.as_deref().unwrap_or("")
                        ),
                    });
                }
            }
        }
    }
}

async fn flush(
    tdb: &TenantDb,
    import: Uuid,
    source: Uuid,
    language: &str,
    batch: &mut Vec<StageInput>,
    counts: &mut ImportCounts,
    changed: &mut Vec<(Uuid, Vec<String>)>,
) -> Result<(), FeedsError> {
    if batch.is_empty() {
        return Ok(());
    }
    let out = tdb
        .stage_feed_items(import, source, language, batch)
        .await?;
    counts.items_new += out.new;
    counts.items_changed += out.changed;
    counts.items_unchanged += out.unchanged;
    counts.items_with_errors += out.with_errors;
    changed.extend(out.published_changed);
    batch.clear();
    Ok(())
}

/// Fetches and stages one file of a source. `304` records `not_modified` (one request,
/// the staging untouched). Errors: as [`stage`]; fetch failures are `File` errors recorded
/// on the file and the source.
pub async fn fetch_and_stage(
    tdb: &TenantDb,
    actor: &Actor,
    fetcher: &Fetcher,
    source: &FeedSource,
    language: &str,
    trigger: &str,
    currency: Currency,
) -> Result<Option<Uuid>, FeedsError> {
    let target = tdb
        .feed_fetch_target(source.id, language)
        .await?
        .ok_or(FeedsError::NotFound("feed file"))?;
    let Some(url) = target.url else {
        return Err(invalid(
            "language",
            "no_url",
            format!("the {language} file of this source is uploaded, not fetched"),
        ));
    };
    match fetcher
        .fetch(
            &url,
            target.etag.as_deref(),
            target.last_modified.as_deref(),
        )
        .await
    {
        Ok(Fetched::NotModified) => {
            let import = tdb
                .begin_feed_import(actor, source.id, language, trigger)
                .await?;
            tdb.fail_feed_import(import, "not_modified", None).await?;
            tdb.record_feed_fetch(source.id, language, "not_modified", None, None)
                .await?;
            Ok(Some(import))
        }
        Ok(Fetched::Body {
            path,
            etag,
            last_modified,
            gzip,
        }) => {
            let result = stage_spooled(
                tdb,
                actor,
                &fetcher.config,
                source,
                language,
                trigger,
                path,
                gzip,
                currency,
            )
            .await;
            let import = result?;
            tdb.record_feed_fetch(
                source.id,
                language,
                "ok",
                None,
                Some((etag.as_deref(), last_modified.as_deref())),
            )
            .await?;
            Ok(Some(import))
        }
        Err((code, message)) => {
            let import = tdb
                .begin_feed_import(actor, source.id, language, trigger)
                .await?;
            tdb.fail_feed_import(import, "failed", Some(&message))
                .await?;
            tdb.record_feed_fetch(source.id, language, "failed", Some(&message), None)
                .await?;
            Err(FeedsError::File {
                code,
                message,
                import_id: Some(import),
            })
        }
    }
}

/// One product a publish created, or one selected item it could not publish.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishReport {
    /// `{item_ids, product_id}` per created product.
    pub published: Vec<PublishedProduct>,
    pub failed: Vec<PublishFailure>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishedProduct {
    pub product_id: Uuid,
    pub handle: String,
    /// Staged items now linked to it (several for an `item_group_id`).
    pub item_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishFailure {
    pub item_id: Uuid,
    pub code: String,
    pub reason: String,
}

fn option_label(name: &str) -> String {
    let s = name.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// Stock of a variant from its feed item (see [`UNCOUNTED_STOCK`]).
pub fn feed_stock(p: &FeedProduct) -> i64 {
    match (p.quantity, p.availability) {
        (Some(q), _) => q,
        (None, Some(Availability::OutOfStock)) => 0,
        (None, _) => UNCOUNTED_STOCK,
    }
}

/// `(price, compare_at)` from the feed: a `sale_price` sells, `price` becomes compare-at.
fn feed_prices(p: &FeedProduct) -> (i64, Option<i64>) {
    match (p.price_minor, p.sale_price_minor) {
        (Some(price), Some(sale)) => (sale, Some(price)),
        (Some(price), None) => (price, None),
        (None, Some(sale)) => (sale, None),
        (None, None) => (0, None),
    }
}

fn feed_images(items: &[&StagedItem]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for i in items {
        for u in i
            .item
            .image_link
            .iter()
            .chain(i.item.additional_image_links.iter())
        {
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
    }
    out
}

/// The variant of `item`, with the overrides applied.
fn variant_of(item: &StagedItem, options: &[&str], o: &Overrides) -> VariantInput {
    let (price, compare) = feed_prices(&item.item);
    VariantInput {
        sku: Sku::parse(&item.feed_id).ok(),
        option_values: options
            .iter()
            .map(|name| {
                item.item
                    .options
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| "-".into())
            })
            .collect(),
        price_minor: o.price_minor.unwrap_or(price),
        compare_at_minor: o.compare_at_minor.or(compare),
        inventory: o.inventory.unwrap_or_else(|| feed_stock(&item.item)),
        barcode: item.item.gtin.clone(),
        weight_grams: item.item.shipping_weight_grams,
        inventory_policy: crate::domain::InventoryPolicy::Deny,
        inventory_tracked: true,
    }
}

/// Option names of a group: the option attributes whose values differ between its items.
fn group_options(items: &[&StagedItem]) -> Vec<&'static str> {
    if items.len() < 2 {
        return vec![];
    }
    OPTION_ATTRIBUTES
        .iter()
        .copied()
        .filter(|name| {
            let vals: HashSet<Option<&String>> = items
                .iter()
                .map(|i| {
                    i.item
                        .options
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v)
                })
                .collect();
            vals.len() > 1
        })
        .collect()
}

fn status_of(raw: &str) -> Result<ProductStatus, DomainError> {
    ProductStatus::parse(raw)
}

/// A new product from staged items (one, or the items of one `item_group_id`).
fn new_input(items: &[&StagedItem], o: &Overrides, handle: Handle) -> ProductInput {
    let first = items[0];
    let options = group_options(items);
    ProductInput {
        attributes: None,
        handle,
        title: o
            .title
            .clone()
            .or_else(|| first.item.title.clone())
            .unwrap_or_else(|| first.feed_id.clone()),
        body_html: o
            .description
            .clone()
            .or_else(|| first.item.description.clone())
            .unwrap_or_default(),
        vendor: first.item.brand.clone(),
        product_type: first.item.product_type.clone(),
        tags: first.item.additional_product_types.clone(),
        status: o
            .status
            .as_deref()
            .and_then(|s| status_of(s).ok())
            .unwrap_or(ProductStatus::Active),
        options: options.iter().map(|n| option_label(n)).collect(),
        featured: false,
        seo: None,
        variants: items.iter().map(|i| variant_of(i, &options, o)).collect(),
        images: o
            .images
            .clone()
            .unwrap_or_else(|| feed_images(items))
            .into_iter()
            .map(|url| ImageInput { url, alt: None })
            .collect(),
        collections: vec![],
    }
}

fn handle_candidates(item: &StagedItem) -> Vec<Handle> {
    let mut out = vec![];
    if let Some(t) = &item.item.title
        && let Ok(h) = Handle::from_title(t)
    {
        out.push(h.clone());
        if let Ok(h2) = Handle::from_title(&format!("{} {}", t, item.feed_id)) {
            out.push(h2);
        }
    }
    if let Ok(h) = Handle::from_title(&item.feed_id) {
        out.push(h);
    }
    out
}

/// Publishes staged items as products: each selected item (with the other items of its
/// `item_group_id`, as variants) becomes one product created through the catalog
/// (`product.created` event, audit entry), and its items are linked to it. Items with
/// errors, disappeared or already linked are reported in `failed`; ids of other tenants
/// are `not_found` there too (indistinguishable from missing ones).
pub async fn publish(
    tdb: &TenantDb,
    actor: &Actor,
    ids: &[Uuid],
    currency: Currency,
) -> Result<PublishReport, FeedsError> {
    let found = tdb.get_staged_items(ids).await?;
    let mut report = PublishReport {
        published: vec![],
        failed: vec![],
    };
    let by_id: HashMap<Uuid, &StagedItem> = found.iter().map(|i| (i.id, i)).collect();
    let mut done: HashSet<Uuid> = HashSet::new();
    let mut sources: BTreeSet<Uuid> = BTreeSet::new();
    let fail = |r: &mut PublishReport, id: Uuid, code: &str, reason: String| {
        r.failed.push(PublishFailure {
            item_id: id,
            code: code.into(),
            reason,
        })
    };
    for id in ids {
        if done.contains(id) {
            continue;
        }
        let Some(item) = by_id.get(id) else {
            fail(
                &mut report,
                *id,
                "not_found",
                "staged item not found".into(),
            );
            continue;
        };
        if item.product_id.is_some() {
            fail(
                &mut report,
                *id,
                "already_published",
                "the item is already linked to a product".into(),
            );
            continue;
        }
        if item.disappeared_at.is_some() {
            fail(
                &mut report,
                *id,
                "disappeared",
                "the item is no longer in the feed".into(),
            );
            continue;
        }
        if !item.errors.is_empty() {
            let why: Vec<&str> = item.errors.iter().map(|e| e.message.as_str()).collect();
            fail(
                &mut report,
                *id,
                "item_has_errors",
                format!("the item has errors: {}", why.join("; ")),
            );
            continue;
        }
        let group: Vec<StagedItem> = match &item.item.item_group_id {
            Some(g) => tdb
                .staged_group(item.source_id, &item.language, g)
                .await?
                .into_iter()
                .filter(|i| {
                    i.product_id.is_none() && i.errors.is_empty() && i.disappeared_at.is_none()
                })
                .collect(),
            None => vec![(*item).clone()],
        };
        let members: Vec<&StagedItem> = if group.is_empty() {
            vec![*item]
        } else {
            group.iter().collect()
        };
        for m in &members {
            done.insert(m.id);
        }
        let o = Overrides::default();
        let mut created: Option<Product> = None;
        let mut last_err = String::new();
        for handle in handle_candidates(item) {
            let input = new_input(&members, &o, handle);
            match tdb.create_product(actor, &input, currency.as_str()).await {
                Ok(p) => {
                    created = Some(p);
                    break;
                }
                Err(StoreError::Conflict {
                    field: "handle", ..
                }) => {
                    last_err = "every handle derived from the title and id is taken".into();
                    continue;
                }
                Err(StoreError::Conflict { message, .. }) => {
                    last_err = format!("{message}: link the item to the existing product instead");
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(p) = created else {
            fail(&mut report, *id, "conflict", last_err);
            continue;
        };
        let item_ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
        tdb.link_staged_items(&item_ids, p.id).await?;
        sources.insert(item.source_id);
        report.published.push(PublishedProduct {
            product_id: p.id,
            handle: p.handle,
            item_ids,
        });
    }
    // The same feed ids in the sources' other languages become the products'
    // translations: one statement per source, after every product is linked.
    for source in sources {
        if let Some(src) = tdb.get_feed_source(source).await? {
            tdb.link_translations(src.id, &src.default_language).await?;
        }
    }
    Ok(report)
}

/// How to find the product a staged item is linked to.
#[derive(Debug, Clone)]
pub enum LinkTarget {
    Product(Uuid),
    Handle(String),
    Sku(String),
    Gtin(String),
}

/// Links a staged item to an existing product (found by id, handle, variant SKU or
/// barcode/GTIN) and applies the feed's values to it (overrides none yet). Errors:
/// `NotFound("staged item")`, `NotFound("product")`, `Invalid` (already linked, errors).
pub async fn link(
    tdb: &TenantDb,
    actor: &Actor,
    item_id: Uuid,
    target: LinkTarget,
    currency: Currency,
) -> Result<Uuid, FeedsError> {
    let item = tdb
        .get_staged_items(&[item_id])
        .await?
        .pop()
        .ok_or(FeedsError::NotFound("staged item"))?;
    if item.product_id.is_some() {
        return Err(invalid(
            "item_id",
            "already_published",
            "the item is already linked to a product",
        ));
    }
    if !item.errors.is_empty() {
        return Err(invalid(
            "item_id",
            "item_has_errors",
            "an item with errors cannot be linked",
        ));
    }
    let product = match target {
        LinkTarget::Product(id) => tdb.get_product(id).await?.map(|p| p.id),
        LinkTarget::Handle(h) => tdb.get_product_by_handle(&h, false).await?.map(|p| p.id),
        LinkTarget::Sku(s) => tdb.product_with_variant("sku", &s).await?,
        LinkTarget::Gtin(g) => tdb.product_with_variant("barcode", &g).await?,
    }
    .ok_or(FeedsError::NotFound("product"))?;
    tdb.link_staged_items(&[item.id], product).await?;
    apply_to_product(tdb, actor, product, currency, None).await?;
    Ok(product)
}

/// Sets the overrides of a published product and applies them (with the feed's values for
/// the rest). Errors: `NotFound("product")` when no staged item is linked to it.
pub async fn set_overrides(
    tdb: &TenantDb,
    actor: &Actor,
    product: Uuid,
    overrides: &Overrides,
    currency: Currency,
) -> Result<(), FeedsError> {
    tdb.set_feed_overrides(actor, product, overrides)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => FeedsError::NotFound("product"),
            e => e.into(),
        })?;
    apply_to_product(tdb, actor, product, currency, None).await?;
    Ok(())
}

/// Writes the feed's current values into a published product, leaving overridden fields
/// alone: title, description, images, vendor and product type from the first item of the
/// product's default-language items; per variant (matched by SKU = feed id, then by
/// barcode = GTIN, then a single variant for a single item) price, compare-at price, stock
/// and barcode; items of the group without a variant are added. When every item has
/// disappeared and the source says so, the product becomes draft (never deleted). Then
/// the items are marked applied and `feed.item.changed` is written per changed item.
/// Returns whether the product was written.
pub async fn apply_to_product(
    tdb: &TenantDb,
    actor: &Actor,
    product_id: Uuid,
    currency: Currency,
    source: Option<&FeedSource>,
) -> Result<bool, FeedsError> {
    let Some(product) = tdb.get_product(product_id).await? else {
        return Ok(false);
    };
    let items = tdb.staged_items_of_product(product_id).await?;
    if items.is_empty() {
        return Ok(false);
    }
    let source = match source {
        Some(s) if s.id == items[0].source_id => Some(s.clone()),
        _ => tdb.get_feed_source(items[0].source_id).await?,
    };
    let base_lang = source
        .as_ref()
        .map(|s| s.default_language.clone())
        .unwrap_or_else(|| items[0].language.clone());
    let mut base: Vec<&StagedItem> = items.iter().filter(|i| i.language == base_lang).collect();
    if base.is_empty() {
        base = items.iter().collect();
    }
    let o = base[0].overrides.clone();
    let live: Vec<&StagedItem> = base
        .iter()
        .copied()
        .filter(|i| i.disappeared_at.is_none())
        .collect();
    let first = live.first().copied().unwrap_or(base[0]);
    let handle = Handle::parse(&product.handle).map_err(|e| {
        StoreError::Corrupt(format!("stored handle {}: {}", product.handle, e.message))
    })?;
    let options_attrs = group_options(&base);
    let mut variants: Vec<VariantInput> = product
        .variants
        .iter()
        .map(|v| VariantInput {
            sku: v.sku.as_deref().and_then(|s| Sku::parse(s).ok()),
            option_values: v.option_values.clone(),
            price_minor: v.price.amount_minor,
            compare_at_minor: v.compare_at_price.as_ref().map(|m| m.amount_minor),
            inventory: v.inventory_quantity,
            barcode: v.barcode.clone(),
            weight_grams: v.weight_grams,
            inventory_policy: v.inventory_policy,
            inventory_tracked: v.inventory_tracked,
        })
        .collect();
    let single = base.len() == 1 && variants.len() == 1;
    for item in &live {
        let fresh = variant_of(item, &options_attrs, &o);
        let pos = variants
            .iter()
            .position(|v| v.sku.as_ref().map(|s| s.as_str()) == Some(item.feed_id.as_str()))
            .or_else(|| {
                item.item.gtin.as_ref().and_then(|g| {
                    variants
                        .iter()
                        .position(|v| v.barcode.as_deref() == Some(g.as_str()))
                })
            })
            .or(if single { Some(0) } else { None });
        match pos {
            Some(i) => {
                let v = &mut variants[i];
                v.price_minor = fresh.price_minor;
                v.compare_at_minor = fresh.compare_at_minor;
                v.inventory = fresh.inventory;
                if fresh.barcode.is_some() {
                    v.barcode = fresh.barcode;
                }
                if fresh.weight_grams.is_some() {
                    v.weight_grams = fresh.weight_grams;
                }
            }
            None if !product.options.is_empty() || variants.is_empty() => variants.push(fresh),
            None => {}
        }
    }
    for item in base.iter().filter(|i| i.disappeared_at.is_some()) {
        // A variant whose item left the feed cannot be sold (unless stock is overridden).
        if let Some(v) = variants
            .iter_mut()
            .find(|v| v.sku.as_ref().map(|s| s.as_str()) == Some(item.feed_id.as_str()))
            && o.inventory.is_none()
        {
            v.inventory = 0;
        }
    }
    let all_gone = live.is_empty();
    let status = match o.status.as_deref().map(status_of) {
        Some(Ok(s)) => s,
        _ if all_gone && source.as_ref().is_none_or(|s| s.draft_on_disappear) => {
            ProductStatus::Draft
        }
        _ => product.status,
    };
    let images = match &o.images {
        Some(list) => list.clone(),
        None => {
            let f = feed_images(&live);
            if f.is_empty() {
                product.images.iter().map(|i| i.url.clone()).collect()
            } else {
                f
            }
        }
    };
    let input = ProductInput {
        attributes: None,
        handle,
        title: o
            .title
            .clone()
            .or_else(|| first.item.title.clone())
            .unwrap_or(product.title.clone()),
        body_html: o
            .description
            .clone()
            .or_else(|| first.item.description.clone())
            .unwrap_or(product.body_html.clone()),
        vendor: first.item.brand.clone().or(product.vendor.clone()),
        product_type: first
            .item
            .product_type
            .clone()
            .or(product.product_type.clone()),
        tags: product.tags.clone(),
        status,
        options: product.options.clone(),
        featured: product.featured,
        seo: None,
        variants,
        images: images
            .into_iter()
            .map(|url| ImageInput { url, alt: None })
            .collect(),
        collections: vec![],
    };
    tdb.update_product(actor, product_id, &input, currency.as_str())
        .await?;
    let changes: Vec<(Uuid, Uuid, Vec<String>)> = items
        .iter()
        .filter(|i| i.status == "changed" || i.status == "disappeared")
        .map(|i| (i.id, product_id, i.changed_fields.clone()))
        .collect();
    tdb.mark_staged_applied(&changes).await?;
    Ok(true)
}

/// Every minute (and once at start), queues the fetch jobs of hourly and daily sources that
/// are due ([`crate::store::platform::schedule_feed_fetches`]) and wakes a worker. Runs
/// until `shutdown` flips.
pub async fn run_scheduler(
    provisioner: crate::provision::Provisioner,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match crate::store::platform::schedule_feed_fetches(
            &provisioner.db,
            crate::store::now_micros(),
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(queued = n, "scheduled feed fetches");
                provisioner.wake();
            }
            Err(e) => {
                let e = provisioner.db.health().observe(e);
                tracing::warn!(error = %e, "feed scheduler tick failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
