//! The HTTP side of cocreate: the health check that a load balancer or
//! systemd watchdog polls, the unsubscribe pages, and the inbound webhook.

mod unsubscribe;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use lettre::message::dkim::DkimConfig;

use crate::config::Config;
use crate::outbound::templates::Templates;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub templates: Arc<Templates>,
    pub dkim: Option<Arc<DkimConfig>>,
}

pub fn router(state: AppState) -> Router {
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
/// that cannot store a proposal must not be sent any.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
        }
        Err(_) => {
            tracing::warn!("health check: store did not answer within 2s");
            (StatusCode::SERVICE_UNAVAILABLE, "store not answering\n")
        }
    }
}
