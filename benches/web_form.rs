//! The web form under load, against the real daemon (`cocreate serve`,
//! release build) over loopback, by a small HTTP/1.1 load generator here
//! (keep-alive, TCP_NODELAY, CONNECTIONS connections):
//!
//! - the ceiling: a bare axum handler returning a fixed string, served by
//!   axum::serve in this process, in the same run;
//! - GET of a consultation's public page (`/c/REF`: rendered at most once a
//!   second, the form's token signed for each visitor), and of CSOs'
//!   personal pages (`/p/KEY`: the CSO and what it sent read from the
//!   store, the page rendered for each visit; these also give the tokens
//!   the POSTs use);
//! - POST of valid submissions through personal links: each a proposal
//!   stored durably with its receipt queued (the 303 to the receipt page
//!   comes after intake's transaction commits), counted again in the store
//!   afterwards.
//!
//! Run with:
//!
//!     cargo bench --bench web_form
//!     COCREATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench web_form
//!
//! Prints requests per second, p50 and p99 latency for each.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use support::free_port;

const CONNECTIONS: usize = 32;
const SECONDS: u64 = 5;
const CSOS: usize = 1_000;
const POSTS: usize = 6_000;

/// One answered request: its status, body and how long it took.
struct Answer {
    status: u16,
    body: Vec<u8>,
    took: Duration,
}

/// Sends one request on `stream` and reads the whole answer (by its
/// Content-Length; every answer here has one).
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Option<Answer> {
    let start = Instant::now();
    stream.write_all(request).await.ok()?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()?;
    Some(Answer {
        status,
        body: buf[head_end..head_end + length].to_vec(),
        took: start.elapsed(),
    })
}

struct Load {
    answers: Vec<Answer>,
    seconds: f64,
}

impl Load {
    fn per_second(&self, ok: impl Fn(&Answer) -> bool) -> f64 {
        self.answers.iter().filter(|a| ok(a)).count() as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut took: Vec<Duration> = self.answers.iter().map(|a| a.took).collect();
        took.sort();
        let i = ((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1;
        took[i].as_secs_f64() * 1000.0
    }
}

/// Sends request `i` (for i from 0) on CONNECTIONS connections until `limit`
/// requests or `SECONDS`, whichever first.
async fn load(
    port: u16,
    limit: usize,
    request: Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>,
) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (next, request) = (next.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                let bytes = request(i);
                match exchange(&mut stream, &bytes, &mut buf).await {
                    Some(a) => answers.push((i, a)),
                    None => {
                        stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                        stream.set_nodelay(true).unwrap();
                    }
                }
            }
            answers
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let seconds = start.elapsed().as_secs_f64();
    all.sort_by_key(|(i, _)| *i);
    Load {
        answers: all.into_iter().map(|(_, a)| a).collect(),
        seconds,
    }
}

fn get(port: u16, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").into_bytes()
}

const BOUNDARY: &str = "----cocreate-bench";

fn post(port: u16, (key, address): &(String, String), token: &str, i: usize) -> Vec<u8> {
    let fields = [
        ("form_token", token.to_string()),
        ("lang", "sq".into()),
        ("website", String::new()),
        (
            "problem",
            format!("Ekzekutimi i buxhetit publikohet vetëm një herë në vit ({i})."),
        ),
        (
            "commitment",
            "Publikoni çdo muaj ekzekutimin e buxhetit sipas bashkive.".into(),
        ),
        (
            "how",
            "Qytetarët do ta ndjekin shpenzimin ndërsa ndodh.".into(),
        ),
        ("values", "transparency".into()),
        ("name", "Arta Hoxha".into()),
        ("email", address.clone()),
    ];
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    format!(
        "POST /p/{key} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn token_in(page: &[u8]) -> Option<String> {
    let page = String::from_utf8_lossy(page);
    let at = page.find("name=\"form_token\" value=\"")? + 25;
    Some(page[at..at + page[at..].find('"')?].to_string())
}

/// Prints one line: the rate of answers `ok` counts, the latencies, and
/// the rate's ratio to `ceiling` (None: this is the ceiling).
fn report(name: &str, load: &Load, ok: impl Fn(&Answer) -> bool, ceiling: Option<f64>) -> f64 {
    let rate = load.per_second(ok);
    let ratio = ceiling.map_or_else(
        || "the ceiling".to_string(),
        |c| format!("{:.3}x of the ceiling", rate / c),
    );
    println!(
        "  {name:<44} {rate:>9.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({ratio})",
        load.percentile_ms(0.50),
        load.percentile_ms(0.99),
    );
    rate
}

fn ceiling() -> u16 {
    let port = free_port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    port
}

fn setup(dir: &std::path::Path, env: &[(&str, String)]) {
    let mut csv = String::from("Nr. i regjistrimit;Emërtimi;E-mail;Fushat e veprimtarisë\n");
    for i in 0..CSOS {
        csv.push_str(&format!(
            "W{i:06};Shoqata për Buxhet të Hapur Nr. {i};cso{i}@oshc.example.org;Buxhet\n"
        ));
    }
    let registry = dir.join("registry.csv");
    std::fs::write(&registry, csv).unwrap();
    let spec = support::bench_consultation(dir);
    for args in [
        vec!["registry", "import", registry.to_str().unwrap()],
        vec!["consultation", "create", "--file", spec.to_str().unwrap()],
        vec!["consultation", "open", "OGP-BENCH"],
        vec!["outreach", "send", "OGP-BENCH"],
    ] {
        let done = support::run(dir, env, &args);
        assert!(done.ok, "{args:?}: {}", done.stderr);
    }
}

/// Runs a query of one column on the bench's database, either backend.
async fn column<T>(url: &str, sql: &str) -> Vec<T>
where
    T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    }
}

async fn keys(url: &str) -> Vec<(String, String)> {
    let keys: Vec<String> = column(url, "SELECT key FROM reply_keys ORDER BY key").await;
    let addresses: Vec<String> = column(url, "SELECT address FROM reply_keys ORDER BY key").await;
    keys.into_iter().zip(addresses).collect()
}

async fn count(url: &str, sql: &str) -> i64 {
    column::<i64>(url, sql).await[0]
}

fn run(backend: &str, url: String, ceiling_port: u16, rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env: Vec<(&str, String)> = vec![
        ("COCREATE_DATABASE_URL", url.clone()),
        ("COCREATE_SERVER_LISTEN", format!("127.0.0.1:{port}")),
        ("COCREATE_LOG_LEVEL", "warn".into()),
        ("COCREATE_FORM_MIN_SECONDS", "0".into()),
        (
            "COCREATE_FORM_POSTS_PER_CLIENT_PER_HOUR",
            "100000000".into(),
        ),
        ("COCREATE_FORM_POSTS_PER_CSO_PER_HOUR", "100000000".into()),
        (
            "COCREATE_MAIL_RECEIPTS_PER_ADDRESS_PER_HOUR",
            "100000".into(),
        ),
        (
            "COCREATE_OUTBOX_FILE_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
    ];
    setup(dir.path(), &env);
    let any_url = if url.starts_with("sqlite:") {
        format!("{url}?mode=ro")
    } else {
        url.clone()
    };
    let keys = rt.block_on(keys(&any_url));
    assert_eq!(keys.len(), CSOS);

    let mut daemon = support::serve(dir.path(), &env);
    support::wait_for_port(port, Duration::from_secs(30), "serve");

    println!("\n{backend}, {CONNECTIONS} connections, up to {SECONDS} s each:");
    let bare = rt.block_on(load(
        ceiling_port,
        usize::MAX,
        Arc::new(move |_| get(ceiling_port, "/")),
    ));
    let ceiling_rate = report(
        "ceiling: bare axum handler, fixed string",
        &bare,
        |a| a.status == 200,
        None,
    );
    let page = rt.block_on(load(
        port,
        usize::MAX,
        Arc::new(move |_| get(port, "/c/OGP-BENCH")),
    ));
    report(
        "GET /c/OGP-BENCH (consultation page)",
        &page,
        |a| a.status == 200,
        Some(ceiling_rate),
    );

    // A token per proposal, each from its personal link's page (not timed).
    let paths: Arc<Vec<String>> = Arc::new(
        (0..POSTS)
            .map(|i| format!("/p/{}", keys[i % CSOS].0))
            .collect(),
    );
    let p = paths.clone();
    let pages = rt.block_on(load(port, POSTS, Arc::new(move |i| get(port, &p[i]))));
    report(
        "GET /p/KEY (personal page, rendered each time)",
        &pages,
        |a| a.status == 200,
        Some(ceiling_rate),
    );
    let tokens: Arc<Vec<String>> = Arc::new(
        pages
            .answers
            .iter()
            .map(|a| token_in(&a.body).expect("a token"))
            .collect(),
    );
    assert_eq!(tokens.len(), POSTS, "every personal page answered");
    let (k, t) = (Arc::new(keys.clone()), tokens.clone());
    let posts = rt.block_on(load(
        port,
        POSTS,
        Arc::new(move |i| post(port, &k[i % CSOS], &t[i], i)),
    ));
    let accepted = posts.answers.iter().filter(|a| a.status == 303).count() as i64;
    report(
        "POST /p/KEY (a proposal, its receipt queued)",
        &posts,
        |a| a.status == 303,
        Some(ceiling_rate),
    );

    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let stored = rt.block_on(count(&any_url, "SELECT COUNT(*) FROM proposals"));
    let receipts = rt.block_on(count(
        &any_url,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'receipt'",
    ));
    println!(
        "  in the store afterwards: {stored} proposals, {receipts} receipts queued (for {accepted} answered 303)"
    );
    assert_eq!(stored, accepted, "every answered proposal is in the store");
    assert!(
        receipts >= accepted,
        "every proposal has its receipt queued"
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ceiling_port = ceiling();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("bench.db").display());
    run("SQLite", sqlite, ceiling_port, &rt);
    match std::env::var("COCREATE_TEST_POSTGRES_URL") {
        Ok(admin) => {
            let url = rt.block_on(support::postgres_database(
                &admin,
                "cocreate_bench_web",
                true,
            ));
            run("PostgreSQL", url, ceiling_port, &rt);
        }
        Err(_) => println!("\nPostgreSQL: not run (set COCREATE_TEST_POSTGRES_URL)"),
    }
}
