//! `cocreate schedule …` and `cocreate digest …`.

use std::io::Write;

use anyhow::bail;
use chrono::{DateTime, Utc};

use crate::app::App;
use crate::outbound::lfp::{self, Queued};
use crate::schedule::{self, Outcome};

/// Each job, its expression, its next three runs in office time, and when
/// it last ran.
pub async fn list(app: &App, out: &mut impl Write) -> anyhow::Result<()> {
    let tz = app.config.office.time_zone;
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M").to_string();
    let now = app.now();
    writeln!(out, "Times are in {tz}.")?;
    for job in schedule::all(app) {
        let name = job.name;
        let last = app.store.schedule_watermark(name).await?;
        let last = last.map_or_else(|| "never".to_string(), local);
        let Some(schedule) = &job.schedule else {
            writeln!(
                out,
                "{name:<19} off (schedules.{name} is empty); last ran: {last}"
            )?;
            continue;
        };
        let next: Vec<String> = std::iter::successors(schedule.next_after(tz, now), |t| {
            schedule.next_after(tz, *t)
        })
        .take(3)
        .map(local)
        .collect();
        writeln!(
            out,
            "{name:<19} \"{}\"; next: {}; last ran: {last}",
            schedule.as_str(),
            if next.is_empty() {
                "never".to_string()
            } else {
                next.join(", ")
            }
        )?;
    }
    Ok(())
}

/// Runs every job (or the one named) whose time has come, once, as
/// `serve` would; for a server run from cron, or to catch up at once.
pub async fn run(app: &App, only: Option<&str>, out: &mut impl Write) -> anyhow::Result<()> {
    let jobs = schedule::all(app);
    if let Some(name) = only
        && !jobs.iter().any(|j| j.name == name)
    {
        let names: Vec<&str> = jobs.iter().map(|j| j.name).collect();
        bail!(
            "there is no job '{name}'; the jobs are {}",
            names.join(", ")
        );
    }
    let tz = app.config.office.time_zone;
    for job in jobs {
        let name = job.name;
        if only.is_some_and(|n| n != name) {
            continue;
        }
        let Some(schedule) = &job.schedule else {
            writeln!(out, "{name}: off (schedules.{name} is empty)")?;
            continue;
        };
        match schedule::run_if_due(app, name, schedule, job.job.as_ref(), app.now()).await? {
            Outcome::Started { next } | Outcome::NotDue { next } => writeln!(
                out,
                "{name}: not due; next at {}",
                next.map_or_else(
                    || "never".to_string(),
                    |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
                )
            )?,
            Outcome::Ran { what, .. } => writeln!(out, "{name}: {what}")?,
        }
    }
    Ok(())
}

/// Prints the LFP's next digest as it would be sent now, without sending
/// it or moving its watermark.
pub async fn preview(app: &App, code: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let area = lfp::lfp(app, code)?;
    let consultations = app.store.consultations().await?;
    let d = lfp::digest(app, area, &consultations, app.now()).await?;
    let to: Vec<String> = area.lfp.emails.iter().map(ToString::to_string).collect();
    writeln!(out, "To: {}", to.join(", "))?;
    writeln!(out, "Subject: {}\n", d.rendered.subject)?;
    write!(out, "{}", d.rendered.text)?;
    if d.messages.is_empty() {
        writeln!(
            out,
            "\n(Nothing new, and schedules.lfp_digest_when_empty is \"nothing\": it would not be sent.)"
        )?;
    }
    Ok(())
}

/// Sends the LFP's digest now, covering everything since its last one.
pub async fn send(app: &App, code: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let area = lfp::lfp(app, code)?;
    let consultations = app.store.consultations().await?;
    let Some((d, queued)) = lfp::send_digests(app, &[area], &consultations, app.now(), None)
        .await?
        .pop()
    else {
        return Ok(());
    };
    match queued {
        Queued::Sent(n) => writeln!(
            out,
            "Queued the digest of {} for {}: {}, {}, {} waiting. `cocreate serve` delivers it.",
            d.area,
            crate::domain::count(n, "contact"),
            crate::domain::count(d.new_proposals as usize, "new proposal"),
            crate::domain::count(d.new_follow_ups as usize, "addition"),
            d.waiting
        )?,
        Queued::NothingNew => writeln!(
            out,
            "Nothing new for {} since its last digest; none sent (schedules.lfp_digest_when_empty).",
            d.area
        )?,
        Queued::SentAlready | Queued::AlreadyMade => writeln!(
            out,
            "Another run made {}'s digest at the same moment; nothing more was queued.",
            d.area
        )?,
    }
    Ok(())
}
