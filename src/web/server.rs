//! The HTTP listener. axum's router is served by hyper one connection at a
//! time, because `axum::serve` sets no limits and a client that never
//! finishes its headers holds a connection (and a file descriptor) for
//! ever. Here:
//!
//! - at most `server.max_connections` connections are served at once; the
//!   next waits in the kernel's queue until one closes;
//! - headers must arrive within `server.header_timeout_seconds`, and a
//!   request must be answered within `server.request_timeout_seconds`;
//! - accept errors (no file descriptors left) pause the loop briefly and are
//!   logged once a minute, not once per attempt;
//! - on shutdown the listener closes at once, requests in hand get
//!   `server.shutdown_grace_seconds` to finish, and then every connection
//!   still open is closed.

use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::telemetry::Throttle;

/// Serves `router` on `listener` until `shutdown` resolves, then finishes
/// or closes what is open (see the module's documentation).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let request_timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(request_timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => too_slow(request_timeout),
            }
        },
    ));
    let header_timeout = Duration::from_secs(config.header_timeout_seconds.max(1));
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let closing = CancellationToken::new();
    let closed = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut failing = Throttle::new(Duration::from_secs(60));
    let mut full = Throttle::new(Duration::from_secs(60));
    tokio::pin!(shutdown);
    loop {
        // A free slot first: past the limit, a new connection waits in the
        // kernel's queue rather than being accepted and left unanswered.
        if slots.available_permits() == 0
            && let Some(more) = full.ready()
        {
            tracing::warn!(
                limit = config.max_connections,
                times_since_last = more,
                "HTTP connections at their limit; new ones wait"
            );
        }
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if let Some(more) = failing.ready() {
                        tracing::warn!(error = %e, failed_since_last = more, "HTTP accept failed; pausing before the next");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        // Handlers see the client's address (rate limits, logs).
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        ));
        let (closing, closed) = (closing.clone(), closed.clone());
        connections.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let finished = tokio::select! {
                finished = connection.as_mut() => Some(finished),
                () = closing.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        finished = connection.as_mut() => Some(finished),
                        () = closed.cancelled() => None,
                    }
                }
            };
            if let Some(Err(e)) = finished {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
            drop(slot);
        });
    }
    // Nothing new is accepted from here.
    drop(listener);
    closing.cancel();
    connections.close();
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            grace_seconds = grace.as_secs(),
            "closing HTTP connections still open after the grace period"
        );
        closed.cancel();
        connections.wait().await;
    }
}

fn too_slow(limit: Duration) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "The request took longer than {} seconds and was stopped.\n",
            limit.as_secs()
        ),
    )
        .into_response()
}
