//! Intake's batch work in the store: what a batch looks up once (reply keys,
//! their CSOs, the loop guard's counts), storing a batch of messages, and
//! applying a batch's decisions (proposals, follow-ups, bounces, states)
//! inside the caller's transaction. `inbound.rs` has the trait methods that
//! call these.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::inbound::*;
use super::queue::ReplyKeyRow;
use super::registry::CsoRow;
use super::*;
use crate::domain::ReplyKey;
use crate::store::StoreError;
use crate::store::records::*;

/// Messages stored per INSERT: 7 parameters each, well under both
/// backends' limits.
const INBOUND_ROWS_PER_INSERT: usize = 256;

/// Proposals per INSERT: 16 parameters each.
const PROPOSAL_ROWS_PER_INSERT: usize = 256;

/// Messages whose state one UPDATE sets: 5 parameters each.
const OUTCOME_ROWS_PER_UPDATE: usize = 512;

/// The outbox kinds the loop guard counts, quoted for SQL: every answer
/// to a message that came in.
fn acknowledgement_kinds() -> String {
    crate::domain::EmailKind::ALL
        .into_iter()
        .filter(|k| k.is_acknowledgement())
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ")
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
                "SELECT recipient, COUNT(*) FROM outbox WHERE created_at >= $1 AND kind IN ({}) \
                 AND recipient IN ({list}) GROUP BY recipient",
                acknowledgement_kinds()
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
        // (message, state, classification, reason, its Albanian if not the same)
        let mut outcomes: Vec<(i64, &str, &str, String, Option<String>)> = Vec::new();
        let mut acknowledgements: Vec<NewMessage> = Vec::new();
        let mut proposals: Vec<(usize, &NewProposal, &[NewMessage])> = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            match w {
                IntakeWrite::Outcome {
                    id,
                    state,
                    classification,
                    reason,
                } => outcomes.push((
                    *id,
                    state.as_str(),
                    classification,
                    reason.en.clone(),
                    (!reason.is_one()).then(|| reason.sq.clone()),
                )),
                IntakeWrite::Bounce {
                    address,
                    hard,
                    reason,
                } => Self::record_bounce_in(&mut *conn, address, *hard, reason, now).await?,
                IntakeWrite::Notice(message) => acknowledgements.push(message.clone()),
                IntakeWrite::Proposal { proposal, receipts } => {
                    proposals.push((i, proposal, receipts.as_slice()))
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
                 authentication, sender_flag, no_publish, sender_name, created_at) \
                 VALUES {} ON CONFLICT (inbound_message_id) DO NOTHING RETURNING inbound_message_id",
                placeholders::<D>(chunk.len(), 18, |p| format!("({})", p.join(", ")))
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
                    .bind(p.no_publish)
                    .bind(p.sender_name.as_deref())
                    .bind(now);
            }
            let inserted: HashSet<i64> = insert
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(id,)| id)
                .collect();
            for (i, p, receipts) in chunk {
                if inserted.contains(&p.inbound_message_id) {
                    acknowledgements.extend(receipts.iter().cloned());
                    outcomes.push((
                        p.inbound_message_id,
                        InboundState::Processed.as_str(),
                        "proposal",
                        format!("proposal {}", p.receipt_no),
                        None,
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
                 reason_sq = v.column5, processed_at = {} FROM (VALUES {}) AS v WHERE inbound_messages.id = v.column1",
                D::param(1),
                (0..chunk.len())
                    .map(|r| {
                        let b = 2 + r * 5;
                        format!(
                            "({}, {}, {}, {}, {})",
                            D::param(b),
                            D::param(b + 1),
                            D::param(b + 2),
                            D::param(b + 3),
                            D::param(b + 4)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut update = sqlx::query::<D::DB>(&sql).bind(now);
            for (id, state, classification, reason, reason_sq) in chunk {
                update = update
                    .bind(*id)
                    .bind(*state)
                    .bind(*classification)
                    .bind(reason.as_str())
                    .bind(reason_sq.as_deref());
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
