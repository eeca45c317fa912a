//! Inbound mail: every reply a CSO sends, from any client, becomes a
//! threaded proposal (or a follow-up) with a receipt, and nothing else does.
//!
//! So far: parsing (parse), telling people from machines (classify),
//! threading to a consultation and CSO (route), separating what the sender
//! wrote from quotes and signature (trim), and `mail inspect`, which does all
//! of it for one message without storing anything. Storing raw messages,
//! proposals and receipts, and the sources (stdin, maildir, IMAP, LMTP,
//! webhook), come next.

pub mod attachments;
pub mod authenticity;
pub mod bounce;
pub mod classify;
pub mod html;
pub mod imap;
pub mod inspect;
pub mod lmtp;
pub mod maildir;
pub mod parse;
pub mod pen;
pub mod route;
pub mod trim;
