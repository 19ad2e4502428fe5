//! SSH fan-out: how long borne takes to switch every AP of a school
//! district off then on over SSH, against OpenSSH baselines, on real sshd.
//!
//! Setup: one real OpenSSH `sshd` per AP (`tests/support/ssh`: its own
//! loopback port, host key, client key and `known_hosts`), each in front of
//! the fake OpenWrt shell with two radios, whose `wifi reload` sleeps
//! 0.3 s like a real AP's. The daemon runs in this process on a runtime
//! built like `borne run`'s (`new_multi_thread`, default worker and
//! blocking-pool sizes) with a [`ManualClock`]: a schedule change
//! (18:00 `locked`, 19:00 `on`) plus `core.poke()` gives exact start
//! instants. A phase ends when every fake's *running* state files show the
//! asked state (polled every 10 ms, pending APs only); borne reading it
//! back is reported separately (`confirmed_total_ms`).
//!
//! Baselines, in the same run on the same APs, with the same key and
//! `known_hosts` as borne: a sequential loop of `ssh -o BatchMode=yes`
//! running the same switch command (`uci set … && uci commit wireless &&
//! wifi reload`) on each AP, off then on, and the same through
//! `xargs -P 8`. The sequential loop over 200 APs is not run (it would take
//! minutes): it is extrapolated as 4 × the 50-AP figure
//! (`baseline_seq_extrapolated=yes`). The handshake is the median wall
//! time of `ssh host true` (connect, key exchange, authentication, one
//! exec, close). The ideal is `2 × ceil(N / max_parallel) × (handshake +
//! 0.3 s)` for off + on.
//!
//! Configurations, for 50 and 200 APs: connection reuse on (the default
//! 60 s; the start-up read opened the connections, so the switches find
//! them warm) and off (`reuse_seconds: 0`: a handshake per switch, as a
//! cold fan-out), `max_parallel` 64 (default) and, for 200 APs, 200; and
//! `radios:` listed in the configuration (`radios=listed`: no `uci show`
//! before each switch, one command less); and, for what the device-side
//! lease adds to "on" (arming the AP's off-timer, saving "off" again after
//! the reload), the first configuration with `failsafe: { lease_minutes: 0 }`
//! (`lease=off`; every other line has the default 20-minute lease). `daemon_cpu_ms` is this
//! process's CPU over off + on (borne, and the poller), `host_cpu_pct` the
//! whole machine's (every fake AP runs on it too), `load1` the load
//! average before the configuration.
//!
//! When the login shell is bash with rc files (sshd runs every command as
//! `$SHELL -c`, and bash started by sshd reads `~/.bashrc`), each fake's
//! sshd runs in a private mount namespace where those files are empty
//! (`borne_test_support::ssh::login_rc`), as an AP's `ash` reads nothing.
//!
//! Run: `cargo bench --bench ssh_fanout`. Prints one line per
//! configuration starting with `ssh-fanout`. `RUST_LOG=borne=debug` shows
//! the driver's per-operation timings. `SSH_FANOUT_APS=50` (a comma-separated
//! list) picks the sizes; `SSH_FANOUT_BASELINES=0` skips the OpenSSH baselines.

use borne_test_support::daemon as common;
use borne_test_support::ssh as ssh_support;
use borne_test_support::ssh::fleet::{self, RADIOS, load1, reset_on, running};

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use borne::policy::Wifi;
use common::{ManualClock, TestDaemon};
use ssh_support::{TestSshd, current_user};

/// `wifi reload` on the fakes, like a real AP's.
const RELOAD: Duration = Duration::from_millis(300);
/// The most any phase (a switch of every AP, a baseline) may take.
const PHASE_LIMIT: Duration = Duration::from_secs(150);
/// Samples of `ssh host true` for the handshake figure.
const HANDSHAKE_SAMPLES: usize = 15;
/// Processes `xargs` runs at once in the parallel baseline.
const XARGS_P: usize = 8;

/// The switch command borne's OpenWrt preset sends for these radios.
fn switch_command(wifi: Wifi) -> String {
    let v = match wifi {
        Wifi::On => 0,
        Wifi::Off => 1,
    };
    let mut parts: Vec<String> = RADIOS
        .iter()
        .map(|(r, _)| format!("uci set wireless.{r}.disabled={v}"))
        .collect();
    parts.push("uci commit wireless".into());
    parts.push("wifi reload".into());
    parts.join(" && ")
}

/// OpenSSH client options shared by every baseline: no user configuration,
/// no agent, no connection sharing, host key checked against the AP's
/// `known_hosts` (the one borne uses).
fn ssh_common_args() -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The per-AP part of an `ssh` command line, before the remote command.
fn ssh_ap_args(ap: &TestSshd) -> Vec<String> {
    vec![
        "-i".into(),
        ap.client_key.display().to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", ap.known_hosts.display()),
        "-p".into(),
        ap.port.to_string(),
        format!("{}@127.0.0.1", current_user()),
    ]
}

/// Waits for `child` at most `limit`; kills it (by PID) past that.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} took more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `command` on `ap` with the OpenSSH client; panics when it fails.
fn ssh_run(ap: &TestSshd, command: &str) {
    let child = Command::new("ssh")
        .args(ssh_common_args())
        .args(ssh_ap_args(ap))
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ssh (package openssh-client)");
    let status = wait_bounded(child, Duration::from_secs(20), "ssh");
    assert!(status.success(), "ssh to port {} failed: {status}", ap.port);
}

/// Median wall time of `ssh host true` over [`HANDSHAKE_SAMPLES`] APs.
fn handshake(aps: &[TestSshd]) -> Duration {
    ssh_run(&aps[0], "true"); // warm the client binary and page cache
    let mut samples: Vec<Duration> = aps
        .iter()
        .cycle()
        .take(HANDSHAKE_SAMPLES)
        .map(|ap| {
            let t = Instant::now();
            ssh_run(ap, "true");
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// The sequential baseline: one `ssh` after the other, every AP off, then
/// every AP on.
fn baseline_sequential(aps: &[TestSshd]) -> Duration {
    reset_on(aps);
    let t = Instant::now();
    for wifi in [Wifi::Off, Wifi::On] {
        let command = switch_command(wifi);
        for ap in aps {
            ssh_run(ap, &command);
        }
    }
    let took = t.elapsed();
    assert!(aps.iter().all(|ap| running(ap) == Some(true)));
    took
}

/// The parallel baseline: `xargs -P 8 -L 1 ssh …`, one input line per AP
/// (its key, `known_hosts`, port and the quoted command), off then on.
fn baseline_xargs(aps: &[TestSshd]) -> Duration {
    reset_on(aps);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut inputs = Vec::new();
    for wifi in [Wifi::Off, Wifi::On] {
        let command = switch_command(wifi);
        let mut lines = String::new();
        for ap in aps {
            // xargs splits on blanks and honours single quotes.
            writeln!(lines, "{} '{command}'", ssh_ap_args(ap).join(" ")).expect("string write");
        }
        let path = dir.path().join(format!("{}.args", wifi.as_str()));
        std::fs::write(&path, lines).expect("write xargs input");
        inputs.push(path);
    }
    let t = Instant::now();
    for input in &inputs {
        let child = Command::new("xargs")
            .args(["-P", &XARGS_P.to_string(), "-L", "1", "-a"])
            .arg(input)
            .arg("ssh")
            .args(ssh_common_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn xargs");
        let status = wait_bounded(child, PHASE_LIMIT, "xargs -P 8 ssh");
        assert!(status.success(), "xargs ssh failed: {status}");
    }
    let took = t.elapsed();
    assert!(aps.iter().all(|ap| running(ap) == Some(true)));
    took
}

/// CPU time (user + system) of this process, which runs the daemon.
fn self_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 1000 / ticks_per_second())
}

fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// (busy, total) jiffies of the whole machine, from `/proc/stat`.
fn host_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The daemon's configuration: one classroom per AP, all on one schedule
/// that is `on` before 18:00, `locked` (off) from 18:00 and `on` again
/// from 19:00.
fn config_yaml(aps: &[TestSshd], c: Setup) -> String {
    let Setup {
        reuse_seconds,
        max_parallel,
        listed,
        lease,
    } = c;
    // Without `radios:`, every switch first lists the radios (`uci show`).
    let radios = if listed {
        let names: Vec<&str> = RADIOS.iter().map(|(r, _)| *r).collect();
        format!(", radios: [{}]", names.join(", "))
    } else {
        String::new()
    };
    let yaml = fleet::config_yaml(
        aps,
        &format!(
            "max_parallel: {max_parallel}, resync_seconds: 3600, min_switch_interval_seconds: 0, \
             backoff_initial_seconds: 1, backoff_max_seconds: 2"
        ),
        &format!("reuse_seconds: {reuse_seconds}, connect_timeout_seconds: 10, command_timeout_seconds: 20{radios}"),
        &[
            "{ at: \"0 18 * * *\", mode: locked }",
            "{ at: \"0 19 * * *\", mode: on }",
        ],
    );
    // The default lease (20 min) is armed with every "on"; 0 disables it.
    if lease {
        yaml
    } else {
        yaml + "failsafe: { lease_minutes: 0 }\n"
    }
}

/// What one configuration measured.
struct Run {
    off: Duration,
    on: Duration,
    /// Off + on, each until borne had read every AP back.
    confirmed: Duration,
    /// CPU of this process (the daemon, and the 10 ms poller) over off + on.
    cpu: Duration,
    /// Whole-machine CPU use over off + on, % of all cores.
    host_pct: f64,
}

/// One configuration of the daemon.
#[derive(Debug, Clone, Copy)]
struct Setup {
    reuse_seconds: u64,
    max_parallel: usize,
    /// `radios:` listed in the configuration (no discovery before a switch).
    listed: bool,
    /// The device-side lease (the default): armed with every "on".
    lease: bool,
}

/// Starts the daemon on `aps` (all on, schedule `on`), waits until it has
/// read every AP, then switches them all off and all on by schedule changes.
async fn borne_run(aps: &[TestSshd], setup: Setup) -> Run {
    reset_on(aps);
    let clock = ManualClock::at("2026-12-01T17:59:00+01:00");
    let d = TestDaemon::start(&config_yaml(aps, setup), clock.clone()).await;
    // Start-up: each worker reads its AP once (with reuse, that opens the
    // connections the switches will use, as in a daemon that has run a while).
    fleet::wait_switched(&d, aps, Wifi::On, Instant::now(), PHASE_LIMIT).await;

    let cpu0 = self_cpu();
    let host0 = host_jiffies();
    clock.set("2026-12-01T18:00:01+01:00");
    let t = Instant::now();
    d.core.poke();
    let (off, off_confirmed) = fleet::wait_switched(&d, aps, Wifi::Off, t, PHASE_LIMIT).await;

    clock.set("2026-12-01T19:00:01+01:00");
    let t = Instant::now();
    d.core.poke();
    let (on, on_confirmed) = fleet::wait_switched(&d, aps, Wifi::On, t, PHASE_LIMIT).await;
    let cpu = self_cpu().saturating_sub(cpu0);
    let host1 = host_jiffies();
    d.stop().await;
    let busy = host1.0.saturating_sub(host0.0) as f64;
    let total = host1.1.saturating_sub(host0.1).max(1) as f64;
    Run {
        off,
        on,
        confirmed: off_confirmed + on_confirmed,
        cpu,
        host_pct: busy / total * 100.0,
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if ssh_support::require_sshd().is_none() {
        return;
    }
    let hidden = ssh_support::login_rc::to_hide();
    if !hidden.is_empty() {
        eprintln!(
            "ssh-fanout: login shell rc files emptied for the fakes' sshd (private mount namespaces): {}",
            hidden.join(",")
        );
    }
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let sizes = fleet::sizes("SSH_FANOUT_APS");
    let bench_start = Instant::now();
    let max_n = sizes.iter().copied().max().unwrap_or(50);
    let t = Instant::now();
    let Some(aps) = fleet::start(max_n, RELOAD) else {
        return;
    };
    eprintln!("ssh-fanout: {} sshd started in {} ms", aps.len(), ms(t.elapsed()));

    let baselines = std::env::var("SSH_FANOUT_BASELINES").as_deref() != Ok("0");
    let hs = handshake(&aps);
    // The sequential loop runs on (at most) 50 APs; larger sets are
    // extrapolated from it.
    let seq_n = sizes.iter().copied().min().unwrap_or(50).min(50);
    let seq_base = if baselines {
        baseline_sequential(&aps[..seq_n])
    } else {
        Duration::ZERO
    };
    eprintln!(
        "ssh-fanout: handshake (ssh host true, median of {HANDSHAKE_SAMPLES}) {} ms; sequential {seq_n} APs off+on {} ms",
        ms(hs),
        ms(seq_base)
    );

    let runtime = fleet::daemon_runtime();
    for &n in &sizes {
        let subset = &aps[..n];
        let xargs = if baselines {
            baseline_xargs(subset)
        } else {
            Duration::ZERO
        };
        let (seq, extrapolated) = if n == seq_n {
            (seq_base, "no")
        } else {
            (seq_base.mul_f64(n as f64 / seq_n as f64), "yes")
        };
        let setup = |reuse_seconds, max_parallel, listed| Setup {
            reuse_seconds,
            max_parallel,
            listed,
            lease: true,
        };
        let mut configs = vec![setup(60, 64, false), setup(0, 64, false)];
        if n > 64 {
            configs.extend([setup(60, n, false), setup(0, n, false)]);
        }
        // What one command less per switch gives: `radios:` listed, no
        // `uci show` first; with the largest `max_parallel` above.
        configs.push(setup(60, if n > 64 { n } else { 64 }, true));
        // What the lease adds to "on" (arming it, saving "off" again).
        configs.push(Setup {
            lease: false,
            ..setup(60, 64, false)
        });
        for c in configs {
            let (reuse, max_parallel) = (c.reuse_seconds, c.max_parallel);
            let load = load1();
            let run = runtime.block_on(borne_run(subset, c));
            let total = run.off + run.on;
            let waves = n.div_ceil(max_parallel) as u32;
            let ideal = (hs + RELOAD) * waves * 2;
            println!(
                "ssh-fanout aps={n} reuse={} max_parallel={max_parallel} radios={} lease={} off_ms={} on_ms={} total_ms={} \
                 confirmed_total_ms={} ideal_ms={} vs_ideal={:.2} handshake_ms={} baseline_seq_ms={} \
                 baseline_seq_extrapolated={extrapolated} baseline_xargs8_ms={} speedup_vs_xargs={:.1} \
                 speedup_vs_seq={:.1} daemon_cpu_ms={} host_cpu_pct={:.0} load1={load}",
                if reuse > 0 { "on" } else { "off" },
                if c.listed { "listed" } else { "discovered" },
                if c.lease { "on" } else { "off" },
                ms(run.off),
                ms(run.on),
                ms(total),
                ms(run.confirmed),
                ms(ideal),
                total.as_secs_f64() / ideal.as_secs_f64(),
                ms(hs),
                ms(seq),
                ms(xargs),
                xargs.as_secs_f64() / total.as_secs_f64(),
                seq.as_secs_f64() / total.as_secs_f64(),
                ms(run.cpu),
                run.host_pct,
            );
        }
    }
    drop(runtime);
    let t = Instant::now();
    drop(aps);
    eprintln!(
        "ssh-fanout: sshd stopped in {} ms; whole bench {} s",
        ms(t.elapsed()),
        bench_start.elapsed().as_secs()
    );
}
