//! DNS lookups for domain verification, through `hickory-resolver`.
//!
//! The nameserver is configurable (`--dns-server`), so tests point the checks at a DNS
//! server they run on loopback. Lookups are never cached here: a check must see the
//! records as they are now (the resolver's own cache is disabled).

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A DNS client for the records a custom domain must carry.
#[derive(Clone)]
pub struct DnsChecker {
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DnsChecker")
    }
}

impl DnsChecker {
    /// A checker asking `nameserver` (UDP then TCP), or the system's resolvers
    /// (`/etc/resolv.conf`) when `None`. Errors: the system configuration is unreadable.
    pub fn new(nameserver: Option<SocketAddr>) -> Result<Self, String> {
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        let builder = match nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => Resolver::builder_tokio()
                .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?,
        };
        let resolver = builder
            .with_options(opts)
            .build()
            .map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }

    async fn records(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.data.clone())
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(vec![]),
            Err(e) => Err(format!("DNS lookup of {name} {rtype} failed: {e}")),
        }
    }

    /// The TXT strings at `name` (each record's character-strings joined, RFC 7208 §3.3).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        Ok(self
            .records(name, RecordType::TXT)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// The CNAME target of `name`, lowercase without the trailing dot, if it has one.
    pub async fn cname(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .records(name, RecordType::CNAME)
            .await?
            .into_iter()
            .find_map(|d| match d {
                RData::CNAME(c) => Some(c.0.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            }))
    }

    /// The A and AAAA addresses of `name`.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let mut out = vec![];
        for t in [RecordType::A, RecordType::AAAA] {
            for d in self.records(name, t).await? {
                match d {
                    RData::A(a) => out.push(IpAddr::V4(a.0)),
                    RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}
