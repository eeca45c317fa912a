//! The `[schedules]` section: when each scheduled job runs, and what the
//! jobs' own settings are. Every schedule is a crontab(5) expression read
//! in `office.time_zone` (see [`Schedule`]); an empty string turns the job
//! off. A bad expression stops cocreate at start, naming the key.

use serde::Deserialize;

use crate::domain::{Language, Schedule, optional_schedule};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulesConfig {
    /// Opening consultations on their opening day (their invitations go out
    /// then) and closing them after their deadline (mail still queued for
    /// them is cancelled).
    #[serde(
        default = "default_consultations",
        deserialize_with = "optional_schedule"
    )]
    pub consultations: Option<Schedule>,
    /// The weekly digest to each LFP's contacts.
    #[serde(default = "default_lfp_digest", deserialize_with = "optional_schedule")]
    pub lfp_digest: Option<Schedule>,
    /// What an LFP with nothing new since its last digest gets.
    #[serde(default)]
    pub lfp_digest_when_empty: WhenEmpty,
    /// Entries listed per section of a digest; the rest are counted.
    #[serde(default = "default_digest_section_cap")]
    pub lfp_digest_section_cap: usize,
    /// When deadline reminders are looked for each day.
    #[serde(
        default = "default_deadline_reminders",
        deserialize_with = "optional_schedule"
    )]
    pub deadline_reminders: Option<Schedule>,
    /// Days before a consultation's deadline that its invited CSOs are
    /// reminded.
    #[serde(default = "default_reminder_days")]
    pub reminder_days: Vec<u32>,
    /// Remind only CSOs that have sent nothing yet.
    #[serde(default)]
    pub remind_only_silent: bool,
    /// When LFPs are reminded of proposals still without a disposition.
    #[serde(
        default = "default_response_reminders",
        deserialize_with = "optional_schedule"
    )]
    pub response_reminders: Option<Schedule>,
    /// Working days after a consultation closes before its LFP is reminded.
    #[serde(default = "default_response_after")]
    pub response_after_working_days: u32,
    /// The POC's daily summary: the holding pen, the outbox's failures and
    /// deferrals, consultations opening and closing, digests sent.
    #[serde(
        default = "default_pen_summary",
        deserialize_with = "optional_schedule"
    )]
    pub pen_summary: Option<Schedule>,
    /// The language of that summary.
    #[serde(default)]
    pub pen_summary_language: Language,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenEmpty {
    /// A short "nothing new" note, so the LFP knows the digest still runs.
    #[default]
    Note,
    /// Nothing at all.
    Nothing,
}

impl SchedulesConfig {
    /// Each scheduled job by name, with its schedule (None: off), in the
    /// order `schedule list` shows them.
    pub fn jobs(&self) -> [(&'static str, Option<&Schedule>); 5] {
        [
            ("consultations", self.consultations.as_ref()),
            ("deadline_reminders", self.deadline_reminders.as_ref()),
            ("lfp_digest", self.lfp_digest.as_ref()),
            ("response_reminders", self.response_reminders.as_ref()),
            ("pen_summary", self.pen_summary.as_ref()),
        ]
    }
}

impl Default for SchedulesConfig {
    fn default() -> Self {
        Self {
            consultations: default_consultations(),
            lfp_digest: default_lfp_digest(),
            lfp_digest_when_empty: WhenEmpty::default(),
            lfp_digest_section_cap: default_digest_section_cap(),
            deadline_reminders: default_deadline_reminders(),
            reminder_days: default_reminder_days(),
            remind_only_silent: false,
            response_reminders: default_response_reminders(),
            response_after_working_days: default_response_after(),
            pen_summary: default_pen_summary(),
            pen_summary_language: Language::default(),
        }
    }
}

fn schedule(text: &str) -> Option<Schedule> {
    Some(Schedule::parse(text).expect("a built-in schedule parses"))
}

fn default_consultations() -> Option<Schedule> {
    schedule("*/5 * * * *")
}

fn default_lfp_digest() -> Option<Schedule> {
    schedule("0 8 * * Mon")
}

fn default_digest_section_cap() -> usize {
    25
}

fn default_deadline_reminders() -> Option<Schedule> {
    schedule("0 9 * * *")
}

fn default_reminder_days() -> Vec<u32> {
    vec![7, 1]
}

fn default_response_reminders() -> Option<Schedule> {
    schedule("0 9 * * Mon-Fri")
}

fn default_response_after() -> u32 {
    10
}

fn default_pen_summary() -> Option<Schedule> {
    schedule("0 8 * * Mon-Fri")
}
