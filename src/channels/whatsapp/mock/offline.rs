//! Per-device mailboxes: stanzas for a device that is not connected (or not yet `active`) wait in
//! order; a stanza written to a live connection stays "in flight" until the device acknowledges
//! it (`<receipt>` or `<ack>` with its id and class), and goes back to the front of the queue if
//! the connection ends first, so nothing is lost. At the next login the backlog is written with
//! `offline="1"`, followed by [`offline_ib`] as the server does. Pure: no I/O.

use std::collections::VecDeque;

use super::super::binary::Node;

/// One device's mailbox and counters.
#[derive(Debug, Default, Clone)]
pub(super) struct Mailbox {
    queue: VecDeque<Node>,
    inflight: Vec<Node>,
    /// Stanzas written to a live connection (backlog included).
    pub delivered: u64,
    /// Stanzas that had to wait in the queue.
    pub queued_total: u64,
    /// Stanzas written as part of a login backlog.
    pub backlog_delivered: u64,
    /// Stanzas the device acknowledged.
    pub acked: u64,
}

impl Mailbox {
    /// Stanzas waiting for the device.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Stanzas written but not yet acknowledged.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// A stanza for this device. With `online`, returns it to be written now (and keeps it in
    /// flight); otherwise it is queued.
    pub fn offer(&mut self, node: Node, online: bool) -> Option<Node> {
        if online && self.queue.is_empty() {
            self.delivered += 1;
            self.inflight.push(node.clone());
            Some(node)
        } else {
            self.queued_total += 1;
            self.queue.push_back(node);
            None
        }
    }

    /// The device became active: the backlog in order (marked `offline`), all now in flight.
    pub fn drain_backlog(&mut self) -> Vec<Node> {
        let n = self.queue.len();
        let out: Vec<Node> = self
            .queue
            .drain(..)
            .map(|mut s| {
                if s.get_attr("offline").is_none() {
                    s.attrs.push(("offline".into(), "1".into()));
                }
                s
            })
            .collect();
        self.delivered += n as u64;
        self.backlog_delivered += n as u64;
        self.inflight.extend(out.iter().cloned());
        out
    }

    /// The device acknowledged stanza `class`/`id`; false if nothing matched.
    pub fn ack(&mut self, class: &str, id: &str) -> bool {
        let hit = self
            .inflight
            .iter()
            .position(|s| s.tag == class && s.get_attr("id") == Some(id));
        if let Some(i) = hit {
            self.inflight.remove(i);
            self.acked += 1;
        }
        hit.is_some()
    }

    /// The connection ended: unacknowledged stanzas go back to the front, in their order.
    pub fn disconnected(&mut self) {
        for s in self.inflight.drain(..).rev() {
            self.queue.push_front(s);
        }
    }
}

/// `<ib><offline count=N/></ib>`: the end of an offline backlog of `n` stanzas. Baileys holds
/// back its events after a login until it arrives (or 30 s pass).
pub(super) fn offline_ib(n: usize) -> Node {
    Node::new("ib").children(vec![Node::new("offline").attr("count", n.to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Node {
        Node::new("message").attr("id", id)
    }

    #[test]
    fn offline_stanzas_are_delivered_in_order_and_stay_in_flight_until_acked() {
        let mut m = Mailbox::default();
        assert_eq!(m.offer(msg("a"), false), None);
        assert_eq!(m.offer(msg("b"), false), None);
        assert_eq!(m.queued(), 2);
        let out = m.drain_backlog();
        let ids: Vec<_> = out.iter().map(|n| n.get_attr("id")).collect();
        assert_eq!(ids, vec![Some("a"), Some("b")]);
        assert_eq!(out[0].get_attr("offline"), Some("1"));
        assert_eq!(
            offline_ib(2).child("offline").unwrap().get_attr("count"),
            Some("2")
        );
        assert_eq!((m.queued(), m.inflight(), m.backlog_delivered), (0, 2, 2));
        assert!(m.ack("message", "a"));
        assert!(!m.ack("receipt", "b"), "the class must match");
        assert!(m.ack("message", "b"));
        assert!(m.drain_backlog().is_empty());
    }

    #[test]
    fn unacknowledged_stanzas_are_requeued_ahead_of_newer_ones() {
        let mut m = Mailbox::default();
        assert!(m.offer(msg("a"), true).is_some());
        assert!(m.offer(msg("b"), true).is_some());
        assert!(m.ack("message", "a"));
        m.disconnected();
        assert_eq!(m.offer(msg("c"), false), None);
        let ids: Vec<_> = m
            .drain_backlog()
            .iter()
            .map(|n| n.get_attr("id").map(str::to_owned))
            .collect();
        assert_eq!(ids, vec![Some("b".into()), Some("c".into())]);
    }

    #[test]
    fn a_live_stanza_never_overtakes_a_waiting_backlog() {
        let mut m = Mailbox::default();
        m.offer(msg("a"), false);
        assert_eq!(m.offer(msg("b"), true), None, "queued behind a");
        assert_eq!(m.queued(), 2);
    }
}
