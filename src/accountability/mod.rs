//! How each contribution was considered: who may see and decide what
//! (an LFP its own policy areas, the POC everything), dispositions with
//! their reasoned responses and audit log, publishing a consultation's
//! results with an outcome notice to each sender, and the correction
//! notices owed when a published result changes.

pub mod notices;
pub mod review;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::consultation::{Consultation, ConsultationState};
use crate::domain::Language;
use crate::outbound::message::MessageError;
use crate::outbound::outreach::OutreachError;
use crate::outbound::templates::TemplateError;
use crate::store::StoreError;
use crate::store::records::{Decided, DispositionRecord, DispositionWrite, ReviewProposal};

/// The longest reasoned response kept, in characters: several pages, far
/// beyond any real answer, and bounded.
pub const MAX_RESPONSE_CHARS: usize = 20_000;

/// Proposals one answer may cover (a page of a campaign's copies).
pub const MAX_GROUP: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum AccountabilityError {
    /// Also what someone is told about a proposal they may not see, so a
    /// guessed receipt number reveals nothing.
    #[error("there is no proposal {0}")]
    UnknownProposal(String),
    #[error("there is no consultation {0}")]
    UnknownConsultation(String),
    /// A decision or publication that cannot be made, and why, in one
    /// sentence.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outreach(#[from] OutreachError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// How a proposal was considered (OGP's co-creation standards and Law
/// 146/2014 ask for one, with reasons, for each contribution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Accepted,
    PartlyAccepted,
    /// Merged into a commitment, which is named.
    Merged,
    NotAccepted,
    OutOfScope,
}

impl Disposition {
    pub const ALL: [Disposition; 5] = [
        Self::Accepted,
        Self::PartlyAccepted,
        Self::Merged,
        Self::NotAccepted,
        Self::OutOfScope,
    ];

    /// As stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::PartlyAccepted => "partly_accepted",
            Self::Merged => "merged",
            Self::NotAccepted => "not_accepted",
            Self::OutOfScope => "out_of_scope",
        }
    }

    /// From what is stored, typed at a terminal (`partly-accepted`) or
    /// posted by a form.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    pub fn label(self, lang: Language) -> &'static str {
        match (self, lang) {
            (Self::Accepted, Language::Sq) => "Pranuar",
            (Self::Accepted, Language::En) => "Accepted",
            (Self::PartlyAccepted, Language::Sq) => "Pranuar pjesërisht",
            (Self::PartlyAccepted, Language::En) => "Partly accepted",
            (Self::Merged, Language::Sq) => "Shkrirë në një angazhim",
            (Self::Merged, Language::En) => "Merged into a commitment",
            (Self::NotAccepted, Language::Sq) => "Nuk u pranua",
            (Self::NotAccepted, Language::En) => "Not accepted",
            (Self::OutOfScope, Language::Sq) => "Jashtë fushës së konsultimit",
            (Self::OutOfScope, Language::En) => "Out of scope",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The label of a stored disposition (a value cocreate did not write is
/// shown as it is).
pub fn label_of(stored: &str, lang: Language) -> String {
    Disposition::parse(stored).map_or_else(|| stored.to_string(), |d| d.label(lang).to_string())
}

/// Who is asking: the POC sees and decides everything, an LFP contact only
/// its own policy areas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// An address of the config, or `terminal` for the POC at the server.
    pub address: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Poc,
    /// The codes of the policy areas whose LFP lists this address.
    Lfp(Vec<String>),
}

impl Actor {
    /// The POC at the server's terminal.
    pub fn terminal() -> Self {
        Self {
            address: "terminal".into(),
            role: Role::Poc,
        }
    }

    /// Who `address` is by the config: POC staff (or the office itself),
    /// an LFP contact, or nobody.
    pub fn of(config: &Config, address: &str) -> Option<Self> {
        let address = address.trim().to_ascii_lowercase();
        let is = |a: &crate::domain::EmailAddress| a.as_str().eq_ignore_ascii_case(&address);
        if is(&config.office.email) || config.office.staff.iter().any(is) {
            return Some(Self {
                address,
                role: Role::Poc,
            });
        }
        let areas: Vec<String> = config
            .policy_areas
            .iter()
            .filter(|a| a.lfp.emails.iter().any(is))
            .map(|a| a.code.clone())
            .collect();
        (!areas.is_empty()).then_some(Self {
            address,
            role: Role::Lfp(areas),
        })
    }

    pub fn is_poc(&self) -> bool {
        self.role == Role::Poc
    }

    /// Whether this actor may see (and decide on) `consultation`'s proposals.
    pub fn may_see(&self, consultation: &Consultation) -> bool {
        match &self.role {
            Role::Poc => true,
            Role::Lfp(areas) => areas.contains(&consultation.spec.policy_area),
        }
    }
}

/// A decision as the reviewer gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub disposition: Disposition,
    /// The commitment it fed: required for `Merged`.
    pub commitment: Option<String>,
    pub response_sq: String,
    /// Required when a proposal's CSO reads English.
    pub response_en: Option<String>,
}

/// The consultations `actor` may see, by id.
pub async fn visible_consultations(
    app: &App,
    actor: &Actor,
) -> Result<BTreeMap<i64, Consultation>, AccountabilityError> {
    Ok(app
        .store
        .consultations()
        .await?
        .into_iter()
        .filter(|c| actor.may_see(c))
        .map(|c| (c.id, c))
        .collect())
}

/// A proposal `actor` may see, by receipt number.
pub async fn proposal_for(
    app: &App,
    actor: &Actor,
    receipt_no: &str,
) -> Result<(ReviewProposal, Consultation), AccountabilityError> {
    let wanted = receipt_no.trim().to_ascii_uppercase();
    let unknown = || AccountabilityError::UnknownProposal(wanted.clone());
    let p = app
        .store
        .review_proposal(&wanted)
        .await?
        .ok_or_else(unknown)?;
    let c = visible_consultations(app, actor)
        .await?
        .remove(&p.consultation_id)
        .ok_or_else(unknown)?;
    Ok((p, c))
}

fn bounded(text: &str, what: &str) -> Result<String, AccountabilityError> {
    let text = text.trim();
    if text.chars().count() > MAX_RESPONSE_CHARS {
        return Err(AccountabilityError::Refused(format!(
            "the {what} is longer than {MAX_RESPONSE_CHARS} characters"
        )));
    }
    Ok(text.to_string())
}

/// Records `answer` for the proposals `receipts` (more than one: answered
/// together as a group, as the law allows), as decided by `actor`, and
/// queues the correction notices a change to a published result owes.
pub async fn decide(
    app: &App,
    actor: &Actor,
    receipts: &[String],
    answer: &Answer,
) -> Result<Decided, AccountabilityError> {
    if receipts.is_empty() {
        return Err(AccountabilityError::Refused(
            "name at least one proposal by its receipt number".into(),
        ));
    }
    let response_sq = bounded(&answer.response_sq, "reasoned response")?;
    if response_sq.is_empty() {
        return Err(AccountabilityError::Refused(
            "give the reasoned response in Albanian: the law asks for the reasons".into(),
        ));
    }
    let response_en = answer
        .response_en
        .as_deref()
        .map(|r| bounded(r, "English response"))
        .transpose()?
        .filter(|r| !r.is_empty());
    let commitment = answer
        .commitment
        .as_deref()
        .map(|c| bounded(c, "commitment"))
        .transpose()?
        .filter(|c| !c.is_empty());
    if answer.disposition == Disposition::Merged && commitment.is_none() {
        return Err(AccountabilityError::Refused(
            "name the commitment the proposal was merged into".into(),
        ));
    }
    let mut wanted: Vec<String> = receipts
        .iter()
        .map(|r| r.trim().to_ascii_uppercase())
        .collect();
    wanted.sort();
    wanted.dedup();
    if wanted.len() > MAX_GROUP {
        return Err(AccountabilityError::Refused(format!(
            "answer at most {MAX_GROUP} proposals at once"
        )));
    }
    let visible = visible_consultations(app, actor).await?;
    let mut proposals = Vec::with_capacity(wanted.len());
    for r in &wanted {
        let unknown = || AccountabilityError::UnknownProposal(r.clone());
        let p = app.store.review_proposal(r).await?.ok_or_else(unknown)?;
        if !visible.contains_key(&p.consultation_id) {
            return Err(unknown());
        }
        proposals.push(p);
    }
    if proposals
        .iter()
        .any(|p| p.consultation_id != proposals[0].consultation_id)
    {
        return Err(AccountabilityError::Refused(
            "a group answer is for proposals of one consultation".into(),
        ));
    }
    if let Some(p) = proposals
        .iter()
        .find(|p| p.cso_language.as_deref() == Some("en"))
        .filter(|_| response_en.is_none())
    {
        return Err(AccountabilityError::Refused(format!(
            "{} reads English: give the response in English too",
            p.cso_name.as_deref().unwrap_or(&p.from_address)
        )));
    }
    let group_key = (proposals.len() > 1)
        .then(|| format!("g-{}", crate::signing::hex(&rand::random::<[u8; 8]>())));
    let now = app.now();
    let writes: Vec<DispositionWrite> = proposals
        .iter()
        .map(|p| DispositionWrite {
            proposal_id: p.id,
            record: DispositionRecord {
                disposition: answer.disposition.as_str().into(),
                commitment: commitment.clone(),
                response_sq: response_sq.clone(),
                response_en: response_en.clone(),
                decided_by: actor.address.clone(),
                decided_at: now,
                group_key: group_key.clone(),
            },
        })
        .collect();
    let decided = app
        .store
        .decide(&writes, &actor.address, actor.is_poc())
        .await?;
    if !decided.corrections.is_empty() {
        notices::tell_corrections(app).await?;
    }
    Ok(decided)
}

/// What publishing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub proposals: usize,
    /// Outcome notices queued, one per sender and address.
    pub notices: usize,
}

/// Publishes `reference`'s results (the POC only, once it is closed and
/// every proposal has its disposition) and queues one outcome notice per
/// sender, in one transaction.
pub async fn publish(
    app: &App,
    actor: &Actor,
    reference: &str,
) -> Result<Published, AccountabilityError> {
    if !actor.is_poc() {
        return Err(AccountabilityError::Refused(
            "only the Point of Contact publishes results".into(),
        ));
    }
    let consultation = crate::outbound::outreach::find(app.store.as_ref(), reference)
        .await
        .map_err(|_| AccountabilityError::UnknownConsultation(reference.trim().to_uppercase()))?;
    if let Some(p) = app
        .store
        .publications()
        .await?
        .into_iter()
        .find(|p| p.consultation_id == consultation.id)
    {
        return Err(AccountabilityError::Refused(format!(
            "the results of {} were published on {}",
            consultation.spec.reference,
            p.published_at
                .with_timezone(&app.config.office.time_zone)
                .format("%Y-%m-%d %H:%M")
        )));
    }
    if consultation.state != ConsultationState::Closed {
        return Err(AccountabilityError::Refused(format!(
            "{} is still {}: results are published once it is closed",
            consultation.spec.reference,
            consultation.state.as_str()
        )));
    }
    let proposals = app.store.review_proposals(Some(consultation.id)).await?;
    let waiting: Vec<&str> = proposals
        .iter()
        .filter(|p| p.disposition.is_none())
        .map(|p| p.receipt_no.as_str())
        .collect();
    if !waiting.is_empty() {
        return Err(AccountabilityError::Refused(format!(
            "{} still wait{} for a disposition: {}",
            plural(waiting.len(), "proposal"),
            if waiting.len() == 1 { "s" } else { "" },
            waiting.join(", ")
        )));
    }
    let messages = notices::outcome_notices(app, &consultation, &proposals).await?;
    let queued = messages.len();
    if !app
        .store
        .publish(consultation.id, &actor.address, &messages)
        .await?
    {
        return Err(AccountabilityError::Refused(format!(
            "the results of {} were published meanwhile",
            consultation.spec.reference
        )));
    }
    Ok(Published {
        proposals: proposals.len(),
        notices: queued,
    })
}

/// "1 proposal", "3 proposals".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Who sent a proposal, as reviewers and its notices name them: the
/// registry's name, the name the POC recorded for someone outside it, or
/// the address.
pub fn sender_name(p: &ReviewProposal) -> String {
    p.cso_name
        .clone()
        .or_else(|| p.sender_name.clone())
        .unwrap_or_else(|| p.from_address.clone())
}

/// Proposals by the sender an outcome notice goes to: a CSO of the
/// registry, or an address outside it.
pub fn by_sender(proposals: &[ReviewProposal]) -> HashMap<String, Vec<&ReviewProposal>> {
    let mut out: HashMap<String, Vec<&ReviewProposal>> = HashMap::new();
    for p in proposals {
        let key = match p.cso_id {
            Some(id) => format!("cso-{id}"),
            None => p.from_address.to_ascii_lowercase(),
        };
        out.entry(key).or_default().push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_read_as_typed_and_as_stored() {
        assert_eq!(
            Disposition::parse("partly-accepted"),
            Some(Disposition::PartlyAccepted)
        );
        assert_eq!(
            Disposition::parse("Out of scope"),
            Some(Disposition::OutOfScope)
        );
        assert_eq!(Disposition::parse("merged"), Some(Disposition::Merged));
        assert_eq!(Disposition::parse("maybe"), None);
        for d in Disposition::ALL {
            assert_eq!(Disposition::parse(d.as_str()), Some(d));
        }
    }

    #[test]
    fn the_config_says_who_is_the_poc_and_who_an_lfp() {
        let config = Config::embedded().unwrap();
        let poc = Actor::of(&config, "OGP-Staff@office.example").unwrap();
        assert!(poc.is_poc());
        let lfp_address = config.policy_areas[0].lfp.emails[0].to_string();
        let lfp = Actor::of(&config, &lfp_address).unwrap();
        assert_eq!(
            lfp.role,
            Role::Lfp(vec![config.policy_areas[0].code.clone()])
        );
        assert!(Actor::of(&config, "someone@else.example").is_none());
    }
}
