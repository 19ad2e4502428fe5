//! A configuration that scales: includes, merge keys, per-school defaults,
//! positions for every error, hostile files (deep, large, with a BOM)
//! refused or read at `check` and at reload alike.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use borne::config::{self, DriverConfig, LoadError, SshAuth};

fn load_errors(path: &Path) -> Vec<String> {
    match config::load(path) {
        Ok(_) => panic!("expected errors"),
        Err(LoadError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    }
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in text"))
        + 1
}

const MAIN: &str = r#"
timezone: Europe/Paris
state_dir: /tmp/unused
ssh: &city
  user: admin
  key_file: /etc/borne/id_ed25519
  known_hosts: /etc/borne/known_hosts
calendars:
  zone-a: { closed: ["2026-12-21..2027-01-01"] }
schedules:
  school-hours:
    calendars: [zone-a]
    rules: [ { at: "0 8 * * Mon-Fri", mode: available }, { at: "0 17 * * Mon-Fri", mode: locked } ]
include:
  - schools/*.yaml
schools:
  - id: main-school
    schedule: school-hours
    classrooms:
      - id: ms-1
        access_points: [ { id: ms-1-ap, sim: {} } ]
"#;

const SCHOOL_A: &str = r#"
schedules:
  lab: { rules: [ { at: "0 9 * * Mon", mode: "on" } ] }
schools:
  - id: a
    schedule: lab
    ssh: { user: a-admin, password_file: /etc/borne/a.pw }
    mqtt: { preset: shelly, qos: 0 }
    classrooms:
      - id: a-1
        access_points:
          - { id: a-1-ap, ssh: { host: 127.0.0.1 } }
          - { id: a-1-ap2, ssh: { host: 127.0.0.1, user: other, key_file: /etc/borne/k } }
          - { id: a-1-relay, mqtt: { topic: relay-a1 } }
mqtt: { host: 127.0.0.1 }
"#;

const SCHOOL_B: &str = r#"
users:
  - { name: b-director, role: admin, schools: [b], token_sha256: "0000000000000000000000000000000000000000000000000000000000000000" }
schools:
  - id: b
    schedule: school-hours
    classrooms:
      - id: b-1
        access_points: [ { id: b-1-ap, sim: {} } ]
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

/// Each school in its own file: schools, schedules and users are merged;
/// a key the included file may not hold is an error in that file.
#[test]
fn includes_merge_schools_schedules_and_users() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "borne.yaml", MAIN);
    // Allowed keys only: the stray `mqtt:` of SCHOOL_A is refused, in its file.
    write(dir.path(), "schools/a.yaml", SCHOOL_A);
    write(dir.path(), "schools/b.yaml", SCHOOL_B);
    let errors = load_errors(&main);
    let a = dir.path().join("schools/a.yaml").display().to_string();
    let stray = format!(
        "{a}:{}:1: \"mqtt\" cannot be in an included file",
        line_of(SCHOOL_A, "mqtt: { host")
    );
    assert!(errors.iter().any(|e| e.starts_with(&stray)), "{errors:#?}");

    // Moved to the main file, everything loads.
    write(
        dir.path(),
        "schools/a.yaml",
        &SCHOOL_A.replace("mqtt: { host: 127.0.0.1 }\n", ""),
    );
    write(
        dir.path(),
        "borne.yaml",
        &format!("{MAIN}mqtt: {{ host: 127.0.0.1 }}\n"),
    );
    let loaded = config::load(&main).unwrap_or_else(|e| panic!("{e}"));
    let c = &loaded.config;
    let ids: Vec<&str> = c.schools.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["main-school", "a", "b"]);
    assert_eq!(c.classroom("a-1").unwrap().schedule_name, "lab");
    assert_eq!(c.users[0].name, "b-director");

    // Per-school defaults under each AP's own keys, over the city's.
    let ssh = |id: &str| match &c.access_point(id).unwrap().driver {
        DriverConfig::Ssh(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    let ap = ssh("a-1-ap");
    assert_eq!(ap.user, "a-admin");
    assert!(matches!(&ap.auth, SshAuth::Password { password_file } if password_file.ends_with("a.pw")));
    let ap2 = ssh("a-1-ap2");
    assert_eq!(ap2.user, "other");
    assert!(matches!(&ap2.auth, SshAuth::Key { key_file, .. } if key_file.ends_with("k")));
    match &c.access_point("a-1-relay").unwrap().driver {
        DriverConfig::Mqtt(m) => {
            assert_eq!(m.command_topic, "shellies/relay-a1/relay/0/command");
            assert_eq!(m.qos, 0);
        }
        other => panic!("{other:?}"),
    }
    let main_ap = c.access_points.iter().find(|a| a.id.as_str() == "ms-1-ap").unwrap();
    assert_eq!(main_ap.driver.kind(), "sim");
}

/// An error in an included file is located in that file; a duplicate id
/// across files names both files.
#[test]
fn include_errors_are_located_in_the_right_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "borne.yaml", MAIN);
    let bad_a = SCHOOL_A
        .replace("mqtt: { host: 127.0.0.1 }\n", "")
        .replace("id: a-1\n", "id: a-1\n        shedule: lab\n")
        .replace("0 9 * * Mon", "0 99 * * Mon");
    write(dir.path(), "schools/a.yaml", &bad_a);
    // b reuses the main file's classroom id and schedule name.
    let bad_b = SCHOOL_B.replace("id: b-1", "id: ms-1") + "schedules:\n  school-hours: { rules: [] }\n";
    write(dir.path(), "schools/b.yaml", &bad_b);
    let errors = load_errors(&main);
    let all = errors.join("\n");
    let a = dir.path().join("schools/a.yaml").display().to_string();
    let b = dir.path().join("schools/b.yaml").display().to_string();
    let m = main.display().to_string();
    let expect = [
        format!(
            "{a}:{}:9: schools[1].classrooms[0].shedule: unknown key \"shedule\"",
            line_of(&bad_a, "shedule")
        ),
        format!("{a}:{}:", line_of(&bad_a, "0 99")),
        format!(
            "{b}:{}:3: schedule \"school-hours\" is defined twice (also at {m}:{}:3)",
            line_of(&bad_b, "school-hours: {"),
            line_of(MAIN, "school-hours:")
        ),
        format!(
            "{b}:{}:9: schools[2].classrooms[0].id: duplicate classroom id \"ms-1\" (also at schools[0].classrooms[0], {m}:{}:9)",
            line_of(&bad_b, "id: ms-1"),
            line_of(MAIN, "id: ms-1")
        ),
    ];
    for e in &expect {
        assert!(all.contains(e.as_str()), "missing {e:?} in:\n{all}");
    }
    assert!(all.contains("hour 99") || all.contains("99"), "{all}");

    // A pattern without wildcard that names nothing is an error; a glob
    // matching nothing is a warning.
    write(
        dir.path(),
        "borne.yaml",
        &MAIN.replace("schools/*.yaml", "schools/nope.yaml"),
    );
    let errors = load_errors(&main).join("\n");
    assert!(
        errors.contains(&format!("{m}:{}:", line_of(MAIN, "schools/*.yaml"))) && errors.contains("nope.yaml"),
        "{errors}"
    );
    write(
        dir.path(),
        "borne.yaml",
        &MAIN.replace("schools/*.yaml", "other/*.yaml"),
    );
    let loaded = config::load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.to_string().contains("matches no file")),
        "{:?}",
        loaded.warnings
    );
}

/// YAML merge keys: defaults written once and merged under explicit keys.
#[test]
fn merge_keys_work() {
    let yaml = r#"
x-ap: &ap { preset: tasmota, qos: 0 }
schedules:
  s: { rules: [] }
mqtt: { host: 127.0.0.1 }
schools:
  - id: s1
    schedule: s
    classrooms:
      - id: c1
        access_points:
          - id: c1-ap
            mqtt:
              <<: *ap
              topic: c1
              qos: 2
"#;
    // `x-ap` is not a configuration key: it is reported, with its place.
    let errors = match config::from_str(yaml, "m.yaml", None) {
        Err(LoadError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        errors,
        ["m.yaml:2:1: x-ap: unknown key \"x-ap\" (check its spelling and indentation)"]
    );
    // Anchors may live under any key a file already has, such as a school's `ssh:`.
    let yaml = yaml.replace("x-ap: &ap { preset: tasmota, qos: 0 }\n", "").replace(
        "mqtt: { host: 127.0.0.1 }",
        "mqtt: { host: 127.0.0.1 }\nssh: &ap { preset: tasmota, qos: 0 }",
    );
    // `ssh:` has no `qos`: the merged keys are checked like written ones.
    let all = match config::from_str(&yaml, "m.yaml", None) {
        Err(LoadError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert!(all.iter().any(|e| e.contains("ssh.qos: unknown key")), "{all:?}");
    let good = r#"
schedules:
  s: { rules: [] }
mqtt: { host: 127.0.0.1 }
schools:
  - id: s1
    schedule: s
    mqtt: &relay { preset: tasmota, qos: 0 }
    classrooms:
      - id: c1
        access_points:
          - id: c1-ap
            mqtt:
              <<: *relay
              topic: c1
              qos: 2
          - id: c1-ap2
            mqtt: { <<: *relay, topic: c2 }
"#;
    let c = config::from_str(good, "m.yaml", None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let qos = |id: &str| match &c.access_point(id).unwrap().driver {
        DriverConfig::Mqtt(m) => (m.qos, m.command_topic.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(qos("c1-ap"), (2, "cmnd/c1/POWER".to_owned()));
    assert_eq!(qos("c1-ap2"), (0, "cmnd/c2/POWER".to_owned()));
}

/// Unknown keys and type errors carry `file:line:col`, like syntax errors.
#[test]
fn unknown_keys_and_type_errors_have_positions() {
    let yaml = "schedules:\n  s: { rules: [] }\nschools:\n  - id: s1\n    schedule: s\n    classrooms:\n      - id: c1\n        acces_points: []\nreconciler:\n  max_parallel: many\n";
    let errors = match config::from_str(yaml, "u.yaml", None) {
        Err(LoadError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("u.yaml:10:17: "), "{errors:?}");
    let yaml = yaml.replace("max_parallel: many", "max_parallel: 4");
    let errors = match config::from_str(&yaml, "u.yaml", None) {
        Err(LoadError::Invalid { errors, .. }) => errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert!(
        errors.contains(
            &"u.yaml:8:9: schools[0].classrooms[0].acces_points: unknown key \"acces_points\" (check its spelling and indentation)"
                .to_owned()
        ),
        "{errors:?}"
    );
}

fn run_check(path: &Path) -> (i32, String, String) {
    let mut child = Command::new(common::borne_bin())
        .args(["check", "--config"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A bound so that a regression fails instead of hanging the suite.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("borne check still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// 100,000 levels of `[[[…` (41 s before) are refused with a clear error
/// naming the place; a file over 64 MiB is refused without being read.
#[test]
fn deep_and_huge_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.yaml");
    let n = 100_000;
    std::fs::write(&deep, format!("extra: {}{}\n", "[".repeat(n), "]".repeat(n))).unwrap();
    let (code, _, stderr) = run_check(&deep);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{}:1:", deep.display())) && stderr.contains("nested more than 64 levels"),
        "{stderr}"
    );

    let huge = dir.path().join("huge.yaml");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(65 * 1024 * 1024).unwrap();
    let (code, _, stderr) = run_check(&huge);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("64 MiB"), "{stderr}");
    // The same limits through an include.
    let main = write(dir.path(), "main.yaml", "include: [deep.yaml]\n");
    let errors = load_errors(&main).join("\n");
    assert!(errors.contains("nested more than 64 levels"), "{errors}");
}

/// A file saved with a UTF-8 byte-order mark (Windows editors) is read.
#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("config/example.yaml").unwrap();
    let path = write(dir.path(), "bom.yaml", &format!("\u{feff}{text}"));
    let (code, stdout, stderr) = run_check(&path);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
}

/// A reload meets the same limits: a 100,000-level file is refused at
/// once and the next valid file is adopted.
#[test]
fn reload_refuses_a_deep_file_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let good = format!(
        "demo: true\nlisten: 127.0.0.1:{port}\nstate_dir: {}\nschedules:\n  open: {{ default_mode: available, rules: [] }}\nschools:\n  - id: s1\n    schedule: open\n    classrooms:\n      - {{ id: c1, access_points: [ {{ id: c1-ap, sim: {{}} }} ] }}\nusers:\n  - {{ name: admin, role: admin, token: admin-token-123 }}\n",
        dir.path().join("state").display()
    );
    let path = write(dir.path(), "borne.yaml", &good);
    let p = common::DaemonProcess::start(&path, port);
    let n = 100_000;
    write(
        dir.path(),
        "borne.yaml",
        &format!("{good}extra: {}{}\n", "[".repeat(n), "]".repeat(n)),
    );
    p.signal("HUP");
    std::thread::sleep(Duration::from_millis(200));
    write(
        dir.path(),
        "borne.yaml",
        &good.replace(
            "      - { id: c1,",
            "      - { id: c2, access_points: [ { id: c2-ap, sim: {} } ] }\n      - { id: c1,",
        ),
    );
    p.signal("HUP");
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value = client
            .get(p.url("/api/v1/classrooms"))
            .bearer_auth("admin-token-123")
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["classrooms"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the valid file after the deep one was not adopted: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn plan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::borne_bin())
        .args(["plan", "--config", "config/example.yaml"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--school` and `--classroom` (repeatable) select classrooms in both
/// forms; unknown ids are refused; `--group` shows each schedule once
/// with the classrooms sharing it.
#[test]
fn plan_filters_and_groups() {
    let config = config::load(Path::new("config/example.yaml")).unwrap().config;
    let school = &config.schools[1];
    let other = &config.schools[0];
    let lone = other.classrooms[0].as_str();
    let (code, stdout, stderr) = plan(&[
        "--json",
        "--at",
        "2026-12-01T10:00:00+01:00",
        "--school",
        school.id.as_str(),
        "--classroom",
        lone,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let got: Vec<&str> = v["classrooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = config
        .classrooms
        .iter()
        .filter(|c| c.school == school.id || c.id.as_str() == lone)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(got, want);

    let (code, stdout, stderr) = plan(&[
        "--json",
        "--from",
        "2026-12-01T00:00:00+01:00",
        "--days",
        "7",
        "--classroom",
        lone,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    assert!(changes.iter().all(|c| c["classroom"] == lone), "{v}");

    let (code, _, stderr) = plan(&["--school", "nope", "--classroom", "pa-zz"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("unknown school \"nope\"") && stderr.contains("unknown classroom \"pa-zz\""),
        "{stderr}"
    );

    // Grouped: each classroom once, under its schedule; same modes as ungrouped.
    let (code, stdout, stderr) = plan(&["--json", "--at", "2026-12-01T10:00:00+01:00", "--group"]);
    assert_eq!(code, 0, "{stderr}");
    let g: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let (_, stdout, _) = plan(&["--json", "--at", "2026-12-01T10:00:00+01:00"]);
    let flat: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let groups = g["groups"].as_array().unwrap();
    let mut seen = Vec::new();
    for group in groups {
        for id in group["classrooms"].as_array().unwrap() {
            let row = flat["classrooms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == *id)
                .unwrap();
            assert_eq!(row["mode"], group["mode"], "{group}");
            assert_eq!(row["next_change"], group["next_change"], "{group}");
            let c = config.classroom(id.as_str().unwrap()).unwrap();
            assert_eq!(c.schedule_name, group["schedule"].as_str().unwrap());
            seen.push(id.as_str().unwrap().to_owned());
        }
    }
    // A schedule is distinct by its name and its calendars: a school's own
    // calendar (voltaire-local in the example) gives its classrooms their
    // own closed days.
    let distinct: std::collections::BTreeSet<(&str, &Vec<String>)> = config
        .classrooms
        .iter()
        .map(|c| (c.schedule_name.as_str(), &c.calendars))
        .collect();
    assert_eq!(groups.len(), distinct.len(), "{g}");
    seen.sort();
    want = config.classrooms.iter().map(|c| c.id.as_str()).collect();
    want.sort();
    assert_eq!(seen, want);
    let (code, stdout, _) = plan(&["--from", "2026-12-01T00:00:00+01:00", "--days", "7", "--group"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(&format!("{} schedule(s) from", distinct.len())),
        "{stdout}"
    );
}

/// `borne plan … | head -1`: the reader closes the pipe after one line;
/// the command ends quietly with success instead of panicking (exit 101).
#[test]
fn plan_into_a_closed_pipe_ends_quietly() {
    use std::io::BufRead as _;
    let mut child = Command::new(common::borne_bin())
        .args([
            "plan",
            "--config",
            "config/example.yaml",
            "--from",
            "2026-09-01T00:00:00+02:00",
        ])
        .args(["--days", "400"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
        // Dropping the reader closes the pipe's only read end, as `head` does.
    }
    assert!(first.contains("change(s) from"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
