//! Folding text for comparison: registry headers, fields of activity and
//! keywords are typed in Albanian and English, with or without diacritics
//! ("Të drejtat e njeriut" vs "te drejtat e njeriut"), so matching compares
//! folded forms.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower-case, strip diacritics, turn every run of non-alphanumerics into one
/// space, and trim. `"Ç'është  Anti-Korrupsioni?"` becomes `"c eshte anti korrupsioni"`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfd().filter(|c| !is_combining_mark(*c)) {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// `text` on one line: every run of whitespace (line breaks and header
/// folding included) as one space, without spaces at the ends.
pub fn one_line(text: &str) -> String {
    fn join<'a>(words: impl Iterator<Item = &'a str>, capacity: usize) -> String {
        let mut out = String::with_capacity(capacity);
        for word in words {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out
    }
    // Every header value of every message comes through here: ASCII text
    // is split byte by byte rather than decoded char by char. (Vertical
    // tab is whitespace to `char` but not to the ASCII split.)
    if text.is_ascii() && !text.contains('\x0b') {
        join(text.split_ascii_whitespace(), text.len())
    } else {
        join(text.split_whitespace(), text.len())
    }
}

/// 1,234,567 — counts in summaries are read by people.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 message", "3 messages", "10,000 messages"; "1 address", "2
/// addresses"; "1 reply", "2 replies". English only: each language's
/// own forms are in its templates.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let plural = if ["s", "x", "sh", "ch"].iter().any(|e| noun.ends_with(e)) {
        format!("{noun}es")
    } else if let Some(stem) = noun.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{noun}s")
    };
    format!("{} {plural}", thousands(n))
}

/// The lines of one paragraph of prose as a reader should see them: lines
/// the writer's editor wrapped are joined with a space (a line break in the
/// middle of a sentence is not one the reader should see), while a list
/// item ("- ", "* ", "• ", "1. ", "a) ") starts its own line.
pub fn prose_lines(paragraph: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in paragraph.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match out.last_mut() {
            Some(last) if !is_list_item(line) => {
                last.push(' ');
                last.push_str(&one_line(line));
            }
            _ => out.push(one_line(line)),
        }
    }
    out
}

/// Whether a line starts a list item: a bullet, or a number or letter
/// followed by `.` or `)`, then a space.
fn is_list_item(line: &str) -> bool {
    if ["- ", "* ", "• ", "– ", "— "]
        .iter()
        .any(|b| line.starts_with(b))
    {
        return true;
    }
    let marker_end = line
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(line.len(), |(i, _)| i);
    let marker = &line[..marker_end];
    let rest = &line[marker_end..];
    (1..=3).contains(&marker.len())
        && (marker.chars().all(|c| c.is_ascii_digit()) || marker.len() == 1)
        && (rest.starts_with(". ") || rest.starts_with(") "))
}

/// The folded words of `text`, in order.
pub fn fold_words(text: &str) -> Vec<String> {
    fold(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_unfolds_every_kind_of_whitespace() {
        for (text, line) in [
            (
                "Re: Propozim\r\n\tpër buxhetin",
                "Re: Propozim për buxhetin",
            ),
            ("  a \x0b b\x0c c\r\nd  ", "a b c d"),
            ("a\u{a0}b\u{3000}c", "a b c"),
            ("", ""),
            ("plain", "plain"),
        ] {
            assert_eq!(one_line(text), line, "{text:?}");
        }
    }

    #[test]
    fn wrapped_lines_join_and_list_items_keep_their_lines() {
        assert_eq!(
            prose_lines("Na tregoni çfarë të dhënash\nbuxhetore ju nevojiten,\n  dhe pse."),
            ["Na tregoni çfarë të dhënash buxhetore ju nevojiten, dhe pse."]
        );
        assert_eq!(
            prose_lines(
                "We ask for:\n- monthly data\n  in CSV\n- contracts\n2. a register\nb) a portal"
            ),
            [
                "We ask for:",
                "- monthly data in CSV",
                "- contracts",
                "2. a register",
                "b) a portal"
            ]
        );
        // A sentence ending in a year or a word and a full stop is prose.
        assert_eq!(
            prose_lines("The law of 2014.\nIt applies."),
            ["The law of 2014. It applies."]
        );
    }

    #[test]
    fn folds_albanian_diacritics_case_and_punctuation() {
        assert_eq!(
            fold("Ç'është  Anti-Korrupsioni?"),
            "c eshte anti korrupsioni"
        );
        assert_eq!(fold("  Të Drejtat e Njeriut "), "te drejtat e njeriut");
        assert_eq!(fold("E-MAIL"), "e mail");
        assert_eq!(fold_words("Arsim, rini; sport"), ["arsim", "rini", "sport"]);
    }

    #[test]
    fn one_line_joins_every_run_of_whitespace_with_one_space() {
        assert_eq!(
            one_line("  Propozim\r\n\tpër  buxhetin \n"),
            "Propozim për buxhetin"
        );
        assert_eq!(one_line(" \r\n "), "");
    }
}
