//! The holding pen for the POC: what waits, with the reason, made into a
//! proposal (of a registry CSO, an organisation outside it, or a person)
//! or set aside with a reason.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::views::{Choice, HeldView, PenPage};
use super::{PostedBy, SignedIn};
use crate::domain::Language;
use crate::intake::{Assignee, Outcome};
use crate::store::records::InboundState;
use crate::web::WebState;
use crate::web::pages::Page;
use crate::web::views::Link;

/// Messages listed at once; the rest wait their turn.
const SHOWN: usize = 200;

pub async fn list(State(state): State<WebState>, by: SignedIn) -> Response {
    if let Some(response) = by.unless_poc(&state) {
        return response;
    }
    let SignedIn { reviewer, lang } = by;
    let held = match state.app.store.inbound_in_state(InboundState::Held).await {
        Ok(h) => h,
        Err(e) => return state.failed(lang, &e),
    };
    let consultations = state.app.store.consultations().await.unwrap_or_default();
    let tz = state.app.config.office.time_zone;
    let mut messages = Vec::new();
    for m in held.into_iter().take(SHOWN) {
        let excerpt = match state.app.store.inbound_raw(m.id).await {
            Ok(Some((_, raw))) => crate::inbound::parse::parse(&raw)
                .map(|p| {
                    crate::outbound::lfp::excerpt(
                        &crate::inbound::trim::trim(&p.body).reply_text,
                        300,
                    )
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        messages.push(HeldView {
            id: m.id,
            received: m
                .received_at
                .with_timezone(&tz)
                .format("%d.%m.%Y %H:%M")
                .to_string(),
            from: m.from_address.clone().unwrap_or_default(),
            subject: m.subject.clone().unwrap_or_default(),
            reason: m.reason_in(lang).to_string(),
            excerpt,
            assign_action: format!("/review/pen/{}/assign?lang={}", m.id, lang.code()),
            discard_action: format!("/review/pen/{}/discard?lang={}", m.id, lang.code()),
        });
    }
    let content = PenPage {
        bar: state.bar(&reviewer),
        messages,
        consultations: consultations
            .iter()
            .filter(|c| c.state.is_public())
            .map(|c| Choice {
                value: c.spec.reference.clone(),
                label: format!("{} · {}", c.spec.reference, c.spec.title().get(lang)),
                selected: false,
            })
            .collect(),
    };
    let title = state.pages.word(lang, "review_pen");
    let chrome = state.chrome(lang, title, "/review/pen");
    state.page(StatusCode::OK, Page::ReviewPen, lang, &chrome, &content)
}

/// One sentence about what happened, with the way back to the pen.
fn told(state: &WebState, lang: Language, refused: bool, sentence: String) -> Response {
    let (status, heading) = if refused {
        (StatusCode::UNPROCESSABLE_ENTITY, "review_refused_heading")
    } else {
        (StatusCode::OK, "review_done_heading")
    };
    state.notice(
        status,
        lang,
        heading,
        vec![sentence],
        Some(Link {
            href: format!("/review/pen?lang={}", lang.code()),
            text: state.pages.word(lang, "review_back"),
        }),
    )
}

fn refused(state: &WebState, lang: Language, sentence: String) -> Response {
    told(state, lang, true, sentence)
}

pub async fn assign(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    posted: PostedBy,
) -> Response {
    if let Some(response) = posted.by.unless_poc(&state) {
        return response;
    }
    let (lang, form) = (posted.by.lang, posted.form);
    let store = state.app.store.as_ref();
    let Ok(c) = crate::outbound::outreach::find(store, form.get("consultation")).await else {
        return refused(&state, lang, "choose the consultation it belongs to".into());
    };
    let cso = form.get("cso").trim();
    let outside = form.get("outside").trim();
    let assignee = if !cso.is_empty() {
        let Ok(reg) = crate::domain::RegistrationNumber::parse(cso) else {
            return refused(
                &state,
                lang,
                format!("'{cso}' is not a registration number"),
            );
        };
        let csos = store.csos().await.unwrap_or_default();
        let Some(found) = csos.iter().find(|x| x.record.registration_no == reg) else {
            return refused(
                &state,
                lang,
                format!("no organisation with registration number {reg} has been imported"),
            );
        };
        Assignee::Registry(found.id)
    } else if !outside.is_empty() || !form.get("individual").is_empty() {
        if outside.chars().count() > 300 {
            return refused(
                &state,
                lang,
                "the organisation's name is longer than 300 characters".into(),
            );
        }
        Assignee::Outside {
            name: Some(outside.to_string()).filter(|n| !n.is_empty()),
        }
    } else {
        return refused(
            &state,
            lang,
            "say whose it is: a registration number, an organisation's name, or a person".into(),
        );
    };
    match state.app.intake().assign(id, c.id, assignee).await {
        Ok(Outcome::Proposal { receipt_no, .. }) => {
            Redirect::to(&format!("/review/p/{receipt_no}?lang={}", lang.code())).into_response()
        }
        Ok(Outcome::Held { reason, .. }) => refused(
            &state,
            lang,
            format!("it stays in the holding pen: {reason}"),
        ),
        Ok(other) => told(&state, lang, false, other.to_string()),
        Err(e) => state.failed(lang, &e),
    }
}

pub async fn discard(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    posted: PostedBy,
) -> Response {
    if let Some(response) = posted.by.unless_poc(&state) {
        return response;
    }
    let (lang, form) = (posted.by.lang, posted.form);
    let reason: String = form.get("reason").trim().chars().take(500).collect();
    if reason.is_empty() {
        return refused(
            &state,
            lang,
            "give the reason; the message is kept with it".into(),
        );
    }
    match state.app.store.inbound_raw(id).await {
        Ok(Some((m, _))) if m.state == InboundState::Held => {}
        _ => {
            return refused(
                &state,
                lang,
                format!("message #{id} is not in the holding pen"),
            );
        }
    }
    match state
        .app
        .store
        .set_inbound_outcome(id, InboundState::Discarded, "unmatched", &reason)
        .await
    {
        Ok(()) => Redirect::to(&format!("/review/pen?lang={}", lang.code())).into_response(),
        Err(e) => state.failed(lang, &e),
    }
}
