//! `cocreate mail ingest` as an MTA pipe uses it: a reply on standard input
//! becomes one proposal with one receipt, the same message again changes
//! nothing, machine mail gets no receipt, and a message that cannot be
//! stored exits 75 so the MTA keeps it.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::{TestDb, fiscal_consultation, stderr, stdout, write};

fn run(dir: &Path, db: &TestDb, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = common::command(dir, db)
        .env("COCREATE_OUTBOX_FILE_DIR", dir.join("outbox"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// The receipt number in "standard input: proposal OGP-…, receipt queued".
fn receipt_no_in(out: &str) -> String {
    out.split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no receipt number in {out:?}"))
        .trim_end_matches(',')
        .to_string()
}

/// `mail ingest` of one message on standard input; what it printed.
fn ingest(dir: &Path, db: &TestDb, raw: &str) -> String {
    ok(dir, db, &["mail", "ingest"], Some(raw.as_bytes()))
}

pub(crate) fn ok(dir: &Path, db: &TestDb, args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = run(dir, db, args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A consultation with one invited CSO; returns the invitation's reply key
/// and Message-ID.
pub(crate) fn setup(dir: &Path, db: &TestDb) -> (String, String) {
    let registry = write(
        dir,
        "r.csv",
        "Registration number,Name,Email,Fields of activity,Language\nF1,Qendra për Buxhet të Hapur,buxheti@cso.example.org,Buxhet,sq\n",
    );
    let spec = fiscal_consultation(dir, "OGP-IN");
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-IN"],
        vec!["outreach", "send", "OGP-IN"],
        vec!["outbox", "flush"],
    ] {
        ok(dir, db, &args, None);
    }
    let invitation = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("invitation"))
        .unwrap();
    let raw = std::fs::read(invitation).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let reply_to = m
        .reply_to()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap()
        .to_string();
    let key = reply_to
        .trim_start_matches("consult+")
        .split('@')
        .next()
        .unwrap()
        .to_string();
    (key, m.message_id().unwrap().to_string())
}

pub(crate) fn receipts(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-receipt.eml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

pub(crate) fn reply(key: &str, id: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "Received: from mx.cso.example.org\r\nFrom: Arta <buxheti@cso.example.org>\r\nTo: consult+{key}@ogp.office.example\r\nSubject: Re: Ftesë për konsultim\r\nMessage-ID: <{message_id}>\r\nIn-Reply-To: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\nMë 3 dhj 2026, Zyra <consult+{key}@ogp.office.example> shkroi:\r\n> Ftesë\r\n"
    )
    .into_bytes()
}

#[test]
fn a_piped_reply_becomes_one_proposal_with_one_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, invitation_id) = setup(dir.path(), &db);
    let raw = reply(
        &key,
        &invitation_id,
        "p1@cso.example.org",
        "Propozojmë publikimin mujor të buxhetit.",
    );

    let first = ok(dir.path(), &db, &["mail", "ingest"], Some(&raw));
    assert!(
        first.starts_with("standard input: proposal OGP-"),
        "{first}"
    );
    assert!(first.ends_with(", receipt queued\n"), "{first}");
    let receipt_no = receipt_no_in(&first);

    // The same message again, even through another relay, does nothing.
    let mut again =
        b"Received: from another.relay.example\r\nDelivered-To: consult@ogp.office.example\r\n"
            .to_vec();
    again.extend(raw.iter().skip_while(|b| **b != b'\n').skip(1));
    let second = ok(dir.path(), &db, &["mail", "ingest"], Some(&again));
    assert!(second.contains("already received"), "{second}");

    let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
    assert_eq!(proposals.lines().count(), 1, "{proposals}");
    assert!(
        proposals.starts_with(&format!("{receipt_no} "))
            && proposals.contains(" OGP-IN ")
            && proposals.ends_with(" — Propozojmë publikimin mujor të buxhetit.\n"),
        "{proposals}"
    );

    ok(dir.path(), &db, &["outbox", "flush"], None);
    let sent = receipts(dir.path());
    assert_eq!(sent.len(), 1, "exactly one receipt");
    let m = mail_parser::MessageParser::default()
        .parse(&sent[0])
        .unwrap();
    assert_eq!(
        m.subject().unwrap(),
        format!("[{receipt_no}] Morëm propozimin tuaj: Buxheti i hapur në bashki")
    );
    assert_eq!(
        m.header_raw("Auto-Submitted").unwrap().trim(),
        "auto-replied"
    );
    assert_eq!(m.in_reply_to().as_text(), Some("p1@cso.example.org"));
    assert!(
        m.header_raw("List-Id").is_none(),
        "a receipt is not list mail"
    );
    let text = m.body_text(0).unwrap();
    assert!(text.contains(&format!("Numri i pritjes: {receipt_no}")));
    let text = text.replace("\r\n", "\n");
    assert!(
        text.contains("ÇFARË MORËM\nPropozojmë publikimin mujor të buxhetit."),
        "{text}"
    );
    assert!(
        !text.contains("> Ftesë"),
        "the quoted invitation is not echoed back"
    );
}

#[test]
fn machine_mail_and_strangers_get_no_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let ooo = format!(
        "From: buxheti@cso.example.org\r\nTo: consult+{key}@ogp.office.example\r\nSubject: Jashtë zyrës: Ftesë për konsultim\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <{id}>\r\n\r\nJam jashtë zyrës deri më 5 janar.\r\n"
    );
    assert_eq!(
        ingest(dir.path(), &db, &ooo),
        "standard input: kept as auto_reply, no receipt\n"
    );
    let stranger = "From: someone@elsewhere.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Hello\r\n\r\nIs this the right address?\r\n";
    assert_eq!(
        ingest(dir.path(), &db, stranger),
        "standard input: in the holding pen: no reply key, and someone@elsewhere.example.org is not a registered CSO address\n"
    );
    let broken = b"this is not an email at all";
    let out = ok(dir.path(), &db, &["mail", "ingest"], Some(broken));
    assert!(
        out.starts_with("standard input: in the holding pen: "),
        "{out}"
    );
    ok(dir.path(), &db, &["outbox", "flush"], None);
    assert!(receipts(dir.path()).is_empty());
    assert!(ok(dir.path(), &db, &["mail", "proposals"], None).starts_with("No proposals yet."));
}

#[test]
fn receipts_to_one_address_are_capped_per_hour() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let mut lines = Vec::new();
    for i in 0..12 {
        let raw = reply(
            &key,
            &id,
            &format!("p{i}@cso.example.org"),
            &format!("Propozimi nr. {i}."),
        );
        lines.push(ok(dir.path(), &db, &["mail", "ingest"], Some(&raw)));
    }
    let queued = lines
        .iter()
        .filter(|l| l.ends_with(", receipt queued\n"))
        .count();
    let held = lines
        .iter()
        .filter(|l| l.ends_with(", receipt held back by the loop guard\n"))
        .count();
    assert_eq!((queued, held), (10, 2), "{lines:#?}");
    // Every proposal is still recorded.
    assert_eq!(
        ok(dir.path(), &db, &["mail", "proposals"], None)
            .lines()
            .count(),
        12
    );
}

/// The loop guard holds within one maildir sweep too, where the messages
/// are decided together and written in one transaction: what the batch
/// itself queued counts.
#[test]
fn the_loop_guard_counts_what_one_batch_decides() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let inbox = dir.path().join("batch");
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    let write = |name: &str, raw: &[u8]| std::fs::write(inbox.join("new").join(name), raw).unwrap();
    for i in 0..12 {
        let raw = reply(
            &key,
            &id,
            &format!("cap{i}@cso.example.org"),
            &format!("Propozimi nr. {i}."),
        );
        write(&format!("a{i:02}.eml"), &raw);
    }
    // The same words twice (an auto-responder without headers), and the
    // same message dropped twice; all from the same sender as the rest.
    write(
        "b1.eml",
        &reply(&key, &id, "same1@cso.example.org", "Faleminderit."),
    );
    write(
        "b2.eml",
        &reply(&key, &id, "same2@cso.example.org", "Faleminderit."),
    );
    let twice = reply(&key, &id, "twice@cso.example.org", "Një herë.");
    write("c1.eml", &twice);
    write("c2.eml", &twice);
    // For scripts: one JSON object a line, named by the file.
    let out = ok(
        dir.path(),
        &db,
        &[
            "mail",
            "ingest",
            "--json",
            "--maildir",
            inbox.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.lines().count(), 16, "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(&format!("\"message\":\"{name}\"")))
            .unwrap_or_else(|| panic!("no line for {name} in {out}"))
            .to_string()
    };
    let queued = (0..12)
        .filter(|i| line(&format!("a{i:02}.eml")).contains("\"receipt_queued\":true"))
        .count();
    // All from one sender: ten receipts this hour, then the guard holds.
    assert_eq!(queued, 10, "{out}");
    assert!(line("b1.eml").contains("\"receipt_queued\":false"), "{out}");
    assert!(line("b2.eml").contains("exact words before"), "{out}");
    assert!(line("c1.eml").contains("\"outcome\":\"proposal\""), "{out}");
    assert!(
        line("c2.eml").contains("\"outcome\":\"duplicate\""),
        "{out}"
    );
    assert_eq!(
        ok(dir.path(), &db, &["mail", "proposals"], None)
            .lines()
            .count(),
        14,
        "12 + b1 + c1"
    );
}

#[test]
fn a_message_that_cannot_be_stored_exits_75_for_the_mta() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::command(dir.path(), &TestDb::sqlite())
        .env(
            "COCREATE_DATABASE_URL",
            "sqlite:/proc/no-such-place/cocreate.db",
        )
        .args(["mail", "ingest"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: the message was not stored and must be delivered again: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_takes_in_a_maildir_drop_and_the_webhook_only_with_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let inbox = dir.path().join("inbox");
    let env = [
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        ("COCREATE_INBOUND_MAILDIR", inbox.display().to_string()),
        ("COCREATE_WEBHOOK_SECRET", "s3cret-for-the-test".to_string()),
    ];
    let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);

    // A maildir drop: written to tmp/ and renamed into new/, as MTAs do.
    std::fs::create_dir_all(inbox.join("tmp")).unwrap();
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    let dropped = reply(&key, &id, "drop1@cso.example.org", "Propozim nga maildir.");
    std::fs::write(inbox.join("tmp/1.eml"), &dropped).unwrap();
    std::fs::rename(inbox.join("tmp/1.eml"), inbox.join("new/1.eml")).unwrap();
    let start = std::time::Instant::now();
    while !inbox.join("cur/1.eml:2,S").exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the drop was not taken in"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        std::fs::read_dir(inbox.join("new"))
            .unwrap()
            .next()
            .is_none()
    );

    // The webhook: refused without the secret, accepted with it.
    let hooked = reply(&key, &id, "hook1@cso.example.org", "Propozim nga webhook.");
    let body = String::from_utf8(hooked).unwrap();
    let (status, json) = daemon.post("/inbound/mime", &body);
    assert_eq!(status, 401, "{json}");
    let (status, json) =
        daemon.post_with("/inbound/mime", &body, &[("Authorization", "Bearer wrong")]);
    assert_eq!(status, 401, "{json}");
    let (status, json) = daemon.post_with(
        "/inbound/mime",
        &body,
        &[("Authorization", "Bearer s3cret-for-the-test")],
    );
    assert_eq!(status, 200, "{json}");
    assert!(json.contains("\"outcome\":\"proposal\""), "{json}");
    let (_, again) = daemon.post_with(
        "/inbound/mime",
        &body,
        &[("Authorization", "Bearer s3cret-for-the-test")],
    );
    assert!(again.contains("\"outcome\":\"duplicate\""), "{again}");
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());

    let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
    assert_eq!(proposals.lines().count(), 2, "{proposals}");
    assert!(
        proposals.contains("Propozim nga maildir.") && proposals.contains("Propozim nga webhook.")
    );
}

#[test]
fn mail_ingest_takes_a_maildir_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let inbox = maildir_of_replies(dir.path(), &key, &id, 0..3);
    let out = ok(
        dir.path(),
        &db,
        &["mail", "ingest", "--maildir", inbox.to_str().unwrap()],
        None,
    );
    assert!(
        out.ends_with("Took in 3 messages; 0 left in new/.\n"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(inbox.join("cur")).unwrap().count(), 3);
    let again = ok(
        dir.path(),
        &db,
        &["mail", "ingest", "--maildir", inbox.to_str().unwrap()],
        None,
    );
    assert_eq!(again, "Took in 0 messages; 0 left in new/.\n");
}

/// A maildir (DIR/batch) holding replies number `n` to the invitation.
fn maildir_of_replies(
    dir: &Path,
    key: &str,
    id: &str,
    n: std::ops::Range<usize>,
) -> std::path::PathBuf {
    let inbox = dir.join("batch");
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    for i in n {
        std::fs::write(
            inbox.join(format!("new/{i}.eml")),
            reply(
                key,
                id,
                &format!("b{i}@cso.example.org"),
                &format!("Propozim {i}."),
            ),
        )
        .unwrap();
    }
    inbox
}

/// A message of 40,000 nested message/rfc822 parts (1.3 MB) used to abort
/// the process with a stack overflow, and, left in the maildir, every
/// restart: now it is stored and held with the reason, and the replies
/// behind it are taken in.
#[test]
fn forty_thousand_nested_messages_are_held_and_the_replies_behind_them_taken_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let inbox = maildir_of_replies(dir.path(), &key, &id, 1..4);
    let mut nested = String::from(
        "From: a@elsewhere.example.org\r\nTo: consult@ogp.office.example\r\nSubject: nested\r\nMessage-ID: <nested@elsewhere.example.org>\r\nMIME-Version: 1.0\r\n",
    );
    for _ in 0..40_000 {
        nested.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    nested.push_str("From: b@x.org\r\nSubject: inner\r\n\r\nbody\r\n");
    std::fs::write(inbox.join("new/0-nested.eml"), &nested).unwrap();
    let out = ok(
        dir.path(),
        &db,
        &["mail", "ingest", "--maildir", inbox.to_str().unwrap()],
        None,
    );
    assert!(
        out.ends_with("Took in 4 messages; 0 left in new/.\n"),
        "{out}"
    );
    assert!(
        out.contains("0-nested.eml: in the holding pen: the message holds more than 100 attached messages (message/rfc822)"),
        "{out}"
    );
    assert_eq!(out.matches(": proposal ").count(), 3, "{out}");
    // Through the pipe as well: stored, held, exit 0.
    let piped = ingest(dir.path(), &db, &nested.replace("<nested@", "<nested2@"));
    assert!(
        piped.starts_with("standard input: in the holding pen: the message holds more than 100"),
        "{piped}"
    );
}

/// A message whose References holds 70,000 reply-key-shaped ids (more
/// than either backend takes as bound parameters in one statement) made the
/// whole batch's key lookup fail: all ten messages stayed stored and
/// unprocessed, at every restart. Now a message's candidate keys are
/// bounded and lookups are chunked: the flood is dealt with like any other
/// message, and its nine neighbours become proposals.
fn a_flood_of_references_does_not_silence_its_batch(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let (key, id) = setup(dir.path(), db);
    let inbox = maildir_of_replies(dir.path(), &key, &id, 1..10);
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    let references: Vec<String> = (0..70_000u64)
        .map(|i| {
            let fake: String = (0..20)
                .map(|d| alphabet[((i >> (d % 4 * 5)) as usize + d) % 32] as char)
                .collect();
            format!("<{fake}.x{i}@ogp.office.example>")
        })
        .collect();
    let flood = format!(
        "From: someone@elsewhere.example.org\r\nTo: consult@ogp.office.example\r\nSubject: Re: Ftesë\r\nMessage-ID: <flood@elsewhere.example.org>\r\nReferences: {}\r\n\r\nA proposal in a long thread.\r\n",
        references.join("\r\n ")
    );
    std::fs::write(inbox.join("new/0-flood.eml"), flood).unwrap();
    let out = ok(
        dir.path(),
        db,
        &["mail", "ingest", "--maildir", inbox.to_str().unwrap()],
        None,
    );
    assert!(
        out.ends_with("Took in 10 messages; 0 left in new/.\n"),
        "{out}"
    );
    assert_eq!(out.matches(": proposal ").count(), 9, "{out}");
    assert!(out.contains("0-flood.eml: in the holding pen: "), "{out}");
    let pen = ok(dir.path(), db, &["mail", "pen", "list"], None);
    assert!(pen.contains("someone@elsewhere.example.org"), "{pen}");
}

#[test]
fn a_flood_of_references_does_not_silence_its_batch_on_sqlite() {
    a_flood_of_references_does_not_silence_its_batch(&TestDb::sqlite());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (COCREATE_TEST_POSTGRES_URL)"]
async fn a_flood_of_references_does_not_silence_its_batch_on_postgres() {
    let db = TestDb::postgres()
        .await
        .unwrap_or_else(|| panic!("{} must name a PostgreSQL server", common::POSTGRES_ENV));
    tokio::task::spawn_blocking(move || a_flood_of_references_does_not_silence_its_batch(&db))
        .await
        .unwrap();
}

/// The 40,000-nested message of the test above, with its own Message-ID.
fn nested_forty_thousand(n: usize) -> String {
    let mut nested = format!(
        "From: a@elsewhere.example.org\r\nTo: consult@ogp.office.example\r\nSubject: nested\r\nMessage-ID: <nested{n}@elsewhere.example.org>\r\nMIME-Version: 1.0\r\n",
    );
    for _ in 0..40_000 {
        nested.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    nested.push_str("From: b@x.org\r\nSubject: inner\r\n\r\nbody\r\n");
    nested
}

/// One LMTP transaction to `addr`; the answer after the data.
fn lmtp_send(addr: &str, raw: &str) -> String {
    use std::io::{BufRead, BufReader};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    let mut answer = |r: &mut BufReader<std::net::TcpStream>| {
        // The last line of a (possibly multi-line) reply.
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line.clone();
            }
        }
    };
    answer(&mut r);
    for command in [
        "LHLO mx.example.org\r\n",
        "MAIL FROM:<a@elsewhere.example.org>\r\n",
        "RCPT TO:<consult@ogp.office.example>\r\n",
        "DATA\r\n",
    ] {
        s.write_all(command.as_bytes()).unwrap();
        answer(&mut r);
    }
    s.write_all(raw.as_bytes()).unwrap();
    s.write_all(b".\r\n").unwrap();
    answer(&mut r)
}

/// No message can stop `serve`: the 40,000-nested message once aborted it
/// (exit 134) through LMTP, the webhook or the maildir, and left in the
/// maildir it aborted every restart while the replies behind it waited. A
/// file too large ever to be taken in was warned about six times a second
/// for ever. Now each source holds the nested message, the maildir moves
/// the oversized file to refused/ and says so once, and the replies behind
/// them become proposals.
#[test]
fn no_message_stops_serve_through_any_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let inbox = maildir_of_replies(dir.path(), &key, &id, 2..6);
    std::fs::write(inbox.join("new/0-nested.eml"), nested_forty_thousand(0)).unwrap();
    std::fs::write(inbox.join("new/1-big.eml"), vec![b'x'; 3_000_000]).unwrap();
    let lmtp = format!("127.0.0.1:{}", common::free_port());
    let env = [
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        ("COCREATE_INBOUND_MAILDIR", inbox.display().to_string()),
        ("COCREATE_INBOUND_LMTP_LISTEN", lmtp.clone()),
        ("COCREATE_INBOUND_MAX_MESSAGE_BYTES", "2000000".to_string()),
        ("COCREATE_WEBHOOK_SECRET", "s3cret-for-the-test".to_string()),
    ];
    let mut daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    let start = std::time::Instant::now();
    while std::fs::read_dir(inbox.join("new")).unwrap().count() > 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the maildir was not emptied"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_dir(inbox.join("cur")).unwrap().count(), 5);
    assert!(inbox.join("refused/1-big.eml").exists());
    let reason = std::fs::read_to_string(inbox.join("refused/1-big.eml.reason")).unwrap();
    assert!(
        reason.starts_with("3000000 bytes, more than inbound.max_message_bytes"),
        "{reason}"
    );

    let (status, json) = daemon.post_with(
        "/inbound/mime",
        &nested_forty_thousand(1),
        &[("Authorization", "Bearer s3cret-for-the-test")],
    );
    assert_eq!(status, 200, "{json}");
    assert!(json.contains(r#""outcome":"held""#), "{json}");
    let answer = lmtp_send(&lmtp, &nested_forty_thousand(2));
    assert!(answer.starts_with("250 "), "{answer}");
    assert_eq!(daemon.get("/healthz").0, 200);

    std::thread::sleep(std::time::Duration::from_secs(2));
    let refusals = daemon
        .log_so_far()
        .iter()
        .filter(|l| l.contains("1-big.eml"))
        .count();
    assert_eq!(refusals, 1, "the oversized file is logged once");
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success(), "{status}");
    let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
    assert_eq!(proposals.lines().count(), 4, "{proposals}");
    let pen = ok(dir.path(), &db, &["mail", "pen", "list"], None);
    assert_eq!(
        pen.matches("more than 100 attached messages").count(),
        3,
        "{pen}"
    );
}

/// Runs one SQL statement on the test's SQLite database, beside cocreate.
fn sqlite_exec(db: &TestDb, sql: &str) {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    });
}

/// A message stored while processing failed (the disk full, here a trigger
/// that refuses every proposal as a full disk would) was tried again only
/// at the next start, and /healthz said 200 meanwhile. Now `serve` tries it
/// again with backoff while it runs, /healthz says 503 with the reason once
/// it has waited too long, and `mail reprocess` reports each failure and
/// goes on.
#[test]
fn stored_messages_whose_processing_failed_are_retried_while_serve_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    sqlite_exec(
        &db,
        "CREATE TRIGGER full BEFORE INSERT ON proposals \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    );
    let inbox = dir.path().join("inbox");
    let env = [
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        ("COCREATE_INBOUND_MAILDIR", inbox.display().to_string()),
        ("COCREATE_INBOUND_RETRY_SECONDS", "1".to_string()),
        ("COCREATE_INBOUND_BACKLOG_ALERT_SECONDS", "2".to_string()),
    ];
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    // Written elsewhere and renamed into new/, as an MTA delivers.
    let dropped = maildir_of_replies(dir.path(), &key, &id, 0..3);
    for f in std::fs::read_dir(dropped.join("new")).unwrap() {
        let f = f.unwrap().path();
        std::fs::rename(&f, inbox.join("new").join(f.file_name().unwrap())).unwrap();
    }
    let start = std::time::Instant::now();
    let stored_at = loop {
        if std::fs::read_dir(inbox.join("cur")).map_or(0, |d| d.count()) == 3 {
            break std::time::Instant::now();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "not stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };

    // Each failure is reported, and the others are still tried.
    // (With the daemon's settings: a failure here sets when it retries.)
    let out = common::command(dir.path(), &db)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["mail", "reprocess", "1", "2", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report = stdout(&out);
    assert_eq!(
        report.matches(": could not be processed: ").count(),
        3,
        "{report}"
    );
    assert!(
        stderr(&out).contains("3 of 3 messages could not be reprocessed"),
        "{}",
        stderr(&out)
    );

    // First for the failed write, then for the messages waiting too long.
    let health = loop {
        let (status, body) = daemon.get("/healthz");
        if status == 503 && body.contains("stored messages are not processed") {
            break body;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "/healthz stayed {status}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        health.contains("3 stored messages are not processed, the oldest since")
            && health.contains("storing mail failed at")
            && health.contains("database or disk is full"),
        "{health}"
    );

    // The disk is freed: the messages become proposals without a restart.
    sqlite_exec(&db, "DROP TRIGGER full");
    let freed = std::time::Instant::now();
    loop {
        let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
        if proposals.lines().count() == 3 {
            break;
        }
        assert!(
            freed.elapsed() < std::time::Duration::from_secs(60),
            "not retried: {proposals}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!(
        "processed {:?} after the disk was freed ({:?} after they were stored)",
        freed.elapsed(),
        stored_at.elapsed()
    );
    assert_eq!(daemon.get("/healthz").0, 200);
    // Each proposal's receipt, once, delivered by serve's outbox worker.
    let start = std::time::Instant::now();
    while receipts(dir.path()).len() < 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "receipts not sent"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert_eq!(receipts(dir.path()).len(), 3);
    assert!(status.success());
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(at.to_path_buf())
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The disk holding the database fills while `serve` runs, and is freed:
/// /healthz says 503 with the reason while nothing can be stored, and once
/// there is room again the replies that arrived meanwhile become
/// proposals without a restart (they wait in the maildir, or are stored
/// and retried).
#[test]
#[ignore = "needs root (mounts a small tmpfs for the database)"]
fn a_full_disk_then_freed_while_serve_runs_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("db"), "64m");
    let db = TestDb::sqlite_in(&disk.0);
    let (key, id) = setup(dir.path(), &db);
    let inbox = dir.path().join("inbox");
    let env = [
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        ("COCREATE_INBOUND_MAILDIR", inbox.display().to_string()),
        ("COCREATE_INBOUND_RETRY_SECONDS", "1".to_string()),
    ];
    let mut daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    assert_eq!(daemon.get("/healthz").0, 200);
    let filler = disk.fill();

    // Replies large enough that the database must grow to take them.
    std::fs::create_dir_all(inbox.join("new")).unwrap();
    let long = "Një paragraf i gjatë i propozimit tonë për buxhetin.\r\n".repeat(12_000);
    for i in 0..3 {
        std::fs::write(
            inbox.join(format!("new/{i}.eml")),
            reply(
                &key,
                &id,
                &format!("full{i}@cso.example.org"),
                &format!("Propozim {i}.\r\n{long}"),
            ),
        )
        .unwrap();
    }
    let start = std::time::Instant::now();
    let health = loop {
        let (status, body) = daemon.get("/healthz");
        if status == 503 {
            break body;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "/healthz stayed {status}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    eprintln!("/healthz on a full disk: {health}");
    assert!(health.contains("full"), "{health}");

    std::fs::remove_file(filler).unwrap();
    let freed = std::time::Instant::now();
    loop {
        let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
        if proposals.lines().count() == 3 {
            break;
        }
        assert!(
            freed.elapsed() < std::time::Duration::from_secs(60),
            "not taken in after the disk was freed: {proposals}\n{:#?}",
            daemon.log_so_far()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!(
        "all 3 replies were proposals {:?} after the disk was freed",
        freed.elapsed()
    );
    let start = std::time::Instant::now();
    loop {
        let (status, body) = daemon.get("/healthz");
        if status == 200 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "/healthz stays {status}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());
}

/// A message on standard input over inbound.max_message_bytes is refused
/// for good (exit 65, which an MTA bounces) without being read whole or
/// stored; it used to be stored at any size (200 MB, 1.4 GB of memory).
#[test]
fn an_oversized_message_on_standard_input_is_refused_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let mut big =
        b"From: a@cso.example.org\r\nTo: consult@ogp.office.example\r\nSubject: big\r\n\r\n"
            .to_vec();
    big.extend(std::iter::repeat_n(b'x', 200_000));
    let mut child = common::command(dir.path(), &db)
        .env("COCREATE_INBOUND_MAX_MESSAGE_BYTES", "100000")
        .args(["mail", "ingest"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The writer may see a broken pipe once cocreate has read enough.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&big);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: the message on standard input is larger than inbound.max_message_bytes (100000 bytes); it was not stored\n"
    );
    let pen = ok(dir.path(), &db, &["mail", "pen", "list"], None);
    assert!(!pen.contains("a@cso.example.org"), "{pen}");
}

#[test]
fn the_holding_pen_lists_assigns_and_discards() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    setup(dir.path(), &db);
    let lost = "From: Arta <arta.personal@mail.example.org>\r\nTo: ogp-poc@office.example\r\nSubject: Propozim per buxhetin\r\nMessage-ID: <lost1@mail.example.org>\r\n\r\nDergoj propozimin nga adresa ime personale.\r\n";
    let junk = "From: seller@shop.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Offer\r\nMessage-ID: <junk1@shop.example.org>\r\n\r\nBuy now.\r\n";
    ingest(dir.path(), &db, lost);
    ingest(dir.path(), &db, junk);

    let list = ok(dir.path(), &db, &["mail", "pen", "list"], None);
    let ids: Vec<String> = list
        .lines()
        .map(|l| {
            l.split_whitespace()
                .next()
                .unwrap()
                .trim_start_matches('#')
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(list.contains("arta.personal@mail.example.org \"Propozim per buxhetin\" — no reply key, and arta.personal@mail.example.org is not a registered CSO address"), "{list}");
    let show = ok(dir.path(), &db, &["mail", "pen", "show", &ids[0]], None);
    assert!(
        show.contains("Dergoj propozimin nga adresa ime personale."),
        "{show}"
    );

    let assigned = ok(
        dir.path(),
        &db,
        &[
            "mail",
            "pen",
            "assign",
            &ids[0],
            "--consultation",
            "ogp-in",
            "--cso",
            "f1",
        ],
        None,
    );
    assert!(
        assigned.contains("is proposal OGP-")
            && assigned.contains("of Qendra për Buxhet të Hapur in OGP-IN"),
        "{assigned}"
    );
    let no_reason = run(
        dir.path(),
        &db,
        &["mail", "pen", "discard", &ids[1], "--reason", ""],
        None,
    );
    assert_eq!(no_reason.status.code(), Some(1));
    ok(
        dir.path(),
        &db,
        &["mail", "pen", "discard", &ids[1], "--reason", "Advertising"],
        None,
    );
    assert_eq!(
        ok(dir.path(), &db, &["mail", "pen", "list"], None),
        "The holding pen is empty.\n"
    );

    let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
    assert!(
        proposals.contains("[other sender: arta.personal@mail.example.org]"),
        "{proposals}"
    );
    // Reprocessing the assigned message changes nothing.
    let again = ok(dir.path(), &db, &["mail", "reprocess", &ids[0]], None);
    assert!(
        again.starts_with(&format!("#{}: proposal ", ids[0])),
        "{again}"
    );
    let json = ok(
        dir.path(),
        &db,
        &["mail", "reprocess", "--json", &ids[0]],
        None,
    );
    let line: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(line["message"], format!("#{}", ids[0]));
    assert_eq!(line["outcome"], "proposal");
    assert_eq!(
        ok(dir.path(), &db, &["mail", "pen", "list"], None),
        "The holding pen is empty.\n"
    );
    let listed = ok(dir.path(), &db, &["mail", "proposals"], None);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    ok(dir.path(), &db, &["outbox", "flush"], None);
    // The receipt goes to the sender, and a copy to the CSO's registered
    // address: the proposal is recorded in the organisation's name.
    let sent = receipts(dir.path());
    assert_eq!(sent.len(), 2);
    let to = |raw: &[u8]| {
        let m = mail_parser::MessageParser::default().parse(raw).unwrap();
        m.to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_string()
    };
    let mut recipients: Vec<String> = sent.iter().map(|r| to(r)).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["arta.personal@mail.example.org", "buxheti@cso.example.org"]
    );
    let copy = sent
        .iter()
        .find(|r| to(r) == "buxheti@cso.example.org")
        .unwrap();
    let copy = String::from_utf8_lossy(copy);
    assert!(copy.contains("arta.personal@mail.example.org"), "{copy}");
}

#[test]
fn a_reply_to_a_receipt_adds_to_that_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let first = ok(
        dir.path(),
        &db,
        &["mail", "ingest"],
        Some(&reply(
            &key,
            &id,
            "p1@cso.example.org",
            "Propozimi ynë i parë.",
        )),
    );
    let receipt_no = receipt_no_in(&first);
    ok(dir.path(), &db, &["outbox", "flush"], None);
    let receipt_raw = receipts(dir.path()).remove(0);
    let receipt = mail_parser::MessageParser::default()
        .parse(&receipt_raw)
        .unwrap();
    let receipt_key = receipt
        .reply_to()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap()
        .to_string();
    let receipt_id = receipt.message_id().unwrap().to_string();

    let addition = format!(
        "From: buxheti@cso.example.org\r\nTo: {receipt_key}\r\nSubject: Re: [{receipt_no}] Morëm propozimin tuaj\r\nMessage-ID: <add1@cso.example.org>\r\nIn-Reply-To: <{receipt_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nShtojmë edhe një pikë: publikim në format CSV.\r\n"
    );
    assert_eq!(
        ingest(dir.path(), &db, &addition),
        format!("standard input: added to proposal {receipt_no}\n")
    );
    // Without the key, the receipt number in the subject is enough.
    let by_subject = format!(
        "From: buxheti@cso.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Fwd: [{}] Morëm propozimin tuaj\r\nMessage-ID: <add2@cso.example.org>\r\n\r\nEdhe një shtesë.\r\n",
        receipt_no.to_lowercase()
    );
    assert_eq!(
        ingest(dir.path(), &db, &by_subject),
        format!("standard input: added to proposal {receipt_no}\n")
    );
    assert_eq!(
        ok(dir.path(), &db, &["mail", "proposals"], None)
            .lines()
            .count(),
        1,
        "no new proposal"
    );

    ok(dir.path(), &db, &["outbox", "flush"], None);
    let confirmations: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .filter_map(|raw| {
            let m = mail_parser::MessageParser::default().parse(&raw)?;
            let s = m.subject()?.to_string();
            s.contains("Shtesa u mor").then_some(s)
        })
        .collect();
    assert_eq!(
        confirmations,
        vec![format!("[{receipt_no}] Shtesa u mor: Buxheti i hapur në bashki"); 2]
    );
}

/// Who the outbox's messages are addressed to, by kind, once flushed.
fn outbox_recipients(dir: &Path, kind: &str) -> Vec<String> {
    let mut to: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(&format!("-{kind}.eml")))
        .map(|p| {
            let raw = std::fs::read(p).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            m.to()
                .unwrap()
                .first()
                .unwrap()
                .address()
                .unwrap()
                .to_string()
        })
        .collect();
    to.sort();
    to
}

/// A message with From: a registered address, no reply key and
/// `dmarc=fail` used to become that CSO's proposal, unflagged, with a
/// receipt to the CSO; a stranger who wrote a receipt number in a subject
/// added to someone else's proposal and was sent a new reply key. Now the
/// forged ones are held with the reason, the others are flagged, and a
/// stranger's addition is confirmed to the proposal's sender.
#[test]
fn a_stranger_cannot_speak_for_a_cso() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, _) = setup(dir.path(), &db);
    let forged_auth = "Authentication-Results: mx.office.example; dmarc=fail (p=none) header.from=cso.example.org; spf=fail smtp.mailfrom=cso.example.org\r\n";
    let by_address = |n: u32, auth: &str| {
        format!(
            "{auth}From: Arta <buxheti@cso.example.org>\r\nTo: ogp-poc@office.example\r\nSubject: Propozim\r\nMessage-ID: <addr{n}@cso.example.org>\r\n\r\nPropozimi {n} pa çelës.\r\n"
        )
    };
    let held = ingest(dir.path(), &db, &by_address(1, forged_auth));
    assert_eq!(
        held,
        "standard input: in the holding pen: no reply key, and the message failed authentication (dmarc=fail spf=fail): buxheti@cso.example.org may not have written it\n"
    );
    let passed = ok(
        dir.path(),
        &db,
        &["mail", "ingest"],
        Some(
            by_address(
                2,
                "Authentication-Results: mx.office.example; dkim=pass header.d=cso.example.org; spf=pass; dmarc=pass\r\n",
            )
            .as_bytes(),
        ),
    );
    assert!(passed.starts_with("standard input: proposal "), "{passed}");
    let receipt_no = receipt_no_in(&passed);
    let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
    assert!(
        proposals.contains(
            "check the sender: routed by the sender's address alone (dmarc=pass dkim=pass spf=pass)"
        ),
        "{proposals}"
    );

    let stranger = |n: u32, auth: &str| {
        format!(
            "{auth}From: someone@elsewhere.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Re: [{receipt_no}] Morëm propozimin tuaj\r\nMessage-ID: <stranger{n}@elsewhere.example.org>\r\n\r\nPlease withdraw our proposal {n}.\r\n"
        )
    };
    let held = ingest(dir.path(), &db, &stranger(1, forged_auth));
    assert!(
        held.starts_with(&format!("standard input: in the holding pen: an addition to {receipt_no} from someone@elsewhere.example.org, who is neither the CSO nor the proposal's sender, and the message failed authentication (dmarc=fail spf=fail)")),
        "{held}"
    );
    let added = ingest(dir.path(), &db, &stranger(2, ""));
    assert_eq!(
        added,
        format!("standard input: added to proposal {receipt_no}\n")
    );
    ok(dir.path(), &db, &["outbox", "flush"], None);
    assert_eq!(
        outbox_recipients(dir.path(), "follow_up"),
        ["buxheti@cso.example.org"],
        "confirmed to the proposal's sender, not to the stranger"
    );
    assert_eq!(
        outbox_recipients(dir.path(), "receipt"),
        ["buxheti@cso.example.org"]
    );
    let pen = ok(dir.path(), &db, &["mail", "pen", "list"], None);
    assert_eq!(pen.matches("failed authentication").count(), 2, "{pen}");

    // A colleague's proposal (with the reply key), then a stranger's
    // addition to it: told to the colleague and to the CSO's address.
    let colleague = format!(
        "From: Besa <besa@cso.example.org>\r\nTo: consult+{key}@ogp.office.example\r\nSubject: Re: Ftesë\r\nMessage-ID: <colleague@cso.example.org>\r\n\r\nPropozimi i koleges.\r\n"
    );
    let theirs = ingest(dir.path(), &db, &colleague);
    let theirs = receipt_no_in(&theirs);
    let addition = format!(
        "From: someone@elsewhere.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Re: [{theirs}] Morëm propozimin tuaj\r\nMessage-ID: <stranger3@elsewhere.example.org>\r\n\r\nPlease withdraw it.\r\n"
    );
    assert_eq!(
        ingest(dir.path(), &db, &addition),
        format!("standard input: added to proposal {theirs}\n")
    );
    ok(dir.path(), &db, &["outbox", "flush"], None);
    assert_eq!(
        outbox_recipients(dir.path(), "follow_up"),
        [
            "besa@cso.example.org",
            "buxheti@cso.example.org",
            "buxheti@cso.example.org"
        ],
        "never to the stranger"
    );
}

/// A delivery report naming `recipient` and quoting `message_id`.
fn delivery_report(n: u32, recipient: &str, message_id: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.cso.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn{n}@mx.cso.example.org>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe mailbox does not exist.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.cso.example.org\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{message_id}>\r\n--b--\r\n"
    )
}

#[test]
fn only_a_delivery_report_about_our_own_mail_to_that_address_marks_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (_, invitation_id) = setup(dir.path(), &db);
    let domain = invitation_id.split('@').nth(1).unwrap().to_string();
    let not_marked = |dir: &Path| {
        let addresses = ok(dir, &db, &["registry", "addresses"], None);
        assert_eq!(addresses, "No address has opted out or bounced.\n");
    };
    // Forged: our domain in a Message-ID, but no key we ever sent.
    let forged = delivery_report(1, "buxheti@cso.example.org", &format!("abc.def@{domain}"));
    assert_eq!(
        ingest(dir.path(), &db, &forged),
        "standard input: kept as bounce, no receipt\n"
    );
    not_marked(dir.path());
    // Forged: a real invitation's Message-ID, but another address named.
    let other = delivery_report(2, "someone@cso.example.org", &invitation_id);
    ingest(dir.path(), &db, &other);
    not_marked(dir.path());

    // Genuine: the invitation sent to that very address.
    let dsn = delivery_report(3, "buxheti@cso.example.org", &invitation_id);
    assert_eq!(
        ingest(dir.path(), &db, &dsn),
        "standard input: kept as bounce, no receipt\n"
    );
    let addresses = ok(dir.path(), &db, &["registry", "addresses"], None);
    assert!(
        addresses.starts_with("buxheti@cso.example.org")
            && addresses.contains("bounced")
            && addresses.contains("delivery report: status 5.1.1"),
        "{addresses}"
    );
}

#[test]
#[ignore = "needs swaks (Debian swaks)"]
fn an_lmtp_session_from_swaks_is_answered_per_recipient_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let port = common::free_port();
    let env = [
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        ("COCREATE_INBOUND_LMTP_LISTEN", format!("127.0.0.1:{port}")),
        ("COCREATE_INBOUND_MAX_MESSAGE_BYTES", "4096".to_string()),
    ];
    let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    let message = write(
        dir.path(),
        "lmtp.eml",
        reply(
            &key,
            &id,
            "lmtp1@cso.example.org",
            "Propozim nëpërmjet LMTP.",
        ),
    );
    let swaks = |to: &str, data: &Path| {
        std::process::Command::new("swaks")
            .args([
                "--protocol",
                "LMTP",
                "--server",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--from",
                "buxheti@cso.example.org",
                "--to",
                to,
                "--data",
                data.to_str().unwrap(),
                "--hide-informational",
            ])
            .output()
            .expect("swaks (Debian package swaks) must be installed")
    };
    let out = swaks(
        &format!("consult+{key}@ogp.office.example,consult@ogp.office.example"),
        &message,
    );
    let transcript = stdout(&out);
    assert_eq!(
        transcript.matches("<-  250 2.0.0 Stored").count(),
        2,
        "one answer per recipient:\n{transcript}"
    );
    let elsewhere = swaks("someone@elsewhere.example.org", &message);
    assert!(
        stdout(&elsewhere)
            .contains("550 5.1.1 <someone@elsewhere.example.org> is not a cocreate address"),
        "{}",
        stdout(&elsewhere)
    );
    let big = write(
        dir.path(),
        "big.eml",
        format!(
            "{}{}",
            String::from_utf8_lossy(&reply(&key, &id, "big@cso.example.org", "x")),
            "y".repeat(5000)
        ),
    );
    let refused = swaks(&format!("consult+{key}@ogp.office.example"), &big);
    assert!(
        stdout(&refused).contains("552 5.3.4 Messages are limited to 4096 bytes"),
        "{}",
        stdout(&refused)
    );
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());

    let proposals = ok(dir.path(), &db, &["mail", "proposals"], None);
    assert_eq!(
        proposals.lines().count(),
        1,
        "stored once for two recipients: {proposals}"
    );
    assert!(proposals.contains("Propozim nëpërmjet LMTP."));
}

/// The POC hears every day what waits in the holding pen: `serve` queues
/// the summary on its schedule (here every second), once a day, and only
/// when something waits. `mail pen summary` shows it.
#[test]
fn serve_sends_the_poc_one_holding_pen_summary_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    setup(dir.path(), &db);
    assert_eq!(
        ok(dir.path(), &db, &["mail", "pen", "summary"], None),
        "Nothing waits in the holding pen, and there is nothing else to report.\n"
    );
    let stranger = b"From: someone@elsewhere.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Pyetje <urgjente>\r\nMessage-ID: <q1@elsewhere.example.org>\r\n\r\nA mund t\xc3\xab d\xc3\xabrgoj propozimin k\xc3\xabtu?\r\n";
    ok(dir.path(), &db, &["mail", "ingest"], Some(stranger));
    let shown = ok(dir.path(), &db, &["mail", "pen", "summary"], None);
    assert!(
        shown.starts_with(
            "To: ogp-poc@office.example\nSubject: Në pritje: 1 mesazh pa adresë në cocreate\n"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("Nga: someone@elsewhere.example.org"),
        "{shown}"
    );
    assert!(shown.contains("Subjekti: Pyetje <urgjente>"), "{shown}");
    assert!(
        shown.contains("nuk është adresë e një OShC-je të regjistruar"),
        "{shown}"
    );

    let env = [
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        ("COCREATE_SCHEDULES_PEN_SUMMARY", "* * * * * *".to_string()),
    ];
    let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
    let summaries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-pen_summary.eml"))
            .collect()
    };
    let start = std::time::Instant::now();
    while summaries().is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "no summary was sent"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The schedule fires every second; the day's summary goes out once.
    std::thread::sleep(std::time::Duration::from_secs(3));
    daemon.stop(libc::SIGTERM);
    let sent = summaries();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let raw = std::fs::read(&sent[0]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("ogp-poc@office.example")
    );
    assert!(m.body_html(0).unwrap().contains("Pyetje &lt;urgjente&gt;"));
    assert_eq!(
        ok(dir.path(), &db, &["mail", "pen", "summary", "--send"], None),
        "Today's summary was sent already.\n"
    );
}

/// `serve` down over the summary's scheduled time (twice), then started:
/// one catch-up summary at start, not zero and not one per missed time; a
/// restart after that sends nothing more. The daemon's clock is moved
/// forward two days instead of waiting for them.
#[test]
fn a_summary_missed_while_serve_was_down_is_caught_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    setup(dir.path(), &db);
    let stranger = b"From: someone@elsewhere.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Pyetje\r\nMessage-ID: <q2@elsewhere.example.org>\r\n\r\nA e moret?\r\n";
    ok(dir.path(), &db, &["mail", "ingest"], Some(stranger));
    let summaries = || -> usize {
        std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with("-pen_summary.eml")
            })
            .count()
    };
    const DAY: i64 = 24 * 60 * 60;
    let serve = |offset_seconds: i64, wait_for_summary: bool| -> Vec<String> {
        let env = [
            (
                "COCREATE_OUTBOX_FILE_DIR",
                dir.path().join("outbox").display().to_string(),
            ),
            // Once a day at 03:00 office time.
            ("COCREATE_SCHEDULES_PEN_SUMMARY", "0 0 3 * * *".to_string()),
            (
                "COCREATE_TEST_CLOCK_OFFSET_SECONDS",
                offset_seconds.to_string(),
            ),
        ];
        let daemon = common::Daemon::start_with(dir.path(), &db, &env, &[]);
        let start = std::time::Instant::now();
        while wait_for_summary && summaries() == 0 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(15),
                "no catch-up summary was sent"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (status, log) = daemon.stop(libc::SIGTERM);
        assert!(status.success(), "{log:#?}");
        log
    };
    let runs = |log: &[String]| -> Vec<String> {
        log.iter()
            .filter(|l| l.contains("\"job\":\"pen_summary\"") && l.contains("catch_up"))
            .cloned()
            .collect()
    };

    // First start: the schedule is new, so nothing before it is owed.
    let first = serve(0, false);
    assert_eq!(runs(&first), Vec::<String>::new());
    assert_eq!(summaries(), 0);

    // Two days later, 03:00 has passed twice: one summary, at start.
    let second = serve(2 * DAY, true);
    let caught_up = runs(&second);
    assert_eq!(caught_up.len(), 1, "{caught_up:#?}");
    assert!(caught_up[0].contains("\"catch_up\":true"), "{caught_up:#?}");
    assert_eq!(summaries(), 1);

    // A minute after that, nothing is owed any more.
    let third = serve(2 * DAY + 60, false);
    assert_eq!(runs(&third), Vec::<String>::new());
    assert_eq!(summaries(), 1);
}

/// Attachments are kept apart by content; one over the size limit stays in
/// the stored message and the receipt asks for a link; an image inside the
/// HTML (a signature logo) is not listed back as a document; winmail.dat is
/// named for what it is.
#[test]
fn attachments_are_kept_apart_and_the_receipt_says_what_came() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let big = "A".repeat(3000);
    let raw = format!(
        "From: Arta <buxheti@cso.example.org>\r\nTo: consult+{key}@ogp.office.example\r\nSubject: Re: Ftese\r\nMessage-ID: <att1@cso.example.org>\r\nIn-Reply-To: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
--m\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Propozimi yn\u{eb} n\u{eb} PDF.</p><img src=\"cid:logo@cso\">\r\n\
--r\r\nContent-Type: image/png\r\nContent-ID: <logo@cso>\r\nContent-Disposition: inline; filename=\"image001.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n\
--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"propozimi.pdf\"\r\n\r\n%PDF-1.4 propozimi\r\n\
--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"studimi.pdf\"\r\n\r\n{big}\r\n\
--m\r\nContent-Type: application/ms-tnef\r\nContent-Disposition: attachment; filename=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\neJ8+IgAAAA==\r\n--m--\r\n"
    );
    let mut child = common::command(dir.path(), &db)
        .env("COCREATE_OUTBOX_FILE_DIR", dir.path().join("outbox"))
        .env("COCREATE_INBOUND_MAX_ATTACHMENT_BYTES", "2000")
        .args(["mail", "ingest"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("receipt queued"), "{}", stdout(&out));

    // Kept apart: the small PDF, the logo and winmail.dat; not the big one.
    let kept = |content: &[u8]| {
        use sha2::Digest;
        let sha: String = sha2::Sha256::digest(content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        dir.path()
            .join("data/attachments")
            .join(&sha[..2])
            .join(&sha)
    };
    assert_eq!(
        std::fs::read(kept(b"%PDF-1.4 propozimi")).unwrap(),
        b"%PDF-1.4 propozimi"
    );
    assert!(!kept(big.as_bytes()).exists());

    ok(dir.path(), &db, &["outbox", "flush"], None);
    let receipt = receipts(dir.path()).pop().unwrap();
    let m = mail_parser::MessageParser::default()
        .parse(&receipt)
        .unwrap();
    let text = m.body_text(0).unwrap();
    assert!(text.contains("Propozimi ynë në PDF."), "{text}");
    assert!(text.contains("- propozimi.pdf (18 B)"), "{text}");
    assert!(
        text.contains("- studimi.pdf (3 KB) (shumë e madhe për t'u ruajtur"),
        "{text}"
    );
    assert!(
        text.contains("- winmail.dat (7 B) (të dhëna formatimi të Outlook"),
        "{text}"
    );
    assert!(!text.contains("image001.png"), "{text}");
}

/// Each government draft commitment in the invitation has its own reply
/// address; a comment sent there is recorded against that draft, and the
/// receipt says so. A number the consultation does not have is an ordinary
/// proposal.
#[test]
fn a_comment_sent_to_a_drafts_address_is_recorded_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let (key, id) = setup(dir.path(), &db);
    let invitation = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("invitation"))
        .unwrap();
    let m = mail_parser::MessageParser::default()
        .parse(&std::fs::read(invitation).unwrap())
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    let address = format!("consult+{key}-d1@ogp.office.example");
    assert!(
        m.contains("1. Budget data every month") && m.contains(&format!("Komento: {address}")),
        "{m}"
    );
    let comment = |to: &str, message_id: &str, body: &str| {
        format!(
            "From: Arta <buxheti@cso.example.org>\r\nTo: {to}\r\nSubject: Re: Ftesë për konsultim\r\nMessage-ID: <{message_id}>\r\nIn-Reply-To: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    };
    ok(
        dir.path(),
        &db,
        &["mail", "ingest"],
        Some(&comment(
            &address,
            "d1@cso.example.org",
            "Dakord, por çdo javë.",
        )),
    );
    ok(
        dir.path(),
        &db,
        &["mail", "ingest"],
        Some(&comment(
            &format!("consult+{key}-d7@ogp.office.example"),
            "d7@cso.example.org",
            "Një propozim tjetër.",
        )),
    );
    let listed = ok(dir.path(), &db, &["mail", "proposals"], None);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].contains(" OGP-IN ") && lines[0].contains("[on draft 1]"),
        "{listed}"
    );
    assert!(lines[0].ends_with("Dakord, por çdo javë."), "{listed}");
    assert!(!lines[1].contains("[on draft"), "{listed}");

    ok(dir.path(), &db, &["outbox", "flush"], None);
    let texts: Vec<String> = receipts(dir.path())
        .iter()
        .map(|r| {
            mail_parser::MessageParser::default()
                .parse(r)
                .unwrap()
                .body_text(0)
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(texts.len(), 2);
    let on_draft =
        "Regjistruar si koment për angazhimin e propozuar nga qeveria 1: Budget data every month";
    assert_eq!(
        texts.iter().filter(|t| t.contains(on_draft)).count(),
        1,
        "{texts:#?}"
    );
}

/// A From that is not an address holds the message, but what else it says
/// still shows: its Message-ID, subject and text, in `mail show` and
/// `mail inspect`; `mail show --raw` prints it as it arrived.
#[test]
fn a_message_with_an_unreadable_sender_still_shows_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let raw = "From: Arta Hoxha <arta at cso.example.org>\r\nTo: consult@ogp.office.example\r\nSubject: Propozim për buxhetin\r\nMessage-ID: <unread1@cso.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPropozojmë publikimin mujor të buxhetit.\r\n";
    let taken = ok(dir.path(), &db, &["mail", "ingest"], Some(raw.as_bytes()));
    assert_eq!(
        taken,
        "standard input: in the holding pen: the sender in From ('Arta Hoxha <arta at cso.example.org>') is not an email address\n"
    );
    let pen = ok(dir.path(), &db, &["mail", "pen", "list"], None);
    assert!(pen.contains("\"Propozim për buxhetin\""), "{pen}");
    let shown = ok(dir.path(), &db, &["mail", "show", "1"], None);
    for line in [
        "From: (none that can be read)\n",
        "Message-ID: unread1@cso.example.org\n",
        "Subject: Propozim për buxhetin\n",
        "\nPropozojmë publikimin mujor të buxhetit.\n",
    ] {
        assert!(shown.contains(line), "{line} in {shown}");
    }
    assert_eq!(
        ok(dir.path(), &db, &["mail", "show", "1", "--raw"], None),
        raw
    );
    let inspected = ok(
        dir.path(),
        &db,
        &["mail", "inspect", "-"],
        Some(raw.as_bytes()),
    );
    let json: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(json["message_id"], "unread1@cso.example.org");
    assert_eq!(json["subject"], "Propozim për buxhetin");
    assert_eq!(
        json["reply_text"],
        "Propozojmë publikimin mujor të buxhetit."
    );
    assert_eq!(json["from"], serde_json::Value::Null);
}

/// The POC's summary is in one language throughout: in Albanian, the
/// reasons messages wait are Albanian too (they were English).
#[test]
fn the_albanian_pen_summary_gives_its_reasons_in_albanian() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    for (n, from) in [
        "Arta Hoxha <arta at cso.example.org>",
        "stranger@elsewhere.example.org",
    ]
    .iter()
    .enumerate()
    {
        let raw = format!(
            "From: {from}\r\nTo: consult@ogp.office.example\r\nSubject: Propozim {n}\r\nMessage-ID: <sq{n}@elsewhere.example.org>\r\n\r\nPropozojmë diçka.\r\n"
        );
        ok(dir.path(), &db, &["mail", "ingest"], Some(raw.as_bytes()));
    }
    let summary = |lang: &str| {
        let out = common::command(dir.path(), &db)
            .env("COCREATE_SCHEDULES_PEN_SUMMARY_LANGUAGE", lang)
            .args(["mail", "pen", "summary"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let sq = summary("sq");
    for reason in [
        "dërguesi te From ('Arta Hoxha <arta at cso.example.org>') nuk është adresë emaili",
        "pa çelës përgjigjeje, dhe stranger@elsewhere.example.org nuk është adresë e një OShC-je të regjistruar",
    ] {
        assert!(sq.contains(reason), "{reason} in {sq}");
    }
    assert!(
        !sq.contains("is not"),
        "English in the Albanian summary: {sq}"
    );
    let en = summary("en");
    assert!(
        en.contains(
            "the sender in From ('Arta Hoxha <arta at cso.example.org>') is not an email address"
        ),
        "{en}"
    );
    assert!(
        en.contains(
            "no reply key, and stranger@elsewhere.example.org is not a registered CSO address"
        ),
        "{en}"
    );
}
