//! Souk's own HTTPS listener: rustls with an SNI resolver over an in-memory certificate
//! store, and a [`axum::serve::Listener`] that completes TLS handshakes off the accept
//! loop (a slow client never delays another's handshake).
//!
//! The store holds one parsed [`CertifiedKey`] per active custom domain (loaded from the
//! database at start, replaced when the domain worker issues or renews, reloaded every
//! minute so other nodes' issuances arrive) plus an optional configured pair for the
//! platform's own base domain and its subdomains (e.g. a wildcard).

use crate::crypto::SecretBox;
use crate::store::{Db, platform};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Parses a PEM chain and PEM private key into a rustls signing key. Errors name what
/// is unreadable (no certificate, no key, unsupported key type).
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if chain.is_empty() {
        return Err("certificate PEM holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("private key PEM: {e}"))?;
    let signer = any_supported_type(&key).map_err(|e| format!("private key: {e}"))?;
    Ok(CertifiedKey::new(chain, signer))
}

/// Certificates by host name (A-label, lowercase), for the SNI resolver.
#[derive(Default)]
pub struct CertStore {
    by_host: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// The configured pair for the base domain and `*.base`, if any.
    platform: Option<(String, Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertStore({} hosts)", self.len())
    }
}

impl CertStore {
    /// A store with the platform's own pair for `base_domain` (and its subdomains).
    pub fn with_platform(base_domain: &str, key: Option<CertifiedKey>) -> Self {
        Self {
            by_host: Default::default(),
            platform: key.map(|k| (base_domain.to_ascii_lowercase(), Arc::new(k))),
        }
    }

    /// Number of custom-domain certificates held.
    pub fn len(&self) -> usize {
        self.by_host.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `host` has a live certificate (redirects and HSTS apply to it).
    pub fn has(&self, host: &str) -> bool {
        self.by_host
            .read()
            .map(|m| m.contains_key(host))
            .unwrap_or(false)
    }

    /// Adds or replaces the certificate of `host`.
    pub fn insert(&self, host: &str, key: CertifiedKey) {
        if let Ok(mut m) = self.by_host.write() {
            m.insert(host.to_string(), Arc::new(key));
        }
    }

    /// Drops the certificate of `host` (domain removed, revoked or deactivated).
    pub fn remove(&self, host: &str) {
        if let Ok(mut m) = self.by_host.write() {
            m.remove(host);
        }
    }

    /// Replaces the store's content with the certificates of every active domain in the
    /// database. A row whose key cannot be opened is skipped and logged (its host has no
    /// certificate until the next issuance). Returns the number loaded.
    pub async fn reload(&self, db: &Db, sb: &SecretBox) -> Result<usize, String> {
        let rows = platform::live_certificates(db)
            .await
            .map_err(|e| e.to_string())?;
        let mut map = HashMap::with_capacity(rows.len());
        for r in rows {
            let key = sb
                .open(&r.cert_key_sealed)
                .and_then(|k| certified_key(&r.cert_pem, &k));
            match key {
                Ok(k) => {
                    map.insert(r.host, Arc::new(k));
                }
                Err(e) => tracing::warn!(host = %r.host, error = %e, "stored certificate unusable"),
            }
        }
        let n = map.len();
        if let Ok(mut m) = self.by_host.write() {
            *m = map;
        }
        Ok(n)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello
            .server_name()?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if let Some(k) = self.by_host.read().ok()?.get(&name) {
            return Some(k.clone());
        }
        let (base, key) = self.platform.as_ref()?;
        (name == *base
            || name
                .strip_suffix(base.as_str())
                .is_some_and(|p| p.ends_with('.')))
        .then(|| key.clone())
    }
}

/// The rustls server configuration over `store` (HTTP/1.1 over TLS 1.2/1.3).
pub fn server_config(store: Arc<CertStore>) -> Arc<rustls::ServerConfig> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_no_client_auth().with_cert_resolver(store.clone()))
    .unwrap_or_else(|_| {
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(store)
    });
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// A TLS listener for `axum::serve`: an accept task hands each TCP connection to its own
/// handshake task (10 s limit); finished handshakes queue here.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`. The accept task ends when the listener is dropped.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(256);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (sock, peer) = tokio::select! {
                    r = tcp.accept() => match r {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::debug!(error = %e, "TLS accept failed");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                    _ = tx.closed() => return,
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(sock)).await
                    {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(v) => v,
            // The accept task is gone (cannot happen while self holds the receiver's
            // sender side alive through it); never resolve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
