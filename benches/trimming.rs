//! Reading a reply, in process: parse (mail-parser, and the HTML reader for
//! HTML-only mail) and trim, on 10,000 messages. The bodies are every
//! message of tests/fixtures/inbound and every reply body of
//! ../shared/corpora (wrapped in a minimal message), taken in turn.
//!
//!     cargo bench --bench trimming
//!     valgrind --tool=callgrind target/release/deps/trimming-* --count full 20
//!     perf record -g target/release/deps/trimming-* --one email_21.txt 20000
//!
//! It prints the median of RUNS runs in µs a message for parse + trim, and
//! for parsing alone, the floor under it on the same messages in the same
//! run (mail-parser's own work, which trimming cannot undercut): the ratio
//! says how much trimming adds to it. The target is under 10 µs a message.

use std::path::Path;
use std::time::Instant;

use cocreate::inbound::parse::parse;
use cocreate::inbound::trim::trim;
use mail_parser::MessageParser;

mod support;
use support::median;

// The allocator cocreate runs with (src/main.rs), so the figure is the
// daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MESSAGES: usize = 10_000;
const RUNS: usize = 7;
const TARGET_MICROS: f64 = 10.0;

fn files(dir: &Path, extension: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p).unwrap())
        })
        .collect()
}

/// Every distinct message, named by its file.
fn distinct() -> Vec<(String, Vec<u8>)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut distinct = files(&repo.join("tests/fixtures/inbound"), "eml");
    let fixtures = distinct.len();
    let corpora = repo.join("../shared/corpora/reply-bodies");
    for set in ["crisp-email-reply-parser", "github-email_reply_parser"] {
        for (name, body) in files(&corpora.join(set), "txt") {
            let mut raw = b"From: a@cso.example.org\r\nTo: consult@ogp.office.example\r\nSubject: Re: test\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
            raw.extend_from_slice(&body);
            distinct.push((name, raw));
        }
    }
    println!(
        "{} distinct messages ({fixtures} fixtures, {} corpus reply bodies{}), taken in turn to {MESSAGES}",
        distinct.len(),
        distinct.len() - fixtures,
        if distinct.len() == fixtures {
            "; ../shared/corpora is not beside the checkout"
        } else {
            ""
        }
    );
    distinct
}

/// For counting instructions under valgrind, where time means nothing:
/// `--count STEP PASSES [--replies]` runs one step (full, parse, trim or
/// floor) PASSES times over the distinct messages and prints no timing.
/// One pass runs first in any case, so the regexes are compiled and the
/// caches warm: run it with 0 passes too and subtract, to leave out
/// start-up.
fn count(args: &[String]) {
    let step = args.first().map_or("full", String::as_str);
    let passes: usize = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(1);
    let mut messages: Vec<Vec<u8>> = distinct().into_iter().map(|(_, m)| m).collect();
    if args.iter().any(|a| a == "--replies") {
        messages.retain(|m| m.len() <= REPLY_BYTES);
    }
    let bodies: Vec<String> = messages
        .iter()
        .map(|raw| parse(raw).map(|p| p.body.into_owned()).unwrap_or_default())
        .collect();
    let mut kept = 0;
    for _ in 0..passes + 1 {
        for (raw, body) in messages.iter().zip(&bodies) {
            kept += match step {
                "parse" => parse_only(raw),
                "trim" => trim_only(body),
                "floor" => floor(raw),
                _ => parse_and_trim(raw),
            };
        }
    }
    println!(
        "{step}: {} messages, {passes} passes ({kept})",
        messages.len()
    );
}

// The steps measured, each returning a length so nothing is optimised away.
fn parse_only(raw: &[u8]) -> usize {
    parse(raw).map_or(0, |p| p.body.len())
}

fn trim_only(body: &str) -> usize {
    trim(body).reply_text.len()
}

fn parse_and_trim(raw: &[u8]) -> usize {
    parse(raw).map_or(0, |p| trim(&p.body).reply_text.len())
}

/// mail-parser alone: the floor under parsing.
fn floor(raw: &[u8]) -> usize {
    MessageParser::default()
        .parse(raw)
        .map_or(0, |m| m.body_text(0).map_or(0, |b| b.len()))
}

/// µs a message for one pass of `work` over `messages`.
fn pass(messages: &[Vec<u8>], mut work: impl FnMut(&[u8]) -> usize) -> f64 {
    let start = Instant::now();
    let mut kept = 0;
    for m in messages {
        kept += work(m);
    }
    std::hint::black_box(kept);
    start.elapsed().as_secs_f64() * 1e6 / messages.len() as f64
}

/// A reply as people write one is a few kilobytes; the corpus also holds a
/// 767 KB body of one line of `>` marks (a stress test of trimmers), whose
/// parsing alone outweighs every other message taken together. Both mixes
/// are measured: every message, and every message up to this size.
const REPLY_BYTES: usize = 64 * 1024;

/// Runs every pass RUNS times over `messages` and prints the medians.
fn measure(title: &str, messages: &[Vec<u8>]) -> f64 {
    let bytes: usize = messages.iter().map(Vec::len).sum();
    println!(
        "\n{title}: {} messages, {} KB",
        messages.len(),
        bytes / 1024
    );
    let bodies: Vec<String> = messages
        .iter()
        .filter_map(|raw| parse(raw).ok().map(|p| p.body.into_owned()))
        .collect();
    let (mut full, mut floors) = (Vec::new(), Vec::new());
    let (mut parsing, mut trimming) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        parsing.push(pass(messages, parse_only));
        let start = Instant::now();
        let kept: usize = bodies.iter().map(|b| trim_only(b)).sum();
        std::hint::black_box(kept);
        trimming.push(start.elapsed().as_secs_f64() * 1e6 / bodies.len() as f64);
        full.push(pass(messages, parse_and_trim));
        floors.push(pass(messages, floor));
    }
    let (f, c) = (median(full.clone()), median(floors.clone()));
    let runs = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("parse + trim: {f:.2} µs a message (runs: {})", runs(&full));
    println!(
        "  of which parse {:.2} µs (runs: {}), trim {:.2} µs (runs: {})",
        median(parsing.clone()),
        runs(&parsing),
        median(trimming.clone()),
        runs(&trimming)
    );
    println!(
        "mail-parser alone (the floor): {c:.2} µs a message (runs: {})",
        runs(&floors)
    );
    println!(
        "ratio floor / parse + trim: {:.2}; target {TARGET_MICROS} µs: {}",
        c / f,
        if f < TARGET_MICROS { "met" } else { "NOT met" }
    );
    f
}

/// `--each`: where the time goes, message by message: parse + trim and
/// the floor for each distinct message (median of 31 runs), the messages
/// costing most above their floor first, with their share of the whole
/// mix's cost above the floor.
fn each() {
    let timed = |raw: &[u8], work: fn(&[u8]) -> usize| {
        let runs = (0..31)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(work(raw));
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        median(runs)
    };
    let mut rows: Vec<(String, usize, f64, f64)> = distinct()
        .into_iter()
        .map(|(name, raw)| {
            let (full, floor) = (timed(&raw, parse_and_trim), timed(&raw, floor));
            (name, raw.len(), full, floor)
        })
        .collect();
    let above: f64 = rows.iter().map(|r| (r.2 - r.3).max(0.0)).sum();
    rows.sort_by(|a, b| (b.2 - b.3).total_cmp(&(a.2 - a.3)));
    println!("µs above the floor, share of the mix's, parse + trim, floor, bytes, message");
    for (name, bytes, full, floor) in rows.iter().take(20) {
        println!(
            "{:9.2} {:5.1}% {:9.2} {:9.2} {bytes:8} {name}",
            full - floor,
            100.0 * (full - floor) / above,
            full,
            floor
        );
    }
}

/// `--one NAME PASSES [STEP]`: one step (full, the default, parse or
/// floor) on the one message named NAME (as `--each` names it), PASSES
/// times, for `perf record` or `perf stat` on that message.
fn one(args: &[String]) {
    let name = args.first().map_or("", String::as_str);
    let passes: usize = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(1000);
    let step = args.get(2).map_or("full", String::as_str);
    let Some((_, raw)) = distinct().into_iter().find(|(n, _)| n == name) else {
        panic!("no message named {name:?}");
    };
    let work = match step {
        "parse" => parse_only,
        "floor" => floor,
        _ => parse_and_trim,
    };
    let kept: usize = (0..passes).map(|_| work(&raw)).sum();
    println!("{name}: {step}, {passes} passes ({kept})");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--count") {
        return count(&args[at + 1..]);
    }
    if let Some(at) = args.iter().position(|a| a == "--one") {
        return one(&args[at + 1..]);
    }
    if args.iter().any(|a| a == "--each") {
        return each();
    }
    let messages: Vec<Vec<u8>> = distinct()
        .into_iter()
        .map(|(_, m)| m)
        .cycle()
        .take(MESSAGES)
        .collect();
    measure("every message", &messages);
    let replies: Vec<Vec<u8>> = messages
        .iter()
        .filter(|m| m.len() <= REPLY_BYTES)
        .cloned()
        .collect();
    measure(
        &format!(
            "replies up to {} KB ({} of {} messages)",
            REPLY_BYTES / 1024,
            replies.len(),
            messages.len()
        ),
        &replies,
    );
}
