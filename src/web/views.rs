//! What each page shows, as typed values the templates read. Handlers build
//! these; [`example`] builds one of each for the start-up check.

use serde::Serialize;

use super::pages::{Chrome, Page, Pages};
use crate::domain::Language;
use crate::outbound::email::{ConsultationView, MeetingView};

#[derive(Debug, Serialize)]
pub struct IndexPage {
    pub areas: Vec<AreaView>,
}

#[derive(Debug, Serialize)]
pub struct AreaView {
    pub name: String,
    pub consultations: Vec<ConsultationLine>,
}

#[derive(Debug, Serialize)]
pub struct ConsultationLine {
    pub reference: String,
    pub title: String,
    pub deadline: String,
    pub days_left: i64,
    pub today: bool,
}

#[derive(Debug, Serialize)]
pub struct ConsultationPage<'a> {
    pub consultation: ConsultationView<'a>,
    pub paragraphs: Vec<String>,
    pub meeting: Option<MeetingView<'a>>,
    pub drafts: Vec<DraftText>,
    /// The CSO a personal link belongs to.
    pub cso: Option<String>,
    pub late: bool,
    pub sent: Vec<SentView>,
    pub form_action: String,
    pub token: String,
    pub errors: Vec<ErrorLink>,
    pub proposal_fields: Vec<FieldView>,
    pub contact_fields: Vec<FieldView>,
    pub draft_fields: Vec<FieldView>,
    pub ogp_values: Vec<ValueView>,
    pub values_error: Option<String>,
    pub attachments_hint: String,
    pub attachments_error: Option<String>,
    pub no_publish: bool,
}

#[derive(Debug, Serialize)]
pub struct DraftText {
    pub number: u32,
    pub title: String,
    pub paragraphs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SentView {
    pub receipt_no: String,
    pub date: String,
    pub follow_ups: i64,
}

/// An entry of the error summary: a link to the field and what is wrong.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorLink {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldView {
    pub id: String,
    pub label: String,
    pub hint: Option<String>,
    pub error: Option<String>,
    pub multiline: bool,
    pub rows: u32,
    /// `text` or `email`.
    pub kind: &'static str,
    pub autocomplete: &'static str,
    pub value: String,
    /// The word "(required)", for a required field.
    pub required: Option<String>,
    pub described_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ValueView {
    pub value: &'static str,
    pub label: String,
    pub checked: bool,
}

#[derive(Debug, Serialize)]
pub struct ReceiptPage {
    pub heading: String,
    pub receipt_no: String,
    pub consultation: TitleOnly,
    pub email: Option<String>,
    pub late: bool,
    pub back_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TitleOnly {
    pub title: String,
}

#[derive(Debug, Default, Serialize)]
pub struct NoticePage {
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub link: Option<Link>,
    pub button: Option<Button>,
}

#[derive(Debug, Serialize)]
pub struct Link {
    pub href: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Button {
    pub action: String,
    pub text: String,
}

/// Text as paragraphs: split at blank lines, each paragraph's own line
/// breaks joined with spaces (a description wrapped at 72 columns is one
/// paragraph, not a column of short lines).
pub fn paragraphs(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(crate::domain::one_line)
        .filter(|p| !p.is_empty())
        .collect()
}

/// A complete page of each kind, with every optional part present, for the
/// start-up check.
pub fn example_chrome() -> Chrome {
    Chrome {
        title: "Example".into(),
        office: "Office".into(),
        office_email: "poc@office.example".into(),
        switch_url: "/?lang=en".into(),
    }
}

pub fn example(page: Page, lang: Language, pages: &Pages) -> serde_json::Value {
    let value = match page {
        Page::Index => serde_json::to_value(IndexPage {
            areas: vec![AreaView {
                name: "Fiscal transparency".into(),
                consultations: vec![ConsultationLine {
                    reference: "NAP7-FISCAL".into(),
                    title: "Budget".into(),
                    deadline: "1 March 2027".into(),
                    days_left: 12,
                    today: false,
                }],
            }],
        }),
        Page::Consultation => {
            let field = FieldView {
                id: "problem".into(),
                label: "Problem".into(),
                hint: Some("Hint".into()),
                error: Some("Fill in this field.".into()),
                multiline: true,
                rows: 6,
                kind: "text",
                autocomplete: "off",
                value: "typed".into(),
                required: Some("(required)".into()),
                described_by: Some("problem-hint problem-error".into()),
            };
            serde_json::to_value(ConsultationPage {
                consultation: ConsultationView {
                    reference: "NAP7-FISCAL",
                    title: "Budget",
                    description: "About",
                    area_name: Some("Fiscal"),
                    lfp_name: Some("Ministry"),
                    deadline: "1 March 2027".into(),
                    deadline_short: "01.03.2027".into(),
                    working_days: 20,
                },
                paragraphs: vec!["About".into()],
                meeting: Some(MeetingView {
                    when: "2 March 2027, 10:00–12:00".into(),
                    place: Some("Hall"),
                    link: Some("https://meet.example/x"),
                    presentation: Some("slides.pdf".into()),
                }),
                drafts: vec![DraftText {
                    number: 1,
                    title: "Open budget".into(),
                    paragraphs: vec!["Text".into()],
                }],
                cso: Some("Qendra".into()),
                late: true,
                sent: vec![SentView {
                    receipt_no: "OGP-7K3M-Q9TX".into(),
                    date: "1 March 2027".into(),
                    follow_ups: 1,
                }],
                form_action: "/p/key".into(),
                token: "token".into(),
                errors: vec![ErrorLink {
                    field: "problem".into(),
                    message: "Fill in this field.".into(),
                }],
                proposal_fields: vec![field.clone()],
                contact_fields: vec![field.clone()],
                draft_fields: vec![field],
                ogp_values: vec![ValueView {
                    value: "transparency",
                    label: pages.word(lang, "value_transparency"),
                    checked: true,
                }],
                values_error: Some("Choose".into()),
                attachments_hint: "Up to 5 files".into(),
                attachments_error: Some("Too many".into()),
                no_publish: true,
            })
        }
        Page::Receipt => serde_json::to_value(ReceiptPage {
            heading: "Thank you".into(),
            receipt_no: "OGP-7K3M-Q9TX".into(),
            consultation: TitleOnly {
                title: "Budget".into(),
            },
            email: Some("a@b.example".into()),
            late: true,
            back_url: Some("/p/key".into()),
        }),
        Page::Notice => serde_json::to_value(NoticePage {
            heading: "Heading".into(),
            paragraphs: vec!["Text".into()],
            link: Some(Link {
                href: "/".into(),
                text: "Back".into(),
            }),
            button: Some(Button {
                action: "/confirm/x".into(),
                text: "Confirm".into(),
            }),
        }),
        review => Ok(super::review::views::example(review)),
    };
    value.unwrap_or_default()
}
