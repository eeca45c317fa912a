//! Putting messages in the outbox, inside the caller's transaction, and the
//! reply keys they carry, looked up by the batch.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::*;
use crate::domain::{EmailAddress, ReplyKey};
use crate::store::StoreError;
use crate::store::records::*;

#[derive(FromRow)]
pub struct ReplyKeyRow {
    key: String,
    consultation_id: i64,
    cso_id: i64,
    address: String,
    purpose: String,
    receipt_no: Option<String>,
}

/// Rows per multi-row INSERT into the outbox: nine parameters each, and
/// messages of some tens of kilobytes, so a statement stays a few megabytes.
const OUTBOX_ROWS_PER_INSERT: usize = 200;

/// Queueing inside the caller's transaction: consultations and intake queue
/// their notices and receipts with what they write.
impl<D: Dialect> SqlStore<D>
where
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    /// Queues messages whose idempotency key is new, each with its reply key;
    /// returns how many were new. Multi-row INSERTs: a statement per message
    /// would cost a round trip each, which dominated queueing 10,000 invitations.
    pub(super) async fn enqueue_in(
        conn: &mut <D::DB as Database>::Connection,
        messages: &[NewMessage],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut new = 0;
        for chunk in messages.chunks(OUTBOX_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO outbox (idempotency_key, kind, lane, recipient, envelope_from, \
                 consultation_id, cso_id, state, attempts, next_attempt_at, created_at) \
                 VALUES {} ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
                placeholders::<D>(chunk.len(), 9, |p| {
                    format!(
                        "({}, {}, {}, {}, {}, {}, {}, 'queued', 0, {}, {})",
                        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
                    )
                })
            );
            let mut insert = sqlx::query_as::<D::DB, (i64, String)>(&sql);
            for m in chunk {
                insert = insert
                    .bind(m.idempotency_key.as_str())
                    .bind(m.kind.as_str())
                    .bind(m.kind.lane().number())
                    .bind(m.recipient.as_str())
                    .bind(m.envelope_from.as_str())
                    .bind(m.consultation_id)
                    .bind(m.cso_id)
                    .bind(now)
                    .bind(now);
            }
            let inserted: Vec<(i64, String)> = insert.fetch_all(&mut *conn).await?;
            new += inserted.len() as u64;
            let inserted: std::collections::HashMap<&str, i64> =
                inserted.iter().map(|(id, k)| (k.as_str(), *id)).collect();
            let bodies: Vec<(i64, &[u8])> = chunk
                .iter()
                .filter_map(|m| {
                    let id = inserted.get(m.idempotency_key.as_str())?;
                    Some((*id, m.message.as_slice()))
                })
                .collect();
            if !bodies.is_empty() {
                let sql = format!(
                    "INSERT INTO outbox_bodies (outbox_id, message) VALUES {}",
                    placeholders::<D>(bodies.len(), 2, |p| format!("({}, {})", p[0], p[1]))
                );
                let mut insert = sqlx::query::<D::DB>(&sql);
                for (id, message) in bodies {
                    insert = insert.bind(id).bind(message);
                }
                insert.execute(&mut *conn).await?;
            }
            let keys: Vec<&ReplyKeyRecord> = chunk
                .iter()
                .filter(|m| inserted.contains_key(m.idempotency_key.as_str()))
                .filter_map(|m| m.reply_key.as_ref())
                .collect();
            if keys.is_empty() {
                continue;
            }
            let sql = format!(
                "INSERT INTO reply_keys (key, consultation_id, cso_id, address, purpose, receipt_no, created_at) VALUES {}",
                placeholders::<D>(keys.len(), 7, |p| format!("({})", p.join(", ")))
            );
            let mut insert = sqlx::query::<D::DB>(&sql);
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
}

/// Reply keys by the batch: intake looks up every key a batch carries at once.
impl<D: Dialect> SqlStore<D>
where
    ReplyKeyRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
{
    /// The records of those of `keys` that exist.
    pub(super) async fn reply_keys(
        pool: &Pool<D::DB>,
        keys: &[ReplyKey],
    ) -> Result<Vec<ReplyKeyRecord>, StoreError> {
        let mut rows: Vec<ReplyKeyRow> = Vec::new();
        for chunk in keys.chunks(LIST_CHUNK) {
            let sql = format!(
                "SELECT key, consultation_id, cso_id, address, purpose, receipt_no FROM reply_keys WHERE key IN ({})",
                numbered(1, chunk.len())
            );
            let mut q = sqlx::query_as::<D::DB, ReplyKeyRow>(&sql);
            for k in chunk {
                q = q.bind(k.as_str());
            }
            rows.extend(q.fetch_all(pool).await?);
        }
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
}
