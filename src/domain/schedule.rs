//! When a scheduled job runs: a cron expression read in the office's time
//! zone.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

/// A cron expression as crontab(5) means it: `0 8 * * 1` is 08:00 on
/// Mondays, `0 8 * * Mon-Fri` on weekdays (0 and 7 are Sunday), read in the
/// office's time zone. A sixth leading field of seconds is allowed
/// (`0 0 8 * * Mon-Fri`). croner, not the cron crate: the cron crate numbers
/// weekdays from Sunday = 1, so `0 8 * * 1` would fire on Sundays.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    text: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "'{text}' is not a schedule ({reason}); write it like \"0 8 * * Mon-Fri\" (minute, hour, day of month, month, weekday, as in crontab)"
)]
pub struct ScheduleError {
    text: String,
    reason: String,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let text = text.trim();
        croner::Cron::from_str(text)
            .map(|cron| Self {
                cron,
                text: text.to_string(),
            })
            .map_err(|e| ScheduleError {
                text: text.to_string(),
                reason: e.to_string(),
            })
    }

    /// The first time the schedule fires strictly after `t`.
    pub fn next_after(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// For config: an empty string is no schedule.
pub fn optional_schedule<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Schedule>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    Schedule::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tirana() -> Tz {
        "Europe/Tirane".parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_schedule_is_read_in_the_office_time_zone() {
        let s = Schedule::parse("0 8 * * Mon-Fri").unwrap();
        // 08:00 in Tirana on a weekday is 07:00 UTC in winter.
        let next = s.next_after(tirana(), at("2026-12-03T07:30:00Z")).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-04T07:00:00+00:00");
        // With a leading seconds field, the same.
        let with_seconds = Schedule::parse("0 0 8 * * Mon-Fri").unwrap();
        assert_eq!(
            with_seconds.next_after(tirana(), at("2026-12-03T07:30:00Z")),
            Some(next)
        );
        let e = Schedule::parse("every morning").unwrap_err().to_string();
        assert!(
            e.starts_with("'every morning' is not a schedule (") && e.ends_with("as in crontab)"),
            "{e}"
        );
    }

    #[test]
    fn weekdays_mean_what_crontab_says() {
        // 2026-11-27 is a Friday. 1 is Monday; 0 and 7 are Sunday.
        let friday = at("2026-11-27T12:00:00Z");
        let next = |expr: &str| {
            Schedule::parse(expr)
                .unwrap()
                .next_after(tirana(), friday)
                .unwrap()
                .with_timezone(&tirana())
                .format("%a %Y-%m-%d %H:%M")
                .to_string()
        };
        assert_eq!(next("0 8 * * 1"), "Mon 2026-11-30 08:00");
        assert_eq!(next("0 8 * * MON"), "Mon 2026-11-30 08:00");
        assert_eq!(next("0 8 * * 0"), "Sun 2026-11-29 08:00");
        assert_eq!(next("0 8 * * 7"), "Sun 2026-11-29 08:00");
        assert_eq!(next("30 6 1 * *"), "Tue 2026-12-01 06:30");
    }

    #[test]
    fn a_schedule_keeps_local_time_across_daylight_saving() {
        // Tirana leaves summer time on 2026-10-25: 08:00 local is 06:00 UTC
        // before and 07:00 UTC after.
        let s = Schedule::parse("0 8 * * *").unwrap();
        assert_eq!(
            s.next_after(tirana(), at("2026-10-24T12:00:00Z"))
                .unwrap()
                .to_rfc3339(),
            "2026-10-25T07:00:00+00:00"
        );
        assert_eq!(
            s.next_after(tirana(), at("2026-10-23T12:00:00Z"))
                .unwrap()
                .to_rfc3339(),
            "2026-10-24T06:00:00+00:00"
        );
    }
}
