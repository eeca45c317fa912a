//! Consultations opening on their date and closing after their deadline,
//! as a scheduled job.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Job, JobError, Schedule};
use crate::app::App;
use crate::consultation::lifecycle;

pub struct Consultations(pub Schedule);

#[async_trait]
impl Job for Consultations {
    fn name(&self) -> &'static str {
        "consultations"
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
        Ok(lifecycle::tick(app, now).await?.to_string())
    }
}
