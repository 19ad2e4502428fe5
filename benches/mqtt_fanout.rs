//! MQTT fan-out at city scale: 1,000 and 10,000 MQTT access points (Tasmota
//! preset, one AP per classroom, 20 classrooms per school), all switched off
//! by ONE schedule change (18:00 `locked`), on a local Mosquitto started here.
//!
//! The daemon runs in process (`daemon::start`) with a clock of this bench:
//! every AP is first brought on (mode `on` at 17:00), then the clock is set
//! past 18:00 and `core.poke()` is called; that instant is the change.
//!
//! The "devices" are ONE `mosquitto_sub` process subscribed at QoS 1 to
//! `cmnd/+/POWER`, printing each command with its arrival time (`%U`,
//! CLOCK_REALTIME with nanoseconds). One wildcard subscriber instead of
//! 10,000 device clients: every command the broker routed has reached a
//! subscriber that acknowledges it, which is what "every device received
//! its command" means on the wire, without measuring 10,000 test clients.
//!
//! Measures, per size: time from the change to the last command received
//! (`total_ms`), p50/p99 of (arrival − change) per AP, borne's and the
//! broker's CPU during the fan-out, and in the same run three baselines on a
//! fresh broker with the same subscriber:
//! - `baseline_loop_ms`: N `mosquitto_pub -q 1` processes in sequence, one
//!   command each (the shell-script way; run in full, never extrapolated);
//! - `baseline_lines_ms`: ONE `mosquitto_pub -q 1 -l` connection reading N
//!   lines (one topic for all: `-l` publishes every line on `-t`);
//! - `floor_rumqttc_ms`: N QoS 1 publishes on N topics from a bare rumqttc
//!   client with borne's connection settings (TCP_NODELAY, clean session,
//!   100 in flight): the floor for borne's MQTT stack.
//!
//! `reconciler.max_parallel`: the default, 64, is the value to keep; 1,024
//! runs next to it for comparison (measured: no gain at 10,000 APs, where
//! the single broker connection and the 2 cores are the limit; at 4,096,
//! which validation allows, the driver's 1,024-request queue overflows and
//! refused commands are retried 0.5-1 s later).
//!
//! Knobs (environment): `BORNE_BENCH_MAX_PARALLEL=64,1024` the
//! `max_parallel` values to run; `BORNE_BENCH_SIZES=1000,10000` the sizes;
//! `BORNE_BENCH_BASELINES=0` skips the baselines (to profile borne alone);
//! `BORNE_BENCH_LOG=info` the filter of borne's logs (default `info`, the
//! production default; `off` to measure without them), written to a file
//! in a temporary directory, or to `BORNE_BENCH_LOG_FILE=path` to keep them.
//!
//! Run: `cargo bench --bench mqtt_fanout`. Prints one line per size and
//! `max_parallel`:
//!
//! ```text
//! mqtt-fanout aps=10000 preset=tasmota aps_per_classroom=1 max_parallel=64 log=info total_ms=… p50_ms=… p99_ms=… borne_cpu_ms=… broker_cpu_ms=… startup_ms=… baseline_loop_ms=… baseline_lines_ms=… floor_rumqttc_ms=… ratio_loop=… ratio_lines=… ratio_floor=…
//! ```
//!
//! Without `--bench` (`cargo test --benches`) it runs once on 200 APs as a
//! smoke test. Without mosquitto it skips (says so on stderr; fails
//! instead with `BORNE_REQUIRE_PEERS=1`). Only 127.0.0.1 is used; every process
//! started here is killed by PID when its guard drops, also on panic.

use borne_test_support::mqtt as mqtt_support;
use mqtt_support::clients::{Arrival, PlainMosquitto, Subscriber, publish};

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use borne::core::Clock;
use borne::daemon::{self, Options};
use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, NetworkOptions, QoS};
use tokio_util::sync::CancellationToken;

const SIZES: [usize; 2] = [1_000, 10_000];
const SMOKE_SIZE: usize = 200;
const DEFAULT_PARALLEL: [usize; 2] = [64, 1024];
/// Classrooms per school in the generated configuration.
const PER_SCHOOL: usize = 20;
/// Per-client QoS 1/2 queue in Mosquitto above the messages in flight; the
/// default (1,000) silently drops the rest for a slow subscriber.
const MAX_QUEUED: usize = 100_000;
/// Longest any phase may take before the bench gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
/// Marker topic, subscribed next to the command filter, to know the
/// subscriber is ready.
/// Before the change: mode `on` (Tuesday 17:00 in Paris); after: `locked`.
const BEFORE: &str = "2026-12-01T17:00:00+01:00";
const AFTER: &str = "2026-12-01T18:00:01+01:00";

// ------------------------------------------------------------------ clock

/// A clock the bench sets (the in-process daemon reads it).
#[derive(Debug)]
struct BenchClock(Mutex<DateTime<Utc>>);

impl BenchClock {
    fn at(t: &str) -> Arc<Self> {
        Arc::new(Self(Mutex::new(t.parse().expect("RFC 3339"))))
    }
    fn set(&self, t: &str) {
        *self.0.lock().unwrap() = t.parse().expect("RFC 3339");
    }
}

impl Clock for BenchClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

// ------------------------------------------------------------------ processes

/// CPU time (user + system) of a process, from /proc, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| f.get(i)?.parse::<u64>().ok()).sum();
    ticks as f64 * 1000.0 / ticks_per_second()
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Peers needed: mosquitto, mosquitto_sub, mosquitto_pub.
fn peers() -> Option<PathBuf> {
    mqtt_support::require_clients()
}

// ------------------------------------------------------------------ statistics

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// (total, p50, p99) in ms of arrivals after `t0` (unix seconds).
fn latencies(arrivals: &[Arrival], t0: f64) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = arrivals.iter().map(|a| (a.at - t0) * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    (ms.last().copied().unwrap_or(f64::NAN), pct(&ms, 50.0), pct(&ms, 99.0))
}

// ------------------------------------------------------------------ baselines

/// N sequential `mosquitto_pub` processes; ms to the last arrival.
fn baseline_loop(bin: &Path, n: usize) -> f64 {
    let broker = PlainMosquitto::start(bin, &format!("max_queued_messages {MAX_QUEUED}\n"));
    let sub = Subscriber::start(broker.port, "cmnd/+/POWER");
    let t0 = unix_now();
    let started = Instant::now();
    for i in 0..n {
        publish(broker.port, &format!("cmnd/ap-{i}/POWER"), "OFF");
        assert!(started.elapsed() < PHASE_LIMIT * 2, "baseline loop too slow");
    }
    assert!(
        sub.wait_count("OFF", n, PHASE_LIMIT),
        "baseline loop: {} of {n} arrived",
        sub.count("OFF")
    );
    latencies(&sub.arrivals_of("OFF"), t0).0
}

/// ONE `mosquitto_pub -l` connection publishing N lines; ms to the last arrival.
fn baseline_lines(bin: &Path, n: usize) -> f64 {
    let broker = PlainMosquitto::start(bin, &format!("max_queued_messages {MAX_QUEUED}\n"));
    let sub = Subscriber::start(broker.port, "cmnd/+/POWER");
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-q",
            "1",
            "-t",
            "cmnd/all/POWER",
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mosquitto_pub -l");
    let lines = "OFF\n".repeat(n);
    let t0 = unix_now();
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(lines.as_bytes()).expect("write lines");
    }
    let ok = sub.wait_count("OFF", n, PHASE_LIMIT);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "baseline lines: {} of {n} arrived", sub.count("OFF"));
    latencies(&sub.arrivals_of("OFF"), t0).0
}

/// N QoS 1 publishes on N topics from a bare rumqttc client set up like
/// borne's (TCP_NODELAY, clean session, rumqttc's 100 in flight); ms to the
/// last arrival.
fn floor_rumqttc(bin: &Path, n: usize) -> f64 {
    let broker = PlainMosquitto::start(bin, &format!("max_queued_messages {MAX_QUEUED}\n"));
    let sub = Subscriber::start(broker.port, "cmnd/+/POWER");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let port = broker.port;
    let t0 = rt.block_on(async move {
        let mut options = MqttOptions::new(format!("bench-floor-{}", std::process::id()), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
        let poller = {
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                let mut connected_tx = Some(connected_tx);
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                            if let Some(tx) = connected_tx.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(Event::Incoming(Incoming::PubAck(_))) => {
                            acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(10), connected_rx)
            .await
            .expect("floor client connects")
            .ok();
        let t0 = unix_now();
        for i in 0..n {
            client
                .publish(format!("cmnd/ap-{i}/POWER"), QoS::AtLeastOnce, false, "OFF")
                .await
                .expect("queue publish");
        }
        let deadline = Instant::now() + PHASE_LIMIT;
        while acked.load(std::sync::atomic::Ordering::Relaxed) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
        t0
    });
    assert!(
        sub.wait_count("OFF", n, PHASE_LIMIT),
        "floor: {} of {n} arrived",
        sub.count("OFF")
    );
    latencies(&sub.arrivals_of("OFF"), t0).0
}

// ------------------------------------------------------------------ borne

fn yaml(n: usize, port: u16, max_parallel: usize, state_dir: &Path) -> String {
    let mut y = format!(
        "timezone: Europe/Paris\nlisten: 127.0.0.1:0\nstate_dir: {}\n\
         reconciler: {{ max_parallel: {max_parallel}, resync_seconds: 3600, min_switch_interval_seconds: 0 }}\n\
         mqtt: {{ host: 127.0.0.1, port: {port}, client_id: borne-bench, keep_alive_seconds: 30 }}\n\
         schedules:\n  city:\n    default_mode: on\n    rules:\n      - {{ at: \"0 8 * * *\", mode: on }}\n      - {{ at: \"0 18 * * *\", mode: locked }}\n\
         schools:\n",
        state_dir.display()
    );
    for s in 0..n.div_ceil(PER_SCHOOL) {
        y.push_str(&format!("  - id: school-{s}\n    schedule: city\n    classrooms:\n"));
        for c in (s * PER_SCHOOL)..((s + 1) * PER_SCHOOL).min(n) {
            y.push_str(&format!(
                "      - id: c-{c}\n        access_points:\n          - {{ id: ap-{c}, mqtt: {{ preset: tasmota, topic: ap-{c} }} }}\n"
            ));
        }
    }
    y
}

struct BorneRun {
    total_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    borne_cpu_ms: f64,
    broker_cpu_ms: f64,
    startup_ms: f64,
}

/// Process CPU time (this process: the in-process daemon, the bench's
/// polling is negligible), in ms.
fn self_cpu_ms() -> f64 {
    cpu_ms(std::process::id())
}

fn run_borne(bin: &Path, n: usize, max_parallel: usize) -> BorneRun {
    let broker = PlainMosquitto::start(bin, &format!("max_queued_messages {MAX_QUEUED}\n"));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let text = yaml(n, broker.port, max_parallel, &dir.path().join("state"));
    let config = match borne::config::from_str(&text, "bench.yaml", Some(dir.path())) {
        Ok(l) => l.config,
        Err(e) => panic!("bench configuration invalid: {e}"),
    };
    let ids: Vec<borne::config::ApId> = config.access_points.iter().map(|a| a.id.clone()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clock = BenchClock::at(BEFORE);
    let token = CancellationToken::new();
    let _cancel_on_exit = token.clone().drop_guard();
    let started = Instant::now();
    let running = rt
        .block_on(daemon::start(
            config,
            Options {
                clock: clock.clone(),
                listener: Some(std::net::TcpListener::bind("127.0.0.1:0").expect("bind")),
                ..Options::default()
            },
            token.clone(),
        ))
        .expect("daemon starts");
    let core = running.core.clone();
    let all_are = |wifi: borne::driver::ObservedWifi| {
        ids.iter()
            .all(|id| core.ap_state(id).is_some_and(|s| s.observed.wifi == wifi))
    };
    // Start-up: every AP switched on (read, then ON).
    while !all_are(borne::driver::ObservedWifi::On) {
        assert!(started.elapsed() < PHASE_LIMIT, "start-up did not converge");
        std::thread::sleep(Duration::from_millis(20));
    }
    let startup_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Let the start-up audit and observations reach the disk first.
    std::thread::sleep(Duration::from_secs(2));

    let sub = Subscriber::start(broker.port, "cmnd/+/POWER");
    let (cpu0, bcpu0) = (self_cpu_ms(), cpu_ms(broker.pid()));
    clock.set(AFTER);
    let t0 = unix_now();
    core.poke();
    let ok = sub.wait_count("OFF", n, PHASE_LIMIT);
    let (cpu1, bcpu1) = (self_cpu_ms(), cpu_ms(broker.pid()));
    assert!(ok, "fan-out: {} of {n} commands arrived", sub.count("OFF"));
    let arrivals = sub.arrivals_of("OFF");
    let (total_ms, p50_ms, p99_ms) = latencies(&arrivals, t0);
    let mut topics: Vec<&str> = arrivals.iter().map(|a| a.topic.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    assert_eq!(topics.len(), n, "every AP got its command, once counted");
    // borne's own view agrees (acknowledged by the broker).
    let deadline = Instant::now() + PHASE_LIMIT;
    while !all_are(borne::driver::ObservedWifi::Off) {
        assert!(Instant::now() < deadline, "borne did not see every AP off");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(sub);
    token.cancel();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), running.wait()).await })
        .expect("daemon stops in time")
        .expect("daemon stops cleanly");
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(broker);
    BorneRun {
        total_ms,
        p50_ms,
        p99_ms,
        borne_cpu_ms: cpu1 - cpu0,
        broker_cpu_ms: bcpu1 - bcpu0,
        startup_ms,
    }
}

fn parallels() -> Vec<usize> {
    match std::env::var("BORNE_BENCH_MAX_PARALLEL") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => DEFAULT_PARALLEL.to_vec(),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let Some(bin) = peers() else { return };
    // borne's logs, at the production default level, to a file.
    let logs = tempfile::tempdir().expect("tempdir");
    let log_path =
        std::env::var_os("BORNE_BENCH_LOG_FILE").map_or_else(|| logs.path().join("borne.log"), PathBuf::from);
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let filter = std::env::var("BORNE_BENCH_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&filter))
        .with_ansi(false)
        .with_writer(Mutex::new(log_file))
        .init();

    let sizes: Vec<usize> = match std::env::var("BORNE_BENCH_SIZES") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) if full => SIZES.to_vec(),
        Err(_) => vec![SMOKE_SIZE],
    };
    let parallels = if full { parallels() } else { vec![64] };
    for n in sizes {
        let (base_loop, base_lines, floor) = if std::env::var("BORNE_BENCH_BASELINES").as_deref() == Ok("0") {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            (baseline_loop(&bin, n), baseline_lines(&bin, n), floor_rumqttc(&bin, n))
        };
        for &p in &parallels {
            let r = run_borne(&bin, n, p);
            println!(
                "mqtt-fanout aps={n} preset=tasmota aps_per_classroom=1 max_parallel={p} log={filter} total_ms={:.1} p50_ms={:.1} p99_ms={:.1} \
                 borne_cpu_ms={:.0} broker_cpu_ms={:.0} startup_ms={:.0} baseline_loop_ms={base_loop:.1} baseline_lines_ms={base_lines:.1} \
                 floor_rumqttc_ms={floor:.1} ratio_loop={:.3} ratio_lines={:.2} ratio_floor={:.2}",
                r.total_ms,
                r.p50_ms,
                r.p99_ms,
                r.borne_cpu_ms,
                r.broker_cpu_ms,
                r.startup_ms,
                r.total_ms / base_loop,
                r.total_ms / base_lines,
                r.total_ms / floor,
            );
        }
    }
}
