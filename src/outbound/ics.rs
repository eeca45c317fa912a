//! The calendar file attached to an invitation with a meeting, so the
//! meeting lands in the CSO's calendar with one tap.

use chrono::{TimeZone, Utc};
use icalendar::{Calendar, Component, Event, EventLike};

use crate::consultation::ConsultationSpec;
use crate::domain::Language;

/// An iCalendar (RFC 5545) file with the meeting as one event, or None when
/// the consultation has no meeting. Times are written in UTC, converted from
/// the office's time zone, which every calendar client understands.
pub fn meeting_ics(
    spec: &ConsultationSpec,
    lang: Language,
    tz: chrono_tz::Tz,
    domain: &str,
) -> Option<String> {
    let meeting = spec.meeting.as_ref()?;
    let start = tz
        .from_local_datetime(&meeting.starts_at)
        .earliest()
        .unwrap_or_else(|| Utc.from_utc_datetime(&meeting.starts_at).with_timezone(&tz))
        .with_timezone(&Utc);
    let end = start + chrono::Duration::minutes(i64::from(meeting.duration_minutes));
    let title = *spec.title().get(lang);
    let mut event = Event::new();
    event
        // Stable: re-sent invitations update the same calendar entry.
        .uid(&format!(
            "{}-meeting@{domain}",
            spec.reference.to_ascii_lowercase()
        ))
        .summary(&format!("OGP: {title}"))
        .starts(start)
        .ends(end);
    let mut description = format!("{} ({})", title, spec.reference);
    if let Some(link) = &meeting.online_link {
        event.url(link);
        description.push_str(&format!("\n{link}"));
    }
    if let Some(place) = &meeting.place {
        event.location(place);
    }
    event.description(&description);
    let mut calendar = Calendar::new();
    calendar.append_property(("METHOD", "PUBLISH"));
    calendar.push(event.done());
    Some(calendar.done().to_string())
}
