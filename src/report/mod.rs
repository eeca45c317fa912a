//! The public report, "what we asked, what you said, what we did": per
//! consultation, or for the whole action plan. It is built from the
//! proposals and their dispositions and holds nothing that identifies a
//! person beyond an organisation's registered name: no address, no phone
//! number, not even one a sender typed into their text (those are
//! removed), and no text whose sender asked that it not be published.

pub mod export;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;
use serde::Serialize;

use crate::accountability::{AccountabilityError, Disposition};
use crate::app::App;
use crate::config::Config;
use crate::consultation::Consultation;
use crate::domain::Language;
use crate::store::records::ReviewProposal;

/// Names the JSON export's shape (docs/report-schema.md); a change to it
/// that breaks a reader gets a new number.
pub const SCHEMA: &str = "cocreate.report/1";

/// A report of one consultation or of several (the action plan).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_at: DateTime<Utc>,
    pub consultations: Vec<ConsultationReport>,
    /// Over every consultation in the report.
    pub totals: Counts,
    /// By policy area code.
    pub by_policy_area: BTreeMap<String, Counts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsultationReport {
    pub reference: String,
    pub title_sq: String,
    pub title_en: String,
    pub description_sq: String,
    pub description_en: String,
    pub policy_area: String,
    pub policy_area_sq: String,
    pub policy_area_en: String,
    pub lfp_sq: String,
    pub lfp_en: String,
    pub opens_on: NaiveDate,
    pub closes_on: NaiveDate,
    pub published_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    pub proposals: Vec<ReportProposal>,
}

/// How many proposals, and how many of each disposition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub proposals: u64,
    pub accepted: u64,
    pub partly_accepted: u64,
    pub merged: u64,
    pub not_accepted: u64,
    pub out_of_scope: u64,
    /// Without a disposition yet.
    pub waiting: u64,
}

impl Counts {
    fn add(&mut self, disposition: Option<Disposition>) {
        self.proposals += 1;
        match disposition {
            Some(Disposition::Accepted) => self.accepted += 1,
            Some(Disposition::PartlyAccepted) => self.partly_accepted += 1,
            Some(Disposition::Merged) => self.merged += 1,
            Some(Disposition::NotAccepted) => self.not_accepted += 1,
            Some(Disposition::OutOfScope) => self.out_of_scope += 1,
            None => self.waiting += 1,
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.proposals += other.proposals;
        self.accepted += other.accepted;
        self.partly_accepted += other.partly_accepted;
        self.merged += other.merged;
        self.not_accepted += other.not_accepted;
        self.out_of_scope += other.out_of_scope;
        self.waiting += other.waiting;
    }

    /// (disposition, count) in the order of [`Disposition::ALL`].
    pub fn each(&self) -> [(Disposition, u64); 5] {
        [
            (Disposition::Accepted, self.accepted),
            (Disposition::PartlyAccepted, self.partly_accepted),
            (Disposition::Merged, self.merged),
            (Disposition::NotAccepted, self.not_accepted),
            (Disposition::OutOfScope, self.out_of_scope),
        ]
    }
}

/// Who sent a proposal, as the public may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// A CSO of the registry, by its registered name.
    Registry,
    /// An organisation outside the registry, by the name the POC recorded.
    OutsideRegistry,
    /// A person: never named.
    Individual,
    /// The CSO it was sent in the name of said it did not send it: no
    /// one is credited with it.
    Unconfirmed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportProposal {
    pub receipt_no: String,
    pub consultation: String,
    pub received_on: NaiveDate,
    pub sender_kind: SenderKind,
    /// The organisation's name; None for an individual.
    pub sender_name: Option<String>,
    pub late: bool,
    pub draft_number: Option<i64>,
    /// What was proposed, contact details removed; None when its sender
    /// asked that it not be published.
    pub text: Option<String>,
    pub text_withheld: bool,
    /// accepted, partly_accepted, merged, not_accepted, out_of_scope; None
    /// while it waits.
    pub disposition: Option<Disposition>,
    pub commitment: Option<String>,
    pub response_sq: Option<String>,
    pub response_en: Option<String>,
    /// Proposals answered together share it.
    pub response_group: Option<String>,
    /// Near-identical copies (a form letter, a campaign) share a number,
    /// per consultation; `campaign_size` says how many copies it has.
    pub campaign: Option<usize>,
    pub campaign_size: Option<usize>,
}

impl ReportProposal {
    /// "Shoqata X", "individual" / "person privat", "Y (not in the
    /// registry)" in `lang`.
    pub fn sender_label(&self, lang: Language) -> String {
        match (self.sender_kind, &self.sender_name, lang) {
            (SenderKind::Registry, Some(n), _) => n.clone(),
            (SenderKind::OutsideRegistry, Some(n), Language::Sq) => {
                format!("{n} (jashtë regjistrit)")
            }
            (SenderKind::OutsideRegistry, Some(n), Language::En) => {
                format!("{n} (not in the registry)")
            }
            (SenderKind::Unconfirmed, _, Language::Sq) => "dërgues i pakonfirmuar".into(),
            (SenderKind::Unconfirmed, _, Language::En) => "sender not confirmed".into(),
            (_, _, Language::Sq) => "person privat".into(),
            (_, _, Language::En) => "individual".into(),
        }
    }

    pub fn disposition_label(&self, lang: Language) -> String {
        self.disposition
            .map(|d| d.label(lang).to_string())
            .unwrap_or_else(|| match lang {
                Language::Sq => "Në shqyrtim".into(),
                Language::En => "Being considered".into(),
            })
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:mailto:)?[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+").expect("valid")
});
/// Seven or more digits, with the spaces, dots, dashes, slashes and
/// brackets people write numbers with, optionally after + or 00: phone
/// numbers in every form seen in Albania (+355 69 123 4567, 069/123-45-67,
/// 04 2 234 567). Dates and years are shorter, so they stay.
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\+|\b00)?\(?\d(?:[\s./\-()]{0,2}\d){6,}").expect("valid"));

/// Digit runs that look like phone numbers but are a date (12.03.2026) or
/// an amount with thousands separators (1.250.000, 3,500,000).
static NOT_PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\d{1,2}[./\-]\d{1,2}[./\-]\d{4}|\d{1,3}(?:[.,]\d{3})+)$").expect("valid")
});

/// `text` without email addresses and phone numbers.
pub fn redact(text: &str, lang: Language) -> String {
    let (address, phone) = match lang {
        Language::Sq => ("[adresë e hequr]", "[numër i hequr]"),
        Language::En => ("[address removed]", "[number removed]"),
    };
    let text = EMAIL.replace_all(text, address);
    PHONE
        .replace_all(&text, |c: &regex::Captures<'_>| {
            let found = &c[0];
            if NOT_PHONE.is_match(found.trim()) {
                found.to_string()
            } else {
                phone.to_string()
            }
        })
        .into_owned()
}

fn proposal(
    p: &ReviewProposal,
    reference: &str,
    config: &Config,
    lang: Language,
) -> ReportProposal {
    let (sender_kind, sender_name) = match (&p.cso_name, &p.sender_name) {
        _ if p.disowned_at.is_some() => (SenderKind::Unconfirmed, None),
        (Some(name), _) if p.cso_id.is_some() => (SenderKind::Registry, Some(name.clone())),
        // Typed by a visitor or the POC: whatever contact it holds goes.
        (_, Some(name)) => (SenderKind::OutsideRegistry, Some(redact(name, lang))),
        _ => (SenderKind::Individual, None),
    };
    let d = p.disposition.as_ref();
    ReportProposal {
        receipt_no: p.receipt_no.clone(),
        consultation: reference.to_string(),
        received_on: config.office.date_at(p.created_at),
        sender_kind,
        sender_name,
        late: p.late,
        draft_number: p.draft_number,
        text: (!p.no_publish).then(|| redact(p.reply_text.trim(), lang)),
        text_withheld: p.no_publish,
        disposition: d.and_then(|d| Disposition::parse(&d.disposition)),
        commitment: d
            .and_then(|d| d.commitment.as_deref())
            .map(|c| redact(c, lang)),
        response_sq: d.map(|d| redact(&d.response_sq, lang)),
        response_en: d
            .and_then(|d| d.response_en.as_deref())
            .map(|r| redact(r, lang)),
        response_group: d.and_then(|d| d.group_key.clone()),
        campaign: None,
        campaign_size: None,
    }
}

/// Numbers the near-identical copies among `proposals` (1, 2, … in order
/// of first arrival), with each campaign's size.
fn mark_campaigns(proposals: &mut [ReportProposal], reviewed: &[ReviewProposal]) {
    let texts: Vec<(i64, &str)> = reviewed
        .iter()
        .map(|p| (p.id, p.reply_text.as_str()))
        .collect();
    let index: std::collections::HashMap<i64, usize> = reviewed
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();
    for (n, group) in crate::intake::campaigns::group(&texts).iter().enumerate() {
        for id in group {
            if let Some(p) = index.get(id).and_then(|i| proposals.get_mut(*i)) {
                p.campaign = Some(n + 1);
                p.campaign_size = Some(group.len());
            }
        }
    }
}

/// The report of `consultations` (each must be public: open or closed).
/// `published_only` leaves out the dispositions of consultations whose
/// results are not published (what the public sees); the POC's exports
/// include them. What is removed from texts is marked in `lang` (the
/// page's; Albanian, the record's language, in exports).
pub async fn build(
    app: &App,
    consultations: &[Consultation],
    published_only: bool,
    lang: Language,
) -> Result<Report, AccountabilityError> {
    let publications: BTreeMap<i64, DateTime<Utc>> = app
        .store
        .publications()
        .await?
        .into_iter()
        .map(|p| (p.consultation_id, p.published_at))
        .collect();
    let mut report = Report {
        schema: SCHEMA,
        generated_at: app.now(),
        consultations: Vec::new(),
        totals: Counts::default(),
        by_policy_area: BTreeMap::new(),
    };
    let config = app.config.as_ref();
    for c in consultations {
        let published_at = publications.get(&c.id).copied();
        let reviewed = app.store.review_proposals(Some(c.id)).await?;
        let mut proposals: Vec<ReportProposal> = reviewed
            .iter()
            .map(|p| proposal(p, &c.spec.reference, config, lang))
            .collect();
        mark_campaigns(&mut proposals, &reviewed);
        if published_only && published_at.is_none() {
            for p in &mut proposals {
                p.disposition = None;
                p.commitment = None;
                p.response_sq = None;
                p.response_en = None;
                p.response_group = None;
            }
        }
        let mut counts = Counts::default();
        for p in &proposals {
            counts.add(p.disposition);
        }
        report.totals.merge(&counts);
        report
            .by_policy_area
            .entry(c.spec.policy_area.clone())
            .or_default()
            .merge(&counts);
        let area = config.policy_area(&c.spec.policy_area);
        let name = |lang| area.map(|a| a.name.get(lang).clone()).unwrap_or_default();
        let lfp = |lang| {
            area.map(|a| a.lfp.name.get(lang).clone())
                .unwrap_or_default()
        };
        report.consultations.push(ConsultationReport {
            reference: c.spec.reference.clone(),
            title_sq: c.spec.title_sq.clone(),
            title_en: c.spec.title_en.clone(),
            description_sq: c.spec.description_sq.clone(),
            description_en: c.spec.description_en.clone(),
            policy_area: c.spec.policy_area.clone(),
            policy_area_sq: name(Language::Sq),
            policy_area_en: name(Language::En),
            lfp_sq: lfp(Language::Sq),
            lfp_en: lfp(Language::En),
            opens_on: c.spec.opens_on,
            closes_on: c.spec.closes_on,
            published_at,
            counts,
            proposals,
        });
    }
    Ok(report)
}

/// The consultations the public may read about, oldest first.
pub async fn public_consultations(app: &App) -> Result<Vec<Consultation>, AccountabilityError> {
    let mut all: Vec<Consultation> = app
        .store
        .consultations()
        .await?
        .into_iter()
        .filter(|c| c.state.is_public())
        .collect();
    all.sort_by_key(|c| (c.spec.opens_on, c.id));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_details_typed_into_a_text_are_removed() {
        let text = "Na shkruani te info@shoqata.al ose mailto:drejtori@cso.org.al, \
                    tel. +355 69 123 4567 ose 069/123-45-67 ose (04) 2 234 567. \
                    Buxheti 2027 prej 1.250.000 lekësh u miratua më 12.03.2026 me 45 vota.";
        let out = redact(text, Language::Sq);
        for gone in ["info@", "drejtori@", "123 4567", "123-45-67", "234 567"] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        for kept in ["2027", "1.250.000 lekësh", "12.03.2026", "45 vota"] {
            assert!(out.contains(kept), "{kept} lost from {out}");
        }
        assert_eq!(out.matches("[adresë e hequr]").count(), 2, "{out}");
        assert_eq!(out.matches("[numër i hequr]").count(), 3, "{out}");
    }
}
