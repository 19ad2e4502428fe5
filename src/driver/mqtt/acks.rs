//! Which `apply` is waiting for which broker acknowledgement.
//!
//! rumqttc's `AsyncClient::publish` only queues a request: the packet id is
//! chosen later, inside the event loop, and the only trace of it is the
//! `Outgoing::Publish(pkid)` event. Requests leave the channel in the order
//! they were queued (the driver queues under its lock, and a clean session
//! drops anything left from a previous connection), so the n-th
//! `Outgoing::Publish` belongs to the n-th queued waiter. From then on the
//! waiter is found by packet id when the `PubAck` (QoS 1) or `PubComp`
//! (QoS 2) arrives. QoS 0 has no acknowledgement: its waiter is released
//! when the packet has been written (pkid 0).
//!
//! One rumqttc subtlety: when a broker acknowledges out of order and packet
//! ids wrap, a new publish may collide with one still in flight. rumqttc
//! then emits `Outgoing::AwaitAck(pkid)` instead of `Outgoing::Publish`,
//! holds the packet back, and emits `Outgoing::Publish(pkid)` when it is
//! finally sent. The tracker parks that waiter meanwhile, and keeps a queue
//! per packet id so the earlier publish's ack still releases the earlier
//! waiter.

use std::collections::{HashMap, VecDeque};

/// Waiters for acknowledgements, generic over the waiter (a oneshot sender
/// in the driver, a number in tests).
#[derive(Debug)]
pub(crate) struct AckTracker<W> {
    /// Handed to rumqttc, packet id not yet known, oldest first.
    queued: VecDeque<W>,
    /// Sent, waiting for PubAck/PubComp, by packet id (several only in the
    /// collision case, oldest first).
    inflight: HashMap<u16, VecDeque<W>>,
    /// Held back by rumqttc because its packet id collided.
    collided: Option<(u16, W)>,
}

impl<W> Default for AckTracker<W> {
    fn default() -> Self {
        Self {
            queued: VecDeque::new(),
            inflight: HashMap::new(),
            collided: None,
        }
    }
}

impl<W> AckTracker<W> {
    /// Records a waiter whose publish was just handed to rumqttc.
    pub(crate) fn queue(&mut self, waiter: W) {
        self.queued.push_back(waiter);
    }

    /// Takes back the waiter queued last, when handing its publish to
    /// rumqttc failed after all.
    pub(crate) fn unqueue_last(&mut self) -> Option<W> {
        self.queued.pop_back()
    }

    /// `Outgoing::Publish(pkid)`: the oldest queued publish was written.
    /// Returns the waiter to release now (QoS 0, pkid 0); QoS 1 and 2
    /// waiters move on to wait for their ack.
    pub(crate) fn on_outgoing_publish(&mut self, pkid: u16) -> Option<W> {
        if let Some((held, _)) = &self.collided
            && *held == pkid
            && pkid != 0
        {
            if let Some((_, w)) = self.collided.take() {
                self.inflight.entry(pkid).or_default().push_back(w);
            }
            return None;
        }
        // None: a publish nobody waits for (cannot happen with a clean
        // session; ignoring it is the safe reading).
        let waiter = self.queued.pop_front()?;
        if pkid == 0 {
            return Some(waiter);
        }
        self.inflight.entry(pkid).or_default().push_back(waiter);
        None
    }

    /// `Outgoing::AwaitAck(pkid)`: the oldest queued publish collided and
    /// is held back until `pkid` is free.
    pub(crate) fn on_await_ack(&mut self, pkid: u16) {
        if let Some(waiter) = self.queued.pop_front()
            && let Some((old_pkid, old)) = self.collided.replace((pkid, waiter))
        {
            // rumqttc holds at most one collision; should a second ever
            // come, keep the first waiting on its id rather than lose it.
            self.inflight.entry(old_pkid).or_default().push_back(old);
        }
    }

    /// `Incoming::PubAck(pkid)` or `Incoming::PubComp(pkid)`: returns the
    /// waiter to release, if any.
    pub(crate) fn on_ack(&mut self, pkid: u16) -> Option<W> {
        let waiters = self.inflight.get_mut(&pkid)?;
        let waiter = waiters.pop_front();
        if waiters.is_empty() {
            self.inflight.remove(&pkid);
        }
        waiter
    }

    /// Every waiter, to be failed (the connection dropped or the driver stops).
    pub(crate) fn drain(&mut self) -> Vec<W> {
        let mut all: Vec<W> = self.queued.drain(..).collect();
        all.extend(self.inflight.drain().flat_map(|(_, q)| q));
        all.extend(self.collided.take().map(|(_, w)| w));
        all
    }

    /// Number of waiters.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queued.len()
            + self.inflight.values().map(VecDeque::len).sum::<usize>()
            + usize::from(self.collided.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos1_waiter_is_released_by_the_puback_of_its_packet_id() {
        let mut t = AckTracker::default();
        t.queue(1);
        t.queue(2);
        assert_eq!(t.on_outgoing_publish(7), None);
        assert_eq!(t.on_outgoing_publish(8), None);
        assert_eq!(t.on_ack(8), Some(2));
        assert_eq!(t.on_ack(8), None, "an ack releases one waiter once");
        assert_eq!(t.on_ack(7), Some(1));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn qos0_waiter_is_released_when_written() {
        let mut t = AckTracker::default();
        t.queue("a");
        assert_eq!(t.on_outgoing_publish(0), Some("a"));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn unknown_packet_ids_release_nothing() {
        let mut t: AckTracker<u8> = AckTracker::default();
        assert_eq!(t.on_ack(3), None);
        assert_eq!(t.on_outgoing_publish(3), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn collided_publish_waits_behind_the_earlier_one_with_its_id() {
        let mut t = AckTracker::default();
        t.queue("first");
        assert_eq!(t.on_outgoing_publish(1), None);
        t.queue("second");
        t.on_await_ack(1);
        // rumqttc reports the ack of the first, then sends the second.
        assert_eq!(t.on_ack(1), Some("first"));
        assert_eq!(t.on_outgoing_publish(1), None);
        assert_eq!(t.on_ack(1), Some("second"));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn collided_publish_sent_before_the_ack_event_is_still_released_in_order() {
        let mut t = AckTracker::default();
        t.queue("first");
        t.on_outgoing_publish(1);
        t.queue("second");
        t.on_await_ack(1);
        assert_eq!(t.on_outgoing_publish(1), None);
        assert_eq!(t.on_ack(1), Some("first"));
        assert_eq!(t.on_ack(1), Some("second"));
    }

    #[test]
    fn a_failed_hand_over_takes_back_the_last_waiter() {
        let mut t = AckTracker::default();
        t.queue(1);
        t.queue(2);
        assert_eq!(t.unqueue_last(), Some(2));
        assert_eq!(t.on_outgoing_publish(5), None);
        assert_eq!(t.on_ack(5), Some(1));
    }

    #[test]
    fn drain_returns_every_waiter_wherever_it_is() {
        let mut t = AckTracker::default();
        t.queue(1);
        t.on_outgoing_publish(1);
        t.queue(2);
        t.on_await_ack(1);
        t.queue(3);
        let mut all = t.drain();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(t.len(), 0);
    }
}
