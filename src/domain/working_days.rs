//! Working days, as Law 146/2014 counts a consultation period: Monday to
//! Friday, less the public holidays in the config.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};

#[derive(Debug, Clone, Default)]
pub struct WorkingCalendar {
    holidays: BTreeSet<NaiveDate>,
}

impl WorkingCalendar {
    pub fn new(holidays: BTreeSet<NaiveDate>) -> Self {
        Self { holidays }
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&day)
    }

    /// Working days of a period that opens on `opens` and closes at the end of
    /// `closes`: the opening day itself does not count (the public needs the
    /// whole day to read), the closing day does.
    pub fn period_length(&self, opens: NaiveDate, closes: NaiveDate) -> u32 {
        opens
            .iter_days()
            .skip(1)
            .take_while(|d| *d <= closes)
            .filter(|d| self.is_working_day(*d))
            .count() as u32
    }

    /// The last day of a period of `working_days` opening on `opens`.
    pub fn period_end(&self, opens: NaiveDate, working_days: u32) -> NaiveDate {
        let mut day = opens;
        let mut counted = 0;
        while counted < working_days {
            day = day.succ_opt().expect("dates stay far from the end of time");
            if self.is_working_day(day) {
                counted += 1;
            }
        }
        day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn weekends_and_holidays_do_not_count() {
        let cal = WorkingCalendar::new([d("2026-12-25")].into());
        // Mon 2026-12-21 .. Fri 2026-12-25: Tue, Wed, Thu count; Fri is a holiday.
        assert_eq!(cal.period_length(d("2026-12-21"), d("2026-12-25")), 3);
        assert_eq!(cal.period_length(d("2026-12-21"), d("2026-12-21")), 0);
        assert_eq!(cal.period_end(d("2026-12-21"), 3), d("2026-12-24"));
        assert_eq!(cal.period_end(d("2026-12-21"), 4), d("2026-12-28"));
        let end = cal.period_end(d("2026-12-01"), 20);
        assert_eq!(cal.period_length(d("2026-12-01"), end), 20);
        assert_eq!(
            cal.period_length(d("2026-12-01"), end.pred_opt().unwrap()),
            19
        );
    }
}
