//! The weekly digests of 20 LFPs over 100,000 proposals, made and queued by
//! the real `cocreate schedule run lfp_digest` (each LFP: its new proposals
//! and additions since its watermark, counted and capped; what still waits
//! for an answer, oldest first; consultations closing soon with reply
//! counts; rendered, queued and the watermark moved in one transaction).
//!
//!     cargo bench --bench lfp_digest
//!     COCREATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench lfp_digest
//!
//! `BENCH_KEEP_DATABASE=1` keeps the PostgreSQL database afterwards, to
//! look at the queries' plans.
//!
//! The store is filled directly with SQL (the figure is the digests', not
//! intake's): 20 policy areas, one open consultation each, 100,000
//! proposals spread over them and over three weeks, 10,000 additions. Before
//! each run every LFP's watermark is set to the middle of the three weeks,
//! so each digest has about 2,500 new proposals and 2,500 older ones
//! waiting. The floor is `cocreate schedule list` on the same store (start,
//! config, migrations check, one query): what any command costs.

use std::path::Path;

use sqlx::Connection;

mod support;
use support::median;

const AREAS: usize = 20;
const PROPOSALS: usize = 100_000;
const FOLLOW_UPS: usize = 10_000;
const RUNS: usize = 5;
/// The run's office time: a Monday just after the digest's 08:00.
const MONDAY: &str = "2026-12-21T08:01:00+01:00";
const WATERMARK: &str = "2026-12-11T00:00:00+00:00";

fn runs() -> usize {
    support::runs(RUNS)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    let (digests, floor) = measure(&rt, dir.path(), &config, &url, false);
    report("SQLite", &digests, &floor);

    if let Ok(admin) = std::env::var("COCREATE_TEST_POSTGRES_URL") {
        let name = format!("cocreate_bench_digest_{}", std::process::id());
        let url = rt.block_on(support::postgres_database(&admin, &name, true));
        let (digests, floor) = measure(&rt, dir.path(), &config, &url, true);
        report("PostgreSQL", &digests, &floor);
        if std::env::var_os("BENCH_KEEP_DATABASE").is_some() {
            println!("kept for EXPLAIN: {url}");
        } else {
            rt.block_on(support::postgres_database(&admin, &name, false));
        }
    } else {
        println!("PostgreSQL: not run (set COCREATE_TEST_POSTGRES_URL)");
    }
}

fn report(backend: &str, digests: &[f64], floor: &[f64]) {
    let d = median(digests.to_vec());
    let f = median(floor.to_vec());
    println!(
        "{backend}: digests of {AREAS} LFPs over {PROPOSALS} proposals: median {:.3} s for the whole command (runs: {}); the floor (`schedule list`) {:.3} s; the digests alone {:.3} s ({:.1} ms per LFP); target under 1 s: {}",
        d,
        digests
            .iter()
            .map(|s| format!("{s:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        f,
        d - f,
        (d - f) * 1000.0 / AREAS as f64,
        if d < 1.0 { "met" } else { "NOT met" }
    );
}

/// The built-in config with 15 more policy areas: 20 LFPs.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let mut text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cocreate.toml"))
            .unwrap();
    for i in 6..=AREAS {
        text.push_str(&format!(
            "\n[[policy_areas]]\ncode = \"AREA{i:02}\"\nname_sq = \"Fusha {i}\"\nname_en = \"Area {i}\"\n\
             direct_keywords = [\"fusha{i}\"]\n\n[policy_areas.lfp]\nname_sq = \"Institucioni {i}\"\n\
             name_en = \"Institution {i}\"\nemails = [\"lfp{i}@institution.example\"]\n"
        ));
    }
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn env(dir: &Path, config: &Path, url: &str) -> Vec<(&'static str, String)> {
    let at = chrono::DateTime::parse_from_rfc3339(MONDAY).unwrap();
    vec![
        ("COCREATE_CONFIG", config.display().to_string()),
        ("COCREATE_DATABASE_URL", url.to_string()),
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.join("outbox").display().to_string(),
        ),
        (
            "COCREATE_TEST_CLOCK_OFFSET_SECONDS",
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .num_seconds()
                .to_string(),
        ),
    ]
}

fn measure(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    config: &Path,
    url: &str,
    postgres: bool,
) -> (Vec<f64>, Vec<f64>) {
    let env = env(dir, config, url);
    // Creates the schema, and starts the jobs' watermarks a week before.
    let first = support::run(dir, &env, &["schedule", "list"]);
    assert!(first.ok, "{}", first.stderr);
    rt.block_on(fill(url, postgres));
    let mut digests = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..runs() {
        rt.block_on(reset(url));
        let run = support::run(dir, &env, &["schedule", "run", "lfp_digest"]);
        assert!(run.ok, "{}", run.stderr);
        assert!(
            run.stdout.contains("AREA20: ") && run.stdout.contains(" waiting, to 1 contact"),
            "{}",
            run.stdout
        );
        digests.push(run.seconds);
        let list = support::run(dir, &env, &["schedule", "list"]);
        assert!(list.ok);
        floor.push(list.seconds);
    }
    (digests, floor)
}

/// Runs each statement on the store at `url`.
async fn exec(url: &str, statements: &[String]) {
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        for sql in statements {
            // The simple protocol: VACUUM runs outside a transaction.
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        for sql in statements {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

/// 20 open consultations (one per area), 2,000 organisations, 100,000
/// proposals over three weeks with their messages, 10,000 additions.
async fn fill(url: &str, postgres: bool) {
    let mut statements = Vec::new();
    let series = |n: usize| {
        if postgres {
            format!("generate_series(1, {n}) AS s(i)")
        } else {
            format!(
                "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS s"
            )
        }
    };
    // Text times in SQLite; timestamps in PostgreSQL.
    let time = |seconds: &str| {
        if postgres {
            format!("(TIMESTAMPTZ '2026-11-30 00:00:00+00' + ({seconds}) * INTERVAL '1 second')")
        } else {
            format!(
                "strftime('%Y-%m-%dT%H:%M:%S+00:00', '2026-11-30 00:00:00', '+' || ({seconds}) || ' seconds')"
            )
        }
    };
    let blob = if postgres {
        "convert_to('x', 'UTF8')"
    } else {
        "X'78'"
    };
    let areas: Vec<String> = ["ANTICOR", "SERVICES", "OPENDATA", "FISCAL", "PARTICIP"]
        .iter()
        .map(|s| s.to_string())
        .chain((6..=AREAS).map(|i| format!("AREA{i:02}")))
        .collect();
    for (n, area) in areas.iter().enumerate() {
        let spec = format!(
            r#"{{"reference":"OGP-B{n:02}","policy_area":"{area}","thematic_group":null,"title_sq":"Konsultimi {n}","title_en":"Consultation {n}","description_sq":"d","description_en":"d","opens_on":"2026-11-30","closes_on":"2026-12-31","meeting":null,"drafts":[],"short_period_reason":null}}"#
        );
        statements.push(format!(
            "INSERT INTO consultations (reference, policy_area, state, opens_on, closes_on, spec, created_at, updated_at) \
             VALUES ('OGP-B{n:02}', '{area}', 'open', '2026-11-30', '2026-12-31', '{spec}', {t}, {t})",
            t = time("0")
        ));
    }
    let bulk = [
        format!(
            "INSERT INTO csos (registration_no, name, language, created_at, updated_at) \
             SELECT 'B' || i, 'Organizata ' || i, 'sq', {t}, {t} FROM {s}",
            t = time("0"),
            s = series(2_000)
        ),
        format!(
            "INSERT INTO inbound_messages (dedupe_key, source, raw, received_at, state) \
             SELECT 'bench-' || i, 'bench', {blob}, {t}, 'processed' FROM {s}",
            t = time("i * 18"),
            s = series(PROPOSALS + FOLLOW_UPS)
        ),
        format!(
            "INSERT INTO proposals (receipt_no, consultation_id, cso_id, inbound_message_id, from_address, \
             other_sender, late, subject, reply_text, quoted_text, signature, attachments, authentication, created_at) \
             SELECT 'OGP-' || substr('0000000' || i, -8, 4) || '-' || substr('0000000' || i, -4, 4), \
             1 + (i % {AREAS}), 1 + (i % 2000), i, 'info@cso' || i || '.example.org', FALSE, FALSE, 'Re: Ftesë', \
             'Përshëndetje,' || {nl} || {nl} || 'Propozimi ' || i || ': të publikohen të dhënat e buxhetit çdo muaj, sipas bashkive, në format të hapur.', \
             '', '', '[]', '{{}}', {t} FROM {s}",
            t = time("i * 18"),
            s = series(PROPOSALS),
            nl = if postgres { "chr(10)" } else { "char(10)" }
        ),
        format!(
            "INSERT INTO follow_ups (proposal_id, inbound_message_id, from_address, reply_text, quoted_text, \
             signature, attachments, created_at) \
             SELECT i * 10, {PROPOSALS} + i, 'info@cso' || i || '.example.org', 'Një shtesë ' || i, '', '', '[]', {t} FROM {s}",
            t = time("i * 180 + 60"),
            s = series(FOLLOW_UPS)
        ),
    ];
    for sql in bulk {
        statements.push(if postgres {
            sql.replace(
                "substr('0000000' || i, -8, 4)",
                "substr(lpad(i::text, 8, '0'), 1, 4)",
            )
            .replace(
                "substr('0000000' || i, -4, 4)",
                "substr(lpad(i::text, 8, '0'), 5, 4)",
            )
        } else {
            sql
        });
    }
    if postgres {
        // As autovacuum would have by now on a server that took these in
        // over three weeks: analysed, and vacuumed after so many inserts,
        // which sets the visibility map the counts' index-only scans read.
        statements.push("VACUUM ANALYZE".to_string());
    }
    exec(url, &statements).await;
}

/// Every LFP's watermark in the middle of the three weeks; no digest sent.
async fn reset(url: &str) {
    let postgres = url.starts_with("postgres");
    let time = |t: &str| {
        if postgres {
            format!("TIMESTAMPTZ '{t}'")
        } else {
            format!("'{t}'")
        }
    };
    exec(
        url,
        &[
            "DELETE FROM digest_watermarks".to_string(),
            "DELETE FROM outbox WHERE kind = 'lfp_digest'".to_string(),
            format!(
                "INSERT INTO digest_watermarks (lfp, done_through) SELECT policy_area, {} FROM consultations",
                time(WATERMARK)
            ),
            // The job last ran the Monday before.
            "DELETE FROM schedule_watermarks WHERE job = 'lfp_digest'".to_string(),
            format!(
                "INSERT INTO schedule_watermarks (job, done_through) VALUES ('lfp_digest', {})",
                time("2026-12-14T07:01:00+00:00")
            ),
        ],
    )
    .await;
}
