//! A mail loop must not run away. Two auto-responders answer every message
//! cocreate sends them, for a full minute, through a real SMTP relay
//! (aiosmtpd) one way and the maildir drop folder the other: one follows
//! the conventions (Auto-Submitted: auto-replied), one ignores them all and
//! sends the same words every time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::{Daemon, SmtpSink, TestDb, cocreate, queue_invitations_to};

const POLITE: &str = "polite@cso.example.org";
const NAIVE: &str = "naive@cso.example.org";

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn auto_responders_get_at_most_one_receipt_and_nothing_else() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    queue_invitations_to(
        dir.path(),
        &db,
        &[("Polite Org", POLITE), ("Naive Org", NAIVE)],
        "OGP-LOOP",
    );

    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    std::fs::create_dir_all(inbox.join("tmp")).unwrap();
    let mut env = sink.env();
    env.push(("COCREATE_INBOUND_MAILDIR", inbox.display().to_string()));
    let daemon = Daemon::start_with(dir.path(), &db, &env, &[]);

    let mut answered = HashSet::new();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(60) {
        for (i, d) in sink.messages().iter().enumerate() {
            if !answered.insert(i) {
                continue;
            }
            let m = mail_parser::MessageParser::default().parse(&d.raw).unwrap();
            let to = d.rcpt_tos[0].clone();
            let reply_to = m
                .reply_to()
                .and_then(|r| r.first())
                .and_then(|a| a.address())
                .unwrap_or("ogp-poc@office.example")
                .to_string();
            let subject = m.subject().unwrap_or("").to_string();
            let id = m.message_id().unwrap_or("").to_string();
            n += 1;
            let reply = if to == POLITE {
                format!(
                    "From: {POLITE}\r\nTo: {reply_to}\r\nSubject: Auto: {subject}\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <{id}>\r\nMessage-ID: <p{n}@cso.example.org>\r\n\r\nI am away until Monday.\r\n"
                )
            } else {
                // No auto-reply header of any kind, a plain "Re:", and the
                // quoted message below: indistinguishable from a person but
                // for always saying the same thing.
                format!(
                    "From: {NAIVE}\r\nTo: {reply_to}\r\nSubject: Re: {subject}\r\nIn-Reply-To: <{id}>\r\nMessage-ID: <n{n}@cso.example.org>\r\n\r\nThank you for your email. We will get back to you soon.\r\n\r\nOn Thu, 3 Dec 2026 at 10:00, OGP <{reply_to}> wrote:\r\n> {subject}\r\n"
                )
            };
            let tmp = inbox.join(format!("tmp/{n}.eml"));
            std::fs::write(&tmp, reply).unwrap();
            std::fs::rename(&tmp, inbox.join(format!("new/{n}.eml"))).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());

    let delivered: Vec<(String, String)> = sink
        .messages()
        .iter()
        .map(|d| {
            let m = mail_parser::MessageParser::default().parse(&d.raw).unwrap();
            (d.rcpt_tos[0].clone(), m.subject().unwrap_or("").to_string())
        })
        .collect();
    let receipts: Vec<_> = delivered
        .iter()
        .filter(|(_, s)| s.starts_with("[OGP-"))
        .collect();
    assert_eq!(receipts.len(), 1, "{delivered:#?}");
    assert_eq!(
        receipts[0].0, NAIVE,
        "the polite responder gets no receipt at all"
    );
    assert_eq!(
        delivered.len(),
        3,
        "two invitations and one receipt, nothing else: {delivered:#?}"
    );
    let pen = String::from_utf8_lossy(&cocreate(dir.path(), &db, &["mail", "pen", "list"]).stdout)
        .into_owned();
    assert!(
        pen.contains("sent these exact words before; an automatic reply?"),
        "{pen}"
    );
}
