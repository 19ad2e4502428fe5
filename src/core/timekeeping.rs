//! The wall clock under watch. The planner calls [`Core::check_clock`] at
//! every pass (at least every 30 s), and every teacher request and override
//! looks for a step before it reads the time, so that nothing made at the
//! new time is moved by the step it follows:
//!
//! - **A step** (the wall clock moved more than 2 s against the monotonic
//!   clock, either way) is logged at `warn`, counted, audited
//!   (`clock.step`), and moves the end (and start) of every teacher session
//!   and IT override by the step, so that each keeps its remaining *real*
//!   duration: a 1-minute session lasts one real minute whatever the clock
//!   did. The planner then re-evaluates every classroom at the new time;
//!   no "time never goes backwards" mark holds decisions frozen.
//! - **Synchronisation** (kernel state and plausibility, `crate::clock`)
//!   is re-read at each pass; a change is logged at `warn` and shown by
//!   the `borne_clock_synchronized` gauge and `/readyz`. With
//!   `clock.require_sync: true`, while the clock is not synchronised no new
//!   "on" is accepted, the schedule's `on` acts as `available`, and teacher
//!   "on" sessions end (reason `clock`); IT overrides keep applying.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{Core, SessionEnd, session_end_record};
use crate::clock::{StepDetector, SyncState};
use crate::config::ClassroomId;
use crate::policy::{Desired, Reason, Wifi};
use crate::store::{AuditRecord, Batch};

/// What the planner last learnt of the clock.
#[derive(Debug, Default)]
pub(super) struct Timekeeping {
    steps: StepDetector,
    /// `None` before the first read.
    sync: Option<SyncState>,
    /// The last step seen since borne started.
    last_step: Option<ClockStep>,
    /// A step was acted on since the planner's last look: its next pass
    /// re-evaluates every classroom.
    stepped: bool,
}

/// The clock's state as `/readyz` and the dashboard show it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClockStatus {
    /// Kernel-synchronised and not before the build date.
    pub synchronized: bool,
    /// `clock.require_sync`: no new "on" while not synchronised.
    pub require_sync: bool,
    /// What the kernel says (`adjtimex`); `null` when it cannot be asked.
    pub kernel_synchronized: Option<bool>,
    /// The wall clock is not before the build date of the binary.
    pub plausible: bool,
    /// The last step of the wall clock seen since borne started.
    pub last_step: Option<ClockStep>,
}

/// A step of the wall clock the planner saw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClockStep {
    /// When it was seen (the new wall time).
    pub at: DateTime<Utc>,
    /// Its size: positive when the clock jumped forward.
    pub seconds: f64,
}

impl Core {
    /// Looks at the clock: detects a step since the last call and re-reads
    /// the synchronisation state, acting on either (see the module docs).
    /// Returns whether the planner must re-evaluate every classroom.
    pub fn check_clock(&self) -> bool {
        self.notice_step();
        let now = self.clock.now();
        let sync = self.clock.sync(now);
        let (mut full, previous) = {
            let mut tk = self.timekeeping.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut tk.stepped), tk.sync.replace(sync))
        };
        let was = previous.map(SyncState::synchronized);
        let is = sync.synchronized();
        if was != Some(is) {
            self.metrics.clock_synchronized.set(i64::from(is));
            let require_sync = self.config().clock.require_sync;
            if is {
                tracing::info!(require_sync, "the system clock is synchronised");
            } else {
                tracing::warn!(
                    kernel = ?sync.kernel,
                    plausible = sync.plausible,
                    require_sync,
                    "the system clock is not synchronised (run chrony or systemd-timesyncd); {}",
                    if require_sync {
                        "no new \"on\" until it is"
                    } else {
                        "borne keeps acting on it (clock.require_sync is false)"
                    }
                );
                if require_sync {
                    self.end_sessions_on_untrusted_clock(now);
                }
            }
            full = true;
        }
        full
    }

    /// The clock's state; before the planner's first look, read now.
    pub fn clock_status(&self) -> ClockStatus {
        let (sync, last_step) = {
            let tk = self.timekeeping.lock().unwrap_or_else(|e| e.into_inner());
            (tk.sync, tk.last_step)
        };
        let sync = sync.unwrap_or_else(|| self.clock.sync(self.clock.now()));
        ClockStatus {
            synchronized: sync.synchronized(),
            require_sync: self.config().clock.require_sync,
            kernel_synchronized: sync.kernel,
            plausible: sync.plausible,
            last_step,
        }
    }

    /// `clock.require_sync` is set and the clock is not synchronised: no new "on".
    pub fn clock_untrusted(&self) -> bool {
        let s = self.clock_status();
        s.require_sync && !s.synchronized
    }

    /// What the schedule wants, corrected for an untrusted clock: the
    /// schedule's `on` acts as `available` (off without a session).
    pub(super) fn clock_guard(&self, d: Desired, untrusted: bool) -> Desired {
        if untrusted && d.reason == Reason::Schedule && d.wifi == Wifi::On {
            return Desired { wifi: Wifi::Off, ..d };
        }
        d
    }

    /// Looks for a step of the wall clock since the last look and acts on
    /// it. Every change of state calls it before reading the time, not only
    /// the planner: a request handled between a step and the planner's next
    /// pass is made at the new time, so the step must already have moved
    /// what came before it, and must not move the request's own session.
    pub(crate) fn notice_step(&self) {
        let Some(monotonic) = self.clock.monotonic() else {
            return;
        };
        let (step, now, batch, touched) = {
            // Held while sessions and overrides move, so that a concurrent
            // change waits for the move instead of being moved with them.
            let mut tk = self.timekeeping.lock().unwrap_or_else(|e| e.into_inner());
            let now = self.clock.now();
            let Some(step) = tk.steps.check(monotonic, now) else {
                return;
            };
            tk.last_step = Some(ClockStep {
                at: now,
                seconds: step.num_milliseconds() as f64 / 1000.0,
            });
            tk.stepped = true;
            let (batch, touched) = self.move_by_step(step, now);
            (step, now, batch, touched)
        };
        let seconds = step.num_milliseconds() as f64 / 1000.0;
        tracing::warn!(
            step_seconds = seconds,
            now = %now.to_rfc3339(),
            "the wall clock stepped; sessions and overrides keep their remaining real time, every classroom is re-evaluated"
        );
        self.metrics.clock_steps.inc();
        self.writer().enqueue(batch);
        for c in &touched {
            self.announce(c);
        }
        self.wake.notify_one();
    }

    /// Moves every session and override by `step`, returning what to store
    /// and the classrooms touched.
    fn move_by_step(&self, step: TimeDelta, now: DateTime<Utc>) -> (Batch, Vec<ClassroomId>) {
        let seconds = step.num_milliseconds() as f64 / 1000.0;
        let mut batch = Batch::default();
        let mut touched = Vec::new();
        {
            let mut state = self.lock_state();
            for (c, s) in state.sessions.iter_mut() {
                s.started += step;
                s.until += step;
                batch.sessions.push((c.clone(), Some(s.clone())));
                touched.push(c.clone());
            }
            for (c, o) in state.overrides.iter_mut() {
                o.set_at += step;
                if let Some(u) = o.until.as_mut() {
                    *u += step;
                }
                batch.overrides.push((c.clone(), Some(o.clone())));
                touched.push(c.clone());
            }
        }
        batch.audit.push(AuditRecord {
            at: now,
            actor: "borne".into(),
            role: None,
            classroom: None,
            access_point: None,
            action: "clock.step".into(),
            detail: format!(
                "{seconds:+.1} s: the wall clock stepped; {} session(s) and override(s) keep their remaining real time",
                touched.len()
            ),
            result: "ok".into(),
            source: None,
            via: None,
        });
        (batch, touched)
    }

    /// `clock.require_sync` and the clock is lost: teacher "on" sessions end.
    fn end_sessions_on_untrusted_clock(&self, now: DateTime<Utc>) {
        let config = self.config();
        let mut batch = Batch::default();
        let mut ended = Vec::new();
        {
            let mut state = self.lock_state();
            state.sessions.retain(|c, s| {
                if s.wifi != Wifi::On || s.until <= now {
                    return true;
                }
                let tz = config.classroom(c.as_str()).map_or(config.timezone, |cl| cl.timezone);
                batch.sessions.push((c.clone(), None));
                batch.audit.push(session_end_record(
                    now,
                    c,
                    tz,
                    s,
                    SessionEnd::Clock,
                    "the system clock is not synchronised and clock.require_sync is set",
                ));
                ended.push(c.clone());
                false
            });
        }
        if !ended.is_empty() {
            self.writer().enqueue(batch);
            for c in &ended {
                self.announce(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use chrono::{DateTime, Utc};

    use super::super::fixture::{Fixture, actor};
    use super::super::{Clock, Core};
    use crate::policy::{Request, Wifi};
    use crate::store::{Store as _, Writer};

    /// A wall clock and a monotonic clock the test moves separately.
    struct SteppingClock {
        wall: Mutex<DateTime<Utc>>,
        mono: Mutex<Duration>,
    }

    impl Clock for SteppingClock {
        fn now(&self) -> DateTime<Utc> {
            *self.wall.lock().unwrap()
        }
        fn monotonic(&self) -> Option<Duration> {
            Some(*self.mono.lock().unwrap())
        }
    }

    impl SteppingClock {
        fn pass(&self, seconds: u64) {
            *self.mono.lock().unwrap() += Duration::from_secs(seconds);
            *self.wall.lock().unwrap() += chrono::Duration::seconds(seconds as i64);
        }
        fn step(&self, delta: chrono::Duration) {
            *self.wall.lock().unwrap() += delta;
        }
    }

    /// The fixture's configuration and database under `clock`.
    fn core_with(f: &Fixture, clock: Arc<SteppingClock>) -> Arc<Core> {
        let snapshot = f.store.load().unwrap();
        let writer = Writer::start(f.store.clone()).unwrap();
        Core::new(f.core.config(), snapshot, writer, clock)
    }

    /// A clock set back 26 h keeps a 1-minute session to one real minute, audited.
    #[tokio::test]
    async fn a_step_back_keeps_a_sessions_remaining_real_time() {
        // 26 h ahead: Wednesday 2 December 11:00 Paris, an available stretch.
        let f = Fixture::new("2026-12-02T10:00:00Z");
        let clock = Arc::new(SteppingClock {
            wall: Mutex::new("2026-12-02T10:00:00Z".parse().unwrap()),
            mono: Mutex::new(Duration::from_secs(1000)),
        });
        let core = core_with(&f, clock.clone());
        core.check_clock();
        let teacher = f.user("teacher1");
        core.teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(1) })
            .await
            .unwrap();
        clock.pass(20);
        core.check_clock();
        // Back 26 h: Tuesday 1 December 09:00:20 Paris, available too.
        clock.step(-chrono::Duration::hours(26));
        assert!(core.check_clock(), "a step asks for a full pass");
        let now = core.now();
        let d = core.desired(core.config().classroom("c1").unwrap(), now);
        assert_eq!(d.wifi, Wifi::On);
        assert_eq!(
            d.until.unwrap(),
            now + chrono::Duration::seconds(40),
            "40 real seconds left"
        );
        clock.pass(41);
        core.check_clock();
        let d = core.desired(core.config().classroom("c1").unwrap(), core.now());
        assert_eq!(d.wifi, Wifi::Off, "one real minute after it started");
        core.writer().flush().await.unwrap();
        let rows = f.audit().await;
        assert!(
            rows.iter()
                .any(|r| r.record.action == "clock.step" && r.record.detail.starts_with("-93600.0 s")),
            "{rows:?}"
        );
        assert_eq!(core.metrics.clock_steps.get(), 1);
    }

    /// A request handled after a step but before the planner's next look
    /// is made at the new time and is not moved again by that step.
    #[tokio::test]
    async fn a_request_between_a_step_and_the_next_pass_is_not_moved_by_the_step() {
        let f = Fixture::new("2026-12-02T10:00:00Z");
        let clock = Arc::new(SteppingClock {
            wall: Mutex::new("2026-12-02T10:00:00Z".parse().unwrap()),
            mono: Mutex::new(Duration::from_secs(1000)),
        });
        let core = core_with(&f, clock.clone());
        core.check_clock();
        // Back 26 h (Tuesday 09:00 Paris, available), then a request before
        // the planner looks at the clock again.
        clock.step(-chrono::Duration::hours(26));
        let teacher = f.user("teacher1");
        core.teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(1) })
            .await
            .unwrap();
        let requested = core.now();
        assert!(core.check_clock(), "the step still asks the planner for a full pass");
        assert!(!core.check_clock(), "once");
        let d = core.desired(core.config().classroom("c1").unwrap(), core.now());
        assert_eq!(d.wifi, Wifi::On, "the new session is not moved 26 h back");
        assert_eq!(d.until.unwrap(), requested + chrono::Duration::minutes(1));
        assert_eq!(core.metrics.clock_steps.get(), 1);
    }

    /// Time passing as the monotonic clock says is never a step.
    #[tokio::test]
    async fn time_passing_moves_nothing() {
        let f = Fixture::new("2026-12-02T10:00:00Z");
        let clock = Arc::new(SteppingClock {
            wall: Mutex::new("2026-12-02T10:00:00Z".parse().unwrap()),
            mono: Mutex::new(Duration::ZERO),
        });
        let core = core_with(&f, clock.clone());
        core.check_clock();
        let teacher = f.user("teacher1");
        core.teacher_request(&actor(&teacher), "c1", Request::On { minutes: Some(1) })
            .await
            .unwrap();
        clock.pass(30);
        core.check_clock();
        clock.pass(31);
        core.check_clock();
        let d = core.desired(core.config().classroom("c1").unwrap(), core.now());
        assert_eq!(d.wifi, Wifi::Off);
        assert_eq!(core.metrics.clock_steps.get(), 0);
    }
}
