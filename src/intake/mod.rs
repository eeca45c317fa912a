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

use chrono::Utc;
use lettre::message::dkim::DkimConfig;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::consultation::Consultation;
use crate::domain::{Language, ReceiptNo, ReplyKey};
use crate::inbound::bounce;
use crate::inbound::classify::{Classification, automated};
use crate::inbound::inspect::authentication_of;
use crate::inbound::parse::{Parsed, hex, parse};
use crate::inbound::route::route;
use crate::inbound::trim::trim;
use crate::outbound::message::{self, MessageError, Outgoing};
use crate::outbound::outbox::{NewMessage, ReplyKeyRecord};
use crate::outbound::outreach::Sender;
use crate::outbound::templates::{TemplateError, Templates};
use crate::registry::Cso;
use crate::store::{Store, StoreError};
use types::{InboundState, NewFollowUp, NewInbound, NewProposal};

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(#[from] StoreError),
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

pub struct Intake<'a> {
    pub store: &'a dyn Store,
    pub config: &'a Config,
    pub templates: &'a Templates,
    pub dkim: Option<&'a DkimConfig>,
}

impl Intake<'_> {
    /// Stores `raw` and processes it. Once this returns Ok the message is
    /// safe in the store, whatever processing made of it.
    pub async fn accept(&self, raw: &[u8], source: &str) -> Result<Outcome, IntakeError> {
        let parsed = parse(raw).ok();
        let (id, new) = self
            .store
            .store_inbound(&NewInbound {
                dedupe_key: dedupe_key(raw),
                source,
                raw,
                message_id: parsed.as_ref().and_then(|p| p.message_id.clone()),
                from_address: parsed.as_ref().map(|p| p.from.to_string()),
                subject: parsed.as_ref().map(|p| p.subject.clone()),
            })
            .await?;
        if !new {
            // Stored before but never processed (the process taking it in
            // was killed in between): finish the job now.
            let unfinished = self
                .store
                .inbound_raw(id)
                .await?
                .is_some_and(|(m, _)| m.state == InboundState::Received.as_str());
            if !unfinished {
                return Ok(Outcome::Duplicate { id });
            }
        }
        match parsed {
            Some(p) => self.process_parsed(id, p).await,
            None => self.process(id, raw).await,
        }
    }

    /// Processes messages stored but not processed, e.g. after a crash.
    pub async fn process_pending(&self) -> Result<usize, IntakeError> {
        let pending = self.store.unprocessed_inbound().await?;
        let n = pending.len();
        for (id, raw) in pending {
            self.process(id, &raw).await?;
        }
        Ok(n)
    }

    /// Classifies, routes and records one stored message. A message that
    /// already has a proposal keeps it, unchanged.
    pub async fn process(&self, id: i64, raw: &[u8]) -> Result<Outcome, IntakeError> {
        if let Some(receipt_no) = self.store.receipt_for_message(id).await? {
            return Ok(Outcome::Proposal {
                id,
                receipt_no,
                receipt: false,
            });
        }
        let parsed = match parse(raw) {
            Ok(p) => p,
            Err(e) => return self.hold(id, format!("{e}")).await,
        };
        self.process_parsed(id, parsed).await
    }

    async fn process_parsed(&self, id: i64, parsed: Parsed) -> Result<Outcome, IntakeError> {
        if let Some((classification, why)) = automated(&parsed, &self.config.mail) {
            if classification == Classification::Bounce {
                for f in bounce::failures(&parsed.raw, &parsed, &self.config.mail.domain) {
                    let reason = format!("delivery report: status {}", f.status);
                    self.store
                        .record_bounce(&f.address, f.hard, &reason)
                        .await?;
                    tracing::info!(address = %f.address, hard = f.hard, status = %f.status, "bounce recorded");
                }
            }
            let c = serde_json::to_value(classification)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.store
                .set_inbound_outcome(id, InboundState::Processed, &c, &why)
                .await?;
            return Ok(Outcome::Ignored {
                id,
                classification: c,
            });
        }
        let r = route(self.store, self.config, &parsed).await?;
        let (Some((consultation, cso)), true) = (r.found, r.method.is_some()) else {
            return self.hold(id, r.reason).await;
        };
        // A responder that ignores every auto-reply convention still gives
        // itself away by sending the same words each time: the second
        // identical message waits for the POC instead of being answered.
        let text = trim(&parsed.body).reply_text;
        let week_ago = Utc::now() - chrono::Duration::days(7);
        if !text.trim().is_empty()
            && self
                .store
                .sent_same_text(parsed.from.as_str(), &text, week_ago)
                .await?
        {
            return self
                .hold(
                    id,
                    format!(
                        "{} sent these exact words before; an automatic reply?",
                        parsed.from
                    ),
                )
                .await;
        }
        if let Some(receipt_no) = r.follow_up_of {
            return self
                .follow_up(id, &parsed, &consultation, cso.as_ref(), &receipt_no)
                .await;
        }
        self.propose(
            id,
            &parsed,
            &consultation,
            cso.as_ref(),
            r.other_sender,
            r.late,
        )
        .await
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
            .store
            .inbound_raw(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
        let parsed = match parse(&raw) {
            Ok(p) => p,
            Err(e) => return self.hold(id, format!("{e}")).await,
        };
        let consultations = self.store.consultations().await?;
        let consultation = consultations
            .iter()
            .find(|c| c.id == consultation_id)
            .ok_or_else(|| StoreError::NotFound(format!("consultation {consultation_id}")))?;
        let today = Utc::now()
            .with_timezone(&self.config.office.time_zone)
            .date_naive();
        let late = consultation.spec.closes_on < today;
        let cso = self.store.cso(cso_id).await?;
        let other_sender = cso
            .as_ref()
            .is_some_and(|c| !c.record.emails.contains(&parsed.from));
        self.propose(id, &parsed, consultation, cso.as_ref(), other_sender, late)
            .await
    }

    async fn propose(
        &self,
        id: i64,
        parsed: &Parsed,
        consultation: &Consultation,
        cso: Option<&Cso>,
        other_sender: bool,
        late: bool,
    ) -> Result<Outcome, IntakeError> {
        let consultation_id = consultation.id;
        let cso_id = cso.map(|c| c.id);
        let trimmed = trim(&parsed.body);
        if trimmed.reply_text.trim().is_empty() && parsed.attachments.is_empty() {
            return self
                .hold(id, "the message is empty apart from quoted text".into())
                .await;
        }

        let receipt_no = ReceiptNo::generate();
        let since = Utc::now() - chrono::Duration::hours(1);
        let recent = self
            .store
            .receipts_since(parsed.from.as_str(), since)
            .await?;
        let receipt = if recent >= u64::from(self.config.mail.receipts_per_address_per_hour) {
            tracing::warn!(address = %parsed.from, recent, "receipt held back: too many to this address this hour");
            None
        } else {
            Some(
                self.acknowledgement(
                    "receipt",
                    parsed,
                    consultation,
                    cso,
                    &receipt_no,
                    &trimmed.reply_text,
                )
                .await?,
            )
        };
        let (receipt_no, _) = self
            .store
            .record_proposal(
                &NewProposal {
                    receipt_no: receipt_no.to_string(),
                    consultation_id,
                    cso_id,
                    inbound_message_id: id,
                    from_address: parsed.from.to_string(),
                    other_sender,
                    late,
                    subject: parsed.subject.clone(),
                    reply_text: trimmed.reply_text,
                    quoted_text: trimmed.quoted_text,
                    signature: trimmed.signature,
                    attachments_json: serde_json::to_string(&parsed.attachments)
                        .unwrap_or_default(),
                    authentication_json: serde_json::to_string(&authentication_of(parsed))
                        .unwrap_or_default(),
                },
                receipt.as_ref(),
            )
            .await?;
        Ok(Outcome::Proposal {
            id,
            receipt_no,
            receipt: receipt.is_some(),
        })
    }

    /// A reply to a receipt: added to that proposal, with a short
    /// confirmation (counted against the same hourly cap as receipts).
    async fn follow_up(
        &self,
        id: i64,
        parsed: &Parsed,
        consultation: &Consultation,
        cso: Option<&Cso>,
        receipt_no: &str,
    ) -> Result<Outcome, IntakeError> {
        let Some((proposal_id, _, _)) = self.store.proposal_by_receipt(receipt_no).await? else {
            return self
                .hold(
                    id,
                    format!("a reply to receipt {receipt_no}, which no proposal has"),
                )
                .await;
        };
        let trimmed = trim(&parsed.body);
        if trimmed.reply_text.trim().is_empty() && parsed.attachments.is_empty() {
            return self
                .hold(id, "the message is empty apart from quoted text".into())
                .await;
        }
        let since = Utc::now() - chrono::Duration::hours(1);
        let recent = self
            .store
            .receipts_since(parsed.from.as_str(), since)
            .await?;
        let confirmation = if recent >= u64::from(self.config.mail.receipts_per_address_per_hour) {
            None
        } else {
            let receipt =
                ReceiptNo::parse(receipt_no).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut m = self
                .acknowledgement(
                    "follow_up",
                    parsed,
                    consultation,
                    cso,
                    &receipt,
                    &trimmed.reply_text,
                )
                .await?;
            m.idempotency_key = format!("follow_up:{id}");
            Some(m)
        };
        self.store
            .record_follow_up(
                &NewFollowUp {
                    proposal_id,
                    receipt_no: receipt_no.to_string(),
                    inbound_message_id: id,
                    from_address: parsed.from.to_string(),
                    reply_text: trimmed.reply_text,
                    quoted_text: trimmed.quoted_text,
                    signature: trimmed.signature,
                    attachments_json: serde_json::to_string(&parsed.attachments)
                        .unwrap_or_default(),
                },
                confirmation.as_ref(),
            )
            .await?;
        Ok(Outcome::FollowUp {
            id,
            receipt_no: receipt_no.to_string(),
            confirmation: confirmation.is_some(),
        })
    }

    async fn hold(&self, id: i64, reason: String) -> Result<Outcome, IntakeError> {
        self.store
            .set_inbound_outcome(id, InboundState::Held, "unmatched", &reason)
            .await?;
        Ok(Outcome::Held { id, reason })
    }

    /// The acknowledgement: in the CSO's language, to the address that
    /// wrote, as an auto-reply (RFC 3834: Auto-Submitted: auto-replied, the
    /// null envelope sender, In-Reply-To their message).
    async fn acknowledgement(
        &self,
        template: &str,
        parsed: &Parsed,
        consultation: &Consultation,
        cso: Option<&Cso>,
        receipt_no: &ReceiptNo,
        reply_text: &str,
    ) -> Result<NewMessage, IntakeError> {
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
        let sender = Sender {
            config: self.config,
            templates: self.templates,
            dkim: self.dkim,
        };
        let key = ReplyKey::generate();
        let mut context = sender.base_context(&consultation.spec, lang, &name, &key);
        let today = Utc::now()
            .with_timezone(&self.config.office.time_zone)
            .date_naive();
        context["receipt_no"] = json!(receipt_no.as_str());
        context["late"] = json!(consultation.spec.closes_on < today);
        context["received_text"] = json!(reply_text);
        context["attachments"] = json!(
            parsed
                .attachments
                .iter()
                .map(|a| json!({ "name": a.name, "size": human_size(a.size) }))
                .collect::<Vec<_>>()
        );
        let rendered = self.templates.render(template, lang, &context)?;
        let from = sender.from();
        let reply_to = sender.reply_address(&key);
        let message_id = format!("{key}.{}@{}", ReplyKey::generate(), self.config.mail.domain);
        let bytes = message::build(
            &Outgoing {
                from_name: sender.office_name(lang),
                from: &from,
                to_name: &name,
                to: &parsed.from,
                reply_to: Some(&reply_to),
                message_id: &message_id,
                in_reply_to: parsed.message_id.as_deref(),
                auto_submitted: "auto-replied",
                rendered: &rendered,
                list: None,
                attachments: &[],
            },
            self.dkim,
        )?;
        Ok(NewMessage {
            idempotency_key: format!("receipt:{receipt_no}"),
            kind: "receipt",
            recipient: parsed.from.clone(),
            envelope_from: String::new(),
            consultation_id: Some(consultation_id),
            cso_id,
            message: bytes,
            reply_key: cso_id.map(|cso_id| ReplyKeyRecord {
                key,
                consultation_id,
                cso_id,
                address: parsed.from.clone(),
                purpose: "receipt",
                receipt_no: Some(receipt_no.to_string()),
            }),
        })
    }
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
