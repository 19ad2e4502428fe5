//! One JSON call to borne's API from a plain thread (tests that drive real
//! `borne` processes outside any runtime).

use std::time::Duration;

use serde_json::Value;

/// `method url` with a bearer `token` and a JSON `body` (ignored by the
/// server when empty), cut at `timeout`: `(status, JSON body or null)`, or
/// `None` when the request could not be sent or had no answer.
pub fn call(method: &str, url: &str, token: &str, body: &str, timeout: Duration) -> Option<(u16, Value)> {
    let client = reqwest::blocking::Client::builder().timeout(timeout).build().ok()?;
    let r = client
        .request(method.parse().ok()?, url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().unwrap_or(Value::Null)))
}
