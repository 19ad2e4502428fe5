//! A plain HTTP/1.0 GET over a blocking socket: for benchmarks' set-up
//! waits outside any runtime, and for probes that must not depend on an
//! HTTP client library.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// `GET path` on `127.0.0.1:port` with a bearer `token` (none when empty);
/// `(status, body)`, or `None` when the connection or the answer failed.
pub fn get(port: u16, path: &str, token: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    write!(s, "GET {path} HTTP/1.0\r\n{auth}\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Whether `/readyz` answers 200.
pub fn is_ready(port: u16) -> bool {
    matches!(get(port, "/readyz", ""), Some((200, _)))
}
