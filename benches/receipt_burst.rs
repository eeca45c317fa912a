//! A burst of replies and their receipts, with the default configuration:
//! 10,000 invited organisations answer at once (10,000 replies dropped into
//! the maildir `cocreate serve` watches in one go), while the 10,000
//! invitations themselves still wait in the bulk lane at the default 20 a
//! second. Receipts go in their own lane, unpaced, so each should reach the
//! relay within seconds of its proposal being stored.
//!
//!     cargo bench --bench receipt_burst
//!
//! The relay is a local sink (see `support::start_sink`). Prints, for each
//! run, when the last proposal was stored and the last receipt sent after
//! the drop, and each receipt's wait from being stored to being handed to
//! the relay (median and longest). The target: the longest wait at most 10 s.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

mod support;
use support::{free_port, median, start_sink};

const REPLIES: usize = 10_000;
const RUNS: usize = 1;
const TARGET_SECONDS: f64 = 10.0;

fn runs() -> usize {
    support::runs(RUNS)
}

fn main() {
    let mut longest = Vec::new();
    let mut sink = "";
    for run in 0..runs() {
        let (name, waits) = one_run(run);
        sink = name;
        longest.push(waits);
    }
    let m = median(longest);
    println!(
        "median over runs of the longest wait: {m:.2} s (relay: {sink}); target at most {TARGET_SECONDS} s: {}",
        if m <= TARGET_SECONDS {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// One burst; returns the sink's name and the longest wait in seconds.
fn one_run(run: usize) -> (&'static str, f64) {
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink(dir.path());
    let db = dir.path().join("bench.db");
    let port = free_port();
    let env: Vec<(&str, String)> = vec![
        ("COCREATE_DATABASE_URL", format!("sqlite:{}", db.display())),
        ("COCREATE_OUTBOX_TRANSPORT", "smtp".into()),
        ("COCREATE_SMTP_HOST", "127.0.0.1".into()),
        ("COCREATE_SMTP_PORT", sink.port.to_string()),
        ("COCREATE_SERVER_LISTEN", format!("127.0.0.1:{port}")),
        (
            "COCREATE_INBOUND_MAILDIR",
            dir.path().join("inbox").display().to_string(),
        ),
        ("COCREATE_LOG_LEVEL", "warn".into()),
    ];
    let mut csv = String::from("Nr. i regjistrimit;Emërtimi;E-mail;Fushat e veprimtarisë;Gjuha\n");
    for i in 0..REPLIES {
        csv.push_str(&format!(
            "R{run}{i:06};Shoqata Nr. {i};cso{i}@oshc{i}.example.org;\"Buxhet; Financa publike\";sq\n"
        ));
    }
    std::fs::write(dir.path().join("r.csv"), csv).unwrap();
    let spec = support::bench_consultation(dir.path());
    for args in [
        vec!["registry", "import", "r.csv"],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-BENCH"],
        vec!["outreach", "send", "OGP-BENCH"],
    ] {
        let done = support::run(dir.path(), &env, &args);
        assert!(done.ok, "{args:?}: {}", done.stderr);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt
        .block_on(sqlx::SqlitePool::connect(&format!(
            "sqlite:{}?mode=ro",
            db.display()
        )))
        .unwrap();
    let keys: Vec<(String, String)> = rt
        .block_on(
            sqlx::query_as("SELECT key, address FROM reply_keys ORDER BY address").fetch_all(&pool),
        )
        .unwrap();
    assert_eq!(keys.len(), REPLIES);
    let staged = dir.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    for (i, (key, address)) in keys.iter().enumerate() {
        std::fs::write(
            staged.join(format!("{i:06}.eml")),
            format!(
                "From: Arta {i} <{address}>\r\nTo: consult+{key}@ogp.office.example\r\nSubject: Re: Ftesë për konsultim\r\nMessage-ID: <burst{i}@oshc.example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPropozojmë që ministria të publikojë çdo muaj ekzekutimin e buxhetit ({i}).\r\n\r\nMe respekt,\r\nArta\r\n\r\nMë 3 dhj 2026 në 10:00, Pika e Kontaktit <consult+{key}@ogp.office.example> shkroi:\r\n> Ftesë për konsultim\r\n"
            ),
        )
        .unwrap();
    }
    let new = dir.path().join("inbox/new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::create_dir_all(dir.path().join("inbox/cur")).unwrap();
    std::fs::create_dir_all(dir.path().join("inbox/tmp")).unwrap();

    let daemon = support::serve(dir.path(), &env);
    let started = Instant::now();
    support::wait_for_port(port, Duration::from_secs(30), "serve");

    // The burst: every reply at once (a rename each, as a mail server
    // delivers into a maildir).
    let dropped = Instant::now();
    for i in 0..REPLIES {
        let name = format!("{i:06}.eml");
        std::fs::rename(staged.join(&name), new.join(&name)).unwrap();
    }
    let count = |sql: &str| -> i64 {
        rt.block_on(sqlx::query_scalar(sql).fetch_one(&pool))
            .unwrap()
    };
    let mut stored_after = None;
    loop {
        if stored_after.is_none() && count("SELECT COUNT(*) FROM proposals") == REPLIES as i64 {
            stored_after = Some(dropped.elapsed().as_secs_f64());
        }
        if count("SELECT COUNT(*) FROM outbox WHERE kind = 'receipt' AND state = 'sent'")
            == REPLIES as i64
        {
            break;
        }
        assert!(
            dropped.elapsed() < Duration::from_secs(600),
            "receipts not all sent after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_sent = dropped.elapsed().as_secs_f64();
    let stored_after = stored_after.unwrap_or(all_sent);
    let times: Vec<(DateTime<Utc>, DateTime<Utc>)> = rt
        .block_on(
            sqlx::query_as("SELECT created_at, sent_at FROM outbox WHERE kind = 'receipt'")
                .fetch_all(&pool),
        )
        .unwrap();
    let waits: Vec<f64> = times
        .iter()
        .map(|(queued, sent)| (*sent - *queued).as_seconds_f64())
        .collect();
    let longest = waits.iter().cloned().fold(0.0, f64::max);
    let invitations_sent =
        count("SELECT COUNT(*) FROM outbox WHERE kind = 'invitation' AND state = 'sent'");

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let stopped = support::reap(daemon, started);
    assert!(stopped.ok, "serve did not stop cleanly");
    println!(
        "run {}: {REPLIES} replies dropped at once: all stored as proposals {stored_after:.2} s after the drop, all receipts sent {all_sent:.2} s after it; a receipt's wait from stored to sent: median {:.2} s, longest {longest:.2} s; meanwhile {invitations_sent} invitations went at the bulk lane's 20 a second; serve's peak memory {} MB",
        run + 1,
        median(waits.clone()),
        stopped.peak_rss_kb / 1024
    );
    (sink.name, longest)
}
