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
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
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
