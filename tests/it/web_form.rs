//! The web form through the real daemon over HTTP: a CSO's personal link, a
//! visitor who confirms by the emailed link, and the abuse guards.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

const BOUNDARY: &str = "----cocreate-test-boundary";

/// A multipart/form-data body of `fields` and `files` (name, file name,
/// bytes), as a browser sends it.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (file_name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"attachments\"; filename=\"{file_name}\"\r\nContent-Type: application/pdf\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

const CONTENT_TYPE: &str = "multipart/form-data; boundary=----cocreate-test-boundary";

/// The form's token on a page.
fn token_in(page: &str) -> String {
    let at = page
        .find("name=\"form_token\" value=\"")
        .unwrap_or_else(|| panic!("no form token in {page}"));
    let rest = &page[at + 25..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A complete proposal, with `changes` over the defaults.
fn proposal<'a>(token: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("form_token", token),
        ("lang", "en"),
        ("website", ""),
        (
            "problem",
            "Budget execution is published once a year, too late to follow.",
        ),
        (
            "commitment",
            "Publish monthly budget execution by municipality as open data.",
        ),
        (
            "how",
            "Citizens and journalists could follow spending as it happens.",
        ),
        ("values", "transparency"),
        ("values", "accountability"),
        ("draft-1", "Monthly is right; add the municipalities."),
        ("name", "Arta Hoxha"),
        ("email", "cso0@cso.example.org"),
        ("organisation", "Shoqata 0"),
    ];
    for (k, v) in changes {
        fields.retain(|(name, _)| name != k);
        fields.push((k, v));
    }
    fields
}

fn form_key(dir: &Path) -> String {
    let out = std::fs::read_dir(dir.join("data/outbox")).unwrap();
    for entry in out.filter_map(Result::ok) {
        let raw = std::fs::read(entry.path()).unwrap_or_default();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let to = m
            .to()
            .and_then(|t| t.first())
            .and_then(|a| a.address())
            .unwrap_or_default();
        if to == "cso0@cso.example.org" {
            let reply_to = m
                .reply_to()
                .and_then(|t| t.first())
                .and_then(|a| a.address())
                .unwrap();
            return reply_to
                .split_once('+')
                .unwrap()
                .1
                .split('@')
                .next()
                .unwrap()
                .to_string();
        }
    }
    panic!("no invitation to cso0 in the outbox");
}

/// The outbox's files whose text contains `needle`, waiting up to 20 s for
/// at least `n`.
fn wait_for_mail(dir: &Path, needle: &str, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let found: Vec<String> = std::fs::read_dir(dir.join("data/outbox"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter(|raw| raw.contains(needle))
                    .collect()
            })
            .unwrap_or_default();
        if found.len() >= n || start.elapsed() > Duration::from_secs(20) {
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn location(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap_or_else(|| panic!("no Location in {head}"))
        .trim()
        .to_string()
}

fn post_form(
    daemon: &Daemon,
    path: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8])],
) -> (u16, String, String) {
    daemon.exchange(
        "POST",
        path,
        &[
            ("Content-Type", CONTENT_TYPE),
            ("Origin", &format!("http://{}", daemon.addr)),
        ],
        &multipart(fields, files),
    )
}

/// How soon a form may be sent in these tests. Two seconds, so a loaded
/// machine taking a second between showing the form and posting it still
/// posts "too fast" when the test means it to.
const MIN_SECONDS: u64 = 2;

/// Waits out `MIN_SECONDS` after a form was shown.
fn wait_as_a_person() {
    std::thread::sleep(Duration::from_millis(MIN_SECONDS * 1000 + 100));
}

fn start(dir: &Path, db: &TestDb, extra: &[(&str, String)]) -> Daemon {
    let mut env = vec![
        ("COCREATE_FORM_MIN_SECONDS", MIN_SECONDS.to_string()),
        ("COCREATE_FORM_MAX_BYTES", "200000".to_string()),
        ("COCREATE_OUTBOX_RATE_PER_SECOND", "1000".to_string()),
    ];
    env.extend(extra.iter().cloned());
    Daemon::start_with(dir, db, &env, &[])
}

pub fn setup(dir: &Path, db: &TestDb) -> String {
    queue_invitations(dir, db, 2, "OGP-WEB");
    let out = cocreate(dir, db, &["outbox", "flush"]);
    assert!(out.status.success(), "{}", stderr(&out));
    form_key(dir)
}

#[test]
fn a_cso_sends_a_proposal_through_its_personal_link_and_sees_it_again() {
    through_the_personal_link(&TestDb::sqlite());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (COCREATE_TEST_POSTGRES_URL)"]
async fn a_cso_sends_a_proposal_through_its_personal_link_on_postgres() {
    let db = TestDb::postgres()
        .await
        .unwrap_or_else(|| panic!("{} must name a PostgreSQL server", POSTGRES_ENV));
    tokio::task::spawn_blocking(move || through_the_personal_link(&db))
        .await
        .unwrap();
}

fn through_the_personal_link(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let key = setup(dir.path(), db);
    let daemon = start(dir.path(), db, &[]);
    let path = format!("/p/{key}");

    let (status, head, page) = daemon.exchange("GET", &format!("{path}?lang=en"), &[], b"");
    assert_eq!(status, 200, "{page}");
    for expected in [
        "Open municipal budgets",
        "For <strong>Shoqata 0</strong>",
        "Budget data every month",
        "value=\"cso0@cso.example.org\"",
        "lang=\"en\"",
    ] {
        assert!(page.contains(expected), "{expected} missing: {page}");
    }
    let head = head.to_ascii_lowercase();
    for header in [
        "content-security-policy: default-src 'none'",
        "x-content-type-options: nosniff",
        "referrer-policy: same-origin",
        "frame-ancestors 'none'",
        "cache-control: no-store",
    ] {
        assert!(head.contains(header), "{header} missing: {head}");
    }
    let token = token_in(&page);

    // Too fast: refused, what was typed kept.
    let (status, _, page) = post_form(&daemon, &path, &proposal(&token, &[]), &[]);
    assert_eq!(status, 422);
    assert!(
        page.contains("faster than a person") && page.contains("Publish monthly budget execution"),
        "{page}"
    );
    wait_as_a_person();

    // A missing field: its message next to it, the rest kept.
    let (status, _, page) = post_form(&daemon, &path, &proposal(&token, &[("problem", "")]), &[]);
    assert_eq!(status, 422);
    assert!(
        page.contains("<a href=\"#problem\">What is the public problem? — Fill in this field.</a>"),
        "{page}"
    );
    assert!(
        page.contains("id=\"problem-error\">Fill in this field.</p>"),
        "{page}"
    );
    assert!(page.contains("aria-invalid=\"true\""), "{page}");
    assert!(
        page.contains("Publish monthly budget execution by municipality as open data.</textarea>"),
        "{page}"
    );
    assert!(page.contains("value=\"transparency\" checked"), "{page}");

    // Corrected and sent, with a file whose name is a path.
    let fields = proposal(&token, &[]);
    let (status, head, body) = post_form(
        &daemon,
        &path,
        &fields,
        &[("../../etc/passwd", b"%PDF-1.4 plan")],
    );
    assert_eq!(status, 303, "{head}{body}");
    let receipt_url = location(&head);
    let receipt_no = receipt_url
        .split("/r/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    assert!(receipt_no.starts_with("OGP-"), "{receipt_url}");
    let (status, page) = daemon.get(&receipt_url);
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("<p class=\"receipt\">{receipt_no}</p>"))
            && page.contains("on its way to"),
        "{page}"
    );

    // The same form again (a double click, a reload): the same receipt.
    let (status, head, _) = post_form(&daemon, &path, &fields, &[]);
    assert_eq!(status, 303);
    assert_eq!(location(&head), receipt_url);

    // The receipt email arrives, in the form's language, with the file's own name only.
    let receipts = wait_for_mail(dir.path(), &receipt_no, 1);
    assert_eq!(receipts.len(), 1, "one receipt for {receipt_no}");
    assert!(receipts[0].contains("cso0@cso.example.org"));
    // The file kept only its own name.
    let receipt = mail_parser::MessageParser::default()
        .parse(receipts[0].as_bytes())
        .unwrap();
    let text = receipt.body_text(0).unwrap();
    assert!(text.contains("- passwd ("), "{text}");
    assert!(
        !text.contains("etc/passwd") && !text.contains(".."),
        "{text}"
    );
    let listing = ok(dir.path(), db, &["mail", "proposals"]);
    assert_eq!(proposals_in(&listing), 1, "one proposal: {listing}");

    // The personal link visited again shows what was sent.
    let (_, page) = daemon.get(&format!("{path}?lang=en"));
    assert!(
        page.contains("What you have already sent") && page.contains(&receipt_no),
        "{page}"
    );

    // An addition to it from that page: a follow-up on the same proposal,
    // not a second proposal; sent twice, recorded once.
    let token = token_in(&page);
    wait_as_a_person();
    let addition = [
        ("form_token", token.as_str()),
        ("lang", "en"),
        ("website", ""),
        ("receipt_no", receipt_no.as_str()),
        ("addition", "We can also share our municipal data."),
    ];
    let add_path = format!("{path}/add");
    let (status, head, body) = post_form(&daemon, &add_path, &addition, &[]);
    assert_eq!(status, 303, "{head}{body}");
    let added = location(&head);
    assert!(added.contains(&receipt_no), "{head}");
    // Sent again: the same receipt page, nothing added twice.
    let (status, head, _) = post_form(&daemon, &add_path, &addition, &[]);
    assert_eq!(status, 303, "{head}");
    assert_eq!(location(&head), added);
    let (_, page) = daemon.get(&format!("{path}?lang=en"));
    assert!(page.contains("1 additions"), "{page}");
    assert_eq!(proposals_in(&ok(dir.path(), db, &["mail", "proposals"])), 1);
    // Not to a receipt number that is not this CSO's.
    let mut other = addition;
    other[3] = ("receipt_no", "OGP-AAAA-BBBB");
    assert_eq!(post_form(&daemon, &add_path, &other, &[]).0, 404);

    // Someone else writing through the CSO's link: the CSO gets a copy.
    let (_, page) = daemon.get(&path);
    let token = token_in(&page);
    wait_as_a_person();
    let (status, head, _) = post_form(
        &daemon,
        &path,
        &proposal(
            &token,
            &[
                ("email", "partner@example.net"),
                ("problem", "Procurement data is scattered."),
            ],
        ),
        &[],
    );
    assert_eq!(status, 303, "{head}");
    let second = location(&head)
        .split("/r/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let copies = wait_for_mail(dir.path(), &second, 2);
    assert_eq!(
        copies.len(),
        2,
        "a receipt to the sender and a copy to the CSO"
    );
    assert!(
        copies
            .iter()
            .any(|m| m.contains("To: partner@example.net") || m.contains("<partner@example.net>"))
    );
    assert!(
        copies
            .iter()
            .any(|m| m.contains("cso0@cso.example.org") && m.contains("partner@example.net"))
    );
}

/// Proposals in `mail proposals`' listing.
pub fn proposals_in(listing: &str) -> usize {
    listing
        .lines()
        .filter(|l| l.starts_with("OGP-") && l.contains(" OGP-WEB "))
        .count()
}

#[test]
fn hostile_and_abusive_posts_are_refused_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let key = setup(dir.path(), &db);
    let daemon = start(
        dir.path(),
        &db,
        &[("COCREATE_FORM_POSTS_PER_CLIENT_PER_HOUR", "3".into())],
    );
    let path = format!("/p/{key}");
    let (_, page) = daemon.get(&path);
    let token = token_in(&page);
    wait_as_a_person();

    // 1. From another site.
    let (status, _, page) = daemon.exchange(
        "POST",
        &path,
        &[
            ("Content-Type", CONTENT_TYPE),
            ("Origin", "https://evil.example"),
        ],
        &multipart(&proposal(&token, &[]), &[]),
    );
    assert_eq!(status, 403, "{page}");
    // 2. The hidden field filled in.
    let (status, _, _) = post_form(
        &daemon,
        &path,
        &proposal(&token, &[("website", "http://spam.example")]),
        &[],
    );
    assert_eq!(status, 422);
    // 3. A token that is not ours.
    let (status, _, page) = post_form(&daemon, &path, &proposal("1.abc.def", &[]), &[]);
    assert_eq!(status, 422);
    assert!(page.contains("was not recognised"), "{page}");
    // 4. Hostile values: escaped where shown, a line break in the email refused.
    let (status, _, page) = post_form(
        &daemon,
        &path,
        &proposal(
            &token,
            &[
                ("name", "<script>alert(1)</script>"),
                ("email", "a@b.example\r\nBcc: victim@example.org"),
            ],
        ),
        &[],
    );
    assert_eq!(status, 422);
    assert!(!page.contains("<script>alert(1)</script>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("id=\"email-error\">Enter one email address"),
        "{page}"
    );
    // 4b. Not a form at all (a script posting JSON): a page, not a crash.
    let (status, _, page) = daemon.exchange(
        "POST",
        &path,
        &[("Content-Type", "application/json")],
        b"{\"problem\": \"x\"}",
    );
    assert_eq!(status, 400);
    assert!(page.contains("<html lang="), "{page}");
    // 5. A body over the limit: a page that says so.
    let big = vec![b'x'; 300_000];
    let (status, _, page) = post_form(&daemon, &path, &proposal(&token, &[]), &[("big.pdf", &big)]);
    assert_eq!(status, 413, "{page}");
    assert!(
        page.contains("too large") || page.contains("shumë të mëdhenj"),
        "{page}"
    );
    // 6. Over the hourly limit of 3 for this client: the hostile post above
    // counted (the refusals before it did not get that far).
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post_form(&daemon, &path, &proposal(&token, &[("problem", "")]), &[]).0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Unknown links and consultations: a page, not a blank.
    let (status, page) = daemon.get("/p/abcdefghijklmnopqrst");
    assert_eq!(status, 404);
    assert!(page.contains("nuk njihet"), "{page}");
    assert_eq!(daemon.get("/c/NO-SUCH").0, 404);
    assert_eq!(daemon.get("/no/such/page").0, 404);
    let listing = ok(dir.path(), &db, &["mail", "proposals"]);
    assert_eq!(proposals_in(&listing), 0, "nothing was recorded: {listing}");

    // A consultation closed early says when it closed (the suite's day),
    // not the deadline it had announced.
    ok(
        dir.path(),
        &db,
        &[
            "consultation",
            "close",
            "OGP-WEB",
            "--reason",
            "Plani dorëzohet më herët.",
        ],
    );
    // Pages read the consultations at most a second old.
    std::thread::sleep(Duration::from_millis(1100));
    let (status, page) = daemon.get(&format!("{path}?lang=en"));
    assert_eq!(status, 410);
    assert!(
        page.contains("This consultation is closed") && page.contains("2 December 2026"),
        "{page}"
    );
}

#[test]
fn a_visitor_confirms_by_the_emailed_link_and_the_proposal_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    setup(dir.path(), &db);
    let daemon = start(dir.path(), &db, &[]);
    let (status, page) = daemon.get("/c/OGP-WEB?lang=en");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Not in the registry"), "{page}");
    let token = token_in(&page);
    wait_as_a_person();
    let fields = proposal(
        &token,
        &[("email", "citizen@example.net"), ("organisation", "")],
    );
    let (status, _, page) = post_form(&daemon, "/c/OGP-WEB", &fields, &[]);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Check your email") && page.contains("citizen@example.net"),
        "{page}"
    );
    // Sent twice: one link.
    post_form(&daemon, "/c/OGP-WEB", &fields, &[]);
    let mails = wait_for_mail(dir.path(), "/confirm/", 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        wait_for_mail(dir.path(), "/confirm/", 1).len(),
        1,
        "one confirmation email"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .unwrap();
    let mail = parsed.body_text(0).unwrap().to_string();
    let at = mail.find("/confirm/").unwrap();
    let token: String = mail[at + 9..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert!(token.len() >= 40, "{mail}");
    assert!(
        proposals_in(&ok(dir.path(), &db, &["mail", "proposals"])) == 0,
        "nothing before the click"
    );

    // Following the link shows a button and records nothing.
    let (status, page) = daemon.get(&format!("/confirm/{token}?lang=en"));
    assert_eq!(status, 200);
    assert!(page.contains("Confirm and send"), "{page}");
    let (status, _, page) = daemon.exchange("POST", &format!("/confirm/{token}?lang=en"), &[], b"");
    assert_eq!(status, 200, "{page}");
    let receipt_at = page
        .find("<p class=\"receipt\">")
        .expect("a receipt number")
        + 19;
    let receipt_no = page[receipt_at..receipt_at + 13].to_string();
    // A second click: the same receipt, not a second proposal.
    let (_, _, again) = daemon.exchange("POST", &format!("/confirm/{token}?lang=en"), &[], b"");
    assert!(again.contains(&receipt_no), "{again}");
    let listing = ok(dir.path(), &db, &["mail", "proposals"]);
    assert_eq!(proposals_in(&listing), 1, "{listing}");
    let receipts = wait_for_mail(dir.path(), &receipt_no, 1);
    assert!(
        receipts[0].contains("citizen@example.net"),
        "the receipt goes to the visitor"
    );
    assert!(receipts[0].contains("Thank you"), "in the form's language");
    let (status, _) = daemon.get("/confirm/0000000000000000000000000000000000000000");
    assert_eq!(status, 404);
    let metrics = daemon.get("/metrics").1;
    assert!(
        metrics.contains("cocreate_proposals{channel=\"web\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cocreate_http_requests_total{route=\"/c/{reference}\",status=\"200\"}"),
        "{metrics}"
    );
}

#[test]
fn a_form_left_open_too_long_comes_back_with_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let key = setup(dir.path(), &db);
    // Any form older than 0 hours, so one second is too long.
    let daemon = start(
        dir.path(),
        &db,
        &[
            ("COCREATE_FORM_MIN_SECONDS", "0".into()),
            ("COCREATE_FORM_MAX_AGE_HOURS", "0".into()),
        ],
    );
    let path = format!("/p/{key}");
    let (_, page) = daemon.get(&path);
    let token = token_in(&page);
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _, page) = post_form(&daemon, &path, &proposal(&token, &[]), &[]);
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("open for too long"), "{page}");
    assert!(
        page.contains("Publish monthly budget execution by municipality as open data.</textarea>"),
        "{page}"
    );
    // The page carries a new token to send it again with; nothing was recorded.
    assert_ne!(token_in(&page), token);
    assert_eq!(
        proposals_in(&ok(dir.path(), &db, &["mail", "proposals"])),
        0
    );
}
