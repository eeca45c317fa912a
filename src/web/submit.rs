//! Sending the form. A submission becomes a message, as an email reply is,
//! and goes through the one intake: the same numbering, receipt, loop and
//! holding-pen rules, follow-ups and late marking. Through a CSO's personal
//! link it is that CSO's proposal at once; from anyone else it waits until
//! they click the link emailed to the address they gave.

use std::net::SocketAddr;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{ConnectInfo, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::WebState;
use super::form::{FormError, Submitted};
use super::guard::{TokenCheck, check, cross_site};
use super::mark::WebMark;
use super::pages::Page;
use super::site::{LangQuery, Target, language, taking};
use super::views::{ErrorLink, ReceiptPage, TitleOnly};
use super::visitor::wait_for_confirmation;
use crate::domain::{Language, ReceiptNo};

/// A form's body as axum hands it over: not multipart at all (a client
/// that is not our page) is refused with a page, like any other bad form.
type Form = Result<Multipart, MultipartRejection>;

/// Everything a POST checks before its fields: where it came from, its
/// size, the honeypot, the form's token and the rate limits. Ok: the form
/// as typed, its language and its nonce.
async fn admit(
    state: &WebState,
    target: &Target,
    peer: SocketAddr,
    headers: &HeaderMap,
    form: Form,
) -> Result<(Submitted, usize, Language, String), Response> {
    let fallback = target.cso().map_or(Language::Sq, |c| c.record.language);
    let w = |lang, k: &str| state.pages.word(lang, k);
    if cross_site(headers, &state.app.config.server.public_url) {
        tracing::warn!(%peer, "a cross-site form post was refused");
        return Err(state.notice(
            StatusCode::FORBIDDEN,
            fallback,
            "refused_heading",
            vec![w(fallback, "refused_text")],
            None,
        ));
    }
    let read = match form {
        Ok(form) => Submitted::read(form, state.app.config.form.max_attachments).await,
        Err(e) => Err(FormError::Malformed(e.body_text())),
    };
    let (typed, files_seen) = match read {
        Ok(read) => read,
        Err(FormError::TooLarge) => {
            let mb = state.app.config.form.max_bytes / (1024 * 1024);
            return Err(state.notice(
                StatusCode::PAYLOAD_TOO_LARGE,
                fallback,
                "too_large_heading",
                vec![
                    format!("{} {mb} MB.", w(fallback, "too_large_text")),
                    w(fallback, "too_large_more"),
                ],
                None,
            ));
        }
        Err(FormError::Malformed(why)) => {
            tracing::info!(%peer, why, "a form that could not be read was refused");
            return Err(state.notice(
                StatusCode::BAD_REQUEST,
                fallback,
                "refused_heading",
                vec![w(fallback, "refused_text")],
                None,
            ));
        }
    };
    let lang = typed.lang.unwrap_or(fallback);
    if !typed.honeypot.is_empty() {
        tracing::warn!(%peer, "a form with its hidden field filled in was refused");
        return Err(state.notice(
            StatusCode::UNPROCESSABLE_ENTITY,
            lang,
            "refused_heading",
            vec![w(lang, "refused_text")],
            None,
        ));
    }
    let problem = match check(
        &state.signing,
        &typed.token,
        &target.action(),
        state.app.now().timestamp_millis(),
        &state.app.config.form,
    ) {
        TokenCheck::Fine(nonce) => Ok(nonce),
        TokenCheck::TooFast => Err("err_form_fast"),
        TokenCheck::TooOld => Err("err_form_old"),
        TokenCheck::Unknown => Err("err_form_token"),
    };
    let nonce = match problem {
        Ok(nonce) => nonce,
        Err(key) => {
            tracing::info!(%peer, why = key, "a form was refused for its timing or token; what was typed is shown again");
            let errors = [ErrorLink {
                field: "form-heading".into(),
                message: w(lang, key),
            }];
            return Err(state
                .form_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    target,
                    lang,
                    &typed,
                    &errors,
                )
                .await);
        }
    };
    let link = match target {
        Target::Personal { key, .. } => Some(key.to_string()),
        Target::Public { .. } => None,
    };
    if !state.limits.allow(peer.ip(), link.as_deref()) {
        tracing::warn!(%peer, "form posts over the hourly limit");
        let errors = [ErrorLink {
            field: "form-heading".into(),
            message: w(lang, "err_rate"),
        }];
        let mut response = state
            .form_page(StatusCode::TOO_MANY_REQUESTS, target, lang, &typed, &errors)
            .await;
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("3600"),
        );
        return Err(response);
    }
    Ok((typed, files_seen, lang, nonce))
}

pub async fn submit_personal(
    State(state): State<WebState>,
    Path(key): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let target = match state.personal(&key, Language::Sq).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    submit(state, target, peer, headers, form).await
}

pub async fn submit_public(
    State(state): State<WebState>,
    Path(reference): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let lang = language(None, &headers, None);
    let target = match state.public(&reference, lang).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    submit(state, target, peer, headers, form).await
}

async fn submit(
    state: WebState,
    target: Target,
    peer: SocketAddr,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let (typed, files_seen, lang, nonce) = match admit(&state, &target, peer, &headers, form).await
    {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let key = match &target {
        Target::Personal { key, .. } => Some(key.clone()),
        Target::Public { .. } => None,
    };
    if taking(target.consultation()) != Some(true) {
        return state.closed(lang, target.consultation(), key.as_ref());
    }
    let errors = state.validate(lang, &typed, files_seen, &target);
    let Some(from) = typed.address().filter(|_| errors.is_empty()) else {
        return state
            .form_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &target,
                lang,
                &typed,
                &errors,
            )
            .await;
    };
    let config = &state.app.config;
    let message_id = format!("web.{nonce}@{}", config.mail.domain);
    let spec = &target.consultation().spec;
    let mark = WebMark {
        consultation: spec.reference.clone(),
        lang,
        no_publish: typed.no_publish,
        visitor: key.is_none(),
        organisation: Some(typed.organisation.trim())
            .filter(|o| key.is_none() && !o.is_empty())
            .map(str::to_string),
    };
    let sender = state.app.sender();
    let to = match &key {
        Some(key) => sender.reply_address(key),
        None => sender.consultation_address(),
    };
    let subject = format!("{}: {}", spec.reference, spec.title().get(lang));
    let compose = || {
        let body = state.proposal_text(lang, &typed, &target);
        let name = typed.one_line_name();
        state.compose(
            &from,
            &name,
            &to,
            &subject,
            body,
            &mark,
            &message_id,
            &typed.files,
        )
    };
    if key.is_some() {
        return state.take_in(&target, lang, &message_id, compose).await;
    }
    // A visitor's form sent again waits once (its nonce), so it is not
    // looked up among stored messages here.
    let raw = match compose() {
        Ok(raw) => raw,
        Err(e) => return state.failed(lang, &e),
    };
    wait_for_confirmation(&state, &target, lang, &typed, from, nonce, raw).await
}

/// An addition to an earlier proposal, through the CSO's personal link.
pub async fn add(
    State(state): State<WebState>,
    Path(key): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let target = match state.personal(&key, Language::Sq).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    let (typed, _, lang, nonce) = match admit(&state, &target, peer, &headers, form).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Target::Personal { record, .. } = &target else {
        return state.unknown(lang);
    };
    // Only to this CSO's own proposals in this consultation.
    let ours = match state
        .app
        .store
        .sent_proposals(record.consultation_id, record.cso_id)
        .await
    {
        Ok(sent) => sent.iter().any(|s| s.receipt_no == typed.receipt_no),
        Err(e) => return state.failed(lang, &e),
    };
    if !ours {
        return state.unknown(lang);
    }
    if typed.addition.trim().is_empty()
        || typed.addition.chars().count() > state.app.config.form.max_field_chars
    {
        let errors = [ErrorLink {
            field: format!("addition-{}", typed.receipt_no),
            message: state.pages.word(lang, "err_add_empty"),
        }];
        return state
            .form_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &target,
                lang,
                &Submitted {
                    email: record.address.to_string(),
                    ..Submitted::default()
                },
                &errors,
            )
            .await;
    }
    let message_id = format!(
        "web.{nonce}.{}@{}",
        typed.receipt_no.to_ascii_lowercase(),
        state.app.config.mail.domain
    );
    let spec = &target.consultation().spec;
    let mark = WebMark {
        consultation: spec.reference.clone(),
        lang,
        no_publish: false,
        visitor: false,
        organisation: None,
    };
    // No reply key in the address: the receipt number in the subject makes
    // it an addition to that proposal, as a reply to the receipt does.
    let to = state.app.sender().consultation_address();
    let subject = format!("Re: [{}] {}", typed.receipt_no, spec.title().get(lang));
    let text = typed.addition.clone() + "\n";
    let compose = || {
        state.compose(
            &record.address,
            "",
            &to,
            &subject,
            text,
            &mark,
            &message_id,
            &[],
        )
    };
    state.take_in(&target, lang, &message_id, compose).await
}

/// The receipt page a submission redirects to.
pub async fn receipt(
    State(state): State<WebState>,
    Path((key, receipt_no)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let first = language(q.lang.as_deref(), &headers, None);
    let target = match state.personal(&key, first).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    let lang = language(
        q.lang.as_deref(),
        &headers,
        target.cso().map(|c| c.record.language),
    );
    let Target::Personal { record, key, .. } = &target else {
        return state.unknown(lang);
    };
    let Ok(receipt) = ReceiptNo::parse(&receipt_no) else {
        return state.unknown(lang);
    };
    let proposal = match state.app.store.proposal_by_receipt(&receipt).await {
        Ok(Some(p))
            if p.consultation_id == record.consultation_id && p.cso_id == Some(record.cso_id) =>
        {
            p
        }
        Ok(_) => return state.unknown(lang),
        Err(e) => return state.failed(lang, &e),
    };
    receipt_page(
        &state,
        lang,
        target.consultation(),
        &receipt,
        Some(proposal.from_address),
        Some(format!("/p/{key}?lang={}", lang.code())),
    )
}

pub(super) fn receipt_page(
    state: &WebState,
    lang: Language,
    c: &crate::consultation::Consultation,
    receipt: &ReceiptNo,
    email: Option<String>,
    back_url: Option<String>,
) -> Response {
    let today = state.app.today();
    let heading = state.pages.word(lang, "receipt_heading");
    let chrome = state.chrome(
        lang,
        heading.clone(),
        &back_url.clone().unwrap_or_else(|| "/".into()),
    );
    let content = ReceiptPage {
        heading,
        receipt_no: receipt.to_string(),
        consultation: TitleOnly {
            title: c.spec.title().get(lang).to_string(),
        },
        email,
        late: c.spec.closes_on < today,
        back_url,
    };
    state.page(StatusCode::OK, Page::Receipt, lang, &chrome, &content)
}
