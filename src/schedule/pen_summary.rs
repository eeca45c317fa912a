//! The POC's daily summary as a scheduled job.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Job, JobError, Schedule};
use crate::app::App;
use crate::inbound::pen::{Summary, queue_summary};

pub struct PenSummary(pub Schedule);

#[async_trait]
impl Job for PenSummary {
    fn name(&self) -> &'static str {
        "pen_summary"
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
