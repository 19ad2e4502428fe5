//! Footprint at city scale: 10,000 classrooms / 20,000 access points
//! (simulated, so the figures are borne's own cost), the release binary run
//! as a real process.
//!
//! Measures: time from exec to `/readyz` answering 200; resident memory
//! (VmRSS) idle and its peak (VmHWM); CPU while idle; the 18:00-style
//! fan-out (one schedule change switching every AP) and the CPU it takes.
//!
//! Run: `cargo bench --bench footprint` (builds the release binary first).
//! Prints one summary line starting with `footprint`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use borne_test_support::http::get;
use chrono::{Timelike, Utc};

const CLASSROOMS: usize = 10_000;
const APS_PER_CLASSROOM: usize = 2;

fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of the process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// APs seen in `state`, from the cheap summary route (polling the full
/// access point list would itself inflate the memory being measured).
fn count_observed(port: u16, state: &str) -> usize {
    let Some((200, body)) = get(port, "/api/v1/summary", "bench-admin-token") else {
        return 0;
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v[format!("observed_{state}")].as_u64().unwrap_or(0) as usize
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "borne"])
        .status()
        .unwrap();
    assert!(status.success());
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/borne");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    // Every AP starts on (a rule set `on` a minute ago), and all are locked
    // by one rule that fires a little after start: the fan-out. Times are
    // UTC, to the second; daily rules, so yesterday's lock is older than
    // today's `on`.
    let on_at = Utc::now() - chrono::Duration::seconds(60);
    let lock_at = Utc::now() + chrono::Duration::seconds(40);
    let mut yaml = format!(
        "demo: true\ntimezone: UTC\nlisten: 127.0.0.1:{port}\nstate_dir: {}\nreconciler: {{ max_parallel: 64, resync_seconds: 3600 }}\n\
         schedules:\n  city:\n    default_mode: locked\n    rules:\n      - {{ at: \"{} {} {} * * *\", mode: on }}\n      - {{ at: \"{} {} {} * * *\", mode: locked }}\n\
         users:\n  - {{ name: admin, role: admin, token: bench-admin-token }}\nschools:\n",
        dir.path().join("state").display(),
        on_at.second(),
        on_at.minute(),
        on_at.hour(),
        lock_at.second(),
        lock_at.minute(),
        lock_at.hour()
    );
    for s in 0..CLASSROOMS / 20 {
        yaml.push_str(&format!("  - id: school-{s}\n    schedule: city\n    classrooms:\n"));
        for c in 0..20 {
            yaml.push_str(&format!("      - id: c-{s}-{c}\n        access_points:\n"));
            for a in 0..APS_PER_CLASSROOM {
                yaml.push_str(&format!("          - {{ id: ap-{s}-{c}-{a}, sim: {{}} }}\n"));
            }
        }
    }
    let path = dir.path().join("borne.yaml");
    std::fs::write(&path, yaml).unwrap();
    let aps = CLASSROOMS * APS_PER_CLASSROOM;

    let started = Instant::now();
    let mut child = Command::new(&bin)
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    while get(port, "/readyz", "").map(|(s, _)| s) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(60), "not ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    let ready = started.elapsed();
    // Start-up brings every AP on (it first reads each one, then switches it).
    while count_observed(port, "on") < aps {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "start-up fan-out did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let startup_converged = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let hz = ticks_per_second();
    let idle_window = Duration::from_secs(10);
    let t0 = cpu_ticks(pid);
    std::thread::sleep(idle_window);
    let idle_cpu = (cpu_ticks(pid) - t0) as f64 / hz / idle_window.as_secs_f64() * 100.0;
    let rss_idle = proc_status(pid, "VmRSS:");

    // Wait for the lock instant, then time until every AP is off.
    while Utc::now() < lock_at {
        std::thread::sleep(Duration::from_millis(5));
    }
    let fan_start = Instant::now();
    let t0 = cpu_ticks(pid);
    while count_observed(port, "off") < aps {
        assert!(fan_start.elapsed() < Duration::from_secs(120), "fan-out did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let polled = fan_start.elapsed();
    let fan_cpu = (cpu_ticks(pid) - t0) as f64 / hz / polled.as_secs_f64().max(0.01) * 100.0;
    // The daemon's own record: the newest audit line is the last switch,
    // stamped to the millisecond; polling alone would add its own delay.
    let (_, body) = get(port, "/api/v1/audit?limit=1", "bench-admin-token").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let last: chrono::DateTime<Utc> = v["entries"][0]["at"].as_str().unwrap().parse().unwrap();
    let fanout = (last - lock_at).to_std().unwrap_or_default();
    let rss_peak = proc_status(pid, "VmHWM:");
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();
    println!(
        "footprint classrooms={CLASSROOMS} aps={aps} ready_ms={} startup_converged_ms={} rss_idle_mb={:.1} rss_peak_mb={:.1} cpu_idle_pct={idle_cpu:.2} fanout_ms={} cpu_fanout_pct={fan_cpu:.0}",
        ready.as_millis(),
        startup_converged.as_millis(),
        rss_idle as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        fanout.as_millis(),
    );
}
