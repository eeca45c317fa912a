//! `cocreate serve`: the daemon. Loads and checks everything before it
//! listens, so a broken config or database stops it at start, not at the
//! first proposal.
//!
//! Every source (maildir, IMAP, LMTP), the outbox worker and each scheduled
//! job runs as a task of one `TaskTracker`; SIGTERM or SIGINT cancels one
//! `CancellationToken`, the web server stops taking requests, and `serve`
//! waits for every task to finish what it has in hand.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, AppError};
use crate::config::Config;
use crate::outbound::outbox::{OutboxError, Worker};
use crate::registry::demo;
use crate::store;
use crate::web;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the web server stopped: {0}")]
    Server(std::io::Error),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Web(#[from] web::WebError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

pub async fn run(config: Config, demo_mode: bool) -> Result<(), ServeError> {
    // From here on a signal lets the current step finish, then stops.
    let shutdown = shutdown_signal()?;
    let database = store::redact(&config.database.url);
    let source = config.source.to_string();
    let app = App::open(config).await?;
    tracing::info!(%database, config = %source, "store open, migrations applied");
    for (what, how) in app.config.summary() {
        tracing::info!(setting = what, "{how}");
    }
    // The pages are rendered once here: a broken template stops serve now.
    let router = web::router(app.clone()).await?;
    if demo_mode {
        let summary = demo::load(app.store.as_ref()).await?;
        tracing::info!(
            added = summary.added,
            unchanged = summary.unchanged,
            policy_areas = app.config.policy_areas.len(),
            "demo registry loaded (fictional organisations)"
        );
        let today = app
            .now()
            .with_timezone(&app.config.office.time_zone)
            .date_naive();
        if let Some(reference) = demo::consultation(app.store.as_ref(), &app.config, today).await? {
            tracing::info!(
                consultation = reference,
                "demo consultation opened; its page and form are at {}/c/{reference}",
                app.config.server.public_url.trim_end_matches('/')
            );
        }
    }

    // Both listeners are bound before anything starts, so a taken port
    // stops the daemon with nothing left running behind it.
    let addr = app.config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let lmtp = match app.config.inbound.lmtp_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };

    // Messages stored but not processed before a crash are processed now.
    match app.intake().process_pending().await {
        Ok(s) if s.processed + s.failed == 0 => {}
        Ok(s) => tracing::info!(
            processed = s.processed,
            failed = s.failed,
            "processed mail stored before a restart"
        ),
        Err(e) => tracing::error!(error = %e, "processing stored mail failed; it stays stored"),
    }

    // The signal stops everything at once: no listener accepts anything
    // more, and each task finishes what it has in hand.
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let tasks = TaskTracker::new();

    tasks.spawn(crate::intake::retry(app.clone(), stop.clone()));
    let worker = Worker::new(&app).await?;
    tasks.spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await }
    });
    if let Some(dir) = app.config.inbound.maildir() {
        tasks.spawn(crate::inbound::maildir::watch(
            app.clone(),
            dir.to_path_buf(),
            stop.clone(),
        ));
    }
    if !app.config.inbound.imap_host.trim().is_empty() {
        let (app, stop) = (app.clone(), stop.clone());
        tasks.spawn(async move {
            crate::inbound::imap::watch(&app.intake(), &app.config.inbound, stop).await
        });
    }
    for s in crate::schedule::all(&app) {
        let Some(schedule) = s.schedule else {
            continue;
        };
        tasks.spawn(crate::schedule::run(
            app.clone(),
            s.name,
            schedule,
            s.job,
            stop.clone(),
        ));
    }
    if let Some(listener) = lmtp {
        tracing::info!(lmtp = %listener.local_addr().map_err(ServeError::Server)?, "LMTP listening");
        tasks.spawn(crate::inbound::lmtp::serve(
            listener,
            app.clone(),
            stop.clone(),
        ));
    }
    let local = listener.local_addr().map_err(ServeError::Server)?;
    tracing::info!(%local, "listening; health check at http://{local}/healthz");

    web::server::serve(
        listener,
        router,
        &app.config.server,
        stop.clone().cancelled_owned(),
    )
    .await;
    // The worker finishes the message in hand: a message is marked sent
    // only after the relay accepted it.
    tasks.close();
    tasks.wait().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers at once, so a signal that
/// arrives the moment the daemon says it is listening still stops it cleanly;
/// the returned future resolves on the first of them.
fn shutdown_signal() -> Result<impl Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}
