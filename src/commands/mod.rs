//! What each CLI subcommand does, written for the POC at a terminal: plain
//! lines, counts that add up, and errors in one sentence. `main.rs` parses
//! the arguments and calls these.

pub mod config;
pub mod consultation;
pub mod mail;
pub mod outbox;
pub mod registry;
pub mod review;
pub mod schedule;

pub use crate::domain::{count, thousands};

/// `text` as a terminal may show it: control characters (an escape
/// sequence in a hostile email could retitle the window, hide text or
/// write the clipboard) become U+FFFD; line breaks and tabs stay.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(100_000), "100,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
        assert_eq!(super::count(1, "message"), "1 message");
        assert_eq!(super::count(10_000, "message"), "10,000 messages");
        assert_eq!(super::count(2, "CSO address"), "2 CSO addresses");
        assert_eq!(super::count(1, "address"), "1 address");
        assert_eq!(super::count(3, "reply"), "3 replies");
        assert_eq!(super::count(3, "day"), "3 days");
    }
}
