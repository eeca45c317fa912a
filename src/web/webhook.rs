//! POST /inbound/mime: a raw MIME message from a mail provider's inbound
//! webhook, authenticated by a shared secret (`Authorization: Bearer …`).
//! 200 once the message is stored; 503 when it could not be, so the
//! provider delivers it again.
//!
//! The secret is checked before a byte of the body is read, and the body is
//! read only up to `inbound.max_message_bytes`: an unauthenticated client
//! cannot make the daemon hold anything in memory.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::App;
use crate::intake::IntakeError;

/// Compares without stopping at the first difference, so response times do
/// not reveal how much of a guess was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub async fn receive(State(state): State<App>, request: Request) -> (StatusCode, Json<Value>) {
    let Some(secret) = state.config.inbound.webhook_secret() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "the inbound webhook is not enabled on this server" })),
        );
    };
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given.trim().as_bytes(), secret.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "missing or wrong secret in the Authorization header" })),
        );
    }
    let max = state.config.inbound.max_message_bytes;
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({ "error": format!("messages are limited to {max} bytes") })),
        );
    }
    let body = match axum::body::to_bytes(request.into_body(), max).await {
        Ok(body) => body,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({
                    "error": format!("the message could not be read whole: it is over {max} bytes, or the connection broke")
                })),
            );
        }
    };
    if body.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "the request body is empty; send the raw message" })),
        );
    }
    let intake = state.intake();
    match intake.accept(&body, "webhook").await {
        Ok(outcome) => (StatusCode::OK, Json(outcome.to_json())),
        Err(IntakeError::NotStored(e)) => {
            tracing::error!(error = %e, "webhook message not stored");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "the message could not be stored; deliver it again" })),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook message stored, processing failed");
            (
                StatusCode::OK,
                Json(json!({ "outcome": "stored", "note": "processing will be retried" })),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_whole() {
        assert!(super::same_secret(b"abc", b"abc"));
        assert!(!super::same_secret(b"abd", b"abc"));
        assert!(!super::same_secret(b"ab", b"abc"));
        assert!(!super::same_secret(b"", b"abc"));
    }
}
