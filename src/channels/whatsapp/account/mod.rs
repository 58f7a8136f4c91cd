//! One WhatsApp account's persistent state beyond `creds.json`.
//!
//! - [`store`]: the account's protocol-state database (`<state>/channels/whatsapp/<account>/store.db`):
//!   prekeys, signed prekeys, Signal sessions, peer identities, PN↔LID mappings, device lists,
//!   processed message ids and the outbox, with migrations and a version number.
//!
//! `creds.json` (identity, registration, Baileys-compatible) stays in [`super::creds`].

pub mod store;
