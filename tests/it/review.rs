//! The review pages' access rules, driven through HTTP against `serve`: an
//! LFP signs in by its emailed link and sees, decides and downloads only
//! within its own policy areas, whatever URL or id it guesses; used,
//! expired and forged links and cookies fail; a cross-site post fails; the
//! public report and its downloads hold no contact address or phone.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::accountability::{PLAN_PDF, four_proposals, held_id, ingest, message};
use crate::common::ok;
use crate::common::*;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const FISCAL_LFP: &str = "ogp-fiscal@financa.example";

/// The link in the newest sign-in email to `address`, waiting for the
/// outbox worker to deliver it.
fn sign_in_link(dir: &Path, address: &str, after: usize) -> String {
    let start = Instant::now();
    loop {
        let links: Vec<String> = std::fs::read_dir(dir.join("data/outbox"))
            .map(|d| {
                let mut paths: Vec<_> = d
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with("-sign_in.eml"))
                    .collect();
                paths.sort();
                paths
                    .into_iter()
                    .filter_map(|p| std::fs::read(p).ok())
                    .filter_map(|raw| {
                        let m = mail_parser::MessageParser::default().parse(&raw)?;
                        let to = m.to()?.first()?.address()?.to_string();
                        let text = m.body_text(0)?.to_string();
                        (to == address).then(|| {
                            text.split_whitespace()
                                .find(|w| w.contains("/review/sign-in/"))
                                .map(|w| w[w.find("/review/").unwrap()..].to_string())
                        })?
                    })
                    .collect()
            })
            .unwrap_or_default();
        if links.len() > after {
            return links[after].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no sign-in email to {address}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn set_cookie(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Set-Cookie in {head}"))
}

/// Follows the emailed link: the page with the button, then its POST.
fn follow(daemon: &Daemon, link: &str) -> (u16, String, String) {
    let (status, _, page) = daemon.exchange("GET", link, &[], b"");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<form method=\"post\""), "{page}");
    daemon.exchange("POST", link, &[FORM], b"")
}

fn signed_in(daemon: &Daemon, dir: &Path, address: &str, after: usize) -> String {
    let (status, _, _) = daemon.exchange(
        "POST",
        "/review/sign-in?lang=en",
        &[FORM],
        format!("email={address}").as_bytes(),
    );
    assert_eq!(status, 200);
    let link = sign_in_link(dir, address, after);
    let (status, head, body) = follow(daemon, &link);
    assert_eq!(status, 303, "{body}");
    let cookie = set_cookie(&head);
    cookie.split(';').next().unwrap().to_string()
}

/// The token review forms carry for this session.
fn form_token(page: &str) -> String {
    let at = page.find("name=\"token\" value=\"").expect("a form token") + 20;
    page[at..].split('"').next().unwrap().to_string()
}

fn get(daemon: &Daemon, path: &str, cookie: &str) -> (u16, String) {
    let (status, _, body) = daemon.exchange("GET", path, &[("Cookie", cookie)], b"");
    (status, body)
}

#[test]
fn an_lfp_sees_and_decides_only_its_own_areas_and_links_and_cookies_hold() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = TestDb::sqlite();
    let [en, sq, ..] = four_proposals(dir, &db);
    // A second consultation, in another LFP's area, with its own proposal.
    let spec = std::fs::read_to_string(fiscal_consultation(dir, "OGP-SRV"))
        .unwrap()
        .replace("policy_area = \"FISCAL\"", "policy_area = \"SERVICES\"");
    let spec = write(dir, "srv.toml", spec);
    ok(
        dir,
        &db,
        &["consultation", "create", "--file", spec.to_str().unwrap()],
    );
    ok(dir, &db, &["consultation", "open", "OGP-SRV"]);
    ingest(
        dir,
        &db,
        &message(
            "banori@example.net",
            "s1",
            "Shërbimet online për lagjen.",
            Some(PLAN_PDF),
        ),
    );
    let held = held_id(dir, &db, "banori@");
    let assigned = ok(
        dir,
        &db,
        &[
            "mail",
            "pen",
            "assign",
            &held,
            "--consultation",
            "OGP-SRV",
            "--individual",
        ],
    );
    let other = assigned.split_whitespace().nth(4).unwrap().to_string();
    assert!(other.starts_with("OGP-"), "{assigned}");

    let daemon = Daemon::start(dir, &db, &[]);

    // Asking for a link: the same answer for a known and an unknown address.
    let ask = |address: &str| {
        let (status, _, page) = daemon.exchange(
            "POST",
            "/review/sign-in?lang=en",
            &[FORM],
            format!("email={address}").as_bytes(),
        );
        assert_eq!(status, 200);
        page.replace(address, "ADDRESS")
    };
    assert_eq!(
        ask("stranger@example.net"),
        ask("budget-office@financa.example")
    );

    // The LFP's link: one use only.
    let (status, _, _) = daemon.exchange(
        "POST",
        "/review/sign-in?lang=en",
        &[FORM],
        format!("email={FISCAL_LFP}").as_bytes(),
    );
    assert_eq!(status, 200);
    let link = sign_in_link(dir, FISCAL_LFP, 0);
    let (status, head, _) = follow(&daemon, &link);
    assert_eq!(status, 303);
    let cookie_line = set_cookie(&head);
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/review", "Max-Age="] {
        assert!(
            cookie_line.contains(attribute),
            "{attribute}: {cookie_line}"
        );
    }
    assert!(!cookie_line.contains("Secure"), "plain HTTP: no Secure");
    let cookie = cookie_line.split(';').next().unwrap().to_string();
    let (status, _, page) = daemon.exchange("POST", &link, &[FORM], b"");
    assert_eq!(status, 403, "a used link: {page}");
    assert!(
        page.contains("has been used, has expired or is not known"),
        "{page}"
    );
    let forged_link = format!("/review/sign-in/{}", "ab".repeat(32));
    assert_eq!(daemon.exchange("POST", &forged_link, &[FORM], b"").0, 403);

    // Its own area, and nothing else, whatever it guesses.
    let (status, home) = get(&daemon, "/review?lang=en", &cookie);
    assert_eq!(status, 200, "{home}");
    assert!(
        home.contains("OGP-ACC") && !home.contains("OGP-SRV"),
        "{home}"
    );
    let (status, page) = get(&daemon, "/review/c/OGP-ACC?lang=en", &cookie);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&en) && page.contains(&sq) && !page.contains(&other),
        "{page}"
    );
    for guess in [
        "/review/c/OGP-SRV".to_string(),
        format!("/review/p/{other}"),
        format!("/review/p/{other}/a/1"),
        format!("/review/p/{}", other.to_lowercase()),
    ] {
        let (status, body) = get(&daemon, &guess, &cookie);
        assert_eq!(status, 404, "{guess}: {body}");
        assert!(!body.contains("Shërbimet online"), "{guess}: {body}");
    }
    for poc_only in ["/review/pen", "/review/log"] {
        assert_eq!(get(&daemon, poc_only, &cookie).0, 403, "{poc_only}");
    }

    // Its own attachment, as an attachment.
    let (status, head, body) = daemon.exchange(
        "GET",
        &format!("/review/p/{en}/a/1"),
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(status, 200, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/pdf"), "{head}");
    assert!(
        head.contains("content-disposition: attachment; filename=\"plani.pdf\""),
        "{head}"
    );
    assert!(head.contains("sandbox"), "{head}");
    assert_eq!(body.as_bytes(), PLAN_PDF);

    // Deciding: not another area's proposal, not from another site, not
    // without this session's token.
    let (_, page) = get(&daemon, &format!("/review/p/{en}?lang=en"), &cookie);
    let token = form_token(&page);
    let decide = |receipt: &str, token: &str, extra: &[(&str, &str)]| {
        let body = format!(
            "token={token}&back=%2Freview&receipt={receipt}&disposition=not_accepted&response_sq=Jo&response_en=No"
        );
        let mut headers = vec![FORM, ("Cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        daemon.exchange("POST", "/review/decide?lang=en", &headers, body.as_bytes())
    };
    assert_eq!(
        decide(&other, &token, &[]).0,
        404,
        "another area's proposal"
    );
    assert_eq!(
        decide(&en, &token, &[("Sec-Fetch-Site", "cross-site")]).0,
        403
    );
    assert_eq!(
        decide(&en, &token, &[("Origin", "http://evil.example")]).0,
        403
    );
    assert_eq!(decide(&en, "forged", &[]).0, 403);
    let log = ok(dir, &db, &["disposition", "log"]);
    assert_eq!(log.trim(), "No disposition has been recorded yet.", "{log}");
    let (status, head, _) = decide(&en, &token, &[]);
    assert_eq!(status, 303, "{head}");
    let log = ok(dir, &db, &["disposition", "log"]);
    assert!(
        log.contains(&format!("{FISCAL_LFP}  {en}: waiting → Not accepted")),
        "{log}"
    );

    // Forged and unknown cookies are nobody.
    let (name, value) = cookie.split_once('=').unwrap();
    let (id, signature) = value.split_once('.').unwrap();
    let flipped: String = signature
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    for forged in [
        format!("{name}={id}.{flipped}"),
        format!("{name}={}.{signature}", "cd".repeat(32)),
        format!("{name}={id}"),
    ] {
        assert_eq!(
            get(&daemon, "/review/c/OGP-ACC", &forged).0,
            401,
            "{forged}"
        );
    }

    // Signing out ends the session on the server: the old cookie fails.
    let (status, _, _) = daemon.exchange(
        "POST",
        "/review/sign-out",
        &[FORM, ("Cookie", &cookie)],
        format!("token={token}").as_bytes(),
    );
    assert_eq!(status, 303);
    assert_eq!(get(&daemon, "/review/c/OGP-ACC", &cookie).0, 401);

    // A link asked for now and a session started now, tried thirteen
    // hours later: both expired.
    let fresh = signed_in(&daemon, dir, "budget-office@financa.example", 1);
    let (status, _, _) = daemon.exchange(
        "POST",
        "/review/sign-in?lang=en",
        &[FORM],
        format!("email={FISCAL_LFP}").as_bytes(),
    );
    assert_eq!(status, 200);
    let unused = sign_in_link(dir, FISCAL_LFP, 1);
    drop(daemon);
    let later = Daemon::start_with(
        dir,
        &db,
        &[(
            CLOCK_OFFSET_ENV,
            (suite_clock_offset() + 13 * 3600).to_string(),
        )],
        &[],
    );
    assert_eq!(get(&later, "/review", &fresh).0, 401, "an expired session");
    let (status, _, page) = later.exchange("POST", &unused, &[FORM], b"");
    assert_eq!(status, 403, "an expired link: {page}");
}

#[test]
fn the_public_report_shows_published_results_without_contact_details() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = TestDb::sqlite();
    let receipts = four_proposals(dir, &db);
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
    let daemon = Daemon::start(dir, &db, &[]);
    // Before publication: what was asked, not what was said.
    let (status, page) = daemon.get("/report/OGP-ACC?lang=en");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("not published yet") && !page.contains(&receipts[0]),
        "{page}"
    );
    assert_eq!(daemon.get("/report/OGP-ACC.csv").0, 404);

    for (i, r) in receipts.iter().enumerate() {
        ok(
            dir,
            &db,
            &[
                "disposition",
                "set",
                r,
                "--disposition",
                if i == 3 { "out-of-scope" } else { "accepted" },
                "--response-sq",
                "Arsyeja jonë.",
                "--response-en",
                "Our reason.",
            ],
        );
    }
    ok(dir, &db, &["report", "publish", "OGP-ACC"]);
    std::thread::sleep(Duration::from_millis(1100));
    let (status, page) = daemon.get("/report/OGP-ACC?lang=en");
    assert_eq!(status, 200, "{page}");
    for expected in [
        "What we asked",
        "Tell us which budget data you need.",
        "Lëvizja Qytetare Vlorë (not in the registry)",
        "individual",
        "Out of scope",
        "Our reason.",
        "[number removed]",
    ] {
        assert!(page.contains(expected), "{expected} missing: {page}");
    }
    let (_, plan) = daemon.get("/report");
    assert!(
        plan.contains("Çfarë pyetëm, çfarë thatë, çfarë bëmë"),
        "{plan}"
    );
    let mut public = vec![page, plan];
    for path in [
        "/report/OGP-ACC.csv",
        "/report/OGP-ACC.json",
        "/report.csv",
        "/report.json",
    ] {
        let (status, body) = daemon.get(path);
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(&receipts[1]), "{path}: {body}");
        public.push(body);
    }
    for text in &public {
        assert!(
            !text.contains("@shoqata")
                && !text.contains("@example.net")
                && !text.contains("@levizja"),
            "an address: {text}"
        );
        assert!(
            !text.contains("123 4567") && !text.contains("+355 00 000"),
            "a phone number: {text}"
        );
    }
}

/// A colleague writes through the CSO's key: the copy of the receipt to
/// the CSO's registered address carries a link by which the CSO says it
/// did not send it, and the proposal is then flagged for the office.
#[test]
fn a_cso_disowns_a_proposal_sent_in_its_name() {
    use crate::mail_ingest;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = TestDb::sqlite();
    let (key, id) = mail_ingest::setup(dir, &db);
    let raw = format!(
        "From: Arta <arta.personal@mail.example.org>\r\nTo: consult+{key}@ogp.office.example\r\nSubject: Re: Ftesë\r\nMessage-ID: <colleague@mail.example.org>\r\nIn-Reply-To: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNjë propozim nga një koleg.\r\n"
    );
    mail_ingest::ok(dir, &db, &["mail", "ingest"], Some(raw.as_bytes()));
    mail_ingest::ok(dir, &db, &["outbox", "flush"], None);
    let copy = mail_ingest::receipts(dir)
        .into_iter()
        .map(|r| {
            let m = mail_parser::MessageParser::default().parse(&r).unwrap();
            (
                m.to()
                    .unwrap()
                    .first()
                    .unwrap()
                    .address()
                    .unwrap()
                    .to_string(),
                m.body_text(0).unwrap().to_string(),
            )
        })
        .find(|(to, _)| to == "buxheti@cso.example.org")
        .expect("a copy to the registered address")
        .1;
    let link = copy
        .split_whitespace()
        .find(|w| w.contains("/disown/"))
        .unwrap_or_else(|| panic!("no disown link in {copy}"));
    let path = &link[link.find("/disown/").unwrap()..];
    let receipt_no = path.split('/').nth(2).unwrap().to_string();

    let daemon = Daemon::start(dir, &db, &[]);
    let (status, page) = daemon.get(&format!("{path}?lang=en"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("We did not send it"), "{page}");
    let forged = format!("/disown/{receipt_no}/{}", "0".repeat(64));
    assert_eq!(daemon.post(&forged, "").0, 404);
    let cross = daemon.post_with(path, "", &[("Sec-Fetch-Site", "cross-site")]);
    assert_eq!(cross.0, 403);
    let (status, page) = daemon.post(&format!("{path}?lang=en"), "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("marked as not sent by your organisation"),
        "{page}"
    );
    let flagged = ok(dir, &db, &["mail", "proposals", "--flagged"]);
    assert!(
        flagged.contains(&receipt_no) && flagged.contains("[disowned by its CSO]"),
        "{flagged}"
    );
}
