//! Consultations, deadline extensions, and the watermarks of scheduled jobs.

use crate::domain::Bilingual;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::*;
use crate::consultation::{Consultation, ConsultationSpec, ConsultationState, DeadlineExtension};
use crate::store::records::*;
use crate::store::{ConsultationStore, StoreError};

// ----- consultations -------------------------------------------------------

#[derive(FromRow)]
pub struct ConsultationRow {
    id: i64,
    state: String,
    opens_by_schedule: bool,
    spec: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ConsultationRow {
    fn into_consultation(self) -> Result<Consultation, StoreError> {
        Ok(Consultation {
            id: self.id,
            spec: serde_json::from_str(&self.spec).map_err(corrupt)?,
            state: match ConsultationState::parse(&self.state) {
                Some(ConsultationState::Draft) if self.opens_by_schedule => {
                    ConsultationState::Scheduled
                }
                Some(state) => state,
                None => return Err(corrupt(format!("consultation state '{}'", self.state))),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(super) fn spec_json(spec: &ConsultationSpec) -> String {
    serde_json::to_string(spec).expect("a spec always serialises")
}

/// Turns a unique-constraint violation into a sentence about what clashed.
pub(super) fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Query(e),
    }
}

#[derive(FromRow)]
pub struct ExtensionRow {
    consultation_id: i64,
    previous: chrono::NaiveDate,
    new: chrono::NaiveDate,
    reason: String,
    reason_en: Option<String>,
    at: DateTime<Utc>,
}

/// Writes inside the caller's transaction, and reads several methods share.
impl<D: Dialect> SqlStore<D>
where
    (DateTime<Utc>,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ConsultationRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ExtensionRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<bool>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> chrono::NaiveDate: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    // ----- writes shared by both backends, inside the caller's transaction -------

    pub(super) async fn insert_consultation_in(
        conn: &mut <D::DB as Database>::Connection,
        spec: &ConsultationSpec,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
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

    pub(super) async fn update_consultation_in(
        conn: &mut <D::DB as Database>::Connection,
        id: i64,
        spec: &ConsultationSpec,
        state: Option<ConsultationState>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let updated: Option<(i64,)> = sqlx::query_as::<D::DB, (i64,)>(
            "UPDATE consultations SET reference = $1, policy_area = $2, opens_on = $3, closes_on = $4, \
             spec = $5, state = COALESCE($6, state), updated_at = $7, \
             opens_by_schedule = COALESCE($9, opens_by_schedule) WHERE id = $8 RETURNING id",
        )
        .bind(spec.reference.as_str())
        .bind(spec.policy_area.as_str())
        .bind(spec.opens_on)
        .bind(spec.closes_on)
        .bind(spec_json(spec))
        // A consultation scheduled to open is a draft that the schedule
        // opens: stored as 'draft' with opens_by_schedule set.
        .bind(state.map(|s| match s {
            ConsultationState::Scheduled => ConsultationState::Draft.as_str(),
            s => s.as_str(),
        }))
        .bind(now)
        .bind(id)
        .bind(state.map(|s| s == ConsultationState::Scheduled))
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

    pub(super) async fn insert_extension(
        conn: &mut <D::DB as Database>::Connection,
        ext: &DeadlineExtension,
    ) -> Result<(), StoreError> {
        sqlx::query::<D::DB>(
            "INSERT INTO deadline_extensions (consultation_id, previous, new, reason, reason_en, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ext.consultation_id)
        .bind(ext.previous)
        .bind(ext.new)
        .bind(ext.reason.sq.as_str())
        .bind((!ext.reason.is_one()).then_some(ext.reason.en.as_str()))
        .bind(ext.at)
        .execute(conn)
        .await?;
        Ok(())
    }

    pub(super) async fn extensions(
        pool: &Pool<D::DB>,
    ) -> Result<Vec<DeadlineExtension>, StoreError> {
        let rows: Vec<ExtensionRow> = fetch_all(
            pool,
            "SELECT consultation_id, previous, new, reason, reason_en, at FROM deadline_extensions ORDER BY id",
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DeadlineExtension {
                consultation_id: r.consultation_id,
                previous: r.previous,
                new: r.new,
                reason: Bilingual::sq_and_maybe_en(r.reason, r.reason_en),
                at: r.at,
            })
            .collect())
    }

    pub(super) async fn set_schedule_watermark_in(
        conn: &mut <D::DB as Database>::Connection,
        job: &str,
        done_through: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query::<D::DB>(
            "INSERT INTO schedule_watermarks (job, done_through) VALUES ($1, $2) \
             ON CONFLICT (job) DO UPDATE SET done_through = excluded.done_through",
        )
        .bind(job)
        .bind(done_through)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> ConsultationStore for SqlStore<D>
where
    (DateTime<Utc>,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ConsultationRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ExtensionRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<bool>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> chrono::NaiveDate: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "consultations")
    )]
    async fn consultations(&self) -> Result<Vec<Consultation>, StoreError> {
        let pool = &self.read;
        let rows: Vec<ConsultationRow> = fetch_all(
            pool,
            "SELECT id, state, opens_by_schedule, spec, created_at, updated_at FROM consultations ORDER BY id",
        )
        .await?;
        rows.into_iter()
            .map(ConsultationRow::into_consultation)
            .collect()
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "deadline_extensions")
    )]
    async fn deadline_extensions(&self) -> Result<Vec<DeadlineExtension>, StoreError> {
        Self::extensions(&self.read).await
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "insert_consultation")
    )]
    async fn insert_consultation(&self, spec: &ConsultationSpec) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let id = Self::insert_consultation_in(&mut tx, spec, self.now()).await?;
        tx.commit().await?;
        Ok(id)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "update_consultation")
    )]
    async fn update_consultation(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        state: Option<ConsultationState>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        Self::update_consultation_in(&mut tx, id, spec, state, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "extend_deadline")
    )]
    async fn extend_deadline(
        &self,
        extension: &DeadlineExtension,
        spec: &ConsultationSpec,
        notices: &[NewMessage],
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        Self::update_consultation_in(&mut tx, extension.consultation_id, spec, None, now).await?;
        Self::insert_extension(&mut tx, extension).await?;
        let queued = Self::enqueue_in(&mut tx, notices, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "schedule_watermark")
    )]
    async fn schedule_watermark(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let pool = &self.read;
        let row: Option<(DateTime<Utc>,)> = sqlx::query_as::<D::DB, (DateTime<Utc>,)>(
            "SELECT done_through FROM schedule_watermarks WHERE job = $1",
        )
        .bind(job)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|(t,)| t))
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "set_schedule_watermark")
    )]
    async fn set_schedule_watermark(
        &self,
        job: &str,
        done_through: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        Self::set_schedule_watermark_in(&mut tx, job, done_through).await?;
        tx.commit().await?;
        Ok(())
    }
}
