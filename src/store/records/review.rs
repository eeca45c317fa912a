//! What review, dispositions, publication and sign-in keep.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A proposal as a reviewer reads it: what was written, by whom, its flags,
/// and how it was considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewProposal {
    pub id: i64,
    /// The stored message it came from.
    pub inbound_message_id: i64,
    pub receipt_no: String,
    pub consultation_id: i64,
    pub cso_id: Option<i64>,
    /// The registry's name of the CSO, when it is the registry's.
    pub cso_name: Option<String>,
    /// The CSO's language (`sq` or `en`), when it is the registry's.
    pub cso_language: Option<String>,
    /// A sender outside the registry, by the name the POC gave.
    pub sender_name: Option<String>,
    pub from_address: String,
    pub other_sender: bool,
    pub late: bool,
    pub draft_number: Option<i64>,
    pub subject: String,
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
    /// JSON: [{name, content_type, size, sha256, …}].
    pub attachments_json: String,
    pub sender_flag: Option<String>,
    pub no_publish: bool,
    pub disowned_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub follow_ups: i64,
    pub disposition: Option<DispositionRecord>,
}

/// How a proposal was considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispositionRecord {
    /// accepted, partly_accepted, merged, not_accepted or out_of_scope.
    pub disposition: String,
    /// The commitment it fed (named for `merged`).
    pub commitment: Option<String>,
    pub response_sq: String,
    pub response_en: Option<String>,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
    /// Shared by the proposals answered together.
    pub group_key: Option<String>,
}

/// An addition to a proposal, as the thread shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowUpRecord {
    pub id: i64,
    pub inbound_message_id: i64,
    pub from_address: String,
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
    pub attachments_json: String,
    pub sender_flag: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One message we sent about a proposal (its receipt, confirmations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentRecord {
    pub kind: String,
    pub recipient: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One change to a disposition, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub id: i64,
    pub receipt_no: String,
    pub consultation_id: i64,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub before: Option<DispositionRecord>,
    pub after: DispositionRecord,
    /// It changed a published result.
    pub correction: bool,
}

/// A decision to record for one proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispositionWrite {
    pub proposal_id: i64,
    pub record: DispositionRecord,
}

/// What recording decisions did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decided {
    /// Proposals whose disposition changed (the same decision again is not
    /// a change and is not logged).
    pub changed: Vec<i64>,
    /// Log entries of changes to published results: each is owed one
    /// correction notice.
    pub corrections: Vec<i64>,
}

/// A consultation's published results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publication {
    pub consultation_id: i64,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
}
