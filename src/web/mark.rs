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
}

impl WebMark {
    fn parts<'a>(&'a self, message_id: &'a str, from: &'a str) -> [&'a str; 6] {
        [
            message_id,
            from,
            &self.consultation,
            self.lang.code(),
            if self.no_publish { "1" } else { "0" },
            if self.visitor { "1" } else { "0" },
        ]
    }

    /// The header's value for a message with `message_id` from `from`.
    pub fn header_value(&self, key: &SigningKey, message_id: &str, from: &str) -> String {
        let signature = key.sign("web-mark", &self.parts(message_id, from));
        format!(
            "c={}; l={}; np={}; v={}; s={signature}",
            self.consultation,
            self.lang.code(),
            u8::from(self.no_publish),
            u8::from(self.visitor)
        )
    }

    /// The mark of `parsed`, if it has one that `key` signed for this
    /// Message-ID and sender.
    pub fn of(parsed: &Parsed, key: &SigningKey) -> Option<Self> {
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
        };
        let message_id = parsed.message_id.as_deref()?;
        let from = parsed.from.as_str();
        key.verify("web-mark", &mark.parts(message_id, from), field("s")?)
            .then_some(mark)
    }

    /// Whether `parsed` claims a mark at all (checked before the key is
    /// looked up).
    pub fn claimed(parsed: &Parsed) -> bool {
        parsed.header(&HEADER.to_ascii_lowercase()).is_some()
    }
}
