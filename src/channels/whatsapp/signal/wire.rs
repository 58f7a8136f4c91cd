//! The two pairwise Signal wire messages as WhatsApp carries them in `<enc>`:
//!
//! - `msg`: a SignalMessage, `0x33 ‖ protobuf ‖ mac[8]`;
//! - `pkmsg`: a PreKeySignalMessage, `0x33 ‖ protobuf`, whose field 4 holds a whole `msg`.
//!
//! Field numbers are protocol facts (the public `WhisperTextProtocol` definitions: SignalMessage
//! `ratchetKey=1 counter=2 previousCounter=3 ciphertext=4`; PreKeySignalMessage `preKeyId=1
//! baseKey=2 identityKey=3 message=4 registrationId=5 signedPreKeyId=6`). Public keys travel as
//! 33 bytes, the type byte `0x05` then the Curve25519 u-coordinate. Decoders never panic and
//! return a typed [`WireError`].

use prost::Message;

/// The version byte of every v3 message: current version 3 in the high nibble, 3 in the low one.
pub const VERSION_BYTE: u8 = 0x33;
/// The truncated HMAC-SHA256 at the end of a SignalMessage.
pub const MAC_LEN: usize = 8;
/// The type byte in front of a serialized Curve25519 public key.
pub const KEY_TYPE_DJB: u8 = 0x05;

/// Why bytes are not a valid Signal wire message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the fixed framing needs.
    #[error("message too short ({0} bytes)")]
    TooShort(usize),
    /// The first byte is not `0x33`.
    #[error("unsupported message version byte {0:#04x}")]
    Version(u8),
    /// The protobuf body does not decode.
    #[error("malformed protobuf body: {0}")]
    Protobuf(String),
    /// A required field is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A public key field is not `0x05 ‖ 32 bytes`.
    #[error("bad public key in {0}")]
    BadKey(&'static str),
}

/// Parses a 33-byte `0x05 ‖ key` public key.
pub fn parse_public(bytes: &[u8], field: &'static str) -> Result<[u8; 32], WireError> {
    match bytes {
        [KEY_TYPE_DJB, rest @ ..] if rest.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(rest);
            Ok(k)
        }
        _ => Err(WireError::BadKey(field)),
    }
}

/// Serializes a public key as `0x05 ‖ key`.
pub fn serialize_public(key: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = KEY_TYPE_DJB;
    out[1..].copy_from_slice(key);
    out
}

#[derive(Clone, PartialEq, Message)]
struct SignalMessageProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    ratchet_key: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    counter: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    previous_counter: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    ciphertext: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct PreKeySignalMessageProto {
    #[prost(uint32, optional, tag = "1")]
    pre_key_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    base_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    identity_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    message: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "5")]
    registration_id: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    signed_pre_key_id: Option<u32>,
}

/// A decoded SignalMessage (`msg`). Keeps the exact received bytes, because the MAC covers the
/// body as sent, not a re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalMessage {
    /// The sender's current ratchet public key.
    pub ratchet_key: [u8; 32],
    /// Index of this message in the sender's chain.
    pub counter: u32,
    /// Index of the last message of the sender's previous chain.
    pub previous_counter: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    /// Builds a message: `0x33 ‖ protobuf ‖ mac_fn(0x33 ‖ protobuf)[..8]`.
    pub fn build(
        ratchet_key: &[u8; 32],
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
        mac_fn: impl FnOnce(&[u8]) -> [u8; MAC_LEN],
    ) -> Self {
        let proto = SignalMessageProto {
            ratchet_key: Some(serialize_public(ratchet_key).to_vec()),
            counter: Some(counter),
            previous_counter: Some(previous_counter),
            ciphertext: Some(ciphertext.clone()),
        };
        let mut serialized = Vec::with_capacity(proto.encoded_len() + 1 + MAC_LEN);
        serialized.push(VERSION_BYTE);
        // Encoding into a Vec cannot run out of space.
        proto.encode_raw(&mut serialized);
        let mac = mac_fn(&serialized);
        serialized.extend_from_slice(&mac);
        Self {
            ratchet_key: *ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            serialized,
        }
    }

    /// Decodes `msg` bytes. The MAC is not checked here (that needs the message key).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() < 1 + MAC_LEN {
            return Err(WireError::TooShort(bytes.len()));
        }
        if bytes[0] != VERSION_BYTE {
            return Err(WireError::Version(bytes[0]));
        }
        let body = &bytes[1..bytes.len() - MAC_LEN];
        let p = SignalMessageProto::decode(body).map_err(|e| WireError::Protobuf(e.to_string()))?;
        let ratchet_key = parse_public(
            p.ratchet_key
                .as_deref()
                .ok_or(WireError::Missing("ratchetKey"))?,
            "ratchetKey",
        )?;
        Ok(Self {
            ratchet_key,
            counter: p.counter.ok_or(WireError::Missing("counter"))?,
            previous_counter: p.previous_counter.unwrap_or(0),
            ciphertext: p.ciphertext.ok_or(WireError::Missing("ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    /// The bytes the MAC covers: `0x33 ‖ protobuf`.
    pub fn mac_body(&self) -> &[u8] {
        &self.serialized[..self.serialized.len() - MAC_LEN]
    }

    /// The 8-byte MAC as carried.
    pub fn mac(&self) -> &[u8] {
        &self.serialized[self.serialized.len() - MAC_LEN..]
    }

    /// The whole wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.serialized
    }
}

/// A decoded PreKeySignalMessage (`pkmsg`): the X3DH header and the first SignalMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    /// The sender's registration id.
    pub registration_id: u32,
    /// The one-time prekey the sender used, if any.
    pub pre_key_id: Option<u32>,
    /// The signed prekey the sender used.
    pub signed_pre_key_id: u32,
    /// The sender's X3DH base (ephemeral) key; it names the session.
    pub base_key: [u8; 32],
    /// The sender's identity key.
    pub identity_key: [u8; 32],
    /// The embedded SignalMessage.
    pub message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    /// Wraps `message` in a PreKeySignalMessage.
    pub fn build(
        registration_id: u32,
        pre_key_id: Option<u32>,
        signed_pre_key_id: u32,
        base_key: &[u8; 32],
        identity_key: &[u8; 32],
        message: SignalMessage,
    ) -> Self {
        let proto = PreKeySignalMessageProto {
            pre_key_id,
            base_key: Some(serialize_public(base_key).to_vec()),
            identity_key: Some(serialize_public(identity_key).to_vec()),
            message: Some(message.as_bytes().to_vec()),
            registration_id: Some(registration_id),
            signed_pre_key_id: Some(signed_pre_key_id),
        };
        let mut serialized = Vec::with_capacity(proto.encoded_len() + 1);
        serialized.push(VERSION_BYTE);
        proto.encode_raw(&mut serialized);
        Self {
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            base_key: *base_key,
            identity_key: *identity_key,
            message,
            serialized,
        }
    }

    /// Decodes `pkmsg` bytes, including the embedded SignalMessage's framing.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let Some((&version, body)) = bytes.split_first() else {
            return Err(WireError::TooShort(0));
        };
        if version != VERSION_BYTE {
            return Err(WireError::Version(version));
        }
        let p = PreKeySignalMessageProto::decode(body)
            .map_err(|e| WireError::Protobuf(e.to_string()))?;
        let base_key = parse_public(
            p.base_key.as_deref().ok_or(WireError::Missing("baseKey"))?,
            "baseKey",
        )?;
        let identity_key = parse_public(
            p.identity_key
                .as_deref()
                .ok_or(WireError::Missing("identityKey"))?,
            "identityKey",
        )?;
        let message =
            SignalMessage::decode(p.message.as_deref().ok_or(WireError::Missing("message"))?)?;
        Ok(Self {
            registration_id: p.registration_id.unwrap_or(0),
            pre_key_id: p.pre_key_id,
            signed_pre_key_id: p
                .signed_pre_key_id
                .ok_or(WireError::Missing("signedPreKeyId"))?,
            base_key,
            identity_key,
            message,
            serialized: bytes.to_vec(),
        })
    }

    /// The whole wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.serialized
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample(counter: u32, prev: u32, ct: Vec<u8>) -> SignalMessage {
        SignalMessage::build(&[7u8; 32], counter, prev, ct, |b| {
            let mut m = [0u8; 8];
            m[0] = b.len() as u8;
            m
        })
    }

    #[test]
    fn signal_message_layout_is_version_proto_mac() {
        let m = sample(3, 1, vec![0xAA; 16]);
        let b = m.as_bytes();
        assert_eq!(b[0], 0x33);
        // Field 1 (ratchet key), length 33, type byte 5.
        assert_eq!(&b[1..4], &[0x0a, 33, 0x05]);
        assert_eq!(b.len(), 1 + (2 + 33) + 2 + 2 + (2 + 16) + 8);
        assert_eq!(m.mac()[0] as usize, b.len() - 8);
        assert_eq!(SignalMessage::decode(b).unwrap(), m);
    }

    #[test]
    fn typed_errors() {
        assert_eq!(
            SignalMessage::decode(&[0x33; 5]),
            Err(WireError::TooShort(5))
        );
        let mut b = sample(0, 0, vec![1]).as_bytes().to_vec();
        b[0] = 0x22;
        assert_eq!(SignalMessage::decode(&b), Err(WireError::Version(0x22)));
        // A body without the ratchet key.
        let no_key = [&[0x33u8, 0x10, 0x01, 0x22, 0x01, 0x00][..], &[0u8; 8]].concat();
        assert_eq!(
            SignalMessage::decode(&no_key),
            Err(WireError::Missing("ratchetKey"))
        );
        // A 32-byte key without its type byte.
        let mut bad = vec![0x33u8, 0x0a, 32];
        bad.extend_from_slice(&[9u8; 32]);
        bad.extend_from_slice(&[0x10, 0x00, 0x22, 0x00]);
        bad.extend_from_slice(&[0u8; 8]);
        assert_eq!(
            SignalMessage::decode(&bad),
            Err(WireError::BadKey("ratchetKey"))
        );
        assert_eq!(
            PreKeySignalMessage::decode(&[]),
            Err(WireError::TooShort(0))
        );
        assert!(matches!(
            PreKeySignalMessage::decode(&[0x33, 0xff]),
            Err(WireError::Protobuf(_))
        ));
    }

    #[test]
    fn prekey_message_round_trips_with_and_without_one_time_key() {
        for pk in [Some(77u32), None] {
            let m = PreKeySignalMessage::build(
                1234,
                pk,
                9,
                &[1u8; 32],
                &[2u8; 32],
                sample(0, 0, vec![5; 32]),
            );
            let d = PreKeySignalMessage::decode(m.as_bytes()).unwrap();
            assert_eq!(d, m);
            assert_eq!(d.pre_key_id, pk);
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SignalMessage::decode(&data);
            let _ = PreKeySignalMessage::decode(&data);
            let mut v = vec![0x33];
            v.extend_from_slice(&data);
            let _ = SignalMessage::decode(&v);
            let _ = PreKeySignalMessage::decode(&v);
        }

        #[test]
        fn round_trip(key in any::<[u8; 32]>(), counter in any::<u32>(), prev in any::<u32>(),
                      ct in proptest::collection::vec(any::<u8>(), 0..100), mac in any::<[u8; 8]>(),
                      reg in any::<u32>(), pk in proptest::option::of(any::<u32>()), spk in any::<u32>(),
                      base in any::<[u8; 32]>(), ik in any::<[u8; 32]>()) {
            let m = SignalMessage::build(&key, counter, prev, ct, |_| mac);
            let d = SignalMessage::decode(m.as_bytes()).unwrap();
            prop_assert_eq!(&d, &m);
            prop_assert_eq!(d.mac(), &mac[..]);
            let p = PreKeySignalMessage::build(reg, pk, spk, &base, &ik, m);
            prop_assert_eq!(PreKeySignalMessage::decode(p.as_bytes()).unwrap(), p);
        }
    }
}
