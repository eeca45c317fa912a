//! The web form in a real browser: headless Chromium driven through
//! chromedriver (fantoccini), at a phone's width and at a desktop's, with
//! axe-core checking every page against WCAG 2.1 A and AA, and the receipt
//! arriving at a real SMTP relay (aiosmtpd).
//!
//! Needs chromium and chromium-driver (Debian), and axe-core from npm, whose
//! axe.min.js `COCREATE_TEST_AXE` names (.ci/run installs all three).
//! `COCREATE_TEST_SCREENSHOTS=DIR` keeps the screenshots (docs/screenshots
//! holds the committed ones).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::common::ok;
use crate::common::*;
use crate::web_form::{proposals_in, setup};

const PHONE: (u32, u32) = (360, 740);
const DESKTOP: (u32, u32) = (1280, 900);

pub(crate) struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn browser() -> (Driver, Client) {
    let port = free_port();
    let binary =
        std::env::var("COCREATE_TEST_CHROMEDRIVER").unwrap_or("/usr/bin/chromedriver".into());
    let driver = Command::new(&binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary} cannot be started ({e}): install chromium-driver"));
    let driver = Driver(driver);
    let chromium = std::env::var("COCREATE_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={},{}", PHONE.0, PHONE.1), "--lang=en"],
        }),
    );
    let start = Instant::now();
    loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) if start.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start a Chromium session: {e}"),
        }
    }
}

/// axe-core's script, from the file `COCREATE_TEST_AXE` names: a test that
/// checks accessibility fails without it.
pub(crate) fn axe() -> String {
    let path = std::env::var("COCREATE_TEST_AXE")
        .expect("COCREATE_TEST_AXE must name axe-core's axe.min.js (npm install axe-core)");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Where screenshots are kept, when `COCREATE_TEST_SCREENSHOTS` says.
pub(crate) fn shots_dir() -> Option<PathBuf> {
    std::env::var_os("COCREATE_TEST_SCREENSHOTS").map(PathBuf::from)
}

/// WCAG 2.1 A and AA violations axe-core finds on the current page.
pub(crate) async fn violations(client: &Client, axe: &str) -> Vec<String> {
    let script = format!(
        "{axe}\nreturn axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}}})\
         .then(r => r.violations.map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')'));"
    );
    let found = client
        .execute(&script, vec![])
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).expect("a list of violations")
}

pub(crate) async fn accessible(client: &Client, axe: &str, what: &str) {
    let found = violations(client, axe).await;
    assert!(
        found.is_empty(),
        "{what}: WCAG 2.1 A/AA violations: {found:#?}"
    );
}

/// The whole page at `width`, as a PNG under `dir` (when screenshots are kept).
pub(crate) async fn screenshot(client: &Client, dir: Option<&Path>, name: &str, width: u32) {
    let Some(dir) = dir else { return };
    client.set_window_size(width, 800).await.unwrap();
    let height = client
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(800) as u32;
    client
        .set_window_size(width, height.clamp(400, 6000))
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
    client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
}

pub(crate) async fn shots(client: &Client, dir: Option<&Path>, name: &str) {
    screenshot(client, dir, name, PHONE.0).await;
    screenshot(client, dir, name, DESKTOP.0).await;
}

pub(crate) async fn fill(client: &Client, id: &str, text: &str) {
    let field = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("no #{id}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks what `css` finds, and when the click sends a form, waits until
/// the next page has replaced this one (a marker on this page's window is
/// gone), so nothing is looked for on the page being left.
pub(crate) async fn click(client: &Client, css: &str) {
    client
        .execute("window.cocreateOldPage = true", vec![])
        .await
        .unwrap();
    let element = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("no {css}"));
    let sends = element.attr("type").await.unwrap().as_deref() == Some("submit");
    element.click().await.unwrap();
    if !sends {
        return;
    }
    let start = Instant::now();
    loop {
        let old = client
            .execute("return window.cocreateOldPage === true", vec![])
            .await
            .map(|v| v.as_bool() == Some(true))
            .unwrap_or(true);
        if !old {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{css} did not lead to a new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn text_of(client: &Client, css: &str) -> String {
    // After a click the next page may still be loading: wait for it.
    let found = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await;
    match found {
        Ok(e) => e.text().await.unwrap(),
        Err(_) => panic!(
            "no {css} on {}:\n{}",
            client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default(),
            client.source().await.unwrap_or_default()
        ),
    }
}

pub(crate) async fn wait_for(sink: &SmtpSink, needle: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(m) = sink
            .messages()
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m.raw).into_owned())
            .find(|m| m.contains(needle))
        {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no message with {needle} reached the relay"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium, chromium-driver, axe-core (COCREATE_TEST_AXE) and python3-aiosmtpd"]
async fn a_phone_user_fills_in_the_form_fixes_a_mistake_and_gets_a_receipt() {
    let axe = axe();
    let shots_dir = shots_dir();
    let shots_dir = shots_dir.as_deref();

    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let key = setup(dir.path(), &db);
    let sink = SmtpSink::start();
    let mut env = sink.env();
    env.push(("COCREATE_FORM_MIN_SECONDS", "1".into()));
    let daemon = Daemon::start_with(dir.path(), &db, &env, &[]);
    let base = format!("http://{}", daemon.addr);
    let (_driver, client) = browser().await;

    // The check can fail: a field without a label is caught.
    client.goto(&format!("{base}/?lang=en")).await.unwrap();
    client
        .execute(
            "document.querySelector('main').appendChild(document.createElement('input'))",
            vec![],
        )
        .await
        .unwrap();
    let caught = violations(&client, &axe).await;
    assert!(caught.iter().any(|v| v.starts_with("label:")), "{caught:?}");

    // The list of consultations.
    client.goto(&format!("{base}/?lang=en")).await.unwrap();
    assert!(text_of(&client, "h1").await.contains("Open consultations"));
    accessible(&client, &axe, "the list of consultations").await;
    shots(&client, shots_dir, "index").await;

    // The invitation's button: the CSO's personal link, in its language.
    client.goto(&format!("{base}/p/{key}")).await.unwrap();
    assert!(text_of(&client, "h1").await.contains("Buxheti i hapur"));
    accessible(&client, &axe, "the consultation page").await;
    shots(&client, shots_dir, "form").await;

    // Everything but the problem, then send.
    fill(
        &client,
        "commitment",
        "Publikoni çdo muaj ekzekutimin e buxhetit sipas bashkive.",
    )
    .await;
    fill(
        &client,
        "how",
        "Qytetarët do ta ndjekin shpenzimin ndërsa ndodh.",
    )
    .await;
    click(&client, "#value-transparency").await;
    fill(&client, "name", "Arta Hoxha").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    click(&client, "form[enctype] button[type=submit]:not(.secondary)").await;
    let error = text_of(&client, "#problem-error").await;
    assert_eq!(error, "Plotësoni këtë fushë.");
    assert!(
        text_of(&client, ".summary")
            .await
            .contains("Cili është problemi publik? — Plotësoni këtë fushë.")
    );
    let kept = client
        .find(Locator::Id("commitment"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("Publikoni çdo muaj ekzekutimin e buxhetit sipas bashkive.")
    );
    accessible(&client, &axe, "the form with an error").await;
    shots(&client, shots_dir, "error").await;

    // Corrected and sent: the receipt page, then the receipt email.
    fill(
        &client,
        "problem",
        "Ekzekutimi i buxhetit publikohet vetëm një herë në vit.",
    )
    .await;
    click(&client, "form[enctype] button[type=submit]:not(.secondary)").await;
    let receipt_no = text_of(&client, "p.receipt").await;
    assert!(
        receipt_no.starts_with("OGP-") && receipt_no.len() == 13,
        "{receipt_no}"
    );
    accessible(&client, &axe, "the receipt page").await;
    shots(&client, shots_dir, "receipt").await;
    let receipt = wait_for(&sink, &receipt_no).await;
    assert!(receipt.contains("cso0@cso.example.org"), "{receipt}");

    // The personal link visited again shows what was sent.
    client.goto(&format!("{base}/p/{key}")).await.unwrap();
    assert!(text_of(&client, ".sent").await.contains(&receipt_no));
    accessible(&client, &axe, "the consultation page with a proposal sent").await;

    // A visitor not in the registry sends from the consultation's page and
    // confirms by the emailed link.
    client
        .goto(&format!("{base}/c/OGP-WEB?lang=en"))
        .await
        .unwrap();
    fill(&client, "problem", "Procurement data is scattered.").await;
    fill(&client, "commitment", "One open register of contracts.").await;
    fill(
        &client,
        "how",
        "Anyone could follow a contract from tender to payment.",
    )
    .await;
    click(&client, "#value-accountability").await;
    fill(&client, "name", "Blerina Kola").await;
    fill(&client, "email", "blerina@example.net").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    click(&client, "form[enctype] button[type=submit]").await;
    assert!(text_of(&client, "h1").await.contains("Check your email"));
    accessible(&client, &axe, "the page after a visitor sends").await;
    let mail = wait_for(&sink, "blerina@example.net").await;
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.as_bytes())
        .unwrap();
    let body = parsed.body_text(0).unwrap().to_string();
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/confirm/"))
        .expect("a confirmation link")
        .to_string();
    // The daemon listens on a port of its own; the link names public_url.
    let path = &link[link.find("/confirm/").unwrap()..];
    client.goto(&format!("{base}{path}")).await.unwrap();
    accessible(&client, &axe, "the confirmation page").await;
    click(&client, "main form button").await;
    let visitor_receipt = text_of(&client, "p.receipt").await;
    assert!(visitor_receipt.starts_with("OGP-"), "{visitor_receipt}");
    wait_for(&sink, &visitor_receipt).await;
    let listing = ok(dir.path(), &db, &["mail", "proposals"]);
    assert_eq!(proposals_in(&listing), 2, "{listing}");
    assert!(listing.contains("not in the registry"), "{listing}");

    // The pages that say something went otherwise are checked too.
    client
        .goto(&format!("{base}/unsubscribe/{key}"))
        .await
        .unwrap();
    accessible(&client, &axe, "the unsubscribe page").await;
    client
        .goto(&format!("{base}/p/abcdefghijklmnopqrst"))
        .await
        .unwrap();
    assert!(text_of(&client, "h1").await.contains("not recognised"));
    accessible(&client, &axe, "an unknown link").await;
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
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client
        .goto(&format!("{base}/p/{key}?lang=en"))
        .await
        .unwrap();
    assert!(text_of(&client, "h1").await.contains("closed"));
    accessible(&client, &axe, "a closed consultation").await;

    client.close().await.unwrap();
}
