//! An IMAP mailbox as a source (async-imap). Each sweep fetches only the
//! messages not yet taken (those without the `$CocreateTaken` keyword),
//! takes each in, and marks it only once it is stored: a crash in between
//! means it is fetched again and recognised as already stored. The keyword
//! leaves the mailbox usable by people: reading a message in a mail client
//! does not hide it from cocreate, as \Seen would.
//!
//! `serve` keeps one connection open and waits with IMAP IDLE where the
//! server offers it, so a reply is taken in as it arrives (the IDLE is
//! renewed every 25 minutes, as RFC 2177 advises); a server without IDLE is
//! polled every `inbound.imap_poll_seconds`. After an error it reconnects.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use futures::TryStreamExt;
use tokio::net::TcpStream;

use crate::config::{InboundConfig, Security};
use crate::intake::{Intake, IntakeError};

/// The keyword that marks a message as taken in.
pub const TAKEN: &str = "$CocreateTaken";

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot reach the IMAP server {host}:{port}: {message}")]
    Connect {
        host: String,
        port: u16,
        message: String,
    },
    #[error("the IMAP server refused the login for {user}: {message}")]
    Login { user: String, message: String },
    #[error("the IMAP server failed: {0}")]
    Protocol(String),
    #[error(
        "inbound.imap_password_env names no set variable; the IMAP password comes from the environment"
    )]
    NoPassword,
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug> Stream
    for T
{
}

/// Connects as `inbound.imap_security` says: TLS from the first byte,
/// STARTTLS before anything else is said (a server that does not offer it is
/// refused, never used in plain text), or plain text. Returns the client,
/// greeting read.
async fn connect(cfg: &InboundConfig) -> Result<async_imap::Client<Box<dyn Stream>>, ImapError> {
    let err = |message: String| ImapError::Connect {
        host: cfg.imap_host.clone(),
        port: cfg.imap_port,
        message,
    };
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        TcpStream::connect((cfg.imap_host.as_str(), cfg.imap_port)),
    )
    .await
    .map_err(|_| err("timed out".into()))?
    .map_err(|e| err(e.to_string()))?;
    let greeted = |mut client: async_imap::Client<Box<dyn Stream>>| async move {
        client
            .read_response()
            .await
            .map_err(|e| ImapError::Protocol(e.to_string()))?
            .ok_or_else(|| ImapError::Protocol("no greeting".into()))?;
        Ok::<_, ImapError>(client)
    };
    match cfg.imap_security {
        Security::None => greeted(async_imap::Client::new(Box::new(tcp))).await,
        Security::Tls => {
            let tls = tls_handshake(cfg, tcp).await?;
            greeted(async_imap::Client::new(Box::new(tls))).await
        }
        Security::Starttls => {
            let mut plain = greeted(async_imap::Client::new(Box::new(tcp))).await?;
            plain.run_command_and_check_ok("STARTTLS", None).await.map_err(|e| {
                err(format!(
                    "the server does not take STARTTLS ({e}); cocreate will not log in unencrypted"
                ))
            })?;
            // After the server's OK, the next bytes are the TLS handshake and
            // no greeting follows it (RFC 3501 6.2.1).
            let tls = tls_handshake(cfg, plain.into_inner()).await?;
            Ok(async_imap::Client::new(Box::new(tls)))
        }
    }
}

/// The TLS client side over `stream`: the public roots plus
/// `inbound.imap_ca_file`, the server's name checked.
async fn tls_handshake<S>(
    cfg: &InboundConfig,
    stream: S,
) -> Result<tokio_rustls::client::TlsStream<S>, ImapError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio_rustls::rustls;
    let err = |message: String| ImapError::Connect {
        host: cfg.imap_host.clone(),
        port: cfg.imap_port,
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = cfg
        .imap_ca_file
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
    {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                err(format!(
                    "cannot read inbound.imap_ca_file {}: {e}",
                    path.display()
                ))
            })?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| err(format!("inbound.imap_ca_file {}: {e}", path.display())))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(cfg.imap_host.clone())
        .map_err(|e| err(e.to_string()))?;
    tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, stream)
        .await
        .map_err(|e| err(format!("TLS failed: {e}")))
}

type Session = async_imap::Session<Box<dyn Stream>>;

fn protocol(e: async_imap::error::Error) -> ImapError {
    ImapError::Protocol(e.to_string())
}

/// Connects, logs in and selects the mailbox.
///
/// All of it within `inbound.imap_timeout_seconds`: a server that accepts
/// the connection and then says nothing (or a TLS port spoken to in plain
/// text) must not hold a sweep for ever.
async fn open(cfg: &InboundConfig) -> Result<Session, ImapError> {
    let password = cfg.imap_password().ok_or(ImapError::NoPassword)?;
    let limit = Duration::from_secs(cfg.imap_timeout_seconds.max(1));
    let open = async {
        let client = connect(cfg).await?;
        let mut session = client
            .login(&cfg.imap_username, &password)
            .await
            .map_err(|(e, _)| ImapError::Login {
                user: cfg.imap_username.clone(),
                message: e.to_string(),
            })?;
        session.select(&cfg.imap_mailbox).await.map_err(protocol)?;
        Ok(session)
    };
    tokio::time::timeout(limit, open)
        .await
        .map_err(|_| ImapError::Connect {
            host: cfg.imap_host.clone(),
            port: cfg.imap_port,
            message: format!(
                "no answer within {} s (is imap_security right for this port?)",
                limit.as_secs()
            ),
        })?
}

/// One pass over the mailbox; returns how many messages were taken in.
pub async fn sweep(intake: &Intake<'_>, cfg: &InboundConfig) -> Result<usize, ImapError> {
    let mut session = open(cfg).await?;
    let taken = take_untaken(&mut session, intake, cfg).await?;
    let _ = session.logout().await;
    Ok(taken)
}

/// How long one IDLE lasts before it is renewed (RFC 2177: under 29 minutes).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// Takes mail in until `stop` turns true: with IDLE where the server offers
/// it, by polling otherwise, reconnecting after errors.
pub async fn watch(intake: &Intake<'_>, cfg: &InboundConfig, stop: CancellationToken) {
    let pause = Duration::from_secs(cfg.imap_poll_seconds.max(1));
    loop {
        match watch_connected(intake, cfg, &stop).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "IMAP failed; connecting again"),
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// One connection's life; Ok when asked to stop.
async fn watch_connected(
    intake: &Intake<'_>,
    cfg: &InboundConfig,
    stop: &CancellationToken,
) -> Result<(), ImapError> {
    let mut session = open(cfg).await?;
    let idle = session
        .capabilities()
        .await
        .map_err(protocol)?
        .has_str("IDLE");
    tracing::info!(host = %cfg.imap_host, mailbox = %cfg.imap_mailbox, idle, "IMAP connected");
    loop {
        let taken = take_untaken(&mut session, intake, cfg).await?;
        if taken > 0 {
            tracing::info!(taken, "IMAP messages taken in");
        }
        if idle {
            let mut handle = session.idle();
            handle.init().await.map_err(protocol)?;
            let (wait, _interrupt) = handle.wait_with_timeout(IDLE_RENEW);
            tokio::select! {
                r = wait => { r.map_err(protocol)?; }
                () = stop.cancelled() => return Ok(()),
            }
            session = handle.done().await.map_err(protocol)?;
        } else {
            let stopped = tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(cfg.imap_poll_seconds.max(1))) => false,
                () = stop.cancelled() => true,
            };
            if stopped {
                let _ = session.logout().await;
                return Ok(());
            }
        }
    }
}

/// Takes in every message of the selected mailbox that lacks the keyword,
/// marking each once it is stored.
async fn take_untaken(
    session: &mut Session,
    intake: &Intake<'_>,
    cfg: &InboundConfig,
) -> Result<usize, ImapError> {
    let mut uids: Vec<u32> = session
        .uid_search(format!("UNKEYWORD {TAKEN}"))
        .await
        .map_err(protocol)?
        .into_iter()
        .collect();
    uids.sort_unstable();
    let mut taken = 0;
    for uid in uids {
        let fetched: Vec<_> = session
            .uid_fetch(uid.to_string(), "BODY.PEEK[]")
            .await
            .map_err(protocol)?
            .try_collect()
            .await
            .map_err(protocol)?;
        let Some(raw) = fetched.iter().find_map(|f| f.body()) else {
            continue;
        };
        if raw.len() > cfg.max_message_bytes {
            tracing::warn!(
                uid,
                bytes = raw.len(),
                "IMAP message larger than inbound.max_message_bytes; left untaken"
            );
            continue;
        }
        match intake.accept(raw, "imap").await {
            Ok(_) => {}
            Err(IntakeError::NotStored(e)) => {
                tracing::warn!(uid, error = %e, "could not store an IMAP message; it stays untaken");
                continue;
            }
            Err(e) => tracing::error!(uid, error = %e, "IMAP message stored, processing failed"),
        }
        // Only now, with the message safe in the store.
        let _: Vec<_> = session
            .uid_store(uid.to_string(), format!("+FLAGS ({TAKEN})"))
            .await
            .map_err(protocol)?
            .try_collect()
            .await
            .map_err(protocol)?;
        taken += 1;
    }
    Ok(taken)
}
