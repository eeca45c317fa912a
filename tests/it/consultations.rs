//! Consultations as the POC runs them: the legal minimum period in working
//! days, deadline extensions that tell the invited CSOs, and unsubscribing
//! from the invitation's own link. Mail goes to .eml files (the embedded
//! default transport), read back here.

use crate::common;

use std::path::Path;
use std::process::Output;

use crate::common::{Daemon, TestDb, fiscal_consultation, stderr, stdout, write};

/// Runs cocreate with the file transport writing into `dir/outbox`.
fn run(dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    common::command(dir, db)
        .env("COCREATE_OUTBOX_FILE_DIR", dir.join("outbox"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, db: &TestDb, args: &[&str]) -> String {
    let out = run(dir, db, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn eml_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "eml"));
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn setup(dir: &Path, db: &TestDb) {
    let registry = write(
        dir,
        "r.csv",
        "Registration number,Name,Email,Fields of activity,Language\n\
         F1,Qendra për Buxhet të Hapur,buxheti@cso.example.org,Buxhet,sq\n\
         F2,Budget Watch,watch@cso.example.org,Budget,en\n",
    );
    ok(dir, db, &["registry", "import", registry.to_str().unwrap()]);
}

/// A CR/LF in a meeting link, title or place used to write extra lines
/// (ATTACH:, X-…) into every invitation's .ics; now a consultation file
/// with a control character in a one-line field is refused with the field
/// named, and a line break in a description is kept as one.
#[test]
fn control_characters_in_a_consultation_file_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let spec = fiscal_consultation(dir.path(), "OGP-CTRL");
    let original = std::fs::read_to_string(&spec).unwrap();
    for (from, to, error) in [
        (
            r#"link = "https://meet.example/ogp-fiscal""#,
            r#"link = "https://meet.example/ogp-fiscal\r\nATTACH:https://evil.example/x""#,
            "meeting.link contains a control character (U+000D); it must be one line of text",
        ),
        (
            r#"place = "Kryeministria, salla 2""#,
            r#"place = "Kryeministria\rX-EVIL:1""#,
            "meeting.place contains a control character (U+000D); it must be one line of text",
        ),
        (
            r#"title = { sq = "Buxheti i hapur në bashki""#,
            r#"title = { sq = "Buxheti\nX-EVIL:1""#,
            "title.sq contains a control character (U+000A); it must be one line of text",
        ),
        (
            r#"description.en = "Tell us which budget data you need.""#,
            r#"description.en = "Tell us\u0007 which budget data you need.""#,
            "description.en contains a control character (U+0007) that is not a line break",
        ),
    ] {
        assert!(original.contains(from), "{from}");
        std::fs::write(&spec, original.replace(from, to)).unwrap();
        let refused = run(
            dir.path(),
            &db,
            &["consultation", "create", "--file", spec.to_str().unwrap()],
        );
        assert_eq!(refused.status.code(), Some(1));
        assert_eq!(stderr(&refused), format!("error: {error}\n"));
    }
    std::fs::write(
        &spec,
        original.replace(
            r#"description.en = "Tell us which budget data you need.""#,
            r#"description.en = "Tell us which budget data you need.\r\nAnd why.""#,
        ),
    )
    .unwrap();
    ok(
        dir.path(),
        &db,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
}

#[test]
fn a_period_below_the_legal_minimum_needs_a_recorded_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let spec = fiscal_consultation(dir.path(), "OGP-SHORT");
    let short = run(
        dir.path(),
        &db,
        &[
            "consultation",
            "create",
            "--file",
            spec.to_str().unwrap(),
            "--closes",
            "2026-12-15",
        ],
    );
    assert_eq!(short.status.code(), Some(1));
    assert_eq!(
        stderr(&short),
        "error: 2026-12-01 to 2026-12-15 is 9 working days, shorter than the legal minimum of 20 (Law 146/2014, Art. 15); choose a deadline on or after 2026-12-31 or give the reason with --short-period-reason\n"
    );
    let with_reason = ok(
        dir.path(),
        &db,
        &[
            "consultation",
            "create",
            "--file",
            spec.to_str().unwrap(),
            "--closes",
            "2026-12-15",
            "--short-period-reason",
            "The plan is due to OGP on 31 December",
        ],
    );
    assert!(with_reason.contains("9 working days"), "{with_reason}");
    assert!(with_reason.contains("the reason is recorded: The plan is due to OGP on 31 December"));
    let shown = ok(dir.path(), &db, &["consultation", "show", "OGP-SHORT"]);
    assert!(
        shown.contains(
            "Shorter than the legal minimum because: The plan is due to OGP on 31 December"
        )
    );

    let again = run(
        dir.path(),
        &db,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    assert_eq!(
        stderr(&again),
        "error: a consultation with reference OGP-SHORT already exists\n"
    );
    let missing = run(
        dir.path(),
        &db,
        &["consultation", "create", "--reference", "OGP-X"],
    );
    assert_eq!(
        stderr(&missing),
        "error: the consultation needs a policy area (--policy-area)\n"
    );
}

#[test]
fn extending_the_deadline_is_recorded_and_tells_every_invited_cso() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    setup(dir.path(), &db);
    let spec = fiscal_consultation(dir.path(), "OGP-EXT");
    ok(
        dir.path(),
        &db,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );

    let draft = run(dir.path(), &db, &["outreach", "send", "OGP-EXT"]);
    assert_eq!(
        stderr(&draft),
        "error: consultation OGP-EXT is draft: invitations go out only while it is open (`cocreate consultation open OGP-EXT`)\n"
    );
    ok(dir.path(), &db, &["consultation", "open", "OGP-EXT"]);
    ok(dir.path(), &db, &["outreach", "send", "OGP-EXT"]);

    let edit = run(
        dir.path(),
        &db,
        &["consultation", "edit", "OGP-EXT", "--closes", "2027-01-20"],
    );
    assert!(
        stderr(&edit).contains("change its deadline with `cocreate consultation extend OGP-EXT"),
        "{}",
        stderr(&edit)
    );
    let too_long = run(
        dir.path(),
        &db,
        &[
            "consultation",
            "extend",
            "OGP-EXT",
            "--until",
            "2027-03-01",
            "--reason",
            "More time",
        ],
    );
    assert_eq!(
        stderr(&too_long),
        "error: 2026-12-01 to 2027-03-01 is 61 working days, more than the maximum of 40; the latest possible deadline is 2027-01-29\n"
    );
    let extended = ok(
        dir.path(),
        &db,
        &[
            "consultation",
            "extend",
            "OGP-EXT",
            "--until",
            "2027-01-25",
            "--reason",
            "Many CSOs asked for more time",
        ],
    );
    assert_eq!(
        extended,
        "Deadline of OGP-EXT moved from 2027-01-11 to 2027-01-25 (36 working days); 2 CSO addresses will be told.\n"
    );
    ok(dir.path(), &db, &["outbox", "flush"]);
    let mails: Vec<String> = eml_files(dir.path())
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert_eq!(mails.len(), 4, "two invitations, two notices");
    let notices: Vec<_> = mails
        .iter()
        .filter_map(|m| {
            mail_parser::MessageParser::default()
                .parse(m.as_bytes())
                .map(|p| {
                    (
                        p.subject().unwrap_or("").to_string(),
                        p.body_text(0).unwrap_or_default().into_owned(),
                    )
                })
        })
        .filter(|(s, _)| s.starts_with("Afati u zgjat") || s.starts_with("Deadline extended"))
        .collect();
    assert_eq!(notices.len(), 2);
    for (subject, body) in notices {
        if subject.starts_with("Deadline") {
            assert_eq!(
                subject,
                "Deadline extended: Open municipal budgets (until 25 Jan 2027)"
            );
            assert!(
                body.contains("extended from Monday 11 January 2027 to Monday 25 January 2027."),
                "{body}"
            );
            assert!(body.contains("Reason: Many CSOs asked for more time"));
        } else {
            assert!(
                body.contains("u zgjat nga e hënë, 11 janar 2027 në e hënë, 25 janar 2027."),
                "{body}"
            );
        }
    }
    let shown = ok(dir.path(), &db, &["consultation", "show", "OGP-EXT"]);
    assert!(
        shown.contains("from 2027-01-11 to 2027-01-25: Many CSOs asked for more time"),
        "{shown}"
    );
}

#[test]
fn the_unsubscribe_link_shows_a_button_and_a_post_stops_invitations() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    setup(dir.path(), &db);
    let spec = fiscal_consultation(dir.path(), "OGP-UNSUB");
    ok(
        dir.path(),
        &db,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    ok(dir.path(), &db, &["consultation", "open", "OGP-UNSUB"]);
    ok(dir.path(), &db, &["outreach", "send", "OGP-UNSUB"]);
    ok(dir.path(), &db, &["outbox", "flush"]);

    let keys: Vec<(String, String)> = eml_files(dir.path())
        .iter()
        .map(|raw| {
            let m = mail_parser::MessageParser::default().parse(raw).unwrap();
            let to = common::first_to(&m);
            let url = m
                .header_raw("List-Unsubscribe")
                .unwrap()
                .trim()
                .trim_matches(['<', '>'])
                .to_string();
            (to, url.rsplit('/').next().unwrap().to_string())
        })
        .collect();
    let key_of = |to: &str| keys.iter().find(|(t, _)| t == to).unwrap().1.clone();

    let env = [(
        "COCREATE_OUTBOX_FILE_DIR",
        dir.path().join("outbox").display().to_string(),
    )];
    let daemon = Daemon::start_with(dir.path(), &db, &env, &[]);
    let watch = key_of("watch@cso.example.org");
    let (status, page) = daemon.get(&format!("/unsubscribe/{watch}"));
    assert_eq!(status, 200);
    assert!(page.contains("<form method=\"post\"") && page.contains("watch@cso.example.org"));
    // In the CSO's language (English for Budget Watch), naming the office.
    assert!(
        page.contains("Stop consultation invitations")
            && page.contains("Government Point of Contact"),
        "{page}"
    );
    // Following the link changed nothing.
    assert!(ok(dir.path(), &db, &["registry", "addresses"]).contains("No address has opted out"));

    let (status, page) = daemon.post(&format!("/unsubscribe/{watch}"), "");
    assert_eq!(status, 200);
    assert!(page.contains("You are unsubscribed"), "{page}");
    // Visited again, the page says so.
    let (_, page) = daemon.get(&format!("/unsubscribe/{watch}"));
    assert!(page.contains("already unsubscribed"), "{page}");
    // The mail client's one-click request (RFC 8058) works the same way.
    let buxheti = key_of("buxheti@cso.example.org");
    let (status, _) = daemon.post(
        &format!("/unsubscribe/{buxheti}"),
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(status, 200);
    assert_eq!(daemon.get("/unsubscribe/notakeyatall").0, 404);
    assert_eq!(daemon.get("/unsubscribe/abcdefghijklmnopqrst").0, 404);
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());

    let addresses = ok(dir.path(), &db, &["registry", "addresses"]);
    assert!(
        addresses.contains("watch@cso.example.org") && addresses.contains("(unsubscribe page)"),
        "{addresses}"
    );
    assert!(
        addresses.contains("(one-click from the mail client)"),
        "{addresses}"
    );

    let next = fiscal_consultation(dir.path(), "OGP-NEXT");
    ok(
        dir.path(),
        &db,
        &["consultation", "create", "--file", next.to_str().unwrap()],
    );
    ok(dir.path(), &db, &["consultation", "open", "OGP-NEXT"]);
    let preview = ok(dir.path(), &db, &["outreach", "preview", "OGP-NEXT"]);
    assert!(
        preview.starts_with("OGP-NEXT (FISCAL): 0 addresses will be invited"),
        "{preview}"
    );
    assert!(
        preview.contains("<watch@cso.example.org> — opted out on "),
        "{preview}"
    );

    let no_reason = run(
        dir.path(),
        &db,
        &[
            "registry",
            "restore",
            "watch@cso.example.org",
            "--reason",
            " ",
        ],
    );
    assert_eq!(no_reason.status.code(), Some(1));
    ok(
        dir.path(),
        &db,
        &[
            "registry",
            "restore",
            "watch@cso.example.org",
            "--reason",
            "Asked by phone to be invited again",
        ],
    );
    let preview = ok(dir.path(), &db, &["outreach", "preview", "OGP-NEXT"]);
    assert!(
        preview.starts_with("OGP-NEXT (FISCAL): 1 address will be invited"),
        "{preview}"
    );
}

#[test]
fn the_rate_limit_holds_and_a_stop_mid_batch_is_prompt_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let mut csv = String::from("Registration number,Name,Email,Fields of activity\n");
    for i in 0..40 {
        csv.push_str(&format!("R{i},Shoqata {i},cso{i}@cso.example.org,Buxhet\n"));
    }
    let registry = write(dir.path(), "r.csv", csv);
    ok(
        dir.path(),
        &db,
        &["registry", "import", registry.to_str().unwrap()],
    );
    let spec = fiscal_consultation(dir.path(), "OGP-RATE");
    ok(
        dir.path(),
        &db,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    ok(dir.path(), &db, &["consultation", "open", "OGP-RATE"]);
    ok(dir.path(), &db, &["outreach", "send", "OGP-RATE"]);

    let env = [
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        ("COCREATE_OUTBOX_RATE_PER_SECOND", "5".to_string()),
    ];
    let daemon = Daemon::start_with(dir.path(), &db, &env, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let asked = std::time::Instant::now();
    let (status, _) = daemon.stop(libc::SIGTERM);
    assert!(status.success());
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(3),
        "stopping waited for the whole batch: {:?}",
        asked.elapsed()
    );
    let sent = eml_files(dir.path()).len();
    // 5 a second for about 1.5 s: the first at once, then one every 200 ms.
    assert!(
        (5..=11).contains(&sent),
        "{sent} sent at 5 messages/s in 1.5 s"
    );
    let status = ok(dir.path(), &db, &["outbox", "status"]);
    assert_eq!(
        status,
        format!("Queued {}, sending 0, sent {sent}, failed 0.\n", 40 - sent),
        "unsent messages went back to the queue, not left claimed"
    );
    ok(dir.path(), &db, &["outbox", "flush"]);
    assert_eq!(eml_files(dir.path()).len(), 40);
}

/// Draft commitments and the reason for an extension in Albanian and
/// English: each CSO reads them in its own language (an English CSO used
/// to get the Albanian draft), and `consultation show` prints the drafts.
#[test]
fn drafts_and_reasons_reach_each_cso_in_its_language() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    setup(dir.path(), &db);
    let spec = write(
        dir.path(),
        "OGP-LANG.toml",
        r#"reference = "OGP-LANG"
policy_area = "FISCAL"
opens = 2026-12-01
closes = 2027-01-11
title = { sq = "Buxheti i hapur në bashki", en = "Open municipal budgets" }
description.sq = "Na tregoni çfarë të dhënash buxhetore ju nevojiten."
description.en = "Tell us which budget data you need."

[[drafts]]
title = { sq = "Të dhënat e buxhetit çdo muaj", en = "Budget data every month" }
text = { sq = "Ministria publikon zbatimin e buxhetit\ncdo muaj si të dhëna të hapura.", en = "The ministry publishes budget execution\nmonthly as open data." }

[[drafts]]
title = "Open contracts"
text = "One text, read in both languages."
"#,
    );
    ok(
        dir.path(),
        &db,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    ok(dir.path(), &db, &["consultation", "open", "OGP-LANG"]);
    ok(dir.path(), &db, &["outreach", "send", "OGP-LANG"]);
    ok(
        dir.path(),
        &db,
        &[
            "consultation",
            "extend",
            "OGP-LANG",
            "--until",
            "2027-01-25",
            "--reason",
            "Shumë OSHC kërkuan më shumë kohë",
            "--reason-en",
            "Many CSOs asked for more time",
        ],
    );
    ok(dir.path(), &db, &["outbox", "flush"]);
    let parsed: Vec<(String, String, String)> = eml_files(dir.path())
        .iter()
        .map(|m| {
            let p = mail_parser::MessageParser::default().parse(m).unwrap();
            (
                common::first_to(&p),
                p.subject().unwrap_or("").to_string(),
                p.body_text(0).unwrap_or_default().into_owned(),
            )
        })
        .collect();
    let mail = |to: &str, subject: &str| -> String {
        parsed
            .iter()
            .find(|(t, s, _)| t == to && s.starts_with(subject))
            .map(|(_, _, body)| body.clone())
            .unwrap_or_else(|| panic!("no '{subject}' to {to}"))
    };
    let sq = mail("buxheti@cso.example.org", "Ftesë");
    assert!(sq.contains("Të dhënat e buxhetit çdo muaj"), "{sq}");
    assert!(
        sq.contains("Ministria publikon zbatimin e buxhetit"),
        "{sq}"
    );
    assert!(!sq.contains("Budget data every month"), "{sq}");
    let en = mail("watch@cso.example.org", "Invitation to a consultation");
    assert!(en.contains("Budget data every month"), "{en}");
    assert!(
        en.contains("The ministry publishes budget execution"),
        "{en}"
    );
    assert!(!en.contains("Të dhënat e buxhetit"), "{en}");
    assert!(
        sq.contains("One text, read in both languages.")
            && en.contains("One text, read in both languages.")
    );
    assert!(
        mail("buxheti@cso.example.org", "Afati u zgjat")
            .contains("Arsyeja: Shumë OSHC kërkuan më shumë kohë")
    );
    assert!(
        mail("watch@cso.example.org", "Deadline extended")
            .contains("Reason: Many CSOs asked for more time")
    );

    let shown = ok(dir.path(), &db, &["consultation", "show", "OGP-LANG"]);
    for line in [
        "Draft commitment 1: Të dhënat e buxhetit çdo muaj (en: Budget data every month)\n",
        "  (sq)\n    Ministria publikon zbatimin e buxhetit\n    cdo muaj si të dhëna të hapura.\n",
        "  (en)\n    The ministry publishes budget execution\n    monthly as open data.\n",
        "Draft commitment 2: Open contracts\n    One text, read in both languages.\n",
        "from 2027-01-11 to 2027-01-25: Shumë OSHC kërkuan më shumë kohë (en: Many CSOs asked for more time)\n",
    ] {
        assert!(shown.contains(line), "{line} in {shown}");
    }
}
