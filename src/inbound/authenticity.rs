//! Whether a message really comes from the address in its From, as far as
//! the receiving mail server could tell: DMARC, DKIM and SPF results from
//! its Authentication-Results header (RFC 8601). cocreate does not check
//! signatures itself; the server that took the message from the internet
//! did, and wrote what it found at the top of the message.
//!
//! A sender can write an Authentication-Results header of their own, lower
//! down. Only the topmost one counts (the last server to add one is ours),
//! or, when `inbound.trusted_authserv_id` names our server, only one that
//! server wrote.

use serde::Serialize;

use super::parse::Parsed;

/// DMARC, DKIM and SPF results as the receiving server recorded them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Authentication {
    pub dmarc: Option<String>,
    pub dkim: Option<String>,
    pub spf: Option<String>,
    /// The authserv-id: which server wrote the results.
    pub source: Option<String>,
}

impl Authentication {
    /// Reads one Authentication-Results value.
    pub fn parse(header: &str) -> Self {
        let result = |method: &str| {
            header.split(';').find_map(|part| {
                let rest = part.trim().strip_prefix(method)?.trim_start();
                let rest = rest.strip_prefix('=')?.trim_start();
                Some(
                    rest.split(|c: char| c.is_whitespace() || c == '(')
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase(),
                )
            })
        };
        Self {
            dmarc: result("dmarc"),
            dkim: result("dkim"),
            spf: result("spf"),
            source: header.split(';').next().map(|s| s.trim().to_string()),
        }
    }

    /// The results that count for `p` (see the module's documentation).
    pub fn of(p: &Parsed<'_>, trusted_authserv_id: Option<&str>) -> Self {
        let mut headers = p
            .headers
            .iter()
            .filter(|(name, _)| name == "authentication-results")
            .map(|(_, value)| Self::parse(value));
        match trusted_authserv_id.map(str::trim).filter(|s| !s.is_empty()) {
            Some(ours) => headers
                .find(|a| {
                    a.source.as_deref().is_some_and(|s| {
                        s.split_whitespace()
                            .next()
                            .is_some_and(|id| id.eq_ignore_ascii_case(ours))
                    })
                })
                .unwrap_or_default(),
            None => headers.next().unwrap_or_default(),
        }
    }

    /// The server found the message forged: DMARC failed, or SPF and DKIM
    /// both did (no DKIM result counts as no valid signature once SPF was
    /// checked).
    pub fn failed(&self) -> bool {
        let is = |r: &Option<String>, bad: &[&str]| r.as_deref().is_some_and(|r| bad.contains(&r));
        if is(&self.dmarc, &["fail"]) {
            return true;
        }
        let spf_failed = is(&self.spf, &["fail", "softfail"]);
        let dkim_failed = match &self.dkim {
            None => self.spf.is_some(),
            Some(_) => is(
                &self.dkim,
                &["fail", "none", "permerror", "policy", "neutral"],
            ),
        };
        spf_failed && dkim_failed
    }

    /// One line for a flag or a reason: "dmarc=fail spf=fail", or that the
    /// server recorded nothing.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("dmarc", &self.dmarc),
            ("dkim", &self.dkim),
            ("spf", &self.spf),
        ]
        .into_iter()
        .filter_map(|(m, r)| r.as_ref().map(|r| format!("{m}={r}")))
        .collect();
        if parts.is_empty() {
            "no authentication results recorded".into()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_results_are_read() {
        let a = Authentication::parse(
            "mx.ogp.example; dkim=pass header.d=cso.al; spf=pass smtp.mailfrom=cso.al; dmarc=pass (p=none) header.from=cso.al",
        );
        assert_eq!(a.dkim.as_deref(), Some("pass"));
        assert_eq!(a.spf.as_deref(), Some("pass"));
        assert_eq!(a.dmarc.as_deref(), Some("pass"));
        assert_eq!(a.source.as_deref(), Some("mx.ogp.example"));
    }

    #[test]
    fn results_are_read_and_judged() {
        let forged = Authentication::parse(
            "mx.office.example; dmarc=fail (p=none) header.from=cso.example.org; spf=fail smtp.mailfrom=x",
        );
        assert_eq!(forged.dmarc.as_deref(), Some("fail"));
        assert!(forged.failed());
        assert_eq!(forged.describe(), "dmarc=fail spf=fail");
        let pass = Authentication::parse(
            "mx.office.example; dkim=pass header.d=cso.example.org; spf=fail; dmarc=pass",
        );
        assert!(!pass.failed());
        let spf_only = Authentication::parse("mx.office.example; spf=softfail smtp.mailfrom=x");
        assert!(spf_only.failed(), "no DKIM signature and SPF failing");
        let dkim_ok = Authentication::parse("mx.office.example; spf=fail; dkim=pass");
        assert!(!dkim_ok.failed());
        assert!(!Authentication::default().failed());
        assert_eq!(
            Authentication::default().describe(),
            "no authentication results recorded"
        );
    }
}
