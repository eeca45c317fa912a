//! The config as read, and the checks that make it a [`Config`]: every
//! failure names the key, where the value came from and the problem.

use std::collections::HashSet;

use serde::Deserialize;

use super::env::Overridden;
use super::*;
use crate::domain::{Bilingual, EmailAddress, Keyword, Language};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
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
    form: FormConfig,
    #[serde(default)]
    review: ReviewConfig,
    #[serde(default)]
    schedules: SchedulesConfig,
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
    #[serde(default)]
    staff: Vec<String>,
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
    #[serde(default)]
    language: Language,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThematicGroup {
    code: String,
    name_sq: String,
    name_en: String,
}

impl RawConfig {
    pub(super) fn validate(
        mut self,
        source: ConfigSource,
        overridden: &Overridden,
    ) -> Result<Config, ConfigError> {
        self.resolve_paths(&source, overridden);
        let origin = source.to_string();
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            origin: overridden.origin(key, &origin),
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
            name: Bilingual::new(
                non_empty(self.office.name_sq, "office.name_sq", &invalid)?,
                non_empty(self.office.name_en, "office.name_en", &invalid)?,
            ),
            postal_address: self.office.postal_address,
            staff: self
                .office
                .staff
                .iter()
                .map(|a| EmailAddress::parse(a))
                .collect::<Result<_, _>>()
                .map_err(|e| invalid("office.staff", format!("is wrong: {e}")))?,
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
                    name: Bilingual::new(
                        non_empty(g.name_sq, &at("thematic_groups.name_sq"), &invalid)?,
                        non_empty(g.name_en, &at("thematic_groups.name_en"), &invalid)?,
                    ),
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
                name: Bilingual::new(
                    non_empty(area.name_sq, &at("name_sq"), &invalid)?,
                    non_empty(area.name_en, &at("name_en"), &invalid)?,
                ),
                lfp: Lfp {
                    name: Bilingual::new(
                        non_empty(area.lfp.name_sq, &at("lfp.name_sq"), &invalid)?,
                        non_empty(area.lfp.name_en, &at("lfp.name_en"), &invalid)?,
                    ),
                    emails,
                    language: area.lfp.language,
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
        if !mail.bounce_local.is_empty()
            && (mail.bounce_local.eq_ignore_ascii_case(&mail.reply_local)
                || !mail
                    .bounce_local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(invalid(
                "mail.bounce_local",
                format!(
                    "must be letters, digits, '-', '_' or '.' and differ from mail.reply_local, like bounce, not '{}'",
                    mail.bounce_local
                ),
            ));
        }
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
            form: self.form,
            review: self.review,
            database: self.database,
            log: self.log,
            office,
            calendar: self.calendar,
            mail: self.mail,
            outbox: self.outbox,
            smtp: self.smtp,
            inbound: self.inbound,
            schedules: self.schedules,
            policy_areas,
        })
    }
}

impl RawConfig {
    /// Makes every relative path absolute. A path written in the config
    /// file is relative to the file's folder, so the same file means the
    /// same files whichever folder cocreate is started from; the built-in
    /// default reads as config/cocreate.toml in the current folder, the
    /// file it is a copy of. A path from a COCREATE_* variable is relative
    /// to the current folder, as a path typed in a shell is.
    fn resolve_paths(&mut self, source: &ConfigSource, overridden: &Overridden) {
        let cwd = std::env::current_dir().unwrap_or_default();
        let file = match source {
            ConfigSource::File(p) => cwd.join(p),
            ConfigSource::Embedded => cwd.join(DEFAULT_PATH),
        };
        let folder = file.parent().map_or_else(|| cwd.clone(), Path::to_path_buf);
        let resolve = |key: &str, path: &Path| -> PathBuf {
            let base = if overridden.contains(key) {
                &cwd
            } else {
                &folder
            };
            normalise(&base.join(path))
        };
        let path = |key: &str, p: &mut PathBuf| {
            if !p.as_os_str().is_empty() {
                *p = resolve(key, p);
            }
        };
        let text = |key: &str, p: &mut String| {
            if !p.is_empty() {
                *p = resolve(key, Path::new(p.as_str())).display().to_string();
            }
        };
        if let Some(p) = self.mail.templates_dir.as_mut() {
            path("mail.templates_dir", p);
        }
        text("mail.dkim_key_file", &mut self.mail.dkim_key_file);
        path("outbox.file_dir", &mut self.outbox.file_dir);
        if let Some(p) = self.inbound.maildir.as_mut() {
            path("inbound.maildir", p);
        }
        if let Some(p) = self.inbound.imap_ca_file.as_mut() {
            path("inbound.imap_ca_file", p);
        }
        path("inbound.attachments_dir", &mut self.inbound.attachments_dir);
        if let Some(file) = sqlite_file(&self.database.url) {
            let query = self
                .database
                .url
                .find('?')
                .map_or("", |q| &self.database.url[q..]);
            let resolved = resolve("database.url", Path::new(file));
            self.database.url = format!("sqlite:{}{query}", resolved.display());
        }
    }
}

/// The file of a `sqlite:` URL (`sqlite:PATH`, `sqlite://PATH`), without
/// its options; None for an in-memory database or another backend.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split('?').next().unwrap_or(rest);
    (!file.is_empty() && file != ":memory:").then_some(file)
}

/// `path` without `.` and `..` (read as the folder above), so that
/// `config/../data` prints as `data`.
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
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
