//! Receipts and confirmations: whether one may go (the loop guard's cap per
//! address and hour), what it says, and rendering it.

use super::decision::{Batch, Decision};
use super::*;
use crate::consultation::Consultation;
use crate::domain::{EmailAddress, EmailFor, EmailKind, Language, ReceiptNo, ReplyKey};
use crate::inbound::parse::{AttachmentNote, Parsed};
use crate::outbound::email;
use crate::outbound::message::{self, Outgoing};
use crate::outbound::outbox::{NewMessage, ReplyKeyRecord};
use crate::outbound::outreach::Sender;
use crate::registry::Cso;

/// An acknowledgement decided but not yet rendered.
pub(super) struct Acknowledgement {
    pub(super) kind: EmailKind,
    pub(super) lang: Language,
    pub(super) name: String,
    pub(super) in_reply_to: Option<String>,
    pub(super) consultation: Consultation,
    pub(super) receipt_no: ReceiptNo,
    /// What the sender wrote, copied into the receipt.
    pub(super) received_text: String,
    /// Name, size and any note of each document they attached.
    pub(super) attachments: Vec<(String, usize, Option<AttachmentNote>)>,
    /// Everything but the message's bytes.
    pub(super) message: NewMessage,
    /// In its Reply-To and at the start of its Message-ID.
    pub(super) key: ReplyKey,
    /// The draft commitment the proposal comments on.
    pub(super) draft: Option<u32>,
    /// Who wrote, when this is a copy to someone else (the CSO).
    pub(super) sent_by: Option<String>,
    /// In that copy: where the CSO says it did not send the proposal.
    pub(super) disown_url: Option<String>,
}

/// Where a proposal goes, as routing (or the POC) decided.
pub(super) struct Placement<'c> {
    pub(super) consultation: &'c Consultation,
    pub(super) cso: Option<&'c Cso>,
    pub(super) other_sender: bool,
    pub(super) late: bool,
    /// The government draft commitment commented on, by number.
    pub(super) draft: Option<u32>,
    /// Why the proposal needs a second look, if it does.
    pub(super) sender_flag: Option<String>,
    /// The sender asked (on the form) that the text not be published.
    pub(super) no_publish: bool,
    /// A sender outside the registry, by the name the POC gave.
    pub(super) sender_name: Option<String>,
}

/// English when the message's Content-Language says so (`en`, `en-GB`),
/// else Albanian.
fn content_language(parsed: &Parsed<'_>) -> Language {
    let english = parsed.header("content-language").is_some_and(|v| {
        v.split(',')
            .next()
            .map(str::trim)
            .and_then(|tag| tag.split('-').next())
            .is_some_and(|primary| primary.eq_ignore_ascii_case("en"))
    });
    if english { Language::En } else { Language::Sq }
}

pub(super) fn human_size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

impl Acknowledgement {
    /// Sends it to `to` instead of the message's sender (a confirmation
    /// that goes to the proposal's sender): its reply key is issued to `to`.
    pub(super) fn readdress(&mut self, to: EmailAddress) {
        if let Some(key) = self.message.reply_key.as_mut() {
            key.address = to.clone();
        }
        self.message.recipient = to;
    }
}

impl Intake<'_> {
    /// Whether the loop guard lets one more acknowledgement go to `address`
    /// this hour; counts it if so.
    pub(super) fn may_acknowledge(&self, address: &str, batch: &mut Batch) -> bool {
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

    /// The acknowledgement: in the CSO's language, to the address that
    /// wrote, as an auto-reply (RFC 3834: Auto-Submitted: auto-replied, the
    /// null envelope sender, In-Reply-To their message). Decided here,
    /// rendered by [`Self::finish`].
    pub(super) fn acknowledgement(
        &self,
        email: EmailFor<'_>,
        parsed: &Parsed<'_>,
        consultation: &Consultation,
        cso: Option<&Cso>,
        receipt_no: &ReceiptNo,
        reply_text: &str,
    ) -> Acknowledgement {
        let consultation_id = consultation.id;
        let cso_id = cso.map(|c| c.id);
        // The CSO's language; for a sender not in the registry, the one
        // their message says it is in (Outlook and the web form say).
        let lang = cso.map_or_else(|| content_language(parsed), |c| c.record.language);
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
            kind: email.kind(),
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
                idempotency_key: email.idempotency_key(),
                kind: email.kind(),
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
            sent_by: None,
            disown_url: None,
        }
    }

    pub(super) fn sender(&self) -> Sender<'_> {
        self.app.sender()
    }

    /// Renders and builds an acknowledgement: the costliest step of intake,
    /// and one that needs nothing from the store.
    pub(super) fn finish(&self, a: Acknowledgement) -> Result<NewMessage, IntakeError> {
        let sender = self.sender();
        let today = self.app.today();
        let spec = &a.consultation.spec;
        let acknowledgement = email::Acknowledgement {
            mail: sender.base_context(spec, a.lang, &a.name, &a.key),
            receipt_no: a.receipt_no.as_str(),
            late: a.consultation.late_on(today),
            received_text: &a.received_text,
            sent_by: a.sent_by.as_deref(),
            disown_url: a.disown_url.as_deref(),
            draft: a
                .draft
                .and_then(|n| spec.drafts.iter().find(|d| d.number == n))
                .map(|d| email::DraftRef {
                    number: d.number,
                    title: d.title.get(a.lang),
                }),
            attachments: a
                .attachments
                .iter()
                .map(|(name, size, note)| email::AttachmentLine {
                    name: name.clone(),
                    size: human_size(*size),
                    too_large: *note == Some(AttachmentNote::TooLarge),
                    winmail: *note == Some(AttachmentNote::Winmail),
                })
                .collect(),
        };
        let context = match a.kind {
            EmailKind::FollowUp => email::Context::FollowUp(acknowledgement),
            _ => email::Context::Receipt(acknowledgement),
        };
        let rendered = self.app.templates.render(a.lang, &context)?;
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
    pub(super) fn finish_all(&self, decided: &mut [Result<Decision, IntakeError>]) {
        on_every_core(decided, |d| {
            let Ok(decision) = d else { return };
            for a in std::mem::take(&mut decision.acknowledgements) {
                match self.finish(a) {
                    Ok(m) => decision.attach(m),
                    Err(e) => {
                        *d = Err(e);
                        return;
                    }
                }
            }
        });
    }
}
