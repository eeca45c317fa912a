//! The registry of civil-society organisations (CSOs): importing the registry
//! office's CSV export, and deciding which CSOs each policy area must reach.
//!
//! A CSO is identified by its registration number. Imports never delete: an
//! organisation missing from a full export is marked inactive, so everything
//! it ever sent stays attached to it.

pub mod csv_file;
pub mod demo;
pub mod import;
mod progress;
pub mod relevance;

use chrono::{DateTime, Utc};

use crate::domain::{EmailAddress, Language, RegistrationNumber};

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
