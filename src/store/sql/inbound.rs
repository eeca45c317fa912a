//! Inbound mail: messages stored as they arrived, what intake made of them
//! (proposals, follow-ups, bounces), and the holding pen.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::queue::ReplyKeyRow;
use super::registry::CsoRow;
use super::*;
use crate::domain::{ReceiptNo, ReplyKey};
use crate::store::records::*;
use crate::store::{InboundStore, StoreError};

// ----- inbound mail and proposals ----------------------------------------------

#[derive(FromRow)]
pub struct RawRow {
    id: i64,
    raw: Vec<u8>,
}

#[derive(FromRow)]
pub struct ProposalRow {
    id: i64,
    receipt_no: String,
    consultation_id: i64,
    cso_id: Option<i64>,
    from_address: String,
    other_sender: bool,
    late: bool,
    draft_number: Option<i64>,
    reply_text: String,
    sender_flag: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(FromRow)]
pub struct InboundRow {
    id: i64,
    received_at: DateTime<Utc>,
    source: String,
    from_address: Option<String>,
    subject: Option<String>,
    state: String,
    classification: Option<String>,
    reason: Option<String>,
    reason_sq: Option<String>,
    raw: Vec<u8>,
}

impl InboundRow {
    fn split(self) -> Result<(InboundSummary, Vec<u8>), StoreError> {
        let state = InboundState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("message {} is in state '{}'", self.id, self.state)))?;
        Ok((
            InboundSummary {
                id: self.id,
                received_at: self.received_at,
                source: self.source,
                from_address: self.from_address,
                subject: self.subject,
                state,
                classification: self.classification,
                reason_sq: self.reason_sq.or_else(|| self.reason.clone()),
                reason: self.reason,
            },
            self.raw,
        ))
    }
}

const INBOUND_COLUMNS: &str =
    "id, received_at, source, from_address, subject, state, classification, reason, reason_sq";

#[derive(FromRow)]
pub struct ProposalRefRow {
    pub(super) id: i64,
    pub(super) consultation_id: i64,
    pub(super) cso_id: Option<i64>,
    pub(super) from_address: String,
}

#[async_trait]
impl<D: Dialect> InboundStore for SqlStore<D>
where
    (String, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String, i64): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (DateTime<Utc>,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    CsoRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    InboundRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ProposalRefRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ProposalRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    RawRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ReplyKeyRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "store_inbound_many")
    )]
    async fn store_inbound_many(
        &self,
        messages: &[NewInbound<'_>],
    ) -> Result<Vec<StoredInbound>, StoreError> {
        let mut tx = self.begin().await?;
        let stored = Self::store_inbound_many_in(&mut tx, messages, self.now()).await?;
        tx.commit().await?;
        Ok(stored)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "apply_intake")
    )]
    async fn apply_intake(&self, writes: &[IntakeWrite]) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self.begin().await?;
        let applied = Self::apply_intake_in(&mut tx, writes, self.now()).await?;
        tx.commit().await?;
        Ok(applied)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "intake_lookups")
    )]
    async fn intake_lookups(
        &self,
        keys: &[ReplyKey],
        senders: &[String],
        acknowledged_since: DateTime<Utc>,
        texts_since: DateTime<Utc>,
    ) -> Result<IntakeLookups, StoreError> {
        Self::intake_lookups_in(
            &self.read,
            D::EMAILS_OF_CSO,
            keys,
            senders,
            acknowledged_since,
            texts_since,
        )
        .await
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "unprocessed_inbound")
    )]
    async fn due_unprocessed(
        &self,
        now: DateTime<Utc>,
        settled_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let rows: Vec<RawRow> = sqlx::query_as(
            "SELECT id, raw FROM inbound_messages WHERE state = 'received' \
             AND received_at < $1 AND (next_attempt_at IS NULL OR next_attempt_at <= $2) \
             ORDER BY id LIMIT $3",
        )
        .bind(settled_before)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.raw)).collect())
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "processing_failed")
    )]
    async fn processing_failed(
        &self,
        id: i64,
        error: &str,
        hold_after: u32,
        retry_at: &(dyn Fn(u32) -> DateTime<Utc> + Send + Sync),
    ) -> Result<bool, StoreError> {
        let error = crate::telemetry::cut(error, 2000);
        let mut tx = self.begin().await?;
        let attempts: Option<(i64,)> = sqlx::query_as(
            "UPDATE inbound_messages SET attempts = attempts + 1, last_error = $1 \
             WHERE id = $2 AND state = 'received' RETURNING attempts",
        )
        .bind(error.as_ref())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        // Processed or held meanwhile (by another process): nothing to do.
        let Some((attempts,)) = attempts else {
            return Ok(false);
        };
        let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        let held = attempts >= hold_after;
        if held {
            sqlx::query::<D::DB>(
                "UPDATE inbound_messages SET state = 'held', classification = 'unprocessable', \
                 reason = $1, reason_sq = $4, processed_at = $2 WHERE id = $3",
            )
            .bind(format!(
                "could not be processed after {}: {error}",
                crate::domain::count(attempts as usize, "attempt")
            ))
            .bind(self.now())
            .bind(id)
            .bind(format!(
                "nuk u përpunua dot pas {attempts} {}: {error}",
                if attempts == 1 {
                    "përpjekjeje"
                } else {
                    "përpjekjesh"
                }
            ))
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query::<D::DB>("UPDATE inbound_messages SET next_attempt_at = $1 WHERE id = $2")
                .bind(retry_at(attempts))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "unprocessed_backlog")
    )]
    async fn unprocessed_backlog(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM inbound_messages WHERE state = 'received'")
                .fetch_one(&self.read)
                .await?;
        let oldest: Option<(DateTime<Utc>,)> = sqlx::query_as(
            "SELECT received_at FROM inbound_messages WHERE state = 'received' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok((u64::try_from(count).unwrap_or(0), oldest.map(|(t,)| t)))
    }

    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "proposals"))]
    async fn proposals(&self) -> Result<Vec<ProposalSummary>, StoreError> {
        let pool = &self.read;
        let rows: Vec<ProposalRow> = fetch_all(
            pool,
            "SELECT id, receipt_no, consultation_id, cso_id, from_address, other_sender, late, draft_number, \
             reply_text, sender_flag, created_at FROM proposals ORDER BY id",
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
                sender_flag: r.sender_flag,
                created_at: r.created_at,
            })
            .collect())
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "inbound_in_state")
    )]
    async fn inbound_in_state(
        &self,
        state: InboundState,
    ) -> Result<Vec<InboundSummary>, StoreError> {
        let pool = &self.read;
        // The raw bytes are not needed for a list: an empty blob stands in.
        let sql = format!(
            "SELECT {INBOUND_COLUMNS}, CAST('' AS {}) AS raw FROM inbound_messages WHERE state = $1 ORDER BY id",
            D::BLOB
        );
        let rows: Vec<InboundRow> = sqlx::query_as::<D::DB, InboundRow>(&sql)
            .bind(state.as_str())
            .fetch_all(pool)
            .await?;
        rows.into_iter()
            .map(|r| r.split().map(|(summary, _)| summary))
            .collect()
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "inbound_raw")
    )]
    async fn inbound_raw(&self, id: i64) -> Result<Option<(InboundSummary, Vec<u8>)>, StoreError> {
        let pool = &self.read;
        let sql = format!("SELECT {INBOUND_COLUMNS}, raw FROM inbound_messages WHERE id = $1");
        let row: Option<InboundRow> = sqlx::query_as::<D::DB, InboundRow>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(InboundRow::split).transpose()
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "receipt_for_message")
    )]
    async fn receipt_for_message(&self, id: i64) -> Result<Option<String>, StoreError> {
        let pool = &self.read;
        let row: Option<(String,)> = sqlx::query_as::<D::DB, (String,)>(
            "SELECT receipt_no FROM proposals WHERE inbound_message_id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|(r,)| r))
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "proposal_by_receipt")
    )]
    async fn proposal_by_receipt(
        &self,
        receipt_no: &ReceiptNo,
    ) -> Result<Option<ProposalRef>, StoreError> {
        let pool = &self.read;
        let row: Option<ProposalRefRow> = sqlx::query_as::<D::DB, ProposalRefRow>(
            "SELECT id, consultation_id, cso_id, from_address FROM proposals WHERE receipt_no = $1",
        )
        .bind(receipt_no.as_str())
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|r| ProposalRef {
            id: r.id,
            consultation_id: r.consultation_id,
            cso_id: r.cso_id,
            from_address: r.from_address,
        }))
    }
}
