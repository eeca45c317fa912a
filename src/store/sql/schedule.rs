//! The scheduled jobs' records: invitees, digests and their watermarks,
//! closing a consultation with its notices, and what the POC's summary
//! reports.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::consultations::{ConsultationRow, ExtensionRow};
use super::*;
use crate::consultation::{ConsultationSpec, ConsultationState, DeadlineExtension};
use crate::store::records::*;
use crate::store::{ScheduleStore, StoreError};

#[derive(FromRow)]
pub struct InviteeRow {
    cso_id: i64,
    recipient: String,
}

#[derive(FromRow)]
pub struct EntryRow {
    receipt_no: String,
    consultation_id: i64,
    cso_name: Option<String>,
    from_address: String,
    at: DateTime<Utc>,
    text: String,
    follow_up: bool,
    late: bool,
}

impl From<EntryRow> for DigestEntry {
    fn from(r: EntryRow) -> Self {
        Self {
            receipt_no: r.receipt_no,
            consultation_id: r.consultation_id,
            cso_name: r.cso_name,
            from_address: r.from_address,
            at: r.at,
            text: r.text,
            follow_up: r.follow_up,
            late: r.late,
        }
    }
}

#[derive(FromRow)]
pub struct DeferredRow {
    id: i64,
    kind: String,
    recipient: String,
    attempts: i64,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
}

/// Characters of each text a digest compares to find campaigns.
const CAMPAIGN_TEXT_CHARS: usize = 1_500;

/// Kinds of mail a closed consultation no longer sends: everything queued
/// in bulk about it. Receipts and confirmations answer what a CSO sent and
/// still go.
const CANCELLED_AT_CLOSE: &str =
    "'invitation', 'deadline_extended', 'deadline_reminder', 'meeting_changed'";

/// Proposals and follow-ups in a digest's window, as one list: the
/// follow-up carries its proposal's receipt number. `ids` are the
/// consultations' placeholders; the windows are the conditions on each
/// side's `created_at`.
fn entries_sql(ids: &str, proposals_window: &str, follow_ups_window: &str) -> String {
    // Each branch takes its own first `$2` in index order before the
    // union, so a week of 5,000 proposals is not read and sorted whole to
    // list 25 of them.
    format!(
        "SELECT * FROM ( \
           SELECT * FROM ( \
             SELECT p.receipt_no, p.consultation_id, c.name AS cso_name, p.from_address, \
                    p.created_at AS at, substr(p.reply_text, 1, {EXCERPT_SOURCE_CHARS}) AS text, \
                    FALSE AS follow_up, p.late \
             FROM proposals p LEFT JOIN csos c ON c.id = p.cso_id \
             WHERE p.consultation_id IN ({ids}) AND {proposals_window} \
             ORDER BY p.consultation_id, p.created_at LIMIT $2 \
           ) np \
           UNION ALL \
           SELECT * FROM ( \
             SELECT p.receipt_no, p.consultation_id, c.name AS cso_name, f.from_address, \
                    f.created_at AS at, substr(f.reply_text, 1, {EXCERPT_SOURCE_CHARS}) AS text, \
                    TRUE AS follow_up, p.late \
             FROM follow_ups f JOIN proposals p ON p.id = f.proposal_id \
             LEFT JOIN csos c ON c.id = p.cso_id \
             WHERE p.consultation_id IN ({ids}) AND {follow_ups_window} \
             ORDER BY p.consultation_id, f.created_at LIMIT $2 \
           ) nf \
         ) e ORDER BY consultation_id, at, receipt_no LIMIT $2"
    )
}

#[async_trait]
impl<D: Dialect> ScheduleStore for SqlStore<D>
where
    (String,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (DateTime<Utc>,): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, String): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    (i64, i64): for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ConsultationRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    ExtensionRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    InviteeRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    EntryRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
    DeferredRow: for<'r> FromRow<'r, <D::DB as Database>::Row>,
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
    async fn invitees(
        &self,
        consultation_id: i64,
        sent_only: bool,
    ) -> Result<Vec<Invitee>, StoreError> {
        let states = if sent_only {
            "('sent')"
        } else {
            "('queued', 'sending', 'sent', 'failed')"
        };
        let rows: Vec<InviteeRow> = sqlx::query_as::<D::DB, InviteeRow>(&format!(
            "SELECT DISTINCT cso_id, recipient FROM outbox \
             WHERE consultation_id = $1 AND kind = 'invitation' AND state IN {states} \
             AND cso_id IS NOT NULL ORDER BY cso_id, recipient"
        ))
        .bind(consultation_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Invitee {
                cso_id: r.cso_id,
                address: r.recipient,
            })
            .collect())
    }

    async fn receipts_by_cso(
        &self,
        consultation_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as::<D::DB, (i64, String)>(
            "SELECT cso_id, receipt_no FROM proposals \
             WHERE consultation_id = $1 AND cso_id IS NOT NULL ORDER BY created_at, id",
        )
        .bind(consultation_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn close_consultation(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        change: Option<&DeadlineExtension>,
        why: &str,
        notices: &[NewMessage],
    ) -> Result<(u64, u64), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        Self::update_consultation_in(&mut tx, id, spec, Some(ConsultationState::Closed), now)
            .await?;
        if let Some(change) = change {
            Self::insert_extension(&mut tx, change).await?;
        }
        let cancelled = sqlx::query::<D::DB>(&format!(
            "UPDATE outbox SET state = 'cancelled', last_error = $1 \
             WHERE consultation_id = $2 AND state = 'queued' AND kind IN ({CANCELLED_AT_CLOSE})"
        ))
        .bind(why)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let queued = Self::enqueue_in(&mut tx, notices, now).await?;
        tx.commit().await?;
        Ok((D::rows_affected(&cancelled), queued))
    }

    async fn update_with_notices(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        notices: &[NewMessage],
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        Self::update_consultation_in(&mut tx, id, spec, None, now).await?;
        let queued = Self::enqueue_in(&mut tx, notices, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn digest_watermark(&self, lfp: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_as::<D::DB, (DateTime<Utc>,)>(
            "SELECT done_through FROM digest_watermarks WHERE lfp = $1",
        )
        .bind(lfp)
        .fetch_optional(&self.read)
        .await?
        .map(|(t,)| t))
    }

    async fn queue_digests(&self, digests: &[DigestWrite<'_>]) -> Result<Vec<bool>, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut done = Vec::with_capacity(digests.len());
        for d in digests {
            // Compare and set: of two runs from the same watermark, one
            // moves it and queues; the other changes nothing.
            let moved = match d.previous {
                Some(previous) => sqlx::query::<D::DB>(
                    "UPDATE digest_watermarks SET done_through = $1 \
                     WHERE lfp = $2 AND done_through = $3",
                )
                .bind(d.through)
                .bind(d.lfp)
                .bind(previous)
                .execute(&mut *tx)
                .await
                .map(|r| D::rows_affected(&r))?,
                None => sqlx::query::<D::DB>(
                    "INSERT INTO digest_watermarks (lfp, done_through) VALUES ($1, $2) \
                     ON CONFLICT (lfp) DO NOTHING",
                )
                .bind(d.lfp)
                .bind(d.through)
                .execute(&mut *tx)
                .await
                .map(|r| D::rows_affected(&r))?,
            } > 0;
            if moved {
                Self::enqueue_in(&mut tx, d.messages, now).await?;
            }
            done.push(moved);
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn digest_data(&self, q: &DigestQuery<'_>) -> Result<DigestData, StoreError> {
        if q.consultation_ids.is_empty() {
            return Ok(DigestData::default());
        }
        let cap = i64::try_from(q.cap).unwrap_or(i64::MAX);
        // $1 the window's end, $2 the cap, $3 its start (when there is
        // one), then the consultations.
        let first_id = if q.since.is_some() { 4 } else { 3 };
        let ids = numbered(first_id, q.consultation_ids.len());
        let window = |alias: &str| match q.since {
            Some(_) => format!("{alias}.created_at > $3 AND {alias}.created_at <= $1"),
            None => format!("{alias}.created_at <= $1"),
        };
        let (proposals_window, follow_ups_window) = (window("p"), window("f"));
        macro_rules! bound {
            ($query:expr) => {{
                let mut query = $query.bind(q.through).bind(cap);
                if let Some(since) = q.since {
                    query = query.bind(since);
                }
                for id in q.consultation_ids {
                    query = query.bind(*id);
                }
                query
            }};
        }
        let sql = entries_sql(&ids, &proposals_window, &follow_ups_window);
        let new: Vec<EntryRow> = bound!(sqlx::query_as::<D::DB, EntryRow>(&sql))
            .fetch_all(&self.read)
            .await?;
        // New proposals, and how many of them still wait (so the older
        // ones waiting are counted without reading them all again). `$2`
        // is named so every query takes the same parameters.
        let sql = format!(
            "SELECT COUNT(*), COUNT(*) - COUNT(d.proposal_id) FROM proposals p \
             LEFT JOIN dispositions d ON d.proposal_id = p.id \
             WHERE p.consultation_id IN ({ids}) AND {proposals_window} AND $2 >= 0"
        );
        let (new_proposals, new_waiting): (i64, i64) =
            bound!(sqlx::query_as::<D::DB, (i64, i64)>(&sql))
                .fetch_one(&self.read)
                .await?;
        let sql = format!(
            "SELECT COUNT(*) FROM follow_ups f JOIN proposals p ON p.id = f.proposal_id \
             WHERE p.consultation_id IN ({ids}) AND {follow_ups_window} AND $2 >= 0"
        );
        let (new_follow_ups,): (i64,) = bound!(sqlx::query_as::<D::DB, (i64,)>(&sql))
            .fetch_one(&self.read)
            .await?;

        // Waiting: every proposal without a disposition up to the window's
        // end, whenever it came (the total); listed are those from before
        // the window, since the window's own are listed as new already.
        let ids_from_3 = numbered(3, q.consultation_ids.len());
        let waiting_where = format!(
            "WHERE p.consultation_id IN ({ids_from_3}) AND p.created_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM dispositions d WHERE d.proposal_id = p.id)"
        );
        macro_rules! waiting_bound {
            ($query:expr, $upper:expr) => {{
                let mut query = $query.bind($upper).bind(cap);
                for id in q.consultation_ids {
                    query = query.bind(*id);
                }
                query
            }};
        }
        let sql = format!(
            "SELECT p.receipt_no, p.consultation_id, c.name AS cso_name, p.from_address, \
             p.created_at AS at, substr(p.reply_text, 1, {EXCERPT_SOURCE_CHARS}) AS text, \
             FALSE AS follow_up, p.late FROM proposals p LEFT JOIN csos c ON c.id = p.cso_id \
             {waiting_where} ORDER BY p.created_at, p.id LIMIT $2"
        );
        // Counted on the index alone: no names, no text.
        let count = format!("SELECT COUNT(*) FROM proposals p {waiting_where} AND $2 >= 0");
        let (waiting_total,): (i64,) =
            waiting_bound!(sqlx::query_as::<D::DB, (i64,)>(&count), q.through)
                .fetch_one(&self.read)
                .await?;
        // The first digest (no window start) lists everything as new.
        let (waiting, waiting_older) = match q.since {
            Some(since) => (
                waiting_bound!(sqlx::query_as::<D::DB, EntryRow>(&sql), since)
                    .fetch_all(&self.read)
                    .await?,
                waiting_total - new_waiting,
            ),
            None => (Vec::new(), 0),
        };
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(DigestData {
            new: new.into_iter().map(DigestEntry::from).collect(),
            new_proposals: n(new_proposals),
            new_follow_ups: n(new_follow_ups),
            waiting: waiting.into_iter().map(DigestEntry::from).collect(),
            waiting_total: n(waiting_total),
            waiting_older: n(waiting_older),
        })
    }

    async fn window_texts(
        &self,
        consultation_id: i64,
        since: Option<DateTime<Utc>>,
        through: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        // The start of a text is enough to tell copies apart, and keeps a
        // week of thousands of long proposals cheap to read and compare.
        let sql = format!(
            "SELECT id, substr(reply_text, 1, {CAMPAIGN_TEXT_CHARS}) FROM proposals \
             WHERE consultation_id = $1 AND created_at <= $2 {} ORDER BY created_at, id",
            if since.is_some() {
                "AND created_at > $3"
            } else {
                ""
            }
        );
        let mut query = sqlx::query_as::<D::DB, (i64, String)>(&sql)
            .bind(consultation_id)
            .bind(through);
        if let Some(since) = since {
            query = query.bind(since);
        }
        Ok(query.fetch_all(&self.read).await?)
    }

    async fn reply_count(&self, consultation_id: i64) -> Result<ReplyCount, StoreError> {
        let (invited,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT COUNT(DISTINCT cso_id) FROM outbox \
             WHERE consultation_id = $1 AND kind = 'invitation' AND state <> 'cancelled'",
        )
        .bind(consultation_id)
        .fetch_one(&self.read)
        .await?;
        let (replied,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT COUNT(DISTINCT cso_id) FROM proposals WHERE consultation_id = $1",
        )
        .bind(consultation_id)
        .fetch_one(&self.read)
        .await?;
        Ok(ReplyCount {
            invited: u64::try_from(invited).unwrap_or(0),
            replied: u64::try_from(replied).unwrap_or(0),
        })
    }

    async fn record_disposition(
        &self,
        receipt_no: &str,
        disposition: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let done = sqlx::query::<D::DB>(
            "INSERT INTO dispositions (proposal_id, disposition, decided_at) \
             SELECT id, $2, $3 FROM proposals WHERE receipt_no = $1 \
             ON CONFLICT (proposal_id) DO UPDATE SET disposition = excluded.disposition, \
             decided_at = excluded.decided_at",
        )
        .bind(receipt_no)
        .bind(disposition)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(D::rows_affected(&done) > 0)
    }

    async fn deferred(&self, limit: u32) -> Result<Vec<Deferred>, StoreError> {
        let rows: Vec<DeferredRow> = sqlx::query_as::<D::DB, DeferredRow>(
            "SELECT id, kind, recipient, attempts, last_error, next_attempt_at FROM outbox \
             WHERE state = 'queued' AND attempts > 0 ORDER BY next_attempt_at LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Deferred {
                id: r.id,
                kind: r.kind,
                recipient: r.recipient,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                last_error: r.last_error.unwrap_or_default(),
                next_attempt_at: r.next_attempt_at,
            })
            .collect())
    }

    async fn sent_since(&self, kind: &str, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as::<D::DB, (i64,)>(
            "SELECT COUNT(*) FROM outbox WHERE kind = $1 AND state = 'sent' AND sent_at > $2",
        )
        .bind(kind)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
