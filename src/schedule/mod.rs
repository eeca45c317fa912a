//! Named jobs that run on a schedule: today the POC's holding-pen summary;
//! the LFP digests and deadline reminders join here.
//!
//! Each job keeps a watermark in the store: every scheduled time up to it
//! has been dealt with. When `serve` starts after downtime and the schedule
//! fired meanwhile (once or many times), the job runs once at start, not
//! zero times and not once per missed time, and the watermark moves to now.
//! A job first seen starts its watermark at that moment, so a new schedule
//! does not fire for times before it existed.

mod pen_summary;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::app::App;
pub use crate::domain::{Schedule, ScheduleError};

/// One named, scheduled piece of work.
#[async_trait]
pub trait Job: Send + Sync {
    /// Its name in the store and the log.
    fn name(&self) -> &'static str;
    fn schedule(&self) -> &Schedule;
    /// Does the work for the time `now`; returns what it did, for the log.
    async fn run(&self, app: &App, now: DateTime<Utc>) -> Result<String, JobError>;
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    PenSummary(#[from] crate::inbound::pen::PenError),
}

/// The jobs the config schedules.
pub fn jobs(app: &App) -> Vec<Box<dyn Job>> {
    let mut jobs: Vec<Box<dyn Job>> = Vec::new();
    if let Some(s) = &app.config.schedules.pen_summary {
        jobs.push(Box::new(pen_summary::PenSummary(s.clone())));
    }
    jobs
}

/// After a failed run (the store unreachable), the job tries again this
/// much later rather than waiting for its next scheduled time.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `job` on its schedule until `stop`: first a catch-up if a scheduled
/// time passed while cocreate was not running, then each time as it comes.
pub async fn run(app: App, job: Box<dyn Job>, stop: CancellationToken) {
    let tz = app.config.office.time_zone;
    let name = job.name();
    loop {
        let now = app.now();
        let done_through = match app.store.schedule_watermark(name).await {
            Ok(Some(t)) => t,
            Ok(None) => match app.store.set_schedule_watermark(name, now).await {
                Ok(()) => now,
                Err(e) => {
                    tracing::warn!(job = name, error = %e, "cannot record the schedule's start");
                    now
                }
            },
            Err(e) => {
                tracing::warn!(job = name, error = %e, "cannot read the schedule's watermark");
                if sleep_or_stop(RETRY_AFTER, &stop).await {
                    return;
                }
                continue;
            }
        };
        let Some(due) = job.schedule().next_after(tz, done_through) else {
            tracing::info!(job = name, "the schedule fires no more");
            return;
        };
        let (at, catch_up) = if due <= now {
            (now, true)
        } else {
            let wait = (due - now).to_std().unwrap_or_default();
            if sleep_or_stop(wait, &stop).await {
                return;
            }
            (due, false)
        };
        let result = job.run(&app, app.now()).await;
        match result {
            Ok(what) => {
                tracing::info!(job = name, catch_up, due = %due, "{what}");
                if let Err(e) = app.store.set_schedule_watermark(name, at).await {
                    tracing::warn!(job = name, error = %e, "cannot record the run");
                }
            }
            Err(e) => {
                tracing::error!(job = name, error = %e, "scheduled job failed; trying again in a minute");
                if sleep_or_stop(RETRY_AFTER, &stop).await {
                    return;
                }
            }
        }
    }
}

/// True when stopped first.
async fn sleep_or_stop(wait: std::time::Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => false,
        () = stop.cancelled() => true,
    }
}
