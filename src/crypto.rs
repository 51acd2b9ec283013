//! Secrets at rest: AES-256-GCM ([`SecretBox`]) for values Souk must read back later
//! (webhook signing secrets), as opposed to credentials it only compares, which are stored
//! as SHA-256 hashes.
//!
//! The key is derived from the platform signing secret (`SHA-256("souk:secret-box:v1:" ||
//! secret)`), which every node of a deployment already shares. Sealed text is
//! `v1:<base64(12-byte random nonce || ciphertext || tag)>`.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest;

/// Encrypts and decrypts short secrets with one key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// The box keyed from the platform signing secret.
    pub fn from_signing_secret(secret: &crate::auth::Secret) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(b"souk:secret-box:v1:");
        h.update(secret.expose().as_bytes());
        let key: Key<Aes256Gcm> = h.finalize();
        Self {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// Encrypts `plain` with a fresh random nonce. Errors: the cipher refused the input
    /// (only for inputs far larger than a secret).
    pub fn seal(&self, plain: &str) -> Result<String, String> {
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce[..]);
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), plain.as_bytes())
            .map_err(|_| "cannot encrypt the secret".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("v1:{}", B64.encode(out)))
    }

    /// Decrypts what [`Self::seal`] produced. Errors: not sealed text, or sealed with
    /// another key (the signing secret changed), or tampered with.
    pub fn open(&self, sealed: &str) -> Result<String, String> {
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|b| B64.decode(b).ok())
            .filter(|r| r.len() > 12)
            .ok_or("not a sealed secret")?;
        let n = Nonce::try_from(&raw[..12]).map_err(|_| "bad nonce")?;
        let plain = self.cipher.decrypt(&n, &raw[12..]).map_err(
            |_| "cannot decrypt the secret: the signing secret changed or the value was altered",
        )?;
        String::from_utf8(plain).map_err(|_| "sealed secret is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;

    #[test]
    fn seal_and_open() {
        let b = SecretBox::from_signing_secret(&Secret::new("k".repeat(40)));
        let s = b.seal("whsec_abc").unwrap();
        assert!(s.starts_with("v1:") && !s.contains("whsec_abc"));
        assert_ne!(s, b.seal("whsec_abc").unwrap(), "fresh nonce each time");
        assert_eq!(b.open(&s).unwrap(), "whsec_abc");
        let other = SecretBox::from_signing_secret(&Secret::new("x".repeat(40)));
        assert!(other.open(&s).is_err());
        let mut tampered = s.clone();
        tampered.pop();
        tampered.push('A');
        assert!(b.open(&tampered).is_err() || tampered == s);
        assert!(b.open("whsec_plain").is_err());
    }
}
