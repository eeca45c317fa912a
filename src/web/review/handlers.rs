//! The review pages: the consultations an actor may see, one consultation's
//! proposals, one proposal's thread, its attachments, decisions (one or a
//! group), publishing, and the audit log.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::Reviewer;
use super::views::*;
use super::{PostedBy, SignedIn};
use crate::accountability::review::{self as rv, Filter, StateFilter};
use crate::accountability::{self, AccountabilityError, Answer, Disposition, label_of};
use crate::consultation::{Consultation, ConsultationState};
use crate::domain::Language;
use crate::outbound::lfp::excerpt;
use crate::store::records::{FollowUpRecord, ReviewProposal};
use crate::web::WebState;
use crate::web::pages::Page;
use crate::web::views::{Link, paragraphs};

impl WebState {
    fn when(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        t.with_timezone(&self.app.config.office.time_zone)
            .format("%d.%m.%Y %H:%M")
            .to_string()
    }

    /// A review page of `page` titled `title`, at `path`.
    fn review_page(
        &self,
        page: Page,
        lang: Language,
        title: &str,
        path: &str,
        content: &impl serde::Serialize,
    ) -> Response {
        let chrome = self.chrome(lang, title, path);
        self.page(StatusCode::OK, page, lang, &chrome, content)
    }

    /// What went wrong with a decision or publication, in one sentence,
    /// with the way back.
    fn refused(&self, lang: Language, e: &AccountabilityError, back: &str) -> Response {
        match e {
            AccountabilityError::UnknownProposal(_)
            | AccountabilityError::UnknownConsultation(_) => self.unknown(lang),
            AccountabilityError::Refused(why) => self.notice(
                StatusCode::UNPROCESSABLE_ENTITY,
                lang,
                "review_refused_heading",
                vec![why.clone()],
                Some(Link {
                    href: back.to_string(),
                    text: self.pages.word(lang, "review_back"),
                }),
            ),
            other => self.failed(lang, other),
        }
    }

    fn flags(&self, lang: Language, p: &ReviewProposal) -> Vec<String> {
        let w = |k: &str| self.pages.word(lang, k);
        let mut flags = Vec::new();
        if p.late {
            flags.push(w("review_flag_late"));
        }
        if p.other_sender {
            flags.push(format!("{}: {}", w("review_flag_other"), p.from_address));
        }
        if let Some(n) = p.draft_number {
            flags.push(format!("{} {n}", w("review_flag_draft")));
        }
        if p.disowned_at.is_some() {
            flags.push(w("review_flag_disowned"));
        }
        if let Some(f) = &p.sender_flag {
            flags.push(format!("{}: {f}", w("review_flag_check")));
        }
        if p.no_publish {
            flags.push(w("review_flag_withheld"));
        }
        flags
    }

    fn decide_form(
        &self,
        lang: Language,
        back: &str,
        current: Option<&ReviewProposal>,
        locked: bool,
    ) -> DecideForm {
        let d = current.and_then(|p| p.disposition.as_ref());
        DecideForm {
            action: format!("/review/decide?lang={}", lang.code()),
            back: back.to_string(),
            dispositions: Disposition::ALL
                .into_iter()
                .map(|x| Choice {
                    value: x.as_str().into(),
                    label: x.label(lang).into(),
                    selected: d.is_some_and(|d| d.disposition == x.as_str()),
                })
                .collect(),
            commitment: d.and_then(|d| d.commitment.clone()).unwrap_or_default(),
            response_sq: d.map(|d| d.response_sq.clone()).unwrap_or_default(),
            response_en: d.and_then(|d| d.response_en.clone()).unwrap_or_default(),
            receipt_no: current.map(|p| p.receipt_no.clone()),
            locked,
        }
    }

    /// A proposal `reviewer` may see, its consultation and follow-ups;
    /// else the page that says there is no such proposal.
    async fn thread(
        &self,
        reviewer: &Reviewer,
        lang: Language,
        receipt_no: &str,
    ) -> Result<(ReviewProposal, Consultation, Vec<FollowUpRecord>), Response> {
        let (p, c) = accountability::proposal_for(&self.app, &reviewer.actor, receipt_no)
            .await
            .map_err(|e| self.refused(lang, &e, "/review"))?;
        let follow_ups = self
            .app
            .store
            .follow_ups_of(p.id)
            .await
            .map_err(|e| self.failed(lang, &e))?;
        Ok((p, c, follow_ups))
    }

    async fn published_at(
        &self,
        consultation_id: i64,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::store::StoreError> {
        Ok(self
            .app
            .store
            .publications()
            .await?
            .into_iter()
            .find(|p| p.consultation_id == consultation_id)
            .map(|p| p.published_at))
    }

    /// The consultation `reference`, if `reviewer` may see it.
    async fn visible(&self, reviewer: &Reviewer, reference: &str) -> Option<Consultation> {
        let wanted = reference.trim().to_ascii_uppercase();
        accountability::visible_consultations(&self.app, &reviewer.actor)
            .await
            .ok()?
            .into_values()
            .find(|c| c.spec.reference == wanted)
    }
}

pub async fn home(
    State(state): State<WebState>,
    SignedIn { reviewer, lang }: SignedIn,
) -> Response {
    let consultations =
        match accountability::visible_consultations(&state.app, &reviewer.actor).await {
            Ok(c) => c,
            Err(e) => return state.failed(lang, &e),
        };
    // A store that fails says so: a page of zeros would read as "nothing
    // came in".
    let published = match state.app.store.publications().await {
        Ok(p) => p,
        Err(e) => return state.failed(lang, &e),
    };
    let mut rows = Vec::new();
    for c in consultations.values().filter(|c| c.state.is_public()) {
        let proposals = match state.app.store.review_proposals(Some(c.id)).await {
            Ok(p) => p,
            Err(e) => return state.failed(lang, &e),
        };
        rows.push(ConsultationRow {
            reference: c.spec.reference.clone(),
            title: c.spec.title().get(lang).to_string(),
            state: c.state.as_str().into(),
            deadline: c.spec.closes_on.format("%d.%m.%Y").to_string(),
            proposals: proposals.len() as u64,
            waiting: proposals.iter().filter(|p| p.disposition.is_none()).count() as u64,
            published: published.iter().any(|p| p.consultation_id == c.id),
        });
    }
    let pen = if reviewer.actor.is_poc() {
        state
            .app
            .store
            .inbound_in_state(crate::store::records::InboundState::Held)
            .await
            .ok()
            .map(|held| held.len())
            .filter(|n| *n > 0)
    } else {
        None
    };
    let content = HomePage {
        bar: state.bar(&reviewer),
        consultations: rows,
        pen,
    };
    let title = state.pages.word(lang, "review_heading");
    state.review_page(Page::ReviewHome, lang, &title, "/review", &content)
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    cso: Option<String>,
    late: Option<String>,
    other: Option<String>,
    draft: Option<String>,
    flagged: Option<String>,
    /// Empty when the form's "All" is chosen.
    campaign: Option<String>,
}

pub async fn consultation(
    State(state): State<WebState>,
    Path(reference): Path<String>,
    Query(query): Query<ListQuery>,
    uri: axum::http::Uri,
    SignedIn { reviewer, lang }: SignedIn,
) -> Response {
    let Some(c) = state.visible(&reviewer, &reference).await else {
        return state.unknown(lang);
    };
    let all = match state.app.store.review_proposals(Some(c.id)).await {
        Ok(all) => all,
        Err(e) => return state.failed(lang, &e),
    };
    let reply = match state.app.store.reply_count(c.id).await {
        Ok(r) => r,
        Err(e) => return state.failed(lang, &e),
    };
    let published = match state.published_at(c.id).await {
        Ok(p) => p,
        Err(e) => return state.failed(lang, &e),
    };
    // Campaigns: near-identical copies, numbered by first arrival.
    let texts: Vec<(i64, &str)> = all.iter().map(|p| (p.id, p.reply_text.as_str())).collect();
    let groups = crate::intake::campaigns::group(&texts);
    let campaign_of: HashMap<i64, (usize, usize)> = groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.iter().map(move |id| (*id, (i + 1, g.len()))))
        .collect();
    let campaign: Option<usize> = query
        .campaign
        .as_deref()
        .and_then(|c| c.trim().parse().ok());
    let filter = Filter {
        state: query
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| StateFilter::parse(s).ok()),
        cso: query.cso.clone().filter(|s| !s.trim().is_empty()),
        late: query.late.is_some(),
        other_sender: query.other.is_some(),
        draft: query.draft.is_some().then_some(None),
        flagged: query.flagged.is_some(),
    };
    let base = format!("/review/c/{}", c.spec.reference);
    let link = |state_value: &str| format!("{base}?lang={}&state={state_value}", lang.code());
    let waiting = all.iter().filter(|p| p.disposition.is_none()).count() as u64;
    let mut counts = vec![Count {
        label: state.pages.word(lang, "review_waiting_state"),
        count: waiting,
        href: link("waiting"),
    }];
    for d in Disposition::ALL {
        let n = all
            .iter()
            .filter(|p| {
                p.disposition
                    .as_ref()
                    .is_some_and(|x| x.disposition == d.as_str())
            })
            .count() as u64;
        counts.push(Count {
            label: d.label(lang).into(),
            count: n,
            href: link(d.as_str()),
        });
    }
    let shown: Vec<&ReviewProposal> = all
        .iter()
        .filter(|p| filter.matches(p))
        .filter(|p| campaign.is_none_or(|g| campaign_of.get(&p.id).is_some_and(|(i, _)| *i == g)))
        .collect();
    let copies = state.pages.word(lang, "review_campaign_label");
    let rows = shown
        .iter()
        .map(|p| ProposalRow {
            receipt_no: p.receipt_no.clone(),
            href: format!("/review/p/{}?lang={}", p.receipt_no, lang.code()),
            sender: accountability::sender_name(p),
            date: state.when(p.created_at),
            excerpt: excerpt(&p.reply_text, 240),
            flags: state.flags(lang, p),
            disposition: p.disposition.as_ref().map_or_else(
                || state.pages.word(lang, "review_waiting_state"),
                |d| label_of(&d.disposition, lang),
            ),
            decided: p.disposition.is_some(),
            campaign: campaign_of
                .get(&p.id)
                .map(|(i, n)| format!("{copies} {i} ({n})")),
        })
        .collect();
    let mut states = vec![
        Choice {
            value: "waiting".into(),
            label: state.pages.word(lang, "review_waiting_state"),
            selected: filter.state == Some(StateFilter::Waiting),
        },
        Choice {
            value: "decided".into(),
            label: state.pages.word(lang, "review_decided_state"),
            selected: filter.state == Some(StateFilter::Decided),
        },
    ];
    states.extend(Disposition::ALL.into_iter().map(|d| Choice {
        value: d.as_str().into(),
        label: d.label(lang).into(),
        selected: filter.state == Some(StateFilter::Is(d)),
    }));
    let back = uri
        .path_and_query()
        .map_or_else(|| base.clone(), |pq| pq.as_str().to_string());
    let content = ConsultationPage {
        bar: state.bar(&reviewer),
        reference: c.spec.reference.clone(),
        title: c.spec.title().get(lang).to_string(),
        state: c.state.as_str().into(),
        deadline: c.spec.closes_on.format("%d.%m.%Y").to_string(),
        invited: reply.invited,
        replied: reply.replied,
        counts,
        filter: FilterView {
            action: base.clone(),
            states,
            cso: filter.cso.clone().unwrap_or_default(),
            late: filter.late,
            other: filter.other_sender,
            draft: filter.draft.is_some(),
            flagged: filter.flagged,
            campaigns: groups
                .iter()
                .enumerate()
                .map(|(i, g)| Choice {
                    value: (i + 1).to_string(),
                    label: format!("{copies} {} ({})", i + 1, g.len()),
                    selected: campaign == Some(i + 1),
                })
                .collect(),
        },
        shown: shown.len(),
        total: all.len(),
        proposals: rows,
        decide: state.decide_form(lang, &back, None, published.is_some()),
        published: published.map(|t| state.when(t)),
        can_publish: reviewer.actor.is_poc()
            && c.state == ConsultationState::Closed
            && published.is_none()
            && !all.is_empty()
            && waiting == 0,
        report_url: format!("/report/{}?lang={}", c.spec.reference, lang.code()),
    };
    state.review_page(
        Page::ReviewConsultation,
        lang,
        &content.title.clone(),
        &base,
        &content,
    )
}

pub async fn proposal(
    State(state): State<WebState>,
    Path(receipt_no): Path<String>,
    SignedIn { reviewer, lang }: SignedIn,
) -> Response {
    let (p, c, follow_ups) = match state.thread(&reviewer, lang, &receipt_no).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let messages: Vec<i64> = follow_ups.iter().map(|f| f.inbound_message_id).collect();
    let store = state.app.store.as_ref();
    let (sent, log) = match (
        store.sent_about(&p.receipt_no, &messages).await,
        store.disposition_log(Some(c.id)).await,
    ) {
        (Ok(sent), Ok(log)) => (sent, log),
        (Err(e), _) | (_, Err(e)) => return state.failed(lang, &e),
    };
    let published = match state.published_at(c.id).await {
        Ok(p) => p,
        Err(e) => return state.failed(lang, &e),
    };
    let path = format!("/review/p/{}", p.receipt_no);
    let back = format!("{path}?lang={}", lang.code());
    let content = ProposalPage {
        bar: state.bar(&reviewer),
        receipt_no: p.receipt_no.clone(),
        consultation: format!("{} · {}", c.spec.reference, c.spec.title().get(lang)),
        consultation_href: format!("/review/c/{}?lang={}", c.spec.reference, lang.code()),
        sender: accountability::sender_name(&p),
        from_address: p.from_address.clone(),
        date: state.when(p.created_at),
        subject: p.subject.clone(),
        flags: state.flags(lang, &p),
        paragraphs: paragraphs(&p.reply_text),
        quoted: p.quoted_text.trim().to_string(),
        signature: p.signature.trim().to_string(),
        follow_ups: follow_ups
            .iter()
            .map(|f| FollowUpView {
                from_address: f.from_address.clone(),
                date: state.when(f.created_at),
                paragraphs: paragraphs(&f.reply_text),
                quoted: f.quoted_text.trim().to_string(),
            })
            .collect(),
        attachments: rv::attachments(&p, &follow_ups)
            .into_iter()
            .map(|a| AttachmentView {
                href: format!("{path}/a/{}", a.number),
                details: format!(
                    "{}, {} KB",
                    a.attachment.content_type,
                    a.attachment.size.div_ceil(1024)
                ),
                name: a.attachment.name,
            })
            .collect(),
        sent: sent
            .iter()
            .map(|s| {
                format!(
                    "{} → {}: {} ({})",
                    s.kind,
                    s.recipient,
                    s.state,
                    state.when(s.sent_at.unwrap_or(s.created_at))
                )
            })
            .collect(),
        disposition: p
            .disposition
            .as_ref()
            .map(|d| label_of(&d.disposition, lang)),
        decide: state.decide_form(lang, &back, Some(&p), published.is_some()),
        history: log
            .iter()
            .filter(|e| e.receipt_no == p.receipt_no)
            .map(|e| {
                format!(
                    "{} · {} · {} → {}",
                    state.when(e.at),
                    e.actor,
                    e.before.as_ref().map_or_else(
                        || state.pages.word(lang, "review_waiting_state"),
                        |b| label_of(&b.disposition, lang)
                    ),
                    label_of(&e.after.disposition, lang)
                )
            })
            .collect(),
    };
    state.review_page(Page::ReviewProposal, lang, &p.receipt_no, &path, &content)
}

/// A content type as stored, if it is a plain `type/subtype`; anything
/// else is served as bytes.
fn safe_content_type(stored: &str) -> HeaderValue {
    let essence = stored
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => HeaderValue::from_str(&essence)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        _ => HeaderValue::from_static("application/octet-stream"),
    }
}

/// `attachment; filename="…"; filename*=UTF-8''…`: an ASCII name for old
/// clients, the real one encoded, never a path.
fn disposition(name: &str) -> HeaderValue {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("attachment");
    let ascii: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = base
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

pub async fn attachment(
    State(state): State<WebState>,
    Path((receipt_no, number)): Path<(String, usize)>,
    SignedIn { reviewer, lang }: SignedIn,
) -> Response {
    let (p, _, follow_ups) = match state.thread(&reviewer, lang, &receipt_no).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(a) = rv::attachments(&p, &follow_ups)
        .into_iter()
        .find(|a| a.number == number)
    else {
        return state.unknown(lang);
    };
    match rv::bytes(&state.app, &a).await {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    safe_content_type(&a.attachment.content_type),
                ),
                (header::CONTENT_DISPOSITION, disposition(&a.attachment.name)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-store"),
                ),
                // Opened by a browser anyway, it runs nothing.
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("sandbox; default-src 'none'"),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => state.refused(lang, &e, &format!("/review/p/{}", p.receipt_no)),
    }
}

pub async fn decide(State(state): State<WebState>, posted: PostedBy) -> Response {
    let PostedBy {
        by: SignedIn { reviewer, lang },
        form,
    } = posted;
    // Back to a review page only: never somewhere a posted field names.
    let back = Some(form.get("back"))
        .filter(|b| {
            b.starts_with("/review") && !b.starts_with("//") && !b.chars().any(char::is_control)
        })
        .unwrap_or("/review")
        .to_string();
    let Some(disposition) = Disposition::parse(form.get("disposition")) else {
        return state.refused(
            lang,
            &AccountabilityError::Refused("choose a decision".into()),
            &back,
        );
    };
    let optional = |name: &str| Some(form.get(name).to_string()).filter(|s| !s.trim().is_empty());
    let answer = Answer {
        disposition,
        commitment: optional("commitment"),
        response_sq: form.get("response_sq").to_string(),
        response_en: optional("response_en"),
    };
    let receipts = form.all("receipt");
    match accountability::decide(&state.app, &reviewer.actor, &receipts, &answer).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => state.refused(lang, &e, &back),
    }
}

pub async fn publish(
    State(state): State<WebState>,
    Path(reference): Path<String>,
    posted: PostedBy,
) -> Response {
    let SignedIn { reviewer, lang } = posted.by;
    let back = format!(
        "/review/c/{}?lang={}",
        reference.trim().to_ascii_uppercase(),
        lang.code()
    );
    if state.visible(&reviewer, &reference).await.is_none() {
        return state.unknown(lang);
    }
    match accountability::publish(&state.app, &reviewer.actor, &reference).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => state.refused(lang, &e, &back),
    }
}

pub async fn log(State(state): State<WebState>, by: SignedIn) -> Response {
    if let Some(response) = by.unless_poc(&state) {
        return response;
    }
    let SignedIn { reviewer, lang } = by;
    let entries = match state.app.store.disposition_log(None).await {
        Ok(e) => e,
        Err(e) => return state.failed(lang, &e),
    };
    let waiting = state.pages.word(lang, "review_waiting_state");
    let content = LogPage {
        bar: state.bar(&reviewer),
        entries: entries
            .into_iter()
            .take(1_000)
            .map(|e| LogView {
                at: state.when(e.at),
                actor: e.actor,
                href: format!("/review/p/{}?lang={}", e.receipt_no, lang.code()),
                receipt_no: e.receipt_no,
                before: e
                    .before
                    .as_ref()
                    .map_or_else(|| waiting.clone(), |b| label_of(&b.disposition, lang)),
                after: label_of(&e.after.disposition, lang),
                response: match lang {
                    Language::En => e
                        .after
                        .response_en
                        .clone()
                        .unwrap_or(e.after.response_sq.clone()),
                    Language::Sq => e.after.response_sq.clone(),
                },
                // A first answer after publication is no correction.
                correction: e.correction && e.before.is_some(),
            })
            .collect(),
    };
    let title = state.pages.word(lang, "review_log");
    state.review_page(Page::ReviewLog, lang, &title, "/review/log", &content)
}
