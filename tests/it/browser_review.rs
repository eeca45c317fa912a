//! Accountability in a real browser (headless Chromium through
//! chromedriver), with the mail going through a real SMTP relay
//! (aiosmtpd): an LFP signs in by the link emailed to it, reads a proposal
//! and its attachment, answers three proposals (two as one group); the POC
//! signs in, answers the last one and publishes; the outcome notices reach
//! the relay and the public report shows what was done. Every page passes
//! axe-core's WCAG 2.1 A/AA check; `COCREATE_TEST_SCREENSHOTS=docs/screenshots`
//! refreshes the committed screenshots of the review page and the report.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::accountability::four_proposals;
use crate::browser::{accessible, axe, browser, click, fill, shots, shots_dir, text_of, wait_for};
use crate::common::ok;
use crate::common::*;

/// Asks for a sign-in link for `address` and follows the one emailed.
async fn sign_in(client: &Client, sink: &SmtpSink, base: &str, address: &str, axe: &str) {
    client
        .goto(&format!("{base}/review?lang=en"))
        .await
        .unwrap();
    assert!(text_of(client, "h1").await.contains("Sign in"));
    accessible(client, axe, "the sign-in page").await;
    fill(client, "email", address).await;
    click(client, "main form button[type=submit]").await;
    assert!(
        text_of(client, "p.notice")
            .await
            .contains("a link is on its way")
    );
    let start = std::time::Instant::now();
    let link = loop {
        let found = sink.messages().into_iter().rev().find_map(|m| {
            if !m.rcpt_tos.iter().any(|r| r == address) {
                return None;
            }
            let parsed = mail_parser::MessageParser::default().parse(&m.raw)?;
            let body = parsed.body_text(0)?.to_string();
            body.split_whitespace()
                .find(|w| w.contains("/review/sign-in/"))
                .map(str::to_string)
        });
        if let Some(link) = found {
            break link;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no sign-in link for {address}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The daemon listens on a port of its own; the link names public_url.
    let path = &link[link.find("/review/").unwrap()..];
    client.goto(&format!("{base}{path}")).await.unwrap();
    accessible(client, axe, "the page of the emailed link").await;
    click(client, "main form button[type=submit]").await;
    assert!(text_of(client, "h1").await.contains("Proposals to review"));
}

async fn choose(client: &Client, select: &str, value: &str) {
    client
        .find(Locator::Css(&format!("#{select} option[value={value}]")))
        .await
        .unwrap_or_else(|_| panic!("no {value} in #{select}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium, chromium-driver, axe-core (COCREATE_TEST_AXE) and python3-aiosmtpd"]
async fn an_lfp_answers_in_the_browser_the_poc_publishes_and_the_senders_are_told() {
    let axe = axe();
    let shots_dir = shots_dir();
    let shots_dir = shots_dir.as_deref();

    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let [en, sq, outside, person] = four_proposals(dir.path(), &db);
    ok(
        dir.path(),
        &db,
        &[
            "consultation",
            "close",
            "OGP-ACC",
            "--reason",
            "Plani dorëzohet më herët.",
        ],
    );
    let sink = SmtpSink::start();
    let daemon = Daemon::start_with(dir.path(), &db, &sink.env(), &[]);
    let base = format!("http://{}", daemon.addr);
    let (_driver, client) = browser().await;

    // The LFP signs in by the emailed link and opens its consultation.
    sign_in(&client, &sink, &base, "ogp-fiscal@financa.example", &axe).await;
    accessible(&client, &axe, "the review home page").await;
    click(&client, "a[href^='/review/c/OGP-ACC']").await;
    client
        .goto(&format!("{base}/review/c/OGP-ACC?lang=en"))
        .await
        .unwrap();
    assert!(
        text_of(&client, "h1")
            .await
            .contains("Open municipal budgets")
    );
    accessible(&client, &axe, "the consultation's proposals").await;

    // A proposal with an attachment: read, and the file comes as a download.
    client
        .goto(&format!("{base}/review/p/{en}?lang=en"))
        .await
        .unwrap();
    assert!(
        text_of(&client, ".letter")
            .await
            .contains("monthly open budget data")
    );
    let href = client
        .find(Locator::Css("a[download]"))
        .await
        .expect("the attachment's link")
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    // The page's policy lets no script fetch; the browser's session
    // cookie (HttpOnly, so read through the driver) fetches it here.
    let cookie = client.get_named_cookie("cocreate_review").await.unwrap();
    let (status, head, body) = daemon.exchange(
        "GET",
        &href,
        &[("Cookie", &format!("cocreate_review={}", cookie.value()))],
        b"",
    );
    assert_eq!(status, 200, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/pdf"), "{head}");
    assert!(
        head.contains("content-disposition: attachment; filename=\"plani.pdf\""),
        "{head}"
    );
    assert_eq!(body.as_bytes(), crate::accountability::PLAN_PDF);
    accessible(&client, &axe, "a proposal's page").await;

    // One answer for this proposal (its CSO reads English: both languages).
    choose(&client, "disposition", "not_accepted").await;
    fill(
        &client,
        "response_sq",
        "Të dhënat mujore nuk janë ende të besueshme.",
    )
    .await;
    fill(
        &client,
        "response_en",
        "Monthly figures are not yet reliable.",
    )
    .await;
    click(&client, "main form button[type=submit]:not(.secondary)").await;
    assert!(text_of(&client, ".facts").await.contains("Not accepted"));

    // One answer for two proposals, checked on the consultation's page.
    client
        .goto(&format!("{base}/review/c/OGP-ACC?lang=en"))
        .await
        .unwrap();
    click(&client, &format!("#pick-{sq}")).await;
    click(&client, &format!("#pick-{outside}")).await;
    choose(&client, "disposition", "merged").await;
    fill(
        &client,
        "commitment",
        "Angazhimi 3: Buxheti i hapur i bashkive",
    )
    .await;
    fill(
        &client,
        "response_sq",
        "Të dyja propozimet u bashkuan në angazhimin 3.",
    )
    .await;
    click(&client, ".decide button[type=submit]").await;
    let list = text_of(&client, "ul.proposals").await;
    assert_eq!(
        list.matches("Merged into a commitment").count(),
        2,
        "{list}"
    );
    shots(&client, shots_dir, "review").await;

    // The LFP cannot publish; the POC signs in, answers the last and publishes.
    assert!(
        client
            .find(Locator::Css("form[action*='/publish']"))
            .await
            .is_err()
    );
    click(&client, ".review-bar button[type=submit]").await;
    sign_in(&client, &sink, &base, "ogp-staff@office.example", &axe).await;
    client
        .goto(&format!("{base}/review/p/{person}?lang=en"))
        .await
        .unwrap();
    choose(&client, "disposition", "out_of_scope").await;
    fill(
        &client,
        "response_sq",
        "Taksat vendore nuk janë pjesë e këtij plani.",
    )
    .await;
    click(&client, "main form button[type=submit]:not(.secondary)").await;
    client
        .goto(&format!("{base}/review/c/OGP-ACC?lang=en"))
        .await
        .unwrap();
    click(&client, "form[action*='/publish'] button").await;
    assert!(
        text_of(&client, "p.notice")
            .await
            .contains("Results published on")
    );
    accessible(&client, &axe, "a published consultation").await;

    // Each sender is told, in its language, through the relay.
    let english = wait_for(&sink, "How your proposals were considered").await;
    assert!(english.contains("info0@shoqata0.org.al"), "{english}");
    let start = std::time::Instant::now();
    while sink
        .messages()
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.raw).contains("outcome."))
        .count()
        < 4
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not four outcome notices"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let told: Vec<String> = sink
        .messages()
        .into_iter()
        .filter(|m| String::from_utf8_lossy(&m.raw).contains("outcome."))
        .flat_map(|m| m.rcpt_tos)
        .collect();
    for to in [
        "info0@shoqata0.org.al",
        "info1@shoqata1.org.al",
        "kontakt@levizja.example.net",
        "qytetari@example.net",
    ] {
        assert_eq!(
            told.iter().filter(|t| *t == to).count(),
            1,
            "{to}: {told:?}"
        );
    }

    // The public report: what was asked, said and done.
    client
        .goto(&format!("{base}/report/OGP-ACC?lang=en"))
        .await
        .unwrap();
    let report = text_of(&client, "main").await;
    for expected in [
        "What we asked",
        "Merged into a commitment",
        "Angazhimi 3: Buxheti i hapur i bashkive",
        "Monthly figures are not yet reliable.",
        "Lëvizja Qytetare Vlorë (not in the registry)",
        "Out of scope",
    ] {
        assert!(report.contains(expected), "{expected} missing: {report}");
    }
    assert!(
        !report.contains('@'),
        "an address on the public report: {report}"
    );
    accessible(&client, &axe, "the public report").await;
    shots(&client, shots_dir, "report").await;
    client.close().await.unwrap();
}
