//! Settings: config/cocreate.toml, overridden key by key from COCREATE_*
//! environment variables, checked completely before anything starts.
//!
//! The file is read into a TOML tree, environment overrides are applied to
//! that tree, and only then is it turned into the typed [`Config`]. Every
//! failure names where the bad value came from (the file or the variable),
//! the key and the problem, in one sentence.

mod env;
mod review;
mod schedules;
mod sections;
mod summary;
mod validate;

use std::path::{Path, PathBuf};

use crate::domain::one_line;
use env::apply_env_overrides;
pub use review::ReviewConfig;
pub use schedules::{SchedulesConfig, WhenEmpty};
pub use sections::*;
pub use summary::redact;
use validate::RawConfig;

/// The documented default, compiled in so the binary works from any folder.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/cocreate.toml");
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
    pub form: FormConfig,
    pub review: ReviewConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub office: OfficeConfig,
    pub calendar: CalendarConfig,
    pub mail: MailConfig,
    pub outbox: OutboxConfig,
    pub smtp: SmtpConfig,
    pub inbound: InboundConfig,
    pub schedules: SchedulesConfig,
    pub policy_areas: Vec<PolicyArea>,
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
                    origin: overridden.origin(&key, &origin),
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
