//! `[review]`: how LFP contacts and POC staff sign in to the review pages.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// How long an emailed sign-in link works. Short, because an inbox is
    /// often read on shared or lost phones.
    pub link_minutes: u64,
    /// How long a session lasts before signing in again.
    pub session_hours: u64,
    /// Sign-in links one address may ask for an hour.
    pub links_per_address_per_hour: u32,
    /// Sign-in requests one client address may make an hour.
    pub requests_per_client_per_hour: u32,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            link_minutes: 15,
            session_hours: 12,
            links_per_address_per_hour: 5,
            requests_per_client_per_hour: 30,
        }
    }
}
