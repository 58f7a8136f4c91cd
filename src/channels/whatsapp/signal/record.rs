//! [`SessionRecord`]: everything we keep for one peer device address, and the API the session
//! driver calls.
//!
//! # Contract
//!
//! - Load the record for the device address (or [`SessionRecord::new`]), call one operation,
//!   and on `Ok` persist [`SessionRecord::to_bytes`] **before** acknowledging the message to the
//!   server (and before sending an encrypted message). On `Err` the record is unchanged, so a
//!   garbage, replayed or far-future message never corrupts a session; the caller answers with
//!   a retry receipt or drops the message and logs it.
//! - A record holds the current session and up to [`MAX_ARCHIVED_SESSIONS`] older ones: a peer
//!   may still send on a session we replaced (its `pkmsg`s cross ours), and decryption tries
//!   them all. Encryption always uses the current one.
//! - Trust is the caller's: compare [`Decrypted::remote_identity`] (or the bundle's identity)
//!   with the stored one using [`super::identity::decide`] and store/log as it says.
//! - After a successful [`SessionRecord::decrypt_pkmsg`] that reports
//!   [`Decrypted::consumed_pre_key`], delete that one-time prekey in the same transaction.

use prost::Message;

use super::session::{
    Chain, CiphertextType, LocalIdentity, PendingPreKey, PreKeyBundle, ReceivingChain,
    SessionError, SessionState,
};
use super::wire::{PreKeySignalMessage, SignalMessage};
use crate::channels::whatsapp::crypto::{Entropy, KeyPair};

/// Older sessions kept per record (libsignal-node keeps 40 closed sessions as well).
pub const MAX_ARCHIVED_SESSIONS: usize = 40;

/// The blob format version written by [`SessionRecord::to_bytes`].
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// All sessions with one peer device. Its `Debug` shows no key material.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionRecord {
    pub(crate) current: Option<SessionState>,
    /// Most recently archived first.
    pub(crate) archived: Vec<SessionState>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("current", &self.current.is_some())
            .field("pending_prekey", &self.is_pending_prekey())
            .field("archived", &self.archived.len())
            .finish_non_exhaustive()
    }
}

/// A successful decryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decrypted {
    /// The Signal plaintext (still WhatsApp-padded; see [`super::padding::unpad`]).
    pub plaintext: Vec<u8>,
    /// The sender's identity key, for the trust-on-first-use decision.
    pub remote_identity: [u8; 32],
    /// The one-time prekey this message used to create the session; delete it when committing.
    pub consumed_pre_key: Option<u32>,
    /// Whether an archived (not the current) session decrypted it.
    pub archived_session: bool,
}

/// The prekey pairs a `pkmsg` names, as the caller loaded them from its store by
/// [`PreKeySignalMessage::signed_pre_key_id`] and [`PreKeySignalMessage::pre_key_id`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PreKeys<'a> {
    /// Our signed prekey with that id, if we have it.
    pub signed: Option<&'a KeyPair>,
    /// Our one-time prekey with that id, if we still have it.
    pub one_time: Option<&'a KeyPair>,
}

/// Why a stored blob is not a session record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Empty blob or an unknown format version.
    #[error("unknown session record format version {0:?}")]
    Version(Option<u8>),
    /// The body does not decode.
    #[error("malformed session record: {0}")]
    Malformed(String),
}

impl SessionRecord {
    /// A record without sessions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there is a current session to encrypt with.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// The current session's remote identity key.
    pub fn remote_identity(&self) -> Option<[u8; 32]> {
        self.current.as_ref().map(|s| s.remote_identity)
    }

    /// The current session's remote registration id.
    pub fn remote_registration_id(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.remote_registration_id)
    }

    /// Whether our messages on the current session are still `pkmsg` (the peer has not answered).
    pub fn is_pending_prekey(&self) -> bool {
        self.current.as_ref().is_some_and(|s| s.pending.is_some())
    }

    /// Number of archived sessions.
    pub fn archived_sessions(&self) -> usize {
        self.archived.len()
    }

    /// Skipped message keys held by the current session.
    pub fn skipped_keys(&self) -> usize {
        self.current.as_ref().map_or(0, |s| s.skipped_keys())
    }

    fn install(&mut self, state: SessionState) {
        if let Some(old) = self.current.take() {
            self.archived.insert(0, old);
            self.archived.truncate(MAX_ARCHIVED_SESSIONS);
        }
        self.current = Some(state);
    }

    /// Starts a session from a peer device's prekey bundle (X3DH as initiator). The previous
    /// current session, if any, is archived. Messages stay `pkmsg` until the peer answers.
    pub fn start_outgoing(
        &mut self,
        local: &LocalIdentity,
        bundle: &PreKeyBundle,
        rng: &dyn Entropy,
    ) -> Result<(), SessionError> {
        let state = SessionState::initiate(local, bundle, rng)?;
        self.install(state);
        Ok(())
    }

    /// Encrypts `plaintext` (already padded) with the current session.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<(CiphertextType, Vec<u8>), SessionError> {
        // SessionState::encrypt fails only before it changes anything.
        self.current
            .as_mut()
            .ok_or(SessionError::NoSession)?
            .encrypt(plaintext)
    }

    /// Decrypts a `msg`, trying the current session and then the archived ones. Unchanged on error.
    pub fn decrypt_msg(
        &mut self,
        bytes: &[u8],
        rng: &dyn Entropy,
    ) -> Result<Decrypted, SessionError> {
        let msg = SignalMessage::decode(bytes)?;
        let mut first_err = None;
        if let Some(s) = &mut self.current {
            // SessionState::decrypt is atomic: unchanged on error.
            match s.decrypt(&msg, rng) {
                Ok(plaintext) => {
                    let remote_identity = s.remote_identity;
                    return Ok(Decrypted {
                        plaintext,
                        remote_identity,
                        consumed_pre_key: None,
                        archived_session: false,
                    });
                }
                Err(e) => first_err = Some(e),
            }
        }
        for s in self.archived.iter_mut() {
            match s.decrypt(&msg, rng) {
                Ok(plaintext) => {
                    let remote_identity = s.remote_identity;
                    return Ok(Decrypted {
                        plaintext,
                        remote_identity,
                        consumed_pre_key: None,
                        archived_session: true,
                    });
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(SessionError::NoSession))
    }

    /// Decrypts a `pkmsg`: with the session its base key names if we have it, else by
    /// accepting a new session (X3DH as responder) that becomes current. Unchanged on error.
    pub fn decrypt_pkmsg(
        &mut self,
        local: &LocalIdentity,
        keys: PreKeys<'_>,
        msg: &PreKeySignalMessage,
        rng: &dyn Entropy,
    ) -> Result<Decrypted, SessionError> {
        let existing = if self
            .current
            .as_ref()
            .is_some_and(|s| s.base_key == msg.base_key)
        {
            Some(None)
        } else {
            self.archived
                .iter()
                .position(|s| s.base_key == msg.base_key)
                .map(Some)
        };
        match existing {
            Some(slot) => {
                let mut s = match slot {
                    None => self.current.clone(),
                    Some(i) => self.archived.get(i).cloned(),
                }
                .ok_or(SessionError::NoSession)?;
                let plaintext = s.decrypt(&msg.message, rng)?;
                let remote_identity = s.remote_identity;
                match slot {
                    None => self.current = Some(s),
                    Some(i) => self.archived[i] = s,
                }
                Ok(Decrypted {
                    plaintext,
                    remote_identity,
                    consumed_pre_key: None,
                    archived_session: slot.is_some(),
                })
            }
            None => {
                let signed = keys
                    .signed
                    .ok_or(SessionError::MissingSignedPreKey(msg.signed_pre_key_id))?;
                let one_time = match msg.pre_key_id {
                    Some(id) => Some(keys.one_time.ok_or(SessionError::MissingPreKey(id))?),
                    None => None,
                };
                let mut s = SessionState::accept(local, signed, one_time, msg);
                let plaintext = s.decrypt(&msg.message, rng)?;
                let remote_identity = s.remote_identity;
                self.install(s);
                Ok(Decrypted {
                    plaintext,
                    remote_identity,
                    consumed_pre_key: msg.pre_key_id,
                    archived_session: false,
                })
            }
        }
    }

    /// Serializes to a versioned blob for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = RecordProto {
            current: self.current.as_ref().map(state_to_proto),
            archived: self.archived.iter().map(state_to_proto).collect(),
        };
        let mut out = Vec::with_capacity(p.encoded_len() + 1);
        out.push(RECORD_FORMAT_VERSION);
        p.encode_raw(&mut out);
        out
    }

    /// Parses a blob written by [`SessionRecord::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        match bytes.split_first() {
            Some((&RECORD_FORMAT_VERSION, body)) => {
                let p =
                    RecordProto::decode(body).map_err(|e| RecordError::Malformed(e.to_string()))?;
                Ok(Self {
                    current: p.current.map(state_from_proto).transpose()?,
                    archived: p
                        .archived
                        .into_iter()
                        .map(state_from_proto)
                        .collect::<Result<_, _>>()?,
                })
            }
            Some((&v, _)) => Err(RecordError::Version(Some(v))),
            None => Err(RecordError::Version(None)),
        }
    }
}

#[derive(Clone, PartialEq, Message)]
struct RecordProto {
    #[prost(message, optional, tag = "1")]
    current: Option<StateProto>,
    #[prost(message, repeated, tag = "2")]
    archived: Vec<StateProto>,
}

#[derive(Clone, PartialEq, Message)]
struct StateProto {
    #[prost(bytes = "vec", tag = "1")]
    local_identity: Vec<u8>,
    #[prost(uint32, tag = "2")]
    local_registration_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    remote_identity: Vec<u8>,
    #[prost(uint32, tag = "4")]
    remote_registration_id: u32,
    #[prost(bytes = "vec", tag = "5")]
    root_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "6")]
    our_ratchet_private: Vec<u8>,
    /// Stored so loading needs no scalar multiplication (the driver loads per message).
    #[prost(bytes = "vec", tag = "14")]
    our_ratchet_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "7")]
    their_ratchet: Vec<u8>,
    #[prost(uint32, tag = "8")]
    previous_counter: u32,
    #[prost(message, optional, tag = "9")]
    sending: Option<ChainProto>,
    #[prost(message, repeated, tag = "10")]
    receiving: Vec<ReceivingProto>,
    #[prost(bytes = "vec", tag = "11")]
    base_key: Vec<u8>,
    #[prost(bool, tag = "12")]
    base_key_ours: bool,
    #[prost(message, optional, tag = "13")]
    pending: Option<PendingProto>,
}

#[derive(Clone, PartialEq, Message)]
struct ChainProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    key: Option<Vec<u8>>,
    #[prost(uint32, tag = "2")]
    next: u32,
}

#[derive(Clone, PartialEq, Message)]
struct ReceivingProto {
    #[prost(bytes = "vec", tag = "1")]
    ratchet_key: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    chain: Option<ChainProto>,
    #[prost(message, repeated, tag = "3")]
    skipped: Vec<SkippedProto>,
}

#[derive(Clone, PartialEq, Message)]
struct SkippedProto {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(bytes = "vec", tag = "2")]
    seed: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct PendingProto {
    #[prost(uint32, optional, tag = "1")]
    pre_key_id: Option<u32>,
    #[prost(uint32, tag = "2")]
    signed_pre_key_id: u32,
}

fn chain_to_proto(c: &Chain) -> ChainProto {
    ChainProto {
        key: c.key.map(|k| k.to_vec()),
        next: c.next,
    }
}

fn state_to_proto(s: &SessionState) -> StateProto {
    StateProto {
        local_identity: s.local_identity.to_vec(),
        local_registration_id: s.local_registration_id,
        remote_identity: s.remote_identity.to_vec(),
        remote_registration_id: s.remote_registration_id,
        root_key: s.root_key.to_vec(),
        our_ratchet_private: s.our_ratchet.private.to_vec(),
        our_ratchet_public: s.our_ratchet.public.to_vec(),
        their_ratchet: s.their_ratchet.to_vec(),
        previous_counter: s.previous_counter,
        sending: s.sending.as_ref().map(chain_to_proto),
        receiving: s
            .receiving
            .iter()
            .map(|r| ReceivingProto {
                ratchet_key: r.ratchet_key.to_vec(),
                chain: Some(chain_to_proto(&r.chain)),
                skipped: r
                    .skipped
                    .iter()
                    .map(|(i, k)| SkippedProto {
                        index: *i,
                        seed: k.to_vec(),
                    })
                    .collect(),
            })
            .collect(),
        base_key: s.base_key.to_vec(),
        base_key_ours: s.base_key_ours,
        pending: s.pending.as_ref().map(|p| PendingProto {
            pre_key_id: p.pre_key_id,
            signed_pre_key_id: p.signed_pre_key_id,
        }),
    }
}

fn key32(v: &[u8], what: &str) -> Result<[u8; 32], RecordError> {
    v.try_into()
        .map_err(|_| RecordError::Malformed(format!("{what} is {} bytes, not 32", v.len())))
}

fn chain_from_proto(c: &ChainProto) -> Result<Chain, RecordError> {
    Ok(Chain {
        key: c
            .key
            .as_deref()
            .map(|k| key32(k, "chain key"))
            .transpose()?,
        next: c.next,
    })
}

fn ratchet_pair(p: &StateProto) -> Result<KeyPair, RecordError> {
    let private = key32(&p.our_ratchet_private, "ratchet key")?;
    if p.our_ratchet_public.is_empty() {
        return Ok(KeyPair::from_private(private));
    }
    Ok(KeyPair {
        private,
        public: key32(&p.our_ratchet_public, "ratchet public key")?,
    })
}

fn state_from_proto(p: StateProto) -> Result<SessionState, RecordError> {
    Ok(SessionState {
        local_identity: key32(&p.local_identity, "local identity")?,
        local_registration_id: p.local_registration_id,
        remote_identity: key32(&p.remote_identity, "remote identity")?,
        remote_registration_id: p.remote_registration_id,
        root_key: key32(&p.root_key, "root key")?,
        our_ratchet: ratchet_pair(&p)?,
        their_ratchet: key32(&p.their_ratchet, "their ratchet key")?,
        previous_counter: p.previous_counter,
        sending: p.sending.as_ref().map(chain_from_proto).transpose()?,
        receiving: p
            .receiving
            .iter()
            .map(|r| {
                Ok(ReceivingChain {
                    ratchet_key: key32(&r.ratchet_key, "receiving ratchet key")?,
                    chain: chain_from_proto(r.chain.as_ref().ok_or_else(|| {
                        RecordError::Malformed("receiving chain without position".into())
                    })?)?,
                    skipped: r
                        .skipped
                        .iter()
                        .map(|s| Ok((s.index, key32(&s.seed, "skipped key")?)))
                        .collect::<Result<_, RecordError>>()?,
                })
            })
            .collect::<Result<_, RecordError>>()?,
        base_key: key32(&p.base_key, "base key")?,
        base_key_ours: p.base_key_ours,
        pending: p.pending.map(|q| PendingPreKey {
            pre_key_id: q.pre_key_id,
            signed_pre_key_id: q.signed_pre_key_id,
        }),
    })
}
