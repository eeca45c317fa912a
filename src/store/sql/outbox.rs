//! The outbox as the sender and the POC see it: claiming by lane, delivery
//! outcomes and retries, counts and failures, and the relay's refusal of
//! cocreate. Queueing and reply keys are in `queue.rs`.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::queue::ReplyKeyRow;
use super::*;
use crate::domain::{Lane, ReplyKey};
use crate::store::records::*;
use crate::store::{OutboxStore, StoreError};

// ----- outbox ----------------------------------------------------------------

#[derive(FromRow)]
pub struct ClaimedRow {
    id: i64,
    idempotency_key: String,
    kind: String,
    recipient: String,
    envelope_from: String,
    attempts: i64,
}

impl ClaimedRow {
    fn with_message(self, message: Vec<u8>) -> OutboxMessage {
        OutboxMessage {
            id: self.id,
            idempotency_key: self.idempotency_key,
            kind: self.kind,
            recipient: self.recipient,
            envelope_from: self.envelope_from,
            message,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
        }
    }
}

/// The claim statement; `lock` is what the backend adds to the inner SELECT
/// so that concurrent claimers skip each other's rows.
/// Claims due messages of the lanes numbered $5 to $6, the lower lane
/// first, then in the order they were queued.
pub(super) fn claim_sql(lock: &str) -> String {
    format!(
        "UPDATE outbox SET state = 'sending', claimed_until = $1, claim_token = $4, \
         attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM outbox \
                      WHERE lane BETWEEN $5 AND $6 \
                        AND ((state = 'queued' AND next_attempt_at <= $2) \
                         OR (state = 'sending' AND claimed_until < $2)) \
                      ORDER BY lane, id LIMIT $3 {lock}) \
         RETURNING id, idempotency_key, kind, recipient, envelope_from, attempts"
    )
}

#[derive(FromRow)]
pub struct CountRow {
    state: String,
    n: i64,
}

#[derive(FromRow)]
pub struct FailureRow {
    id: i64,
    kind: String,
    recipient: String,
    attempts: i64,
    last_error: Option<String>,
    refused: bool,
}

#[derive(FromRow)]
pub struct KeyRow {
    idempotency_key: String,
}

#[derive(FromRow)]
pub struct RelayRefusalRow {
    reason: String,
    since: DateTime<Utc>,
    next_try_at: DateTime<Utc>,
}

/// Writes inside the caller's transaction, and reads several methods share.
impl<D: Dialect> SqlStore<D>
where
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ClaimedRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    CountRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    FailureRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    KeyRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    RelayRefusalRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ReplyKeyRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    /// Marks many messages sent in one statement: the common case of a batch.
    /// Marks many messages sent in one statement: the common case of a
    /// batch. Returns how many were still this claim's to mark.
    pub(super) async fn mark_sent(
        conn: &mut <D::DB as Database>::Connection,
        token: &str,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut marked = 0;
        for chunk in ids.chunks(LIST_CHUNK) {
            let sql = format!(
                "UPDATE outbox SET state = 'sent', sent_at = $1, claimed_until = NULL, \
                 claim_token = NULL, last_error = NULL \
                 WHERE state = 'sending' AND claim_token = $2 AND id IN ({})",
                (3..chunk.len() + 3)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut update = sqlx::query::<D::DB>(&sql).bind(now).bind(token);
            for id in chunk {
                update = update.bind(*id);
            }
            marked += D::rows_affected(&update.execute(&mut *conn).await?);
        }
        Ok(marked)
    }

    /// Undoes claims that were never used: the attempt did not happen.
    pub(super) async fn release_claims_in(
        conn: &mut <D::DB as Database>::Connection,
        token: &str,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(LIST_CHUNK) {
            let sql = format!(
                "UPDATE outbox SET state = 'queued', claimed_until = NULL, claim_token = NULL, \
                 attempts = attempts - 1 \
                 WHERE state = 'sending' AND claim_token = $1 AND id IN ({})",
                (2..chunk.len() + 2)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut update = sqlx::query::<D::DB>(&sql).bind(token);
            for id in chunk {
                update = update.bind(*id);
            }
            update.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Records one outcome if the message is still this claim's; returns
    /// whether it was. A late outcome for a claim that expired and was taken
    /// over must not overwrite the newer attempt's record.
    pub(super) async fn record_delivery(
        conn: &mut <D::DB as Database>::Connection,
        token: &str,
        id: i64,
        recipient: &str,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done =
            match delivery {
                Delivery::Sent => {
                    sqlx::query::<D::DB>(
                        "UPDATE outbox SET state = 'sent', sent_at = $1, claimed_until = NULL, \
                     claim_token = NULL, last_error = NULL \
                     WHERE id = $2 AND state = 'sending' AND claim_token = $3",
                    )
                    .bind(now)
                    .bind(id)
                    .bind(token)
                    .execute(&mut *conn)
                    .await?
                }
                Delivery::Retry { at, error } => sqlx::query::<D::DB>(
                    "UPDATE outbox SET state = 'queued', next_attempt_at = $1, last_error = $2, \
                     claimed_until = NULL, claim_token = NULL \
                     WHERE id = $3 AND state = 'sending' AND claim_token = $4",
                )
                .bind(*at)
                .bind(error.as_str())
                .bind(id)
                .bind(token)
                .execute(&mut *conn)
                .await?,
                Delivery::Failed { error, hard_bounce } => {
                    sqlx::query::<D::DB>(
                        "UPDATE outbox SET state = 'failed', last_error = $1, refused = $4, \
                     claimed_until = NULL, claim_token = NULL \
                     WHERE id = $2 AND state = 'sending' AND claim_token = $3",
                    )
                    .bind(error.as_str())
                    .bind(id)
                    .bind(token)
                    .bind(*hard_bounce)
                    .execute(&mut *conn)
                    .await?
                }
            };
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        if let Delivery::Failed {
            error,
            hard_bounce: true,
        } = delivery
        {
            sqlx::query::<D::DB>(
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
        Ok(true)
    }

    pub(super) async fn retry_in(
        conn: &mut <D::DB as Database>::Connection,
        now: DateTime<Utc>,
        scope: RetryScope,
    ) -> Result<Retried, StoreError> {
        let failed: Vec<(i64,)> = sqlx::query_as::<D::DB, (i64,)>(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $1, refused = FALSE \
             WHERE state = 'failed' AND (NOT refused OR $2) RETURNING id",
        )
        .bind(now)
        .bind(scope.refused)
        .fetch_all(&mut *conn)
        .await?;
        let deferred: Vec<(i64,)> = if scope.deferred_now {
            sqlx::query_as::<D::DB, (i64,)>(
                "UPDATE outbox SET next_attempt_at = $1 \
                 WHERE state = 'queued' AND attempts > 0 AND next_attempt_at > $1 RETURNING id",
            )
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
        } else {
            Vec::new()
        };
        let (refused_left,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT COUNT(*) FROM outbox WHERE state = 'failed' AND refused",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(Retried {
            failed: failed.len() as u64,
            deferred: deferred.len() as u64,
            refused_left: u64::try_from(refused_left).unwrap_or(0),
        })
    }

    pub(super) async fn set_relay_refusal_in(
        conn: &mut <D::DB as Database>::Connection,
        refusal: Option<&RelayRefusal>,
    ) -> Result<(), StoreError> {
        match refusal {
            None => {
                sqlx::query::<D::DB>("DELETE FROM relay_refusal")
                    .execute(conn)
                    .await?;
            }
            Some(r) => {
                // The first refusal's `since` is kept while the relay goes on refusing.
                sqlx::query::<D::DB>(
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
}

#[async_trait]
impl<D: Dialect> OutboxStore for SqlStore<D>
where
    (i64, Vec<u8>): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ClaimedRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    CountRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    FailureRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    KeyRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    RelayRefusalRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ReplyKeyRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    for<'c> &'c Pool<D::DB>: Executor<'c, Database = D::DB>,
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> DateTime<Utc>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "queued_keys")
    )]
    async fn queued_keys(&self, prefix: &str) -> Result<HashSet<String>, StoreError> {
        let pool = &self.read;
        // LIKE with an escaped prefix: keys are built by cocreate from ids,
        // codes and addresses, which may contain '_' but never '\'.
        let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        let rows: Vec<KeyRow> = sqlx::query_as::<D::DB, KeyRow>(
            "SELECT idempotency_key FROM outbox WHERE idempotency_key LIKE $1 ESCAPE '\\'",
        )
        .bind(pattern)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.idempotency_key).collect())
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "outbox_counts")
    )]
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let pool = &self.read;
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
                "cancelled" => c.cancelled = n,
                other => return Err(corrupt(format!("outbox state '{other}'"))),
            }
        }
        Ok(c)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "outbox_failures")
    )]
    async fn outbox_failures(&self, limit: u32) -> Result<Vec<OutboxFailure>, StoreError> {
        let pool = &self.read;
        let rows: Vec<FailureRow> = fetch_all(
            pool,
            &format!(
                "SELECT id, kind, recipient, attempts, last_error, refused FROM outbox \
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
                refused: r.refused,
            })
            .collect())
    }

    async fn outbox_recipient(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as::<D::DB, (String,)>("SELECT recipient FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(r,)| r))
    }

    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "reply_key"))]
    async fn reply_key(&self, key: &ReplyKey) -> Result<Option<ReplyKeyRecord>, StoreError> {
        let pool = &self.read;
        Ok(Self::reply_keys(pool, std::slice::from_ref(key))
            .await?
            .pop())
    }

    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "enqueue"))]
    async fn enqueue(&self, messages: &[NewMessage]) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let queued = Self::enqueue_in(&mut tx, messages, self.now()).await?;
        tx.commit().await?;
        Ok(queued)
    }

    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "claim_due"))]
    async fn claim_due(
        &self,
        limit: u32,
        lease: Duration,
        lane: Option<Lane>,
    ) -> Result<Claim, StoreError> {
        let (first, last) = match lane {
            Some(l) => (l.number(), l.number()),
            None => (Lane::Replies.number(), Lane::Bulk.number()),
        };
        let now = self.now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let token = Claim::new_token();
        let mut tx = self.begin().await?;
        let rows: Vec<ClaimedRow> = sqlx::query_as(&claim_sql(D::CLAIM_LOCK))
            .bind(until)
            .bind(now)
            .bind(i64::from(limit))
            .bind(token.as_str())
            .bind(first)
            .bind(last)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        // The messages themselves, which never change, read after the
        // claim's commit and outside it.
        let mut bodies: std::collections::HashMap<i64, Vec<u8>> =
            std::collections::HashMap::with_capacity(rows.len());
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        for chunk in ids.chunks(LIST_CHUNK) {
            let sql = format!(
                "SELECT outbox_id, message FROM outbox_bodies WHERE outbox_id IN ({})",
                numbered(1, chunk.len())
            );
            let mut q = sqlx::query_as::<D::DB, (i64, Vec<u8>)>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            bodies.extend(q.fetch_all(&self.read).await?);
        }
        let mut messages = rows
            .into_iter()
            .map(|r| match bodies.remove(&r.id) {
                Some(message) => Ok(r.with_message(message)),
                None => Err(corrupt(format!("outbox message {} has no body", r.id))),
            })
            .collect::<Result<Vec<OutboxMessage>, StoreError>>()?;
        messages.sort_by_key(|m| m.id);
        Ok(Claim { token, messages })
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "renew_claim")
    )]
    async fn renew_claim(&self, token: &str, lease: Duration) -> Result<Vec<i64>, StoreError> {
        let until = self.now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut tx = self.begin().await?;
        let held: Vec<(i64,)> = sqlx::query_as(
            "UPDATE outbox SET claimed_until = $1 \
             WHERE claim_token = $2 AND state = 'sending' RETURNING id",
        )
        .bind(until)
        .bind(token)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(held.into_iter().map(|(id,)| id).collect())
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "record_deliveries")
    )]
    async fn record_deliveries(
        &self,
        token: &str,
        outcomes: &[(i64, String, Delivery)],
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let sent: Vec<i64> = outcomes
            .iter()
            .filter(|(_, _, d)| *d == Delivery::Sent)
            .map(|(id, _, _)| *id)
            .collect();
        let mut recorded = Self::mark_sent(&mut tx, token, &sent, now).await?;
        for (id, recipient, delivery) in outcomes.iter().filter(|(_, _, d)| *d != Delivery::Sent) {
            recorded += u64::from(
                Self::record_delivery(&mut tx, token, *id, recipient, delivery, now).await?,
            );
        }
        tx.commit().await?;
        Ok(recorded)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "release_claims")
    )]
    async fn release_claims(&self, token: &str, ids: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        Self::release_claims_in(&mut tx, token, ids).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", level = "debug", skip_all, fields(call = "retry"))]
    async fn retry(&self, scope: RetryScope) -> Result<Retried, StoreError> {
        let mut tx = self.begin().await?;
        let retried = Self::retry_in(&mut tx, self.now(), scope).await?;
        tx.commit().await?;
        Ok(retried)
    }

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "relay_refusal")
    )]
    async fn relay_refusal(&self) -> Result<Option<RelayRefusal>, StoreError> {
        let pool = &self.read;
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

    #[tracing::instrument(
        name = "store",
        level = "debug",
        skip_all,
        fields(call = "set_relay_refusal")
    )]
    async fn set_relay_refusal(&self, refusal: Option<&RelayRefusal>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        Self::set_relay_refusal_in(&mut tx, refusal).await?;
        tx.commit().await?;
        Ok(())
    }
}
