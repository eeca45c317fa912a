//! Email templates: handlebars, one folder per email under templates/email/
//! with `subject.LANG.hbs`, `text.LANG.hbs` and `html.LANG.hbs` for Albanian
//! (sq) and English (en), and shared partials in `_partials/`.
//!
//! The files are compiled into the binary; a file of the same name under the
//! configured templates folder replaces the built-in one without a rebuild.
//! Both registries run in strict mode, and every email is rendered once with
//! a complete example context when the templates load, so a misspelt
//! variable stops cocreate at start-up instead of leaving a blank in 3,000
//! emails.
//!
//! Subjects and text bodies are rendered without escaping (they are plain
//! text; lettre encodes headers); HTML bodies escape every value.

use std::path::Path;

use handlebars::{Handlebars, no_escape};
use serde_json::{Value, json};

#[cfg(test)]
use super::email::ConsultationMail;
use super::email::Context;
pub use super::examples::example_context;
use crate::domain::{EmailKind, Language};

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/email/", $path)))),*]
    };
}

/// The built-in templates, by path under templates/email/.
const EMBEDDED: &[(&str, &str)] = embedded!(
    "_partials/header.html.hbs",
    "_partials/footer.sq.txt.hbs",
    "_partials/footer.en.txt.hbs",
    "_partials/footer.sq.html.hbs",
    "_partials/footer.en.html.hbs",
    "invitation/subject.sq.hbs",
    "invitation/subject.en.hbs",
    "invitation/text.sq.hbs",
    "invitation/text.en.hbs",
    "invitation/html.sq.hbs",
    "invitation/html.en.hbs",
    "deadline_extended/subject.sq.hbs",
    "deadline_extended/subject.en.hbs",
    "deadline_extended/text.sq.hbs",
    "deadline_extended/text.en.hbs",
    "deadline_extended/html.sq.hbs",
    "deadline_extended/html.en.hbs",
    "deadline_reminder/subject.sq.hbs",
    "deadline_reminder/subject.en.hbs",
    "deadline_reminder/text.sq.hbs",
    "deadline_reminder/text.en.hbs",
    "deadline_reminder/html.sq.hbs",
    "deadline_reminder/html.en.hbs",
    "meeting_changed/subject.sq.hbs",
    "meeting_changed/subject.en.hbs",
    "meeting_changed/text.sq.hbs",
    "meeting_changed/text.en.hbs",
    "meeting_changed/html.sq.hbs",
    "meeting_changed/html.en.hbs",
    "consultation_closed/subject.sq.hbs",
    "consultation_closed/subject.en.hbs",
    "consultation_closed/text.sq.hbs",
    "consultation_closed/text.en.hbs",
    "consultation_closed/html.sq.hbs",
    "consultation_closed/html.en.hbs",
    "lfp_digest/subject.sq.hbs",
    "lfp_digest/subject.en.hbs",
    "lfp_digest/text.sq.hbs",
    "lfp_digest/text.en.hbs",
    "lfp_digest/html.sq.hbs",
    "lfp_digest/html.en.hbs",
    "response_reminder/subject.sq.hbs",
    "response_reminder/subject.en.hbs",
    "response_reminder/text.sq.hbs",
    "response_reminder/text.en.hbs",
    "response_reminder/html.sq.hbs",
    "response_reminder/html.en.hbs",
    "receipt/subject.sq.hbs",
    "receipt/subject.en.hbs",
    "receipt/text.sq.hbs",
    "receipt/text.en.hbs",
    "receipt/html.sq.hbs",
    "receipt/html.en.hbs",
    "follow_up/subject.sq.hbs",
    "follow_up/subject.en.hbs",
    "follow_up/text.sq.hbs",
    "follow_up/text.en.hbs",
    "follow_up/html.sq.hbs",
    "follow_up/html.en.hbs",
    "pen_summary/subject.sq.hbs",
    "pen_summary/subject.en.hbs",
    "pen_summary/text.sq.hbs",
    "pen_summary/text.en.hbs",
    "pen_summary/html.sq.hbs",
    "pen_summary/html.en.hbs",
    "confirmation/subject.sq.hbs",
    "confirmation/subject.en.hbs",
    "confirmation/text.sq.hbs",
    "confirmation/text.en.hbs",
    "confirmation/html.sq.hbs",
    "confirmation/html.en.hbs",
    "outcome/subject.sq.hbs",
    "outcome/subject.en.hbs",
    "outcome/text.sq.hbs",
    "outcome/text.en.hbs",
    "outcome/html.sq.hbs",
    "outcome/html.en.hbs",
    "correction/subject.sq.hbs",
    "correction/subject.en.hbs",
    "correction/text.sq.hbs",
    "correction/text.en.hbs",
    "correction/html.sq.hbs",
    "correction/html.en.hbs",
    "sign_in/subject.sq.hbs",
    "sign_in/subject.en.hbs",
    "sign_in/text.sq.hbs",
    "sign_in/text.en.hbs",
    "sign_in/html.sq.hbs",
    "sign_in/html.en.hbs",
    "not_a_proposal/subject.sq.hbs",
    "not_a_proposal/subject.en.hbs",
    "not_a_proposal/text.sq.hbs",
    "not_a_proposal/text.en.hbs",
    "not_a_proposal/html.sq.hbs",
    "not_a_proposal/html.en.hbs",
);

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the template {name} does not parse: {message}")]
    Syntax { name: String, message: String },
    #[error("the template {name} cannot be rendered: {message}")]
    Render { name: String, message: String },
}

/// One rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

impl Templates {
    /// Loads the built-in templates, replacing each with the file of the same
    /// name under `override_dir/email/` where one exists, and checks them all.
    pub fn load(override_dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(no_escape);
        text.register_helper("plural", Box::new(plural));
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_helper("plural", Box::new(plural));
        html.register_helper("paragraphs", markup("paragraphs", paragraphs));
        html.register_helper("as_written", markup("as_written", as_written));
        html.register_helper("nowrap", markup("nowrap", nowrap));
        html.register_helper("breakable", markup("breakable", breakable));

        for (path, builtin) in EMBEDDED {
            let source = match override_dir.map(|d| d.join("email").join(path)) {
                Some(file) if file.is_file() => {
                    std::fs::read_to_string(&file).map_err(|source| TemplateError::Read {
                        path: file.display().to_string(),
                        source,
                    })?
                }
                _ => (*builtin).to_string(),
            };
            let (registry, name) = registration(path, &mut text, &mut html);
            let syntax = |e: handlebars::TemplateError| TemplateError::Syntax {
                name: (*path).to_string(),
                message: e.to_string(),
            };
            if path.starts_with("_partials/") {
                registry.register_partial(&name, source).map_err(syntax)?;
            } else {
                registry
                    .register_template_string(&name, source)
                    .map_err(syntax)?;
            }
        }
        let templates = Self { text, html };
        for email in EmailKind::ALL {
            for lang in [Language::Sq, Language::En] {
                templates.render(lang, &example_context(email, lang))?;
            }
        }
        // The copy of a receipt to the CSO, when someone else wrote.
        for lang in [Language::Sq, Language::En] {
            if let Context::Receipt(mut a) = example_context(EmailKind::Receipt, lang) {
                a.sent_by = Some("partner@example.org");
                templates.render(lang, &Context::Receipt(a))?;
            }
        }
        Ok(templates)
    }

    /// Renders the email of `context`'s kind in `lang`; `lang` and
    /// `subject` are added to what the templates see.
    pub fn render(&self, lang: Language, context: &Context) -> Result<Rendered, TemplateError> {
        let email = context.kind();
        let l = lang.code();
        let render = |registry: &Handlebars<'static>, part: &str, ctx: &Value| {
            let name = format!("{email}/{part}.{l}");
            registry
                .render(&name, ctx)
                .map_err(|e| TemplateError::Render {
                    name: format!("{name}.hbs"),
                    message: e.to_string(),
                })
        };
        let mut ctx = context.to_value();
        ctx["lang"] = json!(l);
        // A subject is one line, whatever a title contains.
        let subject = render(&self.text, "subject", &ctx)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        ctx["subject"] = json!(subject);
        let text = tidy_text(&render(&self.text, "text", &ctx)?);
        let html = render(&self.html, "html", &ctx)?;
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

/// Which registry a file goes in, and its name there: partials by their
/// first word and language (`footer_sq`), emails as `email/part.lang`.
fn registration<'a>(
    path: &str,
    text: &'a mut Handlebars<'static>,
    html: &'a mut Handlebars<'static>,
) -> (&'a mut Handlebars<'static>, String) {
    let stem = path.trim_end_matches(".hbs");
    if let Some(partial) = stem.strip_prefix("_partials/") {
        let mut parts = partial.split('.');
        let base = parts.next().unwrap_or(partial);
        let rest: Vec<&str> = parts.collect();
        let is_html = rest.last() == Some(&"html");
        let name = match rest.first() {
            Some(lang) if *lang == "sq" || *lang == "en" => format!("{base}_{lang}"),
            _ => base.to_string(),
        };
        (if is_html { html } else { text }, name)
    } else {
        let is_html = stem.contains("/html.");
        (if is_html { html } else { text }, stem.to_string())
    }
}

/// Text bodies come out of templates with the blank lines that block tags
/// leave behind; at most one blank line in a row reads better on a phone.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string() + "\n"
}

/// `{{paragraphs text}}`, for the office's own prose (a description, a
/// draft): blank-line-separated paragraphs in <p>, lines the writer's editor
/// wrapped joined again, list items on lines of their own
/// ([`crate::domain::prose_lines`]).
fn paragraphs(escaped: &str) -> String {
    html_paragraphs(escaped, crate::domain::prose_lines)
}

/// `{{as_written text}}`, for what a person wrote (the proposal a receipt
/// quotes back): every line break kept, as they typed it.
fn as_written(escaped: &str) -> String {
    html_paragraphs(escaped, |p| p.lines().map(str::to_string).collect())
}

/// Escaped text as <p> paragraphs (split at blank lines), each paragraph's
/// `lines` joined with <br>.
fn html_paragraphs(escaped: &str, lines: impl Fn(&str) -> Vec<String>) -> String {
    let text = escaped.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len() + 64);
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        out.push_str("<p style=\"margin:0 0 16px;\">");
        out.push_str(&lines(para).join("<br>"));
        out.push_str("</p>\n");
    }
    out
}

// `{{plural n "day" "days"}}`: "1 day", "3 days", in each language's own
// words (`{{plural n "dite" "ditësh"}}`).
handlebars::handlebars_helper!(
    plural: |n: u64, one: str, many: str| format!("{n} {}", if n == 1 { one } else { many })
);

/// The text of the helper's first parameter, HTML-escaped.
fn escaped_param(
    h: &handlebars::Helper<'_>,
    name: &'static str,
) -> Result<String, handlebars::RenderError> {
    let value = h
        .param(0)
        .ok_or_else(|| handlebars::RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
    Ok(handlebars::html_escape(
        value.value().as_str().unwrap_or(""),
    ))
}

/// A helper that writes its parameter, HTML-escaped, shaped by `shape`
/// (which adds markup around or inside it: escaping first leaves line
/// breaks, spaces and list marks as they were).
fn markup(
    name: &'static str,
    shape: fn(&str) -> String,
) -> Box<dyn handlebars::HelperDef + Send + Sync> {
    Box::new(
        move |h: &handlebars::Helper<'_>,
              _: &Handlebars<'_>,
              _: &handlebars::Context,
              _: &mut handlebars::RenderContext<'_, '_>,
              out: &mut dyn handlebars::Output|
              -> handlebars::HelperResult {
            out.write(&shape(&escaped_param(h, name)?))?;
            Ok(())
        },
    )
}

/// `{{nowrap receipt_no}}`: never broken across lines (a phone would break
/// OGP-2026-FISCAL-0001 at a hyphen, and the number is read and typed back).
fn nowrap(text: &str) -> String {
    format!("<span style=\"white-space:nowrap;\">{text}</span>")
}

/// `{{breakable address}}`: a long address may break only after its `+`
/// and `.` and before its `@`, where a reader sees its parts, not in the
/// middle of a word.
fn breakable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    for c in text.chars() {
        if c == '@' {
            out.push_str("<wbr>");
        }
        out.push(c);
        if matches!(c, '+' | '.') {
            out.push_str("<wbr>");
        }
    }
    out
}

/// The invitation part of an example context, for tests that change it.
#[cfg(test)]
fn invitation<'c>(ctx: &'c mut Context<'static>) -> &'c mut ConsultationMail<'static> {
    match ctx {
        Context::Invitation(m) => m,
        _ => panic!("not an invitation"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_text_does_not() {
        let t = Templates::load(None).unwrap();
        let mut ctx = example_context(EmailKind::Invitation, Language::En);
        invitation(&mut ctx).cso.name = "Tom & Jerry <script>alert(1)</script>";
        invitation(&mut ctx).consultation.description = "Line one\nline <two>\n\nPara two";
        let r = t.render(Language::En, &ctx).unwrap();
        assert!(
            r.text
                .contains("Dear Tom & Jerry <script>alert(1)</script>,")
        );
        assert!(
            r.html
                .contains("Dear Tom &amp; Jerry &lt;script&gt;alert(1)&lt;/script&gt;,")
        );
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("Line one line &lt;two&gt;</p>"));
        assert!(
            r.text
                .contains("Just reply to this email with your proposal.")
        );
    }

    #[test]
    fn a_missing_variable_is_an_error_not_a_blank() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email/invitation")).unwrap();
        std::fs::write(
            dir.path().join("email/invitation/subject.sq.hbs"),
            "Ftesë: {{consultation.titel}}",
        )
        .unwrap();
        let err = Templates::load(Some(dir.path())).err().expect("refused");
        assert!(
            err.to_string()
                .starts_with("the template invitation/subject.sq.hbs cannot be rendered"),
            "{err}"
        );
    }

    #[test]
    fn an_override_replaces_the_builtin_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email/invitation")).unwrap();
        std::fs::write(
            dir.path().join("email/invitation/subject.en.hbs"),
            "Have your say: {{consultation.title}}",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let ctx = example_context(EmailKind::Invitation, Language::En);
        let r = t.render(Language::En, &ctx).unwrap();
        assert_eq!(r.subject, "Have your say: Open municipal budgets");
    }

    /// docs/examples/ shows reviewers what a CSO receives. It must match the
    /// templates: run with COCREATE_WRITE_EXAMPLES=1 to write it anew.
    #[test]
    fn docs_examples_match_the_templates() {
        let t = Templates::load(None).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
        let write = std::env::var_os("COCREATE_WRITE_EXAMPLES").is_some();
        for email in EmailKind::ALL {
            for lang in [Language::Sq, Language::En] {
                let r = t.render(lang, &example_context(email, lang)).unwrap();
                let l = lang.code();
                for (ext, body) in [
                    ("txt", format!("Subject: {}\n\n{}", r.subject, r.text)),
                    ("html", r.html.clone()),
                ] {
                    let path = dir.join(format!("{email}.{l}.{ext}"));
                    if write {
                        std::fs::create_dir_all(&dir).unwrap();
                        std::fs::write(&path, &body).unwrap();
                    }
                    let committed = std::fs::read_to_string(&path).unwrap_or_default();
                    assert!(
                        committed == body,
                        "{} is out of date: run COCREATE_WRITE_EXAMPLES=1 cargo test docs_examples",
                        path.display()
                    );
                }
            }
        }
    }

    /// The office's description, wrapped by its editor, reads as prose in
    /// the HTML part: no line break in the middle of a sentence; its list
    /// keeps its lines. What a CSO wrote keeps every line break.
    #[test]
    fn prose_flows_and_what_a_person_wrote_keeps_its_lines() {
        let t = Templates::load(None).unwrap();
        let mut ctx = example_context(EmailKind::Invitation, Language::Sq);
        invitation(&mut ctx).consultation.description = "Na tregoni çfarë të dhënash\nbuxhetore ju nevojiten.\n\nPër shembull:\n- shpenzimet\n- prokurimet";
        let html = t.render(Language::Sq, &ctx).unwrap().html;
        assert!(
            html.contains(">Na tregoni çfarë të dhënash buxhetore ju nevojiten.</p>"),
            "{html}"
        );
        assert!(
            html.contains(">Për shembull:<br>- shpenzimet<br>- prokurimet</p>"),
            "{html}"
        );

        let mut ctx = example_context(EmailKind::Receipt, Language::En);
        if let Context::Receipt(r) = &mut ctx {
            r.received_text = "Our proposal:\nopen data\nevery month";
        }
        let html = t.render(Language::En, &ctx).unwrap().html;
        assert!(
            html.contains(">Our proposal:<br>open data<br>every month</p>"),
            "{html}"
        );
    }

    #[test]
    fn subjects_are_one_line() {
        let t = Templates::load(None).unwrap();
        let mut ctx = example_context(EmailKind::Invitation, Language::Sq);
        invitation(&mut ctx).consultation.title = "Titull\r\nBcc: victim@example.org";
        let r = t.render(Language::Sq, &ctx).unwrap();
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
    }
}
