//! `GET /metrics` against the daemon in process: the exposition parses, the
//! AP gauges, driver counters and HTTP counters move when a teacher switches
//! a classroom on, labels are bounded (route templates, no token, no user
//! name, no free-text reason), and the endpoint needs a token unless
//! `metrics_public: true`.

use borne_test_support::daemon as common;

use std::collections::{BTreeMap, BTreeSet};

use borne::policy::Wifi;
use borne_test_support::fixtures::{ALWAYS_AVAILABLE, FAST_RETRIES, HEAD};
use common::*;
use serde_json::json;

/// Always `available` (a teacher may switch on); c2 holds an AP that never answers.
fn config() -> String {
    [
        HEAD,
        FAST_RETRIES,
        ALWAYS_AVAILABLE,
        r#"schools:
  - id: s1
    schedule: open
    classrooms:
      - id: c1
        access_points: [ { id: c1-ap1, sim: { clients: 3 } } ]
      - id: c2
        access_points: [ { id: c2-dead, sim: { fail_rate: 1.0 } } ]
users:
  - { name: mme-durand, role: teacher, classrooms: [c1], token: teacher-secret-token-4f1c }
  - { name: supervision, role: viewer, token: viewer-secret-token-9a7e }
  - { name: dsi-astreinte, role: admin, token: admin-secret-token-2b5d }
"#,
    ]
    .concat()
}

const TEACHER: &str = "teacher-secret-token-4f1c";
const VIEWER: &str = "viewer-secret-token-9a7e";
const ADMIN: &str = "admin-secret-token-2b5d";
/// An override reason: free text that must never become a label.
const REASON: &str = "examen-blanc-confidentiel";

// --- A small parser of the OpenMetrics text format ----------------------------

/// One sample line.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: families declared with `# TYPE`, and samples.
#[derive(Debug)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the text, panicking (failing the test) on anything malformed:
    /// a sample outside a declared family, a bad label set, a bad value, a
    /// missing `# EOF`, a duplicated series.
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.pop(), Some("# EOF"), "the exposition ends with # EOF:\n{text}");
        for line in lines {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (family, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line: {line}"));
                assert!(
                    [
                        "counter",
                        "gauge",
                        "histogram",
                        "info",
                        "stateset",
                        "summary",
                        "unknown",
                        "gaugehistogram"
                    ]
                    .contains(&kind),
                    "unknown metric type in {line}"
                );
                assert!(
                    types.insert(family.to_owned(), kind.to_owned()).is_none(),
                    "family declared twice: {line}"
                );
                continue;
            }
            if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let sample = parse_sample(line);
            assert!(
                family_of(&sample.name, &types).is_some(),
                "sample {} belongs to no declared family",
                sample.name
            );
            samples.push(sample);
        }
        let mut seen = BTreeSet::new();
        for s in &samples {
            assert!(
                seen.insert((s.name.clone(), s.labels.clone())),
                "duplicated series {s:?}"
            );
        }
        Exposition { types, samples }
    }

    /// The value of the one sample named `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(
            matching.len() <= 1,
            "{name} {labels:?} matches several series: {matching:?}"
        );
        matching.first().map(|s| s.value)
    }

    /// Like [`Self::get`], with an absent counter read as 0.
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Every label value of every sample.
    fn label_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.samples
            .iter()
            .flat_map(|s| s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// The family a sample name belongs to (`x_total` to counter `x`, ...).
fn family_of<'a>(sample: &str, types: &'a BTreeMap<String, String>) -> Option<&'a str> {
    if let Some((family, _)) = types.get_key_value(sample) {
        return Some(family);
    }
    for suffix in [
        "_total", "_created", "_sum", "_count", "_bucket", "_info", "_gsum", "_gcount",
    ] {
        if let Some((family, _)) = sample.strip_suffix(suffix).and_then(|base| types.get_key_value(base)) {
            return Some(family);
        }
    }
    None
}

/// `name{a="1",b="x\"y"} value [timestamp] [# exemplar]`.
fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value in sample line: {line}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "bad metric name in {line}"
    );
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        let end;
        loop {
            // A label name, `=`, a quoted value, then `,` or `}`.
            let Some(&(start, c)) = chars.peek() else {
                panic!("unterminated label set: {line}")
            };
            if c == '}' {
                end = start + 1;
                break;
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad label name {key:?} in {line}"
            );
            assert_eq!(
                chars.next().map(|(_, c)| c),
                Some('"'),
                "label value not quoted in {line}"
            );
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some('"') => value.push('"'),
                        Some('\\') => value.push('\\'),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("unterminated label value in {line}"),
                }
            }
            assert!(
                labels.insert(key.clone(), value).is_none(),
                "label {key} repeated in {line}"
            );
            match chars.next() {
                Some((_, ',')) => {}
                Some((i, '}')) => {
                    end = i + 1;
                    break;
                }
                other => panic!("expected , or }} after a label, got {other:?} in {line}"),
            }
        }
        rest = &after_brace[end..];
    }
    let rest = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line}"));
    let rest = rest.split(" # ").next().unwrap_or_default();
    let mut fields = rest.split(' ');
    let value = fields.next().unwrap_or_default();
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value {value:?} in {line}"));
    if let Some(ts) = fields.next() {
        ts.parse::<f64>()
            .unwrap_or_else(|_| panic!("bad timestamp {ts:?} in {line}"));
    }
    assert!(fields.next().is_none(), "trailing fields in {line}");
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// `GET /metrics` with an optional token: (status, content type, body).
async fn scrape(d: &TestDaemon, token: Option<&str>) -> (u16, String, String) {
    let mut request = d.http.get(d.url("/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.expect("GET /metrics");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, r.text().await.expect("body"))
}

/// Scrapes (as the viewer) until `condition` holds on the parsed exposition.
async fn scrape_until(d: &TestDaemon, what: &str, condition: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (status, _, body) = scrape(d, Some(VIEWER)).await;
        assert_eq!(status, 200, "{body}");
        let m = Exposition::parse(&body);
        if condition(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

const C1: [(&str, &str); 3] = [("school", "s1"), ("classroom", "c1"), ("ap", "c1-ap1")];
const DEAD: [(&str, &str); 3] = [("school", "s1"), ("classroom", "c2"), ("ap", "c2-dead")];
const SIM_APPLY_OK: [(&str, &str); 3] = [("driver", "sim"), ("op", "apply"), ("result", "ok")];
const WIFI_POST_OK: [(&str, &str); 3] = [
    ("route", "/api/v1/classrooms/{id}/wifi"),
    ("method", "POST"),
    ("status", "200"),
];

/// A teacher's "on" moves the AP gauges, the driver counters and the HTTP
/// counter; nothing secret or unbounded shows up in the labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_teacher_switching_a_classroom_on() {
    let d = TestDaemon::start(&config(), ManualClock::at("2026-12-01T10:00:00+01:00")).await;
    d.wait_sim("c1-ap1", Wifi::Off).await;

    // Without a token: 401, and nothing leaks in the answer.
    let (status, _, body) = scrape(&d, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("borne_"), "{body}");

    // Before: the AP was read (off) and is wanted off; the dead AP is unreachable.
    let before = scrape_until(&d, "c1-ap1 observed off and c2-dead unreachable", |m| {
        m.get("borne_ap_observed_on", &C1) == Some(0.0)
            && m.get("borne_ap_reachable", &DEAD) == Some(0.0)
            && m.get("borne_ap_consecutive_failures", &DEAD).is_some_and(|n| n >= 1.0)
    })
    .await;
    let (_, content_type, _) = scrape(&d, Some(VIEWER)).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert_eq!(before.get("borne_ap_desired_on", &C1), Some(0.0));
    assert_eq!(before.get("borne_ap_reachable", &C1), Some(1.0));
    assert_eq!(before.get("borne_ap_desired_on", &DEAD), Some(0.0));
    assert!(
        before.count(
            "borne_driver_operations_total",
            &[("driver", "sim"), ("op", "observe"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(
        before.count(
            "borne_driver_operations_total",
            &[("driver", "sim"), ("op", "observe"), ("result", "error")]
        ) >= 1.0
    );
    assert_eq!(before.count("borne_http_requests_total", &WIFI_POST_OK), 0.0);
    assert_eq!(
        before.get("borne_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0),
        "build info carries the crate version"
    );
    for (family, kind) in [
        ("borne_ap_desired_on", "gauge"),
        ("borne_ap_observed_on", "gauge"),
        ("borne_ap_reachable", "gauge"),
        ("borne_ap_consecutive_failures", "gauge"),
        ("borne_driver_operations", "counter"),
        ("borne_driver_operation_seconds", "histogram"),
        ("borne_reconciler_queue_depth", "gauge"),
        ("borne_http_requests", "counter"),
        ("borne_schedule_changes", "counter"),
        ("borne_build_info", "gauge"),
    ] {
        assert_eq!(
            before.types.get(family).map(String::as_str),
            Some(kind),
            "family {family}"
        );
    }

    // An IT override with a free-text reason elsewhere, and a 404 on a path
    // made up by the client: neither may become a label value.
    let (status, body) = d
        .send(
            reqwest::Method::PUT,
            ADMIN,
            "/api/v1/classrooms/c2/override",
            json!({"wifi": "off", "reason": REASON}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = d.get(VIEWER, "/api/v1/classrooms/made-up-classroom-77").await;
    assert_eq!(status, 404);
    let (status, _) = d.get(VIEWER, "/no-such-page-xyz").await;
    assert_eq!(status, 404);

    // The teacher switches c1 on.
    let (status, body) = d.wifi(TEACHER, "c1", json!({"wifi": "on", "minutes": 30})).await;
    assert_eq!(status, 200, "{body}");
    d.wait_sim("c1-ap1", Wifi::On).await;

    let after = scrape_until(&d, "c1-ap1 observed on", |m| {
        m.get("borne_ap_observed_on", &C1) == Some(1.0)
    })
    .await;
    assert_eq!(after.get("borne_ap_desired_on", &C1), Some(1.0));
    assert_eq!(after.get("borne_ap_reachable", &C1), Some(1.0));
    assert_eq!(after.get("borne_ap_consecutive_failures", &C1), Some(0.0));
    assert!(
        after.count("borne_driver_operations_total", &SIM_APPLY_OK)
            >= before.count("borne_driver_operations_total", &SIM_APPLY_OK) + 1.0,
        "an apply was counted"
    );
    let apply_latency = [("driver", "sim"), ("op", "apply")];
    assert!(
        after.count("borne_driver_operation_seconds_count", &apply_latency)
            > before.count("borne_driver_operation_seconds_count", &apply_latency),
        "the apply's latency was observed"
    );
    assert!(
        after
            .get(
                "borne_driver_operation_seconds_bucket",
                &[("driver", "sim"), ("op", "apply"), ("le", "+Inf")]
            )
            .is_some()
    );
    assert_eq!(
        after.count("borne_http_requests_total", &WIFI_POST_OK),
        1.0,
        "the POST, by route template"
    );
    assert_eq!(
        after.count(
            "borne_http_requests_total",
            &[
                ("route", "/api/v1/classrooms/{id}/override"),
                ("method", "PUT"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert!(
        after.count(
            "borne_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "401")]
        ) >= 1.0
    );
    assert!(
        after.count(
            "borne_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "200")]
        ) >= 1.0
    );
    assert!(after.get("borne_reconciler_queue_depth", &[]).is_some_and(|q| q >= 0.0));

    // Bounded labels only: no token, user name, reason or client-chosen path.
    let (_, _, text) = scrape(&d, Some(VIEWER)).await;
    for secret in [
        TEACHER,
        VIEWER,
        ADMIN,
        "mme-durand",
        "supervision",
        "dsi-astreinte",
        REASON,
        "made-up-classroom-77",
        "no-such-page-xyz",
        "/classrooms/c1/",
    ] {
        assert!(!text.contains(secret), "{secret:?} appears in /metrics:\n{text}");
    }
    let allowed: BTreeSet<&str> = [
        "school",
        "classroom",
        "ap",
        "driver",
        "op",
        "result",
        "route",
        "method",
        "status",
        "version",
        "le",
    ]
    .into();
    for (key, value) in after.label_values() {
        assert!(allowed.contains(key), "unexpected label {key}={value}");
        if key == "route" {
            assert!(value.starts_with('/') || value == "unmatched", "route label {value:?}");
        }
    }

    d.stop().await;
}

/// `metrics_public: true` serves the exposition without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_public_needs_no_token() {
    let config = format!("metrics_public: true\n{}", config());
    let d = TestDaemon::start(&config, ManualClock::at("2026-12-01T10:00:00+01:00")).await;
    d.wait_sim("c1-ap1", Wifi::Off).await;
    let (status, _, body) = scrape(&d, None).await;
    assert_eq!(status, 200, "{body}");
    let m = Exposition::parse(&body);
    assert_eq!(
        m.get("borne_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    // A token is still accepted.
    let (status, _, _) = scrape(&d, Some(VIEWER)).await;
    assert_eq!(status, 200);
    d.stop().await;
}

/// The parser rejects what it should (so the assertions above mean something).
#[test]
fn parser_reads_labels_escapes_and_suffixes() {
    let m = Exposition::parse(concat!(
        "# HELP x_requests Requests.\n",
        "# TYPE x_requests counter\n",
        "x_requests_total{route=\"/a/{id}\",note=\"say \\\"hi\\\"\\\\\"} 3\n",
        "x_requests_created{route=\"/a/{id}\",note=\"n\"} 1.7e9\n",
        "# TYPE x_up gauge\n",
        "x_up 1\n",
        "# EOF\n",
    ));
    assert_eq!(m.get("x_requests_total", &[("note", "say \"hi\"\\")]), Some(3.0));
    assert_eq!(m.get("x_requests_total", &[("route", "/a/{id}")]), Some(3.0));
    assert_eq!(m.get("x_up", &[]), Some(1.0));
    assert_eq!(m.get("x_down", &[]), None);
    for bad in [
        "x_up 1\n# EOF\n",                            // no TYPE
        "# TYPE x_up gauge\nx_up one\n# EOF\n",       // bad value
        "# TYPE x_up gauge\nx_up{a=1} 1\n# EOF\n",    // unquoted label
        "# TYPE x_up gauge\nx_up 1\n",                // no EOF
        "# TYPE x_up gauge\nx_up 1\nx_up 2\n# EOF\n", // duplicated series
    ] {
        assert!(
            std::panic::catch_unwind(|| Exposition::parse(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}

/// An AP that failed and then answers again, already in the right state (so
/// no switch is needed), must show 0 consecutive failures, as the core and
/// the API do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_gauge_resets_when_the_ap_answers_again() {
    let d = TestDaemon::start(&config(), ManualClock::at("2026-12-01T10:00:00+01:00")).await;
    scrape_until(&d, "c2-dead failing", |m| {
        m.get("borne_ap_consecutive_failures", &DEAD).is_some_and(|n| n >= 1.0)
    })
    .await;
    // The AP is repaired: same configuration, but it now answers (and is off, as wanted).
    let repaired = config().replace("{ id: c2-dead, sim: { fail_rate: 1.0 } }", "{ id: c2-dead, sim: {} }");
    d.core
        .replace_config(std::sync::Arc::new(load_config(&repaired, d.dir.path())))
        .await
        .unwrap();
    let core = d.core.clone();
    wait_for("c2-dead reachable again", || {
        core.ap_state(&"c2-dead".into())
            .is_some_and(|s| s.observed.reachable && s.consecutive_failures == 0)
    })
    .await;
    let m = scrape_until(&d, "c2-dead reachable in /metrics", |m| {
        m.get("borne_ap_reachable", &DEAD) == Some(1.0)
    })
    .await;
    assert_eq!(m.get("borne_ap_observed_on", &DEAD), Some(0.0));
    assert_eq!(d.sim.applied("c2-dead"), 0, "no switch was needed");
    scrape_until(&d, "borne_ap_consecutive_failures back to 0", |m| {
        m.get("borne_ap_consecutive_failures", &DEAD) == Some(0.0)
    })
    .await;
    d.stop().await;
}
