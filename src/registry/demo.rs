//! The bundled example registry for `cocreate serve --demo`: 300 fictional
//! organisations (registration numbers DEMO-0001…, addresses under the
//! reserved example.org domain), so a newcomer sees a working system at once.

use super::import::{ImportError, ImportMode, ImportOptions, ImportSummary, import_bytes};
use crate::store::Store;

pub const DEMO_REGISTRY: &[u8] = include_bytes!("../../config/demo-registry.csv");
pub const DEMO_PREFIX: &str = "DEMO-";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "this database already holds {0} real organisations; the demo only runs on an empty database or one it made itself (set COCREATE_DATABASE_URL to another database)"
    )]
    RealData(usize),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Loads the demo registry. Loading it again changes nothing. Refuses a
/// database holding real organisations, so fictional ones never mix with them.
pub async fn load(store: &dyn Store) -> Result<ImportSummary, DemoError> {
    let real = store
        .csos()
        .await?
        .iter()
        .filter(|c| !c.record.registration_no.as_str().starts_with(DEMO_PREFIX))
        .count();
    if real > 0 {
        return Err(DemoError::RealData(real));
    }
    let options = ImportOptions {
        mode: ImportMode::Partial,
        ..ImportOptions::default()
    };
    Ok(import_bytes(store, DEMO_REGISTRY, "demo-registry.csv", &options).await?)
}
