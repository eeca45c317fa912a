//! What the registry holds: organisations, their addresses' status, the
//! history of imports, and the POC's relevance decisions.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{EmailAddress, Language, RegistrationNumber, Relevance};

/// What the registry says about one organisation, as read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsoRecord {
    pub registration_no: RegistrationNumber,
    pub name: String,
    pub emails: Vec<EmailAddress>,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub fields_of_activity: Vec<String>,
    pub language: Language,
}

/// An organisation as cocreate holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cso {
    pub id: i64,
    pub record: CsoRecord,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

/// Everything one import changes, written in one transaction so that an
/// import either happens completely or not at all.
#[derive(Debug, Default)]
pub struct RegistryChanges {
    pub added: Vec<CsoRecord>,
    /// Existing CSOs (by id) whose details changed or that are back in the
    /// registry after being inactive.
    pub updated: Vec<(i64, CsoRecord)>,
    pub inactivated: Vec<i64>,
    pub log: ImportLogEntry,
}

/// The history line kept for every import that wrote something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportLogEntry {
    pub file_name: String,
    pub full: bool,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub inactivated: u64,
    pub skipped: u64,
}

/// The POC's decision that a CSO is (or is not) relevant to an area,
/// whatever its fields of activity say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelevanceOverride {
    pub registration_no: RegistrationNumber,
    pub policy_area: String,
    pub relevance: Relevance,
    pub reason: String,
    pub set_at: DateTime<Utc>,
}

/// What cocreate knows about one address beyond the registry: whether its
/// owner opted out of consultation mail, and whether it bounces.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddressStatus {
    pub address: String,
    pub opted_out_at: Option<DateTime<Utc>>,
    pub opt_out_source: Option<String>,
    pub bounced_at: Option<DateTime<Utc>>,
    pub bounce_reason: Option<String>,
    pub soft_bounces: u32,
    pub restored_at: Option<DateTime<Utc>>,
    pub restore_reason: Option<String>,
}

/// A past import, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    pub imported_at: DateTime<Utc>,
    pub entry: ImportLogEntry,
}
