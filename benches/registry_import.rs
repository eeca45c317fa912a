//! Registry import throughput, end to end: the real `cocreate registry import`
//! process on a generated 100,000-row registry, from process start to exit
//! (config, store, migrations, decode, parse, diff, write, commit).
//!
//!     cargo bench --bench registry_import
//!     COCREATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench registry_import
//!
//! Each scenario runs RUNS times on a fresh database; the median rows/s and
//! the largest peak resident memory (from wait4) are printed.

use std::path::Path;

mod support;
use support::median;

const ROWS: usize = 100_000;
const RUNS: usize = 5;
const TARGET_ROWS_PER_SEC: f64 = 50_000.0;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("registry.csv");
    let changed = dir.path().join("registry-changed.csv");
    std::fs::write(&first, generate(ROWS, "")).unwrap();
    std::fs::write(&changed, generate(ROWS, " (updated)")).unwrap();
    let size = std::fs::metadata(&first).unwrap().len();
    println!(
        "registry import benchmark: {ROWS} rows, {:.1} MB CSV, {RUNS} runs each, medians",
        size as f64 / 1e6
    );

    let sqlite_runs: Vec<Scenario> = (0..RUNS)
        .map(|i| {
            let url = format!("sqlite:{}", dir.path().join(format!("b{i}.db")).display());
            run_scenarios(dir.path(), &url, &first, &changed)
        })
        .collect();
    report("SQLite", &sqlite_runs);

    if let Ok(admin) = std::env::var("COCREATE_TEST_POSTGRES_URL") {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let pg_runs: Vec<Scenario> = (0..RUNS)
            .map(|i| {
                let name = format!("cocreate_bench_{}_{i}", std::process::id());
                let url = rt.block_on(support::postgres_database(&admin, &name, true));
                let s = run_scenarios(dir.path(), &url, &first, &changed);
                rt.block_on(support::postgres_database(&admin, &name, false));
                s
            })
            .collect();
        report("PostgreSQL", &pg_runs);
    } else {
        println!("PostgreSQL: not run (set COCREATE_TEST_POSTGRES_URL)");
    }
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

fn run_scenarios(dir: &Path, url: &str, first: &Path, changed: &Path) -> Scenario {
    let add = import(dir, url, first, "Added 100,000, updated 0");
    let unchanged = import(dir, url, first, "unchanged 100,000");
    let update = import(dir, url, changed, "updated 100,000");
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

fn report(backend: &str, runs: &[Scenario]) {
    println!("{backend}:");
    let line = |name: &str, pick: fn(&Scenario) -> Measure| {
        let rates: Vec<f64> = runs.iter().map(|s| ROWS as f64 / pick(s).seconds).collect();
        let secs: Vec<f64> = runs.iter().map(|s| pick(s).seconds).collect();
        let peak = runs.iter().map(|s| pick(s).peak_rss_kb).max().unwrap();
        let m = median(rates.clone());
        println!(
            "  {name:<28} median {:>9.0} rows/s ({:.2} s; runs {}), {:.2}x the 50,000 rows/s target, peak memory {:.0} MB",
            m,
            median(secs),
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" "),
            m / TARGET_ROWS_PER_SEC,
            peak as f64 / 1024.0
        );
    };
    line("first import (all added)", |s| s.add);
    line("same file again (unchanged)", |s| s.unchanged);
    line("every row changed (updated)", |s| s.update);
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
