//! `cocreate mail inspect`: what cocreate would do with one message, worked
//! out against the current store without changing anything. This is also
//! how the POC answers "I sent it, where is it?".

use serde::Serialize;

use super::classify::{Classification, automated};
use super::parse::{AttachmentInfo, parse_within};
use super::route::{Route, route};
use super::trim::trim;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// DMARC, DKIM and SPF results as the receiving MTA recorded them in
/// Authentication-Results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Authentication {
    pub dmarc: Option<String>,
    pub dkim: Option<String>,
    pub spf: Option<String>,
    pub source: Option<String>,
}

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

fn authentication(header: Option<&str>) -> Authentication {
    let Some(h) = header else {
        return Authentication::default();
    };
    let result = |method: &str| {
        h.split(';').find_map(|part| {
            let part = part.trim();
            let rest = part.strip_prefix(method)?.strip_prefix('=')?;
            Some(
                rest.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase(),
            )
        })
    };
    Authentication {
        dmarc: result("dmarc"),
        dkim: result("dkim"),
        spf: result("spf"),
        source: h.split(';').next().map(|s| s.trim().to_string()),
    }
}

/// The authentication results recorded on a parsed message.
pub fn authentication_of(p: &super::parse::Parsed) -> Authentication {
    authentication(p.header("authentication-results"))
}

pub async fn inspect(
    store: &dyn Store,
    config: &Config,
    raw: &[u8],
) -> Result<Inspection, StoreError> {
    let parsed = match parse_within(raw, &config.inbound.parse_limits()) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Inspection {
                message_id: None,
                from: None,
                subject: None,
                classification: Classification::Unmatched,
                reason: format!("{e}; it goes to the holding pen"),
                route: None,
                reply_text: String::new(),
                quoted_text: String::new(),
                signature: String::new(),
                attachments: Vec::new(),
                authentication: Authentication::default(),
            });
        }
    };
    let trimmed = trim(&parsed.body);
    let auth = authentication(parsed.header("authentication-results"));
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

#[cfg(test)]
mod tests {
    #[test]
    fn authentication_results_are_read() {
        let a = super::authentication(Some(
            "mx.ogp.example; dkim=pass header.d=cso.al; spf=pass smtp.mailfrom=cso.al; dmarc=pass (p=none) header.from=cso.al",
        ));
        assert_eq!(a.dkim.as_deref(), Some("pass"));
        assert_eq!(a.spf.as_deref(), Some("pass"));
        assert_eq!(a.dmarc.as_deref(), Some("pass"));
        assert_eq!(a.source.as_deref(), Some("mx.ogp.example"));
    }
}
