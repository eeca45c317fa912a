//! Where everything cocreate knows is kept.
//!
//! [`Store`] is the one interface the rest of cocreate uses. It has two
//! implementations: SQLite, the embedded default (one file under data/), and
//! PostgreSQL, for deployments where several daemons share one database. The
//! backend is chosen by the URL. Each has its own migrations folder,
//! applied when the store is opened, and one conformance suite
//! (tests/it/store_conformance.rs) runs the same cases against both.
//!
//! One SQL store ([`SqlStore`], store/sql/) serves both, generic over the
//! [`dialect::Dialect`]: each query is written once, in the file of its
//! domain; the dialect holds only what truly differs. The store owns the
//! records it reads and writes ([`records`]) and imports nothing from the
//! modules that use it.

pub mod dialect;
pub mod records;
mod sql;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use dialect::SqliteMemory;
pub use sql::SqlStore;

/// The embedded default: one SQLite file.
pub type SqliteStore = SqlStore<dialect::Sqlite>;
/// Several daemons on one PostgreSQL database.
pub type PostgresStore = SqlStore<dialect::Postgres>;

use crate::config::DatabaseConfig;
use crate::consultation::{Consultation, ConsultationSpec, ConsultationState, DeadlineExtension};
use crate::domain::{EmailAddress, ReceiptNo, RegistrationNumber, ReplyKey};
use records::*;
pub use records::{AddressStatus, ImportRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {target}: {source}")]
    Open {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the folder {path} for the database: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database failed: {0}")]
    Query(#[from] sqlx::Error),
    /// From the registry import's writes on SQLite (see `dialect::sqlite`).
    #[error("the database failed: {0}")]
    Bulk(#[from] rusqlite::Error),
    #[error("the database holds a value cocreate cannot read: {0}")]
    Corrupt(String),
    #[error("the database URL must start with sqlite: or postgres://")]
    UnknownBackend,
    #[error("{0}")]
    Conflict(String),
    #[error("{0} does not exist")]
    NotFound(String),
}

/// An import being written: one write transaction, fed a chunk of the
/// file at a time so that memory does not grow with the file. What it
/// reads, it reads inside that transaction, so it sees its own writes.
/// Dropped without [`RegistryImport::commit`], it leaves no trace.
#[async_trait]
pub trait RegistryImport: Send {
    /// The organisations with these registration numbers, with their
    /// addresses.
    async fn find(&mut self, registration_nos: &[&str]) -> Result<Vec<Cso>, StoreError>;

    /// The organisations with these ids, with their addresses.
    async fn find_ids(&mut self, ids: &[i64]) -> Result<Vec<Cso>, StoreError>;

    /// The ids of every active organisation.
    async fn active_ids(&mut self) -> Result<Vec<i64>, StoreError>;

    /// Writes `changes` (its log is left for [`RegistryImport::commit`]);
    /// returns the ids given to `changes.added`, in its order.
    async fn write(&mut self, changes: &RegistryChanges) -> Result<Vec<i64>, StoreError>;

    /// Adds the import's history line and commits.
    async fn commit(self: Box<Self>, log: &ImportLogEntry) -> Result<(), StoreError>;
}

/// Organisations, the state of their addresses, imports, relevance.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// Every CSO ever imported, active or not, with its addresses, by id.
    async fn csos(&self) -> Result<Vec<Cso>, StoreError>;

    /// One CSO by id.
    async fn cso(&self, id: i64) -> Result<Option<Cso>, StoreError>;

    /// The CSOs that list `address` among theirs.
    async fn csos_with_address(&self, address: &EmailAddress) -> Result<Vec<Cso>, StoreError>;

    /// Begins an import: one write transaction that the import feeds a
    /// chunk of the file at a time (see [`RegistryImport`]).
    async fn begin_import(&self) -> Result<Box<dyn RegistryImport>, StoreError>;

    /// Writes one import's changes, all or nothing.
    async fn apply_registry_changes(&self, changes: &RegistryChanges) -> Result<(), StoreError> {
        let mut import = self.begin_import().await?;
        import.write(changes).await?;
        import.commit(&changes.log).await
    }

    /// The most recent imports, newest first.
    async fn registry_imports(&self, limit: u32) -> Result<Vec<ImportRecord>, StoreError>;

    /// Records the POC's decision, replacing an earlier one for the same
    /// CSO and policy area.
    async fn set_relevance_override(&self, o: &RelevanceOverride) -> Result<(), StoreError>;

    /// Removes an override; false when there was none.
    async fn clear_relevance_override(
        &self,
        registration_no: &RegistrationNumber,
        policy_area: &str,
    ) -> Result<bool, StoreError>;

    async fn relevance_overrides(&self) -> Result<Vec<RelevanceOverride>, StoreError>;

    async fn address_statuses(&self) -> Result<Vec<AddressStatus>, StoreError>;

    /// Stops consultation mail to an address; `source` says how it was asked.
    async fn opt_out(&self, address: &EmailAddress, source: &str) -> Result<(), StoreError>;

    /// Lifts an opt-out or bounce, with the POC's reason; false if there was none.
    async fn restore_address(
        &self,
        address: &EmailAddress,
        reason: &str,
    ) -> Result<bool, StoreError>;
}

/// Consultations, deadline extensions, and scheduled jobs' watermarks.
#[async_trait]
pub trait ConsultationStore: Send + Sync {
    /// Stores a new consultation as a draft; a reference in use is a Conflict.
    async fn insert_consultation(&self, spec: &ConsultationSpec) -> Result<i64, StoreError>;

    /// Replaces a consultation's details and, if given, its state.
    async fn update_consultation(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        state: Option<ConsultationState>,
    ) -> Result<(), StoreError>;

    async fn consultations(&self) -> Result<Vec<Consultation>, StoreError>;

    /// Moves the deadline, records why, and queues the notices to the CSOs
    /// already invited, all in one transaction.
    async fn extend_deadline(
        &self,
        extension: &DeadlineExtension,
        spec: &ConsultationSpec,
        notices: &[NewMessage],
    ) -> Result<u64, StoreError>;

    async fn deadline_extensions(&self) -> Result<Vec<DeadlineExtension>, StoreError>;

    /// Up to when a scheduled job has dealt with its scheduled times; None
    /// for a job never seen.
    async fn schedule_watermark(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    async fn set_schedule_watermark(
        &self,
        job: &str,
        done_through: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// The outbox and the reply keys its messages carry.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues the messages whose idempotency key is new (with their reply
    /// keys) in one transaction; returns how many were new.
    async fn enqueue(&self, messages: &[NewMessage]) -> Result<u64, StoreError>;

    /// Idempotency keys already in the outbox that start with `prefix`.
    async fn queued_keys(&self, prefix: &str) -> Result<HashSet<String>, StoreError>;

    /// Claims up to `limit` due messages of either lane for `lease`,
    /// replies first; no other claimer gets them until the lease runs out.
    async fn claim_due_messages(&self, limit: u32, lease: Duration) -> Result<Claim, StoreError> {
        self.claim_due(limit, lease, None).await
    }

    /// Claims up to `limit` due messages of `lane` (of both, replies first,
    /// for None) for `lease`.
    async fn claim_due(
        &self,
        limit: u32,
        lease: Duration,
        lane: Option<crate::domain::Lane>,
    ) -> Result<Claim, StoreError>;

    /// Extends the claim `token` by `lease` from now, for the messages it
    /// still holds (those not yet recorded); returns their ids. A message
    /// missing from the answer has passed to another claimer: it must not be
    /// sent.
    async fn renew_claim(&self, token: &str, lease: Duration) -> Result<Vec<i64>, StoreError>;

    /// Records delivery outcomes `(outbox id, recipient, outcome)` of the
    /// claim `token` in one transaction; a hard bounce marks the address.
    /// An outcome for a message whose claim has passed on is not recorded;
    /// returns how many were.
    async fn record_deliveries(
        &self,
        token: &str,
        outcomes: &[(i64, String, Delivery)],
    ) -> Result<u64, StoreError>;

    /// Gives messages of the claim `token` that were not sent back to the
    /// queue, as they were (a daemon stopping mid-batch).
    async fn release_claims(&self, token: &str, ids: &[i64]) -> Result<(), StoreError>;

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;

    async fn outbox_failures(&self, limit: u32) -> Result<Vec<OutboxFailure>, StoreError>;

    /// The recipient of outbox message `id`, if there is one.
    async fn outbox_recipient(&self, id: i64) -> Result<Option<String>, StoreError>;

    /// Puts failed messages back in the queue (and, as `scope` says,
    /// failures to refused addresses, and deferred messages due now).
    async fn retry(&self, scope: RetryScope) -> Result<Retried, StoreError>;

    async fn reply_key(&self, key: &ReplyKey) -> Result<Option<ReplyKeyRecord>, StoreError>;

    /// Why the relay refuses cocreate, if it does (see `outbound::outbox`).
    async fn relay_refusal(&self) -> Result<Option<RelayRefusal>, StoreError>;

    /// Records the relay's refusal, or clears it (`None`) once it accepts.
    async fn set_relay_refusal(&self, refusal: Option<&RelayRefusal>) -> Result<(), StoreError>;
}

/// Inbound mail, proposals, follow-ups and the holding pen.
#[async_trait]
pub trait InboundStore: Send + Sync {
    /// Stores messages byte for byte, all in one transaction: each one's id,
    /// whether it is new, and its state (false, with the earlier state: the
    /// same message was stored before).
    async fn store_inbound_many(
        &self,
        messages: &[NewInbound<'_>],
    ) -> Result<Vec<StoredInbound>, StoreError>;

    /// What a batch of messages needs from the store, in a few queries:
    /// the records of `keys` and their CSOs, and for each of `senders` the
    /// acknowledgements queued since `acknowledged_since` and the texts
    /// they sent since `texts_since`.
    async fn intake_lookups(
        &self,
        keys: &[ReplyKey],
        senders: &[String],
        acknowledged_since: DateTime<Utc>,
        texts_since: DateTime<Utc>,
    ) -> Result<IntakeLookups, StoreError>;

    /// Writes what intake made of messages, in order, in one transaction:
    /// all of it or, on error, none of it.
    async fn apply_intake(&self, writes: &[IntakeWrite]) -> Result<Vec<Applied>, StoreError>;

    /// Stored messages in `state` ("held", "received", …), oldest first.
    async fn inbound_in_state(
        &self,
        state: InboundState,
    ) -> Result<Vec<InboundSummary>, StoreError>;

    /// One stored message as it arrived.
    async fn inbound_raw(&self, id: i64) -> Result<Option<(InboundSummary, Vec<u8>)>, StoreError>;

    /// Messages stored but not processed (a crash between the two, or
    /// processing that failed) that were stored before `settled_before` and
    /// are due to be tried again at `now`; at most `limit`, oldest first.
    async fn due_unprocessed(
        &self,
        now: DateTime<Utc>,
        settled_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;

    /// Records that processing message `id` failed with `error`: it is tried
    /// again at `retry_at(attempts so far)`, or, once it has failed
    /// `hold_after` times, held with the error. Returns whether it was held.
    async fn processing_failed(
        &self,
        id: i64,
        error: &str,
        hold_after: u32,
        retry_at: &(dyn Fn(u32) -> DateTime<Utc> + Send + Sync),
    ) -> Result<bool, StoreError>;

    /// How many messages are stored but not processed, and when the oldest
    /// of them arrived.
    async fn unprocessed_backlog(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError>;

    async fn set_inbound_outcome(
        &self,
        id: i64,
        state: InboundState,
        classification: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.apply_intake(&[IntakeWrite::Outcome {
            id,
            state,
            classification: classification.to_string(),
            reason: reason.into(),
        }])
        .await?;
        Ok(())
    }

    /// A proposal by its receipt number.
    async fn proposal_by_receipt(
        &self,
        receipt_no: &ReceiptNo,
    ) -> Result<Option<ProposalRef>, StoreError>;

    /// The receipt number of the proposal made from message `id`, if any.
    async fn receipt_for_message(&self, id: i64) -> Result<Option<String>, StoreError>;

    async fn proposals(&self) -> Result<Vec<ProposalSummary>, StoreError>;
}

/// What the web form keeps: its signing key, proposals waiting for their
/// sender's confirmation, and what a CSO has already sent.
#[async_trait]
pub trait WebStore: Send + Sync {
    /// The stored setting `name`; when there is none, `candidate` is stored
    /// and returned (so every process sharing the store agrees on it).
    async fn setting_or_insert(&self, name: &str, candidate: &str) -> Result<String, StoreError>;

    /// Keeps a waiting proposal; false when one with its nonce waits already.
    async fn insert_pending(&self, pending: &NewPending) -> Result<bool, StoreError>;

    /// The receipt number a stored message was recorded under: its
    /// proposal's, or for an addition, the proposal's it added to.
    async fn receipt_of_message(&self, id: i64) -> Result<Option<String>, StoreError>;

    /// The stored message with this Message-ID (without angle brackets).
    async fn inbound_with_message_id(&self, message_id: &str) -> Result<Option<i64>, StoreError>;

    /// How many proposals `address` has waiting for confirmation since `since`.
    async fn pending_count(&self, address: &str, since: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn pending(&self, token_hash: &str) -> Result<Option<Pending>, StoreError>;

    /// Records the stored message a confirmed proposal became.
    async fn pending_confirmed(&self, token_hash: &str, inbound_id: i64) -> Result<(), StoreError>;

    /// Counts for /metrics: proposals by the source of their message, and
    /// stored messages by what intake made of them.
    async fn proposals_by_source(&self) -> Result<Vec<(String, i64)>, StoreError>;
    async fn inbound_by_outcome(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// The proposals a CSO sent to a consultation, oldest first.
    async fn sent_proposals(
        &self,
        consultation_id: i64,
        cso_id: i64,
    ) -> Result<Vec<SentProposal>, StoreError>;
}

/// What the scheduled jobs need: invitees, digests and their watermarks,
/// closing a consultation with its notices, what the POC's summary reports.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// The addresses a consultation's invitations went to, and with
    /// `sent_only` false also those still waiting to go (never those
    /// cancelled), one row per CSO and address.
    async fn invitees(
        &self,
        consultation_id: i64,
        sent_only: bool,
    ) -> Result<Vec<Invitee>, StoreError>;

    /// Each CSO's receipt numbers for a consultation, oldest first.
    async fn receipts_by_cso(&self, consultation_id: i64)
    -> Result<Vec<(i64, String)>, StoreError>;

    /// Closes a consultation, all in one transaction: its state (and `spec`,
    /// whose deadline an early close moves, recorded as `change`), the
    /// cancelling of its bulk mail still queued (invitations, reminders,
    /// notices; `why` is kept with each), then `notices` queued. Returns
    /// (messages cancelled, notices queued).
    async fn close_consultation(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        change: Option<&DeadlineExtension>,
        why: &str,
        notices: &[NewMessage],
    ) -> Result<(u64, u64), StoreError>;

    /// Saves an edited consultation and queues the notices of the change
    /// (a moved meeting) in one transaction; returns how many were new.
    async fn update_with_notices(
        &self,
        id: i64,
        spec: &ConsultationSpec,
        notices: &[NewMessage],
    ) -> Result<u64, StoreError>;

    /// Up to when an LFP's last digest reached; None before its first.
    async fn digest_watermark(&self, lfp: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Queues LFPs' digests and moves each LFP's watermark from `previous`
    /// to `through`, in one transaction, each only if its watermark is
    /// still at `previous`: false for a digest another run (a second
    /// daemon) made first, and then nothing of it is queued.
    async fn queue_digests(&self, digests: &[DigestWrite<'_>]) -> Result<Vec<bool>, StoreError>;

    /// What a digest lists for some consultations.
    async fn digest_data(&self, q: &DigestQuery<'_>) -> Result<DigestData, StoreError>;

    /// The start of the texts of `consultation_id`'s proposals that arrived
    /// in (since, through], by id: what a digest looks for campaigns in.
    async fn window_texts(
        &self,
        consultation_id: i64,
        since: Option<DateTime<Utc>>,
        through: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError>;

    /// Invited and replied organisations of a consultation.
    async fn reply_count(&self, consultation_id: i64) -> Result<ReplyCount, StoreError>;

    /// Records how a proposal was considered; false if no proposal has that
    /// receipt number.
    async fn record_disposition(
        &self,
        receipt_no: &str,
        disposition: &str,
    ) -> Result<bool, StoreError>;

    /// Messages deferred after a failed attempt, soonest retry first.
    async fn deferred(&self, limit: u32) -> Result<Vec<Deferred>, StoreError>;

    /// Messages of `kind` sent since `since`.
    async fn sent_since(&self, kind: &str, since: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Review, dispositions and their audit log, publication, and sign-in.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Proposals with their CSO, follow-up count and disposition, oldest
    /// first: of one consultation, or of all.
    async fn review_proposals(
        &self,
        consultation_id: Option<i64>,
    ) -> Result<Vec<ReviewProposal>, StoreError>;

    async fn review_proposal(&self, receipt_no: &str)
    -> Result<Option<ReviewProposal>, StoreError>;

    /// A proposal's follow-ups, oldest first.
    async fn follow_ups_of(&self, proposal_id: i64) -> Result<Vec<FollowUpRecord>, StoreError>;

    /// What we sent about a proposal: its receipts and those of its
    /// follow-ups (`follow_up_messages` are their stored messages' ids).
    async fn sent_about(
        &self,
        receipt_no: &str,
        follow_up_messages: &[i64],
    ) -> Result<Vec<SentRecord>, StoreError>;

    /// Records decisions, all or nothing, logging each change as made by
    /// `actor`. A proposal of a published consultation is changed only when
    /// `may_correct` (the POC), and each such change is a correction.
    async fn decide(
        &self,
        writes: &[DispositionWrite],
        actor: &str,
        may_correct: bool,
    ) -> Result<Decided, StoreError>;

    /// The audit log, newest first: of one consultation, or of all.
    async fn disposition_log(
        &self,
        consultation_id: Option<i64>,
    ) -> Result<Vec<LogEntry>, StoreError>;

    /// Corrections whose notices are not queued yet.
    async fn untold_corrections(&self) -> Result<Vec<LogEntry>, StoreError>;

    /// Queues a correction's notices and marks it told, in one transaction.
    async fn tell_correction(&self, log_id: i64, notices: &[NewMessage]) -> Result<(), StoreError>;

    async fn publications(&self) -> Result<Vec<Publication>, StoreError>;

    /// Publishes a consultation's results and queues its outcome notices in
    /// one transaction; false (and nothing queued) when it was published
    /// already.
    async fn publish(
        &self,
        consultation_id: i64,
        actor: &str,
        notices: &[NewMessage],
    ) -> Result<bool, StoreError>;

    /// Marks a proposal as disowned by its CSO; false if it was already.
    async fn disown(&self, receipt_no: &str) -> Result<bool, StoreError>;

    async fn insert_sign_in_link(
        &self,
        token_hash: &str,
        address: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Sign-in links made for `address` since `since` (the rate limit).
    async fn sign_in_links_since(
        &self,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Uses a link: its address, if it exists, is unused and unexpired;
    /// it can never be used again.
    async fn use_sign_in_link(&self, token_hash: &str) -> Result<Option<String>, StoreError>;

    async fn insert_session(
        &self,
        id_hash: &str,
        address: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A live session's address.
    async fn session(&self, id_hash: &str) -> Result<Option<String>, StoreError>;

    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError>;
}

/// Everything cocreate keeps, by domain: each part is its own trait so that
/// its queries live in one file (store/sql/), and `Store` is all of them (a
/// `dyn Store` offers every part's methods).
#[async_trait]
pub trait Store:
    RegistryStore
    + ConsultationStore
    + OutboxStore
    + InboundStore
    + WebStore
    + ScheduleStore
    + ReviewStore
    + Send
    + Sync
    + 'static
{
    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Where the store reads "now" when it records a time; the App shares
    /// it, so moving one moves both.
    fn clock(&self) -> &crate::clock::Clock;

    /// Succeeds when the database takes a (one-row) write.
    async fn probe_write(&self) -> Result<(), StoreError>;
}

/// Opens the store the config names and brings its schema up to date.
pub async fn open(config: &DatabaseConfig) -> Result<Arc<dyn Store>, StoreError> {
    let url = config.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open_with(url, config.sqlite_memory()).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::open(url, config.password().as_deref(), config.max_connections).await?,
        ))
    } else {
        Err(StoreError::UnknownBackend)
    }
}

/// Whether the database the config names can be opened, without changing
/// it: an existing SQLite file is opened read-only, a missing one's folder
/// must take a file, a PostgreSQL server must answer. Says how its schema
/// stands against this version's migrations.
pub async fn check(config: &DatabaseConfig) -> Result<String, StoreError> {
    let url = config.url.as_str();
    if url.starts_with("sqlite:") {
        SqliteStore::check(url).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        PostgresStore::check(url, config.password().as_deref()).await
    } else {
        Err(StoreError::UnknownBackend)
    }
}

/// How a database's applied migrations compare with this version's.
fn schema_state(applied: Option<i64>, known: usize) -> String {
    match applied {
        None => "opens; empty: its tables are created at start".into(),
        Some(n) if n as usize >= known => "opens; its schema is up to date".into(),
        Some(n) => format!(
            "opens; {} schema change(s) are applied at start",
            known - n as usize
        ),
    }
}

pub use crate::config::redact;

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            super::redact("postgres://u:secret@db:5432/x?sslmode=require"),
            "postgres://u:***@db:5432/x?sslmode=require"
        );
        assert_eq!(super::redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(super::redact("sqlite:data/c.db"), "sqlite:data/c.db");
    }
}
