//! Key material: X25519 key pairs, XEdDSA signatures (Signal-style signatures made with a
//! Curve25519 key) and the injectable randomness source.
//!
//! XEdDSA follows the published XEdDSA specification as Signal's libraries apply it: the Edwards
//! public key's sign bit travels in the top bit of the signature's last byte, and the nonce is
//! `SHA-512(0xFE || 0xFF*31 || a || msg || Z)` with 64 random bytes `Z`.

use std::fmt;
use std::sync::Arc;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use sha2::{Digest, Sha512};

/// A source of random bytes. Production uses the OS; tests inject a deterministic one.
pub trait Entropy: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// Randomness from the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator failing is not recoverable for a crypto client.
        if getrandom::fill(buf).is_err() {
            panic!("operating system random generator unavailable");
        }
    }
}

/// Deterministic randomness for tests: SHA-512 in counter mode over a seed. Only in test builds
/// and builds with the `wa-mock` feature, so production code cannot pick it by mistake.
#[cfg(any(test, feature = "wa-mock"))]
#[derive(Debug)]
pub struct SeededEntropy {
    seed: [u8; 32],
    counter: std::sync::atomic::AtomicU64,
}

#[cfg(any(test, feature = "wa-mock"))]
impl SeededEntropy {
    /// A generator whose output is a function of `seed` only.
    pub fn new(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_be_bytes());
        Self {
            seed: s,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

#[cfg(any(test, feature = "wa-mock"))]
impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(64) {
            let n = self
                .counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let block = Sha512::new()
                .chain_update(self.seed)
                .chain_update(n.to_be_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// Shared handle to a randomness source.
pub type SharedEntropy = Arc<dyn Entropy>;

/// The OS randomness as a shared handle.
pub fn os_entropy() -> SharedEntropy {
    Arc::new(OsEntropy)
}

/// Returns `N` random bytes from `rng`.
pub fn random_bytes<const N: usize>(rng: &dyn Entropy) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill(&mut b);
    b
}

/// An X25519 key pair (Curve25519, Montgomery form). The private half is stored clamped.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// Private scalar bytes (clamped).
    pub private: [u8; 32],
    /// Public key, the Montgomery u-coordinate.
    pub public: [u8; 32],
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Derives the pair from private key bytes (clamped here).
    pub fn from_private(private: [u8; 32]) -> Self {
        let private = clamp_integer(private);
        let public = MontgomeryPoint::mul_base_clamped(private).to_bytes();
        Self { private, public }
    }

    /// Generates a fresh pair.
    pub fn generate(rng: &dyn Entropy) -> Self {
        Self::from_private(random_bytes(rng))
    }

    /// X25519 Diffie-Hellman with a peer public key.
    pub fn dh(&self, peer_public: &[u8; 32]) -> [u8; 32] {
        MontgomeryPoint(*peer_public)
            .mul_clamped(self.private)
            .to_bytes()
    }

    /// XEdDSA signature over `msg`.
    pub fn sign(&self, msg: &[u8], rng: &dyn Entropy) -> [u8; 64] {
        xeddsa_sign(&self.private, msg, &random_bytes::<64>(rng))
    }
}

/// XEdDSA-signs `msg` with the Curve25519 private key `private`, using the 64 random bytes `z`.
pub fn xeddsa_sign(private: &[u8; 32], msg: &[u8], z: &[u8; 64]) -> [u8; 64] {
    let a_bytes = clamp_integer(*private);
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let big_a = EdwardsPoint::mul_base(&a).compress();
    let sign_bit = big_a.as_bytes()[31] & 0x80;
    let mut prefix = [0xFFu8; 32];
    prefix[0] = 0xFE;
    let r_hash: [u8; 64] = Sha512::new()
        .chain_update(prefix)
        .chain_update(a_bytes)
        .chain_update(msg)
        .chain_update(z)
        .finalize()
        .into();
    let r = Scalar::from_bytes_mod_order_wide(&r_hash);
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k_hash: [u8; 64] = Sha512::new()
        .chain_update(big_r.as_bytes())
        .chain_update(big_a.as_bytes())
        .chain_update(msg)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&k_hash);
    let s = k * a + r;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig[63] &= 0x7F;
    sig[63] |= sign_bit;
    sig
}

/// Verifies an XEdDSA signature made by the Curve25519 public key `public`. Never panics.
pub fn xeddsa_verify(public: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    let sign = (sig[63] & 0x80) >> 7;
    let Some(big_a) = MontgomeryPoint(*public).to_edwards(sign) else {
        return false;
    };
    let big_a_c = big_a.compress();
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    s_bytes[31] &= 0x7F;
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
        return false;
    };
    let k_hash: [u8; 64] = Sha512::new()
        .chain_update(&sig[..32])
        .chain_update(big_a_c.as_bytes())
        .chain_update(msg)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&k_hash);
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-big_a), &s).compress();
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    // Reject a non-canonical or invalid R encoding as well.
    if CompressedEdwardsY(r).decompress().is_none() {
        return false;
    }
    check.as_bytes() == &r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dh_agrees() {
        let rng = SeededEntropy::new(1);
        let a = KeyPair::generate(&rng);
        let b = KeyPair::generate(&rng);
        assert_eq!(a.dh(&b.public), b.dh(&a.public));
    }

    #[test]
    fn xeddsa_round_trip_and_rejects_forgeries() {
        let rng = SeededEntropy::new(2);
        for _ in 0..8 {
            let k = KeyPair::generate(&rng);
            let sig = k.sign(b"hello", &rng);
            assert!(xeddsa_verify(&k.public, b"hello", &sig));
            assert!(!xeddsa_verify(&k.public, b"hellO", &sig));
            let mut bad = sig;
            bad[5] ^= 1;
            assert!(!xeddsa_verify(&k.public, b"hello", &bad));
            let other = KeyPair::generate(&rng);
            assert!(!xeddsa_verify(&other.public, b"hello", &sig));
            assert!(!xeddsa_verify(&k.public, b"hello", &[0u8; 64]));
            assert!(!xeddsa_verify(&k.public, b"hello", &sig[..63]));
        }
    }
}
