//! Accountability at the terminal, as the POC works: proposals in from
//! mail and the holding pen (one from an organisation outside the registry,
//! one from a person), filtered and read with their attachments, answered
//! (two as one group), published with an outcome notice to each sender,
//! corrected once, and exported without a single contact detail.

use std::path::Path;

use crate::common::*;

fn refused(dir: &Path, db: &TestDb, args: &[&str]) -> String {
    let out = cocreate(dir, db, args);
    assert!(
        !out.status.success(),
        "{args:?} should fail: {}",
        stdout(&out)
    );
    stderr(&out)
}

pub fn ingest(dir: &Path, db: &TestDb, raw: &str) -> String {
    let mut child = command(dir, db)
        .args(["mail", "ingest"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), raw.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

pub const PLAN_PDF: &[u8] = b"%PDF-1.4\n% plani i buxhetit\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

pub fn message(from: &str, id: &str, body: &str, attachment: Option<&[u8]>) -> String {
    let head = format!(
        "From: {from}\r\nTo: ogp-poc@office.example\r\nSubject: Propozim për buxhetin\r\nMessage-ID: <{id}@example.org>\r\nMIME-Version: 1.0\r\n"
    );
    match attachment {
        None => format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"),
        Some(bytes) => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            format!(
                "{head}Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b1\r\nContent-Type: application/pdf; name=\"plani.pdf\"\r\nContent-Disposition: attachment; filename=\"plani.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
            )
        }
    }
}

/// The receipt number of the proposal whose text contains `needle`.
fn receipt_of(dir: &Path, db: &TestDb, needle: &str) -> String {
    let listed: serde_json::Value =
        serde_json::from_str(&ok(dir, db, &["mail", "proposals", "--json"])).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["excerpt"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no proposal with {needle}: {listed:#}"))["receipt_no"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The number of the message from `sender` in the holding pen.
pub fn held_id(dir: &Path, db: &TestDb, sender: &str) -> String {
    let pen = ok(dir, db, &["mail", "pen", "list"]);
    let line = pen
        .lines()
        .find(|l| l.contains(sender))
        .unwrap_or_else(|| panic!("{sender} is not in the pen: {pen}"));
    line[1..].chars().take_while(char::is_ascii_digit).collect()
}

/// The outbox's messages of `kind` (the file transport names each file
/// after its kind), parsed: (recipient, subject, text).
pub fn sent(dir: &Path, kind: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("data/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(&format!("-{kind}.eml")))
        .map(|p| {
            let raw = std::fs::read(p).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            (
                m.to()
                    .unwrap()
                    .first()
                    .unwrap()
                    .address()
                    .unwrap()
                    .to_string(),
                m.subject().unwrap().to_string(),
                m.body_text(0).unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Four proposals in OGP-ACC, one of each kind of sender; returns their
/// receipt numbers: the English-speaking CSO's (with a PDF), the Albanian
/// CSO's, the outside organisation's, the person's.
pub fn four_proposals(dir: &Path, db: &TestDb) -> [String; 4] {
    let registry = write(dir, "r.csv", registry_csv(0, 3));
    let spec = fiscal_consultation(dir, "OGP-ACC");
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-ACC"],
    ] {
        ok(dir, db, &args);
    }
    ingest(
        dir,
        db,
        &message(
            "info0@shoqata0.org.al",
            "a",
            "Dear colleagues,\r\n\r\nWe propose monthly open budget data per municipality. Call +355 69 123 4567 or write to drejtori@shoqata0.org.al.",
            Some(PLAN_PDF),
        ),
    );
    ingest(
        dir,
        db,
        &message(
            "info1@shoqata1.org.al",
            "b",
            "Përshëndetje,\r\n\r\nPropozojmë publikimin e prokurimeve të bashkive çdo javë.",
            None,
        ),
    );
    ingest(
        dir,
        db,
        &message(
            "kontakt@levizja.example.net",
            "c",
            "Kërkojmë dëgjesa publike për buxhetin në çdo lagje.",
            None,
        ),
    );
    ingest(
        dir,
        db,
        &message(
            "qytetari@example.net",
            "d",
            "=HYPERLINK(\"http://example.net\") Dua një aplikacion për taksat.",
            None,
        ),
    );
    ok(
        dir,
        db,
        &[
            "mail",
            "pen",
            "assign",
            &held_id(dir, db, "kontakt@levizja"),
            "--consultation",
            "OGP-ACC",
            "--outside",
            "Lëvizja Qytetare Vlorë",
        ],
    );
    ok(
        dir,
        db,
        &[
            "mail",
            "pen",
            "assign",
            &held_id(dir, db, "qytetari@"),
            "--consultation",
            "OGP-ACC",
            "--individual",
        ],
    );
    [
        receipt_of(dir, db, "monthly open budget"),
        receipt_of(dir, db, "prokurimeve"),
        receipt_of(dir, db, "dëgjesa"),
        receipt_of(dir, db, "aplikacion"),
    ]
}

#[test]
fn the_poc_reads_answers_publishes_and_corrects_and_the_exports_hold_no_contact() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = TestDb::sqlite();
    let [en, sq, outside, person] = four_proposals(dir, &db);

    // Listing and filters.
    let listing = ok(dir, &db, &["mail", "proposals"]);
    assert_eq!(
        listing.lines().filter(|l| l.starts_with("OGP-")).count(),
        4,
        "{listing}"
    );
    assert!(
        listing.contains("Lëvizja Qytetare Vlorë (not in the registry)"),
        "{listing}"
    );
    assert!(
        listing.contains("qytetari@example.net (not in the registry)"),
        "{listing}"
    );
    assert!(listing.contains("[1 attachment]"), "{listing}");
    assert!(
        listing.contains("— We propose monthly open budget data"),
        "the greeting is not the excerpt: {listing}"
    );
    let by_cso = ok(dir, &db, &["mail", "proposals", "--cso", "nr. 1"]);
    assert_eq!(
        by_cso.lines().filter(|l| l.starts_with("OGP-")).count(),
        1,
        "{by_cso}"
    );
    assert!(by_cso.starts_with(&sq), "{by_cso}");

    // One proposal whole, and its attachment, byte for byte.
    let shown = ok(dir, &db, &["mail", "proposals", "show", &en]);
    assert!(
        shown.contains("Attachment 1: plani.pdf (application/pdf"),
        "{shown}"
    );
    assert!(shown.contains("Disposition: waiting"), "{shown}");
    let saved = dir.join("saved.pdf");
    ok(
        dir,
        &db,
        &[
            "mail",
            "attachment",
            "get",
            &en,
            "1",
            "--output",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&saved).unwrap(), PLAN_PDF);
    assert!(
        refused(dir, &db, &["mail", "attachment", "get", &en, "2"])
            .contains("there is no number 2")
    );

    // Decisions: a group of two, with what the law and the CSOs need.
    let group = |extra: &[&str]| {
        let mut args = vec![
            "disposition",
            "set",
            en.as_str(),
            sq.as_str(),
            "--disposition",
            "merged",
            "--response-sq",
            "U përfshi në angazhimin 3.",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let as_strs = |v: &[String]| v.to_vec();
    let args = as_strs(&group(&[]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(refused(dir, &db, &args).contains("name the commitment"));
    let args = as_strs(&group(&["--commitment", "Angazhimi 3: Buxheti i hapur"]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(refused(dir, &db, &args).contains("reads English: give the response in English too"));
    let args = as_strs(&group(&[
        "--commitment",
        "Angazhimi 3: Buxheti i hapur",
        "--response-en",
        "It was included in commitment 3.",
    ]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(ok(dir, &db, &args).contains("recorded for 2 proposals"));
    ok(
        dir,
        &db,
        &[
            "disposition",
            "set",
            &outside,
            "--disposition",
            "not-accepted",
            "--response-sq",
            "Dëgjesat i organizon bashkia, jo ministria.",
        ],
    );

    // Publishing waits for the close and for every answer.
    assert!(refused(dir, &db, &["report", "publish", "OGP-ACC"]).contains("is still open"));
    ok(
        dir,
        &db,
        &[
            "consultation",
            "close",
            "OGP-ACC",
            "--reason",
            "Plani dorëzohet më herët.",
        ],
    );
    let waiting = refused(dir, &db, &["report", "publish", "OGP-ACC"]);
    assert!(
        waiting.contains(&format!(
            "1 proposal still waits for a disposition: {person}"
        )),
        "{waiting}"
    );
    ok(
        dir,
        &db,
        &[
            "disposition",
            "set",
            &person,
            "--disposition",
            "out-of-scope",
            "--response-sq",
            "Taksat vendore nuk janë pjesë e këtij plani.",
        ],
    );
    let published = ok(dir, &db, &["report", "publish", "OGP-ACC"]);
    assert!(
        published.contains("4 proposals; 4 outcome notices queued"),
        "{published}"
    );
    assert!(refused(dir, &db, &["report", "publish", "OGP-ACC"]).contains("were published on"));

    // A change after publication: one correction notice, and the same
    // decision again is no change.
    let change = [
        "disposition",
        "set",
        outside.as_str(),
        "--disposition",
        "partly-accepted",
        "--response-sq",
        "Bashkia e Vlorës do të mbajë dy dëgjesa.",
    ];
    assert!(ok(dir, &db, &change).contains("the sender is told (1 notice queued)"));
    assert!(ok(dir, &db, &change).contains("recorded for 0 proposals"));

    // A proposal that arrives after publication gets its first answer as
    // an outcome, not as a correction.
    ingest(
        dir,
        &db,
        &message(
            "kontakt@levizja.example.net",
            "late",
            "Një propozim pas afatit për buxhetin e bashkisë në Vlorë.",
            None,
        ),
    );
    ok(
        dir,
        &db,
        &[
            "mail",
            "pen",
            "assign",
            &held_id(dir, &db, "kontakt@levizja"),
            "--consultation",
            "OGP-ACC",
            "--outside",
            "Lëvizja Qytetare Vlorë",
        ],
    );
    let late = receipt_of(dir, &db, "pas afatit");
    let told = ok(
        dir,
        &db,
        &[
            "disposition",
            "set",
            &late,
            "--disposition",
            "not-accepted",
            "--response-sq",
            "Erdhi pas afatit.",
        ],
    );
    assert!(
        told.contains("the sender is told (1 notice queued)"),
        "{told}"
    );
    ok(dir, &db, &["outbox", "flush"]);

    let outcomes = sent(dir, "outcome");
    let to: Vec<&str> = outcomes.iter().map(|(to, _, _)| to.as_str()).collect();
    assert_eq!(
        to,
        [
            "info0@shoqata0.org.al",
            "info1@shoqata1.org.al",
            "kontakt@levizja.example.net",
            "kontakt@levizja.example.net",
            "qytetari@example.net"
        ],
        "four at publication, and the late proposal's"
    );
    let (_, subject, text) = &outcomes[0];
    assert_eq!(
        subject,
        "How your proposals were considered: Open municipal budgets"
    );
    assert!(
        text.contains("Decision: Merged into a commitment"),
        "{text}"
    );
    assert!(
        text.contains("Reason: It was included in commitment 3."),
        "{text}"
    );
    assert!(text.contains("/report/OGP-ACC"), "{text}");
    let (_, subject, text) = &outcomes[2];
    assert!(subject.starts_with("Si u morën parasysh"), "{subject}");
    assert!(text.contains("Vendimi: Nuk u pranua"), "{text}");
    let corrections = sent(dir, "correction");
    assert_eq!(corrections.len(), 1, "{corrections:?}");
    let (to, _, text) = &corrections[0];
    assert_eq!(to, "kontakt@levizja.example.net");
    assert!(
        text.contains("Më parë: Nuk u pranua") && text.contains("Vendimi i ri: Pranuar pjesërisht"),
        "{text}"
    );

    // The audit log keeps every change.
    let log = ok(
        dir,
        &db,
        &["disposition", "log", "--consultation", "OGP-ACC"],
    );
    assert_eq!(log.lines().count(), 6, "{log}");
    assert!(
        log.lines().nth(1).unwrap().contains(&format!(
            "terminal  {outside}: Not accepted → Partly accepted (correction after publication)"
        )),
        "{log}"
    );

    // Exports: no address, no phone number, the right rows.
    let csv = cocreate(
        dir,
        &db,
        &["report", "export", "OGP-ACC", "--format", "csv"],
    );
    assert!(csv.status.success());
    assert!(
        csv.stdout.starts_with(b"\xEF\xBB\xBF"),
        "a byte-order mark for Excel"
    );
    let text = String::from_utf8(csv.stdout[3..].to_vec()).unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 5, "{text}");
    let json = ok(
        dir,
        &db,
        &["report", "export", "OGP-ACC", "--format", "json"],
    );
    for export in [&text, &json] {
        assert!(!export.contains('@'), "an address in {export}");
        assert!(!export.contains("123 4567"), "a phone number in {export}");
        assert!(
            !export.contains("+355 00 000"),
            "a registry phone in {export}"
        );
    }
    assert!(
        text.contains("Lëvizja Qytetare Vlorë (not in the registry)"),
        "{text}"
    );
    assert!(text.contains(",individual,"), "{text}");
    assert!(text.contains("'=HYPERLINK"), "a formula is defused: {text}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["schema"], "cocreate.report/1");
    assert_eq!(report["totals"]["proposals"], 5);
    assert_eq!(report["totals"]["merged"], 2);
    assert_eq!(report["totals"]["partly_accepted"], 1);
    assert_eq!(report["by_policy_area"]["FISCAL"]["out_of_scope"], 1);
}

/// The spreadsheet read back by a real reader (openpyxl) has the CSV's rows.
#[test]
#[ignore = "needs python3-openpyxl"]
fn the_spreadsheet_has_the_same_rows_as_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = TestDb::sqlite();
    four_proposals(dir, &db);
    let xlsx = dir.join("report.xlsx");
    ok(
        dir,
        &db,
        &[
            "report",
            "export",
            "--format",
            "xlsx",
            "--output",
            xlsx.to_str().unwrap(),
        ],
    );
    let csv = cocreate(dir, &db, &["report", "export", "--format", "csv"]);
    let from_csv: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&csv.stdout[3..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    // Debian's Python, where python3-openpyxl installs.
    let read = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, openpyxl\n\
             rows = openpyxl.load_workbook(sys.argv[1]).active.iter_rows(values_only=True)\n\
             print(json.dumps([[c if c is not None else '' for c in r] for r in rows]))",
            xlsx.to_str().unwrap(),
        ])
        .output()
        .expect("the XLSX check needs /usr/bin/python3 with python3-openpyxl");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let from_xlsx: Vec<Vec<String>> = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(from_xlsx.len(), 5, "a header and four proposals");
    assert_eq!(from_xlsx, from_csv);
}
