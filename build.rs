//! Records when the binary was built, for the clock's plausibility check
//! (`src/clock.rs`): a wall clock before the build is certainly wrong.
//! `SOURCE_DATE_EPOCH` (reproducible builds, Debian packaging) wins.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    println!("cargo:rustc-env=BORNE_BUILD_EPOCH={epoch}");
    // Re-stamped whenever the sources change (they are recompiled then anyway).
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
