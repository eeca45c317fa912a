//! The emails cocreate sends, by kind: each names its template folder and
//! its kind in the outbox, and each message of a kind has an idempotency key
//! built one way, so the same message is never queued twice.

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::{EmailAddress, ReceiptNo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailKind {
    /// To every relevant CSO address when a consultation opens.
    Invitation,
    /// To every address invited, when the deadline moves.
    DeadlineExtended,
    /// To every address invited, some days before the deadline.
    DeadlineReminder,
    /// To every address invited, when the meeting changes or is cancelled.
    MeetingChanged,
    /// To every address invited, when a consultation closes early.
    ConsultationClosed,
    /// The weekly digest to an LFP's contacts.
    LfpDigest,
    /// To an LFP, about proposals still without a disposition.
    ResponseReminder,
    /// The acknowledgement of a proposal, with its receipt number.
    Receipt,
    /// The acknowledgement of an addition to a proposal.
    FollowUp,
    /// The POC's daily summary of the holding pen.
    PenSummary,
    /// The link that confirms a web-form proposal from someone not in the
    /// registry.
    Confirmation,
    /// To a CSO when its consultation's results are published: each of its
    /// proposals with how it was considered and why.
    Outcome,
    /// To a CSO when a published disposition of one of its proposals is
    /// changed.
    Correction,
    /// The sign-in link an LFP contact or POC staff member asked for.
    SignIn,
    /// To an LFP contact whose reply to a digest or reminder reached
    /// cocreate: it is not a proposal, and where to write instead.
    NotAProposal,
}

impl EmailKind {
    pub const ALL: [EmailKind; 15] = [
        Self::Invitation,
        Self::DeadlineExtended,
        Self::DeadlineReminder,
        Self::MeetingChanged,
        Self::ConsultationClosed,
        Self::LfpDigest,
        Self::ResponseReminder,
        Self::Receipt,
        Self::FollowUp,
        Self::PenSummary,
        Self::Confirmation,
        Self::Outcome,
        Self::Correction,
        Self::SignIn,
        Self::NotAProposal,
    ];

    /// Its folder under templates/email/ and its kind in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::DeadlineExtended => "deadline_extended",
            Self::DeadlineReminder => "deadline_reminder",
            Self::MeetingChanged => "meeting_changed",
            Self::ConsultationClosed => "consultation_closed",
            Self::LfpDigest => "lfp_digest",
            Self::ResponseReminder => "response_reminder",
            Self::Receipt => "receipt",
            Self::FollowUp => "follow_up",
            Self::PenSummary => "pen_summary",
            Self::Confirmation => "confirmation",
            Self::Outcome => "outcome",
            Self::Correction => "correction",
            Self::SignIn => "sign_in",
            Self::NotAProposal => "not_a_proposal",
        }
    }

    /// The kind as named in the outbox (`as_str`), if it is one.
    pub fn from_outbox(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// What a person calls it, in `lang` (the POC's summary lists failed
    /// and deferred mail by it).
    pub fn label(self, lang: super::Language) -> &'static str {
        use super::Language::{En, Sq};
        match (self, lang) {
            (Self::Invitation, Sq) => "ftesë",
            (Self::Invitation, En) => "invitation",
            (Self::DeadlineExtended, Sq) => "njoftim për zgjatjen e afatit",
            (Self::DeadlineExtended, En) => "deadline extension notice",
            (Self::DeadlineReminder, Sq) => "kujtesë për afatin",
            (Self::DeadlineReminder, En) => "deadline reminder",
            (Self::MeetingChanged, Sq) => "njoftim për takimin",
            (Self::MeetingChanged, En) => "meeting notice",
            (Self::ConsultationClosed, Sq) => "njoftim për mbylljen",
            (Self::ConsultationClosed, En) => "early close notice",
            (Self::LfpDigest, Sq) => "përmbledhje javore",
            (Self::LfpDigest, En) => "weekly digest",
            (Self::ResponseReminder, Sq) => "kujtesë për përgjigjen",
            (Self::ResponseReminder, En) => "response reminder",
            (Self::Receipt, Sq) => "konfirmim marrjeje",
            (Self::Receipt, En) => "receipt",
            (Self::FollowUp, Sq) => "konfirmim shtese",
            (Self::FollowUp, En) => "receipt of an addition",
            (Self::PenSummary, Sq) => "përmbledhje ditore",
            (Self::PenSummary, En) => "daily summary",
            (Self::Confirmation, Sq) => "lidhje konfirmimi",
            (Self::Confirmation, En) => "confirmation link",
            (Self::Outcome, Sq) => "njoftim për shqyrtimin",
            (Self::Outcome, En) => "outcome notice",
            (Self::Correction, Sq) => "korrigjim",
            (Self::Correction, En) => "correction",
            (Self::SignIn, Sq) => "lidhje hyrjeje",
            (Self::SignIn, En) => "sign-in link",
            (Self::NotAProposal, Sq) => "njoftim se nuk është propozim",
            (Self::NotAProposal, En) => "not-a-proposal note",
        }
    }

    /// Answers to a message that came in: capped per address and hour by
    /// the loop guard, and never held behind bulk mail (see [`Lane`]).
    pub fn is_acknowledgement(self) -> bool {
        matches!(self, Self::Receipt | Self::FollowUp | Self::NotAProposal)
    }

    /// The outbox lane: answers to what someone just did go in their own
    /// lane, ahead of and unpaced by the bulk mail.
    pub fn lane(self) -> Lane {
        match self {
            Self::Receipt
            | Self::FollowUp
            | Self::NotAProposal
            | Self::Confirmation
            | Self::SignIn => Lane::Replies,
            Self::Invitation
            | Self::DeadlineExtended
            | Self::DeadlineReminder
            | Self::MeetingChanged
            | Self::ConsultationClosed
            | Self::LfpDigest
            | Self::ResponseReminder
            | Self::PenSummary
            | Self::Outcome
            | Self::Correction => Lane::Bulk,
        }
    }
}

/// The outbox's two lanes. A person waiting for an answer (a receipt, a
/// confirmation link, a sign-in link) must not wait behind thousands of
/// invitations paced at the relay's rate: replies are claimed by their own
/// sender, first, and not paced by `outbox.rate_per_second`, which is for
/// the bulk mail that providers throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Replies,
    Bulk,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Replies, Lane::Bulk];

    /// Its number in the outbox's `lane` column (lower is first).
    pub fn number(self) -> i64 {
        match self {
            Self::Replies => 0,
            Self::Bulk => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replies => "replies",
            Self::Bulk => "bulk",
        }
    }
}

impl fmt::Display for EmailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message's meaning, from which its kind and idempotency key follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailFor<'a> {
    Invitation {
        consultation_id: i64,
        cso_id: i64,
        address: &'a EmailAddress,
    },
    DeadlineExtended {
        consultation_id: i64,
        closes_on: NaiveDate,
        cso_id: i64,
        address: &'a EmailAddress,
    },
    /// Keyed by the deadline and the days before it: a moved deadline
    /// gets its own reminders.
    DeadlineReminder {
        consultation_id: i64,
        closes_on: NaiveDate,
        days_before: u32,
        cso_id: i64,
        address: &'a EmailAddress,
    },
    /// One notice per change of the meeting (its calendar SEQUENCE).
    MeetingChanged {
        consultation_id: i64,
        sequence: u32,
        cso_id: i64,
        address: &'a EmailAddress,
    },
    ConsultationClosed {
        consultation_id: i64,
        cso_id: i64,
        address: &'a EmailAddress,
    },
    /// One digest per LFP (named by its area's code), contact and period,
    /// the period named by where it starts (`first` for the first digest).
    LfpDigest {
        area: &'a str,
        since: Option<DateTime<Utc>>,
        address: &'a EmailAddress,
    },
    ResponseReminder {
        consultation_id: i64,
        date: NaiveDate,
        address: &'a EmailAddress,
    },
    Receipt {
        receipt_no: &'a ReceiptNo,
        /// A copy to the CSO's registered address, when someone else wrote
        /// through its key or link.
        copy_to: Option<&'a str>,
    },
    /// One confirmation per message that added to a proposal, and a copy
    /// to each further address told of it (`copy_to`).
    FollowUp {
        inbound_message_id: i64,
        copy_to: Option<&'a str>,
    },
    PenSummary {
        date: NaiveDate,
    },
    Confirmation {
        /// The hash of the link's token: one email per waiting proposal.
        token_hash: &'a str,
    },
    /// One outcome notice per consultation, sender (a CSO's id, or the
    /// address of a sender outside the registry) and address.
    Outcome {
        consultation_id: i64,
        sender: &'a str,
        address: &'a EmailAddress,
    },
    /// One correction notice per change (its audit log entry) and address.
    Correction {
        log_id: i64,
        address: &'a EmailAddress,
    },
    SignIn {
        /// The hash of the link's token: one email per link.
        token_hash: &'a str,
    },
    /// One note per message that answered mail to an LFP.
    NotAProposal {
        inbound_message_id: i64,
    },
}

impl EmailFor<'_> {
    pub fn kind(&self) -> EmailKind {
        match self {
            Self::Invitation { .. } => EmailKind::Invitation,
            Self::DeadlineExtended { .. } => EmailKind::DeadlineExtended,
            Self::DeadlineReminder { .. } => EmailKind::DeadlineReminder,
            Self::MeetingChanged { .. } => EmailKind::MeetingChanged,
            Self::ConsultationClosed { .. } => EmailKind::ConsultationClosed,
            Self::LfpDigest { .. } => EmailKind::LfpDigest,
            Self::ResponseReminder { .. } => EmailKind::ResponseReminder,
            Self::Receipt { .. } => EmailKind::Receipt,
            Self::FollowUp { .. } => EmailKind::FollowUp,
            Self::PenSummary { .. } => EmailKind::PenSummary,
            Self::Confirmation { .. } => EmailKind::Confirmation,
            Self::Outcome { .. } => EmailKind::Outcome,
            Self::Correction { .. } => EmailKind::Correction,
            Self::SignIn { .. } => EmailKind::SignIn,
            Self::NotAProposal { .. } => EmailKind::NotAProposal,
        }
    }

    /// The outbox's idempotency key: `kind:` and what makes it unique.
    pub fn idempotency_key(&self) -> String {
        let kind = self.kind();
        match self {
            Self::Invitation {
                consultation_id,
                cso_id,
                address,
            } => format!(
                "{}{cso_id}:{address}",
                Self::invitations_of(*consultation_id)
            ),
            Self::DeadlineExtended {
                consultation_id,
                closes_on,
                cso_id,
                address,
            } => format!("{kind}:{consultation_id}:{closes_on}:{cso_id}:{address}"),
            Self::DeadlineReminder {
                consultation_id,
                closes_on,
                days_before,
                cso_id,
                address,
            } => format!("{kind}:{consultation_id}:{closes_on}:{days_before}:{cso_id}:{address}"),
            Self::MeetingChanged {
                consultation_id,
                sequence,
                cso_id,
                address,
            } => format!("{kind}:{consultation_id}:{sequence}:{cso_id}:{address}"),
            Self::ConsultationClosed {
                consultation_id,
                cso_id,
                address,
            } => format!("{kind}:{consultation_id}:{cso_id}:{address}"),
            Self::LfpDigest {
                area,
                since,
                address,
            } => format!(
                "{kind}:{area}:{}:{address}",
                since.map_or_else(
                    || "first".to_string(),
                    |t| t.to_rfc3339_opts(SecondsFormat::Micros, true)
                )
            ),
            Self::ResponseReminder {
                consultation_id,
                date,
                address,
            } => format!("{kind}:{consultation_id}:{date}:{address}"),
            Self::Receipt {
                receipt_no,
                copy_to: None,
            } => format!("{kind}:{receipt_no}"),
            Self::Receipt {
                receipt_no,
                copy_to: Some(address),
            } => format!("{kind}:{receipt_no}:{address}"),
            Self::FollowUp {
                inbound_message_id,
                copy_to: None,
            } => format!("{kind}:{inbound_message_id}"),
            Self::FollowUp {
                inbound_message_id,
                copy_to: Some(address),
            } => format!("{kind}:{inbound_message_id}:{address}"),
            Self::PenSummary { date } => format!("{kind}:{date}"),
            Self::Confirmation { token_hash } | Self::SignIn { token_hash } => {
                format!("{kind}:{token_hash}")
            }
            Self::Outcome {
                consultation_id,
                sender,
                address,
            } => format!("{kind}:{consultation_id}:{sender}:{address}"),
            Self::Correction { log_id, address } => format!("{kind}:{log_id}:{address}"),
            Self::NotAProposal { inbound_message_id } => format!("{kind}:{inbound_message_id}"),
        }
    }

    /// What the keys of a consultation's invitations start with.
    pub fn invitations_of(consultation_id: i64) -> String {
        format!("{}:{consultation_id}:", EmailKind::Invitation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_those_already_in_outboxes() {
        let a = EmailAddress::parse("info@cso.al").unwrap();
        let r = ReceiptNo::parse("OGP-7K3M-Q9TX").unwrap();
        let date: NaiveDate = "2026-12-03".parse().unwrap();
        let keys: Vec<String> = [
            EmailFor::Invitation {
                consultation_id: 12,
                cso_id: 345,
                address: &a,
            },
            EmailFor::DeadlineExtended {
                consultation_id: 12,
                closes_on: date,
                cso_id: 345,
                address: &a,
            },
            EmailFor::Receipt {
                receipt_no: &r,
                copy_to: None,
            },
            EmailFor::Receipt {
                receipt_no: &r,
                copy_to: Some("info@cso.al"),
            },
            EmailFor::FollowUp {
                inbound_message_id: 9,
                copy_to: None,
            },
            EmailFor::FollowUp {
                inbound_message_id: 9,
                copy_to: Some("info@cso.al"),
            },
            EmailFor::PenSummary { date },
        ]
        .iter()
        .map(EmailFor::idempotency_key)
        .collect();
        assert_eq!(
            keys,
            [
                "invitation:12:345:info@cso.al",
                "deadline_extended:12:2026-12-03:345:info@cso.al",
                "receipt:OGP-7K3M-Q9TX",
                "receipt:OGP-7K3M-Q9TX:info@cso.al",
                "follow_up:9",
                "follow_up:9:info@cso.al",
                "pen_summary:2026-12-03",
            ]
        );
    }
}
