//! Inbound throughput, end to end: 10,000 varied replies dropped in a
//! maildir and taken in by the real `cocreate mail ingest --maildir` (store
//! raw, parse, classify, route, trim, record the proposal, queue the
//! receipt; every message committed before the next).
//!
//!     cargo bench --bench inbound_ingest
//!     COCREATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench inbound_ingest
//!
//! The replies answer real invitations (their reply keys come from the
//! store): Gmail-style Albanian top-posts, Outlook blocks in English,
//! HTML-only Windows-1250, some with a PDF, some out-of-office replies and
//! some from strangers. Medians of RUNS runs; peak memory and CPU time
//! from wait4.
//!
//! On SQLite each run also measures the ceiling for the same work's
//! storage: the same raw files read and written into a bare SQLite table
//! (a unique key and the bytes) with the same durability (WAL,
//! synchronous=FULL) and batch size (256 messages a transaction), and
//! prints cocreate's ratio to it.

use std::path::Path;

use sqlx::Connection;

mod support;
use support::median;

const REPLIES: usize = 10_000;
/// Runs per backend; BENCH_RUNS overrides it for a quick look.
const RUNS: usize = 3;

fn runs() -> usize {
    support::runs(RUNS)
}

fn main() {
    let mut sqlite = Vec::new();
    let mut ceilings = Vec::new();
    for _ in 0..runs() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("bench.db").display());
        sqlite.push(run(dir.path(), &url));
        ceilings.push(ceiling(dir.path()));
    }
    report("SQLite", &sqlite, 2_000.0);
    let rates: Vec<f64> = sqlite.iter().map(|(s, _, _)| REPLIES as f64 / s).collect();
    let ceiling_rates: Vec<f64> = ceilings.iter().map(|s| REPLIES as f64 / s).collect();
    let ratios: Vec<f64> = rates
        .iter()
        .zip(&ceiling_rates)
        .map(|(r, c)| r / c)
        .collect();
    println!(
        "SQLite ceiling (the same raw bytes into a bare table, WAL, synchronous=FULL, {BATCH} a transaction): median {:.0} messages/s (runs {}); cocreate's ratio to it, run by run: {} (median {:.3})",
        median(ceiling_rates.clone()),
        support::each_run(&ceiling_rates),
        ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" "),
        median(ratios.clone())
    );

    if let Ok(admin) = std::env::var("COCREATE_TEST_POSTGRES_URL") {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut pg = Vec::new();
        for i in 0..runs() {
            let dir = tempfile::tempdir().unwrap();
            let name = format!("cocreate_bench_in_{}_{i}", std::process::id());
            let url = rt.block_on(support::postgres_database(&admin, &name, true));
            pg.push(run(dir.path(), &url));
            rt.block_on(support::postgres_database(&admin, &name, false));
        }
        report("PostgreSQL", &pg, 1_000.0);
    } else {
        println!("PostgreSQL: not run (set COCREATE_TEST_POSTGRES_URL)");
    }
}

/// Messages a transaction, as cocreate's intake batches them
/// (`intake::BATCH_MESSAGES`).
const BATCH: usize = 256;

/// Seconds to read the run's raw files (moved to cur/ by cocreate) and
/// write them into a fresh SQLite table with cocreate's durability and
/// batch size: the floor under storing what came in.
fn ceiling(dir: &Path) -> f64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("inbox/cur"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), REPLIES);
    let url = format!("sqlite:{}", dir.join("ceiling.db").display());
    rt.block_on(async {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        use std::str::FromStr;
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE m (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, raw BLOB NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let start = std::time::Instant::now();
        for (n, chunk) in files.chunks(BATCH).enumerate() {
            let mut tx = conn.begin().await.unwrap();
            for (i, path) in chunk.iter().enumerate() {
                let raw = std::fs::read(path).unwrap();
                sqlx::query("INSERT INTO m (key, raw) VALUES ($1, $2)")
                    .bind(format!("{n}-{i}"))
                    .bind(raw)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        start.elapsed().as_secs_f64()
    })
}

fn report(backend: &str, runs: &[(f64, i64, f64)], target: f64) {
    let rates: Vec<f64> = runs.iter().map(|(s, _, _)| REPLIES as f64 / s).collect();
    let m = median(rates.clone());
    let cpu = median(
        runs.iter()
            .map(|(_, _, c)| c * 1e6 / REPLIES as f64)
            .collect(),
    );
    println!(
        "{backend}: {REPLIES} replies, median {m:.0} messages/s ({:.2}x the {target:.0}/s target; runs {}), {cpu:.0} µs CPU per message, peak memory {:.0} MB",
        m / target,
        support::each_run(&rates),
        runs.iter().map(|(_, kb, _)| *kb).max().unwrap() as f64 / 1024.0
    );
}

/// Sets up a consultation with 10,000 invited CSOs, writes the replies and
/// times the ingest. Returns (seconds, peak RSS in kB, CPU seconds).
fn run(dir: &Path, url: &str) -> (f64, i64, f64) {
    let env = vec![
        ("COCREATE_DATABASE_URL", url.to_string()),
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.join("outbox").display().to_string(),
        ),
        // Every reply in the benchmark comes from a different address, but
        // the loop guard is per address and hour: keep it out of the way.
        (
            "COCREATE_MAIL_RECEIPTS_PER_ADDRESS_PER_HOUR",
            "1000000".to_string(),
        ),
    ];
    let mut csv = String::from("Nr. i regjistrimit;Emërtimi;E-mail;Fushat e veprimtarisë;Gjuha\n");
    for i in 0..REPLIES {
        csv.push_str(&format!(
            "I{i:06};Shoqata Nr. {i};cso{i}@oshc{i}.example.org;\"Buxhet; Financa publike\";{}\n",
            if i % 3 == 0 { "en" } else { "sq" }
        ));
    }
    std::fs::write(dir.join("r.csv"), csv).unwrap();
    std::fs::write(
        dir.join("c.toml"),
        "reference = \"OGP-BENCH\"\npolicy_area = \"FISCAL\"\nopens = 2026-12-01\ncloses = 2027-01-11\n\
         title = { sq = \"Buxheti i hapur\", en = \"Open budgets\" }\n\
         description = { sq = \"Përshkrim\", en = \"Description\" }\n",
    )
    .unwrap();
    for args in [
        vec!["registry", "import", "r.csv"],
        vec!["consultation", "create", "--file", "c.toml"],
        vec!["consultation", "open", "OGP-BENCH"],
        vec!["outreach", "send", "OGP-BENCH"],
    ] {
        let done = support::run(dir, &env, &args);
        assert!(done.ok, "{args:?}: {}", done.stderr);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sql = "SELECT key, address FROM reply_keys ORDER BY address";
    let keys: Vec<(String, String)> = rt.block_on(async {
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
    });
    assert_eq!(keys.len(), REPLIES);

    let new = dir.join("inbox/new");
    std::fs::create_dir_all(&new).unwrap();
    for (i, (key, address)) in keys.iter().enumerate() {
        std::fs::write(new.join(format!("{i:06}.eml")), reply(i, key, address)).unwrap();
    }

    let done = support::run(dir, &env, &["mail", "ingest", "--maildir", "inbox"]);
    assert!(
        done.ok
            && done
                .stdout
                .ends_with("Took in 10,000 messages; 0 left in new/.\n"),
        "{}",
        done.stderr
    );
    (done.seconds, done.peak_rss_kb, done.cpu_seconds)
}

fn reply(i: usize, key: &str, address: &str) -> Vec<u8> {
    let to = format!("consult+{key}@ogp.office.example");
    match i % 20 {
        // An out-of-office reply: kept, no proposal.
        0 => format!(
            "From: {address}\r\nTo: {to}\r\nSubject: Jashtë zyrës: Ftesë\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo{i}@oshc.example.org>\r\n\r\nJam jashtë zyrës deri më 5 janar.\r\n"
        )
        .into_bytes(),
        // A stranger without a key: the holding pen.
        1 => format!(
            "From: someone{i}@elsewhere.example.org\r\nTo: ogp-poc@office.example\r\nSubject: Pyetje\r\nMessage-ID: <s{i}@elsewhere.example.org>\r\n\r\nA është kjo adresa e duhur?\r\n"
        )
        .into_bytes(),
        // Outlook in English, with the From/Sent block.
        2..=6 => format!(
            "From: CSO {i} <{address}>\r\nTo: {to}\r\nSubject: RE: Invitation to consultation\r\nMessage-ID: <o{i}@oshc.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWe propose that municipalities publish their budgets monthly, proposal {i}.\r\n\r\nKind regards,\r\nCSO {i}\r\n\r\n________________________________\r\nFrom: OGP Office <{to}>\r\nSent: Thursday, December 3, 2026 10:00 AM\r\nTo: {address}\r\nSubject: Invitation to consultation\r\n\r\nDear colleagues,\r\n"
        )
        .into_bytes(),
        // HTML only, Windows-1250, with a small PDF (2 KB) of its own.
        7..=9 => {
            let mut m = format!(
                "From: {address}\r\nTo: {to}\r\nSubject: =?windows-1250?q?Propozim_p=EBr_buxhetin?=\r\nMessage-ID: <h{i}@oshc.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\nContent-Type: text/html; charset=windows-1250\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Propozimi yn=EB nr. {i}: t=EB dh=EBna =E7do muaj.</p>\r\n--b{i}\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"propozimi-{i}.pdf\"\r\n\r\n"
            )
            .into_bytes();
            // Each PDF differs, so each is a file of its own on disk.
            m.extend(format!("%PDF-1.4\r\n% propozimi {i}\r\n{}\r\n%%EOF\r\n", "0".repeat(2000)).into_bytes());
            m.extend(format!("--b{i}--\r\n").into_bytes());
            m
        }
        // Gmail in Albanian, top-posted over the quoted invitation.
        _ => format!(
            "From: Arta {i} <{address}>\r\nTo: {to}\r\nSubject: Re: Ftesë për konsultim\r\nMessage-ID: <g{i}@oshc.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPropozojmë që ministria të publikojë çdo muaj ekzekutimin e buxhetit ({i}).\r\n\r\nMe respekt,\r\nArta\r\n\r\nMë 3 dhj 2026 në 10:00, Pika e Kontaktit <{to}> shkroi:\r\n> Ftesë për konsultim\r\n> Afati: 11 janar 2027\r\n"
        )
        .into_bytes(),
    }
}
