//! The work of each scheduled job. Each is small: the logic lives where its
//! subject does (consultation::lifecycle, outbound::notices, outbound::lfp,
//! inbound::pen); a job only runs it and says what it did, for the log.
//!
//! Every message a job queues has an idempotency key naming its job,
//! recipient and period, so running again, a second daemon or a restart
//! queues nothing twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Job, JobError};
use crate::app::App;
use crate::consultation::{ConsultationState, lifecycle};
use crate::inbound::pen::{Summary, queue_summary};
use crate::outbound::lfp::{self, Queued};
use crate::outbound::notices;

/// Opens consultations on their date and closes them after their deadline;
/// queues any correction notice a decision left untold (its process ended
/// between recording the change and queueing the notice).
pub struct Consultations;

#[async_trait]
impl Job for Consultations {
    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<String, JobError> {
        let ticked = lifecycle::tick(app, now).await?.to_string();
        let told = crate::accountability::notices::tell_corrections(app).await?;
        Ok(if told == 0 {
            ticked
        } else {
            format!(
                "{ticked}; {}",
                crate::accountability::plural(told, "correction notice")
            )
        })
    }
}

/// Reminders to invited CSOs some days before a deadline.
pub struct DeadlineReminders;

#[async_trait]
impl Job for DeadlineReminders {
    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<String, JobError> {
        let today = app.config.office.date_at(now);
        let settings = &app.config.schedules;
        let mut done = Vec::new();
        for c in app.store.consultations().await? {
            if c.state != ConsultationState::Open {
                continue;
            }
            let Some(days) =
                notices::due_reminder(&settings.reminder_days, c.spec.closes_on, today)
            else {
                continue;
            };
            let messages = notices::deadline_reminders(
                app.store.as_ref(),
                &app.sender(),
                &c,
                days,
                today,
                settings.remind_only_silent,
            )
            .await?;
            let queued = app.store.enqueue(&messages).await?;
            if queued > 0 {
                done.push(format!(
                    "{} of {} ({} before {})",
                    crate::domain::count(queued as usize, "reminder"),
                    c.spec.reference,
                    crate::domain::count(days as usize, "day"),
                    c.spec.closes_on
                ));
            }
        }
        Ok(if done.is_empty() {
            "no deadline reminders due".into()
        } else {
            format!("queued {}", done.join("; "))
        })
    }
}

/// Each LFP's weekly digest, from its own watermark.
pub struct LfpDigests;

#[async_trait]
impl Job for LfpDigests {
    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<String, JobError> {
        let consultations = app.store.consultations().await?;
        let areas: Vec<_> = app.config.policy_areas.iter().collect();
        let mut parts = Vec::new();
        for (d, queued) in lfp::send_digests(app, &areas, &consultations, now, Some(due)).await? {
            parts.push(match queued {
                Queued::Sent(n) => format!(
                    "{}: {} new, {} additions, {} waiting, to {n} contact(s)",
                    d.area, d.new_proposals, d.new_follow_ups, d.waiting
                ),
                Queued::NothingNew => format!("{}: nothing new, none sent", d.area),
                Queued::SentAlready => format!("{}: sent already for this week", d.area),
                Queued::AlreadyMade => format!("{}: made already by another run", d.area),
            });
        }
        Ok(format!("LFP digests: {}", parts.join("; ")))
    }
}

/// Reminders to LFPs of proposals still without a disposition.
pub struct ResponseReminders;

#[async_trait]
impl Job for ResponseReminders {
    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<String, JobError> {
        let mut done = Vec::new();
        for c in app.store.consultations().await? {
            let messages = lfp::response_reminders(app, &c, now).await?;
            let queued = app.store.enqueue(&messages).await?;
            if queued > 0 {
                done.push(format!("{queued} to the LFP of {}", c.spec.reference));
            }
        }
        Ok(if done.is_empty() {
            "no response reminders due".into()
        } else {
            format!("queued response reminders: {}", done.join("; "))
        })
    }
}

/// The POC's daily summary.
pub struct PenSummary;

#[async_trait]
impl Job for PenSummary {
    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<String, JobError> {
        Ok(match queue_summary(app, now).await? {
            Summary::Queued(n) => format!(
                "the daily summary ({n} message(s) in the holding pen) queued for {}",
                app.config.office.email
            ),
            Summary::Empty => "nothing to report; no daily summary".into(),
            Summary::AlreadyQueued => "today's summary was queued already".into(),
        })
    }
}
