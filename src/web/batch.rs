//! Group commit for the web form: submissions that arrive together are
//! taken in as one batch (`Intake::accept_many`: one transaction to store
//! them, one to record what became of them), so a busy minute costs a few
//! disk syncs instead of two per proposal. A submission waits for no timer:
//! the batch is whatever has queued while the previous one was written.

use tokio::sync::{mpsc, oneshot};

use crate::app::App;
use crate::intake::{BATCH_BYTES, BATCH_MESSAGES, IntakeError, Outcome};

/// What became of one submission; Err when nothing was stored (the person
/// must be told it was not recorded).
pub type Accepted = Result<Result<Outcome, IntakeError>, String>;

type Job = (Vec<u8>, oneshot::Sender<Accepted>);

#[derive(Clone)]
pub struct Batcher(mpsc::Sender<Job>);

impl Batcher {
    /// Starts the task that writes the batches.
    pub fn start(app: App) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4 * BATCH_MESSAGES);
        tokio::spawn(async move {
            let mut jobs: Vec<Job> = Vec::with_capacity(BATCH_MESSAGES);
            while let Some(first) = rx.recv().await {
                // What has queued meanwhile joins, within intake's bounds.
                let mut bytes = first.0.len();
                jobs.push(first);
                while jobs.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(job) => {
                            bytes += job.0.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let items: Vec<(&[u8], &str)> = jobs
                    .iter()
                    .map(|(raw, _)| (raw.as_slice(), "web"))
                    .collect();
                match app.intake().accept_many(&items).await {
                    Ok(results) => {
                        for ((_, reply), result) in jobs.drain(..).zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, count = jobs.len(), "web-form submissions could not be stored");
                        for (_, reply) in jobs.drain(..) {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Self(tx)
    }

    /// Takes `raw` in with whatever else is arriving.
    pub async fn accept(&self, raw: Vec<u8>) -> Accepted {
        let (reply, answer) = oneshot::channel();
        self.0
            .send((raw, reply))
            .await
            .map_err(|_| "the server is stopping".to_string())?;
        answer
            .await
            .map_err(|_| "the server is stopping".to_string())?
    }
}
