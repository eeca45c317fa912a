//! What the settings turn on, in words: `config check` prints it and
//! `serve` logs it at start, so the POC sees which sources, listeners,
//! transport and schedules are on without reading the file.

use std::path::Path;

use super::{Config, Security, TransportKind};

impl Security {
    fn describe(self) -> &'static str {
        match self {
            Self::None => "no encryption",
            Self::Starttls => "STARTTLS",
            Self::Tls => "TLS",
        }
    }
}

/// Whether the environment variable named by a `*_env` setting is set,
/// without its value.
fn secret(var: Option<&str>) -> String {
    match var {
        None | Some("") => "none".into(),
        Some(v) if std::env::var(v).is_ok_and(|s| !s.is_empty()) => format!("from {v} (set)"),
        Some(v) => format!("from {v} (not set)"),
    }
}

fn folder(path: &Path) -> String {
    if path.is_dir() {
        path.display().to_string()
    } else {
        format!("{} (not there yet: created when needed)", path.display())
    }
}

impl Config {
    /// One line per thing that decides behaviour: (what, how it is set).
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            (
                "listen",
                format!(
                    "{}, public address {}",
                    self.server.listen, self.server.public_url
                ),
            ),
            (
                "database",
                if self.database.url.starts_with("sqlite:") {
                    format!(
                        "{}, cache {} MiB and memory map {} MiB a connection",
                        redact(&self.database.url),
                        self.database.sqlite_cache_mib,
                        self.database.sqlite_mmap_mib
                    )
                } else {
                    format!(
                        "{}, {} connections",
                        redact(&self.database.url),
                        self.database.max_connections
                    )
                },
            ),
            (
                "office",
                format!(
                    "{} <{}>, time zone {}",
                    self.office.name.en, self.office.email, self.office.time_zone
                ),
            ),
        ];
        let mail = &self.mail;
        lines.push((
            "mail",
            format!(
                "from {}, replies to {}+KEY@{}, bounces to {}",
                mail.from,
                mail.reply_local,
                mail.domain,
                if mail.bounce_local.is_empty() {
                    format!("{} (the from address)", mail.from)
                } else {
                    format!("{}+…@{}", mail.bounce_local, mail.domain)
                }
            ),
        ));
        let outbox = &self.outbox;
        let transport = match outbox.transport {
            TransportKind::File => format!(
                "file: each message written to {} (nothing is sent)",
                outbox.file_dir.display()
            ),
            TransportKind::Smtp => {
                let smtp = &self.smtp;
                format!(
                    "smtp: relay {}:{}, {}, {}",
                    smtp.host,
                    smtp.port,
                    smtp.security.describe(),
                    if smtp.username.is_empty() {
                        "no login".to_string()
                    } else {
                        format!(
                            "login {} with password {}",
                            smtp.username,
                            secret(smtp.password_env.as_deref())
                        )
                    }
                )
            }
        };
        lines.push((
            "outbox",
            format!(
                "{transport}; bulk mail at {} a second, {} per lane, {} at most",
                outbox.rate_per_second,
                crate::domain::count(outbox.concurrency as usize, "connection"),
                crate::domain::count(outbox.max_attempts as usize, "attempt")
            ),
        ));
        let inbound = &self.inbound;
        lines.push((
            "maildir",
            match inbound.maildir() {
                Some(dir) => format!("watching {}", folder(dir)),
                None => "off".into(),
            },
        ));
        lines.push((
            "imap",
            if inbound.imap_host.trim().is_empty() {
                "off".into()
            } else {
                format!(
                    "{}:{} ({}), mailbox {}, user {}, password {}, every {} s",
                    inbound.imap_host,
                    inbound.imap_port,
                    inbound.imap_security.describe(),
                    inbound.imap_mailbox,
                    inbound.imap_username,
                    secret(inbound.imap_password_env.as_deref()),
                    inbound.imap_poll_seconds
                )
            },
        ));
        lines.push((
            "lmtp",
            match inbound.lmtp_listen {
                Some(addr) => format!("listening on {addr}"),
                None => "off".into(),
            },
        ));
        lines.push((
            "webhook",
            match (
                inbound.webhook_secret_env.as_deref(),
                inbound.webhook_secret(),
            ) {
                (_, Some(_)) => format!(
                    "POST /inbound/mime on, secret {}",
                    secret(inbound.webhook_secret_env.as_deref())
                ),
                (Some(var), None) if !var.is_empty() => format!("off ({var} is not set)"),
                _ => "off".into(),
            },
        ));
        lines.push(("attachments", folder(&inbound.attachments_dir)));
        lines.push((
            "templates",
            match &mail.templates_dir {
                Some(dir) if dir.is_dir() => {
                    format!("{} (its files replace the built-in ones)", dir.display())
                }
                Some(dir) => format!("built-in ({} is not there)", dir.display()),
                None => "built-in".into(),
            },
        ));
        for (name, schedule) in self.schedules.jobs() {
            lines.push((
                name,
                match schedule {
                    Some(s) => format!("\"{}\" in {}", s.as_str(), self.office.time_zone),
                    None => "off".into(),
                },
            ));
        }
        lines
    }
}

/// The URL without any password, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}
