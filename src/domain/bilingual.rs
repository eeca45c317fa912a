//! A text the office writes in both of its languages, so that a message in
//! either one is never missing its part.

use super::Language;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bilingual<T> {
    pub sq: T,
    pub en: T,
}

impl<T> Bilingual<T> {
    pub fn new(sq: T, en: T) -> Self {
        Self { sq, en }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Language) -> &T {
        match lang {
            Language::Sq => &self.sq,
            Language::En => &self.en,
        }
    }
}

impl Bilingual<String> {
    pub fn as_deref(&self) -> Bilingual<&str> {
        Bilingual::new(self.sq.as_str(), self.en.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_gets_its_own_text() {
        let b = Bilingual::new("Zyra".to_string(), "Office".to_string());
        assert_eq!(b.get(Language::Sq), "Zyra");
        assert_eq!(*b.as_deref().get(Language::En), "Office");
    }
}
