//! The records the store reads and writes. They live here, not in the
//! modules that use them, so the store imports nothing from above it.

mod inbound;
mod outbox;
mod registry;
mod review;
mod schedule;
mod web;

pub use inbound::{
    Applied, InboundState, InboundSummary, IntakeLookups, IntakeWrite, NewFollowUp, NewInbound,
    NewProposal, ProposalRef, ProposalSummary, StoredInbound,
};
pub use outbox::{
    Claim, Delivery, NewMessage, OutboxCounts, OutboxFailure, OutboxMessage, RelayRefusal,
    ReplyKeyRecord, Retried, RetryScope,
};
pub use registry::{
    AddressStatus, Cso, CsoRecord, ImportLogEntry, ImportRecord, RegistryChanges, RelevanceOverride,
};
pub use review::{
    Decided, DispositionRecord, DispositionWrite, FollowUpRecord, LogEntry, Publication,
    ReviewProposal, SentRecord,
};
pub use schedule::{
    Deferred, DigestData, DigestEntry, DigestQuery, DigestWrite, EXCERPT_SOURCE_CHARS, Invitee,
    ReplyCount,
};
pub use web::{NewPending, Pending, SentProposal};
