//! A fleet of OpenWrt fakes behind real sshd, for the SSH benchmarks: many
//! started at once, their running state read fast and reset between runs.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use borne::policy::Wifi;

use super::{SshFake as _, TestSshd, current_user};
use crate::daemon::TestDaemon;

/// Radios of every fleet AP (a dual-band AP).
pub const RADIOS: [(&str, &str); 2] = [("radio0", "wlan0"), ("radio1", "wlan1")];

/// Starts `n` sshd-fronted fakes with [`RADIOS`], four at a time, whose
/// `wifi reload` sleeps `reload` like a real AP's; `None` when sshd is
/// missing (see [`super::require_sshd`]).
pub fn start(n: usize, reload: Duration) -> Option<Vec<TestSshd>> {
    super::require_sshd()?;
    let mut aps = Vec::with_capacity(n);
    while aps.len() < n {
        let batch = (n - aps.len()).min(4);
        let started: Vec<TestSshd> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..batch)
                .map(|_| {
                    s.spawn(|| {
                        let ap = TestSshd::start_with(&RADIOS).expect("sshd is installed");
                        ap.fake.set_reload_delay(reload);
                        ap
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("start sshd")).collect()
        });
        aps.extend(started);
    }
    Some(aps)
}

/// The running state of a fake: `Some(on)` when every radio's running
/// file says so, `None` while they disagree or a file is being rewritten
/// (`cp` truncates before writing: an empty read is not "off").
pub fn running(ap: &TestSshd) -> Option<bool> {
    let mut seen = None;
    for (radio, _) in RADIOS {
        let path = ap.fake.state_dir().join("running").join(radio);
        let on = match std::fs::read_to_string(&path).ok()?.trim() {
            "0" => true,
            "1" => false,
            _ => return None,
        };
        if seen.is_some_and(|s| s != on) {
            return None;
        }
        seen = Some(on);
    }
    seen
}

/// Puts every fake back to on (committed and running), as at install.
pub fn reset_on(aps: &[TestSshd]) {
    for ap in aps {
        for (radio, _) in RADIOS {
            ap.fake.set_radio(radio, true);
        }
    }
}

/// Connections sshd has accepted, over the whole fleet.
pub fn connections(aps: &[TestSshd]) -> usize {
    aps.iter().map(|ap| ap.connections()).sum()
}

/// Connections open now (accepted, not yet closed by the client), over
/// the whole fleet.
pub fn open_connections(aps: &[TestSshd]) -> usize {
    aps.iter().map(|ap| ap.open_connections()).sum()
}

/// A daemon configuration for the fleet: one classroom `c-<i>` per AP
/// `ap-<i>`, all in school `bench` on schedule `day` (`on` by default,
/// then `rules`, each a YAML flow mapping such as
/// `{ at: "0 18 * * *", mode: locked }`); `reconciler` and `ssh` are the
/// inside of those blocks (the SSH user is added). `STATE_DIR` is left for
/// [`TestDaemon::start`].
pub fn config_yaml(aps: &[TestSshd], reconciler: &str, ssh: &str, rules: &[&str]) -> String {
    let mut yaml = format!(
        "timezone: Europe/Paris\nlisten: 127.0.0.1:0\nstate_dir: STATE_DIR\n\
         reconciler: {{ {reconciler} }}\n\
         ssh: {{ user: \"{user}\", {ssh} }}\n\
         schedules:\n  day:\n    default_mode: on\n    rules:\n",
        user = current_user(),
    );
    for rule in rules {
        writeln!(yaml, "      - {rule}").expect("string write");
    }
    yaml.push_str("schools:\n  - id: bench\n    schedule: day\n    classrooms:\n");
    for (i, ap) in aps.iter().enumerate() {
        writeln!(
            yaml,
            "      - {{ id: c-{i}, access_points: [ {{ id: ap-{i}, ssh: {{ host: 127.0.0.1, port: {}, key_file: \"{}\", known_hosts: \"{}\" }} }} ] }}",
            ap.port,
            ap.client_key.display(),
            ap.known_hosts.display()
        )
        .expect("string write");
    }
    yaml
}

/// Waits until every fake runs `wifi` (the switched time), then until the
/// daemon has read it back from every AP of [`config_yaml`] (the confirmed
/// time), both from `start`; panics past `limit`. Polls every 10 ms,
/// pending APs only.
pub async fn wait_switched(
    d: &TestDaemon,
    aps: &[TestSshd],
    wifi: Wifi,
    start: Instant,
    limit: Duration,
) -> (Duration, Duration) {
    let want = wifi == Wifi::On;
    let mut pending: Vec<usize> = (0..aps.len()).collect();
    loop {
        pending.retain(|&i| running(&aps[i]) != Some(want));
        if pending.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "{} APs still not {wifi} after {limit:?}",
            pending.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let switched = start.elapsed();
    let mut pending: Vec<usize> = (0..aps.len()).collect();
    loop {
        pending.retain(|&i| {
            d.core
                .ap_state(&format!("ap-{i}").as_str().into())
                .is_none_or(|s| !s.observed.wifi.is(wifi))
        });
        if pending.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "borne did not see {} APs {wifi} after {limit:?}",
            pending.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (switched, start.elapsed())
}

/// The fleet sizes a benchmark runs: the comma-separated list in the
/// environment variable `var` (e.g. `50,200`), else 50 and 200.
pub fn sizes(var: &str) -> Vec<usize> {
    match std::env::var(var) {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}: numbers, e.g. 50,200"))
            })
            .filter(|&n| n > 0)
            .collect(),
        Err(_) => vec![50, 200],
    }
}

/// A runtime built like `borne run`'s: default worker threads (one per
/// core) and blocking pool (512 threads).
pub fn daemon_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The 1-minute load average: other work on the machine skews every figure.
pub fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
