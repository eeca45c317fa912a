//! Named jobs that run on a schedule (the `[schedules]` section): opening
//! and closing consultations, deadline reminders, the LFP digests and
//! response reminders, and the POC's daily summary.
//!
//! Each job keeps a watermark in the store: every scheduled time up to it
//! has been dealt with. When `serve` starts after downtime and the schedule
//! fired meanwhile (once or many times), the job runs once at start, not
//! zero times and not once per missed time, and the watermark moves to now.
//! A job first seen starts its watermark at that moment, so a new schedule
//! does not fire for times before it existed.

mod jobs;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::app::App;
pub use crate::domain::{Schedule, ScheduleError};

/// One scheduled piece of work.
#[async_trait]
pub trait Job: Send + Sync {
    /// Does the work for the scheduled time `due` at the time `now` (later
    /// than `due` after downtime); returns what it did, for the log.
    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<String, JobError>;
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    PenSummary(#[from] crate::inbound::pen::PenError),
    #[error(transparent)]
    Lifecycle(#[from] crate::consultation::lifecycle::LifecycleError),
    #[error(transparent)]
    Outreach(#[from] crate::outbound::outreach::OutreachError),
    #[error(transparent)]
    LfpMail(#[from] crate::outbound::lfp::LfpMailError),
    #[error(transparent)]
    Accountability(#[from] crate::accountability::AccountabilityError),
}

/// A job as the config schedules it.
pub struct Scheduled {
    /// Its key in `[schedules]`, and its name in the store and the log.
    pub name: &'static str,
    /// None when the config turns it off.
    pub schedule: Option<Schedule>,
    pub job: Box<dyn Job>,
}

/// Every job, in the order they run, with its schedule from the config.
pub fn all(app: &App) -> Vec<Scheduled> {
    app.config
        .schedules
        .jobs()
        .into_iter()
        .map(|(name, schedule)| Scheduled {
            name,
            schedule: schedule.cloned(),
            job: match name {
                "consultations" => Box::new(jobs::Consultations) as Box<dyn Job>,
                "deadline_reminders" => Box::new(jobs::DeadlineReminders),
                "lfp_digest" => Box::new(jobs::LfpDigests),
                "response_reminders" => Box::new(jobs::ResponseReminders),
                "pen_summary" => Box::new(jobs::PenSummary),
                other => unreachable!("SchedulesConfig::jobs names no job {other}"),
            },
        })
        .collect()
}

/// After a failed run (the store unreachable), the job tries again this
/// much later rather than waiting for its next scheduled time.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// What [`run_if_due`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Seen for the first time: its watermark starts now, so it does not
    /// fire for times before it existed.
    Started { next: Option<DateTime<Utc>> },
    /// Not due: it next fires at `next` (None: never again).
    NotDue { next: Option<DateTime<Utc>> },
    /// Ran for the scheduled time `due` (a catch-up when `due` had passed
    /// before this pass), and did `what`.
    Ran {
        due: DateTime<Utc>,
        catch_up: bool,
        what: String,
    },
}

/// Runs `job` once if a scheduled time has come since its watermark (once,
/// however many times it fired meanwhile), then moves the watermark to
/// `now`. `serve` calls it when the next time comes; `cocreate schedule run`
/// calls it at once.
pub async fn run_if_due(
    app: &App,
    name: &str,
    schedule: &Schedule,
    job: &dyn Job,
    now: DateTime<Utc>,
) -> Result<Outcome, JobError> {
    let tz = app.config.office.time_zone;
    let Some(done_through) = app.store.schedule_watermark(name).await? else {
        app.store.set_schedule_watermark(name, now).await?;
        return Ok(Outcome::Started {
            next: schedule.next_after(tz, now),
        });
    };
    let Some(due) = schedule
        .next_after(tz, done_through)
        .filter(|due| *due <= now)
    else {
        return Ok(Outcome::NotDue {
            next: schedule.next_after(tz, done_through),
        });
    };
    let catch_up = schedule.next_after(tz, due).is_some_and(|n| n <= now)
        || (now - due) > chrono::TimeDelta::minutes(1);
    let what = job.run(app, now, due).await?;
    app.store.set_schedule_watermark(name, now).await?;
    Ok(Outcome::Ran {
        due,
        catch_up,
        what,
    })
}

/// Runs a job on `schedule` until `stop`: first a catch-up if a scheduled
/// time passed while cocreate was not running, then each time as it comes.
pub async fn run(
    app: App,
    name: &'static str,
    schedule: Schedule,
    job: Box<dyn Job>,
    stop: CancellationToken,
) {
    loop {
        match run_if_due(&app, name, &schedule, job.as_ref(), app.now()).await {
            Ok(Outcome::Ran {
                due,
                catch_up,
                what,
            }) => tracing::info!(job = name, catch_up, due = %due, "{what}"),
            Ok(Outcome::Started { next } | Outcome::NotDue { next }) => {
                let Some(next) = next else {
                    tracing::info!(job = name, "the schedule fires no more");
                    return;
                };
                let tz = app.config.office.time_zone;
                tracing::info!(job = name, next = %next.with_timezone(&tz).to_rfc3339(), "next run");
                let wait = (next - app.now()).to_std().unwrap_or_default();
                if sleep_or_stop(wait, &stop).await {
                    return;
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
