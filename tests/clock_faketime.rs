//! Clock safety of the whole daemon (issue 14 §2), under libfaketime: the
//! real `borne` binary runs with `LD_PRELOAD` libfaketime, its wall clock
//! read from `FAKETIME_TIMESTAMP_FILE` at every call (`FAKETIME_NO_CACHE=1`)
//! so that the test can step it while borne runs, its monotonic clock left
//! real (`FAKETIME_DONT_FAKE_MONOTONIC=1`).
//!
//! - Started 26 h ahead in an `available` period, a 1-minute session, then
//!   the clock stepped back 26 h into another `available` period: the
//!   session ends one real minute after it started (the old "time never
//!   goes backwards" mark kept it on for 26 h).
//! - Started 26 h ahead in an `on` period, stepped back into a `locked`
//!   one: the AP is off within one planner pass (30 s).
//!
//! Skipped (with a message) when libfaketime is missing (Debian package
//! `faketime`), unless `BORNE_REQUIRE_PEERS=1`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use borne_test_support::daemon::borne_bin;
use borne_test_support::peers::require_peer;
use borne_test_support::wait::free_port;
use chrono::{Datelike as _, Timelike as _, Utc};
use serde_json::Value;

const TEACHER: &str = "teacher-token-123";

/// libfaketime's multi-threaded library, or `None` after a note on stderr.
fn libfaketime() -> Option<PathBuf> {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ];
    let found = candidates.iter().map(PathBuf::from).find(|p| p.is_file());
    require_peer("libfaketime (Debian: apt-get install -y faketime)", found.is_some());
    found
}

/// `borne run` under libfaketime, killed by PID when dropped.
struct FakedBorne {
    child: Child,
    port: u16,
    timestamp_file: PathBuf,
}

impl FakedBorne {
    fn start(lib: &Path, dir: &Path, yaml: &str, offset: &str) -> Self {
        let port = free_port();
        let config = dir.join("borne.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\nstate_dir: {}\ndemo: true\nmetrics_public: true\n{yaml}",
                dir.join("state").display()
            ),
        )
        .expect("write config");
        let timestamp_file = dir.join("faketime");
        std::fs::write(&timestamp_file, format!("{offset}\n")).expect("write faketime file");
        let child = Command::new(borne_bin())
            .args(["run", "--config"])
            .arg(&config)
            .env("LD_PRELOAD", lib)
            .env("FAKETIME_TIMESTAMP_FILE", &timestamp_file)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn borne");
        let me = FakedBorne {
            child,
            port,
            timestamp_file,
        };
        me.wait_ready();
        me
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.get("/readyz").is_none() {
            assert!(Instant::now() < deadline, "borne did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Steps the daemon's wall clock to `offset` from real time (`+0`, `+26h`).
    fn set_offset(&self, offset: &str) {
        let tmp = self.timestamp_file.with_extension("new");
        std::fs::write(&tmp, format!("{offset}\n")).expect("write faketime file");
        std::fs::rename(&tmp, &self.timestamp_file).expect("replace faketime file");
    }

    fn get(&self, path: &str) -> Option<Value> {
        let r = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .bearer_auth(TEACHER)
            .timeout(Duration::from_secs(5))
            .send()
            .ok()?;
        if path == "/metrics" {
            return r.text().ok().map(Value::String);
        }
        r.status().is_success().then(|| r.json().ok()).flatten()
    }

    fn classroom(&self) -> Value {
        self.get("/api/v1/classrooms/c1").unwrap_or(Value::Null)
    }

    fn ap_observed(&self) -> String {
        self.classroom()["access_points"][0]["observed"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for FakedBorne {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

const CLASSROOM: &str = "schools:\n  - id: s1\n    schedule: day\n    classrooms:\n      - id: c1\n        access_points: [ { id: c1-ap, sim: {} } ]\n\
users:\n  - { name: teacher1, role: teacher, classrooms: [c1], token: teacher-token-123 }\n";

/// Started 26 h ahead, stepped back 26 h: a 1-minute session lasts one real minute.
#[test]
fn a_one_minute_session_lasts_one_real_minute_across_a_26_hour_step_back() {
    let Some(lib) = libfaketime() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!("timezone: UTC\nschedules:\n  day: {{ default_mode: available }}\n{CLASSROOM}");
    let borne = FakedBorne::start(&lib, dir.path(), &yaml, "+26h");
    let response = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{}/api/v1/classrooms/c1/wifi", borne.port))
        .bearer_auth(TEACHER)
        .json(&serde_json::json!({"wifi": "on", "minutes": 1}))
        .send()
        .expect("request");
    let started = Instant::now();
    assert!(response.status().is_success(), "{:?}", response.text());
    wait_until("the AP on", Duration::from_secs(10), || borne.ap_observed() == "on");
    std::thread::sleep(Duration::from_secs(3));
    borne.set_offset("+0");
    wait_until("the session's end", Duration::from_secs(120), || {
        borne.classroom()["wifi"] == "off" && borne.ap_observed() == "off"
    });
    let lasted = started.elapsed();
    assert!(
        (Duration::from_secs(55)..=Duration::from_secs(70)).contains(&lasted),
        "the 1-minute session lasted {lasted:?} of real time"
    );
    let metrics = borne.get("/metrics").unwrap_or(Value::Null);
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("borne_clock_steps_total 1"),
        "one step counted: {metrics}"
    );
}

/// Started 26 h ahead in an `on` period, stepped back into a `locked` one:
/// the AP is off within one planner pass.
#[test]
fn an_on_period_stepped_back_into_a_locked_one_is_off_within_one_planner_pass() {
    let Some(lib) = libfaketime() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    // Rules pinned to real time: locked since an hour ago, on from 25 h ahead.
    let cron = |t: chrono::DateTime<Utc>| format!("{} {} {} {} *", t.minute(), t.hour(), t.day(), t.month());
    let now = Utc::now();
    let yaml = format!(
        "timezone: UTC\nschedules:\n  day:\n    default_mode: locked\n    rules:\n\
         \x20     - {{ at: \"{}\", mode: locked }}\n\
         \x20     - {{ at: \"{}\", mode: on }}\n{CLASSROOM}",
        cron(now - chrono::Duration::hours(1)),
        cron(now + chrono::Duration::hours(25)),
    );
    let borne = FakedBorne::start(&lib, dir.path(), &yaml, "+26h");
    wait_until("the AP on (schedule on, 26 h ahead)", Duration::from_secs(20), || {
        borne.ap_observed() == "on"
    });
    borne.set_offset("+0");
    let took = wait_until("the AP off", Duration::from_secs(90), || borne.ap_observed() == "off");
    assert!(
        took <= Duration::from_secs(35),
        "off {took:?} after the step, a planner pass is 30 s"
    );
    assert_eq!(borne.classroom()["mode"], "locked");
}

/// The real binary with `clock.require_sync: true` and a wall clock before
/// its build date (unsynchronised whatever the kernel says): the
/// schedule's `on` acts as `available`, a teacher's "on" gets 503
/// `clock_unsynchronized`, `/readyz` and the gauge say so.
#[test]
fn require_sync_with_a_clock_before_the_build_date_switches_nothing_on() {
    let Some(lib) = libfaketime() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "timezone: UTC\nclock: {{ require_sync: true }}\nschedules:\n  day: {{ default_mode: on }}\n{CLASSROOM}"
    );
    // Two years back: before any build of this binary.
    let borne = FakedBorne::start(&lib, dir.path(), &yaml, "-730d");
    let ready = borne.get("/readyz").expect("/readyz 200");
    assert_eq!(ready["clock"]["synchronized"], false, "{ready}");
    assert_eq!(ready["clock"]["plausible"], false, "{ready}");
    assert_eq!(ready["clock"]["require_sync"], true, "{ready}");
    wait_until("the AP observed off", Duration::from_secs(20), || {
        borne.ap_observed() == "off"
    });
    let response = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{}/api/v1/classrooms/c1/wifi", borne.port))
        .bearer_auth(TEACHER)
        .json(&serde_json::json!({"wifi": "on", "minutes": 10}))
        .send()
        .expect("request");
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().expect("JSON error body");
    assert_eq!(body["error"], "clock_unsynchronized", "{body}");
    // Still off a couple of seconds later: nothing switched it on.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(borne.ap_observed(), "off");
    assert_eq!(borne.classroom()["mode"], "on", "the schedule says on");
    let metrics = borne.get("/metrics").unwrap_or(Value::Null);
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("borne_clock_synchronized 0"),
        "{metrics}"
    );
}
