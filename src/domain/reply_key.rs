use std::fmt;

use rand::Rng;

/// The random key that ties a reply to the message it answers: it travels in
/// the Reply-To address (`consult+KEY@domain`) and in our Message-ID, and maps
/// in the store to one consultation and one CSO.
///
/// 20 characters of lower-case base32 (100 bits): unguessable, safe in the
/// local part of an address, and unchanged by mail systems that lower-case
/// addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyKey(String);

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const LEN: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a reply key")]
pub struct ReplyKeyError(pub String);

impl ReplyKey {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        Self(
            (0..LEN)
                .map(|_| ALPHABET[rng.random_range(0..32)] as char)
                .collect(),
        )
    }

    pub fn parse(raw: &str) -> Result<Self, ReplyKeyError> {
        let key = raw.trim().to_ascii_lowercase();
        if key.len() == LEN && key.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Self(key))
        } else {
            Err(ReplyKeyError(raw.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReplyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = ReplyKey::generate();
        let b = ReplyKey::generate();
        assert_ne!(a, b);
        assert_eq!(ReplyKey::parse(&a.as_str().to_uppercase()).unwrap(), a);
        assert!(ReplyKey::parse("short").is_err());
        assert!(
            ReplyKey::parse("abcdefghijklmnopqrs1").is_err(),
            "1 is not base32"
        );
    }
}
