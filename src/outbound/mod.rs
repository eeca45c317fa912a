//! Everything cocreate sends: templates, message building, the outbox table
//! every message passes through, the worker that delivers it, and outreach
//! (the invitations of a consultation).
//!
//! Nothing is sent directly. A message is rendered, stored in the outbox with
//! an idempotency key (so the same message is never queued twice), and
//! delivered by the worker, which marks it sent only after the relay accepted
//! it. A crash therefore never loses a message; at worst a message in flight
//! is sent again after its claim expires.

pub mod email;
mod examples;
pub mod ics;
pub mod lfp;
pub mod message;
pub mod notices;
pub mod office;
pub mod outbox;
pub mod outreach;
mod smtp;
pub mod templates;
pub mod transport;
pub mod verp;
