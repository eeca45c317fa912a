//! `cocreate outbox …` and the address commands under `cocreate registry`.

use std::io::Write;
use std::sync::Arc;

use anyhow::bail;

use super::thousands;
use crate::config::Config;
use crate::domain::EmailAddress;
use crate::outbound::outbox::Worker;
use crate::outbound::transport::Transport;
use crate::store::Store;

pub async fn status(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let c = store.outbox_counts().await?;
    writeln!(
        out,
        "Queued {}, sending {}, sent {}, failed {}.",
        thousands(c.queued as usize),
        thousands(c.sending as usize),
        thousands(c.sent as usize),
        thousands(c.failed as usize)
    )?;
    let failures = store.outbox_failures(20).await?;
    if !failures.is_empty() {
        writeln!(
            out,
            "Last failures (retry them with `cocreate outbox retry`):"
        )?;
        for f in failures {
            writeln!(
                out,
                "  #{} {} to {} after {} attempts: {}",
                f.id, f.kind, f.recipient, f.attempts, f.last_error
            )?;
        }
    }
    Ok(())
}

/// Delivers everything due now, once, and reports.
pub async fn flush(
    store: Arc<dyn Store>,
    config: &Config,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let transport = Arc::new(Transport::from_config(config)?);
    let worker = Worker::new(store, transport, config.outbox.clone());
    let s = worker.flush().await?;
    writeln!(
        out,
        "Sent {}, deferred {} for a retry, failed {}.",
        thousands(s.sent),
        thousands(s.retried),
        thousands(s.failed)
    )?;
    Ok(())
}

pub async fn retry(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let n = store.retry_failed().await?;
    writeln!(
        out,
        "Put {} failed messages back in the queue.",
        thousands(n as usize)
    )?;
    Ok(())
}

pub async fn addresses(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let all = store.address_statuses().await?;
    let stopped: Vec<_> = all
        .iter()
        .filter(|s| s.opted_out_at.is_some() || s.bounced_at.is_some())
        .collect();
    if stopped.is_empty() {
        writeln!(out, "No address has opted out or bounced.")?;
    }
    for s in stopped {
        if let Some(at) = s.opted_out_at {
            writeln!(
                out,
                "{:<40} opted out {} ({})",
                s.address,
                at.format("%Y-%m-%d %H:%M UTC"),
                s.opt_out_source.as_deref().unwrap_or("")
            )?;
        }
        if let Some(at) = s.bounced_at {
            writeln!(
                out,
                "{:<40} bounced {}: {}",
                s.address,
                at.format("%Y-%m-%d %H:%M UTC"),
                s.bounce_reason.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

pub async fn restore(
    store: &dyn Store,
    address: &str,
    reason: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let address = EmailAddress::parse(address)?;
    if reason.trim().is_empty() {
        bail!(
            "give the reason with --reason: restoring an address that opted out must be explained"
        );
    }
    if store.restore_address(&address, reason.trim()).await? {
        writeln!(out, "{address} will receive consultation mail again.")?;
    } else {
        writeln!(
            out,
            "{address} had not opted out or bounced; nothing changed."
        )?;
    }
    Ok(())
}
