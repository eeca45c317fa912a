//! cocreate's integration tests, one binary with a module per story: one
//! link instead of one per file. Most drive the real `cocreate` binary
//! through its command line, HTTP, SMTP, LMTP and IMAP; those that need a
//! server outside Rust (aiosmtpd, Dovecot, swaks, PostgreSQL, the shared
//! corpora) are `#[ignore = "needs …"]` in `cargo test` and run by .ci/run
//! with `--include-ignored`.

mod accountability;
mod bounces;
mod browser;
mod browser_review;
mod cli_config;
mod cli_registry;
mod common;
mod consultations;
mod golden;
mod listeners;
mod mail_crash;
mod mail_imap;
mod mail_ingest;
mod mail_inspect;
mod mail_loop;
mod outbox_crash;
mod outbox_lanes;
mod outbox_slow_relay;
mod outreach_smtp;
mod review;
mod schedules;
mod serve;
mod store_conformance;
mod store_review;
mod store_web;
mod web_form;
