//! The registry of civil-society organisations (CSOs): importing the registry
//! office's CSV export, and deciding which CSOs each policy area must reach.
//!
//! A CSO is identified by its registration number. Imports never delete: an
//! organisation missing from a full export is marked inactive, so everything
//! it ever sent stays attached to it.

mod columns;
pub mod csv_file;
pub mod demo;
pub mod encoding;
pub mod import;
mod lines;
mod progress;
pub mod relevance;

pub use crate::store::records::{Cso, CsoRecord, ImportLogEntry, RegistryChanges};
