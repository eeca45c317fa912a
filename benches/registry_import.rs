//! Registry import throughput, end to end: the real `cocreate registry import`
//! process on a generated 100,000-row registry, from process start to exit
//! (config, store, migrations, decode, parse, diff, write, commit).
//!
//!     cargo bench --bench registry_import
//!     COCREATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench registry_import
//!
//! Each scenario runs RUNS times on a fresh database (BENCH_RUNS to
//! change it); the median rows/s and the largest peak resident memory (from
//! wait4) are printed. BENCH_ROWS sets the size (100,000 by default; the
//! 10x run is BENCH_ROWS=1000000 BENCH_RUNS=1).
//!
//! The ceiling, measured in the same run on the same file: loading it into
//! a bare table of its seven columns with the database's own bulk loader,
//! the sqlite3 shell's `.import` (WAL, synchronous=FULL, one transaction;
//! Debian sqlite3) and PostgreSQL's `COPY` (psql's `\copy`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::median;

const TARGET_ROWS_PER_SEC: f64 = 50_000.0;

fn rows() -> usize {
    std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn main() {
    let (rows, runs) = (rows(), support::runs(5));
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("registry.csv");
    let changed = dir.path().join("registry-changed.csv");
    std::fs::write(&first, generate(rows, "")).unwrap();
    std::fs::write(&changed, generate(rows, " (updated)")).unwrap();
    let size = std::fs::metadata(&first).unwrap().len();
    println!(
        "registry import benchmark: {rows} rows, {:.1} MB CSV, {runs} runs each, medians",
        size as f64 / 1e6
    );

    let sqlite_runs: Vec<Scenario> = (0..runs)
        .map(|i| {
            let url = format!("sqlite:{}", dir.path().join(format!("b{i}.db")).display());
            run_scenarios(dir.path(), &url, &first, &changed, rows)
        })
        .collect();
    let ceiling: Option<Vec<f64>> = (0..runs)
        .map(|i| sqlite3_import(dir.path(), &first, rows, i))
        .collect();
    report("SQLite", &sqlite_runs, rows, ceiling, "sqlite3 .import");

    if let Ok(admin) = std::env::var("COCREATE_TEST_POSTGRES_URL") {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut ceiling = Some(Vec::new());
        let pg_runs: Vec<Scenario> = (0..runs)
            .map(|i| {
                let name = format!("cocreate_bench_{}_{i}", std::process::id());
                let url = rt.block_on(support::postgres_database(&admin, &name, true));
                let s = run_scenarios(dir.path(), &url, &first, &changed, rows);
                rt.block_on(support::postgres_database(&admin, &name, false));
                let url = rt.block_on(support::postgres_database(&admin, &name, true));
                let copied = psql_copy(&url, &first, rows);
                ceiling = ceiling.take().zip(copied).map(|(mut v, c)| {
                    v.push(c);
                    v
                });
                rt.block_on(support::postgres_database(&admin, &name, false));
                s
            })
            .collect();
        report("PostgreSQL", &pg_runs, rows, ceiling, "PostgreSQL COPY");
    } else {
        println!("PostgreSQL: not run (set COCREATE_TEST_POSTGRES_URL)");
    }
}

/// The bare table both ceilings load the file into.
const BARE_TABLE: &str = "CREATE TABLE registry (registration_no TEXT, name TEXT, email TEXT, \
     phone TEXT, city TEXT, fields TEXT, language TEXT);";

/// Seconds for the sqlite3 shell to load `file` into a fresh database's
/// bare table in one transaction, WAL and synchronous=FULL as cocreate
/// opens its store; None without sqlite3.
fn sqlite3_import(dir: &Path, file: &Path, rows: usize, i: usize) -> Option<f64> {
    let db = dir.join(format!("ceiling{i}.db"));
    let script = format!(
        "PRAGMA journal_mode = WAL;\nPRAGMA synchronous = FULL;\n{BARE_TABLE}\n\
         .mode csv\n.separator ;\nBEGIN;\n.import --skip 1 {} registry\nCOMMIT;\n\
         SELECT COUNT(*) FROM registry;\n",
        file.display()
    );
    let loaded = timed(Command::new("sqlite3").arg(&db), &script)?;
    assert!(
        loaded.1.trim_end().ends_with(&rows.to_string()),
        "sqlite3 .import loaded something else: {}",
        loaded.1
    );
    Some(loaded.0)
}

/// Seconds for psql's `\copy` to load `file` into the bare table of the
/// database at `url`; None without psql.
fn psql_copy(url: &str, file: &Path, rows: usize) -> Option<f64> {
    timed(Command::new("psql").args([url, "-q", "-c", BARE_TABLE]), "")?;
    let copy = format!(
        "\\copy registry FROM '{}' WITH (FORMAT csv, DELIMITER ';', HEADER true)",
        file.display()
    );
    let loaded = timed(
        Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-c", &copy]),
        "",
    )?;
    assert!(
        loaded.1.trim() == format!("COPY {rows}"),
        "COPY loaded something else: {}",
        loaded.1
    );
    Some(loaded.0)
}

/// Runs `cmd` with `input` on its standard input: its wall time and what it
/// printed; None when the program is not installed.
fn timed(cmd: &mut Command, input: &str) -> Option<(f64, String)> {
    use std::io::Write;
    let start = Instant::now();
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot start {cmd:?}: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((
        start.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// One fresh database through three imports: everything new, the same file
/// again, and every row changed.
struct Scenario {
    add: Measure,
    unchanged: Measure,
    update: Measure,
}

#[derive(Clone, Copy)]
struct Measure {
    seconds: f64,
    peak_rss_kb: i64,
}

fn run_scenarios(dir: &Path, url: &str, first: &Path, changed: &Path, rows: usize) -> Scenario {
    let n = cocreate::domain::thousands(rows);
    let add = import(dir, url, first, &format!("Added {n}, updated 0"));
    let unchanged = import(dir, url, first, &format!("unchanged {n}"));
    let update = import(dir, url, changed, &format!("updated {n}"));
    Scenario {
        add,
        unchanged,
        update,
    }
}

fn import(dir: &Path, url: &str, file: &Path, expect: &str) -> Measure {
    let done = support::run(
        dir,
        &[("COCREATE_DATABASE_URL", url.to_string())],
        &["registry", "import", file.to_str().unwrap()],
    );
    assert!(
        done.ok && done.stdout.contains(expect),
        "import failed or said something else:\n{}\n{}",
        done.stdout,
        done.stderr
    );
    Measure {
        seconds: done.seconds,
        peak_rss_kb: done.peak_rss_kb,
    }
}

fn report(backend: &str, runs: &[Scenario], rows: usize, ceiling: Option<Vec<f64>>, loader: &str) {
    println!("{backend}:");
    let line = |name: &str, pick: fn(&Scenario) -> Measure| {
        let rates: Vec<f64> = runs.iter().map(|s| rows as f64 / pick(s).seconds).collect();
        let secs: Vec<f64> = runs.iter().map(|s| pick(s).seconds).collect();
        let peak = runs.iter().map(|s| pick(s).peak_rss_kb).max().unwrap();
        let m = median(rates.clone());
        println!(
            "  {name:<28} median {:>9.0} rows/s ({:.2} s; runs {}), {:.2}x the 50,000 rows/s target, peak memory {:.0} MB",
            m,
            median(secs),
            support::each_run(&rates),
            m / TARGET_ROWS_PER_SEC,
            peak as f64 / 1024.0
        );
    };
    line("first import (all added)", |s| s.add);
    line("same file again (unchanged)", |s| s.unchanged);
    line("every row changed (updated)", |s| s.update);
    match ceiling {
        Some(seconds) => {
            let rates: Vec<f64> = seconds.iter().map(|s| rows as f64 / s).collect();
            let first = median(runs.iter().map(|s| rows as f64 / s.add.seconds).collect());
            println!(
                "  ceiling: {loader:<19} median {:>9.0} rows/s (runs {}); the first import's ratio to it {:.2}",
                median(rates.clone()),
                support::each_run(&rates),
                first / median(rates)
            );
        }
        None => println!("  ceiling: not measured ({loader} is not installed)"),
    }
}

/// A registry like a real export: Albanian names with diacritics, one or two
/// addresses, several fields of activity, both languages, `;`-separated.
fn generate(rows: usize, suffix: &str) -> String {
    const FIELDS: [&str; 8] = [
        "Të drejtat e njeriut",
        "Transparencë",
        "Buxhet; Financa publike",
        "Rini; Arsim",
        "Mjedis",
        "Antikorrupsion",
        "Shërbime publike; Teknologji",
        "Barazi gjinore",
    ];
    const CITIES: [&str; 6] = [
        "Tiranë",
        "Korçë",
        "Shkodër",
        "Gjirokastër",
        "Durrës",
        "Vlorë",
    ];
    let mut s = String::with_capacity(rows * 160);
    s.push_str("Nr. i regjistrimit;Emërtimi;E-mail;Telefoni;Qyteti;Fushat e veprimtarisë;Gjuha\n");
    for i in 0..rows {
        let emails = if i % 7 == 0 {
            format!("info{i}@oshc{i}.org.al, drejtori{i}@oshc{i}.org.al")
        } else {
            format!("info{i}@oshc{i}.org.al")
        };
        s.push_str(&format!(
            "L{i:08}A;Shoqata Çelësi Nr. {i}{suffix};{emails};+355 00 {i:07};{};\"{}; {}\";{}\n",
            CITIES[i % CITIES.len()],
            FIELDS[i % FIELDS.len()],
            FIELDS[(i / 8) % FIELDS.len()],
            if i % 5 == 0 { "en" } else { "sq" }
        ));
    }
    s
}
