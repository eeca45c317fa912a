//! The web form's records: settings, proposals waiting for confirmation,
//! and what a CSO has already sent to a consultation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::*;
use crate::store::records::{NewPending, Pending, SentProposal};
use crate::store::{StoreError, WebStore};

#[derive(FromRow)]
pub struct PendingRow {
    consultation_id: i64,
    address: String,
    raw: Vec<u8>,
    expires_at: DateTime<Utc>,
    inbound_id: Option<i64>,
}

#[derive(FromRow)]
pub struct SentRow {
    receipt_no: String,
    created_at: DateTime<Utc>,
    follow_ups: i64,
}

#[async_trait]
impl<D: Dialect> WebStore for SqlStore<D>
where
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String, i64): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    PendingRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    SentRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    async fn setting_or_insert(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query::<D::DB>(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&mut *tx)
        .await?;
        let (value,): (String,) =
            sqlx::query_as::<D::DB, (String,)>("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(value)
    }

    async fn insert_pending(&self, p: &NewPending) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query::<D::DB>(
            "INSERT INTO pending_submissions \
             (nonce, token_hash, consultation_id, address, raw, created_at, expires_at) \
             VALUES ($7, $1, $2, $3, $4, $5, $6) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(p.token_hash.as_str())
        .bind(p.consultation_id)
        .bind(p.address.as_str())
        .bind(p.raw.as_slice())
        .bind(p.created_at)
        .bind(p.expires_at)
        .bind(p.nonce.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(D::rows_affected(&done) > 0)
    }

    async fn receipt_of_message(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as::<D::DB, (String,)>(
            "SELECT receipt_no FROM proposals WHERE inbound_message_id = $1 \
             UNION ALL SELECT p.receipt_no FROM follow_ups f JOIN proposals p ON p.id = f.proposal_id \
             WHERE f.inbound_message_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(r,)| r))
    }

    async fn inbound_with_message_id(&self, message_id: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT id FROM inbound_messages WHERE message_id = $1 ORDER BY id LIMIT 1",
        )
        .bind(message_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    async fn pending_count(&self, address: &str, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT COUNT(*) FROM pending_submissions WHERE address = $1 AND created_at >= $2",
        )
        .bind(address)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn pending(&self, token_hash: &str) -> Result<Option<Pending>, StoreError> {
        let row: Option<PendingRow> = sqlx::query_as::<D::DB, PendingRow>(
            "SELECT consultation_id, address, raw, expires_at, inbound_id \
             FROM pending_submissions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| Pending {
            consultation_id: r.consultation_id,
            address: r.address,
            raw: r.raw,
            expires_at: r.expires_at,
            inbound_id: r.inbound_id,
        }))
    }

    async fn pending_confirmed(&self, token_hash: &str, inbound_id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query::<D::DB>(
            "UPDATE pending_submissions SET inbound_id = $1 WHERE token_hash = $2",
        )
        .bind(inbound_id)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn proposals_by_source(&self) -> Result<Vec<(String, i64)>, StoreError> {
        fetch_all(
            &self.read,
            "SELECT i.source, COUNT(*) FROM proposals p \
             JOIN inbound_messages i ON i.id = p.inbound_message_id GROUP BY i.source",
        )
        .await
    }

    async fn inbound_by_outcome(&self) -> Result<Vec<(String, i64)>, StoreError> {
        fetch_all(
            &self.read,
            "SELECT COALESCE(classification, state), COUNT(*) FROM inbound_messages \
             GROUP BY COALESCE(classification, state)",
        )
        .await
    }

    async fn sent_proposals(
        &self,
        consultation_id: i64,
        cso_id: i64,
    ) -> Result<Vec<SentProposal>, StoreError> {
        let rows: Vec<SentRow> = sqlx::query_as::<D::DB, SentRow>(
            "SELECT p.receipt_no, p.created_at, \
             (SELECT COUNT(*) FROM follow_ups f WHERE f.proposal_id = p.id) AS follow_ups \
             FROM proposals p WHERE p.consultation_id = $1 AND p.cso_id = $2 ORDER BY p.id",
        )
        .bind(consultation_id)
        .bind(cso_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SentProposal {
                receipt_no: r.receipt_no,
                created_at: r.created_at,
                follow_ups: r.follow_ups,
            })
            .collect())
    }
}
