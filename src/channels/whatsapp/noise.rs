//! Noise_XX_25519_AESGCM_SHA256 exactly as WhatsApp uses it (reference §1.3, §8 facts 1–2).
//!
//! Differences from a stock Noise library, all deliberate:
//! - the 32-byte protocol name is used as `h` unhashed, and the prologue is only `WA 06 03`;
//! - there is no MixHash of the empty payload after `-> e`;
//! - the GCM IV is 8 zero bytes followed by a 32-bit big-endian counter;
//! - during the handshake one counter serves encrypt and decrypt and resets on every MixKey; after
//!   Split the read and write counters are independent.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use super::crypto::KeyPair;
use super::frame::WA_HEADER;

/// `"Noise_XX_25519_AESGCM_SHA256\0\0\0\0"`: exactly 32 bytes, used as the initial hash directly.
pub const NOISE_XX_NAME: &[u8; 32] = b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0";

/// Noise errors. None of them reveals key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoiseError {
    /// AEAD authentication failed (wrong key, tampered frame, or counter mismatch).
    #[error("noise: decryption failed")]
    Decrypt,
    /// A handshake field had the wrong length.
    #[error("noise: {0} has the wrong length")]
    BadLength(&'static str),
    /// The 2^32 nonce space is used up; the connection must be re-established.
    #[error("noise: counter exhausted")]
    CounterExhausted,
}

fn iv(counter: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[8..].copy_from_slice(&counter.to_be_bytes());
    iv
}

fn hkdf64(salt: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut okm = [0u8; 64];
    // 64 bytes is always a valid HKDF-SHA256 output length.
    if hk.expand(&[], &mut okm).is_err() {
        unreachable!("64-byte HKDF output");
    }
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

fn seal(key: &[u8; 32], counter: u32, aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    match cipher.encrypt(Nonce::from_slice(&iv(counter)), Payload { msg: pt, aad }) {
        Ok(ct) => ct,
        // aes-gcm only fails for inputs above 64 GiB, which frames cannot reach.
        Err(_) => unreachable!("AES-GCM input within limits"),
    }
}

fn open(key: &[u8; 32], counter: u32, aad: &[u8], ct: &[u8]) -> Result<Vec<u8>, NoiseError> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(&iv(counter)), Payload { msg: ct, aad })
        .map_err(|_| NoiseError::Decrypt)
}

/// The handshake's symmetric state: chaining key, hash, cipher key and the shared counter.
#[derive(Clone)]
pub struct SymmetricState {
    ck: [u8; 32],
    h: [u8; 32],
    k: [u8; 32],
    n: u32,
}

impl std::fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymmetricState")
            .field("h", &hex::encode(self.h))
            .finish_non_exhaustive()
    }
}

impl SymmetricState {
    /// The state after `h = ck = name` and `MixHash(WA 06 03)`.
    pub fn new() -> Self {
        let mut s = Self {
            ck: *NOISE_XX_NAME,
            h: *NOISE_XX_NAME,
            k: *NOISE_XX_NAME,
            n: 0,
        };
        s.mix_hash(&WA_HEADER);
        s
    }

    /// The current handshake hash.
    pub fn hash(&self) -> [u8; 32] {
        self.h
    }

    /// `h = SHA256(h || data)`.
    pub fn mix_hash(&mut self, data: &[u8]) {
        self.h = Sha256::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }

    /// `(ck, k) = HKDF(salt = ck, ikm)`; the counter resets.
    pub fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf64(&self.ck, ikm);
        self.ck = ck;
        self.k = k;
        self.n = 0;
    }

    /// AES-GCM with AAD = h, then `MixHash(ciphertext)`.
    pub fn encrypt_and_hash(&mut self, pt: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let ct = seal(&self.k, self.n, &self.h, pt);
        self.n = self.n.checked_add(1).ok_or(NoiseError::CounterExhausted)?;
        self.mix_hash(&ct);
        Ok(ct)
    }

    /// Decrypts with AAD = h, then `MixHash(ciphertext)`.
    pub fn decrypt_and_hash(&mut self, ct: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let pt = open(&self.k, self.n, &self.h, ct)?;
        self.n = self.n.checked_add(1).ok_or(NoiseError::CounterExhausted)?;
        self.mix_hash(ct);
        Ok(pt)
    }

    /// Split: `(k1, k2) = HKDF(salt = ck, ikm = empty)`. The initiator writes with k1.
    pub fn split(&self, initiator: bool) -> TransportState {
        let (k1, k2) = hkdf64(&self.ck, &[]);
        let (write, read) = if initiator { (k1, k2) } else { (k2, k1) };
        TransportState {
            write_key: write,
            read_key: read,
            write_n: 0,
            read_n: 0,
        }
    }
}

impl Default for SymmetricState {
    fn default() -> Self {
        Self::new()
    }
}

fn key32(b: &[u8], what: &'static str) -> Result<[u8; 32], NoiseError> {
    <[u8; 32]>::try_from(b).map_err(|_| NoiseError::BadLength(what))
}

/// The client (initiator) side of the handshake.
#[derive(Debug)]
pub struct Initiator {
    sym: SymmetricState,
    ephemeral: KeyPair,
}

/// What the initiator learns from the server hello.
#[derive(Debug)]
pub struct ServerHelloOpened {
    /// The server's static public key (to compare with the certificate's leaf key).
    pub server_static: [u8; 32],
    /// The decrypted certificate chain bytes.
    pub cert_chain: Vec<u8>,
    server_ephemeral: [u8; 32],
}

impl Initiator {
    /// Starts a handshake with the given ephemeral key; returns the state and the ephemeral public
    /// key to send in `ClientHello`.
    pub fn new(ephemeral: KeyPair) -> (Self, [u8; 32]) {
        let mut sym = SymmetricState::new();
        sym.mix_hash(&ephemeral.public);
        let e = ephemeral.public;
        (Self { sym, ephemeral }, e)
    }

    /// Processes `ServerHello{ephemeral, static, payload}`.
    pub fn read_server_hello(
        &mut self,
        ephemeral: &[u8],
        encrypted_static: &[u8],
        payload: &[u8],
    ) -> Result<ServerHelloOpened, NoiseError> {
        let re = key32(ephemeral, "server ephemeral")?;
        self.sym.mix_hash(&re);
        self.sym.mix_key(&self.ephemeral.dh(&re));
        let rs = key32(
            &self.sym.decrypt_and_hash(encrypted_static)?,
            "server static",
        )?;
        self.sym.mix_key(&self.ephemeral.dh(&rs));
        let cert_chain = self.sym.decrypt_and_hash(payload)?;
        Ok(ServerHelloOpened {
            server_static: rs,
            cert_chain,
            server_ephemeral: re,
        })
    }

    /// Builds `ClientFinish{static, payload}` with our long-term noise key and the client payload,
    /// and splits into transport keys.
    pub fn write_client_finish(
        mut self,
        opened: &ServerHelloOpened,
        noise_key: &KeyPair,
        client_payload: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>, TransportState), NoiseError> {
        let c_static = self.sym.encrypt_and_hash(&noise_key.public)?;
        self.sym.mix_key(&noise_key.dh(&opened.server_ephemeral));
        let c_payload = self.sym.encrypt_and_hash(client_payload)?;
        Ok((c_static, c_payload, self.sym.split(true)))
    }
}

/// The server (responder) side of the handshake, used by the mock server.
#[derive(Debug)]
pub struct Responder {
    sym: SymmetricState,
    ephemeral: KeyPair,
}

/// What the responder learns from `ClientFinish`.
#[derive(Debug)]
pub struct ClientFinishOpened {
    /// The client's long-term noise public key (identifies the companion device).
    pub client_static: [u8; 32],
    /// The decrypted `ClientPayload` bytes.
    pub payload: Vec<u8>,
    /// Transport keys.
    pub transport: TransportState,
}

/// The responder's state plus the three `ServerHello` fields: ephemeral public key, encrypted
/// static key, encrypted certificate chain.
pub type ServerHelloParts = (Responder, [u8; 32], Vec<u8>, Vec<u8>);

impl Responder {
    /// Reads `ClientHello{ephemeral}` and writes `ServerHello{ephemeral, static, payload}`.
    pub fn respond(
        client_ephemeral: &[u8],
        ephemeral: KeyPair,
        static_key: &KeyPair,
        cert_chain: &[u8],
    ) -> Result<ServerHelloParts, NoiseError> {
        let ce = key32(client_ephemeral, "client ephemeral")?;
        let mut sym = SymmetricState::new();
        sym.mix_hash(&ce);
        sym.mix_hash(&ephemeral.public);
        sym.mix_key(&ephemeral.dh(&ce));
        let enc_static = sym.encrypt_and_hash(&static_key.public)?;
        sym.mix_key(&static_key.dh(&ce));
        let enc_payload = sym.encrypt_and_hash(cert_chain)?;
        let e = ephemeral.public;
        Ok((Self { sym, ephemeral }, e, enc_static, enc_payload))
    }

    /// Reads `ClientFinish{static, payload}` and splits.
    pub fn read_client_finish(
        mut self,
        enc_static: &[u8],
        enc_payload: &[u8],
    ) -> Result<ClientFinishOpened, NoiseError> {
        let cs = key32(&self.sym.decrypt_and_hash(enc_static)?, "client static")?;
        self.sym.mix_key(&self.ephemeral.dh(&cs));
        let payload = self.sym.decrypt_and_hash(enc_payload)?;
        Ok(ClientFinishOpened {
            client_static: cs,
            payload,
            transport: self.sym.split(false),
        })
    }
}

/// Transport keys after Split, with independent read and write counters. AAD is empty.
pub struct TransportState {
    write_key: [u8; 32],
    read_key: [u8; 32],
    write_n: u32,
    read_n: u32,
}

impl std::fmt::Debug for TransportState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportState")
            .field("write_n", &self.write_n)
            .field("read_n", &self.read_n)
            .finish()
    }
}

impl TransportState {
    /// Splits into independently usable halves (for a reader task and a writer task).
    pub fn into_halves(self) -> (TransportWriter, TransportReader) {
        (
            TransportWriter {
                key: self.write_key,
                n: self.write_n,
            },
            TransportReader {
                key: self.read_key,
                n: self.read_n,
            },
        )
    }

    /// Encrypts one outgoing frame payload.
    pub fn encrypt(&mut self, pt: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let ct = seal(&self.write_key, self.write_n, &[], pt);
        self.write_n = self
            .write_n
            .checked_add(1)
            .ok_or(NoiseError::CounterExhausted)?;
        Ok(ct)
    }

    /// Decrypts one incoming frame payload.
    pub fn decrypt(&mut self, ct: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let pt = open(&self.read_key, self.read_n, &[], ct)?;
        self.read_n = self
            .read_n
            .checked_add(1)
            .ok_or(NoiseError::CounterExhausted)?;
        Ok(pt)
    }
}

/// The writing half of a transport.
pub struct TransportWriter {
    key: [u8; 32],
    n: u32,
}

impl TransportWriter {
    /// Encrypts one outgoing frame payload.
    pub fn encrypt(&mut self, pt: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let ct = seal(&self.key, self.n, &[], pt);
        self.n = self.n.checked_add(1).ok_or(NoiseError::CounterExhausted)?;
        Ok(ct)
    }
}

/// The reading half of a transport.
pub struct TransportReader {
    key: [u8; 32],
    n: u32,
}

impl TransportReader {
    /// Decrypts one incoming frame payload.
    pub fn decrypt(&mut self, ct: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let pt = open(&self.key, self.n, &[], ct)?;
        self.n = self.n.checked_add(1).ok_or(NoiseError::CounterExhausted)?;
        Ok(pt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    /// Reference §1.3: h0 is the raw 32-byte name; h1 = SHA256(h0 || 57410603).
    #[test]
    fn known_answer_h0_h1() {
        assert_eq!(
            hex::encode(NOISE_XX_NAME),
            "4e6f6973655f58585f32353531395f41455347434d5f53484132353600000000"
        );
        assert_eq!(
            hex::encode(SymmetricState::new().hash()),
            "ffff0c9267310966f1311170c04b38c79504285bf5edf763e5c946492a50a755"
        );
    }

    #[test]
    fn iv_layout_is_8_zero_bytes_then_32_bit_be_counter() {
        assert_eq!(iv(0x01020304), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    }

    fn handshake(seed: u64) -> (TransportState, TransportState, KeyPair) {
        let rng = SeededEntropy::new(seed);
        let server_static = KeyPair::generate(&rng);
        let noise_key = KeyPair::generate(&rng);
        let (mut init, ce) = Initiator::new(KeyPair::generate(&rng));
        let (resp, se, enc_s, enc_p) =
            Responder::respond(&ce, KeyPair::generate(&rng), &server_static, b"cert").unwrap();
        let opened = init.read_server_hello(&se, &enc_s, &enc_p).unwrap();
        assert_eq!(opened.server_static, server_static.public);
        assert_eq!(opened.cert_chain, b"cert");
        let (cs, cp, client_t) = init
            .write_client_finish(&opened, &noise_key, b"payload")
            .unwrap();
        let fin = resp.read_client_finish(&cs, &cp).unwrap();
        assert_eq!(fin.client_static, noise_key.public);
        assert_eq!(fin.payload, b"payload");
        (client_t, fin.transport, noise_key)
    }

    #[test]
    fn initiator_and_responder_agree_and_counters_are_separate() {
        let (mut c, mut s, _) = handshake(7);
        // Two client writes before any server write: separate counters keep both sides in step.
        let a = c.encrypt(b"one").unwrap();
        let b = c.encrypt(b"two").unwrap();
        let x = s.encrypt(b"srv").unwrap();
        assert_eq!(c.decrypt(&x).unwrap(), b"srv");
        assert_eq!(s.decrypt(&a).unwrap(), b"one");
        assert_eq!(s.decrypt(&b).unwrap(), b"two");
        // Replaying a frame fails (counter moved on).
        assert_eq!(s.decrypt(&b), Err(NoiseError::Decrypt));
    }

    #[test]
    fn tampered_server_hello_is_rejected() {
        let rng = SeededEntropy::new(9);
        let server_static = KeyPair::generate(&rng);
        let (mut init, ce) = Initiator::new(KeyPair::generate(&rng));
        let (_r, se, mut enc_s, enc_p) =
            Responder::respond(&ce, KeyPair::generate(&rng), &server_static, b"cert").unwrap();
        enc_s[0] ^= 1;
        assert_eq!(
            init.read_server_hello(&se, &enc_s, &enc_p).unwrap_err(),
            NoiseError::Decrypt
        );
        let (mut init, _) = Initiator::new(KeyPair::generate(&rng));
        assert_eq!(
            init.read_server_hello(&se[..31], &enc_s, &enc_p)
                .unwrap_err(),
            NoiseError::BadLength("server ephemeral")
        );
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    proptest! {
        #[test]
        fn transport_and_handshake_decrypt_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let rng = SeededEntropy::new(11);
            let mut t = SymmetricState::new().split(true);
            prop_assert!(t.decrypt(&data).is_err());
            let (mut init, _) = Initiator::new(KeyPair::generate(&rng));
            let _ = init.read_server_hello(&data, &data, &data);
            let half = data.len() / 2;
            let _ = Responder::respond(&data[..half], KeyPair::generate(&rng), &KeyPair::generate(&rng), &data);
        }
    }
}
