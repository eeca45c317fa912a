//! Bringing the store in line with a registry export.
//!
//! An import compares the file with what the store holds and writes only the
//! difference, in one transaction: importing the same file twice changes
//! nothing, and a file that is refused or fails half-way leaves no trace.
//!
//! The file is read on a thread of its own, a chunk of rows ahead, while the
//! chunk before is looked up in the store and written: memory holds a few
//! chunks and one entry for each organisation met, however long the file.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::Arc;

use super::csv_file::{Chunk, CsvFileError, FileFacts, RegistryReader, RowProblem, RowWarning};
use super::encoding::Input;
use super::{Cso, CsoRecord, ImportLogEntry, RegistryChanges};
use crate::domain::RegistrationNumber;
use crate::store::{RegistryImport, Store, StoreError};

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

/// Rows read, looked up and written together: enough to make each
/// statement worth its round trip, few enough to keep memory flat.
const CHUNK_ROWS: usize = 5_000;

/// Imports the registry file at `path`.
pub async fn import_file(
    store: &dyn Store,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let shown = path.display().to_string();
    // Opened here first, so a missing file is told as the system says it.
    std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: shown.clone(),
        source,
    })?;
    let file_name = path
        .file_name()
        .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
    import_input(store, Input::File(path.to_path_buf()), &file_name, options)
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
    import_input(store, Input::Bytes(Arc::from(bytes)), name, options).await
}

async fn import_input(
    store: &dyn Store,
    input: Input,
    name: &str,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let file_error = |source| ImportError::File {
        path: name.to_string(),
        source,
    };
    let (chunks, mut read) = tokio::sync::mpsc::channel::<Chunk>(2);
    let encoding = options.encoding.clone();
    let reading = tokio::task::spawn_blocking(move || -> Result<FileFacts, CsvFileError> {
        let mut reader = RegistryReader::open(&input, encoding.as_deref())?;
        while let Some(chunk) = reader.next_chunk(CHUNK_ROWS)? {
            if chunks.blocking_send(chunk).is_err() {
                break; // the import stopped: its error is the one told
            }
        }
        reader.finish()
    });

    // The write lock is taken once the file is known to have a header and
    // a first chunk of rows, not for a file refused at its start.
    let Some(first) = read.recv().await else {
        finished(reading).await.map_err(file_error)?;
        return Err(file_error(CsvFileError::NoRows));
    };
    let mut import = store.begin_import().await?;
    let mut plan = Plan::new(options);
    plan.take(import.as_mut(), first).await?;
    while let Some(chunk) = read.recv().await {
        plan.take(import.as_mut(), chunk).await?;
    }
    let facts = finished(reading).await.map_err(file_error)?;
    let inactivated = plan.leave(import.as_mut(), name).await?;

    plan.problems.sort_by_key(|p| p.line);
    let log = ImportLogEntry {
        file_name: name.to_string(),
        full: options.mode == ImportMode::Full,
        added: plan.added as u64,
        updated: plan.updated as u64,
        unchanged: plan.unchanged as u64,
        inactivated: inactivated as u64,
        skipped: plan.problems.len() as u64,
    };
    let changed = plan.added + plan.updated + inactivated > 0;
    if !options.dry_run && changed {
        import.commit(&log).await?;
    }
    // Otherwise dropped: a dry run's writes are rolled back.
    Ok(ImportSummary {
        dry_run: options.dry_run,
        encoding: facts.encoding,
        other_encoding: facts.other_encoding,
        delimiter: facts.delimiter,
        added: plan.added,
        updated: plan.updated,
        unchanged: plan.unchanged,
        inactivated,
        skipped: plan.problems.len(),
        problems: plan.problems,
        warnings: plan.warnings,
        changes: plan.listed,
    })
}

/// What the reading thread found: how the file was read, or why it is
/// refused.
async fn finished(
    reading: tokio::task::JoinHandle<Result<FileFacts, CsvFileError>>,
) -> Result<FileFacts, CsvFileError> {
    reading
        .await
        .unwrap_or_else(|e| Err(CsvFileError::Io(std::io::Error::other(e))))
}

/// In `Plan::met`: an organisation named only by rows that were skipped.
const SKIPPED_ONLY: u64 = 0;

/// What the import has found and done so far, a chunk at a time.
struct Plan<'o> {
    options: &'o ImportOptions,
    /// Every organisation of the store met in the file, by id: the line of
    /// its row, or [`SKIPPED_ONLY`]. It tells a registration number
    /// repeated anywhere in the file, and who a full import leaves out.
    met: HashMap<i64, u64, foldhash::fast::RandomState>,
    /// How many of those met were active before the import.
    met_active: usize,
    added: usize,
    updated: usize,
    unchanged: usize,
    problems: Vec<RowProblem>,
    warnings: Vec<RowWarning>,
    listed: Option<Vec<RegistryChange>>,
}

impl<'o> Plan<'o> {
    fn new(options: &'o ImportOptions) -> Self {
        Self {
            options,
            met: HashMap::default(),
            met_active: 0,
            added: 0,
            updated: 0,
            unchanged: 0,
            problems: Vec::new(),
            warnings: Vec::new(),
            listed: options.list_changes.then(Vec::new),
        }
    }

    fn list(&mut self, change: ChangeKind, record: &CsoRecord, fields: Vec<FieldChange>) {
        if let Some(listed) = self.listed.as_mut() {
            listed.push(RegistryChange {
                change,
                registration_no: record.registration_no.to_string(),
                name: record.name.clone(),
                fields,
            });
        }
    }

    /// Records that `cso` was met on `line` (or by a skipped row).
    fn meet(&mut self, cso: &Cso, line: u64) {
        match self.met.entry(cso.id) {
            Entry::Vacant(v) => {
                v.insert(line);
                self.met_active += usize::from(cso.active);
            }
            Entry::Occupied(mut o) => {
                if line != SKIPPED_ONLY && *o.get() == SKIPPED_ONLY {
                    o.insert(line);
                }
            }
        }
    }

    /// Compares a chunk of rows with the store and writes the difference.
    async fn take(
        &mut self,
        import: &mut dyn RegistryImport,
        chunk: Chunk,
    ) -> Result<(), StoreError> {
        let numbers: Vec<&str> = chunk
            .rows
            .iter()
            .map(|r| r.record.registration_no.as_str())
            .chain(chunk.skipped_registration_nos.iter().map(|r| r.as_str()))
            .collect();
        let existing: HashMap<RegistrationNumber, Cso> = import
            .find(&numbers)
            .await?
            .into_iter()
            .map(|c| (c.record.registration_no.clone(), c))
            .collect();

        let mut changes = RegistryChanges::default();
        let mut new_here: HashMap<RegistrationNumber, u64> = HashMap::new();
        for row in chunk.rows {
            let number = &row.record.registration_no;
            let cso = existing.get(number);
            let first = match cso {
                Some(cso) => self
                    .met
                    .get(&cso.id)
                    .copied()
                    .filter(|&l| l != SKIPPED_ONLY),
                None => new_here.get(number).copied(),
            };
            if let Some(first) = first {
                self.problems.push(RowProblem {
                    line: row.line,
                    registration_no: Some(number.to_string()),
                    reason: format!("repeats registration number {number} from line {first}"),
                });
                continue;
            }
            self.warnings
                .extend(row.warnings.into_iter().map(|reason| RowWarning {
                    line: row.line,
                    registration_no: Some(number.to_string()),
                    reason,
                }));
            match cso {
                None => {
                    new_here.insert(number.clone(), row.line);
                    self.list(ChangeKind::Added, &row.record, Vec::new());
                    changes.added.push(row.record);
                }
                Some(cso) => {
                    self.meet(cso, row.line);
                    if cso.active && cso.record == row.record {
                        self.unchanged += 1;
                    } else {
                        if self.options.list_changes {
                            let fields = field_changes(cso, &row.record);
                            self.list(ChangeKind::Updated, &row.record, fields);
                        }
                        changes.updated.push((cso.id, row.record));
                    }
                }
            }
        }
        // A row that was skipped still names a registered organisation.
        for number in &chunk.skipped_registration_nos {
            if let Some(cso) = existing.get(number) {
                self.meet(cso, SKIPPED_ONLY);
            }
        }
        self.problems.extend(chunk.problems);
        self.added += changes.added.len();
        self.updated += changes.updated.len();
        if changes.added.is_empty() && changes.updated.is_empty() {
            return Ok(());
        }
        let ids = import.write(&changes).await?;
        for (id, record) in ids.into_iter().zip(&changes.added) {
            let line = new_here.get(&record.registration_no).copied();
            self.met.insert(id, line.unwrap_or(SKIPPED_ONLY));
        }
        Ok(())
    }

    /// In a full import, marks inactive every active organisation the file
    /// did not name; returns how many.
    async fn leave(
        &mut self,
        import: &mut dyn RegistryImport,
        name: &str,
    ) -> Result<usize, ImportError> {
        if self.options.mode != ImportMode::Full {
            return Ok(0);
        }
        let leaving: Vec<i64> = import
            .active_ids()
            .await?
            .into_iter()
            .filter(|id| !self.met.contains_key(id))
            .collect();
        // Those active before: the ones met that were, and the ones not met
        // (the import only changes organisations it meets).
        let active = self.met_active + leaving.len();
        let would = leaving.len();
        if !self.options.allow_mass_inactivation && active >= 10 && would * 2 > active {
            return Err(ImportError::MassInactivation {
                path: name.to_string(),
                would,
                active,
            });
        }
        if self.options.list_changes {
            for ids in leaving.chunks(CHUNK_ROWS) {
                let mut leavers = import.find_ids(ids).await?;
                leavers.sort_unstable_by_key(|c| c.id);
                for cso in leavers {
                    self.list(ChangeKind::Inactivated, &cso.record, Vec::new());
                }
            }
        }
        if !leaving.is_empty() {
            import
                .write(&RegistryChanges {
                    inactivated: leaving,
                    ..RegistryChanges::default()
                })
                .await?;
        }
        Ok(would)
    }
}
