//! What a reviewer works with, for the terminal and the review pages
//! alike: the filters over a consultation's proposals, a proposal's
//! attachments, and their bytes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{AccountabilityError, Disposition};
use crate::app::App;
use crate::store::records::{FollowUpRecord, ReviewProposal};

/// Which proposals to list. Every field narrows; the default lists all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub state: Option<StateFilter>,
    /// A part of the CSO's (or sender's) name or address, any case.
    pub cso: Option<String>,
    pub late: bool,
    pub other_sender: bool,
    /// Comments on a government draft commitment (any, or this number).
    pub draft: Option<Option<i64>>,
    /// Marked for a second look: a sender flag or disowned by its CSO.
    pub flagged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Waiting,
    Decided,
    Is(Disposition),
}

impl StateFilter {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "waiting" => Ok(Self::Waiting),
            "decided" => Ok(Self::Decided),
            other => Disposition::parse(other).map(Self::Is).ok_or_else(|| {
                format!(
                    "the state is waiting, decided, accepted, partly-accepted, merged, not-accepted or out-of-scope, not '{other}'"
                )
            }),
        }
    }
}

impl Filter {
    pub fn matches(&self, p: &ReviewProposal) -> bool {
        let decided = p
            .disposition
            .as_ref()
            .and_then(|d| Disposition::parse(&d.disposition));
        let state = match self.state {
            None => true,
            Some(StateFilter::Waiting) => p.disposition.is_none(),
            Some(StateFilter::Decided) => p.disposition.is_some(),
            Some(StateFilter::Is(d)) => decided == Some(d),
        };
        let cso = self.cso.as_deref().is_none_or(|wanted| {
            let wanted = wanted.trim().to_lowercase();
            [
                p.cso_name.as_deref(),
                p.sender_name.as_deref(),
                Some(p.from_address.as_str()),
            ]
            .into_iter()
            .flatten()
            .any(|s| s.to_lowercase().contains(&wanted))
        });
        let draft = match self.draft {
            None => true,
            Some(None) => p.draft_number.is_some(),
            Some(Some(n)) => p.draft_number == Some(n),
        };
        state
            && cso
            && draft
            && (!self.late || p.late)
            && (!self.other_sender || p.other_sender)
            && (!self.flagged || p.sender_flag.is_some() || p.disowned_at.is_some())
    }
}

/// An attachment as stored with its proposal or follow-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
    #[serde(default)]
    pub inline: bool,
}

/// An attachment of a thread, numbered from 1 in the order the thread
/// shows them (the proposal's, then each follow-up's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub number: usize,
    #[serde(flatten)]
    pub attachment: Attachment,
    /// The stored message it came in.
    pub message: i64,
}

/// The attachments of a proposal's thread, inline images left out.
pub fn attachments(p: &ReviewProposal, follow_ups: &[FollowUpRecord]) -> Vec<Listed> {
    let parts = std::iter::once((p.inbound_message_id, p.attachments_json.as_str())).chain(
        follow_ups
            .iter()
            .map(|f| (f.inbound_message_id, f.attachments_json.as_str())),
    );
    let mut out = Vec::new();
    for (message, json) in parts {
        let list: Vec<Attachment> = serde_json::from_str(json).unwrap_or_default();
        for a in list.into_iter().filter(|a| !a.inline) {
            out.push(Listed {
                number: out.len() + 1,
                attachment: a,
                message,
            });
        }
    }
    out
}

/// An attachment's bytes: from the attachments folder (named by its
/// SHA-256, checked), else from the stored message it came in.
pub async fn bytes(app: &App, listed: &Listed) -> Result<Vec<u8>, AccountabilityError> {
    let dir: &Path = &app.config.inbound.attachments_dir;
    let path = crate::inbound::attachments::path_of(dir, &listed.attachment.sha256);
    if let Ok(bytes) = std::fs::read(&path)
        && crate::signing::sha256_hex(&bytes) == listed.attachment.sha256
    {
        return Ok(bytes);
    }
    let missing = || {
        AccountabilityError::Refused(format!(
            "the attachment {} is no longer in the stored message",
            listed.attachment.name
        ))
    };
    let (_, raw) = app
        .store
        .inbound_raw(listed.message)
        .await?
        .ok_or_else(missing)?;
    let parsed = crate::inbound::parse::parse(&raw).map_err(|_| missing())?;
    parsed
        .attachments
        .into_iter()
        .find(|a| a.sha256 == listed.attachment.sha256)
        .map(|a| a.bytes)
        .ok_or_else(missing)
}
