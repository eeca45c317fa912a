//! Separating what the sender wrote from the history their client quoted
//! and from their signature. All three are kept; only `reply_text` is shown
//! as the proposal, the rest folded.
//!
//! Replies come from Gmail ("On … wrote:"), Outlook (a From/Sent/To/Subject
//! block without `>`), Apple Mail and phones, in Albanian, English and the
//! other languages CSO staff use. Text the sender wrote between quoted lines
//! is theirs and stays in the reply.

mod header;
mod signature;

use serde::Serialize;

use header::blank_unquoted;
pub use header::quote_start;
use signature::split_signature;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trimmed {
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
}

impl Trimmed {
    /// Whether the three parts together hold every non-blank line of `body`
    /// and nothing else, each part in `body`'s order: what trimming
    /// promises (checked by the property tests and the fuzz target).
    pub fn keeps_every_line_of(&self, body: &str) -> Result<(), String> {
        let text = body.replace("\r\n", "\n").replace('\r', "\n");
        let filled = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.trim_end().to_string())
                .collect()
        };
        let original = filled(&text);
        let parts = [
            ("reply_text", filled(&self.reply_text)),
            ("quoted_text", filled(&self.quoted_text)),
            ("signature", filled(&self.signature)),
        ];
        for (name, lines) in &parts {
            let mut rest = original.iter();
            if let Some(l) = lines.iter().find(|l| !rest.any(|o| o == *l)) {
                return Err(format!("{name} holds {l:?} out of order or invented"));
            }
        }
        let mut all: Vec<&String> = parts.iter().flat_map(|(_, l)| l).collect();
        let mut want: Vec<&String> = original.iter().collect();
        all.sort();
        want.sort();
        if all != want {
            return Err(format!(
                "the parts hold {} lines, the body {}",
                all.len(),
                want.len()
            ));
        }
        Ok(())
    }
}

/// A quote the sender answers right below it stays with the answer when it
/// is at most this many lines; a longer one is history they replied under.
const ANSWERED_QUOTE_LINES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Reply,
    Quoted,
    Signature,
}

/// What a line is, told once per line: the steps below ask it many times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blank,
    /// Marked with `>`.
    Quote,
    /// Written by the sender: not blank, not quoted.
    Own,
}

impl Kind {
    fn of(line: &str) -> Self {
        match line.trim_start().as_bytes().first() {
            None => Kind::Blank,
            Some(b'>') => Kind::Quote,
            Some(_) => Kind::Own,
        }
    }
}

/// The lines of `body`: CRLF, LF or a lone CR (old Macs) ends one. Slices
/// of the body, not copies.
fn lines(body: &str) -> Vec<&str> {
    let mut lines = Vec::with_capacity(body.len() / 40 + 1);
    let mut rest = body;
    while !rest.is_empty() {
        let Some(end) = memchr::memchr2(b'\n', b'\r', rest.as_bytes()) else {
            lines.push(rest);
            break;
        };
        lines.push(&rest[..end]);
        let ending = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + ending..];
    }
    lines
}

/// Splits a plain-text body into what the sender wrote, what their client
/// quoted and their signature. Every line of `body` lands in exactly one of
/// the three, in its order, as written (blank lines and indentation kept).
pub fn trim(body: &str) -> Trimmed {
    let lines = lines(body);
    let kinds: Vec<Kind> = lines.iter().map(|l| Kind::of(l)).collect();
    let mut part = vec![Part::Reply; lines.len()];

    if let Some(q) = quote_start(&lines) {
        let own_before = kinds[..q.start].contains(&Kind::Own);
        let quoted_after = kinds[q.end + 1..].contains(&Kind::Quote);
        if own_before || !q.header_only || !quoted_after {
            // Top-posting, an Outlook block, or a header over text quoted
            // without marks: all from the header on is history.
            part[q.start..].fill(Part::Quoted);
        } else {
            // Bottom-posting or answering inline: only the header is
            // history here; the quotes are sorted out below.
            part[q.start..=q.end].fill(Part::Quoted);
        }
    }
    // The signature first, among the sender's own lines, so that a quote
    // above it does not read as answered by it.
    let own_at: Vec<usize> = (0..lines.len())
        .filter(|&i| part[i] == Part::Reply && kinds[i] != Kind::Quote)
        .collect();
    let mut own: Vec<&str> = own_at.iter().map(|&i| lines[i]).collect();
    split_signature(&mut own);
    for &i in &own_at[own.len()..] {
        part[i] = Part::Signature;
    }
    set_aside_quotes(&lines, &kinds, &mut part);

    if !kinds
        .iter()
        .zip(&part)
        .any(|(k, p)| *p == Part::Reply && *k == Kind::Own)
    {
        // Nothing but a quote (or typed inside one): keep it all rather
        // than leave an empty proposal.
        for p in part.iter_mut().filter(|p| **p == Part::Quoted) {
            *p = Part::Reply;
        }
    }

    let text_of = |which: Part| {
        tidy(
            lines
                .iter()
                .zip(&part)
                .filter(|(_, p)| **p == which)
                .map(|(l, _)| *l),
        )
    };
    Trimmed {
        reply_text: text_of(Part::Reply),
        quoted_text: text_of(Part::Quoted),
        signature: text_of(Part::Signature),
    }
}

/// Among the lines still counted as the reply, a run of `>` lines is
/// history unless the sender answers it right after and it is short
/// (inline answering: the question stays with its answer).
fn set_aside_quotes(lines: &[&str], kinds: &[Kind], part: &mut [Part]) {
    let reply: Vec<usize> = (0..lines.len())
        .filter(|&i| part[i] == Part::Reply)
        .collect();
    // Where the sender's last own line is, among those: a run of quotes
    // before it is answered.
    let last_own = reply.iter().rposition(|&i| kinds[i] == Kind::Own);
    let mut k = 0;
    while k < reply.len() {
        if kinds[reply[k]] != Kind::Quote {
            k += 1;
            continue;
        }
        // The run: quote lines and the blank lines between them.
        let mut end = k;
        let mut j = k;
        while j < reply.len() && kinds[reply[j]] != Kind::Own {
            if kinds[reply[j]] == Kind::Quote {
                end = j;
            }
            j += 1;
        }
        let answered = last_own.is_some_and(|o| o > end);
        let long = reply[k..=end]
            .iter()
            .filter(|&&i| !blank_unquoted(lines[i]))
            .nth(ANSWERED_QUOTE_LINES)
            .is_some();
        if !answered || long {
            for &i in &reply[k..=end] {
                part[i] = Part::Quoted;
            }
        }
        k = end + 1;
    }
}

/// The lines as written, without the blank lines around them and the
/// spaces at their ends.
fn tidy<'a>(lines: impl Iterator<Item = &'a str> + Clone) -> String {
    // Sized once: growing by doubling would copy a long body several times.
    let mut out = String::with_capacity(lines.clone().map(|l| l.len() + 1).sum());
    // Blank lines are written only once a line with text follows them.
    let mut blanks = 0;
    for l in lines {
        let l = l.trim_end();
        if l.trim_start().is_empty() {
            blanks += usize::from(!out.is_empty());
            continue;
        }
        if !out.is_empty() {
            out.extend(std::iter::repeat_n('\n', blanks + 1));
        }
        blanks = 0;
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn lines_end_at_crlf_lf_or_a_lone_cr() {
        assert_eq!(
            lines("a\r\nb\nc\rd\r\n\r\ne"),
            ["a", "b", "c", "d", "", "e"]
        );
        assert_eq!(lines("a\n"), ["a"]);
        assert!(lines("").is_empty());
    }

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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Lines as replies are made of: prose, quotes, headers, rules,
        /// sign-offs, blank lines, in any order.
        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                "[A-Za-zëçË ,.]{0,40}",
                "> [a-z ]{0,30}",
                ">> [a-z ]{0,20}",
                Just(String::new()),
                Just("   ".to_string()),
                Just("-- ".to_string()),
                Just("____".to_string()),
                Just("Sent from my iPhone".to_string()),
                Just("On Tue, 3 Mar 2026 at 10:00, OGP <consult@ogp.example> wrote:".to_string()),
                Just("Më 3 mars 2026, Zyra <consult@ogp.example>".to_string()),
                Just("shkroi:".to_string()),
                Just("From: OGP <consult@ogp.example>".to_string()),
                Just("Sent: Tuesday, March 3, 2026".to_string()),
                Just("-----Original Message-----".to_string()),
                "\\PC{0,20}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Trimming never panics, never invents text, and loses no line.
            #[test]
            fn every_line_is_kept_once_in_order(lines in prop::collection::vec(line(), 0..40), crlf in any::<bool>()) {
                let body = lines.join(if crlf { "\r\n" } else { "\n" });
                let t = trim(&body);
                prop_assert_eq!(t.keeps_every_line_of(&body), Ok(()));
            }

            /// Any text at all, not only reply-shaped lines.
            #[test]
            fn any_text_is_trimmed_without_loss(body in "\\PC{0,400}") {
                let t = trim(&body);
                prop_assert_eq!(t.keeps_every_line_of(&body), Ok(()));
            }
        }
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
        assert_eq!(
            t.reply_text,
            "> Question one?\nOur answer one.\n> Question two?\nOur answer two."
        );
        assert_eq!(
            t.quoted_text,
            "On Tue, 3 Mar 2026, OGP <consult+abc@ogp.example> wrote:"
        );
    }

    /// A short quote answered at the top of a reply stays with its answer;
    /// the history below it does not.
    #[test]
    fn a_short_quote_answered_at_the_top_stays_with_the_answer() {
        let t = trim(
            "> Afati: 11 janar 2027\n\nA mund ta shtyni afatin me dy javë?\n\nMë 3 mars 2026, në 10:00, Zyra OGP <consult+abc@ogp.example> shkroi:\n> Ftesë për konsultim\n> Afati: 11 janar 2027\n",
        );
        assert_eq!(
            t.reply_text,
            "> Afati: 11 janar 2027\n\nA mund ta shtyni afatin me dy javë?"
        );
        assert!(t.quoted_text.starts_with("Më 3 mars 2026"));
    }

    /// A long quote with the answer under it is history (bottom-posting).
    #[test]
    fn a_long_quote_answered_below_is_history() {
        let quote: String = (1..=12)
            .map(|i| format!("> Invitation line {i}\n"))
            .collect();
        let t = trim(&format!(
            "On Tue, 3 Mar 2026, OGP <consult+abc@ogp.example> wrote:\n{quote}\nWe propose monthly data.\n"
        ));
        assert_eq!(t.reply_text, "We propose monthly data.");
        assert!(t.quoted_text.ends_with("> Invitation line 12"));
    }

    /// Blank lines and indentation are the sender's and stay as written.
    #[test]
    fn blank_lines_and_indentation_stay_as_written() {
        let body = "Propozimet tona:\n\n\n  1. Buxheti mujor\n      a) për bashkitë\n\n\n\nFaleminderit.\n";
        let t = trim(body);
        assert_eq!(t.reply_text, body.trim_end());
    }

    /// A message that is nothing but a quote keeps it, rather than
    /// becoming an empty proposal; so does a header over unmarked text.
    #[test]
    fn a_message_that_is_only_a_quote_keeps_it() {
        let t = trim("> We propose one portal for all contracts.\n> Arta\n");
        assert_eq!(
            t.reply_text,
            "> We propose one portal for all contracts.\n> Arta"
        );
        assert_eq!(t.quoted_text, "");
        let t = trim(
            "On Tue, 3 Mar 2026, OGP <consult+abc@ogp.example> wrote:\nDear colleagues,\nthe consultation is open.\n",
        );
        assert_eq!(
            t.reply_text,
            "On Tue, 3 Mar 2026, OGP <consult+abc@ogp.example> wrote:\nDear colleagues,\nthe consultation is open."
        );
        let t = trim(
            "Ne mbështesim draftin.\n\nOn Tue, 3 Mar 2026, OGP <consult+abc@ogp.example> wrote:\nDear colleagues,\nthe consultation is open.\n",
        );
        assert_eq!(t.reply_text, "Ne mbështesim draftin.");
        assert!(t.quoted_text.ends_with("the consultation is open."));
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
