//! The review pages for LFP contacts and POC staff: sign-in by emailed
//! link, the consultations an actor may see, each with its proposals
//! (filters, counts, a group answer), a proposal's whole thread with its
//! attachments and decision, and for the POC the holding pen, the audit
//! log and publishing. Every request is checked on the server: the
//! session, the actor's policy areas for every consultation, proposal and
//! attachment, and for every POST the origin and the session's form token.

mod handlers;
mod pen;
pub mod session;
pub mod views;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use governor::DefaultKeyedRateLimiter;

use self::session::Reviewer;
use self::views::{Bar, SignInPage};
use super::WebState;
use super::guard::cross_site;
use super::pages::Page;
use super::site::{LangQuery, language};
use crate::domain::Language;

/// Sign-in requests per client address an hour.
pub struct SignInLimit(DefaultKeyedRateLimiter<IpAddr>);

impl SignInLimit {
    pub fn new(per_hour: u32) -> Self {
        Self(DefaultKeyedRateLimiter::keyed(super::guard::per_hour(
            per_hour,
        )))
    }

    fn allow(&self, client: IpAddr) -> bool {
        if self.0.len() > 10_000 {
            self.0.retain_recent();
        }
        self.0.check_key(&client).is_ok()
    }
}

/// The routes under /review.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/review", get(handlers::home))
        .route("/review/sign-in", post(ask_for_link))
        .route("/review/sign-in/{token}", get(link_page).post(follow_link))
        .route("/review/sign-out", post(sign_out))
        .route("/review/c/{reference}", get(handlers::consultation))
        .route("/review/c/{reference}/publish", post(handlers::publish))
        .route("/review/p/{receipt_no}", get(handlers::proposal))
        .route(
            "/review/p/{receipt_no}/a/{number}",
            get(handlers::attachment),
        )
        .route("/review/decide", post(handlers::decide))
        .route("/review/pen", get(pen::list))
        .route("/review/pen/{id}/assign", post(pen::assign))
        .route("/review/pen/{id}/discard", post(pen::discard))
        .route("/review/log", get(handlers::log))
}

/// The fields of a posted form, each as often as it was sent (a group
/// answer sends `receipt` once per checked proposal).
pub struct Posted(Vec<(String, String)>);

impl Posted {
    /// Reads a urlencoded body; the router bounds its size.
    pub fn parse(body: &Bytes) -> Self {
        Self(
            form_urlencoded::parse(body)
                .take(2_000)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The page's language from a request's `?lang=` and headers.
fn lang_of(parts: &Parts) -> Language {
    let chosen = parts.uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.into_owned())
    });
    language(chosen.as_deref(), &parts.headers, None)
}

/// A request by a signed-in reviewer: who, and the page's language. A
/// request without a live session gets the sign-in page.
pub struct SignedIn {
    pub reviewer: Reviewer,
    pub lang: Language,
}

impl FromRequestParts<WebState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let lang = lang_of(parts);
        let reviewer = state.reviewer(&parts.headers, lang).await?;
        Ok(Self { reviewer, lang })
    }
}

impl SignedIn {
    /// The refusal for anyone but the POC.
    pub fn unless_poc(&self, state: &WebState) -> Option<Response> {
        (!self.reviewer.actor.is_poc()).then(|| state.forbidden(self.lang))
    }
}

/// A form posted by a signed-in reviewer from this site with the
/// session's form token; anything else is refused before a handler runs.
pub struct PostedBy {
    pub by: SignedIn,
    pub form: Posted,
}

impl FromRequest<WebState> for PostedBy {
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let lang = lang_of(&parts);
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Posted::parse(&body);
        let reviewer = state.reviewer_posting(&parts.headers, lang, &form).await?;
        Ok(Self {
            by: SignedIn { reviewer, lang },
            form,
        })
    }
}

impl WebState {
    fn lang(&self, query: &LangQuery, headers: &HeaderMap) -> Language {
        language(query.lang.as_deref(), headers, None)
    }

    /// The sign-in page, with `status`.
    fn sign_in_page(&self, status: StatusCode, lang: Language, content: SignInPage) -> Response {
        let title = self.pages.word(lang, "sign_in_heading");
        let chrome = self.chrome(lang, title, "/review");
        self.page(status, Page::SignIn, lang, &chrome, &content)
    }

    /// The signed-in reviewer, or the sign-in page (401) to answer with.
    pub async fn reviewer(
        &self,
        headers: &HeaderMap,
        lang: Language,
    ) -> Result<Reviewer, Response> {
        session::reviewer(&self.app, &self.signing, headers)
            .await
            .ok_or_else(|| {
                self.sign_in_page(
                    StatusCode::UNAUTHORIZED,
                    lang,
                    SignInPage {
                        asked: None,
                        failed: false,
                        link_action: None,
                    },
                )
            })
    }

    /// A POST a reviewer may make: from this site, signed in, with this
    /// session's form token.
    pub async fn reviewer_posting(
        &self,
        headers: &HeaderMap,
        lang: Language,
        form: &Posted,
    ) -> Result<Reviewer, Response> {
        if cross_site(headers, &self.app.config.server.public_url) {
            tracing::warn!("a cross-site post to a review page was refused");
            return Err(self.forbidden(lang));
        }
        let reviewer = self.reviewer(headers, lang).await?;
        if !session::form_token_ok(&self.signing, &reviewer.session, form.get("token")) {
            tracing::warn!("a review form without this session's token was refused");
            return Err(self.forbidden(lang));
        }
        Ok(reviewer)
    }

    pub fn forbidden(&self, lang: Language) -> Response {
        self.notice(
            StatusCode::FORBIDDEN,
            lang,
            "refused_heading",
            vec![self.pages.word(lang, "review_forbidden")],
            None,
        )
    }

    pub fn bar(&self, reviewer: &Reviewer) -> Bar {
        Bar {
            address: reviewer.actor.address.clone(),
            poc: reviewer.actor.is_poc(),
            token: session::form_token(&self.signing, &reviewer.session),
        }
    }
}

/// Asks for a sign-in link: the same answer for every address, at once;
/// the link (if the address may sign in) is made and queued after.
async fn ask_for_link(
    State(state): State<WebState>,
    Query(query): Query<LangQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = state.lang(&query, &headers);
    if cross_site(&headers, &state.app.config.server.public_url) {
        return state.forbidden(lang);
    }
    let form = Posted::parse(&body);
    let address = form
        .get("email")
        .trim()
        .chars()
        .take(320)
        .collect::<String>();
    if state.sign_in_limit.allow(peer.ip()) {
        let app = state.app.clone();
        let asked = address.clone();
        tokio::spawn(async move { session::send_link(&app, &asked, lang).await });
    } else {
        tracing::warn!(%peer, "sign-in requests over the hourly limit for one client");
    }
    state.sign_in_page(
        StatusCode::OK,
        lang,
        SignInPage {
            asked: Some(address),
            failed: false,
            link_action: None,
        },
    )
}

/// The emailed link opens a page with a button: a mail scanner that
/// fetches every link does not use it up.
async fn link_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = state.lang(&query, &headers);
    state.sign_in_page(
        StatusCode::OK,
        lang,
        SignInPage {
            asked: None,
            failed: false,
            link_action: Some(format!("/review/sign-in/{token}?lang={}", lang.code())),
        },
    )
}

async fn follow_link(
    State(state): State<WebState>,
    Path(token): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = state.lang(&query, &headers);
    if cross_site(&headers, &state.app.config.server.public_url) {
        return state.forbidden(lang);
    }
    let Some(address) = session::use_link(&state.app, &token).await else {
        return state.sign_in_page(
            StatusCode::FORBIDDEN,
            lang,
            SignInPage {
                asked: None,
                failed: true,
                link_action: None,
            },
        );
    };
    match session::start(&state.app, &state.signing, &address).await {
        Ok(cookie) => (
            [(header::SET_COOKIE, cookie)],
            Redirect::to(&format!("/review?lang={}", lang.code())),
        )
            .into_response(),
        Err(e) => state.failed(lang, &e),
    }
}

async fn sign_out(State(state): State<WebState>, posted: PostedBy) -> Response {
    let cookie = session::end(&state.app, &posted.by.reviewer.session).await;
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&format!("/review?lang={}", posted.by.lang.code())),
    )
        .into_response()
}
