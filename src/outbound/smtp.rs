//! Delivery to an SMTP relay over a small pool of open connections.
//!
//! lettre speaks the protocol; the connections are opened here because
//! lettre's own transport leaves Nagle's algorithm on: it writes the message
//! and the closing `.` separately, and the second write then waits for the
//! relay's delayed ACK, about 40 ms per message whatever the relay. With
//! TCP_NODELAY a message costs a few round trips. Implicit TLS (port 465)
//! still connects through lettre.

use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::transport::SendError;
use crate::config::{SmtpConfig, SmtpSecurity};

pub struct SmtpRelay {
    host: String,
    port: u16,
    security: SmtpSecurity,
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
            SmtpSecurity::None => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
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
        let mut conn = if self.security == SmtpSecurity::Tls {
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                self.tls.clone(),
                None,
            )
            .await
            .map_err(|e| classify(&e))?
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
                .map_err(|e| classify(&e))?;
            if let (SmtpSecurity::Starttls, Some(tls)) = (self.security, &self.tls) {
                conn.starttls(tls.clone(), &self.hello)
                    .await
                    .map_err(|e| classify(&e))?;
            }
            conn
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| classify(&e))?;
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
        match tokio::time::timeout(limit, conn.send(envelope, message)).await {
            Err(_) => Err(SendError::Transient(format!(
                "the relay did not accept the message within {} s",
                limit.as_secs()
            ))),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(_)) => {
                let mut idle = self.idle.lock().expect("pool lock");
                if idle.len() < self.max_idle {
                    idle.push(conn);
                }
                Ok(())
            }
        }
    }
}

/// 5xx replies are final; 4xx replies, network errors and timeouts are worth
/// another try.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(one_line(e))
    } else {
        SendError::Transient(one_line(e))
    }
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
