//! Inbound mail: messages stored as they arrived, what intake made of them
//! (proposals, follow-ups, bounces), and the holding pen.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::outbox::ReplyKeyRow;
use super::registry::CsoRow;
use super::*;
use crate::domain::{ReceiptNo, ReplyKey};
use crate::store::records::*;
use crate::store::{InboundStore, StoreError};

// ----- inbound mail and proposals ----------------------------------------------

/// Messages stored per INSERT: 7 parameters each, well under both
/// backends' limits.
const INBOUND_ROWS_PER_INSERT: usize = 256;

/// Proposals per INSERT: 15 parameters each.
const PROPOSAL_ROWS_PER_INSERT: usize = 256;

/// Messages whose state one UPDATE sets: 4 parameters each.
const OUTCOME_ROWS_PER_UPDATE: usize = 512;

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
                reason: self.reason,
            },
            self.raw,
        ))
    }
}

const INBOUND_COLUMNS: &str =
    "id, received_at, source, from_address, subject, state, classification, reason";

#[derive(FromRow)]
pub struct ProposalRefRow {
    pub(super) id: i64,
    pub(super) consultation_id: i64,
    pub(super) cso_id: Option<i64>,
    pub(super) from_address: String,
}

/// Writes inside the caller's transaction, and reads several methods share.
impl<D: Dialect> SqlStore<D>
where
    (String, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String, i64): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
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
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
{
    /// What intake needs to know about a batch of messages, in four queries
    /// whatever the batch's size: the reply keys they carry and the CSOs those
    /// were issued to, and for the loop guard what their senders were sent
    /// (acknowledgements this hour) and sent (texts this week).
    pub(super) async fn intake_lookups_in(
        pool: &Pool<D::DB>,
        emails_sql: &str,
        keys: &[ReplyKey],
        senders: &[String],
        acknowledged_since: DateTime<Utc>,
        texts_since: DateTime<Utc>,
    ) -> Result<IntakeLookups, StoreError> {
        let mut known = IntakeLookups::default();
        let records = Self::reply_keys(pool, keys).await?;
        let mut ids: Vec<i64> = records.iter().map(|r| r.cso_id).collect();
        ids.sort_unstable();
        ids.dedup();
        for cso in Self::csos_where(pool, emails_sql, CsoFilter::Ids(&ids)).await? {
            known.csos.insert(cso.id, cso);
        }
        for r in records {
            known.reply_keys.insert(r.key.clone(), r);
        }
        for senders in senders.chunks(LIST_CHUNK) {
            let list = numbered(2, senders.len());
            let sql = format!(
                "SELECT recipient, COUNT(*) FROM outbox WHERE created_at >= $1 AND kind IN ('receipt', 'follow_up') \
                 AND recipient IN ({list}) GROUP BY recipient"
            );
            let mut q = sqlx::query_as::<D::DB, (String, i64)>(&sql).bind(acknowledged_since);
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
            let mut q = sqlx::query_as::<D::DB, (String, String)>(&sql).bind(texts_since);
            for a in senders {
                q = q.bind(a.as_str());
            }
            known.texts.extend(q.fetch_all(pool).await?);
        }
        Ok(known)
    }

    /// Stores messages byte for byte, in the caller's transaction, a few
    /// hundred per statement. A message stored before (same dedupe key) is not
    /// stored again; its id and state are returned instead.
    pub(super) async fn store_inbound_many_in(
        conn: &mut <D::DB as Database>::Connection,
        messages: &[NewInbound<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredInbound>, StoreError> {
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
                placeholders::<D>(unique.len(), 7, |p| format!(
                    "({}, 'received')",
                    p.join(", ")
                ))
            );
            let mut insert = sqlx::query_as::<D::DB, (i64, String)>(&sql);
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
                        state: InboundState::Received,
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
            let mut select = sqlx::query_as::<D::DB, (i64, String, String)>(&sql);
            for k in before {
                select = select.bind(k);
            }
            for (id, key, state) in select.fetch_all(&mut *conn).await? {
                let state = InboundState::parse(&state)
                    .ok_or_else(|| corrupt(format!("message {id} is in state '{state}'")))?;
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
    pub(super) async fn apply_intake_in(
        conn: &mut <D::DB as Database>::Connection,
        writes: &[IntakeWrite],
        now: DateTime<Utc>,
    ) -> Result<Vec<Applied>, StoreError> {
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
                } => Self::record_bounce_in(&mut *conn, address, *hard, reason, now).await?,
                IntakeWrite::Proposal { proposal, receipt } => {
                    proposals.push((i, proposal, receipt.as_ref()))
                }
                // Rare next to proposals: one at a time.
                IntakeWrite::FollowUp {
                    follow_up,
                    confirmations,
                } => {
                    let new = Self::record_follow_up_in(&mut *conn, follow_up, confirmations, now)
                        .await?;
                    applied[i] = Applied::FollowUp { new };
                }
            }
        }
        for chunk in proposals.chunks(PROPOSAL_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO proposals (receipt_no, consultation_id, cso_id, inbound_message_id, from_address, \
                 other_sender, late, draft_number, subject, reply_text, quoted_text, signature, attachments, \
                 authentication, sender_flag, created_at) \
                 VALUES {} ON CONFLICT (inbound_message_id) DO NOTHING RETURNING inbound_message_id",
                placeholders::<D>(chunk.len(), 16, |p| format!("({})", p.join(", ")))
            );
            let mut insert = sqlx::query_as::<D::DB, (i64,)>(&sql);
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
                    .bind(p.sender_flag.as_deref())
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
                    let (existing,): (String,) = sqlx::query_as::<D::DB, (String,)>(
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
        Self::enqueue_in(&mut *conn, &acknowledgements, now).await?;
        for chunk in outcomes.chunks(OUTCOME_ROWS_PER_UPDATE) {
            let sql = format!(
                "UPDATE inbound_messages SET state = v.column2, classification = v.column3, reason = v.column4, \
                 processed_at = {} FROM (VALUES {}) AS v WHERE inbound_messages.id = v.column1",
                D::param(1),
                (0..chunk.len())
                    .map(|r| {
                        let b = 2 + r * 4;
                        format!(
                            "({}, {}, {}, {})",
                            D::param(b),
                            D::param(b + 1),
                            D::param(b + 2),
                            D::param(b + 3)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut update = sqlx::query::<D::DB>(&sql).bind(now);
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

    pub(super) async fn set_inbound_outcome_in(
        conn: &mut <D::DB as Database>::Connection,
        id: i64,
        state: InboundState,
        classification: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query::<D::DB>(
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

    pub(super) async fn record_follow_up_in(
        conn: &mut <D::DB as Database>::Connection,
        f: &NewFollowUp,
        confirmations: &[NewMessage],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted: Option<(i64,)> = sqlx::query_as::<D::DB, (i64,)>(
            "INSERT INTO follow_ups (proposal_id, inbound_message_id, from_address, reply_text, quoted_text, \
             signature, attachments, sender_flag, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (inbound_message_id) DO NOTHING RETURNING id",
        )
        .bind(f.proposal_id)
        .bind(f.inbound_message_id)
        .bind(f.from_address.as_str())
        .bind(f.reply_text.as_str())
        .bind(f.quoted_text.as_str())
        .bind(f.signature.as_str())
        .bind(f.attachments_json.as_str())
        .bind(f.sender_flag.as_deref())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_none() {
            return Ok(false);
        }
        if !confirmations.is_empty() {
            Self::enqueue_in(&mut *conn, confirmations, now).await?;
        }
        Self::set_inbound_outcome_in(
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

    pub(super) async fn record_bounce_in(
        conn: &mut <D::DB as Database>::Connection,
        address: &str,
        hard: bool,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if hard {
            sqlx::query::<D::DB>(
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
            sqlx::query::<D::DB>(
                "INSERT INTO address_status (address, soft_bounces) VALUES ($1, 1) \
                 ON CONFLICT (address) DO UPDATE SET soft_bounces = address_status.soft_bounces + 1",
            )
            .bind(address)
            .execute(conn)
            .await?;
        }
        Ok(())
    }
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
        let stored = Self::store_inbound_many_in(&mut tx, messages, Utc::now()).await?;
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
        let applied = Self::apply_intake_in(&mut tx, writes, Utc::now()).await?;
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
                 reason = $1, processed_at = $2 WHERE id = $3",
            )
            .bind(format!(
                "could not be processed after {attempts} attempts: {error}"
            ))
            .bind(Utc::now())
            .bind(id)
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
