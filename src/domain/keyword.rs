//! Keywords of a policy area, as the config writes them.

use super::fold_words;

/// A keyword from the config: a word or phrase in which a word ending in
/// `*` matches any word that starts with it ("sherbim* publik*").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    original: String,
    words: Vec<KeywordWord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeywordWord {
    folded: String,
    prefix: bool,
}

impl KeywordWord {
    fn matches(&self, word: &str) -> bool {
        if self.prefix {
            word.starts_with(self.folded.as_str())
        } else {
            word == self.folded
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordError {
    #[error("has an empty keyword")]
    Empty,
    #[error("has the keyword '{0}', where `*` may only end a word")]
    MisplacedStar(String),
}

impl Keyword {
    pub fn parse(raw: &str) -> Result<Self, KeywordError> {
        let trimmed = raw.trim();
        let mut words = Vec::new();
        for part in trimmed.split_whitespace() {
            let (body, prefix) = match part.strip_suffix('*') {
                Some(body) => (body, true),
                None => (part, false),
            };
            if body.contains('*') {
                return Err(KeywordError::MisplacedStar(trimmed.to_string()));
            }
            // "anti-corruption" folds to two words, matched as a phrase; a
            // star applies to the last of them.
            let folded = fold_words(body);
            let n = folded.len();
            words.extend(
                folded
                    .into_iter()
                    .enumerate()
                    .map(|(i, folded)| KeywordWord {
                        folded,
                        prefix: prefix && i + 1 == n,
                    }),
            );
        }
        if words.is_empty() {
            return Err(KeywordError::Empty);
        }
        Ok(Self {
            original: trimmed.to_string(),
            words,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Whether the keyword occurs in `words` (already folded) as whole words.
    pub(crate) fn occurs_in(&self, words: &[String]) -> bool {
        words.windows(self.words.len()).any(|window| {
            window
                .iter()
                .zip(&self.words)
                .all(|(word, kw)| kw.matches(word))
        })
    }
}
