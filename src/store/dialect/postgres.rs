//! PostgreSQL, for deployments where several cocreate daemons share one
//! database (which can itself be replicated).
//!
//! Bulk writes send whole columns as arrays and UNNEST them on the server:
//! one round trip for a chunk of thousands of rows instead of one per row.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::TransactionManager;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Transaction};

use super::Dialect;
use crate::store::records::{Cso, CsoRecord, RegistryChanges};
use crate::store::sql::SqlStore;
use crate::store::sql::registry::{CsoRow, fields_column};
use crate::store::{StoreError, redact};

/// PostgreSQL, for several daemons on one database.
pub struct Postgres;

#[async_trait]
impl Dialect for Postgres {
    type DB = sqlx::Postgres;

    fn param(n: usize) -> String {
        format!("${n}")
    }

    // Several daemons may claim at once: each skips the rows another has
    // locked, and a plain BEGIN is enough for that.
    // Imports only read and write organisations, so one waits for the
    // other to commit and then reads what it wrote; readers go on.
    const LOCK_REGISTRY: &'static str = "LOCK TABLE csos IN SHARE ROW EXCLUSIVE MODE";
    const CLAIM_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";
    const BEGIN_WRITE: &'static str = "BEGIN";
    const BLOB: &'static str = "BYTEA";
    const EMAILS_OF_CSO: &'static str = "SELECT string_agg(address, E'\\n' ORDER BY position) FROM cso_emails e WHERE e.cso_id = c.id";

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn find_registered(
        tx: &mut Transaction<'_, Self::DB>,
        registration_nos: &[&str],
    ) -> Result<Vec<Cso>, StoreError> {
        let rows: Vec<CsoRow> = sqlx::query_as(&format!(
            "SELECT c.id, c.registration_no, c.name, c.phone, c.city, c.fields_of_activity, \
             c.language, c.active, c.updated_at, ({}) AS emails FROM csos c \
             WHERE c.registration_no = ANY($1)",
            Self::EMAILS_OF_CSO
        ))
        .bind(registration_nos)
        .fetch_all(&mut **tx)
        .await?;
        rows.into_iter().map(CsoRow::into_cso).collect()
    }

    async fn active_cso_ids(tx: &mut Transaction<'_, Self::DB>) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM csos WHERE active ORDER BY id")
                .fetch_all(&mut **tx)
                .await?,
        )
    }

    async fn apply_registry_changes(
        tx: &mut Transaction<'_, Self::DB>,
        changes: &RegistryChanges,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        // Rows per UNNEST statement: large enough to amortise the round
        // trip, small enough to keep each statement's memory modest.
        const ROWS_PER_STATEMENT: usize = 10_000;

        // New organisations go in by COPY, PostgreSQL's bulk load. COPY
        // gives nothing back, so the ids are given here, after the largest
        // there is (imports take turns: `LOCK_REGISTRY`), and the column's
        // sequence is moved past them.
        let added: Vec<i64> = if changes.added.is_empty() {
            Vec::new()
        } else {
            let largest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM csos")
                .fetch_one(&mut **tx)
                .await?;
            let ids: Vec<i64> = (largest + 1..).take(changes.added.len()).collect();
            sqlx::query("SELECT setval(pg_get_serial_sequence('csos', 'id'), $1)")
                .bind(ids[ids.len() - 1])
                .execute(&mut **tx)
                .await?;
            ids
        };
        if !added.is_empty() {
            let at = now.to_rfc3339();
            let mut rows = String::with_capacity(changes.added.len() * 200);
            for (id, r) in added.iter().zip(&changes.added) {
                copy_row(
                    &mut rows,
                    &[
                        Some(&id.to_string()),
                        Some(r.registration_no.as_str()),
                        Some(&r.name),
                        r.phone.as_deref(),
                        r.city.as_deref(),
                        Some(&fields_column(r)),
                        Some(r.language.code()),
                        Some(&at),
                        Some(&at),
                    ],
                );
            }
            copy_in(
                tx,
                "COPY csos (id, registration_no, name, phone, city, fields_of_activity, language, \
                 created_at, updated_at) FROM STDIN",
                rows,
            )
            .await?;
        }
        let mut emails: Vec<(i64, &CsoRecord)> =
            added.iter().copied().zip(&changes.added).collect();

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
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM cso_emails WHERE cso_id = ANY($1)")
                .bind(&ids)
                .execute(&mut **tx)
                .await?;
            emails.extend(chunk.iter().map(|(id, r)| (*id, r)));
        }

        if !emails.is_empty() {
            let mut rows = String::with_capacity(emails.len() * 40);
            for (id, r) in &emails {
                let id = id.to_string();
                for (position, e) in r.emails.iter().enumerate() {
                    let position = position.to_string();
                    copy_row(&mut rows, &[Some(&id), Some(&position), Some(e.as_str())]);
                }
            }
            copy_in(
                tx,
                "COPY cso_emails (cso_id, position, address) FROM STDIN",
                rows,
            )
            .await?;
        }

        if !changes.inactivated.is_empty() {
            sqlx::query(
                "UPDATE csos SET active = FALSE, inactivated_at = $1, updated_at = $1 WHERE id = ANY($2)",
            )
            .bind(now)
            .bind(&changes.inactivated)
            .execute(&mut **tx)
            .await?;
        }
        Ok(added)
    }
}

/// The error of a failed connection, the URL's password hidden.
fn open_error(url: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        target: redact(url),
        source,
    }
}

/// The connection options of `url`; `password`, from the environment,
/// takes precedence over one in the URL.
fn connect_options(url: &str, password: Option<&str>) -> Result<PgConnectOptions, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(open_error(url))?;
    Ok(match password {
        Some(password) => options.password(password),
        None => options,
    })
}

impl SqlStore<Postgres> {
    /// See [`crate::store::check`].
    pub async fn check(url: &str, password: Option<&str>) -> Result<String, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(connect_options(url, password)?)
            .await
            .map_err(open_error(url))?;
        let table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&pool)
                .await?;
        let applied = match table {
            Some(_) => Some(
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&pool)
                    .await?,
            ),
            None => None,
        };
        let known = sqlx::migrate!("migrations/postgres").migrations.len();
        Ok(super::super::schema_state(applied, known))
    }

    /// Connects to the database named by a `postgres://` URL and applies
    /// migrations/postgres. `password`, from the environment, takes precedence
    /// over one in the URL.
    pub async fn open(
        url: &str,
        password: Option<&str>,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let open_err = open_error(url);
        let options = connect_options(url, password)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            // A connection sqlx still counts inside a transaction (its
            // ROLLBACK failed) is closed rather than reused; see the SQLite
            // write pool.
            .after_release(|conn, _| {
                Box::pin(async move {
                    Ok(<sqlx::Postgres as sqlx::Database>::TransactionManager::get_transaction_depth(conn) == 0)
                })
            })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self::new(pool.clone(), pool))
    }

    /// The pool, for tests that inspect the schema directly.
    pub fn pool(&self) -> &PgPool {
        &self.read
    }
}

/// Appends one row in COPY's text format: a tab between columns, `\N` for
/// NULL, and a backslash, tab, newline or carriage return in a value
/// escaped.
fn copy_row(out: &mut String, values: &[Option<&str>]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        let Some(value) = value else {
            out.push_str("\\N");
            continue;
        };
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    }
    out.push('\n');
}

/// Sends `rows` (COPY's text format) to `statement`, a COPY … FROM STDIN.
async fn copy_in(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    statement: &str,
    rows: String,
) -> Result<(), StoreError> {
    let mut copy = tx.copy_in_raw(statement).await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
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
            c.fields.push(fields_column(r));
            c.languages.push(r.language.code());
        }
        c
    }
}
