//! Progress on the POC's terminal for imports that take more than a moment.
//! Nothing is drawn when stderr is not a terminal, so cron logs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Below this many bytes an import is over before a bar means anything.
const WORTH_SHOWING_BYTES: u64 = 2_000_000;

fn watched() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar over `len` bytes of input.
pub fn bytes(len: u64, what: &str) -> ProgressBar {
    if len < WORTH_SHOWING_BYTES || !watched() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{bytes}}/{{total_bytes}} ({{eta}} left)"
        ))
        .expect("the template is valid"),
    );
    bar
}
