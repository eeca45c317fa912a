//! `cocreate mail …`: taking mail in and listing what came of it.

use std::io::{Read, Write};
use std::path::PathBuf;

use super::{printable, thousands};
use crate::app::App;
use crate::config::Config;
use crate::intake::Outcome;
use crate::intake::types::InboundState;
use crate::store::Store;

/// A message could not be stored: the caller must keep it and try again
/// (exit status 75, EX_TEMPFAIL, for an MTA).
#[derive(Debug, thiserror::Error)]
#[error("the message was not stored and must be delivered again: {0}")]
pub struct NotStored(pub String);

/// A message refused for good (exit status 65, EX_DATAERR: the MTA
/// bounces it instead of trying again).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Everything that can fail before a message is stored is a temporary
/// failure to the MTA, which keeps the message (the App was opened with
/// that in mind).
/// One message's outcome: a line a person reads ("NAME: proposal …"), or
/// with `json` one JSON object a line (`{"message": NAME, "outcome": …}`).
fn report(out: &mut impl Write, json: bool, name: &str, outcome: &Outcome) -> std::io::Result<()> {
    if json {
        let mut line = outcome.to_json();
        line["message"] = name.into();
        writeln!(out, "{line}")
    } else {
        writeln!(out, "{name}: {outcome}")
    }
}

/// A message that could not be taken in or processed, reported like an
/// outcome.
fn report_failure(out: &mut impl Write, json: bool, name: &str, what: &str) -> std::io::Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "message": name, "outcome": "failed", "error": what })
        )
    } else {
        writeln!(out, "{name}: {what}")
    }
}

pub async fn ingest(
    app: &App,
    files: &[PathBuf],
    maildir: Option<&std::path::Path>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let config = app.config.as_ref();
    let intake = app.intake();
    if let Some(dir) = maildir {
        let (sweep, outcomes) =
            crate::inbound::maildir::sweep(&intake, dir, config.inbound.max_message_bytes).await?;
        for (path, outcome) in outcomes {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            report(out, json, &name, &outcome)?;
        }
        if json {
            return Ok(());
        }
        let refused = if sweep.refused > 0 {
            format!(
                "; {} too large, moved to refused/ with the reason",
                thousands(sweep.refused)
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "Took in {}; {} left in new/{refused}.",
            super::count(sweep.taken, "message"),
            thousands(sweep.left)
        )?;
        return Ok(());
    }
    let max = config.inbound.max_message_bytes;
    let inputs: Vec<(String, Vec<u8>)> = if files.is_empty() {
        // One byte past the limit tells an oversized message without
        // reading all of it into memory.
        let mut raw = Vec::new();
        std::io::stdin()
            .take(max as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| NotStored(format!("cannot read standard input: {e}")))?;
        if raw.len() > max {
            return Err(Refused(format!(
                "the message on standard input is larger than inbound.max_message_bytes ({max} bytes); it was not stored"
            ))
            .into());
        }
        vec![("standard input".into(), raw)]
    } else {
        files
            .iter()
            .map(|f| {
                std::fs::read(f)
                    .map(|raw| (f.display().to_string(), raw))
                    .map_err(|e| NotStored(format!("cannot read {}: {e}", f.display())))
            })
            .collect::<Result<_, _>>()?
    };
    let source = if files.is_empty() { "stdin" } else { "file" };
    for (name, raw) in inputs {
        if raw.is_empty() {
            report_failure(out, json, &name, "empty, nothing stored")?;
            continue;
        }
        let outcome = match intake.accept(&raw, source).await {
            Ok(o) => o,
            Err(crate::intake::IntakeError::NotStored(e)) => {
                return Err(NotStored(e.to_string()).into());
            }
            Err(e) => {
                // Stored, but not processed: `serve` processes it again.
                let what = format!("stored; processing failed and will be retried: {e}");
                report_failure(out, json, &name, &what)?;
                continue;
            }
        };
        report(out, json, &name, &outcome)?;
    }
    Ok(())
}

/// One sweep of the configured IMAP mailbox.
pub async fn ingest_imap(app: &App, out: &mut impl Write) -> anyhow::Result<()> {
    let config = app.config.as_ref();
    if config.inbound.imap_host.trim().is_empty() {
        anyhow::bail!("no IMAP mailbox is configured (inbound.imap_host)");
    }
    let n = crate::inbound::imap::sweep(&app.intake(), &config.inbound).await?;
    writeln!(
        out,
        "Took in {} from {} on {}.",
        super::count(n, "message"),
        config.inbound.imap_mailbox,
        config.inbound.imap_host
    )?;
    Ok(())
}

pub async fn pen_list(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let held = store.inbound_in_state(InboundState::Held).await?;
    if held.is_empty() {
        writeln!(out, "The holding pen is empty.")?;
    }
    for m in held {
        writeln!(
            out,
            "#{} {} {} \"{}\" — {}",
            m.id,
            m.received_at.format("%Y-%m-%d %H:%M"),
            m.from_address.as_deref().unwrap_or("(no sender)"),
            printable(m.subject.as_deref().unwrap_or("")),
            printable(m.reason.as_deref().unwrap_or(""))
        )?;
    }
    Ok(())
}

/// One stored message: where it came from, what became of it and why, and
/// how cocreate reads it; with `raw`, the message exactly as it arrived.
pub async fn show(
    store: &dyn Store,
    config: &Config,
    id: i64,
    raw_only: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let Some((m, raw)) = store.inbound_raw(id).await? else {
        anyhow::bail!("there is no stored message #{id}");
    };
    if raw_only {
        // Byte for byte into a file or a pipe; on a terminal, control
        // characters are shown, not obeyed (a hostile message's escape
        // sequences could rewrite the screen).
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            let text = String::from_utf8_lossy(&raw).replace("\r\n", "\n");
            write!(out, "{}", printable(&text))?;
        } else {
            out.write_all(&raw)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "#{} received {} by {} ({})",
        m.id,
        m.received_at.format("%Y-%m-%d %H:%M UTC"),
        m.source,
        m.state
    )?;
    if let Some(reason) = &m.reason {
        writeln!(out, "Why: {reason}")?;
    }
    let inspection = crate::inbound::inspect::inspect(store, config, &raw).await?;
    writeln!(
        out,
        "From: {}",
        inspection
            .from
            .as_deref()
            .unwrap_or("(none that can be read)")
    )?;
    if let Some(message_id) = &inspection.message_id {
        writeln!(out, "Message-ID: {}", printable(message_id))?;
    }
    writeln!(
        out,
        "Subject: {}",
        printable(inspection.subject.as_deref().unwrap_or(""))
    )?;
    for a in &inspection.attachments {
        writeln!(
            out,
            "Attachment: {} ({}, {} bytes)",
            a.name, a.content_type, a.size
        )?;
    }
    writeln!(out, "\n{}", printable(&inspection.reply_text))?;
    Ok(())
}

pub async fn pen_assign(
    app: &App,
    id: i64,
    consultation: &str,
    registration_no: Option<&str>,
    outside: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = app.store.as_ref();
    let c = crate::outbound::outreach::find(store, consultation).await?;
    let (assignee, whose) = match registration_no {
        Some(r) => {
            let reg = crate::domain::RegistrationNumber::parse(r)?;
            let csos = store.csos().await?;
            let Some(cso) = csos.iter().find(|x| x.record.registration_no == reg) else {
                anyhow::bail!("no organisation with registration number {reg} has been imported");
            };
            (
                crate::intake::Assignee::Registry(cso.id),
                cso.record.name.clone(),
            )
        }
        None => {
            let name = outside.map(str::trim).filter(|n| !n.is_empty());
            if name.is_some_and(|n| n.chars().count() > 300) {
                anyhow::bail!("the organisation's name is longer than 300 characters");
            }
            let whose = name.map_or_else(
                || "an individual (not in the registry)".to_string(),
                |n| format!("{n} (not in the registry)"),
            );
            (
                crate::intake::Assignee::Outside {
                    name: name.map(str::to_string),
                },
                whose,
            )
        }
    };
    match app.intake().assign(id, c.id, assignee).await? {
        Outcome::Proposal { receipt_no, .. } => writeln!(
            out,
            "Message #{id} is proposal {receipt_no} of {whose} in {}; the receipt is queued.",
            c.spec.reference
        )?,
        Outcome::Held { reason, .. } => {
            writeln!(out, "Message #{id} stays in the holding pen: {reason}")?
        }
        other => writeln!(out, "Message #{id}: {other}")?,
    }
    Ok(())
}

pub async fn pen_discard(
    store: &dyn Store,
    id: i64,
    reason: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let reason = reason.trim();
    if reason.is_empty() {
        anyhow::bail!("give the reason with --reason; the message is kept with it");
    }
    let Some((m, _)) = store.inbound_raw(id).await? else {
        anyhow::bail!("there is no stored message #{id}");
    };
    if m.state != InboundState::Held {
        anyhow::bail!("message #{id} is {}, not in the holding pen", m.state);
    }
    store
        .set_inbound_outcome(
            id,
            crate::intake::types::InboundState::Discarded,
            "unmatched",
            reason,
        )
        .await?;
    writeln!(out, "Message #{id} is set aside (kept): {reason}")?;
    Ok(())
}

/// Runs stored messages through the pipeline again: after a fix, or for
/// what waits in the holding pen. Nothing is duplicated: a message that
/// already has a proposal keeps it.
/// The daily summary of the holding pen, as the POC would receive it; with
/// `send`, queued for them now (once a day: a second --send that day
/// queues nothing).
pub async fn pen_summary(app: &App, send: bool, out: &mut impl Write) -> anyhow::Result<()> {
    use crate::inbound::pen::{Summary, compose, gather, queue_summary};
    let config = app.config.as_ref();
    if send {
        match queue_summary(app, app.now()).await? {
            Summary::Empty => writeln!(
                out,
                "Nothing to report (the holding pen is empty, no mail failed or waits to be retried, no consultation opens or closes soon); no summary sent."
            )?,
            Summary::AlreadyQueued => writeln!(out, "Today's summary was sent already.")?,
            Summary::Queued(n) => writeln!(
                out,
                "Summary of {} queued for {}.",
                super::count(n, "waiting message"),
                config.office.email
            )?,
        }
        return Ok(());
    }
    let now = app.now();
    let report = gather(app, now).await?;
    let today = config.office.date_at(now);
    match compose(app, &report, today)? {
        None => writeln!(
            out,
            "Nothing waits in the holding pen, and there is nothing else to report."
        )?,
        Some(m) => {
            let parsed = mail_parser::MessageParser::default()
                .parse(&m.message)
                .ok_or_else(|| anyhow::anyhow!("the summary cannot be read back"))?;
            writeln!(
                out,
                "To: {}\nSubject: {}\n\n{}",
                config.office.email,
                parsed.subject().unwrap_or(""),
                parsed.body_text(0).unwrap_or_default().trim_end()
            )?;
        }
    }
    Ok(())
}

pub async fn reprocess(
    app: &App,
    ids: &[i64],
    held: bool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = app.store.as_ref();
    let intake = app.intake();
    let mut targets: Vec<i64> = ids.to_vec();
    if held {
        targets.extend(
            store
                .inbound_in_state(InboundState::Held)
                .await?
                .iter()
                .map(|m| m.id),
        );
    }
    if targets.is_empty() {
        anyhow::bail!("name the messages to reprocess (their #numbers) or use --held");
    }
    // Each message on its own: one that fails is reported, and the rest
    // are still processed.
    let mut failed = 0;
    let total = targets.len();
    for id in targets {
        let name = format!("#{id}");
        let raw = match store.inbound_raw(id).await {
            Ok(Some((_, raw))) => raw,
            Ok(None) => {
                report_failure(out, json, &name, "no such message")?;
                failed += 1;
                continue;
            }
            Err(e) => {
                report_failure(out, json, &name, &format!("could not be read: {e}"))?;
                failed += 1;
                continue;
            }
        };
        match intake.process(id, &raw).await {
            Ok(outcome) => report(out, json, &name, &outcome)?,
            Err(e) => {
                report_failure(out, json, &name, &format!("could not be processed: {e}"))?;
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} could not be reprocessed (see above)",
            super::count(total, "message")
        );
    }
    Ok(())
}
