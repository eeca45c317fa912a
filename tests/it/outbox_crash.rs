//! The outbox survives a crash: SIGKILL the daemon while it sends 2,000
//! invitations through a real relay, start it again, and count what arrived.
//! A message is marked sent only after the relay accepted it, so nothing is
//! lost; what was accepted but not yet marked at the kill is sent again,
//! which is at most the messages that may be unrecorded at once: two a
//! connection (one being sent, one being committed).

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::{Daemon, SmtpSink, TestDb, cocreate, stdout};

const INVITATIONS: usize = 2000;
const CONCURRENCY: usize = 4;
const BOUND: usize = CONCURRENCY * cocreate::outbound::outbox::UNRECORDED_PER_CONNECTION;

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn sigkill_mid_send_loses_nothing_and_duplicates_at_most_two_a_connection() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    common::queue_invitations(dir.path(), &db, INVITATIONS, "OGP-CRASH");

    let mut env = sink.env();
    env.push(("COCREATE_OUTBOX_CONCURRENCY", CONCURRENCY.to_string()));
    // A claim held by a killed daemon is taken over after this long.
    env.push(("COCREATE_OUTBOX_CLAIM_SECONDS", "2".to_string()));

    let daemon = Daemon::start_with(dir.path(), &db, &env, &[]);
    let start = Instant::now();
    while sink.count() < INVITATIONS / 4 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "sending never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.kill();
    let at_kill = sink.count();
    assert!(
        at_kill < INVITATIONS,
        "killed too late to prove anything ({at_kill})"
    );

    let daemon = Daemon::start_with(dir.path(), &db, &env, &[]);
    let start = Instant::now();
    loop {
        let status = stdout(&cocreate(dir.path(), &db, &["outbox", "status"]));
        if status.starts_with("Queued 0, sending 0, sent 2,000, failed 0.") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "not all sent: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());

    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for d in sink.messages() {
        for r in d.rcpt_tos {
            *per_recipient.entry(r).or_default() += 1;
        }
    }
    assert_eq!(per_recipient.len(), INVITATIONS, "every invitation arrived");
    let duplicates: usize = per_recipient.values().map(|n| n - 1).sum();
    eprintln!(
        "killed after {at_kill} of {INVITATIONS} deliveries; {duplicates} delivered twice (bound: {BOUND})"
    );
    assert!(
        duplicates <= BOUND,
        "{duplicates} duplicates, more than the {BOUND} messages that can be unrecorded at once"
    );
}
