//! Unsubscribing from consultation mail.
//!
//! GET shows a page with one button and changes nothing, because mail
//! scanners and link previewers follow links. POST unsubscribes at once:
//! from the button, or from the mail client's one-click request (RFC 8058),
//! which posts `List-Unsubscribe=One-Click` to the same address. Receipts for
//! the CSO's own proposals still go out: they are transactional.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::WebState;
use super::pages::Page;
use super::site::{LangQuery, language};
use super::views::{Button, NoticePage};
use crate::domain::{EmailAddress, Language, ReplyKey};
use crate::store::records::ReplyKeyRecord;

impl WebState {
    /// The key's record and its CSO's language.
    async fn unsubscribe_target(
        &self,
        key: &str,
        lang: Language,
    ) -> Result<(ReplyKeyRecord, Option<Language>), Response> {
        let Ok(key) = ReplyKey::parse(key) else {
            return Err(self.unknown(lang));
        };
        match self.app.store.reply_key(&key).await {
            Ok(Some(record)) => {
                let cso = self.app.store.cso(record.cso_id).await.ok().flatten();
                Ok((record, cso.map(|c| c.record.language)))
            }
            Ok(None) => Err(self.unknown(lang)),
            Err(e) => Err(self.failed(lang, &e)),
        }
    }

    async fn opted_out(&self, address: &EmailAddress) -> Result<bool, crate::store::StoreError> {
        Ok(self
            .app
            .store
            .address_statuses()
            .await?
            .iter()
            .any(|s| s.address.eq_ignore_ascii_case(address.as_str()) && s.opted_out_at.is_some()))
    }
}

pub async fn show(
    State(state): State<WebState>,
    Path(key): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let first = language(q.lang.as_deref(), &headers, None);
    let (record, cso_lang) = match state.unsubscribe_target(&key, first).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let lang = language(q.lang.as_deref(), &headers, cso_lang);
    let w = |k: &str| state.pages.word(lang, k);
    let office = state.app.config.office.name.get(lang).to_string();
    let already = match state.opted_out(&record.address).await {
        Ok(a) => a,
        Err(e) => return state.failed(lang, &e),
    };
    let heading = w(if already {
        "unsubscribed_heading"
    } else {
        "unsubscribe_heading"
    });
    let mut paragraphs = vec![
        format!("{} {}", w("unsubscribe_address"), record.address),
        format!("{} {office}.", w("unsubscribe_from")),
    ];
    if already {
        paragraphs.push(w("already_unsubscribed"));
    }
    paragraphs.push(w("unsubscribe_receipts"));
    let path = format!("/unsubscribe/{key}");
    let content = NoticePage {
        heading: heading.clone(),
        paragraphs,
        link: None,
        button: (!already).then(|| Button {
            action: format!("{path}?lang={}", lang.code()),
            text: w("unsubscribe_button"),
        }),
    };
    let chrome = state.chrome(lang, heading, &path);
    state.page(StatusCode::OK, Page::Notice, lang, &chrome, &content)
}

pub async fn confirm(
    State(state): State<WebState>,
    Path(key): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let first = language(q.lang.as_deref(), &headers, None);
    let (record, cso_lang) = match state.unsubscribe_target(&key, first).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let lang = language(q.lang.as_deref(), &headers, cso_lang);
    let source = if body.trim() == "List-Unsubscribe=One-Click" {
        "one-click from the mail client"
    } else {
        "unsubscribe page"
    };
    if let Err(e) = state.app.store.opt_out(&record.address, source).await {
        return state.failed(lang, &e);
    }
    tracing::info!(address = %record.address, source, "address opted out of consultation mail");
    state.notice(
        StatusCode::OK,
        lang,
        "unsubscribed_heading",
        vec![
            state.pages.word(lang, "unsubscribed_text"),
            state.pages.word(lang, "unsubscribe_receipts"),
        ],
        None,
    )
}
