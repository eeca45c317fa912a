//! Consultations: one per policy area or thematic group, with an opening
//! date, a closing deadline counted in working days, an optional meeting and
//! optional draft commitments from the government for CSOs to comment on.
//!
//! A consultation is written by the POC as a small TOML file (or with flags),
//! checked here against the config and the law's minimum period, and kept as
//! one document in the store.

pub mod lifecycle;
pub mod spec;

use crate::domain::Bilingual;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

pub use spec::{SpecError, SpecInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsultationState {
    /// Being prepared: nothing has been sent.
    Draft,
    /// Opened by the POC ahead of its opening date: the schedule opens it,
    /// and sends its invitations, on that date.
    Scheduled,
    /// Accepting proposals; invitations may go out.
    Open,
    /// No longer accepting proposals as on time.
    Closed,
}

impl ConsultationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// Shown to the public (its page, its form): open or closed, never
    /// before it opens.
    pub fn is_public(self) -> bool {
        matches!(self, Self::Open | Self::Closed)
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(Self::Draft),
            "scheduled" => Some(Self::Scheduled),
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// What the POC wrote, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationSpec {
    pub reference: String,
    pub policy_area: String,
    pub thematic_group: Option<String>,
    pub title_sq: String,
    pub title_en: String,
    pub description_sq: String,
    pub description_en: String,
    pub opens_on: NaiveDate,
    pub closes_on: NaiveDate,
    pub meeting: Option<Meeting>,
    pub drafts: Vec<DraftCommitment>,
    /// Why the period is shorter than the legal minimum, when it is.
    pub short_period_reason: Option<Bilingual<String>>,
}

impl ConsultationSpec {
    /// The title in both languages. (The fields stay apart: a spec is kept
    /// as JSON in the store, in this shape.)
    pub fn title(&self) -> Bilingual<&str> {
        Bilingual::new(&self.title_sq, &self.title_en)
    }

    pub fn description(&self) -> Bilingual<&str> {
        Bilingual::new(&self.description_sq, &self.description_en)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    /// Local time in the office's time zone.
    pub starts_at: NaiveDateTime,
    pub duration_minutes: u32,
    pub place: Option<String>,
    pub online_link: Option<String>,
    /// A file attached to the invitation (the presentation), as given.
    pub presentation: Option<String>,
    /// The calendar event's SEQUENCE: raised each time the meeting changes
    /// after invitations went out, so calendars update the event they have
    /// instead of adding a second one.
    #[serde(default)]
    pub sequence: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftCommitment {
    pub number: u32,
    /// Each CSO reads it in its language; one text (as stored before
    /// drafts had two) serves both.
    pub title: Bilingual<String>,
    pub text: Bilingual<String>,
}

/// A consultation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consultation {
    pub id: i64,
    pub spec: ConsultationSpec,
    pub state: ConsultationState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Consultation {
    /// Whether something arriving on `today` is late: after the deadline's
    /// day, or after the POC closed the consultation.
    pub fn late_on(&self, today: NaiveDate) -> bool {
        self.state == ConsultationState::Closed || self.spec.closes_on < today
    }
}

/// A recorded change of deadline (later, or earlier when closed early).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineExtension {
    pub consultation_id: i64,
    pub previous: NaiveDate,
    pub new: NaiveDate,
    /// Told to each invited CSO in its language.
    pub reason: Bilingual<String>,
    pub at: DateTime<Utc>,
}
