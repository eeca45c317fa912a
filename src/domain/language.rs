use std::fmt;

/// The language a CSO reads its mail in. Albanian unless the registry says otherwise.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Sq,
    En,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a language cocreate writes in (use sq for Albanian or en for English)")]
pub struct LanguageError(pub String);

impl Language {
    /// Reads the codes and names a registry office or a POC is likely to type,
    /// in either language. An empty cell means the default, Albanian.
    pub fn parse(raw: &str) -> Result<Self, LanguageError> {
        match super::fold(raw).as_str() {
            "" | "sq" | "sqi" | "alb" | "al" | "shqip" | "shqipe" | "albanian" | "albanisht" => {
                Ok(Self::Sq)
            }
            "en" | "eng" | "english" | "anglisht" | "anglishte" => Ok(Self::En),
            _ => Err(LanguageError(raw.trim().to_string())),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Sq => "sq",
            Self::En => "en",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codes_and_names_in_both_languages() {
        assert_eq!(Language::parse("").unwrap(), Language::Sq);
        assert_eq!(Language::parse(" Shqip ").unwrap(), Language::Sq);
        assert_eq!(Language::parse("EN").unwrap(), Language::En);
        assert_eq!(Language::parse("Anglisht").unwrap(), Language::En);
        assert_eq!(
            Language::parse("fr").unwrap_err().to_string(),
            "'fr' is not a language cocreate writes in (use sq for Albanian or en for English)"
        );
    }
}
