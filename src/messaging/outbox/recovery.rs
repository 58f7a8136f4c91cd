//! What to do with messages whose fate a restart made unknown: the pure decision.
//!
//! A message the process left `sending` (killed between handing it to the channel and the `sent`
//! commit) may or may not have reached the server. Re-sending it at once repeats it whenever the
//! kill fell between the server's ack and the commit. Instead the connection **holds** it: it
//! stays `sending` (so later messages of its chat wait behind it, in order) until the
//! connection's offline backlog has been processed. A delivery or read receipt for its id in
//! that backlog proves it arrived: the receipt handler marks it `sent` (see [`receipt_confirms`])
//! and it is never sent again. What is still held when the backlog ends (or when [`HOLD_BOUND`]
//! passes without an end-of-backlog marker) is released for a re-send **with the same id**.
//!
//! The remaining window: a message the server accepted but whose recipient was offline at the
//! crash too has no receipt in the backlog, so it is re-sent (the same id; receivers dedupe by
//! id). Pure: the caller passes the time and the events; no clock, no I/O.

use std::time::Duration;

use super::super::types::MessageId;

/// How long after the connection opened a held message waits for the end of the offline
/// backlog before it is released anyway.
pub const HOLD_BOUND: Duration = Duration::from_secs(10);

/// True when a receipt of this `type` (the stanza's `type` attribute, `None` when absent)
/// proves that the recipient got the message: a delivery receipt (no type, or `inactive`), a
/// read or played receipt, or the `sender` receipt of our own other device. A retry receipt
/// (the recipient could not decrypt) and a server error do not.
pub fn receipt_confirms(kind: Option<&str>) -> bool {
    matches!(kind, None | Some("inactive" | "read" | "read-self" | "played" | "played-self" | "sender"))
}

/// Held messages of one account and when their hold ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    held: Vec<MessageId>,
    release_at_ms: u64,
}

impl Hold {
    /// Holds `held` (the account's `sending` messages found before the connection's first claim)
    /// from a connection opened at `now_ms`, at most `bound`.
    pub fn new(held: Vec<MessageId>, now_ms: u64, bound: Duration) -> Self {
        Self { held, release_at_ms: now_ms.saturating_add(bound.as_millis() as u64) }
    }

    /// True while some message is held.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// The held ids.
    pub fn held(&self) -> &[MessageId] {
        &self.held
    }

    /// When the caller must look again (the bound), if anything is held.
    pub fn wake_at_ms(&self) -> Option<u64> {
        self.is_holding().then_some(self.release_at_ms)
    }

    /// A confirming receipt for `id` arrived (the handler committed `sent`): no longer held.
    /// True when `id` was held.
    pub fn confirmed(&mut self, id: &MessageId) -> bool {
        let before = self.held.len();
        self.held.retain(|h| h != id);
        self.held.len() != before
    }

    /// The offline backlog ended: every message still held is released for a re-send.
    pub fn backlog_done(&mut self) -> Vec<MessageId> {
        std::mem::take(&mut self.held)
    }

    /// Time passed: at or after the bound, every message still held is released; before it,
    /// nothing.
    pub fn tick(&mut self, now_ms: u64) -> Vec<MessageId> {
        if now_ms >= self.release_at_ms { std::mem::take(&mut self.held) } else { Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<MessageId> {
        v.iter().map(|s| MessageId::new(*s)).collect()
    }

    #[test]
    fn issue10_a_receipt_in_the_backlog_settles_a_held_message_and_the_rest_is_resent_at_its_end() {
        let mut h = Hold::new(ids(&["A", "B"]), 1_000, HOLD_BOUND);
        assert!(h.is_holding());
        assert!(h.tick(1_500).is_empty(), "nothing is released before the backlog ends");
        assert!(h.confirmed(&MessageId::new("A")));
        assert!(!h.confirmed(&MessageId::new("A")), "a second receipt changes nothing");
        assert!(!h.confirmed(&MessageId::new("Z")), "a receipt for a message not held is not ours to settle");
        assert_eq!(h.backlog_done(), ids(&["B"]));
        assert!(!h.is_holding());
        assert_eq!(h.wake_at_ms(), None);
        assert!(h.backlog_done().is_empty(), "released once");
    }

    #[test]
    fn issue10_without_an_end_of_backlog_marker_the_hold_ends_at_its_bound() {
        let mut h = Hold::new(ids(&["A"]), 1_000, Duration::from_secs(10));
        assert_eq!(h.wake_at_ms(), Some(11_000));
        assert!(h.tick(10_999).is_empty());
        assert_eq!(h.tick(11_000), ids(&["A"]));
        assert!(h.tick(20_000).is_empty());
    }

    #[test]
    fn issue10_when_everything_was_confirmed_the_backlog_end_resends_nothing() {
        let mut h = Hold::new(ids(&["A"]), 0, HOLD_BOUND);
        h.confirmed(&MessageId::new("A"));
        assert!(!h.is_holding());
        assert!(h.backlog_done().is_empty());
        assert!(Hold::new(Vec::new(), 0, HOLD_BOUND).wake_at_ms().is_none(), "an empty hold never wakes anyone");
    }

    #[test]
    fn issue10_only_receipts_that_prove_arrival_confirm() {
        for t in [None, Some("inactive"), Some("read"), Some("read-self"), Some("played"), Some("sender")] {
            assert!(receipt_confirms(t), "{t:?}");
        }
        for t in [Some("retry"), Some("enc_rekey_retry"), Some("server-error"), Some("error"), Some("")] {
            assert!(!receipt_confirms(t), "{t:?}");
        }
    }
}
