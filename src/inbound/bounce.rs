//! Reading delivery reports: which of our recipients failed, and whether
//! for good. A hard bounce marks the address so outreach skips it; a soft
//! one is counted.
//!
//! A report is believed only for an address we really sent to: it must quote
//! a reply key of ours (in one of our Message-IDs, `<KEY.RANDOM@domain>`, or
//! in our reply address, `consult+KEY@domain`) that the store says was issued
//! to the very address the report names. Anyone can write our domain into a
//! message; nobody outside can guess a key, let alone the one a given CSO's
//! address received. Otherwise anyone could silence a CSO's invitations with
//! a forged bounce.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::parse::Parsed;
use crate::config::MailConfig;
use crate::domain::ReplyKey;

/// A report quoting more keys than this is not about one message of ours.
const MAX_QUOTED_KEYS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub address: String,
    pub hard: bool,
    pub status: String,
}

static FINAL_RECIPIENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^final-recipient:\s*rfc822;\s*<?([^\s>]+@[^\s>]+)>?\s*$").expect("valid")
});
static STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?im)^status:\s*([245]\.\d{1,3}\.\d{1,3})").expect("valid"));

/// The reply keys a report quotes, in our Message-IDs or our reply
/// addresses, at most [`MAX_QUOTED_KEYS`] of them. The caller looks them up
/// and believes a failure only for the address a quoted key was sent to.
pub fn quoted_keys(raw: &[u8], mail: &MailConfig) -> Vec<ReplyKey> {
    let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
    let domain = format!("@{}", mail.domain.to_ascii_lowercase());
    let plus = format!("{}+", mail.reply_local.to_ascii_lowercase());
    let mut keys = BTreeSet::new();
    for (at, _) in text.match_indices(&domain) {
        let local_start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_')))
            .map_or(0, |i| i + 1);
        let local = &text[local_start..at];
        let key = match local.strip_prefix(&plus) {
            Some(tag) => tag.split("-d").next(),
            None => local.split('.').next(),
        };
        if let Some(key) = key.and_then(|k| ReplyKey::parse(k).ok()) {
            keys.insert(key);
            if keys.len() == MAX_QUOTED_KEYS {
                break;
            }
        }
    }
    keys.into_iter().collect()
}

/// The failed recipients a delivery report names. Who sent it is not
/// checked here: see [`quoted_keys`].
pub fn failures(parsed: &Parsed<'_>) -> Vec<Failure> {
    let text = String::from_utf8_lossy(parsed.raw);
    let mut out = Vec::new();
    // RFC 3464 reports: one block per recipient.
    let mut rest = text.as_ref();
    while let Some(m) = FINAL_RECIPIENT.captures(rest) {
        let whole = m.get(0).expect("a match");
        let address = m[1].to_ascii_lowercase();
        let after = &rest[whole.end()..];
        let block_end = FINAL_RECIPIENT
            .find(after)
            .map_or(after.len(), |n| n.start());
        let status = STATUS
            .captures(&after[..block_end])
            .map(|s| s[1].to_string())
            .unwrap_or_default();
        if status.starts_with('5') || status.starts_with('4') {
            out.push(Failure {
                address,
                hard: status.starts_with('5'),
                status,
            });
        }
        rest = after;
    }
    // Exim's header for permanent failures.
    if out.is_empty()
        && let Some(list) = parsed.header("x-failed-recipients")
    {
        for a in list.split(',').map(str::trim).filter(|a| a.contains('@')) {
            out.push(Failure {
                address: a.to_ascii_lowercase(),
                hard: true,
                status: "5.0.0".into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@cso.example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\nFinal-Recipient: rfc822; full@cso.example.org\r\nAction: delayed\r\nStatus: 4.2.2\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <abc.def@ogp.office.example>\r\n--b--\r\n";

    #[test]
    fn reports_about_our_mail_name_each_failed_recipient() {
        let p = parse(DSN.as_bytes()).unwrap();
        let f = failures(&p);
        assert_eq!(
            f,
            [
                Failure {
                    address: "gone@cso.example.org".into(),
                    hard: true,
                    status: "5.1.1".into()
                },
                Failure {
                    address: "full@cso.example.org".into(),
                    hard: false,
                    status: "4.2.2".into()
                },
            ]
        );
    }

    fn mail() -> MailConfig {
        crate::config::Config::embedded().unwrap().mail
    }

    #[test]
    fn the_keys_a_report_quotes_are_found_in_message_ids_and_reply_addresses() {
        let mut m = mail();
        m.domain = "ogp.office.example".into();
        let raw = format!(
            "{DSN}\r\nIn-Reply-To: <abcdefghijklmnopqrst.random@OGP.office.example>\r\n\
             Reply-To: {}+bcdefghijklmnopqrstu-d2@ogp.office.example\r\n\
             References: <cdefghijklmnopqrstuv.x@elsewhere.example>\r\n",
            m.reply_local
        );
        let keys: Vec<String> = quoted_keys(raw.as_bytes(), &m)
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        assert_eq!(keys, ["abcdefghijklmnopqrst", "bcdefghijklmnopqrstu"]);
    }

    #[test]
    fn a_report_quoting_only_our_domain_quotes_no_key() {
        let mut m = mail();
        m.domain = "ogp.office.example".into();
        // The DSN's Message-ID is <abc.def@ogp.office.example>: our domain,
        // but not a key anyone was sent.
        assert!(quoted_keys(DSN.as_bytes(), &m).is_empty());
    }
}
