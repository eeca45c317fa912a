//! Signing in without a password: an LFP contact or POC staff member asks
//! for a link by email; the link works once, for a short time, for that
//! address only; following it makes a session, held in a signed, HttpOnly,
//! SameSite cookie (Secure when the public address is HTTPS) whose id the
//! store knows by its hash, so signing out ends it on the server too.
//!
//! Asking for a link always gets the same answer, in the same time,
//! whether or not the address may sign in: the work is done after the
//! answer, so neither the words nor the timing tell who is known.
//!
//! The store keeps only hashes of links and sessions; the link itself is
//! in its email in the outbox until the link expires (minutes), so whoever
//! can read the database could use an unexpired one: as they could read
//! every proposal anyway.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::accountability::Actor;
use crate::app::App;
use crate::domain::{EmailAddress, EmailFor, Language};
use crate::outbound::email::{Context, Named, SignIn};
use crate::outbound::office::{self, To};
use crate::signing::{SigningKey, hex, sha256_hex};

pub const COOKIE: &str = "cocreate_review";

/// Who is signed in, and the session's id hash (what forms are bound to).
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub actor: Actor,
    pub session: String,
}

fn hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// The reviewer the request's cookie names: its signature ours, its
/// session live, and its address still one the config lets in.
pub async fn reviewer(app: &App, key: &SigningKey, headers: &HeaderMap) -> Option<Reviewer> {
    let value = cookie(headers, COOKIE)?;
    let (id, signature) = value.split_once('.')?;
    if !key.verify("review-session", &[id], signature) {
        return None;
    }
    let session = hash(id);
    let address = app.store.session(&session).await.ok()??;
    let actor = Actor::of(&app.config, &address)?;
    Some(Reviewer { actor, session })
}

/// The value of cookie `name` in the request, if sent.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The attributes every session cookie has.
fn attributes(app: &App) -> &'static str {
    if app.config.server.public_url.starts_with("https://") {
        "Path=/review; HttpOnly; SameSite=Lax; Secure"
    } else {
        "Path=/review; HttpOnly; SameSite=Lax"
    }
}

/// Starts a session for `address`; the Set-Cookie value that holds it.
pub async fn start(
    app: &App,
    key: &SigningKey,
    address: &str,
) -> Result<HeaderValue, crate::store::StoreError> {
    let id = hex(&rand::random::<[u8; 32]>());
    let hours = app.config.review.session_hours;
    let expires = app.now() + chrono::Duration::hours(i64::try_from(hours).unwrap_or(12));
    app.store
        .insert_session(&hash(&id), address, expires)
        .await?;
    let signature = key.sign("review-session", &[&id]);
    let cookie = format!(
        "{COOKIE}={id}.{signature}; Max-Age={}; {}",
        hours.saturating_mul(3600),
        attributes(app)
    );
    Ok(HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("")))
}

/// Ends `session` and the Set-Cookie value that clears the cookie.
pub async fn end(app: &App, session: &str) -> HeaderValue {
    if let Err(e) = app.store.end_session(session).await {
        tracing::warn!(error = %e, "a session could not be ended in the store");
    }
    HeaderValue::from_str(&format!("{COOKIE}=; Max-Age=0; {}", attributes(app)))
        .unwrap_or(HeaderValue::from_static(""))
}

/// The token that binds a review form to its session: a form posted from
/// another session, or forged elsewhere, is refused.
pub fn form_token(key: &SigningKey, session: &str) -> String {
    key.sign("review-form", &[session])
}

pub fn form_token_ok(key: &SigningKey, session: &str, token: &str) -> bool {
    key.verify("review-form", &[session], token)
}

/// Makes and emails a sign-in link for `address` if it may sign in and has
/// not asked too often this hour; does nothing otherwise. Never tells.
pub async fn send_link(app: &App, address: &str, lang: Language) {
    if let Err(e) = try_send_link(app, address, lang).await {
        tracing::warn!(error = %e, "a sign-in link could not be made");
    }
}

async fn try_send_link(app: &App, address: &str, lang: Language) -> anyhow::Result<()> {
    let Ok(address) = EmailAddress::parse(address) else {
        return Ok(());
    };
    let Some(actor) = Actor::of(&app.config, address.as_str()) else {
        tracing::info!("a sign-in link was asked for an address that may not sign in");
        return Ok(());
    };
    let review = &app.config.review;
    let since = app.now() - chrono::Duration::hours(1);
    if app.store.sign_in_links_since(&actor.address, since).await?
        >= u64::from(review.links_per_address_per_hour)
    {
        tracing::warn!("sign-in links over the hourly limit for one address");
        return Ok(());
    }
    let token = hex(&rand::random::<[u8; 32]>());
    let token_hash = hash(&token);
    let minutes = review.link_minutes;
    let expires = app.now() + chrono::Duration::minutes(i64::try_from(minutes).unwrap_or(15));
    app.store
        .insert_sign_in_link(&token_hash, &actor.address, expires)
        .await?;
    let link = format!(
        "{}/review/sign-in/{token}?lang={}",
        app.config.server.public_url.trim_end_matches('/'),
        lang.code()
    );
    let context = Context::SignIn(SignIn {
        office: Named {
            name: app.config.office.name.get(lang),
        },
        link,
        minutes,
    });
    let rendered = app.templates.render(lang, &context)?;
    let message = office::message(
        app,
        lang,
        &rendered,
        &To {
            name: "",
            address: &address,
            id_prefix: "sign-in",
            consultation_id: None,
            cso_id: None,
            in_reply_to: None,
        },
        EmailFor::SignIn {
            token_hash: &token_hash,
        },
    )?;
    app.store.enqueue(&[message]).await?;
    Ok(())
}

/// Uses a sign-in link: the address it was made for, if it is unused,
/// unexpired and still allowed in.
pub async fn use_link(app: &App, token: &str) -> Option<String> {
    if token.len() > 128 {
        return None;
    }
    let address = app.store.use_sign_in_link(&hash(token)).await.ok()??;
    Actor::of(&app.config, &address).map(|a| a.address)
}
