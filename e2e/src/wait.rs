//! Waiting for something outside the browser, e.g. the server's own state.

use std::time::{Duration, Instant};

/// Polls `condition` every 20 ms until it holds.
///
/// # Panics
///
/// After `timeout`, naming `what` was awaited, from the caller's line.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            panic!("waited {timeout:?} for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
