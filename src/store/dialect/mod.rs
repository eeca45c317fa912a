//! What truly differs between SQLite and PostgreSQL; everything else is
//! written once in `store::sql`.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Transaction};

pub use postgres::Postgres;
pub use sqlite::{Sqlite, SqliteMemory};

use super::StoreError;
use super::records::{Cso, RegistryChanges};

#[async_trait]
pub trait Dialect: Send + Sync + 'static {
    type DB: Database;
    /// How a write transaction begins.
    const BEGIN_WRITE: &'static str;
    /// What an import runs first in its transaction so that imports take
    /// turns (SQLite's write lock already makes them), or nothing.
    const LOCK_REGISTRY: &'static str;
    /// What the claim's SELECT adds to lock the rows it takes.
    const CLAIM_LOCK: &'static str;
    /// A subquery gathering a CSO's addresses (`c.id`), in order, into one
    /// newline-separated column: one row per CSO instead of a second query,
    /// which halves the rows decoded on a 100,000-organisation registry.
    const EMAILS_OF_CSO: &'static str;

    /// The column type of raw bytes.
    const BLOB: &'static str;

    /// The `n`th (1-based) bind parameter.
    fn param(n: usize) -> String;

    /// How many rows a statement changed (sqlx has no common trait for it).
    fn rows_affected(result: &<Self::DB as Database>::QueryResult) -> u64;

    /// The organisations with these registration numbers, with their
    /// addresses, read in the caller's transaction (an import's chunk).
    async fn find_registered(
        tx: &mut Transaction<'_, Self::DB>,
        registration_nos: &[&str],
    ) -> Result<Vec<Cso>, StoreError>;

    /// The ids of every active organisation, in order, read in the
    /// caller's transaction (what a full import may leave out).
    async fn active_cso_ids(tx: &mut Transaction<'_, Self::DB>) -> Result<Vec<i64>, StoreError>;

    /// Writes a chunk of an import's added, updated and inactivated
    /// organisations in the caller's transaction, and returns the ids given
    /// to the added ones in their order: the fast way to write many rows
    /// differs (multi-row VALUES on SQLite, COPY on PostgreSQL).
    async fn apply_registry_changes(
        tx: &mut Transaction<'_, Self::DB>,
        changes: &RegistryChanges,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;
}
