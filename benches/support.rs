//! Shared by the benchmarks: run the real binary and read its peak memory.
#![allow(dead_code)] // each bench uses part of this

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A finished process: whether it succeeded, its output, wall time, and its
/// own peak resident set size from wait4(2).
pub struct Finished {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
    pub peak_rss_kb: i64,
    /// CPU time the process used, user and system, in seconds.
    pub cpu_seconds: f64,
}

/// When the benchmarks happen, in office time: after OGP-BENCH opens (on
/// 2026-12-01) and before it closes, whatever the date they are run on.
pub const BENCH_NOW: &str = "2026-12-02T09:00:00+01:00";

/// The release binary under test, its clock set so that the benchmark
/// starts at [`BENCH_NOW`] (a benchmark that sets
/// COCREATE_TEST_CLOCK_OFFSET_SECONDS itself wins). One offset for every
/// process of the run, so that time goes on between them: set afresh for
/// each, `serve` would start at the moment `outreach send` started and
/// find the messages it queued not due yet, for as long as queueing took.
pub fn cocreate() -> Command {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let offset = *OFFSET.get_or_init(|| {
        let at = chrono::DateTime::parse_from_rfc3339(BENCH_NOW).unwrap();
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
    });
    // BENCH_COCREATE names another build (the code before a change, built
    // beside it) to measure with the same harness in the same sitting.
    let binary =
        std::env::var_os("BENCH_COCREATE").unwrap_or_else(|| env!("CARGO_BIN_EXE_cocreate").into());
    let mut cmd = Command::new(binary);
    cmd.env("COCREATE_TEST_CLOCK_OFFSET_SECONDS", offset.to_string());
    cmd
}

/// `cocreate serve` in `dir` with `env`, its output dropped; the caller
/// stops it (SIGTERM, then [`reap`]).
pub fn serve(dir: &std::path::Path, env: &[(&str, String)]) -> Child {
    let mut cmd = cocreate();
    cmd.current_dir(dir)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start cocreate serve")
}

/// Waits until something listens on 127.0.0.1:`port`; `what` did not
/// start if nothing does within `limit`.
pub fn wait_for_port(port: u16, limit: Duration, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < limit, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cocreate ARGS` with `env` and measures it.
pub fn run(dir: &std::path::Path, env: &[(&str, String)], args: &[&str]) -> Finished {
    let start = Instant::now();
    let mut cmd = cocreate();
    cmd.current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start cocreate");
    reap(child, start)
}

/// Reads the child's pipes to the end, then reaps it with wait4 for its
/// rusage (ru_maxrss is in kilobytes on Linux).
pub fn reap(mut child: Child, start: Instant) -> Finished {
    let pid = child.id() as i32;
    let mut err_pipe = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let mut stdout = String::new();
    if let Some(mut p) = child.stdout.take() {
        let _ = p.read_to_string(&mut stdout);
    }
    let stderr = err_thread.join().unwrap();
    let mut status = 0;
    // SAFETY: plain FFI with pointers to locals; pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    Finished {
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
        stderr,
        seconds: start.elapsed().as_secs_f64(),
        peak_rss_kb: usage.ru_maxrss,
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    }
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Each run's figure, whole, separated by spaces: "2566 2396 2837".
pub fn each_run(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A PostgreSQL database `name` on the server `admin` names, dropped first
/// (with whoever is connected), created again when `create`; its URL.
pub async fn postgres_database(admin: &str, name: &str, create: bool) -> String {
    use sqlx::Connection;
    use std::str::FromStr;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("COCREATE_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    if create {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let opts = sqlx::postgres::PgConnectOptions::from_str(admin).unwrap();
    format!(
        "postgres://{}@{}:{}/{name}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port()
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The consultation the benchmarks invite to and reply to: OGP-BENCH in the
/// FISCAL area, with a meeting and one draft; its file's path.
pub fn bench_consultation(dir: &std::path::Path) -> std::path::PathBuf {
    let spec = dir.join("c.toml");
    std::fs::write(
        &spec,
        r#"reference = "OGP-BENCH"
policy_area = "FISCAL"
opens = 2026-12-01
closes = 2027-01-11
title = { sq = "Buxheti i hapur në bashki", en = "Open municipal budgets" }
description.sq = "Na tregoni çfarë të dhënash buxhetore ju nevojiten dhe si duhet të publikohen."
description.en = "Tell us which budget data you need and how it should be published."
[meeting]
starts = 2026-12-10T10:00:00
place = "Kryeministria, salla 2"
link = "https://meet.example/ogp-fiscal"
[[drafts]]
title = "Budget data every month"
text = "The ministry publishes budget execution monthly as open data."
"#,
    )
    .unwrap();
    spec
}

/// A local SMTP server that accepts and drops every message: Postfix's
/// smtp-sink when installed (Debian postfix), else the aiosmtpd relay of
/// the tests. Stopped when dropped.
pub struct Sink {
    pub name: &'static str,
    pub port: u16,
    child: std::process::Child,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_sink(dir: &std::path::Path) -> Sink {
    let port = free_port();
    let smtp_sink = std::path::Path::new("/usr/sbin/smtp-sink");
    let (name, child) = if smtp_sink.exists() {
        // -u: drop root after binding; backlog 256.
        let child = Command::new(smtp_sink)
            .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "256"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        ("postfix smtp-sink", child)
    } else {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let child = Command::new("/usr/bin/python3")
            .args([
                script,
                &port.to_string(),
                dir.join("sink").to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the aiosmtpd sink");
        ("aiosmtpd", child)
    };
    wait_for_port(port, Duration::from_secs(10), name);
    Sink { name, port, child }
}

/// Runs per measurement: `BENCH_RUNS` if set (a quick look, or more for a
/// steadier median), else `default`.
pub fn runs(default: usize) -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
