//! What the review and report pages show, as typed values their templates
//! read; [`example`] builds one of each for the start-up check.

use serde::Serialize;

use crate::web::pages::Page;

/// The bar on every review page: who is signed in, and the token that
/// binds this session's forms.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub address: String,
    pub poc: bool,
    pub token: String,
}

#[derive(Debug, Serialize)]
pub struct SignInPage {
    /// After a request: the answer, the same for every address.
    pub asked: Option<String>,
    /// A link that was used, expired or unknown.
    pub failed: bool,
    /// A link from the email: the button that uses it.
    pub link_action: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HomePage {
    pub bar: Bar,
    pub consultations: Vec<ConsultationRow>,
    pub pen: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct ConsultationRow {
    pub reference: String,
    pub title: String,
    pub state: String,
    pub deadline: String,
    pub proposals: u64,
    pub waiting: u64,
    pub published: bool,
}

#[derive(Debug, Serialize)]
pub struct Count {
    pub label: String,
    pub count: u64,
    /// The filtered list's address.
    pub href: String,
}

#[derive(Debug, Serialize)]
pub struct ConsultationPage {
    pub bar: Bar,
    pub reference: String,
    pub title: String,
    pub state: String,
    pub deadline: String,
    pub invited: u64,
    pub replied: u64,
    pub counts: Vec<Count>,
    pub filter: FilterView,
    pub proposals: Vec<ProposalRow>,
    pub shown: usize,
    pub total: usize,
    pub decide: DecideForm,
    pub published: Option<String>,
    /// The POC may publish (closed, all decided, not yet published).
    pub can_publish: bool,
    pub report_url: String,
}

#[derive(Debug, Serialize)]
pub struct FilterView {
    pub action: String,
    pub states: Vec<Choice>,
    pub cso: String,
    pub late: bool,
    pub other: bool,
    pub draft: bool,
    pub flagged: bool,
    pub campaigns: Vec<Choice>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Debug, Serialize)]
pub struct ProposalRow {
    pub receipt_no: String,
    pub href: String,
    pub sender: String,
    pub date: String,
    pub excerpt: String,
    pub flags: Vec<String>,
    pub disposition: String,
    pub decided: bool,
    /// "Campaign 2 (50)" for near-identical copies.
    pub campaign: Option<String>,
}

/// The form that records a disposition, for one proposal or the checked
/// ones.
#[derive(Debug, Serialize)]
pub struct DecideForm {
    pub action: String,
    pub back: String,
    pub dispositions: Vec<Choice>,
    pub commitment: String,
    pub response_sq: String,
    pub response_en: String,
    /// The receipt this form decides, when it is one proposal's.
    pub receipt_no: Option<String>,
    /// Published: only the POC may change it, as a correction.
    pub locked: bool,
}

#[derive(Debug, Serialize)]
pub struct ProposalPage {
    pub bar: Bar,
    pub receipt_no: String,
    pub consultation: String,
    pub consultation_href: String,
    pub sender: String,
    pub from_address: String,
    pub date: String,
    pub subject: String,
    pub flags: Vec<String>,
    pub paragraphs: Vec<String>,
    pub quoted: String,
    pub signature: String,
    pub follow_ups: Vec<FollowUpView>,
    pub attachments: Vec<AttachmentView>,
    pub sent: Vec<String>,
    pub disposition: Option<String>,
    pub decide: DecideForm,
    pub history: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FollowUpView {
    pub from_address: String,
    pub date: String,
    pub paragraphs: Vec<String>,
    pub quoted: String,
}

#[derive(Debug, Serialize)]
pub struct AttachmentView {
    pub name: String,
    pub href: String,
    pub details: String,
}

#[derive(Debug, Serialize)]
pub struct PenPage {
    pub bar: Bar,
    pub messages: Vec<HeldView>,
    pub consultations: Vec<Choice>,
}

#[derive(Debug, Serialize)]
pub struct HeldView {
    pub id: i64,
    pub received: String,
    pub from: String,
    pub subject: String,
    pub reason: String,
    pub excerpt: String,
    pub assign_action: String,
    pub discard_action: String,
}

#[derive(Debug, Serialize)]
pub struct LogPage {
    pub bar: Bar,
    pub entries: Vec<LogView>,
}

#[derive(Debug, Serialize)]
pub struct LogView {
    pub at: String,
    pub actor: String,
    pub receipt_no: String,
    pub href: String,
    pub before: String,
    pub after: String,
    pub response: String,
    pub correction: bool,
}

/// The public report: of one consultation, or of the action plan.
#[derive(Debug, Serialize)]
pub struct ReportPage {
    pub heading: String,
    pub intro: Vec<String>,
    pub totals: Vec<Count>,
    pub areas: Vec<AreaCounts>,
    pub consultations: Vec<ReportConsultation>,
    pub downloads: Vec<Count>,
}

#[derive(Debug, Serialize)]
pub struct AreaCounts {
    pub name: String,
    pub counts: Vec<Count>,
}

#[derive(Debug, Serialize)]
pub struct ReportConsultation {
    pub reference: String,
    pub title: String,
    pub href: String,
    pub asked: Vec<String>,
    pub period: String,
    pub published: bool,
    pub proposals: Vec<ReportLine>,
}

#[derive(Debug, Serialize)]
pub struct ReportLine {
    pub receipt_no: String,
    pub sender: String,
    pub date: String,
    pub paragraphs: Vec<String>,
    pub withheld: bool,
    pub disposition: String,
    pub commitment: Option<String>,
    pub response: String,
    /// "One of 50 near-identical copies (campaign 1)".
    pub campaign: Option<String>,
}

fn bar() -> Bar {
    Bar {
        address: "ogp-staff@office.example".into(),
        poc: true,
        token: "token".into(),
    }
}

fn choice(value: &str) -> Choice {
    Choice {
        value: value.into(),
        label: value.into(),
        selected: true,
    }
}

fn decide_form() -> DecideForm {
    DecideForm {
        action: "/review/decide".into(),
        back: "/review/c/X".into(),
        dispositions: vec![choice("accepted")],
        commitment: "Commitment 3".into(),
        response_sq: "Arsye".into(),
        response_en: "Reason".into(),
        receipt_no: Some("OGP-7K3M-Q9TX".into()),
        locked: true,
    }
}

fn count() -> Count {
    Count {
        label: "Accepted".into(),
        count: 2,
        href: "/review/c/X?state=accepted".into(),
    }
}

/// A complete review or report page, every optional part present.
pub fn example(page: Page) -> serde_json::Value {
    let value = match page {
        Page::SignIn => serde_json::to_value(SignInPage {
            asked: Some("a@b.example".into()),
            failed: true,
            link_action: Some("/review/sign-in/x".into()),
        }),
        Page::ReviewHome => serde_json::to_value(HomePage {
            bar: bar(),
            consultations: vec![ConsultationRow {
                reference: "OGP-X".into(),
                title: "Budget".into(),
                state: "open".into(),
                deadline: "11.01.2027".into(),
                proposals: 3,
                waiting: 1,
                published: true,
            }],
            pen: Some(2),
        }),
        Page::ReviewConsultation => serde_json::to_value(ConsultationPage {
            bar: bar(),
            reference: "OGP-X".into(),
            title: "Budget".into(),
            state: "closed".into(),
            deadline: "11.01.2027".into(),
            invited: 10,
            replied: 3,
            counts: vec![count()],
            filter: FilterView {
                action: "/review/c/X".into(),
                states: vec![choice("waiting")],
                cso: "Shoqata".into(),
                late: true,
                other: true,
                draft: true,
                flagged: true,
                campaigns: vec![choice("1")],
            },
            proposals: vec![ProposalRow {
                receipt_no: "OGP-7K3M-Q9TX".into(),
                href: "/review/p/OGP-7K3M-Q9TX".into(),
                sender: "Shoqata".into(),
                date: "02.12.2026".into(),
                excerpt: "We propose".into(),
                flags: vec!["late".into()],
                disposition: "Accepted".into(),
                decided: true,
                campaign: Some("Campaign 1 (50)".into()),
            }],
            shown: 1,
            total: 3,
            decide: decide_form(),
            published: Some("03.02.2027".into()),
            can_publish: true,
            report_url: "/report/OGP-X".into(),
        }),
        Page::ReviewProposal => serde_json::to_value(ProposalPage {
            bar: bar(),
            receipt_no: "OGP-7K3M-Q9TX".into(),
            consultation: "OGP-X".into(),
            consultation_href: "/review/c/OGP-X".into(),
            sender: "Shoqata".into(),
            from_address: "a@b.example".into(),
            date: "02.12.2026 10:00".into(),
            subject: "Re: Invitation".into(),
            flags: vec!["late".into()],
            paragraphs: vec!["Text".into()],
            quoted: "> quoted".into(),
            signature: "--\nArta".into(),
            follow_ups: vec![FollowUpView {
                from_address: "a@b.example".into(),
                date: "03.12.2026 10:00".into(),
                paragraphs: vec!["More".into()],
                quoted: "> quoted".into(),
            }],
            attachments: vec![AttachmentView {
                name: "plan.pdf".into(),
                href: "/review/p/OGP-7K3M-Q9TX/a/1".into(),
                details: "application/pdf, 12 KB".into(),
            }],
            sent: vec!["receipt to a@b.example: sent 02.12.2026 10:01".into()],
            disposition: Some("Accepted".into()),
            decide: decide_form(),
            history: vec!["02.12.2026 waiting → accepted".into()],
        }),
        Page::ReviewPen => serde_json::to_value(PenPage {
            bar: bar(),
            messages: vec![HeldView {
                id: 7,
                received: "02.12.2026 10:00".into(),
                from: "x@y.example".into(),
                subject: "Proposal".into(),
                reason: "no reply key".into(),
                excerpt: "We propose".into(),
                assign_action: "/review/pen/7/assign".into(),
                discard_action: "/review/pen/7/discard".into(),
            }],
            consultations: vec![choice("OGP-X")],
        }),
        Page::ReviewLog => serde_json::to_value(LogPage {
            bar: bar(),
            entries: vec![LogView {
                at: "02.12.2026 10:00".into(),
                actor: "lfp@ministry.example".into(),
                receipt_no: "OGP-7K3M-Q9TX".into(),
                href: "/review/p/OGP-7K3M-Q9TX".into(),
                before: "waiting".into(),
                after: "accepted".into(),
                response: "Reason".into(),
                correction: true,
            }],
        }),
        Page::Report => serde_json::to_value(ReportPage {
            heading: "Report".into(),
            intro: vec!["What we asked".into()],
            totals: vec![count()],
            areas: vec![AreaCounts {
                name: "Fiscal".into(),
                counts: vec![count()],
            }],
            consultations: vec![ReportConsultation {
                reference: "OGP-X".into(),
                title: "Budget".into(),
                href: "/report/OGP-X".into(),
                asked: vec!["Tell us".into()],
                period: "01.12.2026 – 11.01.2027".into(),
                published: true,
                proposals: vec![ReportLine {
                    receipt_no: "OGP-7K3M-Q9TX".into(),
                    sender: "Shoqata".into(),
                    date: "02.12.2026".into(),
                    paragraphs: vec!["Text".into()],
                    withheld: true,
                    disposition: "Accepted".into(),
                    commitment: Some("Commitment 3".into()),
                    response: "Reason".into(),
                    campaign: Some("Copies 1 (50)".into()),
                }],
            }],
            downloads: vec![count()],
        }),
        _ => Ok(serde_json::Value::Null),
    };
    value.unwrap_or_default()
}
