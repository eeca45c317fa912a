//! Taking in 1,000 replies from a maildir while the process is killed
//! (SIGKILL) at arbitrary points, again and again, then letting it finish:
//! each reply is stored once, each proposal made once, each receipt queued
//! once.

use crate::common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{TestDb, cocreate, fiscal_consultation, write};
use sqlx::Connection;

const REPLIES: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_each_reply_proposal_and_receipt_exists_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let mut csv = String::from("Registration number,Name,Email,Fields of activity\n");
    for i in 0..REPLIES {
        csv.push_str(&format!(
            "K{i:04},Shoqata {i},cso{i}@cso.example.org,Buxhet\n"
        ));
    }
    let registry = write(dir.path(), "r.csv", csv);
    let spec = fiscal_consultation(dir.path(), "OGP-KILL");
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-KILL"],
    ] {
        assert!(
            cocreate(dir.path(), &db, &args).status.success(),
            "{args:?}"
        );
    }
    // Registered senders with one open consultation: routed by sender.
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    for i in 0..REPLIES {
        std::fs::write(
            inbox.join(format!("new/{i:04}.eml")),
            format!(
                "From: cso{i}@cso.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Propozim {i}\r\nMessage-ID: <r{i}@cso.example.org>\r\n\r\nPropozimi nr. {i}: buxhet i hapur.\r\n"
            ),
        )
        .unwrap();
    }

    // Kill at varying points until a run finishes on its own.
    let mut kills = 0;
    for attempt in 0.. {
        let mut child = common::command(dir.path(), &db)
            .args(["mail", "ingest", "--maildir", inbox.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // 150 ms to 2 s: somewhere in starting, storing, routing,
        // committing or moving (a debug build spends its first 0.2 s or so
        // starting, more on a loaded machine).
        let wait = Duration::from_millis(150 + (attempt * 271) % 1850);
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        assert!(attempt < 200, "never finished");
    }
    eprintln!("killed {kills} times before a run finished");
    assert!(
        kills >= 2,
        "the runs were too quick to be interrupted; nothing was proven"
    );

    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    // Messages stored but not processed (a kill between the two) are
    // processed by the next start of serve; do that now through serve's
    // own code path.
    let pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inbound_messages WHERE state = 'received'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    eprintln!("{pending} messages were stored but not processed when a run was killed");
    if pending > 0 {
        // serve processes them before it starts listening.
        let daemon = common::Daemon::start(dir.path(), &db, &[]);
        let (status, _) = daemon.stop(libc::SIGTERM);
        assert!(status.success());
    }

    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound_messages")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let proposals: Vec<(String,)> = sqlx::query_as("SELECT from_address FROM proposals")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let receipts: Vec<(String,)> =
        sqlx::query_as("SELECT recipient FROM outbox WHERE kind = 'receipt'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let distinct = |v: &[(String,)]| v.iter().map(|(a,)| a.clone()).collect::<HashSet<_>>().len();
    assert_eq!(stored as usize, REPLIES, "each reply stored once");
    assert_eq!(
        (proposals.len(), distinct(&proposals)),
        (REPLIES, REPLIES),
        "each proposal once"
    );
    assert_eq!(
        (receipts.len(), distinct(&receipts)),
        (REPLIES, REPLIES),
        "each receipt once"
    );
    assert_eq!(std::fs::read_dir(inbox.join("new")).unwrap().count(), 0);
}
