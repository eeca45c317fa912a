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
    #[error("the demo consultation is not valid: {0}")]
    Consultation(#[from] crate::consultation::spec::SpecError),
}

/// The demo's consultation, open from `today` for six weeks, so the web
/// form has something to show: fictional, in the example FISCAL area.
pub const DEMO_CONSULTATION: &str = "DEMO-FISCAL";

/// Opens the demo consultation unless it exists (or the config has no
/// FISCAL area to hang it on); its reference when it was made now.
pub async fn consultation(
    store: &dyn Store,
    config: &crate::config::Config,
    today: chrono::NaiveDate,
) -> Result<Option<&'static str>, DemoError> {
    let exists = store
        .consultations()
        .await?
        .iter()
        .any(|c| c.spec.reference == DEMO_CONSULTATION);
    if exists || config.policy_area("FISCAL").is_none() {
        return Ok(None);
    }
    let closes = today + chrono::Duration::days(42);
    let text = format!(
        r#"reference = "{DEMO_CONSULTATION}"
policy_area = "FISCAL"
opens = {today}
closes = {closes}
title = {{ sq = "Buxheti i hapur në bashki (demo)", en = "Open municipal budgets (demo)" }}
description.sq = "Një konsultim shembull: na tregoni çfarë të dhënash buxhetore ju nevojiten dhe si duhet të publikohen."
description.en = "An example consultation: tell us which budget data you need and how it should be published."

[[drafts]]
title = "Budget execution every month"
text = "The ministry publishes the execution of every municipality's budget each month, as open data."
"#
    );
    let input: crate::consultation::spec::SpecInput =
        toml::from_str(&text).map_err(|e| crate::consultation::spec::SpecError::Syntax {
            path: "the demo consultation".into(),
            message: e.message().to_string(),
        })?;
    let spec = input.validate(config, std::path::Path::new("."))?;
    let id = store.insert_consultation(&spec).await?;
    store
        .update_consultation(
            id,
            &spec,
            Some(crate::consultation::ConsultationState::Open),
        )
        .await?;
    Ok(Some(DEMO_CONSULTATION))
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
