//! The embedded default: one SQLite file, nothing to install.
//!
//! SQLite allows one writer at a time. Writes go through a pool of exactly one
//! connection and start with BEGIN IMMEDIATE, so a transaction takes the write
//! lock before it reads instead of failing with "database is locked" when it
//! tries to upgrade; other processes (a CLI command beside the daemon) wait
//! for the lock up to the busy timeout. Reads use their own pool and, in WAL
//! mode, never wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::records::*;
use super::{Backend, Store, StoreError, portable};
use std::collections::HashSet;

use crate::consultation::{Consultation, ConsultationSpec, ConsultationState, DeadlineExtension};
use crate::domain::{EmailAddress, RegistrationNumber, ReplyKey};

/// Rows per multi-row INSERT: 9 parameters each stays well under SQLite's
/// limit of 32,766 bound parameters.
const ROWS_PER_INSERT: usize = 1000;

/// SQLite has one writer at a time (BEGIN IMMEDIATE), so a claim needs no
/// row locks: two claimers never run the UPDATE at once.
const CLAIM_LOCK: &str = "";

/// A CSO's addresses, in order, as one newline-separated column.
const EMAILS_OF_CSO: &str = "SELECT group_concat(address, char(10)) FROM \
             (SELECT address FROM cso_emails e WHERE e.cso_id = c.id ORDER BY position)";

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by a `sqlite:` URL
    /// and applies migrations/sqlite.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            target: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: every commit is on disk before it returns, power cut
            // included. cocreate tells an MTA "stored" (and a webhook 200)
            // only after a commit, and the MTA then deletes its copy.
            // Intake writes in batches, so this costs one sync per batch.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Self { read, write })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        portable::ping(&self.read).await
    }

    async fn csos(&self) -> Result<Vec<Cso>, StoreError> {
        portable::csos(&self.read, EMAILS_OF_CSO, portable::CsoFilter::All).await
    }

    async fn cso(&self, id: i64) -> Result<Option<Cso>, StoreError> {
        let mut found =
            portable::csos(&self.read, EMAILS_OF_CSO, portable::CsoFilter::Id(id)).await?;
        Ok(found.pop())
    }

    async fn csos_with_address(&self, address: &EmailAddress) -> Result<Vec<Cso>, StoreError> {
        portable::csos(
            &self.read,
            EMAILS_OF_CSO,
            portable::CsoFilter::Address(address.as_str()),
        )
        .await
    }

    async fn apply_registry_changes(&self, changes: &RegistryChanges) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;

        let mut emails: Vec<(i64, &CsoRecord)> = Vec::with_capacity(changes.added.len());
        for chunk in changes.added.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO csos (registration_no, name, phone, city, fields_of_activity, language, active, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(r.registration_no.as_str())
                    .push_bind(&r.name)
                    .push_bind(r.phone.as_deref())
                    .push_bind(r.city.as_deref())
                    .push_bind(portable::fields_column(r))
                    .push_bind(r.language.code())
                    .push_bind(true)
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(" RETURNING id, registration_no");
            let ids: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut *tx).await?;
            emails.extend(portable::pair_inserted(chunk, &ids)?);
        }

        // UPDATE … FROM (VALUES …): one statement per chunk, not per row.
        for chunk in changes.updated.chunks(ROWS_PER_INSERT) {
            let mut update = QueryBuilder::<Sqlite>::new(
                "UPDATE csos SET name = v.column2, phone = v.column3, city = v.column4, \
                 fields_of_activity = v.column5, language = v.column6, active = TRUE, \
                 inactivated_at = NULL, updated_at = ",
            );
            update.push_bind(now).push(" FROM (");
            update.push_values(chunk, |mut row, (id, r)| {
                row.push_bind(*id)
                    .push_bind(&r.name)
                    .push_bind(r.phone.as_deref())
                    .push_bind(r.city.as_deref())
                    .push_bind(portable::fields_column(r))
                    .push_bind(r.language.code());
            });
            update.push(") AS v WHERE csos.id = v.column1");
            update.build().execute(&mut *tx).await?;

            let mut delete =
                QueryBuilder::<Sqlite>::new("DELETE FROM cso_emails WHERE cso_id IN (");
            let mut ids = delete.separated(", ");
            for (id, _) in chunk {
                ids.push_bind(*id);
            }
            delete.push(")");
            delete.build().execute(&mut *tx).await?;
            emails.extend(chunk.iter().map(|(id, r)| (*id, r)));
        }

        let addresses: Vec<(i64, i64, &str)> = emails
            .iter()
            .flat_map(|(id, r)| {
                r.emails
                    .iter()
                    .enumerate()
                    .map(move |(pos, e)| (*id, pos as i64, e.as_str()))
            })
            .collect();
        for chunk in addresses.chunks(ROWS_PER_INSERT) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO cso_emails (cso_id, position, address) ");
            insert.push_values(chunk, |mut row, (id, pos, address)| {
                row.push_bind(*id).push_bind(*pos).push_bind(*address);
            });
            insert.build().execute(&mut *tx).await?;
        }

        for chunk in changes.inactivated.chunks(ROWS_PER_INSERT) {
            let mut update =
                QueryBuilder::<Sqlite>::new("UPDATE csos SET active = FALSE, inactivated_at = ");
            update.push_bind(now).push(", updated_at = ").push_bind(now);
            update.push(" WHERE id IN (");
            let mut ids = update.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            update.push(")");
            update.build().execute(&mut *tx).await?;
        }

        portable::insert_import_log::<Sqlite>(&mut tx, &changes.log, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn registry_imports(&self, limit: u32) -> Result<Vec<ImportRecord>, StoreError> {
        portable::registry_imports(&self.read, limit).await
    }

    async fn set_relevance_override(&self, o: &RelevanceOverride) -> Result<(), StoreError> {
        portable::set_relevance_override(&self.write, o).await
    }

    async fn clear_relevance_override(
        &self,
        registration_no: &RegistrationNumber,
        policy_area: &str,
    ) -> Result<bool, StoreError> {
        portable::clear_relevance_override(&self.write, registration_no, policy_area).await
    }

    async fn relevance_overrides(&self) -> Result<Vec<RelevanceOverride>, StoreError> {
        portable::relevance_overrides(&self.read).await
    }

    async fn consultations(&self) -> Result<Vec<Consultation>, StoreError> {
        portable::consultations(&self.read).await
    }

    async fn deadline_extensions(&self) -> Result<Vec<DeadlineExtension>, StoreError> {
        portable::extensions(&self.read).await
    }

    async fn queued_keys(&self, prefix: &str) -> Result<HashSet<String>, StoreError> {
        portable::queued_keys(&self.read, prefix).await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        portable::outbox_counts(&self.read).await
    }

    async fn outbox_failures(&self, limit: u32) -> Result<Vec<OutboxFailure>, StoreError> {
        portable::outbox_failures(&self.read, limit).await
    }

    async fn reply_key(&self, key: &ReplyKey) -> Result<Option<ReplyKeyRecord>, StoreError> {
        portable::reply_key(&self.read, key).await
    }

    async fn address_statuses(&self) -> Result<Vec<AddressStatus>, StoreError> {
        portable::address_statuses(&self.read).await
    }

    async fn insert_consultation(&self, spec: &ConsultationSpec) -> Result<i64, StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let id = portable::insert_consultation::<Sqlite>(&mut tx, spec, Utc::now()).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn update_consultation(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        state: Option<ConsultationState>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        portable::update_consultation::<Sqlite>(&mut tx, id, spec, state, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn extend_deadline(
        &self,
        extension: &DeadlineExtension,
        spec: &ConsultationSpec,
        notices: &[NewMessage],
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        portable::update_consultation::<Sqlite>(
            &mut tx,
            extension.consultation_id,
            spec,
            None,
            now,
        )
        .await?;
        portable::insert_extension::<Sqlite>(&mut tx, extension).await?;
        let queued = portable::enqueue::<Sqlite>(&mut tx, notices, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn enqueue(&self, messages: &[NewMessage]) -> Result<u64, StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let queued = portable::enqueue::<Sqlite>(&mut tx, messages, Utc::now()).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn claim_due_messages(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let rows: Vec<portable::ClaimedRow> = sqlx::query_as(&portable::claim_sql(CLAIM_LOCK))
            .bind(until)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(portable::sort_claimed(rows))
    }

    async fn record_deliveries(
        &self,
        outcomes: &[(i64, String, Delivery)],
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let sent: Vec<i64> = outcomes
            .iter()
            .filter(|(_, _, d)| *d == Delivery::Sent)
            .map(|(id, _, _)| *id)
            .collect();
        portable::mark_sent::<Sqlite>(&mut tx, &sent, now).await?;
        for (id, recipient, delivery) in outcomes.iter().filter(|(_, _, d)| *d != Delivery::Sent) {
            portable::record_delivery::<Sqlite>(&mut tx, *id, recipient, delivery, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_claims(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        portable::release_claims::<Sqlite>(&mut tx, ids).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retry_failed(&self) -> Result<u64, StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let n = portable::retry_failed::<Sqlite>(&mut tx, Utc::now()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn opt_out(&self, address: &EmailAddress, source: &str) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        portable::opt_out::<Sqlite>(&mut tx, address, source, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn restore_address(
        &self,
        address: &EmailAddress,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let restored =
            portable::restore_address::<Sqlite>(&mut tx, address, reason, Utc::now()).await?;
        tx.commit().await?;
        Ok(restored)
    }

    async fn store_inbound_many(
        &self,
        messages: &[NewInbound<'_>],
    ) -> Result<Vec<StoredInbound>, StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let stored = portable::store_inbound_many::<Sqlite>(&mut tx, messages, Utc::now()).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn apply_intake(&self, writes: &[IntakeWrite]) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let applied = portable::apply_intake::<Sqlite>(&mut tx, writes, Utc::now()).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn intake_lookups(
        &self,
        keys: &[ReplyKey],
        senders: &[String],
        acknowledged_since: DateTime<Utc>,
        texts_since: DateTime<Utc>,
    ) -> Result<IntakeLookups, StoreError> {
        portable::intake_lookups(
            &self.read,
            EMAILS_OF_CSO,
            keys,
            senders,
            acknowledged_since,
            texts_since,
        )
        .await
    }

    async fn unprocessed_inbound(&self) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        portable::unprocessed_inbound(&self.read).await
    }

    async fn proposals(&self) -> Result<Vec<ProposalSummary>, StoreError> {
        portable::proposals(&self.read).await
    }

    async fn inbound_in_state(&self, state: &str) -> Result<Vec<InboundSummary>, StoreError> {
        portable::inbound_in_state(&self.read, state).await
    }

    async fn inbound_raw(&self, id: i64) -> Result<Option<(InboundSummary, Vec<u8>)>, StoreError> {
        portable::inbound_raw(&self.read, id).await
    }

    async fn receipt_for_message(&self, id: i64) -> Result<Option<String>, StoreError> {
        portable::receipt_for_message(&self.read, id).await
    }

    async fn proposal_by_receipt(
        &self,
        receipt_no: &str,
    ) -> Result<Option<(i64, i64, Option<i64>)>, StoreError> {
        portable::proposal_by_receipt(&self.read, receipt_no).await
    }

    async fn relay_refusal(&self) -> Result<Option<RelayRefusal>, StoreError> {
        portable::relay_refusal(&self.read).await
    }

    async fn set_relay_refusal(&self, refusal: Option<&RelayRefusal>) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        portable::set_relay_refusal::<Sqlite>(&mut tx, refusal).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn schedule_watermark(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        portable::schedule_watermark(&self.read, job).await
    }

    async fn set_schedule_watermark(
        &self,
        job: &str,
        done_through: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        portable::set_schedule_watermark::<Sqlite>(&mut tx, job, done_through).await?;
        tx.commit().await?;
        Ok(())
    }
}
