//! Outreach: one personal invitation per relevant CSO address, in the CSO's
//! language, each with its own reply key. (What follows an invitation, to
//! the same addresses, is in `notices`.)
//!
//! Every message gets an idempotency key naming what it is for
//! (`invitation:CONSULTATION:CSO:ADDRESS`), so sending again never reaches
//! anyone twice, while organisations added to the registry since the last
//! send get theirs.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use serde::Serialize;

use super::email::{
    ConsultationMail, ConsultationView, Context, DraftView, MeetingView, Named, Office,
};
use super::ics::meeting_ics;
use super::message::{self, Attachment, ListHeaders, MessageError, Outgoing};
use super::outbox::{NewMessage, ReplyKeyRecord};
use super::templates::TemplateError;
use crate::app::App;
use crate::config::Config;
use crate::consultation::{Consultation, ConsultationSpec, ConsultationState};
use crate::domain::{EmailAddress, EmailFor, EmailKind, Language, ReplyKey, WorkingCalendar};
use crate::registry::relevance::{Matcher, Relevance};
use crate::store::{AddressStatus, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OutreachError {
    #[error("there is no consultation {0} (see `cocreate consultation list`)")]
    UnknownConsultation(String),
    #[error(
        "consultation {reference} is {state}: invitations go out only while it is open (`cocreate consultation open {reference}`)"
    )]
    NotOpen {
        reference: String,
        state: &'static str,
    },
    #[error(
        "consultation {reference} opens on {opens}: its invitations go out then, by themselves (`cocreate schedule list`)"
    )]
    NotYetOpen {
        reference: String,
        opens: chrono::NaiveDate,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// Who will be emailed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    #[serde(skip)]
    pub cso_id: i64,
    pub registration_no: String,
    pub name: String,
    pub address: EmailAddress,
    pub language: Language,
    pub relevance: Relevance,
    pub why: String,
    pub already_invited: bool,
}

/// Who is left out, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    pub registration_no: String,
    pub name: String,
    pub address: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutreachPlan {
    pub reference: String,
    pub policy_area: String,
    pub recipients: Vec<Recipient>,
    pub excluded: Vec<Excluded>,
    /// Active organisations whose fields do not relate to the area.
    pub not_relevant: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SendSummary {
    pub queued: u64,
    pub already_invited: usize,
    pub excluded: usize,
}

pub async fn find(store: &dyn Store, reference: &str) -> Result<Consultation, OutreachError> {
    let wanted = reference.trim().to_ascii_uppercase();
    store
        .consultations()
        .await?
        .into_iter()
        .find(|c| c.spec.reference == wanted)
        .ok_or(OutreachError::UnknownConsultation(wanted))
}

fn invitation_key(consultation_id: i64, cso_id: i64, address: &EmailAddress) -> String {
    EmailFor::Invitation {
        consultation_id,
        cso_id,
        address,
    }
    .idempotency_key()
}

/// Whether mail to `address` is stopped, and the reason to show.
pub(crate) fn blocked(status: Option<&AddressStatus>) -> Option<String> {
    let s = status?;
    if let Some(at) = s.opted_out_at {
        return Some(format!("opted out on {}", at.format("%Y-%m-%d")));
    }
    if let Some(at) = s.bounced_at {
        return Some(format!(
            "bounced on {}: {}",
            at.format("%Y-%m-%d"),
            s.bounce_reason.as_deref().unwrap_or("")
        ));
    }
    None
}

/// Works out who an outreach reaches, without changing anything.
pub async fn plan(
    store: &dyn Store,
    config: &Config,
    consultation: &Consultation,
) -> Result<OutreachPlan, OutreachError> {
    let spec = &consultation.spec;
    let area = config
        .policy_area(&spec.policy_area)
        .cloned()
        .into_iter()
        .collect::<Vec<_>>();
    let csos = store.csos().await?;
    let overrides = store.relevance_overrides().await?;
    let statuses: HashMap<String, AddressStatus> = store
        .address_statuses()
        .await?
        .into_iter()
        .map(|s| (s.address.clone(), s))
        .collect();
    let invited = store
        .queued_keys(&EmailFor::invitations_of(consultation.id))
        .await?;
    let matcher = Matcher::new(&area, &overrides);

    let mut plan = OutreachPlan {
        reference: spec.reference.clone(),
        policy_area: spec.policy_area.clone(),
        recipients: Vec::new(),
        excluded: Vec::new(),
        not_relevant: 0,
    };
    for cso in &csos {
        let Some(assessment) = matcher.assess(cso).into_iter().next() else {
            continue;
        };
        let reg = cso.record.registration_no.to_string();
        if assessment.relevance == Relevance::None {
            if cso.active {
                plan.not_relevant += 1;
            }
            continue;
        }
        if !cso.active {
            plan.excluded.push(Excluded {
                registration_no: reg,
                name: cso.record.name.clone(),
                address: None,
                reason: "inactive: no longer in the registry".into(),
            });
            continue;
        }
        if cso.record.emails.is_empty() {
            plan.excluded.push(Excluded {
                registration_no: reg,
                name: cso.record.name.clone(),
                address: None,
                reason: "no email address".into(),
            });
            continue;
        }
        let why = match &assessment.override_reason {
            Some(r) => format!("set by the POC: {r}"),
            None => format!("matched: {}", assessment.matched_words.join(", ")),
        };
        for address in &cso.record.emails {
            if let Some(reason) = blocked(statuses.get(address.as_str())) {
                plan.excluded.push(Excluded {
                    registration_no: reg.clone(),
                    name: cso.record.name.clone(),
                    address: Some(address.to_string()),
                    reason,
                });
                continue;
            }
            plan.recipients.push(Recipient {
                cso_id: cso.id,
                registration_no: reg.clone(),
                name: cso.record.name.clone(),
                address: address.clone(),
                language: cso.record.language,
                relevance: assessment.relevance,
                why: why.clone(),
                already_invited: invited.contains(&invitation_key(
                    consultation.id,
                    cso.id,
                    address,
                )),
            });
        }
    }
    Ok(plan)
}

/// What every message needs besides the recipient, from the App
/// (`App::sender`).
pub struct Sender<'a> {
    pub app: &'a App,
}

impl Sender<'_> {
    pub(crate) fn from(&self) -> EmailAddress {
        self.app.config.mail.from.clone()
    }

    pub(crate) fn office_name(&self, lang: Language) -> &str {
        self.app.config.office.name.get(lang)
    }

    /// What every message about `spec` to one CSO (`name`, in `lang`, with
    /// the reply key `key`) tells it.
    pub(crate) fn base_context<'s>(
        &'s self,
        spec: &'s ConsultationSpec,
        lang: Language,
        name: &'s str,
        key: &ReplyKey,
    ) -> ConsultationMail<'s> {
        let config = &self.app.config;
        let base = config.server.public_url.trim_end_matches('/');
        ConsultationMail {
            office: Office {
                name: self.office_name(lang),
                email: config.office.email.as_str(),
                postal_address: &config.office.postal_address,
            },
            cso: Named { name },
            consultation: consultation_view(config, spec, lang),
            meeting: meeting_view(spec, lang),
            // Each draft has its own reply address: a comment sent there is
            // recorded against that commitment.
            drafts: spec
                .drafts
                .iter()
                .map(|d| DraftView {
                    number: d.number,
                    title: d.title.get(lang),
                    text: d.text.get(lang),
                    reply_address: self.draft_reply_address(key, d.number),
                })
                .collect(),
            reply_address: self.reply_address(key),
            form_url: format!("{base}/p/{key}"),
            unsubscribe_url: format!("{base}/unsubscribe/{key}"),
        }
    }

    /// `consult+KEY-dN@domain`: a comment on draft commitment N.
    pub(crate) fn draft_reply_address(&self, key: &ReplyKey, number: u32) -> String {
        format!(
            "{}+{key}-d{number}@{}",
            self.app.config.mail.reply_local, self.app.config.mail.domain
        )
    }

    /// `consult@domain`: the address without a key (a web-form message from
    /// someone not in the registry, or an addition found by its receipt
    /// number).
    pub(crate) fn consultation_address(&self) -> String {
        format!(
            "{}@{}",
            self.app.config.mail.reply_local, self.app.config.mail.domain
        )
    }

    pub(crate) fn reply_address(&self, key: &ReplyKey) -> String {
        format!(
            "{}+{key}@{}",
            self.app.config.mail.reply_local, self.app.config.mail.domain
        )
    }

    /// Renders, builds and signs one consultation message to one address.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compose(
        &self,
        context: &Context,
        lang: Language,
        to_name: &str,
        to: &EmailAddress,
        key: &ReplyKey,
        attachments: &[Attachment],
    ) -> Result<Vec<u8>, OutreachError> {
        let rendered = self.app.templates.render(lang, context)?;
        let reply_to = self.reply_address(key);
        let message_id = format!(
            "{key}.{}@{}",
            ReplyKey::generate(),
            self.app.config.mail.domain
        );
        let unsubscribe = context
            .consultation_mail()
            .map(|m| m.unsubscribe_url.as_str())
            .unwrap_or_default();
        let from = self.from();
        let bytes = message::build(
            &Outgoing {
                from_name: self.office_name(lang),
                from: &from,
                to_name,
                to,
                reply_to: Some(&reply_to),
                message_id: &message_id,
                in_reply_to: None,
                auto_submitted: "auto-generated",
                rendered: &rendered,
                list: Some(ListHeaders {
                    list_id: &self.app.config.mail.list_id,
                    unsubscribe_url: unsubscribe,
                }),
                attachments,
            },
            self.app.dkim.as_deref(),
        )?;
        Ok(bytes)
    }

    pub(crate) fn attachments(
        &self,
        spec: &ConsultationSpec,
        lang: Language,
    ) -> Result<Vec<Attachment>, OutreachError> {
        let mut out = Vec::new();
        if let Some(ics) = meeting_ics(
            spec,
            lang,
            self.app.config.office.time_zone,
            &self.app.config.mail.domain,
        ) {
            out.push(Attachment {
                filename: match lang {
                    Language::Sq => "takimi.ics",
                    Language::En => "meeting.ics",
                }
                .into(),
                content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
                bytes: ics.into_bytes(),
            });
        }
        if let Some(path) = spec
            .meeting
            .as_ref()
            .and_then(|m| m.presentation.as_deref())
        {
            let bytes = std::fs::read(path).map_err(|source| MessageError::Attachment {
                path: path.to_string(),
                source,
            })?;
            out.push(Attachment {
                filename: file_name(path),
                content_type: content_type_for(path).into(),
                bytes,
            });
        }
        Ok(out)
    }
}

/// Queues an invitation for every recipient not yet invited.
pub async fn send(
    store: &dyn Store,
    sender: &Sender<'_>,
    consultation: &Consultation,
) -> Result<SendSummary, OutreachError> {
    if consultation.state == ConsultationState::Scheduled {
        return Err(OutreachError::NotYetOpen {
            reference: consultation.spec.reference.clone(),
            opens: consultation.spec.opens_on,
        });
    }
    if consultation.state != ConsultationState::Open {
        return Err(OutreachError::NotOpen {
            reference: consultation.spec.reference.clone(),
            state: consultation.state.as_str(),
        });
    }
    let plan = plan(store, &sender.app.config, consultation).await?;
    let spec = &consultation.spec;
    let attachments: HashMap<Language, Vec<Attachment>> = [Language::Sq, Language::En]
        .into_iter()
        .map(|l| Ok((l, sender.attachments(spec, l)?)))
        .collect::<Result<_, OutreachError>>()?;
    let mut summary = SendSummary {
        excluded: plan.excluded.len(),
        ..SendSummary::default()
    };
    let todo: Vec<&Recipient> = plan
        .recipients
        .iter()
        .filter(|r| !r.already_invited)
        .collect();
    summary.already_invited = plan.recipients.len() - todo.len();
    let invitation = |r: &Recipient| -> Result<NewMessage, OutreachError> {
        let address = r.address.clone();
        let key = ReplyKey::generate();
        let context = Context::Invitation(sender.base_context(spec, r.language, &r.name, &key));
        let bytes = sender.compose(
            &context,
            r.language,
            &r.name,
            &address,
            &key,
            &attachments[&r.language],
        )?;
        Ok(NewMessage {
            idempotency_key: invitation_key(consultation.id, r.cso_id, &address),
            kind: EmailKind::Invitation,
            recipient: address.clone(),
            envelope_from: sender.app.config.mail.from.to_string(),
            consultation_id: Some(consultation.id),
            cso_id: Some(r.cso_id),
            message: bytes,
            reply_key: Some(ReplyKeyRecord {
                key,
                consultation_id: consultation.id,
                cso_id: r.cso_id,
                address,
                purpose: "invitation",
                receipt_no: None,
            }),
        })
    };
    // Rendering is CPU work: each window is rendered on every core, then
    // stored in one transaction, so memory stays at one window of messages.
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    for window in todo.chunks(INVITATIONS_PER_COMMIT) {
        let per_thread = window.len().div_ceil(cores);
        let batch: Vec<NewMessage> = std::thread::scope(|scope| {
            let parts: Vec<_> = window
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(|| {
                        part.iter()
                            .map(|r| invitation(r))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .map(|h| h.join().expect("a rendering thread panicked"))
                .collect::<Result<Vec<Vec<NewMessage>>, _>>()
        })?
        .into_iter()
        .flatten()
        .collect();
        summary.queued += store.enqueue(&batch).await?;
    }
    Ok(summary)
}

/// Invitations rendered and stored together.
const INVITATIONS_PER_COMMIT: usize = 1000;

pub(crate) fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| "attachment".into(), |n| n.to_string_lossy().into_owned())
}

fn content_type_for(path: &str) -> &'static str {
    match Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("ppt") => "application/vnd.ms-powerpoint",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("odp") => "application/vnd.oasis.opendocument.presentation",
        _ => "application/octet-stream",
    }
}

const MONTHS_SQ: [&str; 12] = [
    "janar", "shkurt", "mars", "prill", "maj", "qershor", "korrik", "gusht", "shtator", "tetor",
    "nëntor", "dhjetor",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn weekday(lang: Language, d: Weekday) -> &'static str {
    let i = d.num_days_from_monday() as usize;
    match lang {
        Language::Sq => [
            "e hënë",
            "e martë",
            "e mërkurë",
            "e enjte",
            "e premte",
            "e shtunë",
            "e diel",
        ][i],
        Language::En => [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ][i],
    }
}

/// "e hënë, 11 janar 2027" / "Monday 11 January 2027": dates spelled out,
/// since 04/01 means different days to different readers.
/// What every message and page says about a consultation, in `lang`.
pub fn consultation_view<'s>(
    config: &'s Config,
    spec: &'s ConsultationSpec,
    lang: Language,
) -> ConsultationView<'s> {
    let area = config.policy_area(&spec.policy_area);
    let calendar = WorkingCalendar::new(config.calendar.holidays.clone());
    ConsultationView {
        reference: &spec.reference,
        title: spec.title().get(lang),
        description: spec.description().get(lang),
        area_name: area.map(|a| a.name.get(lang).as_str()),
        lfp_name: area.map(|a| a.lfp.name.get(lang).as_str()),
        deadline: format_date(lang, spec.closes_on),
        deadline_short: short_date(lang, spec.closes_on),
        working_days: calendar.period_length(spec.opens_on, spec.closes_on),
    }
}

/// A date for a subject line: 11.01.2027 in Albanian, 11 Jan 2027 in
/// English (where 11.01 could be read as the 1st of November).
pub fn short_date(lang: Language, date: chrono::NaiveDate) -> String {
    match lang {
        Language::Sq => date.format("%d.%m.%Y").to_string(),
        Language::En => date.format("%-d %b %Y").to_string(),
    }
}

/// The consultation's meeting, if it has one, in `lang`.
pub fn meeting_view(spec: &ConsultationSpec, lang: Language) -> Option<MeetingView<'_>> {
    spec.meeting.as_ref().map(|m| MeetingView {
        when: format_meeting(lang, m.starts_at, m.duration_minutes),
        place: m.place.as_deref(),
        link: m.online_link.as_deref(),
        presentation: m.presentation.as_deref().map(file_name),
    })
}

/// "7 dhjetor 2026", "7 December 2026": a date without its weekday.
pub fn format_day(lang: Language, d: NaiveDate) -> String {
    let months = match lang {
        Language::Sq => &MONTHS_SQ,
        Language::En => &MONTHS_EN,
    };
    format!("{} {} {}", d.day(), months[d.month0() as usize], d.year())
}

pub fn format_date(lang: Language, d: NaiveDate) -> String {
    let m = d.month0() as usize;
    match lang {
        Language::Sq => format!(
            "{}, {} {} {}",
            weekday(lang, d.weekday()),
            d.day(),
            MONTHS_SQ[m],
            d.year()
        ),
        Language::En => format!(
            "{} {} {} {}",
            weekday(lang, d.weekday()),
            d.day(),
            MONTHS_EN[m],
            d.year()
        ),
    }
}

/// "03.12.2026 08:15" in `tz`: when something happened, for the office.
pub fn format_time(tz: chrono_tz::Tz, t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&tz).format("%d.%m.%Y %H:%M").to_string()
}

fn format_meeting(lang: Language, starts: NaiveDateTime, minutes: u32) -> String {
    let end = starts + chrono::Duration::minutes(i64::from(minutes));
    let times = format!("{}–{}", starts.format("%H:%M"), end.format("%H:%M"));
    match lang {
        Language::Sq => format!("{}, ora {times}", format_date(lang, starts.date())),
        Language::En => format!("{}, {times}", format_date(lang, starts.date())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_spelled_out_in_each_language() {
        let d: NaiveDate = "2027-01-11".parse().unwrap();
        assert_eq!(format_date(Language::Sq, d), "e hënë, 11 janar 2027");
        assert_eq!(format_date(Language::En, d), "Monday 11 January 2027");
        let t: NaiveDateTime = "2026-12-10T10:00:00".parse().unwrap();
        assert_eq!(
            format_meeting(Language::Sq, t, 120),
            "e enjte, 10 dhjetor 2026, ora 10:00–12:00"
        );
    }
}
