//! Credentials: argon2id password hashes, HS256 access tokens (RFC 7519), and opaque
//! random tokens (refresh, set-password) that are stored only as SHA-256 hashes.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fmt;
use uuid::Uuid;

/// A secret string whose `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Hashes a password with argon2id (PHC string format).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a password against a PHC hash; false on any mismatch or malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// [`hash_password`] on the blocking pool: argon2 takes tens of milliseconds of CPU,
/// which must not stall the async workers serving other requests.
pub async fn hash_password_async(password: &str) -> Result<String, String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| e.to_string())?
}

/// [`verify_password`] on the blocking pool; false if the task fails.
pub async fn verify_password_async(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

/// Checks password strength. Errors name the rule that failed.
pub fn check_password_policy(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 8 {
        return Err("password must be at least 8 characters");
    }
    if password.len() > 256 {
        return Err("password must be at most 256 bytes");
    }
    Ok(())
}

/// `n` random bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; n];
    rand::fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Prefix of secret API keys (server-to-server, scoped to a role).
pub const API_KEY_PREFIX_SECRET: &str = "sk_live_";
/// Prefix of publishable API keys (Store API reads, safe in a browser).
pub const API_KEY_PREFIX_PUBLISHABLE: &str = "pk_live_";

/// A generated password for bootstrap accounts: 20 URL-safe characters.
pub fn generate_password() -> String {
    random_token(15)
}

/// Hex SHA-256 of a token: what the database stores instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Access-token claims (RFC 7519 registered claims `sub`, `iat`, `exp`, plus ours).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Platform admin?
    #[serde(default)]
    pub adm: bool,
    /// Active tenant, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    /// The user must change an initial password before using tenant or admin APIs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mcp: bool,
    /// Session id: the refresh-token family this access token was issued with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

/// The `aud` of WebSocket tickets (RFC 7519 §4.1.3).
pub const WS_TICKET_AUDIENCE: &str = "souk:events-ws";

#[derive(Debug, Serialize, Deserialize)]
struct TicketClaims {
    #[serde(flatten)]
    claims: Claims,
    aud: String,
    /// Expiry of the access token the ticket was issued for (seconds since the epoch):
    /// a socket opened with the ticket lives until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sxp: Option<i64>,
}

/// Signs and verifies access tokens with an HMAC-SHA256 key.
#[derive(Clone)]
pub struct TokenKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    /// HMAC-SHA256 keyed for browser-session CSRF tokens (a key derived from the secret).
    csrf_mac: hmac::Hmac<sha2::Sha256>,
    /// Access-token lifetime in seconds.
    pub access_ttl: i64,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(***)")
    }
}

impl TokenKeys {
    pub fn new(secret: &Secret, access_ttl: i64) -> Self {
        Self {
            enc: EncodingKey::from_secret(secret.expose().as_bytes()),
            dec: DecodingKey::from_secret(secret.expose().as_bytes()),
            csrf_mac: {
                // A block-sized (64-byte) key, so the infallible constructor applies.
                let mut key = [0u8; 64];
                key[..32].copy_from_slice(
                    &sha2::Sha256::new()
                        .chain_update(b"souk-csrf-v1:")
                        .chain_update(secret.expose().as_bytes())
                        .finalize(),
                );
                <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new(&key.into())
            },
            access_ttl,
        }
    }

    fn csrf_mac(&self, session: Uuid) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = self.csrf_mac.clone();
        mac.update(session.as_bytes());
        mac
    }

    /// The CSRF token of a browser session (`sid`, the refresh-token family): hex
    /// HMAC-SHA256 of the session id. Stateless, so every node derives the same token,
    /// and it changes when the user signs in again.
    pub fn csrf_token(&self, session: Uuid) -> String {
        use hmac::Mac;
        hex::encode(self.csrf_mac(session).finalize().into_bytes())
    }

    /// Checks a CSRF token against the session in constant time.
    pub fn verify_csrf(&self, session: Uuid, token: &str) -> bool {
        use hmac::Mac;
        match hex::decode(token.trim()) {
            Ok(raw) => self.csrf_mac(session).verify_slice(&raw).is_ok(),
            Err(_) => false,
        }
    }

    /// Issues an access token for `user`.
    pub fn issue(
        &self,
        user: Uuid,
        admin: bool,
        tenant: Option<Uuid>,
        must_change_password: bool,
        session: Option<Uuid>,
    ) -> Result<String, String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user,
            iat: now,
            exp: now + self.access_ttl,
            adm: admin,
            tid: tenant,
            mcp: must_change_password,
            sid: session,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .map_err(|e| e.to_string())
    }

    /// Issues a WebSocket ticket: the caller's claims with a short expiry (`ttl`
    /// seconds) and the audience [`WS_TICKET_AUDIENCE`], so it is accepted only by the
    /// event WebSocket (browsers cannot set `Authorization` on a WebSocket).
    pub fn issue_ticket(&self, claims: &Claims, ttl: i64) -> Result<String, String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let t = TicketClaims {
            claims: Claims {
                iat: now,
                exp: now + ttl,
                ..claims.clone()
            },
            aud: WS_TICKET_AUDIENCE.to_string(),
            sxp: Some(claims.exp),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &t, &self.enc)
            .map_err(|e| e.to_string())
    }

    /// Verifies a WebSocket ticket (signature, expiry, audience).
    pub fn verify_ticket(&self, token: &str) -> Result<Claims, String> {
        self.verify_ticket_session(token).map(|(c, _)| c)
    }

    /// [`Self::verify_ticket`], also returning when the access token the ticket was
    /// issued for expires (seconds since the epoch; the ticket's own expiry for tickets
    /// issued before that was recorded).
    pub fn verify_ticket_session(&self, token: &str) -> Result<(Claims, i64), String> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 2;
        v.set_required_spec_claims(&["exp", "sub", "aud"]);
        v.set_audience(&[WS_TICKET_AUDIENCE]);
        jsonwebtoken::decode::<TicketClaims>(token, &self.dec, &v)
            .map(|d| {
                let session = d.claims.sxp.unwrap_or(d.claims.claims.exp);
                (d.claims.claims, session)
            })
            .map_err(|e| e.to_string())
    }

    /// Verifies signature, algorithm (HS256 only) and expiry. Errors: any invalid token,
    /// including a WebSocket ticket (it carries an audience, which access tokens do not).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        v.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_roundtrip() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens() {
        let k = TokenKeys::new(&Secret::new("k".repeat(32)), 60);
        let t = k.issue(Uuid::nil(), true, None, false, None).unwrap();
        let c = k.verify(&t).unwrap();
        assert!(c.adm);
        let other = TokenKeys::new(&Secret::new("x".repeat(32)), 60);
        assert!(other.verify(&t).is_err());
        // A ticket is not an access token, and an access token is not a ticket.
        let ticket = k.issue_ticket(&c, 30).unwrap();
        assert_eq!(k.verify_ticket(&ticket).unwrap().sub, Uuid::nil());
        assert!(k.verify(&ticket).is_err());
        assert!(k.verify_ticket(&t).is_err());
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(token_hash("a").len(), 64);
        // CSRF tokens are bound to the session.
        let (s1, s2) = (Uuid::now_v7(), Uuid::now_v7());
        let csrf = k.csrf_token(s1);
        assert!(k.verify_csrf(s1, &csrf));
        assert!(!k.verify_csrf(s2, &csrf));
        assert!(!k.verify_csrf(s1, "zz"));
        assert!(!other.verify_csrf(s1, &csrf));
    }
}
