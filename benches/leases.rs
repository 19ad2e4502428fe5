//! Lease renewal cost (issue 14): what keeping device-side leases alive
//! costs borne at 1,000 MQTT access points (Tasmota `PulseTime`, on a real
//! Mosquitto) and 50 SSH access points (OpenWrt lease sleeper, each behind
//! its own real OpenSSH `sshd` in front of the fake OpenWrt shell), all on.
//!
//! The daemon runs in this process (a runtime built like `borne run`'s)
//! on the system clock; Mosquitto and every sshd (and the shells they
//! start) are other processes, so this process's CPU time
//! (`getrusage(RUSAGE_SELF)`) is borne's. A 12 s lease (renewed every 4 s,
//! 100 times the rate of the default 20-minute lease) compresses the
//! measurement; each driver is measured alone over a window once every AP
//! holds its lease, counting `borne_lease_renewals_total` and the CPU time
//! spent, and the line scales both to `lease_minutes: 20`:
//! renewals per minute (`3 × N / 20`) and borne's CPU seconds per minute.
//!
//! Run: `cargo bench --bench leases` (1,000 MQTT, 50 SSH, 30 s windows;
//! `LEASE_BENCH_MQTT`, `LEASE_BENCH_SSH`, `LEASE_BENCH_WINDOW` change
//! them). Under `cargo test --benches` it runs a smoke size (20 and 2, 8 s).
//! Prints one line per driver starting with `lease-renewal`.

use borne_test_support::daemon as common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borne::core::SystemClock;
use borne_test_support::mqtt::TestMosquitto;
use borne_test_support::ssh::{TestSshd, ap_yaml};
use common::TestDaemon;

/// The lease of the measurement: a renewal every 4 s per AP.
const LEASE_SECONDS: u64 = 12;
/// The production default the figures are scaled to.
const DEFAULT_LEASE_MINUTES: f64 = 20.0;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This process's user + system CPU time.
fn cpu() -> Duration {
    // SAFETY: `rusage` is plain data, filled by the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, exclusively borrowed `rusage` for the call's duration.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn config(mqtt: Option<(u16, u64)>, ssh: &[TestSshd]) -> String {
    let mut yaml = format!(
        "demo: true\ntimezone: UTC\nstate_dir: STATE_DIR\nlisten: 127.0.0.1:0\n\
         failsafe: {{ lease_seconds: {LEASE_SECONDS}, configure_devices: false }}\n\
         reconciler: {{ max_parallel: 256, resync_seconds: 3600 }}\n\
         schedules:\n  always: {{ default_mode: on, rules: [] }}\n"
    );
    if let Some((port, _)) = mqtt {
        writeln!(yaml, "mqtt: {{ host: 127.0.0.1, port: {port} }}").unwrap();
    }
    yaml.push_str("schools:\n  - id: s\n    schedule: always\n    classrooms:\n");
    if let Some((_, n)) = mqtt {
        for i in 0..n {
            writeln!(
                yaml,
                "      - {{ id: m{i}, access_points: [ {{ id: plug{i}, mqtt: {{ preset: tasmota, topic: plug-{i} }} }} ] }}"
            )
            .unwrap();
        }
    }
    for (i, sshd) in ssh.iter().enumerate() {
        writeln!(
            yaml,
            "      - {{ id: s{i}, access_points: [ {} ] }}",
            ap_yaml(&format!("ap{i}"), sshd)
        )
        .unwrap();
    }
    yaml.push_str("users:\n  - { name: admin, role: admin, token: admin-token-123 }\n");
    yaml
}

/// Waits until every AP has renewed at least once, then measures a window.
async fn measure(d: &TestDaemon, label: &str, n: u64, window: Duration) {
    let renewals = |d: &TestDaemon| d.core.metrics.lease_renewals_ok();
    let deadline = Instant::now() + Duration::from_secs(300);
    while renewals(d) < n {
        assert!(
            Instant::now() < deadline,
            "{label}: only {} renewals in 300 s",
            renewals(d)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (r0, e0, c0, t0) = (
        renewals(d),
        d.core.metrics.lease_renewals_failed(),
        cpu(),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (r1, e1, c1, elapsed) = (renewals(d), d.core.metrics.lease_renewals_failed(), cpu(), t0.elapsed());
    let done = (r1 - r0) as f64;
    let cpu_per_renewal = (c1 - c0).as_secs_f64() / done.max(1.0);
    let per_minute = 3.0 * n as f64 / DEFAULT_LEASE_MINUTES;
    println!(
        "lease-renewal driver={label} aps={n} measured_renewals_per_s={:.1} errors={} cpu_us_per_renewal={:.0} \
         at_lease_minutes_20: renewals_per_min={per_minute:.1} borne_cpu_ms_per_min={:.2} ({:.4}% of one core)",
        done / elapsed.as_secs_f64(),
        e1 - e0,
        cpu_per_renewal * 1e6,
        per_minute * cpu_per_renewal * 1e3,
        per_minute * cpu_per_renewal / 60.0 * 100.0,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (mqtt_n, ssh_n, window) = if full {
        (
            env_or("LEASE_BENCH_MQTT", 1000),
            env_or("LEASE_BENCH_SSH", 50),
            env_or("LEASE_BENCH_WINDOW", 30),
        )
    } else {
        (20, 2, 8)
    };
    let window = Duration::from_secs(window);
    // Like `borne run`: multi-threaded, default sizes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if mqtt_n > 0 {
            let Some(broker) = TestMosquitto::start().await else {
                return;
            };
            let d = TestDaemon::start(&config(Some((broker.port(), mqtt_n)), &[]), Arc::new(SystemClock)).await;
            measure(&d, "mqtt-tasmota", mqtt_n, window).await;
            d.stop().await;
        }
        if ssh_n > 0 {
            let fakes: Vec<TestSshd> = (0..ssh_n).filter_map(|_| TestSshd::start()).collect();
            if fakes.len() as u64 != ssh_n {
                return;
            }
            let d = TestDaemon::start(&config(None, &fakes), Arc::new(SystemClock)).await;
            let deadline = Instant::now() + Duration::from_secs(120);
            while !fakes
                .iter()
                .all(|f| f.fake.radios().iter().all(|r| f.fake.state(r).running_on))
            {
                assert!(Instant::now() < deadline, "not every SSH AP on");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            measure(&d, "ssh-openwrt", ssh_n, window).await;
            d.stop().await;
        }
    });
}
