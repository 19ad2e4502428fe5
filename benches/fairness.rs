//! Fairness benchmark: dead access points must not delay healthy ones.
//!
//! A daemon runs in process (a [`ManualClock`]) with 1,000 simulated APs,
//! one per classroom, 20 classrooms per school, each operation taking
//! `latency_ms` (20 ms, a quick AP), `max_parallel` at its default (64).
//! Scenarios:
//!
//! - `all-healthy`: the reference. At 10:00 the schedule switches every
//!   classroom on; the time until all 1,000 APs are on.
//! - `hang`: the first 200 APs (10 schools whose uplink is down) accept
//!   TCP and never answer (`sim: { hang: true, timeout_seconds }`). The
//!   daemon runs until they are unreachable (3 failures in a row), then the
//!   same schedule change; the time until the 800 healthy APs are on.
//! - `refuse`: the same with 200 APs refusing connections (`sim: { refuse: true }`).
//! - `hang` with the breaker off (`unreachable_after_failures` out of
//!   reach), to show what the breaker saves.
//!
//! Each scenario runs `FAIRNESS_REPS` times (3); the median is printed:
//!
//! ```text
//! fairness aps=1000 faulty=200 fault=hang hang_s=5 breaker=on healthy_switched_s=… all_healthy_s=… ratio=… goal<=1.2
//! ```
//!
//! `FAIRNESS_HANG_SECONDS` (5) is how long a hanging operation waits: the
//! figure after the breaker opened does not depend on it (probes are cut at
//! `probe_timeout_seconds` and hold no permit of `max_parallel`), only the
//! settling before the change does (3 failures × it); the SSH default is 35.
//!
//! Run: `cargo bench --bench fairness`. Under `cargo test --benches` (no
//! `--bench` flag) it runs once on 50 APs as a smoke test.

use std::time::{Duration, Instant};

use borne::policy::Wifi;
use borne_test_support::daemon::{ManualClock, TestDaemon};

/// Classrooms (one AP each) per school.
const PER_SCHOOL: usize = 20;
/// The most settling or a switch may take.
const LIMIT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    Hang,
    Refuse,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Hang => "hang",
            Fault::Refuse => "refuse",
        }
    }
}

struct Run {
    aps: usize,
    faulty: usize,
    fault: Fault,
    hang_seconds: u64,
    breaker: bool,
    latency_ms: u64,
}

fn yaml(run: &Run) -> String {
    let unreachable_after = if run.breaker { 3 } else { 1_000_000 };
    let mut y = format!(
        "demo: true\ntimezone: Europe/Paris\nstate_dir: STATE_DIR\n\
         reconciler: {{ backoff_initial_seconds: 1, backoff_max_seconds: 2, resync_seconds: 3600, \
         unreachable_after_failures: {unreachable_after} }}\n\
         schedules:\n  day:\n    default_mode: locked\n    rules:\n      - {{ at: \"0 10 * * *\", mode: on }}\n\
         \x20     - {{ at: \"0 17 * * *\", mode: locked }}\n\
         schools:\n"
    );
    for s in 0..run.aps.div_ceil(PER_SCHOOL) {
        y.push_str(&format!("  - id: school-{s}\n    schedule: day\n    classrooms:\n"));
        for c in (s * PER_SCHOOL)..((s + 1) * PER_SCHOOL).min(run.aps) {
            let sim = match run.fault {
                Fault::Hang if c < run.faulty => format!(
                    "latency_ms: {}, hang: true, timeout_seconds: {}",
                    run.latency_ms, run.hang_seconds
                ),
                Fault::Refuse if c < run.faulty => format!("latency_ms: {}, refuse: true", run.latency_ms),
                _ => format!("latency_ms: {}", run.latency_ms),
            };
            y.push_str(&format!(
                "      - {{ id: c-{c}, access_points: [ {{ id: ap-{c}, sim: {{ {sim} }} }} ] }}\n"
            ));
        }
    }
    y
}

/// Polls `cond` every 5 ms; panics naming `what` after [`LIMIT`].
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} not reached within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Settles, fires the 10:00 change and returns how long the healthy APs
/// took to be on.
async fn once(run: &Run) -> Duration {
    let clock = ManualClock::at("2026-12-01T09:59:00+01:00");
    let d = TestDaemon::start(&yaml(run), clock.clone()).await;
    let config = d.core.config();
    let aps: Vec<_> = config.access_points.iter().map(|a| a.id.clone()).collect();
    let (faulty, healthy) = aps.split_at(if run.fault == Fault::None { 0 } else { run.faulty });
    let core = d.core.clone();
    until("the healthy APs read", || {
        healthy
            .iter()
            .all(|id| core.ap_state(id).is_some_and(|s| s.observed.wifi.is(Wifi::Off)))
    })
    .await;
    if run.breaker {
        until("the faulty APs unreachable", || {
            faulty
                .iter()
                .all(|id| core.ap_state(id).is_some_and(|s| s.consecutive_failures >= 3))
        })
        .await;
    } else if !faulty.is_empty() {
        // Without the breaker: let every faulty AP fail at least once, so
        // that the change finds them retrying as it would in a school.
        until("the faulty APs failing", || {
            faulty
                .iter()
                .all(|id| core.ap_state(id).is_some_and(|s| s.consecutive_failures >= 1))
        })
        .await;
    }
    let sim = d.sim.clone();
    let early = healthy
        .iter()
        .filter(|id| sim.state(id.as_str()) == Some(Wifi::On))
        .count();
    assert_eq!(early, 0, "healthy APs on before the change");
    clock.set("2026-12-01T10:00:01+01:00");
    let t0 = Instant::now();
    d.core.poke();
    until("the healthy APs on", || {
        healthy.iter().all(|id| sim.state(id.as_str()) == Some(Wifi::On))
    })
    .await;
    let took = t0.elapsed();
    d.stop().await;
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (aps, faulty, reps, hang_seconds) = if full {
        (
            1000,
            200,
            env("FAIRNESS_REPS", 3) as usize,
            env("FAIRNESS_HANG_SECONDS", 5),
        )
    } else {
        (50, 10, 1, 1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let time = |run: &Run| -> Duration { median((0..reps).map(|_| runtime.block_on(once(run))).collect()) };
    let base = Run {
        aps,
        faulty,
        fault: Fault::None,
        hang_seconds,
        breaker: true,
        latency_ms: 20,
    };
    let reference = time(&base);
    println!(
        "fairness aps={aps} faulty=0 fault=none all_healthy_s={:.3}",
        reference.as_secs_f64()
    );
    let scenarios = [(Fault::Hang, true), (Fault::Refuse, true), (Fault::Hang, false)];
    for (fault, breaker) in scenarios {
        let run = Run { fault, breaker, ..base };
        let took = time(&run);
        let ratio = took.as_secs_f64() / reference.as_secs_f64();
        println!(
            "fairness aps={aps} faulty={faulty} fault={} hang_s={hang_seconds} breaker={} healthy_switched_s={:.3} \
             all_healthy_s={:.3} ratio={ratio:.2} goal<=1.2",
            fault.name(),
            if breaker { "on" } else { "off" },
            took.as_secs_f64(),
            reference.as_secs_f64(),
        );
    }
}
