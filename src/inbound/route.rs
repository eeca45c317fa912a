//! Threading a message to its consultation and CSO, in the order DESIGN.md
//! gives: the reply key in a recipient address, then in References or
//! In-Reply-To (our Message-IDs start with it), then a registered sender with
//! exactly one open consultation among their policy areas. Anything else
//! waits in the holding pen for the POC.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::parse::Parsed;
use crate::config::Config;
use crate::consultation::{Consultation, ConsultationState};
use crate::domain::{Bilingual, ReplyKey};
use crate::intake::types::IntakeLookups;
use crate::registry::relevance::{Matcher, Relevance};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMethod {
    RecipientKey,
    ReferenceKey,
    ReceiptNumber,
    SenderConsultation,
    /// The web form's signed mark, for a sender not in the registry who
    /// confirmed their address.
    WebForm,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub method: Option<RouteMethod>,
    pub consultation: Option<String>,
    pub cso: Option<String>,
    pub cso_name: Option<String>,
    #[serde(skip)]
    pub consultation_id: Option<i64>,
    #[serde(skip)]
    pub cso_id: Option<i64>,
    /// What routing looked up, so the receipt need not look it up again.
    #[serde(skip)]
    pub found: Option<(Consultation, Option<crate::registry::Cso>)>,
    /// The receipt number of the proposal this adds to (a follow-up).
    pub follow_up_of: Option<String>,
    /// The government draft commitment this comments on, by its number.
    pub draft: Option<u32>,
    /// The reply came from an address other than the one the key was sent to.
    pub other_sender: bool,
    /// The consultation's deadline had passed.
    pub late: bool,
    pub reason: String,
    /// The reason in Albanian, where the message goes to the holding pen.
    #[serde(skip)]
    pub reason_sq: Option<String>,
}

impl Route {
    /// Why it cannot be threaded, in both languages.
    pub fn why(&self) -> Bilingual<String> {
        Bilingual::new(
            self.reason_sq
                .clone()
                .unwrap_or_else(|| self.reason.clone()),
            self.reason.clone(),
        )
    }

    fn unmatched(sq: String, en: String) -> Self {
        Self {
            method: None,
            consultation: None,
            cso: None,
            cso_name: None,
            consultation_id: None,
            cso_id: None,
            found: None,
            follow_up_of: None,
            draft: None,
            other_sender: false,
            late: false,
            reason: en,
            reason_sq: Some(sq),
        }
    }
}

/// How many reply keys of each kind one message may have looked up: a real
/// reply carries one or two, and a message must not be able to make the
/// batch's lookup as large as it likes (33,000 key-shaped References).
const MAX_RECIPIENT_KEYS: usize = 10;
/// Of References, the first few (the thread's root: our invitation) and the
/// last few (what was answered most recently) are looked at.
const REFERENCES_FIRST: usize = 3;
const REFERENCES_LAST: usize = 10;

/// Reply keys in our plus-addresses: `consult+KEY@domain`, or
/// `consult+KEY-dN@domain` for a comment on the government's draft
/// commitment number N.
fn recipient_keys(p: &Parsed<'_>, config: &Config) -> Vec<(ReplyKey, Option<u32>)> {
    let prefix = format!("{}+", config.mail.reply_local.to_ascii_lowercase());
    let suffix = format!("@{}", config.mail.domain.to_ascii_lowercase());
    p.recipients
        .iter()
        .filter_map(|r| r.strip_prefix(&prefix)?.strip_suffix(&suffix))
        .filter_map(|tag| {
            let (key, draft) = match tag.split_once("-d") {
                Some((key, n)) => (key, Some(n.parse::<u32>().ok()?)),
                None => (tag, None),
            };
            Some((ReplyKey::parse(key).ok()?, draft))
        })
        .take(MAX_RECIPIENT_KEYS)
        .collect()
}

/// Reply keys at the start of our Message-IDs: `KEY.RANDOM@domain`, from
/// In-Reply-To, then References from the most recent back (only its first
/// and last few: see [`REFERENCES_LAST`]).
fn reference_keys(p: &Parsed<'_>, config: &Config) -> Vec<ReplyKey> {
    let suffix = format!("@{}", config.mail.domain.to_ascii_lowercase());
    let refs = &p.references;
    let (first, last) = if refs.len() > REFERENCES_FIRST + REFERENCES_LAST {
        (
            &refs[..REFERENCES_FIRST],
            &refs[refs.len() - REFERENCES_LAST..],
        )
    } else {
        (&refs[..], &refs[..0])
    };
    p.in_reply_to
        .iter()
        .take(REFERENCES_FIRST)
        .chain(last.iter().rev())
        .chain(first.iter().rev())
        .filter_map(|id| {
            let id = id.trim().trim_matches(['<', '>']).to_ascii_lowercase();
            let local = id.strip_suffix(&suffix)?.to_string();
            let key = local.split('.').next()?.to_string();
            ReplyKey::parse(&key).ok()
        })
        .collect()
}

/// Whether the message answers one of cocreate's messages to an LFP (its
/// Message-ID starts with `lfp.`): such a reply is never a proposal, even
/// from an address that is also in the registry.
pub fn answers_lfp_mail(p: &Parsed<'_>, config: &Config) -> bool {
    let suffix = format!("@{}", config.mail.domain.to_ascii_lowercase());
    p.in_reply_to
        .iter()
        .chain(p.references.iter())
        .take(REFERENCES_FIRST + REFERENCES_LAST + 1)
        .any(|id| {
            let id = id.trim().trim_matches(['<', '>']).to_ascii_lowercase();
            id.starts_with(crate::outbound::lfp::MESSAGE_ID_PREFIX) && id.ends_with(&suffix)
        })
}

/// Every reply key a message carries, in the order routing tries them.
pub fn keys_of(p: &Parsed<'_>, config: &Config) -> Vec<ReplyKey> {
    let mut keys: Vec<ReplyKey> = recipient_keys(p, config)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.extend(reference_keys(p, config));
    keys
}

pub async fn route(
    store: &dyn Store,
    config: &Config,
    p: &Parsed<'_>,
) -> Result<Route, StoreError> {
    let consultations = store.consultations().await?;
    let now = store.clock().now();
    let known = store
        .intake_lookups(&keys_of(p, config), &[], now, now)
        .await?;
    route_among(store, config, &consultations, &known, p).await
}

/// A web-form proposal from someone not in the registry, to the
/// consultation its signed mark names.
pub fn web_visitor(
    config: &Config,
    consultations: &[Consultation],
    reference: &str,
    now: DateTime<Utc>,
) -> Route {
    let Some(c) = consultations.iter().find(|c| c.spec.reference == reference) else {
        return Route::unmatched(
            format!("dërguar përmes formularit te {reference}, që nuk është asnjë konsultim"),
            format!("sent through the web form to {reference}, which no consultation is"),
        );
    };
    let today = config.office.date_at(now);
    Route {
        method: Some(RouteMethod::WebForm),
        consultation: Some(c.spec.reference.clone()),
        cso: None,
        cso_name: None,
        consultation_id: Some(c.id),
        cso_id: None,
        found: Some((c.clone(), None)),
        follow_up_of: None,
        draft: None,
        other_sender: false,
        late: c.late_on(today),
        reason: "sent through the web form by someone not in the registry".into(),
        reason_sq: None,
    }
}

/// Routing with the consultations, the reply keys the message carries and
/// their CSOs already at hand (a batch looks them up once for all its
/// messages; a key not in `known` does not exist).
pub async fn route_among(
    store: &dyn Store,
    config: &Config,
    consultations: &[Consultation],
    known: &IntakeLookups,
    p: &Parsed<'_>,
) -> Result<Route, StoreError> {
    let today = config.office.date_at(store.clock().now());
    let late = |c: &Consultation| c.late_on(today);
    if answers_lfp_mail(p, config) {
        return Ok(Route::unmatched(
            format!(
                "përgjigje ndaj përmbledhjes ose kujtesës që cocreate i dërgon institucionit drejtues (LFP), jo propozim; {} duhet t'i shkruajë Pikës së Kontaktit në {}",
                p.from, config.office.email
            ),
            format!(
                "a reply to cocreate's digest or reminder to an LFP, not a proposal; {} should write to the Point of Contact at {}",
                p.from, config.office.email
            ),
        ));
    }

    let by_key = [
        (RouteMethod::RecipientKey, recipient_keys(p, config)),
        (
            RouteMethod::ReferenceKey,
            reference_keys(p, config)
                .into_iter()
                .map(|k| (k, None))
                .collect(),
        ),
    ];
    for (method, keys) in by_key {
        for (key, draft) in keys {
            let Some(record) = known.reply_keys.get(&key) else {
                continue;
            };
            let Some(c) = consultations
                .iter()
                .find(|c| c.id == record.consultation_id)
            else {
                continue;
            };
            let cso = known.csos.get(&record.cso_id);
            let other_sender = record.address != p.from;
            return Ok(Route {
                method: Some(method),
                consultation: Some(c.spec.reference.clone()),
                cso: cso.map(|x| x.record.registration_no.to_string()),
                cso_name: cso.map(|x| x.record.name.clone()),
                consultation_id: Some(c.id),
                cso_id: Some(record.cso_id),
                found: Some((c.clone(), cso.cloned())),
                follow_up_of: record.receipt_no.clone(),
                // Only a number the consultation has; a comment on a draft
                // is a proposal, never a follow-up.
                draft: draft
                    .filter(|n| c.spec.drafts.iter().any(|d| d.number == *n))
                    .filter(|_| record.receipt_no.is_none()),
                other_sender,
                late: late(c),
                reason: match (&record.receipt_no, other_sender) {
                    (_, true) => format!(
                        "reply key issued to {}, but sent from {}",
                        record.address, p.from
                    ),
                    (Some(receipt), false) => format!("a reply to the receipt of {receipt}"),
                    (None, false) if method == RouteMethod::RecipientKey => {
                        "reply key in the recipient address".into()
                    }
                    (None, false) => "reply key in References/In-Reply-To".into(),
                },
                reason_sq: None,
            });
        }
    }

    // The receipt number in the subject ("Re: [OGP-7K3M-Q9TX] …").
    if let Some(receipt) = crate::domain::ReceiptNo::find_in(&p.subject)
        && let Some(proposal) = store.proposal_by_receipt(&receipt).await?
        && let Some(c) = consultations
            .iter()
            .find(|c| c.id == proposal.consultation_id)
    {
        let cso = match proposal.cso_id {
            Some(id) => store.cso(id).await?,
            None => None,
        };
        let other_sender = cso
            .as_ref()
            .is_some_and(|x| !x.record.emails.contains(&p.from));
        return Ok(Route {
            method: Some(RouteMethod::ReceiptNumber),
            consultation: Some(c.spec.reference.clone()),
            cso: cso.as_ref().map(|x| x.record.registration_no.to_string()),
            cso_name: cso.as_ref().map(|x| x.record.name.clone()),
            consultation_id: Some(c.id),
            cso_id: proposal.cso_id,
            found: Some((c.clone(), cso)),
            follow_up_of: Some(receipt.to_string()),
            draft: None,
            other_sender,
            late: late(c),
            reason: format!("receipt number {receipt} in the subject"),
            reason_sq: None,
        });
    }

    // A registered sender with exactly one open consultation in their areas.
    let csos = store.csos_with_address(&p.from).await?;
    let senders: Vec<_> = csos.iter().filter(|c| c.active).collect();
    if senders.is_empty() {
        return Ok(Route::unmatched(
            format!(
                "pa çelës përgjigjeje, dhe {} nuk është adresë e një OShC-je të regjistruar",
                p.from
            ),
            format!(
                "no reply key, and {} is not a registered CSO address",
                p.from
            ),
        ));
    }
    let overrides = store.relevance_overrides().await?;
    let open: Vec<&Consultation> = consultations
        .iter()
        .filter(|c| c.state == ConsultationState::Open)
        .collect();
    let mut candidates = Vec::new();
    for cso in &senders {
        for c in &open {
            let area: Vec<_> = config
                .policy_area(&c.spec.policy_area)
                .cloned()
                .into_iter()
                .collect();
            let relevant = Matcher::new(&area, &overrides)
                .assess(cso)
                .first()
                .is_some_and(|a| a.relevance != Relevance::None);
            if relevant {
                candidates.push((*cso, *c));
            }
        }
    }
    match candidates.as_slice() {
        [(cso, c)] => Ok(Route {
            method: Some(RouteMethod::SenderConsultation),
            consultation: Some(c.spec.reference.clone()),
            cso: Some(cso.record.registration_no.to_string()),
            cso_name: Some(cso.record.name.clone()),
            consultation_id: Some(c.id),
            cso_id: Some(cso.id),
            found: Some(((*c).clone(), Some((*cso).clone()))),
            follow_up_of: None,
            draft: None,
            other_sender: false,
            late: late(c),
            reason: "no reply key; the sender's only open consultation".into(),
            reason_sq: None,
        }),
        [] => Ok(Route::unmatched(
            format!(
                "pa çelës përgjigjeje, dhe {} nuk ka konsultim të hapur në fushat e veta",
                p.from
            ),
            format!(
                "no reply key, and {} has no open consultation in its policy areas",
                p.from
            ),
        )),
        many => Ok(Route::unmatched(
            format!(
                "pa çelës përgjigjeje, dhe {} mund t'i përkasë njërit prej {} konsultimeve të hapura",
                p.from,
                many.len()
            ),
            format!(
                "no reply key, and {} could belong to {} open consultations",
                p.from,
                many.len()
            ),
        )),
    }
}
