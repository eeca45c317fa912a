//! What each email's templates are given: one typed context per kind of
//! email, so every sender of a kind fills the same fields (the compiler
//! checks it), and strict templates, rendered once at start-up, check that
//! they use nothing else.

use serde::Serialize;
use serde_json::Value;

use crate::domain::EmailKind;

/// The office that sends.
#[derive(Debug, Clone, Serialize)]
pub struct Office<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub postal_address: &'a str,
}

/// Who a message is addressed to, or who sends it, by name.
#[derive(Debug, Clone, Serialize)]
pub struct Named<'a> {
    pub name: &'a str,
}

/// A consultation as a CSO reads about it, in its language.
#[derive(Debug, Clone, Serialize)]
pub struct ConsultationView<'a> {
    pub reference: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub area_name: Option<&'a str>,
    pub lfp_name: Option<&'a str>,
    /// Written out in the language ("e hënë, 11 janar 2027").
    pub deadline: String,
    /// 11.01.2027
    pub deadline_short: String,
    pub working_days: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct MeetingView<'a> {
    /// Day, date and hours, in the language.
    pub when: String,
    pub place: Option<&'a str>,
    pub link: Option<&'a str>,
    /// The attached presentation's file name.
    pub presentation: Option<String>,
}

/// A government draft commitment, with the address a comment on it goes to.
#[derive(Debug, Clone, Serialize)]
pub struct DraftView<'a> {
    pub number: u32,
    pub title: &'a str,
    pub text: &'a str,
    pub reply_address: String,
}

/// Every message about a consultation to one CSO: the invitation, and the
/// part the other consultation emails share.
#[derive(Debug, Clone, Serialize)]
pub struct ConsultationMail<'a> {
    pub office: Office<'a>,
    pub cso: Named<'a>,
    pub consultation: ConsultationView<'a>,
    pub meeting: Option<MeetingView<'a>>,
    pub drafts: Vec<DraftView<'a>>,
    pub reply_address: String,
    pub form_url: String,
    pub unsubscribe_url: String,
}

/// The notice that a deadline moved.
#[derive(Debug, Clone, Serialize)]
pub struct DeadlineExtended<'a> {
    #[serde(flatten)]
    pub mail: ConsultationMail<'a>,
    pub previous_deadline: String,
    pub reason: &'a str,
}

/// A receipt for a proposal, or the confirmation of an addition to one.
#[derive(Debug, Clone, Serialize)]
pub struct Acknowledgement<'a> {
    #[serde(flatten)]
    pub mail: ConsultationMail<'a>,
    pub receipt_no: &'a str,
    /// The consultation had closed when it arrived.
    pub late: bool,
    /// What the sender wrote, copied back to them.
    pub received_text: &'a str,
    /// Who wrote, when this receipt is a copy to the CSO.
    pub sent_by: Option<&'a str>,
    /// The draft commitment it comments on.
    pub draft: Option<DraftRef<'a>>,
    pub attachments: Vec<AttachmentLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DraftRef<'a> {
    pub number: u32,
    pub title: &'a str,
}

/// One document the sender attached, as the receipt lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentLine {
    pub name: String,
    /// "240 KB"
    pub size: String,
    /// Over the size kept; the receipt asks for a link.
    pub too_large: bool,
    /// winmail.dat, which the receipt explains.
    pub winmail: bool,
}

/// The POC's daily summary of the holding pen.
#[derive(Debug, Clone, Serialize)]
pub struct PenSummary<'a> {
    pub office: Named<'a>,
    pub date: String,
    pub count: usize,
    pub many: bool,
    pub messages: Vec<HeldLine<'a>>,
    /// Waiting but not listed.
    pub more: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldLine<'a> {
    pub id: i64,
    pub received: String,
    pub source: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub reason: &'a str,
}

/// The link that records a web-form proposal from someone not in the
/// registry, once they click it.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmation<'a> {
    pub office: Named<'a>,
    pub name: &'a str,
    pub consultation: Named<'a>,
    pub link: String,
    pub hours: u64,
}

/// An email's context, tied to its kind: a kind cannot be rendered with
/// another kind's fields.
#[derive(Debug, Clone)]
pub enum Context<'a> {
    Invitation(ConsultationMail<'a>),
    DeadlineExtended(DeadlineExtended<'a>),
    Receipt(Acknowledgement<'a>),
    FollowUp(Acknowledgement<'a>),
    PenSummary(PenSummary<'a>),
    Confirmation(Confirmation<'a>),
}

impl Context<'_> {
    pub fn kind(&self) -> EmailKind {
        match self {
            Self::Invitation(_) => EmailKind::Invitation,
            Self::DeadlineExtended(_) => EmailKind::DeadlineExtended,
            Self::Receipt(_) => EmailKind::Receipt,
            Self::FollowUp(_) => EmailKind::FollowUp,
            Self::PenSummary(_) => EmailKind::PenSummary,
            Self::Confirmation(_) => EmailKind::Confirmation,
        }
    }

    /// What handlebars is given.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Self::Invitation(c) => serde_json::to_value(c),
            Self::DeadlineExtended(c) => serde_json::to_value(c),
            Self::Receipt(c) | Self::FollowUp(c) => serde_json::to_value(c),
            Self::PenSummary(c) => serde_json::to_value(c),
            Self::Confirmation(c) => serde_json::to_value(c),
        };
        // Only strings, numbers, options and vectors: this cannot fail.
        value.unwrap_or(Value::Null)
    }

    /// The consultation part, for the emails that have one.
    pub fn consultation_mail(&self) -> Option<&ConsultationMail<'_>> {
        match self {
            Self::Invitation(m) => Some(m),
            Self::DeadlineExtended(c) => Some(&c.mail),
            Self::Receipt(c) | Self::FollowUp(c) => Some(&c.mail),
            Self::PenSummary(_) | Self::Confirmation(_) => None,
        }
    }
}
