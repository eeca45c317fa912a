//! The sections of the config as cocreate uses them, values already parsed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{Bilingual, EmailAddress, Keyword, Language};

/// Where mail comes in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    #[serde(default)]
    pub maildir: Option<PathBuf>,
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    #[serde(default)]
    #[serde(deserialize_with = "optional_listen_address")]
    pub lmtp_listen: Option<SocketAddr>,
    /// LMTP sessions open at once; one more is told 421 and closed.
    #[serde(default = "default_lmtp_max_sessions")]
    pub lmtp_max_sessions: usize,
    /// Recipients of one LMTP message; more are told 452.
    #[serde(default = "default_lmtp_max_recipients")]
    pub lmtp_max_recipients: usize,
    /// How long an LMTP client may stay silent, between commands or in
    /// the middle of DATA, before the session is closed.
    #[serde(default = "default_lmtp_timeout")]
    pub lmtp_timeout_seconds: u64,
    pub max_message_bytes: usize,
    /// Attached messages (message/rfc822) one message may hold: each is a
    /// level of nesting to read.
    #[serde(default = "default_max_attached_messages")]
    pub max_attached_messages: usize,
    /// MIME parts one message may have.
    #[serde(default = "default_max_mime_parts")]
    pub max_mime_parts: usize,
    /// A stored message whose processing failed is tried again after this
    /// many seconds, doubling each time (up to an hour).
    #[serde(default = "default_retry_seconds")]
    pub retry_seconds: u64,
    /// After this many failed attempts a message is held with the error.
    #[serde(default = "default_max_processing_attempts")]
    pub max_processing_attempts: u32,
    /// /healthz reports 503 once a stored message has waited this long
    /// without being processed.
    #[serde(default = "default_backlog_alert")]
    pub backlog_alert_seconds: u64,
    /// The authserv-id our receiving mail server writes in
    /// Authentication-Results; when set, only its results are believed.
    #[serde(default)]
    pub trusted_authserv_id: Option<String>,
    /// IMAP mailbox to take mail from; empty host for none.
    #[serde(default)]
    pub imap_host: String,
    #[serde(default = "default_imap_port")]
    pub imap_port: u16,
    #[serde(default = "default_imap_security")]
    pub imap_security: Security,
    #[serde(default)]
    pub imap_username: String,
    #[serde(default)]
    pub imap_password_env: Option<String>,
    #[serde(default = "default_imap_mailbox")]
    pub imap_mailbox: String,
    /// A PEM file of certificate authorities to trust for the IMAP server
    /// besides the public ones (a mail server with a private CA).
    #[serde(default)]
    pub imap_ca_file: Option<PathBuf>,
    #[serde(default = "default_imap_poll")]
    pub imap_poll_seconds: u64,
    /// How long connecting, logging in and opening the mailbox may take.
    #[serde(default = "default_imap_timeout")]
    pub imap_timeout_seconds: u64,
    /// Where attachments are kept apart, one file per content.
    #[serde(default = "default_attachments_dir")]
    pub attachments_dir: PathBuf,
    /// Largest attachment kept apart; larger ones stay in the message and
    /// the receipt says so.
    #[serde(default = "default_max_attachment")]
    pub max_attachment_bytes: usize,
}

/// A listening address, or none for an empty string.
fn optional_listen_address<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let raw = String::deserialize(d)?;
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!("'{raw}' is not an address like 127.0.0.1:2424"))
    })
}

fn default_retry_seconds() -> u64 {
    30
}
fn default_max_processing_attempts() -> u32 {
    12
}
fn default_backlog_alert() -> u64 {
    900
}

fn default_max_attached_messages() -> usize {
    crate::inbound::parse::MAX_ATTACHED_MESSAGES
}
fn default_max_mime_parts() -> usize {
    crate::inbound::parse::MAX_MIME_PARTS
}

fn default_lmtp_max_sessions() -> usize {
    100
}
fn default_lmtp_max_recipients() -> usize {
    100
}
fn default_lmtp_timeout() -> u64 {
    // RFC 5321 4.5.3.2: a server waits at least five minutes for a command.
    300
}

fn default_attachments_dir() -> PathBuf {
    PathBuf::from("data/attachments")
}

fn default_max_attachment() -> usize {
    10 * 1024 * 1024
}

fn default_imap_port() -> u16 {
    993
}
fn default_imap_security() -> Security {
    Security::Tls
}
fn default_imap_mailbox() -> String {
    "INBOX".into()
}
fn default_imap_poll() -> u64 {
    30
}
fn default_imap_timeout() -> u64 {
    30
}

impl InboundConfig {
    /// How much of a message's structure is read.
    pub fn parse_limits(&self) -> crate::inbound::parse::ParseLimits {
        crate::inbound::parse::ParseLimits {
            attached_messages: self.max_attached_messages,
            parts: self.max_mime_parts,
        }
    }

    /// The webhook's shared secret, when its variable is set.
    pub fn webhook_secret(&self) -> Option<String> {
        let var = self.webhook_secret_env.as_deref()?;
        std::env::var(var).ok().filter(|s| !s.is_empty())
    }

    /// The IMAP password from the environment variable the file names.
    pub fn imap_password(&self) -> Option<String> {
        let var = self.imap_password_env.as_deref()?;
        std::env::var(var).ok().filter(|p| !p.is_empty())
    }

    /// The watched maildir, unless switched off with an empty value.
    pub fn maildir(&self) -> Option<&Path> {
        self.maildir
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }
}

/// Working days for consultation periods.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    pub holidays: std::collections::BTreeSet<chrono::NaiveDate>,
    pub minimum_working_days: u32,
    pub maximum_working_days: u32,
}

/// cocreate's own addresses and headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub domain: String,
    pub reply_local: String,
    /// The local part of bounce addresses (`BOUNCE_LOCAL+ID-SIG@domain`,
    /// each message's own envelope sender); empty sends from `from` instead.
    #[serde(default = "default_bounce_local")]
    pub bounce_local: String,
    pub from: EmailAddress,
    pub list_id: String,
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
    #[serde(default = "default_receipts_per_hour")]
    pub receipts_per_address_per_hour: u32,
    #[serde(default)]
    pub dkim_selector: String,
    #[serde(default)]
    pub dkim_key_file: String,
}

fn default_bounce_local() -> String {
    "bounce".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    pub transport: TransportKind,
    pub file_dir: PathBuf,
    pub max_attempts: u32,
    pub retry_base_seconds: u64,
    pub retry_max_seconds: u64,
    pub rate_per_second: u32,
    pub concurrency: u32,
    pub claim_seconds: u64,
}

/// How a connection to a mail server is protected; the SMTP relay and the
/// IMAP mailbox each have their own setting of this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain text: only for a server on this machine.
    None,
    /// Plain connection upgraded with STARTTLS before anything else is said
    /// (SMTP 587, IMAP 143); a server that does not offer it is refused.
    Starttls,
    /// TLS from the first byte (SMTP 465, IMAP 993).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password_env: Option<String>,
    pub timeout_seconds: u64,
}

impl SmtpConfig {
    /// The relay password from the environment variable the file names.
    pub fn password(&self) -> Option<String> {
        let var = self.password_env.as_deref()?;
        std::env::var(var).ok().filter(|p| !p.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    /// Connections open at once; more wait in the kernel's queue.
    #[serde(default = "default_max_connections_http")]
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_seconds: u64,
    /// How long one request may take, body included, once its headers are in.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// After SIGTERM, how long requests in hand may take to finish before
    /// their connections are closed.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_seconds: u64,
}

/// The web form's limits (the `[form]` section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormConfig {
    /// A form sent sooner than this after it was shown is a robot's.
    #[serde(default = "default_form_min_seconds")]
    pub min_seconds: u64,
    /// A form older than this is refused (what was typed is kept).
    #[serde(default = "default_form_max_age_hours")]
    pub max_age_hours: u64,
    /// Files one form may carry, and all of a form's bytes together.
    #[serde(default = "default_form_attachments")]
    pub max_attachments: usize,
    #[serde(default = "default_form_bytes")]
    pub max_bytes: usize,
    /// Characters one text field of the form may hold.
    #[serde(default = "default_form_field_chars")]
    pub max_field_chars: usize,
    /// Forms one client address may send an hour, and one CSO's link.
    #[serde(default = "default_posts_per_client")]
    pub posts_per_client_per_hour: u32,
    #[serde(default = "default_posts_per_cso")]
    pub posts_per_cso_per_hour: u32,
    /// Proposals waiting for confirmation one address may have a day.
    #[serde(default = "default_confirmations")]
    pub confirmations_per_address_per_day: u32,
    /// How long the confirmation link of a visitor's proposal works.
    #[serde(default = "default_confirm_hours")]
    pub confirm_link_hours: u64,
}

impl Default for FormConfig {
    fn default() -> Self {
        Self {
            min_seconds: default_form_min_seconds(),
            max_age_hours: default_form_max_age_hours(),
            max_attachments: default_form_attachments(),
            max_bytes: default_form_bytes(),
            max_field_chars: default_form_field_chars(),
            posts_per_client_per_hour: default_posts_per_client(),
            posts_per_cso_per_hour: default_posts_per_cso(),
            confirmations_per_address_per_day: default_confirmations(),
            confirm_link_hours: default_confirm_hours(),
        }
    }
}

fn default_form_min_seconds() -> u64 {
    3
}
fn default_form_max_age_hours() -> u64 {
    24
}
fn default_form_attachments() -> usize {
    5
}
fn default_form_bytes() -> usize {
    25 * 1024 * 1024
}
fn default_form_field_chars() -> usize {
    20_000
}
fn default_posts_per_client() -> u32 {
    30
}
fn default_posts_per_cso() -> u32 {
    20
}
fn default_confirmations() -> u32 {
    5
}
fn default_confirm_hours() -> u64 {
    48
}

fn default_max_connections_http() -> usize {
    1000
}
fn default_header_timeout() -> u64 {
    10
}
fn default_request_timeout() -> u64 {
    60
}
fn default_shutdown_grace() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// SQLite's page cache per connection, in MiB (SQLite's own default
    /// is 2 MiB).
    #[serde(default = "default_sqlite_cache_mib")]
    pub sqlite_cache_mib: u32,
    /// How much of the SQLite file is read through memory mapping, in MiB
    /// (0: none; reads then copy each page through the kernel).
    #[serde(default = "default_sqlite_mmap_mib")]
    pub sqlite_mmap_mib: u32,
}

fn default_sqlite_cache_mib() -> u32 {
    crate::store::SqliteMemory::default().cache_mib
}

fn default_sqlite_mmap_mib() -> u32 {
    crate::store::SqliteMemory::default().mmap_mib
}

fn default_receipts_per_hour() -> u32 {
    10
}

fn default_max_connections() -> u32 {
    8
}

impl DatabaseConfig {
    /// SQLite's cache and memory map as the config sets them.
    pub fn sqlite_memory(&self) -> crate::store::SqliteMemory {
        crate::store::SqliteMemory {
            cache_mib: self.sqlite_cache_mib,
            mmap_mib: self.sqlite_mmap_mib,
        }
    }

    /// The password from the environment variable the file names, if set.
    pub fn password(&self) -> Option<String> {
        let var = self.password_env.as_deref()?;
        std::env::var(var).ok().filter(|p| !p.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct OfficeConfig {
    pub name: Bilingual<String>,
    pub email: EmailAddress,
    pub postal_address: String,
    pub time_zone: chrono_tz::Tz,
    /// POC staff who may sign in to the review pages (the office's own
    /// address may too).
    pub staff: Vec<EmailAddress>,
}

impl OfficeConfig {
    /// The office's calendar day at `t`: what deadlines, opening dates and
    /// working days are counted in.
    pub fn date_at(&self, t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        t.with_timezone(&self.time_zone).date_naive()
    }
}

/// A policy area of focus, owned by its Lead Focal Point Institution.
#[derive(Debug, Clone)]
pub struct PolicyArea {
    pub code: String,
    pub name: Bilingual<String>,
    pub lfp: Lfp,
    pub direct_keywords: Vec<Keyword>,
    pub indirect_keywords: Vec<Keyword>,
    pub thematic_groups: Vec<ThematicGroup>,
}

#[derive(Debug, Clone)]
pub struct Lfp {
    pub name: Bilingual<String>,
    pub emails: Vec<EmailAddress>,
    /// The language of its digests and reminders.
    pub language: Language,
}

#[derive(Debug, Clone)]
pub struct ThematicGroup {
    pub code: String,
    pub name: Bilingual<String>,
}
