//! The HTTP side of cocreate: the health check that a load balancer or
//! systemd watchdog polls, and the unsubscribe pages.

mod unsubscribe;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::config::Config;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
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
