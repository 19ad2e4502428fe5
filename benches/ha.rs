//! High availability (issue 17): two `borne` release processes on one
//! throwaway PostgreSQL cluster, 10,000 classrooms of simulated APs.
//!
//! Measures:
//! - failover time: `kill -9` of the leader until the other instance says
//!   it leads (`GET /api/v1/cluster`), 10 times (the killed one restarted
//!   as a follower in between): median and max;
//! - request latency (an override, HTTP round trip, serial) through
//!   PostgreSQL (sent to the follower) against the SQLite store on the
//!   same machine: p50 and p99;
//! - resident memory (VmRSS) of each instance at 10,000 classrooms, and of
//!   a lone instance on SQLite for comparison.
//!
//! PostgreSQL runs with `fsync` and `full_page_writes` on (the test
//! clusters turn them off), so that a commit is as durable as SQLite's
//! `synchronous=FULL` and the latencies compare.
//!
//! Run: `cargo bench --bench ha` (with the release binary Cargo builds for it;
//! needs PostgreSQL, skipped with a note otherwise). Prints summary lines
//! starting with `ha`, and the load average before and after.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use borne_test_support::http::get;
use borne_test_support::postgres::PgCluster;
use borne_test_support::wait::free_port;

const CLASSROOMS: usize = 10_000;
const TOKEN: &str = "bench-admin-token";
const ROUNDS: usize = 10;
const REQUESTS: usize = 500;

fn rss_mb(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(",")
}

fn config(dir: &Path, database: Option<&str>) -> PathBuf {
    let mut yaml = format!(
        "demo: true\ntimezone: UTC\nstate_dir: {}\nreconciler: {{ max_parallel: 64, resync_seconds: 3600 }}\n\
         failsafe: {{ lease_minutes: 0 }}\nlimits: {{ writes_per_minute: 100000 }}\n\
         schedules:\n  open: {{ default_mode: available, rules: [] }}\n\
         users:\n  - {{ name: it, role: admin, token: {TOKEN} }}\n",
        dir.join("state").display()
    );
    if let Some(url) = database {
        yaml.push_str(&format!("database: {{ url: \"{url}\", tls: disable }}\n"));
    }
    yaml.push_str("schools:\n");
    for s in 0..CLASSROOMS / 10 {
        yaml.push_str(&format!("  - id: s{s}\n    schedule: open\n    classrooms:\n"));
        for c in 0..10 {
            let id = s * 10 + c;
            yaml.push_str(&format!(
                "      - {{ id: c{id}, access_points: [{{ id: ap{id}, sim: {{}} }}] }}\n"
            ));
        }
    }
    let path = dir.join(if database.is_some() { "pg.yaml" } else { "sqlite.yaml" });
    std::fs::write(&path, yaml).unwrap();
    path
}

struct Instance {
    child: Child,
    port: u16,
}

impl Instance {
    fn start(bin: &Path, config: &Path, id: &str, port: u16) -> Instance {
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--instance-id", id])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !matches!(get(port, "/readyz", ""), Some((200, _))) {
            assert!(Instant::now() < deadline, "{id} not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        Instance { child, port }
    }

    fn role(&self) -> Option<String> {
        let (_, body) = get(self.port, "/api/v1/cluster", TOKEN)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let me = v["self"].as_str()?.to_owned();
        v["instances"].as_array()?.iter().find(|i| i["id"] == me.as_str())?["role"]
            .as_str()
            .map(str::to_owned)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_role(i: &Instance, role: &str) -> Duration {
    let t = Instant::now();
    while i.role().as_deref() != Some(role) {
        assert!(t.elapsed() < Duration::from_secs(120), "no {role}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Serial overrides to `port`: (p50, p99) in ms.
fn latency(port: u16) -> (f64, f64) {
    let client = reqwest::blocking::Client::new();
    let mut ms = Vec::with_capacity(REQUESTS);
    for k in 0..REQUESTS {
        let wifi = if k % 2 == 0 { "on" } else { "off" };
        let t = Instant::now();
        let r = client
            .put(format!(
                "http://127.0.0.1:{port}/api/v1/classrooms/c{}/override",
                k % 100
            ))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"wifi": wifi, "reason": format!("bench {k}")}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(pg) = PgCluster::start_with(&[("fsync", "on"), ("full_page_writes", "on")], |_| {}) else {
        return;
    };
    // Cargo builds the binary for benches with the bench profile (release
    // settings); building it again from here would run with this process's
    // Cargo environment and rebuild `ring` and everything above it.
    let bin = Path::new(env!("CARGO_BIN_EXE_borne"));
    let load_before = loadavg();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.create_database("borne_bench");
    let pg_config = config(dir.path(), Some(&url));

    let ports = [free_port(), free_port()];
    let ids = ["a", "b"];
    let mut instances: Vec<Option<Instance>> = vec![Some(Instance::start(bin, &pg_config, ids[0], ports[0]))];
    wait_role(instances[0].as_ref().unwrap(), "leader");
    instances.push(Some(Instance::start(bin, &pg_config, ids[1], ports[1])));
    wait_role(instances[1].as_ref().unwrap(), "follower");
    std::thread::sleep(Duration::from_secs(3));
    let rss: Vec<f64> = instances
        .iter()
        .map(|i| rss_mb(i.as_ref().unwrap().child.id()))
        .collect();

    let (pg_p50, pg_p99) = latency(ports[1]);

    let mut failovers = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let leader = (0..2)
            .find(|&k| instances[k].as_ref().unwrap().role().as_deref() == Some("leader"))
            .expect("a leader");
        let other = 1 - leader;
        let t = Instant::now();
        instances[leader].as_mut().unwrap().kill();
        wait_role(instances[other].as_ref().unwrap(), "leader");
        failovers.push(t.elapsed().as_secs_f64() * 1000.0);
        instances[leader] = None;
        let back = Instance::start(bin, &pg_config, ids[leader], ports[leader]);
        wait_role(&back, "follower");
        instances[leader] = Some(back);
    }
    drop(instances);
    failovers.sort_by(f64::total_cmp);

    let sqlite_config = config(dir.path(), None);
    let lone = Instance::start(bin, &sqlite_config, "lone", free_port());
    let (sq_p50, sq_p99) = latency(lone.port);
    let sqlite_rss = rss_mb(lone.child.id());
    drop(lone);

    println!(
        "ha failover classrooms={CLASSROOMS} rounds={ROUNDS} median_ms={:.0} max_ms={:.0}",
        percentile(&failovers, 0.5),
        failovers.last().copied().unwrap_or(0.0)
    );
    println!(
        "ha latency n={REQUESTS} postgres_follower_p50_ms={pg_p50:.2} postgres_follower_p99_ms={pg_p99:.2} sqlite_p50_ms={sq_p50:.2} sqlite_p99_ms={sq_p99:.2}"
    );
    println!(
        "ha memory classrooms={CLASSROOMS} leader_rss_mb={:.1} follower_rss_mb={:.1} sqlite_lone_rss_mb={sqlite_rss:.1}",
        rss[0], rss[1]
    );
    println!("ha load_average before={load_before} after={}", loadavg());
}
