//! The usage report end to end (issue 16): a simulated school week with a
//! clock the test moves — teacher sessions, a schedule `on` period, an
//! override in hours and one outside them, a refused request, an access
//! point cut off for two hours, borne stopped for an hour mid-week — then
//! the report's figures checked to the second against values this test
//! computes from its own list of what happened, through the API (JSON and
//! CSV), the CLI on the state database, stored daily aggregates, and again
//! after a restart.
//!
//! Then the same through the real binary on a frozen libfaketime clock,
//! `kill -9`ed in the middle of the week with an access point on: the hour
//! it was down is `unknown`, the days it missed get their aggregates from
//! the histories, and every figure is still right to the second.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use borne::policy::Wifi;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Paris, November 2026 (UTC+1). Mondays 12:00-13:00 the schedule says
/// `on`; 08:30-17:00 on weekdays teachers may switch.
const CONFIG: &str = concat!(
    borne_test_support::yaml_head!(),
    r#"
teacher_session: { default_minutes: 60, max_minutes: 120 }
reconciler: { resync_seconds: 1, backoff_initial_seconds: 1, backoff_max_seconds: 1 }
schedules:
  day:
    default_mode: locked
    rules:
      - { at: "30 8 * * Mon-Fri", mode: available }
      - { at: "0 12 * * Mon", mode: on }
      - { at: "0 13 * * Mon", mode: available }
      - { at: "0 17 * * Mon-Fri", mode: locked }
"#,
    borne_test_support::yaml_s1_c1!("day"),
    r#"  - id: s2
    schedule: day
    classrooms:
      - id: c2
        access_points: [ { id: c2-ap1, sim: {} }, { id: c2-ap2, sim: {} } ]
users:
  - { name: admin, role: admin, token: admin-token-123 }
  - { name: viewer, role: viewer, token: viewer-token-123 }
  - { name: teacher1, role: teacher, classrooms: [c1], token: teacher-token-123 }
"#
);

const ADMIN: &str = "admin-token-123";
const VIEWER: &str = "viewer-token-123";
const TEACHER: &str = "teacher-token-123";

/// A local Paris time in the test week (UTC+1 in November).
fn at(day: u32, hm: &str) -> String {
    format!("2026-11-{day:02}T{hm}:00+01:00")
}

fn secs(hm_from: &str, hm_to: &str) -> i64 {
    let s = |hm: &str| {
        let (h, m) = hm.split_once(':').unwrap();
        h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60
    };
    s(hm_to) - s(hm_from)
}

/// What the test expects of one classroom's day.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expected {
    on: i64,
    unknown: i64,
    teacher: i64,
    schedule: i64,
    override_: i64,
    outside: i64,
    sessions: Vec<i64>,
    ended_by: BTreeMap<String, u64>,
    overrides: u64,
    override_seconds: i64,
    refused_locked: u64,
}

impl Expected {
    /// A teacher session from `from` to `to` with the AP on all along,
    /// ended for `reason`.
    fn session(&mut self, from: &str, to: &str, reason: &str) {
        let s = secs(from, to);
        self.on += s;
        self.teacher += s;
        self.sessions.push(s);
        *self.ended_by.entry(reason.into()).or_default() += 1;
    }

    /// An override to on from `from` to `to` with the AP on all along;
    /// `outside` when the schedule said `locked`.
    fn override_on(&mut self, from: &str, to: &str, outside: bool) {
        let s = secs(from, to);
        self.on += s;
        self.override_ += s;
        self.overrides += 1;
        self.override_seconds += s;
        if outside {
            self.outside += s;
        }
    }

    /// The schedule's mode `on` from `from` to `to` with the AP on.
    fn schedule_on(&mut self, from: &str, to: &str) {
        self.on += secs(from, to);
        self.schedule += secs(from, to);
    }
}

/// The week as this test drives it, written as stretches.
fn expected() -> BTreeMap<(&'static str, &'static str), Expected> {
    let mut e: BTreeMap<(&str, &str), Expected> = BTreeMap::new();
    for day in ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"] {
        e.insert(("c1", day), Expected::default());
        e.insert(("c2", day), Expected::default());
    }
    // Monday: borne starts at 07:00. c1: a teacher session 09:00-10:00
    // that expires; both: schedule `on` 12:00-13:00.
    for c in ["c1", "c2"] {
        let x = e.get_mut(&(c, "2026-11-02")).unwrap();
        x.unknown = secs("00:00", "07:00");
        x.schedule_on("12:00", "13:00");
    }
    e.get_mut(&("c1", "2026-11-02"))
        .unwrap()
        .session("09:00", "10:00", "expired");
    // Tuesday: c2 overridden on 14:00-16:30 (expires by itself).
    e.get_mut(&("c2", "2026-11-03"))
        .unwrap()
        .override_on("14:00", "16:30", false);
    // Wednesday: c2-ap2 cut off 09:00-11:00 while c2 is off; borne
    // stopped 12:00-13:00.
    for c in ["c1", "c2"] {
        e.get_mut(&(c, "2026-11-04")).unwrap().unknown = secs("12:00", "13:00");
    }
    e.get_mut(&("c2", "2026-11-04")).unwrap().unknown += secs("09:00", "11:00");
    // Thursday: c1 session 10:00-10:20 ended by the teacher, a refusal at
    // 18:00 (locked), an override on 20:00-20:30 outside school hours.
    let x = e.get_mut(&("c1", "2026-11-05")).unwrap();
    x.session("10:00", "10:20", "teacher");
    x.refused_locked = 1;
    x.override_on("20:00", "20:30", true);
    e
}

/// Moves the clock, wakes the planner, and waits until the sim APs show `wifi`.
async fn step(d: &TestDaemon, clock: &ManualClock, t: &str, aps: &[(&str, Wifi)]) {
    clock.set(t);
    d.core.poke();
    for (ap, w) in aps {
        d.wait_sim(ap, *w).await;
    }
    settle(d).await;
}

/// Waits until what the reconciler saw is what the sim APs hold, and the
/// store has written it.
async fn settle(d: &TestDaemon) {
    let sim = d.sim.clone();
    let core = d.core.clone();
    wait_for("observations settle", || {
        ["c1-ap1", "c2-ap1", "c2-ap2"].iter().all(|ap| {
            let st = core.ap_state(&borne::config::ApId::from(*ap));
            match (st, sim.state(ap)) {
                (Some(s), Some(w)) => !s.observed.reachable || s.observed.wifi.is(w),
                _ => false,
            }
        })
    })
    .await;
    d.core.writer().flush().await.expect("flush");
}

async fn start(dir: Option<Arc<tempfile::TempDir>>, clock: Arc<ManualClock>) -> TestDaemon {
    let d = match dir {
        Some(dir) => TestDaemon::start_in(dir, CONFIG, clock).await,
        None => TestDaemon::start(CONFIG, clock).await,
    };
    for ap in ["c1-ap1", "c2-ap1", "c2-ap2"] {
        d.wait_sim(ap, Wifi::Off).await;
    }
    settle(&d).await;
    d
}

fn check_json(rows: &[Value], e: &BTreeMap<(&str, &str), Expected>, days: &[&str], session_ends: bool) {
    for ((classroom, day), x) in e {
        if !days.contains(day) {
            continue;
        }
        let r = rows
            .iter()
            .find(|r| r["classroom"] == *classroom && r["period_start"] == *day)
            .unwrap_or_else(|| panic!("no row for {classroom} {day}"));
        let what = format!("{classroom} {day}: {r}");
        assert_eq!(r["on_seconds"], x.on, "{what}");
        assert_eq!(r["unknown_seconds"], x.unknown, "{what}");
        assert_eq!(r["on_seconds_by_cause"]["teacher"], x.teacher, "{what}");
        assert_eq!(r["on_seconds_by_cause"]["schedule"], x.schedule, "{what}");
        assert_eq!(r["on_seconds_by_cause"]["override"], x.override_, "{what}");
        assert_eq!(r["on_outside_school_hours_seconds"], x.outside, "{what}");
        assert_eq!(r["sessions"]["count"], x.sessions.len(), "{what}");
        let total: i64 = x.sessions.iter().sum();
        assert_eq!(
            r["sessions"]["minutes_total"].as_f64().unwrap(),
            total as f64 / 60.0,
            "{what}"
        );
        assert_eq!(r["overrides"]["count"], x.overrides, "{what}");
        assert_eq!(r["overrides"]["seconds"], x.override_seconds, "{what}");
        assert_eq!(r["refused"]["locked"], x.refused_locked, "{what}");
        assert_eq!(r["school"], if *classroom == "c1" { "s1" } else { "s2" }, "{what}");
        if session_ends {
            for (reason, n) in &x.ended_by {
                assert_eq!(r["sessions"]["ended_by"][reason], *n, "{what}");
            }
        }
    }
}

/// CSV rows keyed by column name.
fn csv_rows(text: &str, sep: char) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(sep).map(str::to_owned).collect();
    lines
        .map(|l| header.iter().cloned().zip(l.split(sep).map(str::to_owned)).collect())
        .collect()
}

fn check_csv(text: &str, sep: char, e: &BTreeMap<(&str, &str), Expected>, days: &[&str]) {
    let rows = csv_rows(text, sep);
    for ((classroom, day), x) in e {
        if !days.contains(day) {
            continue;
        }
        let r = rows
            .iter()
            .find(|r| r["classroom"] == *classroom && r["period_start"] == *day)
            .unwrap_or_else(|| panic!("no CSV row for {classroom} {day}"));
        let what = format!("{classroom} {day}: {r:?}");
        assert_eq!(r["on_seconds"], x.on.to_string(), "{what}");
        assert_eq!(r["unknown_seconds"], x.unknown.to_string(), "{what}");
        assert_eq!(r["on_seconds_by_cause_teacher"], x.teacher.to_string(), "{what}");
        assert_eq!(r["on_seconds_by_cause_schedule"], x.schedule.to_string(), "{what}");
        assert_eq!(r["on_seconds_by_cause_override"], x.override_.to_string(), "{what}");
        assert_eq!(r["on_outside_school_hours_seconds"], x.outside.to_string(), "{what}");
        assert_eq!(r["sessions_count"], x.sessions.len().to_string(), "{what}");
        assert_eq!(r["overrides_count"], x.overrides.to_string(), "{what}");
        assert_eq!(r["overrides_seconds"], x.override_seconds.to_string(), "{what}");
        assert_eq!(r["refused_locked"], x.refused_locked.to_string(), "{what}");
    }
}

async fn report(d: &TestDaemon, token: &str, query: &str) -> Value {
    let (s, body) = d.get(token, &format!("/api/v1/report?{query}")).await;
    assert_eq!(s, 200, "{body}");
    body
}

async fn report_csv(d: &TestDaemon, query: &str) -> String {
    let r = d
        .http
        .get(d.url(&format!("/api/v1/report?{query}")))
        .bearer_auth(VIEWER)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn cli_report(d: &TestDaemon, args: &[&str]) -> String {
    let state = d.dir.path().join("state").display().to_string();
    let path = d.dir.path().join("borne.yaml");
    std::fs::write(&path, CONFIG.replace("STATE_DIR", &state)).unwrap();
    let out = std::process::Command::new(borne_bin())
        .arg("report")
        .arg("--config")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_adds_up_to_the_second() {
    use Wifi::{Off, On};
    let clock = ManualClock::at(&at(2, "07:00"));
    let d = start(None, clock.clone()).await;
    // Monday.
    step(&d, &clock, &at(2, "08:30"), &[]).await;
    step(&d, &clock, &at(2, "09:00"), &[]).await;
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on", "minutes": 60})).await.0, 200);
    d.wait_sim("c1-ap1", On).await;
    settle(&d).await;
    step(&d, &clock, &at(2, "10:00"), &[("c1-ap1", Off)]).await;
    step(
        &d,
        &clock,
        &at(2, "12:00"),
        &[("c1-ap1", On), ("c2-ap1", On), ("c2-ap2", On)],
    )
    .await;
    step(
        &d,
        &clock,
        &at(2, "13:00"),
        &[("c1-ap1", Off), ("c2-ap1", Off), ("c2-ap2", Off)],
    )
    .await;
    step(&d, &clock, &at(2, "17:00"), &[]).await;
    // Tuesday.
    step(&d, &clock, &at(3, "08:30"), &[]).await;
    step(&d, &clock, &at(3, "14:00"), &[]).await;
    let put = json!({"wifi": "on", "until": at(3, "16:30"), "reason": "atelier"});
    assert_eq!(
        d.send(Method::PUT, ADMIN, "/api/v1/classrooms/c2/override", put)
            .await
            .0,
        200
    );
    d.wait_sim("c2-ap1", On).await;
    d.wait_sim("c2-ap2", On).await;
    settle(&d).await;
    step(&d, &clock, &at(3, "16:30"), &[("c2-ap1", Off), ("c2-ap2", Off)]).await;
    step(&d, &clock, &at(3, "17:00"), &[]).await;
    // Wednesday: c2-ap2 cut off for two hours.
    step(&d, &clock, &at(4, "08:30"), &[]).await;
    clock.set(&at(4, "09:00"));
    d.sim.set_unreachable("c2-ap2", true);
    let core = d.core.clone();
    wait_for("c2-ap2 unreachable", || {
        core.ap_state(&borne::config::ApId::from("c2-ap2"))
            .is_some_and(|s| !s.observed.reachable)
    })
    .await;
    settle(&d).await;
    clock.set(&at(4, "11:00"));
    d.sim.set_unreachable("c2-ap2", false);
    wait_for("c2-ap2 back", || {
        core.ap_state(&borne::config::ApId::from("c2-ap2"))
            .is_some_and(|s| s.observed.reachable)
    })
    .await;
    settle(&d).await;
    // Monday and Tuesday from the live histories, before any restart.
    let e = expected();
    let days = report(&d, VIEWER, "from=2026-11-02&to=2026-11-03").await;
    let rows = days["rows"].as_array().unwrap().clone();
    let session_ends = !d.get(ADMIN, "/api/v1/audit?action=session.end").await.1["entries"]
        .as_array()
        .unwrap()
        .is_empty();
    if !session_ends {
        eprintln!("note: no session.end audit rows in this build; ended_by not checked");
    }
    check_json(&rows, &e, &["2026-11-02", "2026-11-03"], session_ends);

    // Stopped for an hour at noon.
    clock.set(&at(4, "12:00"));
    let dir = d.stop().await;
    clock.set(&at(4, "13:00"));
    let d = start(Some(dir), clock.clone()).await;
    step(&d, &clock, &at(4, "17:00"), &[]).await;
    // Thursday.
    step(&d, &clock, &at(5, "08:30"), &[]).await;
    step(&d, &clock, &at(5, "10:00"), &[]).await;
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on", "minutes": 30})).await.0, 200);
    d.wait_sim("c1-ap1", On).await;
    settle(&d).await;
    clock.set(&at(5, "10:20"));
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "off"})).await.0, 200);
    d.wait_sim("c1-ap1", Off).await;
    settle(&d).await;
    step(&d, &clock, &at(5, "17:00"), &[]).await;
    clock.set(&at(5, "18:00"));
    assert_eq!(d.wifi(TEACHER, "c1", json!({"wifi": "on"})).await.0, 409);
    step(&d, &clock, &at(5, "20:00"), &[]).await;
    let put = json!({"wifi": "on", "until": at(5, "20:30"), "reason": "réunion de parents"});
    assert_eq!(
        d.send(Method::PUT, ADMIN, "/api/v1/classrooms/c1/override", put)
            .await
            .0,
        200
    );
    d.wait_sim("c1-ap1", On).await;
    settle(&d).await;
    step(&d, &clock, &at(5, "20:30"), &[("c1-ap1", Off)]).await;
    // Friday noon: the whole week so far.
    step(&d, &clock, &at(6, "12:00"), &[]).await;
    let week = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"];
    let query = "from=2026-11-02&to=2026-11-06";
    let live = report(&d, ADMIN, query).await;
    check_json(live["rows"].as_array().unwrap(), &e, &week, session_ends);
    // Friday so far: half a day, all off and known.
    let friday = live["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["classroom"] == "c1" && r["period_start"] == "2026-11-06")
        .unwrap()
        .clone();
    assert_eq!(
        (friday["on_seconds"].as_i64(), friday["unknown_seconds"].as_i64()),
        (Some(0), Some(0))
    );

    // The same figures from stored daily aggregates.
    d.core.aggregate_finished_days(d.core.now()).await.expect("aggregation");
    let stored = report(&d, ADMIN, query).await;
    assert_eq!(stored["rows"], live["rows"]);

    // CSV, with the French spreadsheet separator.
    let text = report_csv(&d, &format!("{query}&sep=semicolon")).await;
    check_csv(&text, ';', &e, &week);

    // The CLI reads the same database while the daemon runs.
    let text = cli_report(&d, &["--from", "2026-11-02", "--to", "2026-11-05", "--csv"]);
    check_csv(&text, ',', &e, &week);

    // Week and school totals are the sums of the days.
    let by_school = report(&d, VIEWER, &format!("{query}&group=school&period=week")).await;
    let s1 = &by_school["rows"][0];
    assert_eq!(s1["school"], "s1");
    assert_eq!(s1["period_start"], "2026-11-02");
    let c1_on: i64 = week.iter().map(|day| e[&("c1", *day)].on).sum();
    assert_eq!(s1["on_seconds"], c1_on);
    let city = report(&d, VIEWER, &format!("{query}&group=city&period=month")).await;
    let all_on: i64 = e.values().map(|x| x.on).sum();
    assert_eq!(city["rows"][0]["on_seconds"], all_on);
    assert!(city["rows"][0].get("school").is_none());

    // A teacher sees their classroom only; the range is limited.
    let mine = report(&d, TEACHER, query).await;
    assert!(mine["rows"].as_array().unwrap().iter().all(|r| r["classroom"] == "c1"));
    let (s, body) = d.get(ADMIN, "/api/v1/report?from=2025-01-01&to=2026-11-06").await;
    assert_eq!((s, body["error"].as_str()), (400, Some("bad_query")), "{body}");

    // After a restart, the stored days read back unchanged.
    let dir = d.stop().await;
    let d = start(Some(dir), clock.clone()).await;
    let again = report(&d, ADMIN, "from=2026-11-02&to=2026-11-05").await;
    check_json(again["rows"].as_array().unwrap(), &e, &week, session_ends);
}

/// libfaketime's multi-threaded library, or `None` after a note on stderr
/// (a failure under `BORNE_REQUIRE_PEERS=1`).
fn libfaketime() -> Option<std::path::PathBuf> {
    let found = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file());
    borne_test_support::peers::require_peer("libfaketime (Debian: apt-get install -y faketime)", found.is_some());
    found
}

/// `borne run` as a real process (and `borne report` beside it) on a wall
/// clock frozen where the test sets it: libfaketime reads
/// `FAKETIME_TIMESTAMP_FILE` at every call, an absolute date without `@`
/// stands still, and the monotonic clock stays real so that timers run.
/// The child is killed by PID when dropped.
struct FrozenBorne {
    lib: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    config: borne::config::Config,
    child: Option<std::process::Child>,
    http: reqwest::blocking::Client,
}

impl FrozenBorne {
    fn new(lib: std::path::PathBuf) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let yaml = format!("listen: 127.0.0.1:{port}\n{CONFIG}");
        let config = load_config(&yaml, dir.path());
        let state = dir.path().join("state").display().to_string();
        std::fs::write(dir.path().join("borne.yaml"), yaml.replace("STATE_DIR", &state)).expect("write config");
        FrozenBorne {
            lib,
            dir,
            port,
            config,
            child: None,
            http: reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    /// Sets the wall clock of borne (running or to come) to `t` (RFC 3339).
    fn set_clock(&self, t: &str) {
        let t: chrono::DateTime<chrono::Utc> = t.parse().expect("RFC 3339 time");
        let file = self.dir.path().join("faketime");
        let tmp = file.with_extension("new");
        std::fs::write(&tmp, format!("{}\n", t.format("%Y-%m-%d %H:%M:%S"))).expect("write faketime file");
        std::fs::rename(&tmp, &file).expect("replace faketime file");
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(borne_bin());
        c.args(args)
            .arg("--config")
            .arg(self.dir.path().join("borne.yaml"))
            .env("LD_PRELOAD", &self.lib)
            .env("FAKETIME_TIMESTAMP_FILE", self.dir.path().join("faketime"))
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            // The faked date is read as UTC whatever the machine's zone.
            .env("TZ", "UTC")
            .env("RUST_LOG", "warn");
        c
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = self
            .command(&["run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn borne");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + TIMEOUT;
        while !borne_test_support::http::is_ready(self.port) {
            assert!(std::time::Instant::now() < deadline, "borne did not become ready");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    /// `kill -9`: nothing is flushed, no last heartbeat.
    fn kill_9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    }

    /// SIGTERM, and a clean exit.
    fn stop(&mut self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.take().expect("running").wait().expect("wait");
        assert!(status.success(), "borne exited with {status}");
    }

    /// Moves the clock of the running daemon to `t` and waits until its
    /// planner has seen the step (a SIGHUP reload wakes it now rather than
    /// at its next timer). Until then a request would be taken at the new
    /// time and then moved by the step as if it had been made before it.
    fn jump(&self, t: &str) {
        self.set_clock(t);
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.pid()])
            .status()
            .unwrap();
        assert!(status.success());
        let want: chrono::DateTime<chrono::Utc> = t.parse().unwrap();
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let (_, ready) = self.send(Method::GET, ADMIN, "/readyz", None);
            let seen = ready["clock"]["last_step"]["at"]
                .as_str()
                .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok());
            if seen == Some(want) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "step to {t} not seen: {ready}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn send(&self, method: Method, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("http://127.0.0.1:{}{path}", self.port))
            .bearer_auth(token);
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn report(&self, query: &str) -> Value {
        let (s, body) = self.send(Method::GET, ADMIN, &format!("/api/v1/report?{query}"), None);
        assert_eq!(s, 200, "{body}");
        body
    }

    fn report_csv(&self, query: &str) -> String {
        let r = self
            .http
            .get(format!("http://127.0.0.1:{}/api/v1/report?{query}", self.port))
            .bearer_auth(VIEWER)
            .header("Accept", "text/csv")
            .send()
            .expect("request");
        assert_eq!(r.status(), 200);
        r.text().expect("CSV")
    }

    /// `borne report … --csv` on the state database, at the frozen time.
    fn cli_csv(&self, from: &str, to: &str) -> String {
        let out = self
            .command(&["report", "--from", from, "--to", to, "--csv"])
            .output()
            .expect("borne report");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// Waits until every listed AP is observed `wifi` since the frozen time `t`.
    fn wait_observed(&self, t: &str, aps: &[(&str, &str)]) {
        let since: chrono::DateTime<chrono::Utc> = t.parse().unwrap();
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let (_, list) = self.send(Method::GET, ADMIN, "/api/v1/access-points", None);
            let seen = |id: &str| {
                list["access_points"]
                    .as_array()
                    .and_then(|l| l.iter().find(|a| a["id"] == id))
                    .map(|a| (a["observed"].clone(), a["since"].as_str().map(str::to_owned)))
            };
            let done = aps.iter().all(|(id, wifi)| {
                seen(id).is_some_and(|(o, s)| {
                    o == *wifi
                        && s.and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
                            .is_some_and(|s| s >= since)
                })
            });
            if done {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "APs not {aps:?} since {t}: {list}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn read_only(&self) -> borne::store::usage::ReadOnly {
        borne::store::usage::ReadOnly::open(&self.dir.path().join("state")).expect("state database")
    }

    /// How far the runs stored in the database reach (their last heartbeat).
    fn alive_until(&self, day: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        use borne::report::Source as _;
        let classrooms: Vec<&borne::config::Classroom> = self.config.classrooms.iter().collect();
        let from: chrono::DateTime<chrono::Utc> = format!("{day}T00:00:00Z").parse().unwrap();
        let inputs = self
            .read_only()
            .with(|r| r.inputs(&classrooms, from, from + chrono::Duration::days(1)))
            .expect("histories");
        inputs.values().flat_map(|i| i.runs.iter().map(|r| r.1)).max()
    }

    /// The daily aggregates stored in the database.
    fn stored_days(&self, from: &str, to: &str) -> Vec<(chrono::NaiveDate, String, borne::report::DayFigures)> {
        use borne::report::Source as _;
        self.read_only()
            .with(|r| r.stored_days(from.parse().unwrap(), to.parse().unwrap()))
            .expect("stored days")
    }
}

impl Drop for FrozenBorne {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A local Paris time in the crash week, March 2027 (UTC+1), after any
/// build date of the binary, so its clock looks plausible.
fn mar(day: u32, hm: &str) -> String {
    format!("2027-03-{day:02}T{hm}:00+01:00")
}

const CRASH_WEEK: [&str; 5] = ["2027-03-01", "2027-03-02", "2027-03-03", "2027-03-04", "2027-03-05"];

/// The crash week as the test below drives it, written as stretches.
fn expected_crash_week() -> BTreeMap<(&'static str, &'static str), Expected> {
    let mut e: BTreeMap<(&str, &str), Expected> = BTreeMap::new();
    for day in CRASH_WEEK {
        e.insert(("c1", day), Expected::default());
        e.insert(("c2", day), Expected::default());
    }
    // Monday: borne first starts at 07:00; c1 session 09:00-10:00 ended by
    // the teacher; both on by the schedule 12:00-13:00.
    for c in ["c1", "c2"] {
        let x = e.get_mut(&(c, "2027-03-01")).unwrap();
        x.unknown = secs("00:00", "07:00");
        x.schedule_on("12:00", "13:00");
    }
    e.get_mut(&("c1", "2027-03-01"))
        .unwrap()
        .session("09:00", "10:00", "teacher");
    // Tuesday: c2 overridden on 14:00-16:30, the override then deleted.
    e.get_mut(&("c2", "2027-03-02"))
        .unwrap()
        .override_on("14:00", "16:30", false);
    // Wednesday: c1's session from 10:00; borne killed at 10:30 (its last
    // heartbeat) with the AP on, restarted at 11:30; the session goes on
    // and the teacher ends it at 11:45. The hour in between is unknown.
    for c in ["c1", "c2"] {
        e.get_mut(&(c, "2027-03-03")).unwrap().unknown = secs("10:30", "11:30");
    }
    let x = e.get_mut(&("c1", "2027-03-03")).unwrap();
    x.on = secs("10:00", "10:30") + secs("11:30", "11:45");
    x.teacher = x.on;
    x.sessions.push(secs("10:00", "11:45"));
    x.ended_by.insert("teacher".into(), 1);
    // Thursday: a refusal at 18:00 (locked); c1 overridden on 20:00-20:30,
    // outside school hours.
    let x = e.get_mut(&("c1", "2027-03-04")).unwrap();
    x.refused_locked = 1;
    x.override_on("20:00", "20:30", true);
    e
}

fn check_stored(
    stored: &[(chrono::NaiveDate, String, borne::report::DayFigures)],
    e: &BTreeMap<(&str, &str), Expected>,
) {
    for ((classroom, day), x) in e {
        if *day == CRASH_WEEK[4] {
            continue;
        }
        let (_, _, f) = stored
            .iter()
            .find(|(d, c, _)| d.to_string() == *day && c == classroom)
            .unwrap_or_else(|| panic!("no stored aggregate for {classroom} {day}: {stored:?}"));
        let what = format!("{classroom} {day}: {f:?}");
        assert_eq!(
            (
                f.on,
                f.unknown,
                f.on_teacher,
                f.on_schedule,
                f.on_override,
                f.on_outside
            ),
            (x.on, x.unknown, x.teacher, x.schedule, x.override_, x.outside),
            "{what}"
        );
        assert_eq!(f.sessions, x.sessions, "{what}");
        let ended: BTreeMap<String, u64> = f.ended_by.iter().map(|(k, v)| (k.to_owned(), u64::from(v))).collect();
        assert_eq!(ended, x.ended_by, "{what}");
        assert_eq!(
            (u64::from(f.overrides), f.override_seconds),
            (x.overrides, x.override_seconds),
            "{what}"
        );
        assert_eq!(u64::from(f.refused.get("locked")), x.refused_locked, "{what}");
    }
}

/// The real binary on a frozen clock through a week, `kill -9`ed in the
/// middle of Wednesday with an AP on and restarted an hour later: the
/// report (API JSON and CSV, `borne report` on the database, and the daily
/// aggregates written after the crash) adds up to the second, the lost
/// hour counted as unknown and the session across the crash counted once.
#[test]
fn a_week_with_a_kill_9_in_the_middle_adds_up_to_the_second() {
    let Some(lib) = libfaketime() else { return };
    let mut b = FrozenBorne::new(lib);
    let hm = |day, t| mar(day, t);
    let step = |b: &FrozenBorne, t: &str, aps: &[(&str, &str)]| {
        b.jump(t);
        b.wait_observed(t, aps);
    };
    let wifi = |b: &FrozenBorne, t: &str, body: Value| {
        b.jump(t);
        b.send(Method::POST, TEACHER, "/api/v1/classrooms/c1/wifi", Some(body))
            .0
    };
    let all = |w| [("c1-ap1", w), ("c2-ap1", w), ("c2-ap2", w)];
    // Monday.
    b.set_clock(&hm(1, "07:00"));
    b.start();
    b.wait_observed(&hm(1, "07:00"), &all("off"));
    assert_eq!(wifi(&b, &hm(1, "09:00"), json!({"wifi": "on", "minutes": 60})), 200);
    b.wait_observed(&hm(1, "09:00"), &[("c1-ap1", "on")]);
    assert_eq!(wifi(&b, &hm(1, "10:00"), json!({"wifi": "off"})), 200);
    b.wait_observed(&hm(1, "10:00"), &[("c1-ap1", "off")]);
    step(&b, &hm(1, "12:00"), &all("on"));
    step(&b, &hm(1, "13:00"), &all("off"));
    // Tuesday.
    b.jump(&hm(2, "14:00"));
    let put = json!({"wifi": "on", "until": hm(2, "16:30"), "reason": "atelier"});
    let path = "/api/v1/classrooms/c2/override";
    assert_eq!(b.send(Method::PUT, ADMIN, path, Some(put)).0, 200);
    b.wait_observed(&hm(2, "14:00"), &[("c2-ap1", "on"), ("c2-ap2", "on")]);
    b.jump(&hm(2, "16:30"));
    assert_eq!(b.send(Method::DELETE, ADMIN, path, None).0, 200);
    b.wait_observed(&hm(2, "16:30"), &[("c2-ap1", "off"), ("c2-ap2", "off")]);
    // Wednesday: a session from 10:00, and at 10:30, once the heartbeat
    // has said so, kill -9.
    assert_eq!(wifi(&b, &hm(3, "10:00"), json!({"wifi": "on", "minutes": 120})), 200);
    b.wait_observed(&hm(3, "10:00"), &[("c1-ap1", "on")]);
    let crash = hm(3, "10:30");
    b.jump(&crash);
    let crash_utc: chrono::DateTime<chrono::Utc> = crash.parse().unwrap();
    let deadline = std::time::Instant::now() + borne::core::usage::HEARTBEAT + TIMEOUT;
    while b.alive_until("2027-03-03").is_none_or(|t| t < crash_utc) {
        assert!(std::time::Instant::now() < deadline, "no heartbeat at {crash}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    b.kill_9();
    b.set_clock(&hm(3, "11:30"));
    b.start();
    // The session survived: the AP is on again from the restart.
    b.wait_observed(&hm(3, "11:30"), &[("c1-ap1", "on")]);
    assert_eq!(wifi(&b, &hm(3, "11:45"), json!({"wifi": "off"})), 200);
    b.wait_observed(&hm(3, "11:45"), &[("c1-ap1", "off")]);
    // Thursday.
    assert_eq!(wifi(&b, &hm(4, "18:00"), json!({"wifi": "on"})), 409);
    b.jump(&hm(4, "20:00"));
    let put = json!({"wifi": "on", "until": hm(4, "20:30"), "reason": "réunion de parents"});
    let path = "/api/v1/classrooms/c1/override";
    assert_eq!(b.send(Method::PUT, ADMIN, path, Some(put)).0, 200);
    b.wait_observed(&hm(4, "20:00"), &[("c1-ap1", "on")]);
    b.jump(&hm(4, "20:30"));
    assert_eq!(b.send(Method::DELETE, ADMIN, path, None).0, 200);
    b.wait_observed(&hm(4, "20:30"), &[("c1-ap1", "off")]);
    // Friday noon: the week so far, from the running daemon.
    b.jump(&hm(5, "12:00"));
    let e = expected_crash_week();
    let query = "from=2027-03-01&to=2027-03-05";
    let live = b.report(query);
    let rows = live["rows"].as_array().unwrap();
    check_json(rows, &e, &CRASH_WEEK, true);
    let text = b.report_csv(&format!("{query}&sep=semicolon"));
    check_csv(&text, ';', &e, &CRASH_WEEK);
    // Stopped cleanly (its last heartbeat is now), the CLI on the database.
    b.stop();
    check_csv(&b.cli_csv("2027-03-01", "2027-03-05"), ',', &e, &CRASH_WEEK);
    // Started again: the days that ended while it ran, or while it was
    // down, get their aggregates, Wednesday's from the histories of two runs.
    b.start();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut stored = b.stored_days("2027-03-01", "2027-03-05");
    while stored.len() < 8 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        stored = b.stored_days("2027-03-01", "2027-03-05");
    }
    check_stored(&stored, &e);
    assert_eq!(
        stored.len(),
        8,
        "four finished days of two classrooms, Friday is not over: {stored:?}"
    );
    let again = b.report(query);
    assert_eq!(again["rows"], live["rows"]);
    check_csv(&b.cli_csv("2027-03-01", "2027-03-05"), ',', &e, &CRASH_WEEK);
}
