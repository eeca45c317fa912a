//! `cocreate mail …`: taking mail in and listing what came of it.

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::config::Config;
use crate::intake::{Intake, Outcome};
use crate::outbound::message::load_dkim;
use crate::outbound::templates::Templates;
use crate::store::{self, Store};

/// A message could not be stored: the caller must keep it and try again
/// (exit status 75, EX_TEMPFAIL, for an MTA).
#[derive(Debug, thiserror::Error)]
#[error("the message was not stored and must be delivered again: {0}")]
pub struct NotStored(pub String);

pub async fn ingest(
    config: &Config,
    files: &[PathBuf],
    maildir: Option<&std::path::Path>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // Everything that can fail before the message is stored is a temporary
    // failure to the MTA: it keeps the message.
    let store = store::open(&config.database)
        .await
        .map_err(|e| NotStored(e.to_string()))?;
    let templates = Templates::load(config.mail.templates_dir.as_deref())
        .map_err(|e| NotStored(e.to_string()))?;
    let dkim = load_dkim(&config.mail).map_err(|e| NotStored(e.to_string()))?;
    let intake = Intake {
        store: store.as_ref(),
        config,
        templates: &templates,
        dkim: dkim.as_ref(),
    };
    if let Some(dir) = maildir {
        let (sweep, outcomes) =
            crate::inbound::maildir::sweep(&intake, dir, config.inbound.max_message_bytes).await?;
        for (path, outcome) in outcomes {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            writeln!(out, "{name}: {}", crate::web::describe_outcome(&outcome))?;
        }
        writeln!(
            out,
            "Took in {} messages; {} left in new/.",
            sweep.taken, sweep.left
        )?;
        return Ok(());
    }
    let inputs: Vec<(String, Vec<u8>)> = if files.is_empty() {
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .map_err(|e| NotStored(format!("cannot read standard input: {e}")))?;
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
            writeln!(out, "{name}: empty, nothing stored")?;
            continue;
        }
        let outcome = match intake.accept(&raw, source).await {
            Ok(o) => o,
            Err(crate::intake::IntakeError::Store(e)) => {
                return Err(NotStored(e.to_string()).into());
            }
            Err(e) => {
                // Stored, but not processed: `serve` processes it again.
                writeln!(
                    out,
                    "{name}: stored; processing failed and will be retried: {e}"
                )?;
                continue;
            }
        };
        match outcome {
            Outcome::Proposal {
                receipt_no,
                receipt,
                ..
            } => writeln!(
                out,
                "{name}: proposal {receipt_no}{}",
                if receipt {
                    ", receipt queued"
                } else {
                    ", receipt held back by the loop guard"
                }
            )?,
            Outcome::Duplicate { id } => writeln!(
                out,
                "{name}: already received (message {id}), nothing done again"
            )?,
            Outcome::Ignored { classification, .. } => {
                writeln!(out, "{name}: kept as {classification}, no receipt")?
            }
            Outcome::Held { reason, .. } => writeln!(out, "{name}: in the holding pen: {reason}")?,
        }
    }
    Ok(())
}

pub async fn proposals(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let all = store.proposals().await?;
    let consultations = store.consultations().await?;
    if all.is_empty() {
        writeln!(out, "No proposals yet.")?;
    }
    for p in all {
        let reference = consultations
            .iter()
            .find(|c| c.id == p.consultation_id)
            .map_or("?", |c| c.spec.reference.as_str());
        let first_line = p
            .reply_text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(70)
            .collect::<String>();
        writeln!(
            out,
            "{} {} {}{}{} — {}",
            p.receipt_no,
            reference,
            p.from_address,
            if p.other_sender {
                " [other sender]"
            } else {
                ""
            },
            if p.late { " [late]" } else { "" },
            first_line
        )?;
    }
    Ok(())
}
