//! The key that signs what cocreate hands out and must later believe: the
//! web form's timestamp, and the mark that says a stored message came from
//! the web form (an email cannot forge it).
//!
//! It comes from `COCREATE_SECRET_KEY` when set (several servers sharing a
//! database set the same one); otherwise cocreate makes a random one the
//! first time and keeps it in the store, so a restart does not invalidate
//! the forms people have open.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{Store, StoreError};

pub const ENV: &str = "COCREATE_SECRET_KEY";

#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

impl SigningKey {
    /// The environment's key, else the store's (made on first use).
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        if let Ok(key) = std::env::var(ENV)
            && key.len() >= 32
        {
            return Ok(Self(key.into_bytes()));
        }
        let candidate = hex(&rand::random::<[u8; 32]>());
        let stored = store.setting_or_insert("signing_key", &candidate).await?;
        Ok(Self(stored.into_bytes()))
    }

    #[cfg(test)]
    pub fn fixed(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The signature of `parts` for `purpose`, as hex. Each part is
    /// length-prefixed, so no two different lists sign alike.
    pub fn sign(&self, purpose: &str, parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in std::iter::once(purpose).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `signature` is ours for `parts`, compared in constant time.
    pub fn verify(&self, purpose: &str, parts: &[&str], signature: &str) -> bool {
        same_secret(&self.sign(purpose, parts), signature)
    }
}

/// Whether two secrets are equal, compared in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// SHA-256 of `bytes`, as hex: how a secret handed out (a link's token, a
/// session id) is kept, and how a kept file is named.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_the_same_purpose_and_parts() {
        let key = SigningKey::fixed(b"0123456789abcdef0123456789abcdef");
        let s = key.sign("form", &["a", "bc"]);
        assert!(key.verify("form", &["a", "bc"], &s));
        assert!(!key.verify("form", &["ab", "c"], &s));
        assert!(!key.verify("mark", &["a", "bc"], &s));
        assert!(!key.verify("form", &["a", "bc"], &s[..10]));
        let other = SigningKey::fixed(b"another key of thirty-two bytes!");
        assert!(!other.verify("form", &["a", "bc"], &s));
    }
}
