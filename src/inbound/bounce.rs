//! Reading delivery reports: which of our recipients failed, and whether
//! for good. A hard bounce marks the address so outreach skips it; a soft
//! one is counted.
//!
//! A report is believed only if it quotes one of our own Message-IDs:
//! otherwise anyone could silence a CSO's invitations with a forged bounce.

use std::sync::LazyLock;

use regex::Regex;

use super::parse::Parsed;

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

/// The failed recipients of a delivery report about a message of ours.
pub fn failures(raw: &[u8], parsed: &Parsed, our_domain: &str) -> Vec<Failure> {
    let text = String::from_utf8_lossy(raw);
    let ours = format!("@{}>", our_domain.to_ascii_lowercase());
    if !text.to_ascii_lowercase().contains(&ours) {
        return Vec::new();
    }
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
        let f = failures(DSN.as_bytes(), &p, "ogp.office.example");
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

    #[test]
    fn a_report_about_someone_elses_mail_is_not_believed() {
        let forged = DSN.replace("@ogp.office.example>", "@elsewhere.example>");
        let p = parse(forged.as_bytes()).unwrap();
        assert!(failures(forged.as_bytes(), &p, "ogp.office.example").is_empty());
    }
}
