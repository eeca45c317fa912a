//! Inbound mail: every reply a CSO sends, from any client, becomes a
//! threaded proposal (or a follow-up) with a receipt, and nothing else does.
//!
//! So far: trimming a reply into what the sender wrote, the quoted history
//! and the signature.

pub mod trim;
