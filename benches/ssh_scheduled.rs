//! Scheduled SSH fan-out: from a schedule rule's instant to the last AP
//! confirmed, with and without pre-warming (`ssh.prewarm_seconds`), for 50
//! and 200 OpenWrt APs over real sshd.
//!
//! Setup as `benches/ssh_fanout.rs`: one real OpenSSH `sshd` per AP in
//! front of the fake OpenWrt shell with two radios, whose `wifi reload`
//! sleeps 0.3 s (`borne_test_support::ssh::fleet`). The daemon runs in this
//! process on a runtime built like `borne run`'s, with a
//! [`RunningClock`]: real time, started [`LEAD`] before a rule
//! `{ at: "0 18 * * *", mode: locked }` (18:00, radios off; a 07:00 rule
//! makes the day `on` until then). Nothing pokes
//! the daemon: its planner's own timer fires the rule, and pre-warms
//! `prewarm_seconds` before it, as under `borne run`.
//!
//! Cases, for each size (`max_parallel` 64, radios discovered, as by
//! default):
//! - `warm`: `reuse_seconds: 3600`, no pre-warming: the connections the
//!   start-up read opened are still there at 18:00 (radios known). The
//!   reference: a switch over kept connections.
//! - `cold`: `reuse_seconds: 2`, `prewarm_seconds: 0`: the start-up
//!   connections closed long before 18:00, as an 18:00 change finds them
//!   without pre-warming.
//! - `prewarm`: `reuse_seconds: 2`, `prewarm_seconds: 20` (the default).
//!
//! Figures: `switched_ms`, from the rule's instant until every fake runs
//! off; `confirmed_ms`, until borne has read every AP back off (the
//! figure the issue asks for); `vs_warm`, `confirmed_ms` over the warm
//! case's; `prewarmed`, sshd connections accepted in the 20 s before the
//! rule; `connects_at_change`, those accepted from the rule on (0 when the
//! change ran over open connections); `load1`, the load average before the
//! case.
//!
//! Run: `cargo bench --bench ssh_scheduled` (about 65 s per case, 6 cases).
//! Prints one line per case starting with `ssh-scheduled`.
//! `SSH_SCHEDULED_APS=50` (a comma-separated list) picks the sizes.

use std::time::{Duration, Instant};

use borne::policy::Wifi;
use borne_test_support::daemon::{RunningClock, TestDaemon};
use borne_test_support::ssh::fleet;
use borne_test_support::ssh::{TestSshd, require_sshd};

/// `wifi reload` on the fakes, like a real AP's.
const RELOAD: Duration = Duration::from_millis(300);
/// The daemon starts this long before the rule: the start-up read of
/// every AP, and (cold, prewarm) its connections closed, fit before the
/// pre-warm lead.
const LEAD: Duration = Duration::from_secs(60);
/// The pre-warm lead of the `prewarm` case (the default).
const PREWARM_SECONDS: u64 = 20;
/// The rule's instant.
const RULE_AT: &str = "2026-12-01T18:00:00+01:00";
/// The most any wait may take.
const LIMIT: Duration = Duration::from_secs(150);

/// One case of the daemon's configuration.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    reuse_seconds: u64,
    prewarm_seconds: u64,
}

const CASES: [Case; 3] = [
    Case {
        name: "warm",
        reuse_seconds: 3600,
        prewarm_seconds: 0,
    },
    Case {
        name: "cold",
        reuse_seconds: 2,
        prewarm_seconds: 0,
    },
    Case {
        name: "prewarm",
        reuse_seconds: 2,
        prewarm_seconds: PREWARM_SECONDS,
    },
];

/// What one case measured.
struct Run {
    switched: Duration,
    confirmed: Duration,
    prewarmed: usize,
    connects_at_change: usize,
}

async fn run_case(aps: &[TestSshd], case: Case) -> Run {
    fleet::reset_on(aps);
    let yaml = fleet::config_yaml(
        aps,
        "resync_seconds: 3600, min_switch_interval_seconds: 0, backoff_initial_seconds: 1, backoff_max_seconds: 2",
        &format!(
            "reuse_seconds: {}, prewarm_seconds: {}, connect_timeout_seconds: 10, command_timeout_seconds: 20",
            case.reuse_seconds, case.prewarm_seconds
        ),
        // The morning rule keeps the day `on` until 18:00: without it the
        // mode at 17:59 is yesterday's 18:00 `locked`, and borne switches
        // the APs off at its start instead of at the rule.
        &[
            "{ at: \"0 7 * * *\", mode: on }",
            "{ at: \"0 18 * * *\", mode: locked }",
        ],
    );
    let rule_at: chrono::DateTime<chrono::Utc> = RULE_AT.parse().expect("RFC 3339");
    let start = rule_at - chrono::Duration::from_std(LEAD).expect("lead");
    let clock = RunningClock::from(&start.to_rfc3339());
    let rule = clock.instant_of(RULE_AT);
    let lead_start = rule - Duration::from_secs(PREWARM_SECONDS);
    let d = TestDaemon::start(&yaml, clock.clone()).await;

    // Start-up: borne reads every AP once (they are on, as wanted).
    fleet::wait_switched(&d, aps, Wifi::On, Instant::now(), LIMIT).await;
    if case.reuse_seconds < LEAD.as_secs() {
        // As at 18:00 on a real day: no connection left from earlier.
        while fleet::open_connections(aps) > 0 {
            assert!(
                Instant::now() < lead_start,
                "{}: the start-up connections were still open at the pre-warm lead; raise LEAD",
                case.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        Instant::now() < lead_start,
        "{}: the start-up took longer than LEAD - prewarm; raise LEAD",
        case.name
    );
    let before_lead = fleet::connections(aps);

    tokio::time::sleep_until((rule - Duration::from_millis(300)).into()).await;
    let before_rule = fleet::connections(aps);
    assert!(Instant::now() < rule, "counting connections took past the rule");
    // Measured from the rule: every AP must still be on just before it.
    let early = aps.iter().filter(|ap| fleet::running(ap) != Some(true)).count();
    assert_eq!(early, 0, "{}: {early} APs were switched before the rule", case.name);
    let (switched, confirmed) = fleet::wait_switched(&d, aps, Wifi::Off, rule, LIMIT).await;
    let after = fleet::connections(aps);
    d.stop().await;
    Run {
        switched,
        confirmed,
        prewarmed: before_rule - before_lead,
        connects_at_change: after - before_rule,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if require_sshd().is_none() {
        return;
    }
    let sizes = fleet::sizes("SSH_SCHEDULED_APS");
    let max_n = sizes.iter().copied().max().unwrap_or(50);
    let t = Instant::now();
    let Some(aps) = fleet::start(max_n, RELOAD) else {
        return;
    };
    eprintln!(
        "ssh-scheduled: {} sshd started in {} ms",
        aps.len(),
        t.elapsed().as_millis()
    );
    let runtime = fleet::daemon_runtime();
    for &n in &sizes {
        let subset = &aps[..n];
        let mut warm = None;
        for case in CASES {
            let load = fleet::load1();
            let run = runtime.block_on(run_case(subset, case));
            let warm_ms = *warm.get_or_insert(run.confirmed);
            println!(
                "ssh-scheduled aps={n} case={} reuse_seconds={} prewarm_seconds={} switched_ms={} confirmed_ms={} \
                 vs_warm={:.2} prewarmed={} connects_at_change={} load1={load}",
                case.name,
                case.reuse_seconds,
                case.prewarm_seconds,
                run.switched.as_millis(),
                run.confirmed.as_millis(),
                run.confirmed.as_secs_f64() / warm_ms.as_secs_f64(),
                run.prewarmed,
                run.connects_at_change,
            );
        }
    }
    drop(runtime);
    drop(aps);
}
