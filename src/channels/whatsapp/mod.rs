//! The WhatsApp Web (multi-device) channel: our own client over tokio-tungstenite.
//!
//! Layers, bottom up (reference: `shared/reference/whatsapp-protocol.md`):
//!
//! - [`crypto`]: X25519, XEdDSA, injectable randomness;
//! - [`frame`]: 3-byte length framing, the `WA 06 03` header and the `ED` pre-intro;
//! - [`noise`]: Noise XX exactly as WhatsApp uses it (initiator and responder);
//! - [`proto`]: the protobuf subset (`proto/whatsapp.proto`, compiled by build.rs);
//! - [`cert`]: server certificate chain verification against a [`cert::TrustedRoot`];
//! - [`binary`]: WABinary nodes with the token dictionaries;
//! - [`socket`]: WebSocket + frames + Noise carrying nodes;
//! - [`payload`], [`pairing`], [`paircode`], [`prekeys`], [`creds`], [`baileys_import`]:
//!   registration/login payloads, QR and pairing-code linking, Baileys session import,
//!   prekey upload, crash-safe credentials;
//! - [`client`]: one connection's session, the QR link flow and logout, with typed
//!   [`disconnect::DisconnectReason`]s;
//! - [`qr`]: terminal and SVG rendering;
//! - `mock` (feature `wa-mock`): a mock server playing WhatsApp and the phone.
//!
//! - [`supervisor`]: one task per account with the reconnect policy, cooldowns and crash
//!   isolation.
//!
//! - [`signal`]: the Signal protocol (X3DH, Double Ratchet, padding), a pure core.

pub mod account;
pub mod baileys_import;
pub mod binary;
pub mod cert;
pub mod client;
pub mod creds;
pub mod crypto;
pub mod disconnect;
pub mod legacy;
pub mod messages;
pub mod frame;
pub mod groups;
pub mod noise;
pub mod paircode;
pub mod pairing;
pub mod payload;
pub mod prekeys;
pub mod proto;
pub mod qr;
pub mod signal;
pub mod socket;
pub mod supervisor;

#[cfg(feature = "wa-mock")]
pub mod mock;
