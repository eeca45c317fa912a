//! PostgreSQL, for deployments where several cocreate daemons share one
//! database (which can itself be replicated).
//!
//! Bulk writes send whole columns as arrays and UNNEST them on the server:
//! one round trip for a chunk of thousands of rows instead of one per row.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::records::*;
use super::{Backend, Store, StoreError, portable, redact};
use std::collections::HashSet;

use crate::consultation::{Consultation, ConsultationSpec, ConsultationState, DeadlineExtension};
use crate::domain::{EmailAddress, RegistrationNumber, ReplyKey};

/// Rows per UNNEST statement: large enough to amortise the round trip, small
/// enough to keep each statement's memory modest.
const ROWS_PER_STATEMENT: usize = 10_000;

/// Several daemons may claim at once: each skips the rows another has locked.
const CLAIM_LOCK: &str = "FOR UPDATE SKIP LOCKED";

/// A CSO's addresses, in order, as one newline-separated column.
const EMAILS_OF_CSO: &str = "SELECT string_agg(address, E'\\n' ORDER BY position) FROM cso_emails e \
             WHERE e.cso_id = c.id";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database named by a `postgres://` URL and applies
    /// migrations/postgres. `password`, from the environment, takes precedence
    /// over one in the URL.
    pub async fn open(
        url: &str,
        password: Option<&str>,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            target: redact(url),
            source,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(open_err)?;
        if let Some(password) = password {
            options = options.password(password);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests that inspect the schema directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The columns of a set of records, as arrays for UNNEST.
struct Columns<'a> {
    names: Vec<&'a str>,
    phones: Vec<Option<&'a str>>,
    cities: Vec<Option<&'a str>>,
    fields: Vec<String>,
    languages: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(records: impl Iterator<Item = &'a CsoRecord>) -> Self {
        let mut c = Columns {
            names: Vec::new(),
            phones: Vec::new(),
            cities: Vec::new(),
            fields: Vec::new(),
            languages: Vec::new(),
        };
        for r in records {
            c.names.push(&r.name);
            c.phones.push(r.phone.as_deref());
            c.cities.push(r.city.as_deref());
            c.fields.push(portable::fields_column(r));
            c.languages.push(r.language.code());
        }
        c
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<(), StoreError> {
        portable::ping(&self.pool).await
    }

    async fn csos(&self) -> Result<Vec<Cso>, StoreError> {
        portable::csos(&self.pool, EMAILS_OF_CSO, portable::CsoFilter::All).await
    }

    async fn cso(&self, id: i64) -> Result<Option<Cso>, StoreError> {
        let mut found =
            portable::csos(&self.pool, EMAILS_OF_CSO, portable::CsoFilter::Id(id)).await?;
        Ok(found.pop())
    }

    async fn csos_with_address(&self, address: &EmailAddress) -> Result<Vec<Cso>, StoreError> {
        portable::csos(
            &self.pool,
            EMAILS_OF_CSO,
            portable::CsoFilter::Address(address.as_str()),
        )
        .await
    }

    async fn apply_registry_changes(&self, changes: &RegistryChanges) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;

        let mut emails: Vec<(i64, &CsoRecord)> = Vec::with_capacity(changes.added.len());
        for chunk in changes.added.chunks(ROWS_PER_STATEMENT) {
            let regs: Vec<&str> = chunk.iter().map(|r| r.registration_no.as_str()).collect();
            let cols = Columns::of(chunk.iter());
            let ids: Vec<(i64, String)> = sqlx::query_as(
                "INSERT INTO csos (registration_no, name, phone, city, fields_of_activity, language, created_at, updated_at) \
                 SELECT r, n, p, c, f, l, $7, $7 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(r, n, p, c, f, l) \
                 RETURNING id, registration_no",
            )
            .bind(&regs)
            .bind(&cols.names)
            .bind(&cols.phones)
            .bind(&cols.cities)
            .bind(&cols.fields)
            .bind(&cols.languages)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            emails.extend(portable::pair_inserted(chunk, &ids)?);
        }

        for chunk in changes.updated.chunks(ROWS_PER_STATEMENT) {
            let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
            let cols = Columns::of(chunk.iter().map(|(_, r)| r));
            sqlx::query(
                "UPDATE csos SET name = t.n, phone = t.p, city = t.c, fields_of_activity = t.f, \
                 language = t.l, active = TRUE, inactivated_at = NULL, updated_at = $7 \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS t(id, n, p, c, f, l) \
                 WHERE csos.id = t.id",
            )
            .bind(&ids)
            .bind(&cols.names)
            .bind(&cols.phones)
            .bind(&cols.cities)
            .bind(&cols.fields)
            .bind(&cols.languages)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM cso_emails WHERE cso_id = ANY($1)")
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            emails.extend(chunk.iter().map(|(id, r)| (*id, r)));
        }

        for chunk in emails.chunks(ROWS_PER_STATEMENT) {
            let (mut ids, mut positions, mut addresses) = (Vec::new(), Vec::new(), Vec::new());
            for (id, r) in chunk {
                for (pos, e) in r.emails.iter().enumerate() {
                    ids.push(*id);
                    positions.push(pos as i32);
                    addresses.push(e.as_str());
                }
            }
            sqlx::query(
                "INSERT INTO cso_emails (cso_id, position, address) \
                 SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::text[])",
            )
            .bind(&ids)
            .bind(&positions)
            .bind(&addresses)
            .execute(&mut *tx)
            .await?;
        }

        if !changes.inactivated.is_empty() {
            sqlx::query(
                "UPDATE csos SET active = FALSE, inactivated_at = $1, updated_at = $1 WHERE id = ANY($2)",
            )
            .bind(now)
            .bind(&changes.inactivated)
            .execute(&mut *tx)
            .await?;
        }

        portable::insert_import_log::<Postgres>(&mut tx, &changes.log, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn registry_imports(&self, limit: u32) -> Result<Vec<ImportRecord>, StoreError> {
        portable::registry_imports(&self.pool, limit).await
    }

    async fn set_relevance_override(&self, o: &RelevanceOverride) -> Result<(), StoreError> {
        portable::set_relevance_override(&self.pool, o).await
    }

    async fn clear_relevance_override(
        &self,
        registration_no: &RegistrationNumber,
        policy_area: &str,
    ) -> Result<bool, StoreError> {
        portable::clear_relevance_override(&self.pool, registration_no, policy_area).await
    }

    async fn relevance_overrides(&self) -> Result<Vec<RelevanceOverride>, StoreError> {
        portable::relevance_overrides(&self.pool).await
    }

    async fn consultations(&self) -> Result<Vec<Consultation>, StoreError> {
        portable::consultations(&self.pool).await
    }

    async fn deadline_extensions(&self) -> Result<Vec<DeadlineExtension>, StoreError> {
        portable::extensions(&self.pool).await
    }

    async fn queued_keys(&self, prefix: &str) -> Result<HashSet<String>, StoreError> {
        portable::queued_keys(&self.pool, prefix).await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        portable::outbox_counts(&self.pool).await
    }

    async fn outbox_failures(&self, limit: u32) -> Result<Vec<OutboxFailure>, StoreError> {
        portable::outbox_failures(&self.pool, limit).await
    }

    async fn reply_key(&self, key: &ReplyKey) -> Result<Option<ReplyKeyRecord>, StoreError> {
        portable::reply_key(&self.pool, key).await
    }

    async fn address_statuses(&self) -> Result<Vec<AddressStatus>, StoreError> {
        portable::address_statuses(&self.pool).await
    }

    async fn insert_consultation(&self, spec: &ConsultationSpec) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = portable::insert_consultation::<Postgres>(&mut tx, spec, Utc::now()).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn update_consultation(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        state: Option<ConsultationState>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        portable::update_consultation::<Postgres>(&mut tx, id, spec, state, Utc::now()).await?;
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
        let mut tx = self.pool.begin().await?;
        portable::update_consultation::<Postgres>(
            &mut tx,
            extension.consultation_id,
            spec,
            None,
            now,
        )
        .await?;
        portable::insert_extension::<Postgres>(&mut tx, extension).await?;
        let queued = portable::enqueue::<Postgres>(&mut tx, notices, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn enqueue(&self, messages: &[NewMessage]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let queued = portable::enqueue::<Postgres>(&mut tx, messages, Utc::now()).await?;
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
        let sent: Vec<i64> = outcomes
            .iter()
            .filter(|(_, _, d)| *d == Delivery::Sent)
            .map(|(id, _, _)| *id)
            .collect();
        portable::mark_sent::<Postgres>(&mut tx, &sent, now).await?;
        for (id, recipient, delivery) in outcomes.iter().filter(|(_, _, d)| *d != Delivery::Sent) {
            portable::record_delivery::<Postgres>(&mut tx, *id, recipient, delivery, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_claims(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        portable::release_claims::<Postgres>(&mut tx, ids).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retry_failed(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = portable::retry_failed::<Postgres>(&mut tx, Utc::now()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn opt_out(&self, address: &EmailAddress, source: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        portable::opt_out::<Postgres>(&mut tx, address, source, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn restore_address(
        &self,
        address: &EmailAddress,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let restored =
            portable::restore_address::<Postgres>(&mut tx, address, reason, Utc::now()).await?;
        tx.commit().await?;
        Ok(restored)
    }

    async fn store_inbound_many(
        &self,
        messages: &[NewInbound<'_>],
    ) -> Result<Vec<StoredInbound>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored =
            portable::store_inbound_many::<Postgres>(&mut tx, messages, Utc::now()).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn apply_intake(&self, writes: &[IntakeWrite]) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let applied = portable::apply_intake::<Postgres>(&mut tx, writes, Utc::now()).await?;
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
            &self.pool,
            EMAILS_OF_CSO,
            keys,
            senders,
            acknowledged_since,
            texts_since,
        )
        .await
    }

    async fn unprocessed_inbound(&self) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        portable::unprocessed_inbound(&self.pool).await
    }

    async fn proposals(&self) -> Result<Vec<ProposalSummary>, StoreError> {
        portable::proposals(&self.pool).await
    }

    async fn inbound_in_state(&self, state: &str) -> Result<Vec<InboundSummary>, StoreError> {
        portable::inbound_in_state(&self.pool, state).await
    }

    async fn inbound_raw(&self, id: i64) -> Result<Option<(InboundSummary, Vec<u8>)>, StoreError> {
        portable::inbound_raw(&self.pool, id).await
    }

    async fn receipt_for_message(&self, id: i64) -> Result<Option<String>, StoreError> {
        portable::receipt_for_message(&self.pool, id).await
    }

    async fn proposal_by_receipt(
        &self,
        receipt_no: &str,
    ) -> Result<Option<(i64, i64, Option<i64>)>, StoreError> {
        portable::proposal_by_receipt(&self.pool, receipt_no).await
    }

    async fn relay_refusal(&self) -> Result<Option<RelayRefusal>, StoreError> {
        portable::relay_refusal(&self.pool).await
    }

    async fn set_relay_refusal(&self, refusal: Option<&RelayRefusal>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        portable::set_relay_refusal::<Postgres>(&mut tx, refusal).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn schedule_watermark(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        portable::schedule_watermark(&self.pool, job).await
    }

    async fn set_schedule_watermark(
        &self,
        job: &str,
        done_through: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        portable::set_schedule_watermark::<Postgres>(&mut tx, job, done_through).await?;
        tx.commit().await?;
        Ok(())
    }
}
