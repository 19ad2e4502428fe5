//! The usage report end to end (issue 16): a simulated school week with a
//! clock the test moves — teacher sessions, a schedule `on` period, an
//! override in hours and one outside them, a refused request, an access
//! point cut off for two hours, borne stopped for an hour mid-week — then
//! the report's figures checked to the second against values this test
//! computes from its own list of what happened, through the API (JSON and
//! CSV), the CLI on the state database, stored daily aggregates, and again
//! after a restart.

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
schools:
  - id: s1
    schedule: day
    classrooms:
      - id: c1
        access_points: [ { id: c1-ap1, sim: {} } ]
  - id: s2
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
        x.on += secs("12:00", "13:00");
        x.schedule += secs("12:00", "13:00");
    }
    let x = e.get_mut(&("c1", "2026-11-02")).unwrap();
    x.on += secs("09:00", "10:00");
    x.teacher += secs("09:00", "10:00");
    x.sessions.push(secs("09:00", "10:00"));
    x.ended_by.insert("expired".into(), 1);
    // Tuesday: c2 overridden on 14:00-16:30 (expires by itself).
    let x = e.get_mut(&("c2", "2026-11-03")).unwrap();
    x.on = secs("14:00", "16:30");
    x.override_ = x.on;
    x.overrides = 1;
    x.override_seconds = x.on;
    // Wednesday: c2-ap2 cut off 09:00-11:00 while c2 is off; borne
    // stopped 12:00-13:00.
    for c in ["c1", "c2"] {
        e.get_mut(&(c, "2026-11-04")).unwrap().unknown = secs("12:00", "13:00");
    }
    e.get_mut(&("c2", "2026-11-04")).unwrap().unknown += secs("09:00", "11:00");
    // Thursday: c1 session 10:00-10:20 ended by the teacher, a refusal at
    // 18:00 (locked), an override on 20:00-20:30 outside school hours.
    let x = e.get_mut(&("c1", "2026-11-05")).unwrap();
    x.on = secs("10:00", "10:20") + secs("20:00", "20:30");
    x.teacher = secs("10:00", "10:20");
    x.sessions.push(secs("10:00", "10:20"));
    x.ended_by.insert("teacher".into(), 1);
    x.refused_locked = 1;
    x.override_ = secs("20:00", "20:30");
    x.outside = secs("20:00", "20:30");
    x.overrides = 1;
    x.override_seconds = secs("20:00", "20:30");
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
