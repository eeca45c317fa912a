//! Unsubscribing from consultation mail.
//!
//! GET shows a page with one button and changes nothing, because mail
//! scanners and link previewers follow links. POST unsubscribes at once:
//! from the button, or from the mail client's one-click request (RFC 8058),
//! which posts `List-Unsubscribe=One-Click` to the same address. Receipts for
//! the CSO's own proposals still go out: they are transactional.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;

use crate::app::App;
use crate::domain::ReplyKey;

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"sq\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\
         <body style=\"font-family:Arial,Helvetica,sans-serif;max-width:560px;margin:40px auto;padding:0 16px;line-height:1.5;\">\
         {body}</body></html>"
    ))
}

fn unknown() -> (StatusCode, Html<String>) {
    (
        StatusCode::NOT_FOUND,
        page(
            "Lidhja nuk njihet / Link not recognised",
            "<p>Kjo lidhje çregjistrimi nuk njihet; kopjojeni të plotë nga emaili.</p>\
             <p lang=\"en\">This unsubscribe link is not recognised; copy it whole from the email.</p>",
        ),
    )
}

pub async fn show(State(state): State<App>, Path(key): Path<String>) -> (StatusCode, Html<String>) {
    let Ok(key) = ReplyKey::parse(&key) else {
        return unknown();
    };
    match state.store.reply_key(&key).await {
        Ok(Some(record)) => {
            // The address is the owner's own; escape it all the same.
            let address = handlebars::html_escape(record.address.as_str());
            (
                StatusCode::OK,
                page(
                    "Çregjistrohu / Unsubscribe",
                    &format!(
                        "<h1 style=\"font-size:22px;\">Mos merr më ftesa për konsultime<br><span lang=\"en\">Stop consultation invitations</span></h1>\
                         <p>Adresa: <strong>{address}</strong></p>\
                         <form method=\"post\"><button type=\"submit\" style=\"font-size:18px;padding:10px 20px;\">Çregjistrohu / Unsubscribe</button></form>\
                         <p style=\"color:#555;font-size:14px;\">Konfirmimet për propozimet që dërgoni do të vijnë sërish.<br>\
                         <span lang=\"en\">Acknowledgements of proposals you send will still arrive.</span></p>"
                    ),
                ),
            )
        }
        Ok(None) => unknown(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe page: store failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Provoni përsëri / Try again",
                    "<p>Provoni përsëri pas pak. / Please try again in a moment.</p>",
                ),
            )
        }
    }
}

pub async fn confirm(
    State(state): State<App>,
    Path(key): Path<String>,
    body: String,
) -> (StatusCode, Html<String>) {
    let Ok(key) = ReplyKey::parse(&key) else {
        return unknown();
    };
    let source = if body.trim() == "List-Unsubscribe=One-Click" {
        "one-click from the mail client"
    } else {
        "unsubscribe page"
    };
    let record = match state.store.reply_key(&key).await {
        Ok(Some(r)) => r,
        Ok(None) => return unknown(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe: store failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Provoni përsëri / Try again",
                    "<p>Provoni përsëri pas pak. / Please try again in a moment.</p>",
                ),
            );
        }
    };
    match state.store.opt_out(&record.address, source).await {
        Ok(()) => {
            tracing::info!(address = %record.address, source, "address opted out of consultation mail");
            (
                StatusCode::OK,
                page(
                    "U çregjistruat / Unsubscribed",
                    "<h1 style=\"font-size:22px;\">U çregjistruat.<br><span lang=\"en\">You are unsubscribed.</span></h1>\
                     <p>Nuk do të merrni më ftesa për konsultime në këtë adresë.<br>\
                     <span lang=\"en\">This address will receive no more consultation invitations.</span></p>",
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe: store failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Provoni përsëri / Try again",
                    "<p>Provoni përsëri pas pak. / Please try again in a moment.</p>",
                ),
            )
        }
    }
}
