//! WhatsApp groups, the protocol side (pure: stanzas in, typed values out, and back).
//!
//! - [`phash`]: the participant list hash a sender puts on a group `<message>` and the server
//!   answers with in its `<ack>` when its own device list differs.
//!
//! The client (`client.rs`, `messages/`) wires these in; the relay mock answers with the same
//! shapes (its `mock::groups`), and the vector tests here replay what it produces.

pub mod phash;
