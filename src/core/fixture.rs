//! A core over a real SQLite file in a temporary directory, with a clock
//! the test sets: what the unit tests of the write and read paths share.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{Actor, Clock, Core};
use crate::config::{Config, User};
use crate::store::sqlite::SqliteStore;
use crate::store::{AuditEntry, AuditQuery, Store as _, Writer};

/// Tuesday 1 December 2026 in Paris: available 08:30-17:00, locked
/// otherwise; classroom c3's school is on holiday. The same file serves
/// `tests/api.rs`.
pub const CONFIG: &str = include_str!("../../tests/support/fixtures/two-schools.yaml");

/// A clock the test sets.
#[derive(Debug)]
pub struct TestClock(pub Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A core and what it runs on.
pub struct Fixture {
    pub core: Arc<Core>,
    pub clock: Arc<TestClock>,
    pub store: Arc<SqliteStore>,
    /// Holds the database; removed when the test ends.
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A core on [`CONFIG`] at `now` (RFC 3339), over an empty database.
    pub fn new(now: &str) -> Fixture {
        Self::with_config(CONFIG, now)
    }

    /// A core on `yaml` at `now`.
    pub fn with_config(yaml: &str, now: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(Self::config(&dir, yaml));
        let store = Arc::new(SqliteStore::open(&config.state_dir).unwrap());
        let snapshot = store.load().unwrap();
        let writer = Writer::start(store.clone()).unwrap();
        let clock = Arc::new(TestClock(Mutex::new(now.parse().unwrap())));
        let core = Core::new(config, snapshot, writer, clock.clone());
        Fixture {
            core,
            clock,
            store,
            _dir: dir,
        }
    }

    /// `yaml` validated, its state directory in this fixture's.
    pub fn config(dir: &tempfile::TempDir, yaml: &str) -> Config {
        let text = yaml.replace("STATE_DIR", &dir.path().join("state").display().to_string());
        match crate::config::from_str(&text, "test.yaml", Some(dir.path())) {
            Ok(l) => l.config,
            Err(e) => panic!("test configuration invalid: {e}"),
        }
    }

    /// Another configuration in this fixture's directory (for reloads).
    pub fn variant(&self, yaml: &str) -> Arc<Config> {
        Arc::new(Self::config(&self._dir, yaml))
    }

    /// CONFIG without classroom `id` (and its access points); a teacher
    /// of it gets c3 instead.
    pub fn without(id: &str) -> String {
        CONFIG
            .replace(&format!("classrooms: [{id}]"), "classrooms: [c3]")
            .lines()
            .scan(false, |skipping, line| {
                if line.trim_start().starts_with("- id: ") {
                    *skipping = line.trim_start() == format!("- id: {id}");
                }
                Some((!*skipping).then_some(line))
            })
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The sessions and overrides the database holds, by classroom id.
    pub async fn stored(&self) -> (Vec<String>, Vec<String>) {
        self.core.writer().flush().await.unwrap();
        let snapshot = self.store.load().unwrap();
        let mut s: Vec<String> = snapshot.sessions.iter().map(|(c, _)| c.to_string()).collect();
        let mut o: Vec<String> = snapshot.overrides.iter().map(|(c, _)| c.to_string()).collect();
        s.sort();
        o.sort();
        (s, o)
    }

    /// The `detail` of every `session.end` row, oldest first.
    pub async fn session_ends(&self) -> Vec<String> {
        self.audit()
            .await
            .into_iter()
            .filter(|e| e.record.action == "session.end")
            .map(|e| format!("{} {}", e.record.classroom.unwrap_or_default(), e.record.detail))
            .collect()
    }

    /// The core a restart would build from the same database.
    pub fn restarted(&self) -> Arc<Core> {
        let snapshot = self.store.load().unwrap();
        let writer = Writer::start(self.store.clone()).unwrap();
        Core::new(self.core.config(), snapshot, writer, self.clock.clone())
    }

    /// Sets the clock.
    pub fn set_now(&self, t: &str) {
        *self.clock.0.lock().unwrap() = t.parse().unwrap();
    }

    /// A user of the configuration.
    pub fn user(&self, name: &str) -> User {
        self.core
            .config()
            .users
            .iter()
            .find(|u| u.name == name)
            .unwrap()
            .clone()
    }

    /// Every audit line, oldest first, once queued writes are durable.
    pub async fn audit(&self) -> Vec<AuditEntry> {
        self.core.writer().flush().await.unwrap();
        let mut lines = self
            .core
            .writer()
            .audit(AuditQuery {
                limit: 10_000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        lines.reverse();
        lines
    }
}

/// An actor for `user` from loopback.
pub fn actor(user: &User) -> Actor<'_> {
    Actor {
        user,
        source: Some("127.0.0.1".into()),
        via: "token",
    }
}
