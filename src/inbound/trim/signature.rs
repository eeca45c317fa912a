//! The sender's signature: what follows RFC 3676's `-- `, a closing rule
//! of one repeated mark, or a phone or mail app's sign-off.

use std::sync::LazyLock;

use regex::Regex;

/// How phones and mail apps sign off, by language: the start of the line
/// (a device or app name follows). One table, so a language is a line here.
const SIGN_OFFS: &[&str] = &[
    // English: phones, Outlook, Yahoo, BlackBerry, Airmail, Spark, Samsung.
    r"sent\s+from\s+my",
    r"sent\s+from\s+(?:mail|outlook|yahoo|samsung|blackberry|proton)",
    r"sent\s+from\s+yahoo\s+mail",
    r"get\s+outlook\s+for",
    r"sent\s+via",
    r"sent\s+with",
    r"sent\s+using",
    r"sent\s+on\s+the\s+go",
    r"sent\s+by\s+my",
    // Albanian.
    r"dërguar\s+nga",
    r"derguar\s+nga",
    r"dërguar\s+me",
    r"dërguar\s+prej",
    // French.
    r"envoyé\s+de\s+mon",
    r"envoyé\s+depuis",
    r"envoyé\s+à\s+partir\s+de",
    r"obtenir\s+outlook\s+pour",
    // German.
    r"gesendet\s+von\s+meinem",
    r"von\s+meinem",
    r"gesendet\s+mit",
    r"gesendet\s+vom",
    // Dutch.
    r"verzonden\s+(?:vanaf|van|met)",
    r"verstuurd\s+(?:vanaf|van|met)",
    r"outlook\s+voor",
    // Italian, Spanish, Portuguese.
    r"inviato\s+da",
    r"enviado\s+desde",
    r"enviado\s+do\s+meu",
    r"enviado\s+de\s+meu",
    // Scandinavian.
    r"sendt\s+fra",
    r"skickat\s+från",
    r"lähetetty\s+(?:laitteesta|iphonesta|puhelimesta)",
    // Slavic and others.
    r"wysłane\s+z",
    r"odesláno\s+z",
    r"poslano\s+s",
    r"послато\s+са",
    r"отправлено\s+(?:с|из|со)",
    r"надіслано\s+з",
    r"изпратено\s+от",
    r"iphone'umdan\s+gönderildi",
    // Chinese and Japanese phones.
    r"发自我的",
    r"从我的\S*发送",
    r"iphoneから送信",
];

static SIGN_OFF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"(?i)^\s*(?:{})", SIGN_OFFS.join("|"))).expect("valid"));

/// A sign-off with at most a device's or app's name after it (checked in
/// code: a bounded `.{0,60}` makes the regex many times slower).
fn is_sign_off(line: &str) -> bool {
    SIGN_OFF
        .find(line)
        .is_some_and(|m| line[m.end()..].chars().count() <= 60)
}

/// What follows a rule other than RFC 3676's `-- `: a signature is a few
/// short lines right under it (a name, a role, an organisation), not a
/// table under its header rule or a paragraph after a section break.
fn looks_like_a_signature(after: &[&str]) -> bool {
    let filled: Vec<&str> = after
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    after.first().is_some_and(|l| !l.trim().is_empty())
        && (1..=6).contains(&filled.len())
        && filled.iter().all(|l| l.chars().count() <= 60)
}

/// A closing line of one punctuation mark repeated (`--`, `***`, `####`,
/// `~~~~`, `=====`, `____`, `++++`), or Gmail's add-ons' invisible mark
/// `ᐧ` alone: what people and clients put above a signature.
fn is_signature_rule(line: &str) -> bool {
    let t = line.trim();
    if t == "\u{1427}" {
        return true;
    }
    let mut chars = t.chars();
    match chars.next() {
        Some(first) if "-*#~=_+".contains(first) => {
            t.chars().count() >= 2 && chars.all(|c| c == first)
        }
        _ => false,
    }
}

/// Takes the signature off the end of `reply`: from an RFC 3676 "-- " line,
/// or a phone client's "Sent from my …" among the last lines.
pub fn split_signature<'a>(reply: &mut Vec<&'a str>) -> Vec<&'a str> {
    if let Some(pos) = reply
        .iter()
        .rposition(|l| l.trim_end() == "--" || *l == "-- ")
        .or_else(|| {
            reply
                .iter()
                .rposition(|l| is_signature_rule(l))
                .filter(|&pos| looks_like_a_signature(&reply[pos + 1..]))
        })
    {
        // Only near the end: a "--" in the middle of a long text is prose.
        if reply.len() - pos <= 12 {
            return reply.split_off(pos);
        }
    }
    let last_text: Vec<usize> = reply
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, _)| i)
        .rev()
        .take(2)
        .collect();
    if let Some(&pos) = last_text.iter().rev().find(|&&i| is_sign_off(reply[i])) {
        return reply.split_off(pos);
    }
    Vec::new()
}
