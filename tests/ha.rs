//! Several `borne` processes on one real PostgreSQL cluster (issue 17 §3):
//! one leader drives the access points, followers serve the API, a
//! failover takes seconds and loses nothing.
//!
//! Every test starts a throwaway PostgreSQL cluster (skipped with a note
//! when PostgreSQL is not installed, mandatory under
//! `BORNE_REQUIRE_PEERS=1`), fake OpenWrt access points behind in-process
//! SSH servers (their command logs count every switch: a new leader
//! observes before acting, so a failover sends nothing to an AP that is
//! right), and real `borne run` processes with `--listen` and
//! `BORNE_INSTANCE_ID`, the same configuration file for all.

use std::fs::File;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borne_test_support::daemon::{DaemonProcess, borne_bin};
use borne_test_support::fixtures::{ADMIN_TOKEN, HEAD, TEACHER_TOKEN, users};
use borne_test_support::http;
use borne_test_support::postgres::PgCluster;
use borne_test_support::ssh::{InProcessSsh, SshFake, ap_yaml};
use borne_test_support::wait::{TIMEOUT, free_port};
use serde_json::{Value, json};

/// Polls `condition` every 50 ms for at most `limit`; panics with `what`.
fn poll(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn request(method: &str, url: &str, token: &str, body: &str) -> Option<(u16, Value)> {
    borne_test_support::api_call::call(method, url, token, body, Duration::from_secs(20))
}

/// The test bench: PostgreSQL, one fake AP per classroom (`c1`…), the
/// configuration every instance runs.
struct Lab {
    pg: PgCluster,
    dir: tempfile::TempDir,
    config: PathBuf,
    fakes: Vec<InProcessSsh>,
}

impl Lab {
    /// `n` classrooms; `reconciler` is the reconciler block's content.
    fn start(n: usize, reconciler: &str) -> Option<Lab> {
        let pg = PgCluster::start()?;
        let url = pg.create_database("borne_ha");
        let dir = tempfile::tempdir().expect("temporary directory");
        let fakes: Vec<InProcessSsh> = (0..n).map(|_| InProcessSsh::start()).collect();
        let mut yaml = HEAD.replace("STATE_DIR", &dir.path().join("state").display().to_string());
        yaml.push_str(&format!("database: {{ url: \"{url}\", tls: disable }}\n"));
        yaml.push_str("ha: { lease_seconds: 2 }\n");
        yaml.push_str(&format!("reconciler: {{ {reconciler} }}\n"));
        yaml.push_str("failsafe: { lease_minutes: 0 }\nlimits: { writes_per_minute: 100000 }\n");
        yaml.push_str("schedules:\n  open: { default_mode: available, rules: [] }\n");
        yaml.push_str("schools:\n  - id: s\n    schedule: open\n    classrooms:\n");
        for (i, fake) in fakes.iter().enumerate() {
            yaml.push_str(&format!(
                "      - id: c{}\n        access_points:\n          - {}\n",
                i + 1,
                ap_yaml(&format!("ap-{}", i + 1), fake)
            ));
        }
        yaml.push_str(&users("schools: [s]"));
        let config = dir.path().join("borne.yaml");
        std::fs::write(&config, yaml).expect("write the configuration");
        Some(Lab { pg, dir, config, fakes })
    }

    /// `borne run` as instance `id` on `port` (`--listen`, and the id
    /// from the environment), its log in the lab's directory.
    fn spawn(&self, id: &str, port: u16) -> DaemonProcess {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("log file");
        let child = Command::new(borne_bin())
            .args(["run", "--config"])
            .arg(&self.config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("BORNE_INSTANCE_ID", id)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn borne");
        let mut p = DaemonProcess {
            child,
            port,
            config: self.config.clone(),
        };
        let deadline = Instant::now() + TIMEOUT;
        while !http::is_ready(port) {
            if let Some(status) = p.child.try_wait().expect("try_wait") {
                panic!("borne {id} exited ({status}):\n{}", self.log(id));
            }
            assert!(Instant::now() < deadline, "borne {id} not ready:\n{}", self.log(id));
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("{id}.log"))
    }

    fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// The switches (`on`/`off`) each fake received, in order.
    fn switches(&self) -> Vec<Vec<&'static str>> {
        self.fakes.iter().map(|f| switches_of(&f.fake().commands())).collect()
    }

    /// Waits until every fake's radios are `on` as `wanted` says.
    fn wait_radios(&self, wanted: &[bool]) {
        for (i, (fake, on)) in self.fakes.iter().zip(wanted).enumerate() {
            poll(
                &format!("c{} radios {}", i + 1, if *on { "on" } else { "off" }),
                TIMEOUT,
                || fake.fake().all(*on),
            );
        }
    }
}

/// The switch commands in a fake's log: `on` or `off` for each
/// `uci set … disabled=… && wifi reload`.
fn switches_of(commands: &[String]) -> Vec<&'static str> {
    commands
        .iter()
        .filter(|c| c.contains("wifi reload"))
        .map(|c| if c.contains("disabled=1") { "off" } else { "on" })
        .collect()
}

/// No switch repeats the one before it: each change of desired state
/// reached the device once. A repeat means a leader sent a device the
/// state it was already in (read it, then switched it anyway).
fn assert_no_double_switch(lab: &Lab) {
    for (i, s) in lab.switches().iter().enumerate() {
        for pair in s.windows(2) {
            assert_ne!(
                pair[0],
                pair[1],
                "c{} switched {} twice in a row: {s:?}\nwhat the instances did:\n{}",
                i + 1,
                pair[0],
                decisions(lab)
            );
        }
    }
}

/// The lines of both instances' logs that say who led and what was switched.
fn decisions(lab: &Lab) -> String {
    let mut out = String::new();
    for id in ["a", "b"] {
        for line in lab.log(id).lines() {
            if line.contains("switched") || line.contains("leader") || line.contains("leadership") {
                out.push_str(&format!("{id}: {line}\n"));
            }
        }
    }
    out
}

/// `(self, role of self)` from `GET /api/v1/cluster`, or `None` when the
/// instance does not answer.
fn role(port: u16) -> Option<String> {
    let (status, body) = http::get(port, "/api/v1/cluster", ADMIN_TOKEN)?;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    let me = v["self"].as_str()?.to_owned();
    v["instances"]
        .as_array()?
        .iter()
        .find(|i| i["id"] == me.as_str())
        .and_then(|i| i["role"].as_str().map(str::to_owned))
}

fn is_leader(p: &DaemonProcess) -> bool {
    role(p.port).as_deref() == Some("leader")
}

/// A metric's value in `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = http::get(port, "/metrics", ADMIN_TOKEN)?;
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

fn set_override(p: &DaemonProcess, classroom: &str, wifi: &str, reason: &str) -> Option<(u16, Value)> {
    request(
        "PUT",
        &p.url(&format!("/api/v1/classrooms/{classroom}/override")),
        ADMIN_TOKEN,
        &json!({"wifi": wifi, "reason": reason}).to_string(),
    )
}

fn classroom(p: &DaemonProcess, id: &str) -> Value {
    request("GET", &p.url(&format!("/api/v1/classrooms/{id}")), ADMIN_TOKEN, "")
        .map(|(_, v)| v)
        .unwrap_or(Value::Null)
}

/// Two instances, `a` leading (started first), `b` following.
fn pair(lab: &Lab) -> (DaemonProcess, DaemonProcess) {
    let a = lab.spawn("a", free_port());
    poll("a to lead", TIMEOUT, || is_leader(&a));
    let b = lab.spawn("b", free_port());
    poll("b to follow and see a leading", TIMEOUT, || {
        role(b.port).as_deref() == Some("follower")
            && http::get(b.port, "/api/v1/cluster", ADMIN_TOKEN).is_some_and(|(_, body)| {
                serde_json::from_str::<Value>(&body).is_ok_and(|v| {
                    v["instances"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|i| i["id"] == "a" && i["role"] == "leader"))
                })
            })
    });
    (a, b)
}

/// Scenario 1: a teacher request through the follower switches the AP
/// through the leader; the follower's event stream sees the change and
/// the leader's observation.
#[test]
fn a_request_through_the_follower_switches_through_the_leader() {
    let Some(lab) = Lab::start(
        2,
        "backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600",
    ) else {
        return;
    };
    let (a, b) = pair(&lab);
    // Available, nobody asked: the leader switches both off at start.
    lab.wait_radios(&[false, false]);
    assert_eq!(metric(a.port, "borne_leader"), Some(1.0));
    assert_eq!(metric(b.port, "borne_leader"), Some(0.0));

    // The follower's event stream, read on a thread.
    let events = Arc::new(Mutex::new(String::new()));
    {
        let events = events.clone();
        let url = b.url("/api/v1/events");
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(None::<Duration>)
                .build()
                .expect("client");
            let Ok(mut r) = client.get(url).bearer_auth(TEACHER_TOKEN).send() else {
                return;
            };
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    return;
                }
                events.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    poll("the follower's stream to start", TIMEOUT, || {
        events.lock().unwrap().contains("\"c2\"")
    });
    let seen_before = events.lock().unwrap().len();

    let (status, body) = request(
        "POST",
        &b.url("/api/v1/classrooms/c1/wifi"),
        TEACHER_TOKEN,
        r#"{"wifi":"on"}"#,
    )
    .expect("the follower answers");
    assert_eq!(status, 200, "{body}");
    lab.wait_radios(&[true, false]);
    assert_eq!(lab.switches()[0], ["off", "on"], "one switch for the request");

    // The follower's stream shows the change, then the leader's observation.
    let statuses = || -> Vec<Value> {
        let text = events.lock().unwrap()[seen_before..].to_owned();
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .filter(|v| v["id"] == "c1")
            .collect()
    };
    poll("the follower's stream to show c1 on", TIMEOUT, || {
        statuses().iter().any(|s| s["wifi"] == "on")
    });
    poll("the follower's stream to show c1's AP observed on", TIMEOUT, || {
        statuses().iter().any(|s| s["access_points"][0]["observed"] == "on")
    });
    assert_eq!(classroom(&b, "c1")["access_points"][0]["observed"], "on");
    // The leader never saw the request itself: it came through PostgreSQL.
    assert!(!lab.log("a").contains("teacher.on"), "{}", lab.log("a"));
    assert_no_double_switch(&lab);
}

/// What a writer thread sent: classroom, reason, wifi, acknowledged.
type Sent = Arc<Mutex<Vec<(String, String, String, bool)>>>;

/// Overrides alternating on and off over the classrooms, to `port`,
/// until `stop`.
fn writer(port: u16, tag: &'static str, classrooms: usize, sent: Sent, stop: Arc<std::sync::atomic::AtomicBool>) {
    let url = format!("http://127.0.0.1:{port}");
    let mut k = 0usize;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let c = format!("c{}", k % classrooms + 1);
        let wifi = if (k / classrooms).is_multiple_of(2) {
            "on"
        } else {
            "off"
        };
        let reason = format!("{tag}-{k}");
        sent.lock()
            .unwrap()
            .push((c.clone(), reason.clone(), wifi.into(), false));
        let body = json!({"wifi": wifi, "reason": reason}).to_string();
        match request(
            "PUT",
            &format!("{url}/api/v1/classrooms/{c}/override"),
            ADMIN_TOKEN,
            &body,
        ) {
            Some((200, _)) => sent.lock().unwrap().last_mut().unwrap().3 = true,
            Some(_) | None => std::thread::sleep(Duration::from_millis(20)),
        }
        k += 1;
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// Scenario 2: `kill -9` of the leader during a burst of requests sent to
/// both instances. The follower leads within 5 s; every acknowledged
/// request is in the database and on the devices; no AP is switched twice
/// for one change.
#[test]
fn kill_9_of_the_leader_during_a_burst_fails_over_within_5_s_and_loses_nothing() {
    let Some(lab) = Lab::start(
        3,
        "backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600",
    ) else {
        return;
    };
    let (mut a, b) = pair(&lab);
    lab.wait_radios(&[false, false, false]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent: Vec<Sent> = vec![Sent::default(), Sent::default()];
    let threads: Vec<_> = [(a.port, "a", sent[0].clone()), (b.port, "b", sent[1].clone())]
        .into_iter()
        .map(|(port, tag, s)| {
            let stop = stop.clone();
            std::thread::spawn(move || writer(port, tag, 3, s, stop))
        })
        .collect();
    poll("requests acknowledged by both", TIMEOUT, || {
        sent.iter()
            .all(|s| s.lock().unwrap().iter().filter(|e| e.3).count() >= 10)
    });
    a.signal("KILL");
    let killed = Instant::now();
    a.wait_exit(TIMEOUT).expect("killed");
    poll("b to lead", TIMEOUT, || is_leader(&b));
    let failover = killed.elapsed();
    assert!(failover < Duration::from_secs(5), "b took {failover:?} to lead");
    assert_eq!(metric(b.port, "borne_failovers_total"), Some(1.0));
    // The burst goes on against the new leader for a moment.
    let acked_b = sent[1].lock().unwrap().iter().filter(|e| e.3).count();
    poll("more requests acknowledged by b", TIMEOUT, || {
        sent[1].lock().unwrap().iter().filter(|e| e.3).count() >= acked_b + 10
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in threads {
        t.join().expect("writer");
    }

    // Every acknowledged request has its audit line in PostgreSQL.
    let audit = lab.pg.psql(
        "borne_ha",
        "SELECT detail FROM audit WHERE action = 'override.set' AND result = 'accepted'",
    );
    let mut acked = 0;
    for s in &sent {
        for (_, reason, _, ok) in s.lock().unwrap().iter().filter(|e| e.3) {
            let _ = ok;
            acked += 1;
            assert!(
                audit.lines().any(|d| d.ends_with(&format!(": {reason}"))),
                "acknowledged {reason} is not in the database"
            );
        }
    }
    assert!(acked >= 30, "too few acknowledged requests to mean anything: {acked}");
    // Each classroom ends as its override in force says, on the devices
    // too, and that override is one that was sent.
    for (i, fake) in lab.fakes.iter().enumerate() {
        let c = format!("c{}", i + 1);
        let s = classroom(&b, &c);
        let reason = s["override"]["reason"].as_str().expect("an override").to_owned();
        let sent_it = sent
            .iter()
            .any(|l| l.lock().unwrap().iter().any(|e| e.0 == c && e.1 == reason));
        assert!(sent_it, "{c}: unknown override {reason}");
        let on = s["wifi"] == "on";
        poll(&format!("{c} radios as its override"), TIMEOUT, || fake.fake().all(on));
    }
    assert_no_double_switch(&lab);
}

/// Scenario 3: the old leader comes back and follows; leadership does
/// not flap and no AP is switched.
#[test]
fn the_old_leader_restarts_as_a_follower_without_flapping() {
    let Some(lab) = Lab::start(
        2,
        "backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600",
    ) else {
        return;
    };
    let (mut a, b) = pair(&lab);
    lab.wait_radios(&[false, false]);
    assert_eq!(set_override(&a, "c1", "on", "before the crash").map(|r| r.0), Some(200));
    lab.wait_radios(&[true, false]);
    a.signal("KILL");
    a.wait_exit(TIMEOUT).expect("killed");
    poll("b to lead", TIMEOUT, || is_leader(&b));
    let port = a.port;
    drop(a);
    let before = lab.switches();
    let failovers = metric(b.port, "borne_failovers_total");
    let a = lab.spawn("a", port);
    poll("a to say it follows", TIMEOUT, || {
        role(a.port).as_deref() == Some("follower")
    });
    // Watched for longer than a few lock attempts and heartbeats.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert_eq!(role(b.port).as_deref(), Some("leader"), "b stopped leading");
        assert_eq!(role(a.port).as_deref(), Some("follower"), "a took the lead back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(b.port, "borne_failovers_total"), failovers);
    assert_eq!(metric(a.port, "borne_failovers_total"), Some(0.0));
    assert_eq!(lab.switches(), before, "the restart switched something");
    // The returning instance serves the state it did not see change.
    assert_eq!(classroom(&a, "c1")["override"]["reason"], "before the crash");
}

/// Scenario 4: PostgreSQL restarts. While it is down no request is
/// acknowledged (503 `database_unavailable`); afterwards both instances
/// reconnect, exactly one leads, and nothing is lost.
#[test]
fn a_database_restart_acknowledges_nothing_while_down_and_ends_with_one_leader() {
    let Some(mut lab) = Lab::start(
        2,
        "backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600",
    ) else {
        return;
    };
    let (a, b) = pair(&lab);
    lab.wait_radios(&[false, false]);
    assert_eq!(set_override(&b, "c1", "on", "kept").map(|r| r.0), Some(200));
    lab.wait_radios(&[true, false]);

    lab.pg.stop();
    for (k, p) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (status, body) = set_override(p, "c2", "on", &format!("down-{k}")).expect("the API answers");
        assert_eq!(status, 503, "acknowledged while the database was down: {body}");
        assert_eq!(body["error"], "database_unavailable", "{body}");
        assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{body}");
    }
    // Reads still serve the last known state.
    assert_eq!(classroom(&a, "c1")["override"]["reason"], "kept");
    lab.pg.restart();

    poll("exactly one leader after the restart", TIMEOUT, || {
        [&a, &b].iter().filter(|p| is_leader(p)).count() == 1
    });
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let leaders = [&a, &b].iter().filter(|p| is_leader(p)).count();
        assert_eq!(leaders, 1, "leaders after the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    poll("requests acknowledged again", TIMEOUT, || {
        set_override(&a, "c2", "on", "after").is_some_and(|r| r.0 == 200)
    });
    lab.wait_radios(&[true, true]);
    assert_eq!(classroom(&b, "c1")["override"]["reason"], "kept", "nothing lost");
    let stored = lab.pg.psql(
        "borne_ha",
        "SELECT count(*) FROM audit WHERE detail LIKE '%down-%' AND result = 'accepted'",
    );
    assert_eq!(stored.trim(), "0", "a refused request was stored");
    assert_no_double_switch(&lab);
}

/// Scenario 5: the leader is frozen (SIGSTOP) for longer than the fencing
/// window. The other instance takes over; once the frozen one runs again
/// it drives nothing (its pending switch is refused by the fence) and
/// follows.
#[test]
fn a_frozen_leader_drives_nothing_after_it_resumes() {
    // A switch waits 4 s after the previous one, so the frozen leader
    // holds a switch it has not sent yet.
    let Some(lab) = Lab::start(
        1,
        "backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600, min_switch_interval_seconds: 4",
    ) else {
        return;
    };
    let (a, b) = pair(&lab);
    lab.wait_radios(&[false]);
    // Wait out the start's switch interval, then switch on through a.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(set_override(&a, "c1", "on", "first").map(|r| r.0), Some(200));
    lab.wait_radios(&[true]);
    // Off at once: a holds it for the switch interval, and is frozen.
    assert_eq!(set_override(&a, "c1", "off", "second").map(|r| r.0), Some(200));
    a.signal("STOP");
    let frozen = Instant::now();
    poll("b to take over from the frozen leader", TIMEOUT, || is_leader(&b));
    let takeover = frozen.elapsed();
    // ha.lease_seconds 2: PostgreSQL ends a silent leader's session 4 s
    // after its last query; b tries every second.
    assert!(takeover < Duration::from_secs(10), "takeover took {takeover:?}");
    lab.wait_radios(&[false]);
    let before = lab.switches();
    assert_eq!(before[0].last(), Some(&"off"));
    a.signal("CONT");
    poll("a to follow again", TIMEOUT, || {
        role(a.port).as_deref() == Some("follower")
    });
    // Longer than a's switch interval and a lock check: whatever a still
    // held, it did not send.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lab.switches(), before, "the resumed leader drove the AP");
    assert!(is_leader(&b));
    assert!(
        lab.log("a").contains("stepped down"),
        "a does not say it stepped down:\n{}",
        lab.log("a")
    );
    assert_no_double_switch(&lab);
}
