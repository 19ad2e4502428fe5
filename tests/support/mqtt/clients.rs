//! Mosquitto and its command-line clients as the benchmarks drive them:
//! a broker started without a runtime ([`PlainMosquitto`]), a
//! `mosquitto_sub` whose lines a thread collects ([`Subscriber`]), and one
//! `mosquitto_pub` ([`publish`]). Every process is killed by PID on drop.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::wait::free_port;

/// The topic a [`Subscriber`] waits on to know it is subscribed.
const READY_TOPIC: &str = "bench/ready";

/// Mosquitto on a free loopback port, started and waited for without an
/// async runtime.
pub struct PlainMosquitto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl PlainMosquitto {
    /// Starts `bin` (anonymous, no persistence, `TCP_NODELAY`) with
    /// `extra` appended to its configuration, and waits until it listens.
    pub fn start(bin: &Path, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = super::spawn_mosquitto(
            bin,
            dir.path(),
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n\
                 log_dest stderr\nlog_type error\nlog_type warning\n{extra}"
            ),
        );
        let mut me = PlainMosquitto { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("mosquitto exited with {status}: {}", me.log());
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen: {}", me.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        me
    }

    /// What it wrote on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PlainMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as `mosquitto_sub` printed it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Unix time, seconds (CLOCK_REALTIME of the subscriber).
    pub at: f64,
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: String,
}

/// `mosquitto_sub -q 1` on a filter, its lines read by a thread.
pub struct Subscriber {
    child: Child,
    seen: Arc<Mutex<Vec<Arrival>>>,
    /// Messages per payload, kept by the reader so that polling costs
    /// nothing while borne works.
    counts: Arc<Mutex<HashMap<String, usize>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Starts it on `filter` and returns once its subscription is in place
    /// (a marker it publishes came back); nothing before that is kept.
    pub fn start(port: u16, filter: &str) -> Subscriber {
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-i"])
            .arg(format!("bench-sub-{}", std::process::id()))
            .args(["-t", filter, "-t", READY_TOPIC, "-F", "%U %t %p"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto_sub");
        let out = child.stdout.take().expect("piped stdout");
        let seen: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let reader = {
            let seen = Arc::clone(&seen);
            let counts = Arc::clone(&counts);
            // Ends at EOF, when the process is killed.
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { return };
                    let mut parts = line.splitn(3, ' ');
                    let (Some(at), Some(topic)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let Ok(at) = at.parse::<f64>() else { continue };
                    let payload = parts.next().unwrap_or("").to_owned();
                    if topic != READY_TOPIC {
                        *counts.lock().unwrap().entry(payload.clone()).or_default() += 1;
                    }
                    seen.lock().unwrap().push(Arrival {
                        at,
                        topic: topic.to_owned(),
                        payload,
                    });
                }
            })
        };
        let sub = Subscriber {
            child,
            seen,
            counts,
            reader: Some(reader),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            publish(port, READY_TOPIC, "ready");
            let wait_until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < wait_until {
                let mut seen = sub.seen.lock().unwrap();
                if seen.iter().any(|a| a.topic == READY_TOPIC) {
                    seen.clear();
                    sub.counts.lock().unwrap().clear();
                    drop(seen);
                    return sub;
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(Instant::now() < deadline, "mosquitto_sub did not subscribe");
        }
    }

    /// Messages `payload` received so far.
    pub fn count(&self, payload: &str) -> usize {
        self.counts.lock().unwrap().get(payload).copied().unwrap_or(0)
    }

    /// Messages received so far, any payload.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }

    /// Every message received so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.topic != READY_TOPIC)
            .cloned()
            .collect()
    }

    /// The messages `payload` received so far.
    pub fn arrivals_of(&self, payload: &str) -> Vec<Arrival> {
        self.arrivals().into_iter().filter(|a| a.payload == payload).collect()
    }

    /// Polls until `n` messages `payload` arrived; `false` after `limit`.
    pub fn wait_count(&self, payload: &str, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.count(payload) < n {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// One `mosquitto_pub -q 1` (connect, publish, wait for PUBACK, disconnect).
pub fn publish(port: u16, topic: &str, payload: &str) {
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            payload,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub failed: {status}");
}
