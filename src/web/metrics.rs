//! /metrics in Prometheus's text format (prometheus-client): requests by
//! route and status, counted as they are answered; proposals by channel,
//! outbox messages by state and stored messages by what intake made of
//! them, read from the store when scraped, so they are right across
//! restarts and for every process sharing the database.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::WebState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Default)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
}

/// Counts every answered request by its route pattern (`/p/{key}`, never
/// the key itself) and status.
pub async fn count(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

fn gauge_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &str,
    counts: &[(String, i64)],
) {
    let family = Family::<Vec<(String, String)>, Gauge>::default();
    for (value, n) in counts {
        family
            .get_or_create(&vec![(label.to_string(), value.clone())])
            .set(*n);
    }
    registry.register(name, help, family);
}

/// The channel a message came by: its source's first word (`imap`, `lmtp`,
/// `maildir`, `webhook`, `web`).
fn channel(source: &str) -> String {
    source
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or(source)
        .to_string()
}

pub async fn render(State(state): State<WebState>) -> Response {
    let store = &state.app.store;
    let read = async {
        Ok::<_, crate::store::StoreError>((
            store.proposals_by_source().await?,
            store.outbox_counts().await?,
            store.inbound_by_outcome().await?,
        ))
    };
    let (by_source, outbox, inbound) = match read.await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "metrics could not be read from the store");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("# the store cannot be read: {e}\n"),
            )
                .into_response();
        }
    };
    let mut channels: Vec<(String, i64)> = Vec::new();
    for (source, n) in by_source {
        let c = channel(&source);
        match channels.iter_mut().find(|(name, _)| *name == c) {
            Some((_, total)) => *total += n,
            None => channels.push((c, n)),
        }
    }
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let outbox = [
        ("queued".to_string(), as_i64(outbox.queued)),
        ("sending".to_string(), as_i64(outbox.sending)),
        ("sent".to_string(), as_i64(outbox.sent)),
        ("failed".to_string(), as_i64(outbox.failed)),
    ];
    let mut registry = Registry::with_prefix("cocreate");
    registry.register(
        "http_requests",
        "HTTP requests answered, by route and status",
        state.metrics.requests.clone(),
    );
    gauge_family(
        &mut registry,
        "proposals",
        "Proposals recorded, by the channel they came by",
        "channel",
        &channels,
    );
    gauge_family(
        &mut registry,
        "outbox_messages",
        "Outgoing messages, by state",
        "state",
        &outbox,
    );
    gauge_family(
        &mut registry,
        "inbound_messages",
        "Stored incoming messages, by what intake made of them",
        "classification",
        &inbound,
    );
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_source_names_its_channel() {
        assert_eq!(super::channel("imap"), "imap");
        assert_eq!(super::channel("maildir:/var/mail"), "maildir");
        assert_eq!(super::channel("web"), "web");
    }
}
