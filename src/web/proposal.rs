//! What a form becomes: its fields checked, its answers written as the
//! proposal's text under each question, and the message that carries them
//! (with the web form's signed mark) into intake; and what intake's outcome
//! shows the person who sent it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, Message, MultiPart, SinglePart};

use super::WebState;
use super::form::{OGP_VALUES, Submitted, Upload};
use super::mark::{HEADER, WebMark};
use super::site::Target;
use super::views::ErrorLink;
use super::visitor::visitor_receipt;
use crate::domain::{EmailAddress, Language};
use crate::intake::{IntakeError, Outcome};

const WEB_MARK: HeaderName = HeaderName::new_from_ascii_str(HEADER);
const CONTENT_LANGUAGE: HeaderName = HeaderName::new_from_ascii_str("Content-Language");

impl WebState {
    /// Checks a read form field by field; the errors in page order.
    pub(super) fn validate(
        &self,
        lang: Language,
        s: &Submitted,
        files_seen: usize,
        target: &Target,
    ) -> Vec<ErrorLink> {
        let w = |k: &str| self.pages.word(lang, k);
        let max = self.app.config.form.max_field_chars;
        let mut errors = Vec::new();
        let mut text = |field: &str, value: &str, required: bool, limit: usize| {
            if required && value.trim().is_empty() {
                errors.push(ErrorLink {
                    field: field.into(),
                    message: w("err_required"),
                });
            } else if value.chars().count() > limit {
                errors.push(ErrorLink {
                    field: field.into(),
                    message: format!("{} {limit}.", w("err_too_long")),
                });
            }
        };
        text("problem", &s.problem, true, max);
        text("commitment", &s.commitment, true, max);
        text("how", &s.how, true, max);
        for (n, comment) in &s.drafts {
            text(&format!("draft-{n}"), comment, false, max);
        }
        text("name", &s.name, true, 200);
        text("organisation", &s.organisation, false, 300);
        if s.values.is_empty() {
            errors.insert(
                3.min(errors.len()),
                ErrorLink {
                    field: "values".into(),
                    message: w("err_values"),
                },
            );
        }
        let email_error = if s.email.trim().is_empty() {
            Some("err_required")
        } else {
            s.address().is_none().then_some("err_email")
        };
        if let Some(key) = email_error {
            errors.push(ErrorLink {
                field: "email".into(),
                message: w(key),
            });
        }
        let max_files = self.app.config.form.max_attachments;
        if files_seen > max_files {
            errors.push(ErrorLink {
                field: "attachments".into(),
                message: format!("{} {max_files}.", w("err_too_many_files")),
            });
        }
        // Comments only on drafts the consultation has.
        let drafts = &target.consultation().spec.drafts;
        errors.retain(|e| {
            e.field
                .strip_prefix("draft-")
                .and_then(|n| n.parse::<u32>().ok())
                .is_none_or(|n| drafts.iter().any(|d| d.number == n))
        });
        errors
    }

    /// The text a proposal is recorded with: each answer under its question,
    /// in the language the form was filled in.
    pub(super) fn proposal_text(&self, lang: Language, s: &Submitted, target: &Target) -> String {
        let w = |k: &str| self.pages.word(lang, k);
        let mut out = String::new();
        for (label, value) in [
            ("problem_label", &s.problem),
            ("commitment_label", &s.commitment),
            ("how_label", &s.how),
        ] {
            out.push_str(&format!("{}\n{}\n\n", w(label), value.trim_end()));
        }
        let values: Vec<String> = OGP_VALUES
            .iter()
            .filter(|(v, _)| s.values.contains(v))
            .map(|(_, label)| w(label))
            .collect();
        out.push_str(&format!("{}\n{}\n\n", w("values_label"), values.join(", ")));
        for d in &target.consultation().spec.drafts {
            if let Some(comment) = s.drafts.get(&d.number).filter(|c| !c.trim().is_empty()) {
                out.push_str(&format!(
                    "{} {}. {}\n{}\n\n",
                    w("draft_comments"),
                    d.number,
                    d.title.get(lang),
                    comment.trim_end()
                ));
            }
        }
        if !s.organisation.trim().is_empty() {
            out.push_str(&format!(
                "{}: {}\n",
                w("organisation_label"),
                s.organisation.trim()
            ));
        }
        if s.no_publish {
            out.push_str(&format!("{}\n", w("no_publish")));
        }
        out.trim_end().to_string() + "\n"
    }

    /// The message a submission becomes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compose(
        &self,
        from: &EmailAddress,
        name: &str,
        to: &str,
        subject: &str,
        body: String,
        mark: &WebMark,
        message_id: &str,
        files: &[Upload],
    ) -> Result<Vec<u8>, String> {
        let key = self.signing.as_ref();
        let from_box = Mailbox::new(
            (!name.is_empty()).then(|| name.to_string()),
            from.as_str().parse().map_err(|e| format!("{e}"))?,
        );
        let builder = Message::builder()
            .from(from_box)
            .to(to.parse().map_err(|e| format!("{e}"))?)
            .subject(subject)
            .message_id(Some(format!("<{message_id}>")))
            .raw_header(HeaderValue::new(
                WEB_MARK,
                mark.header_value(key, message_id, from.as_str()),
            ))
            .raw_header(HeaderValue::new(CONTENT_LANGUAGE, mark.lang.code().into()));
        let text = SinglePart::plain(body);
        let message = if files.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for f in files {
                let kind = ContentType::parse(&f.content_type).unwrap_or_else(|_| {
                    ContentType::parse("application/octet-stream").expect("a valid type")
                });
                parts =
                    parts.singlepart(Attachment::new(f.name.clone()).body(f.bytes.clone(), kind));
            }
            builder.multipart(parts)
        }
        .map_err(|e| e.to_string())?;
        Ok(message.formatted())
    }

    /// Takes in the message a form becomes, once: when a message with its
    /// Message-ID (from the form's nonce) is already stored, the form was
    /// sent before (a double click, a reload) and that proposal is answered.
    /// `raw` composes the message only when it is new.
    pub(super) async fn take_in(
        &self,
        target: &Target,
        lang: Language,
        message_id: &str,
        raw: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Response {
        match self.app.store.inbound_with_message_id(message_id).await {
            Ok(Some(id)) => {
                return self
                    .answer(target, lang, Ok(Outcome::Duplicate { id }))
                    .await;
            }
            Ok(None) => {}
            Err(e) => return self.failed(lang, &e),
        }
        let raw = match raw() {
            Ok(raw) => raw,
            Err(e) => return self.failed(lang, &e),
        };
        match self.intake.accept(raw).await {
            Ok(outcome) => self.answer(target, lang, outcome).await,
            Err(e) => self.failed(lang, &e),
        }
    }

    pub(super) fn receipt_url(&self, target: &Target, receipt_no: &str, lang: Language) -> String {
        format!("{}/r/{receipt_no}?lang={}", target.action(), lang.code())
    }

    /// What a message's outcome shows the person who sent it.
    pub(super) async fn answer(
        &self,
        target: &Target,
        lang: Language,
        outcome: Result<Outcome, IntakeError>,
    ) -> Response {
        let receipt = match outcome {
            Ok(Outcome::Proposal { receipt_no, .. } | Outcome::FollowUp { receipt_no, .. }) => {
                Some(receipt_no)
            }
            Ok(Outcome::Duplicate { id }) => match self.app.store.receipt_of_message(id).await {
                Ok(r) => r,
                Err(e) => return self.failed(lang, &e),
            },
            Ok(Outcome::Held { .. } | Outcome::Ignored { .. }) => None,
            Err(IntakeError::NotStored(e)) => return self.failed(lang, &e),
            Err(e) => {
                tracing::warn!(error = %e, "a web-form message is stored; processing it failed and is retried");
                return self.notice(
                    StatusCode::ACCEPTED,
                    lang,
                    "stored_heading",
                    vec![self.pages.word(lang, "stored_text")],
                    None,
                );
            }
        };
        match receipt {
            // A visitor has no personal page to come back to: the receipt
            // is shown at once (the confirmation link shows it again).
            Some(r) if matches!(target, Target::Public { .. }) => {
                visitor_receipt(self, lang, target, &r, None)
            }
            Some(r) => Redirect::to(&self.receipt_url(target, &r, lang)).into_response(),
            None => self.notice(
                StatusCode::ACCEPTED,
                lang,
                "held_heading",
                vec![self.pages.word(lang, "held_text")],
                None,
            ),
        }
    }
}
