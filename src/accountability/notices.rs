//! The outcome notice each sender gets when a consultation's results are
//! published, and the correction notice owed when a published result
//! changes: through the outbox, in the sender's language, each with an
//! idempotency key naming what it reports, so nothing is told twice.

use std::collections::{BTreeSet, HashMap};

use super::{AccountabilityError, by_sender, label_of, sender_name};
use crate::app::App;
use crate::consultation::Consultation;
use crate::domain::{EmailAddress, EmailFor, Language};
use crate::outbound::email::{Context, Named, OutcomeLine, OutcomeNotice};
use crate::outbound::lfp::excerpt;
use crate::outbound::office::{self, To, office};
use crate::outbound::outbox::NewMessage;
use crate::outbound::outreach::blocked;
use crate::store::AddressStatus;
use crate::store::records::{DispositionRecord, ReviewProposal};

/// Characters of a proposal's text quoted back in a notice.
const EXCERPT_CHARS: usize = 160;

/// The public report's address for `reference`.
pub fn report_url(app: &App, reference: &str) -> String {
    format!(
        "{}/report/{reference}",
        app.config.server.public_url.trim_end_matches('/')
    )
}

/// The language a sender reads: its CSO's, else Albanian.
fn language_of(p: &ReviewProposal) -> Language {
    match p.cso_language.as_deref() {
        Some("en") => Language::En,
        _ => Language::Sq,
    }
}

fn line(
    p: &ReviewProposal,
    d: &DispositionRecord,
    lang: Language,
    previous: Option<&DispositionRecord>,
    tz: chrono_tz::Tz,
) -> OutcomeLine {
    let response = match lang {
        Language::En => d
            .response_en
            .clone()
            .unwrap_or_else(|| d.response_sq.clone()),
        Language::Sq => d.response_sq.clone(),
    };
    OutcomeLine {
        receipt_no: p.receipt_no.clone(),
        date: p
            .created_at
            .with_timezone(&tz)
            .format("%d.%m.%Y")
            .to_string(),
        excerpt: excerpt(&p.reply_text, EXCERPT_CHARS),
        disposition: label_of(&d.disposition, lang),
        commitment: d.commitment.clone(),
        response,
        previous: previous.map(|b| label_of(&b.disposition, lang)),
    }
}

/// The addresses a sender's notice goes to: whoever wrote its proposals,
/// each once, leaving out those that opted out or bounced.
fn recipients(
    proposals: &[&ReviewProposal],
    statuses: &HashMap<String, AddressStatus>,
) -> Vec<EmailAddress> {
    let wrote: BTreeSet<String> = proposals
        .iter()
        .map(|p| p.from_address.to_ascii_lowercase())
        .collect();
    wrote
        .into_iter()
        .filter(|a| blocked(statuses.get(a)).is_none())
        .filter_map(|a| EmailAddress::parse(&a).ok())
        .collect()
}

async fn statuses(app: &App) -> Result<HashMap<String, AddressStatus>, AccountabilityError> {
    Ok(app
        .store
        .address_statuses()
        .await?
        .into_iter()
        .map(|s| (s.address.clone(), s))
        .collect())
}

/// One message of `context` to `to` about a consultation and sender
/// (their ids), from the office (a reply reaches the POC's mailbox, not
/// intake: it answers a decision, it is no proposal).
fn message_to(
    app: &App,
    context: &Context<'_>,
    lang: Language,
    to: &To<'_>,
    key: EmailFor<'_>,
) -> Result<NewMessage, AccountabilityError> {
    let rendered = app.templates.render(lang, context)?;
    Ok(office::message(app, lang, &rendered, to, key)?)
}

/// One outcome notice per sender of `proposals` (all decided) and address.
pub async fn outcome_notices(
    app: &App,
    consultation: &Consultation,
    proposals: &[ReviewProposal],
) -> Result<Vec<NewMessage>, AccountabilityError> {
    let statuses = statuses(app).await?;
    let url = report_url(app, &consultation.spec.reference);
    let tz = app.config.office.time_zone;
    let mut out = Vec::new();
    let mut senders: Vec<_> = by_sender(proposals).into_iter().collect();
    senders.sort_by(|a, b| a.0.cmp(&b.0));
    for (sender, theirs) in senders {
        let first = theirs[0];
        let lang = language_of(first);
        let name = sender_name(first);
        // Each address is told of the proposals it sent, and only those:
        // someone who wrote in a CSO's name does not read the answers to
        // the CSO's own proposals, nor the CSO theirs.
        for to in recipients(&theirs, &statuses) {
            let own: Vec<OutcomeLine> = theirs
                .iter()
                .filter(|p| p.from_address.eq_ignore_ascii_case(to.as_str()))
                .filter_map(|p| Some(line(p, p.disposition.as_ref()?, lang, None, tz)))
                .collect();
            let context = Context::Outcome(OutcomeNotice {
                office: office(app, lang),
                cso: Named { name: &name },
                consultation: Named {
                    name: consultation.spec.title().get(lang),
                },
                reference: &consultation.spec.reference,
                proposals: own,
                report_url: url.clone(),
            });
            let addressee = To {
                name: &name,
                address: &to,
                id_prefix: "outcome",
                consultation_id: Some(consultation.id),
                cso_id: first.cso_id,
                in_reply_to: None,
            };
            let key = EmailFor::Outcome {
                consultation_id: consultation.id,
                sender: &sender,
                address: &to,
            };
            out.push(message_to(app, &context, lang, &addressee, key)?);
        }
    }
    Ok(out)
}

/// Queues the notice of every change to a published result not yet told,
/// each in one transaction with marking it told. Returns how many.
pub async fn tell_corrections(app: &App) -> Result<usize, AccountabilityError> {
    let untold = app.store.untold_corrections().await?;
    if untold.is_empty() {
        return Ok(0);
    }
    let statuses = statuses(app).await?;
    let consultations: HashMap<i64, Consultation> = app
        .store
        .consultations()
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let tz = app.config.office.time_zone;
    for entry in &untold {
        let mut messages = Vec::new();
        if let (Some(p), Some(c)) = (
            app.store.review_proposal(&entry.receipt_no).await?,
            consultations.get(&entry.consultation_id),
        ) {
            let lang = language_of(&p);
            let name = sender_name(&p);
            let notice = OutcomeNotice {
                office: office(app, lang),
                cso: Named { name: &name },
                consultation: Named {
                    name: c.spec.title().get(lang),
                },
                reference: &c.spec.reference,
                proposals: vec![line(&p, &entry.after, lang, entry.before.as_ref(), tz)],
                report_url: report_url(app, &c.spec.reference),
            };
            // The first answer to a proposal that arrived after publication
            // is its outcome, not a correction of one.
            let first = entry.before.is_none();
            let late_sender = format!("late-{}", entry.id);
            let context = if first {
                Context::Outcome(notice)
            } else {
                Context::Correction(notice)
            };
            for to in recipients(&[&p], &statuses) {
                let addressee = To {
                    name: &name,
                    address: &to,
                    id_prefix: if first { "outcome" } else { "correction" },
                    consultation_id: Some(c.id),
                    cso_id: p.cso_id,
                    in_reply_to: None,
                };
                let key = if first {
                    EmailFor::Outcome {
                        consultation_id: c.id,
                        sender: &late_sender,
                        address: &to,
                    }
                } else {
                    EmailFor::Correction {
                        log_id: entry.id,
                        address: &to,
                    }
                };
                messages.push(message_to(app, &context, lang, &addressee, key)?);
            }
        }
        app.store.tell_correction(entry.id, &messages).await?;
    }
    Ok(untold.len())
}
