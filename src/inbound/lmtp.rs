//! An LMTP listener (RFC 2033), so Postfix or Dovecot can hand mail to
//! cocreate directly. smtp-proto parses the commands and the dot-stuffed
//! data; the answer after DATA is given per recipient, as LMTP requires, and
//! only once the message is stored: a 4xx tells the MTA to keep it and try
//! again. The size limit is announced (SIZE) and enforced.
//!
//! No client can hold the listener: sessions are limited in number (one
//! more is told 421 and closed), a client silent for longer than the
//! timeout (between commands or in the middle of DATA) is cut off, and a
//! message takes a limited number of recipients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use smtp_proto::Request;
use smtp_proto::request::receiver::DataReceiver;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::app::App;
use crate::intake::IntakeError;
use crate::telemetry::Throttle;

/// RFC 5321's limit on a command line, CRLF included, with room for
/// extensions' parameters.
const MAX_COMMAND_LINE: usize = 4096;

/// Accepts sessions until `stop` turns true.
pub async fn serve(listener: TcpListener, ctx: App, stop: CancellationToken) {
    let sessions = Arc::new(tokio::sync::Semaphore::new(
        ctx.config.inbound.lmtp_max_sessions.max(1),
    ));
    let mut refused = Throttle::new(Duration::from_secs(60));
    let mut failing = Throttle::new(Duration::from_secs(60));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut stream, peer)) => {
                    let Ok(permit) = sessions.clone().try_acquire_owned() else {
                        if let Some(more) = refused.ready() {
                            tracing::warn!(%peer, refused_since_last = more, limit = ctx.config.inbound.lmtp_max_sessions, "LMTP sessions at their limit; new ones are told to come back later");
                        }
                        tokio::spawn(async move {
                            let bye = b"421 4.3.2 Too many sessions, try again later\r\n";
                            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(bye)).await;
                        });
                        continue;
                    };
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = session(stream, peer, ctx).await {
                            tracing::debug!(%peer, error = %e, "LMTP session ended");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors, most likely: accepting again
                    // at once would fail again at once, so wait a little.
                    if let Some(more) = failing.ready() {
                        tracing::warn!(error = %e, failed_since_last = more, "LMTP accept failed; pausing before the next");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = stop.cancelled() => return,
                    }
                }
            },
            () = stop.cancelled() => return,
        }
    }
}

/// Waits for `io` at most `limit`: a client that says nothing for that long
/// is cut off.
async fn within<T>(
    limit: Duration,
    io: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(limit, io).await.unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client said nothing for too long",
        ))
    })
}

async fn session(stream: TcpStream, peer: SocketAddr, ctx: App) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let domain = ctx.config.mail.domain.clone();
    let max = ctx.config.inbound.max_message_bytes;
    let max_recipients = ctx.config.inbound.lmtp_max_recipients.max(1);
    let limit = Duration::from_secs(ctx.config.inbound.lmtp_timeout_seconds.max(1));
    within(
        limit,
        write.write_all(format!("220 {domain} cocreate LMTP ready\r\n").as_bytes()),
    )
    .await?;
    let mut recipients: Vec<String> = Vec::new();
    let mut sender_ok = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        // At most one line's worth is buffered, whatever the client sends.
        let n = within(
            limit,
            (&mut reader)
                .take(MAX_COMMAND_LINE as u64 + 1)
                .read_until(b'\n', &mut line),
        )
        .await;
        let n = match n {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let _ = within(
                    Duration::from_secs(5),
                    write.write_all(b"421 4.4.2 Idle for too long, closing\r\n"),
                )
                .await;
                return Err(e);
            }
            other => other?,
        };
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            // Too long: drop the rest of it a buffer at a time, then answer.
            loop {
                let chunk = within(limit, reader.fill_buf()).await?;
                if chunk.is_empty() {
                    return Ok(());
                }
                match chunk.iter().position(|b| *b == b'\n') {
                    Some(end) => {
                        reader.consume(end + 1);
                        break;
                    }
                    None => {
                        let n = chunk.len();
                        reader.consume(n);
                    }
                }
            }
            within(limit, write.write_all(b"500 5.5.2 Line too long\r\n")).await?;
            continue;
        }
        let reply = match Request::parse(&mut line.iter()) {
            Ok(Request::Lhlo { .. }) => {
                recipients.clear();
                sender_ok = false;
                format!(
                    "250-{domain}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE {max}\r\n"
                )
            }
            Ok(Request::Ehlo { .. } | Request::Helo { .. }) => {
                "500 5.5.1 This is LMTP: say LHLO\r\n".into()
            }
            Ok(Request::Mail { from }) => {
                recipients.clear();
                if from.size > max {
                    sender_ok = false;
                    format!("552 5.3.4 Messages are limited to {max} bytes\r\n")
                } else {
                    sender_ok = true;
                    "250 2.1.0 OK\r\n".into()
                }
            }
            Ok(Request::Rcpt { to }) => {
                let address = to.address.to_ascii_lowercase();
                if !sender_ok {
                    "503 5.5.1 MAIL first\r\n".into()
                } else if recipients.len() >= max_recipients {
                    format!("452 4.5.3 No more than {max_recipients} recipients per message\r\n")
                } else if address.ends_with(&format!("@{}", domain.to_ascii_lowercase())) {
                    recipients.push(address);
                    "250 2.1.5 OK\r\n".into()
                } else {
                    format!("550 5.1.1 <{address}> is not a cocreate address\r\n")
                }
            }
            Ok(Request::Data) => {
                if recipients.is_empty() {
                    "503 5.5.1 No valid recipients\r\n".into()
                } else {
                    within(
                        limit,
                        write.write_all(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
                    )
                    .await?;
                    let (message, too_big) = receive_data(&mut reader, max, limit).await?;
                    let per_recipient = if too_big {
                        format!("552 5.3.4 Messages are limited to {max} bytes\r\n")
                    } else {
                        accept(&ctx, &message, peer).await
                    };
                    let reply = recipients
                        .iter()
                        .map(|_| per_recipient.as_str())
                        .collect::<String>();
                    recipients.clear();
                    sender_ok = false;
                    reply
                }
            }
            Ok(Request::Rset) => {
                recipients.clear();
                sender_ok = false;
                "250 2.0.0 OK\r\n".into()
            }
            Ok(Request::Noop { .. }) => "250 2.0.0 OK\r\n".into(),
            Ok(Request::Quit) => {
                within(limit, write.write_all(b"221 2.0.0 Bye\r\n")).await?;
                return Ok(());
            }
            Ok(_) => "502 5.5.1 Not implemented\r\n".into(),
            Err(e) => format!("500 5.5.2 {e}\r\n"),
        };
        within(limit, write.write_all(reply.as_bytes())).await?;
    }
}

/// Reads the dot-stuffed message; past `max` bytes the rest is read and
/// dropped, so the session stays in step with the client. A client silent
/// for `limit` in the middle of it is cut off.
async fn receive_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    max: usize,
    limit: Duration,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut data = DataReceiver::new();
    let mut message = Vec::new();
    let mut too_big = false;
    loop {
        let chunk = within(limit, reader.fill_buf()).await?;
        if chunk.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during DATA",
            ));
        }
        let mut bytes = chunk.iter();
        let done = data.ingest(&mut bytes, &mut message);
        let consumed = chunk.len() - bytes.as_slice().len();
        reader.consume(consumed);
        if message.len() > max {
            too_big = true;
            message.clear();
        }
        if done {
            return Ok((message, too_big));
        }
    }
}

/// The reply for each recipient once the message is (or is not) stored.
async fn accept(ctx: &App, message: &[u8], peer: SocketAddr) -> String {
    let intake = ctx.intake();
    match intake.accept(message, "lmtp").await {
        Ok(outcome) => {
            tracing::info!(%peer, outcome = %outcome, "LMTP message taken in");
            "250 2.0.0 Stored\r\n".into()
        }
        Err(IntakeError::NotStored(e)) => {
            tracing::error!(%peer, error = %e, "LMTP message not stored");
            "451 4.3.0 Could not store the message; try again later\r\n".into()
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "LMTP message stored, processing failed");
            "250 2.0.0 Stored\r\n".into()
        }
    }
}
