//! Deciding what one message is: machine mail (with delivery reports),
//! a proposal, a follow-up on one, or a wait in the holding pen.

use super::acknowledge::Placement;
use super::decision::{Batch, Decision, Reading, hold};
use super::types::{InboundState, IntakeWrite, NewFollowUp, NewProposal};
use super::*;
use crate::consultation::Consultation;
use crate::domain::{Bilingual, ReceiptNo};

/// Why a message with nothing but quoted text waits for the POC.
pub(super) const EMPTY_APART_FROM_QUOTES: (&str, &str) = (
    "mesazhi është bosh përveç tekstit të cituar",
    "the message is empty apart from quoted text",
);

/// A reason in Albanian and English.
fn both(sq: String, en: String) -> Bilingual<String> {
    Bilingual::new(sq, en)
}
use crate::domain::{EmailAddress, EmailFor};
use crate::inbound::authenticity::Authentication;
use crate::inbound::bounce;
use crate::inbound::classify::{Classification, automated};
use crate::inbound::parse::Parsed;
use crate::inbound::route::{RouteMethod, answers_lfp_mail, route_among, web_visitor};
use crate::inbound::trim::Trimmed;
use crate::outbound::lfp;
use crate::outbound::verp::BounceAddresses;
use crate::registry::Cso;
use crate::store::StoreError;
use crate::web::mark::WebMark;

impl Intake<'_> {
    /// The authentication results that count for `parsed`.
    fn authentication(&self, parsed: &Parsed<'_>) -> Authentication {
        Authentication::of(
            parsed,
            self.app.config.inbound.trusted_authserv_id.as_deref(),
        )
    }

    /// What a delivery report marks. One to a bounce address of ours marks
    /// the recipient of the message it names, when the address's signature
    /// holds for that recipient; any other is believed only for an address
    /// a quoted key of ours was sent to.
    async fn bounce_writes(&self, parsed: &Parsed<'_>) -> Result<Vec<IntakeWrite>, IntakeError> {
        let failures = bounce::failures(parsed);
        let key = self.app.signing_key().await?.clone();
        if let Some(bounces) = BounceAddresses::new(&self.app.config.mail, key)
            && parsed
                .recipients
                .iter()
                .any(|r| BounceAddresses::is_bounce_address(&self.app.config.mail, r))
        {
            let token = bounces.token_in(&parsed.recipients);
            let recipient = match &token {
                Some(t) => self.app.store.outbox_recipient(t.message_id).await?,
                None => None,
            };
            let (Some(token), Some(recipient)) = (token, recipient) else {
                tracing::warn!(
                    "delivery report to a bounce address naming no message of ours; nothing marked"
                );
                return Ok(Vec::new());
            };
            if !bounces.verify(&token, &recipient) {
                tracing::warn!(
                    message = token.message_id,
                    "delivery report to a bounce address cocreate did not sign; nothing marked"
                );
                return Ok(Vec::new());
            }
            // The address is the message's own recipient, whatever the
            // report calls it (a forwarding address, say); the report
            // says only whether the failure is final.
            let hard = failures.is_empty() || failures.iter().any(|f| f.hard);
            let status = failures
                .iter()
                .find(|f| f.hard == hard)
                .map_or("not given", |f| f.status.as_str());
            tracing::info!(address = %recipient, hard, status, message = token.message_id, "bounce recorded");
            return Ok(vec![IntakeWrite::Bounce {
                address: recipient.to_ascii_lowercase(),
                hard,
                reason: format!(
                    "delivery report for message {} (status {status})",
                    token.message_id
                ),
            }]);
        }
        let keys = bounce::quoted_keys(parsed.raw, &self.app.config.mail);
        let now = self.app.now();
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
        let mut writes = Vec::new();
        for f in failures {
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
        Ok(writes)
    }

    /// The note to an LFP contact who answered cocreate's mail to their
    /// LFP: not a proposal, and where to write. Only to a contact the
    /// config names, when the message passed authentication and the loop
    /// guard allows one more answer to that address this hour.
    fn not_a_proposal(
        &self,
        id: i64,
        parsed: &Parsed<'_>,
        batch: &mut Batch,
    ) -> Result<Option<IntakeWrite>, IntakeError> {
        if self.authentication(parsed).failed()
            || !self.may_acknowledge(parsed.from.as_str(), batch)
        {
            return Ok(None);
        }
        let answer = lfp::Answer {
            inbound_message_id: id,
            from: &parsed.from,
            subject: &parsed.subject,
            message_id: parsed.message_id.as_deref(),
            received: self.app.now(),
        };
        Ok(lfp::not_a_proposal(self.app, &answer)?.map(IntakeWrite::Notice))
    }

    /// What one parsed, stored message is and what to write for it.
    pub(super) async fn decide(
        &self,
        id: i64,
        reading: Reading<'_>,
        batch: &mut Batch,
    ) -> Result<Decision, IntakeError> {
        let Reading {
            parsed,
            mut trimmed,
        } = reading;
        let parsed = &parsed;
        let web = if WebMark::claimed(parsed) {
            WebMark::of(parsed, self.app.signing_key().await?)
        } else {
            None
        };
        if web.is_some() {
            // Typed into the form: nothing in it is quoted mail.
            trimmed = Trimmed {
                reply_text: parsed.body.trim_end().to_string(),
                quoted_text: String::new(),
                signature: String::new(),
            };
        }
        // A message with our form's mark was typed by a person into our
        // page (its Message-ID is ours, which would read as our own mail).
        if let Some((classification, why)) =
            automated(parsed, &self.app.config.mail).filter(|_| web.is_none())
        {
            let mut writes = Vec::new();
            if classification == Classification::Bounce {
                writes = self.bounce_writes(parsed).await?;
            }
            let c = serde_json::to_value(classification)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            writes.push(IntakeWrite::Outcome {
                id,
                state: InboundState::Processed,
                classification: c.clone(),
                // Machine mail is kept, not waiting for anyone: its reason
                // is for the record, in English.
                reason: why.as_str().into(),
            });
            return Ok(Decision {
                outcome: Outcome::Ignored {
                    id,
                    classification: c,
                },
                writes,
                acknowledgements: Vec::new(),
            });
        }
        let mut r = route_among(
            self.app.store.as_ref(),
            &self.app.config,
            &batch.consultations,
            &batch.known,
            parsed,
        )
        .await?;
        if let Some(mark) = web.as_ref().filter(|m| m.visitor && r.method.is_none()) {
            r = web_visitor(
                &self.app.config,
                &batch.consultations,
                &mark.consultation,
                self.app.now(),
            );
        }
        let found = if r.method.is_some() {
            r.found.take()
        } else {
            None
        };
        let Some((consultation, cso)) = found else {
            let mut held = hold(id, r.why());
            if answers_lfp_mail(parsed, &self.app.config) {
                held.writes.extend(self.not_a_proposal(id, parsed, batch)?);
            }
            return Ok(held);
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
                    both(
                        format!(
                            "{from} i ka dërguar të njëjtat fjalë më parë; përgjigje automatike?"
                        ),
                        format!("{from} sent these exact words before; an automatic reply?"),
                    ),
                ));
            }
        }
        if trimmed.reply_text.trim().is_empty()
            && !parsed.attachments.iter().any(|a| a.is_document())
        {
            return Ok(hold(id, EMPTY_APART_FROM_QUOTES.into()));
        }
        let auth = self.authentication(parsed);
        let decision = match r.follow_up_of {
            Some(receipt_no) => {
                self.follow_up(
                    id,
                    parsed,
                    trimmed,
                    &consultation,
                    cso.as_ref(),
                    &receipt_no,
                    &auth,
                    batch,
                )
                .await?
            }
            None => {
                // Without a reply key, only the From address says whose the
                // proposal is, and anyone can write any From.
                let by_address_only = r.method == Some(RouteMethod::SenderConsultation);
                if by_address_only && auth.failed() {
                    return Ok(hold(
                        id,
                        both(
                            format!(
                                "pa çelës përgjigjeje, dhe mesazhi nuk kaloi vërtetimin ({}): mund të mos e ketë shkruar {from}",
                                auth.describe()
                            ),
                            format!(
                                "no reply key, and the message failed authentication ({}): {from} may not have written it",
                                auth.describe()
                            ),
                        ),
                    ));
                }
                let place = Placement {
                    consultation: &consultation,
                    cso: cso.as_ref(),
                    other_sender: r.other_sender,
                    late: r.late,
                    draft: r.draft,
                    sender_flag: if r.method == Some(RouteMethod::WebForm) {
                        Some(
                            "not in the registry: sent through the web form, address confirmed by the emailed link"
                                .into(),
                        )
                    } else {
                        by_address_only.then(|| {
                            format!("routed by the sender's address alone ({})", auth.describe())
                        })
                    },
                    no_publish: web.as_ref().is_some_and(|m| m.no_publish),
                    // A visitor's own word for whom they wrote for; a CSO of
                    // the registry is named by the registry.
                    sender_name: web
                        .as_ref()
                        .filter(|m| m.visitor && cso.is_none())
                        .and_then(|m| m.organisation.clone()),
                };
                self.propose(id, parsed, trimmed, place, batch).await?
            }
        };
        Ok(decision)
    }

    pub(super) async fn propose(
        &self,
        id: i64,
        parsed: &Parsed<'_>,
        trimmed: Trimmed,
        place: Placement<'_>,
        batch: &mut Batch,
    ) -> Result<Decision, IntakeError> {
        let receipt_no = ReceiptNo::generate();
        let from = parsed.from.to_string();
        // Someone other than the CSO wrote through its key or link: the
        // CSO's registered address gets a copy of the receipt, so nobody
        // speaks for an organisation unseen.
        let copy_to = place
            .cso
            .filter(|_| place.other_sender)
            .and_then(|c| c.record.emails.first())
            .filter(|registered| **registered != parsed.from)
            .cloned();
        let mut receipts = Vec::new();
        for to in std::iter::once(None).chain(copy_to.map(Some)) {
            let address = to.as_ref().map_or(from.as_str(), EmailAddress::as_str);
            if !self.may_acknowledge(address, batch) {
                continue;
            }
            let mut a = self.acknowledgement(
                EmailFor::Receipt {
                    receipt_no: &receipt_no,
                    copy_to: to.as_ref().map(EmailAddress::as_str),
                },
                parsed,
                place.consultation,
                place.cso,
                &receipt_no,
                &trimmed.reply_text,
            );
            a.draft = place.draft;
            if let Some(to) = to {
                a.sent_by = Some(from.clone());
                a.disown_url = Some(crate::web::disown::url(
                    &self.app.config.server.public_url,
                    self.app.signing_key().await?,
                    receipt_no.as_str(),
                ));
                a.readdress(to);
            }
            receipts.push(a);
        }
        batch
            .known
            .texts
            .insert((from.clone(), trimmed.reply_text.clone()));
        let outcome = Outcome::Proposal {
            id,
            receipt_no: receipt_no.to_string(),
            receipt: !receipts.is_empty(),
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
            authentication_json: serde_json::to_string(&self.authentication(parsed))
                .unwrap_or_default(),
            sender_flag: place.sender_flag,
            no_publish: place.no_publish,
            sender_name: place.sender_name,
        };
        Ok(Decision {
            outcome,
            writes: vec![IntakeWrite::Proposal {
                proposal,
                receipts: Vec::new(),
            }],
            acknowledgements: receipts,
        })
    }

    /// A reply to a receipt: added to that proposal, with a short
    /// confirmation (counted against the same hourly cap as receipts).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn follow_up(
        &self,
        id: i64,
        parsed: &Parsed<'_>,
        trimmed: Trimmed,
        consultation: &Consultation,
        cso: Option<&Cso>,
        receipt_no: &str,
        auth: &Authentication,
        batch: &mut Batch,
    ) -> Result<Decision, IntakeError> {
        let receipt =
            ReceiptNo::parse(receipt_no).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let Some(proposal) = self.app.store.proposal_by_receipt(&receipt).await? else {
            return Ok(hold(
                id,
                both(
                    format!(
                        "përgjigje ndaj numrit të pritjes {receipt_no}, që s'e ka asnjë propozim"
                    ),
                    format!("a reply to receipt {receipt_no}, which no proposal has"),
                ),
            ));
        };
        let from = parsed.from.to_string();
        // Anyone who knows a receipt number can write it in a subject: an
        // addition from someone who is neither the CSO nor the proposal's
        // sender is held when forged, flagged otherwise, and confirmed to
        // the proposal's sender, never to the stranger.
        let stranger = !from.eq_ignore_ascii_case(&proposal.from_address)
            && !cso.is_some_and(|c| c.record.emails.contains(&parsed.from));
        if stranger && auth.failed() {
            return Ok(hold(
                id,
                both(
                    format!(
                        "shtesë për {receipt_no} nga {from}, që nuk është as OShC-ja as dërguesi i propozimit, dhe mesazhi nuk kaloi vërtetimin ({})",
                        auth.describe()
                    ),
                    format!(
                        "an addition to {receipt_no} from {from}, who is neither the CSO nor the proposal's sender, and the message failed authentication ({})",
                        auth.describe()
                    ),
                ),
            ));
        }
        let sender_flag = stranger.then(|| {
            format!(
                "from {from}, who is neither the CSO nor the proposal's sender ({})",
                auth.describe()
            )
        });
        // A stranger's addition is told to the proposal's sender and to the
        // CSO's registered address; anyone else's to the sender.
        let mut confirm_to: Vec<EmailAddress> = Vec::new();
        if stranger {
            confirm_to.extend(EmailAddress::parse(&proposal.from_address).ok());
            if let Some(registered) = cso.and_then(|c| c.record.emails.first())
                && !confirm_to.contains(registered)
            {
                confirm_to.push(registered.clone());
            }
        } else {
            confirm_to.push(parsed.from.clone());
        }
        let mut confirmations = Vec::new();
        for (i, to) in confirm_to.into_iter().enumerate() {
            if !self.may_acknowledge(to.as_str(), batch) {
                continue;
            }
            let mut a = self.acknowledgement(
                EmailFor::FollowUp {
                    inbound_message_id: id,
                    copy_to: (i > 0).then_some(to.as_str()),
                },
                parsed,
                consultation,
                cso,
                &receipt,
                &trimmed.reply_text,
            );
            a.readdress(to);
            confirmations.push(a);
        }
        batch
            .known
            .texts
            .insert((from.clone(), trimmed.reply_text.clone()));
        let outcome = Outcome::FollowUp {
            id,
            receipt_no: receipt_no.to_string(),
            confirmation: !confirmations.is_empty(),
        };
        let follow_up = NewFollowUp {
            proposal_id: proposal.id,
            receipt_no: receipt_no.to_string(),
            inbound_message_id: id,
            from_address: from,
            reply_text: trimmed.reply_text,
            quoted_text: trimmed.quoted_text,
            signature: trimmed.signature,
            attachments_json: serde_json::to_string(&parsed.attachments).unwrap_or_default(),
            sender_flag,
        };
        Ok(Decision {
            outcome,
            writes: vec![IntakeWrite::FollowUp {
                follow_up,
                confirmations: Vec::new(),
            }],
            acknowledgements: confirmations,
        })
    }
}
