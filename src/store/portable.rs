//! Row shapes shared by both backends and the reads whose SQL is identical
//! on SQLite and PostgreSQL, written once over sqlx's generic pool.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::StoreError;
use super::records::*;
use crate::consultation::{Consultation, ConsultationSpec, ConsultationState, DeadlineExtension};
use crate::domain::{EmailAddress, Language, RegistrationNumber, Relevance, ReplyKey};

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
pub(super) async fn csos<DB>(
    pool: &Pool<DB>,
    emails_sql: &str,
    filter: CsoFilter<'_>,
) -> Result<Vec<Cso>, StoreError>
where
    DB: Database,
    CsoRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let select = format!(
        "SELECT c.id, c.registration_no, c.name, c.phone, c.city, c.fields_of_activity, \
         c.language, c.active, c.updated_at, ({emails_sql}) AS emails FROM csos c"
    );
    let rows: Vec<CsoRow> = match filter {
        CsoFilter::All => fetch_all(pool, &format!("{select} ORDER BY c.id")).await?,
        CsoFilter::Id(id) => {
            sqlx::query_as::<DB, CsoRow>(&format!("{select} WHERE c.id = $1"))
                .bind(id)
                .fetch_all(pool)
                .await?
        }
        CsoFilter::Ids(ids) => {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let sql = format!("{select} WHERE c.id IN ({})", numbered(1, ids.len()));
            let mut q = sqlx::query_as::<DB, CsoRow>(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await?
        }
        CsoFilter::Address(address) => {
            sqlx::query_as::<DB, CsoRow>(&format!(
                "{select} WHERE c.id IN (SELECT cso_id FROM cso_emails WHERE address = $1) ORDER BY c.id"
            ))
            .bind(address)
            .fetch_all(pool)
            .await?
        }
    };
    rows.into_iter().map(CsoRow::into_cso).collect()
}

/// Which CSOs a read wants: all of them for imports and matching, one by id
/// or by address for routing a message.
#[derive(Debug, Clone, Copy)]
pub(super) enum CsoFilter<'a> {
    All,
    Id(i64),
    Ids(&'a [i64]),
    Address(&'a str),
}

/// "$first, $first+1, …": `n` numbered placeholders.
fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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

// ----- consultations -------------------------------------------------------

#[derive(FromRow)]
pub(super) struct ConsultationRow {
    id: i64,
    state: String,
    spec: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ConsultationRow {
    fn into_consultation(self) -> Result<Consultation, StoreError> {
        Ok(Consultation {
            id: self.id,
            spec: serde_json::from_str(&self.spec).map_err(corrupt)?,
            state: ConsultationState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("consultation state '{}'", self.state)))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(super) fn spec_json(spec: &ConsultationSpec) -> String {
    serde_json::to_string(spec).expect("a spec always serialises")
}

pub(super) async fn consultations<DB>(pool: &Pool<DB>) -> Result<Vec<Consultation>, StoreError>
where
    DB: Database,
    ConsultationRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<ConsultationRow> = fetch_all(
        pool,
        "SELECT id, state, spec, created_at, updated_at FROM consultations ORDER BY id",
    )
    .await?;
    rows.into_iter()
        .map(ConsultationRow::into_consultation)
        .collect()
}

/// Turns a unique-constraint violation into a sentence about what clashed.
pub(super) fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Query(e),
    }
}

// ----- outbox ----------------------------------------------------------------

#[derive(FromRow)]
pub(super) struct ClaimedRow {
    id: i64,
    idempotency_key: String,
    kind: String,
    recipient: String,
    envelope_from: String,
    message: Vec<u8>,
    attempts: i64,
}

impl From<ClaimedRow> for OutboxMessage {
    fn from(r: ClaimedRow) -> Self {
        OutboxMessage {
            id: r.id,
            idempotency_key: r.idempotency_key,
            kind: r.kind,
            recipient: r.recipient,
            envelope_from: r.envelope_from,
            message: r.message,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        }
    }
}

/// The claim statement; `lock` is what the backend adds to the inner SELECT
/// so that concurrent claimers skip each other's rows.
pub(super) fn claim_sql(lock: &str) -> String {
    format!(
        "UPDATE outbox SET state = 'sending', claimed_until = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM outbox \
                      WHERE (state = 'queued' AND next_attempt_at <= $2) \
                         OR (state = 'sending' AND claimed_until < $2) \
                      ORDER BY id LIMIT $3 {lock}) \
         RETURNING id, idempotency_key, kind, recipient, envelope_from, message, attempts"
    )
}

pub(super) fn sort_claimed(rows: Vec<ClaimedRow>) -> Vec<OutboxMessage> {
    let mut out: Vec<OutboxMessage> = rows.into_iter().map(Into::into).collect();
    out.sort_by_key(|m| m.id);
    out
}

#[derive(FromRow)]
pub(super) struct CountRow {
    state: String,
    n: i64,
}

pub(super) async fn outbox_counts<DB>(pool: &Pool<DB>) -> Result<OutboxCounts, StoreError>
where
    DB: Database,
    CountRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<CountRow> = fetch_all(
        pool,
        "SELECT state, COUNT(*) AS n FROM outbox GROUP BY state",
    )
    .await?;
    let mut c = OutboxCounts::default();
    for r in rows {
        let n = u64::try_from(r.n).unwrap_or(0);
        match r.state.as_str() {
            "queued" => c.queued = n,
            "sending" => c.sending = n,
            "sent" => c.sent = n,
            "failed" => c.failed = n,
            other => return Err(corrupt(format!("outbox state '{other}'"))),
        }
    }
    Ok(c)
}

#[derive(FromRow)]
pub(super) struct FailureRow {
    id: i64,
    kind: String,
    recipient: String,
    attempts: i64,
    last_error: Option<String>,
}

pub(super) async fn outbox_failures<DB>(
    pool: &Pool<DB>,
    limit: u32,
) -> Result<Vec<OutboxFailure>, StoreError>
where
    DB: Database,
    FailureRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<FailureRow> = fetch_all(
        pool,
        &format!(
            "SELECT id, kind, recipient, attempts, last_error FROM outbox \
             WHERE state = 'failed' ORDER BY id DESC LIMIT {limit}"
        ),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OutboxFailure {
            id: r.id,
            kind: r.kind,
            recipient: r.recipient,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            last_error: r.last_error.unwrap_or_default(),
        })
        .collect())
}

#[derive(FromRow)]
pub(super) struct KeyRow {
    idempotency_key: String,
}

/// Idempotency keys already queued that start with `prefix`.
pub(super) async fn queued_keys<DB>(
    pool: &Pool<DB>,
    prefix: &str,
) -> Result<std::collections::HashSet<String>, StoreError>
where
    DB: Database,
    KeyRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    // LIKE with an escaped prefix: keys are built by cocreate from ids,
    // codes and addresses, which may contain '_' but never '\'.
    let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
    let rows: Vec<KeyRow> = sqlx::query_as::<DB, KeyRow>(
        "SELECT idempotency_key FROM outbox WHERE idempotency_key LIKE $1 ESCAPE '\\'",
    )
    .bind(pattern)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.idempotency_key).collect())
}

// ----- addresses ---------------------------------------------------------------

#[derive(FromRow)]
pub(super) struct AddressRow {
    address: String,
    opted_out_at: Option<DateTime<Utc>>,
    opt_out_source: Option<String>,
    bounced_at: Option<DateTime<Utc>>,
    bounce_reason: Option<String>,
    soft_bounces: i64,
    restored_at: Option<DateTime<Utc>>,
    restore_reason: Option<String>,
}

pub(super) async fn address_statuses<DB>(pool: &Pool<DB>) -> Result<Vec<AddressStatus>, StoreError>
where
    DB: Database,
    AddressRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<AddressRow> = fetch_all(
        pool,
        "SELECT address, opted_out_at, opt_out_source, bounced_at, bounce_reason, soft_bounces, \
         restored_at, restore_reason FROM address_status ORDER BY address",
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AddressStatus {
            address: r.address,
            opted_out_at: r.opted_out_at,
            opt_out_source: r.opt_out_source,
            bounced_at: r.bounced_at,
            bounce_reason: r.bounce_reason,
            soft_bounces: u32::try_from(r.soft_bounces).unwrap_or(0),
            restored_at: r.restored_at,
            restore_reason: r.restore_reason,
        })
        .collect())
}

#[derive(FromRow)]
pub(super) struct ReplyKeyRow {
    key: String,
    consultation_id: i64,
    cso_id: i64,
    address: String,
    purpose: String,
    receipt_no: Option<String>,
}

pub(super) async fn reply_key<DB>(
    pool: &Pool<DB>,
    key: &ReplyKey,
) -> Result<Option<ReplyKeyRecord>, StoreError>
where
    DB: Database,
    ReplyKeyRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    Ok(reply_keys(pool, std::slice::from_ref(key)).await?.pop())
}

/// The records of those of `keys` that exist.
pub(super) async fn reply_keys<DB>(
    pool: &Pool<DB>,
    keys: &[ReplyKey],
) -> Result<Vec<ReplyKeyRecord>, StoreError>
where
    DB: Database,
    ReplyKeyRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT key, consultation_id, cso_id, address, purpose, receipt_no FROM reply_keys WHERE key IN ({})",
        numbered(1, keys.len())
    );
    let mut q = sqlx::query_as::<DB, ReplyKeyRow>(&sql);
    for k in keys {
        q = q.bind(k.as_str());
    }
    let rows: Vec<ReplyKeyRow> = q.fetch_all(pool).await?;
    rows.into_iter()
        .map(|r| {
            Ok(ReplyKeyRecord {
                key: ReplyKey::parse(&r.key).map_err(corrupt)?,
                consultation_id: r.consultation_id,
                cso_id: r.cso_id,
                address: EmailAddress::parse(&r.address).map_err(corrupt)?,
                purpose: if r.purpose == "receipt" {
                    "receipt"
                } else {
                    "invitation"
                },
                receipt_no: r.receipt_no,
            })
        })
        .collect()
}

/// What intake needs to know about a batch of messages, in four queries
/// whatever the batch's size: the reply keys they carry and the CSOs those
/// were issued to, and for the loop guard what their senders were sent
/// (acknowledgements this hour) and sent (texts this week).
pub(super) async fn intake_lookups<DB>(
    pool: &Pool<DB>,
    emails_sql: &str,
    keys: &[ReplyKey],
    senders: &[String],
    acknowledged_since: DateTime<Utc>,
    texts_since: DateTime<Utc>,
) -> Result<IntakeLookups, StoreError>
where
    DB: Database,
    ReplyKeyRow: for<'r> FromRow<'r, DB::Row>,
    CsoRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (String, i64): for<'r> FromRow<'r, DB::Row>,
    (String, String): for<'r> FromRow<'r, DB::Row>,
{
    let mut known = IntakeLookups::default();
    let records = reply_keys(pool, keys).await?;
    let mut ids: Vec<i64> = records.iter().map(|r| r.cso_id).collect();
    ids.sort_unstable();
    ids.dedup();
    for cso in csos(pool, emails_sql, CsoFilter::Ids(&ids)).await? {
        known.csos.insert(cso.id, cso);
    }
    for r in records {
        known.reply_keys.insert(r.key.clone(), r);
    }
    if senders.is_empty() {
        return Ok(known);
    }
    let list = numbered(2, senders.len());
    let sql = format!(
        "SELECT recipient, COUNT(*) FROM outbox WHERE created_at >= $1 AND kind = 'receipt' \
         AND recipient IN ({list}) GROUP BY recipient"
    );
    let mut q = sqlx::query_as::<DB, (String, i64)>(&sql).bind(acknowledged_since);
    for a in senders {
        q = q.bind(a.as_str());
    }
    for (address, n) in q.fetch_all(pool).await? {
        known
            .acknowledgements
            .insert(address, u64::try_from(n).unwrap_or(0));
    }
    let sql = format!(
        "SELECT from_address, reply_text FROM proposals WHERE created_at >= $1 AND from_address IN ({list}) \
         UNION SELECT from_address, reply_text FROM follow_ups WHERE created_at >= $1 AND from_address IN ({list})"
    );
    let mut q = sqlx::query_as::<DB, (String, String)>(&sql).bind(texts_since);
    for a in senders {
        q = q.bind(a.as_str());
    }
    known.texts = q.fetch_all(pool).await?.into_iter().collect();
    Ok(known)
}

// ----- writes shared by both backends, inside the caller's transaction -------

pub(super) async fn insert_consultation<DB>(
    conn: &mut DB::Connection,
    spec: &ConsultationSpec,
    now: DateTime<Utc>,
) -> Result<i64, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> chrono::NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let (id,): (i64,) = sqlx::query_as::<DB, (i64,)>(
        "INSERT INTO consultations (reference, policy_area, state, opens_on, closes_on, spec, created_at, updated_at) \
         VALUES ($1, $2, 'draft', $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(spec.reference.as_str())
    .bind(spec.policy_area.as_str())
    .bind(spec.opens_on)
    .bind(spec.closes_on)
    .bind(spec_json(spec))
    .bind(now)
    .fetch_one(conn)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!("a consultation with reference {} already exists", spec.reference)
        })
    })?;
    Ok(id)
}

pub(super) async fn update_consultation<DB>(
    conn: &mut DB::Connection,
    id: i64,
    spec: &ConsultationSpec,
    state: Option<ConsultationState>,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> chrono::NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let updated: Option<(i64,)> = sqlx::query_as::<DB, (i64,)>(
        "UPDATE consultations SET reference = $1, policy_area = $2, opens_on = $3, closes_on = $4, \
         spec = $5, state = COALESCE($6, state), updated_at = $7 WHERE id = $8 RETURNING id",
    )
    .bind(spec.reference.as_str())
    .bind(spec.policy_area.as_str())
    .bind(spec.opens_on)
    .bind(spec.closes_on)
    .bind(spec_json(spec))
    .bind(state.map(ConsultationState::as_str))
    .bind(now)
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!(
                "a consultation with reference {} already exists",
                spec.reference
            )
        })
    })?;
    updated
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(format!("consultation {id}")))
}

pub(super) async fn insert_extension<DB>(
    conn: &mut DB::Connection,
    ext: &DeadlineExtension,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> chrono::NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "INSERT INTO deadline_extensions (consultation_id, previous, new, reason, at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ext.consultation_id)
    .bind(ext.previous)
    .bind(ext.new)
    .bind(ext.reason.as_str())
    .bind(ext.at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(FromRow)]
pub(super) struct ExtensionRow {
    consultation_id: i64,
    previous: chrono::NaiveDate,
    new: chrono::NaiveDate,
    reason: String,
    at: DateTime<Utc>,
}

pub(super) async fn extensions<DB>(pool: &Pool<DB>) -> Result<Vec<DeadlineExtension>, StoreError>
where
    DB: Database,
    ExtensionRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<ExtensionRow> = fetch_all(
        pool,
        "SELECT consultation_id, previous, new, reason, at FROM deadline_extensions ORDER BY id",
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadlineExtension {
            consultation_id: r.consultation_id,
            previous: r.previous,
            new: r.new,
            reason: r.reason,
            at: r.at,
        })
        .collect())
}

/// Rows per multi-row INSERT into the outbox: nine parameters each, and
/// messages of some tens of kilobytes, so a statement stays a few megabytes.
const OUTBOX_ROWS_PER_INSERT: usize = 200;

/// Queues messages whose idempotency key is new, each with its reply key;
/// returns how many were new. Multi-row INSERTs: a statement per message
/// would cost a round trip each, which dominated queueing 10,000 invitations.
pub(super) async fn enqueue<DB>(
    conn: &mut DB::Connection,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> Result<u64, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let mut new = 0;
    for chunk in messages.chunks(OUTBOX_ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO outbox (idempotency_key, kind, recipient, envelope_from, consultation_id, \
             cso_id, message, state, attempts, next_attempt_at, created_at) VALUES {} \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
            placeholders::<DB>(chunk.len(), 9, |p| {
                format!(
                    "({}, {}, {}, {}, {}, {}, {}, 'queued', 0, {}, {})",
                    p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
                )
            })
        );
        let mut insert = sqlx::query_as::<DB, (String,)>(&sql);
        for m in chunk {
            insert = insert
                .bind(m.idempotency_key.as_str())
                .bind(m.kind)
                .bind(m.recipient.as_str())
                .bind(m.envelope_from.as_str())
                .bind(m.consultation_id)
                .bind(m.cso_id)
                .bind(m.message.as_slice())
                .bind(now)
                .bind(now);
        }
        let inserted: Vec<(String,)> = insert.fetch_all(&mut *conn).await?;
        new += inserted.len() as u64;
        let inserted: std::collections::HashSet<&str> =
            inserted.iter().map(|(k,)| k.as_str()).collect();
        let keys: Vec<&ReplyKeyRecord> = chunk
            .iter()
            .filter(|m| inserted.contains(m.idempotency_key.as_str()))
            .filter_map(|m| m.reply_key.as_ref())
            .collect();
        if keys.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO reply_keys (key, consultation_id, cso_id, address, purpose, receipt_no, created_at) VALUES {}",
            placeholders::<DB>(keys.len(), 7, |p| format!("({})", p.join(", ")))
        );
        let mut insert = sqlx::query::<DB>(&sql);
        for k in keys {
            insert = insert
                .bind(k.key.as_str())
                .bind(k.consultation_id)
                .bind(k.cso_id)
                .bind(k.address.as_str())
                .bind(k.purpose)
                .bind(k.receipt_no.as_deref())
                .bind(now);
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(new)
}

/// Marks many messages sent in one statement: the common case of a batch.
pub(super) async fn mark_sent<DB>(
    conn: &mut DB::Connection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    for chunk in ids.chunks(1000) {
        let sql = format!(
            "UPDATE outbox SET state = 'sent', sent_at = $1, claimed_until = NULL, last_error = NULL \
             WHERE state = 'sending' AND id IN ({})",
            (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut update = sqlx::query::<DB>(&sql).bind(now);
        for id in chunk {
            update = update.bind(*id);
        }
        update.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Undoes claims that were never used: the attempt did not happen.
pub(super) async fn release_claims<DB>(
    conn: &mut DB::Connection,
    ids: &[i64],
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    for chunk in ids.chunks(1000) {
        let sql = format!(
            "UPDATE outbox SET state = 'queued', claimed_until = NULL, attempts = attempts - 1 \
             WHERE state = 'sending' AND id IN ({})",
            (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut update = sqlx::query::<DB>(&sql);
        for id in chunk {
            update = update.bind(*id);
        }
        update.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The `n`th (1-based) bind parameter in `DB`'s syntax. SQLite gets an
/// anonymous `?`, bound in order: sqlx finds each named `$N` by a linear
/// search, which makes a statement with thousands of them quadratic (it
/// was most of the time of a batch of 256 proposals).
fn param<DB: Database>(n: usize) -> String {
    if DB::NAME == "SQLite" {
        "?".to_string()
    } else {
        format!("${n}")
    }
}

/// Bind parameters for `rows` rows of `per_row` each, numbered from 1 and
/// handed to `row` in order (it must use them in that order), each row
/// formatted by `row`, joined by commas.
fn placeholders<DB: Database>(
    rows: usize,
    per_row: usize,
    row: impl Fn(&[String]) -> String,
) -> String {
    (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=per_row)
                .map(|i| param::<DB>(r * per_row + i))
                .collect();
            row(&p)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn record_delivery<DB>(
    conn: &mut DB::Connection,
    id: i64,
    recipient: &str,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // `state = 'sending'`: a late outcome for a claim that expired and was
    // taken over must not overwrite the newer attempt's record.
    match delivery {
        Delivery::Sent => {
            sqlx::query::<DB>(
                "UPDATE outbox SET state = 'sent', sent_at = $1, claimed_until = NULL, last_error = NULL \
                 WHERE id = $2 AND state = 'sending'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        Delivery::Retry { at, error } => {
            sqlx::query::<DB>(
                "UPDATE outbox SET state = 'queued', next_attempt_at = $1, last_error = $2, claimed_until = NULL \
                 WHERE id = $3 AND state = 'sending'",
            )
            .bind(*at)
            .bind(error.as_str())
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        Delivery::Failed { error, hard_bounce } => {
            sqlx::query::<DB>(
                "UPDATE outbox SET state = 'failed', last_error = $1, claimed_until = NULL \
                 WHERE id = $2 AND state = 'sending'",
            )
            .bind(error.as_str())
            .bind(id)
            .execute(&mut *conn)
            .await?;
            if *hard_bounce {
                sqlx::query::<DB>(
                    "INSERT INTO address_status (address, bounced_at, bounce_reason) VALUES ($1, $2, $3) \
                     ON CONFLICT (address) DO UPDATE SET bounced_at = excluded.bounced_at, \
                     bounce_reason = excluded.bounce_reason",
                )
                .bind(recipient)
                .bind(now)
                .bind(error.as_str())
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

pub(super) async fn retry_failed<DB>(
    conn: &mut DB::Connection,
    now: DateTime<Utc>,
) -> Result<u64, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let rows: Vec<(i64,)> = sqlx::query_as::<DB, (i64,)>(
        "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $1 \
         WHERE state = 'failed' RETURNING id",
    )
    .bind(now)
    .fetch_all(conn)
    .await?;
    Ok(rows.len() as u64)
}

pub(super) async fn opt_out<DB>(
    conn: &mut DB::Connection,
    address: &EmailAddress,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // An address already opted out keeps its first date.
    sqlx::query::<DB>(
        "INSERT INTO address_status (address, opted_out_at, opt_out_source) VALUES ($1, $2, $3) \
         ON CONFLICT (address) DO UPDATE SET \
         opted_out_at = COALESCE(address_status.opted_out_at, excluded.opted_out_at), \
         opt_out_source = COALESCE(address_status.opt_out_source, excluded.opt_out_source)",
    )
    .bind(address.as_str())
    .bind(now)
    .bind(source)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn restore_address<DB>(
    conn: &mut DB::Connection,
    address: &EmailAddress,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let restored: Option<(String,)> = sqlx::query_as::<DB, (String,)>(
        "UPDATE address_status SET opted_out_at = NULL, opt_out_source = NULL, bounced_at = NULL, \
         bounce_reason = NULL, soft_bounces = 0, restored_at = $1, restore_reason = $2 \
         WHERE address = $3 AND (opted_out_at IS NOT NULL OR bounced_at IS NOT NULL) \
         RETURNING address",
    )
    .bind(now)
    .bind(reason)
    .bind(address.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(restored.is_some())
}

// ----- inbound mail and proposals ----------------------------------------------

/// Messages stored per INSERT: 7 parameters each, well under both
/// backends' limits.
const INBOUND_ROWS_PER_INSERT: usize = 256;
/// Proposals per INSERT: 15 parameters each.
const PROPOSAL_ROWS_PER_INSERT: usize = 256;
/// Messages whose state one UPDATE sets: 4 parameters each.
const OUTCOME_ROWS_PER_UPDATE: usize = 512;

/// Stores messages byte for byte, in the caller's transaction, a few
/// hundred per statement. A message stored before (same dedupe key) is not
/// stored again; its id and state are returned instead.
pub(super) async fn store_inbound_many<DB>(
    conn: &mut DB::Connection,
    messages: &[NewInbound<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<StoredInbound>, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (i64, String): for<'r> FromRow<'r, DB::Row>,
    (i64, String, String): for<'r> FromRow<'r, DB::Row>,
{
    let mut found: HashMap<String, StoredInbound> = HashMap::new();
    for chunk in messages.chunks(INBOUND_ROWS_PER_INSERT) {
        // The same message twice in one statement would make ON CONFLICT
        // fail on PostgreSQL: each is inserted once, and found for both.
        let mut seen = HashSet::new();
        let unique: Vec<&NewInbound<'_>> = chunk
            .iter()
            .filter(|m| seen.insert(m.dedupe_key.as_str()))
            .collect();
        let sql = format!(
            "INSERT INTO inbound_messages (dedupe_key, source, raw, received_at, message_id, from_address, subject, state) \
             VALUES {} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key",
            placeholders::<DB>(unique.len(), 7, |p| format!(
                "({}, 'received')",
                p.join(", ")
            ))
        );
        let mut insert = sqlx::query_as::<DB, (i64, String)>(&sql);
        for m in &unique {
            insert = insert
                .bind(m.dedupe_key.as_str())
                .bind(m.source)
                .bind(m.raw)
                .bind(now)
                .bind(m.message_id.as_deref())
                .bind(m.from_address.as_deref())
                .bind(m.subject.as_deref());
        }
        for (id, key) in insert.fetch_all(&mut *conn).await? {
            found.insert(
                key,
                StoredInbound {
                    id,
                    new: true,
                    state: InboundState::Received.as_str().to_string(),
                },
            );
        }
        let before: Vec<&str> = unique
            .iter()
            .map(|m| m.dedupe_key.as_str())
            .filter(|k| !found.contains_key(*k))
            .collect();
        if before.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT id, dedupe_key, state FROM inbound_messages WHERE dedupe_key IN ({})",
            numbered(1, before.len())
        );
        let mut select = sqlx::query_as::<DB, (i64, String, String)>(&sql);
        for k in before {
            select = select.bind(k);
        }
        for (id, key, state) in select.fetch_all(&mut *conn).await? {
            found.insert(
                key,
                StoredInbound {
                    id,
                    new: false,
                    state,
                },
            );
        }
    }
    let mut first = HashSet::new();
    messages
        .iter()
        .map(|m| {
            let mut s = found
                .get(&m.dedupe_key)
                .cloned()
                .ok_or_else(|| corrupt(format!("message {} was not stored", m.dedupe_key)))?;
            // The second copy within one call is not new.
            s.new &= first.insert(m.dedupe_key.as_str());
            Ok(s)
        })
        .collect()
}

/// Applies intake's writes in the caller's transaction, many rows per
/// statement: the proposals of a batch in one INSERT, their receipts in
/// one, every message's new state in one UPDATE.
pub(super) async fn apply_intake<DB>(
    conn: &mut DB::Connection,
    writes: &[IntakeWrite],
    now: DateTime<Utc>,
) -> Result<Vec<Applied>, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let mut applied = vec![Applied::Done; writes.len()];
    let mut outcomes: Vec<(i64, &str, &str, String)> = Vec::new();
    let mut acknowledgements: Vec<NewMessage> = Vec::new();
    let mut proposals: Vec<(usize, &NewProposal, Option<&NewMessage>)> = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        match w {
            IntakeWrite::Outcome {
                id,
                state,
                classification,
                reason,
            } => outcomes.push((*id, state.as_str(), classification, reason.clone())),
            IntakeWrite::Bounce {
                address,
                hard,
                reason,
            } => record_bounce::<DB>(&mut *conn, address, *hard, reason, now).await?,
            IntakeWrite::Proposal { proposal, receipt } => {
                proposals.push((i, proposal, receipt.as_ref()))
            }
            // Rare next to proposals: one at a time.
            IntakeWrite::FollowUp {
                follow_up,
                confirmation,
            } => {
                let new = record_follow_up::<DB>(&mut *conn, follow_up, confirmation.as_ref(), now)
                    .await?;
                applied[i] = Applied::FollowUp { new };
            }
        }
    }
    for chunk in proposals.chunks(PROPOSAL_ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO proposals (receipt_no, consultation_id, cso_id, inbound_message_id, from_address, \
             other_sender, late, draft_number, subject, reply_text, quoted_text, signature, attachments, \
             authentication, created_at) \
             VALUES {} ON CONFLICT (inbound_message_id) DO NOTHING RETURNING inbound_message_id",
            placeholders::<DB>(chunk.len(), 15, |p| format!("({})", p.join(", ")))
        );
        let mut insert = sqlx::query_as::<DB, (i64,)>(&sql);
        for (_, p, _) in chunk {
            insert = insert
                .bind(p.receipt_no.as_str())
                .bind(p.consultation_id)
                .bind(p.cso_id)
                .bind(p.inbound_message_id)
                .bind(p.from_address.as_str())
                .bind(p.other_sender)
                .bind(p.late)
                .bind(p.draft_number)
                .bind(p.subject.as_str())
                .bind(p.reply_text.as_str())
                .bind(p.quoted_text.as_str())
                .bind(p.signature.as_str())
                .bind(p.attachments_json.as_str())
                .bind(p.authentication_json.as_str())
                .bind(now);
        }
        let inserted: HashSet<i64> = insert
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        for (i, p, receipt) in chunk {
            if inserted.contains(&p.inbound_message_id) {
                acknowledgements.extend(receipt.cloned());
                outcomes.push((
                    p.inbound_message_id,
                    InboundState::Processed.as_str(),
                    "proposal",
                    format!("proposal {}", p.receipt_no),
                ));
                applied[*i] = Applied::Proposal {
                    receipt_no: p.receipt_no.clone(),
                    new: true,
                };
            } else {
                // Processed again (after a crash, or `mail reprocess`): the
                // message keeps the proposal it has.
                let (existing,): (String,) = sqlx::query_as::<DB, (String,)>(
                    "SELECT receipt_no FROM proposals WHERE inbound_message_id = $1",
                )
                .bind(p.inbound_message_id)
                .fetch_one(&mut *conn)
                .await?;
                applied[*i] = Applied::Proposal {
                    receipt_no: existing,
                    new: false,
                };
            }
        }
    }
    enqueue::<DB>(&mut *conn, &acknowledgements, now).await?;
    for chunk in outcomes.chunks(OUTCOME_ROWS_PER_UPDATE) {
        let sql = format!(
            "UPDATE inbound_messages SET state = v.column2, classification = v.column3, reason = v.column4, \
             processed_at = {} FROM (VALUES {}) AS v WHERE inbound_messages.id = v.column1",
            param::<DB>(1),
            (0..chunk.len())
                .map(|r| {
                    let b = 2 + r * 4;
                    format!(
                        "({}, {}, {}, {})",
                        param::<DB>(b),
                        param::<DB>(b + 1),
                        param::<DB>(b + 2),
                        param::<DB>(b + 3)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut update = sqlx::query::<DB>(&sql).bind(now);
        for (id, state, classification, reason) in chunk {
            update = update
                .bind(*id)
                .bind(*state)
                .bind(*classification)
                .bind(reason.as_str());
        }
        update.execute(&mut *conn).await?;
    }
    Ok(applied)
}

#[derive(FromRow)]
pub(super) struct RawRow {
    id: i64,
    raw: Vec<u8>,
}

pub(super) async fn unprocessed_inbound<DB>(
    pool: &Pool<DB>,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError>
where
    DB: Database,
    RawRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<RawRow> = fetch_all(
        pool,
        "SELECT id, raw FROM inbound_messages WHERE state = 'received' ORDER BY id",
    )
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.raw)).collect())
}

pub(super) async fn set_inbound_outcome<DB>(
    conn: &mut DB::Connection,
    id: i64,
    state: InboundState,
    classification: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "UPDATE inbound_messages SET state = $1, classification = $2, reason = $3, processed_at = $4 WHERE id = $5",
    )
    .bind(state.as_str())
    .bind(classification)
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(FromRow)]
pub(super) struct ProposalRow {
    id: i64,
    receipt_no: String,
    consultation_id: i64,
    cso_id: Option<i64>,
    from_address: String,
    other_sender: bool,
    late: bool,
    draft_number: Option<i64>,
    reply_text: String,
    created_at: DateTime<Utc>,
}

pub(super) async fn proposals<DB>(pool: &Pool<DB>) -> Result<Vec<ProposalSummary>, StoreError>
where
    DB: Database,
    ProposalRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<ProposalRow> = fetch_all(
        pool,
        "SELECT id, receipt_no, consultation_id, cso_id, from_address, other_sender, late, draft_number, \
         reply_text, created_at FROM proposals ORDER BY id",
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ProposalSummary {
            id: r.id,
            receipt_no: r.receipt_no,
            consultation_id: r.consultation_id,
            cso_id: r.cso_id,
            from_address: r.from_address,
            other_sender: r.other_sender,
            late: r.late,
            draft_number: r.draft_number,
            reply_text: r.reply_text,
            created_at: r.created_at,
        })
        .collect())
}

#[derive(FromRow)]
pub(super) struct InboundRow {
    id: i64,
    received_at: DateTime<Utc>,
    source: String,
    from_address: Option<String>,
    subject: Option<String>,
    state: String,
    classification: Option<String>,
    reason: Option<String>,
    raw: Vec<u8>,
}

impl InboundRow {
    fn split(self) -> (InboundSummary, Vec<u8>) {
        (
            InboundSummary {
                id: self.id,
                received_at: self.received_at,
                source: self.source,
                from_address: self.from_address,
                subject: self.subject,
                state: self.state,
                classification: self.classification,
                reason: self.reason,
            },
            self.raw,
        )
    }
}

const INBOUND_COLUMNS: &str =
    "id, received_at, source, from_address, subject, state, classification, reason";

pub(super) async fn inbound_in_state<DB>(
    pool: &Pool<DB>,
    state: &str,
) -> Result<Vec<InboundSummary>, StoreError>
where
    DB: Database,
    InboundRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    // The raw bytes are not needed for a list: an empty blob stands in.
    let sql = format!(
        "SELECT {INBOUND_COLUMNS}, CAST('' AS {}) AS raw FROM inbound_messages WHERE state = $1 ORDER BY id",
        if DB::NAME == "PostgreSQL" {
            "BYTEA"
        } else {
            "BLOB"
        }
    );
    let rows: Vec<InboundRow> = sqlx::query_as::<DB, InboundRow>(&sql)
        .bind(state)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| r.split().0).collect())
}

pub(super) async fn inbound_raw<DB>(
    pool: &Pool<DB>,
    id: i64,
) -> Result<Option<(InboundSummary, Vec<u8>)>, StoreError>
where
    DB: Database,
    InboundRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let sql = format!("SELECT {INBOUND_COLUMNS}, raw FROM inbound_messages WHERE id = $1");
    let row: Option<InboundRow> = sqlx::query_as::<DB, InboundRow>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(InboundRow::split))
}

pub(super) async fn receipt_for_message<DB>(
    pool: &Pool<DB>,
    id: i64,
) -> Result<Option<String>, StoreError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let row: Option<(String,)> = sqlx::query_as::<DB, (String,)>(
        "SELECT receipt_no FROM proposals WHERE inbound_message_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(r,)| r))
}

#[derive(FromRow)]
pub(super) struct ProposalRef {
    pub(super) id: i64,
    pub(super) consultation_id: i64,
    pub(super) cso_id: Option<i64>,
}

pub(super) async fn proposal_by_receipt<DB>(
    pool: &Pool<DB>,
    receipt_no: &str,
) -> Result<Option<(i64, i64, Option<i64>)>, StoreError>
where
    DB: Database,
    ProposalRef: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let row: Option<ProposalRef> = sqlx::query_as::<DB, ProposalRef>(
        "SELECT id, consultation_id, cso_id FROM proposals WHERE receipt_no = $1",
    )
    .bind(receipt_no)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.id, r.consultation_id, r.cso_id)))
}

pub(super) async fn record_follow_up<DB>(
    conn: &mut DB::Connection,
    f: &NewFollowUp,
    confirmation: Option<&NewMessage>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    (String,): for<'r> FromRow<'r, DB::Row>,
{
    let inserted: Option<(i64,)> = sqlx::query_as::<DB, (i64,)>(
        "INSERT INTO follow_ups (proposal_id, inbound_message_id, from_address, reply_text, quoted_text, \
         signature, attachments, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (inbound_message_id) DO NOTHING RETURNING id",
    )
    .bind(f.proposal_id)
    .bind(f.inbound_message_id)
    .bind(f.from_address.as_str())
    .bind(f.reply_text.as_str())
    .bind(f.quoted_text.as_str())
    .bind(f.signature.as_str())
    .bind(f.attachments_json.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_none() {
        return Ok(false);
    }
    if let Some(c) = confirmation {
        enqueue::<DB>(&mut *conn, std::slice::from_ref(c), now).await?;
    }
    set_inbound_outcome::<DB>(
        &mut *conn,
        f.inbound_message_id,
        InboundState::Processed,
        "follow_up",
        &format!("follow-up to {}", f.receipt_no),
        now,
    )
    .await?;
    Ok(true)
}

pub(super) async fn record_bounce<DB>(
    conn: &mut DB::Connection,
    address: &str,
    hard: bool,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    if hard {
        sqlx::query::<DB>(
            "INSERT INTO address_status (address, bounced_at, bounce_reason) VALUES ($1, $2, $3) \
             ON CONFLICT (address) DO UPDATE SET bounced_at = excluded.bounced_at, \
             bounce_reason = excluded.bounce_reason",
        )
        .bind(address)
        .bind(now)
        .bind(reason)
        .execute(conn)
        .await?;
    } else {
        sqlx::query::<DB>(
            "INSERT INTO address_status (address, soft_bounces) VALUES ($1, 1) \
             ON CONFLICT (address) DO UPDATE SET soft_bounces = address_status.soft_bounces + 1",
        )
        .bind(address)
        .execute(conn)
        .await?;
    }
    Ok(())
}

#[derive(FromRow)]
pub(super) struct RelayRefusalRow {
    reason: String,
    since: DateTime<Utc>,
    next_try_at: DateTime<Utc>,
}

pub(super) async fn relay_refusal<DB>(pool: &Pool<DB>) -> Result<Option<RelayRefusal>, StoreError>
where
    DB: Database,
    RelayRefusalRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let rows: Vec<RelayRefusalRow> = fetch_all(
        pool,
        "SELECT reason, since, next_try_at FROM relay_refusal WHERE id = 1",
    )
    .await?;
    Ok(rows.into_iter().next().map(|r| RelayRefusal {
        reason: r.reason,
        since: r.since,
        next_try_at: r.next_try_at,
    }))
}

pub(super) async fn set_relay_refusal<DB>(
    conn: &mut DB::Connection,
    refusal: Option<&RelayRefusal>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    match refusal {
        None => {
            sqlx::query::<DB>("DELETE FROM relay_refusal")
                .execute(conn)
                .await?;
        }
        Some(r) => {
            // The first refusal's `since` is kept while the relay goes on refusing.
            sqlx::query::<DB>(
                "INSERT INTO relay_refusal (id, reason, since, next_try_at) VALUES (1, $1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, \
                 next_try_at = excluded.next_try_at",
            )
            .bind(r.reason.as_str())
            .bind(r.since)
            .bind(r.next_try_at)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn schedule_watermark<DB>(
    pool: &Pool<DB>,
    job: &str,
) -> Result<Option<DateTime<Utc>>, StoreError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    (DateTime<Utc>,): for<'r> FromRow<'r, DB::Row>,
{
    let row: Option<(DateTime<Utc>,)> = sqlx::query_as::<DB, (DateTime<Utc>,)>(
        "SELECT done_through FROM schedule_watermarks WHERE job = $1",
    )
    .bind(job)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(t,)| t))
}

pub(super) async fn set_schedule_watermark<DB>(
    conn: &mut DB::Connection,
    job: &str,
    done_through: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "INSERT INTO schedule_watermarks (job, done_through) VALUES ($1, $2) \
         ON CONFLICT (job) DO UPDATE SET done_through = excluded.done_through",
    )
    .bind(job)
    .bind(done_through)
    .execute(conn)
    .await?;
    Ok(())
}
