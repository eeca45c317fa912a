//! Review, dispositions and their audit log, publication, and sign-in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::*;
use crate::store::records::*;
use crate::store::{ReviewStore, StoreError};

/// The columns a [`ReviewRow`] reads, from `proposals p`, `csos c` and
/// `dispositions d`.
const REVIEW_COLUMNS: &str = "p.id, p.inbound_message_id, p.receipt_no, p.consultation_id, p.cso_id, c.name AS cso_name, \
     c.language AS cso_language, p.sender_name, p.from_address, p.other_sender, p.late, \
     p.draft_number, p.subject, p.reply_text, p.quoted_text, p.signature, p.attachments, \
     p.sender_flag, p.no_publish, p.disowned_at, p.created_at, \
     (SELECT COUNT(*) FROM follow_ups f WHERE f.proposal_id = p.id) AS follow_ups, \
     d.disposition, d.commitment, d.response_sq, d.response_en, d.decided_by, d.decided_at, \
     d.group_key";

const REVIEW_FROM: &str = "FROM proposals p LEFT JOIN csos c ON c.id = p.cso_id \
     LEFT JOIN dispositions d ON d.proposal_id = p.id";

#[derive(FromRow)]
pub struct ReviewRow {
    id: i64,
    inbound_message_id: i64,
    receipt_no: String,
    consultation_id: i64,
    cso_id: Option<i64>,
    cso_name: Option<String>,
    cso_language: Option<String>,
    sender_name: Option<String>,
    from_address: String,
    other_sender: bool,
    late: bool,
    draft_number: Option<i64>,
    subject: String,
    reply_text: String,
    quoted_text: String,
    signature: String,
    attachments: String,
    sender_flag: Option<String>,
    no_publish: bool,
    disowned_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    follow_ups: i64,
    disposition: Option<String>,
    commitment: Option<String>,
    response_sq: Option<String>,
    response_en: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    group_key: Option<String>,
}

impl From<ReviewRow> for ReviewProposal {
    fn from(r: ReviewRow) -> Self {
        let disposition = match (r.disposition, r.decided_at) {
            (Some(disposition), Some(decided_at)) => Some(DispositionRecord {
                disposition,
                commitment: r.commitment,
                response_sq: r.response_sq.unwrap_or_default(),
                response_en: r.response_en,
                decided_by: r.decided_by.unwrap_or_default(),
                decided_at,
                group_key: r.group_key,
            }),
            _ => None,
        };
        Self {
            id: r.id,
            inbound_message_id: r.inbound_message_id,
            receipt_no: r.receipt_no,
            consultation_id: r.consultation_id,
            cso_id: r.cso_id,
            cso_name: r.cso_name,
            cso_language: r.cso_language,
            sender_name: r.sender_name,
            from_address: r.from_address,
            other_sender: r.other_sender,
            late: r.late,
            draft_number: r.draft_number,
            subject: r.subject,
            reply_text: r.reply_text,
            quoted_text: r.quoted_text,
            signature: r.signature,
            attachments_json: r.attachments,
            sender_flag: r.sender_flag,
            no_publish: r.no_publish,
            disowned_at: r.disowned_at,
            created_at: r.created_at,
            follow_ups: r.follow_ups,
            disposition,
        }
    }
}

#[derive(FromRow)]
pub struct FollowUpRow {
    id: i64,
    inbound_message_id: i64,
    from_address: String,
    reply_text: String,
    quoted_text: String,
    signature: String,
    attachments: String,
    sender_flag: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(FromRow)]
pub struct SentRow {
    kind: String,
    recipient: String,
    state: String,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
pub struct LogRow {
    id: i64,
    receipt_no: String,
    consultation_id: i64,
    actor: String,
    at: DateTime<Utc>,
    before_json: Option<String>,
    after_json: String,
    correction: bool,
}

impl LogRow {
    fn entry(self) -> Result<LogEntry, StoreError> {
        let read = |json: &str| {
            serde_json::from_str::<DispositionRecord>(json)
                .map_err(|e| corrupt(format!("audit log entry {}: {e}", self.id)))
        };
        Ok(LogEntry {
            id: self.id,
            before: self.before_json.as_deref().map(read).transpose()?,
            after: read(&self.after_json)?,
            receipt_no: self.receipt_no,
            consultation_id: self.consultation_id,
            actor: self.actor,
            at: self.at,
            correction: self.correction,
        })
    }
}

#[derive(FromRow)]
pub struct PublicationRow {
    consultation_id: i64,
    published_at: DateTime<Utc>,
    published_by: String,
}

const LOG_SELECT: &str = "SELECT l.id, p.receipt_no, p.consultation_id, l.actor, l.at, \
     l.before_json, l.after_json, l.correction FROM disposition_log l \
     JOIN proposals p ON p.id = l.proposal_id";

fn json(record: &DispositionRecord) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// Locks the row of the consultation `proposal_id` belongs to, for the
/// rest of the transaction (an UPDATE that changes nothing takes the row
/// lock on PostgreSQL; on SQLite the transaction holds the write lock).
async fn lock_consultation_of<DB>(
    conn: &mut <DB as Database>::Connection,
    proposal_id: i64,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    sqlx::query::<DB>(
        "UPDATE consultations SET updated_at = updated_at \
         WHERE id = (SELECT consultation_id FROM proposals WHERE id = $1)",
    )
    .bind(proposal_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl<D: Dialect> ReviewStore for SqlStore<D>
where
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (bool,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ReviewRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    FollowUpRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    SentRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    LogRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    PublicationRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
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
    async fn review_proposals(
        &self,
        consultation_id: Option<i64>,
    ) -> Result<Vec<ReviewProposal>, StoreError> {
        let rows = match consultation_id {
            Some(id) => {
                sqlx::query_as::<D::DB, ReviewRow>(&format!(
                    "SELECT {REVIEW_COLUMNS} {REVIEW_FROM} WHERE p.consultation_id = $1 \
                     ORDER BY p.created_at, p.id"
                ))
                .bind(id)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                fetch_all(
                    &self.read,
                    &format!("SELECT {REVIEW_COLUMNS} {REVIEW_FROM} ORDER BY p.created_at, p.id"),
                )
                .await?
            }
        };
        Ok(rows.into_iter().map(ReviewProposal::from).collect())
    }

    async fn review_proposal(
        &self,
        receipt_no: &str,
    ) -> Result<Option<ReviewProposal>, StoreError> {
        Ok(sqlx::query_as::<D::DB, ReviewRow>(&format!(
            "SELECT {REVIEW_COLUMNS} {REVIEW_FROM} WHERE p.receipt_no = $1"
        ))
        .bind(receipt_no)
        .fetch_optional(&self.read)
        .await?
        .map(ReviewProposal::from))
    }

    async fn follow_ups_of(&self, proposal_id: i64) -> Result<Vec<FollowUpRecord>, StoreError> {
        let rows = sqlx::query_as::<D::DB, FollowUpRow>(
            "SELECT id, inbound_message_id, from_address, reply_text, quoted_text, signature, attachments, sender_flag, \
             created_at FROM follow_ups WHERE proposal_id = $1 ORDER BY created_at, id",
        )
        .bind(proposal_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FollowUpRecord {
                id: r.id,
                inbound_message_id: r.inbound_message_id,
                from_address: r.from_address,
                reply_text: r.reply_text,
                quoted_text: r.quoted_text,
                signature: r.signature,
                attachments_json: r.attachments,
                sender_flag: r.sender_flag,
                created_at: r.created_at,
            })
            .collect())
    }

    async fn sent_about(
        &self,
        receipt_no: &str,
        follow_up_messages: &[i64],
    ) -> Result<Vec<SentRecord>, StoreError> {
        // The keys are those of EmailFor::Receipt and EmailFor::FollowUp:
        // "receipt:NO", "receipt:NO:ADDRESS", "follow_up:ID", "follow_up:ID:ADDRESS".
        let mut keys = vec![format!("receipt:{receipt_no}")];
        keys.extend(
            follow_up_messages
                .iter()
                .map(|id| format!("follow_up:{id}")),
        );
        let mut out = Vec::new();
        for key in keys {
            let rows = sqlx::query_as::<D::DB, SentRow>(
                "SELECT kind, recipient, state, created_at, sent_at FROM outbox \
                 WHERE idempotency_key = $1 OR idempotency_key LIKE $2 ORDER BY created_at, id",
            )
            .bind(key.as_str())
            .bind(format!("{key}:%"))
            .fetch_all(&self.read)
            .await?;
            out.extend(rows.into_iter().map(|r| SentRecord {
                kind: r.kind,
                recipient: r.recipient,
                state: r.state,
                created_at: r.created_at,
                sent_at: r.sent_at,
            }));
        }
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    async fn decide(
        &self,
        writes: &[DispositionWrite],
        actor: &str,
        may_correct: bool,
    ) -> Result<Decided, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut decided = Decided::default();
        for w in writes {
            // The consultation's row is taken first: a publication and a
            // decision on it wait for each other (PostgreSQL reads
            // committed; SQLite's BEGIN IMMEDIATE serialises already), so a
            // decision sees whether the results were published meanwhile.
            lock_consultation_of::<D::DB>(&mut tx, w.proposal_id).await?;
            let published: Option<(bool,)> = sqlx::query_as::<D::DB, (bool,)>(
                "SELECT EXISTS (SELECT 1 FROM publications u WHERE u.consultation_id = p.consultation_id) \
                 FROM proposals p WHERE p.id = $1",
            )
            .bind(w.proposal_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((published,)) = published else {
                return Err(StoreError::NotFound(format!("proposal {}", w.proposal_id)));
            };
            let before = sqlx::query_as::<D::DB, ReviewRow>(&format!(
                "SELECT {REVIEW_COLUMNS} {REVIEW_FROM} WHERE p.id = $1"
            ))
            .bind(w.proposal_id)
            .fetch_one(&mut *tx)
            .await
            .map(ReviewProposal::from)?
            .disposition;
            // A proposal that arrived after publication (a late reply) may
            // still get its first answer from its LFP; a published answer
            // is changed only by the POC.
            if published && before.is_some() && !may_correct {
                return Err(StoreError::Conflict(
                    "the results of this consultation are published: only the POC can correct them"
                        .into(),
                ));
            }
            let same = before.as_ref().is_some_and(|b| {
                b.disposition == w.record.disposition
                    && b.commitment == w.record.commitment
                    && b.response_sq == w.record.response_sq
                    && b.response_en == w.record.response_en
            });
            if same {
                continue;
            }
            let r = &w.record;
            sqlx::query::<D::DB>(
                "INSERT INTO dispositions (proposal_id, disposition, commitment, response_sq, \
                 response_en, decided_by, decided_at, group_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (proposal_id) DO UPDATE SET disposition = excluded.disposition, \
                 commitment = excluded.commitment, response_sq = excluded.response_sq, \
                 response_en = excluded.response_en, decided_by = excluded.decided_by, \
                 decided_at = excluded.decided_at, group_key = excluded.group_key",
            )
            .bind(w.proposal_id)
            .bind(r.disposition.as_str())
            .bind(r.commitment.as_deref())
            .bind(r.response_sq.as_str())
            .bind(r.response_en.as_deref())
            .bind(r.decided_by.as_str())
            .bind(r.decided_at)
            .bind(r.group_key.as_deref())
            .execute(&mut *tx)
            .await?;
            let (log_id,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
                "INSERT INTO disposition_log (proposal_id, actor, at, before_json, after_json, correction) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(w.proposal_id)
            .bind(actor)
            .bind(now)
            .bind(before.as_ref().map(json).as_deref())
            .bind(json(r))
            .bind(published)
            .fetch_one(&mut *tx)
            .await?;
            decided.changed.push(w.proposal_id);
            if published {
                decided.corrections.push(log_id);
            }
        }
        tx.commit().await?;
        Ok(decided)
    }

    async fn disposition_log(
        &self,
        consultation_id: Option<i64>,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let rows = match consultation_id {
            Some(id) => {
                sqlx::query_as::<D::DB, LogRow>(&format!(
                    "{LOG_SELECT} WHERE p.consultation_id = $1 ORDER BY l.id DESC"
                ))
                .bind(id)
                .fetch_all(&self.read)
                .await?
            }
            None => fetch_all(&self.read, &format!("{LOG_SELECT} ORDER BY l.id DESC")).await?,
        };
        rows.into_iter().map(LogRow::entry).collect()
    }

    async fn untold_corrections(&self) -> Result<Vec<LogEntry>, StoreError> {
        let rows: Vec<LogRow> = fetch_all(
            &self.read,
            &format!("{LOG_SELECT} WHERE l.correction AND l.told_at IS NULL ORDER BY l.id"),
        )
        .await?;
        rows.into_iter().map(LogRow::entry).collect()
    }

    async fn tell_correction(&self, log_id: i64, notices: &[NewMessage]) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        Self::enqueue_in(&mut tx, notices, now).await?;
        sqlx::query::<D::DB>("UPDATE disposition_log SET told_at = $1 WHERE id = $2")
            .bind(now)
            .bind(log_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn publications(&self) -> Result<Vec<Publication>, StoreError> {
        let rows: Vec<PublicationRow> = fetch_all(
            &self.read,
            "SELECT consultation_id, published_at, published_by FROM publications \
             ORDER BY published_at",
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Publication {
                consultation_id: r.consultation_id,
                published_at: r.published_at,
                published_by: r.published_by,
            })
            .collect())
    }

    async fn publish(
        &self,
        consultation_id: i64,
        actor: &str,
        notices: &[NewMessage],
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        sqlx::query::<D::DB>("UPDATE consultations SET updated_at = updated_at WHERE id = $1")
            .bind(consultation_id)
            .execute(&mut *tx)
            .await?;
        // Checked again under the lock: a proposal that arrived since the
        // caller looked has no decision, and its sender no notice.
        let (waiting,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT COUNT(*) FROM proposals p LEFT JOIN dispositions d ON d.proposal_id = p.id \
             WHERE p.consultation_id = $1 AND d.proposal_id IS NULL",
        )
        .bind(consultation_id)
        .fetch_one(&mut *tx)
        .await?;
        if waiting > 0 {
            return Err(StoreError::Conflict(format!(
                "{waiting} proposal(s) arrived without a decision while publishing; look again and publish"
            )));
        }
        let done = sqlx::query::<D::DB>(
            "INSERT INTO publications (consultation_id, published_at, published_by) \
             VALUES ($1, $2, $3) ON CONFLICT (consultation_id) DO NOTHING",
        )
        .bind(consultation_id)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::enqueue_in(&mut tx, notices, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn disown(&self, receipt_no: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query::<D::DB>(
            "UPDATE proposals SET disowned_at = $1 WHERE receipt_no = $2 AND disowned_at IS NULL",
        )
        .bind(self.now())
        .bind(receipt_no)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(D::rows_affected(&done) > 0)
    }

    async fn insert_sign_in_link(
        &self,
        token_hash: &str,
        address: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query::<D::DB>(
            "INSERT INTO sign_in_links (token_hash, address, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(address)
        .bind(self.now())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sign_in_links_since(
        &self,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT COUNT(*) FROM sign_in_links WHERE address = $1 AND created_at >= $2",
        )
        .bind(address)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn use_sign_in_link(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        // One statement marks it used and says whose it was, so two clicks
        // racing cannot both sign in.
        let found: Option<(String,)> = sqlx::query_as::<D::DB, (String,)>(
            "UPDATE sign_in_links SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING address",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found.map(|(a,)| a))
    }

    async fn insert_session(
        &self,
        id_hash: &str,
        address: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query::<D::DB>(
            "INSERT INTO sessions (id_hash, address, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(address)
        .bind(self.now())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<String>, StoreError> {
        let found: Option<(String,)> = sqlx::query_as::<D::DB, (String,)>(
            "SELECT address FROM sessions \
             WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(self.now())
        .fetch_optional(&self.read)
        .await?;
        Ok(found.map(|(a,)| a))
    }

    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query::<D::DB>("UPDATE sessions SET ended_at = $1 WHERE id_hash = $2")
            .bind(self.now())
            .bind(id_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
