//! What intake stores: messages as they arrived, what became of them, the
//! proposals and follow-ups made from them, and what a batch looks up.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::outbox::{NewMessage, ReplyKeyRecord};
use super::registry::Cso;
use crate::domain::{Bilingual, ReplyKey};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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

    /// As the store writes it; None for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Received, Self::Processed, Self::Held, Self::Discarded]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

impl std::fmt::Display for InboundState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which proposal a receipt number stands for, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRef {
    pub id: i64,
    pub consultation_id: i64,
    /// None for a sender who is not in the registry.
    pub cso_id: Option<i64>,
    /// Who wrote the proposal.
    pub from_address: String,
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
    /// The government draft commitment this comments on, by number.
    pub draft_number: Option<i64>,
    pub subject: String,
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
    pub attachments_json: String,
    pub authentication_json: String,
    /// Why the proposal needs a second look (routed by the sender's address
    /// alone), with the authentication results.
    pub sender_flag: Option<String>,
    /// The sender asked that the text not be published.
    pub no_publish: bool,
    /// A sender outside the registry, by the name the POC gave it.
    pub sender_name: Option<String>,
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
    pub draft_number: Option<i64>,
    pub reply_text: String,
    pub sender_flag: Option<String>,
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
    pub state: InboundState,
    pub classification: Option<String>,
    pub reason: Option<String>,
    /// The reason in Albanian (the English one where it has none).
    pub reason_sq: Option<String>,
}

impl InboundSummary {
    /// Why it is where it is, in `lang`.
    pub fn reason_in(&self, lang: crate::domain::Language) -> &str {
        match lang {
            crate::domain::Language::Sq => self.reason_sq.as_deref(),
            crate::domain::Language::En => self.reason.as_deref(),
        }
        .or(self.reason.as_deref())
        .unwrap_or("")
    }
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
    /// Why the follow-up needs a second look (a sender who is neither the
    /// CSO's nor the proposal's), with the authentication results.
    pub sender_flag: Option<String>,
}

/// How a message was stored: its id, whether it is new, and (when it is
/// not) how far it got before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInbound {
    pub id: i64,
    pub new: bool,
    pub state: InboundState,
}

/// One change intake makes once it understands a message. The changes of
/// many messages are written in one transaction: one durable commit for a
/// whole sweep of a maildir instead of two per message.
// A proposal with its receipt is the common write and the large one; a
// batch holds a few hundred at most, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum IntakeWrite {
    Outcome {
        id: i64,
        state: InboundState,
        classification: String,
        /// Why, for the POC: in Albanian and English.
        reason: Bilingual<String>,
    },
    Bounce {
        address: String,
        hard: bool,
        reason: String,
    },
    /// The proposal, its receipts (none when the loop guard held them
    /// back; a copy to the CSO when someone else wrote through its key),
    /// and the message marked processed.
    Proposal {
        proposal: NewProposal,
        receipts: Vec<NewMessage>,
    },
    /// The follow-up, its confirmations, and the message marked processed.
    FollowUp {
        follow_up: NewFollowUp,
        confirmations: Vec<NewMessage>,
    },
    /// A note to the sender of a message that is not a proposal, saying
    /// where to write instead.
    Notice(NewMessage),
}

/// What one [`IntakeWrite`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The receipt number the message's proposal has, and whether this write
    /// created it (false: the message already had one, which is kept).
    Proposal {
        receipt_no: String,
        new: bool,
    },
    /// Whether this write created the follow-up.
    FollowUp {
        new: bool,
    },
}

/// What the store knows that a batch of messages needs, looked up at once
/// (see `Store::intake_lookups`).
#[derive(Debug, Clone, Default)]
pub struct IntakeLookups {
    pub reply_keys: HashMap<ReplyKey, ReplyKeyRecord>,
    /// The CSOs the found reply keys were issued to.
    pub csos: HashMap<i64, Cso>,
    /// Acknowledgements queued to each sender in the last hour.
    pub acknowledgements: HashMap<String, u64>,
    /// (sender, text) of proposals and follow-ups in the last week.
    pub texts: HashSet<(String, String)>,
}
