//! Teacher request latency, end to end: `POST /api/v1/classrooms/{id}/wifi`
//! → the MQTT command seen by a subscriber; and `GET /api/v1/classrooms`
//! throughput.
//!
//! Setup: the release binary (`cargo build --release --bin borne`, run
//! here) as a real process, 1,000 classrooms with one Tasmota MQTT AP each
//! (schedule `available` all day, so every teacher request switches), plain
//! demo tokens, a local Mosquitto (`set_tcp_nodelay true`), borne's state
//! directory on the normal disk under `target/tmp` (so every acknowledged
//! request includes its durable SQLite write, WAL + `synchronous=FULL`),
//! borne's logs at its default level (`info`) to a file. One
//! `mosquitto_sub -q 1 -t 'cmnd/+/POWER' -F '%U %t %p'` process stands for
//! the devices and timestamps each command (CLOCK_REALTIME, ns).
//!
//! Latency = command arrival at the subscriber − the request's intended send
//! time (open loop: the schedule, not the previous answer, decides when a
//! request leaves, so a slow answer cannot hide the requests queued behind
//! it). Requests rotate over the classrooms and alternate on/off per
//! classroom, so each one produces exactly one command.
//! - `rate=serial`: one request at a time; the next leaves once the previous
//!   one's command has arrived.
//! - `rate=50`, `rate=500`: open loop, 10 s each.
//!
//! Throughput of `GET /api/v1/classrooms` with N keep-alive connections for
//! 5 s, as a teacher who sees one classroom (the teacher page) and as an
//! admin who sees all 1,000 (the dashboard), with a Rust client (reqwest)
//! and, when installed, `wrk`; once before any teacher request
//! (`sessions=0`) and once after, when every classroom has a teacher
//! session (`sessions=1000`): each session costs a schedule evaluation.
//!
//! Also printed: the disk's fsync latency in the state directory (the floor
//! of every acknowledged request), and borne's CPU use in each phase.
//!
//! Run: `cargo bench --bench latency`. Prints:
//!
//! ```text
//! disk-fsync n=200 p50_ms=… p99_ms=…
//! classrooms-get tool=reqwest token=teacher-1 sessions=0 conns=16 secs=5 rps=… p50_ms=… p99_ms=… errors=0 borne_cpu_pct=…
//! classrooms-get tool=wrk token=admin-1000 sessions=0 conns=16 secs=5 rps=… errors=0 borne_cpu_pct=…
//! latency rate=serial n=1000 p50_ms=… p99_ms=… max_ms=… http_p50_ms=… http_p99_ms=… client_late_p50_ms=… client_late_p99_ms=… errors=0 borne_cpu_pct=…
//! latency rate=50 n=500 …
//! latency rate=500 n=5000 …
//! classrooms-get … sessions=1000 …
//! ```
//!
//! Without `--bench` (`cargo test --benches`) it runs a short smoke version.
//! Without mosquitto it skips (says so on stderr; fails instead
//! with `BORNE_REQUIRE_PEERS=1`). Only 127.0.0.1 is used; borne, mosquitto and
//! the subscriber are killed by PID when their guards drop, also on panic.

use borne_test_support::http::get;
use borne_test_support::http_load::get_load;
use borne_test_support::mqtt as mqtt_support;
use mqtt_support::clients::{Arrival, PlainMosquitto, Subscriber};

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CLASSROOMS: usize = 1_000;
const PER_SCHOOL: usize = 20;
const SERIAL_N: usize = 1_000;
const RATES: [u32; 2] = [50, 500];
const RATE_SECONDS: u64 = 10;
const GET_CONNS: usize = 16;
const GET_SECONDS: u64 = 5;
/// Longest any phase may take before the bench gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
const TEACHER: &str = "bench-teacher-token";
const TEACHER_ONE: &str = "bench-teacher-one-token";
const ADMIN: &str = "bench-admin-token";

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU time (user + system) of a process, from /proc, in seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<u64>().ok()).sum();
    ticks as f64 / ticks_per_second()
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

// ------------------------------------------------------------------ processes

/// A child process killed by PID when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peers() -> Option<PathBuf> {
    mqtt_support::require_clients()
}

// ------------------------------------------------------------------ borne

fn config_yaml(http_port: u16, mqtt_port: u16, state_dir: &Path) -> String {
    let schools = CLASSROOMS.div_ceil(PER_SCHOOL);
    let school_list: Vec<String> = (0..schools).map(|s| format!("school-{s}")).collect();
    let mut y = format!(
        "demo: true\ntimezone: Europe/Paris\nlisten: 127.0.0.1:{http_port}\nstate_dir: {}\n\
         reconciler: {{ resync_seconds: 3600, min_switch_interval_seconds: 0 }}\n\
         limits: {{ writes_per_minute: 100000 }}\n\
         mqtt: {{ host: 127.0.0.1, port: {mqtt_port}, client_id: borne-bench, keep_alive_seconds: 30 }}\n\
         schedules:\n  open: {{ default_mode: available, rules: [] }}\n\
         users:\n\
         \x20 - {{ name: teacher, role: teacher, schools: [{}], token: {TEACHER} }}\n\
         \x20 - {{ name: teacher-one, role: teacher, classrooms: [c-0], token: {TEACHER_ONE} }}\n\
         \x20 - {{ name: admin, role: admin, token: {ADMIN} }}\n\
         schools:\n",
        state_dir.display(),
        school_list.join(", "),
    );
    for (s, school) in school_list.iter().enumerate() {
        y.push_str(&format!("  - id: {school}\n    schedule: open\n    classrooms:\n"));
        for c in (s * PER_SCHOOL)..((s + 1) * PER_SCHOOL).min(CLASSROOMS) {
            y.push_str(&format!(
                "      - id: c-{c}\n        access_points:\n          - {{ id: ap-{c}, mqtt: {{ preset: tasmota, topic: ap-{c} }} }}\n"
            ));
        }
    }
    y
}

// ------------------------------------------------------------------ requests

/// Which classroom and state the k-th request asks for.
struct Plan {
    /// Per classroom: the state last asked (all start off).
    on: Vec<bool>,
    next: usize,
}

impl Plan {
    fn next(&mut self) -> (usize, bool) {
        let c = self.next % CLASSROOMS;
        self.next += 1;
        self.on[c] = !self.on[c];
        (c, self.on[c])
    }
}

/// One request as sent.
struct Sent {
    classroom: usize,
    on: bool,
    /// Intended send time (unix seconds).
    intended: f64,
    /// Time to the HTTP answer, ms (NaN if none).
    http_ms: f64,
    /// How late the client started it (open loop: timer granularity), ms.
    late_ms: f64,
    ok: bool,
}

async fn post(client: &reqwest::Client, port: u16, classroom: usize, on: bool) -> bool {
    let body = if on { r#"{"wifi":"on"}"# } else { r#"{"wifi":"off"}"# };
    let sent = client
        .post(format!("http://127.0.0.1:{port}/api/v1/classrooms/c-{classroom}/wifi"))
        .bearer_auth(TEACHER)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) => {
            let ok = r.status().as_u16() == 200;
            let _ = r.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

/// Matches each request with the first command on its AP's topic and
/// payload that arrived after its intended send time (and after the command
/// matched to the previous request on that topic); returns latencies in ms
/// (intended send → arrival) and misses.
fn match_commands(sent: &[Sent], arrivals: &[Arrival]) -> (Vec<f64>, usize) {
    let mut by_topic: HashMap<&str, Vec<&Arrival>> = HashMap::new();
    for a in arrivals {
        by_topic.entry(a.topic.as_str()).or_default().push(a);
    }
    for v in by_topic.values_mut() {
        v.sort_by(|a, b| a.at.total_cmp(&b.at));
    }
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut lat = Vec::new();
    let mut missing = 0;
    for s in sent.iter().filter(|s| s.ok) {
        let topic = format!("cmnd/ap-{}/POWER", s.classroom);
        let payload = if s.on { "ON" } else { "OFF" };
        let start = used.get(&topic).copied().unwrap_or(0);
        let found = by_topic.get(topic.as_str()).and_then(|v| {
            v.iter()
                .enumerate()
                .skip(start)
                .find(|(_, a)| a.payload == payload && a.at >= s.intended)
        });
        match found {
            Some((i, a)) => {
                used.insert(topic, i + 1);
                lat.push((a.at - s.intended) * 1000.0);
            }
            None => missing += 1,
        }
    }
    (lat, missing)
}

fn print_latency(rate: &str, sent: &[Sent], arrivals: &[Arrival], cpu_pct: f64) {
    let (lat, missing) = match_commands(sent, arrivals);
    let lat = sorted(lat);
    let http = sorted(sent.iter().filter(|s| s.ok).map(|s| s.http_ms).collect());
    let late = sorted(sent.iter().map(|s| s.late_ms).collect());
    let errors = sent.iter().filter(|s| !s.ok).count() + missing;
    println!(
        "latency rate={rate} n={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} http_p50_ms={:.2} http_p99_ms={:.2} \
         client_late_p50_ms={:.2} client_late_p99_ms={:.2} errors={errors} borne_cpu_pct={cpu_pct:.0}",
        sent.len(),
        pct(&lat, 50.0),
        pct(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN),
        pct(&http, 50.0),
        pct(&http, 99.0),
        pct(&late, 50.0),
        pct(&late, 99.0),
    );
}

/// One request at a time: send, wait for the answer and the command.
async fn serial(client: &reqwest::Client, port: u16, sub: &Subscriber, plan: &mut Plan, n: usize) -> Vec<Sent> {
    let mut sent = Vec::with_capacity(n);
    for _ in 0..n {
        let (classroom, on) = plan.next();
        let before = sub.total();
        let intended = unix_now();
        let t = Instant::now();
        let ok = post(client, port, classroom, on).await;
        let http_ms = t.elapsed().as_secs_f64() * 1000.0;
        sent.push(Sent {
            classroom,
            on,
            intended,
            http_ms,
            late_ms: 0.0,
            ok,
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while ok && sub.total() <= before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    sent
}

/// Open loop at `rate` requests per second for `n` requests.
async fn open_loop(client: &reqwest::Client, port: u16, plan: &mut Plan, rate: u32, n: usize) -> Vec<Sent> {
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let start_unix = unix_now() + 0.05;
    let mut tasks = Vec::with_capacity(n);
    for k in 0..n {
        let (classroom, on) = plan.next();
        let offset = Duration::from_secs_f64(k as f64 / f64::from(rate));
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start + offset).await;
            let late_ms = (tokio::time::Instant::now() - (start + offset)).as_secs_f64() * 1000.0;
            let ok = post(&client, port, classroom, on).await;
            // From the intended instant: a late start counts against us.
            let http_ms = (tokio::time::Instant::now() - (start + offset)).as_secs_f64() * 1000.0;
            Sent {
                classroom,
                on,
                intended: start_unix + offset.as_secs_f64(),
                http_ms,
                late_ms,
                ok,
            }
        }));
    }
    let mut sent = Vec::with_capacity(n);
    for t in tasks {
        sent.push(t.await.expect("request task"));
    }
    sent
}

/// `wrk` on the same URL, if installed: (rps, non-2xx + socket errors).
fn wrk(port: u16, token: &str, conns: usize, secs: u64) -> Option<(f64, u64)> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://127.0.0.1:{port}/api/v1/classrooms"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // "Non-2xx or 3xx responses: 3", "Socket errors: connect 0, read 1, ...":
    // the numbers after the colon.
    let number_after = |key: &str| -> u64 {
        text.lines()
            .filter(|l| l.trim_start().starts_with(key))
            .filter_map(|l| l.split_once(':'))
            .flat_map(|(_, v)| {
                v.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
            })
            .sum()
    };
    Some((rps, number_after("Non-2xx") + number_after("Socket errors")))
}

/// fsync of a small file in `dir`, `n` times: sorted ms.
fn fsync_latency(dir: &Path, n: usize) -> Vec<f64> {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        f.write_all(format!("{i}\n").as_bytes()).expect("write probe");
        let t = Instant::now();
        f.sync_all().expect("fsync probe");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = std::fs::remove_file(&path);
    sorted(v)
}

/// `GET /api/v1/classrooms` as a one-classroom teacher and as the admin,
/// with reqwest and (if installed) wrk; `sessions`: classrooms with a
/// teacher session (a label).
fn get_phase(
    rt: &tokio::runtime::Runtime,
    port: u16,
    sessions: usize,
    secs: u64,
    tick: &dyn Fn(&mut dyn FnMut()) -> f64,
) {
    for (label, token) in [("teacher-1", TEACHER_ONE), ("admin-1000", ADMIN)] {
        let mut result = (0.0, Vec::new(), 0);
        let cpu = tick(&mut || {
            result = rt.block_on(get_load(
                &format!("http://127.0.0.1:{port}/api/v1/classrooms"),
                token,
                GET_CONNS,
                secs,
            ))
        });
        let (rps, lat, errors) = result;
        println!(
            "classrooms-get tool=reqwest token={label} sessions={sessions} conns={GET_CONNS} secs={secs} rps={rps:.0} \
             p50_ms={:.2} p99_ms={:.2} errors={errors} borne_cpu_pct={cpu:.0}",
            pct(&lat, 50.0),
            pct(&lat, 99.0)
        );
        let mut w = None;
        let cpu = tick(&mut || w = wrk(port, token, GET_CONNS, secs));
        match w {
            Some((rps, errors)) => println!(
                "classrooms-get tool=wrk token={label} sessions={sessions} conns={GET_CONNS} secs={secs} rps={rps:.0} \
                 errors={errors} borne_cpu_pct={cpu:.0}"
            ),
            None => println!("classrooms-get tool=wrk skipped: wrk not installed"),
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let Some(mosquitto) = peers() else { return };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "borne"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --release --bin borne failed");
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/borne");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir on the normal disk");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");

    let fsync = fsync_latency(&state, if full { 200 } else { 20 });
    println!(
        "disk-fsync n={} p50_ms={:.2} p99_ms={:.2}",
        fsync.len(),
        pct(&fsync, 50.0),
        pct(&fsync, 99.0)
    );

    let broker = PlainMosquitto::start(&mosquitto, "max_queued_messages 100000\n");
    let mqtt_port = broker.port;
    let http_port = mqtt_support::free_port();
    let path = dir.path().join("borne.yaml");
    std::fs::write(&path, config_yaml(http_port, mqtt_port, &state)).expect("write borne.yaml");
    let log = std::fs::File::create(dir.path().join("borne.log")).expect("borne.log");
    let child = Command::new(&bin)
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn borne");
    let borne = Guard(child);
    let pid = borne.0.id();
    let started = Instant::now();
    while get(http_port, "/readyz", "").map(|(s, _)| s) != Some(200) {
        assert!(started.elapsed() < PHASE_LIMIT, "borne not ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Start-up switches every AP off (available, no session): wait for it.
    loop {
        let off = match get(http_port, "/api/v1/access-points", ADMIN) {
            Some((200, body)) => body.matches("\"observed\":\"off\"").count(),
            _ => 0,
        };
        if off == CLASSROOMS {
            break;
        }
        assert!(started.elapsed() < PHASE_LIMIT, "start-up did not converge ({off} off)");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tick = |f: &mut dyn FnMut()| {
        let (c0, t0) = (cpu_s(pid), Instant::now());
        f();
        (cpu_s(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0
    };
    // GET /api/v1/classrooms throughput with no teacher session yet.
    let secs = if full { GET_SECONDS } else { 1 };
    get_phase(&rt, http_port, 0, secs, &tick);

    let sub = Subscriber::start(mqtt_port, "cmnd/+/POWER");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let mut plan = Plan {
        on: vec![false; CLASSROOMS],
        next: 0,
    };

    // One at a time.
    let n = if full { SERIAL_N } else { 50 };
    let mut sent = Vec::new();
    let cpu = tick(&mut || sent = rt.block_on(serial(&client, http_port, &sub, &mut plan, n)));
    print_latency("serial", &sent, &sub.arrivals(), cpu);

    // Open loop.
    for rate in RATES {
        let n = if full {
            rate as usize * RATE_SECONDS as usize
        } else {
            rate as usize / 10
        };
        let before = sub.total();
        let mut sent = Vec::new();
        let cpu = tick(&mut || sent = rt.block_on(open_loop(&client, http_port, &mut plan, rate, n)));
        let expected = before + sent.iter().filter(|s| s.ok).count();
        let deadline = Instant::now() + Duration::from_secs(10);
        while sub.total() < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        print_latency(&rate.to_string(), &sent, &sub.arrivals(), cpu);
        // Let the group commits and the reconciler settle between rates.
        std::thread::sleep(Duration::from_secs(1));
    }

    // GET /api/v1/classrooms throughput again, now that every classroom
    // has a teacher session.
    get_phase(&rt, http_port, plan.next.min(CLASSROOMS), secs, &tick);
    drop(sub);
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let mut borne = borne;
    let deadline = Instant::now() + Duration::from_secs(10);
    while borne.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}
