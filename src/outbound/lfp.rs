//! Mail to a Lead Focal Point Institution (LFP): its weekly digest of what
//! civil society proposed in its policy area, and reminders of proposals
//! still waiting for its answer.
//!
//! An LFP is named by its policy area's code (`--lfp FISCAL`). Its digest
//! covers what arrived after its watermark up to the moment it is made;
//! queueing the digest and moving the watermark is one compare-and-set in
//! one transaction (`Store::queue_digests`), so everything between two digests
//! is in exactly one, a daemon that was down sends one digest for the whole
//! gap, and of two daemons only one sends.
//!
//! Replies to this mail go to the Point of Contact (Reply-To), and a reply
//! that reaches cocreate anyway is held, not taken as a proposal: its
//! Message-ID starts with `lfp.` (see `inbound::route`).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::email::{
    CampaignLine, ClosingLine, Context, DigestConsultation, LfpDigest, Named, NotAProposal,
    ProposalLine, ResponseReminder,
};
use super::message::MessageError;
use super::outbox::NewMessage;
use super::outreach::{format_date, format_day, format_time};
use super::templates::{Rendered, TemplateError};
use crate::app::App;
use crate::config::{PolicyArea, WhenEmpty};
use crate::consultation::{Consultation, ConsultationState};
use crate::domain::{EmailFor, WorkingCalendar};
use crate::store::StoreError;
use crate::store::records::{DigestData, DigestEntry, DigestQuery, DigestWrite};

#[derive(Debug, thiserror::Error)]
pub enum LfpMailError {
    #[error(
        "there is no LFP {0}: an LFP is named by its policy area's code (see [[policy_areas]] in the config)"
    )]
    UnknownLfp(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// The prefix of the Message-ID of every message to an LFP: a reply that
/// names it is a reply to us, not a proposal.
pub const MESSAGE_ID_PREFIX: &str = "lfp.";

/// Digests made side by side in one run.
const COMPOSED_AT_ONCE: usize = 4;

/// Consultations closing within this many days are listed in a digest.
const CLOSING_WITHIN_DAYS: i64 = 14;

/// Characters of a proposal's text shown in a digest.
const EXCERPT_CHARS: usize = 160;

/// One LFP's next digest, made but not queued.
pub struct Digest {
    pub area: String,
    /// The watermark it starts from (None: the first digest).
    pub previous: Option<DateTime<Utc>>,
    pub through: DateTime<Utc>,
    /// One per contact; none when nothing is new and the config says to
    /// send nothing then (the watermark still moves).
    pub messages: Vec<NewMessage>,
    /// What each contact reads.
    pub rendered: Rendered,
    pub nothing_new: bool,
    pub new_proposals: u64,
    pub new_follow_ups: u64,
    pub waiting: u64,
}

/// The LFP of `code`.
pub fn lfp<'a>(app: &'a App, code: &str) -> Result<&'a PolicyArea, LfpMailError> {
    app.config
        .policy_area(code)
        .ok_or_else(|| LfpMailError::UnknownLfp(code.trim().to_ascii_uppercase()))
}

/// Makes `area`'s LFP digest as of `now`, from its current watermark.
pub async fn digest(
    app: &App,
    area: &PolicyArea,
    consultations: &[Consultation],
    now: DateTime<Utc>,
) -> Result<Digest, LfpMailError> {
    let config = app.config.as_ref();
    let tz = config.office.time_zone;
    let lang = area.lfp.language;
    let cap = config.schedules.lfp_digest_section_cap.max(1);
    let mine: Vec<&Consultation> = consultations
        .iter()
        .filter(|c| c.spec.policy_area == area.code && c.state.is_public())
        .collect();
    let ids: Vec<i64> = mine.iter().map(|c| c.id).collect();
    let previous = app.store.digest_watermark(&area.code).await?;
    let data = app
        .store
        .digest_data(&DigestQuery {
            consultation_ids: &ids,
            since: previous,
            through: now,
            cap,
        })
        .await?;
    // The store returns them by consultation, then time.
    let mut grouped: Vec<(i64, DigestConsultation)> = Vec::new();
    for e in &data.new {
        if grouped
            .last()
            .is_none_or(|(id, _)| *id != e.consultation_id)
        {
            let c = mine.iter().find(|c| c.id == e.consultation_id);
            grouped.push((
                e.consultation_id,
                DigestConsultation {
                    reference: c.map(|c| c.spec.reference.clone()).unwrap_or_default(),
                    title: c
                        .map(|c| c.spec.title().get(lang).to_string())
                        .unwrap_or_default(),
                    entries: Vec::new(),
                    campaigns: campaigns(app, area, c.copied(), previous, now).await?,
                },
            ));
        }
        if let Some((_, g)) = grouped.last_mut() {
            g.entries.push(line(e, &Reader::of(app, area), None));
        }
    }
    let today = config.office.date_at(now);
    let mut closing = Vec::new();
    for c in mine.iter().filter(|c| {
        c.state == ConsultationState::Open
            && c.spec.closes_on >= today
            && (c.spec.closes_on - today).num_days() <= CLOSING_WITHIN_DAYS
    }) {
        let count = app.store.reply_count(c.id).await?;
        closing.push(ClosingLine {
            reference: c.spec.reference.clone(),
            title: c.spec.title().get(lang).to_string(),
            deadline: format_date(lang, c.spec.closes_on),
            invited: count.invited,
            replied: count.replied,
        });
    }
    let listed = data.new.len() as u64;
    let nothing_new = data.new_proposals == 0 && data.new_follow_ups == 0;
    let (waiting, waiting_more) = waiting_lines(&data, &Reader::of(app, area), now);
    let context = Context::LfpDigest(LfpDigest {
        office: super::office::office(app, lang),
        lfp: Named {
            name: area.lfp.name.get(lang),
        },
        area: Named {
            name: area.name.get(lang),
        },
        since: previous.map(|t| format_time(tz, t)).unwrap_or_default(),
        through: format_time(tz, now),
        new_proposals: data.new_proposals,
        new_follow_ups: data.new_follow_ups,
        waiting_total: data.waiting_total,
        closing_total: closing.len(),
        nothing_new,
        consultations: grouped.into_iter().map(|(_, g)| g).collect(),
        new_more: (data.new_proposals + data.new_follow_ups).saturating_sub(listed),
        waiting,
        waiting_more,
        closing,
    });
    let rendered = app.templates.render(lang, &context)?;
    let silent = nothing_new && config.schedules.lfp_digest_when_empty == WhenEmpty::Nothing;
    let messages = if silent {
        Vec::new()
    } else {
        area.lfp
            .emails
            .iter()
            .map(|to| {
                message_to(
                    app,
                    area,
                    to,
                    &rendered,
                    EmailFor::LfpDigest {
                        area: &area.code,
                        since: previous,
                        address: to,
                    },
                )
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Digest {
        area: area.code.clone(),
        previous,
        through: now,
        messages,
        rendered,
        nothing_new,
        new_proposals: data.new_proposals,
        new_follow_ups: data.new_follow_ups,
        waiting: data.waiting_total,
    })
}

/// What one digest run did for one LFP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// Queued to this many contacts.
    Sent(usize),
    /// Nothing new, and the config says to send nothing then.
    NothingNew,
    /// Its watermark had reached the scheduled time: another run (a second
    /// daemon, or this one before a restart) sent it.
    SentAlready,
    /// Another run made this digest while this one was making it.
    AlreadyMade,
}

/// Makes and queues the digests of `areas` as of `now`, moving each LFP's
/// watermark: made a few at a time, queued together in one transaction.
///
/// With `due` (the scheduled time a run is for), an LFP whose watermark
/// has already reached it is left alone: another run (a second daemon, or
/// this one before a restart) made its digest for that time. This is read
/// with the watermark the digest starts from, and the compare-and-set
/// holds it until the digest is queued, so two runs never both send one.
pub async fn send_digests(
    app: &App,
    areas: &[&PolicyArea],
    consultations: &[Consultation],
    now: DateTime<Utc>,
    due: Option<DateTime<Utc>>,
) -> Result<Vec<(Digest, Queued)>, LfpMailError> {
    // Made a few at a time: each is a handful of reads the store's pool
    // serves side by side.
    let mut digests = Vec::with_capacity(areas.len());
    for chunk in areas.chunks(COMPOSED_AT_ONCE) {
        let mut making = Vec::with_capacity(chunk.len());
        for area in chunk {
            making.push(digest(app, area, consultations, now));
        }
        digests.extend(futures::future::try_join_all(making).await?);
    }
    let done_already = |d: &Digest| due.is_some_and(|due| d.previous.is_some_and(|p| p >= due));
    let writes: Vec<DigestWrite<'_>> = digests
        .iter()
        .filter(|d| !done_already(d))
        .map(|d| DigestWrite {
            lfp: &d.area,
            previous: d.previous,
            through: d.through,
            messages: &d.messages,
        })
        .collect();
    let mut moved = app.store.queue_digests(&writes).await?.into_iter();
    Ok(digests
        .into_iter()
        .map(|d| {
            if done_already(&d) {
                return (d, Queued::SentAlready);
            }
            let queued = match (moved.next().unwrap_or(false), d.messages.len()) {
                (false, _) => Queued::AlreadyMade,
                (true, 0) => Queued::NothingNew,
                (true, n) => Queued::Sent(n),
            };
            (d, queued)
        })
        .collect())
}

/// Working days after a consultation closed before the first response
/// reminder, then every this many working days while proposals wait.
const RESPONSE_REMINDER_EVERY: u32 = 5;

/// The day a response reminder for a consultation that closed on
/// `closed_on` is due, as of `today`: the latest of the days `after`,
/// `after + 5`, `after + 10` … working days after the close that has come
/// (so a run missed while cocreate was down is made up once, not skipped).
pub fn response_reminder_due(
    calendar: &WorkingCalendar,
    closed_on: chrono::NaiveDate,
    today: chrono::NaiveDate,
    after: u32,
) -> Option<chrono::NaiveDate> {
    let passed = calendar.period_length(closed_on, today);
    if after == 0 || passed < after {
        return None;
    }
    let due = after + (passed - after) / RESPONSE_REMINDER_EVERY * RESPONSE_REMINDER_EVERY;
    Some(calendar.period_end(closed_on, due))
}

/// The response reminders due on `now` for a closed consultation whose
/// proposals still wait for a disposition: one to each LFP contact.
pub async fn response_reminders(
    app: &App,
    consultation: &Consultation,
    now: DateTime<Utc>,
) -> Result<Vec<NewMessage>, LfpMailError> {
    let config = app.config.as_ref();
    let Some(area) = config.policy_area(&consultation.spec.policy_area) else {
        return Ok(Vec::new());
    };
    if consultation.state != ConsultationState::Closed {
        return Ok(Vec::new());
    }
    let calendar = WorkingCalendar::new(config.calendar.holidays.clone());
    let today = config.office.date_at(now);
    let after = config.schedules.response_after_working_days;
    let Some(due) = response_reminder_due(&calendar, consultation.spec.closes_on, today, after)
    else {
        return Ok(Vec::new());
    };
    let cap = config.schedules.lfp_digest_section_cap.max(1);
    let data = app
        .store
        .digest_data(&DigestQuery {
            consultation_ids: &[consultation.id],
            // An empty window: everything is "from before" it, so every
            // proposal still waiting is listed.
            since: Some(now),
            through: now,
            cap,
        })
        .await?;
    if data.waiting_total == 0 {
        return Ok(Vec::new());
    }
    let lang = area.lfp.language;
    let (waiting, waiting_more) = waiting_lines(&data, &Reader::of(app, area), now);
    let context = Context::ResponseReminder(ResponseReminder {
        office: super::office::office(app, lang),
        lfp: Named {
            name: area.lfp.name.get(lang),
        },
        consultation: Named {
            name: consultation.spec.title().get(lang),
        },
        reference: &consultation.spec.reference,
        closed_on: format_date(lang, consultation.spec.closes_on),
        working_days: calendar.period_length(consultation.spec.closes_on, today),
        waiting_total: data.waiting_total,
        waiting,
        waiting_more,
    });
    let rendered = app.templates.render(lang, &context)?;
    area.lfp
        .emails
        .iter()
        .map(|to| {
            message_to(
                app,
                area,
                to,
                &rendered,
                EmailFor::ResponseReminder {
                    consultation_id: consultation.id,
                    date: due,
                    address: to,
                },
            )
        })
        .collect()
}

/// One rendered message to one LFP contact. Replies go to the Point of
/// Contact, never to cocreate's consultation address.
fn message_to(
    app: &App,
    area: &PolicyArea,
    to: &crate::domain::EmailAddress,
    rendered: &Rendered,
    key: EmailFor<'_>,
) -> Result<NewMessage, LfpMailError> {
    let prefix = format!("{MESSAGE_ID_PREFIX}{}", area.code.to_ascii_lowercase());
    Ok(super::office::message(
        app,
        area.lfp.language,
        rendered,
        &super::office::To {
            name: area.lfp.name.get(area.lfp.language),
            address: to,
            id_prefix: &prefix,
            consultation_id: None,
            cso_id: None,
            in_reply_to: None,
        },
        key,
    )?)
}

/// Characters of the subject of their message that the note repeats.
const NOTE_SUBJECT_CHARS: usize = 200;

/// The message an LFP contact sent in answer to cocreate's mail to their
/// LFP, as the note about it needs it.
pub struct Answer<'a> {
    pub inbound_message_id: i64,
    pub from: &'a crate::domain::EmailAddress,
    pub subject: &'a str,
    pub message_id: Option<&'a str>,
    pub received: DateTime<Utc>,
}

/// The note to an LFP contact whose reply to a digest or reminder reached
/// cocreate instead of the Point of Contact (the Reply-To it ignored): it
/// was kept for the POC, not taken as a proposal, and where to write. In
/// the LFP's language. None when the sender is not an LFP contact: nobody
/// else is sent such mail, and a note to anyone else would be backscatter.
pub fn not_a_proposal(app: &App, answer: &Answer<'_>) -> Result<Option<NewMessage>, LfpMailError> {
    let Some(area) = app
        .config
        .policy_areas
        .iter()
        .find(|a| a.lfp.emails.contains(answer.from))
    else {
        return Ok(None);
    };
    let lang = area.lfp.language;
    let received = answer.received.with_timezone(&app.config.office.time_zone);
    let at = received.format("%H:%M");
    let subject: String = answer.subject.chars().take(NOTE_SUBJECT_CHARS).collect();
    let context = Context::NotAProposal(NotAProposal {
        office: super::office::office(app, lang),
        their_subject: if subject.trim().is_empty() {
            match lang {
                crate::domain::Language::Sq => "(pa subjekt)".into(),
                crate::domain::Language::En => "(no subject)".into(),
            }
        } else {
            subject
        },
        received: match lang {
            crate::domain::Language::Sq => {
                format!("{}, ora {at}", format_day(lang, received.date_naive()))
            }
            crate::domain::Language::En => {
                format!("{} at {at}", format_day(lang, received.date_naive()))
            }
        },
        review_url: format!(
            "{}/review",
            app.config.server.public_url.trim_end_matches('/')
        ),
    });
    let rendered = app.templates.render(lang, &context)?;
    let prefix = format!("{MESSAGE_ID_PREFIX}{}", area.code.to_ascii_lowercase());
    Ok(Some(super::office::message(
        app,
        lang,
        &rendered,
        &super::office::To {
            name: area.lfp.name.get(lang),
            address: answer.from,
            id_prefix: &prefix,
            consultation_id: None,
            cso_id: None,
            in_reply_to: answer.message_id,
        },
        EmailFor::NotAProposal {
            inbound_message_id: answer.inbound_message_id,
        },
    )?))
}

/// The waiting proposals a digest or reminder lists, and how many more
/// wait unlisted.
fn waiting_lines(data: &DigestData, to: &Reader, now: DateTime<Utc>) -> (Vec<ProposalLine>, u64) {
    let lines = data
        .waiting
        .iter()
        .map(|e| line(e, to, Some(now)))
        .collect();
    (
        lines,
        data.waiting_older.saturating_sub(data.waiting.len() as u64),
    )
}

/// A proposal or addition as an LFP reads it; `now` gives how long a
/// waiting one has waited.
fn line(e: &DigestEntry, to: &Reader, now: Option<DateTime<Utc>>) -> ProposalLine {
    ProposalLine {
        receipt_no: e.receipt_no.clone(),
        from: e.cso_name.clone().unwrap_or_else(|| e.from_address.clone()),
        date: super::outreach::short_date(to.lang, e.at.with_timezone(&to.tz).date_naive()),
        excerpt: excerpt(&e.text, EXCERPT_CHARS),
        follow_up: e.follow_up,
        late: e.late,
        waited_days: now.map(|n| (n - e.at).num_days().max(0)),
        link: Some(format!(
            "{}/review/p/{}?lang={}",
            to.public_url,
            e.receipt_no,
            to.lang.code()
        )),
    }
}

/// The campaigns (near-identical copies) among a consultation's proposals
/// of the digest's window, so the LFP answers each once from the review
/// page, which groups every copy.
async fn campaigns(
    app: &App,
    area: &PolicyArea,
    consultation: Option<&Consultation>,
    since: Option<DateTime<Utc>>,
    through: DateTime<Utc>,
) -> Result<Vec<CampaignLine>, LfpMailError> {
    let Some(c) = consultation else {
        return Ok(Vec::new());
    };
    let found = app.store.window_texts(c.id, since, through).await?;
    let texts: Vec<(i64, &str)> = found.iter().map(|(id, t)| (*id, t.as_str())).collect();
    let reader = Reader::of(app, area);
    let link = format!(
        "{}/review/c/{}?lang={}",
        reader.public_url,
        c.spec.reference,
        reader.lang.code()
    );
    Ok(crate::intake::campaigns::group(&texts)
        .into_iter()
        .filter_map(|ids| {
            let (_, first) = found.iter().find(|(id, _)| *id == ids[0])?;
            Some(CampaignLine {
                copies: ids.len(),
                excerpt: excerpt(first, EXCERPT_CHARS),
                link: link.clone(),
            })
        })
        .collect())
}

/// Who reads a digest or reminder: where its links lead, its time zone
/// and language.
struct Reader<'a> {
    public_url: &'a str,
    tz: Tz,
    lang: crate::domain::Language,
}

impl<'a> Reader<'a> {
    fn of(app: &'a App, area: &PolicyArea) -> Self {
        Self {
            public_url: app.config.server.public_url.trim_end_matches('/'),
            tz: app.config.office.time_zone,
            lang: area.lfp.language,
        }
    }
}

/// The start of what someone wrote, on one line, at most `max` characters
/// (cut at a word, with "…"), leaving out an opening greeting: a first
/// short line ending in a comma, colon or exclamation mark ("Përshëndetje,",
/// "Të nderuar zotëri,", "Dear colleagues:") says nothing an LFP needs.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut rest: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .collect();
    let greeting = |l: &str| {
        l.chars().count() <= 60
            && l.split_whitespace().count() <= 5
            && l.ends_with([',', ':', '!', '،'])
    };
    // Only when something follows: a message of one short line is its own
    // excerpt.
    if rest.first().is_some_and(|l| greeting(l)) && rest.iter().skip(1).any(|l| !l.is_empty()) {
        rest.remove(0);
    }
    let flat = rest.join(" ");
    let words: Vec<&str> = flat.split_whitespace().collect();
    let whole = words.join(" ");
    if whole.chars().count() <= max {
        return whole;
    }
    let mut out = String::new();
    for w in words {
        if out.chars().count() + w.chars().count() + 1 > max.saturating_sub(1) {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    if out.is_empty() {
        out = whole.chars().take(max.saturating_sub(1)).collect();
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_leaves_out_the_greeting_and_is_cut_at_a_word() {
        assert_eq!(
            excerpt(
                "Përshëndetje,\n\nPropozojmë që buxheti të botohet çdo muaj.",
                160
            ),
            "Propozojmë që buxheti të botohet çdo muaj."
        );
        assert_eq!(
            excerpt("Të nderuar zotëri,\nKërkojmë\ntë dhëna të hapura.", 160),
            "Kërkojmë të dhëna të hapura."
        );
        // A first line that is the proposal itself stays.
        assert_eq!(
            excerpt("Publikoni kontratat, të gjitha!", 160),
            "Publikoni kontratat, të gjitha!"
        );
        assert_eq!(
            excerpt(
                "Publikoni kontratat e prokurimit, të gjitha!\nDhe shpejt.",
                160
            ),
            "Publikoni kontratat e prokurimit, të gjitha! Dhe shpejt."
        );
        let long = excerpt(&"fjalë ".repeat(100), 40);
        assert!(long.ends_with('…') && long.chars().count() <= 40, "{long}");
        assert!(!long.contains("fjal…"), "cut at a word: {long}");
        assert_eq!(excerpt("", 40), "");
    }

    #[test]
    fn response_reminders_fall_due_after_working_days_and_every_week_after() {
        let holidays = ["2027-01-18"].iter().map(|d| d.parse().unwrap()).collect();
        let cal = WorkingCalendar::new(holidays);
        let closed: chrono::NaiveDate = "2027-01-11".parse().unwrap(); // a Monday
        let on = |d: &str| response_reminder_due(&cal, closed, d.parse().unwrap(), 5);
        assert_eq!(on("2027-01-15"), None, "four working days after");
        // Tue 12 … Mon 18 is a holiday, so the fifth working day is Tue 19.
        assert_eq!(on("2027-01-19"), Some("2027-01-19".parse().unwrap()));
        assert_eq!(on("2027-01-22"), Some("2027-01-19".parse().unwrap()));
        assert_eq!(on("2027-01-26"), Some("2027-01-26".parse().unwrap()));
    }
}
