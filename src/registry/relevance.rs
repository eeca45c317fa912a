//! Which CSOs a policy area must reach, and why.
//!
//! The brief asks LFPs to contact every CSO whose field is "directly or
//! indirectly related" to their area. A CSO is directly relevant when one of
//! its fields of activity matches a direct keyword of the area, indirectly
//! relevant when only indirect keywords match, and not relevant otherwise.
//! The POC can override the result either way; overrides are kept by
//! registration number, so they survive every re-import.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Cso;
use crate::config::PolicyArea;
use crate::domain::{RegistrationNumber, fold_words};

/// A keyword from the config: a word or phrase in which a word ending in
/// `*` matches any word that starts with it ("sherbim* publik*").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    original: String,
    words: Vec<KeywordWord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeywordWord {
    folded: String,
    prefix: bool,
}

impl KeywordWord {
    fn matches(&self, word: &str) -> bool {
        if self.prefix {
            word.starts_with(self.folded.as_str())
        } else {
            word == self.folded
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordError {
    #[error("has an empty keyword")]
    Empty,
    #[error("has the keyword '{0}', where `*` may only end a word")]
    MisplacedStar(String),
}

impl Keyword {
    pub fn parse(raw: &str) -> Result<Self, KeywordError> {
        let trimmed = raw.trim();
        let mut words = Vec::new();
        for part in trimmed.split_whitespace() {
            let (body, prefix) = match part.strip_suffix('*') {
                Some(body) => (body, true),
                None => (part, false),
            };
            if body.contains('*') {
                return Err(KeywordError::MisplacedStar(trimmed.to_string()));
            }
            // "anti-corruption" folds to two words, matched as a phrase; a
            // star applies to the last of them.
            let folded = fold_words(body);
            let n = folded.len();
            words.extend(
                folded
                    .into_iter()
                    .enumerate()
                    .map(|(i, folded)| KeywordWord {
                        folded,
                        prefix: prefix && i + 1 == n,
                    }),
            );
        }
        if words.is_empty() {
            return Err(KeywordError::Empty);
        }
        Ok(Self {
            original: trimmed.to_string(),
            words,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Whether the keyword occurs in `words` (already folded) as whole words.
    fn occurs_in(&self, words: &[String]) -> bool {
        words.windows(self.words.len()).any(|window| {
            window
                .iter()
                .zip(&self.words)
                .all(|(word, kw)| kw.matches(word))
        })
    }
}

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

/// The POC's decision that a CSO is (or is not) relevant to an area,
/// whatever its fields of activity say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelevanceOverride {
    pub registration_no: RegistrationNumber,
    pub policy_area: String,
    pub relevance: Relevance,
    pub reason: String,
    pub set_at: DateTime<Utc>,
}

/// The outcome for one CSO and one policy area, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub policy_area: String,
    pub relevance: Relevance,
    /// What the fields of activity alone say.
    pub matched_relevance: Relevance,
    /// The keywords that matched, as written in the config.
    pub matched_words: Vec<String>,
    /// Present when the POC decided otherwise.
    pub override_reason: Option<String>,
}

/// Matches CSOs against the configured policy areas.
pub struct Matcher<'a> {
    areas: &'a [PolicyArea],
    overrides: HashMap<(RegistrationNumber, String), &'a RelevanceOverride>,
}

impl<'a> Matcher<'a> {
    pub fn new(areas: &'a [PolicyArea], overrides: &'a [RelevanceOverride]) -> Self {
        let overrides = overrides
            .iter()
            .map(|o| ((o.registration_no.clone(), o.policy_area.clone()), o))
            .collect();
        Self { areas, overrides }
    }

    /// One assessment per configured policy area, in config order.
    pub fn assess(&self, cso: &Cso) -> Vec<Assessment> {
        let fields: Vec<Vec<String>> = cso
            .record
            .fields_of_activity
            .iter()
            .map(|f| fold_words(f))
            .collect();
        self.areas
            .iter()
            .map(|area| self.assess_area(cso, area, &fields))
            .collect()
    }

    fn assess_area(&self, cso: &Cso, area: &PolicyArea, fields: &[Vec<String>]) -> Assessment {
        let hits = |keywords: &[Keyword]| -> Vec<String> {
            keywords
                .iter()
                .filter(|k| fields.iter().any(|f| k.occurs_in(f)))
                .map(|k| k.as_str().to_string())
                .collect()
        };
        let direct = hits(&area.direct_keywords);
        let (matched_relevance, matched_words) = if !direct.is_empty() {
            (Relevance::Direct, direct)
        } else {
            let indirect = hits(&area.indirect_keywords);
            if indirect.is_empty() {
                (Relevance::None, indirect)
            } else {
                (Relevance::Indirect, indirect)
            }
        };
        let key = (cso.record.registration_no.clone(), area.code.clone());
        let ov = self.overrides.get(&key);
        Assessment {
            policy_area: area.code.clone(),
            relevance: ov.map_or(matched_relevance, |o| o.relevance),
            matched_relevance,
            matched_words,
            override_reason: ov.map(|o| o.reason.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::{EmailAddress, Language};
    use crate::registry::CsoRecord;

    fn cso(fields: &[&str]) -> Cso {
        Cso {
            id: 1,
            record: CsoRecord {
                registration_no: RegistrationNumber::parse("L1").unwrap(),
                name: "Test".into(),
                emails: vec![EmailAddress::parse("a@b.al").unwrap()],
                phone: None,
                city: None,
                fields_of_activity: fields.iter().map(|s| s.to_string()).collect(),
                language: Language::Sq,
            },
            active: true,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn keywords_match_whole_words_and_prefixes_without_accents() {
        let words = fold_words("Lufta kundër korrupsionit në Shqipëri");
        assert!(Keyword::parse("korrupsion*").unwrap().occurs_in(&words));
        assert!(!Keyword::parse("korrupsion").unwrap().occurs_in(&words));
        assert!(
            Keyword::parse("Kundër Korrupsionit")
                .unwrap()
                .occurs_in(&words)
        );
        assert!(
            !Keyword::parse("ict")
                .unwrap()
                .occurs_in(&fold_words("district"))
        );
        assert!(
            Keyword::parse("sherbim* publik*")
                .unwrap()
                .occurs_in(&fold_words("Shërbimet publike online"))
        );
        assert_eq!(
            Keyword::parse("a*b").unwrap_err(),
            KeywordError::MisplacedStar("a*b".into())
        );
    }

    #[test]
    fn direct_beats_indirect_and_overrides_win() {
        let config = Config::embedded().unwrap();
        let c = cso(&["Të drejtat e njeriut", "Transparenca"]);
        let none = Matcher::new(&config.policy_areas, &[]);
        let by_area: HashMap<_, _> = none
            .assess(&c)
            .into_iter()
            .map(|a| (a.policy_area.clone(), a))
            .collect();
        assert_eq!(by_area["OPENDATA"].relevance, Relevance::Direct);
        assert_eq!(by_area["OPENDATA"].matched_words, ["transparenc*"]);
        assert_eq!(by_area["ANTICOR"].relevance, Relevance::Indirect);
        assert_eq!(by_area["PARTICIP"].matched_words, ["te drejtat e njeriut"]);
        assert_eq!(by_area["FISCAL"].relevance, Relevance::None);

        let overrides = [RelevanceOverride {
            registration_no: c.record.registration_no.clone(),
            policy_area: "FISCAL".into(),
            relevance: Relevance::Direct,
            reason: "Monitors municipal budgets".into(),
            set_at: Utc::now(),
        }];
        let with = Matcher::new(&config.policy_areas, &overrides);
        let fiscal = with
            .assess(&c)
            .into_iter()
            .find(|a| a.policy_area == "FISCAL")
            .unwrap();
        assert_eq!(fiscal.relevance, Relevance::Direct);
        assert_eq!(fiscal.matched_relevance, Relevance::None);
        assert_eq!(
            fiscal.override_reason.as_deref(),
            Some("Monitors municipal budgets")
        );
    }
}
