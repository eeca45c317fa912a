//! Row shapes shared by both backends and the reads whose SQL is identical
//! on SQLite and PostgreSQL, written once over sqlx's generic pool.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::{ImportRecord, StoreError};
use crate::domain::{EmailAddress, Language, RegistrationNumber};
use crate::registry::relevance::{Relevance, RelevanceOverride};
use crate::registry::{Cso, CsoRecord, ImportLogEntry};

pub(super) const FIELD_SEPARATOR: &str = "\n";
/// Addresses never contain a newline (EmailAddress refuses whitespace).
pub(super) const EMAIL_SEPARATOR: char = '\n';

#[derive(FromRow)]
pub(super) struct CsoRow {
    id: i64,
    registration_no: String,
    name: String,
    phone: Option<String>,
    city: Option<String>,
    fields_of_activity: String,
    language: String,
    active: bool,
    updated_at: DateTime<Utc>,
    emails: Option<String>,
}

#[derive(FromRow)]
pub(super) struct OverrideRow {
    registration_no: String,
    policy_area: String,
    relevance: String,
    reason: String,
    set_at: DateTime<Utc>,
}

#[derive(FromRow)]
pub(super) struct ImportRow {
    file_name: String,
    full_import: bool,
    added: i64,
    updated: i64,
    unchanged: i64,
    inactivated: i64,
    skipped: i64,
    imported_at: DateTime<Utc>,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Runs a query without parameters on either backend.
async fn fetch_all<DB, R>(pool: &Pool<DB>, sql: &str) -> Result<Vec<R>, StoreError>
where
    DB: Database,
    R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    Ok(sqlx::query_as::<DB, R>(sql).fetch_all(pool).await?)
}

/// Every CSO with its addresses. `emails_sql` is the backend's way of
/// gathering a CSO's addresses, in order, into one newline-separated column
/// (group_concat or string_agg): one row per CSO instead of a second query,
/// which halves the rows decoded on a 100,000-organisation registry.
pub(super) async fn csos<DB>(pool: &Pool<DB>, emails_sql: &str) -> Result<Vec<Cso>, StoreError>
where
    DB: Database,
    CsoRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<CsoRow> = fetch_all(
        pool,
        &format!(
            "SELECT c.id, c.registration_no, c.name, c.phone, c.city, c.fields_of_activity, \
             c.language, c.active, c.updated_at, ({emails_sql}) AS emails \
             FROM csos c ORDER BY c.id"
        ),
    )
    .await?;
    rows.into_iter().map(CsoRow::into_cso).collect()
}

impl CsoRow {
    fn into_cso(self) -> Result<Cso, StoreError> {
        let emails = self
            .emails
            .as_deref()
            .unwrap_or("")
            .split(EMAIL_SEPARATOR)
            .filter(|e| !e.is_empty())
            .map(|e| EmailAddress::parse(e).map_err(corrupt))
            .collect::<Result<_, _>>()?;
        Ok(Cso {
            id: self.id,
            record: CsoRecord {
                registration_no: RegistrationNumber::parse(&self.registration_no)
                    .map_err(corrupt)?,
                name: self.name,
                emails,
                phone: self.phone,
                city: self.city,
                fields_of_activity: join_fields_back(&self.fields_of_activity),
                language: Language::parse(&self.language).map_err(corrupt)?,
            },
            active: self.active,
            updated_at: self.updated_at,
        })
    }
}

fn join_fields_back(stored: &str) -> Vec<String> {
    stored
        .split(FIELD_SEPARATOR)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Pairs the `(id, registration_no)` rows an INSERT … RETURNING gave back
/// with the records inserted. RETURNING does not promise VALUES order, so
/// they are matched by registration number, which is unique.
pub(super) fn pair_inserted<'a>(
    inserted: &'a [CsoRecord],
    returned: &[(i64, String)],
) -> Result<Vec<(i64, &'a CsoRecord)>, StoreError> {
    let by_reg: HashMap<&str, &CsoRecord> = inserted
        .iter()
        .map(|r| (r.registration_no.as_str(), r))
        .collect();
    returned
        .iter()
        .map(|(id, reg)| {
            by_reg
                .get(reg.as_str())
                .map(|r| (*id, *r))
                .ok_or_else(|| corrupt(format!("an insert returned an unknown number {reg}")))
        })
        .collect()
}

pub(super) fn fields_column(record: &CsoRecord) -> String {
    record.fields_of_activity.join(FIELD_SEPARATOR)
}

pub(super) async fn relevance_overrides<DB>(
    pool: &Pool<DB>,
) -> Result<Vec<RelevanceOverride>, StoreError>
where
    DB: Database,
    OverrideRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<OverrideRow> = fetch_all(
        pool,
        "SELECT registration_no, policy_area, relevance, reason, set_at \
         FROM relevance_overrides ORDER BY policy_area, registration_no",
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(RelevanceOverride {
                registration_no: RegistrationNumber::parse(&r.registration_no).map_err(corrupt)?,
                policy_area: r.policy_area,
                relevance: Relevance::parse(&r.relevance).map_err(corrupt)?,
                reason: r.reason,
                set_at: r.set_at,
            })
        })
        .collect()
}

pub(super) async fn registry_imports<DB>(
    pool: &Pool<DB>,
    limit: u32,
) -> Result<Vec<ImportRecord>, StoreError>
where
    DB: Database,
    ImportRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<ImportRow> = fetch_all(
        pool,
        &format!(
            "SELECT file_name, full_import, added, updated, unchanged, inactivated, skipped, imported_at \
             FROM registry_imports ORDER BY id DESC LIMIT {limit}"
        ),
    )
    .await?;
    let count = |n: i64| u64::try_from(n).map_err(|_| corrupt(format!("negative count {n}")));
    rows.into_iter()
        .map(|r| {
            Ok(ImportRecord {
                imported_at: r.imported_at,
                entry: ImportLogEntry {
                    file_name: r.file_name,
                    full: r.full_import,
                    added: count(r.added)?,
                    updated: count(r.updated)?,
                    unchanged: count(r.unchanged)?,
                    inactivated: count(r.inactivated)?,
                    skipped: count(r.skipped)?,
                },
            })
        })
        .collect()
}

/// Checks that the database answers.
pub(super) async fn ping<DB>(pool: &Pool<DB>) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    sqlx::query::<DB>("SELECT 1").execute(pool).await?;
    Ok(())
}

pub(super) async fn set_relevance_override<DB>(
    pool: &Pool<DB>,
    o: &RelevanceOverride,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "INSERT INTO relevance_overrides (registration_no, policy_area, relevance, reason, set_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (registration_no, policy_area) DO UPDATE \
         SET relevance = excluded.relevance, reason = excluded.reason, set_at = excluded.set_at",
    )
    .bind(o.registration_no.as_str())
    .bind(o.policy_area.as_str())
    .bind(o.relevance.as_str())
    .bind(o.reason.as_str())
    .bind(o.set_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn clear_relevance_override<DB>(
    pool: &Pool<DB>,
    registration_no: &RegistrationNumber,
    policy_area: &str,
) -> Result<bool, StoreError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let removed: Option<(String,)> = sqlx::query_as::<DB, (String,)>(
        "DELETE FROM relevance_overrides WHERE registration_no = $1 AND policy_area = $2 \
         RETURNING registration_no",
    )
    .bind(registration_no.as_str())
    .bind(policy_area)
    .fetch_optional(pool)
    .await?;
    Ok(removed.is_some())
}

/// Adds the history line for an import, inside the import's transaction.
pub(super) async fn insert_import_log<DB>(
    conn: &mut DB::Connection,
    log: &ImportLogEntry,
    at: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sqlx::query::<DB>(
        "INSERT INTO registry_imports (file_name, full_import, added, updated, unchanged, inactivated, skipped, imported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(log.file_name.as_str())
    .bind(log.full)
    .bind(n(log.added))
    .bind(n(log.updated))
    .bind(n(log.unchanged))
    .bind(n(log.inactivated))
    .bind(n(log.skipped))
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
