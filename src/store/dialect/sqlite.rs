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
use sqlx::{ConnectOptions, QueryBuilder, Transaction, TransactionManager};

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
use crate::store::records::{CsoRecord, RegistryChanges};
use crate::store::sql::SqlStore;
use crate::store::sql::registry::{fields_column, ids_in_order};

/// SQLite, the embedded default.
pub struct Sqlite;

/// Rows per multi-row INSERT: 9 parameters each stays well under SQLite's
/// limit of 32,766 bound parameters.
const ROWS_PER_INSERT: usize = 1000;

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

    async fn apply_registry_changes(
        tx: &mut Transaction<'_, Self::DB>,
        changes: &RegistryChanges,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut added = Vec::with_capacity(changes.added.len());
        let mut emails: Vec<(i64, &CsoRecord)> = Vec::with_capacity(changes.added.len());
        for chunk in changes.added.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO csos (registration_no, name, phone, city, fields_of_activity, language, active, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(r.registration_no.as_str())
                    .push_bind(&r.name)
                    .push_bind(r.phone.as_deref())
                    .push_bind(r.city.as_deref())
                    .push_bind(fields_column(r))
                    .push_bind(r.language.code())
                    .push_bind(true)
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(" RETURNING id, registration_no");
            let returned: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut **tx).await?;
            let ids = ids_in_order(chunk, &returned)?;
            emails.extend(ids.iter().copied().zip(chunk));
            added.extend(ids);
        }

        // UPDATE … FROM (VALUES …): one statement per chunk, not per row.
        for chunk in changes.updated.chunks(ROWS_PER_INSERT) {
            let mut update = QueryBuilder::<sqlx::Sqlite>::new(
                "UPDATE csos SET name = v.column2, phone = v.column3, city = v.column4, \
                 fields_of_activity = v.column5, language = v.column6, active = TRUE, \
                 inactivated_at = NULL, updated_at = ",
            );
            update.push_bind(now).push(" FROM (");
            update.push_values(chunk, |mut row, (id, r)| {
                row.push_bind(*id)
                    .push_bind(&r.name)
                    .push_bind(r.phone.as_deref())
                    .push_bind(r.city.as_deref())
                    .push_bind(fields_column(r))
                    .push_bind(r.language.code());
            });
            update.push(") AS v WHERE csos.id = v.column1");
            update.build().execute(&mut **tx).await?;

            let mut delete =
                QueryBuilder::<sqlx::Sqlite>::new("DELETE FROM cso_emails WHERE cso_id IN (");
            let mut ids = delete.separated(", ");
            for (id, _) in chunk {
                ids.push_bind(*id);
            }
            delete.push(")");
            delete.build().execute(&mut **tx).await?;
            emails.extend(chunk.iter().map(|(id, r)| (*id, r)));
        }

        let addresses: Vec<(i64, i64, &str)> = emails
            .iter()
            .flat_map(|(id, r)| {
                r.emails
                    .iter()
                    .enumerate()
                    .map(move |(pos, e)| (*id, pos as i64, e.as_str()))
            })
            .collect();
        for chunk in addresses.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO cso_emails (cso_id, position, address) ",
            );
            insert.push_values(chunk, |mut row, (id, pos, address)| {
                row.push_bind(*id).push_bind(*pos).push_bind(*address);
            });
            insert.build().execute(&mut **tx).await?;
        }

        for chunk in changes.inactivated.chunks(ROWS_PER_INSERT) {
            let mut update = QueryBuilder::<sqlx::Sqlite>::new(
                "UPDATE csos SET active = FALSE, inactivated_at = ",
            );
            update.push_bind(now).push(", updated_at = ").push_bind(now);
            update.push(" WHERE id IN (");
            let mut ids = update.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            update.push(")");
            update.build().execute(&mut **tx).await?;
        }
        Ok(added)
    }
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
