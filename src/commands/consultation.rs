//! `cocreate consultation …` and `cocreate outreach …`.

use crate::domain::Bilingual;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;
use chrono::NaiveDate;

use super::{count, thousands};
use crate::app::App;
use crate::config::Config;
use crate::consultation::lifecycle::{self, Opened};
use crate::consultation::spec::MeetingInput;
use crate::consultation::{Consultation, ConsultationState, DeadlineExtension, SpecInput};
use crate::domain::WorkingCalendar;
use crate::outbound::{notices, outreach};
use crate::store::Store;

/// The consultation's details as flags; each replaces the file's value.
#[derive(Debug, Default, clap::Args)]
pub struct SpecFlags {
    /// A TOML file with the consultation (see the README for its shape).
    #[arg(long, value_name = "FILE.toml")]
    pub file: Option<PathBuf>,
    /// Reference code, e.g. OGP-2026-FISCAL.
    #[arg(long)]
    pub reference: Option<String>,
    /// Policy area code, e.g. FISCAL.
    #[arg(long)]
    pub policy_area: Option<String>,
    /// Thematic group code within the policy area.
    #[arg(long)]
    pub thematic_group: Option<String>,
    /// The title in Albanian.
    #[arg(long)]
    pub title_sq: Option<String>,
    /// The title in English.
    #[arg(long)]
    pub title_en: Option<String>,
    /// The description in Albanian (blank lines separate paragraphs).
    #[arg(long)]
    pub description_sq: Option<String>,
    /// The description in English.
    #[arg(long)]
    pub description_en: Option<String>,
    /// Opening date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub opens: Option<NaiveDate>,
    /// Closing deadline (the last day), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub closes: Option<NaiveDate>,
    /// Why the period is shorter than the legal minimum, in Albanian
    /// (recorded).
    #[arg(long, value_name = "TEXT")]
    pub short_period_reason: Option<String>,
    /// The same reason in English.
    #[arg(long, value_name = "TEXT", requires = "short_period_reason")]
    pub short_period_reason_en: Option<String>,
    /// Meeting start, local time: YYYY-MM-DDTHH:MM (seconds optional).
    #[arg(long, value_name = "DATETIME", value_parser = local_date_time)]
    pub meeting_at: Option<chrono::NaiveDateTime>,
    /// How long the meeting lasts, in minutes (default 120).
    #[arg(long, value_name = "MINUTES")]
    pub meeting_minutes: Option<u32>,
    /// Where the meeting is held.
    #[arg(long, value_name = "TEXT")]
    pub meeting_place: Option<String>,
    /// The meeting's online link (https://…).
    #[arg(long, value_name = "URL")]
    pub meeting_link: Option<String>,
    /// A presentation to attach to the invitations (at most 10 MB).
    #[arg(long, value_name = "FILE")]
    pub presentation: Option<String>,
}

/// A local date and time with or without seconds (2026-12-10T10:00), as
/// the consultation file takes it.
fn local_date_time(text: &str) -> Result<chrono::NaiveDateTime, String> {
    let text = text.trim().replace(' ', "T");
    chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| format!("'{text}' is not a local date and time like 2026-12-10T10:00"))
}

impl SpecFlags {
    /// The file (if any) overlaid with the flags, and the folder relative
    /// paths in it are resolved from.
    fn input(self) -> anyhow::Result<(SpecInput, PathBuf)> {
        let (base, dir) = match &self.file {
            Some(f) => (
                SpecInput::from_file(f)?,
                f.parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            ),
            None => (SpecInput::default(), PathBuf::from(".")),
        };
        let meeting_given = self.meeting_at.is_some()
            || self.meeting_place.is_some()
            || self.meeting_link.is_some()
            || self.presentation.is_some()
            || self.meeting_minutes.is_some();
        let flags = SpecInput {
            reference: self.reference,
            policy_area: self.policy_area,
            thematic_group: self.thematic_group,
            opens: self.opens,
            closes: self.closes,
            title: crate::consultation::spec::TextInput {
                sq: self.title_sq,
                en: self.title_en,
            },
            description: crate::consultation::spec::TextInput {
                sq: self.description_sq,
                en: self.description_en,
            },
            meeting: meeting_given.then_some(MeetingInput {
                starts: self.meeting_at,
                duration_minutes: self.meeting_minutes,
                place: self.meeting_place,
                link: self.meeting_link,
                presentation: self.presentation,
            }),
            drafts: None,
            short_period_reason: self
                .short_period_reason
                .map(|r| Bilingual::sq_and_maybe_en(r, self.short_period_reason_en)),
        };
        Ok((base.overlay(flags), dir))
    }
}

async fn find(store: &dyn Store, reference: &str) -> anyhow::Result<Consultation> {
    Ok(outreach::find(store, reference).await?)
}

pub async fn create(
    store: &dyn Store,
    config: &Config,
    flags: SpecFlags,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (input, dir) = flags.input()?;
    let spec = input.validate(config, &dir)?;
    store.insert_consultation(&spec).await?;
    writeln!(
        out,
        "Created consultation {} as a draft: {}, {} to {}.",
        spec.reference,
        count(
            WorkingCalendar::new(config.calendar.holidays.clone())
                .period_length(spec.opens_on, spec.closes_on) as usize,
            "working day"
        ),
        spec.opens_on,
        spec.closes_on
    )?;
    if let Some(reason) = &spec.short_period_reason {
        writeln!(
            out,
            "Shorter than the legal minimum; the reason is recorded: {}",
            one_line_in_both(reason)
        )?;
    }
    writeln!(
        out,
        "Check it with `cocreate consultation show {0}` and `cocreate outreach preview {0}`, then `cocreate consultation open {0}`.",
        spec.reference
    )?;
    Ok(())
}

pub async fn edit(
    app: &App,
    reference: &str,
    flags: SpecFlags,
    cancel_meeting: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let current = find(app.store.as_ref(), reference).await?;
    if current.state == ConsultationState::Closed {
        bail!(
            "consultation {} is closed and can no longer be edited",
            current.spec.reference
        );
    }
    let (input, dir) = flags.input()?;
    let mut spec = SpecInput::from_spec(&current.spec)
        .overlay(input)
        .validate(&app.config, &dir)?;
    if cancel_meeting {
        if current.spec.meeting.is_none() {
            bail!(
                "consultation {} has no meeting to cancel",
                current.spec.reference
            );
        }
        spec.meeting = None;
    }
    if current.state == ConsultationState::Open && spec.closes_on != current.spec.closes_on {
        bail!(
            "consultation {} is open: change its deadline with `cocreate consultation extend {} --until DATE --reason TEXT` (later) or `cocreate consultation close {} --reason TEXT` (now), so the CSOs are told",
            current.spec.reference,
            current.spec.reference,
            current.spec.reference
        );
    }
    let told = lifecycle::edit(app, &current, spec.clone()).await?;
    writeln!(out, "Updated consultation {}.", spec.reference)?;
    if notices::meeting_moved(current.spec.meeting.as_ref(), spec.meeting.as_ref())
        && current.state == ConsultationState::Open
    {
        let (what, file) = if spec.meeting.is_some() {
            ("changed", "updates the event in their calendars")
        } else {
            ("is cancelled", "takes the event out of their calendars")
        };
        writeln!(
            out,
            "The meeting {what}; {} will be told, with a calendar file that {file}.",
            count(told as usize, "invited CSO address")
        )?;
    }
    Ok(())
}

pub async fn list(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<()> {
    let all = store.consultations().await?;
    if all.is_empty() {
        writeln!(
            out,
            "No consultations yet; create one with `cocreate consultation create`."
        )?;
    }
    for c in all {
        writeln!(
            out,
            "{:<20} {:<7} {:<10} {} to {}  {}",
            c.spec.reference,
            c.state.as_str(),
            c.spec.policy_area,
            c.spec.opens_on,
            c.spec.closes_on,
            c.spec.title_en
        )?;
    }
    Ok(())
}

pub async fn show(
    store: &dyn Store,
    config: &Config,
    reference: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let c = find(store, reference).await?;
    let s = &c.spec;
    let calendar = WorkingCalendar::new(config.calendar.holidays.clone());
    writeln!(out, "{} ({})", s.reference, c.state.as_str())?;
    writeln!(
        out,
        "Policy area: {}{}",
        s.policy_area,
        s.thematic_group
            .as_deref()
            .map(|g| format!(", group {g}"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "Title (sq): {}\nTitle (en): {}",
        s.title_sq, s.title_en
    )?;
    writeln!(
        out,
        "Period: {} to {} ({} working days)",
        s.opens_on,
        s.closes_on,
        calendar.period_length(s.opens_on, s.closes_on)
    )?;
    if let Some(r) = &s.short_period_reason {
        writeln!(
            out,
            "Shorter than the legal minimum because: {}",
            one_line_in_both(r)
        )?;
    }
    for e in store
        .deadline_extensions()
        .await?
        .iter()
        .filter(|e| e.consultation_id == c.id)
    {
        if e.new < e.previous {
            writeln!(
                out,
                "Closed early on {}, before its announced deadline {}: {}",
                e.new,
                e.previous,
                one_line_in_both(&e.reason)
            )?;
        } else {
            writeln!(
                out,
                "Extended on {} from {} to {}: {}",
                e.at.format("%Y-%m-%d"),
                e.previous,
                e.new,
                one_line_in_both(&e.reason)
            )?;
        }
    }
    if let Some(m) = &s.meeting {
        writeln!(
            out,
            "Meeting: {} for {} minutes{}{}{}",
            m.starts_at,
            m.duration_minutes,
            m.place
                .as_deref()
                .map(|p| format!(", at {p}"))
                .unwrap_or_default(),
            m.online_link
                .as_deref()
                .map(|l| format!(", online {l}"))
                .unwrap_or_default(),
            m.presentation
                .as_deref()
                .map(|p| format!(", presentation {p}"))
                .unwrap_or_default(),
        )?;
    }
    for d in &s.drafts {
        writeln!(
            out,
            "\nDraft commitment {}: {}",
            d.number,
            one_line_in_both(&d.title)
        )?;
        if d.text.is_one() {
            writeln!(out, "{}", indented(&d.text.sq))?;
        } else {
            writeln!(out, "  (sq)\n{}", indented(&d.text.sq))?;
            writeln!(out, "  (en)\n{}", indented(&d.text.en))?;
        }
    }
    writeln!(
        out,
        "\nDescription (sq):\n{}\n\nDescription (en):\n{}",
        s.description_sq, s.description_en
    )?;
    Ok(())
}

/// A text given in both languages, on one line: once when they are the
/// same, otherwise the Albanian with the English after it.
fn one_line_in_both(text: &Bilingual<String>) -> String {
    let one = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_one() {
        one(&text.sq)
    } else {
        format!("{} (en: {})", one(&text.sq), one(&text.en))
    }
}

/// Each line of `text` indented under its heading.
fn indented(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn open(app: &App, reference: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let c = find(app.store.as_ref(), reference).await?;
    match lifecycle::open(app, &c).await? {
        Opened::Now => writeln!(
            out,
            "Consultation {} is open. Send the invitations with `cocreate outreach send {}`.",
            c.spec.reference, c.spec.reference
        )?,
        Opened::OnSchedule(on) => writeln!(
            out,
            "Consultation {} opens on {on}: `cocreate serve` opens it then and sends the invitations (see `cocreate schedule list`).",
            c.spec.reference
        )?,
    }
    Ok(())
}

pub async fn close(
    app: &App,
    reference: &str,
    reason: Option<&Bilingual<String>>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let c = find(app.store.as_ref(), reference).await?;
    let closed = lifecycle::close(app, &c, reason).await?;
    writeln!(out, "Consultation {} is closed.", c.spec.reference)?;
    if closed.notified > 0 {
        writeln!(
            out,
            "{} will be told it closed early, and why.",
            count(closed.notified as usize, "invited CSO address")
        )?;
    }
    if closed.cancelled > 0 {
        writeln!(
            out,
            "{} about it that had not left yet {} cancelled (`cocreate outbox status`).",
            count(closed.cancelled as usize, "message"),
            if closed.cancelled == 1 { "is" } else { "are" }
        )?;
    }
    Ok(())
}

pub async fn extend(
    app: &App,
    reference: &str,
    until: NaiveDate,
    reason: &Bilingual<String>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (store, config) = (app.store.as_ref(), app.config.as_ref());
    let c = find(store, reference).await?;
    if reason.sq.trim().is_empty() {
        bail!(
            "give the reason for the extension with --reason; it is recorded and sent to the CSOs"
        );
    }
    if c.state != ConsultationState::Open {
        bail!(
            "consultation {} is {}; only an open consultation's deadline is extended (edit a draft instead)",
            c.spec.reference,
            c.state.as_str()
        );
    }
    if until <= c.spec.closes_on {
        bail!(
            "the new deadline {until} must come after the current one, {}",
            c.spec.closes_on
        );
    }
    let calendar = WorkingCalendar::new(config.calendar.holidays.clone());
    let days = calendar.period_length(c.spec.opens_on, until);
    let max = config.calendar.maximum_working_days;
    if days > max {
        bail!(
            "{} to {until} is {days} working days, more than the maximum of {max}; the latest possible deadline is {}",
            c.spec.opens_on,
            calendar.period_end(c.spec.opens_on, max)
        );
    }
    let mut spec = c.spec.clone();
    spec.closes_on = until;
    let notices = notices::extension_notices(store, &app.sender(), &c, &spec, reason).await?;
    let queued = store
        .extend_deadline(
            &DeadlineExtension {
                consultation_id: c.id,
                previous: c.spec.closes_on,
                new: until,
                reason: reason.clone(),
                at: app.now(),
            },
            &spec,
            &notices,
        )
        .await?;
    writeln!(
        out,
        "Deadline of {} moved from {} to {until} ({}); {} will be told.",
        c.spec.reference,
        c.spec.closes_on,
        count(days as usize, "working day"),
        count(queued as usize, "CSO address")
    )?;
    Ok(())
}

pub async fn preview(
    store: &dyn Store,
    config: &Config,
    reference: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let c = find(store, reference).await?;
    let plan = outreach::plan(store, config, &c).await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &plan)?;
        writeln!(out)?;
        return Ok(());
    }
    let new: Vec<_> = plan
        .recipients
        .iter()
        .filter(|r| !r.already_invited)
        .collect();
    writeln!(
        out,
        "{} ({}): {} will be invited, {} already {}.",
        plan.reference,
        plan.policy_area,
        count(new.len(), "address"),
        thousands(plan.recipients.len() - new.len()),
        if plan.recipients.len() - new.len() == 1 {
            "was"
        } else {
            "were"
        }
    )?;
    for r in &plan.recipients {
        writeln!(
            out,
            "  {} {:<14} {:<2} {:<8} {} <{}> — {}",
            if r.already_invited { "sent" } else { "new " },
            r.registration_no,
            r.language,
            r.relevance,
            r.name,
            r.address,
            r.why
        )?;
    }
    if !plan.excluded.is_empty() {
        writeln!(out, "Left out ({}):", thousands(plan.excluded.len()))?;
        for e in &plan.excluded {
            writeln!(
                out,
                "  {:<14} {}{} — {}",
                e.registration_no,
                e.name,
                e.address
                    .as_deref()
                    .map(|a| format!(" <{a}>"))
                    .unwrap_or_default(),
                e.reason
            )?;
        }
    }
    writeln!(
        out,
        "{} active organisations are not relevant to {}.",
        thousands(plan.not_relevant),
        plan.policy_area
    )?;
    Ok(())
}

pub async fn send(app: &App, reference: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let store = app.store.as_ref();
    let c = find(store, reference).await?;
    let s = outreach::send(store, &app.sender(), &c).await?;
    writeln!(
        out,
        "Queued {} for {} ({} already invited, {} left out). `cocreate serve` delivers them; `cocreate outbox status` shows progress.",
        count(s.queued as usize, "invitation"),
        c.spec.reference,
        count(s.already_invited, "address"),
        thousands(s.excluded)
    )?;
    Ok(())
}
