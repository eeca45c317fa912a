//! Sending the form. A submission becomes a message, as an email reply is,
//! and goes through the one intake: the same numbering, receipt, loop and
//! holding-pen rules, follow-ups and late marking. Through a CSO's personal
//! link it is that CSO's proposal at once; from anyone else it waits until
//! they click the link emailed to the address they gave.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, Message, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use super::WebState;
use super::form::{FormError, OGP_VALUES, Submitted};
use super::guard::{TokenCheck, check, cross_site};
use super::mark::{HEADER, WebMark};
use super::pages::Page;
use super::site::{LangQuery, Target, language, taking};
use super::views::{Button, ErrorLink, NoticePage, ReceiptPage, TitleOnly};
use crate::domain::{EmailAddress, EmailFor, EmailKind, Language, ReceiptNo};
use crate::intake::{IntakeError, Outcome};
use crate::outbound::email::{Confirmation, Context, Named};
use crate::outbound::message::{self, Outgoing};
use crate::outbound::outbox::NewMessage;
use crate::signing::hex;
use crate::store::records::NewPending;

const WEB_MARK: HeaderName = HeaderName::new_from_ascii_str(HEADER);
const CONTENT_LANGUAGE: HeaderName = HeaderName::new_from_ascii_str("Content-Language");

impl WebState {
    /// Checks a read form field by field; the errors in page order.
    fn validate(
        &self,
        lang: Language,
        s: &Submitted,
        files_seen: usize,
        target: &Target,
    ) -> Vec<ErrorLink> {
        let w = |k: &str| self.pages.word(lang, k);
        let max = self.app.config.form.max_field_chars;
        let mut errors = Vec::new();
        let mut text = |field: &str, value: &str, required: bool, limit: usize| {
            if required && value.trim().is_empty() {
                errors.push(ErrorLink {
                    field: field.into(),
                    message: w("err_required"),
                });
            } else if value.chars().count() > limit {
                errors.push(ErrorLink {
                    field: field.into(),
                    message: format!("{} {limit}.", w("err_too_long")),
                });
            }
        };
        text("problem", &s.problem, true, max);
        text("commitment", &s.commitment, true, max);
        text("how", &s.how, true, max);
        for (n, comment) in &s.drafts {
            text(&format!("draft-{n}"), comment, false, max);
        }
        text("name", &s.name, true, 200);
        text("organisation", &s.organisation, false, 300);
        if s.values.is_empty() {
            errors.insert(
                3.min(errors.len()),
                ErrorLink {
                    field: "values".into(),
                    message: w("err_values"),
                },
            );
        }
        if !s.email.trim().is_empty() && s.address().is_none() || s.email.trim().is_empty() {
            errors.push(ErrorLink {
                field: "email".into(),
                message: if s.email.trim().is_empty() {
                    w("err_required")
                } else {
                    w("err_email")
                },
            });
        }
        let max_files = self.app.config.form.max_attachments;
        if files_seen > max_files {
            errors.push(ErrorLink {
                field: "attachments".into(),
                message: format!("{} {max_files}.", w("err_too_many_files")),
            });
        }
        // Comments only on drafts the consultation has.
        let drafts = &target.consultation().spec.drafts;
        errors.retain(|e| {
            e.field
                .strip_prefix("draft-")
                .and_then(|n| n.parse::<u32>().ok())
                .is_none_or(|n| drafts.iter().any(|d| d.number == n))
        });
        errors
    }

    /// The text a proposal is recorded with: each answer under its question,
    /// in the language the form was filled in.
    fn proposal_text(&self, lang: Language, s: &Submitted, target: &Target) -> String {
        let w = |k: &str| self.pages.word(lang, k);
        let mut out = String::new();
        for (label, value) in [
            ("problem_label", &s.problem),
            ("commitment_label", &s.commitment),
            ("how_label", &s.how),
        ] {
            out.push_str(&format!("{}\n{}\n\n", w(label), value.trim_end()));
        }
        let values: Vec<String> = OGP_VALUES
            .iter()
            .filter(|(v, _)| s.values.contains(v))
            .map(|(_, label)| w(label))
            .collect();
        out.push_str(&format!("{}\n{}\n\n", w("values_label"), values.join(", ")));
        for d in &target.consultation().spec.drafts {
            if let Some(comment) = s.drafts.get(&d.number).filter(|c| !c.trim().is_empty()) {
                out.push_str(&format!(
                    "{} {}. {}\n{}\n\n",
                    w("draft_comments"),
                    d.number,
                    d.title,
                    comment.trim_end()
                ));
            }
        }
        if !s.organisation.trim().is_empty() {
            out.push_str(&format!(
                "{}: {}\n",
                w("organisation_label"),
                s.organisation.trim()
            ));
        }
        if s.no_publish {
            out.push_str(&format!("{}\n", w("no_publish")));
        }
        out.trim_end().to_string() + "\n"
    }

    /// The message a submission becomes.
    #[allow(clippy::too_many_arguments)]
    fn compose(
        &self,
        from: &EmailAddress,
        name: &str,
        to: &str,
        subject: &str,
        body: String,
        mark: &WebMark,
        message_id: &str,
        files: &[super::form::Upload],
    ) -> Result<Vec<u8>, String> {
        let key = self.signing.as_ref();
        let from_box = Mailbox::new(
            (!name.is_empty()).then(|| name.to_string()),
            from.as_str().parse().map_err(|e| format!("{e}"))?,
        );
        let builder = Message::builder()
            .from(from_box)
            .to(to.parse().map_err(|e| format!("{e}"))?)
            .subject(subject)
            .message_id(Some(format!("<{message_id}>")))
            .raw_header(HeaderValue::new(
                WEB_MARK,
                mark.header_value(key, message_id, from.as_str()),
            ))
            .raw_header(HeaderValue::new(CONTENT_LANGUAGE, mark.lang.code().into()));
        let text = SinglePart::plain(body);
        let message = if files.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for f in files {
                let kind = ContentType::parse(&f.content_type).unwrap_or_else(|_| {
                    ContentType::parse("application/octet-stream").expect("a valid type")
                });
                parts =
                    parts.singlepart(Attachment::new(f.name.clone()).body(f.bytes.clone(), kind));
            }
            builder.multipart(parts)
        }
        .map_err(|e| e.to_string())?;
        Ok(message.formatted())
    }

    fn receipt_url(&self, target: &Target, receipt_no: &str, lang: Language) -> String {
        format!("{}/r/{receipt_no}?lang={}", target.action(), lang.code())
    }

    /// What a message's outcome shows the person who sent it.
    async fn answer(
        &self,
        target: &Target,
        lang: Language,
        outcome: Result<Outcome, IntakeError>,
    ) -> Response {
        let receipt = match outcome {
            Ok(Outcome::Proposal { receipt_no, .. } | Outcome::FollowUp { receipt_no, .. }) => {
                Some(receipt_no)
            }
            Ok(Outcome::Duplicate { id }) => match self.app.store.receipt_for_message(id).await {
                Ok(r) => r,
                Err(e) => return self.failed(lang, &e),
            },
            Ok(Outcome::Held { .. } | Outcome::Ignored { .. }) => None,
            Err(IntakeError::NotStored(e)) => return self.failed(lang, &e),
            Err(e) => {
                tracing::warn!(error = %e, "a web-form message is stored; processing it failed and is retried");
                return self.notice(
                    StatusCode::ACCEPTED,
                    lang,
                    "stored_heading",
                    vec![self.pages.word(lang, "stored_text")],
                    None,
                );
            }
        };
        match receipt {
            // A visitor has no personal page to come back to: the receipt
            // is shown at once (the confirmation link shows it again).
            Some(r) if matches!(target, Target::Public { .. }) => {
                visitor_receipt(self, lang, target, &r, None)
            }
            Some(r) => Redirect::to(&self.receipt_url(target, &r, lang)).into_response(),
            None => self.notice(
                StatusCode::ACCEPTED,
                lang,
                "held_heading",
                vec![self.pages.word(lang, "held_text")],
                None,
            ),
        }
    }
}

/// Everything a POST checks before its fields: where it came from, its
/// size, the honeypot, the form's token and the rate limits. Ok: the form
/// as typed, its language and its nonce.
async fn admit(
    state: &WebState,
    target: &Target,
    peer: SocketAddr,
    headers: &HeaderMap,
    form: Multipart,
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
    let (typed, files_seen) =
        match Submitted::read(form, state.app.config.form.max_attachments).await {
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
        Utc::now().timestamp(),
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
    form: Multipart,
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
    form: Multipart,
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
    form: Multipart,
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
    // The same form sent again (a double click, a reload, the back button):
    // the proposal it already made.
    match state.app.store.inbound_with_message_id(&message_id).await {
        Ok(Some(id)) => {
            return state
                .answer(&target, lang, Ok(Outcome::Duplicate { id }))
                .await;
        }
        Ok(None) => {}
        Err(e) => return state.failed(lang, &e),
    }
    let spec = &target.consultation().spec;
    let mark = WebMark {
        consultation: spec.reference.clone(),
        lang,
        no_publish: typed.no_publish,
        visitor: key.is_none(),
    };
    let to = match &key {
        Some(key) => state.app.sender().reply_address(key),
        None => format!("{}@{}", config.mail.reply_local, config.mail.domain),
    };
    let subject = format!("{}: {}", spec.reference, spec.title().get(lang));
    let body = state.proposal_text(lang, &typed, &target);
    let raw = match state.compose(
        &from,
        &typed.one_line_name(),
        &to,
        &subject,
        body,
        &mark,
        &message_id,
        &typed.files,
    ) {
        Ok(raw) => raw,
        Err(e) => return state.failed(lang, &e),
    };
    match key {
        Some(_) => {
            let outcome = state.app.intake().accept(&raw, "web").await;
            state.answer(&target, lang, outcome).await
        }
        None => wait_for_confirmation(&state, &target, lang, &typed, from, nonce, raw).await,
    }
}

/// A visitor's proposal waits, as the message it will become, and they get
/// the link that records it.
async fn wait_for_confirmation(
    state: &WebState,
    target: &Target,
    lang: Language,
    typed: &Submitted,
    from: EmailAddress,
    nonce: String,
    raw: Vec<u8>,
) -> Response {
    let config = &state.app.config;
    let now = Utc::now();
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
    let token_hash = hex(&Sha256::digest(token.as_bytes()));
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

/// An addition to an earlier proposal, through the CSO's personal link.
pub async fn add(
    State(state): State<WebState>,
    Path(key): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Multipart,
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
    match state.app.store.inbound_with_message_id(&message_id).await {
        Ok(Some(id)) => {
            return state
                .answer(&target, lang, Ok(Outcome::Duplicate { id }))
                .await;
        }
        Ok(None) => {}
        Err(e) => return state.failed(lang, &e),
    }
    let spec = &target.consultation().spec;
    let mark = WebMark {
        consultation: spec.reference.clone(),
        lang,
        no_publish: false,
        visitor: false,
    };
    // No reply key in the address: the receipt number in the subject makes
    // it an addition to that proposal, as a reply to the receipt does.
    let to = format!(
        "{}@{}",
        state.app.config.mail.reply_local, state.app.config.mail.domain
    );
    let subject = format!("Re: [{}] {}", typed.receipt_no, spec.title().get(lang));
    let raw = match state.compose(
        &record.address,
        "",
        &to,
        &subject,
        typed.addition.clone() + "\n",
        &mark,
        &message_id,
        &[],
    ) {
        Ok(raw) => raw,
        Err(e) => return state.failed(lang, &e),
    };
    let outcome = state.app.intake().accept(&raw, "web").await;
    state.answer(&target, lang, outcome).await
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

fn receipt_page(
    state: &WebState,
    lang: Language,
    c: &crate::consultation::Consultation,
    receipt: &ReceiptNo,
    email: Option<String>,
    back_url: Option<String>,
) -> Response {
    let today = Utc::now()
        .with_timezone(&state.app.config.office.time_zone)
        .date_naive();
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
    let token_hash = hex(&Sha256::digest(token.as_bytes()));
    let pending = match state.app.store.pending(&token_hash).await {
        Ok(Some(p)) => p,
        Ok(None) => return state.unknown(lang),
        Err(e) => return state.failed(lang, &e),
    };
    let consultation = match state.app.store.consultations().await {
        Ok(all) => all.into_iter().find(|c| c.id == pending.consultation_id),
        Err(e) => return state.failed(lang, &e),
    };
    let Some(consultation) = consultation else {
        return state.unknown(lang);
    };
    let target = Target::Public { consultation };
    // Confirmed already (a second click): the receipt it gave.
    let receipt_of = |id| async move { state.app.store.receipt_for_message(id).await };
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
    if pending.expires_at < Utc::now() {
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
    let outcome = state.app.intake().accept(&pending.raw, "web").await;
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

fn visitor_receipt(
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
