use std::fmt;

/// A CSO's number in the national registry: the key that ties re-imports,
/// relevance overrides and, later, every proposal to the same organisation.
///
/// Registry exports differ in case and spacing ("l 12345678a" vs "L12345678A"),
/// so whitespace is removed and letters upper-cased; nothing else is assumed
/// about the format, since court and agency numbers look different.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RegistrationNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationNumberError {
    #[error("the registration number is empty")]
    Empty,
    #[error("the registration number '{0}' is longer than 64 characters")]
    TooLong(String),
    #[error(
        "the registration number '{0}' contains characters other than letters, digits, '-', '/' and '.'"
    )]
    BadCharacters(String),
}

impl RegistrationNumber {
    pub fn parse(raw: &str) -> Result<Self, RegistrationNumberError> {
        let compact: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect();
        if compact.is_empty() {
            return Err(RegistrationNumberError::Empty);
        }
        if compact.chars().count() > 64 {
            return Err(RegistrationNumberError::TooLong(raw.trim().to_string()));
        }
        if !compact
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | '.'))
        {
            return Err(RegistrationNumberError::BadCharacters(
                raw.trim().to_string(),
            ));
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistrationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_and_case_do_not_make_a_new_organisation() {
        assert_eq!(
            RegistrationNumber::parse(" l 1234 5678a ").unwrap(),
            RegistrationNumber::parse("L12345678A").unwrap()
        );
        assert_eq!(
            RegistrationNumber::parse("3456/2019").unwrap().as_str(),
            "3456/2019"
        );
    }

    #[test]
    fn refuses_empty_and_odd_numbers() {
        assert_eq!(
            RegistrationNumber::parse("  "),
            Err(RegistrationNumberError::Empty)
        );
        assert!(RegistrationNumber::parse("12;DROP").is_err());
        assert!(RegistrationNumber::parse(&"9".repeat(65)).is_err());
    }
}
