//! Which CSOs a policy area must reach, and why.
//!
//! The brief asks LFPs to contact every CSO whose field is "directly or
//! indirectly related" to their area. A CSO is directly relevant when one of
//! its fields of activity matches a direct keyword of the area, indirectly
//! relevant when only indirect keywords match, and not relevant otherwise.
//! The POC can override the result either way; overrides are kept by
//! registration number, so they survive every re-import.

use std::collections::HashMap;

use serde::Serialize;

use super::Cso;
use crate::config::PolicyArea;
pub use crate::domain::{Keyword, KeywordError, Relevance, RelevanceError};
use crate::domain::{RegistrationNumber, fold_words};
pub use crate::store::records::RelevanceOverride;

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
    use chrono::Utc;

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
