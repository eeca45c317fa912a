use std::fmt;

use rand::Rng;

/// The number a CSO quotes when asking about a proposal: short, read aloud
/// over the phone, typed from a printout. `OGP-7K3M-Q9TX`: eight characters
/// from an alphabet without 0/O, 1/I/L, so nothing is misread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ReceiptNo(String);

const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a receipt number like OGP-7K3M-Q9TX")]
pub struct ReceiptNoError(pub String);

impl ReceiptNo {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut part = || -> String {
            (0..4)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        };
        Self(format!("OGP-{}-{}", part(), part()))
    }

    /// Reads what a person typed: any case, with or without the dashes.
    pub fn parse(raw: &str) -> Result<Self, ReceiptNoError> {
        let compact: String = raw
            .trim()
            .to_ascii_uppercase()
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .collect();
        let body = compact
            .strip_prefix("OGP")
            .filter(|b| b.len() == 8 && b.bytes().all(|c| ALPHABET.contains(&c)))
            .ok_or_else(|| ReceiptNoError(raw.trim().chars().take(40).collect()))?;
        Ok(Self(format!("OGP-{}-{}", &body[..4], &body[4..])))
    }

    /// The first receipt number in brackets in a subject line, as receipts
    /// put it there: `Re: [OGP-7K3M-Q9TX] …`.
    pub fn find_in(subject: &str) -> Option<Self> {
        subject
            .split('[')
            .skip(1)
            .filter_map(|s| s.split(']').next())
            .find_map(|s| Self::parse(s).ok())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReceiptNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_numbers_survive_being_retyped() {
        let r = ReceiptNo::generate();
        assert_eq!(ReceiptNo::parse(&r.as_str().to_lowercase()).unwrap(), r);
        assert_eq!(
            ReceiptNo::parse("ogp 7k3m q9tx").unwrap().as_str(),
            "OGP-7K3M-Q9TX"
        );
        assert!(
            ReceiptNo::parse("OGP-0000-1111").is_err(),
            "0 and 1 are not used"
        );
        assert_eq!(
            ReceiptNo::find_in("RE: Re: [OGP-7K3M-Q9TX] We received your proposal")
                .unwrap()
                .as_str(),
            "OGP-7K3M-Q9TX"
        );
        assert!(ReceiptNo::find_in("[EXTERNAL] hello").is_none());
    }
}
