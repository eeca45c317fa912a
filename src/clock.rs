//! Where "now" comes from. Every time cocreate records or compares (a
//! proposal's time, a deadline, a schedule, a claim's lease) is read from
//! one `Clock`, shared by the App and its store, so tests move time instead
//! of sleeping: in-process tests with [`Clock::advance`], tests of the real
//! binary with `COCREATE_TEST_CLOCK_OFFSET_SECONDS` (nothing else sets it;
//! tests/it/common.rs computes it from the office time a command should
//! see).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// The system clock, moved by an offset in seconds that is 0 outside tests.
/// Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock, moved by `COCREATE_TEST_CLOCK_OFFSET_SECONDS` when
    /// a test sets it.
    pub fn from_env() -> Self {
        let seconds = std::env::var("COCREATE_TEST_CLOCK_OFFSET_SECONDS")
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        Self {
            offset: Arc::new(AtomicI64::new(seconds)),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::seconds(self.offset.load(Ordering::Relaxed))
    }

    /// Moves this clock and every clone of it forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        self.offset.fetch_add(by.num_seconds(), Ordering::Relaxed);
    }

    /// Moves the clock so that it reads `at` now.
    pub fn set(&self, at: DateTime<Utc>) {
        let offset = (at - Utc::now()).num_seconds();
        self.offset.store(offset, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_move_together() {
        let a = Clock::default();
        let b = a.clone();
        let before = b.now();
        a.advance(TimeDelta::days(21));
        assert!(b.now() - before >= TimeDelta::days(21));
        let at: DateTime<Utc> = "2027-03-28T00:30:00Z".parse().unwrap();
        b.set(at);
        assert!((a.now() - at).num_seconds().abs() <= 1);
    }
}
