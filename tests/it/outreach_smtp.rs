//! Invitations through a real SMTP relay (aiosmtpd): what arrives, in which
//! language, with which headers, reply keys and attachments; and what
//! happens when the relay defers or refuses a recipient, refuses a message,
//! or refuses cocreate itself.

use crate::common;

use std::path::Path;
use std::process::Output;

use crate::common::{SmtpSink, TestDb, fiscal_consultation, stderr, stdout, write};
use mail_parser::{MessageParser, MimeHeaders};

fn run(dir: &Path, db: &TestDb, sink: &SmtpSink, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = common::command(dir, db);
    for (k, v) in sink.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cocreate {args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn header<'a>(m: &'a mail_parser::Message<'a>, name: &str) -> String {
    m.header_raw(name).unwrap_or_default().trim().to_string()
}

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn invitations_arrive_personal_in_each_language_with_headers_keys_and_calendar() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let registry = write(
        dir.path(),
        "r.csv",
        "Registration number,Name,Email,Fields of activity,Language\n\
         F1,Qendra për Buxhet të Hapur,buxheti@cso.example.org,Buxhet,sq\n\
         F2,Budget & Tax Watch <Korçë>,watch@cso.example.org; director@cso.example.org,Budget,en\n\
         S1,Klubi Sportiv,sport@cso.example.org,Sport,sq\n",
    );
    run(
        dir.path(),
        &db,
        &sink,
        &[],
        &["registry", "import", registry.to_str().unwrap()],
    );
    let spec = fiscal_consultation(dir.path(), "OGP-2026-FISCAL");
    run(
        dir.path(),
        &db,
        &sink,
        &[],
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    run(
        dir.path(),
        &db,
        &sink,
        &[],
        &["consultation", "open", "OGP-2026-FISCAL"],
    );
    let sent = run(
        dir.path(),
        &db,
        &sink,
        &[],
        &["outreach", "send", "OGP-2026-FISCAL"],
    );
    assert!(
        stdout(&sent).starts_with("Queued 3 invitations"),
        "{}",
        stdout(&sent)
    );
    let flushed = run(dir.path(), &db, &sink, &[], &["outbox", "flush"]);
    assert_eq!(
        stdout(&flushed),
        "Sent 3, deferred 0 for a retry, failed 0.\n"
    );

    let delivered = sink.messages();
    let mut recipients: Vec<String> = delivered.iter().flat_map(|d| d.rcpt_tos.clone()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "buxheti@cso.example.org",
            "director@cso.example.org",
            "watch@cso.example.org"
        ],
        "the sports club is not relevant; the watchdog's two addresses each get one"
    );

    let mut keys = Vec::new();
    for d in &delivered {
        // Each message's own signed bounce address (VERP); the From the
        // CSO sees is the office's.
        assert!(
            d.mail_from.starts_with("bounce+") && d.mail_from.ends_with("@ogp.office.example"),
            "{}",
            d.mail_from
        );
        let m = MessageParser::default().parse(&d.raw).expect("parses");
        let to = d.rcpt_tos[0].as_str();
        let albanian = to.starts_with("buxheti");
        let subject = m.subject().unwrap();
        if albanian {
            assert_eq!(
                subject,
                "Ftesë për konsultim: Buxheti i hapur në bashki (afati 11.01.2027)"
            );
        } else {
            assert_eq!(
                subject,
                "Invitation to a consultation: Open municipal budgets (deadline 11 Jan 2027)"
            );
        }

        // The reply key: in Reply-To and at the start of our Message-ID.
        let reply_to = m
            .reply_to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_string();
        let key = reply_to
            .strip_prefix("consult+")
            .and_then(|r| r.strip_suffix("@ogp.office.example"))
            .unwrap_or_else(|| panic!("Reply-To {reply_to}"))
            .to_string();
        assert_eq!(key.len(), 20);
        assert!(m.message_id().unwrap().starts_with(&format!("{key}.")));
        keys.push(key.clone());

        assert_eq!(header(&m, "List-Id"), "<consultations.ogp.office.example>");
        assert_eq!(
            header(&m, "List-Unsubscribe"),
            format!("<http://127.0.0.1:8080/unsubscribe/{key}>")
        );
        assert_eq!(
            header(&m, "List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click"
        );
        assert_eq!(header(&m, "Auto-Submitted"), "auto-generated");
        assert_eq!(header(&m, "X-Auto-Response-Suppress"), "All");

        let text = m.body_text(0).unwrap();
        let html = m.body_html(0).unwrap();
        if albanian {
            assert!(text.contains("Mjafton t'i përgjigjeni këtij emaili me propozimin tuaj."));
            assert!(text.contains("Afati për propozimet: e hënë, 11 janar 2027"));
            assert!(text.contains("Kur: e enjte, 10 dhjetor 2026, ora 10:00–11:30"));
        } else {
            assert!(text.contains("Just reply to this email with your proposal."));
            assert!(text.contains("Deadline for proposals: Monday 11 January 2027"));
            assert!(
                text.contains("Dear Budget & Tax Watch <Korçë>,"),
                "plain text is not escaped"
            );
            assert!(
                html.contains("Dear Budget &amp; Tax Watch &lt;Korçë&gt;,"),
                "HTML is"
            );
            assert!(text.contains("1. Budget data every month"));
        }
        assert!(
            text.contains(&format!("http://127.0.0.1:8080/p/{key}")),
            "the personal form link"
        );
        assert!(!html.contains("<script"), "no scripts");

        let ics = m
            .attachments()
            .find(|a| a.attachment_name().is_some_and(|n| n.ends_with(".ics")))
            .expect("a calendar file");
        let ics = String::from_utf8_lossy(ics.contents()).into_owned();
        assert!(ics.contains("BEGIN:VCALENDAR") && ics.contains("METHOD:PUBLISH"));
        // 10:00 in Tirana in December is 09:00 UTC.
        assert!(ics.contains("DTSTART:20261210T090000Z"), "{ics}");
        assert!(ics.contains("DTEND:20261210T103000Z"), "{ics}");
        assert!(
            ics.contains("LOCATION:Kryeministria\\, salla 2")
                || ics.contains("LOCATION:Kryeministria, salla 2"),
            "{ics}"
        );
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "every invitation has its own key");

    // Sending again sends nothing; an organisation added since gets its own.
    let again = run(
        dir.path(),
        &db,
        &sink,
        &[],
        &["outreach", "send", "OGP-2026-FISCAL"],
    );
    assert!(
        stdout(&again).starts_with("Queued 0 invitations"),
        "{}",
        stdout(&again)
    );
    let more = write(
        dir.path(),
        "more.csv",
        "Registration number,Name,Email,Fields of activity\nF9,Rrjeti Fiskal,fiskal@cso.example.org,Tatime\n",
    );
    run(
        dir.path(),
        &db,
        &sink,
        &[],
        &["registry", "import", "--partial", more.to_str().unwrap()],
    );
    let newcomer = run(
        dir.path(),
        &db,
        &sink,
        &[],
        &["outreach", "send", "OGP-2026-FISCAL"],
    );
    assert!(
        stdout(&newcomer).starts_with("Queued 1 invitation for"),
        "{}",
        stdout(&newcomer)
    );
    run(dir.path(), &db, &sink, &[], &["outbox", "flush"]);
    assert_eq!(sink.count(), 4);
}

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn a_451_is_retried_and_a_550_is_final_without_touching_anyone_else() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let registry = write(
        dir.path(),
        "r.csv",
        "Registration number,Name,Email,Fields of activity\n\
         A1,Shoqata Një,ok@cso.example.org,Buxhet\n\
         A2,Shoqata Dy,later@cso.example.org,Buxhet\n\
         A3,Shoqata Tre,reject@cso.example.org,Buxhet\n",
    );
    // Retries an hour apart: the deferred message waits for `retry --now`.
    let fast = [("COCREATE_OUTBOX_RETRY_BASE_SECONDS", "3600")];
    run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["registry", "import", registry.to_str().unwrap()],
    );
    let spec = fiscal_consultation(dir.path(), "OGP-RETRY");
    run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["consultation", "open", "OGP-RETRY"],
    );
    run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["outreach", "send", "OGP-RETRY"],
    );

    let first = run(dir.path(), &db, &sink, &fast, &["outbox", "flush"]);
    assert_eq!(
        stdout(&first),
        "Sent 1, deferred 1 for a retry, failed 1.\n"
    );
    let status = stdout(&run(dir.path(), &db, &sink, &fast, &["outbox", "status"]));
    assert!(
        status.starts_with("Queued 1, sending 0, sent 1, failed 1.\n"),
        "{status}"
    );
    // The deferred message with its last error and next attempt; the
    // refused address without a suggestion to retry it.
    let deferred = status
        .lines()
        .find(|l| l.contains("invitation to later@cso.example.org"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        deferred.contains(", 1 attempt so far, next at ")
            && deferred.ends_with(
                ": transient error (451): 4.7.1 <later@cso.example.org>: greylisted, try again later"
            ),
        "{status}"
    );
    assert!(
        status.contains("Deferred after a failed attempt (tried again by themselves; `cocreate outbox retry --now` tries them now), times in Europe/Tirane:\n"),
        "{status}"
    );
    assert!(
        status.contains("Failed, the address refused for good (correct it in the registry; retrying cannot help):\n  #"),
        "{status}"
    );
    assert!(
        status.contains(" invitation to reject@cso.example.org: the recipient was refused: permanent error (550): 5.1.1 <reject@cso.example.org>: mailbox unavailable\n"),
        "{status}"
    );
    assert!(!status.contains("outbox retry`):"), "{status}");

    // Not due for an hour; `retry --now` makes it due, and leaves the
    // refused address alone.
    let idle = run(dir.path(), &db, &sink, &fast, &["outbox", "flush"]);
    assert_eq!(stdout(&idle), "Sent 0, deferred 0 for a retry, failed 0.\n");
    let retry = run(dir.path(), &db, &sink, &fast, &["outbox", "retry", "--now"]);
    assert_eq!(
        stdout(&retry),
        "Put 0 failed messages back in the queue, and made 1 deferred message due now.\n\
         Left as they are: 1 message to addresses refused for good (correct them in the registry, or add --refused to try them anyway).\n"
    );
    let second = run(dir.path(), &db, &sink, &fast, &["outbox", "flush"]);
    assert_eq!(
        stdout(&second),
        "Sent 1, deferred 0 for a retry, failed 0.\n"
    );

    let mut got: Vec<String> = sink
        .messages()
        .iter()
        .flat_map(|d| d.rcpt_tos.clone())
        .collect();
    got.sort();
    assert_eq!(
        got,
        ["later@cso.example.org", "ok@cso.example.org"],
        "each exactly once"
    );

    // The hard bounce marks the address; the next outreach leaves it out.
    let addresses = stdout(&run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["registry", "addresses"],
    ));
    assert!(
        addresses.starts_with("reject@cso.example.org"),
        "{addresses}"
    );
    assert!(addresses.contains("bounced"), "{addresses}");
    let spec2 = fiscal_consultation(dir.path(), "OGP-RETRY-2");
    run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["consultation", "create", "--file", spec2.to_str().unwrap()],
    );
    run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["consultation", "open", "OGP-RETRY-2"],
    );
    let preview = stdout(&run(
        dir.path(),
        &db,
        &sink,
        &fast,
        &["outreach", "preview", "OGP-RETRY-2"],
    ));
    assert!(
        preview.contains("A3             Shoqata Tre <reject@cso.example.org> — bounced on "),
        "{preview}"
    );
    assert!(
        preview.starts_with("OGP-RETRY-2 (FISCAL): 2 addresses will be invited"),
        "{preview}"
    );
}

/// Imports three CSOs (`locals` at cso.example.org, all in the fiscal area),
/// opens a consultation and queues its invitations.
fn three_invited(
    dir: &Path,
    db: &TestDb,
    sink: &SmtpSink,
    env: &[(&str, &str)],
    locals: [&str; 3],
) {
    let rows: String = locals
        .iter()
        .enumerate()
        .map(|(i, l)| format!("B{i},Shoqata {i},{l}@cso.example.org,Buxhet\n"))
        .collect();
    let registry = write(
        dir,
        "r.csv",
        format!("Registration number,Name,Email,Fields of activity\n{rows}"),
    );
    let spec = fiscal_consultation(dir, "OGP-STEPS");
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-STEPS"],
        vec!["outreach", "send", "OGP-STEPS"],
    ] {
        run(dir, db, sink, env, &args);
    }
}

/// A login the relay refuses while told to (`SmtpSink::refuse("auth", …)`),
/// with retries quick enough for a test.
const LOGIN: [(&str, &str); 4] = [
    ("COCREATE_SMTP_USERNAME", "cocreate"),
    (
        "COCREATE_SMTP_PASSWORD",
        "refused-until-the-relay-says-otherwise",
    ),
    ("COCREATE_OUTBOX_RETRY_BASE_SECONDS", "1"),
    ("COCREATE_OUTBOX_RETRY_MAX_SECONDS", "2"),
];

fn daemon_env(sink: &SmtpSink) -> Vec<(&'static str, String)> {
    let mut env = sink.env();
    env.extend(LOGIN.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// Three invitations queued while the relay refuses the login; `outbox
/// flush` stops at once and says why, in one sentence.
fn flush_behind_a_refused_login(dir: &Path, db: &TestDb, sink: &SmtpSink) {
    sink.refuse("auth", true);
    three_invited(dir, db, sink, &LOGIN, ["one", "two", "three"]);
    let flush = common::command(dir, db)
        .envs(sink.env())
        .envs(LOGIN)
        .args(["outbox", "flush"])
        .output()
        .unwrap();
    assert!(!flush.status.success());
    assert!(
        stderr(&flush).contains("the relay refuses cocreate, so nothing was sent (check the smtp settings and the password): permanent error (535): 5.7.8 Authentication credentials invalid"),
        "{}",
        stderr(&flush)
    );
}

fn bounced(dir: &Path, db: &TestDb, sink: &SmtpSink) -> Vec<String> {
    stdout(&run(dir, db, sink, &[], &["registry", "addresses"]))
        .lines()
        .filter(|l| l.contains("@") && l.contains("bounced"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn only_a_refusal_at_rcpt_marks_an_address_a_refused_message_fails_alone() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    three_invited(dir.path(), &db, &sink, &[], ["ok", "reject", "toobig"]);

    // 550 at MAIL FROM: every message fails with the reason; nobody bounces.
    sink.refuse("sender", true);
    let flush = run(dir.path(), &db, &sink, &[], &["outbox", "flush"]);
    assert_eq!(
        stdout(&flush),
        "Sent 0, deferred 0 for a retry, failed 3.\n"
    );
    let status = stdout(&run(dir.path(), &db, &sink, &[], &["outbox", "status"]));
    assert_eq!(
        status
            .matches("the message was refused: permanent error (550): 5.7.1")
            .count(),
        3,
        "{status}"
    );
    assert_eq!(bounced(dir.path(), &db, &sink), Vec::<String>::new());

    // Back in the queue; now 550 at RCPT for one, 552 at DATA for another.
    sink.refuse("sender", false);
    run(dir.path(), &db, &sink, &[], &["outbox", "retry"]);
    let flush = run(dir.path(), &db, &sink, &[], &["outbox", "flush"]);
    assert_eq!(
        stdout(&flush),
        "Sent 1, deferred 0 for a retry, failed 2.\n"
    );
    let status = stdout(&run(dir.path(), &db, &sink, &[], &["outbox", "status"]));
    assert!(
        status.contains(
            "to reject@cso.example.org: the recipient was refused: permanent error (550): 5.1.1"
        ),
        "{status}"
    );
    assert!(
        status.contains("to toobig@cso.example.org after 1 attempt: the message was refused: permanent error (552): 5.3.4 message size exceeds"),
        "{status}"
    );
    assert_eq!(bounced(dir.path(), &db, &sink), ["reject@cso.example.org"]);
    let delivered: Vec<Vec<String>> = sink.messages().into_iter().map(|d| d.rcpt_tos).collect();
    assert_eq!(delivered, [["ok@cso.example.org"]]);
}

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn a_relay_refusing_the_login_pauses_delivery_and_fails_nobody() {
    let sink = SmtpSink::start_with_auth();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let login = LOGIN;
    flush_behind_a_refused_login(dir.path(), &db, &sink);

    // The daemon pauses with backoff and says so once.
    let env = daemon_env(&sink);
    let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let status = stdout(&run(dir.path(), &db, &sink, &login, &["outbox", "status"]));
        if status.contains("Delivery is paused") || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        status.starts_with("Queued 3, sending 0, sent 0, failed 0.\n"),
        "{status}"
    );
    assert!(
        status.contains("the relay has refused cocreate since") && status.contains("(535)"),
        "{status}"
    );
    let (code, health) = daemon.get("/healthz");
    assert_eq!(code, 200);
    assert!(
        health.starts_with(r#"{"outbox_paused":"the relay refuses cocreate since"#)
            && health.contains(r#""status":"ok""#),
        "{health}"
    );
    // Several paused passes go by (backoff 1-2 s) with nothing failed.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(sink.count(), 0);

    // The relay accepts again: everything goes out, once.
    sink.refuse("auth", false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sink.count() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut got: Vec<String> = sink
        .messages()
        .into_iter()
        .flat_map(|d| d.rcpt_tos)
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "one@cso.example.org",
            "three@cso.example.org",
            "two@cso.example.org"
        ]
    );
    let status = stdout(&run(dir.path(), &db, &sink, &login, &["outbox", "status"]));
    assert_eq!(status, "Queued 0, sending 0, sent 3, failed 0.\n");
    assert_eq!(
        daemon.get("/healthz"),
        (200, r#"{"status":"ok","unprocessed":0}"#.to_string())
    );
    let (_, log) = daemon.stop(libc::SIGTERM);
    let said: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("the relay refuses cocreate; delivery paused"))
        .collect();
    assert_eq!(
        said.len(),
        1,
        "said once, not per message or pass: {said:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("delivery resumed")),
        "{log:#?}"
    );
    assert_eq!(bounced(dir.path(), &db, &sink), Vec::<String>::new());
}

#[test]
#[ignore = "needs aiosmtpd (Debian python3-aiosmtpd)"]
fn a_refusal_recorded_before_the_daemon_started_is_cleared_once_it_delivers() {
    let sink = SmtpSink::start_with_auth();
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let login = LOGIN;
    flush_behind_a_refused_login(dir.path(), &db, &sink);
    let status = stdout(&run(dir.path(), &db, &sink, &login, &["outbox", "status"]));
    assert!(status.contains("Delivery is paused"), "{status}");

    // The password is mended before the daemon starts.
    sink.refuse("auth", false);
    let daemon = common::Daemon::start_with(dir.path(), &db, &daemon_env(&sink), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sink.count() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(sink.count(), 3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let status = stdout(&run(dir.path(), &db, &sink, &login, &["outbox", "status"]));
        if !status.contains("Delivery is paused") || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(status, "Queued 0, sending 0, sent 3, failed 0.\n");
    assert_eq!(
        daemon.get("/healthz"),
        (200, r#"{"status":"ok","unprocessed":0}"#.to_string())
    );
}
