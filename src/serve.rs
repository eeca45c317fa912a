//! `cocreate serve`: the daemon. Loads and checks everything before it
//! listens, so a broken config or database stops it at start, not at the
//! first proposal.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::outbound::outbox::Worker;
use crate::outbound::templates::{TemplateError, Templates};
use crate::outbound::transport::{Transport, TransportError};
use crate::registry::demo;
use crate::store::{self, StoreError};
use crate::web::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
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
    Template(#[from] TemplateError),
    #[error(transparent)]
    Intake(crate::outbound::message::MessageError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    PenSummary(#[from] crate::inbound::pen::PenError),
}

pub async fn run(config: Config, demo_mode: bool) -> Result<(), ServeError> {
    // From here on a signal lets the current step finish, then stops.
    let shutdown = shutdown_signal()?;
    let store = store::open(&config.database).await?;
    tracing::info!(
        database = %store::redact(&config.database.url),
        config = %config.source,
        "store open, migrations applied"
    );
    if demo_mode {
        let summary = demo::load(store.as_ref()).await?;
        tracing::info!(
            added = summary.added,
            unchanged = summary.unchanged,
            policy_areas = config.policy_areas.len(),
            "demo registry loaded (fictional organisations)"
        );
    }

    // Templates are checked now, so a broken override stops the daemon here.
    let templates = Arc::new(Templates::load(config.mail.templates_dir.as_deref())?);
    // Messages stored but not processed before a crash are processed now.
    let dkim = crate::outbound::message::load_dkim(&config.mail)
        .map_err(ServeError::Intake)?
        .map(Arc::new);
    let pending = crate::intake::Intake {
        store: store.as_ref(),
        config: &config,
        templates: &templates,
        dkim: dkim.as_deref(),
    }
    .process_pending()
    .await;
    match pending {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "processed mail stored before a restart"),
        Err(e) => tracing::error!(error = %e, "processing stored mail failed; it stays stored"),
    }
    let transport = Arc::new(Transport::from_config(&config)?);
    let worker = Worker::new(store.clone(), transport, config.outbox.clone());
    let (stop_worker, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(async move { worker.run(stopped).await });
    let config = Arc::new(config);
    let watcher = config.inbound.maildir().map(|dir| {
        let (store, config, templates, dkim) = (
            store.clone(),
            config.clone(),
            templates.clone(),
            dkim.clone(),
        );
        let dir = dir.to_path_buf();
        let mut stop = stop_worker.subscribe();
        tracing::info!(maildir = %dir.display(), "watching for dropped messages in new/");
        tokio::spawn(async move {
            loop {
                let intake = crate::intake::Intake {
                    store: store.as_ref(),
                    config: &config,
                    templates: &templates,
                    dkim: dkim.as_deref(),
                };
                match crate::inbound::maildir::sweep(
                    &intake,
                    &dir,
                    config.inbound.max_message_bytes,
                )
                .await
                {
                    Ok((s, _)) if s.taken > 0 => {
                        tracing::info!(taken = s.taken, left = s.left, "maildir sweep")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "maildir sweep failed"),
                }
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    });

    let imap = (!config.inbound.imap_host.trim().is_empty()).then(|| {
        let (store, config, templates, dkim) = (
            store.clone(),
            config.clone(),
            templates.clone(),
            dkim.clone(),
        );
        let stop = stop_worker.subscribe();
        tokio::spawn(async move {
            let intake = crate::intake::Intake {
                store: store.as_ref(),
                config: &config,
                templates: &templates,
                dkim: dkim.as_deref(),
            };
            crate::inbound::imap::watch(&intake, &config.inbound, stop).await;
        })
    });
    let pen_summary = match crate::inbound::pen::schedule(&config) {
        Ok(None) => None,
        Ok(Some(schedule)) => {
            let (store, config, templates, dkim) = (
                store.clone(),
                config.clone(),
                templates.clone(),
                dkim.clone(),
            );
            let mut stop = stop_worker.subscribe();
            Some(tokio::spawn(async move {
                use crate::inbound::pen::{Summary, next_run, queue_summary};
                let tz = config.office.time_zone;
                while let Some(at) = next_run(&schedule, tz, chrono::Utc::now()) {
                    let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    match queue_summary(
                        store.as_ref(),
                        &config,
                        &templates,
                        dkim.as_deref(),
                        chrono::Utc::now(),
                    )
                    .await
                    {
                        Ok(Summary::Queued(n)) => {
                            tracing::info!(waiting = n, to = %config.office.email, "holding-pen summary queued")
                        }
                        Ok(Summary::Empty | Summary::AlreadyQueued) => {}
                        Err(e) => tracing::error!(error = %e, "holding-pen summary failed"),
                    }
                }
            }))
        }
        Err(e) => return Err(e.into()),
    };
    let lmtp = match config.inbound.lmtp_address().ok().flatten() {
        None => None,
        Some(lmtp_addr) => {
            let listener =
                TcpListener::bind(lmtp_addr)
                    .await
                    .map_err(|source| ServeError::Bind {
                        addr: lmtp_addr,
                        source,
                    })?;
            tracing::info!(lmtp = %listener.local_addr().map_err(ServeError::Server)?, "LMTP listening");
            let ctx = crate::inbound::lmtp::LmtpContext {
                store: store.clone(),
                config: config.clone(),
                templates: templates.clone(),
                dkim: dkim.clone(),
            };
            Some(tokio::spawn(crate::inbound::lmtp::serve(
                listener,
                ctx,
                stop_worker.subscribe(),
            )))
        }
    };

    let addr = config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(ServeError::Server)?;
    tracing::info!(%local, "listening; health check at http://{local}/healthz");

    let app = web::router(AppState {
        store,
        config,
        templates,
        dkim,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Server)?;
    // The worker finishes the message in hand: a message is marked sent
    // only after the relay accepted it.
    let _ = stop_worker.send(true);
    let _ = worker.await;
    if let Some(w) = watcher {
        let _ = w.await;
    }
    if let Some(l) = lmtp {
        let _ = l.await;
    }
    if let Some(i) = imap {
        let _ = i.await;
    }
    if let Some(p) = pen_summary {
        let _ = p.await;
    }
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
