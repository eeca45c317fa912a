//! What follows an invitation, to every address it went to: the deadline
//! moved, the deadline is near, the meeting changed or was cancelled, the
//! consultation closed early.
//!
//! Each notice is personal (the CSO's language, its own reply key, so a
//! reply to it is a proposal like a reply to the invitation) and has an
//! idempotency key naming the change it reports, so a second run, a second
//! daemon or a restart queues nothing twice, while a new change (a later
//! deadline, the meeting moved again) is news and goes out.

use crate::domain::Bilingual;
use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use super::email::{
    ConsultationClosed, ConsultationMail, Context, DeadlineExtended, DeadlineReminder,
    MeetingChanged,
};
use super::ics::{cancelled_meeting_ics, meeting_ics};
use super::message::Attachment;
use super::outbox::{NewMessage, ReplyKeyRecord};
use super::outreach::{OutreachError, Sender, blocked, format_date, meeting_view};
use crate::consultation::{Consultation, ConsultationSpec, Meeting};
use crate::domain::{EmailAddress, EmailFor, Language, ReplyKey};
use crate::registry::Cso;
use crate::store::{AddressStatus, Store};

/// An address a consultation's invitation went to, with its CSO, still
/// allowed mail (not opted out, not bounced).
pub struct Invited {
    pub cso: Cso,
    pub address: EmailAddress,
}

/// Everyone `consultation` invited who can still be written to, each
/// address once; with `sent_only`, only those whose invitation has left
/// (not one still queued, which a close cancels).
pub async fn invited(
    store: &dyn Store,
    consultation: &Consultation,
    sent_only: bool,
) -> Result<Vec<Invited>, OutreachError> {
    let invitees = store.invitees(consultation.id, sent_only).await?;
    if invitees.is_empty() {
        return Ok(Vec::new());
    }
    let csos: HashMap<i64, Cso> = store.csos().await?.into_iter().map(|c| (c.id, c)).collect();
    let statuses: HashMap<String, AddressStatus> = store
        .address_statuses()
        .await?
        .into_iter()
        .map(|s| (s.address.clone(), s))
        .collect();
    let mut seen = HashSet::new();
    Ok(invitees
        .into_iter()
        .filter_map(|i| {
            let cso = csos.get(&i.cso_id)?;
            let address = EmailAddress::parse(&i.address).ok()?;
            if blocked(statuses.get(address.as_str())).is_some() || !seen.insert(address.clone()) {
                return None;
            }
            Some(Invited {
                cso: cso.clone(),
                address,
            })
        })
        .collect())
}

impl Sender<'_> {
    /// One notice about `consultation` to each of `invited`: `key` names it
    /// in the outbox, and `context` makes the kind's context around the
    /// consultation mail about `spec` (in the CSO's language, with the
    /// notice's own reply key, so a reply to it is a proposal).
    fn notices<'s>(
        &'s self,
        consultation: &Consultation,
        spec: &'s ConsultationSpec,
        invited: &'s [Invited],
        attachments: impl Fn(Language) -> &'s [Attachment],
        key: impl Fn(&'s Invited) -> EmailFor<'s>,
        context: impl Fn(&'s Invited, Language, ConsultationMail<'s>) -> Context<'s>,
    ) -> Result<Vec<NewMessage>, OutreachError> {
        invited
            .iter()
            .map(|to| {
                let lang = to.cso.record.language;
                let reply_key = ReplyKey::generate();
                let mail = self.base_context(spec, lang, &to.cso.record.name, &reply_key);
                let bytes = self.compose(
                    &context(to, lang, mail),
                    lang,
                    &to.cso.record.name,
                    &to.address,
                    &reply_key,
                    attachments(lang),
                )?;
                let key = key(to);
                Ok(NewMessage {
                    idempotency_key: key.idempotency_key(),
                    kind: key.kind(),
                    recipient: to.address.clone(),
                    envelope_from: self.app.config.mail.from.to_string(),
                    consultation_id: Some(consultation.id),
                    cso_id: Some(to.cso.id),
                    message: bytes,
                    reply_key: Some(ReplyKeyRecord {
                        key: reply_key,
                        consultation_id: consultation.id,
                        cso_id: to.cso.id,
                        address: to.address.clone(),
                        purpose: "invitation",
                        receipt_no: None,
                    }),
                })
            })
            .collect()
    }
}

/// The notices that the deadline moved from `consultation`'s to
/// `new_spec`'s, for `Store::extend_deadline` to queue with the change.
pub async fn extension_notices(
    store: &dyn Store,
    sender: &Sender<'_>,
    consultation: &Consultation,
    new_spec: &ConsultationSpec,
    reason: &Bilingual<String>,
) -> Result<Vec<NewMessage>, OutreachError> {
    let invited = invited(store, consultation, false).await?;
    sender.notices(
        consultation,
        new_spec,
        &invited,
        |_| &[],
        |to| EmailFor::DeadlineExtended {
            consultation_id: consultation.id,
            closes_on: new_spec.closes_on,
            cso_id: to.cso.id,
            address: &to.address,
        },
        |_, lang, mail| {
            Context::DeadlineExtended(DeadlineExtended {
                mail,
                previous_deadline: format_date(lang, consultation.spec.closes_on),
                reason: reason.get(lang),
            })
        },
    )
}

/// Which of `offsets` (days before the deadline) a reminder is due for on
/// `today`: the nearest to the deadline whose day has come, so a daemon
/// that was down over the 7-day reminder sends the 1-day one, not both.
/// None on the deadline's day and after: a reminder never arrives after the
/// close.
pub fn due_reminder(offsets: &[u32], closes_on: NaiveDate, today: NaiveDate) -> Option<u32> {
    let days_left = (closes_on - today).num_days();
    if days_left < 1 {
        return None;
    }
    offsets
        .iter()
        .copied()
        .filter(|d| *d >= 1 && i64::from(*d) >= days_left)
        .min()
}

/// The deadline reminders for `consultation` `days_before` its deadline,
/// sent on `today`: to every invited address, saying what its CSO has sent
/// (by receipt number); with `only_silent`, only to CSOs that sent nothing.
pub async fn deadline_reminders(
    store: &dyn Store,
    sender: &Sender<'_>,
    consultation: &Consultation,
    days_before: u32,
    today: NaiveDate,
    only_silent: bool,
) -> Result<Vec<NewMessage>, OutreachError> {
    let spec = &consultation.spec;
    let mut receipts: HashMap<i64, Vec<String>> = HashMap::new();
    for (cso_id, receipt_no) in store.receipts_by_cso(consultation.id).await? {
        receipts.entry(cso_id).or_default().push(receipt_no);
    }
    let mut invited = invited(store, consultation, false).await?;
    if only_silent {
        invited.retain(|to| !receipts.contains_key(&to.cso.id));
    }
    let days_left = (spec.closes_on - today).num_days();
    sender.notices(
        consultation,
        spec,
        &invited,
        |_| &[],
        |to| EmailFor::DeadlineReminder {
            consultation_id: consultation.id,
            closes_on: spec.closes_on,
            days_before,
            cso_id: to.cso.id,
            address: &to.address,
        },
        |to, _, mail| {
            Context::DeadlineReminder(DeadlineReminder {
                mail,
                days_left,
                tomorrow: days_left == 1,
                receipts: receipts.get(&to.cso.id).cloned().unwrap_or_default(),
            })
        },
    )
}

/// Whether the meeting changed in a way a calendar shows: its time, length,
/// place or link (not the presentation).
pub fn meeting_moved(before: Option<&Meeting>, after: Option<&Meeting>) -> bool {
    let shown = |m: &Meeting| {
        (
            m.starts_at,
            m.duration_minutes,
            m.place.clone(),
            m.online_link.clone(),
        )
    };
    before.map(shown) != after.map(shown)
}

/// The notices that the meeting of `consultation` changed as `new_spec`
/// has it (with a calendar file that updates the same event, its SEQUENCE
/// already raised in `new_spec`) or was cancelled (a calendar file that
/// cancels it).
pub async fn meeting_notices(
    store: &dyn Store,
    sender: &Sender<'_>,
    consultation: &Consultation,
    new_spec: &ConsultationSpec,
) -> Result<Vec<NewMessage>, OutreachError> {
    let old = &consultation.spec;
    let config = &sender.app.config;
    let (tz, domain) = (config.office.time_zone, config.mail.domain.as_str());
    let cancelled = new_spec.meeting.is_none();
    let sequence = match (&old.meeting, &new_spec.meeting) {
        (_, Some(m)) => m.sequence,
        (Some(m), None) => m.sequence + 1,
        (None, None) => return Ok(Vec::new()),
    };
    let calendar = |lang: Language| -> Vec<Attachment> {
        let ics = if cancelled {
            cancelled_meeting_ics(old, lang, tz, domain)
        } else {
            meeting_ics(new_spec, lang, tz, domain)
        };
        let method = if cancelled { "CANCEL" } else { "PUBLISH" };
        ics.map(|ics| Attachment {
            filename: match lang {
                Language::Sq => "takimi.ics",
                Language::En => "meeting.ics",
            }
            .into(),
            content_type: format!("text/calendar; charset=utf-8; method={method}"),
            bytes: ics.into_bytes(),
        })
        .into_iter()
        .collect()
    };
    let attachments: HashMap<Language, Vec<Attachment>> = [Language::Sq, Language::En]
        .into_iter()
        .map(|l| (l, calendar(l)))
        .collect();
    let invited = invited(store, consultation, false).await?;
    sender.notices(
        consultation,
        new_spec,
        &invited,
        |lang| &attachments[&lang],
        |to| EmailFor::MeetingChanged {
            consultation_id: consultation.id,
            sequence,
            cso_id: to.cso.id,
            address: &to.address,
        },
        |_, lang, mail| {
            Context::MeetingChanged(MeetingChanged {
                mail,
                previous: meeting_view(old, lang),
                cancelled,
            })
        },
    )
}

/// The notices that `consultation` closed on `new_spec`'s deadline, before
/// the one it had announced, and why.
pub async fn closed_notices(
    store: &dyn Store,
    sender: &Sender<'_>,
    consultation: &Consultation,
    new_spec: &ConsultationSpec,
    reason: &Bilingual<String>,
) -> Result<Vec<NewMessage>, OutreachError> {
    let invited = invited(store, consultation, true).await?;
    sender.notices(
        consultation,
        new_spec,
        &invited,
        |_| &[],
        |to| EmailFor::ConsultationClosed {
            consultation_id: consultation.id,
            cso_id: to.cso.id,
            address: &to.address,
        },
        |_, lang, mail| {
            Context::ConsultationClosed(ConsultationClosed {
                mail,
                announced_deadline: format_date(lang, consultation.spec.closes_on),
                reason: reason.get(lang),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_due_reminder_and_none_from_the_deadline_on() {
        let closes: NaiveDate = "2027-01-11".parse().unwrap();
        let on = |s: &str| due_reminder(&[7, 1], closes, s.parse().unwrap());
        assert_eq!(on("2027-01-03"), None, "eight days before");
        assert_eq!(on("2027-01-04"), Some(7));
        assert_eq!(on("2027-01-09"), Some(7), "the 7-day one, late");
        assert_eq!(on("2027-01-10"), Some(1));
        assert_eq!(on("2027-01-11"), None, "the last day itself");
        assert_eq!(on("2027-01-12"), None);
    }
}
