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

/// 200 when the store answers within two seconds, 503 otherwise: a daemon
/// that cannot store a proposal must not be sent any. A relay refusing
/// cocreate does not stop intake, so it is a line of detail, not a 503.
async fn healthz(State(state): State<App>) -> (StatusCode, String) {
    let check = async {
        state.store.ping().await?;
        state.store.relay_refusal().await
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(None)) => (StatusCode::OK, "ok\n".into()),
        Ok(Ok(Some(r))) => (
            StatusCode::OK,
            format!(
                "ok\noutbox paused: the relay refuses cocreate since {}: {}\n",
                r.since.format("%Y-%m-%d %H:%M:%S UTC"),
                r.reason
            ),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store unreachable\n".into(),
            )
        }
        Err(_) => {
            tracing::warn!("health check: store did not answer within 2s");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store not answering\n".into(),
            )
        }
    }
}
