//! Bounces come back to cocreate. Each message leaves with its own signed
//! bounce address as envelope sender; a real relay (aiosmtpd) accepts an
//! invitation, fails to deliver it later and sends its delivery report to
//! that address over LMTP, as a mail server hands cocreate its mail. The
//! report names no reply key of ours: only the bounce address says which
//! message, so which CSO address, failed. Forged reports change nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{
    self, Daemon, SmtpSink, TestDb, cocreate, queue_invitations_to, stdout, write,
};

const GONE: &str = "gone-arta@cso.example.org";
const STAYS: &str = "stays@cso.example.org";

fn lmtp(port: u16, to: &str, data: &Path) -> String {
    let out = std::process::Command::new("swaks")
        .args(["--protocol", "LMTP", "--server", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--from", "<>", "--to", to, "--data"])
        .arg(data)
        .arg("--hide-informational")
        .output()
        .expect("swaks (Debian package swaks) must be installed");
    stdout(&out)
}

fn addresses(dir: &Path, db: &TestDb) -> String {
    stdout(&cocreate(dir, db, &["registry", "addresses"]))
}

/// A report as a relay writes it, about `recipient`, to `to`.
fn report(to: &str, recipient: &str) -> String {
    format!(
        "From: MAILER-DAEMON@relay.example\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <forged-{}@relay.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n",
        to.len()
    )
}

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd) and swaks"]
fn a_relays_later_report_marks_exactly_that_address_and_forgeries_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    queue_invitations_to(
        dir.path(),
        &db,
        &[("Arta Org", GONE), ("Stays Org", STAYS)],
        "OGP-VERP",
    );

    let lmtp_port = common::free_port();
    let sink = SmtpSink::start_bouncing_to(lmtp_port);
    let mut env = sink.env();
    env.push((
        "COCREATE_INBOUND_LMTP_LISTEN",
        format!("127.0.0.1:{lmtp_port}"),
    ));
    let mut daemon = Daemon::start_with(dir.path(), &db, &env, &[]);

    // The relay accepts both invitations, each from its own bounce address,
    // then reports one undelivered.
    let started = Instant::now();
    while !addresses(dir.path(), &db).contains(GONE) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no bounce recorded; the relay saw {} messages",
            sink.count()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let delivered = sink.messages();
    assert_eq!(delivered.len(), 2);
    let from_of = |to: &str| {
        delivered
            .iter()
            .find(|d| d.rcpt_tos == [to])
            .map(|d| d.mail_from.clone())
            .unwrap()
    };
    let (gone_from, stays_from) = (from_of(GONE), from_of(STAYS));
    for from in [&gone_from, &stays_from] {
        assert!(
            from.starts_with("bounce+") && from.ends_with("@ogp.office.example"),
            "{from}"
        );
    }
    assert_ne!(gone_from, stays_from, "each message has its own address");
    let marked = addresses(dir.path(), &db);
    assert!(marked.contains(GONE), "{marked}");
    assert!(!marked.contains(STAYS), "{marked}");

    // Forged reports about the address that works: its message's id with a
    // made-up signature, and the failed message's valid address naming the
    // other CSO in its text (the address marked is the message's own).
    let (id, _) = stays_from
        .trim_start_matches("bounce+")
        .split_once('-')
        .unwrap();
    let forged = format!("bounce+{id}-0123456789abcdef@ogp.office.example");
    let data = write(dir.path(), "forged.eml", report(&forged, STAYS));
    assert!(lmtp(lmtp_port, &forged, &data).contains("250 2.0.0 Stored"));
    let data = write(dir.path(), "renamed.eml", report(&gone_from, STAYS));
    assert!(lmtp(lmtp_port, &gone_from, &data).contains("250 2.0.0 Stored"));

    let started = Instant::now();
    loop {
        let log = daemon.log_so_far().join("\n");
        if log.contains("did not sign") && log.matches("bounce recorded").count() >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the forged reports were not read:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = addresses(dir.path(), &db);
    assert!(
        !after.contains(STAYS),
        "a forged report marked {STAYS}:\n{after}"
    );
    assert_eq!(after.matches(" bounced ").count(), 1, "{after}");
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());
}
