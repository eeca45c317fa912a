//! How a message leaves: handed to an SMTP relay, or written as an .eml file
//! (the embedded default, so the demo needs no relay), or kept in memory
//! for tests that only need to see what was sent. Integration tests use the
//! same seam with a real relay.

use std::path::PathBuf;

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;

use super::outbox::OutboxMessage;
use super::smtp::SmtpRelay;
use crate::config::{Config, TransportKind};

/// Why a message was not handed over, by where it went wrong: only the
/// first says anything about the recipient's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The relay refused the recipient (5xx at RCPT TO): the address bounces.
    RecipientRefused(String),
    /// The relay refused this message (5xx at MAIL FROM or DATA, such as a
    /// message over its size limit), or it cannot be sent as it is.
    MessageRefused(String),
    /// The relay refused us (5xx at the greeting, EHLO, STARTTLS or AUTH, a
    /// TLS failure): nothing is wrong with the message; the setup is.
    RelayRefused(String),
    /// Worth trying again: a 4xx reply, a refused connection, a timeout.
    Transient(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot set up SMTP to {host}:{port}: {message}")]
    Smtp {
        host: String,
        port: u16,
        message: String,
    },
    #[error("cannot create the outbox folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

pub enum Transport {
    Smtp(SmtpRelay),
    File(PathBuf),
    /// Keeps what is sent, for tests; never chosen by config.
    Memory(Sent),
}

/// What an in-memory transport was handed, in order.
#[derive(Debug, Clone, Default)]
pub struct Sent(std::sync::Arc<std::sync::Mutex<Vec<OutboxMessage>>>);

impl Sent {
    pub fn messages(&self) -> Vec<OutboxMessage> {
        self.0.lock().expect("the sent list").clone()
    }
}

impl Transport {
    pub fn from_config(config: &Config) -> Result<Self, TransportError> {
        match config.outbox.transport {
            TransportKind::File => {
                let dir = config.outbox.file_dir.clone();
                std::fs::create_dir_all(&dir).map_err(|source| TransportError::Folder {
                    path: dir.display().to_string(),
                    source,
                })?;
                Ok(Self::File(dir))
            }
            TransportKind::Smtp => {
                let smtp = &config.smtp;
                let err = |message: String| TransportError::Smtp {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    message,
                };
                let credentials = if smtp.username.is_empty() {
                    None
                } else {
                    let password = smtp.password().ok_or_else(|| {
                        err(format!(
                            "smtp.username is set but the password variable {} is empty",
                            smtp.password_env.as_deref().unwrap_or("(none named)")
                        ))
                    })?;
                    Some(Credentials::new(smtp.username.clone(), password))
                };
                let relay = SmtpRelay::new(
                    smtp,
                    credentials,
                    &config.mail.domain,
                    config.outbox.concurrency as usize,
                )
                .map_err(err)?;
                Ok(Self::Smtp(relay))
            }
        }
    }

    pub async fn send(&self, m: &OutboxMessage) -> Result<(), SendError> {
        match self {
            Self::Smtp(smtp) => {
                let to: Address = m.recipient.parse().map_err(|e| {
                    SendError::RecipientRefused(format!("not an address cocreate can send to: {e}"))
                })?;
                let from: Option<Address> = if m.envelope_from.is_empty() {
                    None
                } else {
                    Some(m.envelope_from.parse().map_err(|e| {
                        SendError::MessageRefused(format!("bad envelope sender: {e}"))
                    })?)
                };
                let envelope = Envelope::new(from, vec![to])
                    .map_err(|e| SendError::MessageRefused(e.to_string()))?;
                smtp.send(&envelope, &m.message).await
            }
            Self::Memory(sent) => {
                sent.0.lock().expect("the sent list").push(m.clone());
                Ok(())
            }
            Self::File(dir) => {
                // Named by outbox id: a retry overwrites, never duplicates.
                let name = format!("{:010}-{}.eml", m.id, m.kind);
                let tmp = dir.join(format!(".{name}.tmp"));
                let write = async {
                    tokio::fs::write(&tmp, &m.message).await?;
                    tokio::fs::rename(&tmp, dir.join(&name)).await
                };
                write
                    .await
                    .map_err(|e| SendError::Transient(format!("cannot write {name}: {e}")))
            }
        }
    }
}
