//! Fault injection: crashes, a full or read-only disk, clock jumps. Each
//! test states what it does and checks that no acknowledged request is lost
//! and that every AP converges to the desired state of now.

use borne_test_support::daemon as common;
use borne_test_support::peers::require_peer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use borne::policy::Wifi;
use common::*;
use serde_json::{Value, json};

/// Whether a test that needs root's `mount` can run here; with
/// `BORNE_REQUIRE_PEERS=1` (CI) it must.
fn can_mount(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::create_dir_all(&probe).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&probe)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = Command::new("umount").arg(&probe).status();
        return true;
    }
    require_peer("mount(8) of a tmpfs (run as root)", false)
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success());
        Tmpfs(at.to_owned())
    }

    fn remount(&self, mode: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const CONFIG: &str = concat!(
    borne_test_support::yaml_head!(),
    r#"
reconciler: { backoff_initial_seconds: 1, backoff_max_seconds: 1 }
# The kill -9 loop writes as fast as it can as one user: the per-user
# write limit would answer 429 and leave too few acknowledged requests.
limits: { writes_per_minute: 100000 }
schedules:
  day:
    default_mode: locked
    rules:
      - { at: "30 8 * * *", mode: available }
      - { at: "0 18 * * *", mode: locked }
      - { at: "0 19 * * *", mode: on }
      - { at: "30 19 * * *", mode: locked }
schools:
  - id: s1
    schedule: day
    classrooms:
      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }
      - { id: c2, access_points: [ { id: c2-ap1, sim: {} } ] }
users:
  - { name: admin, role: admin, token: admin-token-123 }
  - { name: teacher1, role: teacher, classrooms: [c1, c2], token: teacher-token-123 }
"#
);

/// The state directory fills up: requests are refused with 503 and change
/// nothing; when space is back, service resumes without a restart. Then
/// the directory is found read-only at start: a clear error, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_or_read_only_state_dir_refuses_with_503_and_recovers() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    if !can_mount(dir.path()) {
        return;
    }
    let fs = Tmpfs::mount(&dir.path().join("state"), "2m");
    let d = TestDaemon::start_in(dir.clone(), CONFIG, ManualClock::at("2026-12-01T09:00:00+01:00")).await;
    assert_eq!(d.wifi("teacher-token-123", "c1", json!({"wifi": "on"})).await.0, 200);

    // Disk full: fill the tmpfs.
    let filler = fs.0.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=100"])
        .arg(format!("of={}", filler.display()))
        .output();
    let (status, body) = d.wifi("teacher-token-123", "c2", json!({"wifi": "on"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    let (_, c2) = d.get("teacher-token-123", "/api/v1/classrooms/c2").await;
    assert_eq!(c2["reason"], "schedule", "a refused request changed nothing: {c2}");
    std::fs::remove_file(&filler).unwrap();
    let (status, _) = d.wifi("teacher-token-123", "c2", json!({"wifi": "on"})).await;
    assert_eq!(status, 200, "recovers when space is back");

    let (_, c1) = d.get("teacher-token-123", "/api/v1/classrooms/c1").await;
    assert_eq!(c1["wifi"], "on", "the request acknowledged before the fault holds");
    let dir = d.stop().await;

    // Read-only: a file system cannot be remounted read-only under open
    // writers (EBUSY), so this is the restart case: a state directory found
    // read-only is a clear start-up error naming the database, never a
    // silent reset or a daemon that acknowledges what it cannot keep.
    fs.remount("ro");
    let config = load_config(CONFIG, dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let options = borne::daemon::Options {
        listener: Some(listener),
        ..Default::default()
    };
    let err = match borne::daemon::start(config, options, tokio_util::sync::CancellationToken::new()).await {
        Ok(_) => panic!("started on a read-only state directory"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("borne.db"), "{err}");
    fs.remount("rw");
    let d = TestDaemon::start_in(dir.clone(), CONFIG, ManualClock::at("2026-12-01T09:05:00+01:00")).await;
    let (_, c1) = d.get("teacher-token-123", "/api/v1/classrooms/c1").await;
    assert_eq!(c1["wifi"], "on", "nothing lost: {c1}");
    d.stop().await;
}

fn mode_changes(audit: &Value) -> Vec<String> {
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "mode.change")
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect()
}

/// The clock jumps forward 2 hours (17:59 → 19:59, across a lock, an `on`
/// and a lock again), then back 1 hour: the APs end in the state of now,
/// and no transition is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_jumps_miss_nothing_and_repeat_nothing() {
    let clock = ManualClock::at("2026-12-01T17:59:00+01:00");
    let d = TestDaemon::start(CONFIG, clock.clone()).await;
    assert_eq!(d.wifi("teacher-token-123", "c1", json!({"wifi": "on"})).await.0, 200);
    d.wait_sim("c1-ap1", Wifi::On).await;

    clock.set("2026-12-01T19:59:00+01:00");
    d.core.poke();
    d.wait_sim("c1-ap1", Wifi::Off).await;
    let (_, s) = d.get("admin-token-123", "/api/v1/classrooms/c1").await;
    assert_eq!(
        (s["mode"].as_str(), s["reason"].as_str()),
        (Some("locked"), Some("locked"))
    );

    clock.set("2026-12-01T18:59:00+01:00");
    d.core.poke();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, s) = d.get("admin-token-123", "/api/v1/classrooms/c1").await;
    assert_eq!(s["mode"], "locked", "time used for decisions never goes back: {s}");
    assert_eq!(d.sim.applied("c1-ap1"), 2, "on, then off: nothing replayed");

    // The real clock catches up and goes on: the next morning unlocks once.
    clock.set("2026-12-02T08:30:00+01:00");
    d.core.poke();
    let core = d.core.clone();
    wait_for("available", || {
        let c = core.config();
        core.desired(c.classroom("c1").unwrap(), core.now()).mode == borne::schedule::Mode::Available
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, audit) = d.get("admin-token-123", "/api/v1/audit?classroom=c1").await;
    assert_eq!(
        mode_changes(&audit),
        ["locked -> available", "available -> locked"],
        "{audit}"
    );
    assert_eq!(d.sim.state("c1-ap1"), Some(Wifi::Off));
}

fn request(method: &str, url: &str, token: &str, body: &str) -> Option<(u16, Value)> {
    borne_test_support::api_call::call(method, url, token, body, Duration::from_secs(5))
}

/// A classroom's status as the admin reads it from daemon `p`.
fn classroom_status(p: &DaemonProcess, classroom: &str) -> Value {
    let url = p.url(&format!("/api/v1/classrooms/{classroom}"));
    request("GET", &url, "admin-token-123", "")
        .unwrap_or_else(|| panic!("GET {url}"))
        .1
}

/// `kill -9` of the daemon 20 times in the middle of a stream of teacher
/// requests and overrides. After each restart: the last acknowledged
/// override of each classroom (or a later one that was being sent) is in
/// force, every acknowledged request has its audit line, and the database
/// passes `PRAGMA integrity_check`.
#[test]
fn kill_9_in_a_loop_loses_no_acknowledged_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let yaml = CONFIG
        .replace("STATE_DIR", &dir.path().join("state").display().to_string())
        .replace("demo: true", &format!("demo: true\nlisten: 127.0.0.1:{port}"))
        .replace("default_mode: locked", "default_mode: available")
        .replace("      - { at: \"30 8 * * *\", mode: available }\n", "")
        .replace("      - { at: \"0 18 * * *\", mode: locked }\n", "")
        .replace("      - { at: \"0 19 * * *\", mode: on }\n", "")
        .replace("      - { at: \"30 19 * * *\", mode: locked }\n", "")
        .replace("rules:\n", "rules: []\n");
    let path = dir.path().join("borne.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let mut acked_total: Vec<String> = Vec::new();
    // For each classroom: (last acknowledged reason, reasons sent after it).
    let mut expected: HashMap<&str, (Option<String>, Vec<String>)> = HashMap::new();
    for round in 0..20 {
        let mut p = DaemonProcess::start(&path, port);
        // Everything acknowledged before this restart is in force.
        for (classroom, (last, later)) in &expected {
            let s = classroom_status(&p, classroom);
            let reason = s["override"]["reason"].as_str().map(str::to_owned);
            let ok = reason == *last || reason.as_ref().is_some_and(|r| later.contains(r));
            assert!(
                ok,
                "round {round}: {classroom} has {reason:?}, last acknowledged {last:?}, later {later:?}"
            );
        }
        let sent: Arc<Mutex<Vec<(String, String, bool)>>> = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let sent = sent.clone();
            let url = p.url("");
            std::thread::spawn(move || {
                for k in 0..200 {
                    let classroom = if k % 2 == 0 { "c1" } else { "c2" };
                    let reason = format!("r{round}-{k}");
                    sent.lock().unwrap().push((classroom.to_owned(), reason.clone(), false));
                    let body = json!({"wifi": if k % 3 == 0 { "on" } else { "off" }, "reason": reason}).to_string();
                    match request(
                        "PUT",
                        &format!("{url}/api/v1/classrooms/{classroom}/override"),
                        "admin-token-123",
                        &body,
                    ) {
                        Some((200, _)) => sent.lock().unwrap().last_mut().unwrap().2 = true,
                        Some((status, v)) => panic!("unexpected {status}: {v}"),
                        None => return, // the daemon died under us
                    }
                    // Teacher requests in between: refused (overridden) but audited.
                    let _ = request(
                        "POST",
                        &format!("{url}/api/v1/classrooms/{classroom}/wifi"),
                        "teacher-token-123",
                        r#"{"wifi":"on"}"#,
                    );
                }
            })
        };
        // Kill in the middle of the stream: once this round has at least
        // one acknowledged request (a loaded machine may take longer than
        // the jitter to answer the first), then after a varying delay.
        let deadline = std::time::Instant::now() + TIMEOUT;
        while !sent.lock().unwrap().iter().any(|(_, _, acked)| *acked) && !writer.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no request acknowledged"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(30 + (round * 37 % 150) as u64));
        p.signal("KILL");
        p.wait_exit(TIMEOUT).expect("killed");
        writer.join().unwrap();
        for (classroom, reason, acked) in sent.lock().unwrap().iter() {
            let entry = expected.entry(if classroom == "c1" { "c1" } else { "c2" }).or_default();
            if *acked {
                *entry = (Some(reason.clone()), Vec::new());
                acked_total.push(reason.clone());
            } else {
                entry.1.push(reason.clone());
            }
        }
        drop(p);
        let db = rusqlite::Connection::open(dir.path().join("state/borne.db")).unwrap();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok", "round {round}");
    }
    assert!(
        acked_total.len() >= 20,
        "too few requests acknowledged to mean anything: {}",
        acked_total.len()
    );
    // No gap in the audit log for acknowledged requests.
    let db = rusqlite::Connection::open(dir.path().join("state/borne.db")).unwrap();
    let mut q = db
        .prepare("SELECT detail FROM audit WHERE action = 'override.set' AND result = 'accepted'")
        .unwrap();
    let details: Vec<String> = q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    for reason in &acked_total {
        assert!(
            details.iter().any(|d| d.ends_with(&format!(": {reason}"))),
            "no audit line for acknowledged {reason}"
        );
    }
    // And the APs converge to the last state after a final restart.
    let p = DaemonProcess::start(&path, port);
    let deadline = std::time::Instant::now() + TIMEOUT;
    for classroom in ["c1", "c2"] {
        loop {
            let s = classroom_status(&p, classroom);
            if s["access_points"][0]["observed"] == s["wifi"] {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{classroom} did not converge: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
