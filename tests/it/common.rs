//! Shared by the integration tests: fresh databases, the cocreate binary,
//! and registry files written the way registry offices write them.
#![allow(dead_code)] // each test binary uses a different part of this file

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

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

    /// A SQLite database in `dir` (which the caller keeps and removes).
    pub fn sqlite_in(dir: &Path) -> Self {
        Self {
            url: format!("sqlite:{}", dir.join("cocreate.db").display()),
            _dir: None,
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
            sqlite_cache_mib: 16,
            sqlite_mmap_mib: 0,
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

/// Runs cocreate, asserts it succeeded, and returns what it printed.
pub fn ok(dir: &Path, db: &TestDb, args: &[&str]) -> String {
    let out = cocreate(dir, db, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

pub fn command(dir: &Path, db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocreate"));
    cmd.current_dir(dir)
        .env_remove("COCREATE_CONFIG")
        .env("COCREATE_DATABASE_URL", &db.url)
        .env("COCREATE_LOG_FORMAT", "json")
        .env(CLOCK_OFFSET_ENV, suite_clock_offset().to_string());
    cmd
}

/// Moves the clock of the binary under test.
pub const CLOCK_OFFSET_ENV: &str = "COCREATE_TEST_CLOCK_OFFSET_SECONDS";

/// When the suite's fixtures happen: their consultations open on
/// 2026-12-01 and close on 2027-01-11, so every run of cocreate sees the
/// same day whatever day the suite runs on.
pub const SUITE_NOW: &str = "2026-12-02T09:00:00+01:00";

/// The clock offset that makes now `SUITE_NOW` at the suite's start: one
/// offset for the whole test binary, so time still runs forward from one
/// command to the next. A test that sets the variable itself wins.
pub fn suite_clock_offset() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| offset_to(SUITE_NOW))
}

/// The clock offset, in seconds, that makes now read `when` (RFC 3339).
pub fn offset_to(when: &str) -> i64 {
    let at = chrono::DateTime::parse_from_rfc3339(when).expect("an RFC 3339 time");
    // Rounded up, so the command never starts before `when`.
    let ms = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0)
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

/// A running daemon, its address, and the log lines it has written.
pub struct Daemon {
    pub addr: SocketAddr,
    child: Child,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

/// A test that fails half-way must not leave its daemon running.
impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    pub fn start(dir: &Path, db: &TestDb, args: &[&str]) -> Self {
        Self::start_with(dir, db, &[], args)
    }

    /// Starts `cocreate serve ARGS` with extra environment variables.
    pub fn start_with(dir: &Path, db: &TestDb, env: &[(&str, String)], args: &[&str]) -> Self {
        let mut cmd = command(dir, db);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .env("COCREATE_SERVER_LISTEN", "127.0.0.1:0")
            .arg("serve")
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start cocreate serve");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = log
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no 'listening' line; log so far: {seen:#?}"));
            let event: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
            seen.push(line.clone());
            if let Some(local) = event.get("local").and_then(|v| v.as_str()) {
                break local.parse().unwrap();
            }
        };
        Self {
            child,
            addr,
            log,
            seen,
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, "")
    }

    /// POSTs a form body, as a browser or a mail client's one-click does.
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.request("POST", path, body)
    }

    /// POSTs with extra headers.
    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        self.request_with("POST", path, body, &extra)
    }

    /// One request with the given headers and body; the status, the
    /// response's header block and its body.
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        // A server may answer (413) before reading a large body.
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response[9..12].parse().unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (status, head.to_string(), body.to_string())
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.request_with(method, path, body, "")
    }

    fn request_with(&self, method: &str, path: &str, body: &str, extra: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    /// The most memory the daemon has held (VmHWM), in kilobytes.
    pub fn peak_memory_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// The log lines written so far.
    pub fn log_so_far(&mut self) -> &[String] {
        self.seen.extend(self.log.try_iter());
        &self.seen
    }

    /// Sends `signal` and returns at once.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits up to `limit` for the daemon to exit; its status.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        wait_with_timeout(&mut self.child, limit)
    }

    /// Sends `signal`, waits for the exit, and returns the status and whole log.
    pub fn stop(mut self, signal: i32) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        self.seen.extend(self.log.try_iter());
        (status, std::mem::take(&mut self.seen))
    }
}

pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("cocreate did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Daemon {
    /// Kills the daemon with SIGKILL: no shutdown, no cleanup.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real SMTP relay (aiosmtpd) on a free port, writing what it accepts to a
/// folder; see tests/support/smtp_sink.py for its deliberate 451s and 550s.
pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

/// One accepted message.
pub struct Delivered {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: Vec<u8>,
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::start_args(&[])
    }

    /// A relay that requires AUTH (any user and password); see [`Self::refuse`].
    pub fn start_with_auth() -> Self {
        Self::start_args(&["--auth"])
    }

    /// A relay that takes `seconds` to accept each message.
    pub fn start_slow(seconds: f64) -> Self {
        Self::start_args(&["--delay", &seconds.to_string()])
    }

    /// A relay that accepts mail to `gone…` addresses and bounces it a
    /// moment later, as a delivery report over LMTP to `lmtp_port`.
    pub fn start_bouncing_to(lmtp_port: u16) -> Self {
        Self::start_args(&["--bounce-lmtp", &lmtp_port.to_string()])
    }

    /// Makes the relay refuse `what` ("auth": 535 at AUTH, "sender": 550 at
    /// MAIL FROM) until called again with `on` false.
    pub fn refuse(&self, what: &str, on: bool) {
        let flag = self.dir.path().join(format!("refuse-{what}"));
        if on {
            std::fs::write(flag, b"").unwrap();
        } else {
            std::fs::remove_file(flag).unwrap();
        }
    }

    fn start_args(extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .args([script, &port.to_string(), dir.path().to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd needs /usr/bin/python3 with python3-aiosmtpd installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink did not start: is python3-aiosmtpd installed?"
        );
        Self { port, dir, child }
    }

    /// The environment that points cocreate at this relay.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("COCREATE_OUTBOX_TRANSPORT", "smtp".into()),
            ("COCREATE_SMTP_HOST", "127.0.0.1".into()),
            ("COCREATE_SMTP_PORT", self.port.to_string()),
            ("COCREATE_SMTP_SECURITY", "none".into()),
            ("COCREATE_OUTBOX_RATE_PER_SECOND", "0".into()),
        ]
    }

    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn messages(&self) -> Vec<Delivered> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let meta: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap())
                        .unwrap();
                Delivered {
                    mail_from: meta["mail_from"].as_str().unwrap_or("").to_string(),
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                    raw: std::fs::read(&p).unwrap(),
                }
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port nothing listens on now, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry of `n` organisations working on the budget, and consultation
/// `reference` opened with an invitation to each queued in the outbox.
pub fn queue_invitations(dir: &Path, db: &TestDb, n: usize, reference: &str) {
    let orgs: Vec<(String, String)> = (0..n)
        .map(|i| (format!("Shoqata {i}"), format!("cso{i}@cso.example.org")))
        .collect();
    let orgs: Vec<(&str, &str)> = orgs.iter().map(|(n, e)| (n.as_str(), e.as_str())).collect();
    queue_invitations_to(dir, db, &orgs, reference);
}

/// Organisations `(name, address)` working on the budget, and consultation
/// `reference` opened with an invitation to each queued in the outbox.
pub fn queue_invitations_to(dir: &Path, db: &TestDb, orgs: &[(&str, &str)], reference: &str) {
    let mut csv = String::from("Registration number,Name,Email,Fields of activity\n");
    for (i, (name, email)) in orgs.iter().enumerate() {
        csv.push_str(&format!("K{i:05},{name},{email},Buxhet\n"));
    }
    let registry = write(dir, "r.csv", csv);
    let spec = fiscal_consultation(dir, reference);
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", reference],
        vec!["outreach", "send", reference],
    ] {
        let out = cocreate(dir, db, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
}

/// A consultation file for the FISCAL area with a meeting and one draft.
pub fn fiscal_consultation(dir: &Path, reference: &str) -> PathBuf {
    write(
        dir,
        &format!("{reference}.toml"),
        format!(
            r#"reference = "{reference}"
policy_area = "FISCAL"
opens = 2026-12-01
closes = 2027-01-11
title = {{ sq = "Buxheti i hapur në bashki", en = "Open municipal budgets" }}
description.sq = "Na tregoni çfarë të dhënash buxhetore ju nevojiten."
description.en = "Tell us which budget data you need."

[meeting]
starts = 2026-12-10T10:00:00
duration_minutes = 90
place = "Kryeministria, salla 2"
link = "https://meet.example/ogp-fiscal"

[[drafts]]
title = "Budget data every month"
text = "The ministry publishes budget execution monthly as open data."
"#
        ),
    )
}

/// The first To address of a parsed message.
pub fn first_to(m: &mail_parser::Message<'_>) -> String {
    m.to()
        .and_then(|to| to.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string()
}
