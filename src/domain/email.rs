use std::fmt;
use std::str::FromStr;

/// An email address a person can actually receive mail at.
///
/// Parsing is delegated to lettre's RFC 5321 rules, plus one check lettre does
/// not make: the domain must contain a dot. Registry exports are typed by hand,
/// and `info@gmailcom` is a far likelier typo than a real dot-less domain.
/// The domain is lower-cased so that the same mailbox is one address; the
/// local part is kept as written because some servers treat it case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an email address")]
pub struct EmailAddressError(pub String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailAddressError> {
        let trimmed = raw.trim();
        let candidate = trimmed
            .strip_prefix("mailto:")
            .unwrap_or(trimmed)
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        let err = || EmailAddressError(raw.trim().to_string());
        let parsed = lettre::Address::from_str(candidate).map_err(|_| err())?;
        let domain = parsed.domain().to_ascii_lowercase();
        if !domain.contains('.') || domain.starts_with('[') || domain.ends_with('.') {
            return Err(err());
        }
        Ok(Self(format!("{}@{}", parsed.user(), domain)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Read from config: an address that does not parse is refused at load.
impl<'de> serde::Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        assert_eq!(
            EmailAddress::parse(" Info@Shoqata.AL ").unwrap().as_str(),
            "Info@shoqata.al"
        );
        assert_eq!(
            EmailAddress::parse("<a.b+c@mail.example.org>")
                .unwrap()
                .as_str(),
            "a.b+c@mail.example.org"
        );
        assert_eq!(
            EmailAddress::parse("mailto:x@y.al").unwrap().as_str(),
            "x@y.al"
        );
    }

    #[test]
    fn refuses_what_cannot_receive_mail() {
        for bad in [
            "",
            "info",
            "info@",
            "@shoqata.al",
            "info@gmailcom",
            "two@@at.al",
            "sp ace@x.al",
            "a@b.al\r\nBcc: victim@x.al",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
