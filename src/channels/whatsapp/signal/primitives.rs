//! The symmetric primitives as Signal's v3 protocol uses them: HKDF-SHA256 with its info
//! labels, the chain-key step, message keys, AES-256-CBC with PKCS#7 and the truncated MAC.
//!
//! Labels and layouts are protocol facts from the Double Ratchet specification and the v3
//! message format: root step `HKDF(dh, salt=root, "WhisperRatchet")` → root ‖ chain; message
//! key seed `HMAC(chain, 0x01)`, next chain `HMAC(chain, 0x02)`; message keys
//! `HKDF(seed, salt=0³², "WhisperMessageKeys")` → cipher key 32 ‖ MAC key 32 ‖ IV 16.

use aes::Aes256;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::clamp_integer;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::channels::whatsapp::crypto::KeyPair;

type HmacSha256 = Hmac<Sha256>;

/// X25519 with our key pair, the same value as [`KeyPair::dh`] (a test checks it on random
/// inputs) but about twice as fast: a point on the curve goes through the Edwards form, where
/// the variable-base multiplication uses the vectorised backend; anything else (a point on the
/// twist) takes the Montgomery ladder.
pub fn x25519(ours: &KeyPair, their_public: &[u8; 32]) -> [u8; 32] {
    match MontgomeryPoint(*their_public).to_edwards(0) {
        Some(p) => p.mul_clamped(ours.private).to_montgomery().to_bytes(),
        None => ours.dh(their_public),
    }
}

/// HKDF-SHA256 into `out` (at most 255 × 32 bytes, always far fewer here).
pub fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    // Only fails for outputs longer than 8160 bytes; every caller asks for ≤ 96.
    if hk.expand(info, out).is_err() {
        unreachable!("HKDF output length is fixed and small");
    }
}

/// [`x25519`] of two of our key pairs with the same peer key (a DH-ratchet step), converting
/// the peer key once.
pub fn x25519_both(
    first: &KeyPair,
    second: &KeyPair,
    their_public: &[u8; 32],
) -> ([u8; 32], [u8; 32]) {
    match MontgomeryPoint(*their_public).to_edwards(0) {
        Some(p) => (
            p.mul_clamped(first.private).to_montgomery().to_bytes(),
            p.mul_clamped(second.private).to_montgomery().to_bytes(),
        ),
        None => (first.dh(their_public), second.dh(their_public)),
    }
}

/// The curve work of a DH-ratchet step at once: the new ratchet key pair from `new_private`
/// (as [`KeyPair::from_private`]) and X25519 of `current` and of the new pair with
/// `their_public` (as [`x25519`]). The same values (a test checks it), with the peer key
/// converted once and the three results brought back to Montgomery form with one shared field
/// inversion instead of three.
pub fn ratchet_dh(current: &KeyPair, new_private: [u8; 32], their_public: &[u8; 32]) -> (KeyPair, [u8; 32], [u8; 32]) {
    let private = clamp_integer(new_private);
    let public = EdwardsPoint::mul_base_clamped(private);
    match MontgomeryPoint(*their_public).to_edwards(0) {
        Some(p) => {
            let batch = [public, p.mul_clamped(current.private), p.mul_clamped(private)];
            let m = EdwardsPoint::to_montgomery_batch(&batch);
            let new = KeyPair { private, public: m[0].to_bytes() };
            (new, m[1].to_bytes(), m[2].to_bytes())
        }
        None => {
            let new = KeyPair { private, public: public.to_montgomery().to_bytes() };
            let (recv, send) = (current.dh(their_public), new.dh(their_public));
            (new, recv, send)
        }
    }
}

/// HKDF-SHA256 with a salt of 32 zero bytes (message keys use it on every message): the same
/// output as [`hkdf()`], with the salt's keyed HMAC state computed once.
pub fn hkdf_zero_salt(ikm: &[u8], info: &[u8], out: &mut [u8]) {
    static ZERO_SALT: std::sync::OnceLock<HmacSha256> = std::sync::OnceLock::new();
    let mut extract = ZERO_SALT.get_or_init(|| keyed(&[0u8; 32])).clone();
    extract.update(ikm);
    let prk = extract.finalize().into_bytes();
    let expand = keyed(&prk);
    let mut previous: Option<[u8; 32]> = None;
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut m = expand.clone();
        if let Some(p) = &previous {
            m.update(p);
        }
        m.update(info);
        m.update(&[i as u8 + 1]);
        let block: [u8; 32] = m.finalize().into_bytes().into();
        chunk.copy_from_slice(&block[..chunk.len()]);
        previous = Some(block);
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes any key length"),
    }
}

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The root-key step: `(new root key, new chain key)` from a DH output.
pub fn root_step(root_key: &[u8; 32], dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let mut out = [0u8; 64];
    hkdf(dh, root_key, b"WhisperRatchet", &mut out);
    split64(&out)
}

/// The chain step: `(message key seed, next chain key)`.
pub fn chain_step(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (
        hmac_sha256(chain_key, &[&[1]]),
        hmac_sha256(chain_key, &[&[2]]),
    )
}

/// Keys for one message.
#[derive(Clone)]
pub struct MessageKeys {
    /// AES-256 key.
    pub cipher_key: [u8; 32],
    /// HMAC-SHA256 key for the truncated MAC.
    pub mac_key: [u8; 32],
    /// CBC initialisation vector.
    pub iv: [u8; 16],
}

impl MessageKeys {
    /// Expands a message key seed.
    pub fn derive(seed: &[u8; 32]) -> Self {
        let mut out = [0u8; 80];
        hkdf_zero_salt(seed, b"WhisperMessageKeys", &mut out);
        let mut k = Self {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
        };
        k.cipher_key.copy_from_slice(&out[..32]);
        k.mac_key.copy_from_slice(&out[32..64]);
        k.iv.copy_from_slice(&out[64..80]);
        k
    }
}

/// The 8-byte MAC: `HMAC(mac_key, sender_identity33 ‖ receiver_identity33 ‖ body)[..8]`.
pub fn message_mac(
    mac_key: &[u8; 32],
    sender_identity: &[u8; 33],
    receiver_identity: &[u8; 33],
    body: &[u8],
) -> [u8; 8] {
    let full = hmac_sha256(mac_key, &[sender_identity, receiver_identity, body]);
    let mut m = [0u8; 8];
    m.copy_from_slice(&full[..8]);
    m
}

/// Splits 64 bytes into two keys.
pub fn split64(b: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut c = [0u8; 32];
    a.copy_from_slice(&b[..32]);
    c.copy_from_slice(&b[32..]);
    (a, c)
}

/// AES-256-CBC with PKCS#7 padding.
pub fn cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256::new(GenericArray::from_slice(key));
    let pad = 16 - plaintext.len() % 16;
    let mut out = Vec::with_capacity(plaintext.len() + pad);
    out.extend_from_slice(plaintext);
    out.resize(plaintext.len() + pad, pad as u8);
    let mut prev = *iv;
    for block in out.chunks_exact_mut(16) {
        for (b, p) in block.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
        prev.copy_from_slice(block);
    }
    out
}

/// AES-256-CBC decryption that checks the PKCS#7 padding; `None` when it is invalid.
pub fn cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Option<Vec<u8>> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return None;
    }
    let cipher = Aes256::new(GenericArray::from_slice(key));
    let mut out = ciphertext.to_vec();
    let mut prev = *iv;
    for block in out.chunks_exact_mut(16) {
        let mut saved = [0u8; 16];
        saved.copy_from_slice(block);
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
        for (b, p) in block.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        prev = saved;
    }
    let pad = *out.last()? as usize;
    if pad == 0 || pad > 16 || out[out.len() - pad..].iter().any(|&b| b as usize != pad) {
        return None;
    }
    out.truncate(out.len() - pad);
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        // Curve arithmetic is slow in debug builds; 64 cases cover both branches many times.
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn x25519_equals_the_montgomery_ladder(private in any::<[u8; 32]>(), peer in any::<[u8; 32]>(), u in any::<[u8; 32]>()) {
            let ours = KeyPair::from_private(private);
            let theirs = KeyPair::from_private(peer);
            // A real public key, and arbitrary bytes (half are on the twist, some not canonical).
            prop_assert_eq!(x25519(&ours, &theirs.public), ours.dh(&theirs.public));
            prop_assert_eq!(x25519(&ours, &u), ours.dh(&u));
            prop_assert_eq!(x25519_both(&ours, &theirs, &u), (ours.dh(&u), theirs.dh(&u)));
            for peer_key in [theirs.public, u] {
                let (new, recv, send) = ratchet_dh(&ours, peer, &peer_key);
                prop_assert_eq!(&new, &theirs);
                prop_assert_eq!((recv, send), (ours.dh(&peer_key), theirs.dh(&peer_key)));
            }
        }
    }

    #[test]
    fn x25519_small_order_points_agree() {
        let ours = KeyPair::from_private([7u8; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        for u in [[0u8; 32], one, minus_one] {
            assert_eq!(x25519(&ours, &u), ours.dh(&u));
            let (new, recv, send) = ratchet_dh(&ours, [9u8; 32], &u);
            assert_eq!(new, KeyPair::from_private([9u8; 32]));
            assert_eq!((recv, send), (ours.dh(&u), new.dh(&u)));
        }
    }

    #[test]
    fn cbc_matches_nist_sp800_38a_f2_5() {
        // NIST SP 800-38A F.2.5 (CBC-AES256.Encrypt), first block.
        let key: [u8; 32] =
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let pt = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let ct = cbc_encrypt(&key, &iv, &pt);
        assert_eq!(hex::encode(&ct[..16]), "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
        assert_eq!(ct.len(), 32, "a full padding block follows");
        assert_eq!(cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
    }

    #[test]
    fn cbc_rejects_bad_padding_and_lengths() {
        let k = [3u8; 32];
        let iv = [4u8; 16];
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0x5a; len];
            let mut ct = cbc_encrypt(&k, &iv, &pt);
            assert_eq!(ct.len() % 16, 0);
            assert_eq!(cbc_decrypt(&k, &iv, &ct).unwrap(), pt);
            assert!(cbc_decrypt(&k, &iv, &ct[..ct.len() - 1]).is_none());
            let n = ct.len();
            ct[n - 1] ^= 0xff;
            // Almost surely invalid padding now; never a panic either way.
            let _ = cbc_decrypt(&k, &iv, &ct);
        }
        assert!(cbc_decrypt(&k, &iv, &[]).is_none());
    }

    #[test]
    fn zero_salt_hkdf_equals_hkdf() {
        for len in [1usize, 32, 48, 80, 96] {
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            hkdf(&[7u8; 32], &[0u8; 32], b"WhisperMessageKeys", &mut a);
            hkdf_zero_salt(&[7u8; 32], b"WhisperMessageKeys", &mut b);
            assert_eq!(a, b, "{len}");
        }
    }

    #[test]
    fn chain_step_is_two_hmacs() {
        let ck = [9u8; 32];
        assert_eq!(
            chain_step(&ck),
            (hmac_sha256(&ck, &[&[1]]), hmac_sha256(&ck, &[&[2]]))
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        hkdf(&ikm, &salt, &info, &mut okm);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
