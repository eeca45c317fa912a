//! When a scheduled job runs: a cron expression read in the office's time
//! zone.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

/// A cron expression (with seconds: `0 0 8 * * Mon-Fri` is 08:00 on
/// weekdays), read in the office's time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    text: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "'{text}' is not a schedule ({reason}); write it like \"0 0 8 * * Mon-Fri\" (second, minute, hour, day, month, weekday)"
)]
pub struct ScheduleError {
    text: String,
    reason: String,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let text = text.trim();
        cron::Schedule::from_str(text)
            .map(|cron| Self {
                cron,
                text: text.to_string(),
            })
            .map_err(|e| ScheduleError {
                text: text.to_string(),
                // The cron crate draws a caret under the fault over several
                // lines; its last line says what is wrong.
                reason: e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })
    }

    /// The first time the schedule fires strictly after `t`.
    pub fn next_after(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&t.with_timezone(&tz))
            .next()
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

    #[test]
    fn the_schedule_is_read_in_the_office_time_zone() {
        let s = Schedule::parse("0 0 8 * * Mon-Fri").unwrap();
        let tz: Tz = "Europe/Tirane".parse().unwrap();
        // 08:00 in Tirana on a weekday is 07:00 UTC in winter.
        let now: DateTime<Utc> = "2026-12-03T07:30:00Z".parse().unwrap();
        let next = s.next_after(tz, now).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-04T07:00:00+00:00");
        assert_eq!(
            Schedule::parse("every morning").unwrap_err().to_string(),
            "'every morning' is not a schedule (The 'Seconds' field does not support using names. 'every' specified.); write it like \"0 0 8 * * Mon-Fri\" (second, minute, hour, day, month, weekday)"
        );
    }
}
