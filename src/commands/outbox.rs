//! `cocreate outbox …`.

use super::thousands;
use crate::app::App;
use crate::outbound::outbox::Worker;
use crate::store::Store;
use std::io::Write;

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
    if c.cancelled > 0 {
        writeln!(
            out,
            "Cancelled {}: their consultation closed before they left (`cocreate consultation show` says when).",
            thousands(c.cancelled as usize)
        )?;
    }
    if let Some(r) = store.relay_refusal().await? {
        writeln!(
            out,
            "Delivery is paused: the relay has refused cocreate since {} ({}); next try at {}. \
             Nothing is lost: the messages wait in the queue.",
            r.since.format("%Y-%m-%d %H:%M:%S UTC"),
            r.reason,
            r.next_try_at.format("%Y-%m-%d %H:%M:%S UTC"),
        )?;
    }
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
pub async fn flush(app: &App, out: &mut impl Write) -> anyhow::Result<()> {
    let worker = Worker::new(app).await?;
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
