//! The task that polls rumqttc's event loop: nothing moves in rumqttc
//! unless it is polled. It only updates the shared state, releases waiting
//! `apply`s and `try_send`s reports; after a connection error it sleeps a
//! capped exponential backoff (see the module docs of [`super`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, Outgoing, QoS, SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use super::route::Meaning;
use super::{DISCONNECT_GRACE, Device, SUBSCRIBE_BATCH, Shared, shorten};
use crate::config::ApId;
use crate::driver::{DriverError, Report, ReportSink};

/// The task that polls rumqttc's event loop.
pub(super) struct EventLoopTask {
    pub(super) eventloop: EventLoop,
    /// For subscriptions at ConnAck and the DISCONNECT at the end.
    pub(super) client: AsyncClient,
    pub(super) shared: Arc<Shared>,
    /// To the reconciler; only `try_send` here, never a blocking send.
    pub(super) reports: ReportSink,
    pub(super) stop: CancellationToken,
    pub(super) label: String,
    pub(super) backoff: Backoff,
}

impl EventLoopTask {
    pub(super) async fn run(mut self) {
        // When the current connection came up, to tell a flapping one.
        let mut up_since: Option<Instant> = None;
        loop {
            // `poll` is cancel-safe enough for this use: it is only dropped
            // when the task stops, and then the connection goes anyway.
            let polled = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                polled = self.eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    up_since = Some(Instant::now());
                    self.on_connected();
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => self.on_message(&p.topic, &p.payload),
                Ok(Event::Incoming(Incoming::PubAck(ack))) => self.on_ack(ack.pkid),
                Ok(Event::Incoming(Incoming::PubComp(comp))) => self.on_ack(comp.pkid),
                Ok(Event::Incoming(Incoming::SubAck(sub))) => self.on_suback(&sub.return_codes),
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    let released = self.shared.lock().acks.on_outgoing_publish(pkid);
                    if let Some(waiter) = released {
                        // The receiver may have timed out: nothing to do then.
                        let _ = waiter.send(Ok(()));
                    }
                }
                Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => self.shared.lock().acks.on_await_ack(pkid),
                Ok(_) => {}
                // Every request handle is gone: nobody can use the
                // connection any more.
                Err(ConnectionError::RequestsDone) => break,
                Err(e) => {
                    let up_for = up_since.take().map(|t| t.elapsed());
                    let delay = self.backoff.after_failure(up_for);
                    self.on_disconnected(&e, up_for.is_some(), delay);
                    tokio::select! {
                        biased;
                        () = self.stop.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.close().await;
    }

    fn on_connected(&mut self) {
        let (topics, lost) = {
            let mut inner = self.shared.lock();
            inner.connected = true;
            inner.down_reason.clear();
            let first = inner.connections == 0;
            inner.connections += 1;
            let report_lost = !first || inner.refused_while_down;
            inner.refused_while_down = false;
            if !first {
                inner.devices.values_mut().for_each(Device::on_reconnect);
            }
            // A clean session starts with no subscription: subscribe to
            // everything the configuration listens to, every time.
            inner.subscribed = inner.routes.topics();
            inner.pending_subacks = inner.subscribed.len().div_ceil(SUBSCRIBE_BATCH);
            let lost: Vec<ApId> = if report_lost {
                inner.routes.ap_ids().cloned().collect()
            } else {
                Vec::new()
            };
            (inner.subscribed.iter().cloned().collect::<Vec<_>>(), lost)
        };
        tracing::info!(broker = %self.label, topics = topics.len(), "connected to the mqtt broker");
        for batch in topics.chunks(SUBSCRIBE_BATCH) {
            let filters = batch.iter().map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
            // `try_`: the event loop must not wait on its own channel.
            if let Err(e) = self.client.try_subscribe_many(filters) {
                let mut inner = self.shared.lock();
                inner.pending_subacks = inner.pending_subacks.saturating_sub(1);
                drop(inner);
                tracing::warn!(broker = %self.label, error = %e, "cannot queue subscriptions");
            }
        }
        if !lost.is_empty() {
            // A separate task may wait for room in the channel; the event
            // loop may not. Every AP must get its Lost, or the reconciler
            // would not re-send what the devices missed.
            let reports = self.reports.clone();
            tokio::spawn(async move {
                for ap in lost {
                    if reports.send((ap, Report::Lost)).await.is_err() {
                        return; // the reconciler is gone: shutting down
                    }
                }
            });
        }
    }

    fn on_disconnected(&mut self, error: &ConnectionError, was_up: bool, delay: Duration) {
        let reason = error.to_string();
        let waiters = {
            let mut inner = self.shared.lock();
            inner.connected = false;
            inner.down_reason = reason.clone();
            inner.pending_subacks = 0;
            // Drain requests queued on rumqttc's channel before the flag
            // fell into its `pending` list, which the next clean-session
            // ConnAck clears: a command that could not be acknowledged now is
            // reported as failed and must not be delivered later, stale.
            self.eventloop.clean();
            inner.acks.drain()
        };
        for waiter in waiters {
            let _ = waiter.send(Err(DriverError::Unreachable(format!(
                "{}: connection lost before the command was acknowledged ({reason})",
                self.label
            ))));
        }
        if was_up {
            tracing::warn!(broker = %self.label, error = %reason, retry_in = ?delay, "lost the mqtt broker connection");
        } else {
            tracing::warn!(broker = %self.label, error = %reason, retry_in = ?delay, "cannot connect to the mqtt broker");
        }
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let mut reports = Vec::new();
        {
            let mut inner = self.shared.lock();
            match inner.routes.interpret(topic, payload) {
                Ok(meanings) => {
                    for (ap, meaning) in meanings {
                        let report = match meaning {
                            Meaning::State(wifi) => {
                                inner.devices.entry(ap.clone()).or_default().on_state(wifi);
                                Report::State(wifi)
                            }
                            Meaning::Available(online) => Report::Available(online),
                        };
                        reports.push((ap, report));
                    }
                }
                Err(why) => {
                    if let Some(held_back) = inner.warn.allow(topic, Instant::now()) {
                        tracing::warn!(
                            broker = %self.label,
                            topic = %shorten(topic),
                            held_back,
                            "ignored an mqtt message: {}",
                            why.describe()
                        );
                    }
                }
            }
        }
        for (ap, report) in reports {
            tracing::debug!(ap = %ap, ?report, "mqtt report");
            match self.reports.try_send((ap, report)) {
                Ok(()) => {}
                Err(TrySendError::Full((ap, report))) => {
                    // The device cache above is up to date: the reconciler's
                    // next observe sees the state even if this report is lost.
                    let mut inner = self.shared.lock();
                    if let Some(held_back) = inner.warn.allow("(report channel)", Instant::now()) {
                        tracing::warn!(ap = %ap, ?report, held_back, "report channel full; report dropped");
                    }
                }
                Err(TrySendError::Closed(_)) => {} // the reconciler stopped
            }
        }
    }

    fn on_ack(&mut self, pkid: u16) {
        let released = self.shared.lock().acks.on_ack(pkid);
        if let Some(waiter) = released {
            let _ = waiter.send(Ok(()));
        }
    }

    fn on_suback(&self, codes: &[SubscribeReasonCode]) {
        {
            let mut inner = self.shared.lock();
            inner.pending_subacks = inner.pending_subacks.saturating_sub(1);
        }
        let refused = codes
            .iter()
            .filter(|c| matches!(c, SubscribeReasonCode::Failure))
            .count();
        if refused > 0 {
            tracing::warn!(
                broker = %self.label,
                refused,
                of = codes.len(),
                "the broker refused subscriptions; check its ACL for borne's user"
            );
        }
    }

    /// Fails what waits, then sends DISCONNECT if connected (bounded).
    async fn close(mut self) {
        let (was_connected, waiters) = {
            let mut inner = self.shared.lock();
            let was = inner.connected;
            inner.connected = false;
            inner.down_reason = "driver stopped".to_owned();
            (was, inner.acks.drain())
        };
        for waiter in waiters {
            let _ = waiter.send(Err(DriverError::Unreachable(format!("{}: driver stopped", self.label))));
        }
        if was_connected && self.client.try_disconnect().is_ok() {
            let flushed = tokio::time::timeout(DISCONNECT_GRACE, async {
                loop {
                    match self.eventloop.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            if flushed.is_err() {
                tracing::debug!(broker = %self.label, "DISCONNECT not flushed in time");
            }
        }
        tracing::info!(broker = %self.label, "mqtt driver stopped");
    }
}

/// Capped exponential backoff between reconnection attempts.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt after a failure. `up_for`: how long
    /// the connection that just failed had been up, `None` if the attempt
    /// failed before a ConnAck. Only a connection that lasted `max` resets
    /// the delay: one dropped right after its ConnAck (refused client id,
    /// ACL, a broker restarting in a loop) keeps backing off.
    fn after_failure(&mut self, up_for: Option<Duration>) -> Duration {
        if up_for.is_some_and(|up| up >= self.max) {
            self.next = self.initial;
        }
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_to_thirty() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let delays: Vec<u64> = (0..9).map(|_| b.after_failure(None).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    }

    #[test]
    fn backoff_resets_only_after_a_connection_that_lasted() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        for _ in 0..5 {
            b.after_failure(None);
        }
        // Dropped right after its ConnAck: keeps backing off.
        assert_eq!(b.after_failure(Some(Duration::from_secs(1))), Duration::from_secs(16));
        // Up for longer than the cap: starts over.
        assert_eq!(
            b.after_failure(Some(Duration::from_secs(31))),
            Duration::from_millis(500)
        );
        assert_eq!(b.after_failure(None), Duration::from_secs(1));
    }
}
