//! Two lanes in the outbox: a CSO's receipt goes out in seconds even when
//! thousands of invitations are queued ahead of it, paced at the relay's
//! rate.

use std::time::{Duration, Instant};

use crate::common::{self, TestDb, queue_invitations};
use crate::mail_ingest::{receipts, reply, setup};

#[test]
fn a_receipt_is_not_held_behind_five_thousand_rate_limited_invitations() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, invitation_id) = setup(dir.path(), &db);
    // 5,000 invitations queued, not sent: at the default 20 a second they
    // take over four minutes to leave.
    queue_invitations(dir.path(), &db, 5_000, "OGP-BULK");
    let outbox = dir.path().join("outbox");
    let inbox = dir.path().join("inbox");
    let env = [
        ("COCREATE_OUTBOX_FILE_DIR", outbox.display().to_string()),
        ("COCREATE_INBOUND_MAILDIR", inbox.display().to_string()),
    ];
    let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    let invitations = || {
        std::fs::read_dir(&outbox)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with("-invitation.eml")
            })
            .count()
    };
    // The bulk lane is under way before the reply arrives.
    let start = Instant::now();
    while invitations() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no invitation left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    std::fs::create_dir_all(inbox.join("tmp")).unwrap();
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    let raw = reply(&key, &invitation_id, "lane1@cso.example.org", "Propozim.");
    std::fs::write(inbox.join("tmp/1.eml"), raw).unwrap();
    std::fs::rename(inbox.join("tmp/1.eml"), inbox.join("new/1.eml")).unwrap();
    let dropped = Instant::now();
    while receipts(dir.path()).is_empty() {
        assert!(
            dropped.elapsed() < Duration::from_secs(10),
            "no receipt 10 s after the reply, with {} of the invitations sent",
            invitations()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = dropped.elapsed();
    let sent = invitations();
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());
    // One invitation to OGP-IN was sent by setup; the rest are OGP-BULK's,
    // still leaving at the relay's rate.
    assert!(
        sent < 1_000,
        "the receipt left after {waited:?} while the invitations were paced ({sent} sent)"
    );
}
