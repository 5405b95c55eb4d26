//! Runs one parser on a worker thread: a panic becomes [`DocumentError::ParserFailed`], a
//! runaway [`DocumentError::Timeout`]. A thread cannot be killed, so a runaway parser is left
//! to finish on its own in the background while the caller moves on; limits set before parsing
//! (input size, inflated size, depth) keep what it can still consume bounded.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use crate::documents::{DocumentError, Result};

/// Deep but finite recursion inside a parser (nested PDF forms, page trees) must not overflow
/// the small default stack of a spawned thread (2 MiB); this is reserved, not committed.
const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

pub fn run<F>(what: &str, kind: &'static str, timeout: Duration, parse: F) -> Result<String>
where
    F: FnOnce() -> Result<String> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let spawned =
        std::thread::Builder::new().name(format!("extract-{kind}")).stack_size(WORKER_STACK_BYTES).spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(parse));
            // The receiver is gone when the caller timed out; nothing to tell then.
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        return Err(DocumentError::ParserFailed {
            what: what.to_owned(),
            kind,
            detail: format!("cannot start a worker thread: {e}"),
        });
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser panicked".to_owned());
            Err(DocumentError::ParserFailed { what: what.to_owned(), kind, detail })
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(DocumentError::Timeout { what: what.to_owned(), seconds: timeout.as_secs().max(1) })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(DocumentError::ParserFailed {
            what: what.to_owned(),
            kind,
            detail: "the parser stopped without an answer".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_an_error_for_that_file() {
        let r = run("f", "text", Duration::from_secs(5), || panic!("boom"));
        assert!(matches!(r, Err(DocumentError::ParserFailed { ref detail, .. }) if detail == "boom"), "{r:?}");
    }

    #[test]
    fn a_runaway_is_a_timeout() {
        let r = run("f", "text", Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(2));
            Ok(String::new())
        });
        assert!(matches!(r, Err(DocumentError::Timeout { .. })), "{r:?}");
    }
}
