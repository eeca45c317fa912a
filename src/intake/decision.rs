//! What processing a message decides before anything is written, what a
//! batch looks up once for all its messages, and reading a message (parse,
//! attachments, trim) on every core.

use super::acknowledge::Acknowledgement;
use super::types::{Applied, InboundState, IntakeLookups, IntakeWrite};
use super::*;
use crate::config::{Config, InboundConfig};
use crate::consultation::Consultation;
use crate::domain::Bilingual;
use crate::inbound::attachments;
use crate::inbound::parse::{ParseError, Parsed, parse_within};
use crate::inbound::route::keys_of;
use crate::inbound::trim::{Trimmed, trim};
use crate::outbound::outbox::NewMessage;
use crate::store::{Store, StoreError};

/// What processing one message decided, before anything is written.
pub(super) struct Decision {
    pub(super) outcome: Outcome,
    pub(super) writes: Vec<IntakeWrite>,
    /// To render before the writes are applied; they become the receipt or
    /// the confirmations of the last write.
    pub(super) acknowledgements: Vec<Acknowledgement>,
}

impl Decision {
    pub(super) fn only(outcome: Outcome, write: IntakeWrite) -> Self {
        Self {
            outcome,
            writes: vec![write],
            acknowledgements: Vec::new(),
        }
    }

    /// The outcome as written: a message that already had a proposal keeps
    /// its receipt number, and nothing new was queued for it.
    pub(super) fn settle(self, applied: Vec<Applied>) -> Outcome {
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

    pub(super) fn attach(&mut self, message: NewMessage) {
        match self.writes.last_mut() {
            Some(IntakeWrite::Proposal { receipts, .. }) => receipts.push(message),
            Some(IntakeWrite::FollowUp { confirmations, .. }) => confirmations.push(message),
            _ => {}
        }
    }
}

/// What the messages of one batch share, looked up once for all of them:
/// the consultations, the reply keys they carry and their CSOs, and what
/// the loop guard needs about their senders. What the batch itself decides
/// is added as it goes (an acknowledgement queued, a text sent), so the
/// loop guard counts it as if it were already in the store.
pub(super) struct Batch {
    pub(super) consultations: Vec<Consultation>,
    pub(super) known: IntakeLookups,
}

impl Batch {
    pub(super) async fn load<'p>(
        store: &dyn Store,
        config: &Config,
        messages: impl Iterator<Item = &'p Parsed<'p>>,
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
        let now = store.clock().now();
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
pub(super) struct Reading<'a> {
    pub(super) parsed: Parsed<'a>,
    pub(super) trimmed: Trimmed,
}

/// Parses, sets the attachments' bytes aside to be kept apart, and trims:
/// work without the store, done for a batch on every core.
pub(super) fn read<'a>(
    raw: &'a [u8],
    config: &InboundConfig,
) -> Result<(Reading<'a>, AttachmentFiles), ParseError> {
    let mut parsed = parse_within(raw, &config.parse_limits())?;
    let files = attachments::take(
        &config.attachments_dir,
        &mut parsed.attachments,
        config.max_attachment_bytes,
    );
    let trimmed = trim(&parsed.body);
    Ok((Reading { parsed, trimmed }, files))
}

/// Attachment files to write: (path, bytes).
pub(super) type AttachmentFiles = Vec<(std::path::PathBuf, Vec<u8>)>;

/// Reads a message and writes its attachments at once (one message, or a
/// batch read again from the store).
pub(super) fn read_now<'a>(
    raw: &'a [u8],
    config: &InboundConfig,
) -> Result<Reading<'a>, ParseError> {
    read(raw, config).map(|(reading, files)| {
        attachments::write_all(files);
        reading
    })
}

/// A stored message's id and what reading it made of it.
pub(super) type Stored<'a> = (i64, Result<Reading<'a>, ParseError>);

/// Runs `f` on each item, spread over the machine's cores; for the pure,
/// CPU-heavy steps of a batch (parsing, trimming, rendering). Small
/// batches stay on the calling thread.
pub(super) fn on_every_core<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 16 {
        items.iter_mut().for_each(f);
        return;
    }
    let per_thread = items.len().div_ceil(threads);
    crate::blocking::run(|| {
        std::thread::scope(|scope| {
            for chunk in items.chunks_mut(per_thread) {
                let f = &f;
                scope.spawn(move || chunk.iter_mut().for_each(f));
            }
        })
    });
}

/// The holding pen, with the reason, for the POC.
pub(super) fn hold(id: i64, reason: Bilingual<String>) -> Decision {
    Decision::only(
        Outcome::Held {
            id,
            reason: reason.en.clone(),
        },
        IntakeWrite::Outcome {
            id,
            state: InboundState::Held,
            classification: "unmatched".into(),
            reason,
        },
    )
}
