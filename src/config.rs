//! Settings: config/cocreate.toml, overridden key by key from COCREATE_*
//! environment variables, checked completely before anything starts.
//!
//! The file is read into a TOML tree, environment overrides are applied to
//! that tree, and only then is it turned into the typed [`Config`]. Every
//! failure names where the bad value came from (the file or the variable),
//! the key and the problem, in one sentence.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Keyword;
use crate::domain::Schedule;
use crate::domain::{EmailAddress, Language};

/// The documented default, compiled in so the binary works from any folder.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/cocreate.toml");
/// Where cocreate looks for its config when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/cocreate.toml";

const ENV_PREFIX: &str = "COCREATE_";
/// Variables under this prefix belong to the test suite, not to a deployment.
const ENV_TEST_PREFIX: &str = "COCREATE_TEST_";
/// The variable `--config` reads; it names a file rather than a setting.
pub const ENV_CONFIG_PATH: &str = "COCREATE_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: `{key}` {problem}")]
    Invalid {
        origin: String,
        key: String,
        problem: String,
    },
    #[error(
        "environment variable {var} does not name a cocreate setting (settings look like COCREATE_SERVER_LISTEN)"
    )]
    UnknownVariable { var: String },
}

/// Where the settings were read from, for messages and `config check`.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Embedded,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Embedded => f.write_str("the built-in default config"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub source: ConfigSource,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub office: OfficeConfig,
    pub calendar: CalendarConfig,
    pub mail: MailConfig,
    pub outbox: OutboxConfig,
    pub smtp: SmtpConfig,
    pub inbound: InboundConfig,
    pub policy_areas: Vec<PolicyArea>,
}

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
    pub max_message_bytes: usize,
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
    /// When the POC's summary of the holding pen goes out: cron syntax with
    /// seconds, in the office's time zone; empty for never.
    #[serde(
        default = "default_pen_summary",
        deserialize_with = "crate::domain::optional_schedule"
    )]
    pub pen_summary: Option<Schedule>,
    #[serde(default)]
    pub pen_summary_language: Language,
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

fn default_attachments_dir() -> PathBuf {
    PathBuf::from("data/attachments")
}

fn default_max_attachment() -> usize {
    10 * 1024 * 1024
}

fn default_pen_summary() -> Option<Schedule> {
    Schedule::parse("0 0 8 * * Mon-Fri").ok()
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
    pub from: String,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_receipts_per_hour() -> u32 {
    10
}

fn default_max_connections() -> u32 {
    8
}

impl DatabaseConfig {
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
    pub name_sq: String,
    pub name_en: String,
    pub email: EmailAddress,
    pub postal_address: String,
    pub time_zone: chrono_tz::Tz,
}

/// A policy area of focus, owned by its Lead Focal Point Institution.
#[derive(Debug, Clone)]
pub struct PolicyArea {
    pub code: String,
    pub name_sq: String,
    pub name_en: String,
    pub lfp: Lfp,
    pub direct_keywords: Vec<Keyword>,
    pub indirect_keywords: Vec<Keyword>,
    pub thematic_groups: Vec<ThematicGroup>,
}

#[derive(Debug, Clone)]
pub struct Lfp {
    pub name_sq: String,
    pub name_en: String,
    pub emails: Vec<EmailAddress>,
}

#[derive(Debug, Clone)]
pub struct ThematicGroup {
    pub code: String,
    pub name_sq: String,
    pub name_en: String,
}

impl Config {
    /// Loads the settings cocreate runs with: `path` if given, otherwise
    /// config/cocreate.toml in the current folder, otherwise the built-in
    /// default; then the process environment's COCREATE_* overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    pub fn load_with_env(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let (source, text) = match path {
            Some(p) => (ConfigSource::File(p.to_path_buf()), read(p)?),
            None if Path::new(DEFAULT_PATH).is_file() => {
                let p = PathBuf::from(DEFAULT_PATH);
                let text = read(&p)?;
                (ConfigSource::File(p), text)
            }
            None => (ConfigSource::Embedded, EMBEDDED_DEFAULT.to_string()),
        };
        Self::parse(source, &text, env)
    }

    /// The built-in default, with no overrides.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::parse(ConfigSource::Embedded, EMBEDDED_DEFAULT, &[])
    }

    /// Parses `text` as read from `source`, applying overrides from `env`.
    pub fn parse(
        source: ConfigSource,
        text: &str,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let origin = source.to_string();
        let mut tree: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    origin: origin.clone(),
                    message: one_line(&toml_error_message(&e, text)),
                })?;
        let overridden = apply_env_overrides(&mut tree, env)?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Invalid {
                    origin: origin.clone(),
                    problem: serde_problem(&e.into_inner().to_string()),
                    key: if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                }
            })?;
        raw.validate(source, &overridden)
    }

    pub fn policy_area(&self, code: &str) -> Option<&PolicyArea> {
        self.policy_areas
            .iter()
            .find(|a| a.code.eq_ignore_ascii_case(code))
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn toml_error_message(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{} (line {line})", e.message())
        }
        None => e.message().to_string(),
    }
}

/// Rephrases serde's messages as the rest of a sentence that starts with the key.
fn serde_problem(message: &str) -> String {
    let mut message = one_line(message);
    // toml names the table at the end; the sentence already starts with it.
    if message.ends_with('`')
        && let Some(at) = message.rfind(" in `")
    {
        message.truncate(at);
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let expected = rest.split_once("`, ").map_or("", |(_, e)| e);
        return format!("is not a setting ({expected})");
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("is missing {rest}");
    }
    format!("is wrong: {message}")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Applies COCREATE_SECTION_KEY=value to the tree. Known keys are those of the
/// built-in default and of the file itself, so an override can set a key the
/// file leaves out. Values take the type the default has there.
/// Returns the dotted keys that were overridden.
fn apply_env_overrides(
    tree: &mut toml::Table,
    env: &[(String, String)],
) -> Result<HashSet<String>, ConfigError> {
    let mut overridden = HashSet::new();
    let default: toml::Table = EMBEDDED_DEFAULT
        .parse()
        .expect("the built-in config is valid TOML");
    let mut known = BTreeMap::new();
    flatten_keys(&default, &mut Vec::new(), &mut known);
    flatten_keys(tree, &mut Vec::new(), &mut known);

    // Variables that the config names as holding secrets are not settings.
    let mut secret_vars = HashSet::new();
    collect_secret_vars(&default, &mut secret_vars);
    collect_secret_vars(tree, &mut secret_vars);

    for (var, value) in env {
        let Some(name) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var.starts_with(ENV_TEST_PREFIX) || var == ENV_CONFIG_PATH || secret_vars.contains(var) {
            continue;
        }
        let Some((path, example)) = known.get(name) else {
            return Err(ConfigError::UnknownVariable { var: var.clone() });
        };
        let parsed = env_value(value, example).map_err(|problem| ConfigError::Invalid {
            origin: format!("environment variable {var}"),
            key: path.join("."),
            problem,
        })?;
        set_path(tree, path, parsed);
        overridden.insert(path.join("."));
    }
    Ok(overridden)
}

fn flatten_keys(
    table: &toml::Table,
    prefix: &mut Vec<String>,
    out: &mut BTreeMap<String, (Vec<String>, toml::Value)>,
) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            toml::Value::Table(t) => flatten_keys(t, prefix, out),
            // Lists of tables (policy areas) are only set in the file.
            toml::Value::Array(a) if a.iter().any(toml::Value::is_table) => {}
            _ => {
                let name = prefix.join("_").to_ascii_uppercase();
                out.insert(name, (prefix.clone(), value.clone()));
            }
        }
        prefix.pop();
    }
}

fn collect_secret_vars(table: &toml::Table, out: &mut HashSet<String>) {
    for (key, value) in table {
        match value {
            toml::Value::Table(t) => collect_secret_vars(t, out),
            toml::Value::String(s) if key.ends_with("_env") => {
                out.insert(s.clone());
            }
            _ => {}
        }
    }
}

fn env_value(raw: &str, example: &toml::Value) -> Result<toml::Value, String> {
    let raw = raw.trim();
    match example {
        toml::Value::Integer(_) => raw
            .parse()
            .map(toml::Value::Integer)
            .map_err(|_| format!("must be a whole number, not '{raw}'")),
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("must be true or false, not '{raw}'")),
        },
        toml::Value::Float(_) => raw
            .parse()
            .map(toml::Value::Float)
            .map_err(|_| format!("must be a number, not '{raw}'")),
        toml::Value::Array(_) => {
            // A list is written as in TOML (`["a", "b"]`) or comma-separated.
            let doc = format!("v = {raw}");
            match doc.parse::<toml::Table>() {
                Ok(mut t) if t.get("v").is_some_and(toml::Value::is_array) => {
                    Ok(t.remove("v").expect("checked above"))
                }
                _ => Ok(toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                )),
            }
        }
        _ => Ok(toml::Value::String(raw.to_string())),
    }
}

fn set_path(tree: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("a key path is never empty");
    let mut table = tree;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        table = entry.as_table_mut().expect("made a table above");
    }
    table.insert(last.clone(), value);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: ServerConfig,
    database: DatabaseConfig,
    log: LogConfig,
    office: RawOffice,
    calendar: CalendarConfig,
    mail: MailConfig,
    outbox: OutboxConfig,
    smtp: SmtpConfig,
    inbound: InboundConfig,
    #[serde(default)]
    policy_areas: Vec<RawPolicyArea>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffice {
    name_sq: String,
    name_en: String,
    email: String,
    postal_address: String,
    time_zone: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyArea {
    code: String,
    name_sq: String,
    name_en: String,
    lfp: RawLfp,
    #[serde(default)]
    direct_keywords: Vec<String>,
    #[serde(default)]
    indirect_keywords: Vec<String>,
    #[serde(default)]
    thematic_groups: Vec<RawThematicGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLfp {
    name_sq: String,
    name_en: String,
    emails: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThematicGroup {
    code: String,
    name_sq: String,
    name_en: String,
}

impl RawConfig {
    fn validate(
        self,
        source: ConfigSource,
        overridden: &HashSet<String>,
    ) -> Result<Config, ConfigError> {
        let origin = source.to_string();
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            origin: origin.clone(),
            key: key.to_string(),
            problem,
        };

        let url = &self.server.public_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "server.public_url",
                format!("must start with http:// or https://, not '{url}'"),
            ));
        }

        let db = &self.database.url;
        let is_postgres = db.starts_with("postgres://") || db.starts_with("postgresql://");
        if !(db.starts_with("sqlite:") || is_postgres) {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres://".to_string(),
            ));
        }
        // A password typed into the file ends up in backups and repositories;
        // one given in COCREATE_DATABASE_URL is the operator's choice.
        if is_postgres && !overridden.contains("database.url") && url_has_password(db) {
            return Err(invalid(
                "database.url",
                "contains a password; put it in the environment variable named by database.password_env instead".to_string(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "must be at least 1".to_string(),
            ));
        }
        if self.log.level.parse::<tracing::Level>().is_err() {
            return Err(invalid(
                "log.level",
                format!(
                    "must be one of error, warn, info, debug, trace, not '{}'",
                    self.log.level
                ),
            ));
        }

        let office = OfficeConfig {
            email: EmailAddress::parse(&self.office.email)
                .map_err(|e| invalid("office.email", format!("is wrong: {e}")))?,
            time_zone: self.office.time_zone.parse().map_err(|_| {
                invalid(
                    "office.time_zone",
                    format!(
                        "must be a time zone name like Europe/Tirane, not '{}'",
                        self.office.time_zone
                    ),
                )
            })?,
            name_sq: non_empty(self.office.name_sq, "office.name_sq", &invalid)?,
            name_en: non_empty(self.office.name_en, "office.name_en", &invalid)?,
            postal_address: self.office.postal_address,
        };

        let mut codes = HashSet::new();
        let mut policy_areas = Vec::with_capacity(self.policy_areas.len());
        for (i, area) in self.policy_areas.into_iter().enumerate() {
            let at = |field: &str| format!("policy_areas[{i}].{field}");
            let code = area_code(&area.code).map_err(|p| invalid(&at("code"), p))?;
            if !codes.insert(code.clone()) {
                return Err(invalid(
                    &at("code"),
                    format!("is '{code}', which another area or group already uses"),
                ));
            }
            let mut groups = Vec::new();
            for (j, g) in area.thematic_groups.into_iter().enumerate() {
                let key = at(&format!("thematic_groups[{j}].code"));
                let gcode = area_code(&g.code).map_err(|p| invalid(&key, p))?;
                if !codes.insert(gcode.clone()) {
                    return Err(invalid(
                        &key,
                        format!("is '{gcode}', which another area or group already uses"),
                    ));
                }
                groups.push(ThematicGroup {
                    code: gcode,
                    name_sq: non_empty(g.name_sq, &at("thematic_groups.name_sq"), &invalid)?,
                    name_en: non_empty(g.name_en, &at("thematic_groups.name_en"), &invalid)?,
                });
            }
            let keywords = |list: Vec<String>, field: &str| {
                list.iter()
                    .map(|k| Keyword::parse(k))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(&at(field), e.to_string()))
            };
            let direct_keywords = keywords(area.direct_keywords, "direct_keywords")?;
            let indirect_keywords = keywords(area.indirect_keywords, "indirect_keywords")?;
            if direct_keywords.is_empty() {
                return Err(invalid(
                    &at("direct_keywords"),
                    "needs at least one keyword, or no CSO can be matched to the area".to_string(),
                ));
            }
            let emails = area
                .lfp
                .emails
                .iter()
                .map(|e| EmailAddress::parse(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(&at("lfp.emails"), format!("is wrong: {e}")))?;
            if emails.is_empty() {
                return Err(invalid(
                    &at("lfp.emails"),
                    "needs at least one address for the LFP".to_string(),
                ));
            }
            policy_areas.push(PolicyArea {
                code,
                name_sq: non_empty(area.name_sq, &at("name_sq"), &invalid)?,
                name_en: non_empty(area.name_en, &at("name_en"), &invalid)?,
                lfp: Lfp {
                    name_sq: non_empty(area.lfp.name_sq, &at("lfp.name_sq"), &invalid)?,
                    name_en: non_empty(area.lfp.name_en, &at("lfp.name_en"), &invalid)?,
                    emails,
                },
                direct_keywords,
                indirect_keywords,
                thematic_groups: groups,
            });
        }

        let cal = &self.calendar;
        if cal.minimum_working_days == 0 || cal.maximum_working_days < cal.minimum_working_days {
            return Err(invalid(
                "calendar.maximum_working_days",
                format!(
                    "must be at least calendar.minimum_working_days ({}), which must be at least 1",
                    cal.minimum_working_days
                ),
            ));
        }
        let mail = &self.mail;
        if mail.domain.is_empty() || EmailAddress::parse(&format!("x@{}", mail.domain)).is_err() {
            return Err(invalid(
                "mail.domain",
                format!(
                    "must be a domain name like ogp.gov.al, not '{}'",
                    mail.domain
                ),
            ));
        }
        if mail.reply_local.is_empty()
            || !mail
                .reply_local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(
                "mail.reply_local",
                format!(
                    "must be letters, digits, '-', '_' or '.', like consult, not '{}'",
                    mail.reply_local
                ),
            ));
        }
        EmailAddress::parse(&mail.from)
            .map_err(|e| invalid("mail.from", format!("is wrong: {e}")))?;
        if mail.dkim_key_file.is_empty() != mail.dkim_selector.is_empty() {
            return Err(invalid(
                "mail.dkim_selector",
                "and mail.dkim_key_file must be set together (or both left empty)".to_string(),
            ));
        }
        let outbox = &self.outbox;
        for (key, value) in [
            ("outbox.max_attempts", outbox.max_attempts as u64),
            ("outbox.concurrency", outbox.concurrency as u64),
            ("outbox.retry_base_seconds", outbox.retry_base_seconds),
            ("outbox.claim_seconds", outbox.claim_seconds),
            ("smtp.timeout_seconds", self.smtp.timeout_seconds),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".to_string()));
            }
        }

        Ok(Config {
            source,
            server: self.server,
            database: self.database,
            log: self.log,
            office,
            calendar: self.calendar,
            mail: self.mail,
            outbox: self.outbox,
            smtp: self.smtp,
            inbound: self.inbound,
            policy_areas,
        })
    }
}

fn non_empty(
    value: String,
    key: &str,
    invalid: &impl Fn(&str, String) -> ConfigError,
) -> Result<String, ConfigError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err(invalid(key, "must not be empty".to_string()))
    } else {
        Ok(trimmed.to_string())
    }
}

/// Policy area and thematic group codes are typed on the command line, so
/// they are short, upper-case and free of spaces.
fn area_code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    let ok = (2..=24).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(code)
    } else {
        Err(format!(
            "must be 2 to 24 letters, digits, '-' or '_' (like ANTICOR), not '{raw}'"
        ))
    }
}

fn url_has_password(url: &str) -> bool {
    // postgres://user:password@host/... — a ':' in the user-info part.
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}
