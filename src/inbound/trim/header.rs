//! Where quoted history begins: the line a mail client writes above the
//! text it quotes ("On … wrote:" and its kin), or an Outlook header block.
//!
//! Clients write the header in many shapes and languages, and wrap it over
//! lines when it is long (the address alone on a line, `<` at the end of
//! one line and `addr> wrote:` on the next). The grammar is one table of
//! verbs and a few shapes built on it, tried on a line and on the lines
//! above it joined, so a new language is a word in a table and a wrapped
//! header is the same header.
//!
//! Shapes (`VERB` is "wrote" in any language of the table):
//! - `On <date>, <name> <addr> VERB:` with an opening word (On, Le, Am, Më…);
//! - `… VERB <name> <addr>:` with the verb inside (Dutch "schreef", German
//!   "schrieb", Scandinavian "skrev");
//! - `<name> <addr> VERB:` with no date (German, Russian, Ukrainian);
//! - `<date> <time> <name> <addr>:` with no verb (Gmail's date-first form,
//!   Yandex, Mail.ru, Russian Gmail);
//! - `<date> <time> <name> VERB:` with no address (Hungarian, Finnish).

use std::cell::OnceCell;
use std::sync::LazyLock;

use regex::Regex;

/// "Wrote" as quote headers say it, by language: words as written, a
/// space wherever clients may put any whitespace.
const VERBS: &[&str] = &[
    // English, Albanian.
    "wrote",
    "writes",
    "shkroi",
    "ka shkruar",
    // French, German, Italian, Spanish, Portuguese.
    "a écrit",
    "schrieb",
    "ha scritto",
    "escribió",
    "escreveu",
    // Dutch, Scandinavian, Finnish, Hungarian.
    "schreef",
    "skrev",
    "kirjoitti",
    "írta",
    // Polish, Czech, Serbian and Croatian, Turkish, Greek.
    "napisał(a)",
    "napisał",
    "napisała",
    "napsal(a)",
    "napsal",
    "je napisao",
    "napisao",
    "је написао",
    "yazdı",
    "έγραψε",
    // Russian, Ukrainian, Bulgarian.
    "написал(а)",
    "написал",
    "написала",
    "написав(ла)",
    "написав",
    "пише",
    "написа",
];

/// The words a header opens with ("On", "Le", "Am", "Më"…), by language.
const OPENERS: &str =
    r"on|le|am|il|el|em|op|den|på|më|në|w\s+dniu|dnia|dne|dana|il\s+giorno|в|el\s+día";

/// The verbs as one regex alternation.
fn verbs() -> String {
    VERBS
        .iter()
        .map(|v| regex::escape(v).replace(' ', r"\s+"))
        .collect::<Vec<_>>()
        .join("|")
}

// The regexes below are small on purpose: bounded repetitions of Unicode
// classes (`.{0,300}`, `\p{L}{4,11}`) compile to automata large enough to
// make each line cost tens of microseconds, and a Unicode `\b` keeps the
// regex crate off its fast DFA (it backtracks instead), so lengths are
// checked in code and words end at a space or a mark.

/// The verb at the end, with an optional colon (and Outlook's dashes).
static VERB_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)(?:{})\s*:?\s*(?:-{{2,}})?$", verbs())).expect("valid")
});

/// The verb and a colon at the end.
static VERB_COLON_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"(?i)(?:{})\s*:$", verbs())).expect("valid"));

/// The verb followed by a space, anywhere (what comes after it is checked).
static VERB_SPACE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r#"(?i)(?:^|[\s"'(,])(?:{})\s+"#, verbs())).expect("valid")
});

/// Languages whose headers name the sender without an address and end on
/// the verb, with no opening word: "Arta Hoxha írta:".
static NAME_VERB_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:írta|kirjoitti|написал\(а\)|написал|napisał\(a\))\s*:$").expect("valid")
});

/// An address right before the colon that ends the line.
static ADDRESS_AT_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[^\s<>\[\]@:]+@[^\s<>\[\]@]+\.[a-z]{2,}\s*[>\])]?\s*:$").expect("valid")
});

/// An opening word at the start.
static OPENER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)^(?:-{{2,}}\s*)?(?:{OPENERS})(?:[\s,.]|$)")).expect("valid")
});

static TIME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)[0-9]{1,2}:[0-9]{2}(?-u:\b)").expect("valid"));

static ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[^\s<>@]+@[^\s<>@]+\.[a-z]{2,}").expect("valid"));

static DATE_OR_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)(?:[0-9]{1,2}[:.][0-9]{2}|(?:19|20)[0-9]{2}|[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4})(?-u:\b)")
        .expect("valid")
});

/// `line` without the quote marks and spaces a reply adds in front.
pub fn unquoted(line: &str) -> &str {
    // Bytes, not chars: all three marks are ASCII, and a line of a million
    // `>` is read once at memory speed.
    let marks = line
        .bytes()
        .take_while(|b| matches!(b, b'>' | b' ' | b'\t'))
        .count();
    &line[marks..]
}

/// Whether `line` is blank once its quote marks are taken off. A line of
/// nothing but marks, the usual shape of a very long one, is told by a scan
/// without an early exit inside each block, which the compiler reads 32
/// bytes at a time: a line of a million `>` costs microseconds.
pub fn blank_unquoted(line: &str) -> bool {
    let only_marks = line.as_bytes().chunks(1024).all(|block| {
        block
            .iter()
            .fold(true, |all, &b| all & matches!(b, b'>' | b' ' | b'\t'))
    });
    only_marks || unquoted(line).trim().is_empty()
}

/// The longest line a header is looked for in, quote marks included: a
/// header is at most 400 characters, and no client quotes a line hundreds
/// of levels deep.
const MAX_HEADER_LINE_BYTES: usize = 4000;

/// The last word of each verb ("shkruar" of "ka shkruar"): a line that
/// ends in none of them (or a colon) cannot end a header, which is most
/// lines, and is told without running a regex. The shapes in `is_header`
/// then ask for the whole verb.
static VERB_LAST_WORDS: LazyLock<Vec<&str>> =
    LazyLock::new(|| VERBS.iter().filter_map(|v| v.rsplit(' ').next()).collect());

/// The last letters of those words, sorted, to rule a line out by its last
/// character alone.
static VERB_LAST_CHARS: LazyLock<Vec<char>> = LazyLock::new(|| {
    let mut last: Vec<char> = VERB_LAST_WORDS
        .iter()
        .filter_map(|v| v.chars().next_back())
        .collect();
    last.sort_unstable();
    last.dedup();
    last
});

/// Whether the line could end a header: a colon, or a verb, before
/// Outlook's trailing dashes.
fn could_end_header(line: &str) -> bool {
    let t = line.trim_end().trim_end_matches('-').trim_end();
    if t.ends_with(':') {
        return true;
    }
    // The last letter first, without allocating: it rules out most lines.
    let Some(last) = t.chars().next_back() else {
        return false;
    };
    if !last
        .to_lowercase()
        .any(|c| VERB_LAST_CHARS.binary_search(&c).is_ok())
    {
        return false;
    }
    let word = t.rsplit(char::is_whitespace).next().unwrap_or("");
    if word.is_ascii() {
        // Most lines: compared in place, without lower-casing a copy.
        let word = word.as_bytes();
        return VERB_LAST_WORDS.iter().any(|v| {
            word.len() >= v.len() && word[word.len() - v.len()..].eq_ignore_ascii_case(v.as_bytes())
        });
    }
    word.len() <= 64 && {
        let word = word.to_lowercase();
        VERB_LAST_WORDS.iter().any(|v| word.ends_with(v))
    }
}

/// Whether a line could open a wrapped header: an opening word, a digit,
/// or a weekday's name ("Tue,", "вт,", "tir.", "Вторник, 3").
fn opens_header(text: &str) -> bool {
    let t = text.trim_start_matches(['-', ' ']);
    if OPENER.is_match(text) || t.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    let letters = t.chars().take_while(|c| c.is_alphabetic()).count();
    let mut rest = t.chars().skip(letters);
    match (rest.next(), rest.next(), rest.next()) {
        (Some('.' | ','), Some(w), _) if (2..=3).contains(&letters) => w.is_whitespace(),
        (Some(','), Some(w), Some(d)) if (4..=11).contains(&letters) => {
            w.is_whitespace() && d.is_ascii_digit()
        }
        _ => false,
    }
}

/// The characters of `text` from byte `from` to byte `to`.
fn chars_between(text: &str, from: usize, to: usize) -> usize {
    text.get(from..to).map_or(usize::MAX, |s| s.chars().count())
}

/// Whether `text` (one line, or several joined) is a quote header.
fn is_header(text: &str, joined: bool) -> bool {
    if text.chars().count() > 400 {
        return false;
    }
    // Each fact is found once, and only when a shape needs it: the common
    // "On …, Name <addr> wrote:" is told by its first three.
    let address_end = OnceCell::new();
    let address_end = || {
        *address_end.get_or_init(|| {
            text.contains('@')
                .then(|| ADDRESS.find_iter(text).last().map(|m| m.end()))
                .flatten()
        })
    };
    let has_date = OnceCell::new();
    let has_date = || *has_date.get_or_init(|| DATE_OR_TIME.is_match(text));
    let opener = OnceCell::new();
    let opener = || *opener.get_or_init(|| OPENER.is_match(text));
    // Wrapped lines joined must name someone or a moment: prose seldom
    // runs over lines into "wrote:" with an address or a time in it.
    if joined && address_end().is_none() && !has_date() {
        return false;
    }
    let verb_end = VERB_END.find(text);
    // "On …, Name <addr> wrote:": an opening word and the verb at the end.
    if verb_end.is_some() && opener() {
        return true;
    }
    // "Name <addr> schrieb:": the verb a few words after the address.
    if let (Some(a), Some(v)) = (address_end(), verb_end)
        && a <= v.start()
        && chars_between(text, a, v.start()) <= 63
    {
        return true;
    }
    // "Op … schreef Name <addr>:": the verb inside, a name after it.
    if text.ends_with(':')
        && (address_end().is_some() || (opener() && TIME.is_match(text)))
        && VERB_SPACE.find_iter(text).last().is_some_and(|v| {
            let name = &text[v.end()..text.len() - 1];
            (1..=120).contains(&name.chars().count()) && !name.contains([':', '!', '?'])
        })
    {
        return true;
    }
    // The shapes left each need the verb at the end (VERB_COLON_END and
    // NAME_VERB_END only match where VERB_END does) or an address: a line
    // with neither, like the "On Thursday:" of a long thread, is not a
    // header, and their regexes are not run.
    if verb_end.is_none() && !text.contains('@') {
        return false;
    }
    // "2026-03-03 17:21 GMT+01:00 Name <addr>:": a date, the address last;
    // "2026. március 3. 10:00 Name írta:": a date, the verb last.
    if has_date()
        && (ADDRESS_AT_END.is_match(text) || (VERB_COLON_END.is_match(text) && opens_header(text)))
    {
        return true;
    }
    !joined && NAME_VERB_END.is_match(text)
}

/// Joins wrapped header lines into one, closing up the gaps clients leave
/// around an address broken out of its line ("<" / "mailto:a@b>").
fn join(lines: &[&str]) -> String {
    let mut out = String::new();
    for l in lines {
        let l = unquoted(l).trim_end();
        if !out.is_empty() && !out.ends_with('<') && !l.starts_with('>') {
            out.push(' ');
        }
        out.push_str(l);
    }
    out.replace("<mailto:", "<")
}

/// The most lines a wrapped header is read over.
const MAX_HEADER_LINES: usize = 5;

/// If a quote header ends on line `end`, the line it starts on.
pub fn header_ending_at(lines: &[&str], end: usize) -> Option<usize> {
    if lines[end].len() > MAX_HEADER_LINE_BYTES || !could_end_header(lines[end]) {
        return None;
    }
    let last = unquoted(lines[end]).trim_end();
    if last.is_empty() || last.len() > 400 {
        return None;
    }
    // The longest header that opens like one, so a wrapped header is taken
    // whole; its lines are short and none is blank.
    let first = end.saturating_sub(MAX_HEADER_LINES - 1);
    for start in first..end {
        let span = &lines[start..=end];
        if span.iter().any(|l| {
            l.len() > MAX_HEADER_LINE_BYTES || blank_unquoted(l) || unquoted(l).len() > 200
        }) || !opens_header(unquoted(lines[start]))
        {
            continue;
        }
        if is_header(&join(span), true) {
            return Some(start);
        }
    }
    is_header(last, false).then_some(end)
}

static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^\s*-{2,}\s*(?:original\s+message|message\s+d'origine|ursprüngliche\s+nachricht|",
        r"mesazhi\s+origjinal|messaggio\s+originale|mensaje\s+original|mensagem\s+original|",
        r"oprindelig\s+meddelelse|opprinnelig\s+melding|ursprungligt\s+meddelande|",
        r"alkuperäinen\s+viesti|oorspronkelijk\s+bericht|oprindelig\s+besked|исходное\s+сообщение|",
        r"пересылаемое\s+сообщение|оригінальне\s+повідомлення|wiadomość\s+oryginalna)\s*-{2,}\s*$"
    ))
    .expect("valid")
});

static FROM_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:from|de|von|da|nga|från|fra|van|lähettäjä|от|від|od)\*?\s*:\s*\S")
        .expect("valid")
});

static SENT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*\*?(?:sent|date|envoyé|gesendet|inviato|enviado|enviada|dërguar|data|datë|skickat|sendt|verzonden|lähetetty|отправлено|надіслано|дата|datum|dato|to|til|à|an|a|për|para|aan|кому)\*?\s*:",
    )
    .expect("valid")
});

/// Whether `text` starts like a header field of Outlook's block: a word
/// of a few letters, perhaps in bold (`*From:*`), and a colon.
fn has_field_name(text: &str) -> bool {
    let head = &text.as_bytes()[..text.len().min(MAX_FIELD_NAME_BYTES)];
    memchr::memchr(b':', head).is_some_and(|colon| colon > 0)
}

/// Where the colon must come by: the longest field name of FROM_LINE and
/// SENT_LINE in UTF-8 with its bold marks (`*отправлено*` is 22 bytes) and
/// a few spaces.
const MAX_FIELD_NAME_BYTES: usize = 32;

/// Where quoted history begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteStart {
    /// The header's first line.
    pub start: usize,
    /// Its last line.
    pub end: usize,
    /// A header line ("… wrote:"), under which the quote is marked with `>`;
    /// false for a block (Outlook's, "Original Message") with all history
    /// below it unmarked.
    pub header_only: bool,
}

/// The first place quoted history begins, if any.
pub fn quote_start(lines: &[&str]) -> Option<QuoteStart> {
    let block = |start| QuoteStart {
        start,
        end: start,
        header_only: false,
    };
    for (i, line) in lines.iter().enumerate() {
        if let Some(start) = header_ending_at(lines, i) {
            return Some(QuoteStart {
                start,
                end: i,
                header_only: true,
            });
        }
        // Cheap checks first: most lines are prose, and each regex call
        // costs more than the line.
        let t = line.trim_start();
        if t.starts_with("--") && ORIGINAL_MESSAGE.is_match(line) {
            return Some(block(i));
        }
        // Outlook: a From: line followed closely by Sent:/Date:/To:.
        if has_field_name(t)
            && FROM_LINE.is_match(line)
            && lines[i + 1..]
                .iter()
                .take(4)
                .any(|l| has_field_name(l.trim_start()) && SENT_LINE.is_match(l))
        {
            // Include the rule Outlook draws above the block, if any.
            let is_rule = |l: &str| {
                let t = l.trim();
                t.len() >= 10 && t.chars().all(|c| c == '_' || c == '-')
            };
            let rule = (i.saturating_sub(2)..i).find(|&j| is_rule(lines[j]));
            return Some(block(rule.unwrap_or(i)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(text: &str) -> Option<usize> {
        quote_start(&text.lines().collect::<Vec<_>>()).map(|q| q.start)
    }

    /// Each shape, in several languages, on one line.
    #[test]
    fn headers_in_every_shape_and_language_are_found() {
        for header in [
            "On Tue, 3 Mar 2026 at 10:00, OGP Office <consult+abc@ogp.example> wrote:",
            "Më 3 mars 2026, në 10:00, Zyra OGP <consult+abc@ogp.example> shkroi:",
            "Le mar. 3 mars 2026 à 10:00, Bureau OGP <consult+abc@ogp.example> a écrit :",
            "Am Di., 3. März 2026 um 10:00 Uhr schrieb OGP Office <consult+abc@ogp.example>:",
            "Am 03.03.2026 um 10:00 schrieb OGP Office:",
            "OGP Office <consult+abc@ogp.example> schrieb:",
            "Op di 3 mrt. 2026 om 10:00 schreef OGP Office <consult+abc@ogp.example>:",
            "tir. 3. mar. 2026 kl. 10:00 skrev OGP Office <consult+abc@ogp.example>:",
            "Den tis 3 mars 2026 kl 10:00 skrev OGP Office <consult+abc@ogp.example>:",
            "2026-03-03 10:00 GMT+01:00 OGP Office <consult+abc@ogp.example>:",
            "03.03.2026, 10:00, \"OGP Office\" <consult+abc@ogp.example>:",
            "вт, 3 мар. 2026 г. в 10:00, OGP Office <consult+abc@ogp.example>:",
            "Вторник, 3 марта 2026, 10:00 +01:00 от OGP Office <consult+abc@ogp.example>:",
            "вт, 3 бер. 2026 р. о 10:00 OGP Office <consult+abc@ogp.example> пише:",
            "3 березня 2026 р. о 10:00 OGP Office написав(ла):",
            "2026. március 3., kedd 10:00 OGP Office írta:",
        ] {
            let text = format!("Our proposal.\n\n{header}\n> Invitation\n");
            assert_eq!(start(&text), Some(2), "{header}");
        }
    }

    /// A header broken over lines, the address on lines of its own.
    #[test]
    fn wrapped_headers_are_taken_whole() {
        for header in [
            "On Tue, 3 Mar 2026 at 10:00, OGP Office <consult+abc@ogp.example>\nwrote:",
            "On Tue, 3 Mar 2026 at 10:00 AM OGP Office <\nconsult+abc@ogp.example> wrote:",
            "On Tue, 3 Mar 2026 at 10:00 AM OGP Office\n<mailto:consult+abc@ogp.example>\n> wrote:",
            "On Tue, 3 Mar 2026 at 10:00,\nOGP Office\n<consult+abc@ogp.example>\nwrote:",
            "3 марта 2026 г., в 10:00, пользователь OGP Office\n<consult+abc@ogp.example> написал:",
            "Më 3 mars 2026, në 10:00, Zyra e Pikës së Kontaktit\nshkroi:",
        ] {
            let text = format!("Our proposal.\n\n{header}\n> Invitation\n");
            assert_eq!(start(&text), Some(2), "{header}");
        }
    }

    /// The cheap gate in front of the grammar lets through every line a
    /// header can end on, in any case, and keeps out ordinary prose.
    #[test]
    fn only_lines_ending_in_a_colon_or_a_verb_can_end_a_header() {
        for end in [
            "Zyra OGP <consult@ogp.example> wrote:",
            "> OGP Office <consult@ogp.example> WROTE:",
            "Drita ka shkruar",
            "Bureau OGP a écrit :",
            "Office napisał(a):",
            "ΖΩΗ ΈΓΡΑΨΕ",
            "OGP Office написав(ла):  ",
            "OGP Office wrote: --",
        ] {
            assert!(could_end_header(end), "{end}");
        }
        for prose in [
            "We agree with the draft.",
            "Faleminderit,",
            "the ministry wrote to us on Monday",
            "",
            "-----",
        ] {
            assert!(!could_end_header(prose), "{prose}");
        }
    }

    /// Prose that mentions writing stays the sender's.
    #[test]
    fn prose_about_writing_is_not_a_header() {
        for prose in [
            "On reflection we think the deadline is too short, and we wrote to the ministry.",
            "The ministry wrote to us on 3 March 2026 the following:",
            "We wrote:",
            "Please write to arta@cso.example.org about it:",
            "Ministria na shkroi se afati është i shkurtër:",
            "Yes, we agree.\nThe ministry wrote:",
        ] {
            assert_eq!(start(prose), None, "{prose}");
        }
    }
}
