//! Leader terms: what an instance runs while it leads — the drivers (SSH,
//! the MQTT broker connection), the reconciler and its workers, the usage
//! report's heartbeat — started when a term begins and stopped when it
//! ends. A lone instance (no shared database) has one term for its life.
//!
//! Every driver is wrapped in the term's fence ([`Fenced`]); a new term
//! starts like a start of borne, observing before acting, so a failover
//! never bounces radios that are right.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::core::Core;
use crate::driver::sim::SimDriver;
use crate::driver::{self, Driver};
use crate::ha::Term;
use crate::reconcile::{Drivers, Fenced, Reconciler};

/// What every term needs.
#[derive(Clone)]
pub(super) struct Context {
    pub(super) core: Arc<Core>,
    pub(super) sim: SimDriver,
    pub(super) watchdog: Option<Duration>,
    /// Whether instances share a database (the MQTT client id then names
    /// the instance).
    pub(super) shared: bool,
}

/// A term that runs.
pub(super) struct Running {
    drivers: Drivers,
    tracker: TaskTracker,
    cancel: CancellationToken,
    stopping: CancellationToken,
}

/// Starts what a leader runs, for `term`.
///
/// # Errors
/// A driver cannot start (a configuration the validation let through).
pub(super) async fn start(ctx: &Context, term: &Term) -> anyhow::Result<Running> {
    let core = &ctx.core;
    let config = core.config();
    let cancel = term.cancel.clone();
    let (report_tx, report_rx) = mpsc::channel(65_536);
    let (raw, mqtt) = start_drivers(ctx, &config, report_tx, &cancel)?;
    if let Some(mqtt) = &mqtt {
        // Give the broker connection a moment before the first operations,
        // so that a start does not begin with every MQTT AP failing "not
        // connected" and waiting out a backoff. A broker that is down is
        // not waited for: it is an outage like any other.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !mqtt.is_subscribed() && tokio::time::Instant::now() < deadline && !cancel.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let fence = |d: Arc<dyn Driver>| Fenced::wrap(d, term.fence.clone(), cancel.clone());
    let drivers = Drivers {
        sim: fence(raw.sim.clone()),
        ssh: raw.ssh.clone().map(fence),
        mqtt: raw.mqtt.clone().map(fence),
    };
    // A new term looks at every classroom, whatever the last one did.
    core.poke();
    let tracker = TaskTracker::new();
    // Stops the planner and the workers at their next safe point; `cancel`
    // (the fence's) abandons operations in flight: a shutdown lets them
    // finish within the grace period, a lost lock does not.
    let stopping = cancel.child_token();
    let run_started = core.start_run();
    tracker.spawn(core.clone().run_usage(run_started, stopping.child_token()));
    let mut reconciler = Reconciler::new(
        core.clone(),
        drivers.clone(),
        report_rx,
        tracker.clone(),
        stopping.child_token(),
    );
    if let Some(w) = ctx.watchdog {
        reconciler = reconciler.with_watchdog(w);
    }
    if ctx.shared {
        // Another instance may have led until a moment ago.
        reconciler = reconciler.with_settle();
    }
    tracker.spawn(reconciler.run());
    Ok(Running {
        drivers,
        tracker,
        cancel,
        stopping,
    })
}

/// The end of `shutdown_grace_seconds` kept for closing driver connections
/// (at most half of it): operations in flight get the rest.
const CLOSE_RESERVE: Duration = Duration::from_secs(2);

/// Closing driver connections gets at least this long, even after a grace
/// period that operations used up.
const CLOSE_MIN: Duration = Duration::from_millis(500);

/// Ends a term: nothing new is started at once; operations in flight
/// have the grace period, less a reserve, to finish (a fenced term's are
/// abandoned already); the drivers keep their connections until then (an
/// MQTT "off" published just before the signal is still acknowledged), and
/// closing them gets the end of the grace.
pub(super) async fn stop(running: Running, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    running.stopping.cancel();
    running.tracker.close();
    let operations = deadline - CLOSE_RESERVE.min(grace / 2);
    if tokio::time::timeout_at(operations, running.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "operations still in flight after the grace period; leaving them"
        );
    }
    // Whatever is still in flight is abandoned now (the fence refuses it).
    running.cancel.cancel();
    let closing = deadline.max(tokio::time::Instant::now() + CLOSE_MIN);
    if tokio::time::timeout_at(closing, running.drivers.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("driver connections not closed within the grace period; leaving them");
    }
}

/// Follows the leadership: starts a term when one begins, stops it when
/// it ends, until `shutdown`. `first` is a term already started.
pub(super) async fn run(
    ctx: Context,
    mut terms: watch::Receiver<Option<Arc<Term>>>,
    mut first: Option<Running>,
    shutdown: CancellationToken,
) {
    loop {
        let running = match first.take() {
            Some(r) => Some(r),
            None => {
                let term = terms.borrow_and_update().clone();
                match term {
                    Some(term) if !term.cancel.is_cancelled() => match start(&ctx, &term).await {
                        Ok(r) => {
                            tracing::info!(term = term.number, "leader term started: observing, then reconciling");
                            Some(r)
                        }
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "cannot start the leader term; stepping down");
                            term.cancel.cancel();
                            None
                        }
                    },
                    _ => None,
                }
            }
        };
        match running {
            Some(r) => {
                let cancel = r.cancel.clone();
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = shutdown.cancelled() => {}
                }
                stop(r, ctx.core.config().reconciler.shutdown_grace).await;
                if shutdown.is_cancelled() {
                    return;
                }
                tracing::info!("leader term ended");
            }
            None => {
                // A follower runs no planner, which is what pings systemd's
                // watchdog while leading: ping from here.
                let ping = ctx.watchdog.unwrap_or(Duration::from_secs(3600));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = terms.changed() => if r.is_err() { return },
                    () = tokio::time::sleep(ping) => {
                        if ctx.watchdog.is_some() {
                            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                        }
                    }
                }
            }
        }
    }
}

/// The drivers of a term, unfenced.
fn start_drivers(
    ctx: &Context,
    config: &Arc<Config>,
    reports: driver::ReportSink,
    cancel: &CancellationToken,
) -> anyhow::Result<(Drivers, Option<Arc<driver::mqtt::MqttDriver>>)> {
    // Always there: a reload may add SSH access points.
    let ssh: Arc<dyn Driver> = Arc::new(driver::ssh::SshDriver::new(cancel.child_token()));
    let mqtt = match &config.mqtt {
        Some(broker) => {
            let mut broker = broker.clone();
            if ctx.shared {
                // Two instances with one client id would knock each other
                // off the broker (it drops the older connection).
                broker.client_id = crate::config::ha::mqtt_client_id(&broker.client_id, &config.instance_id());
            }
            // Connects in the background: a broker down at start is retried
            // like any other outage, it does not stop the daemon. Its
            // connection lives until `Drivers::shutdown` in `stop`, not the
            // term's end: commands in flight then still get their
            // acknowledgement (the fence refuses new ones).
            let d = driver::mqtt::MqttDriver::start(&broker, config, reports, CancellationToken::new())
                .context("starting the MQTT driver")?;
            Some(d)
        }
        None => None,
    };
    let drivers = Drivers {
        sim: Arc::new(ctx.sim.clone()),
        ssh: Some(ssh),
        mqtt: mqtt.clone().map(|d| d as Arc<dyn Driver>),
    };
    Ok((drivers, mqtt))
}
