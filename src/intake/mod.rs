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

pub mod types;

use std::collections::HashSet;

use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::config::{Config, InboundConfig};
use crate::consultation::Consultation;
use crate::domain::{Language, ReceiptNo, ReplyKey};
use crate::inbound::attachments;
use crate::inbound::bounce;
use crate::inbound::classify::{Classification, automated};
use crate::inbound::inspect::authentication_of;
use crate::inbound::parse::{AttachmentNote, ParseError, Parsed, hex, parse};
use crate::inbound::route::{keys_of, route_among};
use crate::inbound::trim::{Trimmed, trim};
use crate::outbound::message::{self, MessageError, Outgoing};
use crate::outbound::outbox::{NewMessage, ReplyKeyRecord};
use crate::outbound::outreach::Sender;
use crate::outbound::templates::TemplateError;
use crate::registry::Cso;
use crate::store::{Store, StoreError};
use types::{
    Applied, InboundState, IntakeLookups, IntakeWrite, NewFollowUp, NewInbound, NewProposal,
};

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

    /// The same on one line, for logs and the command line.
    pub fn describe(&self) -> String {
        self.to_json().to_string()
    }
}

/// Headers that relays add or change on the way: the same message through
/// two sources differs only in these.
const TRACE_HEADERS: [&str; 9] = [
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "authentication-results",
    "arc-authentication-results",
    "x-spam-status",
    "x-spam-flag",
];

/// The hash that recognises the same message arriving twice.
pub fn dedupe_key(raw: &[u8]) -> String {
    let split = find(raw, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(raw, b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(split);
    let mut hasher = Sha256::new();
    let mut skipping = false;
    for line in head.split(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let name = line
                .split(|b| *b == b':')
                .next()
                .map(|n| String::from_utf8_lossy(n).trim().to_ascii_lowercase())
                .unwrap_or_default();
            skipping = TRACE_HEADERS.contains(&name.as_str());
        }
        if !skipping {
            hasher.update(line.strip_suffix(b"\r").unwrap_or(line));
            hasher.update(b"\n");
        }
    }
    hasher.update(body);
    hex(&hasher.finalize())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Taking messages in, with the App's store, config and templates
/// (`App::intake`).
pub struct Intake<'a> {
    pub app: &'a App,
}

/// What processing one message decided, before anything is written.
struct Decision {
    outcome: Outcome,
    writes: Vec<IntakeWrite>,
    /// To render before the writes are applied; it becomes the receipt or
    /// confirmation of the last write.
    acknowledgement: Option<Acknowledgement>,
}

impl Decision {
    fn only(outcome: Outcome, write: IntakeWrite) -> Self {
        Self {
            outcome,
            writes: vec![write],
            acknowledgement: None,
        }
    }

    /// The outcome as written: a message that already had a proposal keeps
    /// its receipt number, and nothing new was queued for it.
    fn settle(self, applied: Vec<Applied>) -> Outcome {
        let mut outcome = self.outcome;
        for a in applied {
            match (a, &mut outcome) {
                (
                    Applied::Proposal { receipt_no, new },
                    Outcome::Proposal {
                        receipt_no: r,
                        receipt,
                        ..
                    },
                ) => {
                    *r = receipt_no;
                    *receipt &= new;
                }
                (Applied::FollowUp { new }, Outcome::FollowUp { confirmation, .. }) => {
                    *confirmation &= new;
                }
                _ => {}
            }
        }
        outcome
    }

    fn attach(&mut self, message: NewMessage) {
        match self.writes.last_mut() {
            Some(IntakeWrite::Proposal { receipt, .. }) => *receipt = Some(message),
            Some(IntakeWrite::FollowUp { confirmation, .. }) => *confirmation = Some(message),
            _ => {}
        }
    }
}

/// What the messages of one batch share, looked up once for all of them:
/// the consultations, the reply keys they carry and their CSOs, and what
/// the loop guard needs about their senders. What the batch itself decides
/// is added as it goes (an acknowledgement queued, a text sent), so the
/// loop guard counts it as if it were already in the store.
struct Batch {
    consultations: Vec<Consultation>,
    known: IntakeLookups,
}

impl Batch {
    async fn load<'p>(
        store: &dyn Store,
        config: &Config,
        messages: impl Iterator<Item = &'p Parsed>,
    ) -> Result<Self, StoreError> {
        let mut keys = Vec::new();
        let mut senders = Vec::new();
        for p in messages {
            keys.extend(keys_of(p, config));
            senders.push(p.from.to_string());
        }
        keys.sort_unstable();
        keys.dedup();
        senders.sort_unstable();
        senders.dedup();
        let now = Utc::now();
        Ok(Self {
            consultations: store.consultations().await?,
            known: store
                .intake_lookups(
                    &keys,
                    &senders,
                    now - chrono::Duration::hours(1),
                    now - chrono::Duration::days(7),
                )
                .await?,
        })
    }
}

/// A message as parsed, with what its sender wrote set apart from quotes
/// and signature.
struct Reading {
    parsed: Parsed,
    trimmed: Trimmed,
}

/// Parses, sets the attachments' bytes aside to be kept apart, and trims:
/// work without the store, done for a batch on every core.
fn read(raw: &[u8], config: &InboundConfig) -> Result<(Reading, AttachmentFiles), ParseError> {
    let mut parsed = parse(raw)?;
    let files = attachments::take(
        &config.attachments_dir,
        &mut parsed.attachments,
        config.max_attachment_bytes,
    );
    let trimmed = trim(&parsed.body);
    Ok((Reading { parsed, trimmed }, files))
}

/// Attachment files to write: (path, bytes).
type AttachmentFiles = Vec<(std::path::PathBuf, Vec<u8>)>;

/// Reads a message and writes its attachments at once (one message, or a
/// batch read again from the store).
fn read_now(raw: &[u8], config: &InboundConfig) -> Result<Reading, ParseError> {
    read(raw, config).map(|(reading, files)| {
        attachments::write_all(files);
        reading
    })
}

/// A stored message's id and what reading it made of it.
type Stored = (i64, Result<Reading, ParseError>);

/// Runs `f` on each item, spread over the machine's cores; for the pure,
/// CPU-heavy steps of a batch (parsing, trimming, rendering). Small
/// batches stay on the calling thread.
fn on_every_core<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 16 {
        items.iter_mut().for_each(f);
        return;
    }
    let per_thread = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for chunk in items.chunks_mut(per_thread) {
            let f = &f;
            scope.spawn(move || chunk.iter_mut().for_each(f));
        }
    });
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
            Option<(String, Result<(Reading, AttachmentFiles), ParseError>)>,
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
                NewInbound {
                    dedupe_key,
                    source,
                    raw,
                    message_id: p.and_then(|p| p.message_id.clone()),
                    from_address: p.map(|p| p.from.to_string()),
                    subject: p.map(|p| p.subject.clone()),
                }
            })
            .collect();
        let stored = match self.app.store.store_inbound_many(&news).await {
            Ok(s) => s,
            Err(e) => {
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
            if !first_here || s.state != InboundState::Received.as_str() {
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

    /// Processes messages stored but not processed, e.g. after a crash.
    pub async fn process_pending(&self) -> Result<usize, IntakeError> {
        let pending = self.app.store.unprocessed_inbound().await?;
        let n = pending.len();
        for chunk in pending.chunks(BATCH_MESSAGES) {
            let work = chunk
                .iter()
                .map(|(id, raw)| (*id, read_now(raw, &self.app.config.inbound)))
                .collect();
            for r in self.process_batch(work).await {
                r?;
            }
        }
        Ok(n)
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

    /// Decides what each stored message is, then writes all the decisions in
    /// one transaction. A message whose decision failed is left as received.
    async fn process_batch(&self, work: Vec<Stored>) -> Vec<Result<Outcome, IntakeError>> {
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
                Ok(r) => self.decide(id, r, &mut batch).await,
                Err(e) => Ok(hold(id, e.to_string())),
            });
        }
        self.finish_all(&mut decided);
        let writes: Vec<IntakeWrite> = decided
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .flat_map(|d| d.writes.iter().cloned())
            .collect();
        let mut applied = match self.app.store.apply_intake(&writes).await {
            Ok(a) => a.into_iter(),
            Err(e) => {
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

    /// What one parsed, stored message is and what to write for it.
    async fn decide(
        &self,
        id: i64,
        reading: Reading,
        batch: &mut Batch,
    ) -> Result<Decision, IntakeError> {
        let Reading { parsed, trimmed } = reading;
        let parsed = &parsed;
        if let Some((classification, why)) = automated(parsed, &self.app.config.mail) {
            let mut writes = Vec::new();
            if classification == Classification::Bounce {
                // Believed only for an address a quoted key of ours was sent to.
                let keys = bounce::quoted_keys(&parsed.raw, &self.app.config.mail);
                let now = chrono::Utc::now();
                let sent_to: Vec<String> = if keys.is_empty() {
                    Vec::new()
                } else {
                    let found = self.app.store.intake_lookups(&keys, &[], now, now).await?;
                    found
                        .reply_keys
                        .values()
                        .map(|r| r.address.as_str().to_ascii_lowercase())
                        .collect()
                };
                for f in bounce::failures(&parsed.raw, parsed) {
                    if !sent_to.contains(&f.address) {
                        tracing::warn!(address = %f.address, status = %f.status, "delivery report not believed: it quotes no message of ours to that address");
                        continue;
                    }
                    tracing::info!(address = %f.address, hard = f.hard, status = %f.status, "bounce recorded");
                    writes.push(IntakeWrite::Bounce {
                        address: f.address.to_string(),
                        hard: f.hard,
                        reason: format!("delivery report: status {}", f.status),
                    });
                }
            }
            let c = serde_json::to_value(classification)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            writes.push(IntakeWrite::Outcome {
                id,
                state: InboundState::Processed,
                classification: c.clone(),
                reason: why,
            });
            return Ok(Decision {
                outcome: Outcome::Ignored {
                    id,
                    classification: c,
                },
                writes,
                acknowledgement: None,
            });
        }
        let r = route_among(
            self.app.store.as_ref(),
            &self.app.config,
            &batch.consultations,
            &batch.known,
            parsed,
        )
        .await?;
        let (Some((consultation, cso)), true) = (r.found, r.method.is_some()) else {
            return Ok(hold(id, r.reason));
        };
        // A responder that ignores every auto-reply convention still gives
        // itself away by sending the same words each time: the second
        // identical message waits for the POC instead of being answered.
        let from = parsed.from.to_string();
        if !trimmed.reply_text.trim().is_empty()
            && batch
                .known
                .texts
                .contains(&(from.clone(), trimmed.reply_text.clone()))
        {
            {
                return Ok(hold(
                    id,
                    format!("{from} sent these exact words before; an automatic reply?"),
                ));
            }
        }
        if trimmed.reply_text.trim().is_empty()
            && !parsed.attachments.iter().any(|a| a.is_document())
        {
            return Ok(hold(
                id,
                "the message is empty apart from quoted text".into(),
            ));
        }
        let decision = match r.follow_up_of {
            Some(receipt_no) => {
                self.follow_up(
                    id,
                    parsed,
                    trimmed,
                    &consultation,
                    cso.as_ref(),
                    &receipt_no,
                    batch,
                )
                .await?
            }
            None => {
                let place = Placement {
                    consultation: &consultation,
                    cso: cso.as_ref(),
                    other_sender: r.other_sender,
                    late: r.late,
                    draft: r.draft,
                };
                self.propose(id, parsed, trimmed, place, batch).await?
            }
        };
        Ok(decision)
    }

    /// The POC's decision from the holding pen: this stored message is a
    /// proposal of `cso_id` in `consultation_id`. It gets its receipt.
    pub async fn assign(
        &self,
        id: i64,
        consultation_id: i64,
        cso_id: i64,
    ) -> Result<Outcome, IntakeError> {
        let (_, raw) = self
            .app
            .store
            .inbound_raw(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
        let parsed = match parse(&raw) {
            Ok(p) => p,
            Err(e) => return self.record(hold(id, e.to_string())).await,
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
        let today = Utc::now()
            .with_timezone(&self.app.config.office.time_zone)
            .date_naive();
        let cso = self.app.store.cso(cso_id).await?;
        let place = Placement {
            consultation: &consultation,
            cso: cso.as_ref(),
            other_sender: cso
                .as_ref()
                .is_some_and(|c| !c.record.emails.contains(&parsed.from)),
            late: consultation.spec.closes_on < today,
            draft: None,
        };
        let trimmed = trim(&parsed.body);
        if trimmed.reply_text.trim().is_empty()
            && !parsed.attachments.iter().any(|a| a.is_document())
        {
            return self
                .record(hold(
                    id,
                    "the message is empty apart from quoted text".into(),
                ))
                .await;
        }
        let decision = self
            .propose(id, &parsed, trimmed, place, &mut batch)
            .await?;
        self.record(decision).await
    }

    /// Writes one decision on its own.
    async fn record(&self, mut decision: Decision) -> Result<Outcome, IntakeError> {
        if let Some(a) = decision.acknowledgement.take() {
            let m = self.finish(a)?;
            decision.attach(m);
        }
        let applied = self.app.store.apply_intake(&decision.writes).await?;
        Ok(decision.settle(applied))
    }

    /// Whether the loop guard lets one more acknowledgement go to `address`
    /// this hour; counts it if so.
    fn may_acknowledge(&self, address: &str, batch: &mut Batch) -> bool {
        let recent = batch
            .known
            .acknowledgements
            .entry(address.to_string())
            .or_default();
        if *recent >= u64::from(self.app.config.mail.receipts_per_address_per_hour) {
            tracing::warn!(
                address,
                recent = *recent,
                "acknowledgement held back: too many to this address this hour"
            );
            return false;
        }
        *recent += 1;
        true
    }

    async fn propose(
        &self,
        id: i64,
        parsed: &Parsed,
        trimmed: Trimmed,
        place: Placement<'_>,
        batch: &mut Batch,
    ) -> Result<Decision, IntakeError> {
        let receipt_no = ReceiptNo::generate();
        let from = parsed.from.to_string();
        let receipt = self.may_acknowledge(&from, batch).then(|| {
            let mut a = self.acknowledgement(
                "receipt",
                parsed,
                place.consultation,
                place.cso,
                &receipt_no,
                &trimmed.reply_text,
            );
            a.draft = place.draft;
            a
        });
        batch
            .known
            .texts
            .insert((from.clone(), trimmed.reply_text.clone()));
        let outcome = Outcome::Proposal {
            id,
            receipt_no: receipt_no.to_string(),
            receipt: receipt.is_some(),
        };
        let proposal = NewProposal {
            receipt_no: receipt_no.to_string(),
            consultation_id: place.consultation.id,
            cso_id: place.cso.map(|c| c.id),
            inbound_message_id: id,
            from_address: from,
            other_sender: place.other_sender,
            late: place.late,
            draft_number: place.draft.map(i64::from),
            subject: parsed.subject.clone(),
            reply_text: trimmed.reply_text,
            quoted_text: trimmed.quoted_text,
            signature: trimmed.signature,
            attachments_json: serde_json::to_string(&parsed.attachments).unwrap_or_default(),
            authentication_json: serde_json::to_string(&authentication_of(parsed))
                .unwrap_or_default(),
        };
        Ok(Decision {
            outcome,
            writes: vec![IntakeWrite::Proposal {
                proposal,
                receipt: None,
            }],
            acknowledgement: receipt,
        })
    }

    /// A reply to a receipt: added to that proposal, with a short
    /// confirmation (counted against the same hourly cap as receipts).
    #[allow(clippy::too_many_arguments)]
    async fn follow_up(
        &self,
        id: i64,
        parsed: &Parsed,
        trimmed: Trimmed,
        consultation: &Consultation,
        cso: Option<&Cso>,
        receipt_no: &str,
        batch: &mut Batch,
    ) -> Result<Decision, IntakeError> {
        let Some((proposal_id, _, _)) = self.app.store.proposal_by_receipt(receipt_no).await?
        else {
            return Ok(hold(
                id,
                format!("a reply to receipt {receipt_no}, which no proposal has"),
            ));
        };
        let from = parsed.from.to_string();
        let confirmation = if self.may_acknowledge(&from, batch) {
            let receipt =
                ReceiptNo::parse(receipt_no).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut a = self.acknowledgement(
                "follow_up",
                parsed,
                consultation,
                cso,
                &receipt,
                &trimmed.reply_text,
            );
            a.message.idempotency_key = format!("follow_up:{id}");
            Some(a)
        } else {
            None
        };
        batch
            .known
            .texts
            .insert((from.clone(), trimmed.reply_text.clone()));
        let outcome = Outcome::FollowUp {
            id,
            receipt_no: receipt_no.to_string(),
            confirmation: confirmation.is_some(),
        };
        let follow_up = NewFollowUp {
            proposal_id,
            receipt_no: receipt_no.to_string(),
            inbound_message_id: id,
            from_address: from,
            reply_text: trimmed.reply_text,
            quoted_text: trimmed.quoted_text,
            signature: trimmed.signature,
            attachments_json: serde_json::to_string(&parsed.attachments).unwrap_or_default(),
        };
        Ok(Decision {
            outcome,
            writes: vec![IntakeWrite::FollowUp {
                follow_up,
                confirmation: None,
            }],
            acknowledgement: confirmation,
        })
    }

    /// The acknowledgement: in the CSO's language, to the address that
    /// wrote, as an auto-reply (RFC 3834: Auto-Submitted: auto-replied, the
    /// null envelope sender, In-Reply-To their message). Decided here,
    /// rendered by [`Self::finish`].
    fn acknowledgement(
        &self,
        template: &'static str,
        parsed: &Parsed,
        consultation: &Consultation,
        cso: Option<&Cso>,
        receipt_no: &ReceiptNo,
        reply_text: &str,
    ) -> Acknowledgement {
        let consultation_id = consultation.id;
        let cso_id = cso.map(|c| c.id);
        let lang = cso.map_or(Language::Sq, |c| c.record.language);
        let name = cso.map_or_else(
            || {
                parsed
                    .from_name
                    .clone()
                    .unwrap_or_else(|| parsed.from.to_string())
            },
            |c| c.record.name.clone(),
        );
        let key = ReplyKey::generate();
        Acknowledgement {
            template,
            lang,
            name,
            in_reply_to: parsed.message_id.clone(),
            consultation: consultation.clone(),
            receipt_no: receipt_no.clone(),
            received_text: reply_text.to_string(),
            attachments: parsed
                .attachments
                .iter()
                .filter(|a| a.is_document())
                .map(|a| (a.name.clone(), a.size, a.note))
                .collect(),
            message: NewMessage {
                idempotency_key: format!("receipt:{receipt_no}"),
                kind: "receipt",
                recipient: parsed.from.clone(),
                envelope_from: String::new(),
                consultation_id: Some(consultation_id),
                cso_id,
                message: Vec::new(),
                reply_key: cso_id.map(|cso_id| ReplyKeyRecord {
                    key: key.clone(),
                    consultation_id,
                    cso_id,
                    address: parsed.from.clone(),
                    purpose: "receipt",
                    receipt_no: Some(receipt_no.to_string()),
                }),
            },
            key,
            draft: None,
        }
    }

    fn sender(&self) -> Sender<'_> {
        self.app.sender()
    }

    /// Renders and builds an acknowledgement: the costliest step of intake,
    /// and one that needs nothing from the store.
    fn finish(&self, a: Acknowledgement) -> Result<NewMessage, IntakeError> {
        let sender = self.sender();
        let mut context = sender.base_context(&a.consultation.spec, a.lang, &a.name, &a.key);
        let today = Utc::now()
            .with_timezone(&self.app.config.office.time_zone)
            .date_naive();
        context["receipt_no"] = json!(a.receipt_no.as_str());
        context["late"] = json!(a.consultation.spec.closes_on < today);
        context["received_text"] = json!(a.received_text);
        context["draft"] = a
            .draft
            .and_then(|n| a.consultation.spec.drafts.iter().find(|d| d.number == n))
            .map_or(
                serde_json::Value::Null,
                |d| json!({ "number": d.number, "title": d.title }),
            );
        context["attachments"] = json!(
            a.attachments
                .iter()
                .map(|(name, size, note)| json!({
                    "name": name,
                    "size": human_size(*size),
                    "too_large": *note == Some(AttachmentNote::TooLarge),
                    "winmail": *note == Some(AttachmentNote::Winmail),
                }))
                .collect::<Vec<_>>()
        );
        let rendered = self.app.templates.render(a.template, a.lang, &context)?;
        let from = sender.from();
        let mut message = a.message;
        let reply_to = sender.reply_address(&a.key);
        let message_id = format!(
            "{}.{}@{}",
            a.key,
            ReplyKey::generate(),
            self.app.config.mail.domain
        );
        message.message = message::build(
            &Outgoing {
                from_name: sender.office_name(a.lang),
                from: &from,
                to_name: &a.name,
                to: &message.recipient,
                reply_to: Some(&reply_to),
                message_id: &message_id,
                in_reply_to: a.in_reply_to.as_deref(),
                auto_submitted: "auto-replied",
                rendered: &rendered,
                list: None,
                attachments: &[],
            },
            self.app.dkim.as_deref(),
        )?;
        Ok(message)
    }

    /// Renders the batch's acknowledgements, spread over the machine's cores.
    fn finish_all(&self, decided: &mut [Result<Decision, IntakeError>]) {
        on_every_core(decided, |d| {
            let Ok(decision) = d else { return };
            let Some(a) = decision.acknowledgement.take() else {
                return;
            };
            match self.finish(a) {
                Ok(m) => decision.attach(m),
                Err(e) => *d = Err(e),
            }
        });
    }
}

/// An acknowledgement decided but not yet rendered.
struct Acknowledgement {
    template: &'static str,
    lang: Language,
    name: String,
    in_reply_to: Option<String>,
    consultation: Consultation,
    receipt_no: ReceiptNo,
    /// What the sender wrote, copied into the receipt.
    received_text: String,
    /// Name, size and any note of each document they attached.
    attachments: Vec<(String, usize, Option<AttachmentNote>)>,
    /// Everything but the message's bytes.
    message: NewMessage,
    /// In its Reply-To and at the start of its Message-ID.
    key: ReplyKey,
    /// The draft commitment the proposal comments on.
    draft: Option<u32>,
}

/// Where a proposal goes, as routing (or the POC) decided.
struct Placement<'c> {
    consultation: &'c Consultation,
    cso: Option<&'c Cso>,
    other_sender: bool,
    late: bool,
    /// The government draft commitment commented on, by number.
    draft: Option<u32>,
}

/// The holding pen, with the reason, for the POC.
fn hold(id: i64, reason: String) -> Decision {
    Decision::only(
        Outcome::Held {
            id,
            reason: reason.clone(),
        },
        IntakeWrite::Outcome {
            id,
            state: InboundState::Held,
            classification: "unmatched".into(),
            reason,
        },
    )
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_message_through_two_relays_has_one_key() {
        let a = b"Received: from mx1\r\nDelivered-To: consult+x@ogp\r\nFrom: a@cso.al\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nBody\r\n";
        let b = b"Received: from imap\r\n\tby host\r\nReturn-Path: <a@cso.al>\r\nFrom: a@cso.al\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nBody\r\n";
        assert_eq!(dedupe_key(a), dedupe_key(b));
        // Someone reusing the Message-ID with other words is another message.
        let c = b"From: a@cso.al\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nOther body\r\n";
        assert_ne!(dedupe_key(a), dedupe_key(c));
        let d =
            b"From: mallory@evil.example\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nBody\r\n";
        assert_ne!(dedupe_key(a), dedupe_key(d));
    }
}
