//! Fault injection at the daemon level over SSH: the daemon runs in
//! process (`daemon::start` with a [`ManualClock`]) with access points
//! behind real OpenSSH `sshd` processes in front of the fake OpenWrt shell
//! (`tests/support/ssh`). Faults are those of a school's network: an AP
//! that refuses connections, one that accepts and then hangs, one that
//! answers garbage, one whose host key changed. Each must be reported as
//! what it is, none may delay the healthy APs, the one with the changed
//! key must never be switched, and all converge once repaired. A second
//! test switches an AP behind borne's back and expects the periodic
//! resync to put it back.
//!
//! Skipped (with a message) when `/usr/sbin/sshd` is missing, unless
//! `BORNE_REQUIRE_PEERS=1`, where that is a failure.
//!
//! **Login shell.** sshd runs every command as `<login shell> -c`, and
//! bash started by sshd reads `~/.bashrc` even when not interactive. On a
//! developer machine that file can cost a lot per command (here: root's
//! `pyenv init`, 0.3 s and a lock that serializes concurrent sessions)
//! and print to stderr; an OpenWrt AP's `ash` reads nothing. When the
//! tests run as root, each sshd therefore runs in a private mount
//! namespace where those rc files are an empty file (`unshare --mount`,
//! `mount --bind /dev/null`), visible to that sshd and its sessions only.

mod common;
// Its in-process russh server is not used here.
#[allow(unused_imports)]
#[path = "support/ssh/mod.rs"]
mod ssh_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use borne::driver::ObservedWifi;
use common::{ManualClock, TestDaemon};
use serde_json::Value;
use ssh_support::{RadioState, SshFake as _, TIMEOUT, TestSshd, current_user, keygen, known_hosts_line};

const ADMIN: &str = "admin-token-123";

// ------------------------------------------------------------ the peers

/// The rc files bash reads for a command run over SSH for `user`, when
/// they are not empty and the login shell is bash.
fn login_rc_files(user: &str) -> Vec<String> {
    let out = Command::new("getent").args(["passwd", user]).output();
    let line = out
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let fields: Vec<&str> = line.split(':').collect();
    let (Some(home), Some(shell)) = (fields.get(5), fields.get(6)) else {
        return Vec::new();
    };
    if !shell.ends_with("/bash") {
        return Vec::new();
    }
    [format!("{home}/.bashrc"), "/etc/bash.bashrc".to_owned()]
        .into_iter()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .collect()
}

/// The rc files to hide from the fakes' sessions, or nothing when that is
/// not needed or not possible (not root, no `unshare`).
fn rc_files_to_hide() -> Vec<String> {
    let rc = login_rc_files(&current_user());
    if rc.is_empty() {
        return rc;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    // A dry run: a container may forbid the namespace or the mount.
    let works = root
        && Path::new("/usr/bin/unshare").is_file()
        && Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(hide_script(&rc, "true"))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if works {
        rc
    } else {
        println!(
            "note: the fakes' commands run through {} (not root or no unshare)",
            rc.join(", ")
        );
        Vec::new()
    }
}

/// A shell script that hides `rc` (bind-mounts an empty file over each)
/// then runs `then`.
fn hide_script(rc: &[String], then: &str) -> String {
    let mut script = String::from("set -e; ");
    for f in rc {
        script.push_str(&format!(
            "mount --bind /dev/null {}; ",
            shlex::try_quote(f).expect("path without NUL")
        ));
    }
    script.push_str(then);
    script
}

/// Every process below `pid` (from `/proc/*/stat`).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((child, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, ppid) in &parent_of {
            if ppid == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// A [`TestSshd`] whose sshd, when the login shell needs it, is one this
/// test starts in a private mount namespace (see the module docs), on the
/// same port with the same configuration and host key. Stopped by PID,
/// with its session processes, on drop (also when the test panics).
struct Peer {
    server: TestSshd,
    hide: Vec<String>,
    own: Option<Child>,
}

impl Peer {
    fn start(hide: &[String]) -> Option<Peer> {
        let server = TestSshd::start()?;
        let mut peer = Peer {
            server,
            hide: hide.to_vec(),
            own: None,
        };
        if !peer.hide.is_empty() {
            peer.server.kill();
            peer.listen();
        }
        Some(peer)
    }

    fn fake(&self) -> &ssh_support::FakeOpenWrt {
        &self.server.fake
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    /// Starts sshd again on its port (after [`Peer::stop`]).
    fn listen(&mut self) {
        if self.hide.is_empty() {
            self.server.restart();
            return;
        }
        let dir = self.server.dir.path().join("sshd");
        let config = dir.join("sshd_config").display().to_string();
        let script = hide_script(
            &self.hide,
            &format!(
                "exec {} -D -e -f {}",
                ssh_support::SSHD,
                shlex::try_quote(&config).expect("path without NUL")
            ),
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("sshd.log"))
            .expect("open sshd.log");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut child = Command::new("/usr/bin/unshare")
                .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log.try_clone().expect("clone log"))
                .spawn()
                .expect("spawn unshare");
            // Wait until it accepts connections, or exits (port not yet free).
            let exited = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break true;
                }
                if std::net::TcpStream::connect(("127.0.0.1", self.port())).is_ok() {
                    break false;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "sshd did not listen on port {} within {TIMEOUT:?}:\n{}",
                        self.port(),
                        self.server.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if !exited {
                self.own = Some(child);
                return;
            }
            if Instant::now() > deadline {
                panic!("sshd in a mount namespace would not start:\n{}", self.server.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops sshd and its sessions: connections to its port are refused.
    fn stop(&mut self) {
        if let Some(mut child) = self.own.take() {
            let mut pids = descendants(child.id());
            pids.reverse();
            let _ = child.kill();
            let _ = child.wait();
            if !pids.is_empty() {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                let _ = Command::new("/bin/sh")
                    .arg("-c")
                    .arg(format!("kill -9 {} 2>/dev/null", list.join(" ")))
                    .status();
            }
        }
        self.server.kill();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The peers, or `None` (test skipped) without sshd.
fn peers(n: usize) -> Option<Vec<Peer>> {
    ssh_support::require_sshd()?;
    let hide = rc_files_to_hide();
    (0..n).map(|_| Peer::start(&hide)).collect()
}

// -------------------------------------------------------------- helpers

/// One `access_points:` entry for `peer`, settings from the `ssh:` block.
fn ap_yaml(id: &str, peer: &Peer) -> String {
    format!(
        "{{ id: {id}, ssh: {{ host: 127.0.0.1, port: {}, key_file: \"{}\", known_hosts: \"{}\" }} }}",
        peer.port(),
        peer.server.client_key.display(),
        peer.server.known_hosts.display()
    )
}

/// A configuration with one classroom `room-<id>` per AP, locked (off)
/// until 10:00, on from 10:00 to 11:00; `reconciler` and `ssh` blocks as given.
fn config_yaml(aps: &[(&str, &Peer)], reconciler: &str, ssh: &str) -> String {
    let mut yaml = format!(
        "demo: true\ntimezone: Europe/Paris\nlisten: 127.0.0.1:0\nstate_dir: STATE_DIR\n\
         reconciler: {reconciler}\nssh: {{ user: \"{}\", {ssh} }}\n\
         schedules:\n  day:\n    default_mode: locked\n    rules:\n\
         \x20     - {{ at: \"0 10 * * *\", mode: on }}\n\
         \x20     - {{ at: \"0 11 * * *\", mode: locked }}\n\
         users:\n  - {{ name: admin, role: admin, token: {ADMIN} }}\n\
         schools:\n  - id: s1\n    schedule: day\n    classrooms:\n",
        current_user()
    );
    for (id, peer) in aps {
        yaml.push_str(&format!(
            "      - {{ id: room-{id}, access_points: [ {} ] }}\n",
            ap_yaml(id, peer)
        ));
    }
    yaml
}

/// What the API says of AP `id`: its entry in `GET /api/v1/access-points`
/// and in `GET /api/v1/classrooms/room-<id>`, which must agree.
async fn api_view(d: &TestDaemon, id: &str) -> Value {
    let (status, list) = d.get(ADMIN, "/api/v1/access-points").await;
    assert_eq!(status, 200, "{list}");
    let entry = list["access_points"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in /api/v1/access-points: {list}"));
    let (status, room) = d.get(ADMIN, &format!("/api/v1/classrooms/room-{id}")).await;
    assert_eq!(status, 200, "{room}");
    let in_room = &room["access_points"][0];
    for key in ["reachable", "last_error", "observed"] {
        assert_eq!(
            entry[key], in_room[key],
            "{id}: {key} differs between the two endpoints"
        );
    }
    entry
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after [`TIMEOUT`].
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether borne has read AP `id` in state `wifi`, reachable and without error.
fn borne_sees(d: &TestDaemon, id: &str, wifi: ObservedWifi) -> bool {
    d.core
        .ap_state(&id.into())
        .is_some_and(|s| s.observed.wifi == wifi && s.observed.reachable && s.observed.last_error.is_none())
}

/// Every radio of the fake on (committed and running), as installed.
fn untouched(peer: &Peer) -> bool {
    let fake = peer.fake();
    fake.radios().iter().all(|r| {
        fake.state(r)
            == RadioState {
                committed_on: true,
                running_on: true,
            }
    }) && std::fs::read_dir(fake.state_dir().join("staged"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

/// Makes `ubus` wait while the fake's `hang` flag exists (30 s at most, as
/// the fake's `wifi reload` does with [`ssh_support::FakeOpenWrt::set_hang`]):
/// an AP whose netifd is wedged answers neither reads nor switches.
fn hang_ubus_too(peer: &Peer) {
    let bin = peer.fake().bin_dir();
    std::fs::rename(bin.join("ubus"), bin.join("ubus.real")).expect("move ubus");
    let wrapper = "#!/bin/sh\n\
                   i=0\n\
                   while [ -e \"$FAKE_DIR/hang\" ] && [ \"$i\" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\n\
                   exec \"$(dirname \"$0\")/ubus.real\" \"$@\"\n";
    std::fs::write(bin.join("ubus"), wrapper).expect("write ubus wrapper");
    std::fs::set_permissions(bin.join("ubus"), std::fs::Permissions::from_mode(0o755)).expect("chmod ubus");
}

fn count(commands: &[String], needle: &str) -> usize {
    commands.iter().filter(|c| c.contains(needle)).count()
}

// ---------------------------------------------------------------- tests

/// Four faulty APs and three healthy ones, `max_parallel: 4` (fewer slots
/// than APs, so a fault that held its slot would show) and
/// `command_timeout_seconds: 2`. The healthy ones are off before the
/// hanging AP's first operation has even timed out; each fault is
/// reported as what it is in both API endpoints; the AP whose host key
/// changed never runs a command; once repaired, all seven converge to the
/// desired state of now, then follow a schedule change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_aps_are_reported_and_delay_no_healthy_one() {
    let Some(mut p) = peers(7) else { return };
    let names = ["refused", "hang", "garbage", "hostkey", "ok-1", "ok-2", "ok-3"];
    let healthy = ["ok-1", "ok-2", "ok-3"];
    let idx = |name: &str| names.iter().position(|n| *n == name).expect("known AP");

    // refused: nothing listens on its port any more.
    p[idx("refused")].stop();
    // hang: sshd accepts, then `ubus` and `wifi reload` sleep up to 30 s.
    p[idx("hang")].fake().set_hang(true);
    hang_ubus_too(&p[idx("hang")]);
    // garbage: `ubus call network.wireless status` prints no JSON.
    p[idx("garbage")]
        .fake()
        .set_ubus_output(Some("<html><body>502 Bad Gateway</body></html>\n"));
    // hostkey: known_hosts holds another key for [127.0.0.1]:port.
    let hk = &p[idx("hostkey")];
    let right_known_hosts = std::fs::read_to_string(&hk.server.known_hosts).expect("read known_hosts");
    let other = keygen(&hk.server.dir.path().join("other_host_key"), "");
    std::fs::write(
        &hk.server.known_hosts,
        known_hosts_line(&format!("[127.0.0.1]:{}", hk.port()), &other),
    )
    .expect("write known_hosts");

    let aps: Vec<(&str, &Peer)> = names.iter().copied().zip(p.iter()).collect();
    let yaml = config_yaml(
        &aps,
        "{ max_parallel: 4, backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }",
        "connect_timeout_seconds: 2, command_timeout_seconds: 2",
    );
    // 09:00: locked, every AP must go off; every fake starts on.
    let clock = ManualClock::at("2026-12-01T09:00:00+01:00");
    let started = Instant::now();
    let d = TestDaemon::start(&yaml, clock.clone()).await;

    // The healthy APs are off, switched and read back, while the hanging
    // AP is still in its first operation. Bound: `command_timeout` (2 s),
    // the least a hung operation lasts before it fails. A healthy AP needs
    // one connection and four short commands (read, list radios, switch
    // with a 0 s reload, read back): tens of milliseconds here, so 2 s is
    // generous; and any design where a healthy AP waited for the hung
    // operation (a shared lock, a slot held, a serial loop) would take at
    // least that long.
    eventually("the healthy APs off", async || {
        healthy
            .iter()
            .all(|h| p[idx(h)].fake().all(false) && borne_sees(&d, h, ObservedWifi::Off))
    })
    .await;
    let healthy_took = started.elapsed();
    let hang_state = d.core.ap_state(&"hang".into());
    assert!(
        healthy_took < Duration::from_secs(2),
        "the healthy APs took {healthy_took:?} to switch, more than a hung operation lasts (2 s): \
         they waited for a faulty AP, or each command is slow here (hang AP: {hang_state:?})"
    );
    assert!(
        hang_state.as_ref().is_none_or(|s| s.consecutive_failures == 0),
        "the hanging AP's first operation already failed ({hang_state:?}) before the healthy APs were done ({healthy_took:?})"
    );

    // Each fault, as the API reports it once its first attempt failed.
    let expect: [(&str, &[&str]); 4] = [
        ("refused", &["unreachable", "refused"]),
        ("hang", &["timed out after 2 s"]),
        ("garbage", &["protocol error", "network.wireless", "JSON"]),
        ("hostkey", &["host key", "CHANGED", "not switched"]),
    ];
    for (id, words) in expect {
        eventually(&format!("{id} reported"), async || {
            d.core.ap_state(&id.into()).is_some_and(|s| s.consecutive_failures >= 1)
        })
        .await;
        let view = api_view(&d, id).await;
        assert_eq!(view["reachable"], false, "{id}: {view}");
        let error = view["last_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no last_error: {view}"));
        for w in words {
            assert!(error.contains(w), "{id}: last_error should say {w:?}: {error}");
        }
        // (The protocol error names the command, not the host: the API
        // entry and the log line carry the AP's id.)
        if id != "garbage" {
            assert!(
                error.contains(&format!("127.0.0.1:{}", p[idx(id)].port())),
                "{id}: names the AP: {error}"
            );
        }
    }
    for h in healthy {
        let view = api_view(&d, h).await;
        assert_eq!(
            (&view["reachable"], &view["last_error"], &view["observed"]),
            (&Value::from(true), &Value::Null, &Value::from("off")),
            "{h}: {view}"
        );
    }
    // The hung AP is still hanging: it has not even been read.
    assert!(untouched(&p[idx("hang")]), "the hanging AP was switched");

    // The AP with the changed host key: retried, and never reached further
    // than the key exchange: no login, no command, its state as installed.
    eventually("hostkey retried", async || {
        d.core
            .ap_state(&"hostkey".into())
            .is_some_and(|s| s.consecutive_failures >= 2)
    })
    .await;
    let hk = &p[idx("hostkey")];
    assert!(untouched(hk), "the AP with a changed host key was switched");
    assert_eq!(
        hk.fake().commands(),
        Vec::<String>::new(),
        "a command ran on the AP with a changed host key"
    );
    assert_eq!(
        hk.server.connections(),
        0,
        "borne logged in to the AP with a changed host key:\n{}",
        hk.server.log()
    );

    // Repair everything. No reload is needed: the retries (backoff 1 s)
    // pick it up, and known_hosts is read again at every connection.
    p[idx("refused")].listen();
    p[idx("hang")].fake().set_hang(false);
    p[idx("garbage")].fake().set_ubus_output(None);
    std::fs::write(&p[idx("hostkey")].server.known_hosts, &right_known_hosts).expect("restore known_hosts");
    let repaired = Instant::now();
    eventually("every AP off and healthy", async || {
        names
            .iter()
            .all(|n| p[idx(n)].fake().all(false) && borne_sees(&d, n, ObservedWifi::Off))
    })
    .await;
    let repaired_took = repaired.elapsed();
    for n in names {
        let view = api_view(&d, n).await;
        assert_eq!(
            (&view["reachable"], &view["last_error"], &view["observed"]),
            (&Value::from(true), &Value::Null, &Value::from("off")),
            "{n}: {view}"
        );
    }

    // And they all follow the next schedule change.
    clock.set("2026-12-01T10:00:01+01:00");
    d.core.poke();
    eventually("every AP on", async || {
        names
            .iter()
            .all(|n| p[idx(n)].fake().on_with_saved_off() && borne_sees(&d, n, ObservedWifi::On))
    })
    .await;
    println!("healthy APs off in {healthy_took:?}; all seven converged {repaired_took:?} after the repairs");
    d.stop().await;
}

/// An AP switched behind borne's back is put back at the next resync
/// (`resync_seconds: 1`, the least the configuration allows), with no
/// schedule change and no poke; a resync that finds the AP right only
/// reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ap_switched_behind_borne_back_is_corrected_at_next_resync() {
    let Some(p) = peers(2) else { return };
    let aps = [("luci", &p[0]), ("wifi-up", &p[1])];
    let yaml = config_yaml(
        &aps,
        "{ resync_seconds: 1, backoff_initial_seconds: 1, backoff_max_seconds: 1 }",
        "connect_timeout_seconds: 5, command_timeout_seconds: 10",
    );
    let d = TestDaemon::start(&yaml, ManualClock::at("2026-12-01T09:00:00+01:00")).await;
    eventually("both off", async || {
        aps.iter()
            .all(|(id, peer)| peer.fake().all(false) && borne_sees(&d, id, ObservedWifi::Off))
    })
    .await;

    // Resyncs of APs that are right read them and switch nothing.
    let before: Vec<Vec<String>> = p.iter().map(|peer| peer.fake().commands()).collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (peer, before) in p.iter().zip(&before) {
        let now = peer.fake().commands();
        assert_eq!(
            count(&now, "wifi reload"),
            count(before, "wifi reload"),
            "a resync switched a right AP: {now:#?}"
        );
        assert!(
            count(&now, "ubus call") > count(before, "ubus call"),
            "no resync read the AP in 2.5 s: {now:#?}"
        );
    }

    // Behind borne's back: all radios on and saved (LuCI), or one radio
    // brought up by hand without saving (`wifi up radio0`).
    let reloads: Vec<usize> = p
        .iter()
        .map(|peer| count(&peer.fake().commands(), "wifi reload"))
        .collect();
    for r in p[0].fake().radios() {
        p[0].fake().set_radio(&r, true);
    }
    p[1].fake().set_running("radio0", true);
    let flipped = Instant::now();
    eventually("both put back off", async || {
        aps.iter()
            .all(|(id, peer)| peer.fake().all(false) && borne_sees(&d, id, ObservedWifi::Off))
    })
    .await;
    let took = flipped.elapsed();
    for (peer, reloads) in p.iter().zip(reloads) {
        assert!(
            count(&peer.fake().commands(), "wifi reload") > reloads,
            "not switched back by borne"
        );
    }
    // One resync period, then one switch: well under 5 s, and nothing but
    // the resync (no schedule change, no poke, no request) was there to do it.
    assert!(took < Duration::from_secs(5), "corrected only after {took:?}");
    println!("corrected {took:?} after the change behind borne's back");
    d.stop().await;
}
