//! How relevant a CSO is to a policy area.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relevance {
    Direct,
    Indirect,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a relevance (use direct, indirect or none)")]
pub struct RelevanceError(pub String);

impl Relevance {
    pub fn parse(raw: &str) -> Result<Self, RelevanceError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "direct" | "directly" => Ok(Self::Direct),
            "indirect" | "indirectly" => Ok(Self::Indirect),
            "none" | "not" | "no" => Ok(Self::None),
            _ => Err(RelevanceError(raw.trim().to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Indirect => "indirect",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Relevance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
