//! The weekly LFP digests as a scheduled job: one run makes each LFP's
//! digest from its own watermark (see `outbound::lfp`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Job, JobError, Schedule};
use crate::app::App;
use crate::outbound::lfp::{self, Queued};

pub struct LfpDigests(pub Schedule);

#[async_trait]
impl Job for LfpDigests {
    fn name(&self) -> &'static str {
        "lfp_digest"
    }

    fn schedule(&self) -> &Schedule {
        &self.0
    }

    async fn run(
        &self,
        app: &App,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<String, JobError> {
        let consultations = app.store.consultations().await?;
        let mut parts = Vec::new();
        let mut due_now = Vec::new();
        for area in &app.config.policy_areas {
            // A run cut short (a restart) left some LFPs done for this
            // scheduled time: they get nothing more until the next one.
            if app
                .store
                .digest_watermark(&area.code)
                .await?
                .is_some_and(|w| w >= due)
            {
                parts.push(format!("{}: sent already for this week", area.code));
            } else {
                due_now.push(area);
            }
        }
        for (d, queued) in lfp::send_digests(app, &due_now, &consultations, now, Some(due)).await? {
            parts.push(match queued {
                Queued::Sent(n) => format!(
                    "{}: {} new, {} additions, {} waiting, to {n} contact(s)",
                    d.area, d.new_proposals, d.new_follow_ups, d.waiting
                ),
                Queued::NothingNew => format!("{}: nothing new, none sent", d.area),
                Queued::AlreadyMade => format!("{}: made already by another run", d.area),
            });
        }
        Ok(format!("LFP digests: {}", parts.join("; ")))
    }
}
