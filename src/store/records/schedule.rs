//! What the scheduled jobs read and write: who was invited, what a digest
//! lists, and how a consultation's close is recorded.

use chrono::{DateTime, Utc};

/// One address a consultation's invitation went to (or waits to go to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    pub cso_id: i64,
    pub address: String,
}

/// One LFP's digest to queue, and the watermark move that goes with it.
#[derive(Debug, Clone, Copy)]
pub struct DigestWrite<'a> {
    pub lfp: &'a str,
    pub previous: Option<DateTime<Utc>>,
    pub through: DateTime<Utc>,
    pub messages: &'a [super::NewMessage],
}

/// What one LFP's digest asks of the store: its consultations, and the
/// window of arrivals it covers (`since` is None for the first digest).
#[derive(Debug, Clone)]
pub struct DigestQuery<'a> {
    pub consultation_ids: &'a [i64],
    pub since: Option<DateTime<Utc>>,
    pub through: DateTime<Utc>,
    /// Entries returned per section; the rest are only counted.
    pub cap: usize,
}

/// A proposal or a follow-up, as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestEntry {
    pub receipt_no: String,
    pub consultation_id: i64,
    pub cso_name: Option<String>,
    pub from_address: String,
    pub at: DateTime<Utc>,
    /// The start of what was written (the store returns at most
    /// [`EXCERPT_SOURCE_CHARS`] characters).
    pub text: String,
    pub follow_up: bool,
    pub late: bool,
}

/// Characters of a proposal's text the store hands a digest to make its
/// excerpt from.
pub const EXCERPT_SOURCE_CHARS: usize = 600;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestData {
    /// New proposals and follow-ups in the window, by consultation then
    /// time, at most `cap`.
    pub new: Vec<DigestEntry>,
    pub new_proposals: u64,
    pub new_follow_ups: u64,
    /// Proposals without a disposition from before the window (or all,
    /// with no window), oldest first, at most `cap`.
    pub waiting: Vec<DigestEntry>,
    /// Every proposal without a disposition up to the window's end.
    pub waiting_total: u64,
    /// Of those, the ones from before the window (what `waiting` lists).
    pub waiting_older: u64,
}

/// Invited and replied organisations of one consultation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCount {
    pub invited: u64,
    pub replied: u64,
}

/// A message deferred after a failed attempt, waiting to be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub attempts: u32,
    pub last_error: String,
    pub next_attempt_at: DateTime<Utc>,
}
