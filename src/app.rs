//! The application context: what every command, HTTP route, listener,
//! source, scheduled job and worker needs, opened once and handed to each.
//!
//! Cloning an `App` is cheap (a few `Arc`s), so a task takes its own copy
//! instead of borrowing from `serve`.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use lettre::message::dkim::DkimConfig;

use crate::clock::Clock;
use crate::config::Config;
use crate::intake::Intake;
use crate::outbound::message::{MessageError, load_dkim};
use crate::outbound::outreach::Sender;
use crate::outbound::templates::{TemplateError, Templates};
use crate::outbound::transport::{Transport, TransportError};
use crate::signing::SigningKey;
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Dkim(#[from] MessageError),
}

/// What this process has seen of its writes of mail to the store: a failed
/// write (the disk full) is reported by /healthz until one succeeds again,
/// even when a one-row probe still gets through.
#[derive(Debug, Default)]
pub struct WriteHealth(std::sync::Mutex<Option<(DateTime<Utc>, String)>>);

impl WriteHealth {
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some((Utc::now(), error.to_string()));
        }
    }

    pub fn succeeded(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = None;
        }
    }

    /// When the last write failed and why, if it did.
    pub fn failure(&self) -> Option<(DateTime<Utc>, String)> {
        self.0.lock().ok().and_then(|last| last.clone())
    }
}

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Checked when the App is opened: a broken override stops cocreate at
    /// start, not at the first receipt.
    pub templates: Arc<Templates>,
    pub dkim: Option<Arc<DkimConfig>>,
    pub clock: Clock,
    /// Whether this process's last write of mail to the store failed.
    pub writes: Arc<WriteHealth>,
    /// Made on first use: most commands never send, and a relay's missing
    /// password must not stop `registry list`.
    transport: Arc<OnceLock<Arc<Transport>>>,
    /// Read (or made and stored) on first use: see [`crate::signing`].
    signing: Arc<tokio::sync::OnceCell<SigningKey>>,
}

impl App {
    /// Opens the store (applying migrations), loads the templates and the
    /// DKIM key.
    pub async fn open(config: Config) -> Result<Self, AppError> {
        let store = store::open(&config.database).await?;
        Self::with_store(config, store)
    }

    /// An App over a store that is already open.
    pub fn with_store(config: Config, store: Arc<dyn Store>) -> Result<Self, AppError> {
        let templates = Templates::load(config.mail.templates_dir.as_deref())?;
        let dkim = load_dkim(&config.mail)?.map(Arc::new);
        let clock = store.clock().clone();
        Ok(Self {
            config: Arc::new(config),
            store,
            templates: Arc::new(templates),
            dkim,
            clock,
            writes: Arc::new(WriteHealth::default()),
            transport: Arc::new(OnceLock::new()),
            signing: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// The key that signs forms and the web form's mark on a message.
    pub async fn signing_key(&self) -> Result<&SigningKey, StoreError> {
        self.signing
            .get_or_try_init(|| SigningKey::load(self.store.as_ref()))
            .await
    }

    /// How mail leaves, as configured.
    pub fn transport(&self) -> Result<Arc<Transport>, TransportError> {
        if let Some(t) = self.transport.get() {
            return Ok(t.clone());
        }
        let made = Arc::new(Transport::from_config(&self.config)?);
        Ok(self.transport.get_or_init(|| made).clone())
    }

    /// The same App sending through `transport` (tests: an in-memory one).
    pub fn with_transport(self, transport: Transport) -> Self {
        let fresh = OnceLock::new();
        let _ = fresh.set(Arc::new(transport));
        Self {
            transport: Arc::new(fresh),
            ..self
        }
    }

    /// Taking messages in.
    pub fn intake(&self) -> Intake<'_> {
        Intake { app: self }
    }

    /// What every outgoing message needs besides its recipient.
    pub fn sender(&self) -> Sender<'_> {
        Sender { app: self }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The office's calendar day now.
    pub fn today(&self) -> chrono::NaiveDate {
        self.config.office.date_at(self.now())
    }

    /// The built-in config over an empty SQLite database in memory, for
    /// unit tests (one database per call, shared by the store's pools).
    #[cfg(test)]
    pub async fn in_memory() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "cocreate-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let config = Config::embedded().expect("the built-in config loads");
        let store = std::sync::Arc::new(
            crate::store::SqliteStore::open(&format!(
                "sqlite:file:{name}?mode=memory&cache=shared"
            ))
            .await
            .expect("an in-memory SQLite store opens"),
        );
        Self::with_store(config, store).expect("the built-in templates load")
    }
}
