//! Golden files for the inbound path, as mail-parser keeps them: each input
//! beside its expected output, compared in-process, so a change in parsing,
//! classifying, routing or trimming shows up as a reviewed diff.
//!
//! - tests/fixtures/inbound/NAME.eml, written by us, beside NAME.json: what
//!   `cocreate mail inspect` says of it against a store with one open
//!   consultation and two registered organisations;
//! - tests/golden/reply-bodies/SET/NAME.json: what it says of each reply
//!   body of ../shared/corpora/reply-bodies, wrapped in a minimal message;
//! - tests/golden/mime/SET/NAME.json: what it says of each message of
//!   ../shared/corpora/mime, malformed ones included.
//!
//! `COCREATE_BLESS=1 cargo test golden -- --include-ignored` writes what the
//! code says now; review the diff before committing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cocreate::config::Config;
use cocreate::consultation::{ConsultationSpec, ConsultationState};
use cocreate::domain::{EmailAddress, Language, RegistrationNumber};
use cocreate::inbound::html;
use cocreate::inbound::inspect::inspect;
use cocreate::inbound::trim::trim;
use cocreate::registry::{CsoRecord, RegistryChanges};
use cocreate::store::Store;

use crate::common::TestDb;

const BLESS: &str = "COCREATE_BLESS";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `actual` with the file at `expected`; with COCREATE_BLESS set,
/// writes it instead. Returns a description of the difference, if any.
fn compare(expected: &Path, actual: &str) -> Option<String> {
    if std::env::var_os(BLESS).is_some() {
        std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
        std::fs::write(expected, actual).unwrap();
        return None;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    if want == actual {
        return None;
    }
    let (w, a): (Vec<&str>, Vec<&str>) = (want.lines().collect(), actual.lines().collect());
    let at = w
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(w.len().min(a.len()));
    Some(format!(
        "{}: differs at line {}\n  expected: {:?}\n  actual:   {:?}",
        expected.display(),
        at + 1,
        w.get(at).copied().unwrap_or("(end)"),
        a.get(at).copied().unwrap_or("(end)"),
    ))
}

fn fail_on(differences: Vec<String>) {
    assert!(
        differences.is_empty(),
        "{} golden file(s) differ (if the change is right: {BLESS}=1 cargo test golden -- --include-ignored, then review the diff):\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// The store the fixtures are inspected against: two organisations and one
/// open consultation of theirs, closing far enough ahead never to be late.
async fn store() -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let org = |reg: &str, name: &str, email: &str, fields: &str, language| CsoRecord {
        registration_no: RegistrationNumber::parse(reg).unwrap(),
        name: name.into(),
        emails: vec![EmailAddress::parse(email).unwrap()],
        phone: None,
        city: None,
        fields_of_activity: vec![fields.into()],
        language,
    };
    store
        .apply_registry_changes(&RegistryChanges {
            added: vec![
                org(
                    "F1",
                    "Qendra për Buxhet të Hapur",
                    "buxheti@cso.example.org",
                    "Buxhet",
                    Language::Sq,
                ),
                org(
                    "F2",
                    "Budget Watch",
                    "watch@cso.example.org",
                    "Budget",
                    Language::En,
                ),
            ],
            ..RegistryChanges::default()
        })
        .await
        .unwrap();
    let spec = ConsultationSpec {
        reference: "OGP-GOLDEN".into(),
        policy_area: "FISCAL".into(),
        thematic_group: None,
        title_sq: "Buxheti i hapur në bashki".into(),
        title_en: "Open municipal budgets".into(),
        description_sq: "Përshkrim".into(),
        description_en: "Description".into(),
        opens_on: "2026-12-01".parse().unwrap(),
        closes_on: "2099-12-31".parse().unwrap(),
        meeting: None,
        drafts: vec![],
        short_period_reason: None,
    };
    let id = store.insert_consultation(&spec).await.unwrap();
    store
        .update_consultation(id, &spec, Some(ConsultationState::Open))
        .await
        .unwrap();
    (db, store)
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn our_fixture_messages_are_inspected_as_expected() {
    let (_db, store) = store().await;
    let config = Config::embedded().unwrap();
    let fixtures = files(&repo().join("tests/fixtures/inbound"), "eml");
    assert!(fixtures.len() >= 12, "only {} fixtures", fixtures.len());
    let mut differences = Vec::new();
    for eml in fixtures {
        let raw = std::fs::read(&eml).unwrap();
        let inspection = inspect(store.as_ref(), &config, &raw).await.unwrap();
        let json = serde_json::to_string_pretty(&inspection).unwrap() + "\n";
        differences.extend(compare(&eml.with_extension("json"), &json));
    }
    fail_on(differences);
}

fn corpora() -> PathBuf {
    let corpora = repo().join("../shared/corpora");
    assert!(corpora.is_dir(), "{} is missing", corpora.display());
    corpora
}

/// A reply body wrapped in the minimal message the corpora's README asks for.
fn wrapped(body: &[u8]) -> Vec<u8> {
    let mut raw = b"From: a@cso.example.org\r\nTo: consult@ogp.office.example\r\nSubject: Re: test\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
    raw.extend_from_slice(body);
    raw
}

/// What `mail inspect` says of `raw`, as its golden file holds it.
async fn inspected(store: &dyn Store, config: &Config, raw: &[u8], path: &Path) -> String {
    let inspection = inspect(store, config, raw)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_string_pretty(&inspection).unwrap() + "\n"
}

#[tokio::test]
#[ignore = "needs ../shared/corpora beside the checkout"]
async fn each_corpus_reply_body_is_inspected_as_expected() {
    let corpora = corpora();
    let (_db, store) = store().await;
    let config = Config::embedded().unwrap();
    let mut differences = Vec::new();
    let mut seen = 0;
    for set in ["crisp-email-reply-parser", "github-email_reply_parser"] {
        for body in files(&corpora.join("reply-bodies").join(set), "txt") {
            let raw = wrapped(&std::fs::read(&body).unwrap());
            let json = inspected(store.as_ref(), &config, &raw, &body).await;
            let expected = repo()
                .join("tests/golden/reply-bodies")
                .join(set)
                .join(body.file_name().unwrap())
                .with_extension("json");
            differences.extend(compare(&expected, &json));
            seen += 1;
        }
    }
    assert!(seen >= 100, "only {seen} reply bodies");
    fail_on(differences);
}

/// Every MIME corpus message, malformed ones included, is inspected
/// without a failure, and as its golden file says.
#[tokio::test]
#[ignore = "needs ../shared/corpora beside the checkout"]
async fn each_corpus_message_is_inspected_as_expected() {
    let corpora = corpora();
    let (_db, store) = store().await;
    let config = Config::embedded().unwrap();
    let mut differences = Vec::new();
    let mut seen = 0;
    for set in ["dovecot-malformed", "dovecot-thirdparty"] {
        let dir = corpora.join("mime").join(set);
        let mut messages: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name != "LICENSE" && name != "COPYING"
            })
            .collect();
        messages.sort();
        for path in messages {
            let raw = std::fs::read(&path).unwrap();
            let json = inspected(store.as_ref(), &config, &raw, &path).await;
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let expected = repo()
                .join("tests/golden/mime")
                .join(set)
                .join(format!("{name}.json"));
            differences.extend(compare(&expected, &json));
            seen += 1;
        }
    }
    assert!(seen >= 40, "only {seen} MIME corpus files");
    fail_on(differences);
}

/// What fuzzing found, kept: each input of fuzz/regressions is read through
/// `mail inspect` without a failure, and trimming its text keeps every line.
#[tokio::test]
async fn fuzz_regressions_are_read_without_a_failure() {
    let (_db, store) = store().await;
    let config = Config::embedded().unwrap();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(repo().join("fuzz/regressions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 3, "only {} regressions", inputs.len());
    for path in inputs {
        let raw = std::fs::read(&path).unwrap();
        inspect(store.as_ref(), &config, &raw)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = String::from_utf8_lossy(&raw);
        if let Err(broken) = trim(&text).keeps_every_line_of(&text) {
            panic!("{}: {broken}", path.display());
        }
        html::to_text(&text);
    }
}
