//! Logging: readable lines for a person at a terminal, JSON for a log
//! collector. RUST_LOG, when set, replaces the configured level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn", log.level)));
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    // Colour only for a person at a terminal: in a file or a journal the
    // escape codes are noise (and NO_COLOR turns them off anywhere).
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(|| CappedLines(std::io::stderr()));
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The longest value a log line carries, in bytes: a slow statement's SQL
/// (a multi-row INSERT) once made a line of 253 KB.
const MAX_LOG_VALUE: usize = 2000;

/// Stderr with every line's long values cut: a JSON line stays valid JSON
/// (each string value over [`MAX_LOG_VALUE`] is cut), a text line is cut.
/// tracing-subscriber writes each event in one `write`, so each call here
/// is one line.
struct CappedLines<W>(W);

impl<W: std::io::Write> std::io::Write for CappedLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() <= MAX_LOG_VALUE * 2 {
            return self.0.write(buf);
        }
        let line = String::from_utf8_lossy(buf);
        let capped = match serde_json::from_str::<serde_json::Value>(line.trim_end()) {
            Ok(mut event) => {
                cap_strings(&mut event);
                format!("{event}\n")
            }
            Err(_) => format!("{}\n", cut(line.trim_end(), MAX_LOG_VALUE * 2)),
        };
        self.0.write_all(capped.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn cap_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.len() > MAX_LOG_VALUE => {
            *s = cut(s, MAX_LOG_VALUE).into_owned();
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(cap_strings),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(cap_strings),
        _ => {}
    }
}

/// A warning that can repeat quickly (an accept loop out of file
/// descriptors, a file that cannot be taken in) is written at most once per
/// interval, saying how many times it happened in between: a log must
/// never grow by gigabytes because one thing keeps failing.
#[derive(Debug)]
pub struct Throttle {
    every: std::time::Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl Throttle {
    pub const fn new(every: std::time::Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when this occurrence is to be logged, `n` being how many
    /// were not logged since the last one; `None` to stay quiet.
    pub fn ready(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        match self.last {
            Some(at) if now.duration_since(at) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// A value from outside (a path, a statement, an error a server sent)
/// cut to `max` bytes for a log line, at a character boundary.
pub fn cut(value: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if value.len() <= max {
        return value.into();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_speaks_once_per_interval_and_counts_the_rest() {
        let mut t = Throttle::new(std::time::Duration::from_millis(200));
        assert_eq!(t.ready(), Some(0));
        assert_eq!((0..1000).filter_map(|_| t.ready()).count(), 0);
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert_eq!(t.ready(), Some(1000));
    }

    #[test]
    fn long_log_lines_are_cut_and_json_stays_json() {
        use std::io::Write;
        let mut out = CappedLines(Vec::new());
        let statement = "INSERT INTO outbox VALUES (?, ?, ?), ".repeat(7000);
        let line = serde_json::json!({"level": "WARN", "message": "slow statement", "db.statement": statement});
        out.write_all(format!("{line}\n").as_bytes()).unwrap();
        let written = String::from_utf8(out.0).unwrap();
        assert!(written.len() < 3000, "{} bytes", written.len());
        let event: serde_json::Value = serde_json::from_str(written.trim_end()).unwrap();
        assert_eq!(event["message"], "slow statement");
        assert!(event["db.statement"].as_str().unwrap().ends_with(" bytes)"));
        let mut text = CappedLines(Vec::new());
        text.write_all(format!("WARN slow {statement}\n").as_bytes())
            .unwrap();
        assert!(text.0.len() < 5000);
    }

    #[test]
    fn cut_keeps_short_values_and_marks_long_ones() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("ëëëë", 3), "ë… (8 bytes)");
    }
}
