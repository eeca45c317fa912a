//! The outbox: one row per message, and the worker that delivers them.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use rand::Rng;
use tokio::sync::{Semaphore, mpsc};

use super::transport::{SendError, Transport};
use super::verp::BounceAddresses;
use crate::app::App;
use crate::config::OutboxConfig;
use crate::domain::Lane;
use crate::store::{Store, StoreError};

pub use crate::store::records::{
    Claim, Delivery, NewMessage, OutboxCounts, OutboxFailure, OutboxMessage, RelayRefusal,
    ReplyKeyRecord,
};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] super::transport::TransportError),
    #[error(
        "the relay refuses cocreate, so nothing was sent (check the smtp settings and the password): {0}"
    )]
    RelayRefused(String),
}

/// Delivers due messages: claims a batch, sends up to `concurrency` at a
/// time, and records each outcome; in two lanes ([`Lane`]) that run side by
/// side, replies unpaced and bulk mail at no more than `rate_per_second`.
pub struct Worker {
    store: Arc<dyn Store>,
    transport: Arc<Transport>,
    config: OutboxConfig,
    /// Each message's own envelope sender, when bounce addresses are on.
    bounces: Option<Arc<BounceAddresses>>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassSummary {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// The relay refused us: the pass stopped, and what it had not sent is
    /// back in the queue as it was.
    pub relay_refused: Option<String>,
}

impl PassSummary {
    pub fn handled(&self) -> usize {
        self.sent + self.retried + self.failed
    }
}

impl Worker {
    /// A worker with the App's store and transport.
    pub async fn new(app: &App) -> Result<Self, OutboxError> {
        let key = app.signing_key().await?.clone();
        Ok(Self {
            store: app.store.clone(),
            transport: app.transport()?,
            config: app.config.outbox.clone(),
            bounces: BounceAddresses::new(&app.config.mail, key).map(Arc::new),
        })
    }

    /// Delivers everything due now, batch after batch, replies first, and
    /// returns when nothing is due.
    pub async fn flush(&self) -> Result<PassSummary, OutboxError> {
        let never = CancellationToken::new();
        let mut total = PassSummary::default();
        loop {
            let mut pass = self.pass(&never, Lane::Replies).await?;
            if pass.relay_refused.is_none() {
                let bulk = self.pass(&never, Lane::Bulk).await?;
                pass.sent += bulk.sent;
                pass.retried += bulk.retried;
                pass.failed += bulk.failed;
                pass.relay_refused = bulk.relay_refused;
            }
            total.sent += pass.sent;
            total.retried += pass.retried;
            total.failed += pass.failed;
            if let Some(reason) = pass.relay_refused {
                let now = self.store.clock().now();
                self.store
                    .set_relay_refusal(Some(&RelayRefusal {
                        reason: reason.clone(),
                        since: now,
                        next_try_at: now,
                    }))
                    .await?;
                return Err(OutboxError::RelayRefused(reason));
            }
            if pass.sent > 0 {
                self.store.set_relay_refusal(None).await?;
            }
            if pass.handled() == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs both lanes until `stop` resolves.
    pub async fn run(&self, stop: CancellationToken) {
        tokio::join!(
            self.run_lane(Lane::Replies, stop.clone()),
            self.run_lane(Lane::Bulk, stop)
        );
    }

    /// Runs one lane until `stop` resolves, polling for due messages every
    /// second when idle.
    ///
    /// When the relay refuses cocreate itself, delivery pauses with backoff
    /// (the outbox's retry settings) and the refusal is recorded once, not
    /// per message; the first pass that sends again clears it.
    async fn run_lane(&self, lane: Lane, stop: CancellationToken) {
        let mut refusals: u32 = 0;
        let mut since = self.store.clock().now();
        // A refusal may be on record from before this start (an `outbox
        // flush`, another daemon): the first pass that delivers clears it.
        let mut refusal_on_record = true;
        loop {
            if stop.is_cancelled() {
                return;
            }
            match self.pass(&stop, lane).await {
                Ok(PassSummary {
                    relay_refused: Some(reason),
                    ..
                }) => {
                    refusals += 1;
                    let wait = backoff(&self.config, refusals);
                    let now = self.store.clock().now();
                    if refusals == 1 {
                        since = now;
                        tracing::error!(%reason, lane = lane.as_str(), "the relay refuses cocreate; delivery paused until it accepts again");
                    }
                    let refusal = RelayRefusal {
                        reason,
                        since,
                        next_try_at: now + wait,
                    };
                    if let Err(e) = self.store.set_relay_refusal(Some(&refusal)).await {
                        tracing::warn!(error = %e, "cannot record the relay's refusal");
                    }
                    refusal_on_record = true;
                    tokio::select! {
                        _ = tokio::time::sleep(wait.to_std().unwrap_or_default()) => {}
                        () = stop.cancelled() => return,
                    }
                    continue;
                }
                Ok(p) if p.sent > 0 && refusal_on_record => {
                    if refusals > 0 {
                        tracing::info!(
                            sent = p.sent,
                            lane = lane.as_str(),
                            "the relay accepts cocreate again; delivery resumed"
                        );
                    }
                    refusals = 0;
                    match self.store.set_relay_refusal(None).await {
                        Ok(()) => refusal_on_record = false,
                        Err(e) => tracing::warn!(error = %e, "cannot clear the relay's refusal"),
                    }
                    continue;
                }
                Ok(p) if p.handled() > 0 => {
                    tracing::info!(
                        sent = p.sent,
                        retried = p.retried,
                        failed = p.failed,
                        lane = lane.as_str(),
                        "outbox pass"
                    );
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox pass failed; trying again shortly"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// One batch of `lane`: claim, send, record.
    ///
    /// At most `concurrency` sends run at once, and each message holds one
    /// of [`UNRECORDED_PER_CONNECTION`] × `concurrency` permits from before
    /// its send until its outcome is committed; outcomes that finish
    /// together are committed together. So a connection sends its next
    /// message while the last one's outcome is being written, and at any
    /// moment at most that many messages of a lane can have been accepted
    /// by the relay without being marked sent: the most a crash can make us
    /// send twice.
    ///
    /// A message is only handed over while the claim is ours for longer
    /// than the send may take: the claim is renewed once less than half its
    /// lease is left, and each send must finish before the lease ends. So a
    /// slow relay can make a pass outlast any lease without another sender
    /// taking over messages still waiting here (and sending them too).
    ///
    /// When `stop` turns true, no further message is handed over: those in
    /// flight finish and are recorded, the rest go back to the queue.
    pub async fn pass(
        &self,
        stop: &CancellationToken,
        lane: Lane,
    ) -> Result<PassSummary, OutboxError> {
        let concurrency = self.config.concurrency.max(1) as usize;
        let rate = match lane {
            Lane::Replies => 0,
            Lane::Bulk => self.config.rate_per_second,
        };
        // Enough per claim that the pause between passes is rare; the rate
        // limit bounds it too, so that a claim is rarely renewed.
        let mut batch = (concurrency * 250) as u64;
        if rate > 0 {
            let in_half_lease = u64::from(rate) * self.config.claim_seconds / 2;
            batch = batch.min(in_half_lease.max(1));
        }
        let batch = batch as u32;
        let lease = Duration::from_secs(self.config.claim_seconds);
        let asked = tokio::time::Instant::now();
        let Claim {
            token,
            messages: claimed,
        } = self.store.claim_due(batch, lease, Some(lane)).await?;
        if claimed.is_empty() {
            return Ok(PassSummary::default());
        }
        let mut hold = Hold {
            until: asked + lease,
            ids: claimed.iter().map(|m| m.id).collect(),
        };
        let sending = Arc::new(Semaphore::new(concurrency));
        let permits = Arc::new(Semaphore::new(concurrency * UNRECORDED_PER_CONNECTION));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        // Set by the recorder when the relay refuses us: nothing more is
        // handed over in this pass.
        let refused = std::sync::atomic::AtomicBool::new(false);

        let dispatch = async {
            let mut pacer = Pacer::new(rate);
            let mut unsent = Vec::new();
            let mut claimed = claimed.into_iter();
            for m in claimed.by_ref() {
                // Closed when recording fails: then nothing more is sent.
                let Some(permit) = acquire(&permits, stop).await else {
                    unsent.push(m.id);
                    break;
                };
                let Some(send_permit) = acquire(&sending, stop).await else {
                    unsent.push(m.id);
                    break;
                };
                if refused.load(std::sync::atomic::Ordering::Acquire) {
                    unsent.push(m.id);
                    break;
                }
                if let Some(at) = pacer.next_slot() {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = stop.cancelled() => {
                            unsent.push(m.id);
                            break;
                        }
                    }
                }
                let budget = match self.keep(&token, lease, &mut hold).await {
                    Ok(budget) => budget,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the claim; the rest of the batch goes back to the queue");
                        unsent.push(m.id);
                        break;
                    }
                };
                if !hold.ids.contains(&m.id) {
                    tracing::warn!(
                        id = m.id,
                        "the claim on this message passed to another sender; not sending it"
                    );
                    continue;
                }
                // A message with a sender (not an auto-reply's null one)
                // leaves from its own bounce address.
                let mut m = m;
                if let Some(bounces) = self
                    .bounces
                    .as_ref()
                    .filter(|_| !m.envelope_from.is_empty())
                {
                    m.envelope_from = bounces.for_message(m.id, &m.recipient);
                }
                let transport = self.transport.clone();
                let done = done_tx.clone();
                let span = tracing::info_span!("delivery", id = m.id, kind = %m.kind);
                tokio::spawn(
                    async move {
                        let outcome = match tokio::time::timeout(budget, transport.send(&m)).await {
                            Ok(outcome) => outcome,
                            Err(_) => Err(SendError::Transient(format!(
                                "not handed over within the {} s left of the claim",
                                budget.as_secs()
                            ))),
                        };
                        // The connection is free for the next message; this
                        // one still counts as unrecorded until committed.
                        drop(send_permit);
                        let _ = done.send((m, outcome, permit));
                    }
                    .instrument(span),
                );
            }
            unsent.extend(claimed.map(|m| m.id).filter(|id| hold.ids.contains(id)));
            drop(done_tx);
            unsent
        };

        let mut released = Vec::new();
        let record = async {
            let mut summary = PassSummary::default();
            while let Some(first) = done_rx.recv().await {
                let mut finished = vec![first];
                while let Ok(more) = done_rx.try_recv() {
                    finished.push(more);
                }
                let mut outcomes = Vec::with_capacity(finished.len());
                for (m, outcome, _) in &finished {
                    if let Err(SendError::RelayRefused(reason)) = outcome {
                        refused.store(true, std::sync::atomic::Ordering::Release);
                        summary.relay_refused = Some(reason.clone());
                        released.push(m.id);
                        continue;
                    }
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
                match self.store.record_deliveries(&token, &outcomes).await {
                    Ok(n) if n < outcomes.len() as u64 => tracing::warn!(
                        lost = outcomes.len() as u64 - n,
                        "outcomes not recorded: their claim had passed to another sender"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        permits.close();
                        sending.close();
                        return Err(OutboxError::Store(e));
                    }
                }
                // The permits in `finished` are released here, after the commit.
                drop(finished);
            }
            Ok(summary)
        };

        let (mut unsent, summary) = tokio::join!(dispatch, record);
        unsent.append(&mut released);
        if !unsent.is_empty() {
            self.store.release_claims(&token, &unsent).await?;
        }
        summary
    }

    /// Renews the claim once less than half its lease is left, and returns
    /// how long a send handed over now may take: until shortly before the
    /// lease ends, so that no send outlives the claim it was made under.
    async fn keep(
        &self,
        token: &str,
        lease: Duration,
        hold: &mut Hold,
    ) -> Result<Duration, StoreError> {
        let now = tokio::time::Instant::now();
        if hold.until.saturating_duration_since(now) < lease / 2 {
            let held = self.store.renew_claim(token, lease).await?;
            hold.until = now + lease;
            hold.ids = held.into_iter().collect();
        }
        let margin = lease / 10;
        Ok(hold
            .until
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(margin))
    }

    /// Only a refused recipient marks its address; a refused message fails
    /// alone. (A relay refusing us never gets here: see `pass`.)
    fn judge(&self, m: &OutboxMessage, outcome: Result<(), SendError>) -> Delivery {
        match outcome {
            Ok(()) => Delivery::Sent,
            Err(SendError::RecipientRefused(error)) => Delivery::Failed {
                error: format!("the recipient was refused: {error}"),
                hard_bounce: true,
            },
            Err(SendError::MessageRefused(error)) => Delivery::Failed {
                error: format!("the message was refused: {error}"),
                hard_bounce: false,
            },
            Err(SendError::RelayRefused(error)) => Delivery::Retry {
                at: self.store.clock().now() + backoff(&self.config, m.attempts),
                error,
            },
            Err(SendError::Transient(error)) if m.attempts >= self.config.max_attempts => {
                Delivery::Failed {
                    error: format!(
                        "gave up after {}: {error}",
                        crate::domain::count(m.attempts as usize, "attempt")
                    ),
                    hard_bounce: false,
                }
            }
            Err(SendError::Transient(error)) => Delivery::Retry {
                at: self.store.clock().now() + backoff(&self.config, m.attempts),
                error,
            },
        }
    }
}

/// A permit of `semaphore`; None when it is closed (recording failed) or
/// `stop` comes first.
async fn acquire(
    semaphore: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        p = semaphore.clone().acquire_owned() => p.ok(),
        () = stop.cancelled() => None,
    }
}

/// Messages a connection may have had accepted by the relay and not yet
/// recorded as sent: one being sent, one whose outcome is being committed.
/// With one, each connection would stand idle through every commit (an
/// fsync on SQLite); more would only widen what a crash re-sends.
pub const UNRECORDED_PER_CONNECTION: usize = 2;

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

/// What this sender still holds of its claim, and until when.
struct Hold {
    until: tokio::time::Instant,
    ids: std::collections::HashSet<i64>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;
    use crate::outbound::transport::Sent;

    fn message(n: usize) -> NewMessage {
        NewMessage {
            idempotency_key: format!("test:{n}"),
            kind: crate::domain::EmailKind::Invitation,
            recipient: EmailAddress::parse(&format!("cso{n}@x.al")).unwrap(),
            envelope_from: "ogp-poc@office.example".into(),
            consultation_id: None,
            cso_id: None,
            message: format!("Subject: {n}\r\n\r\nBody\r\n").into_bytes(),
            reply_key: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_hands_each_queued_message_over_once() {
        let sent = Sent::default();
        let app = crate::app::App::in_memory()
            .await
            .with_transport(Transport::Memory(sent.clone()));
        let messages: Vec<NewMessage> = (0..25).map(message).collect();
        assert_eq!(app.store.enqueue(&messages).await.unwrap(), 25);
        let worker = Worker::new(&app).await.unwrap();
        let pass = worker.flush().await.unwrap();
        assert_eq!((pass.sent, pass.retried, pass.failed), (25, 0, 0));
        assert_eq!(worker.flush().await.unwrap().handled(), 0);
        let mut got: Vec<String> = sent.messages().into_iter().map(|m| m.recipient).collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 25, "each once");
        assert_eq!(app.store.outbox_counts().await.unwrap().sent, 25);
    }
}
