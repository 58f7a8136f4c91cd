//! Channel-neutral messages: where a message lives between a channel and the agent.
//!
//! - [`types`]: [`InboundMessage`], [`OutboundMessage`], [`ChatId`], [`MessageId`], [`Delivery`];
//! - [`sink`]: the bounded [`InboundSink`] channels push received messages into, with counters;
//! - [`inbound_log`]: the durable inbound queue: a received message stored with the channel's
//!   commit, confirmed by the consumer ([`Receipt::handled`]), re-delivered after a crash;
//! - [`outbox`]: the persistent [`Outbox`]: accepted means stored; `pending → sending → sent |
//!   failed | expired`; a deadline per message; in order per chat; crash recovery that re-sends
//!   with the same message id.
//!
//! Depends on `util`-level crates and [`crate::store`] only; never on channels, agent or gateway.

pub mod inbound_log;
pub mod outbox;
pub mod sink;
pub mod types;

pub use inbound_log::{InboundLog, InboundLogError, Receipt};
pub use outbox::{Enqueued, Outbox, OutboxCounts, OutboxError, OutboxPolicy, OutboxRecord, OutboxState};
pub use sink::{inbound_queue, InboundReceiver, InboundSink, PushError, SinkCounters};
pub use types::{ChatId, Delivery, InboundBody, InboundMessage, MediaKind, MessageId, OutboundBody, OutboundMessage};
