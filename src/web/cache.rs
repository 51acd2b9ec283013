//! The response cache of the read path: rendered storefront pages (home, catalog, product
//! page) and Store API documents (product lists, one product), per tenant.
//!
//! Entries live at most [`PAGE_TTL`]. Every change that can alter what a shopper sees
//! (catalog, stock, prices, theme, settings, publication, status) clears the tenant's
//! entries through [`PageCache::invalidate_tenant`], which also tells the other nodes: the
//! hook installed by the application publishes the tenant id on NATS
//! (`souk.cache.<tenant>`, see [`crate::events::EventBus::publish_invalidation`]) and each
//! node that receives it calls [`PageCache::invalidate_local`]. A lost message only means
//! the TTL bounds the staleness, as without NATS.
//!
//! Lookups borrow the key (`&str`): a hit allocates nothing but the clone of the `Bytes`
//! handle. Clearing a tenant removes its one inner map.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a cached response is served after it was rendered.
pub const PAGE_TTL: Duration = Duration::from_secs(10);

/// Entries kept across all tenants before the cache is emptied (a coarse memory bound:
/// at ~10 KB per page, about 500 MB at worst; typical pages are far smaller).
pub const MAX_ENTRIES: usize = 50_000;

/// Keys of tenant settings ([`PageCache::put_setting`]) start with this.
pub const SETTING_PREFIX: &str = "meta:";

type Hook = Box<dyn Fn(Uuid) + Send + Sync>;

/// One cached body: when it was rendered, and whether a request is re-rendering it since
/// it expired (that one request misses; the others keep the old body meanwhile).
struct Entry {
    body: Bytes,
    at: Instant,
    refreshing: AtomicBool,
}

#[derive(Default)]
struct Inner {
    tenants: HashMap<Uuid, HashMap<String, Entry>>,
    entries: usize,
}

/// Per-tenant cache of rendered responses. See the module documentation.
pub struct PageCache {
    inner: RwLock<Inner>,
    enabled: AtomicBool,
    on_invalidate: OnceLock<Hook>,
}

impl Default for PageCache {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            enabled: AtomicBool::new(true),
            on_invalidate: OnceLock::new(),
        }
    }
}

impl PageCache {
    /// The cached body under `key` for `tenant`. Past [`PAGE_TTL`], the first caller gets
    /// `None` (it renders and [`Self::put`]s a fresh body) while the others keep getting
    /// the expired body until then, for at most one more TTL: an expiry never sends every
    /// concurrent request to the database at once. An invalidated entry is gone: everyone
    /// misses.
    pub fn get(&self, tenant: Uuid, key: &str) -> Option<Bytes> {
        let inner = self.inner.read().ok()?;
        let e = inner.tenants.get(&tenant)?.get(key)?;
        let age = e.at.elapsed();
        if age < PAGE_TTL {
            return Some(e.body.clone());
        }
        if age < 2 * PAGE_TTL && e.refreshing.swap(true, Ordering::AcqRel) {
            return Some(e.body.clone());
        }
        None
    }

    /// Keeps `body` under `key` for `tenant` (no-op while disabled).
    pub fn put(&self, tenant: Uuid, key: String, body: Bytes) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        self.store(tenant, key, body);
    }

    /// Keeps a tenant setting the read path needs on every request (the store's
    /// languages, whether it is open, the setup guide's storefront fields) under `key`,
    /// also while response caching is switched off: it expires and is cleared with the
    /// tenant's pages, by the same invalidations.
    pub fn put_setting(&self, tenant: Uuid, key: &str, body: Bytes) {
        self.store(tenant, key.to_string(), body);
    }

    fn store(&self, tenant: Uuid, key: String, body: Bytes) {
        if let Ok(mut inner) = self.inner.write() {
            if inner.entries >= MAX_ENTRIES {
                inner.tenants.clear();
                inner.entries = 0;
            }
            let new = inner
                .tenants
                .entry(tenant)
                .or_default()
                .insert(
                    key,
                    Entry {
                        body,
                        at: Instant::now(),
                        refreshing: AtomicBool::new(false),
                    },
                )
                .is_none();
            if new {
                inner.entries += 1;
            }
        }
    }

    /// Clears `tenant`'s entries on this node and tells the other nodes (the hook).
    pub fn invalidate_tenant(&self, tenant: Uuid) {
        self.invalidate_local(tenant);
        if let Some(hook) = self.on_invalidate.get() {
            hook(tenant);
        }
    }

    /// Drops `tenant`'s cached responses on this node but keeps its settings (the
    /// `meta:` keys of [`Self::put_setting`], which an order or a stock change does not
    /// touch); other nodes are told as by [`Self::invalidate_tenant`].
    pub fn invalidate_pages(&self, tenant: Uuid) {
        if let Ok(mut inner) = self.inner.write() {
            let gone = match inner.tenants.get_mut(&tenant) {
                Some(entries) => {
                    let before = entries.len();
                    entries.retain(|k, _| k.starts_with(SETTING_PREFIX));
                    before - entries.len()
                }
                None => 0,
            };
            inner.entries = inner.entries.saturating_sub(gone);
        }
        if let Some(hook) = self.on_invalidate.get() {
            hook(tenant);
        }
    }

    /// Clears `tenant`'s entries on this node only (an invalidation from another node).
    pub fn invalidate_local(&self, tenant: Uuid) {
        if let Ok(mut inner) = self.inner.write()
            && let Some(gone) = inner.tenants.remove(&tenant)
        {
            inner.entries = inner.entries.saturating_sub(gone.len());
        }
    }

    /// Installs the cross-node hook called by [`Self::invalidate_tenant`] (once; later
    /// calls are ignored).
    pub fn on_invalidate(&self, hook: impl Fn(Uuid) + Send + Sync + 'static) {
        let _ = self.on_invalidate.set(Box::new(hook));
    }

    /// Turns response caching on or off (off: no response is stored and everything
    /// cached is dropped; tenant settings of [`Self::put_setting`] are still kept).
    /// `souk bench read` measures the uncached path this way.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        if !on {
            self.clear();
        }
    }

    /// Drops every entry of every tenant on this node (invalidations were lost).
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.tenants.clear();
            inner.entries = 0;
        }
    }

    /// Number of cached entries (all tenants).
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.entries).unwrap_or(0)
    }

    /// No entry is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_per_tenant_and_cleared_per_tenant() {
        let c = PageCache::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        c.put(a, "home:".into(), Bytes::from_static(b"A"));
        c.put(b, "home:".into(), Bytes::from_static(b"B"));
        assert_eq!(c.get(a, "home:").as_deref(), Some(&b"A"[..]));
        assert_eq!(c.len(), 2);
        c.invalidate_tenant(a);
        assert_eq!(c.get(a, "home:"), None);
        assert_eq!(c.get(b, "home:").as_deref(), Some(&b"B"[..]));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn an_expired_entry_sends_one_caller_to_refresh_and_serves_the_rest_meanwhile() {
        let c = PageCache::default();
        let t = Uuid::now_v7();
        c.put(t, "k".into(), Bytes::from_static(b"old"));
        let aged = Instant::now()
            .checked_sub(PAGE_TTL + Duration::from_millis(5))
            .expect("uptime above the TTL");
        if let Ok(mut inner) = c.inner.write()
            && let Some(e) = inner.tenants.get_mut(&t).and_then(|m| m.get_mut("k"))
        {
            e.at = aged;
        }
        assert_eq!(c.get(t, "k"), None, "the first caller refreshes");
        assert_eq!(c.get(t, "k").as_deref(), Some(&b"old"[..]));
        assert_eq!(c.get(t, "k").as_deref(), Some(&b"old"[..]));
        c.put(t, "k".into(), Bytes::from_static(b"new"));
        assert_eq!(c.get(t, "k").as_deref(), Some(&b"new"[..]));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_hook_hears_every_invalidation_and_disabled_caches_store_nothing() {
        let c = PageCache::default();
        let heard = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let h = heard.clone();
        c.on_invalidate(move |t| h.lock().unwrap().push(t));
        let t = Uuid::now_v7();
        c.invalidate_tenant(t);
        c.invalidate_local(t);
        assert_eq!(*heard.lock().unwrap(), vec![t]);
        c.set_enabled(false);
        c.put(t, "k".into(), Bytes::from_static(b"x"));
        assert!(c.is_empty());
    }
}
