//! Invitations through a real SMTP relay (aiosmtpd): what arrives, in which
//! language, with which headers, reply keys and attachments; and what
//! happens when the relay defers or refuses a recipient.

mod common;

use std::path::Path;
use std::process::Output;

use common::{SmtpSink, TestDb, fiscal_consultation, stderr, stdout, write};
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
        assert_eq!(d.mail_from, "ogp-poc@office.example");
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
                "Invitation to consultation: Open municipal budgets (deadline 11.01.2027)"
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
        stdout(&newcomer).starts_with("Queued 1 invitations"),
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
    let fast = [("COCREATE_OUTBOX_RETRY_BASE_SECONDS", "1")];
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
    assert!(
        status.contains("invitation to reject@cso.example.org after 1 attempts: permanent error (550): 5.1.1 <reject@cso.example.org>: mailbox unavailable"),
        "{status}"
    );

    // The retry waits about a second (base 1 s, with jitter), then succeeds.
    std::thread::sleep(std::time::Duration::from_millis(1400));
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
