//! Where webhooks may go: SSRF guards.
//!
//! An endpoint URL is checked when it is registered ([`EndpointUrl::parse`] then
//! [`check_resolves`]) and again at every delivery: the HTTP client resolves names
//! through [`GuardedResolver`], which drops forbidden addresses, so a name that later
//! re-resolves to an internal address (DNS rebinding) is refused too. IP literals skip the
//! resolver and are checked by [`EndpointUrl::parse`]. Forbidden: loopback, private
//! (RFC 1918, RFC 4193), link-local (incl. cloud metadata at 169.254.169.254), shared
//! (100.64/10), unspecified, multicast, broadcast, documentation and IPv4-mapped forms of
//! these. The operator can allow private targets (`--webhooks-allow-private`), which tests
//! and local development need.

use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Is `ip` an address webhooks must never reach (unless private targets are allowed)?
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (embeds IPv4)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0) // IPv4-compatible
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// A webhook endpoint URL that passed the static checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(Url);

impl EndpointUrl {
    /// Parses an absolute `https` URL (or `http` when private targets are allowed) of at
    /// most 2048 characters, without credentials, whose host, if an IP literal, is not
    /// forbidden. Errors: a message naming the problem.
    pub fn parse(text: &str, allow_private: bool) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > 2048 {
            return Err("url must be at most 2048 characters".into());
        }
        let url = Url::parse(text).map_err(|e| format!("url is not a valid absolute URL ({e})"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_private => {}
            "http" => return Err("url must use https".into()),
            other => return Err(format!("url scheme {other} is not allowed; use https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url must not contain credentials".into());
        }
        let ip = match url.host() {
            None => return Err("url has no host".into()),
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if !allow_private
                    && (d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal"))
                {
                    return Err(format!("url host {d} is an internal name"));
                }
                None
            }
        };
        if let Some(ip) = ip
            && !allow_private
            && is_forbidden(ip)
        {
            return Err(format!(
                "url points to {ip}, a loopback, private, link-local or reserved address"
            ));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Resolves the URL's host now and refuses it when any address is forbidden (or none
/// resolves). Errors: a message for the API.
pub async fn check_resolves(url: &EndpointUrl, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let Some(host) = url.0.host_str() else {
        return Err("url has no host".into());
    };
    if url
        .0
        .host()
        .is_some_and(|h| !matches!(h, url::Host::Domain(_)))
    {
        return Ok(()); // an IP literal, already checked
    }
    let port = url.0.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("url host {host} does not resolve ({e})"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("url host {host} does not resolve"));
    }
    if let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        return Err(format!(
            "url host {host} resolves to {}, a loopback, private, link-local or reserved address",
            bad.ip()
        ));
    }
    Ok(())
}

/// The delivery client's DNS resolver: drops forbidden addresses (unless allowed), and
/// fails when nothing is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow || !is_forbidden(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves only to loopback, private, link-local or reserved addresses"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
        ] {
            assert!(
                is_forbidden(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn url_rules() {
        assert!(EndpointUrl::parse("https://example.com/hook", false).is_ok());
        for bad in [
            "http://example.com/hook",
            "ftp://example.com",
            "https://user:pw@example.com",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/x",
            "https://metadata.google.internal/x",
            "https://0x7f000001/x",
            "not a url",
        ] {
            assert!(
                EndpointUrl::parse(bad, false).is_err(),
                "{bad} should be refused"
            );
        }
        assert!(EndpointUrl::parse("http://127.0.0.1:9/x", true).is_ok());
    }
}
