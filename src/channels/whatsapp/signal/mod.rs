//! The Signal protocol for WhatsApp's pairwise encryption, as a pure core (clean-room, written
//! from the public X3DH, Double Ratchet and XEdDSA specifications and observed behaviour of the
//! peers; libsignal-node is only a test oracle).
//!
//! No sockets, files or clock reads: every function takes its inputs (keys, the stored record,
//! the received bytes, a randomness source) and returns its outputs.
//!
//! - [`wire`]: `msg` / `pkmsg` encode and decode;
//! - [`primitives`]: HKDF labels, chain steps, AES-256-CBC, the truncated MAC;
//! - [`session`]: X3DH (both roles) and the Double Ratchet with bounded skipped keys;
//! - [`record`]: [`SessionRecord`], the per-device-address API and its storage blob (the
//!   contract for callers is documented there);
//! - [`identity`]: trust on first use; [`padding`]: WhatsApp's random padding;
//! - [`sender_key`]: group sender keys (SKDM, `skmsg`);
//! - [`libsignal_import`]: Baileys/libsignal-node `session-*.json` records.
//!
//! A typical receive: `PreKeySignalMessage::decode` → load the prekeys it names →
//! [`SessionRecord::decrypt_pkmsg`] (or [`SessionRecord::decrypt_msg`] for `msg`) →
//! [`identity::decide`] → [`padding::unpad`] → commit record, identity and prekey deletion →
//! ack. A typical send: load or [`SessionRecord::start_outgoing`] from a bundle →
//! [`padding::pad`] → [`SessionRecord::encrypt`] → commit → send.

pub mod identity;
pub mod libsignal_import;
pub mod padding;
pub mod primitives;
pub mod record;
pub mod sender_key;
pub mod session;
pub mod wire;

#[cfg(test)]
mod tests;

pub use identity::TrustDecision;
pub use record::{Decrypted, PreKeys, RecordError, SessionRecord};
pub use session::{CiphertextType, LocalIdentity, PreKeyBundle, SessionError};
pub use wire::{PreKeySignalMessage, SignalMessage, WireError};
