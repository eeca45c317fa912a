//! The embedded default: one SQLite file, nothing to install.
//!
//! SQLite allows one writer at a time. Writes go through a pool of exactly one
//! connection and start with BEGIN IMMEDIATE, so a transaction takes the write
//! lock before it reads instead of failing with "database is locked" when it
//! tries to upgrade; other processes (a CLI command beside the daemon) wait
//! for the lock up to the busy timeout. Reads use their own pool and, in WAL
//! mode, never wait for the writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Transaction, TransactionManager};

use super::Dialect;

/// How much memory each SQLite connection may use to keep the file's pages
/// at hand: the page cache, and the part of the file read through a memory
/// map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteMemory {
    pub cache_mib: u32,
    pub mmap_mib: u32,
}

impl Default for SqliteMemory {
    /// Eight times SQLite's own cache, and no memory map: a mapped file's
    /// pages count in the process's resident memory (the inbound
    /// benchmark's peak went from 88 to 170 MB with 256 MiB mapped), for no
    /// gain measured at 10,000 organisations.
    fn default() -> Self {
        Self {
            cache_mib: 16,
            mmap_mib: 0,
        }
    }
}
use crate::store::StoreError;
use crate::store::records::{Cso, RegistryChanges};
use crate::store::sql::SqlStore;
use crate::store::sql::registry::{CsoRow, fields_column};

/// SQLite, the embedded default.
pub struct Sqlite;

#[async_trait]
impl Dialect for Sqlite {
    type DB = sqlx::Sqlite;
    // The write lock is taken when the transaction begins, not when it
    // first writes, so it never fails half-way with "database is locked".
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const EMAILS_OF_CSO: &'static str = "SELECT group_concat(address, char(10)) FROM \
         (SELECT address FROM cso_emails e WHERE e.cso_id = c.id ORDER BY position)";
    // One writer at a time (BEGIN IMMEDIATE), so a claim needs no row
    // locks: two claimers never run the UPDATE at once.
    const LOCK_REGISTRY: &'static str = "";
    const CLAIM_LOCK: &'static str = "";
    const BLOB: &'static str = "BLOB";

    /// An anonymous `?`, bound in order: sqlx finds each named `$N` by a
    /// linear search, which makes a statement with thousands of them
    /// quadratic (it was most of the time of a batch of 256 proposals).
    fn param(_: usize) -> String {
        "?".to_string()
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn find_registered(
        tx: &mut Transaction<'_, Self::DB>,
        registration_nos: &[&str],
    ) -> Result<Vec<Cso>, StoreError> {
        on_handle(tx, |db| find_registered(db, registration_nos)).await
    }

    async fn active_cso_ids(tx: &mut Transaction<'_, Self::DB>) -> Result<Vec<i64>, StoreError> {
        on_handle(tx, |db| {
            let mut active = db.prepare("SELECT id FROM csos WHERE active ORDER BY id")?;
            let ids = active.query_map([], |r| r.get(0))?;
            Ok(ids.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn apply_registry_changes(
        tx: &mut Transaction<'_, Self::DB>,
        changes: &RegistryChanges,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        on_handle(tx, |db| Ok(write_registry(db, changes, now)?)).await
    }
}

/// Runs `f` on the transaction's own connection through rusqlite: the
/// registry import's many small statements, stepped in C, instead of each
/// going to sqlx's worker thread and back.
async fn on_handle<T>(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut handle = tx.lock_handle().await?;
    // SAFETY: the handle is sqlx's open connection, locked for as long as
    // `db` lives: sqlx's worker runs nothing on it meanwhile, and rusqlite
    // never closes a connection it did not open. What `f` does joins the
    // transaction sqlx began on it.
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }?;
    f(&db)
}

/// Looks each number up with one prepared statement: a few microseconds
/// each in SQLite, where a list in one statement would go through sqlx's
/// worker and its decoding.
fn find_registered(
    db: &rusqlite::Connection,
    registration_nos: &[&str],
) -> Result<Vec<Cso>, StoreError> {
    let mut find = db.prepare_cached(&format!(
        "SELECT c.id, c.registration_no, c.name, c.phone, c.city, c.fields_of_activity, \
         c.language, c.active, c.updated_at, ({}) AS emails FROM csos c \
         WHERE c.registration_no = ?1",
        Sqlite::EMAILS_OF_CSO
    ))?;
    let mut found = Vec::new();
    for number in registration_nos {
        let mut rows = find.query([number])?;
        while let Some(r) = rows.next()? {
            let updated_at: String = r.get(8)?;
            let row = CsoRow {
                id: r.get(0)?,
                registration_no: r.get(1)?,
                name: r.get(2)?,
                phone: r.get(3)?,
                city: r.get(4)?,
                fields_of_activity: r.get(5)?,
                language: r.get(6)?,
                active: r.get(7)?,
                // As sqlx writes a time (RFC 3339).
                updated_at: DateTime::parse_from_rfc3339(&updated_at)
                    .map_err(|e| StoreError::Corrupt(format!("updated_at {updated_at:?}: {e}")))?
                    .with_timezone(&Utc),
                emails: r.get(9)?,
            };
            found.push(row.into_cso()?);
        }
    }
    Ok(found)
}

/// Writes a chunk of an import with one prepared statement a kind of row,
/// stepped for each.
fn write_registry(
    db: &rusqlite::Connection,
    changes: &RegistryChanges,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<i64>> {
    use rusqlite::params;
    // As sqlx writes a time, so that it reads these back.
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    // The ids are given here, after the largest there is: the transaction
    // holds the write lock, so nobody else adds one meanwhile.
    let next: i64 = db.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM csos", [], |r| {
        r.get(0)
    })?;
    let added: Vec<i64> = (next..).take(changes.added.len()).collect();

    let mut insert = db.prepare_cached(
        "INSERT INTO csos (id, registration_no, name, phone, city, fields_of_activity, language, \
         active, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)",
    )?;
    for (id, r) in added.iter().zip(&changes.added) {
        insert.execute(params![
            id,
            r.registration_no.as_str(),
            r.name,
            r.phone,
            r.city,
            fields_column(r),
            r.language.code(),
            at
        ])?;
    }

    let mut update = db.prepare_cached(
        "UPDATE csos SET name = ?2, phone = ?3, city = ?4, fields_of_activity = ?5, language = ?6, \
         active = 1, inactivated_at = NULL, updated_at = ?7 WHERE id = ?1",
    )?;
    let mut forget = db.prepare_cached("DELETE FROM cso_emails WHERE cso_id = ?1")?;
    for (id, r) in &changes.updated {
        update.execute(params![
            id,
            r.name,
            r.phone,
            r.city,
            fields_column(r),
            r.language.code(),
            at
        ])?;
        forget.execute([id])?;
    }

    let mut address = db
        .prepare_cached("INSERT INTO cso_emails (cso_id, position, address) VALUES (?1, ?2, ?3)")?;
    let written = added.iter().zip(&changes.added);
    for (id, r) in written.chain(changes.updated.iter().map(|(id, r)| (id, r))) {
        for (position, e) in r.emails.iter().enumerate() {
            address.execute(params![id, position as i64, e.as_str()])?;
        }
    }

    let mut inactivate = db.prepare_cached(
        "UPDATE csos SET active = 0, inactivated_at = ?2, updated_at = ?2 WHERE id = ?1",
    )?;
    for id in &changes.inactivated {
        inactivate.execute(params![id, at])?;
    }
    Ok(added)
}

impl SqlStore<Sqlite> {
    /// See [`crate::store::check`].
    pub async fn check(url: &str) -> Result<String, StoreError> {
        let open_err = |source| StoreError::Open {
            target: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url).map_err(open_err)?;
        let file = options.get_filename().to_path_buf();
        if !file.exists() {
            // The folder it would go in must take a file, or be creatable.
            let mut folder = file.parent().unwrap_or(Path::new(".")).to_path_buf();
            while !folder.as_os_str().is_empty() && !folder.exists() {
                folder = folder.parent().unwrap_or(Path::new("")).to_path_buf();
            }
            let probe = folder.join(format!(".cocreate-check-{}", std::process::id()));
            std::fs::write(&probe, b"")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|source| StoreError::Folder {
                    path: folder.display().to_string(),
                    source,
                })?;
            return Ok("does not exist yet: it is created at start".into());
        }
        let mut conn = options.read_only(true).connect().await.map_err(open_err)?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
        )
        .fetch_one(&mut conn)
        .await?;
        let applied = if tables > 0 {
            Some(
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut conn)
                    .await?,
            )
        } else {
            None
        };
        let known = sqlx::migrate!("migrations/sqlite").migrations.len();
        Ok(super::super::schema_state(applied, known))
    }

    /// Opens (creating if needed) the database file named by a `sqlite:` URL
    /// and applies migrations/sqlite, with the default cache and memory map.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, SqliteMemory::default()).await
    }

    /// [`Self::open`] with `memory` for each connection's cache and memory
    /// map.
    pub async fn open_with(url: &str, memory: SqliteMemory) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            target: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: every commit is on disk before it returns, power cut
            // included. cocreate tells an MTA "stored" (and a webhook 200)
            // only after a commit, and the MTA then deletes its copy.
            // Intake writes in batches, so this costs one sync per batch.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // A negative cache_size is in KiB rather than pages.
            .pragma(
                "cache_size",
                format!("-{}", u64::from(memory.cache_mib) * 1024),
            )
            .pragma(
                "mmap_size",
                (u64::from(memory.mmap_mib) * 1024 * 1024).to_string(),
            )
            // A statement journal (each multi-row UPDATE in a transaction:
            // marking a batch sent) and a sorter's spill are scratch that
            // lives only as long as its statement: in memory rather than a
            // file created and unlinked in /var/tmp each time.
            .pragma("temp_store", "memory");
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // When SQLite ends a transaction itself (a full disk rolls it
            // back), sqlx's ROLLBACK then fails and sqlx still counts the
            // transaction as open: every later BEGIN on that connection
            // fails ("non-zero transaction depth"), so writes never recover
            // once the disk is freed. Such a connection is closed instead
            // of going back to the pool, and a fresh one is opened.
            .after_release(|conn, _| {
                Box::pin(async move {
                    Ok(
                        <sqlx::Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(
                            conn,
                        ) == 0,
                    )
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Self::new(read, write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// Both pools' connections, readers and the writer, get the cache and
    /// memory map asked for.
    #[tokio::test]
    async fn every_connection_gets_the_cache_and_memory_map_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("memory.db").display());
        let memory = SqliteMemory {
            cache_mib: 16,
            mmap_mib: 32,
        };
        let store = SqliteStore::open_with(&url, memory).await.unwrap();
        for pool in [&store.read, &store.write] {
            let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(cache, -16 * 1024);
            let (mmap,): (i64,) = sqlx::query_as("PRAGMA mmap_size")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mmap, 32 * 1024 * 1024);
        }
    }
}
