//! Bringing the store in line with a registry export.
//!
//! An import compares the file with what the store holds and writes only the
//! difference, in one transaction: importing the same file twice changes
//! nothing, and a file that is refused or fails half-way leaves no trace.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::csv_file::{self, CsvFileError, RowProblem, RowWarning};
use super::{Cso, CsoRecord, ImportLogEntry, RegistryChanges};
use crate::domain::RegistrationNumber;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} was not imported: {source}")]
    File { path: String, source: CsvFileError },
    #[error(
        "{path} was not imported: it would mark {would} of the {active} active organisations inactive; if it really is the whole registry, run again with --allow-mass-inactivation, or use --partial to only add and update"
    )]
    MassInactivation {
        path: String,
        would: usize,
        active: usize,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether the file is the whole registry (organisations missing from it are
/// no longer registered) or only some organisations to add or update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    Full,
    Partial,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub mode: ImportMode,
    pub dry_run: bool,
    pub encoding: Option<String>,
    /// A full import that would inactivate more than half of the active
    /// organisations is almost always the wrong file; this lets it through.
    pub allow_mass_inactivation: bool,
    /// List each organisation added, updated (with each field's old and new
    /// value) or inactivated in the summary, not only the counts.
    pub list_changes: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            mode: ImportMode::Full,
            dry_run: false,
            encoding: None,
            allow_mass_inactivation: false,
            list_changes: false,
        }
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub encoding: &'static str,
    /// When the encoding was told by the letters used: the other candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_encoding: Option<&'static str>,
    pub delimiter: char,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub inactivated: usize,
    pub skipped: usize,
    pub problems: Vec<RowProblem>,
    pub warnings: Vec<RowWarning>,
    /// Each change, when asked for ([`ImportOptions::list_changes`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<RegistryChange>>,
}

/// One organisation an import adds, updates or marks inactive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryChange {
    pub change: ChangeKind,
    pub registration_no: String,
    pub name: String,
    /// For an update: each field that changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Updated,
    Inactivated,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Updated => "updated",
            Self::Inactivated => "inactivated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

/// The fields of `new` that differ from `old`, as the POC would read them.
fn field_changes(old: &Cso, new: &CsoRecord) -> Vec<FieldChange> {
    let emails = |r: &CsoRecord| {
        r.emails
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let shown = |r: &CsoRecord| {
        [
            ("name", r.name.clone()),
            ("emails", emails(r)),
            ("phone", r.phone.clone().unwrap_or_default()),
            ("city", r.city.clone().unwrap_or_default()),
            ("fields_of_activity", r.fields_of_activity.join(", ")),
            ("language", r.language.to_string()),
        ]
    };
    let mut fields: Vec<FieldChange> = shown(&old.record)
        .into_iter()
        .zip(shown(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, old), (_, new))| FieldChange { field, old, new })
        .collect();
    if !old.active {
        fields.push(FieldChange {
            field: "active",
            old: "no".into(),
            new: "yes".into(),
        });
    }
    fields
}

/// Imports the registry file at `path`.
pub async fn import_file(
    store: &dyn Store,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: shown.clone(),
        source,
    })?;
    let file_name = path
        .file_name()
        .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
    import_bytes(store, &bytes, &file_name, options)
        .await
        .map_err(|e| match e {
            ImportError::File { source, .. } => ImportError::File {
                path: shown.clone(),
                source,
            },
            ImportError::MassInactivation { would, active, .. } => ImportError::MassInactivation {
                path: shown.clone(),
                would,
                active,
            },
            other => other,
        })
}

/// Imports a registry export held in memory; `name` is recorded in the
/// import history.
pub async fn import_bytes(
    store: &dyn Store,
    bytes: &[u8],
    name: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let file =
        csv_file::read(bytes, options.encoding.as_deref()).map_err(|source| ImportError::File {
            path: name.to_string(),
            source,
        })?;
    let existing = store.csos().await?;
    let (mut changes, unchanged, listed) = plan(
        file.rows,
        &file.skipped_registration_nos,
        existing,
        name,
        options,
    )?;
    changes.log.skipped = file.problems.len() as u64;

    let summary = ImportSummary {
        dry_run: options.dry_run,
        encoding: file.encoding,
        other_encoding: file.other_encoding,
        delimiter: file.delimiter,
        added: changes.added.len(),
        updated: changes.updated.len(),
        unchanged,
        inactivated: changes.inactivated.len(),
        skipped: file.problems.len(),
        problems: file.problems,
        warnings: file.warnings,
        changes: listed,
    };
    let changed = summary.added + summary.updated + summary.inactivated > 0;
    if !options.dry_run && changed {
        let rows = summary.added + summary.updated + summary.inactivated;
        let spinner = super::progress::spinner(rows, "writing to the database");
        store.apply_registry_changes(&changes).await?;
        spinner.finish_and_clear();
    }
    Ok(summary)
}

fn plan(
    rows: Vec<CsoRecord>,
    skipped: &[RegistrationNumber],
    existing: Vec<Cso>,
    name: &str,
    options: &ImportOptions,
) -> Result<(RegistryChanges, usize, Option<Vec<RegistryChange>>), ImportError> {
    let mut by_reg: HashMap<RegistrationNumber, Cso> = existing
        .into_iter()
        .map(|c| (c.record.registration_no.clone(), c))
        .collect();
    let active_before = by_reg.values().filter(|c| c.active).count();

    let mut changes = RegistryChanges::default();
    let mut unchanged = 0;
    let mut listed = options.list_changes.then(Vec::new);
    let mut list = |change, record: &CsoRecord, fields| {
        if let Some(listed) = listed.as_mut() {
            listed.push(RegistryChange {
                change,
                registration_no: record.registration_no.to_string(),
                name: record.name.clone(),
                fields,
            });
        }
    };
    for row in rows {
        match by_reg.remove(&row.registration_no) {
            None => {
                list(ChangeKind::Added, &row, Vec::new());
                changes.added.push(row);
            }
            Some(cso) if cso.active && cso.record == row => unchanged += 1,
            Some(cso) => {
                if options.list_changes {
                    list(ChangeKind::Updated, &row, field_changes(&cso, &row));
                }
                changes.updated.push((cso.id, row));
            }
        }
    }

    if options.mode == ImportMode::Full {
        // A row that was skipped still names a registered organisation.
        let still_registered: HashSet<&RegistrationNumber> = skipped.iter().collect();
        let mut leaving: Vec<&Cso> = by_reg
            .values()
            .filter(|c| c.active && !still_registered.contains(&c.record.registration_no))
            .collect();
        leaving.sort_unstable_by_key(|c| c.id);
        for c in &leaving {
            list(ChangeKind::Inactivated, &c.record, Vec::new());
        }
        changes.inactivated = leaving.iter().map(|c| c.id).collect();
        let would = changes.inactivated.len();
        if !options.allow_mass_inactivation && active_before >= 10 && would * 2 > active_before {
            return Err(ImportError::MassInactivation {
                path: name.to_string(),
                would,
                active: active_before,
            });
        }
    }

    changes.log = ImportLogEntry {
        file_name: name.to_string(),
        full: options.mode == ImportMode::Full,
        added: changes.added.len() as u64,
        updated: changes.updated.len() as u64,
        unchanged: unchanged as u64,
        inactivated: changes.inactivated.len() as u64,
        skipped: 0,
    };
    Ok((changes, unchanged, listed))
}
