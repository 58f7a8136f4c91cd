//! The WhatsApp Web (multi-device) channel: our own client over tokio-tungstenite.
//!
//! Layers, bottom up: [`frame`] (3-byte length framing), [`noise`] (Noise XX as WhatsApp uses it),
//! [`crypto`] (X25519, XEdDSA, injectable randomness).

pub mod binary;
pub mod cert;
pub mod client;
pub mod creds;
pub mod crypto;
pub mod disconnect;
pub mod frame;
pub mod noise;
pub mod pairing;
pub mod payload;
pub mod prekeys;
pub mod proto;
pub mod qr;
pub mod socket;

#[cfg(feature = "wa-mock")]
pub mod mock;
