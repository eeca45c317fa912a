//! Intake: a message becomes a proposal with a receipt, exactly once.
//!
//! A message is stored byte for byte first (`Store::store_inbound`); only
//! then is it parsed, classified and routed. A message seen before (the same
//! content from another source, or a redelivery) is recognised by a hash of
//! everything but its trace headers, so a stranger cannot pre-empt someone's
//! message by reusing its Message-ID. The proposal, its receipt in the
//! outbox, and the message's new state are written in one transaction, and
//! a message has at most one proposal, so processing again after a crash
//! creates nothing twice.

mod acknowledge;
pub mod campaigns;
mod decide;
mod decision;
mod dedupe;
pub mod types;

use acknowledge::Placement;
use decision::{
    AttachmentFiles, Batch, Decision, Reading, Stored, hold, on_every_core, read, read_now,
};
pub use dedupe::dedupe_key;

use std::collections::HashSet;

use chrono::Utc;
use serde_json::json;
use tracing::Instrument;

use crate::app::App;
use crate::inbound::attachments;
use crate::inbound::parse::{ParseError, parse};
use crate::inbound::trim::trim;
use crate::outbound::message::MessageError;
use crate::outbound::templates::TemplateError;
use crate::store::StoreError;
use types::{Applied, InboundState, IntakeWrite, NewInbound};

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The message is not in the store: whoever delivered it must again.
    #[error("the message could not be stored: {0}")]
    NotStored(StoreError),
    /// Stored; processing it failed on the store and is retried later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored and decided, but the decision could not be written.
    #[error("stored, but what became of it could not be recorded: {0}")]
    NotRecorded(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    LfpMail(#[from] crate::outbound::lfp::LfpMailError),
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Seen before; nothing was done again.
    Duplicate { id: i64 },
    /// A new proposal; `receipt` is false when the loop guard held it back.
    Proposal {
        id: i64,
        receipt_no: String,
        receipt: bool,
    },
    /// An addition to an earlier proposal.
    FollowUp {
        id: i64,
        receipt_no: String,
        confirmation: bool,
    },
    /// Machine mail (auto-reply, bounce, list, spam, our own): kept, no receipt.
    Ignored { id: i64, classification: String },
    /// In the holding pen, with the reason.
    Held { id: i64, reason: String },
}

impl Outcome {
    /// What became of the message, as the webhook answers it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Outcome::Proposal {
                receipt_no,
                receipt,
                ..
            } => {
                json!({ "outcome": "proposal", "receipt_no": receipt_no, "receipt_queued": receipt })
            }
            Outcome::FollowUp {
                receipt_no,
                confirmation,
                ..
            } => {
                json!({ "outcome": "follow_up", "receipt_no": receipt_no, "confirmation_queued": confirmation })
            }
            Outcome::Duplicate { .. } => json!({ "outcome": "duplicate" }),
            Outcome::Ignored { classification, .. } => {
                json!({ "outcome": "ignored", "classification": classification })
            }
            Outcome::Held { reason, .. } => json!({ "outcome": "held", "reason": reason }),
        }
    }
}

/// What became of the message, as a person reads it on the command line
/// and in logs ("proposal OGP-2026-FISCAL-0001, receipt queued").
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Proposal {
                receipt_no,
                receipt,
                ..
            } => write!(
                f,
                "proposal {receipt_no}{}",
                if *receipt {
                    ", receipt queued"
                } else {
                    ", receipt held back by the loop guard"
                }
            ),
            Outcome::FollowUp { receipt_no, .. } => write!(f, "added to proposal {receipt_no}"),
            Outcome::Duplicate { id } => {
                write!(f, "already received (message {id}), nothing done again")
            }
            Outcome::Ignored { classification, .. } => {
                write!(f, "kept as {classification}, no receipt")
            }
            Outcome::Held { reason, .. } => write!(f, "in the holding pen: {reason}"),
        }
    }
}

/// A message stored this long ago has had its first try: the batch that
/// stored it decides it within moments, and a retry must not race it.
const SETTLE: chrono::Duration = chrono::Duration::seconds(10);

/// `serve`'s retries: every `inbound.retry_seconds`, the stored messages
/// whose processing failed and whose backoff has passed are tried again,
/// until `stop`. Without this they waited for the next start.
pub async fn retry(app: App, stop: tokio_util::sync::CancellationToken) {
    let every = std::time::Duration::from_secs(app.config.inbound.retry_seconds.max(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        match app.intake().process_due(app.now() - SETTLE, false).await {
            Ok(s) if s.processed + s.failed == 0 => {}
            Ok(s) => tracing::info!(
                processed = s.processed,
                failed = s.failed,
                "stored messages tried again"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "trying stored messages again failed; trying later")
            }
        }
    }
}

/// What a pass over stored but unprocessed messages did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetrySummary {
    pub processed: usize,
    pub failed: usize,
}

/// Taking messages in, with the App's store, config and templates
/// (`App::intake`).
/// Whose a message from the holding pen is, as the POC says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// A CSO of the registry, by id.
    Registry(i64),
    /// Someone outside the registry: an organisation by the name the POC
    /// gives, or (no name) an individual. Recorded as such, with no
    /// registry entry made up for them.
    Outside { name: Option<String> },
}

pub struct Intake<'a> {
    pub app: &'a App,
}

/// Messages taken in together: at most this many, and at most
/// [`BATCH_BYTES`] of them, share one transaction.
pub const BATCH_MESSAGES: usize = 256;
pub const BATCH_BYTES: usize = 32 * 1024 * 1024;

impl Intake<'_> {
    /// Stores `raw` and processes it. Once this returns anything but
    /// [`IntakeError::NotStored`] the message is safe in the store,
    /// whatever processing made of it.
    pub async fn accept(&self, raw: &[u8], source: &str) -> Result<Outcome, IntakeError> {
        let mut results = self
            .accept_many(&[(raw, source)])
            .await
            .map_err(IntakeError::NotStored)?;
        results
            .pop()
            .unwrap_or_else(|| Err(IntakeError::NotRecorded("nothing was decided".into())))
    }

    /// Stores a batch of messages in one transaction, then processes them
    /// and writes what became of all of them in a second one. Err: none of
    /// them was stored. Ok: all are stored; each has its outcome, or the
    /// reason processing failed (it is retried from the store later).
    pub async fn accept_many(
        &self,
        items: &[(&[u8], &str)],
    ) -> Result<Vec<Result<Outcome, IntakeError>>, StoreError> {
        // (the message, its dedupe key and reading, once computed)
        type ReadIn<'r> = (
            &'r [u8],
            Option<(String, Result<(Reading<'r>, AttachmentFiles), ParseError>)>,
        );
        let mut read_in: Vec<ReadIn<'_>> = items.iter().map(|(raw, _)| (*raw, None)).collect();
        on_every_core(&mut read_in, |(raw, out)| {
            *out = Some((dedupe_key(raw), read(raw, &self.app.config.inbound)));
        });
        let mut files = Vec::new();
        let (keys, parsed): (Vec<String>, Vec<Result<Reading, ParseError>>) = read_in
            .into_iter()
            .filter_map(|(_, r)| r)
            .map(|(key, r)| {
                let r = r.map(|(reading, f)| {
                    files.extend(f);
                    reading
                });
                (key, r)
            })
            .unzip();
        // Attachment files are written while the batch is stored and
        // decided: the stored message is the source of truth, so nothing
        // waits for them but the end of the batch.
        // (No thread for a batch without attachments, e.g. one LMTP message.)
        let writer =
            (!files.is_empty()).then(|| std::thread::spawn(move || attachments::write_all(files)));
        let news: Vec<NewInbound<'_>> = items
            .iter()
            .zip(&parsed)
            .zip(keys)
            .map(|(((raw, source), r), dedupe_key)| {
                let p = r.as_ref().ok().map(|r| &r.parsed);
                // Held for its sender: its Message-ID and subject still
                // show in the holding pen.
                let unsent = match r {
                    Err(ParseError::NoSender | ParseError::BadSender(_)) => {
                        crate::inbound::parse::readable(
                            raw,
                            &self.app.config.inbound.parse_limits(),
                        )
                    }
                    _ => None,
                };
                NewInbound {
                    dedupe_key,
                    source,
                    raw,
                    message_id: p
                        .and_then(|p| p.message_id.clone())
                        .or_else(|| unsent.as_ref().and_then(|u| u.message_id.clone())),
                    from_address: p.map(|p| p.from.to_string()),
                    subject: p
                        .map(|p| p.subject.clone())
                        .or_else(|| unsent.and_then(|u| u.subject)),
                }
            })
            .collect();
        let stored = match self.app.store.store_inbound_many(&news).await {
            Ok(s) => {
                self.app.writes.succeeded();
                s
            }
            Err(e) => {
                self.app.writes.failed(&e);
                if let Some(w) = writer {
                    let _ = w.join();
                }
                return Err(e);
            }
        };
        let mut seen = HashSet::new();
        let mut todo = Vec::new();
        let mut outcomes: Vec<Option<Result<Outcome, IntakeError>>> = Vec::new();
        for ((s, p), n) in stored.iter().zip(parsed).zip(&news) {
            // A message stored before but never processed (the process taking
            // it in was killed in between) is finished now; one processed
            // before, or twice in this batch, is a duplicate.
            let first_here = seen.insert(n.dedupe_key.as_str());
            if !first_here || s.state != InboundState::Received {
                outcomes.push(Some(Ok(Outcome::Duplicate { id: s.id })));
            } else {
                outcomes.push(None);
                todo.push((outcomes.len() - 1, s.id, p));
            }
        }
        let (indices, work): (Vec<usize>, Vec<Stored>) =
            todo.into_iter().map(|(i, id, p)| (i, (id, p))).unzip();
        let processed = self.process_batch(work).await;
        for (i, r) in indices.into_iter().zip(processed) {
            outcomes[i] = Some(r);
        }
        if writer.is_some_and(|w| w.join().is_err()) {
            tracing::error!("writing attachment files failed; they stay in the stored messages");
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Processes every message stored but not processed (after a crash,
    /// at start), however recently it failed.
    pub async fn process_pending(&self) -> Result<RetrySummary, IntakeError> {
        self.process_due(self.app.now(), true).await
    }

    /// Processes messages stored before `settled_before` but not processed
    /// that are due again (their last failure's backoff has passed, or
    /// `all`). A message that fails again is retried later or held (see
    /// [`Self::process_batch`]).
    pub async fn process_due(
        &self,
        settled_before: chrono::DateTime<Utc>,
        all: bool,
    ) -> Result<RetrySummary, IntakeError> {
        let mut summary = RetrySummary::default();
        let mut seen = HashSet::new();
        loop {
            // `all`: as if every backoff had passed. (A date SQLite compares
            // as text like the others: four-digit years.)
            let now = if all {
                self.app.now() + chrono::Duration::days(365 * 100)
            } else {
                self.app.now()
            };
            let pending = self
                .app
                .store
                .due_unprocessed(now, settled_before, BATCH_MESSAGES as u32)
                .await?;
            // A message whose failure could not even be recorded comes back
            // at once: this pass has had its try.
            let pending: Vec<_> = pending
                .into_iter()
                .filter(|(id, _)| seen.insert(*id))
                .collect();
            if pending.is_empty() {
                return Ok(summary);
            }
            let work = pending
                .iter()
                .map(|(id, raw)| (*id, read_now(raw, &self.app.config.inbound)))
                .collect();
            for r in self.process_batch(work).await {
                match r {
                    Ok(_) => summary.processed += 1,
                    Err(_) => summary.failed += 1,
                }
            }
        }
    }

    /// Classifies, routes and records one stored message. A message that
    /// already has a proposal keeps it, unchanged.
    pub async fn process(&self, id: i64, raw: &[u8]) -> Result<Outcome, IntakeError> {
        if let Some(receipt_no) = self.app.store.receipt_for_message(id).await? {
            return Ok(Outcome::Proposal {
                id,
                receipt_no,
                receipt: false,
            });
        }
        self.process_batch(vec![(id, read_now(raw, &self.app.config.inbound))])
            .await
            .pop()
            .unwrap_or_else(|| Err(IntakeError::NotRecorded("nothing was decided".into())))
    }

    /// Decides and records a batch (see [`Self::decide_and_record`]); a
    /// message whose processing failed is tried again later with backoff,
    /// and held with the error after `inbound.max_processing_attempts`.
    async fn process_batch(&self, work: Vec<Stored<'_>>) -> Vec<Result<Outcome, IntakeError>> {
        let ids: Vec<i64> = work.iter().map(|(id, _)| *id).collect();
        let results = self.decide_and_record(work).await;
        let inbound = &self.app.config.inbound;
        let base = inbound.retry_seconds.max(1);
        let retry_at = move |attempts: u32| {
            let wait = base
                .saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
                .min(3600);
            self.app.now() + chrono::Duration::seconds(wait as i64)
        };
        for (id, result) in ids.iter().zip(&results) {
            let Err(e) = result else { continue };
            match self
                .app
                .store
                .processing_failed(
                    *id,
                    &e.to_string(),
                    inbound.max_processing_attempts,
                    &retry_at,
                )
                .await
            {
                Ok(true) => {
                    tracing::warn!(id, error = %e, "a stored message failed processing too often; it is held with the error")
                }
                Ok(false) => {
                    tracing::warn!(id, error = %e, "processing a stored message failed; it is tried again later")
                }
                Err(store) => {
                    tracing::warn!(id, error = %e, %store, "processing a stored message failed, and so did recording it; it is tried again later")
                }
            }
        }
        results
    }

    /// Decides what each stored message is, then writes all the decisions in
    /// one transaction. A message whose decision failed is left as received.
    async fn decide_and_record(&self, work: Vec<Stored<'_>>) -> Vec<Result<Outcome, IntakeError>> {
        if work.is_empty() {
            return Vec::new();
        }
        let parsed = work
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(|r| &r.parsed));
        let mut batch = match Batch::load(self.app.store.as_ref(), &self.app.config, parsed).await {
            Ok(b) => b,
            Err(e) => {
                let e = e.to_string();
                return work
                    .iter()
                    .map(|_| Err(IntakeError::NotRecorded(e.clone())))
                    .collect();
            }
        };
        let mut decided: Vec<Result<Decision, IntakeError>> = Vec::with_capacity(work.len());
        for (id, parsed) in work {
            decided.push(match parsed {
                Ok(r) => {
                    self.decide(id, r, &mut batch)
                        .instrument(tracing::info_span!("message", id))
                        .await
                }
                Err(e) => Ok(hold(id, e.why())),
            });
        }
        self.finish_all(&mut decided);
        let writes: Vec<IntakeWrite> = decided
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .flat_map(|d| d.writes.iter().cloned())
            .collect();
        let mut applied = match self.app.store.apply_intake(&writes).await {
            Ok(a) => {
                self.app.writes.succeeded();
                a.into_iter()
            }
            Err(e) => {
                self.app.writes.failed(&e);
                let e = e.to_string();
                tracing::error!(error = %e, messages = decided.len(), "stored messages could not be recorded; they are retried from the store");
                return decided
                    .iter()
                    .map(|_| Err(IntakeError::NotRecorded(e.clone())))
                    .collect();
            }
        };
        decided
            .into_iter()
            .map(|d| {
                let d = d?;
                let applied: Vec<Applied> = applied.by_ref().take(d.writes.len()).collect();
                Ok(d.settle(applied))
            })
            .collect()
    }

    /// The POC's decision from the holding pen: this stored message is a
    /// proposal of `cso_id` in `consultation_id`. It gets its receipt.
    pub async fn assign(
        &self,
        id: i64,
        consultation_id: i64,
        sender: Assignee,
    ) -> Result<Outcome, IntakeError> {
        let (_, raw) = self
            .app
            .store
            .inbound_raw(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
        let parsed = match parse(&raw) {
            Ok(p) => p,
            Err(e) => return self.record(hold(id, e.why())).await,
        };
        let mut batch = Batch::load(
            self.app.store.as_ref(),
            &self.app.config,
            std::iter::once(&parsed),
        )
        .await?;
        let consultation = batch
            .consultations
            .iter()
            .find(|c| c.id == consultation_id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("consultation {consultation_id}")))?;
        let today = self.app.today();
        let (cso, sender_name) = match sender {
            Assignee::Registry(cso_id) => (self.app.store.cso(cso_id).await?, None),
            Assignee::Outside { name } => (None, name),
        };
        let place = Placement {
            consultation: &consultation,
            cso: cso.as_ref(),
            other_sender: cso
                .as_ref()
                .is_some_and(|c| !c.record.emails.contains(&parsed.from)),
            late: consultation.late_on(today),
            draft: None,
            // The POC chose where it goes.
            sender_flag: None,
            no_publish: false,
            sender_name,
        };
        let trimmed = trim(&parsed.body);
        if trimmed.reply_text.trim().is_empty()
            && !parsed.attachments.iter().any(|a| a.is_document())
        {
            return self
                .record(hold(id, decide::EMPTY_APART_FROM_QUOTES.into()))
                .await;
        }
        let decision = self
            .propose(id, &parsed, trimmed, place, &mut batch)
            .await?;
        self.record(decision).await
    }

    /// Writes one decision on its own.
    async fn record(&self, mut decision: Decision) -> Result<Outcome, IntakeError> {
        for a in std::mem::take(&mut decision.acknowledgements) {
            let m = self.finish(a)?;
            decision.attach(m);
        }
        let applied = self.app.store.apply_intake(&decision.writes).await?;
        Ok(decision.settle(applied))
    }
}
