//! The bounded queue between channels (producers) and the agent (consumer), with counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

use super::inbound_log::Receipt;
use super::types::InboundMessage;

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    dropped: AtomicU64,
}

/// Counters of an inbound queue (for `channels status` and `/health`; memory only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkCounters {
    /// Messages accepted into the queue since start.
    pub accepted: u64,
    /// Messages dropped because the queue was full or closed.
    pub dropped: u64,
    /// Messages waiting now.
    pub queued: usize,
    /// The bound.
    pub capacity: usize,
}

/// Why [`InboundSink::try_push`] did not queue a message (the message is handed back).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The queue is at its bound.
    #[error("inbound queue is full")]
    Full(Box<InboundMessage>),
    /// The consumer is gone.
    #[error("inbound queue is closed")]
    Closed(Box<InboundMessage>),
}

/// The producer side: cheap to clone, one per channel account.
#[derive(Debug, Clone)]
pub struct InboundSink {
    tx: mpsc::Sender<(InboundMessage, Receipt)>,
    stats: Arc<Stats>,
    capacity: usize,
}

/// The consumer side (the agent's router).
#[derive(Debug)]
pub struct InboundReceiver {
    rx: mpsc::Receiver<(InboundMessage, Receipt)>,
    stats: Arc<Stats>,
}

/// A bounded inbound queue holding at most `capacity` messages (at least 1).
pub fn inbound_queue(capacity: usize) -> (InboundSink, InboundReceiver) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let stats = Arc::new(Stats::default());
    (InboundSink { tx, stats: stats.clone(), capacity }, InboundReceiver { rx, stats })
}

impl InboundSink {
    fn dropped(&self) {
        let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Log the 1st, 2nd, 4th, 8th… drop: visible without flooding the log.
        if n.is_power_of_two() {
            tracing::warn!(dropped = n, capacity = self.capacity, "inbound queue full or closed; message dropped");
        }
    }

    /// Queues `msg` if there is room now; otherwise counts it as dropped and hands it back.
    pub fn try_push(&self, msg: InboundMessage) -> Result<(), PushError> {
        match self.tx.try_send((msg, Receipt::untracked())) {
            Ok(()) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full((m, _))) => {
                self.dropped();
                Err(PushError::Full(Box::new(m)))
            }
            Err(mpsc::error::TrySendError::Closed((m, _))) => {
                self.dropped();
                Err(PushError::Closed(Box::new(m)))
            }
        }
    }

    /// Queues `msg`, waiting for room (back-pressure on the channel). Fails only when closed.
    /// The consumer gets an untracked [`Receipt`] (nothing to confirm).
    pub async fn push(&self, msg: InboundMessage) -> Result<(), PushError> {
        self.push_tracked(msg, Receipt::untracked()).await
    }

    /// Queues a stored message with the [`Receipt`] its consumer confirms it with (see
    /// [`super::inbound_log`]), waiting for room. Fails only when closed.
    pub async fn push_tracked(&self, msg: InboundMessage, receipt: Receipt) -> Result<(), PushError> {
        match self.tx.send((msg, receipt)).await {
            Ok(()) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::SendError((m, _))) => {
                self.dropped();
                Err(PushError::Closed(Box::new(m)))
            }
        }
    }

    /// The counters.
    pub fn counters(&self) -> SinkCounters {
        SinkCounters {
            accepted: self.stats.accepted.load(Ordering::Relaxed),
            dropped: self.stats.dropped.load(Ordering::Relaxed),
            queued: self.capacity - self.tx.capacity(),
            capacity: self.capacity,
        }
    }
}

impl InboundReceiver {
    /// The next message; `None` once every sink is dropped and the queue is empty. Its receipt is
    /// dropped unconfirmed: a stored message is handed out again after a restart. Consumers that
    /// act on messages use [`Self::recv_tracked`].
    pub async fn recv(&mut self) -> Option<InboundMessage> {
        self.rx.recv().await.map(|(m, _)| m)
    }

    /// The next message with the [`Receipt`] to confirm it with once its effects are stored.
    pub async fn recv_tracked(&mut self) -> Option<(InboundMessage, Receipt)> {
        self.rx.recv().await
    }

    /// The next message if one is waiting now (tests).
    #[cfg(test)]
    pub fn try_recv_for_test(&mut self) -> Option<InboundMessage> {
        self.rx.try_recv().ok().map(|(m, _)| m)
    }

    /// Messages accepted since start (the sinks' counter).
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::messaging::types::{ChatId, InboundBody, MessageId};

    /// A text message `m<i>` from one sender (shared with the inbound log's tests).
    pub(crate) fn msg(i: u32) -> InboundMessage {
        InboundMessage {
            channel: "whatsapp".into(),
            account_id: "default".into(),
            chat: ChatId::new("1@s.whatsapp.net"),
            sender: ChatId::new("1@s.whatsapp.net"),
            sender_e164: None,
            sender_name: None,
            id: MessageId::new(format!("m{i}")),
            timestamp_ms: 0,
            is_group: false,
            from_me: false,
            reply_to: None,
            reply_to_sender: None,
            mentions: Vec::new(),
            body: InboundBody::Text { text: format!("t{i}") },
        }
    }

    #[tokio::test]
    async fn bounded_with_counters_and_order() {
        let (sink, mut rx) = inbound_queue(2);
        sink.try_push(msg(1)).unwrap();
        sink.push(msg(2)).await.unwrap();
        let back = match sink.try_push(msg(3)) {
            Err(PushError::Full(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(back.id.as_str(), "m3", "the dropped message is handed back");
        assert_eq!(sink.counters(), SinkCounters { accepted: 2, dropped: 1, queued: 2, capacity: 2 });
        assert_eq!(rx.recv().await.unwrap().id.as_str(), "m1");
        assert_eq!(rx.recv().await.unwrap().id.as_str(), "m2");
        assert_eq!(sink.counters().queued, 0);
        drop(rx);
        assert!(matches!(sink.try_push(msg(4)), Err(PushError::Closed(_))));
        assert!(matches!(sink.push(msg(5)).await, Err(PushError::Closed(_))));
        assert_eq!(sink.counters().dropped, 3);
    }

    #[tokio::test]
    async fn push_waits_for_room() {
        let (sink, mut rx) = inbound_queue(1);
        sink.push(msg(1)).await.unwrap();
        let s2 = sink.clone();
        let h = tokio::spawn(async move { s2.push(msg(2)).await });
        tokio::task::yield_now().await;
        assert!(!h.is_finished());
        assert_eq!(rx.recv().await.unwrap().id.as_str(), "m1");
        h.await.unwrap().unwrap();
        assert_eq!(rx.recv().await.unwrap().id.as_str(), "m2");
        assert_eq!(rx.accepted(), 2);
    }
}
