//! A text the office writes in both of its languages, so that a message in
//! either one is never missing its part.

use super::Language;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

    /// The Albanian text, and the English one if given: without it, English
    /// readers get the Albanian text rather than nothing.
    pub fn sq_and_maybe_en(sq: String, en: Option<String>) -> Self {
        let sq = sq.trim().to_string();
        let en = en
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| sq.clone());
        Self { sq, en }
    }

    /// Both texts with `f` applied to each.
    pub fn try_map<E>(
        self,
        mut f: impl FnMut(String, Language) -> Result<String, E>,
    ) -> Result<Self, E> {
        Ok(Self {
            sq: f(self.sq, Language::Sq)?,
            en: f(self.en, Language::En)?,
        })
    }

    /// Whether both languages have the same text (given once).
    pub fn is_one(&self) -> bool {
        self.sq == self.en
    }
}

/// `(Albanian, English)`.
impl From<(&str, &str)> for Bilingual<String> {
    fn from((sq, en): (&str, &str)) -> Self {
        Self::new(sq.to_string(), en.to_string())
    }
}

/// One text that both languages read.
impl From<&str> for Bilingual<String> {
    fn from(text: &str) -> Self {
        Self::new(text.to_string(), text.to_string())
    }
}

/// Written as `{ sq = "…", en = "…" }`.
impl serde::Serialize for Bilingual<String> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut map = s.serialize_struct("Bilingual", 2)?;
        map.serialize_field("sq", &self.sq)?;
        map.serialize_field("en", &self.en)?;
        map.end()
    }
}

/// Read from one string (both languages read it: what the office wrote
/// before it could give two, and what it writes when it has one) or from
/// `{ sq = "…", en = "…" }`, either of which may be left out.
impl<'de> serde::Deserialize<'de> for Bilingual<String> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Bilingual<String>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text, or { sq = \"…\", en = \"…\" }")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Bilingual::new(v.to_string(), v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let (mut sq, mut en): (Option<String>, Option<String>) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "sq" => sq = Some(map.next_value()?),
                        "en" => en = Some(map.next_value()?),
                        other => {
                            return Err(serde::de::Error::unknown_field(other, &["sq", "en"]));
                        }
                    }
                }
                match (sq, en) {
                    (Some(sq), en) => Ok(Bilingual::sq_and_maybe_en(sq, en)),
                    (None, Some(en)) => Ok(Bilingual::new(en.clone(), en)),
                    (None, None) => Err(serde::de::Error::missing_field("sq")),
                }
            }
        }
        d.deserialize_any(Visitor)
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

    /// One text (as stored before texts had two languages) serves both;
    /// a missing English text falls back to the Albanian one.
    #[test]
    fn reads_one_text_or_both_languages() {
        let one: Bilingual<String> = serde_json::from_str("\"Arsye\"").unwrap();
        assert_eq!(one, Bilingual::new("Arsye".into(), "Arsye".into()));
        let both: Bilingual<String> =
            serde_json::from_str(r#"{"sq":"Arsye","en":"Reason"}"#).unwrap();
        assert_eq!(both.get(Language::En), "Reason");
        let sq_only: Bilingual<String> = toml::from_str::<toml::Table>("t = { sq = \"Arsye\" }")
            .unwrap()["t"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(sq_only.get(Language::En), "Arsye");
        assert!(serde_json::from_str::<Bilingual<String>>(r#"{"fr":"x"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&both).unwrap(),
            r#"{"sq":"Arsye","en":"Reason"}"#
        );
    }
}
