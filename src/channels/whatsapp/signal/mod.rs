//! The Signal protocol for WhatsApp's pairwise encryption, as a pure core (clean-room, written
//! from the public X3DH, Double Ratchet and XEdDSA specifications and observed behaviour of the
//! peers; libsignal-node is only a test oracle).
//!
//! No sockets, files or clock reads: every function takes its inputs (keys, the stored record,
//! the received bytes, a randomness source) and returns its outputs.

pub mod wire;
