//! Shared by the integration tests: fresh databases, the cocreate binary,
//! and registry files written the way registry offices write them.
#![allow(dead_code)] // each test binary uses a different part of this file

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use cocreate::config::DatabaseConfig;
use cocreate::store::{self, Store};
use sqlx::Connection;

/// The variable that turns on the PostgreSQL half of the suites. Once set,
/// an unreachable server fails the test instead of skipping it.
pub const POSTGRES_ENV: &str = "COCREATE_TEST_POSTGRES_URL";

/// A database for one test, removed afterwards.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>, // (admin url, database name)
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("cocreate.db").display());
        Self {
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A new, empty PostgreSQL database on the server named by
    /// COCREATE_TEST_POSTGRES_URL, or None when that is not set.
    pub async fn postgres() -> Option<Self> {
        let admin = std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty())?;
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "cocreate_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rand_suffix()
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("{POSTGRES_ENV} is set to {admin} but PostgreSQL cannot be reached: {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let opts = sqlx::postgres::PgConnectOptions::from_str(&admin).expect("valid url");
        let url = format!(
            "postgres://{}@{}:{}/{name}",
            opts.get_username(),
            opts.get_host(),
            opts.get_port()
        );
        Some(Self {
            url,
            _dir: None,
            postgres: Some((admin, name)),
        })
    }

    pub fn database_config(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: self.url.clone(),
            password_env: None,
            max_connections: 8,
        }
    }

    pub async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.database_config())
            .await
            .expect("open the test store")
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) % 1_000_000
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async; a small runtime of its own does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The cocreate binary, run in `dir` (so it uses the built-in config unless
/// the test writes one) against `db`.
pub fn cocreate(dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    command(dir, db).args(args).output().expect("run cocreate")
}

pub fn command(dir: &Path, db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocreate"));
    cmd.current_dir(dir)
        .env_remove("COCREATE_CONFIG")
        .env("COCREATE_DATABASE_URL", &db.url)
        .env("COCREATE_LOG_FORMAT", "json");
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `name` in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// A registry export of `n` organisations, numbered from `first`.
pub fn registry_csv(first: usize, n: usize) -> String {
    let mut s =
        String::from("Registration number,Name,Email,Phone,City,Fields of activity,Language\n");
    for i in first..first + n {
        s.push_str(&format!(
            "REG-{i:06},Shoqata Nr. {i} për Transparencë,info{i}@shoqata{i}.org.al,+355 00 000 {i},Korçë,\"Transparencë; Buxhet\",{}\n",
            if i % 5 == 0 { "en" } else { "sq" }
        ));
    }
    s
}
