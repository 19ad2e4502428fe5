//! Peers: programs a test needs that Rust does not bring (mosquitto, sshd,
//! ssh-keygen, faketime, chromium, a tmpfs mount, …).
//!
//! One rule for every suite: `BORNE_REQUIRE_PEERS=1` (CI) makes a missing
//! peer a failure; without it (any other value, or unset) the test is
//! skipped and says so on stderr, past the test harness's capture, so that a
//! local `cargo test` shows what it did not test.
//!
//! ```ignore
//! use borne_test_support::peers::{find_program, require_peer};
//!
//! let Some(faketime) = find_program("faketime") else {
//!     require_peer("faketime (Debian: apt-get install -y faketime)", false);
//!     return;
//! };
//! // or, for any condition:
//! if !require_peer("a tmpfs mount (run as root)", can_mount()) {
//!     return;
//! }
//! ```

use std::io::Write as _;
use std::path::PathBuf;

/// The variable that makes a missing peer a failure.
pub const REQUIRE_PEERS: &str = "BORNE_REQUIRE_PEERS";

/// Whether missing peers fail the run: `BORNE_REQUIRE_PEERS=1`, and only that.
pub fn peers_required() -> bool {
    std::env::var_os(REQUIRE_PEERS).is_some_and(|v| v == "1")
}

/// Whether the test can go on: `true` when the peer was `found`. When it
/// was not: panics under `BORNE_REQUIRE_PEERS=1`, otherwise prints
/// `skipped: <test>: <peer> not available` on stderr and returns `false`.
/// `peer` names what is missing and how to get it, e.g.
/// `"mosquitto (Debian: apt-get install -y mosquitto)"`.
#[track_caller]
pub fn require_peer(peer: &str, found: bool) -> bool {
    if found {
        return true;
    }
    assert!(!peers_required(), "{REQUIRE_PEERS}=1 but {peer} is not available");
    skip(&format!("{peer} not available"));
    false
}

/// Prints `skipped: <test>: <why>` on stderr, where the harness does not
/// capture it (it only captures the `print!` macros).
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("main");
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

/// A program on `PATH` or in the `sbin` directories (not on every user's
/// `PATH`, where Debian puts sshd and mosquitto).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// [`find_program`], or a skip (a failure under `BORNE_REQUIRE_PEERS=1`)
/// naming `package`, the Debian package that brings it.
#[track_caller]
pub fn require_program(name: &str, package: &str) -> Option<PathBuf> {
    let found = find_program(name);
    require_peer(
        &format!("{name} (Debian: apt-get install -y {package})"),
        found.is_some(),
    );
    found
}
