//! The HTTP side of cocreate: the health check that a load balancer or
//! systemd watchdog polls, the unsubscribe pages, and the inbound webhook.

pub mod server;
mod unsubscribe;
mod webhook;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::app::App;

/// Every handler reaches the App as axum state.
pub fn router(state: App) -> Router {
    let max = state.config.inbound.max_message_bytes;
    Router::new()
        .route(
            "/inbound/mime",
            post(webhook::receive).layer(DefaultBodyLimit::max(max)),
        )
        .route("/healthz", get(healthz))
        .route(
            "/unsubscribe/{key}",
            get(unsubscribe::show).post(unsubscribe::confirm),
        )
        .with_state(state)
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
            if let Some(oldest) = oldest.filter(|t| chrono::Utc::now() - *t > alert) {
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
