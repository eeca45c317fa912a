//! The proposal form as it arrives: read from a multipart body within
//! bounds, cleaned, and checked field by field. What was typed is kept as
//! typed (but for control characters), so a refused form comes back with
//! everything in it.

use std::collections::BTreeMap;

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;

use crate::domain::{EmailAddress, Language};

/// The OGP values a commitment can serve: the form's value and the key of
/// its label in the page strings.
pub const OGP_VALUES: [(&str, &str); 4] = [
    ("transparency", "value_transparency"),
    ("accountability", "value_accountability"),
    ("participation", "value_participation"),
    ("technology", "value_technology"),
];

/// Parts one form may have: its fields, a comment per draft, its files.
const MAX_PARTS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("the form is larger than the limit")]
    TooLarge,
    #[error("the form could not be read: {0}")]
    Malformed(String),
}

impl From<MultipartError> for FormError {
    fn from(e: MultipartError) -> Self {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            FormError::TooLarge
        } else {
            FormError::Malformed(e.body_text())
        }
    }
}

/// A file sent with the form.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Only the file's own name: never a path.
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct Submitted {
    pub token: String,
    pub lang: Option<Language>,
    /// The field people cannot see; robots fill it.
    pub honeypot: String,
    pub problem: String,
    pub commitment: String,
    pub how: String,
    pub values: Vec<&'static str>,
    /// Comments on the government's drafts, by draft number.
    pub drafts: BTreeMap<u32, String>,
    pub name: String,
    pub email: String,
    pub organisation: String,
    pub no_publish: bool,
    pub files: Vec<Upload>,
    /// An addition to an earlier proposal: its receipt number and text.
    pub receipt_no: String,
    pub addition: String,
}

/// Text as typed, without control characters (but line breaks and tabs)
/// and with Windows line ends made plain.
pub fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// A file's name as it may be shown and stored: the last part of whatever
/// path a browser sent, without control characters or leading dots, at most
/// 150 characters.
pub fn safe_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .chars()
        .take(150)
        .collect();
    if name.trim().is_empty() {
        "document".into()
    } else {
        name
    }
}

impl Submitted {
    /// Reads the form, at most `max_files` files (the rest are counted, so
    /// the sender is told) and [`MAX_PARTS`] parts.
    pub async fn read(mut form: Multipart, max_files: usize) -> Result<(Self, usize), FormError> {
        let mut s = Submitted::default();
        let mut files_seen = 0;
        let mut parts = 0;
        while let Some(field) = form.next_field().await? {
            parts += 1;
            if parts > MAX_PARTS {
                return Err(FormError::Malformed(format!(
                    "more than {MAX_PARTS} fields"
                )));
            }
            let name = field.name().unwrap_or_default().to_string();
            if name == "attachments" {
                let file_name = field.file_name().unwrap_or_default().to_string();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let bytes = field.bytes().await?;
                // A file input left empty still sends an empty part.
                if file_name.is_empty() && bytes.is_empty() {
                    continue;
                }
                files_seen += 1;
                if s.files.len() < max_files {
                    s.files.push(Upload {
                        name: safe_file_name(&file_name),
                        content_type: sanitise_type(&content_type),
                        bytes: bytes.to_vec(),
                    });
                }
                continue;
            }
            let value = clean(&field.text().await?);
            match name.as_str() {
                "form_token" => s.token = value,
                "lang" => s.lang = Language::parse(&value).ok(),
                "website" => s.honeypot = value,
                "problem" => s.problem = value,
                "commitment" => s.commitment = value,
                "how" => s.how = value,
                "values" => {
                    if let Some((v, _)) = OGP_VALUES.iter().find(|(v, _)| *v == value)
                        && !s.values.contains(v)
                    {
                        s.values.push(v);
                    }
                }
                "name" => s.name = value,
                "email" => s.email = value,
                "organisation" => s.organisation = value,
                "no_publish" => s.no_publish = !value.is_empty(),
                "receipt_no" => s.receipt_no = value,
                "addition" => s.addition = value,
                other => {
                    if let Some(n) = other.strip_prefix("draft-").and_then(|n| n.parse().ok()) {
                        s.drafts.insert(n, value);
                    }
                }
            }
        }
        Ok((s, files_seen))
    }

    /// The sender's address, when it is one address and nothing else (a
    /// line break in it is refused, never cut at).
    pub fn address(&self) -> Option<EmailAddress> {
        if self.email.contains(['\n', '\r', ',', ';']) {
            return None;
        }
        EmailAddress::parse(self.email.trim()).ok()
    }

    /// The sender's name on one line.
    pub fn one_line_name(&self) -> String {
        crate::domain::one_line(&self.name)
    }
}

/// A content type as a browser claimed it, if it looks like one; otherwise
/// the neutral one (the name is what the reader sees).
fn sanitise_type(raw: &str) -> String {
    let ok = raw.len() < 100
        && raw.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && raw
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/.+-".contains(c))
        });
    if ok {
        raw.to_ascii_lowercase()
    } else {
        "application/octet-stream".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_never_carries_a_path() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\Users\\me\\plan.docx"), "plan.docx");
        assert_eq!(safe_file_name(".."), "document");
        assert_eq!(safe_file_name(".htaccess"), "htaccess");
        assert_eq!(safe_file_name("a\r\nb.pdf"), "ab.pdf");
        assert_eq!(safe_file_name(""), "document");
    }

    #[test]
    fn text_keeps_its_lines_but_loses_control_characters() {
        assert_eq!(clean("a\r\n\r\nb\u{0}\u{1b}[2J  \n"), "a\n\nb[2J");
    }

    #[test]
    fn only_plain_content_types_are_kept() {
        assert_eq!(sanitise_type("application/pdf"), "application/pdf");
        assert_eq!(
            sanitise_type("text/html\r\nX-Evil: 1"),
            "application/octet-stream"
        );
    }
}
