//! The outbox: one row per message, and the worker that delivers them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};

use super::transport::{SendError, Transport};
use crate::config::OutboxConfig;
use crate::domain::{EmailAddress, ReplyKey};
use crate::store::{Store, StoreError};

/// A message ready to be queued.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Unique per message meaning, e.g. `invitation:12:345:info@x.al`.
    pub idempotency_key: String,
    pub kind: &'static str,
    pub recipient: EmailAddress,
    /// Empty for the null sender.
    pub envelope_from: String,
    pub consultation_id: Option<i64>,
    pub cso_id: Option<i64>,
    /// The whole RFC 5322 message, signed if DKIM is configured.
    pub message: Vec<u8>,
    /// Stored in the same transaction, only if the message is new.
    pub reply_key: Option<ReplyKeyRecord>,
}

/// What a reply key stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyKeyRecord {
    pub key: ReplyKey,
    pub consultation_id: i64,
    pub cso_id: i64,
    pub address: EmailAddress,
    pub purpose: &'static str,
    /// For a receipt's key: the proposal a reply adds to.
    pub receipt_no: Option<String>,
}

/// A message claimed for delivery.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub idempotency_key: String,
    pub kind: String,
    pub recipient: String,
    pub envelope_from: String,
    pub message: Vec<u8>,
    /// Including this one.
    pub attempts: u32,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    Retry { at: DateTime<Utc>, error: String },
    Failed { error: String, hard_bounce: bool },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxFailure {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub attempts: u32,
    pub last_error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] super::transport::TransportError),
}

/// Delivers due messages: claims a batch, sends up to `concurrency` at a
/// time at no more than `rate_per_second`, and records each outcome.
pub struct Worker {
    store: Arc<dyn Store>,
    transport: Arc<Transport>,
    config: OutboxConfig,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl PassSummary {
    pub fn handled(&self) -> usize {
        self.sent + self.retried + self.failed
    }
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, transport: Arc<Transport>, config: OutboxConfig) -> Self {
        Self {
            store,
            transport,
            config,
        }
    }

    /// Delivers everything due now, batch after batch, and returns when
    /// nothing is due.
    pub async fn flush(&self) -> Result<PassSummary, OutboxError> {
        let (_keep, never) = watch::channel(false);
        let mut total = PassSummary::default();
        loop {
            let pass = self.pass(&never).await?;
            total.sent += pass.sent;
            total.retried += pass.retried;
            total.failed += pass.failed;
            if pass.handled() == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs until `stop` resolves, polling for due messages every second
    /// when idle.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.pass(&stop).await {
                Ok(p) if p.handled() > 0 => {
                    tracing::info!(
                        sent = p.sent,
                        retried = p.retried,
                        failed = p.failed,
                        "outbox pass"
                    );
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox pass failed; trying again shortly"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One batch: claim, send, record.
    ///
    /// Each send holds one of `concurrency` permits until its outcome is
    /// committed, and outcomes that finish together are committed together.
    /// So at any moment at most `concurrency` messages can have been accepted
    /// by the relay without being marked sent: the most a crash can make us
    /// send twice.
    ///
    /// When `stop` turns true, no further message is handed over: those in
    /// flight finish and are recorded, the rest go back to the queue.
    pub async fn pass(&self, stop: &watch::Receiver<bool>) -> Result<PassSummary, OutboxError> {
        let concurrency = self.config.concurrency.max(1) as usize;
        // Enough per claim that the pause between passes is rare, but never
        // more than the rate limit lets us send in half the claim's lease,
        // or another daemon would take over messages still waiting here.
        let mut batch = (concurrency * 250) as u64;
        if self.config.rate_per_second > 0 {
            let in_half_lease =
                u64::from(self.config.rate_per_second) * self.config.claim_seconds / 2;
            batch = batch.min(in_half_lease.max(1));
        }
        let batch = batch as u32;
        let lease = Duration::from_secs(self.config.claim_seconds);
        let claimed = self.store.claim_due_messages(batch, lease).await?;
        if claimed.is_empty() {
            return Ok(PassSummary::default());
        }
        let permits = Arc::new(Semaphore::new(concurrency));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();

        let dispatch = async {
            let mut stop = stop.clone();
            let mut pacer = Pacer::new(self.config.rate_per_second);
            let mut unsent = Vec::new();
            let mut claimed = claimed.into_iter();
            for m in claimed.by_ref() {
                // Closed when recording fails: then nothing more is sent.
                let permit = tokio::select! {
                    p = permits.clone().acquire_owned() => p.ok(),
                    _ = stop.wait_for(|s| *s) => None,
                };
                let Some(permit) = permit else {
                    unsent.push(m.id);
                    break;
                };
                if let Some(at) = pacer.next_slot() {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        _ = stop.wait_for(|s| *s) => {
                            unsent.push(m.id);
                            break;
                        }
                    }
                }
                let transport = self.transport.clone();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    let outcome = transport.send(&m).await;
                    let _ = done.send((m, outcome, permit));
                });
            }
            unsent.extend(claimed.map(|m| m.id));
            drop(done_tx);
            unsent
        };

        let record = async {
            let mut summary = PassSummary::default();
            while let Some(first) = done_rx.recv().await {
                let mut finished = vec![first];
                while let Ok(more) = done_rx.try_recv() {
                    finished.push(more);
                }
                let mut outcomes = Vec::with_capacity(finished.len());
                for (m, outcome, _) in &finished {
                    let delivery = self.judge(m, outcome.clone());
                    match &delivery {
                        Delivery::Sent => summary.sent += 1,
                        Delivery::Retry { error, .. } => {
                            tracing::info!(id = m.id, recipient = %m.recipient, attempt = m.attempts, %error, "delivery deferred");
                            summary.retried += 1;
                        }
                        Delivery::Failed { error, .. } => {
                            tracing::warn!(id = m.id, recipient = %m.recipient, %error, "delivery failed for good");
                            summary.failed += 1;
                        }
                    }
                    outcomes.push((m.id, m.recipient.clone(), delivery));
                }
                if let Err(e) = self.store.record_deliveries(&outcomes).await {
                    permits.close();
                    return Err(OutboxError::Store(e));
                }
                // The permits in `finished` are released here, after the commit.
                drop(finished);
            }
            Ok(summary)
        };

        let (unsent, summary) = tokio::join!(dispatch, record);
        if !unsent.is_empty() {
            self.store.release_claims(&unsent).await?;
        }
        summary
    }

    fn judge(&self, m: &OutboxMessage, outcome: Result<(), SendError>) -> Delivery {
        match outcome {
            Ok(()) => Delivery::Sent,
            Err(SendError::Permanent(error)) => Delivery::Failed {
                error,
                hard_bounce: true,
            },
            Err(SendError::Transient(error)) if m.attempts >= self.config.max_attempts => {
                Delivery::Failed {
                    error: format!("gave up after {} attempts: {error}", m.attempts),
                    hard_bounce: false,
                }
            }
            Err(SendError::Transient(error)) => Delivery::Retry {
                at: Utc::now() + backoff(&self.config, m.attempts),
                error,
            },
        }
    }
}

/// base * 2^(attempt-1), capped, with ±25% jitter so that messages deferred
/// together do not all return together.
pub fn backoff(config: &OutboxConfig, attempt: u32) -> chrono::Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let base = config
        .retry_base_seconds
        .saturating_mul(1u64 << exp)
        .min(config.retry_max_seconds.max(1)) as f64;
    let jitter = rand::rng().random_range(0.75..1.25);
    chrono::Duration::milliseconds((base * jitter * 1000.0) as i64)
}

/// Spaces hand-overs to the relay `1/rate` seconds apart; 0 means no limit.
struct Pacer {
    interval: Option<Duration>,
    next: tokio::time::Instant,
}

impl Pacer {
    fn new(rate_per_second: u32) -> Self {
        Self {
            interval: (rate_per_second > 0)
                .then(|| Duration::from_secs_f64(1.0 / rate_per_second as f64)),
            next: tokio::time::Instant::now(),
        }
    }

    fn next_slot(&mut self) -> Option<tokio::time::Instant> {
        let interval = self.interval?;
        let now = tokio::time::Instant::now();
        let slot = self.next.max(now);
        self.next = slot + interval;
        Some(slot)
    }
}
