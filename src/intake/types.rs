//! What intake stores.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A message as it arrived, before anything is made of it.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    pub dedupe_key: String,
    pub source: &'a str,
    pub raw: &'a [u8],
    pub message_id: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
}

/// What became of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    /// Stored, not yet processed (or processing was interrupted).
    Received,
    /// Made into a proposal, or recognised as machine mail.
    Processed,
    /// Waiting in the holding pen for the POC.
    Held,
    /// Set aside by the POC from the holding pen; kept.
    Discarded,
}

impl InboundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Processed => "processed",
            Self::Held => "held",
            Self::Discarded => "discarded",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewProposal {
    pub receipt_no: String,
    pub consultation_id: i64,
    pub cso_id: Option<i64>,
    pub inbound_message_id: i64,
    pub from_address: String,
    pub other_sender: bool,
    pub late: bool,
    pub subject: String,
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
    pub attachments_json: String,
    pub authentication_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposalSummary {
    pub id: i64,
    pub receipt_no: String,
    pub consultation_id: i64,
    pub cso_id: Option<i64>,
    pub from_address: String,
    pub other_sender: bool,
    pub late: bool,
    pub reply_text: String,
    pub created_at: DateTime<Utc>,
}

/// A stored message as the holding pen lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundSummary {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub state: String,
    pub classification: Option<String>,
    pub reason: Option<String>,
}

/// An addition to an earlier proposal: a reply to its receipt.
#[derive(Debug, Clone)]
pub struct NewFollowUp {
    pub proposal_id: i64,
    pub receipt_no: String,
    pub inbound_message_id: i64,
    pub from_address: String,
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
    pub attachments_json: String,
}
