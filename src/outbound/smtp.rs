//! Delivery to an SMTP relay over a small pool of open connections.
//!
//! lettre speaks the protocol; the connections are opened here because
//! lettre's own transport leaves Nagle's algorithm on: it writes the message
//! and the closing `.` separately, and the second write then waits for the
//! relay's delayed ACK, about 40 ms per message whatever the relay. With
//! TCP_NODELAY a message costs a few round trips. Implicit TLS (port 465)
//! still connects through lettre.
//!
//! The transaction itself (MAIL FROM, RCPT TO, DATA) is spoken step by step
//! here rather than through lettre's `send`, because what a 5xx means
//! depends on the step that drew it: only a refusal at RCPT says anything
//! about the recipient's address. A refusal at MAIL FROM or at the end of
//! DATA (a message over the relay's size limit) is about the message; one at
//! the greeting, EHLO, STARTTLS or AUTH (a wrong password) is about us.

use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;

use super::transport::SendError;
use crate::config::{Security, SmtpConfig};

pub struct SmtpRelay {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    max_idle: usize,
}

impl SmtpRelay {
    pub fn new(
        config: &SmtpConfig,
        credentials: Option<Credentials>,
        hello_domain: &str,
        max_idle: usize,
    ) -> Result<Self, String> {
        let tls = match config.security {
            Security::None => None,
            Security::Starttls | Security::Tls => {
                Some(TlsParameters::new(config.host.clone()).map_err(|e| e.to_string())?)
            }
        };
        Ok(Self {
            host: config.host.clone(),
            port: config.port,
            security: config.security,
            tls,
            credentials,
            timeout: Duration::from_secs(config.timeout_seconds),
            hello: ClientId::Domain(hello_domain.to_string()),
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let transient = |e: &dyn std::fmt::Display| SendError::Transient(one_line(e));
        let mut conn = if self.security == Security::Tls {
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                self.tls.clone(),
                None,
            )
            .await
            .map_err(|e| refused_us(&e))?
        } else {
            let tcp = tokio::time::timeout(
                self.timeout,
                TcpStream::connect((self.host.as_str(), self.port)),
            )
            .await
            .map_err(|_| {
                SendError::Transient(format!(
                    "connecting to {}:{} timed out",
                    self.host, self.port
                ))
            })?
            .map_err(|e| {
                transient(&format!(
                    "cannot connect to {}:{}: {e}",
                    self.host, self.port
                ))
            })?;
            tcp.set_nodelay(true).map_err(|e| transient(&e))?;
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(|e| refused_us(&e))?;
            if let (Security::Starttls, Some(tls)) = (self.security, &self.tls) {
                conn.starttls(tls.clone(), &self.hello)
                    .await
                    .map_err(|e| refused_us(&e))?;
            }
            conn
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| refused_us(&e))?;
        }
        Ok(conn)
    }

    /// Hands one message to the relay, reusing an idle connection if one is
    /// open. A connection that saw any error is dropped, not reused.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let pooled = self.idle.lock().expect("pool lock").pop();
        let mut conn = match pooled {
            Some(c) if !c.has_broken() => c,
            _ => tokio::time::timeout(self.timeout, self.connect())
                .await
                .map_err(|_| SendError::Transient("the relay did not answer in time".into()))??,
        };
        // A large message over a slow link may take longer than one command.
        let limit = self.timeout * 4;
        match tokio::time::timeout(limit, transaction(&mut conn, envelope, message)).await {
            Err(_) => Err(SendError::Transient(format!(
                "the relay did not accept the message within {} s",
                limit.as_secs()
            ))),
            Ok(Err(e)) => {
                conn.abort().await;
                Err(e)
            }
            Ok(Ok(())) => {
                let mut idle = self.idle.lock().expect("pool lock");
                if idle.len() < self.max_idle {
                    idle.push(conn);
                }
                Ok(())
            }
        }
    }
}

/// Which step of the transaction an answer came at.
#[derive(Debug, Clone, Copy)]
enum Step {
    MailFrom,
    RcptTo,
    Data,
}

/// MAIL FROM, RCPT TO for each recipient, DATA and the message, each
/// answer judged by its step (what lettre's `send` does, with the step kept).
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), SendError> {
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::MessageRefused(
                "the address has non-ASCII characters and the relay does not offer SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SendError::MessageRefused(
                "the message has 8-bit text and the relay does not offer 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(|e| at_step(Step::MailFrom, &e))?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(|e| at_step(Step::RcptTo, &e))?;
    }
    conn.command(Data)
        .await
        .map_err(|e| at_step(Step::Data, &e))?;
    conn.message(message)
        .await
        .map_err(|e| at_step(Step::Data, &e))?;
    Ok(())
}

/// A 5xx is final and means what its step says; a 4xx, a network error or
/// a timeout is worth another try.
fn at_step(step: Step, e: &lettre::transport::smtp::Error) -> SendError {
    if !e.is_permanent() {
        return SendError::Transient(one_line(e));
    }
    match step {
        Step::RcptTo => SendError::RecipientRefused(one_line(e)),
        Step::MailFrom | Step::Data => SendError::MessageRefused(one_line(e)),
    }
}

/// Before the transaction (greeting, EHLO, STARTTLS, AUTH): a 5xx, a TLS
/// failure or a relay without a login method we speak means the relay will
/// not take mail from us as configured, whatever the message.
fn refused_us(e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() || e.is_tls() || e.is_client() {
        SendError::RelayRefused(one_line(e))
    } else {
        SendError::Transient(one_line(e))
    }
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    crate::domain::one_line(&e.to_string())
}
