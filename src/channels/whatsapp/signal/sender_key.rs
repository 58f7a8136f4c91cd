//! Sender keys for groups (issue 12 item 1, the pure part): the distribution message
//! (SenderKeyDistributionMessage, sent inside a pairwise session), the group message (`skmsg`,
//! SenderKeyMessage signed with XEdDSA) and the per-sender chain with bounded skipped iterations.
//!
//! Protocol facts (the public Signal sender-key design, as the WhatsApp peers use it):
//!
//! - SKDM: `0x33 ‖ protobuf{id=1, iteration=2, chainKey=3, signingKey=4 (0x05 ‖ key)}`;
//! - skmsg: `0x33 ‖ protobuf{id=1, iteration=2, ciphertext=3} ‖ XEdDSA signature[64]` over the
//!   bytes before the signature, by the sender's signing key;
//! - chain step: message seed `HMAC(chain, 0x01)`, next chain `HMAC(chain, 0x02)`; message keys
//!   `HKDF(seed, salt=0³², "WhisperGroup")` → IV 16 ‖ AES-256 key 32; AES-256-CBC.
//!
//! Baileys as a sender skips every other iteration (0, 2, 4, …); receivers handle any gap up to
//! [`MAX_FORWARD`]. We send consecutive iterations.

use prost::Message;

use super::primitives::{cbc_decrypt, cbc_encrypt, chain_step, hkdf_zero_salt};
use super::wire::{VERSION_BYTE, WireError, parse_public, serialize_public};
use crate::channels::whatsapp::crypto::{
    Entropy, KeyPair, random_bytes, xeddsa_sign, xeddsa_verify,
};

/// How far ahead of the chain an iteration may be.
pub const MAX_FORWARD: u32 = 2000;
/// Skipped message keys kept per sender state.
pub const MAX_SKIPPED_KEYS: usize = 2000;
/// Sender states (key ids) kept per record; the oldest goes first.
pub const MAX_STATES: usize = 5;
/// Format version of [`SenderKeyRecord::to_bytes`].
pub const RECORD_FORMAT_VERSION: u8 = 1;
const SIGNATURE_LEN: usize = 64;

/// Why a sender-key operation failed. A failure never changes the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderKeyError {
    /// The bytes are not a valid message.
    #[error("invalid message: {0}")]
    Wire(#[from] WireError),
    /// No state for this key id (we never got the sender's distribution message).
    #[error("no sender key with id {0}")]
    UnknownKeyId(u32),
    /// We have no sender key of our own to encrypt with.
    #[error("no own sender key")]
    NoOwnKey,
    /// The signature does not verify with the sender's signing key.
    #[error("bad signature")]
    BadSignature,
    /// The iteration is too far ahead.
    #[error("iteration {iteration} is more than {max} ahead of {next}")]
    TooFarAhead {
        /// The message's iteration.
        iteration: u32,
        /// The chain's next iteration.
        next: u32,
        /// The bound.
        max: u32,
    },
    /// The iteration was decrypted already or its key dropped.
    #[error("iteration {0} already decrypted or expired")]
    Duplicate(u32),
    /// The ciphertext does not decrypt.
    #[error("bad ciphertext")]
    BadCiphertext,
    /// A stored blob is not a sender-key record.
    #[error("malformed sender key record: {0}")]
    Record(String),
}

#[derive(Clone, PartialEq, Message)]
struct DistributionProto {
    #[prost(uint32, optional, tag = "1")]
    id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    iteration: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    chain_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    signing_key: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct GroupMessageProto {
    #[prost(uint32, optional, tag = "1")]
    id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    iteration: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    ciphertext: Option<Vec<u8>>,
}

/// A SenderKeyDistributionMessage: what a receiver needs to read a sender's group messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderKeyDistribution {
    /// The sender key id.
    pub key_id: u32,
    /// The chain's iteration at `chain_key`.
    pub iteration: u32,
    /// The chain key at `iteration`.
    pub chain_key: [u8; 32],
    /// The sender's signing public key.
    pub signing_key: [u8; 32],
}

impl SenderKeyDistribution {
    /// The wire form `0x33 ‖ protobuf`.
    pub fn encode(&self) -> Vec<u8> {
        let p = DistributionProto {
            id: Some(self.key_id),
            iteration: Some(self.iteration),
            chain_key: Some(self.chain_key.to_vec()),
            signing_key: Some(serialize_public(&self.signing_key).to_vec()),
        };
        let mut out = Vec::with_capacity(p.encoded_len() + 1);
        out.push(VERSION_BYTE);
        p.encode_raw(&mut out);
        out
    }

    /// Decodes the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let Some((&v, body)) = bytes.split_first() else {
            return Err(WireError::TooShort(0));
        };
        if v != VERSION_BYTE {
            return Err(WireError::Version(v));
        }
        let p = DistributionProto::decode(body).map_err(|e| WireError::Protobuf(e.to_string()))?;
        let chain_key: [u8; 32] = p
            .chain_key
            .as_deref()
            .ok_or(WireError::Missing("chainKey"))?
            .try_into()
            .map_err(|_| WireError::BadKey("chainKey"))?;
        Ok(Self {
            key_id: p.id.ok_or(WireError::Missing("id"))?,
            iteration: p.iteration.ok_or(WireError::Missing("iteration"))?,
            chain_key,
            signing_key: parse_public(
                p.signing_key
                    .as_deref()
                    .ok_or(WireError::Missing("signingKey"))?,
                "signingKey",
            )?,
        })
    }
}

/// A decoded SenderKeyMessage (`skmsg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderKeyMessage {
    /// The sender key id.
    pub key_id: u32,
    /// The chain iteration of this message.
    pub iteration: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    /// Decodes `skmsg` bytes (the signature is checked by [`SenderKeyRecord::decrypt`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() < 1 + SIGNATURE_LEN {
            return Err(WireError::TooShort(bytes.len()));
        }
        if bytes[0] != VERSION_BYTE {
            return Err(WireError::Version(bytes[0]));
        }
        let body = &bytes[1..bytes.len() - SIGNATURE_LEN];
        let p = GroupMessageProto::decode(body).map_err(|e| WireError::Protobuf(e.to_string()))?;
        Ok(Self {
            key_id: p.id.ok_or(WireError::Missing("id"))?,
            iteration: p.iteration.ok_or(WireError::Missing("iteration"))?,
            ciphertext: p.ciphertext.ok_or(WireError::Missing("ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    fn signed_part(&self) -> &[u8] {
        &self.serialized[..self.serialized.len() - SIGNATURE_LEN]
    }

    fn signature(&self) -> &[u8] {
        &self.serialized[self.serialized.len() - SIGNATURE_LEN..]
    }

    /// The whole wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.serialized
    }
}

fn group_message_keys(seed: &[u8; 32]) -> ([u8; 16], [u8; 32]) {
    let mut out = [0u8; 48];
    hkdf_zero_salt(seed, b"WhisperGroup", &mut out);
    let mut iv = [0u8; 16];
    let mut key = [0u8; 32];
    iv.copy_from_slice(&out[..16]);
    key.copy_from_slice(&out[16..]);
    (iv, key)
}

/// One sender's chain under one key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SenderState {
    pub key_id: u32,
    /// The iteration `chain_key` is at.
    pub iteration: u32,
    pub chain_key: [u8; 32],
    pub signing_public: [u8; 32],
    /// Only for our own key.
    pub signing_private: Option<[u8; 32]>,
    /// Skipped message key seeds, ascending.
    pub skipped: Vec<(u32, [u8; 32])>,
}

impl SenderState {
    /// The message key seed for `iteration`, advancing the chain and keeping skipped keys.
    fn take_seed(&mut self, iteration: u32) -> Result<[u8; 32], SenderKeyError> {
        if iteration < self.iteration {
            return match self.skipped.iter().position(|(i, _)| *i == iteration) {
                Some(p) => Ok(self.skipped.remove(p).1),
                None => Err(SenderKeyError::Duplicate(iteration)),
            };
        }
        if iteration - self.iteration >= MAX_FORWARD {
            return Err(SenderKeyError::TooFarAhead {
                iteration,
                next: self.iteration,
                max: MAX_FORWARD,
            });
        }
        while self.iteration < iteration {
            let (seed, next) = chain_step(&self.chain_key);
            self.skipped.push((self.iteration, seed));
            self.chain_key = next;
            self.iteration += 1;
        }
        let (seed, next) = chain_step(&self.chain_key);
        self.chain_key = next;
        self.iteration += 1;
        if self.skipped.len() > MAX_SKIPPED_KEYS {
            let drop = self.skipped.len() - MAX_SKIPPED_KEYS;
            self.skipped.drain(..drop);
        }
        Ok(seed)
    }
}

/// One sender's keys in one group (ours or a peer device's), stored per
/// `(group, sender device)`. Its `Debug` shows no key material.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SenderKeyRecord {
    /// Oldest first; the last one is current.
    pub(crate) states: Vec<SenderState>,
}

impl std::fmt::Debug for SenderKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyRecord")
            .field(
                "key_ids",
                &self.states.iter().map(|s| s.key_id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SenderKeyRecord {
    /// A record without keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Our own fresh sender key for a group: random 31-bit id, chain key and signing key.
    /// A new one (after a participant left) replaces the old one entirely.
    pub fn new_own(rng: &dyn Entropy) -> Self {
        let id = u32::from_be_bytes(random_bytes::<4>(rng)) & 0x7fff_ffff;
        let signing = KeyPair::generate(rng);
        Self {
            states: vec![SenderState {
                key_id: id,
                iteration: 0,
                chain_key: random_bytes(rng),
                signing_public: signing.public,
                signing_private: Some(signing.private),
                skipped: Vec::new(),
            }],
        }
    }

    /// Our own sender key from known parts (an imported key, or known-answer tests).
    pub fn from_own_parts(
        key_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing: KeyPair,
    ) -> Self {
        Self {
            states: vec![SenderState {
                key_id,
                iteration,
                chain_key,
                signing_public: signing.public,
                signing_private: Some(signing.private),
                skipped: Vec::new(),
            }],
        }
    }

    /// Whether the record has no keys.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The current key id.
    pub fn key_id(&self) -> Option<u32> {
        self.states.last().map(|s| s.key_id)
    }

    /// The distribution message for our own current key at its current iteration.
    pub fn distribution(&self) -> Result<SenderKeyDistribution, SenderKeyError> {
        let s = self
            .states
            .last()
            .filter(|s| s.signing_private.is_some())
            .ok_or(SenderKeyError::NoOwnKey)?;
        Ok(SenderKeyDistribution {
            key_id: s.key_id,
            iteration: s.iteration,
            chain_key: s.chain_key,
            signing_key: s.signing_public,
        })
    }

    /// Stores a received distribution message. One we already have (same id and signing key)
    /// changes nothing, so a re-sent SKDM never rewinds or loses progress.
    pub fn process_distribution(&mut self, d: &SenderKeyDistribution) {
        if self
            .states
            .iter()
            .any(|s| s.key_id == d.key_id && s.signing_public == d.signing_key)
        {
            return;
        }
        self.states.retain(|s| s.key_id != d.key_id);
        self.states.push(SenderState {
            key_id: d.key_id,
            iteration: d.iteration,
            chain_key: d.chain_key,
            signing_public: d.signing_key,
            signing_private: None,
            skipped: Vec::new(),
        });
        if self.states.len() > MAX_STATES {
            self.states.remove(0);
        }
    }

    /// Encrypts a group message (already padded) with our own key: `skmsg` bytes.
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        rng: &dyn Entropy,
    ) -> Result<Vec<u8>, SenderKeyError> {
        let s = self.states.last_mut().ok_or(SenderKeyError::NoOwnKey)?;
        let private = s.signing_private.ok_or(SenderKeyError::NoOwnKey)?;
        let iteration = s.iteration;
        let (seed, next) = chain_step(&s.chain_key);
        let (iv, key) = group_message_keys(&seed);
        let p = GroupMessageProto {
            id: Some(s.key_id),
            iteration: Some(iteration),
            ciphertext: Some(cbc_encrypt(&key, &iv, plaintext)),
        };
        let mut out = Vec::with_capacity(p.encoded_len() + 1 + SIGNATURE_LEN);
        out.push(VERSION_BYTE);
        p.encode_raw(&mut out);
        let sig = xeddsa_sign(&private, &out, &random_bytes::<64>(rng));
        out.extend_from_slice(&sig);
        s.chain_key = next;
        s.iteration = iteration.wrapping_add(1);
        Ok(out)
    }

    /// Decrypts an `skmsg` from this sender. Unchanged on error.
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Vec<u8>, SenderKeyError> {
        let m = SenderKeyMessage::decode(bytes)?;
        let idx = self
            .states
            .iter()
            .rposition(|s| s.key_id == m.key_id)
            .ok_or(SenderKeyError::UnknownKeyId(m.key_id))?;
        if !xeddsa_verify(
            &self.states[idx].signing_public,
            m.signed_part(),
            m.signature(),
        ) {
            return Err(SenderKeyError::BadSignature);
        }
        let mut s = self.states[idx].clone();
        let seed = s.take_seed(m.iteration)?;
        let (iv, key) = group_message_keys(&seed);
        let plaintext =
            cbc_decrypt(&key, &iv, &m.ciphertext).ok_or(SenderKeyError::BadCiphertext)?;
        self.states[idx] = s;
        Ok(plaintext)
    }

    /// Serializes to a versioned blob for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = RecordProto {
            states: self
                .states
                .iter()
                .map(|s| StateProto {
                    key_id: s.key_id,
                    iteration: s.iteration,
                    chain_key: s.chain_key.to_vec(),
                    signing_public: s.signing_public.to_vec(),
                    signing_private: s.signing_private.map(|k| k.to_vec()),
                    skipped: s
                        .skipped
                        .iter()
                        .map(|(i, k)| SkippedProto {
                            index: *i,
                            seed: k.to_vec(),
                        })
                        .collect(),
                })
                .collect(),
        };
        let mut out = Vec::with_capacity(p.encoded_len() + 1);
        out.push(RECORD_FORMAT_VERSION);
        p.encode_raw(&mut out);
        out
    }

    /// Parses a blob written by [`SenderKeyRecord::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SenderKeyError> {
        let bad = |w: &str| SenderKeyError::Record(w.to_string());
        let body = match bytes.split_first() {
            Some((&RECORD_FORMAT_VERSION, body)) => body,
            _ => return Err(bad("unknown format version")),
        };
        let p = RecordProto::decode(body).map_err(|e| SenderKeyError::Record(e.to_string()))?;
        let k32 = |v: &[u8], w: &str| -> Result<[u8; 32], SenderKeyError> {
            v.try_into().map_err(|_| bad(w))
        };
        let states = p
            .states
            .iter()
            .map(|s| {
                Ok(SenderState {
                    key_id: s.key_id,
                    iteration: s.iteration,
                    chain_key: k32(&s.chain_key, "chain key")?,
                    signing_public: k32(&s.signing_public, "signing key")?,
                    signing_private: s
                        .signing_private
                        .as_deref()
                        .map(|k| k32(k, "signing private key"))
                        .transpose()?,
                    skipped: s
                        .skipped
                        .iter()
                        .map(|k| Ok((k.index, k32(&k.seed, "skipped key")?)))
                        .collect::<Result<_, SenderKeyError>>()?,
                })
            })
            .collect::<Result<_, SenderKeyError>>()?;
        Ok(Self { states })
    }
}

#[derive(Clone, PartialEq, Message)]
struct RecordProto {
    #[prost(message, repeated, tag = "1")]
    states: Vec<StateProto>,
}

#[derive(Clone, PartialEq, Message)]
struct StateProto {
    #[prost(uint32, tag = "1")]
    key_id: u32,
    #[prost(uint32, tag = "2")]
    iteration: u32,
    #[prost(bytes = "vec", tag = "3")]
    chain_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    signing_public: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "5")]
    signing_private: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "6")]
    skipped: Vec<SkippedProto>,
}

#[derive(Clone, PartialEq, Message)]
struct SkippedProto {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(bytes = "vec", tag = "2")]
    seed: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    fn pair() -> (SenderKeyRecord, SenderKeyRecord, SeededEntropy) {
        let rng = SeededEntropy::new(3);
        let ours = SenderKeyRecord::new_own(&rng);
        let mut theirs = SenderKeyRecord::new();
        let skdm = SenderKeyDistribution::decode(&ours.distribution().unwrap().encode()).unwrap();
        theirs.process_distribution(&skdm);
        (ours, theirs, rng)
    }

    #[test]
    fn group_messages_out_of_order_and_replays() {
        let (mut ours, mut theirs, rng) = pair();
        let ms: Vec<_> = (0..6u8)
            .map(|i| ours.encrypt(&[i; 20], &rng).unwrap())
            .collect();
        for i in [0usize, 3, 1, 5, 2, 4] {
            assert_eq!(theirs.decrypt(&ms[i]).unwrap(), vec![i as u8; 20]);
        }
        let before = theirs.clone();
        assert_eq!(theirs.decrypt(&ms[2]), Err(SenderKeyError::Duplicate(2)));
        let mut forged = ms[1].clone();
        let n = forged.len();
        forged[n - 70] ^= 1;
        assert_eq!(theirs.decrypt(&forged), Err(SenderKeyError::BadSignature));
        assert!(theirs.decrypt(&forged[..10]).is_err());
        assert_eq!(theirs, before);
        // Our own record cannot be fed our own SKDM into a rewind: a re-sent SKDM is ignored.
        let skdm = ours.distribution().unwrap();
        let mut again = theirs.clone();
        again.process_distribution(&SenderKeyDistribution {
            iteration: 0,
            ..skdm
        });
        assert_eq!(again.to_bytes().len(), theirs.to_bytes().len());
        assert_eq!(
            SenderKeyRecord::from_bytes(&theirs.to_bytes()).unwrap(),
            theirs
        );
    }

    #[test]
    fn issue12_item1_far_iteration_is_refused_and_unknown_ids_are_typed() {
        let (mut ours, mut theirs, rng) = pair();
        for _ in 0..2_500 {
            ours.encrypt(b"", &rng).unwrap();
        }
        let far = ours.encrypt(b"far", &rng).unwrap();
        let before = theirs.clone();
        assert!(matches!(
            theirs.decrypt(&far),
            Err(SenderKeyError::TooFarAhead {
                iteration: 2_500,
                ..
            })
        ));
        assert_eq!(theirs, before);
        let other = SenderKeyRecord::new_own(&rng).encrypt(b"x", &rng).unwrap();
        assert!(matches!(
            theirs.decrypt(&other),
            Err(SenderKeyError::UnknownKeyId(_))
        ));
        assert_eq!(
            SenderKeyRecord::new().encrypt(b"x", &rng),
            Err(SenderKeyError::NoOwnKey)
        );
        assert_eq!(theirs.encrypt(b"x", &rng), Err(SenderKeyError::NoOwnKey));
    }

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = SenderKeyDistribution::decode(&data);
            let _ = SenderKeyMessage::decode(&data);
            let _ = SenderKeyRecord::from_bytes(&data);
            let (_ours, mut theirs, _rng) = pair();
            let before = theirs.clone();
            let _ = theirs.decrypt(&data);
            prop_assert_eq!(theirs, before);
        }

        #[test]
        fn distribution_round_trips(id in any::<u32>(), it in any::<u32>(), ck in any::<[u8; 32]>(), sk in any::<[u8; 32]>()) {
            let d = SenderKeyDistribution { key_id: id, iteration: it, chain_key: ck, signing_key: sk };
            prop_assert_eq!(SenderKeyDistribution::decode(&d.encode()).unwrap(), d);
        }
    }
}
