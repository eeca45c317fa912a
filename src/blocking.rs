//! Work that blocks a thread (reading a batch of files, parsing and
//! rendering a batch on every core) run from async code without stalling
//! the tasks that share the worker: an LMTP session or a health check must
//! not wait for a maildir batch.

/// Runs `f` where blocking is fine: on a multi-threaded runtime the worker
/// hands its other tasks to another thread first (`block_in_place`); on a
/// single-threaded one (unit tests) and outside a runtime, `f` just runs.
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
