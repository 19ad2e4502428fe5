//! Random methods, paths, headers and bodies thrown at the router (in
//! process, without a socket): never a 5xx, never a panic, and every
//! `/api/` answer is JSON with the error shape when it is an error.

use borne_test_support::daemon as common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use borne_test_support::fixtures::{ALWAYS_AVAILABLE, HEAD, users};
use common::*;
use proptest::prelude::*;
use tower::ServiceExt;

fn config() -> String {
    [
        HEAD,
        ALWAYS_AVAILABLE,
        "schools:\n  - id: s1\n    schedule: open\n    classrooms:\n",
        "      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }\n",
        &users("classrooms: [c1]"),
    ]
    .concat()
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
}

fn path() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "/api/v1/classrooms",
        "/api/v1/classrooms/c1",
        "/api/v1/classrooms/c1/wifi",
        "/api/v1/classrooms/c1/override",
        "/api/v1/overrides",
        "/api/v1/overrides?school=s1",
        "/api/v1/audit?limit=5",
        "/api/v1/access-points",
        "/api/v1/me",
        "/api/openapi.json",
        "/readyz",
    ])
    .prop_map(str::to_owned);
    let random = "(/[a-zA-Z0-9%._~?=&-]{0,20}){1,5}";
    prop_oneof![3 => known, 1 => random.prop_map(|p| format!("/api/v1{p}")), 1 => random]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"wifi":"on","minutes":30}"#.to_vec()),
        Just(br#"{"wifi":"off"}"#.to_vec()),
        Just(br#"{"wifi":"on","minutes":-5}"#.to_vec()),
        Just(br#"{"wifi":"on","minutes":99999999999999}"#.to_vec()),
        Just(br#"{"scope":{"all":true},"wifi":"off","reason":"x"}"#.to_vec()),
        Just(br#"{"wifi":"off","until":"not a date","reason":"x"}"#.to_vec()),
        "\\PC{0,200}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    let name = prop::sample::select(vec![
        "authorization",
        "content-type",
        "x-forwarded-for",
        "accept",
        "content-length",
    ]);
    let value = prop_oneof![
        Just("Bearer admin-token-123".to_owned()),
        Just("Bearer teacher-token-123".to_owned()),
        Just("application/json".to_owned()),
        "[ -~]{0,60}",
    ];
    (name, value).prop_map(|(n, v)| (n.to_owned(), v))
}

/// Random requests: no 5xx, no panic, JSON errors under /api/.
#[test]
fn random_requests_never_get_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = rt.block_on(TestDaemon::start(
        &config(),
        ManualClock::at("2026-12-01T10:00:00+01:00"),
    ));
    let app = borne::api::router(d.core.clone(), None, d.token.clone());
    let config = ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(m in method(), p in path(), b in body(), hs in prop::collection::vec(header(), 0..4))| {
        let mut req = Request::builder().method(m).uri(&p);
        for (n, v) in &hs {
            if n == "content-length" { continue; }
            req = req.header(n.as_str(), v.as_str());
        }
        let Ok(req) = req.body(Body::from(b)) else { return Ok(()) };
        let resp = rt.block_on(app.clone().oneshot(req)).expect("infallible");
        let status = resp.status();
        prop_assert!(!status.is_server_error(), "{m} {p} -> {status}");
        if p.starts_with("/api/") && status != StatusCode::OK && m != "HEAD" {
            let bytes = rt.block_on(axum::body::to_bytes(resp.into_body(), 1 << 20)).expect("body");
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| TestCaseError::fail(format!("{m} {p} -> {status}: not JSON ({e})")))?;
            prop_assert!(v["error"].is_string() && v["message"].is_string(), "{m} {p} -> {status}: {v}");
        }
    });
    drop(d);
}
