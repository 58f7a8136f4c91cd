//! WABinary: WhatsApp's compact binary XML-like node encoding (reference §2).
//!
//! Every transport plaintext is one flags byte (bit `0x02` = zlib-compressed) followed by one node.

pub mod decode;
pub mod encode;
pub mod node;
pub mod tokens;

pub use decode::{DecodeError, decode_node, unpack};
pub use encode::{encode_node, marshal};
pub use node::{Content, Node};

/// The server's JID as clients address it in `to` attributes (Baileys `S_WHATSAPP_NET`), written
/// as a JID pair with an empty user.
pub const SERVER_JID: &str = "@s.whatsapp.net";

/// Tag bytes (reference §2 table; Baileys `TAGS` in `src/WABinary/constants.ts`).
pub mod tag {
    /// Empty list / null string.
    pub const LIST_EMPTY: u8 = 0;
    /// First double-byte dictionary.
    pub const DICTIONARY_0: u8 = 236;
    /// Last double-byte dictionary.
    pub const DICTIONARY_3: u8 = 239;
    /// `integrator-user:device@interop`.
    pub const INTEROP_JID: u8 = 245;
    /// Facebook JID: user, device u16, server.
    pub const FB_JID: u8 = 246;
    /// Agent/device JID: domain type, device, user.
    pub const AD_JID: u8 = 247;
    /// List with a u8 size.
    pub const LIST_8: u8 = 248;
    /// List with a u16 size.
    pub const LIST_16: u8 = 249;
    /// `user@server`.
    pub const JID_PAIR: u8 = 250;
    /// Packed uppercase hex.
    pub const HEX_8: u8 = 251;
    /// Bytes with a u8 length.
    pub const BINARY_8: u8 = 252;
    /// Bytes with a 20-bit length.
    pub const BINARY_20: u8 = 253;
    /// Bytes with a u32 length.
    pub const BINARY_32: u8 = 254;
    /// Packed digits, `-` and `.`.
    pub const NIBBLE_8: u8 = 255;
    /// Longest string that may be packed.
    pub const PACKED_MAX: usize = 127;
}

#[cfg(test)]
mod tests;
