//! The link in the copy of a receipt that a CSO's registered address gets
//! when someone else sent a proposal in its name: following it (and
//! pressing the button, so a mail scanner cannot) marks the proposal as
//! disowned, for the POC and the LFP to look at. The link is signed with
//! the receipt number, so only the copy's reader has it.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::WebState;
use super::guard::cross_site;
use super::pages::Page;
use super::site::{LangQuery, language};
use super::views::{Button, NoticePage};
use crate::signing::SigningKey;

/// The disown link of `receipt_no`.
pub fn url(public_url: &str, key: &SigningKey, receipt_no: &str) -> String {
    format!(
        "{}/disown/{receipt_no}/{}",
        public_url.trim_end_matches('/'),
        key.sign("disown", &[receipt_no])
    )
}

pub async fn show(
    State(state): State<WebState>,
    Path((receipt_no, signature)): Path<(String, String)>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(query.lang.as_deref(), &headers, None);
    if !state.signing.verify("disown", &[&receipt_no], &signature) {
        return state.unknown(lang);
    }
    let heading = state.pages.word(lang, "disown_heading");
    let chrome = state.chrome(
        lang,
        heading.clone(),
        &format!("/disown/{receipt_no}/{signature}"),
    );
    let content = NoticePage {
        heading,
        paragraphs: vec![format!(
            "{} {receipt_no}",
            state.pages.word(lang, "disown_text")
        )],
        link: None,
        button: Some(Button {
            action: format!("/disown/{receipt_no}/{signature}?lang={}", lang.code()),
            text: state.pages.word(lang, "disown_button"),
        }),
    };
    state.page(StatusCode::OK, Page::Notice, lang, &chrome, &content)
}

pub async fn confirm(
    State(state): State<WebState>,
    Path((receipt_no, signature)): Path<(String, String)>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(query.lang.as_deref(), &headers, None);
    if cross_site(&headers, &state.app.config.server.public_url) {
        return state.forbidden(lang);
    }
    if !state.signing.verify("disown", &[&receipt_no], &signature) {
        return state.unknown(lang);
    }
    match state.app.store.disown(&receipt_no).await {
        Ok(first) => {
            if first {
                tracing::warn!(receipt_no, "a CSO disowned a proposal sent in its name");
            }
            state.notice(
                StatusCode::OK,
                lang,
                "disowned_heading",
                vec![state.pages.word(lang, "disowned_text")],
                None,
            )
        }
        Err(e) => state.failed(lang, &e),
    }
}
