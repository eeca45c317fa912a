//! What the outbox holds: messages waiting, claimed, sent or failed, the
//! reply keys they carry, and the relay's refusal of cocreate, if any.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{EmailAddress, EmailKind, ReplyKey};

/// A message ready to be queued.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Unique per message meaning, e.g. `invitation:12:345:info@x.al`.
    pub idempotency_key: String,
    pub kind: EmailKind,
    pub recipient: EmailAddress,
    /// Empty for the null sender.
    pub envelope_from: String,
    pub consultation_id: Option<i64>,
    pub cso_id: Option<i64>,
    /// The whole RFC 5322 message, signed if DKIM is configured.
    pub message: Vec<u8>,
    /// Stored in the same transaction, only if the message is new.
    pub reply_key: Option<ReplyKeyRecord>,
}

/// What a reply key stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyKeyRecord {
    pub key: ReplyKey,
    pub consultation_id: i64,
    pub cso_id: i64,
    pub address: EmailAddress,
    pub purpose: &'static str,
    /// For a receipt's key: the proposal a reply adds to.
    pub receipt_no: Option<String>,
}

/// A message claimed for delivery.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub idempotency_key: String,
    pub kind: String,
    pub recipient: String,
    pub envelope_from: String,
    pub message: Vec<u8>,
    /// Including this one.
    pub attempts: u32,
}

/// Messages claimed together, and the token that says the claim is still
/// ours: renewing, recording and releasing all name it, and touch only the
/// messages whose claim it still is.
#[derive(Debug, Clone)]
pub struct Claim {
    pub token: String,
    pub messages: Vec<OutboxMessage>,
}

impl Claim {
    /// A token no other claim will have.
    pub fn new_token() -> String {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..16)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    }
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    Retry { at: DateTime<Utc>, error: String },
    Failed { error: String, hard_bounce: bool },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    /// Not sent because their consultation closed first.
    pub cancelled: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxFailure {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub attempts: u32,
    pub last_error: String,
    /// The recipient's address was refused for good: retrying cannot help
    /// until the address is corrected.
    pub refused: bool,
}

/// What `outbox retry` is to put back in the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryScope {
    /// Deferred messages are made due now, not at their next attempt.
    pub deferred_now: bool,
    /// Failures to addresses refused for good are retried too.
    pub refused: bool,
}

/// What `outbox retry` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// Failed messages put back in the queue.
    pub failed: u64,
    /// Deferred messages made due now.
    pub deferred: u64,
    /// Failures to refused addresses left as they are.
    pub refused_left: u64,
}

/// The relay refusing cocreate itself (a wrong password, TLS it will not
/// speak): kept in the store so `outbox status` and /healthz can say why
/// nothing leaves, whichever process saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayRefusal {
    pub reason: String,
    pub since: DateTime<Utc>,
    pub next_try_at: DateTime<Utc>,
}
