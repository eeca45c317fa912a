//! The one SQL store, generic over the dialect: every query is written once,
//! in the file of its domain (registry, consultations, outbox, inbound),
//! whatever the backend. What truly differs between SQLite and PostgreSQL
//! (opening, write locking, the claim's row locks, bulk registry writes,
//! bind parameters) is in `store::dialect`.
//!
//! sqlx cannot state "every type cocreate binds encodes on this database"
//! once for a generic database: Rust does not carry such bounds from a
//! trait to its users. So each domain file states the bounds its queries
//! need once, on its impl blocks, instead of on every function.

mod consultations;
mod inbound;
mod intake;
mod outbox;
mod queue;
pub(super) mod registry;
mod review;
mod schedule;
mod web;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::dialect::Dialect;
use super::{
    ConsultationStore, InboundStore, OutboxStore, RegistryStore, ReviewStore, ScheduleStore, Store,
    StoreError, WebStore,
};
use crate::clock::Clock;

pub use registry::CsoFilter;

/// One store over `D`'s database: a pool for reads and one for writes (on
/// SQLite the writer is a single connection; on PostgreSQL both are the
/// same pool).
pub struct SqlStore<D: Dialect> {
    pub(super) read: Pool<D::DB>,
    pub(super) write: Pool<D::DB>,
    /// What every recorded time is read from (shared with the App).
    pub(super) clock: Clock,
}

impl<D: Dialect> SqlStore<D> {
    pub(super) fn new(read: Pool<D::DB>, write: Pool<D::DB>) -> Self {
        Self {
            read,
            write,
            clock: Clock::from_env(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A write transaction, begun as the dialect wants (BEGIN IMMEDIATE on
    /// SQLite, so it takes the write lock before it reads).
    pub(super) async fn begin(&self) -> Result<Transaction<'static, D::DB>, sqlx::Error> {
        self.write.begin_with(D::BEGIN_WRITE).await
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    Self: RegistryStore
        + ConsultationStore
        + OutboxStore
        + InboundStore
        + WebStore
        + ScheduleStore
        + ReviewStore,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
{
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query::<D::DB>("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query::<D::DB>(
            "INSERT INTO health_probe (id, checked_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Runs a query without parameters.
async fn fetch_all<DB, R>(pool: &Pool<DB>, sql: &str) -> Result<Vec<R>, StoreError>
where
    DB: Database,
    R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    Ok(sqlx::query_as::<DB, R>(sql).fetch_all(pool).await?)
}

/// Values per `IN (…)` list: far below SQLite's 32,766 and PostgreSQL's
/// 65,535 bound parameters, so that no message (a References header of
/// 33,000 ids) or batch can make a statement fail for everything with it.
const LIST_CHUNK: usize = 1000;

/// "$first, $first+1, …": `n` numbered placeholders.
fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bind parameters for `rows` rows of `per_row` each, numbered from 1 and
/// handed to `row` in order (it must use them in that order), each row
/// formatted by `row`, joined by commas.
fn placeholders<D: Dialect>(
    rows: usize,
    per_row: usize,
    row: impl Fn(&[String]) -> String,
) -> String {
    (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=per_row).map(|i| D::param(r * per_row + i)).collect();
            row(&p)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
