//! `cocreate mail inspect`: what cocreate would do with one message, worked
//! out against the current store without changing anything. This is also
//! how the POC answers "I sent it, where is it?".

use serde::Serialize;

pub use super::authenticity::Authentication;
use super::classify::{Classification, automated};
use super::parse::{AttachmentInfo, ParseError, parse_within, readable};
use super::route::{Route, route};
use super::trim::trim;
use crate::config::Config;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub classification: Classification,
    /// Why it is classified so (for anything but a proposal).
    pub reason: String,
    pub route: Option<Route>,
    pub reply_text: String,
    pub quoted_text: String,
    pub signature: String,
    pub attachments: Vec<AttachmentInfo>,
    pub authentication: Authentication,
}

pub async fn inspect(
    store: &dyn Store,
    config: &Config,
    raw: &[u8],
) -> Result<Inspection, StoreError> {
    let parsed = match parse_within(raw, &config.inbound.parse_limits()) {
        Ok(p) => p,
        Err(e) => {
            // A sender that cannot be read leaves the rest readable: the
            // POC decides from what was written.
            let partial = matches!(e, ParseError::NoSender | ParseError::BadSender(_))
                .then(|| readable(raw, &config.inbound.parse_limits()))
                .flatten()
                .unwrap_or_default();
            let trimmed = trim(&partial.body);
            return Ok(Inspection {
                message_id: partial.message_id,
                from: None,
                subject: partial.subject,
                classification: Classification::Unmatched,
                reason: format!("{e}; it goes to the holding pen"),
                route: None,
                reply_text: trimmed.reply_text,
                quoted_text: trimmed.quoted_text,
                signature: trimmed.signature,
                attachments: Vec::new(),
                authentication: Authentication::default(),
            });
        }
    };
    let trimmed = trim(&parsed.body);
    let auth = Authentication::of(&parsed, config.inbound.trusted_authserv_id.as_deref());
    let (classification, reason, route) = match automated(&parsed, &config.mail) {
        Some((c, why)) => (c, why, None),
        None => {
            let r = route(store, config, &parsed).await?;
            let c = match (&r.method, &r.follow_up_of) {
                (Some(_), Some(_)) => Classification::FollowUp,
                (Some(_), None) => Classification::Proposal,
                _ => Classification::Unmatched,
            };
            (c, r.reason.clone(), Some(r))
        }
    };
    Ok(Inspection {
        message_id: parsed.message_id.clone(),
        from: Some(parsed.from.to_string()),
        subject: Some(parsed.subject.clone()),
        classification,
        reason,
        route,
        reply_text: trimmed.reply_text,
        quoted_text: trimmed.quoted_text,
        signature: trimmed.signature,
        attachments: parsed.attachments,
        authentication: auth,
    })
}
