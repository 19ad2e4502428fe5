//! Configuration loading, `borne check`, `borne plan` and `borne token new`,
//! through the library and the real binary.

use borne_test_support::daemon as common;

use std::process::Command;

use borne::config::{self, LoadError};
use serde_json::Value;

fn errors_of(yaml: &str) -> Vec<String> {
    match config::from_str(yaml, "borne.yaml", None) {
        Ok(_) => panic!("expected errors"),
        Err(LoadError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("{e}"),
    }
}

/// The shipped example and demo configurations are valid.
#[test]
fn shipped_configurations_are_valid() {
    for file in ["config/example.yaml", "config/demo.yaml"] {
        let loaded = config::load(std::path::Path::new(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!loaded.config.classrooms.is_empty());
    }
}

/// A broken copy of the example reports every mistake, each with where it
/// is and what to do, in one run.
#[test]
fn broken_example_reports_every_error_with_its_location() {
    let good = std::fs::read_to_string("config/example.yaml").unwrap();
    let broken = good
        .replacen("        schedule: computer-lab", "        shedule: computer-lab", 1)
        .replacen("\"0 10 * * Tue\"", "\"0 25 * * Tue\"", 1)
        .replacen("timezone: Europe/Paris", "timezone: Europe/Pariss", 1)
        .replacen("id: jf-ce2b\n", "id: jf-cm1a\n", 1)
        .replacen(
            "schedule: school-hours\n    classrooms:\n      - id: vo-cp",
            "schedule: scool-hours\n    classrooms:\n      - id: vo-cp",
            1,
        );
    assert_ne!(good, broken);
    let errors = errors_of(&broken);
    let all = errors.join("\n");
    let expect = [
        "schools[0].classrooms[2].shedule: unknown key \"shedule\"",
        "schedules.computer-lab.rules[1].at: ",
        "timezone: unknown time zone \"Europe/Pariss\"",
        "schools[0].classrooms[1].id: duplicate classroom id \"jf-cm1a\" (also at schools[0].classrooms[0], borne.yaml:",
        "schools[1].schedule: unknown schedule \"scool-hours\"; known: computer-lab, school-hours",
    ];
    for e in expect {
        assert!(all.contains(e), "missing {e:?} in:\n{all}");
    }
    assert!(all.contains("25"), "the bad hour is named:\n{all}");
    // Every error, checks included, says where it is written.
    for e in &errors {
        let mut parts = e.splitn(4, ':');
        let (file, line, col) = (parts.next(), parts.next(), parts.next());
        assert_eq!(file, Some("borne.yaml"), "{e}");
        assert!(line.and_then(|l| l.parse::<usize>().ok()).is_some(), "{e}");
        assert!(col.and_then(|c| c.parse::<usize>().ok()).is_some(), "{e}");
    }
    let shedule_line = broken.lines().position(|l| l.contains("shedule:")).unwrap() + 1;
    assert!(
        all.contains(&format!(
            "borne.yaml:{shedule_line}:9: schools[0].classrooms[2].shedule: unknown key"
        )),
        "{all}"
    );
}

/// The binary prints every error and exits 1 on a broken file, 0 and a
/// summary on a good one; `--strict` turns warnings into a failure.
#[test]
fn check_command_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("config/example.yaml").unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        good.replace("timezone: Europe/Paris", "timezone: Mars/Olympus")
            .replace("role: viewer", "role: watcher"),
    )
    .unwrap();
    let out = Command::new(common::borne_bin())
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Mars/Olympus") && stderr.contains("watcher"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = Command::new(common::borne_bin())
        .args(["check", "--config", "config/example.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: 2 schools, 7 classrooms"));
    // The example points to /etc/borne files: warnings, fatal with --strict.
    // `check` also warns when a calendar's coverage ends less than 60 days
    // after *today* (the real clock, as in production), and the example's
    // fixture ends on 2027-08-31: from July 2027 that warning joins the
    // others. So the expected coverage warnings are computed for the same
    // day with the same rule, and the test holds on any date; the rule
    // itself is pinned at fixed dates in
    // `coverage_warnings_of_the_example_at_fixed_dates` below.
    let before = chrono::Local::now().date_naive();
    let out = Command::new(common::borne_bin())
        .args(["check", "--strict", "--config", "config/example.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("warning(s), refused with --strict"), "{stderr}");
    let today = chrono::Local::now().date_naive();
    if today == before {
        let example = config::load(std::path::Path::new("config/example.yaml"))
            .unwrap()
            .config;
        let expected = example.coverage_warnings(today);
        for w in &expected {
            assert!(stderr.contains(&format!("warning: {w}")), "{w} in {stderr}");
        }
        if expected.is_empty() {
            assert!(!stderr.contains("covers school holidays"), "{stderr}");
        }
    }
}

/// The coverage rule of `borne check` on the example, at fixed dates: its
/// zone A fixture covers the school year up to 2027-08-31, so no warning
/// while that is 60 days or more ahead, a warning naming the end after.
#[test]
fn coverage_warnings_of_the_example_at_fixed_dates() {
    let example = config::load(std::path::Path::new("config/example.yaml"))
        .unwrap()
        .config;
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert!(example.coverage_warnings(day("2026-12-02")).is_empty());
    assert!(
        example.coverage_warnings(day("2027-07-02")).is_empty(),
        "60 days ahead is covered"
    );
    let late = example.coverage_warnings(day("2027-07-03"));
    let text: Vec<String> = late.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "calendars.zone-a: covers school holidays only up to 2027-08-31, less than 60 days ahead: add the next school year's calendar"
        ]
    );
}

/// Plain tokens are for demos only; several classic mistakes are caught.
#[test]
fn semantic_mistakes_are_caught() {
    let yaml = r#"
teacher_session: { default_minutes: 90, max_minutes: 60 }
calendars:
  z: { closed: ["2026-01-10..2026-01-05", "2026-02-01..2026-02-10", "2026-02-05"] }
schedules:
  s: { calendars: [z, nope], rules: [ { at: "0 8 * * Mon", mode: availabel } ] }
schools:
  - id: School_1
    schedule: s
    classrooms:
      - id: c1
        access_points:
          - { id: a1, sim: {}, mqtt: { preset: tasmota, topic: x } }
          - { id: a2, mqtt: { preset: tasmota } }
          - { id: a3, ssh: { preset: openwrt } }
users:
  - { name: u, role: teacher, token: plain-token-here, classrooms: [c9] }
  - { name: v, role: admin, token_sha256: "abc" }
"#;
    let all = errors_of(yaml).join("\n");
    for e in [
        "teacher_session.max_minutes: max_minutes (60) is below default_minutes (90)",
        "calendars.z.closed[0]",
        "overlaps",
        "schedules.s.calendars[1]: unknown calendar \"nope\"",
        "unknown mode \"availabel\"",
        "schools[0].id: school id \"School_1\"",
        "exactly one driver block",
        "preset tasmota needs `topic`",
        "an SSH access point needs a host",
        "no way to verify the AP's host key",
        "access points use MQTT but there is no top-level `mqtt:` block",
        "plain tokens are only allowed with `demo: true`",
        "unknown classroom \"c9\"",
        "must be 64 hex digits",
    ] {
        assert!(all.contains(e), "missing {e:?} in:\n{all}");
    }
}

/// Syntax errors carry the file, line and column.
#[test]
fn syntax_errors_have_line_and_column() {
    let errors = errors_of("schools:\n  - id: a\n    classrooms: [\n");
    assert!(errors[0].starts_with("borne.yaml:"), "{errors:?}");
    let errors = errors_of("teacher_session:\n  max_minutes: lots\n");
    assert!(errors[0].starts_with("borne.yaml:2:"), "{errors:?}");
}

fn plan_json(config: &str, at: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("borne.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(common::borne_bin())
        .args(["plan", "--json", "--at", at, "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

const DST: &str = r#"
timezone: Europe/Paris
calendars:
  h: { closed: ["2026-12-21..2027-01-01"] }
schedules:
  night:
    calendars: [h]
    default_mode: locked
    rules:
      - { at: "30 2 * * *", mode: available }
      - { at: "45 2 * * *", mode: locked }
      - { at: "0 8 * * *", mode: available }
      - { at: "0 8 * * Tue", mode: on }
  unlock-0230:
    default_mode: locked
    rules:
      - { at: "30 2 * * *", mode: available }
      - { at: "0 6 * * *", mode: locked }
  lock-0230:
    default_mode: locked
    rules:
      - { at: "0 1 * * *", mode: available }
      - { at: "30 2 * * *", mode: locked }
schools:
  - id: s
    schedule: night
    classrooms:
      - { id: c, access_points: [ { id: a, sim: {} } ] }
      - { id: unlock, schedule: unlock-0230, access_points: [ { id: b, sim: {} } ] }
      - { id: lock, schedule: lock-0230, access_points: [ { id: d, sim: {} } ] }
"#;

fn classroom<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["classrooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

/// `plan --json` at DST edges (a lock and an unlock at a skipped and a
/// repeated local time), on closed days and at rule ties.
#[test]
fn plan_json_at_dst_edges_closed_days_and_ties() {
    // Spring forward: 02:30 does not exist on 2026-03-29; it fires at 03:00.
    let v = plan_json(DST, "2026-03-29T01:59:00+01:00");
    assert_eq!(classroom(&v, "unlock")["mode"], "locked");
    assert_eq!(
        classroom(&v, "unlock")["next_change"]["at"],
        "2026-03-29T03:00:00+02:00",
        "{v}"
    );
    assert_eq!(classroom(&v, "lock")["mode"], "available");
    assert_eq!(
        classroom(&v, "lock")["next_change"]["at"],
        "2026-03-29T03:00:00+02:00",
        "{v}"
    );
    let v = plan_json(DST, "2026-03-29T03:00:00+02:00");
    assert_eq!(classroom(&v, "unlock")["mode"], "available", "{v}");
    assert_eq!(classroom(&v, "lock")["mode"], "locked", "{v}");
    // Both 02:30 and 02:45 fall in the gap: both fire at 03:00, the later rule wins.
    assert_eq!(classroom(&v, "c")["mode"], "locked", "{v}");
    // Fall back: 02:30 occurs twice on 2026-10-25; it fires once, at the first.
    let v = plan_json(DST, "2026-10-25T02:29:00+02:00");
    assert_eq!(
        classroom(&v, "unlock")["next_change"]["at"],
        "2026-10-25T02:30:00+02:00",
        "{v}"
    );
    assert_eq!(
        classroom(&v, "lock")["next_change"]["at"],
        "2026-10-25T02:30:00+02:00",
        "{v}"
    );
    let v = plan_json(DST, "2026-10-25T02:29:00+01:00");
    assert_eq!(classroom(&v, "unlock")["mode"], "available", "{v}");
    assert_eq!(
        classroom(&v, "unlock")["next_change"]["at"],
        "2026-10-25T06:00:00+01:00",
        "no second firing: {v}"
    );
    assert_eq!(classroom(&v, "lock")["mode"], "locked", "{v}");
    assert_eq!(
        classroom(&v, "lock")["next_change"]["at"],
        "2026-10-26T01:00:00+01:00",
        "no second firing: {v}"
    );
    let v = plan_json(DST, "2026-10-25T02:35:00+01:00");
    assert_eq!(
        classroom(&v, "c")["mode"],
        "locked",
        "second 02:35 is after the 02:45 lock: {v}"
    );
    assert_eq!(
        classroom(&v, "c")["next_change"]["at"],
        "2026-10-25T08:00:00+01:00",
        "{v}"
    );
    // Closed day: locked all day whatever the rules, next change after the holidays.
    let v = plan_json(DST, "2026-12-22T10:00:00+01:00");
    assert_eq!(classroom(&v, "c")["mode"], "locked");
    assert_eq!(classroom(&v, "c")["wifi"], "off");
    // Rules that fired during the closed days count: 1 January 08:00 set `available`.
    assert_eq!(
        classroom(&v, "c")["next_change"]["at"],
        "2027-01-02T00:00:00+01:00",
        "{v}"
    );
    // Tie at 08:00 on Tuesdays: the later rule (on) wins.
    let v = plan_json(DST, "2026-12-01T08:00:00+01:00");
    assert_eq!(classroom(&v, "c")["mode"], "on");
    assert_eq!(classroom(&v, "c")["wifi"], "on");
}

/// `plan --from --days` lists the changes in order, for one classroom.
#[test]
fn plan_interval_lists_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("borne.yaml");
    std::fs::write(&path, DST).unwrap();
    let out = Command::new(common::borne_bin())
        .args([
            "plan",
            "--json",
            "--from",
            "2026-12-01T00:00:00+01:00",
            "--days",
            "1",
            "--classroom",
            "c",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["at"].as_str().unwrap().to_owned(),
                c["mode"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // 02:30 re-sets `available` (set at 08:00 the day before): not a change.
            ("2026-12-01T02:45:00+01:00".to_owned(), "locked".to_owned()),
            ("2026-12-01T08:00:00+01:00".to_owned(), "on".to_owned()),
        ]
    );
}

/// `token new` prints a long URL-safe token and the matching hash, and the
/// entry it prints is accepted by the configuration.
#[test]
fn token_new_prints_a_usable_entry() {
    // `token new` checks --classroom against the configuration.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("borne.yaml");
    std::fs::write(&cfg, DST).unwrap();
    let out = Command::new(common::borne_bin())
        .arg("--config")
        .arg(&cfg)
        .args([
            "token",
            "new",
            "--name",
            "cm1a-teacher",
            "--role",
            "teacher",
            "--classroom",
            "c",
            "--url",
            "https://wifi.example.org",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text.lines().next().unwrap().strip_prefix("token: ").unwrap();
    assert!(token.len() >= 22, "at least 128 bits");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(text.contains(&format!("https://wifi.example.org/#token={token}")));
    assert!(text.contains(&borne::cli::token_sha256(token)));
    let entry: String = text
        .lines()
        .skip_while(|l| !l.starts_with("  - name"))
        .collect::<Vec<_>>()
        .join("\n");
    let yaml = format!("{}users:\n{entry}\n", DST);
    let loaded = config::from_str(&yaml, "t.yaml", None).expect("entry accepted");
    assert_eq!(loaded.config.users[0].name, "cm1a-teacher");
}
