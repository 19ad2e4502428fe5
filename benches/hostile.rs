//! Issue 12 figures, one summary line each:
//!
//! - `limiter`: the failed-authentication limiter fed 1,000,000 distinct
//!   addresses (a flood of `X-Forwarded-For` values through a trusted
//!   proxy): time per failure over the first and the last 100,000, and
//!   the memory it holds at the end.
//! - `slowloris`: the daemon in process on loopback with 5,000 idle
//!   connections open (they never send a byte), against a closed loop of
//!   authenticated GETs on 4 other connections: requests per second and
//!   latency, then the same without the idle connections.
//!
//! ```text
//! cargo bench --bench hostile
//! ```
//!
//! Everything stays on 127.0.0.1 and stops by itself.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use borne::api::Limiter;
use borne::config::Limits;
use borne_test_support::http_load::get_load;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn limiter() {
    let limits = Limits {
        // High enough that the flood is measured, not refused early.
        failed_auth_total: u32::MAX,
        ..Limits::default()
    };
    let before = rss_kb();
    let l = Limiter::new(limits.failed_auth_addresses);
    let addr = |i: u32| IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) | (0x2001_0db8u128 << 96)));
    let mut first = Duration::ZERO;
    let mut last = Duration::ZERO;
    let n = 1_000_000u32;
    let t = Instant::now();
    for i in 0..n {
        l.fail(addr(i), &limits);
        if i + 1 == 100_000 {
            first = t.elapsed();
        }
        if i + 1 == n - 100_000 {
            last = t.elapsed();
        }
    }
    let last = t.elapsed() - last;
    let held = l.len();
    let probe = Instant::now();
    for i in 0..100_000u32 {
        std::hint::black_box(l.blocked(addr(n - 1 - i)));
    }
    let blocked_ns = probe.elapsed().as_nanos() as f64 / 100_000.0;
    println!(
        "limiter addresses={n} capacity={} held={held} first_100k_ns_per_failure={:.0} last_100k_ns_per_failure={:.0} \
         blocked_check_ns={blocked_ns:.0} rss_delta_mb={:.1}",
        limits.failed_auth_addresses,
        first.as_nanos() as f64 / 100_000.0,
        last.as_nanos() as f64 / 100_000.0,
        (rss_kb().saturating_sub(before)) as f64 / 1024.0,
    );
}

const CONFIG: &str = concat!(
    borne_test_support::yaml_head!(),
    "listen: 127.0.0.1:0\n",
    borne_test_support::yaml_one_open_classroom!(),
    r#"
users:
  - { name: teacher1, role: teacher, classrooms: [c1], token: bench-teacher-token }
limits:
  max_connections: 8192
"#
);

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn slowloris() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = CONFIG.replace("STATE_DIR", &dir.path().join("state").display().to_string());
        let config = borne::config::from_str(&yaml, "bench.yaml", Some(dir.path()))
            .expect("bench configuration")
            .config;
        let token = tokio_util::sync::CancellationToken::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let options = borne::daemon::Options {
            listener: Some(listener),
            ..borne::daemon::Options::default()
        };
        let running = borne::daemon::start(config, options, token.clone())
            .await
            .expect("daemon");
        let addr = running.addr;

        let (base_rps, base_lat, base_err) =
            get_load(&format!("http://{addr}/api/v1/classrooms"), "bench-teacher-token", 4, 3).await;

        // 5,000 connections that never send a byte: held open by the test
        // for less than the header-read timeout (10 s), as a slowloris
        // client renewing them would keep them.
        let idle_target = 5_000;
        let mut idle = Vec::with_capacity(idle_target);
        let t = Instant::now();
        while idle.len() < idle_target {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => idle.push(s),
                Err(e) => {
                    eprintln!("stopped opening idle connections at {}: {e}", idle.len());
                    break;
                }
            }
        }
        let opened_ms = t.elapsed().as_millis();
        let (rps, lat, err) = get_load(&format!("http://{addr}/api/v1/classrooms"), "bench-teacher-token", 4, 3).await;
        let held = idle.len();
        drop(idle);
        println!(
            "slowloris idle_connections={held} open_ms={opened_ms} rps={rps:.0} p50_ms={:.2} p99_ms={:.2} \
             max_ms={:.2} errors={err} baseline_rps={base_rps:.0} baseline_p50_ms={:.2} baseline_p99_ms={:.2} \
             baseline_errors={base_err}",
            pct(&lat, 50.0),
            pct(&lat, 99.0),
            lat.last().copied().unwrap_or(f64::NAN),
            pct(&base_lat, 50.0),
            pct(&base_lat, 99.0),
        );
        token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), running.wait()).await;
    });
}

fn main() {
    // `cargo bench` passes `--bench`; a filter picks one part.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wants("limiter") {
        limiter();
    }
    if wants("slowloris") {
        slowloris();
    }
}
