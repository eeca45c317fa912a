//! The POC's daily summary: what waits in the holding pen, why, and how to
//! act on it; mail the relay refused or that waits to be tried again, with
//! the reasons; consultations opening and closing; digests sent. Sent
//! through the outbox like every other email.
//!
//! At most one summary a day: its idempotency key is the date, so a daemon
//! restarted at the scheduled minute, or two daemons sharing PostgreSQL,
//! queue it once. A day with nothing to report sends nothing.

use chrono::{DateTime, NaiveDate, Utc};

use crate::app::App;
use crate::consultation::{Consultation, ConsultationState};
use crate::domain::{EmailFor, EmailKind, ReplyKey};
use crate::intake::types::{InboundState, InboundSummary};
use crate::outbound::email::{Context, HeldLine, Named, OutboxLine, PenSummary};
use crate::outbound::message::{self, MessageError, Outgoing};
use crate::outbound::outbox::NewMessage;
use crate::outbound::outreach::{format_date, format_time};
use crate::outbound::templates::TemplateError;
use crate::store::StoreError;
use crate::store::records::{Deferred, OutboxFailure};

#[derive(Debug, thiserror::Error)]
pub enum PenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// Messages listed one by one; the rest are counted.
const LISTED: usize = 50;

/// What asking for today's summary did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// Nothing waits: no email.
    Empty,
    /// Queued for the POC, listing this many messages.
    Queued(usize),
    /// Today's was queued before.
    AlreadyQueued,
}

/// Failed and deferred messages listed; the rest are counted.
const OUTBOX_LISTED: u32 = 20;

/// Consultations opening or closing this many days ahead are named.
const SOON_DAYS: i64 = 2;

/// Everything the summary reports.
#[derive(Debug, Default)]
pub struct Report {
    pub held: Vec<InboundSummary>,
    pub failed_total: u64,
    pub failures: Vec<OutboxFailure>,
    pub deferred: Vec<Deferred>,
    /// Scheduled to open within [`SOON_DAYS`].
    pub opening: Vec<Consultation>,
    /// Open, their deadline within [`SOON_DAYS`].
    pub closing: Vec<Consultation>,
    /// LFP digests delivered in the last day.
    pub digests_sent: u64,
}

impl Report {
    /// Only what is in the holding pen (tests, and `mail pen summary`'s
    /// preview when nothing else is asked).
    pub fn held_only(held: Vec<InboundSummary>) -> Self {
        Self {
            held,
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.held.is_empty()
            && self.failures.is_empty()
            && self.deferred.is_empty()
            && self.opening.is_empty()
            && self.closing.is_empty()
            && self.digests_sent == 0
    }
}

/// Reads what the summary for `now` reports.
pub async fn gather(app: &App, now: DateTime<Utc>) -> Result<Report, PenError> {
    let store = app.store.as_ref();
    let today = app.config.office.date_at(now);
    let soon = |d: NaiveDate| d >= today && (d - today).num_days() <= SOON_DAYS;
    let consultations = store.consultations().await?;
    Ok(Report {
        held: store.inbound_in_state(InboundState::Held).await?,
        failed_total: store.outbox_counts().await?.failed,
        failures: store.outbox_failures(OUTBOX_LISTED).await?,
        deferred: store.deferred(OUTBOX_LISTED).await?,
        opening: consultations
            .iter()
            .filter(|c| c.state == ConsultationState::Scheduled && soon(c.spec.opens_on))
            .cloned()
            .collect(),
        closing: consultations
            .iter()
            .filter(|c| c.state == ConsultationState::Open && soon(c.spec.closes_on))
            .cloned()
            .collect(),
        digests_sent: store
            .sent_since(
                EmailKind::LfpDigest.as_str(),
                now - chrono::TimeDelta::days(1),
            )
            .await?,
    })
}

/// An outbox kind as the summary's reader calls it.
fn kind_label(kind: &str, lang: crate::domain::Language) -> String {
    EmailKind::from_outbox(kind).map_or_else(|| kind.to_string(), |k| k.label(lang).to_string())
}

/// The summary's email for `date`, or None when there is nothing to report.
pub fn compose(
    app: &App,
    report: &Report,
    date: NaiveDate,
) -> Result<Option<NewMessage>, PenError> {
    if report.is_empty() {
        return Ok(None);
    }
    let held = &report.held;
    let config = app.config.as_ref();
    let lang = config.schedules.pen_summary_language;
    let tz = config.office.time_zone;
    let office_name = config.office.name.get(lang);
    let named = |c: &Consultation, d: NaiveDate| {
        format!(
            "{}, {}: {}",
            c.spec.reference,
            c.spec.title().get(lang),
            format_date(lang, d)
        )
    };
    let context = Context::PenSummary(PenSummary {
        office: Named { name: office_name },
        date: date.format("%d.%m.%Y").to_string(),
        count: held.len(),
        many: held.len() != 1,
        messages: held
            .iter()
            .take(LISTED)
            .map(|m| HeldLine {
                id: m.id,
                received: format_time(tz, m.received_at),
                source: &m.source,
                from: m.from_address.as_deref().unwrap_or("?"),
                subject: m.subject.as_deref().unwrap_or(""),
                reason: m.reason_in(lang),
            })
            .collect(),
        more: held.len().saturating_sub(LISTED),
        failed_total: report.failed_total,
        failures: report
            .failures
            .iter()
            .map(|f| OutboxLine {
                kind: kind_label(&f.kind, lang),
                recipient: f.recipient.clone(),
                attempts: f.attempts,
                error: f.last_error.clone(),
                next: None,
            })
            .collect(),
        deferred: report
            .deferred
            .iter()
            .map(|d| OutboxLine {
                kind: kind_label(&d.kind, lang),
                recipient: d.recipient.clone(),
                attempts: d.attempts,
                error: d.last_error.clone(),
                next: Some(format_time(tz, d.next_attempt_at)),
            })
            .collect(),
        opening: report
            .opening
            .iter()
            .map(|c| named(c, c.spec.opens_on))
            .collect(),
        closing: report
            .closing
            .iter()
            .map(|c| named(c, c.spec.closes_on))
            .collect(),
        digests_sent: report.digests_sent,
    });
    let rendered = app.templates.render(lang, &context)?;
    let from = config.mail.from.clone();
    let message_id = format!("pen.{}@{}", ReplyKey::generate(), config.mail.domain);
    let bytes = message::build(
        &Outgoing {
            from_name: "cocreate",
            from: &from,
            to_name: office_name,
            to: &config.office.email,
            reply_to: None,
            message_id: &message_id,
            in_reply_to: None,
            auto_submitted: "auto-generated",
            rendered: &rendered,
            list: None,
            attachments: &[],
        },
        app.dkim.as_deref(),
    )?;
    Ok(Some(NewMessage {
        idempotency_key: EmailFor::PenSummary { date }.idempotency_key(),
        kind: EmailKind::PenSummary,
        recipient: config.office.email.clone(),
        envelope_from: config.mail.from.to_string(),
        consultation_id: None,
        cso_id: None,
        message: bytes,
        reply_key: None,
    }))
}

/// Queues today's summary (in the office's time zone) unless there is
/// nothing to report or it was queued already.
pub async fn queue_summary(app: &App, now: DateTime<Utc>) -> Result<Summary, PenError> {
    let report = gather(app, now).await?;
    let date = app.config.office.date_at(now);
    let Some(message) = compose(app, &report, date)? else {
        return Ok(Summary::Empty);
    };
    Ok(
        match app.store.enqueue(std::slice::from_ref(&message)).await? {
            0 => Summary::AlreadyQueued,
            _ => Summary::Queued(report.held.len()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(n: usize) -> Vec<InboundSummary> {
        (0..n)
            .map(|i| InboundSummary {
                id: i as i64 + 1,
                received_at: "2026-12-03T08:15:00Z".parse().unwrap(),
                source: "maildir".into(),
                from_address: Some(format!("someone{i}@elsewhere.example.org")),
                subject: Some("Pyetje <b>".into()),
                state: InboundState::Held,
                classification: Some("unmatched".into()),
                reason: Some("no reply key".into()),
                reason_sq: Some("pa çelës përgjigjeje".into()),
            })
            .collect()
    }

    #[tokio::test]
    async fn an_empty_pen_sends_nothing_and_a_full_one_lists_what_waits() {
        let app = App::in_memory().await;
        let config = app.config.as_ref();
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert!(compose(&app, &Report::default(), date).unwrap().is_none());
        let m = compose(&app, &Report::held_only(held(53)), date)
            .unwrap()
            .unwrap();
        assert_eq!(m.idempotency_key, "pen_summary:2026-12-03");
        assert_eq!(m.recipient, config.office.email);
        let parsed = mail_parser::MessageParser::default()
            .parse(&m.message)
            .unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Në pritje: 53 mesazhe pa adresë në cocreate")
        );
        let text = parsed.body_text(0).unwrap();
        assert!(
            text.contains("#1 · marrë më 03.12.2026 09:15 (maildir)"),
            "{text}"
        );
        assert!(text.contains("Nga: someone0@elsewhere.example.org"));
        // Plain text is not escaped; the HTML is.
        assert!(text.contains("Subjekti: Pyetje <b>"));
        assert!(text.contains("… dhe 3 të tjerë"));
        assert!(!text.contains("#51 "));
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("Pyetje &lt;b&gt;"), "{html}");
        assert_eq!(
            parsed.header("Auto-Submitted").and_then(|h| h.as_text()),
            Some("auto-generated")
        );
    }
}
