//! The daemon as a POC runs it: `cocreate serve --demo`, its health check,
//! and a clean stop on SIGTERM and SIGINT.

use crate::common;

use crate::common::{Daemon, TestDb, cocreate, command, stdout};
use sqlx::Connection;

fn messages(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn demo_serves_health_and_stops_cleanly_and_a_second_run_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();

    let daemon = Daemon::start(dir.path(), &db, &["--demo"]);
    assert_eq!(
        daemon.get("/healthz"),
        (200, r#"{"status":"ok","unprocessed":0}"#.to_string())
    );
    assert_eq!(daemon.get("/nowhere").0, 404);
    let (status, log) = daemon.stop(libc::SIGTERM);
    assert!(status.success(), "{status:?}\n{log:#?}");
    let said = messages(&log);
    assert!(said.contains(&"demo registry loaded (fictional organisations)".to_string()));
    assert!(
        said.contains(&"SIGTERM received, shutting down".to_string()),
        "{said:?}"
    );
    assert_eq!(said.last().map(String::as_str), Some("stopped cleanly"));
    let first_load = log
        .iter()
        .find(|l| l.contains("demo registry loaded"))
        .unwrap();
    assert!(first_load.contains("\"added\":300"), "{first_load}");

    let daemon = Daemon::start(dir.path(), &db, &["--demo"]);
    let (status, log) = daemon.stop(libc::SIGINT);
    assert!(status.success());
    let second_load = log
        .iter()
        .find(|l| l.contains("demo registry loaded"))
        .unwrap();
    assert!(
        second_load.contains("\"added\":0") && second_load.contains("\"unchanged\":300"),
        "{second_load}"
    );
    assert!(messages(&log).contains(&"SIGINT received, shutting down".to_string()));

    let list = stdout(&cocreate(dir.path(), &db, &["registry", "list"]));
    assert!(
        list.ends_with("300 active organisations, 0 inactive.\n"),
        "{list}"
    );
    assert!(list.contains("(fiktive)") && list.contains("@demo-001.example.org"));
}

#[test]
fn the_demo_refuses_a_database_with_real_organisations() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let file = common::write(dir.path(), "r.csv", common::registry_csv(1, 3));
    cocreate(
        dir.path(),
        &db,
        &["registry", "import", file.to_str().unwrap()],
    );
    let out = command(dir.path(), &db)
        .env("COCREATE_SERVER_LISTEN", "127.0.0.1:0")
        .args(["serve", "--demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).ends_with(
            "error: this database already holds 3 real organisations; the demo only runs on an empty database or one it made itself (set COCREATE_DATABASE_URL to another database)\n"
        ),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn a_taken_port_stops_the_daemon_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = command(dir.path(), &db)
        .env("COCREATE_SERVER_LISTEN", &addr)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("error: cannot listen on {addr}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn health_turns_503_when_the_database_goes_away() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("{} not set: PostgreSQL case not run", common::POSTGRES_ENV);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &db, &[]);
    assert_eq!(daemon.get("/healthz").0, 200);

    let admin = std::env::var(common::POSTGRES_ENV).unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();

    let (status, body) = daemon.get("/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(r#""status":"unavailable""#) && body.contains("the store cannot be written"),
        "{body}"
    );
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());
}

/// Text logs written to a file or a pipe carry no colour codes, and the
/// start says which sources, listeners, transport and schedules are on.
#[test]
fn text_logs_to_a_file_have_no_colour_and_say_what_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let port = common::free_port();
    let child = command(dir.path(), &db)
        .env("COCREATE_LOG_FORMAT", "text")
        .env("COCREATE_SERVER_LISTEN", format!("127.0.0.1:{port}"))
        .args(["serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "serve did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains('\u{1b}'), "escape codes in {log}");
    for line in [
        "off setting=\"lmtp\"",
        "off setting=\"imap\"",
        "(nothing is sent); bulk mail at 20 a second",
        "\"0 8 * * Mon\" in Europe/Tirane setting=\"lfp_digest\"",
        "stopped cleanly",
    ] {
        assert!(log.contains(line), "{line} in {log}");
    }
}
