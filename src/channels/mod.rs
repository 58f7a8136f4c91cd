//! Messaging channels. Channels never depend on gateway internals; they report status through
//! typed status values and events.

pub mod registry;
pub mod status;
pub mod whatsapp;
