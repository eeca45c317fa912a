//! A proposal from someone not in the registry: it waits, as the message it
//! will become, until they click the link emailed to the address they gave
//! (a page with one button: mail scanners follow links). A second click
//! shows the same receipt.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Duration;

use super::WebState;
use super::form::Submitted;
use super::guard::cross_site;
use super::pages::Page;
use super::site::{LangQuery, Target, language};
use super::submit::receipt_page;
use super::views::{Button, ErrorLink, NoticePage};
use crate::domain::{EmailAddress, EmailFor, EmailKind, Language, ReceiptNo};
use crate::intake::Outcome;
use crate::outbound::email::{Confirmation, Context, Named};
use crate::outbound::message::{self, Outgoing};
use crate::outbound::outbox::NewMessage;
use crate::signing::{hex, sha256_hex};
use crate::store::records::NewPending;

/// A visitor's proposal waits, as the message it will become, and they get
/// the link that records it.
pub(super) async fn wait_for_confirmation(
    state: &WebState,
    target: &Target,
    lang: Language,
    typed: &Submitted,
    from: EmailAddress,
    nonce: String,
    raw: Vec<u8>,
) -> Response {
    let config = &state.app.config;
    let now = state.app.now();
    let w = |k: &str| state.pages.word(lang, k);
    match state
        .app
        .store
        .pending_count(from.as_str(), now - Duration::days(1))
        .await
    {
        Ok(n) if n >= u64::from(config.form.confirmations_per_address_per_day) => {
            let errors = [ErrorLink {
                field: "form-heading".into(),
                message: w("err_rate"),
            }];
            return state
                .form_page(StatusCode::TOO_MANY_REQUESTS, target, lang, typed, &errors)
                .await;
        }
        Ok(_) => {}
        Err(e) => return state.failed(lang, &e),
    }
    let token = hex(&rand::random::<[u8; 24]>());
    let token_hash = sha256_hex(token.as_bytes());
    let hours = config.form.confirm_link_hours;
    let pending = NewPending {
        nonce,
        token_hash: token_hash.clone(),
        consultation_id: target.consultation().id,
        address: from.to_string(),
        raw,
        created_at: now,
        expires_at: now + Duration::hours(i64::try_from(hours).unwrap_or(48)),
    };
    let sent_page = || {
        state.notice(
            StatusCode::OK,
            lang,
            "confirm_sent_heading",
            vec![
                format!("{} {from}.", w("confirm_sent_text")),
                format!("{} {hours}.", w("confirm_sent_more")),
            ],
            None,
        )
    };
    match state.app.store.insert_pending(&pending).await {
        Ok(true) => {}
        // The same form again: its link is on its way already.
        Ok(false) => return sent_page(),
        Err(e) => return state.failed(lang, &e),
    }
    let spec = &target.consultation().spec;
    let base = config.server.public_url.trim_end_matches('/');
    let office = config.office.name.get(lang);
    let context = Context::Confirmation(Confirmation {
        office: Named { name: office },
        name: &typed.one_line_name(),
        consultation: Named {
            name: spec.title().get(lang),
        },
        link: format!("{base}/confirm/{token}?lang={}", lang.code()),
        hours,
    });
    let built = state
        .app
        .templates
        .render(lang, &context)
        .map_err(|e| e.to_string())
        .and_then(|rendered| {
            let sender = state.app.sender();
            let message_id = format!(
                "confirm.{}@{}",
                hex(&rand::random::<[u8; 12]>()),
                config.mail.domain
            );
            message::build(
                &Outgoing {
                    from_name: office,
                    from: &sender.from(),
                    to_name: &typed.one_line_name(),
                    to: &from,
                    reply_to: None,
                    message_id: &message_id,
                    in_reply_to: None,
                    auto_submitted: "auto-replied",
                    rendered: &rendered,
                    list: None,
                    attachments: &[],
                },
                state.app.dkim.as_deref(),
            )
            .map_err(|e| e.to_string())
        });
    let bytes = match built {
        Ok(b) => b,
        Err(e) => return state.failed(lang, &e),
    };
    let message = NewMessage {
        idempotency_key: EmailFor::Confirmation {
            token_hash: &token_hash,
        }
        .idempotency_key(),
        kind: EmailKind::Confirmation,
        recipient: from.clone(),
        envelope_from: String::new(),
        consultation_id: Some(target.consultation().id),
        cso_id: None,
        message: bytes,
        reply_key: None,
    };
    if let Err(e) = state
        .app
        .store
        .enqueue(std::slice::from_ref(&message))
        .await
    {
        return state.failed(lang, &e);
    }
    sent_page()
}

/// The emailed link: a page with one button (mail scanners follow links,
/// and must not confirm anything by doing so).
pub async fn confirm_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(q.lang.as_deref(), &headers, None);
    confirmation(&state, &token, lang, false).await
}

pub async fn confirm(
    State(state): State<WebState>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(q.lang.as_deref(), &headers, None);
    if cross_site(&headers, &state.app.config.server.public_url) {
        return state.notice(
            StatusCode::FORBIDDEN,
            lang,
            "refused_heading",
            vec![state.pages.word(lang, "refused_text")],
            None,
        );
    }
    confirmation(&state, &token, lang, true).await
}

async fn confirmation(state: &WebState, token: &str, lang: Language, confirm: bool) -> Response {
    let token_hash = sha256_hex(token.as_bytes());
    let pending = match state.app.store.pending(&token_hash).await {
        Ok(Some(p)) => p,
        Ok(None) => return state.unknown(lang),
        Err(e) => return state.failed(lang, &e),
    };
    let consultation = match state.consultations().await {
        Ok(all) => all
            .iter()
            .find(|c| c.id == pending.consultation_id)
            .cloned(),
        Err(e) => return state.failed(lang, &e),
    };
    let Some(consultation) = consultation else {
        return state.unknown(lang);
    };
    let target = Target::Public { consultation };
    // Confirmed already (a second click): the receipt it gave.
    let receipt_of = |id| async move { state.app.store.receipt_of_message(id).await };
    if let Some(id) = pending.inbound_id {
        return match receipt_of(id).await {
            Ok(Some(r)) => visitor_receipt(state, lang, &target, &r, Some(&pending.address)),
            Ok(None) => state.notice(
                StatusCode::OK,
                lang,
                "held_heading",
                vec![state.pages.word(lang, "held_text")],
                None,
            ),
            Err(e) => state.failed(lang, &e),
        };
    }
    if pending.expires_at < state.app.now() {
        return state.notice(
            StatusCode::GONE,
            lang,
            "confirm_heading",
            vec![state.pages.word(lang, "confirm_expired")],
            None,
        );
    }
    if !confirm {
        let heading = state.pages.word(lang, "confirm_heading");
        let chrome = state.chrome(lang, heading.clone(), &format!("/confirm/{token}"));
        let content = NoticePage {
            heading,
            paragraphs: vec![format!(
                "{} {}",
                state.pages.word(lang, "confirm_text"),
                target.consultation().spec.title().get(lang)
            )],
            link: None,
            button: Some(Button {
                action: format!("/confirm/{token}?lang={}", lang.code()),
                text: state.pages.word(lang, "confirm_button"),
            }),
        };
        return state.page(StatusCode::OK, Page::Notice, lang, &chrome, &content);
    }
    // Stored first, then marked: a crash between the two leaves a message
    // that the next click recognises as the same (intake's dedupe).
    let outcome = match state.intake.accept(pending.raw.clone()).await {
        Ok(outcome) => outcome,
        Err(e) => return state.failed(lang, &e),
    };
    let id = match &outcome {
        Ok(
            Outcome::Proposal { id, .. }
            | Outcome::Duplicate { id }
            | Outcome::Held { id, .. }
            | Outcome::Ignored { id, .. }
            | Outcome::FollowUp { id, .. },
        ) => Some(*id),
        Err(_) => None,
    };
    if let Some(id) = id
        && let Err(e) = state.app.store.pending_confirmed(&token_hash, id).await
    {
        tracing::warn!(error = %e, "a confirmed web-form proposal could not be marked; the next click finds it by its content");
    }
    match outcome {
        Ok(Outcome::Proposal { receipt_no, .. }) => {
            visitor_receipt(state, lang, &target, &receipt_no, Some(&pending.address))
        }
        other => state.answer(&target, lang, other).await,
    }
}

pub(super) fn visitor_receipt(
    state: &WebState,
    lang: Language,
    target: &Target,
    receipt_no: &str,
    email: Option<&str>,
) -> Response {
    match ReceiptNo::parse(receipt_no) {
        Ok(r) => receipt_page(
            state,
            lang,
            target.consultation(),
            &r,
            email.map(str::to_string),
            Some(format!("{}?lang={}", target.action(), lang.code())),
        ),
        Err(e) => state.failed(lang, &e),
    }
}
