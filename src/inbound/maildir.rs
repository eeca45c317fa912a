//! A maildir drop folder: messages in `new/` are taken in, then moved to
//! `cur/`. A message is moved only after it is stored, so a crash between
//! the two means it is read again, recognised as already stored, and moved.

use std::path::{Path, PathBuf};

use futures::StreamExt;

use crate::intake::{Intake, IntakeError, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum MaildirError {
    #[error("cannot use the maildir {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

/// What one sweep of `new/` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub taken: usize,
    pub left: usize,
}

/// Creates new/, cur/ and tmp/ under `dir` if missing.
pub fn ensure(dir: &Path) -> Result<(), MaildirError> {
    for sub in ["new", "cur", "tmp"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|source| MaildirError::Folder {
            path: p.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Takes in every message in `dir/new`, oldest name first. A message that
/// cannot be stored stays in new/ for the next sweep.
pub async fn sweep(
    intake: &Intake<'_>,
    dir: &Path,
    max_bytes: usize,
) -> Result<(Sweep, Vec<(PathBuf, Outcome)>), MaildirError> {
    ensure(dir)?;
    let new = dir.join("new");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
        .map_err(|source| MaildirError::Folder {
            path: new.display().to_string(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    // Messages are independent, so several are taken in at once: the
    // database round trips of one overlap with the parsing of another.
    let results: Vec<(PathBuf, Option<Outcome>, bool)> = futures::stream::iter(files)
        .map(|path| async move {
            // The size first: a huge file is never read into memory.
            let size = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
            if size > max_bytes as u64 {
                tracing::warn!(file = %path.display(), bytes = size, "message larger than inbound.max_message_bytes; left in new/");
                return (path, None, false);
            }
            let raw = match tokio::fs::read(&path).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read a dropped message");
                    return (path, None, false);
                }
            };
            match intake.accept(&raw, "maildir").await {
                Ok(outcome) => {
                    mark_seen(dir, &path);
                    (path, Some(outcome), true)
                }
                Err(IntakeError::Store(e)) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not store a dropped message; it stays in new/");
                    (path, None, false)
                }
                Err(e) => {
                    // Stored; processing failed and is retried from the store.
                    tracing::error!(file = %path.display(), error = %e, "processing a stored message failed");
                    mark_seen(dir, &path);
                    (path, None, true)
                }
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut sweep = Sweep::default();
    let mut outcomes = Vec::new();
    for (path, outcome, stored) in results {
        if stored {
            sweep.taken += 1;
        } else {
            sweep.left += 1;
        }
        if let Some(o) = outcome {
            outcomes.push((path, o));
        }
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((sweep, outcomes))
}

/// Messages taken in at once by a sweep.
const PARALLEL: usize = 8;

/// new/NAME → cur/NAME:2,S, the maildir way of saying "seen".
fn mark_seen(dir: &Path, path: &Path) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name.split(":2,").next().unwrap_or(&name);
    let target = dir.join("cur").join(format!("{base}:2,S"));
    if let Err(e) = std::fs::rename(path, &target) {
        tracing::warn!(file = %path.display(), error = %e, "stored, but could not move to cur/; it will be recognised next time");
    }
}
