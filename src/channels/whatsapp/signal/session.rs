//! One pairwise session: X3DH in both roles and the Double Ratchet over it.
//!
//! Written from the X3DH and Double Ratchet specifications, with the v3 conventions the
//! WhatsApp ecosystem uses (facts observed against libsignal-node):
//!
//! - the X3DH secret is `0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4]`, expanded with
//!   `HKDF(salt=0³², "WhisperText")`; only the first 32 bytes (the root key) are used;
//! - the initiator immediately takes a DH-ratchet step against the responder's signed prekey,
//!   the responder's first ratchet key is its signed prekey;
//! - `previousCounter` carries the *index of the last message* of the previous sending chain,
//!   and a receiver derives the old chain's keys up to and including it before closing it.
//!
//! The session state's `encrypt` and `decrypt` are atomic (unchanged on error), which
//! [`super::record::SessionRecord`] relies on to promise the same to its callers.

use subtle::ConstantTimeEq;

use super::primitives::{
    MessageKeys, cbc_decrypt, cbc_encrypt, chain_step, hkdf, message_mac, ratchet_dh, root_step,
    x25519,
};
use super::wire::{PreKeySignalMessage, SignalMessage, serialize_public};
use crate::channels::whatsapp::crypto::{Entropy, KeyPair, xeddsa_verify};

/// How far ahead of a chain a message may be (libsignal-node refuses more than 2000 too).
pub const MAX_FORWARD: u32 = 2000;
/// Skipped message keys kept per session across its receiving chains; the oldest go first.
pub const MAX_SKIPPED_KEYS: usize = 2000;
/// Receiving chains kept per session (older chains are dropped with their skipped keys).
pub const MAX_RECEIVING_CHAINS: usize = 5;

/// Why a session operation failed. A failure never changes the stored record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The bytes are not a valid wire message.
    #[error("invalid message: {0}")]
    Wire(#[from] super::wire::WireError),
    /// There is no session to encrypt with or decrypt a `msg` with.
    #[error("no session")]
    NoSession,
    /// The session cannot send yet (we accepted it but never received on it).
    #[error("session has no sending chain")]
    NoSendingChain,
    /// The prekey bundle's signed prekey signature does not verify.
    #[error("signed prekey signature does not verify")]
    BadSignedPreKeySignature,
    /// A `pkmsg` names a signed prekey we do not have.
    #[error("unknown signed prekey {0}")]
    MissingSignedPreKey(u32),
    /// A `pkmsg` names a one-time prekey we do not have (already used or never ours).
    #[error("unknown one-time prekey {0}")]
    MissingPreKey(u32),
    /// The message counter is too far ahead of its chain.
    #[error("message {counter} is more than {max} ahead of chain position {next}")]
    TooFarAhead {
        /// The message's counter.
        counter: u32,
        /// The chain's next counter.
        next: u32,
        /// The bound.
        max: u32,
    },
    /// The message key was used already (a replay or duplicate) or dropped.
    #[error("message {0} already decrypted or its key expired")]
    Duplicate(u32),
    /// The chain for this ratchet key was closed and the key was not kept.
    #[error("receiving chain closed")]
    ChainClosed,
    /// The MAC does not verify: wrong session, wrong identity or tampering.
    #[error("bad MAC")]
    BadMac,
    /// The ciphertext does not decrypt to validly padded plaintext.
    #[error("bad ciphertext")]
    BadCiphertext,
}

impl SessionError {
    /// Whether the message was already decrypted (a duplicate delivery or replay): the caller
    /// acknowledges and drops it. Every other decrypt error calls for a retry receipt.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, SessionError::Duplicate(_))
    }
}

/// A sending or receiving chain's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The chain key for index `next` (`None` once a receiving chain is closed).
    pub key: Option<[u8; 32]>,
    /// The index of the next message key this chain yields.
    pub next: u32,
}

/// A receiving chain with the keys of messages skipped on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReceivingChain {
    /// The peer's ratchet public key this chain belongs to.
    pub ratchet_key: [u8; 32],
    /// Position and chain key.
    pub chain: Chain,
    /// Message key seeds for skipped indexes, ascending.
    pub skipped: Vec<(u32, [u8; 32])>,
}

/// The X3DH header our `pkmsg`s carry until the peer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingPreKey {
    /// The peer's one-time prekey id we used, if any.
    pub pre_key_id: Option<u32>,
    /// The peer's signed prekey id we used.
    pub signed_pre_key_id: u32,
}

/// The state of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionState {
    pub local_identity: [u8; 32],
    pub local_registration_id: u32,
    pub remote_identity: [u8; 32],
    pub remote_registration_id: u32,
    pub root_key: [u8; 32],
    pub our_ratchet: KeyPair,
    pub their_ratchet: [u8; 32],
    pub previous_counter: u32,
    pub sending: Option<Chain>,
    /// Oldest first.
    pub receiving: Vec<ReceivingChain>,
    pub base_key: [u8; 32],
    pub base_key_ours: bool,
    pub pending: Option<PendingPreKey>,
}

/// Our identity as the session layer needs it.
#[derive(Clone, Debug)]
pub struct LocalIdentity {
    /// The identity key pair (Curve25519).
    pub key_pair: KeyPair,
    /// Our registration id.
    pub registration_id: u32,
}

/// A peer device's prekey bundle, as fetched from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The device's registration id.
    pub registration_id: u32,
    /// The device's identity key.
    pub identity_key: [u8; 32],
    /// The signed prekey id.
    pub signed_pre_key_id: u32,
    /// The signed prekey.
    pub signed_pre_key: [u8; 32],
    /// XEdDSA signature by the identity key over `0x05 ‖ signed_pre_key`.
    pub signed_pre_key_signature: Vec<u8>,
    /// A one-time prekey `(id, key)`, when the server had one.
    pub pre_key: Option<(u32, [u8; 32])>,
}

/// The kind of `<enc type>` a ciphertext is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiphertextType {
    /// `pkmsg`: a PreKeySignalMessage (the session is not confirmed by the peer yet).
    PreKey,
    /// `msg`: a SignalMessage.
    Whisper,
}

impl CiphertextType {
    /// The `type` attribute of `<enc>`.
    pub fn as_str(self) -> &'static str {
        match self {
            CiphertextType::PreKey => "pkmsg",
            CiphertextType::Whisper => "msg",
        }
    }
}

fn x3dh_root(parts: &[[u8; 32]]) -> [u8; 32] {
    let mut secret = Vec::with_capacity(32 * (parts.len() + 1));
    secret.extend_from_slice(&[0xFF; 32]);
    for p in parts {
        secret.extend_from_slice(p);
    }
    let mut root = [0u8; 32];
    hkdf(&secret, &[0u8; 32], b"WhisperText", &mut root);
    root
}

impl SessionState {
    /// X3DH as initiator from a fetched bundle, then the first sending ratchet step.
    pub fn initiate(
        local: &LocalIdentity,
        bundle: &PreKeyBundle,
        rng: &dyn Entropy,
    ) -> Result<Self, SessionError> {
        if !xeddsa_verify(
            &bundle.identity_key,
            &serialize_public(&bundle.signed_pre_key),
            &bundle.signed_pre_key_signature,
        ) {
            return Err(SessionError::BadSignedPreKeySignature);
        }
        let base = KeyPair::generate(rng);
        let mut parts = vec![
            x25519(&local.key_pair, &bundle.signed_pre_key),
            x25519(&base, &bundle.identity_key),
            x25519(&base, &bundle.signed_pre_key),
        ];
        if let Some((_, opk)) = &bundle.pre_key {
            parts.push(base.dh(opk));
        }
        let root = x3dh_root(&parts);
        let our_ratchet = KeyPair::generate(rng);
        let (root_key, chain_key) = root_step(&root, &x25519(&our_ratchet, &bundle.signed_pre_key));
        Ok(Self {
            local_identity: local.key_pair.public,
            local_registration_id: local.registration_id,
            remote_identity: bundle.identity_key,
            remote_registration_id: bundle.registration_id,
            root_key,
            our_ratchet,
            their_ratchet: bundle.signed_pre_key,
            previous_counter: 0,
            sending: Some(Chain {
                key: Some(chain_key),
                next: 0,
            }),
            receiving: Vec::new(),
            base_key: base.public,
            base_key_ours: true,
            pending: Some(PendingPreKey {
                pre_key_id: bundle.pre_key.map(|(id, _)| id),
                signed_pre_key_id: bundle.signed_pre_key_id,
            }),
        })
    }

    /// X3DH as responder for a received `pkmsg` (its embedded message is not decrypted here).
    pub fn accept(
        local: &LocalIdentity,
        signed_pre_key: &KeyPair,
        one_time_pre_key: Option<&KeyPair>,
        msg: &PreKeySignalMessage,
    ) -> Self {
        let mut parts = vec![
            x25519(signed_pre_key, &msg.identity_key),
            x25519(&local.key_pair, &msg.base_key),
            x25519(signed_pre_key, &msg.base_key),
        ];
        if let Some(opk) = one_time_pre_key {
            parts.push(x25519(opk, &msg.base_key));
        }
        Self {
            local_identity: local.key_pair.public,
            local_registration_id: local.registration_id,
            remote_identity: msg.identity_key,
            remote_registration_id: msg.registration_id,
            root_key: x3dh_root(&parts),
            our_ratchet: signed_pre_key.clone(),
            their_ratchet: msg.base_key,
            previous_counter: 0,
            sending: None,
            receiving: Vec::new(),
            base_key: msg.base_key,
            base_key_ours: false,
            pending: None,
        }
    }

    /// Encrypts one message (the `pkmsg` wrapper while the X3DH header is pending).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<(CiphertextType, Vec<u8>), SessionError> {
        let chain = self.sending.as_mut().ok_or(SessionError::NoSendingChain)?;
        let ck = chain.key.ok_or(SessionError::NoSendingChain)?;
        let (seed, next_ck) = chain_step(&ck);
        let counter = chain.next;
        chain.key = Some(next_ck);
        chain.next = counter.wrapping_add(1);
        let keys = MessageKeys::derive(&seed);
        let ciphertext = cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let ours = serialize_public(&self.local_identity);
        let theirs = serialize_public(&self.remote_identity);
        let msg = SignalMessage::build(
            &self.our_ratchet.public,
            counter,
            self.previous_counter,
            ciphertext,
            |body| message_mac(&keys.mac_key, &ours, &theirs, body),
        );
        Ok(match &self.pending {
            Some(p) => (
                CiphertextType::PreKey,
                PreKeySignalMessage::build(
                    self.local_registration_id,
                    p.pre_key_id,
                    p.signed_pre_key_id,
                    &self.base_key,
                    &self.local_identity,
                    msg,
                )
                .as_bytes()
                .to_vec(),
            ),
            None => (CiphertextType::Whisper, msg.as_bytes().to_vec()),
        })
    }

    /// Decrypts one SignalMessage, stepping the ratchet when it carries a new ratchet key.
    /// Atomic: on error the state is unchanged. Messages on a known chain are verified before
    /// anything changes; a ratchet step runs on a copy.
    pub fn decrypt(
        &mut self,
        msg: &SignalMessage,
        rng: &dyn Entropy,
    ) -> Result<Vec<u8>, SessionError> {
        if let Some(idx) = self
            .receiving
            .iter()
            .position(|c| c.ratchet_key == msg.ratchet_key)
        {
            let (seed, key_use) = peek_message_key(&self.receiving[idx], msg.counter)?;
            let plaintext = self.open(&seed, msg)?;
            key_use.apply(&mut self.receiving[idx]);
            self.pending = None;
            self.trim_skipped();
            return Ok(plaintext);
        }
        let mut next = self.clone();
        next.ratchet_step(msg, rng)?;
        let idx = next.receiving.len() - 1;
        let (seed, key_use) = peek_message_key(&next.receiving[idx], msg.counter)?;
        let plaintext = next.open(&seed, msg)?;
        key_use.apply(&mut next.receiving[idx]);
        next.pending = None;
        next.trim_skipped();
        *self = next;
        Ok(plaintext)
    }

    /// Checks the MAC and decrypts with the keys from `seed`.
    fn open(&self, seed: &[u8; 32], msg: &SignalMessage) -> Result<Vec<u8>, SessionError> {
        let keys = MessageKeys::derive(seed);
        let expected = message_mac(
            &keys.mac_key,
            &serialize_public(&self.remote_identity),
            &serialize_public(&self.local_identity),
            msg.mac_body(),
        );
        if !bool::from(expected.ct_eq(msg.mac())) {
            return Err(SessionError::BadMac);
        }
        cbc_decrypt(&keys.cipher_key, &keys.iv, &msg.ciphertext).ok_or(SessionError::BadCiphertext)
    }

    fn ratchet_step(&mut self, msg: &SignalMessage, rng: &dyn Entropy) -> Result<(), SessionError> {
        if let Some(prev) = self
            .receiving
            .iter_mut()
            .find(|c| c.ratchet_key == self.their_ratchet)
        {
            // Keep the keys of the previous chain's messages still in flight, then close it.
            if msg.previous_counter >= prev.chain.next && prev.chain.key.is_some() {
                fill_until(prev, msg.previous_counter.saturating_add(1))?;
            }
            prev.chain.key = None;
        }
        // Both DH outputs of the step at once (the peer key is converted once); the new key
        // pair is drawn exactly when the step needs it, as in every implementation.
        let new_private = crate::channels::whatsapp::crypto::random_bytes(rng);
        let (new_ratchet, recv_dh, send_dh) = ratchet_dh(&self.our_ratchet, new_private, &msg.ratchet_key);
        let (root, recv_ck) = root_step(&self.root_key, &recv_dh);
        self.receiving.push(ReceivingChain {
            ratchet_key: msg.ratchet_key,
            chain: Chain {
                key: Some(recv_ck),
                next: 0,
            },
            skipped: Vec::new(),
        });
        if self.receiving.len() > MAX_RECEIVING_CHAINS {
            self.receiving.remove(0);
        }
        if let Some(s) = &self.sending {
            self.previous_counter = s.next.wrapping_sub(1);
        }
        self.our_ratchet = new_ratchet;
        let (root, send_ck) = root_step(&root, &send_dh);
        self.root_key = root;
        self.sending = Some(Chain {
            key: Some(send_ck),
            next: 0,
        });
        self.their_ratchet = msg.ratchet_key;
        Ok(())
    }

    fn trim_skipped(&mut self) {
        let mut total: usize = self.receiving.iter().map(|c| c.skipped.len()).sum();
        for c in self.receiving.iter_mut() {
            if total <= MAX_SKIPPED_KEYS {
                break;
            }
            let drop = (total - MAX_SKIPPED_KEYS).min(c.skipped.len());
            c.skipped.drain(..drop);
            total -= drop;
        }
    }

    /// Number of skipped message keys held (for tests and metrics).
    pub fn skipped_keys(&self) -> usize {
        self.receiving.iter().map(|c| c.skipped.len()).sum()
    }
}

/// Derives and stores the keys of `chain` up to (excluding) index `until`.
fn fill_until(chain: &mut ReceivingChain, until: u32) -> Result<(), SessionError> {
    if until <= chain.chain.next {
        return Ok(());
    }
    if until - chain.chain.next > MAX_FORWARD {
        return Err(SessionError::TooFarAhead {
            counter: until - 1,
            next: chain.chain.next,
            max: MAX_FORWARD,
        });
    }
    let mut ck = chain.chain.key.ok_or(SessionError::ChainClosed)?;
    while chain.chain.next < until {
        let (seed, next) = chain_step(&ck);
        chain.skipped.push((chain.chain.next, seed));
        ck = next;
        chain.chain.next += 1;
    }
    chain.chain.key = Some(ck);
    Ok(())
}

/// How a message key found by [`peek_message_key`] changes its chain once the message verified.
enum KeyUse {
    /// It was the stored skipped key at this position.
    Skipped(usize),
    /// The chain advances past it, keeping the keys it skipped.
    Advance {
        skipped: Vec<(u32, [u8; 32])>,
        key: [u8; 32],
        next: u32,
    },
}

impl KeyUse {
    fn apply(self, chain: &mut ReceivingChain) {
        match self {
            KeyUse::Skipped(p) => {
                chain.skipped.remove(p);
            }
            KeyUse::Advance { skipped, key, next } => {
                chain.skipped.extend(skipped);
                chain.chain.key = Some(key);
                chain.chain.next = next;
            }
        }
    }
}

/// The message key seed for `counter` on `chain` (a stored skipped key or a derivation ahead),
/// without changing the chain.
fn peek_message_key(
    chain: &ReceivingChain,
    counter: u32,
) -> Result<([u8; 32], KeyUse), SessionError> {
    if counter < chain.chain.next {
        return match chain.skipped.iter().position(|(i, _)| *i == counter) {
            Some(p) => Ok((chain.skipped[p].1, KeyUse::Skipped(p))),
            None => Err(SessionError::Duplicate(counter)),
        };
    }
    if counter - chain.chain.next >= MAX_FORWARD {
        return Err(SessionError::TooFarAhead {
            counter,
            next: chain.chain.next,
            max: MAX_FORWARD,
        });
    }
    let mut ck = chain.chain.key.ok_or(SessionError::ChainClosed)?;
    let mut skipped = Vec::new();
    for i in chain.chain.next..counter {
        let (seed, next) = chain_step(&ck);
        skipped.push((i, seed));
        ck = next;
    }
    let (seed, next) = chain_step(&ck);
    Ok((
        seed,
        KeyUse::Advance {
            skipped,
            key: next,
            next: counter + 1,
        },
    ))
}
