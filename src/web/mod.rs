//! The HTTP side of cocreate: the pages and the web form, the unsubscribe
//! pages, the health check a load balancer or systemd watchdog polls, the
//! metrics, and the inbound webhook: one router, one set of page templates.

mod batch;
pub mod disown;
mod form;
mod guard;
pub mod mark;
mod metrics;
pub mod pages;
mod proposal;
pub mod report;
pub mod review;
pub mod server;
mod site;
mod submit;
mod unsubscribe;
mod views;
mod visitor;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::app::App;
use crate::signing::SigningKey;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Pages(#[from] pages::PageError),
    #[error("the key that signs forms cannot be read: {0}")]
    Key(#[from] crate::store::StoreError),
}

/// What every handler has: the App, the pages, the form's limits, the key
/// that signs forms, and the metrics.
#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub pages: Arc<pages::Pages>,
    limits: Arc<guard::Limits>,
    signing: Arc<SigningKey>,
    metrics: Arc<metrics::Metrics>,
    consultations: Arc<std::sync::RwLock<Option<Recent>>>,
    intake: batch::Batcher,
    /// Public consultation pages with a blank form, by consultation and
    /// language, as rendered at most CONSULTATIONS_FRESH ago.
    blank_pages: Arc<std::sync::RwLock<BlankPages>>,
    sign_in_limit: Arc<review::SignInLimit>,
    report_cache: Arc<report::ReportCache>,
}

type BlankPages =
    std::collections::HashMap<(i64, crate::domain::Language), (std::time::Instant, Arc<String>)>;

/// The consultations as read a moment ago (see [`WebState::consultations`]).
type Recent = (
    std::time::Instant,
    Arc<Vec<crate::consultation::Consultation>>,
);

/// How long pages use the consultations they read: a page costs no store
/// read for them at thousands of visits a second, and a change by the POC
/// (closing, a new deadline) shows within this. Intake reads its own.
const CONSULTATIONS_FRESH: Duration = Duration::from_secs(1);

/// The largest review form: two reasoned responses of
/// `accountability::MAX_RESPONSE_CHARS` (up to four bytes a character,
/// encoded) and a page of checked proposals.
const REVIEW_FORM_BYTES: usize = 1 << 20;

impl WebState {
    pub async fn consultations(
        &self,
    ) -> Result<Arc<Vec<crate::consultation::Consultation>>, crate::store::StoreError> {
        if let Ok(recent) = self.consultations.read()
            && let Some((at, all)) = recent.as_ref()
            && at.elapsed() < CONSULTATIONS_FRESH
        {
            return Ok(all.clone());
        }
        let all = Arc::new(self.app.store.consultations().await?);
        if let Ok(mut recent) = self.consultations.write() {
            *recent = Some((std::time::Instant::now(), all.clone()));
        }
        Ok(all)
    }
}

impl FromRef<WebState> for App {
    fn from_ref(state: &WebState) -> App {
        state.app.clone()
    }
}

/// The router, with its pages loaded and checked: a broken page template
/// stops `serve` here.
pub async fn router(app: App) -> Result<Router, WebError> {
    let pages = pages::Pages::load(app.config.mail.templates_dir.as_deref())?;
    let signing = app.signing_key().await?.clone();
    let max = app.config.inbound.max_message_bytes;
    // The form's files plus room for its text fields.
    let form_max = app.config.form.max_bytes;
    let state = WebState {
        limits: Arc::new(guard::Limits::new(&app.config.form)),
        pages: Arc::new(pages),
        signing: Arc::new(signing),
        metrics: Arc::new(metrics::Metrics::default()),
        consultations: Arc::new(std::sync::RwLock::new(None)),
        intake: batch::Batcher::start(app.clone()),
        blank_pages: Arc::new(std::sync::RwLock::new(BlankPages::new())),
        report_cache: Arc::new(report::ReportCache::default()),
        sign_in_limit: Arc::new(review::SignInLimit::new(
            app.config.review.requests_per_client_per_hour,
        )),
        app,
    };
    let forms = DefaultBodyLimit::max(form_max);
    Ok(Router::new()
        .route("/", get(site::index))
        .route("/static/style.css", get(site::stylesheet))
        .route(
            "/c/{reference}",
            get(site::consultation)
                .post(submit::submit_public)
                .layer(forms),
        )
        .route("/c/{reference}/meeting.ics", get(site::meeting_ics))
        .route(
            "/p/{key}",
            get(site::personal)
                .post(submit::submit_personal)
                .layer(forms),
        )
        .route("/p/{key}/add", post(submit::add).layer(forms))
        .route("/p/{key}/r/{receipt_no}", get(submit::receipt))
        .route(
            "/confirm/{token}",
            get(visitor::confirm_page).post(visitor::confirm),
        )
        .route(
            "/unsubscribe/{key}",
            get(unsubscribe::show).post(unsubscribe::confirm),
        )
        .route(
            "/inbound/mime",
            post(webhook::receive).layer(DefaultBodyLimit::max(max)),
        )
        .route("/report", get(report::action_plan))
        .route("/report.csv", get(report::action_plan))
        .route("/report.xlsx", get(report::action_plan))
        .route("/report.json", get(report::action_plan))
        .route("/report/{file}", get(report::consultation))
        .merge(review::routes().layer(DefaultBodyLimit::max(REVIEW_FORM_BYTES)))
        .route(
            "/disown/{receipt_no}/{signature}",
            get(disown::show).post(disown::confirm),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .fallback(site::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count,
        ))
        .layer(axum::middleware::map_response(guard::security_headers))
        .with_state(state))
}

/// 200 when cocreate can take mail in, 503 with the reasons when it cannot:
/// the store does not take a write (within five seconds), this process's
/// last write of mail failed (the disk full), or a stored message has waited
/// longer than `inbound.backlog_alert_seconds` to be processed. The body is
/// JSON. A relay refusing cocreate does not stop intake, so it is a detail,
/// not a 503.
async fn healthz(State(state): State<App>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let mut problems: Vec<String> = Vec::new();
    let mut detail = serde_json::Map::new();
    match tokio::time::timeout(Duration::from_secs(5), state.store.probe_write()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("the store cannot be written: {e}")),
        Err(_) => problems.push("the store did not take a write within 5 seconds".into()),
    }
    if let Some((at, error)) = state.writes.failure() {
        problems.push(format!(
            "storing mail failed at {}: {error}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    let read = async {
        let backlog = state.store.unprocessed_backlog().await?;
        let refusal = state.store.relay_refusal().await?;
        Ok::<_, crate::store::StoreError>((backlog, refusal))
    };
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Ok(((waiting, oldest), refusal))) => {
            let alert = chrono::Duration::seconds(
                i64::try_from(state.config.inbound.backlog_alert_seconds).unwrap_or(i64::MAX),
            );
            if let Some(oldest) = oldest.filter(|t| state.store.clock().now() - *t > alert) {
                problems.push(format!(
                    "{waiting} stored messages are not processed, the oldest since {}",
                    oldest.format("%Y-%m-%d %H:%M:%S UTC")
                ));
            }
            detail.insert("unprocessed".into(), waiting.into());
            if let Some(r) = refusal {
                detail.insert(
                    "outbox_paused".into(),
                    format!(
                        "the relay refuses cocreate since {}: {}",
                        r.since.format("%Y-%m-%d %H:%M:%S UTC"),
                        r.reason
                    )
                    .into(),
                );
            }
        }
        Ok(Err(e)) => problems.push(format!("the store cannot be read: {e}")),
        Err(_) => problems.push("the store did not answer within 5 seconds".into()),
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        static QUIET: std::sync::Mutex<crate::telemetry::Throttle> =
            std::sync::Mutex::new(crate::telemetry::Throttle::new(Duration::from_secs(60)));
        if let Some(more) = QUIET.lock().ok().and_then(|mut t| t.ready()) {
            tracing::warn!(problems = ?problems, failed_checks_since_last = more, "health check failed");
        }
        StatusCode::SERVICE_UNAVAILABLE
    };
    detail.insert(
        "status".into(),
        if problems.is_empty() {
            "ok"
        } else {
            "unavailable"
        }
        .into(),
    );
    if !problems.is_empty() {
        detail.insert("problems".into(), problems.into());
    }
    (status, axum::Json(detail.into()))
}
