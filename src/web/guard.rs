//! What stands between the form and a flood: a signed form timestamp, the
//! same-origin check, rate limits per client and per CSO link, and the
//! security headers on every page.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::FormConfig;
use crate::signing::{SigningKey, hex};

/// A form's token: when it was shown (in milliseconds, so `min_seconds` is
/// that long and not anything from one second less, as whole seconds made
/// it), a nonce (the submission's identity: sending it twice is one
/// proposal), and a signature binding both to the address the form posts to.
pub fn issue(key: &SigningKey, action: &str, now_ms: i64) -> String {
    let nonce = hex(&rand::random::<[u8; 12]>());
    let issued = now_ms.to_string();
    let signature = key.sign("form", &[&issued, &nonce, action]);
    format!("{issued}.{nonce}.{signature}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Ours, and sent in reasonable time: the nonce.
    Fine(String),
    TooFast,
    TooOld,
    Unknown,
}

pub fn check(
    key: &SigningKey,
    token: &str,
    action: &str,
    now_ms: i64,
    form: &FormConfig,
) -> TokenCheck {
    let mut parts = token.splitn(3, '.');
    let (Some(issued), Some(nonce), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return TokenCheck::Unknown;
    };
    if !key.verify("form", &[issued, nonce, action], signature) {
        return TokenCheck::Unknown;
    }
    let Ok(at) = issued.parse::<i64>() else {
        return TokenCheck::Unknown;
    };
    let age = now_ms.saturating_sub(at);
    let ms = |seconds: u64| i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    if age < ms(form.min_seconds) {
        TokenCheck::TooFast
    } else if age > ms(form.max_age_hours.saturating_mul(3600)) {
        TokenCheck::TooOld
    } else {
        TokenCheck::Fine(nonce.to_string())
    }
}

/// Whether a POST comes from another site. A browser says where a request
/// comes from (`Sec-Fetch-Site`): only `same-origin` (and `none`, typed by
/// the user) pass, so a sibling subdomain cannot post either. A browser too
/// old to say is judged by its Origin, which must be this server as the
/// public URL or the request's Host names it. A client that sends neither
/// header is not a browser, so not a cross-site post.
pub fn cross_site(headers: &HeaderMap, public_url: &str) -> bool {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    match value(header::HeaderName::from_static("sec-fetch-site")) {
        Some("same-origin" | "none") => return false,
        Some(_) => return true,
        None => {}
    }
    let Some(origin) = value(header::ORIGIN) else {
        return false;
    };
    let public = origin_of(public_url);
    let host = value(header::HOST);
    let same_host = host.is_some_and(|h| {
        origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h))
    });
    !(origin.eq_ignore_ascii_case(public) || same_host)
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Posts per hour, per client address and per CSO link.
pub struct Limits {
    clients: DefaultKeyedRateLimiter<IpAddr>,
    links: DefaultKeyedRateLimiter<String>,
}

/// A quota of `n` an hour, all of which may be used at once.
pub(super) fn per_hour(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_hour(n).allow_burst(n)
}

impl Limits {
    pub fn new(form: &FormConfig) -> Self {
        Self {
            clients: DefaultKeyedRateLimiter::keyed(per_hour(form.posts_per_client_per_hour)),
            links: DefaultKeyedRateLimiter::keyed(per_hour(form.posts_per_cso_per_hour)),
        }
    }

    /// Whether one more post from `client` (and through `link`) may go
    /// now; counts it if so.
    pub fn allow(&self, client: IpAddr, link: Option<&str>) -> bool {
        // Forget clients whose allowance is whole again, so the table
        // stays as small as the last hour's visitors.
        if self.clients.len() > 10_000 {
            self.clients.retain_recent();
            self.links.retain_recent();
        }
        self.clients.check_key(&client).is_ok()
            && link.is_none_or(|l| self.links.check_key(&l.to_string()).is_ok())
    }
}

/// Headers every response carries: no script runs, no other site frames a
/// page, nothing is sniffed, and a personal link never leaves in a Referer
/// to another site.
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    // A response that set its own (stricter) policy keeps it: an
    // attachment is sandboxed.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(
            h,
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        );
    }
    set(h, "x-content-type-options", "nosniff");
    // Same-origin, not no-referrer: with no-referrer a browser sends
    // `Origin: null` on the form's own POST.
    set(h, "referrer-policy", "same-origin");
    set(h, "x-frame-options", "DENY");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> FormConfig {
        crate::config::Config::embedded().unwrap().form
    }

    #[test]
    fn a_token_holds_for_its_own_form_and_time() {
        let key = SigningKey::fixed(b"0123456789abcdef0123456789abcdef");
        let shown = 1_000_000;
        let token = issue(&key, "/p/abc", shown);
        assert!(matches!(
            check(&key, &token, "/p/abc", shown + 10_000, &form()),
            TokenCheck::Fine(_)
        ));
        // Three seconds means three: not 2.001 as whole seconds allowed.
        assert_eq!(
            check(&key, &token, "/p/abc", shown + 2_999, &form()),
            TokenCheck::TooFast
        );
        assert!(matches!(
            check(&key, &token, "/p/abc", shown + 3_000, &form()),
            TokenCheck::Fine(_)
        ));
        assert_eq!(
            check(&key, &token, "/p/abc", shown + 25 * 3_600_000, &form()),
            TokenCheck::TooOld
        );
        assert_eq!(
            check(&key, &token, "/p/other", shown + 10_000, &form()),
            TokenCheck::Unknown
        );
        let forged = token.replacen("1000000", "900000", 1);
        assert_eq!(
            check(&key, &forged, "/p/abc", shown + 10_000, &form()),
            TokenCheck::Unknown
        );
    }

    #[test]
    fn posts_from_another_site_are_told_apart() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h, "https://ogp.gov.al"), "no browser headers");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://ogp.gov.al"),
        );
        assert!(!cross_site(&h, "https://ogp.gov.al/"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h, "https://ogp.gov.al"));
        h.insert(header::HOST, HeaderValue::from_static("evil.example"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(cross_site(&h, "https://ogp.gov.al"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!cross_site(&h, "https://ogp.gov.al"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h, "https://ogp.gov.al"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(cross_site(&h, "https://ogp.gov.al"));
        // The browser's word counts over an Origin it had to hide.
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h, "https://ogp.gov.al"));
    }
}
