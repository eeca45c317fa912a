//! Exactly once behind a slow relay: two senders share one outbox while
//! the relay takes 1.5 s a message, so a sender's pass lasts longer than its
//! claim's lease. A sender must never send a message whose claim it no
//! longer holds: the claim is renewed while messages wait in hand, so the
//! other sender cannot take them over and send them too.
//!
//! Scaled from 2,000 invitations and the default 300 s lease to 200 and
//! 10 s: with the rate limit's default (20 a second) a sender claims 100
//! at a time, which a relay at 1.5 s a message over 8 connections takes
//! about 19 s to accept, nearly twice the lease. The second sender starts
//! after the first's lease has run out, while the first still holds half
//! its claim unsent: without renewal it took those over (and both sent
//! them).

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Daemon, SmtpSink, TestDb, cocreate, stdout};

const INVITATIONS: usize = 200;
const LEASE_SECONDS: u64 = 10;
const RELAY_SECONDS: f64 = 1.5;

/// The second sender's environment (besides the relay's): default rate and
/// concurrency, the scaled lease.
fn env(sink: &SmtpSink) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = sink
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "COCREATE_OUTBOX_RATE_PER_SECOND")
        .collect();
    env.push(("COCREATE_OUTBOX_CLAIM_SECONDS", LEASE_SECONDS.to_string()));
    env
}

/// Which process is the second sender.
#[derive(Clone, Copy)]
enum Second {
    /// Another `cocreate serve` on the same database.
    Daemon,
    /// `cocreate outbox flush` beside the daemon.
    Flush,
}

/// Starts the first sender (a daemon), waits until the relay has accepted
/// its first message and then until its lease has run out, and starts the
/// second; then waits until all is sent and counts, for each recipient, how
/// many times the relay received its invitation.
fn two_senders(db: &TestDb, second: Second) {
    let sink = SmtpSink::start_slow(RELAY_SECONDS);
    let dir = tempfile::tempdir().unwrap();
    common::queue_invitations(dir.path(), db, INVITATIONS, "OGP-SLOW");
    let env = env(&sink);

    let first = Daemon::start_with(dir.path(), db, &env, &[]);
    let start = Instant::now();
    while sink.count() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sending never got going"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(LEASE_SECONDS + 2));
    let (other, mut flush): (Option<Daemon>, Option<Child>) = match second {
        Second::Daemon => (Some(Daemon::start_with(dir.path(), db, &env, &[])), None),
        Second::Flush => {
            let mut cmd = common::command(dir.path(), db);
            cmd.envs(env.iter().map(|(k, v)| (k, v)))
                .args(["outbox", "flush"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            (None, Some(cmd.spawn().expect("start outbox flush")))
        }
    };

    let start = Instant::now();
    loop {
        let status = stdout(&cocreate(dir.path(), db, &["outbox", "status"]));
        if status.starts_with(&format!(
            "Queued 0, sending 0, sent {INVITATIONS}, failed 0."
        )) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "not all sent: {status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Some(child) = flush.as_mut() {
        let status = common::wait_with_timeout(child, Duration::from_secs(60));
        assert!(status.success(), "outbox flush failed");
    }
    for daemon in [Some(first), other].into_iter().flatten() {
        let (status, _) = daemon.stop(libc::SIGTERM);
        assert!(status.success());
    }

    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for d in sink.messages() {
        for r in d.rcpt_tos {
            *per_recipient.entry(r).or_default() += 1;
        }
    }
    let duplicates: usize = per_recipient.values().map(|n| n - 1).sum();
    eprintln!("{duplicates} of {INVITATIONS} invitations delivered twice");
    assert_eq!(per_recipient.len(), INVITATIONS, "every invitation arrived");
    assert_eq!(duplicates, 0, "no invitation is delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd) and PostgreSQL (COCREATE_TEST_POSTGRES_URL)"]
async fn two_daemons_on_postgres_behind_a_slow_relay_send_each_invitation_once() {
    let db = TestDb::postgres()
        .await
        .unwrap_or_else(|| panic!("{} must name a PostgreSQL server", common::POSTGRES_ENV));
    tokio::task::spawn_blocking(move || two_senders(&db, Second::Daemon))
        .await
        .unwrap();
}

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn serve_and_outbox_flush_on_sqlite_behind_a_slow_relay_send_each_invitation_once() {
    two_senders(&TestDb::sqlite(), Second::Flush);
}
