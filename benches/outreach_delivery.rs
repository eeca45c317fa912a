//! Outreach throughput, end to end: 10,000 personalised invitations queued by
//! the real `cocreate outreach send` (render both languages, build MIME with
//! a calendar attachment, store with reply keys), then delivered by the real
//! daemon (`cocreate serve`, rate limit off) to a local SMTP sink, until
//! `outbox status` reports all 10,000 sent.
//!
//!     cargo bench --bench outreach_delivery
//!
//! The sink is Postfix's smtp-sink when installed (Debian postfix), else the
//! aiosmtpd relay of the tests. Prints medians of RUNS runs, and each
//! process's peak resident memory (wait4).
//!
//! The ceiling, measured in the same run: a minimal SMTP sender written
//! here (raw SMTP over tokio, TCP_NODELAY, as many connections as the
//! outbox's `concurrency`) sends the same 10,000 messages, read back from
//! the outbox, to the same sink: once a command at a time, and once with
//! the envelope pipelined (RFC 2920) where the sink offers PIPELINING.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod support;
use support::{median, start_sink};

const INVITATIONS: usize = 10_000;
const RUNS: usize = 3;
const TARGET_PER_SEC: f64 = 2_000.0;
/// The outbox's connections to the relay (`[outbox] concurrency`): the
/// minimal sender opens as many.
const CONNECTIONS: usize = 8;

struct Run {
    queue_seconds: f64,
    queue_rss_kb: i64,
    deliver_seconds: f64,
    /// From the first message recorded sent to the last (the outbox's
    /// sent_at): delivery without the daemon's start.
    steady_seconds: f64,
    daemon_rss_kb: i64,
    /// The minimal sender's seconds for the same messages: a command at a
    /// time, and pipelined.
    ceiling_seconds: f64,
    pipelined_seconds: f64,
}

fn one_run(run: usize, overlapped: bool) -> (Run, &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink(dir.path());
    let env: Vec<(&str, String)> = vec![
        (
            "COCREATE_DATABASE_URL",
            format!("sqlite:{}", dir.path().join("bench.db").display()),
        ),
        ("COCREATE_OUTBOX_TRANSPORT", "smtp".into()),
        ("COCREATE_SMTP_HOST", "127.0.0.1".into()),
        ("COCREATE_SMTP_PORT", sink.port.to_string()),
        ("COCREATE_OUTBOX_RATE_PER_SECOND", "0".into()),
        ("COCREATE_SERVER_LISTEN", "127.0.0.1:0".into()),
        ("COCREATE_LOG_LEVEL", "warn".into()),
    ];

    let mut csv = String::from("Nr. i regjistrimit;Emërtimi;E-mail;Fushat e veprimtarisë;Gjuha\n");
    for i in 0..INVITATIONS {
        csv.push_str(&format!(
            "B{run}{i:06};Shoqata për Buxhet të Hapur Nr. {i};cso{i}@oshc{i}.example.org;\"Buxhet; Financa publike\";{}\n",
            if i % 3 == 0 { "en" } else { "sq" }
        ));
    }
    let registry = dir.path().join("registry.csv");
    std::fs::write(&registry, csv).unwrap();
    let spec = support::bench_consultation(dir.path());
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-BENCH"],
    ] {
        let done = support::run(dir.path(), &env, &args);
        assert!(done.ok, "{args:?}: {}", done.stderr);
        assert!(!done.stdout.contains("Skipped"), "{}", done.stdout);
    }

    let db = format!("sqlite:{}?mode=ro", dir.path().join("bench.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt.block_on(sqlx::SqlitePool::connect(&db)).unwrap();
    let sent = || -> i64 {
        rt.block_on(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent'").fetch_one(&pool),
        )
        .unwrap()
    };
    let start_daemon = || support::serve(dir.path(), &env);
    let wait_all_sent = |since: Instant| {
        while sent() < INVITATIONS as i64 {
            assert!(since.elapsed() < Duration::from_secs(300), "not delivered");
            std::thread::sleep(Duration::from_millis(10));
        }
        since.elapsed().as_secs_f64()
    };
    let stop = |daemon: std::process::Child, since: Instant| {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
        let stopped = support::reap(daemon, since);
        assert!(stopped.ok, "serve did not stop cleanly");
        stopped.peak_rss_kb
    };

    let run = if overlapped {
        // As in use: the daemon runs while the POC sends the invitations.
        let daemon = start_daemon();
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let queued = support::run(dir.path(), &env, &["outreach", "send", "OGP-BENCH"]);
        assert!(
            queued.ok && queued.stdout.starts_with("Queued 10,000 invitations"),
            "{}",
            queued.stderr
        );
        let total = wait_all_sent(start);
        Run {
            queue_seconds: queued.seconds,
            queue_rss_kb: queued.peak_rss_kb,
            deliver_seconds: total,
            steady_seconds: f64::NAN,
            daemon_rss_kb: stop(daemon, start),
            // (Measured on the sequential runs.)
            ceiling_seconds: f64::NAN,
            pipelined_seconds: f64::NAN,
        }
    } else {
        let queued = support::run(dir.path(), &env, &["outreach", "send", "OGP-BENCH"]);
        assert!(
            queued.ok && queued.stdout.starts_with("Queued 10,000 invitations"),
            "{}",
            queued.stderr
        );
        let start = Instant::now();
        let daemon = start_daemon();
        let deliver_seconds = wait_all_sent(start);
        let daemon_rss_kb = stop(daemon, start);
        let (first, last): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = rt
            .block_on(
                sqlx::query_as("SELECT MIN(sent_at), MAX(sent_at) FROM outbox").fetch_one(&pool),
            )
            .unwrap();
        let messages: Vec<(String, String, Vec<u8>)> = rt
            .block_on(
                sqlx::query_as(
                    "SELECT o.envelope_from, o.recipient, b.message FROM outbox o \
                     JOIN outbox_bodies b ON b.outbox_id = o.id ORDER BY o.id",
                )
                .fetch_all(&pool),
            )
            .unwrap();
        assert_eq!(messages.len(), INVITATIONS);
        let messages = Arc::new(messages);
        Run {
            queue_seconds: queued.seconds,
            queue_rss_kb: queued.peak_rss_kb,
            deliver_seconds,
            steady_seconds: (last - first).as_seconds_f64(),
            daemon_rss_kb,
            ceiling_seconds: rt.block_on(minimal_sender(sink.port, messages.clone(), false)),
            pipelined_seconds: rt.block_on(minimal_sender(sink.port, messages, true)),
        }
    };
    (run, sink.name)
}

/// Seconds for the minimal sender to hand every message to the sink over
/// [`CONNECTIONS`] connections, each taking the next message in turn.
async fn minimal_sender(
    port: u16,
    messages: Arc<Vec<(String, String, Vec<u8>)>>,
    pipelined: bool,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut connections = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (messages, next) = (messages.clone(), next.clone());
        connections.spawn(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect to the sink");
            stream.set_nodelay(true).unwrap();
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            let offers = reply(&mut read).await;
            assert!(offers.starts_with("220"), "{offers}");
            write.write_all(b"EHLO bench.example\r\n").await.unwrap();
            let offers = reply(&mut read).await;
            let pipelined = pipelined && offers.contains("PIPELINING");
            let mut data = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((from, to, message)) = messages.get(i) else {
                    break;
                };
                let envelope = format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
                if pipelined {
                    write.write_all(envelope.as_bytes()).await.unwrap();
                    for _ in 0..3 {
                        reply(&mut read).await;
                    }
                } else {
                    for command in envelope.split_inclusive("\r\n") {
                        write.write_all(command.as_bytes()).await.unwrap();
                        reply(&mut read).await;
                    }
                }
                dot_stuffed(message, &mut data);
                write.write_all(&data).await.unwrap();
                reply(&mut read).await;
            }
            write.write_all(b"QUIT\r\n").await.unwrap();
            reply(&mut read).await;
        });
    }
    while let Some(done) = connections.join_next().await {
        done.expect("a connection of the minimal sender failed");
    }
    start.elapsed().as_secs_f64()
}

/// One SMTP reply, every line of it; panics on a refusal.
async fn reply(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let n = read.read_line(&mut line).await.unwrap();
        assert!(n > 0, "the sink closed the connection: {all}");
        let last = line.as_bytes().get(3) != Some(&b'-');
        all.push_str(&line);
        if last {
            break;
        }
    }
    assert!(matches!(all.as_bytes()[0], b'2' | b'3'), "refused: {all}");
    all
}

/// `message` as DATA sends it: a line starting with a dot gets another,
/// CRLF line ends, and the closing dot.
fn dot_stuffed(message: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

fn main() {
    let mut sink = "";
    let mut sequential = Vec::new();
    let mut overlapped = Vec::new();
    for i in 0..RUNS {
        let (r, name) = one_run(i, false);
        sequential.push(r);
        overlapped.push(one_run(i, true).0);
        sink = name;
    }
    let rate = |runs: &[Run], secs: &dyn Fn(&Run) -> f64| -> Vec<f64> {
        runs.iter().map(|r| INVITATIONS as f64 / secs(r)).collect()
    };
    let mb = |kb: i64| kb as f64 / 1024.0;
    let list = support::each_run;
    println!(
        "outreach benchmark: {INVITATIONS} invitations to {sink}, rate limit off, {RUNS} runs each, medians"
    );
    let queue = rate(&sequential, &|r| r.queue_seconds);
    println!(
        "  queue    outreach send (render, build, store)   {:>6.0} messages/s (runs {}), peak memory {:.0} MB",
        median(queue.clone()),
        list(&queue),
        mb(sequential.iter().map(|r| r.queue_rss_kb).max().unwrap())
    );
    let deliver = rate(&sequential, &|r| r.deliver_seconds);
    println!(
        "  deliver  cocreate serve to the relay              {:>6.0} messages/s (runs {}), daemon peak memory {:.0} MB",
        median(deliver.clone()),
        list(&deliver),
        mb(sequential.iter().map(|r| r.daemon_rss_kb).max().unwrap())
    );
    let steady = rate(&sequential, &|r| r.steady_seconds);
    println!(
        "           of which from the first message sent to the last {:>6.0} messages/s (runs {})",
        median(steady.clone()),
        list(&steady)
    );
    for (name, ceiling) in [
        (
            "one command at a time",
            rate(&sequential, &|r| r.ceiling_seconds),
        ),
        ("pipelined", rate(&sequential, &|r| r.pipelined_seconds)),
    ] {
        println!(
            "  ceiling  minimal sender over {CONNECTIONS} connections,\n           {name:<37} {:>6.0} messages/s (runs {}); cocreate's ratio to it {:.2} (first to last sent: {:.2})",
            median(ceiling.clone()),
            list(&ceiling),
            median(deliver.clone()) / median(ceiling.clone()),
            median(steady.clone()) / median(ceiling.clone())
        );
    }
    let one_after = rate(&sequential, &|r| r.queue_seconds + r.deliver_seconds);
    println!(
        "  end to end, queue then deliver                 {:>6.0} messages/s (runs {}), {:.2}x the {TARGET_PER_SEC:.0}/s target",
        median(one_after.clone()),
        list(&one_after),
        median(one_after.clone()) / TARGET_PER_SEC
    );
    let together = rate(&overlapped, &|r| r.deliver_seconds);
    println!(
        "  end to end, daemon delivering while queued     {:>6.0} messages/s (runs {}), {:.2}x the {TARGET_PER_SEC:.0}/s target, daemon peak memory {:.0} MB",
        median(together.clone()),
        list(&together),
        median(together.clone()) / TARGET_PER_SEC,
        mb(overlapped.iter().map(|r| r.daemon_rss_kb).max().unwrap())
    );
}
