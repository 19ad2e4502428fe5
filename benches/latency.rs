//! Teacher request latency (work in progress).
fn main() {}
