//! Calendars (issue 15 §1): the zone A test fixture read with the Ministry's
//! semantics, public holidays, calendars on schools and classrooms, the
//! coverage check, `borne calendar show` and `/readyz`.

mod common;

use std::path::Path;
use std::process::Command;

use borne::config::{self, Config};
use borne::schedule::{Mode, ics};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Paris;

const FIXTURE: &str = "tests/data/calendars/zone-a-fixture.ics";

fn example() -> Config {
    config::load(Path::new("config/example.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn mode(c: &Config, classroom: &str, t: &str) -> Mode {
    let c = c.classroom(classroom).unwrap();
    c.schedule.mode_at(c.timezone, at(t))
}

/// Every event kind of the fixture (holidays with an end, the Ascension
/// bridge, summers without an end up to the next "Rentrée scolaire des
/// élèves" or 31 August, Rentrée events, the teachers' pre-rentrée) maps to
/// the closed days the official semantics give.
#[test]
fn the_fixture_maps_every_event_kind_to_closed_days() {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let days = ics::parse(&text, Paris).unwrap();
    assert!(days.warnings.is_empty(), "{:?}", days.warnings);
    let got: Vec<String> = days
        .closed
        .iter()
        .map(|c| format!("{} {}", c.range, c.origin))
        .collect();
    assert_eq!(
        got,
        [
            "2025-08-30..2025-08-31 ics: Vacances d'Été(prérentrée Enseignants) - Zone A",
            "2025-10-19..2025-11-02 ics: Vacances de la Toussaint - Zone A",
            "2025-12-21..2026-01-04 ics: Vacances de Noël - Zone A",
            "2026-02-08..2026-02-22 ics: Vacances d'Hiver - Zone A",
            "2026-04-05..2026-04-19 ics: Vacances de Printemps - Zone A",
            "2026-05-14..2026-05-17 ics: Pont de l'Ascension - Zone A",
            "2026-07-05..2026-08-31 ics: Vacances d'Été - Zone A",
            "2026-10-18..2026-11-01 ics: Vacances de la Toussaint - Zone A",
            "2026-12-20..2027-01-03 ics: Vacances de Noël - Zone A",
            "2027-02-14..2027-02-28 ics: Vacances d'Hiver - Zone A",
            "2027-04-11..2027-04-25 ics: Vacances de Printemps - Zone A",
            "2027-05-06..2027-05-09 ics: Pont de l'Ascension - Zone A",
            "2027-07-04..2027-08-31 ics: Vacances d'Été - Zone A",
        ]
    );
}

/// `borne plan` on the example: locked on 11 November 2026 (public
/// holiday), on Ascension 2027 and during the 2026-2027 Christmas holidays
/// as the fixture encodes them; open on the school days around them.
#[test]
fn the_example_is_locked_on_11_november_ascension_and_christmas() {
    let c = example();
    let expected = [
        // Wednesday 11 November 2026, 09:30: a school morning otherwise.
        ("2026-11-11T09:30:00+01:00", Mode::Locked),
        ("2026-11-04T09:30:00+01:00", Mode::Available),
        // Ascension, Thursday 6 May 2027, and the bridge's Friday.
        ("2027-05-06T09:30:00+02:00", Mode::Locked),
        ("2027-05-07T09:30:00+02:00", Mode::Locked),
        // After class on Wednesday 5 May: still a school morning.
        ("2027-05-05T09:30:00+02:00", Mode::Available),
        ("2027-05-10T09:30:00+02:00", Mode::Available),
        // Christmas holidays: Saturday 19 December 2026 after class to Monday 4 January 2027.
        ("2026-12-21T09:30:00+01:00", Mode::Locked),
        ("2027-01-04T09:30:00+01:00", Mode::Available),
        ("2026-12-18T09:30:00+01:00", Mode::Available),
    ];
    for classroom in ["jf-cm1a", "jf-salle-info", "vo-cp"] {
        for (t, want) in expected {
            assert_eq!(mode(&c, classroom, t), want, "{classroom} at {t}");
        }
    }
    // The computer lab's Tuesday session does not switch Wi-Fi on in the holidays.
    assert_eq!(mode(&c, "jf-salle-info", "2026-12-22T10:30:00+01:00"), Mode::Locked);
    assert_eq!(mode(&c, "jf-salle-info", "2026-12-15T10:30:00+01:00"), Mode::On);

    let out = Command::new(common::borne_bin())
        .args([
            "plan",
            "--config",
            "config/example.yaml",
            "--at",
            "2026-12-22T10:30:00+01:00",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = plan.as_array().or_else(|| plan["classrooms"].as_array()).expect("rows");
    assert_eq!(rows.len(), 7);
    for row in rows {
        assert_eq!(row["mode"], "locked", "{row}");
        assert_eq!(row["next_change"]["at"], "2027-01-04T08:30:00+01:00", "{row}");
    }
}

/// A calendar on a school adds to its schedule's: one line closes one
/// school, the other school keeps its day.
#[test]
fn a_school_calendar_adds_to_its_schedules_calendars() {
    let c = example();
    let t = "2027-03-22T09:30:00+01:00";
    assert_eq!(mode(&c, "vo-cp", t), Mode::Locked);
    assert_eq!(mode(&c, "jf-cm1a", t), Mode::Available);
    let vo = c.classroom("vo-cp").unwrap();
    assert_eq!(vo.calendars, ["zone-a", "voltaire-local"]);
    // Still locked on the zone's holidays.
    assert_eq!(mode(&c, "vo-cp", "2026-12-21T09:30:00+01:00"), Mode::Locked);
}

const SMALL: &str = r#"
state_dir: STATE_DIR
calendars:
  year:
    closed: [2026-12-21..2027-01-03]
  strike:
    closed: [2027-01-12]
  works:
    closed: [2027-01-14]
schedules:
  day:
    calendars: [year]
    rules:
      - { at: "30 8 * * Mon-Fri", mode: available }
      - { at: "0 17 * * Mon-Fri", mode: locked }
schools:
  - id: s1
    calendars: [strike]
    classrooms:
      - id: c1
        schedule: day
        calendars: [works]
        access_points: [{ id: a1, sim: {} }]
      - id: c2
        schedule: day
        access_points: [{ id: a2, sim: {} }]
  - id: s2
    schedule: day
    classrooms:
      - id: c3
        access_points: [{ id: a3, sim: {} }]
users:
  - { name: admin, role: admin, token_sha256: "0000000000000000000000000000000000000000000000000000000000000000" }
"#;

/// Classroom calendars add to the school's and the schedule's; classrooms
/// with the same calendars share one schedule.
#[test]
fn classroom_calendars_add_to_the_school_and_schedule_ones() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::load_config(SMALL, dir.path());
    let strike = "2027-01-12T09:30:00+01:00";
    let works = "2027-01-14T09:30:00+01:00";
    assert_eq!(mode(&c, "c1", strike), Mode::Locked);
    assert_eq!(mode(&c, "c2", strike), Mode::Locked);
    assert_eq!(mode(&c, "c3", strike), Mode::Available);
    assert_eq!(mode(&c, "c1", works), Mode::Locked);
    assert_eq!(mode(&c, "c2", works), Mode::Available);
    assert_eq!(c.classroom("c1").unwrap().calendars, ["year", "strike", "works"]);
    assert_eq!(c.classroom("c2").unwrap().calendars, ["year", "strike"]);
    assert_eq!(c.classroom("c3").unwrap().calendars, ["year"]);
}

/// Calendar mistakes are errors located at their key: unknown calendars on
/// schools and classrooms, `ics` with `url`, unknown public holidays, an
/// ICS file that is not one, a repeating event; a missing ICS file is a
/// missing-file warning (fatal for `borne run`).
#[test]
fn calendar_mistakes_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.ics"), "<html>502 Bad Gateway</html>").unwrap();
    std::fs::write(
        dir.path().join("repeat.ics"),
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261017\r\nDTEND;VALUE=DATE:20261102\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Toussaint\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    let yaml = SMALL
        .replace(
            "  works:\n    closed: [2027-01-14]",
            "  works:\n    closed: [2027-01-14]\n  both:\n    ics: a.ics\n    url: https://example.org/a.ics\n  holidays:\n    public_holidays: de\n  garbage:\n    ics: garbage.ics\n  repeat:\n    ics: repeat.ics\n  gone:\n    ics: gone.ics\n  ftp:\n    url: ftp://example.org/a.ics",
        )
        .replace("    calendars: [strike]", "    calendars: [strike, nope]")
        .replace("        calendars: [works]", "        calendars: [works, nada]");
    let text = yaml.replace("STATE_DIR", &dir.path().join("state").display().to_string());
    let err = match config::from_str(&text, "test.yaml", Some(dir.path())) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    for expected in [
        "calendars.both: give `ics:` (a file) or `url:`, not both",
        "calendars.holidays.public_holidays: unknown public holidays \"de\"; use fr or fr-alsace-moselle",
        "calendars.garbage.ics: ",
        "not an iCalendar file: it does not start with BEGIN:VCALENDAR",
        "calendars.repeat.ics: ",
        "event \"Toussaint\" repeats (RRULE)",
        "calendars.ftp.url: \"ftp://example.org/a.ics\" is not an http:// or https:// address",
        "schools[0].calendars[1]: unknown calendar \"nope\"",
        "schools[0].classrooms[0].calendars[1]: unknown calendar \"nada\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let missing = SMALL.replace("  works:\n    closed: [2027-01-14]", "  works:\n    ics: gone.ics");
    let text = missing.replace("STATE_DIR", &dir.path().join("state").display().to_string());
    let loaded = config::from_str(&text, "test.yaml", Some(dir.path())).unwrap();
    let w = loaded
        .warnings
        .iter()
        .find(|w| w.location.ends_with("calendars.works.ics"))
        .unwrap_or_else(|| panic!("no warning in {:?}", loaded.warnings));
    assert!(w.missing_file && w.message.contains("gone.ics"), "{w}");
}

/// The coverage check warns for a schedule's calendar that ends less than
/// 60 days ahead (or has no school holidays), not for one-off closures on
/// schools and classrooms, and not when the year is covered.
#[test]
fn coverage_warnings_name_the_calendars_that_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::load_config(SMALL, dir.path());
    let w = c.coverage_warnings(day("2026-12-02"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].location, "calendars.year");
    assert!(w[0].message.contains("only up to 2027-01-03"), "{}", w[0].message);
    assert!(c.coverage_warnings(day("2026-10-01")).is_empty());

    let c = example();
    assert!(c.coverage_warnings(day("2026-12-02")).is_empty());
    let w = c.coverage_warnings(day("2027-07-15"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].location, "calendars.zone-a");

    // Public holidays alone do not cover a school year.
    let only_holidays = SMALL.replace("    closed: [2026-12-21..2027-01-03]", "    public_holidays: fr");
    let c = common::load_config(&only_holidays, dir.path());
    let w = c.coverage_warnings(day("2026-12-02"));
    assert!(w[0].message.contains("has no school holidays"), "{}", w[0].message);
}

/// `borne check --strict` refuses a configuration whose calendar runs out;
/// plain `borne check` prints the warning and passes.
#[test]
fn borne_check_warns_when_the_school_year_is_not_covered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("borne.yaml");
    let yaml = SMALL
        .replace("STATE_DIR", &dir.path().join("state").display().to_string())
        .replace("2026-12-21..2027-01-03", "2025-12-20..2026-01-04");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(common::borne_bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: calendars.year: covers school holidays only up to 2026-01-04"),
        "{stderr}"
    );
    let out = Command::new(common::borne_bin())
        .args(["check", "--strict", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// `borne calendar show` prints each closed day with its source: the ICS
/// event's summary, the public holiday's name, or "local".
#[test]
fn calendar_show_prints_closed_days_with_their_source() {
    let out = Command::new(common::borne_bin())
        .args([
            "calendar",
            "show",
            "zone-a",
            "--from",
            "2026-12-18",
            "--to",
            "2027-01-05",
        ])
        .args(["--config", "config/example.yaml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "2026-12-20  Sun  ics: Vacances de Noël - Zone A");
    assert!(
        lines.contains(&"2026-12-25  Fri  ics: Vacances de Noël - Zone A; public holiday: Noël"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"2027-01-01  Fri  ics: Vacances de Noël - Zone A; public holiday: Jour de l'an"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"15 closed day(s) from 2026-12-18 to 2027-01-05"),
        "{stdout}"
    );
    assert!(stdout.contains("coverage end 2027-08-31"), "{stdout}");

    let local = borne::cli::calendar_show(&example(), "voltaire-local", day("2027-03-01"), day("2027-03-31")).unwrap();
    assert!(local.starts_with("2027-03-22  Mon  local\n"), "{local}");
    let err = borne::cli::calendar_show(&example(), "zone-b", day("2027-03-01"), day("2027-03-31")).unwrap_err();
    assert_eq!(err, "unknown calendar \"zone-b\"; known: voltaire-local, zone-a");
}

/// `/readyz` reports each calendar's coverage end, source, fetch time and error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_each_calendar() {
    let clock = common::ManualClock::at("2026-12-02T10:00:00+01:00");
    let d = common::TestDaemon::start(SMALL, clock).await;
    let body: serde_json::Value = d.http.get(d.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        body["calendars"]["year"],
        serde_json::json!({"coverage_end": "2027-01-03", "source": "local", "fetched_at": null, "error": null, "in_schedule": true})
    );
    assert_eq!(body["calendars"]["strike"]["coverage_end"], "2027-01-12");
    // A school's own closures are not checked for coverage (the dashboard's warning follows `borne check`).
    assert_eq!(body["calendars"]["strike"]["in_schedule"], false);
}
