//! Building the RFC 5322 message: parts, attachments and the headers that
//! keep consultation mail out of loops and filters (List-Id, one-click
//! List-Unsubscribe, Auto-Submitted, X-Auto-Response-Suppress), then DKIM
//! signing when configured. lettre writes the MIME and encodes every header,
//! so no value a CSO or the POC typed can inject a header.

use lettre::Message;
use lettre::message::dkim::{DkimConfig, DkimSigningAlgorithm, DkimSigningKey};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart};

use super::templates::Rendered;
use crate::config::MailConfig;
use crate::domain::EmailAddress;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("cannot build the message to {to}: {message}")]
    Build { to: String, message: String },
    #[error("cannot read the DKIM key {path}: {source}")]
    DkimRead {
        path: String,
        source: std::io::Error,
    },
    #[error("the DKIM key {path} is neither an RSA (PKCS#1 PEM) nor an Ed25519 key")]
    DkimKey { path: String },
    #[error("cannot read the attachment {path}: {source}")]
    Attachment {
        path: String,
        source: std::io::Error,
    },
}

pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// List headers for bulk consultation mail (not for receipts).
pub struct ListHeaders<'a> {
    pub list_id: &'a str,
    pub unsubscribe_url: &'a str,
}

pub struct Outgoing<'a> {
    pub from_name: &'a str,
    pub from: &'a EmailAddress,
    pub to_name: &'a str,
    pub to: &'a EmailAddress,
    pub reply_to: Option<&'a str>,
    /// Without angle brackets.
    pub message_id: &'a str,
    /// The message this answers (a receipt answers the CSO's proposal).
    pub in_reply_to: Option<&'a str>,
    /// "auto-generated" for what cocreate starts, "auto-replied" for what
    /// answers a person (RFC 3834).
    pub auto_submitted: &'static str,
    pub rendered: &'a Rendered,
    pub list: Option<ListHeaders<'a>>,
    pub attachments: &'a [Attachment],
}

const LIST_ID: HeaderName = HeaderName::new_from_ascii_str("List-Id");
const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");
const AUTO_RESPONSE_SUPPRESS: HeaderName =
    HeaderName::new_from_ascii_str("X-Auto-Response-Suppress");

/// The longest Message-ID echoed in In-Reply-To and References: RFC 5322
/// sets no limit but a header line may not pass 998 characters, and an id
/// cannot be folded; real clients write well under 250.
const MAX_ECHOED_ID: usize = 250;
/// The longest display name written in From or To, in characters; a longer
/// one (a 1 MB organisation name) is cut, with "…".
const MAX_NAME_CHARS: usize = 150;

/// A name as one short line: whitespace (line breaks included) collapsed,
/// and cut at [`MAX_NAME_CHARS`].
fn one_line_name(name: &str) -> String {
    let mut out = String::new();
    for (i, word) in name.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > MAX_NAME_CHARS {
            let cut: String = out.chars().take(MAX_NAME_CHARS - 1).collect();
            return format!("{}…", cut.trim_end());
        }
    }
    out
}

/// The id a reply points back to, if it is one we can echo: printable
/// ASCII without spaces or brackets inside, and short enough for one line.
/// Otherwise the reply goes without threading headers rather than being
/// refused by the relay.
fn echoable_id(id: &str) -> Option<String> {
    let id = id.trim().trim_matches(['<', '>']);
    let fits = !id.is_empty()
        && id.len() <= MAX_ECHOED_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    fits.then(|| format!("<{id}>"))
}

/// Builds, signs and serialises one message.
pub fn build(mail: &Outgoing<'_>, dkim: Option<&DkimConfig>) -> Result<Vec<u8>, MessageError> {
    let err = |message: String| MessageError::Build {
        to: mail.to.to_string(),
        message,
    };
    let mailbox = |name: &str, address: &EmailAddress| -> Result<Mailbox, MessageError> {
        let address = address
            .as_str()
            .parse()
            .map_err(|e: lettre::address::AddressError| err(e.to_string()))?;
        // Names are one short line; lettre quotes and encodes the rest.
        Ok(Mailbox::new(Some(one_line_name(name)), address))
    };
    let mut builder = Message::builder()
        .from(mailbox(mail.from_name, mail.from)?)
        .to(mailbox(mail.to_name, mail.to)?)
        .subject(mail.rendered.subject.clone())
        .message_id(Some(format!("<{}>", mail.message_id)))
        .date_now()
        .raw_header(HeaderValue::new(AUTO_SUBMITTED, mail.auto_submitted.into()))
        .raw_header(HeaderValue::new(AUTO_RESPONSE_SUPPRESS, "All".into()));
    if let Some(id) = mail.in_reply_to.and_then(echoable_id) {
        builder = builder.in_reply_to(id.clone()).references(id);
    }
    if let Some(reply_to) = mail.reply_to {
        let address = reply_to
            .parse()
            .map_err(|e: lettre::address::AddressError| err(e.to_string()))?;
        builder = builder.reply_to(Mailbox::new(Some(mail.from_name.to_string()), address));
    }
    if let Some(list) = &mail.list {
        builder = builder
            .raw_header(HeaderValue::new(LIST_ID, format!("<{}>", list.list_id)))
            .raw_header(HeaderValue::new(
                LIST_UNSUBSCRIBE,
                format!("<{}>", list.unsubscribe_url),
            ))
            // RFC 8058 one-click unsubscribe.
            .raw_header(HeaderValue::new(
                LIST_UNSUBSCRIBE_POST,
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(mail.rendered.text.clone()))
        .singlepart(SinglePart::html(mail.rendered.html.clone()));
    let body = if mail.attachments.is_empty() {
        alternative
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for a in mail.attachments {
            let content_type = ContentType::parse(&a.content_type)
                .map_err(|e| err(format!("content type {}: {e}", a.content_type)))?;
            mixed = mixed.singlepart(
                MimeAttachment::new(a.filename.clone()).body(a.bytes.clone(), content_type),
            );
        }
        mixed
    };
    let mut message = builder.multipart(body).map_err(|e| err(e.to_string()))?;
    if let Some(dkim) = dkim {
        message.sign(dkim);
    }
    Ok(message.formatted())
}

/// The DKIM signer from the config, if one is configured.
pub fn load_dkim(config: &MailConfig) -> Result<Option<DkimConfig>, MessageError> {
    if config.dkim_key_file.is_empty() {
        return Ok(None);
    }
    let path = config.dkim_key_file.clone();
    let pem = std::fs::read_to_string(&path).map_err(|source| MessageError::DkimRead {
        path: path.clone(),
        source,
    })?;
    let key = DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
        .or_else(|_| DkimSigningKey::new(pem.trim(), DkimSigningAlgorithm::Ed25519))
        .map_err(|_| MessageError::DkimKey { path })?;
    Ok(Some(DkimConfig::default_config(
        config.dkim_selector.clone(),
        config.domain.clone(),
        key,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn rendered() -> Rendered {
        Rendered {
            subject: "Ftesë për konsultim".into(),
            text: "Mjafton t'i përgjigjeni këtij emaili.\n".into(),
            html: "<p>Mjafton t'i përgjigjeni këtij emaili.</p>".into(),
        }
    }

    #[test]
    fn a_configured_dkim_key_signs_every_message() {
        let dir = tempfile::tempdir().unwrap();
        // An Ed25519 key as lettre reads it: the 32-byte seed in base64.
        let key = dir.path().join("dkim.key");
        std::fs::write(&key, "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n").unwrap();
        let mut config = Config::embedded().unwrap();
        config.mail.dkim_selector = "cocreate2026".into();
        config.mail.dkim_key_file = key.display().to_string();
        let dkim = load_dkim(&config.mail).unwrap().expect("configured");
        let from = EmailAddress::parse("ogp-poc@office.example").unwrap();
        let to = EmailAddress::parse("cso@example.org").unwrap();
        let r = rendered();
        let bytes = build(
            &Outgoing {
                from_name: "Pika e Kontaktit",
                from: &from,
                to_name: "Shoqata",
                to: &to,
                reply_to: None,
                message_id: "key.random@ogp.office.example",
                in_reply_to: None,
                auto_submitted: "auto-generated",
                rendered: &r,
                list: None,
                attachments: &[],
            },
            Some(&dkim),
        )
        .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let signature = text
            .lines()
            .find(|l| l.starts_with("DKIM-Signature:"))
            .expect("signed");
        assert!(signature.contains("a=ed25519-sha256"), "{signature}");
        let folded: String = text
            .split("DKIM-Signature:")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .take_while(|l| !l.contains(':') || l.starts_with(' ') || l.starts_with('\t'))
            .collect();
        assert!(folded.contains("d=ogp.office.example"), "{folded}");
        assert!(folded.contains("s=cocreate2026"), "{folded}");

        config.mail.dkim_key_file = dir.path().join("missing.key").display().to_string();
        assert!(load_dkim(&config.mail).is_err());
        std::fs::write(&key, "not a key").unwrap();
        config.mail.dkim_key_file = key.display().to_string();
        assert_eq!(
            load_dkim(&config.mail).unwrap_err().to_string(),
            format!(
                "the DKIM key {} is neither an RSA (PKCS#1 PEM) nor an Ed25519 key",
                key.display()
            )
        );
    }

    #[test]
    fn names_cannot_inject_headers() {
        let from = EmailAddress::parse("ogp-poc@office.example").unwrap();
        let to = EmailAddress::parse("cso@example.org").unwrap();
        let mut r = rendered();
        r.subject = "Hello\r\nBcc: victim@example.org".into();
        let bytes = build(
            &Outgoing {
                from_name: "Office\r\nBcc: victim@example.org",
                from: &from,
                to_name: "Shoqata\nX-Evil: 1",
                to: &to,
                reply_to: None,
                message_id: "key.random@ogp.office.example",
                in_reply_to: None,
                auto_submitted: "auto-generated",
                rendered: &r,
                list: None,
                attachments: &[],
            },
            None,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Evil:")),
            "{text}"
        );
    }

    #[test]
    fn overlong_ids_and_names_never_make_an_overlong_line() {
        let from = EmailAddress::parse("ogp-poc@office.example").unwrap();
        let to = EmailAddress::parse("cso@example.org").unwrap();
        let r = rendered();
        let huge_name = "Shoqata ".repeat(130_000); // about 1 MB
        let long_id = format!("{}@mail.example.org", "x".repeat(1200));
        for (in_reply_to, threaded) in [
            (long_id.as_str(), false),
            ("<has space@x>", false),
            ("<CAB12.x@mail.gmail.com>", true),
        ] {
            let bytes = build(
                &Outgoing {
                    from_name: "Office",
                    from: &from,
                    to_name: &huge_name,
                    to: &to,
                    reply_to: None,
                    message_id: "key.random@ogp.office.example",
                    in_reply_to: Some(in_reply_to),
                    auto_submitted: "auto-replied",
                    rendered: &r,
                    list: None,
                    attachments: &[],
                },
                None,
            )
            .unwrap();
            let text = String::from_utf8_lossy(&bytes);
            let longest = text.split("\r\n").map(str::len).max().unwrap();
            assert!(longest <= 998, "a line of {longest} bytes");
            assert!(
                bytes.len() < 20_000,
                "the name was cut: {} bytes",
                bytes.len()
            );
            assert_eq!(text.contains("\r\nIn-Reply-To:"), threaded, "{in_reply_to}");
            if threaded {
                assert!(text.contains("In-Reply-To: <CAB12.x@mail.gmail.com>"));
            }
        }
        assert_eq!(one_line_name("A\r\n  B"), "A B");
        assert_eq!(
            one_line_name(&"é".repeat(400)).chars().count(),
            MAX_NAME_CHARS
        );
    }
}
