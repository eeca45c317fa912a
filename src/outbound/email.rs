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

/// A reminder that a consultation's deadline is near.
#[derive(Debug, Clone, Serialize)]
pub struct DeadlineReminder<'a> {
    #[serde(flatten)]
    pub mail: ConsultationMail<'a>,
    /// Whole days from the reminder's day to the deadline (1: tomorrow).
    pub days_left: i64,
    /// The deadline is tomorrow.
    pub tomorrow: bool,
    /// The CSO's receipt numbers for this consultation, oldest first.
    pub receipts: Vec<String>,
}

/// The meeting moved, changed place or link, or was cancelled; `mail.meeting`
/// is the meeting as it is now (None when cancelled).
#[derive(Debug, Clone, Serialize)]
pub struct MeetingChanged<'a> {
    #[serde(flatten)]
    pub mail: ConsultationMail<'a>,
    /// The meeting as the CSO knew it.
    pub previous: Option<MeetingView<'a>>,
    pub cancelled: bool,
}

/// A consultation closed before its announced deadline.
#[derive(Debug, Clone, Serialize)]
pub struct ConsultationClosed<'a> {
    #[serde(flatten)]
    pub mail: ConsultationMail<'a>,
    /// The deadline that had been announced.
    pub announced_deadline: String,
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
    /// In that copy: the link by which the CSO says it did not send it.
    pub disown_url: Option<&'a str>,
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

/// The POC's daily summary: the holding pen, mail that failed or waits to
/// be retried, consultations opening and closing, digests sent.
#[derive(Debug, Clone, Serialize)]
pub struct PenSummary<'a> {
    pub office: Named<'a>,
    pub date: String,
    /// Messages in the holding pen.
    pub count: usize,
    pub many: bool,
    pub messages: Vec<HeldLine<'a>>,
    /// Waiting but not listed.
    pub more: usize,
    /// Messages the relay refused for good, in all.
    pub failed_total: u64,
    pub failures: Vec<OutboxLine>,
    /// Messages waiting to be tried again.
    pub deferred: Vec<OutboxLine>,
    /// "OGP-2026-FISCAL, Open budget: 1 December 2026"
    pub opening: Vec<String>,
    pub closing: Vec<String>,
    /// LFP digests delivered in the last day.
    pub digests_sent: u64,
}

/// A message that failed or waits to be retried, as the POC reads it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxLine {
    pub kind: String,
    pub recipient: String,
    pub attempts: u32,
    pub error: String,
    /// When it is tried again (deferred ones).
    pub next: Option<String>,
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

/// One proposal or addition as an LFP reads it in a digest or reminder.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalLine {
    pub receipt_no: String,
    /// The CSO's name, or the sender's address when not in the registry.
    pub from: String,
    /// 03.12.2026
    pub date: String,
    /// The start of what was written, greeting left out.
    pub excerpt: String,
    pub follow_up: bool,
    pub late: bool,
    /// Days since it arrived, for proposals still waiting.
    pub waited_days: Option<i64>,
    /// Its review page, once there is one.
    pub link: Option<String>,
}

/// A consultation's new proposals in a digest.
#[derive(Debug, Clone, Serialize)]
pub struct DigestConsultation {
    pub reference: String,
    pub title: String,
    pub entries: Vec<ProposalLine>,
    /// Near-identical copies among its proposals, to answer once each.
    pub campaigns: Vec<CampaignLine>,
}

/// A campaign: how many near-identical copies, and how it begins.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignLine {
    pub copies: usize,
    pub excerpt: String,
    /// The review page listing its copies.
    pub link: String,
}

/// A consultation closing soon, with its reply count.
#[derive(Debug, Clone, Serialize)]
pub struct ClosingLine {
    pub reference: String,
    pub title: String,
    pub deadline: String,
    pub invited: u64,
    pub replied: u64,
}

/// The weekly digest to an LFP's contacts.
#[derive(Debug, Clone, Serialize)]
pub struct LfpDigest<'a> {
    pub office: Office<'a>,
    pub lfp: Named<'a>,
    pub area: Named<'a>,
    /// "since 23.11.2026 08:00" or, for the first digest, empty.
    pub since: String,
    pub through: String,
    pub new_proposals: u64,
    pub new_follow_ups: u64,
    pub waiting_total: u64,
    pub closing_total: usize,
    pub nothing_new: bool,
    pub consultations: Vec<DigestConsultation>,
    /// New entries not listed.
    pub new_more: u64,
    pub waiting: Vec<ProposalLine>,
    pub waiting_more: u64,
    pub closing: Vec<ClosingLine>,
}

/// The reminder to an LFP of proposals still without a disposition after
/// its consultation closed.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseReminder<'a> {
    pub office: Office<'a>,
    pub lfp: Named<'a>,
    pub consultation: Named<'a>,
    pub reference: &'a str,
    pub closed_on: String,
    pub working_days: u32,
    pub waiting_total: u64,
    pub waiting: Vec<ProposalLine>,
    pub waiting_more: u64,
}

/// How one proposal was considered, as its sender reads it.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeLine {
    pub receipt_no: String,
    /// 03.12.2026
    pub date: String,
    /// The start of what was written, greeting left out.
    pub excerpt: String,
    /// "Accepted", "Pranuar pjesërisht"…
    pub disposition: String,
    pub commitment: Option<String>,
    /// The reasoned response, in the sender's language.
    pub response: String,
    /// What it had been, in a correction.
    pub previous: Option<String>,
}

/// The results of a consultation, or a correction of one of them, to one
/// sender of proposals.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeNotice<'a> {
    pub office: Office<'a>,
    pub cso: Named<'a>,
    pub consultation: Named<'a>,
    pub reference: &'a str,
    pub proposals: Vec<OutcomeLine>,
    pub report_url: String,
}

/// The link that signs an LFP contact or POC staff member in.
#[derive(Debug, Clone, Serialize)]
pub struct SignIn<'a> {
    pub office: Named<'a>,
    pub link: String,
    pub minutes: u64,
}

/// To an LFP contact whose reply to a digest or reminder reached
/// cocreate instead of the Point of Contact.
#[derive(Debug, Clone, Serialize)]
pub struct NotAProposal<'a> {
    pub office: Office<'a>,
    /// The subject of their message, as they wrote it (`subject` is the
    /// note's own).
    pub their_subject: String,
    /// When it arrived, in words.
    pub received: String,
    /// The review pages, where proposals are answered.
    pub review_url: String,
}

/// An email's context, tied to its kind: a kind cannot be rendered with
/// another kind's fields.
#[derive(Debug, Clone)]
pub enum Context<'a> {
    Invitation(ConsultationMail<'a>),
    DeadlineExtended(DeadlineExtended<'a>),
    DeadlineReminder(DeadlineReminder<'a>),
    MeetingChanged(MeetingChanged<'a>),
    ConsultationClosed(ConsultationClosed<'a>),
    LfpDigest(LfpDigest<'a>),
    ResponseReminder(ResponseReminder<'a>),
    Receipt(Acknowledgement<'a>),
    FollowUp(Acknowledgement<'a>),
    PenSummary(PenSummary<'a>),
    Confirmation(Confirmation<'a>),
    Outcome(OutcomeNotice<'a>),
    Correction(OutcomeNotice<'a>),
    SignIn(SignIn<'a>),
    NotAProposal(NotAProposal<'a>),
}

impl Context<'_> {
    pub fn kind(&self) -> EmailKind {
        match self {
            Self::Invitation(_) => EmailKind::Invitation,
            Self::DeadlineExtended(_) => EmailKind::DeadlineExtended,
            Self::DeadlineReminder(_) => EmailKind::DeadlineReminder,
            Self::MeetingChanged(_) => EmailKind::MeetingChanged,
            Self::ConsultationClosed(_) => EmailKind::ConsultationClosed,
            Self::LfpDigest(_) => EmailKind::LfpDigest,
            Self::ResponseReminder(_) => EmailKind::ResponseReminder,
            Self::Receipt(_) => EmailKind::Receipt,
            Self::FollowUp(_) => EmailKind::FollowUp,
            Self::PenSummary(_) => EmailKind::PenSummary,
            Self::Confirmation(_) => EmailKind::Confirmation,
            Self::Outcome(_) => EmailKind::Outcome,
            Self::Correction(_) => EmailKind::Correction,
            Self::SignIn(_) => EmailKind::SignIn,
            Self::NotAProposal(_) => EmailKind::NotAProposal,
        }
    }

    /// What handlebars is given.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Self::Invitation(c) => serde_json::to_value(c),
            Self::DeadlineExtended(c) => serde_json::to_value(c),
            Self::DeadlineReminder(c) => serde_json::to_value(c),
            Self::MeetingChanged(c) => serde_json::to_value(c),
            Self::ConsultationClosed(c) => serde_json::to_value(c),
            Self::LfpDigest(c) => serde_json::to_value(c),
            Self::ResponseReminder(c) => serde_json::to_value(c),
            Self::Receipt(c) | Self::FollowUp(c) => serde_json::to_value(c),
            Self::PenSummary(c) => serde_json::to_value(c),
            Self::Confirmation(c) => serde_json::to_value(c),
            Self::Outcome(c) | Self::Correction(c) => serde_json::to_value(c),
            Self::SignIn(c) => serde_json::to_value(c),
            Self::NotAProposal(c) => serde_json::to_value(c),
        };
        // Only strings, numbers, options and vectors: this cannot fail.
        value.unwrap_or(Value::Null)
    }

    /// The consultation part, for the emails that have one.
    pub fn consultation_mail(&self) -> Option<&ConsultationMail<'_>> {
        match self {
            Self::Invitation(m) => Some(m),
            Self::DeadlineExtended(c) => Some(&c.mail),
            Self::DeadlineReminder(c) => Some(&c.mail),
            Self::MeetingChanged(c) => Some(&c.mail),
            Self::ConsultationClosed(c) => Some(&c.mail),
            Self::Receipt(c) | Self::FollowUp(c) => Some(&c.mail),
            Self::PenSummary(_)
            | Self::Confirmation(_)
            | Self::LfpDigest(_)
            | Self::ResponseReminder(_)
            | Self::Outcome(_)
            | Self::Correction(_)
            | Self::SignIn(_)
            | Self::NotAProposal(_) => None,
        }
    }
}
