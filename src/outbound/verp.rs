//! Bounce addresses (VERP): each message leaves with its own envelope
//! sender, `bounce+ID-SIG@domain`, naming the outbox message it carried.
//!
//! A relay that accepts a message and fails to deliver it later sends its
//! report to the envelope sender. With the office's own address there, the
//! report lands in the office's mailbox and cocreate never learns of it;
//! with a bounce address on cocreate's domain it comes back through the
//! same inbound path as replies, and names the very message (so the very
//! recipient) that failed, whatever the report's own text says. The
//! signature ties the id to its recipient under cocreate's signing key:
//! nobody outside can make an address that silences a CSO. It is lower-case
//! hex, which survives relays that fold the case of addresses.

use crate::config::MailConfig;
use crate::signing::{SigningKey, same_secret};

/// Hex digits of the signature kept in the address: 64 bits.
const SIGNATURE_DIGITS: usize = 16;

const PURPOSE: &str = "bounce address";

/// Makes and reads the bounce addresses of one configuration.
#[derive(Debug, Clone)]
pub struct BounceAddresses {
    local: String,
    domain: String,
    key: SigningKey,
}

/// What a bounce address names: an outbox message, and the signature
/// that must match its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceToken {
    pub message_id: i64,
    signature: String,
}

impl BounceAddresses {
    /// None when `mail.bounce_local` is empty (bounce addresses are off).
    pub fn new(mail: &MailConfig, key: SigningKey) -> Option<Self> {
        (!mail.bounce_local.is_empty()).then(|| Self {
            local: mail.bounce_local.to_ascii_lowercase(),
            domain: mail.domain.to_ascii_lowercase(),
            key,
        })
    }

    fn signature(&self, message_id: i64, recipient: &str) -> String {
        let mut s = self.key.sign(
            PURPOSE,
            &[&message_id.to_string(), &recipient.to_ascii_lowercase()],
        );
        s.truncate(SIGNATURE_DIGITS);
        s
    }

    /// The envelope sender for outbox message `message_id` to `recipient`.
    pub fn for_message(&self, message_id: i64, recipient: &str) -> String {
        format!(
            "{}+{message_id}-{}@{}",
            self.local,
            self.signature(message_id, recipient),
            self.domain
        )
    }

    /// Whether `address` is one of ours (signed or not): mail to it is a
    /// delivery report, never a person's reply.
    pub fn is_bounce_address(mail: &MailConfig, address: &str) -> bool {
        if mail.bounce_local.is_empty() {
            return false;
        }
        let address = address.to_ascii_lowercase();
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let bounce = mail.bounce_local.to_ascii_lowercase();
        domain == mail.domain.to_ascii_lowercase()
            && (local == bounce
                || local
                    .strip_prefix(&bounce)
                    .is_some_and(|tag| tag.starts_with('+')))
    }

    /// The token of the first bounce address of ours among `recipients`.
    pub fn token_in(&self, recipients: &[String]) -> Option<BounceToken> {
        recipients.iter().find_map(|r| self.token(r))
    }

    fn token(&self, address: &str) -> Option<BounceToken> {
        let address = address.trim().to_ascii_lowercase();
        let (local, domain) = address.rsplit_once('@')?;
        if domain != self.domain {
            return None;
        }
        let tag = local.strip_prefix(&self.local)?.strip_prefix('+')?;
        let (id, signature) = tag.split_once('-')?;
        if signature.len() != SIGNATURE_DIGITS || !signature.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(BounceToken {
            message_id: id.parse().ok().filter(|id: &i64| *id > 0)?,
            signature: signature.to_string(),
        })
    }

    /// Whether `token` was made by us for a message to `recipient`.
    pub fn verify(&self, token: &BounceToken, recipient: &str) -> bool {
        same_secret(
            &self.signature(token.message_id, recipient),
            &token.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses() -> BounceAddresses {
        let mut mail = crate::config::Config::embedded().unwrap().mail;
        mail.domain = "ogp.office.example".into();
        BounceAddresses::new(&mail, SigningKey::fixed(b"a key for the tests of verp")).unwrap()
    }

    #[test]
    fn an_address_names_its_message_and_verifies_only_for_its_recipient() {
        let b = addresses();
        let address = b.for_message(42, "Arta@CSO.example.org");
        assert!(address.starts_with("bounce+42-"), "{address}");
        assert!(address.ends_with("@ogp.office.example"));
        // Relays may fold the case of the whole address.
        let token = b
            .token_in(&["someone@else.example".into(), address.to_uppercase()])
            .unwrap();
        assert_eq!(token.message_id, 42);
        assert!(b.verify(&token, "arta@cso.example.org"));
        assert!(!b.verify(&token, "other@cso.example.org"));
        // Another id with the same signature is not ours.
        let forged = b.token(&address.replace("+42-", "+43-")).unwrap();
        assert!(!b.verify(&forged, "arta@cso.example.org"));
    }

    #[test]
    fn malformed_bounce_addresses_name_nothing() {
        let b = addresses();
        for address in [
            "bounce@ogp.office.example",
            "bounce+42@ogp.office.example",
            "bounce+x-0123456789abcdef@ogp.office.example",
            "bounce+0-0123456789abcdef@ogp.office.example",
            "bounce+42-0123@ogp.office.example",
            "bounce+42-0123456789abcdef@elsewhere.example",
            "consult+42-0123456789abcdef@ogp.office.example",
        ] {
            assert_eq!(b.token(address), None, "{address}");
        }
    }
}
