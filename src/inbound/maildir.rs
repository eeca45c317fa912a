//! A maildir drop folder: messages in `new/` are taken in, then moved to
//! `cur/`. A message is moved only after it is stored, so a crash between
//! the two means it is read again, recognised as already stored, and moved.
//!
//! A file that can never be taken in (larger than `inbound.max_message_bytes`)
//! is moved to `refused/`, with the reason in a `.reason` file beside it, so
//! it neither stops the messages behind it nor fills the log.

use tokio_util::sync::CancellationToken;

use crate::app::App;
use std::path::{Path, PathBuf};

use crate::intake::{BATCH_BYTES, BATCH_MESSAGES, Intake, Outcome};
use crate::telemetry::Throttle;

/// Warnings a sweep every half second would otherwise repeat for as long as
/// their cause lasts (an unreadable file, a store that is down).
static UNREADABLE: std::sync::Mutex<Throttle> =
    std::sync::Mutex::new(Throttle::new(std::time::Duration::from_secs(60)));
static NOT_STORED: std::sync::Mutex<Throttle> =
    std::sync::Mutex::new(Throttle::new(std::time::Duration::from_secs(60)));

fn ready(throttle: &std::sync::Mutex<Throttle>) -> Option<u64> {
    throttle.lock().map_or(Some(0), |mut t| t.ready())
}

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
    /// Moved to refused/ (too large ever to be taken in).
    pub refused: usize,
}

/// Creates new/, cur/, tmp/ and refused/ under `dir` if missing.
pub fn ensure(dir: &Path) -> Result<(), MaildirError> {
    for sub in ["new", "cur", "tmp", "refused"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|source| MaildirError::Folder {
            path: p.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// How often `serve` looks in new/ for dropped messages.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// `serve`'s watch on the drop folder: a sweep every half second until
/// `stop`.
pub async fn watch(app: App, dir: PathBuf, stop: CancellationToken) {
    tracing::info!(maildir = %dir.display(), "watching for dropped messages in new/");
    let max = app.config.inbound.max_message_bytes;
    loop {
        match sweep(&app.intake(), &dir, max).await {
            Ok((s, _)) if s.taken > 0 => {
                tracing::info!(taken = s.taken, left = s.left, "maildir sweep")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "maildir sweep failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Takes in every message in `dir/new`, oldest name first, in batches: each
/// batch is stored in one transaction and what became of it written in a
/// second, so a sweep of thousands of replies costs a few durable commits,
/// not two per message. A message that cannot be stored stays in new/ for
/// the next sweep.
pub async fn sweep(
    intake: &Intake<'_>,
    dir: &Path,
    max_bytes: usize,
) -> Result<(Sweep, Vec<(PathBuf, Outcome)>), MaildirError> {
    ensure(dir)?;
    let new = dir.join("new");
    let mut files: Vec<(PathBuf, u64)> = crate::blocking::run(|| {
        Ok::<_, MaildirError>(
            std::fs::read_dir(&new)
                .map_err(|source| MaildirError::Folder {
                    path: new.display().to_string(),
                    source,
                })?
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    meta.is_file().then(|| (e.path(), meta.len()))
                })
                .collect(),
        )
    })?;
    files.sort();
    let mut sweep = Sweep::default();
    let mut outcomes = Vec::new();
    if files.is_empty() {
        return Ok((sweep, outcomes));
    }
    // Stored messages are moved to cur/ on a thread of their own, while the
    // next batch is read and stored.
    let (seen, to_move) = std::sync::mpsc::channel::<PathBuf>();
    let mover = {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            for path in to_move {
                mark_seen(&dir, &path);
            }
        })
    };
    // A batch's files are read together, in one stretch of blocking work.
    let mut pending: Vec<PathBuf> = Vec::new();
    let mut pending_bytes = 0u64;
    let mut files = files.into_iter().peekable();
    while let Some((path, size)) = files.next() {
        // The size first: a huge file is never read into memory.
        if size > max_bytes as u64 {
            let reason = format!(
                "{size} bytes, more than inbound.max_message_bytes ({max_bytes}); not taken in"
            );
            match crate::blocking::run(|| refuse(dir, &path, &reason)) {
                Ok(to) => {
                    tracing::warn!(file = %path.display(), moved_to = %to.display(), %reason, "message refused");
                    sweep.refused += 1;
                }
                Err(e) => {
                    if let Some(more) = ready(&UNREADABLE) {
                        tracing::warn!(file = %path.display(), error = %e, %reason, times_since_last = more, "cannot move a refused message out of new/");
                    }
                    sweep.left += 1;
                }
            }
        } else {
            pending.push(path);
            pending_bytes += size;
        }
        let full = pending.len() >= BATCH_MESSAGES || pending_bytes >= BATCH_BYTES as u64;
        if (full || files.peek().is_none()) && !pending.is_empty() {
            let batch = read_all(std::mem::take(&mut pending), &mut sweep);
            pending_bytes = 0;
            take_in(intake, &seen, batch, &mut sweep, &mut outcomes).await;
        }
    }
    drop(seen);
    if crate::blocking::run(|| mover.join()).is_err() {
        tracing::error!("moving stored messages to cur/ failed; they are recognised next time");
    }
    Ok((sweep, outcomes))
}

/// Reads the files of one batch; one that cannot be read stays in new/.
fn read_all(paths: Vec<PathBuf>, sweep: &mut Sweep) -> Vec<(PathBuf, Vec<u8>)> {
    crate::blocking::run(|| {
        paths
            .into_iter()
            .filter_map(|path| match std::fs::read(&path) {
                Ok(raw) => Some((path, raw)),
                Err(e) => {
                    if let Some(more) = ready(&UNREADABLE) {
                        tracing::warn!(file = %path.display(), error = %e, times_since_last = more, "cannot read a dropped message; it stays in new/");
                    }
                    sweep.left += 1;
                    None
                }
            })
            .collect()
    })
}

/// Stores and processes one batch, then has what was stored moved to cur/.
async fn take_in(
    intake: &Intake<'_>,
    seen: &std::sync::mpsc::Sender<PathBuf>,
    batch: Vec<(PathBuf, Vec<u8>)>,
    sweep: &mut Sweep,
    outcomes: &mut Vec<(PathBuf, Outcome)>,
) {
    if batch.is_empty() {
        return;
    }
    let items: Vec<(&[u8], &str)> = batch
        .iter()
        .map(|(_, raw)| (raw.as_slice(), "maildir"))
        .collect();
    match intake.accept_many(&items).await {
        Ok(results) => {
            for ((path, _), result) in batch.iter().zip(results) {
                // Only now, with the message stored. If the mover is gone,
                // the file stays in new/ and is recognised next time.
                let _ = seen.send(path.clone());
                sweep.taken += 1;
                match result {
                    Ok(outcome) => outcomes.push((path.clone(), outcome)),
                    // Stored; processing is retried from the store.
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "processing a stored message failed")
                    }
                }
            }
        }
        Err(e) => {
            if let Some(more) = ready(&NOT_STORED) {
                tracing::warn!(messages = batch.len(), error = %e, times_since_last = more, "could not store dropped messages; they stay in new/");
            }
            sweep.left += batch.len();
        }
    }
}

/// new/NAME → refused/NAME, with the reason in refused/NAME.reason.
fn refuse(dir: &Path, path: &Path, reason: &str) -> std::io::Result<PathBuf> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let target = dir.join("refused").join(name.as_ref());
    std::fs::write(
        dir.join("refused").join(format!("{name}.reason")),
        format!("{reason}\n"),
    )?;
    std::fs::rename(path, &target)?;
    Ok(target)
}

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
