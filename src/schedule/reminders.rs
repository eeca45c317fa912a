//! Deadline reminders to invited CSOs and response reminders to LFPs, as
//! scheduled jobs. Each message's idempotency key names its consultation,
//! deadline (or due day), offset and recipient, so running again, a second
//! daemon or a restart queues nothing twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Job, JobError, Schedule};
use crate::app::App;
use crate::consultation::ConsultationState;
use crate::consultation::lifecycle::office_date;
use crate::outbound::{lfp, notices};

pub struct DeadlineReminders(pub Schedule);

#[async_trait]
impl Job for DeadlineReminders {
    fn name(&self) -> &'static str {
        "deadline_reminders"
    }

    fn schedule(&self) -> &Schedule {
        &self.0
    }

    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        _due: DateTime<Utc>,
    ) -> Result<String, JobError> {
        let today = office_date(app, now);
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
                    "{} reminders of {} ({days} days before {})",
                    queued, c.spec.reference, c.spec.closes_on
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

pub struct ResponseReminders(pub Schedule);

#[async_trait]
impl Job for ResponseReminders {
    fn name(&self) -> &'static str {
        "response_reminders"
    }

    fn schedule(&self) -> &Schedule {
        &self.0
    }

    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        _due: DateTime<Utc>,
    ) -> Result<String, JobError> {
        let mut done = Vec::new();
        for c in app.store.consultations().await? {
            let messages = lfp::response_reminders(app, &c, now).await?;
            let queued = app.store.enqueue(&messages).await?;
            if queued > 0 {
                done.push(format!("{} to the LFP of {}", queued, c.spec.reference));
            }
        }
        Ok(if done.is_empty() {
            "no response reminders due".into()
        } else {
            format!("queued response reminders: {}", done.join("; "))
        })
    }
}
