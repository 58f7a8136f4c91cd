//! WhatsApp groups, the protocol side (pure: stanzas in, typed values out, and back).
//!
//! - [`metadata`]: the `w:g2` queries (one group, every participating group) and their
//!   `<group>` answers as [`metadata::GroupInfo`];
//! - [`notification`]: `w:gp2` notifications (create, add/remove/promote/demote/leave, subject,
//!   settings) as typed [`notification::GroupEvent`]s;
//! - [`phash`]: the participant list hash a sender puts on a group `<message>` and the server
//!   answers with in its `<ack>` when its own device list differs.
//!
//! The client (`client.rs`, `messages/`) wires these in; the relay mock answers with the same
//! shapes (its `mock::groups`), and the vector tests here replay what it produces.

pub mod metadata;
pub mod notification;
pub mod phash;

#[cfg(test)]
mod proptests;
