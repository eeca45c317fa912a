//! Separating what the sender wrote from the history their client quoted
//! and from their signature. All three are kept; only `reply_text` is shown
//! as the proposal, the rest folded.
//!
//! Replies come from Gmail ("On … wrote:"), Outlook (a From/Sent/To/Subject
//! block without `>`), Apple Mail and phones, in Albanian, English and the
//! other languages CSO staff use. Text the sender wrote between quoted lines
//! is theirs and stays in the reply.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trimmed {
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
}

/// "On Tue, 3 Mar 2026 at 10:00, Name <a@b> wrote:" in many languages; the
/// header may be split over two lines by the client.
static QUOTE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(?:-{2,}\s*)?
        (?:on|le|am|il|el|em|op|den|på|më|në|w\s+dniu|dne|dana|il\s+giorno|в|el\s+día)\b .{0,300}?
        (?:wrote|a\s+écrit|schrieb|ha\s+scritto|escribió|escreveu|schreef|skrev|shkroi|ka\s+shkruar|
           napisał\(a\)|napisał|napisała|napsal|написал\(а\)|написал|написала|kirjoitti|írta)
        \s*:?\s*(?:-{2,})?\s*$",
    )
    .expect("valid")
});

/// German clients put the name after the verb: `Am 13.12.2017 schrieb "Name <a@b>":`.
static GERMAN_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*am\s.{0,100}\bschrieb\b.{0,160}:\s*$").expect("valid"));

/// A quote header that ends the line without an opening word, as Russian,
/// Finnish and some phone clients write it ("2026-03-03 10:00 GMT+01:00, Name <a@b>:").
static TRAILING_WROTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^(?:.{0,200}<[^>\s]+@[^>\s]+>.{0,40}(?:wrote|shkroi)",
        r"|.{0,200}(?:írta|kirjoitti|написал\(а\)|написал|napisał\(a\)))\s*:\s*$"
    ))
    .expect("valid")
});

static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^\s*-{2,}\s*(?:original\s+message|message\s+d'origine|ursprüngliche\s+nachricht|",
        r"mesazhi\s+origjinal|messaggio\s+originale|mensaje\s+original|mensagem\s+original|",
        r"oprindelig\s+meddelelse|opprinnelig\s+melding|ursprungligt\s+meddelande|",
        r"alkuperäinen\s+viesti|oorspronkelijk\s+bericht|oprindelig\s+besked|исходное\s+сообщение)\s*-{2,}\s*$"
    ))
    .expect("valid")
});

static FROM_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:from|de|von|da|nga|från|fra|van|lähettäjä|от|od)\*?\s*:\s*\S")
        .expect("valid")
});

static SENT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*\*?(?:sent|date|envoyé|gesendet|inviato|enviado|enviada|dërguar|data|datë|skickat|sendt|verzonden|lähetetty|отправлено|дата|datum|dato|to|til|à|an|a|për|para)\*?\s*:",
    )
    .expect("valid")
});

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

static PHONE_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)^\s*(?:{}).{{0,60}}$", SIGN_OFFS.join("|"))).expect("valid")
});

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

/// Splits a plain-text body.
pub fn trim(body: &str) -> Trimmed {
    let text = body.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.lines().collect();

    let (mine, mut quoted): (Vec<&str>, Vec<&str>) = match quote_start(&lines) {
        Some(start) => {
            let before = &lines[..start];
            if before
                .iter()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('>'))
            {
                // Bottom-posting: the reply follows the quoted history.
                let mut mine = Vec::new();
                let mut history = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    if i == start || l.trim_start().starts_with('>') {
                        history.push(*l);
                    } else {
                        mine.push(*l);
                    }
                }
                (mine, history)
            } else {
                (before.to_vec(), lines[start..].to_vec())
            }
        }
        None => (lines.clone(), Vec::new()),
    };

    // Lines quoted with '>' are history even between the sender's own lines.
    let mut reply: Vec<&str> = Vec::new();
    let mut inline_quotes: Vec<&str> = Vec::new();
    for l in mine {
        if l.trim_start().starts_with('>') {
            inline_quotes.push(l);
        } else {
            reply.push(l);
        }
    }
    if !inline_quotes.is_empty() {
        inline_quotes.extend(std::mem::take(&mut quoted));
        quoted = inline_quotes;
    }

    let signature = split_signature(&mut reply);
    Trimmed {
        reply_text: tidy(&reply),
        quoted_text: tidy(&quoted),
        signature: tidy(&signature),
    }
}

/// The first line where quoted history begins, if any.
fn quote_start(lines: &[&str]) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        let unquoted = line.trim_start_matches(['>', ' ']);
        if QUOTE_HEADER.is_match(unquoted)
            || TRAILING_WROTE.is_match(unquoted)
            || GERMAN_HEADER.is_match(unquoted)
        {
            return Some(i);
        }
        // Clients wrap a long header over two or three lines:
        // "On Dec 16, 2011, at 12:47 PM, Name" / "<a@b>" / "wrote:".
        if unquoted.len() > 5 {
            let mut joined = unquoted.trim_end().to_string();
            for next in lines.iter().skip(i + 1).take(2) {
                let next = next.trim_start_matches(['>', ' ']).trim_end();
                if next.is_empty() || next.len() > 80 {
                    break;
                }
                joined.push(' ');
                joined.push_str(next);
                if QUOTE_HEADER.is_match(&joined) {
                    return Some(i);
                }
            }
        }
        if ORIGINAL_MESSAGE.is_match(line) {
            return Some(i);
        }
        // Outlook: a From: line followed closely by Sent:/Date:/To:.
        if FROM_LINE.is_match(line) && lines[i + 1..].iter().take(4).any(|l| SENT_LINE.is_match(l))
        {
            // Include the rule Outlook draws above the block, if any.
            let is_rule = |l: &str| {
                let t = l.trim();
                t.len() >= 10 && t.chars().all(|c| c == '_' || c == '-')
            };
            let rule = (i.saturating_sub(2)..i).find(|&j| is_rule(lines[j]));
            return Some(rule.unwrap_or(i));
        }
    }
    None
}

/// Takes the signature off the end of `reply`: from an RFC 3676 "-- " line,
/// or a phone client's "Sent from my …" among the last lines.
fn split_signature<'a>(reply: &mut Vec<&'a str>) -> Vec<&'a str> {
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
    if let Some(&pos) = last_text
        .iter()
        .rev()
        .find(|&&i| PHONE_SIGNATURE.is_match(reply[i]))
    {
        return reply.split_off(pos);
    }
    Vec::new()
}

fn tidy(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for l in lines.iter().map(|l| l.trim_end()) {
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every phone or app sign-off, in every language of the table, goes to
    /// the signature, whatever the device after it.
    #[test]
    fn phone_and_app_sign_offs_in_many_languages_are_signatures() {
        for sign_off in [
            "Sent from my iPhone",
            "Sent from Yahoo Mail on Android",
            "Get Outlook for iOS",
            "Sent with Airmail",
            "Sent from BlackBerry Work",
            "Sent using Spark",
            "Dërguar nga iPhone-i im",
            "Envoyé de mon iPhone",
            "Envoyé depuis mon Samsung",
            "Von meinem iPhone gesendet",
            "Gesendet mit der Telekom Mail App",
            "Verzonden vanaf mijn iPhone",
            "Verstuurd vanaf mijn Android",
            "Inviato da iPhone",
            "Enviado desde mi teléfono",
            "Sendt fra min iPhone",
            "Skickat från min iPhone",
            "Wysłane z mojego iPhone'a",
            "Отправлено с iPhone",
            "Надіслано з iPhone",
            "发自我的iPhone",
            "从我的华为手机发送",
        ] {
            let t = trim(&format!(
                "Propozojmë buxhet të hapur në çdo bashki.\n\n{sign_off}\n"
            ));
            assert_eq!(
                t.reply_text, "Propozojmë buxhet të hapur në çdo bashki.",
                "{sign_off}"
            );
            assert_eq!(t.signature, sign_off, "{sign_off}");
        }
    }

    /// A closing rule of one repeated mark, or Gmail's invisible mark,
    /// starts the signature; the same marks inside the text do not.
    #[test]
    fn closing_rules_and_the_invisible_mark_start_the_signature() {
        for rule in [
            "--", "-- ", "***", "####", "~~~~", "=====", "____", "++++", "\u{1427}",
        ] {
            let t = trim(&format!(
                "We propose quarterly reports.\n\n{rule}\nArben Dervishi\nForumi i Rinisë\n"
            ));
            assert_eq!(t.reply_text, "We propose quarterly reports.", "{rule:?}");
            assert_eq!(
                t.signature,
                format!("{}\nArben Dervishi\nForumi i Rinisë", rule.trim_end()),
                "{rule:?}"
            );
        }
        // Emphasis inside a sentence is text.
        let t = trim("Kjo është *shumë* e rëndësishme.\nFaleminderit.\n");
        assert_eq!(
            t.reply_text,
            "Kjo është *shumë* e rëndësishme.\nFaleminderit."
        );
        assert_eq!(t.signature, "");
    }

    #[test]
    fn gmail_top_posting_in_english_and_albanian() {
        let t = trim(
            "Propozimi ynë është i thjeshtë.\n\nMe respekt,\nArta\n\nMë 3 mars 2026, në 10:00, Pika e Kontaktit <consult+abc@ogp.example> shkroi:\n> Ftesë për konsultim\n> Afati: 11 janar\n",
        );
        assert_eq!(
            t.reply_text,
            "Propozimi ynë është i thjeshtë.\n\nMe respekt,\nArta"
        );
        assert!(t.quoted_text.starts_with("Më 3 mars 2026"));
        let t = trim(
            "We propose monthly budget data.\n\nOn Tue, 3 Mar 2026 at 10:00, OGP Office <consult+abc@ogp.example> wrote:\n> Invitation\n",
        );
        assert_eq!(t.reply_text, "We propose monthly budget data.");
    }

    #[test]
    fn gmail_header_split_over_two_lines() {
        let t = trim(
            "Yes, we support this.\n\nOn Tue, 3 Mar 2026 at 10:00, OGP Office <consult+abc@ogp.example>\nwrote:\n> Invitation\n",
        );
        assert_eq!(t.reply_text, "Yes, we support this.");
    }

    #[test]
    fn outlook_block_without_quote_marks() {
        let t = trim(
            "Please find our proposal below.\n1. Open data\n\n________________________________\nFrom: OGP Office <consult+abc@ogp.example>\nSent: Tuesday, March 3, 2026 10:00 AM\nTo: info@cso.al\nSubject: Invitation\n\nDear colleagues,\n",
        );
        assert_eq!(
            t.reply_text,
            "Please find our proposal below.\n1. Open data"
        );
        assert!(
            t.quoted_text
                .starts_with("________________________________\nFrom: OGP Office")
        );
        let sq = trim(
            "Propozimi ynë.\n\nNga: Zyra OGP <consult+abc@ogp.example>\nDërguar: e martë, 3 mars 2026 10:00\nPër: info@cso.al\nSubjekti: Ftesë\n",
        );
        assert_eq!(sq.reply_text, "Propozimi ynë.");
    }

    #[test]
    fn text_between_quoted_lines_is_kept() {
        let t = trim(
            "On Tue, 3 Mar 2026, OGP <consult+abc@ogp.example> wrote:\n> Question one?\nOur answer one.\n> Question two?\nOur answer two.\n",
        );
        assert_eq!(t.reply_text, "Our answer one.\nOur answer two.");
        assert!(t.quoted_text.contains("> Question one?"));
    }

    #[test]
    fn signatures_are_set_aside_but_prose_stays() {
        let t = trim("Our proposal: publish contracts.\n\n-- \nArta Hoxha\nQendra X\n");
        assert_eq!(t.reply_text, "Our proposal: publish contracts.");
        assert_eq!(t.signature, "--\nArta Hoxha\nQendra X");
        let phone = trim("Agree with draft 2.\n\nSent from my iPhone\n");
        assert_eq!(phone.reply_text, "Agree with draft 2.");
        assert_eq!(phone.signature, "Sent from my iPhone");
        let prose = trim(
            "On reflection we think the deadline is too short, and we wrote to the ministry about it.\n",
        );
        assert_eq!(
            prose.reply_text,
            "On reflection we think the deadline is too short, and we wrote to the ministry about it."
        );
        assert_eq!(prose.quoted_text, "");
    }
}
