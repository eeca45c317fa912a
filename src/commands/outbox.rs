//! `cocreate outbox …`.

use std::io::Write;

use super::{count, printable, thousands};
use crate::app::App;
use crate::config::Config;
use crate::outbound::outbox::Worker;
use crate::store::Store;
use crate::store::records::RetryScope;

/// Messages listed per section of `outbox status`.
const LISTED: u32 = 20;

pub async fn status(
    store: &dyn Store,
    config: &Config,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let c = store.outbox_counts().await?;
    let deferred = store.deferred(LISTED).await?;
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
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&config.office.time_zone)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    if let Some(r) = store.relay_refusal().await? {
        writeln!(
            out,
            "Delivery is paused: the relay has refused cocreate since {} ({}); next try at {}. \
             Nothing is lost: the messages wait in the queue.",
            local(r.since),
            printable(&r.reason),
            local(r.next_try_at),
        )?;
    }
    if !deferred.is_empty() {
        writeln!(
            out,
            "Deferred after a failed attempt (tried again by themselves; `cocreate outbox retry --now` tries them now), times in {}:",
            config.office.time_zone
        )?;
        for d in &deferred {
            writeln!(
                out,
                "  #{} {} to {}, {} so far, next at {}: {}",
                d.id,
                d.kind,
                d.recipient,
                count(d.attempts as usize, "attempt"),
                local(d.next_attempt_at),
                printable(&d.last_error)
            )?;
        }
    }
    let failures = store.outbox_failures(LISTED).await?;
    let (refused, other): (Vec<_>, Vec<_>) = failures.into_iter().partition(|f| f.refused);
    if !refused.is_empty() {
        writeln!(
            out,
            "Failed, the address refused for good (correct it in the registry; retrying cannot help):"
        )?;
        for f in refused {
            writeln!(
                out,
                "  #{} {} to {}: {}",
                f.id,
                f.kind,
                f.recipient,
                printable(&f.last_error)
            )?;
        }
    }
    if !other.is_empty() {
        writeln!(
            out,
            "Failed (put them back in the queue with `cocreate outbox retry`):"
        )?;
        for f in other {
            writeln!(
                out,
                "  #{} {} to {} after {}: {}",
                f.id,
                f.kind,
                f.recipient,
                count(f.attempts as usize, "attempt"),
                printable(&f.last_error)
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

pub async fn retry(
    store: &dyn Store,
    scope: RetryScope,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let r = store.retry(scope).await?;
    let mut said = format!(
        "Put {} back in the queue",
        count(r.failed as usize, "failed message")
    );
    if scope.deferred_now {
        said += &format!(
            ", and made {} due now",
            count(r.deferred as usize, "deferred message")
        );
    }
    said.push('.');
    writeln!(out, "{said}")?;
    if r.refused_left > 0 {
        writeln!(
            out,
            "Left as they are: {} to addresses refused for good (correct them in the registry, or add --refused to try them anyway).",
            count(r.refused_left as usize, "message")
        )?;
    }
    Ok(())
}
