//! Mail from the office to a person who answers by writing to the office,
//! not to cocreate: LFP digests and reminders, outcome and correction
//! notices. Replies go to the Point of Contact's mailbox (Reply-To), so
//! nobody's answer to a digest or a decision becomes a proposal.

use super::email::Office;
use super::message::{self, MessageError, Outgoing};
use super::outbox::NewMessage;
use super::templates::Rendered;
use crate::app::App;
use crate::domain::{EmailAddress, EmailFor, Language, ReplyKey};

/// The office as a template names it, in `lang`.
pub fn office(app: &App, lang: Language) -> Office<'_> {
    let o = &app.config.office;
    Office {
        name: o.name.get(lang),
        email: o.email.as_str(),
        postal_address: &o.postal_address,
    }
}

/// Who a message from the office goes to, and what it is about.
pub struct To<'a> {
    pub name: &'a str,
    pub address: &'a EmailAddress,
    /// Starts its Message-ID (`lfp.fiscal`, `outcome`).
    pub id_prefix: &'a str,
    pub consultation_id: Option<i64>,
    pub cso_id: Option<i64>,
    /// The Message-ID of the message this answers, if it answers one.
    pub in_reply_to: Option<&'a str>,
}

/// One rendered message from the office in `lang`, keyed by `key`.
pub fn message(
    app: &App,
    lang: Language,
    rendered: &Rendered,
    to: &To<'_>,
    key: EmailFor<'_>,
) -> Result<NewMessage, MessageError> {
    let config = app.config.as_ref();
    let message_id = format!(
        "{}.{}@{}",
        to.id_prefix,
        ReplyKey::generate(),
        config.mail.domain
    );
    let bytes = message::build(
        &Outgoing {
            from_name: config.office.name.get(lang),
            from: &config.mail.from,
            to_name: to.name,
            to: to.address,
            reply_to: Some(config.office.email.as_str()),
            message_id: &message_id,
            in_reply_to: to.in_reply_to,
            auto_submitted: if to.in_reply_to.is_some() {
                "auto-replied"
            } else {
                "auto-generated"
            },
            rendered,
            list: None,
            attachments: &[],
        },
        app.dkim.as_deref(),
    )?;
    Ok(NewMessage {
        idempotency_key: key.idempotency_key(),
        kind: key.kind(),
        recipient: to.address.clone(),
        envelope_from: config.mail.from.to_string(),
        consultation_id: to.consultation_id,
        cso_id: to.cso_id,
        message: bytes,
        reply_key: None,
    })
}
