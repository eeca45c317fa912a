//! The calendar file attached to an invitation with a meeting, so the
//! meeting lands in the CSO's calendar with one tap.

use chrono::{TimeZone, Utc};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus};

use crate::consultation::ConsultationSpec;
use crate::domain::Language;

/// Text as RFC 5545 wants it before icalendar escapes it: icalendar escapes
/// backslash, comma, semicolon and LF (3.3.11) and folds long lines (3.1),
/// but leaves a bare CR, which would start a new content line. A
/// consultation file cannot hold one (see `consultation::spec`); one stored
/// before that check is made a line break here.
fn text(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// A URI value is not escaped by icalendar: one with whitespace or a control
/// character in it is left out rather than written.
fn uri(value: &str) -> Option<&str> {
    (!value.chars().any(|c| c.is_control() || c.is_whitespace())).then_some(value)
}

/// An iCalendar (RFC 5545) file with the meeting as one event, or None when
/// the consultation has no meeting. Times are written in UTC, converted from
/// the office's time zone, which every calendar client understands.
pub fn meeting_ics(
    spec: &ConsultationSpec,
    lang: Language,
    tz: chrono_tz::Tz,
    domain: &str,
) -> Option<String> {
    calendar(spec, lang, tz, domain, None)
}

/// The calendar file that takes a cancelled meeting (as it was in `spec`)
/// out of calendars: the same event with METHOD:CANCEL, STATUS:CANCELLED
/// and the next SEQUENCE.
pub fn cancelled_meeting_ics(
    spec: &ConsultationSpec,
    lang: Language,
    tz: chrono_tz::Tz,
    domain: &str,
) -> Option<String> {
    let sequence = spec.meeting.as_ref()?.sequence + 1;
    calendar(spec, lang, tz, domain, Some(sequence))
}

/// The event of `spec`'s meeting, published, or cancelled at the SEQUENCE
/// `cancel`.
fn calendar(
    spec: &ConsultationSpec,
    lang: Language,
    tz: chrono_tz::Tz,
    domain: &str,
    cancel: Option<u32>,
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
        .sequence(cancel.unwrap_or(meeting.sequence))
        .summary(&text(&format!("OGP: {title}")))
        .starts(start)
        .ends(end);
    let mut description = format!("{} ({})", title, spec.reference);
    if let Some(link) = meeting.online_link.as_deref().and_then(uri) {
        event.url(link);
        description.push_str(&format!("\n{link}"));
    }
    if let Some(place) = &meeting.place {
        event.location(&text(place));
    }
    event.description(&text(&description));
    if cancel.is_some() {
        event.status(EventStatus::Cancelled);
    }
    let mut calendar = Calendar::new();
    calendar.append_property((
        "METHOD",
        if cancel.is_some() {
            "CANCEL"
        } else {
            "PUBLISH"
        },
    ));
    calendar.push(event.done());
    Some(calendar.done().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consultation::Meeting;

    /// A spec stored before values were checked, with hostile fields.
    fn hostile() -> ConsultationSpec {
        let date = |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        ConsultationSpec {
            reference: "OGP-ICS".into(),
            policy_area: "FISCAL".into(),
            thematic_group: None,
            title_sq: "Buxheti; hapur, në bashki\r\nX-EVIL:1".into(),
            title_en: "Budget".into(),
            description_sq: "d".into(),
            description_en: "d".into(),
            opens_on: date("2026-12-01"),
            closes_on: date("2027-01-11"),
            meeting: Some(Meeting {
                starts_at: date("2026-12-10").and_hms_opt(10, 0, 0).unwrap(),
                duration_minutes: 90,
                place: Some(format!(
                    "Salla 2\rATTACH:https://evil.example/{}",
                    "x".repeat(200)
                )),
                online_link: Some("https://meet.example/a\r\nATTACH:https://evil.example".into()),
                presentation: None,
                sequence: 0,
            }),
            drafts: Vec::new(),
            short_period_reason: None,
        }
    }

    #[test]
    fn every_text_value_is_escaped_and_folded() {
        let ics = meeting_ics(
            &hostile(),
            Language::Sq,
            chrono_tz::Europe::Tirane,
            "ogp.office.example",
        )
        .unwrap();
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "a line of {} octets: {line}", line.len());
            assert!(!line.contains('\r') && !line.contains('\n'), "{line:?}");
            assert!(
                !line.starts_with("ATTACH") && !line.starts_with("X-EVIL"),
                "an injected property: {line}"
            );
        }
        let unfolded = ics.replace("\r\n ", "");
        assert!(
            unfolded.contains(r"SUMMARY:OGP: Buxheti\; hapur\, në bashki\nX-EVIL:1"),
            "{unfolded}"
        );
        assert!(unfolded.contains(r"LOCATION:Salla 2\nATTACH:https://evil.example/"));
        assert!(
            !unfolded.contains("URL:"),
            "a link with a line break is left out"
        );
    }

    #[test]
    fn a_moved_meeting_is_the_same_event_later_in_sequence_and_a_cancelled_one_says_so() {
        let mut spec = hostile();
        let tz = chrono_tz::Europe::Tirane;
        let first = meeting_ics(&spec, Language::En, tz, "ogp.example").unwrap();
        spec.meeting.as_mut().unwrap().sequence = 1;
        spec.meeting.as_mut().unwrap().starts_at += chrono::Duration::days(2);
        let moved = meeting_ics(&spec, Language::En, tz, "ogp.example").unwrap();
        let uid = |ics: &str| {
            ics.lines()
                .find(|l| l.starts_with("UID:"))
                .unwrap()
                .to_string()
        };
        assert_eq!(uid(&first), uid(&moved));
        assert!(first.contains("SEQUENCE:0\r\n"), "{first}");
        assert!(moved.contains("SEQUENCE:1\r\n") && moved.contains("DTSTART:20261212T090000Z"));
        let cancelled = cancelled_meeting_ics(&spec, Language::En, tz, "ogp.example").unwrap();
        assert_eq!(uid(&cancelled), uid(&first));
        assert!(cancelled.contains("METHOD:CANCEL\r\n"), "{cancelled}");
        assert!(cancelled.contains("STATUS:CANCELLED\r\n"));
        assert!(cancelled.contains("SEQUENCE:2\r\n"));
    }
}
