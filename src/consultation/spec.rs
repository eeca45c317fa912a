//! Reading and checking a consultation as the POC writes it.
//!
//! ```toml
//! reference = "OGP-2026-FISCAL"
//! policy_area = "FISCAL"
//! opens = 2026-12-01
//! closes = 2027-01-05
//! title = { sq = "Buxheti i hapur", en = "Open budget" }
//! description = { sq = "…", en = "…" }
//! [meeting]
//! starts = 2026-12-10T10:00:00
//! duration_minutes = 120
//! place = "Kryeministria, salla 2"
//! link = "https://meet.example/ogp-fiscal"
//! presentation = "fiscal.pdf"
//! [[drafts]]
//! title = { sq = "Të dhënat e buxhetit çdo muaj", en = "Budget data published monthly" }
//! text = { sq = "…", en = "…" }
//! ```
//!
//! A draft's title and text, and the reason for a short period, are one
//! text (read in both languages) or `{ sq = "…", en = "…" }`.
//!
//! Flags on the command line fill in or replace any of these.

use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use super::{ConsultationSpec, DraftCommitment, Meeting};
use crate::config::Config;
use crate::domain::{Bilingual, WorkingCalendar};

/// Largest presentation attached to invitations: it goes to every CSO.
pub const MAX_PRESENTATION_BYTES: u64 = 10 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid consultation file: {message}")]
    Syntax { path: String, message: String },
    #[error("the consultation needs {0}")]
    Missing(&'static str),
    #[error("the reference '{0}' must be 3 to 40 letters, digits or '-' (like OGP-2026-FISCAL)")]
    Reference(String),
    #[error("{0}")]
    Invalid(String),
}

/// A text the POC gives in Albanian, English or both (a file or flags);
/// checked for both when the spec is made.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextInput {
    pub sq: Option<String>,
    pub en: Option<String>,
}

/// TOML has date and time values of its own (`opens = 2026-12-01`); a
/// quoted string works as well.
#[derive(Deserialize)]
#[serde(untagged)]
enum TomlWhen {
    Toml(toml::value::Datetime),
    Text(String),
}

impl TomlWhen {
    fn text(self) -> String {
        match self {
            Self::Toml(d) => d.to_string(),
            Self::Text(s) => s.trim().to_string(),
        }
    }
}

fn toml_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    let Some(when) = Option::<TomlWhen>::deserialize(d)? else {
        return Ok(None);
    };
    let text = when.text();
    text.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("'{text}' is not a date like 2026-12-01")))
}

fn toml_date_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<NaiveDateTime>, D::Error> {
    let Some(when) = Option::<TomlWhen>::deserialize(d)? else {
        return Ok(None);
    };
    let text = when.text().replace(' ', "T");
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M"))
        .map(Some)
        .map_err(|_| {
            serde::de::Error::custom(format!(
                "'{text}' is not a local date and time like 2026-12-10T10:00"
            ))
        })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingInput {
    #[serde(default, deserialize_with = "toml_date_time")]
    pub starts: Option<NaiveDateTime>,
    pub duration_minutes: Option<u32>,
    pub place: Option<String>,
    pub link: Option<String>,
    pub presentation: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    pub title: Bilingual<String>,
    pub text: Bilingual<String>,
}

/// Everything optional: a file, flags, or the stored consultation being
/// edited, layered in that order.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecInput {
    pub reference: Option<String>,
    pub policy_area: Option<String>,
    pub thematic_group: Option<String>,
    #[serde(default, deserialize_with = "toml_date")]
    pub opens: Option<NaiveDate>,
    #[serde(default, deserialize_with = "toml_date")]
    pub closes: Option<NaiveDate>,
    #[serde(default)]
    pub title: TextInput,
    #[serde(default)]
    pub description: TextInput,
    pub meeting: Option<MeetingInput>,
    pub drafts: Option<Vec<DraftInput>>,
    pub short_period_reason: Option<Bilingual<String>>,
}

/// A value that must be one line (a title, the place, the link): any
/// control character (a line break, a bare CR) would end up in the lines of
/// the .ics file and of mail headers.
fn one_line(value: &str, field: &str) -> Result<(), SpecError> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(SpecError::Invalid(format!(
            "{field} contains a control character (U+{:04X}); it must be one line of text",
            c as u32
        ))),
    }
}

/// Text that may run over lines (a description, a draft's text, a reason):
/// line breaks and tabs are kept (CRLF and CR become LF); any other
/// control character is refused.
fn multi_line(value: String, field: &str) -> Result<String, SpecError> {
    let value = value.replace("\r\n", "\n").replace('\r', "\n");
    match value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        None => Ok(value),
        Some(c) => Err(SpecError::Invalid(format!(
            "{field} contains a control character (U+{:04X}) that is not a line break",
            c as u32
        ))),
    }
}

impl SpecInput {
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: shown.clone(),
            source,
        })?;
        let tree: toml::Value = toml::from_str(&text).map_err(|e| SpecError::Syntax {
            path: shown.clone(),
            message: e.message().to_string(),
        })?;
        serde_path_to_error::deserialize(tree).map_err(|e| SpecError::Syntax {
            path: shown,
            message: format!("`{}`: {}", e.path(), e.inner()),
        })
    }

    /// The input that reproduces a stored spec, to edit it.
    pub fn from_spec(spec: &ConsultationSpec) -> Self {
        Self {
            reference: Some(spec.reference.clone()),
            policy_area: Some(spec.policy_area.clone()),
            thematic_group: spec.thematic_group.clone(),
            opens: Some(spec.opens_on),
            closes: Some(spec.closes_on),
            title: TextInput {
                sq: Some(spec.title_sq.clone()),
                en: Some(spec.title_en.clone()),
            },
            description: TextInput {
                sq: Some(spec.description_sq.clone()),
                en: Some(spec.description_en.clone()),
            },
            meeting: spec.meeting.as_ref().map(|m| MeetingInput {
                starts: Some(m.starts_at),
                duration_minutes: Some(m.duration_minutes),
                place: m.place.clone(),
                link: m.online_link.clone(),
                presentation: m.presentation.clone(),
            }),
            drafts: Some(
                spec.drafts
                    .iter()
                    .map(|d| DraftInput {
                        title: d.title.clone(),
                        text: d.text.clone(),
                    })
                    .collect(),
            ),
            short_period_reason: spec.short_period_reason.clone(),
        }
    }

    /// `other`'s values where it has them, ours elsewhere.
    pub fn overlay(self, other: SpecInput) -> Self {
        Self {
            reference: other.reference.or(self.reference),
            policy_area: other.policy_area.or(self.policy_area),
            thematic_group: other.thematic_group.or(self.thematic_group),
            opens: other.opens.or(self.opens),
            closes: other.closes.or(self.closes),
            title: TextInput {
                sq: other.title.sq.or(self.title.sq),
                en: other.title.en.or(self.title.en),
            },
            description: TextInput {
                sq: other.description.sq.or(self.description.sq),
                en: other.description.en.or(self.description.en),
            },
            meeting: match (self.meeting, other.meeting) {
                (Some(a), Some(b)) => Some(MeetingInput {
                    starts: b.starts.or(a.starts),
                    duration_minutes: b.duration_minutes.or(a.duration_minutes),
                    place: b.place.or(a.place),
                    link: b.link.or(a.link),
                    presentation: b.presentation.or(a.presentation),
                }),
                (a, b) => b.or(a),
            },
            drafts: other.drafts.or(self.drafts),
            short_period_reason: other.short_period_reason.or(self.short_period_reason),
        }
    }

    /// Checks everything against the config and the law. `base_dir` is where
    /// a relative presentation path is looked up.
    pub fn validate(self, config: &Config, base_dir: &Path) -> Result<ConsultationSpec, SpecError> {
        let invalid = |s: String| SpecError::Invalid(s);
        let reference = self
            .reference
            .map(|r| r.trim().to_ascii_uppercase())
            .ok_or(SpecError::Missing("a reference (--reference)"))?;
        let ok_ref = (3..=40).contains(&reference.len())
            && reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok_ref {
            return Err(SpecError::Reference(reference));
        }
        let area_code = self
            .policy_area
            .ok_or(SpecError::Missing("a policy area (--policy-area)"))?;
        let area = config.policy_area(&area_code).ok_or_else(|| {
            let known: Vec<&str> = config
                .policy_areas
                .iter()
                .map(|a| a.code.as_str())
                .collect();
            invalid(format!(
                "there is no policy area '{area_code}' (known: {})",
                known.join(", ")
            ))
        })?;
        let thematic_group = match self.thematic_group.filter(|g| !g.trim().is_empty()) {
            None => None,
            Some(g) => Some(
                area.thematic_groups
                    .iter()
                    .find(|t| t.code.eq_ignore_ascii_case(g.trim()))
                    .map(|t| t.code.clone())
                    .ok_or_else(|| {
                        invalid(format!(
                            "policy area {} has no thematic group '{g}'",
                            area.code
                        ))
                    })?,
            ),
        };
        let text = |v: Option<String>, what: &'static str| {
            v.map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .ok_or(SpecError::Missing(what))
        };
        let title_sq = text(self.title.sq, "a title in Albanian (--title-sq)")?;
        one_line(&title_sq, "title.sq")?;
        let title_en = text(self.title.en, "a title in English (--title-en)")?;
        one_line(&title_en, "title.en")?;
        let description_sq = multi_line(
            text(
                self.description.sq,
                "a description in Albanian (--description-sq)",
            )?,
            "description.sq",
        )?;
        let description_en = multi_line(
            text(
                self.description.en,
                "a description in English (--description-en)",
            )?,
            "description.en",
        )?;
        let opens_on = self
            .opens
            .ok_or(SpecError::Missing("an opening date (--opens)"))?;
        let closes_on = self
            .closes
            .ok_or(SpecError::Missing("a closing deadline (--closes)"))?;
        if closes_on <= opens_on {
            return Err(invalid(format!(
                "the deadline {closes_on} must come after the opening date {opens_on}"
            )));
        }

        let calendar = WorkingCalendar::new(config.calendar.holidays.clone());
        let days = calendar.period_length(opens_on, closes_on);
        let min = config.calendar.minimum_working_days;
        let max = config.calendar.maximum_working_days;
        let short_period_reason = self
            .short_period_reason
            .filter(|r| !r.sq.trim().is_empty())
            .map(|r| r.try_map(|t, _| multi_line(t.trim().to_string(), "short_period_reason")))
            .transpose()?;
        if days < min && short_period_reason.is_none() {
            return Err(invalid(format!(
                "{opens_on} to {closes_on} is {days} working days, shorter than the legal minimum of {min} (Law 146/2014, Art. 15); choose a deadline on or after {} or give the reason with --short-period-reason",
                calendar.period_end(opens_on, min)
            )));
        }
        if days > max {
            return Err(invalid(format!(
                "{opens_on} to {closes_on} is {days} working days, longer than the maximum of {max}; choose a deadline on or before {}",
                calendar.period_end(opens_on, max)
            )));
        }

        let meeting = match self.meeting {
            None => None,
            Some(m) => {
                let starts_at = m.starts.ok_or(SpecError::Missing(
                    "the meeting's date and time (--meeting-at)",
                ))?;
                let online_link = m
                    .link
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty());
                if let Some(link) = &online_link {
                    one_line(link, "meeting.link")?;
                }
                if let Some(link) = &online_link
                    && !(link.starts_with("https://") || link.starts_with("http://"))
                {
                    return Err(invalid(format!(
                        "the meeting link must start with https://, not '{link}'"
                    )));
                }
                let presentation = m
                    .presentation
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty());
                // Kept as an absolute path: outreach may run from another folder.
                let presentation = match presentation {
                    Some(p) => Some(check_presentation(&base_dir.join(p))?),
                    None => None,
                };
                let place = m
                    .place
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty());
                if let Some(place) = &place {
                    one_line(place, "meeting.place")?;
                }
                if place.is_none() && online_link.is_none() {
                    return Err(SpecError::Missing(
                        "a place (--meeting-place) or an online link (--meeting-link) for the meeting",
                    ));
                }
                Some(Meeting {
                    starts_at,
                    duration_minutes: m.duration_minutes.unwrap_or(120).clamp(15, 24 * 60),
                    place,
                    online_link,
                    presentation,
                    sequence: 0,
                })
            }
        };

        let drafts = self
            .drafts
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let n = i as u32 + 1;
                let title = d.title.try_map(|t, lang| {
                    let t = t.trim().to_string();
                    one_line(&t, &format!("drafts[{n}].title.{lang}"))?;
                    Ok(t)
                })?;
                let text = d.text.try_map(|t, lang| {
                    multi_line(t.trim().to_string(), &format!("drafts[{n}].text.{lang}"))
                })?;
                if [&title.sq, &title.en, &text.sq, &text.en]
                    .iter()
                    .any(|t| t.is_empty())
                {
                    return Err(invalid(format!(
                        "draft commitment {n} needs a title and a text"
                    )));
                }
                Ok(DraftCommitment {
                    number: n,
                    title,
                    text,
                })
            })
            .collect::<Result<_, _>>()?;

        Ok(ConsultationSpec {
            reference,
            policy_area: area.code.clone(),
            thematic_group,
            title_sq,
            title_en,
            description_sq,
            description_en,
            opens_on,
            closes_on,
            meeting,
            drafts,
            short_period_reason: if days < min {
                short_period_reason
            } else {
                None
            },
        })
    }
}

fn check_presentation(path: &Path) -> Result<String, SpecError> {
    let meta = std::fs::metadata(path).map_err(|source| SpecError::Read {
        path: path.display().to_string(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SpecError::Invalid(format!(
            "the presentation {} is not a file",
            path.display()
        )));
    }
    if meta.len() > MAX_PRESENTATION_BYTES {
        return Err(SpecError::Invalid(format!(
            "the presentation {} is {:.1} MB; invitations carry at most 10 MB, so link to it instead",
            path.display(),
            meta.len() as f64 / 1e6
        )));
    }
    let absolute = path.canonicalize().map_err(|source| SpecError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(absolute.display().to_string())
}
