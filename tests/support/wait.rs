//! Waiting without bare sleeps, and ports.

use std::time::{Duration, Instant};

/// How long anything a test waits for may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `condition` every 10 ms until it holds; panics naming `what`
/// after [`TIMEOUT`].
pub async fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    wait_for_at_most(what, TIMEOUT, condition).await;
}

/// [`wait_for`] with another limit.
pub async fn wait_for_at_most(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A loopback port free right now (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}
