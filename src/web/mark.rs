//! The mark a web-form message carries: which consultation, language and
//! publication choice it was sent with, signed with cocreate's key so that
//! an email cannot claim to be from the form.
//!
//! A form submission becomes a message like an email reply and goes through
//! the one intake; the mark only tells intake what an email would not: the
//! text is the sender's own (nothing quoted to trim), and, for a sender not
//! in the registry who confirmed their address, which consultation it is for.

use crate::domain::Language;
use crate::inbound::parse::Parsed;
use crate::signing::SigningKey;

pub const HEADER: &str = "X-Cocreate-Web";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebMark {
    /// The consultation's reference.
    pub consultation: String,
    pub lang: Language,
    /// The sender asked that their text not be published.
    pub no_publish: bool,
    /// The sender is not the registry's (they confirmed their address).
    pub visitor: bool,
    /// The organisation such a sender wrote for, as they typed it: the
    /// report names it as outside the registry.
    pub organisation: Option<String>,
}

impl WebMark {
    /// What the signature covers. The organisation only when there is one,
    /// so marks made before it was added still verify.
    fn parts<'a>(&'a self, message_id: &'a str, from: &'a str) -> Vec<&'a str> {
        let mut parts = vec![
            message_id,
            from,
            &self.consultation,
            self.lang.code(),
            if self.no_publish { "1" } else { "0" },
            if self.visitor { "1" } else { "0" },
        ];
        parts.extend(self.organisation.as_deref());
        parts
    }

    /// The header's value for a message with `message_id` from `from`.
    pub fn header_value(&self, key: &SigningKey, message_id: &str, from: &str) -> String {
        let signature = key.sign("web-mark", &self.parts(message_id, from));
        // Percent-encoded: a header holds ASCII, and no `;` of the name
        // may end the field.
        let organisation = self
            .organisation
            .as_deref()
            .map(|o| {
                format!(
                    "o={}; ",
                    form_urlencoded::byte_serialize(o.as_bytes()).collect::<String>()
                )
            })
            .unwrap_or_default();
        format!(
            "c={}; l={}; np={}; v={}; {organisation}s={signature}",
            self.consultation,
            self.lang.code(),
            u8::from(self.no_publish),
            u8::from(self.visitor)
        )
    }

    /// The mark of `parsed`, if it has one that `key` signed for this
    /// Message-ID and sender.
    pub fn of(parsed: &Parsed<'_>, key: &SigningKey) -> Option<Self> {
        let value = parsed.header(&HEADER.to_ascii_lowercase())?;
        let field = |name: &str| {
            value
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim())
        };
        let mark = WebMark {
            consultation: field("c")?.to_string(),
            lang: Language::parse(field("l")?).ok()?,
            no_publish: field("np")? == "1",
            visitor: field("v")? == "1",
            organisation: field("o").and_then(|o| {
                form_urlencoded::parse(format!("o={o}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            }),
        };
        let message_id = parsed.message_id.as_deref()?;
        let from = parsed.from.as_str();
        key.verify("web-mark", &mark.parts(message_id, from), field("s")?)
            .then_some(mark)
    }

    /// Whether `parsed` claims a mark at all (checked before the key is
    /// looked up).
    pub fn claimed(parsed: &Parsed<'_>) -> bool {
        parsed.header(&HEADER.to_ascii_lowercase()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (The message is leaked: a parsed message borrows its bytes, and
    /// these few live as long as the test.)
    fn parsed(mark: &str) -> Parsed<'static> {
        let raw = format!(
            "From: visitor@example.net\r\nMessage-ID: <web.n1@ogp.example>\r\n{HEADER}: {mark}\r\n\r\nText\r\n"
        );
        crate::inbound::parse::parse(raw.leak().as_bytes()).unwrap()
    }

    #[test]
    fn a_mark_keeps_a_visitors_organisation_and_older_marks_still_verify() {
        let key = SigningKey::fixed(b"0123456789abcdef0123456789abcdef");
        let mut mark = WebMark {
            consultation: "OGP-WEB".into(),
            lang: Language::Sq,
            no_publish: true,
            visitor: true,
            organisation: Some("Lëvizja; \"Qytetare\" Vlorë".into()),
        };
        let value = mark.header_value(&key, "web.n1@ogp.example", "visitor@example.net");
        assert!(value.is_ascii(), "{value}");
        assert_eq!(WebMark::of(&parsed(&value), &key), Some(mark.clone()));
        // Another organisation under the same signature is not believed.
        let forged = value.replace("Vlor", "Durr");
        assert_eq!(WebMark::of(&parsed(&forged), &key), None);
        // A mark made without an organisation reads as before.
        mark.organisation = None;
        let value = mark.header_value(&key, "web.n1@ogp.example", "visitor@example.net");
        assert!(!value.contains("o="), "{value}");
        assert_eq!(WebMark::of(&parsed(&value), &key), Some(mark));
    }
}
