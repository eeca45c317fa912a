//! The pages people read: the list of open consultations, a consultation
//! with its form (public, or through a CSO's personal link), the meeting's
//! calendar file, and the friendly pages for what went wrong.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::WebState;
use super::form::{OGP_VALUES, Submitted};
use super::pages::{Chrome, Page};
use super::views::*;
use crate::consultation::{Consultation, ConsultationState};
use crate::domain::{Language, ReplyKey};
use crate::outbound::outreach::{consultation_view, format_date, meeting_view};
use crate::registry::Cso;
use crate::store::records::ReplyKeyRecord;

#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

/// The page's language: the visitor's choice (`?lang=`), else the CSO's
/// for a personal link, else the browser's first of Albanian or English
/// (Accept-Language), else Albanian.
pub fn language(query: Option<&str>, headers: &HeaderMap, cso: Option<Language>) -> Language {
    if let Some(l) = query.and_then(|q| Language::parse(q).ok()) {
        return l;
    }
    if let Some(l) = cso {
        return l;
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut best: Option<(f32, Language)> = None;
    for item in accept.split(',').take(20) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = match tag
            .split('-')
            .next()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("sq") => Language::Sq,
            Some("en") => Language::En,
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(Language::Sq, |(_, l)| l)
}

fn other(lang: Language) -> Language {
    match lang {
        Language::Sq => Language::En,
        Language::En => Language::Sq,
    }
}

impl WebState {
    pub fn chrome(&self, lang: Language, title: impl Into<String>, path: &str) -> Chrome {
        let office = &self.app.config.office;
        Chrome {
            title: title.into(),
            office: office.name.get(lang).to_string(),
            office_email: office.email.to_string(),
            switch_url: format!("{path}?lang={}", other(lang).code()),
        }
    }

    /// A rendered page; a page that cannot be rendered (it was checked at
    /// start, so only a bug) is logged and replaced by a short plain one,
    /// never a blank.
    pub fn page(
        &self,
        status: StatusCode,
        page: Page,
        lang: Language,
        chrome: &Chrome,
        content: &impl serde::Serialize,
    ) -> Response {
        match self.pages.render(page, lang, chrome, content) {
            Ok(html) => (status, no_store(), Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "a page could not be rendered");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<!DOCTYPE html><html lang=\"sq\"><head><meta charset=\"utf-8\"><title>Gabim / Error</title></head><body><p>Diçka nuk shkoi. Provoni sërish pas pak.</p><p lang=\"en\">Something went wrong. Please try again shortly.</p></body></html>".to_string()),
                )
                    .into_response()
            }
        }
    }

    /// A page that says one thing: `heading` and `paragraphs` are keys of
    /// the page strings.
    pub fn notice(
        &self,
        status: StatusCode,
        lang: Language,
        heading: &str,
        paragraphs: Vec<String>,
        link: Option<Link>,
    ) -> Response {
        let heading = self.pages.word(lang, heading);
        let chrome = self.chrome(lang, heading.clone(), "/");
        let content = NoticePage {
            heading,
            paragraphs,
            link,
            button: None,
        };
        self.page(status, Page::Notice, lang, &chrome, &content)
    }

    pub fn unknown(&self, lang: Language) -> Response {
        self.notice(
            StatusCode::NOT_FOUND,
            lang,
            "unknown_heading",
            vec![self.pages.word(lang, "unknown_text")],
            Some(Link {
                href: format!("/?lang={}", lang.code()),
                text: self.pages.word(lang, "unknown_link"),
            }),
        )
    }

    pub fn failed(&self, lang: Language, what: &dyn std::fmt::Display) -> Response {
        tracing::error!(error = %what, "a page failed");
        self.notice(
            StatusCode::SERVICE_UNAVAILABLE,
            lang,
            "error_heading",
            vec![self.pages.word(lang, "error_text")],
            None,
        )
    }

    /// What a closed consultation's page says instead of the form.
    pub fn closed(&self, lang: Language, c: &Consultation, key: Option<&ReplyKey>) -> Response {
        let w = |k| self.pages.word(lang, k);
        let mut paragraphs = vec![
            format!(
                "{} {}.",
                w("closed_text"),
                format_date(lang, c.spec.closes_on)
            ),
            w("closed_next"),
        ];
        if let Some(key) = key {
            paragraphs.push(format!(
                "{} {}.",
                w("closed_write"),
                self.app.sender().reply_address(key)
            ));
        }
        self.notice(StatusCode::GONE, lang, "closed_heading", paragraphs, None)
    }
}

/// Pages with a person's link or typed words are never cached.
fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

/// Whose form a page shows: a CSO's (through its personal link) or anyone's.
pub enum Target {
    Personal {
        key: ReplyKey,
        record: ReplyKeyRecord,
        cso: Box<Cso>,
        consultation: Consultation,
    },
    Public {
        consultation: Consultation,
    },
}

impl Target {
    pub fn consultation(&self) -> &Consultation {
        match self {
            Target::Personal { consultation, .. } | Target::Public { consultation } => consultation,
        }
    }

    /// Where the form posts, and what its token is bound to.
    pub fn action(&self) -> String {
        match self {
            Target::Personal { key, .. } => format!("/p/{key}"),
            Target::Public { consultation } => format!("/c/{}", consultation.spec.reference),
        }
    }

    pub fn cso(&self) -> Option<&Cso> {
        match self {
            Target::Personal { cso, .. } => Some(cso),
            Target::Public { .. } => None,
        }
    }
}

/// Whether a consultation's form takes proposals: open (late ones are
/// taken and marked, as by email) and not closed by the POC.
pub fn taking(c: &Consultation) -> Option<bool> {
    match c.state {
        ConsultationState::Draft | ConsultationState::Scheduled => None,
        ConsultationState::Open => Some(true),
        ConsultationState::Closed => Some(false),
    }
}

impl WebState {
    /// The personal link's target, or the response that says why there is
    /// none.
    pub async fn personal(&self, key: &str, lang: Language) -> Result<Target, Response> {
        let Ok(key) = ReplyKey::parse(key) else {
            return Err(self.unknown(lang));
        };
        let store = &self.app.store;
        let record = match store.reply_key(&key).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(self.unknown(lang)),
            Err(e) => return Err(self.failed(lang, &e)),
        };
        let (consultations, cso) =
            match tokio::try_join!(self.consultations(), store.cso(record.cso_id)) {
                Ok(found) => found,
                Err(e) => return Err(self.failed(lang, &e)),
            };
        let (Some(consultation), Some(cso)) = (
            consultations
                .iter()
                .find(|c| c.id == record.consultation_id)
                .cloned(),
            cso,
        ) else {
            return Err(self.unknown(lang));
        };
        Ok(Target::Personal {
            key,
            record,
            cso: Box::new(cso),
            consultation,
        })
    }

    pub async fn public(&self, reference: &str, lang: Language) -> Result<Target, Response> {
        match self.consultations().await {
            Ok(all) => all
                .iter()
                .find(|c| c.spec.reference == reference && c.state.is_public())
                .map(|consultation| Target::Public {
                    consultation: consultation.clone(),
                })
                .ok_or_else(|| self.unknown(lang)),
            Err(e) => Err(self.failed(lang, &e)),
        }
    }

    /// The form's token: the one it was sent with, when that is ours and
    /// not too old (the person has been at the form since it was shown, and
    /// fixing one field must not count as too fast), else a new one.
    fn token_for(
        &self,
        key: &crate::signing::SigningKey,
        target: &Target,
        typed: &Submitted,
    ) -> String {
        let action = target.action();
        let now = self.app.now().timestamp_millis();
        match super::guard::check(key, &typed.token, &action, now, &self.app.config.form) {
            super::guard::TokenCheck::Fine(_) | super::guard::TokenCheck::TooFast => {
                typed.token.clone()
            }
            _ => super::guard::issue(key, &action, now),
        }
    }

    /// The consultation page with its form, filled with `typed` and showing
    /// `errors` next to their fields.
    pub async fn form_page(
        &self,
        status: StatusCode,
        target: &Target,
        lang: Language,
        typed: &Submitted,
        errors: &[ErrorLink],
    ) -> Response {
        let key = match self.app.signing_key().await {
            Ok(k) => k,
            Err(e) => return self.failed(lang, &e),
        };
        let token = self.token_for(key, target, typed);
        match self.form_content(target, lang, typed, errors, token).await {
            Ok((chrome, content)) => self.page(status, Page::Consultation, lang, &chrome, &content),
            Err(response) => response,
        }
    }

    /// A public consultation's page with a blank form, rendered at most
    /// once in [`super::CONSULTATIONS_FRESH`] per language (it is the page a
    /// shared link brings crowds to); each visitor gets their own token.
    pub async fn blank_public_page(&self, target: &Target, lang: Language) -> Response {
        let key = match self.app.signing_key().await {
            Ok(k) => k,
            Err(e) => return self.failed(lang, &e),
        };
        let id = (target.consultation().id, lang);
        let cached = self.blank_pages.read().ok().and_then(|pages| {
            pages
                .get(&id)
                .filter(|(at, _)| at.elapsed() < super::CONSULTATIONS_FRESH)
                .map(|(_, html)| html.clone())
        });
        let html = match cached {
            Some(html) => html,
            None => {
                let (chrome, content) = match self
                    .form_content(target, lang, &Submitted::default(), &[], TOKEN_SLOT.into())
                    .await
                {
                    Ok(found) => found,
                    Err(response) => return response,
                };
                let html = match self
                    .pages
                    .render(Page::Consultation, lang, &chrome, &content)
                {
                    Ok(html) => std::sync::Arc::new(html),
                    Err(e) => return self.failed(lang, &e),
                };
                if let Ok(mut pages) = self.blank_pages.write() {
                    pages.insert(id, (std::time::Instant::now(), html.clone()));
                }
                html
            }
        };
        let token = super::guard::issue(key, &target.action(), self.app.now().timestamp_millis());
        (
            StatusCode::OK,
            no_store(),
            Html(html.replacen(TOKEN_SLOT, &token, 1)),
        )
            .into_response()
    }

    /// The consultation page's content, its form filled with `typed` and
    /// showing `errors` next to their fields, with `token`.
    async fn form_content<'s>(
        &'s self,
        target: &'s Target,
        lang: Language,
        typed: &Submitted,
        errors: &[ErrorLink],
        token: String,
    ) -> Result<(Chrome, ConsultationPage<'s>), Response> {
        let c = target.consultation();
        let spec = &c.spec;
        let config = &self.app.config;
        let w = |k: &str| self.pages.word(lang, k);
        let sent = match target {
            Target::Personal { record, .. } => {
                match self
                    .app
                    .store
                    .sent_proposals(record.consultation_id, record.cso_id)
                    .await
                {
                    Ok(sent) => sent,
                    Err(e) => return Err(self.failed(lang, &e)),
                }
            }
            Target::Public { .. } => Vec::new(),
        };
        let tz = config.office.time_zone;
        let error_of = |id: &str| {
            errors
                .iter()
                .find(|e| e.field == id)
                .map(|e| e.message.clone())
        };
        let field = |id: &str, multiline: bool, required: bool, value: &str| {
            let hint_key = format!("{id}_hint");
            let hint = self.pages.has_word(&hint_key).then(|| w(&hint_key));
            let error = error_of(id);
            let described: Vec<String> = [
                hint.as_ref().map(|_| format!("{id}-hint")),
                error.as_ref().map(|_| format!("{id}-error")),
            ]
            .into_iter()
            .flatten()
            .collect();
            FieldView {
                id: id.to_string(),
                label: w(&format!("{id}_label")),
                hint,
                error,
                multiline,
                rows: if multiline { 6 } else { 1 },
                kind: if id == "email" { "email" } else { "text" },
                autocomplete: match id {
                    "name" => "name",
                    "email" => "email",
                    "organisation" => "organization",
                    _ => "off",
                },
                value: value.to_string(),
                required: required.then(|| w("required")),
                described_by: (!described.is_empty()).then(|| described.join(" ")),
            }
        };
        let today = self.app.today();
        let content = ConsultationPage {
            consultation: consultation_view(config, spec, lang),
            paragraphs: paragraphs(spec.description().get(lang)),
            meeting: meeting_view(spec, lang),
            drafts: spec
                .drafts
                .iter()
                .map(|d| DraftText {
                    number: d.number,
                    title: d.title.get(lang).clone(),
                    paragraphs: paragraphs(d.text.get(lang)),
                })
                .collect(),
            cso: target.cso().map(|c| c.record.name.clone()),
            late: spec.closes_on < today,
            sent: sent
                .iter()
                .map(|s| SentView {
                    receipt_no: s.receipt_no.clone(),
                    date: format_date(lang, s.created_at.with_timezone(&tz).date_naive()),
                    follow_ups: s.follow_ups,
                })
                .collect(),
            form_action: target.action(),
            token,
            errors: Vec::new(),
            proposal_fields: vec![
                field("problem", true, true, &typed.problem),
                field("commitment", true, true, &typed.commitment),
                field("how", true, true, &typed.how),
            ],
            contact_fields: vec![
                field("name", false, true, &typed.name),
                field("email", false, true, &typed.email),
                field("organisation", false, false, &typed.organisation),
            ],
            draft_fields: spec
                .drafts
                .iter()
                .map(|d: &crate::consultation::DraftCommitment| {
                    let id = format!("draft-{}", d.number);
                    let mut f = field(
                        &id,
                        true,
                        false,
                        typed.drafts.get(&d.number).map_or("", String::as_str),
                    );
                    f.label = format!("{}. {}", d.number, d.title.get(lang));
                    f.rows = 3;
                    f
                })
                .collect(),
            ogp_values: OGP_VALUES
                .iter()
                .map(|(value, label)| ValueView {
                    value,
                    label: w(label),
                    checked: typed.values.contains(value),
                })
                .collect(),
            values_error: error_of("values"),
            attachments_hint: format!(
                "{} {} {}, {} MB {}.",
                w("attachments_hint_text"),
                config.form.max_attachments,
                w("attachments_hint_files"),
                config.form.max_bytes / (1024 * 1024),
                w("attachments_hint_total")
            ),
            attachments_error: error_of("attachments"),
            no_publish: typed.no_publish,
        };
        // The summary names each field, so its links read on their own.
        let mut content = content;
        content.errors = errors
            .iter()
            .map(|e| {
                let label = content
                    .proposal_fields
                    .iter()
                    .chain(&content.contact_fields)
                    .chain(&content.draft_fields)
                    .find(|f| f.id == e.field)
                    .map(|f| f.label.clone())
                    .or_else(|| {
                        let key = match e.field.as_str() {
                            "values" => "values_label",
                            "attachments" => "attachments_label",
                            _ => return None,
                        };
                        Some(w(key))
                    });
                ErrorLink {
                    field: e.field.clone(),
                    message: match label {
                        Some(label) => format!("{label} — {}", e.message),
                        None => e.message.clone(),
                    },
                }
            })
            .collect();
        let chrome = self.chrome(lang, spec.title().get(lang).to_string(), &target.action());
        Ok((chrome, content))
    }
}

/// Where a cached blank page's form token goes: letters only, so escaping
/// leaves it as it is.
const TOKEN_SLOT: &str = "cocreateformtokenslot";

// ----- handlers -------------------------------------------------------------

pub async fn index(
    State(state): State<WebState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(q.lang.as_deref(), &headers, None);
    let consultations = match state.consultations().await {
        Ok(c) => c,
        Err(e) => return state.failed(lang, &e),
    };
    let config = &state.app.config;
    let today = state.app.today();
    let mut open: Vec<&Consultation> = consultations
        .iter()
        .filter(|c| c.state == ConsultationState::Open && c.spec.closes_on >= today)
        .collect();
    open.sort_by_key(|c| (c.spec.policy_area.clone(), c.spec.closes_on));
    let mut areas: Vec<AreaView> = Vec::new();
    for c in open {
        let name = config
            .policy_area(&c.spec.policy_area)
            .map_or_else(|| c.spec.policy_area.clone(), |a| a.name.get(lang).clone());
        let line = ConsultationLine {
            reference: c.spec.reference.clone(),
            title: c.spec.title().get(lang).to_string(),
            deadline: format_date(lang, c.spec.closes_on),
            days_left: (c.spec.closes_on - today).num_days(),
            today: c.spec.closes_on == today,
        };
        match areas.iter_mut().find(|a| a.name == name) {
            Some(a) => a.consultations.push(line),
            None => areas.push(AreaView {
                name,
                consultations: vec![line],
            }),
        }
    }
    let title = state.pages.word(lang, "index_heading");
    let chrome = state.chrome(lang, title, "/");
    state.page(
        StatusCode::OK,
        Page::Index,
        lang,
        &chrome,
        &IndexPage { areas },
    )
}

pub async fn consultation(
    State(state): State<WebState>,
    Path(reference): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(q.lang.as_deref(), &headers, None);
    let target = match state.public(&reference, lang).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    show(&state, target, lang).await
}

pub async fn personal(
    State(state): State<WebState>,
    Path(key): Path<String>,
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
    show(&state, target, lang).await
}

async fn show(state: &WebState, target: Target, lang: Language) -> Response {
    let key = match &target {
        Target::Personal { key, .. } => Some(key.clone()),
        Target::Public { .. } => None,
    };
    match taking(target.consultation()) {
        None => state.unknown(lang),
        Some(false) => state.closed(lang, target.consultation(), key.as_ref()),
        Some(true) => {
            if matches!(target, Target::Public { .. }) {
                return state.blank_public_page(&target, lang).await;
            }
            // A personal link's form starts with the address it was sent to.
            let typed = Submitted {
                email: match &target {
                    Target::Personal { record, .. } => record.address.to_string(),
                    Target::Public { .. } => String::new(),
                },
                ..Submitted::default()
            };
            state
                .form_page(StatusCode::OK, &target, lang, &typed, &[])
                .await
        }
    }
}

pub async fn meeting_ics(
    State(state): State<WebState>,
    Path(reference): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(q.lang.as_deref(), &headers, None);
    let target = match state.public(&reference, lang).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    let config = &state.app.config;
    match crate::outbound::ics::meeting_ics(
        &target.consultation().spec,
        lang,
        config.office.time_zone,
        &config.mail.domain,
    ) {
        Some(ics) => (
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"meeting.ics\"",
                ),
            ],
            ics,
        )
            .into_response(),
        None => state.unknown(lang),
    }
}

pub async fn stylesheet(State(state): State<WebState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        state.pages.stylesheet.clone(),
    )
        .into_response()
}

pub async fn not_found(
    State(state): State<WebState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    state.unknown(language(q.lang.as_deref(), &headers, None))
}
