//! Reading one RFC 5322 message with mail-parser into what the rest of the
//! inbound path needs. HTML-only mail becomes readable text; charsets such
//! as ISO-8859-2 and Windows-1250 are decoded by mail-parser.

use std::borrow::Cow;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::{EmailAddress, one_line};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message cannot be parsed as email")]
    Unparseable,
    #[error("the message has no sender address (From)")]
    NoSender,
    #[error("the sender in From ('{0}') is not an email address")]
    BadSender(String),
    #[error(
        "the message holds more than {limit} attached messages (message/rfc822), more than cocreate reads; it is kept as it arrived"
    )]
    TooManyNested { limit: usize },
    #[error(
        "the message has more than {limit} MIME parts, more than cocreate reads; it is kept as it arrived"
    )]
    TooManyParts { limit: usize },
    #[error(
        "reading the message failed inside cocreate (a fault in the mail parser); it is kept as it arrived"
    )]
    Fault,
}

impl ParseError {
    /// The reason in Albanian, for the POC's Albanian summary and pages.
    pub fn in_albanian(&self) -> String {
        match self {
            Self::Unparseable => "mesazhi nuk mund të lexohet si email".into(),
            Self::NoSender => "mesazhi nuk ka adresë dërguesi (From)".into(),
            Self::BadSender(written) => {
                format!("dërguesi te From ('{written}') nuk është adresë emaili")
            }
            Self::TooManyNested { limit } => format!(
                "mesazhi mban më shumë se {limit} mesazhe të bashkëngjitura (message/rfc822), më shumë nga sa lexon cocreate; ruhet ashtu si erdhi"
            ),
            Self::TooManyParts { limit } => format!(
                "mesazhi ka më shumë se {limit} pjesë MIME, më shumë nga sa lexon cocreate; ruhet ashtu si erdhi"
            ),
            Self::Fault => "leximi i mesazhit dështoi brenda cocreate (një defekt te lexuesi i postës); ruhet ashtu si erdhi".into(),
        }
    }

    /// The reason in both languages.
    pub fn why(&self) -> crate::domain::Bilingual<String> {
        crate::domain::Bilingual::new(self.in_albanian(), self.to_string())
    }
}

/// How much of a message's structure is read (`inbound.max_attached_messages`
/// and `inbound.max_mime_parts`).
///
/// Attached messages (message/rfc822, message/global) are each a level of
/// nesting in what mail-parser builds, and dropping that is recursive:
/// 40,000 nested messages overflow any thread's stack. Counting them bounds
/// the depth before anything is built; a person forwarding a thread
/// attaches a handful. Parts are counted once parsed: the size limit
/// already bounds the work, and a real message has a few dozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    pub attached_messages: usize,
    pub parts: usize,
}

pub const MAX_ATTACHED_MESSAGES: usize = 100;
pub const MAX_MIME_PARTS: usize = 1000;

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            attached_messages: MAX_ATTACHED_MESSAGES,
            parts: MAX_MIME_PARTS,
        }
    }
}

/// How many attached messages `raw` declares, counting every mention of
/// their content types (`message/rfc822`, `message/global`, in any ASCII
/// case), up to `limit + 1`. Found from their `/` with memchr: a regex
/// scanning every byte of a large body cost more than parsing it.
fn attached_messages(raw: &[u8], limit: usize) -> usize {
    const TYPE: &[u8] = b"message";
    memchr::memchr_iter(b'/', raw)
        .filter(|&slash| {
            let subtype = &raw[slash + 1..];
            slash >= TYPE.len()
                && raw[slash - TYPE.len()..slash].eq_ignore_ascii_case(TYPE)
                && [&b"rfc822"[..], b"global"].iter().any(|s| {
                    subtype
                        .get(..s.len())
                        .is_some_and(|w| w.eq_ignore_ascii_case(s))
                })
        })
        .take(limit + 1)
        .count()
}

/// An attachment as listed. Its bytes stay in the raw message and, when
/// intake keeps it, in the attachments folder under its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
    /// An image shown inside the HTML (a signature logo, a pasted
    /// screenshot): kept, but not listed back to the sender as a document.
    pub inline: bool,
    /// Why the attachment needs a word in the receipt, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<AttachmentNote>,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentNote {
    /// Larger than `inbound.max_attachment_bytes`: listed, not kept apart
    /// (it stays in the stored message).
    TooLarge,
    /// Outlook's winmail.dat (TNEF): what is inside cannot be opened here.
    Winmail,
}

impl AttachmentInfo {
    /// Whether the sender meant it as a document of their proposal.
    pub fn is_document(&self) -> bool {
        !self.inline
    }
}

/// A message as read: what it says, borrowed from the bytes it came in
/// where it can be (a plain UTF-8 body is not copied: a long one would be
/// copied megabytes at a time).
#[derive(Debug, Clone, Serialize)]
pub struct Parsed<'a> {
    pub message_id: Option<String>,
    pub from: EmailAddress,
    pub from_name: Option<String>,
    /// To, Cc, Delivered-To, X-Original-To and Envelope-To, lower-cased.
    pub recipients: Vec<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub subject: String,
    pub body: Cow<'a, str>,
    pub attachments: Vec<AttachmentInfo>,
    /// Every header, name lower-cased, value as text.
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// The message as it arrived.
    #[serde(skip)]
    pub raw: &'a [u8],
}

impl Parsed<'_> {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn addresses(value: &HeaderValue<'_>, out: &mut Vec<String>) {
    if let Some(list) = value.as_address() {
        let items: Vec<_> = match list {
            Address::List(l) => l.iter().collect(),
            Address::Group(g) => g.iter().flat_map(|g| g.addresses.iter()).collect(),
        };
        for a in items {
            if let Some(addr) = a.address() {
                out.push(addr.trim().to_ascii_lowercase());
            }
        }
    } else if let Some(text) = value.as_text() {
        for part in text.split([',', ' ']) {
            let a = part.trim().trim_matches(['<', '>']);
            if a.contains('@') {
                out.push(a.to_ascii_lowercase());
            }
        }
    }
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Attachment names come from strangers: keep the last path component,
/// drop control characters and leading dots, and bound the length.
pub fn safe_file_name(raw: &str, index: usize) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*'))
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        format!("attachment-{}", index + 1)
    } else {
        cleaned.chars().take(120).collect()
    }
}

/// Reads `raw` within the default limits.
pub fn parse(raw: &[u8]) -> Result<Parsed<'_>, ParseError> {
    parse_within(raw, &ParseLimits::default())
}

/// Reads `raw` within `limits`. A panic inside the parser is caught and
/// becomes this message's failure ([`ParseError::Fault`]), never the
/// process's.
pub fn parse_within<'a>(raw: &'a [u8], limits: &ParseLimits) -> Result<Parsed<'a>, ParseError> {
    std::panic::catch_unwind(|| parse_unguarded(raw, limits)).unwrap_or_else(|_| {
        tracing::error!(
            bytes = raw.len(),
            "the mail parser failed on a message; it is held"
        );
        Err(ParseError::Fault)
    })
}

fn parse_unguarded<'a>(raw: &'a [u8], limits: &ParseLimits) -> Result<Parsed<'a>, ParseError> {
    let limit = limits.attached_messages;
    if attached_messages(raw, limit) > limit {
        return Err(ParseError::TooManyNested { limit });
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::Unparseable)?;
    if message.parts.len() > limits.parts {
        return Err(ParseError::TooManyParts {
            limit: limits.parts,
        });
    }
    let from_addr = message.from().and_then(|f| f.first());
    let from = match from_addr
        .and_then(|f| f.address())
        .and_then(|a| EmailAddress::parse(a).ok())
    {
        Some(from) => from,
        // Some relays send delivery reports with no From at all; they are
        // the mail system's, and classify reads them as reports.
        None if super::classify::is_delivery_report(&message) => {
            EmailAddress::parse(super::classify::MAIL_SYSTEM).map_err(|_| ParseError::NoSender)?
        }
        None => {
            return Err(match message.header_raw("From").map(one_line) {
                Some(written) if !written.is_empty() => {
                    ParseError::BadSender(written.chars().take(200).collect())
                }
                _ => ParseError::NoSender,
            });
        }
    };
    let from_name = from_addr
        .and_then(|f| f.name())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());

    let mut recipients = Vec::new();
    for name in ["To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"] {
        for v in message.header_values(name) {
            addresses(v, &mut recipients);
        }
    }
    recipients.dedup();

    let headers = message
        .headers_raw()
        .map(|(n, v)| (n.to_ascii_lowercase(), one_line(v)))
        .collect();

    let attachments = message
        .attachments()
        .enumerate()
        .map(|(i, a)| {
            let content_type = a
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase();
            let name = safe_file_name(a.attachment_name().unwrap_or(""), i);
            let bytes = a.contents();
            // An image with a Content-ID that is not explicitly an
            // attachment is part of the HTML (cid: links), not a document.
            let disposition = a
                .content_disposition()
                .map(|d| d.ctype().to_ascii_lowercase());
            let inline = content_type.starts_with("image/")
                && a.content_id().is_some()
                && disposition.as_deref() != Some("attachment");
            let winmail =
                content_type == "application/ms-tnef" || name.eq_ignore_ascii_case("winmail.dat");
            AttachmentInfo {
                name,
                content_type,
                size: bytes.len(),
                sha256: hex(&Sha256::digest(bytes)),
                inline,
                note: winmail.then_some(AttachmentNote::Winmail),
                bytes: bytes.to_vec(),
            }
        })
        .collect();

    Ok(Parsed {
        message_id: message.message_id().map(str::to_owned),
        from,
        from_name,
        recipients,
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        subject: message.subject().unwrap_or("").trim().to_string(),
        attachments,
        headers,
        raw,
        body: body_text(message),
    })
}

/// What can still be read of a message refused for its sender: the POC
/// sees its Message-ID, subject and text in the holding pen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readable {
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub body: String,
}

/// The readable parts of `raw`, read as [`parse_within`] reads them but
/// without asking for a sender; None when it cannot be read at all (or is
/// beyond `limits`).
pub fn readable(raw: &[u8], limits: &ParseLimits) -> Option<Readable> {
    if attached_messages(raw, limits.attached_messages) > limits.attached_messages {
        return None;
    }
    std::panic::catch_unwind(|| {
        let message = MessageParser::default().parse(raw)?;
        (message.parts.len() <= limits.parts).then(|| Readable {
            message_id: message.message_id().map(str::to_owned),
            subject: message.subject().map(|s| s.trim().to_string()),
            body: body_text(message).into_owned(),
        })
    })
    .ok()
    .flatten()
}

/// The message's text: its plain-text body (taken from the message, so
/// still borrowed from the raw bytes when it needed no decoding), or its
/// HTML body as text with the quoted history marked by the HTML's
/// structure ([`super::html`]).
fn body_text(mut message: mail_parser::Message<'_>) -> Cow<'_, str> {
    let at = message.text_body.first().map(|&i| i as usize);
    let part = at.and_then(|i| message.parts.get_mut(i));
    match part.map(|p| &mut p.body) {
        Some(PartType::Html(html)) if let Some(text) = super::html::to_text(html) => text.into(),
        Some(PartType::Text(text)) => std::mem::take(text),
        // Too deep to build a tree of: flattened as it comes.
        _ => message
            .body_text(0)
            .map(|b| Cow::Owned(b.into_owned()))
            .unwrap_or_default(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `depth` message/rfc822 parts, each inside the one before.
    fn nested(depth: usize) -> Vec<u8> {
        let mut m = String::from(
            "From: a@cso.example.org\r\nTo: consult@ogp.office.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n",
        );
        for _ in 0..depth {
            m.push_str("Content-Type: Message/RFC822\r\n\r\n");
        }
        m.push_str("From: b@x.org\r\nSubject: inner\r\n\r\nbody\r\n");
        m.into_bytes()
    }

    #[test]
    fn forty_thousand_nested_messages_are_refused_not_a_stack_overflow() {
        assert_eq!(
            parse(&nested(40_000)).err(),
            Some(ParseError::TooManyNested {
                limit: MAX_ATTACHED_MESSAGES
            })
        );
        // A forwarded thread within the limit parses, and is dropped safely.
        let within = nested(MAX_ATTACHED_MESSAGES);
        let p = parse(&within).unwrap();
        assert_eq!(p.from.as_str(), "a@cso.example.org");
        assert!(matches!(
            parse(&nested(MAX_ATTACHED_MESSAGES + 1)),
            Err(ParseError::TooManyNested { .. })
        ));
        let tight = ParseLimits {
            attached_messages: 3,
            parts: 1000,
        };
        assert!(parse_within(&nested(3), &tight).is_ok());
        assert_eq!(
            parse_within(&nested(4), &tight).err(),
            Some(ParseError::TooManyNested { limit: 3 })
        );
    }

    #[test]
    fn attached_messages_are_counted_by_their_content_types_in_any_case() {
        let raw = b"Content-Type: message/rfc822\r\nContent-Type: MESSAGE/Global\r\nmessage/partial text/rfc822 /rfc822 message/rfc82 message/RFC822";
        assert_eq!(attached_messages(raw, 100), 3);
        assert_eq!(
            attached_messages(raw, 1),
            2,
            "counting stops past the limit"
        );
        assert_eq!(attached_messages(b"", 100), 0);
        assert_eq!(attached_messages(b"/", 100), 0);
        assert_eq!(attached_messages(b"message/", 100), 0);
    }

    #[test]
    fn a_message_of_too_many_parts_is_refused() {
        let mut m = String::from(
            "From: a@cso.example.org\r\nTo: consult@ogp.office.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
        );
        for i in 0..50 {
            m.push_str(&format!(
                "--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
            ));
        }
        m.push_str("--b--\r\n");
        let limits = |parts| ParseLimits {
            attached_messages: 100,
            parts,
        };
        assert!(parse_within(m.as_bytes(), &limits(100)).is_ok());
        assert_eq!(
            parse_within(m.as_bytes(), &limits(20)).err(),
            Some(ParseError::TooManyParts { limit: 20 })
        );
    }

    #[test]
    fn attachment_names_cannot_climb_out_of_a_folder() {
        assert_eq!(safe_file_name("../../etc/passwd", 0), "passwd");
        assert_eq!(
            safe_file_name("C:\\Users\\x\\propozim.pdf", 0),
            "propozim.pdf"
        );
        assert_eq!(safe_file_name(".hidden", 0), "hidden");
        assert_eq!(safe_file_name("..", 2), "attachment-3");
        assert_eq!(safe_file_name("a\u{0}b\r\n.pdf", 0), "ab.pdf");
    }

    #[test]
    fn html_only_mail_becomes_text_and_charsets_are_decoded() {
        let raw = b"From: =?iso-8859-2?q?Arta_Hoxha?= <arta@cso.al>\r\nTo: consult+abc@ogp.example\r\nSubject: =?windows-1250?q?Propozim_p=EBr_buxhetin?=\r\nContent-Type: text/html; charset=windows-1250\r\n\r\n<html><body><p>P\xebrsh\xebndetje,</p><p>Propozimi yn\xeb: <b>t\xeb dh\xebna</b> \xe7do muaj.</p></body></html>\r\n";
        let p = parse(raw).unwrap();
        assert_eq!(p.subject, "Propozim për buxhetin");
        assert!(
            p.body.contains("Propozimi ynë: të dhëna çdo muaj."),
            "{}",
            p.body
        );
        assert_eq!(p.from.as_str(), "arta@cso.al");
        assert_eq!(p.recipients, ["consult+abc@ogp.example"]);
    }

    #[test]
    fn broken_mail_is_an_error_not_a_crash() {
        assert_eq!(parse(b"").unwrap_err(), ParseError::Unparseable);
        assert_eq!(
            parse(b"Subject: no sender\r\n\r\nhello\r\n").unwrap_err(),
            ParseError::NoSender
        );
    }
}
