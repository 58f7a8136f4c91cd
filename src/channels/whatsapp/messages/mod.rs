//! The 1:1 message path over a live connection (issue 10 items 3 and 4).
//!
//! - [`stanza`]: pure builders and parsers (incoming `<message>`, acks, delivery/read/retry
//!   receipts, usync, prekey bundle queries, the `<participants>` fan-out);
//! - [`content`]: the `Message` protobuf ↔ channel-neutral bodies;
//! - [`inbound`]: the receive path as a sans-IO core (stanza + loaded state → ordered actions:
//!   persist, emit, send receipt; retry receipts for undecryptable messages);
//! - [`driver`]: runs those actions against the store and the inbound queue, and the per-connection
//!   outbox consumer (device lists, bundles, per-device encryption, server ack, `mark_sent`,
//!   retry receipts for our messages, live [`crate::channels::registry::AccountCommand`]s).
//!
//! The client loop (`client.rs`) owns the socket: it writes what these return and routes iq
//! answers and message acks back to the consumer.

pub mod content;
pub mod context;
pub mod driver;
mod express;
pub mod group_inbound;
pub mod group_meta;
pub mod inbound;
pub mod stanza;

#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod express_tests;
#[cfg(test)]
mod ratchet_lock_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use driver::{ConnEvent, ConnInbound, Consumer, MessageStats, Messaging, Outgoing, Reply};
