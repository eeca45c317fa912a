//! Organisations, their addresses and the state of each address, the history
//! of imports, and the POC's relevance decisions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::*;
use crate::domain::{EmailAddress, Language, RegistrationNumber, Relevance};
use crate::store::records::*;
use crate::store::{RegistryImport, RegistryStore, StoreError};

pub(crate) const FIELD_SEPARATOR: &str = "\n";

/// Addresses never contain a newline (EmailAddress refuses whitespace).
pub(super) const EMAIL_SEPARATOR: char = '\n';

/// An organisation's row with its addresses gathered; read by sqlx, or
/// through the SQLite handle by the import.
#[derive(FromRow)]
pub struct CsoRow {
    pub(crate) id: i64,
    pub(crate) registration_no: String,
    pub(crate) name: String,
    pub(crate) phone: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) fields_of_activity: String,
    pub(crate) language: String,
    pub(crate) active: bool,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) emails: Option<String>,
}

#[derive(FromRow)]
pub struct OverrideRow {
    registration_no: String,
    policy_area: String,
    relevance: String,
    reason: String,
    set_at: DateTime<Utc>,
}

#[derive(FromRow)]
pub struct ImportRow {
    file_name: String,
    full_import: bool,
    added: i64,
    updated: i64,
    unchanged: i64,
    inactivated: i64,
    skipped: i64,
    imported_at: DateTime<Utc>,
}

/// Which CSOs a read wants: all of them for imports and matching, one by id
/// or by address for routing a message.
#[derive(Debug, Clone, Copy)]
pub enum CsoFilter<'a> {
    All,
    Id(i64),
    Ids(&'a [i64]),
    Address(&'a str),
}

impl CsoRow {
    pub(crate) fn into_cso(self) -> Result<Cso, StoreError> {
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

pub(crate) fn fields_column(record: &CsoRecord) -> String {
    record.fields_of_activity.join(FIELD_SEPARATOR)
}

/// The columns of a [`CsoRow`]; `emails_sql` gathers a CSO's addresses.
fn cso_select(emails_sql: &str) -> String {
    format!(
        "SELECT c.id, c.registration_no, c.name, c.phone, c.city, c.fields_of_activity, \
         c.language, c.active, c.updated_at, ({emails_sql}) AS emails FROM csos c"
    )
}

// ----- imports -----------------------------------------------------------------

/// An import being written, in one write transaction: see [`RegistryImport`].
pub struct SqlImport<D: Dialect> {
    tx: Transaction<'static, D::DB>,
    now: DateTime<Utc>,
}

impl<D: Dialect> SqlImport<D> {
    pub(super) fn new(tx: Transaction<'static, D::DB>, now: DateTime<Utc>) -> Self {
        Self { tx, now }
    }
}

impl<D: Dialect> SqlImport<D>
where
    CsoRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    /// Adds the history line for an import, inside the import's transaction.
    async fn insert_import_log_in(
        conn: &mut <D::DB as Database>::Connection,
        log: &ImportLogEntry,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        sqlx::query::<D::DB>(
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

    /// The CSOs whose `column` is one of `values`, a list at a time.
    async fn csos_in<T>(&mut self, column: &str, values: &[T]) -> Result<Vec<Cso>, StoreError>
    where
        T: for<'q> Encode<'q, D::DB> + Type<D::DB> + Clone + Send + Sync + 'static,
    {
        let mut found = Vec::with_capacity(values.len());
        for chunk in values.chunks(LIST_CHUNK) {
            let sql = format!(
                "{} WHERE c.{column} IN ({})",
                cso_select(D::EMAILS_OF_CSO),
                placeholders::<D>(chunk.len(), 1, |p| p[0].clone())
            );
            let mut q = sqlx::query_as::<D::DB, CsoRow>(&sql);
            for value in chunk {
                q = q.bind(value.clone());
            }
            for row in q.fetch_all(&mut *self.tx).await? {
                found.push(row.into_cso()?);
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl<D: Dialect> RegistryImport for SqlImport<D>
where
    CsoRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    async fn find(&mut self, registration_nos: &[&str]) -> Result<Vec<Cso>, StoreError> {
        D::find_registered(&mut self.tx, registration_nos).await
    }

    async fn find_ids(&mut self, ids: &[i64]) -> Result<Vec<Cso>, StoreError> {
        self.csos_in("id", ids).await
    }

    async fn active_ids(&mut self) -> Result<Vec<i64>, StoreError> {
        D::active_cso_ids(&mut self.tx).await
    }

    async fn write(&mut self, changes: &RegistryChanges) -> Result<Vec<i64>, StoreError> {
        D::apply_registry_changes(&mut self.tx, changes, self.now).await
    }

    async fn commit(mut self: Box<Self>, log: &ImportLogEntry) -> Result<(), StoreError> {
        Self::insert_import_log_in(&mut self.tx, log, self.now).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

// ----- addresses ---------------------------------------------------------------

#[derive(FromRow)]
pub struct AddressRow {
    address: String,
    opted_out_at: Option<DateTime<Utc>>,
    opt_out_source: Option<String>,
    bounced_at: Option<DateTime<Utc>>,
    bounce_reason: Option<String>,
    soft_bounces: i64,
    restored_at: Option<DateTime<Utc>>,
    restore_reason: Option<String>,
}

/// Organisations by filter: intake reads the CSOs of a batch's reply keys.
impl<D: Dialect> SqlStore<D>
where
    CsoRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    /// Every CSO with its addresses. `emails_sql` is the backend's way of
    /// gathering a CSO's addresses, in order, into one newline-separated column
    /// (group_concat or string_agg): one row per CSO instead of a second query,
    /// which halves the rows decoded on a 100,000-organisation registry.
    pub(super) async fn csos_where(
        pool: &Pool<D::DB>,
        emails_sql: &str,
        filter: CsoFilter<'_>,
    ) -> Result<Vec<Cso>, StoreError> {
        let select = cso_select(emails_sql);
        let rows: Vec<CsoRow> = match filter {
            CsoFilter::All => fetch_all(pool, &format!("{select} ORDER BY c.id")).await?,
            CsoFilter::Id(id) => {
                sqlx::query_as::<D::DB, CsoRow>(&format!("{select} WHERE c.id = $1"))
                    .bind(id)
                    .fetch_all(pool)
                    .await?
            }
            CsoFilter::Ids(ids) => {
                let mut rows = Vec::new();
                for chunk in ids.chunks(LIST_CHUNK) {
                    let sql = format!("{select} WHERE c.id IN ({})", numbered(1, chunk.len()));
                    let mut q = sqlx::query_as::<D::DB, CsoRow>(&sql);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    rows.extend(q.fetch_all(pool).await?);
                }
                rows
            }
            CsoFilter::Address(address) => {
                sqlx::query_as::<D::DB, CsoRow>(&format!(
                    "{select} WHERE c.id IN (SELECT cso_id FROM cso_emails WHERE address = $1) ORDER BY c.id"
                ))
                .bind(address)
                .fetch_all(pool)
                .await?
            }
        };
        rows.into_iter().map(CsoRow::into_cso).collect()
    }
}

/// Writes inside the caller's transaction, and reads several methods share.
impl<D: Dialect> SqlStore<D>
where
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    AddressRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    CsoRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ImportRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    OverrideRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    pub(super) async fn set_relevance_override_in(
        pool: &Pool<D::DB>,
        o: &RelevanceOverride,
    ) -> Result<(), StoreError> {
        sqlx::query::<D::DB>(
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

    pub(super) async fn clear_relevance_override_in(
        pool: &Pool<D::DB>,
        registration_no: &RegistrationNumber,
        policy_area: &str,
    ) -> Result<bool, StoreError> {
        let removed: Option<(String,)> = sqlx::query_as::<D::DB, (String,)>(
            "DELETE FROM relevance_overrides WHERE registration_no = $1 AND policy_area = $2 \
             RETURNING registration_no",
        )
        .bind(registration_no.as_str())
        .bind(policy_area)
        .fetch_optional(pool)
        .await?;
        Ok(removed.is_some())
    }

    pub(super) async fn opt_out_in(
        conn: &mut <D::DB as Database>::Connection,
        address: &EmailAddress,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // An address already opted out keeps its first date.
        sqlx::query::<D::DB>(
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

    pub(super) async fn restore_address_in(
        conn: &mut <D::DB as Database>::Connection,
        address: &EmailAddress,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let restored: Option<(String,)> = sqlx::query_as::<D::DB, (String,)>(
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
}

#[async_trait]
impl<D: Dialect> RegistryStore for SqlStore<D>
where
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    AddressRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    CsoRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ImportRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    OverrideRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "csos"))]
    async fn csos(&self) -> Result<Vec<Cso>, StoreError> {
        Self::csos_where(&self.read, D::EMAILS_OF_CSO, CsoFilter::All).await
    }

    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "cso"))]
    async fn cso(&self, id: i64) -> Result<Option<Cso>, StoreError> {
        let mut found = Self::csos_where(&self.read, D::EMAILS_OF_CSO, CsoFilter::Id(id)).await?;
        Ok(found.pop())
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "csos_with_address")
    )]
    async fn csos_with_address(&self, address: &EmailAddress) -> Result<Vec<Cso>, StoreError> {
        Self::csos_where(
            &self.read,
            D::EMAILS_OF_CSO,
            CsoFilter::Address(address.as_str()),
        )
        .await
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "begin_import")
    )]
    async fn begin_import(&self) -> Result<Box<dyn RegistryImport>, StoreError> {
        let mut tx = self.begin().await?;
        if !D::LOCK_REGISTRY.is_empty() {
            sqlx::query::<D::DB>(D::LOCK_REGISTRY)
                .execute(&mut *tx)
                .await?;
        }
        Ok(Box::new(SqlImport::<D>::new(tx, self.now())))
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "registry_imports")
    )]
    async fn registry_imports(&self, limit: u32) -> Result<Vec<ImportRecord>, StoreError> {
        let pool = &self.read;
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

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "set_relevance_override")
    )]
    async fn set_relevance_override(&self, o: &RelevanceOverride) -> Result<(), StoreError> {
        Self::set_relevance_override_in(&self.write, o).await
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "clear_relevance_override")
    )]
    async fn clear_relevance_override(
        &self,
        registration_no: &RegistrationNumber,
        policy_area: &str,
    ) -> Result<bool, StoreError> {
        Self::clear_relevance_override_in(&self.write, registration_no, policy_area).await
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "relevance_overrides")
    )]
    async fn relevance_overrides(&self) -> Result<Vec<RelevanceOverride>, StoreError> {
        let pool = &self.read;
        let rows: Vec<OverrideRow> = fetch_all(
            pool,
            "SELECT registration_no, policy_area, relevance, reason, set_at \
             FROM relevance_overrides ORDER BY policy_area, registration_no",
        )
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(RelevanceOverride {
                    registration_no: RegistrationNumber::parse(&r.registration_no)
                        .map_err(corrupt)?,
                    policy_area: r.policy_area,
                    relevance: Relevance::parse(&r.relevance).map_err(corrupt)?,
                    reason: r.reason,
                    set_at: r.set_at,
                })
            })
            .collect()
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "address_statuses")
    )]
    async fn address_statuses(&self) -> Result<Vec<AddressStatus>, StoreError> {
        let pool = &self.read;
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

    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "opt_out"))]
    async fn opt_out(&self, address: &EmailAddress, source: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        Self::opt_out_in(&mut tx, address, source, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "restore_address")
    )]
    async fn restore_address(
        &self,
        address: &EmailAddress,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let restored = Self::restore_address_in(&mut tx, address, reason, self.now()).await?;
        tx.commit().await?;
        Ok(restored)
    }
}
