//! A consultation's life after the POC writes it: opened now or on its
//! opening date, its meeting changed with every invited CSO told, closed at
//! its deadline by the schedule or earlier by the POC with a reason.
//!
//! Every change and the mail it causes are written in one transaction, so
//! a crash never leaves a moved meeting untold or a closed consultation
//! with invitations still leaving.

use crate::domain::Bilingual;
use chrono::{DateTime, NaiveDate, Utc};

use super::{Consultation, ConsultationSpec, ConsultationState, DeadlineExtension};
use crate::app::App;
use crate::outbound::notices;
use crate::outbound::outreach::{self, OutreachError, SendSummary, format_date};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(
        "consultation {reference}'s deadline {deadline} has passed; set a new one with `cocreate consultation edit {reference} --closes DATE` first"
    )]
    DeadlinePassed {
        reference: String,
        deadline: NaiveDate,
    },
    #[error("consultation {reference} is {from}, so it cannot be made {to}")]
    Transition {
        reference: String,
        from: &'static str,
        to: &'static str,
    },
    #[error(
        "consultation {reference} is announced until {deadline}: closing it earlier needs --reason TEXT, which every invited CSO is told"
    )]
    ReasonNeeded {
        reference: String,
        deadline: NaiveDate,
    },
    #[error(transparent)]
    Outreach(#[from] OutreachError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What opening did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Open now; the POC sends the invitations (`outreach send`).
    Now,
    /// Opens on this date, and its invitations go out then.
    OnSchedule(NaiveDate),
}

/// What closing did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closed {
    /// Messages about it still queued, cancelled.
    pub cancelled: u64,
    /// Notices of an early close queued.
    pub notified: u64,
}

/// Opens a draft: now if its opening date has come, otherwise on that date
/// (the schedule opens it and sends the invitations).
pub async fn open(app: &App, c: &Consultation) -> Result<Opened, LifecycleError> {
    let today = app.today();
    if !matches!(
        c.state,
        ConsultationState::Draft | ConsultationState::Scheduled
    ) {
        return Err(transition(c, ConsultationState::Open));
    }
    if c.spec.closes_on < today {
        return Err(LifecycleError::DeadlinePassed {
            reference: c.spec.reference.clone(),
            deadline: c.spec.closes_on,
        });
    }
    if c.spec.opens_on > today {
        app.store
            .update_consultation(c.id, &c.spec, Some(ConsultationState::Scheduled))
            .await?;
        return Ok(Opened::OnSchedule(c.spec.opens_on));
    }
    app.store
        .update_consultation(c.id, &c.spec, Some(ConsultationState::Open))
        .await?;
    Ok(Opened::Now)
}

/// Closes an open consultation. Before its deadline a reason is needed:
/// the deadline becomes today (so late replies are told the real one),
/// the change is recorded, and every invited address is told. Mail about
/// it still queued (invitations, reminders, notices) is cancelled.
pub async fn close(
    app: &App,
    c: &Consultation,
    reason: Option<&Bilingual<String>>,
) -> Result<Closed, LifecycleError> {
    if c.state != ConsultationState::Open {
        return Err(transition(c, ConsultationState::Closed));
    }
    let now = app.now();
    let today = app.config.office.date_at(now);
    let reason = reason.filter(|r| !r.sq.trim().is_empty());
    let early = today < c.spec.closes_on;
    let sender = app.sender();
    let (spec, change, notices, why) = if early {
        let reason = reason.ok_or_else(|| LifecycleError::ReasonNeeded {
            reference: c.spec.reference.clone(),
            deadline: c.spec.closes_on,
        })?;
        let mut spec = c.spec.clone();
        spec.closes_on = today.max(spec.opens_on);
        let notices =
            notices::closed_notices(app.store.as_ref(), &sender, c, &spec, reason).await?;
        let change = DeadlineExtension {
            consultation_id: c.id,
            previous: c.spec.closes_on,
            new: spec.closes_on,
            reason: reason.clone(),
            at: now,
        };
        let why = format!(
            "cancelled: the consultation closed early on {today}: {}",
            reason.en
        );
        (spec, Some(change), notices, why)
    } else {
        let why = format!(
            "cancelled: the consultation closed after its deadline, {}",
            format_date(crate::domain::Language::En, c.spec.closes_on)
        );
        (c.spec.clone(), None, Vec::new(), why)
    };
    let (cancelled, notified) = app
        .store
        .close_consultation(c.id, &spec, change.as_ref(), &why, &notices)
        .await?;
    Ok(Closed {
        cancelled,
        notified,
    })
}

/// Saves an edit of a consultation that is not closed. When an open
/// consultation's meeting moved or was cancelled, its calendar SEQUENCE is
/// raised and every invited address is told, in the same transaction;
/// returns how many were told.
pub async fn edit(
    app: &App,
    c: &Consultation,
    mut spec: ConsultationSpec,
) -> Result<u64, LifecycleError> {
    let moved = notices::meeting_moved(c.spec.meeting.as_ref(), spec.meeting.as_ref());
    if c.state != ConsultationState::Open || !moved {
        // Before invitations go out, the calendar event is simply replaced;
        // its SEQUENCE stays as it was.
        if let (Some(new), Some(old)) = (spec.meeting.as_mut(), c.spec.meeting.as_ref()) {
            new.sequence = old.sequence;
        }
        app.store.update_consultation(c.id, &spec, None).await?;
        return Ok(0);
    }
    if let Some(new) = spec.meeting.as_mut() {
        new.sequence = c.spec.meeting.as_ref().map_or(0, |m| m.sequence + 1);
    }
    let notices = notices::meeting_notices(app.store.as_ref(), &app.sender(), c, &spec).await?;
    Ok(app.store.update_with_notices(c.id, &spec, &notices).await?)
}

/// What one pass of the consultations schedule did, for the log.
#[derive(Debug, Default)]
pub struct Tick {
    pub opened: Vec<(String, SendSummary)>,
    pub closed: Vec<(String, Closed)>,
}

impl std::fmt::Display for Tick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.opened.is_empty() && self.closed.is_empty() {
            return f.write_str("no consultation opens or closes");
        }
        let mut parts = Vec::new();
        for (r, s) in &self.opened {
            parts.push(format!(
                "opened {r} and queued {}",
                crate::domain::count(s.queued as usize, "invitation")
            ));
        }
        for (r, c) in &self.closed {
            parts.push(format!(
                "closed {r} after its deadline ({} queued messages cancelled)",
                c.cancelled
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Opens every scheduled consultation whose opening date has come (and
/// queues its invitations) and closes every open one whose deadline has
/// passed. Safe to run twice or from two daemons: a consultation already
/// opened or closed is left alone, and invitations are keyed.
pub async fn tick(app: &App, now: DateTime<Utc>) -> Result<Tick, LifecycleError> {
    let today = app.config.office.date_at(now);
    let mut done = Tick::default();
    for c in app.store.consultations().await? {
        match c.state {
            ConsultationState::Scheduled if c.spec.closes_on < today => {
                tracing::warn!(
                    consultation = %c.spec.reference,
                    "a scheduled consultation's whole period passed while cocreate was not running; it stays unopened (give it new dates with `cocreate consultation edit`)"
                );
            }
            ConsultationState::Scheduled if c.spec.opens_on <= today => {
                app.store
                    .update_consultation(c.id, &c.spec, Some(ConsultationState::Open))
                    .await?;
                let opened = Consultation {
                    state: ConsultationState::Open,
                    ..c
                };
                let sent = outreach::send(app.store.as_ref(), &app.sender(), &opened).await?;
                done.opened.push((opened.spec.reference, sent));
            }
            ConsultationState::Open if c.spec.closes_on < today => {
                let closed = close(app, &c, None).await?;
                done.closed.push((c.spec.reference, closed));
            }
            _ => {}
        }
    }
    Ok(done)
}

fn transition(c: &Consultation, to: ConsultationState) -> LifecycleError {
    LifecycleError::Transition {
        reference: c.spec.reference.clone(),
        from: c.state.as_str(),
        to: to.as_str(),
    }
}
