//! What the web form keeps beside intake's own records.

use chrono::{DateTime, Utc};

/// A web-form proposal from someone not in the registry, waiting for its
/// sender to confirm their address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPending {
    /// The form's nonce: the same form sent twice waits once.
    pub nonce: String,
    /// SHA-256 of the confirmation link's token, hex.
    pub token_hash: String,
    pub consultation_id: i64,
    pub address: String,
    /// The message the proposal becomes once confirmed.
    pub raw: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A waiting (or already confirmed) web-form proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub consultation_id: i64,
    pub address: String,
    pub raw: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    /// The stored message it became, once confirmed.
    pub inbound_id: Option<i64>,
}

/// One proposal as its sender's page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentProposal {
    pub receipt_no: String,
    pub created_at: DateTime<Utc>,
    pub follow_ups: i64,
}
