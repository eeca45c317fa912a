//! Recognising a message seen before: the same content from another relay
//! or a redelivery has one key, whatever its trace headers say.

use sha2::{Digest, Sha256};

use crate::inbound::parse::hex;

/// Headers that relays add or change on the way: the same message through
/// two sources differs only in these.
const TRACE_HEADERS: [&str; 9] = [
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "authentication-results",
    "arc-authentication-results",
    "x-spam-status",
    "x-spam-flag",
];

/// The hash that recognises the same message arriving twice.
pub fn dedupe_key(raw: &[u8]) -> String {
    let split = find(raw, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(raw, b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(split);
    let mut hasher = Sha256::new();
    let mut skipping = false;
    for line in head.split(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let name = line
                .split(|b| *b == b':')
                .next()
                .map(|n| String::from_utf8_lossy(n).trim().to_ascii_lowercase())
                .unwrap_or_default();
            skipping = TRACE_HEADERS.contains(&name.as_str());
        }
        if !skipping {
            hasher.update(line.strip_suffix(b"\r").unwrap_or(line));
            hasher.update(b"\n");
        }
    }
    hasher.update(body);
    hex(&hasher.finalize())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_message_through_two_relays_has_one_key() {
        let a = b"Received: from mx1\r\nDelivered-To: consult+x@ogp\r\nFrom: a@cso.al\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nBody\r\n";
        let b = b"Received: from imap\r\n\tby host\r\nReturn-Path: <a@cso.al>\r\nFrom: a@cso.al\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nBody\r\n";
        assert_eq!(dedupe_key(a), dedupe_key(b));
        // Someone reusing the Message-ID with other words is another message.
        let c = b"From: a@cso.al\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nOther body\r\n";
        assert_ne!(dedupe_key(a), dedupe_key(c));
        let d =
            b"From: mallory@evil.example\r\nMessage-ID: <1@cso.al>\r\nSubject: P\r\n\r\nBody\r\n";
        assert_ne!(dedupe_key(a), dedupe_key(d));
    }
}
