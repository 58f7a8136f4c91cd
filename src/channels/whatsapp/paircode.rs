//! Pairing by phone-number code (reference §3.4): the companion shows an 8-character code, the
//! user types it on the phone, and both sides derive the ADV secret from an ephemeral exchange
//! wrapped with a PBKDF2 key of the code. The phone's half is here too, for the mock server.

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use super::binary::{Node, SERVER_JID};
use super::crypto::{Entropy, KeyPair, random_bytes};

/// The code alphabet (Crockford-like, without 0, I, O, U).
pub const ALPHABET: &[u8; 32] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";
/// PBKDF2-SHA256 rounds for the code key: 2^17.
pub const PBKDF2_ROUNDS: u32 = 2 << 16;
const BUNDLE_INFO: &[u8] = b"link_code_pairing_key_bundle_encryption_key";
const ADV_INFO: &[u8] = b"adv_secret";

/// Why a pairing-code step failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PairCodeError {
    /// A node or field is missing or has the wrong size.
    #[error("pairing code: malformed {0}")]
    Malformed(&'static str),
    /// The key bundle did not decrypt (wrong code or tampering).
    #[error("pairing code: key bundle does not decrypt")]
    Decrypt,
    /// The bundle names other identity keys than the ones exchanged.
    #[error("pairing code: identity mismatch")]
    IdentityMismatch,
}

/// A fresh 8-character code from 5 random bytes.
pub fn generate_code(rng: &dyn Entropy) -> String {
    to_alphabet(&random_bytes::<5>(rng))
}

/// 5 bits per character, most significant first.
pub fn to_alphabet(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(char::from(ALPHABET[((acc >> (bits - 5)) & 31) as usize]));
            bits -= 5;
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// `XXXX-XXXX` for display.
pub fn display(code: &str) -> String {
    if code.len() == 8 {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(
        state,
        &[*sha2::digest::generic_array::GenericArray::from_slice(
            block,
        )],
    );
}

/// One SHA-256 block holding a 32-byte message that follows a 64-byte (already compressed) prefix.
fn finish_32(mut state: [u32; 8], msg: &[u8; 32]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(msg);
    block[32] = 0x80;
    block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
    compress(&mut state, &block);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// PBKDF2-HMAC-SHA256 with a 32-byte output (one block), iterating on precomputed HMAC pad
/// states so that 2^17 rounds stay fast even in unoptimised test builds. Checked against the
/// `pbkdf2` crate in the tests.
pub fn pbkdf2_sha256_32(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    use hmac::Mac;
    let mut key = [0u8; 64];
    if password.len() > 64 {
        use sha2::Digest;
        key[..32].copy_from_slice(&Sha256::digest(password));
    } else {
        key[..password.len()].copy_from_slice(password);
    }
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for i in 0..64 {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    let (mut istate, mut ostate) = (SHA256_IV, SHA256_IV);
    compress(&mut istate, &ipad);
    compress(&mut ostate, &opad);
    let Ok(mut mac) = <hmac::Hmac<Sha256> as Mac>::new_from_slice(password) else {
        unreachable!("HMAC takes any key")
    };
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut t = u;
    for _ in 1..rounds {
        u = finish_32(ostate, &finish_32(istate, &u));
        for (a, b) in t.iter_mut().zip(u) {
            *a ^= b;
        }
    }
    t
}

fn ctr(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    let mut c = ctr::Ctr128BE::<aes::Aes256>::new(key.into(), iv.into());
    c.apply_keystream(data);
}

/// `salt(32) || iv(16) || AES-256-CTR(PBKDF2(code, salt), iv, public)`: 80 bytes.
pub fn wrap_public(code: &str, public: &[u8; 32], rng: &dyn Entropy) -> Vec<u8> {
    wrap_public_rounds(code, public, rng, PBKDF2_ROUNDS)
}

fn wrap_public_rounds(code: &str, public: &[u8; 32], rng: &dyn Entropy, rounds: u32) -> Vec<u8> {
    let salt: [u8; 32] = random_bytes(rng);
    let iv: [u8; 16] = random_bytes(rng);
    let mut ct = *public;
    ctr(
        &pbkdf2_sha256_32(code.as_bytes(), &salt, rounds),
        &iv,
        &mut ct,
    );
    [&salt[..], &iv, &ct].concat()
}

/// Inverse of [`wrap_public`]. A wrong code gives a different (wrong) key, not an error.
pub fn unwrap_public(code: &str, wrapped: &[u8]) -> Result<[u8; 32], PairCodeError> {
    unwrap_public_rounds(code, wrapped, PBKDF2_ROUNDS)
}

fn unwrap_public_rounds(
    code: &str,
    wrapped: &[u8],
    rounds: u32,
) -> Result<[u8; 32], PairCodeError> {
    if wrapped.len() != 80 {
        return Err(PairCodeError::Malformed("wrapped key"));
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&wrapped[32..48]);
    let mut pt = [0u8; 32];
    pt.copy_from_slice(&wrapped[48..]);
    ctr(
        &pbkdf2_sha256_32(code.as_bytes(), &wrapped[..32], rounds),
        &iv,
        &mut pt,
    );
    Ok(pt)
}

fn hkdf32(ikm: &[u8], salt: Option<&[u8]>, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, &mut out)
        .is_err()
    {
        unreachable!("32-byte HKDF output");
    }
    out
}

fn child_bytes<'a>(n: &'a Node, tag: &'static str) -> Result<&'a [u8], PairCodeError> {
    n.child(tag)
        .and_then(Node::content_bytes)
        .ok_or(PairCodeError::Malformed(tag))
}

fn key32(b: &[u8], what: &'static str) -> Result<[u8; 32], PairCodeError> {
    <[u8; 32]>::try_from(b).map_err(|_| PairCodeError::Malformed(what))
}

/// Companion: the `companion_hello` iq for `phone` (digits only).
pub fn companion_hello(
    phone: &str,
    code: &str,
    ephemeral: &KeyPair,
    noise_pub: &[u8],
    rng: &dyn Entropy,
) -> Node {
    Node::new("iq")
        .attr("to", SERVER_JID)
        .attr("type", "set")
        .attr("xmlns", "md")
        .children(vec![
            Node::new("link_code_companion_reg")
                .attr("jid", format!("{phone}@s.whatsapp.net"))
                .attr("stage", "companion_hello")
                .attr("should_show_push_notification", "true")
                .children(vec![
                    Node::new("link_code_pairing_wrapped_companion_ephemeral_pub")
                        .bytes(wrap_public(code, &ephemeral.public, rng)),
                    Node::new("companion_server_auth_key_pub").bytes(noise_pub.to_vec()),
                    Node::new("companion_platform_id").text("1"),
                    Node::new("companion_platform_display").text("Chrome (OpenClaw)"),
                    Node::new("link_code_pairing_nonce").text("0"),
                ]),
        ])
}

/// Companion: answers the phone's `link_code_companion_reg` notification. Returns the
/// `companion_finish` iq and the new ADV secret (which the following pair-success HMAC uses).
pub fn companion_finish(
    notification: &Node,
    phone: &str,
    code: &str,
    ephemeral: &KeyPair,
    identity: &KeyPair,
    rng: &dyn Entropy,
) -> Result<(Node, [u8; 32]), PairCodeError> {
    let reg = notification
        .child("link_code_companion_reg")
        .ok_or(PairCodeError::Malformed("link_code_companion_reg"))?;
    let reference = child_bytes(reg, "link_code_pairing_ref")?;
    let primary_identity = key32(
        child_bytes(reg, "primary_identity_pub")?,
        "primary_identity_pub",
    )?;
    let primary_eph = unwrap_public(
        code,
        child_bytes(reg, "link_code_pairing_wrapped_primary_ephemeral_pub")?,
    )?;
    let shared = ephemeral.dh(&primary_eph);
    let adv_random: [u8; 32] = random_bytes(rng);
    let salt: [u8; 32] = random_bytes(rng);
    let nonce: [u8; 12] = random_bytes(rng);
    let bundle_key = hkdf32(&shared, Some(&salt), BUNDLE_INFO);
    let plain = [&identity.public[..], &primary_identity, &adv_random].concat();
    let ct = Aes256Gcm::new((&bundle_key).into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &[],
            },
        )
        .map_err(|_| PairCodeError::Decrypt)?;
    let identity_shared = identity.dh(&primary_identity);
    let adv = hkdf32(
        &[&shared[..], &identity_shared, &adv_random].concat(),
        None,
        ADV_INFO,
    );
    let iq = Node::new("iq")
        .attr("to", SERVER_JID)
        .attr("type", "set")
        .attr("xmlns", "md")
        .children(vec![
            Node::new("link_code_companion_reg")
                .attr("jid", format!("{phone}@s.whatsapp.net"))
                .attr("stage", "companion_finish")
                .children(vec![
                    Node::new("link_code_pairing_wrapped_key_bundle")
                        .bytes([&salt[..], &nonce, &ct].concat()),
                    Node::new("companion_identity_public").bytes(identity.public.to_vec()),
                    Node::new("link_code_pairing_ref").bytes(reference.to_vec()),
                ]),
        ]);
    Ok((iq, adv))
}

/// The phone's state between its hello and the companion's finish.
#[derive(Debug, Clone)]
pub struct PrimaryState {
    ephemeral: KeyPair,
    companion_ephemeral: [u8; 32],
}

/// Phone: given the companion's hello and the code the user typed, builds the notification.
pub fn primary_hello(
    hello: &Node,
    typed_code: &str,
    reference: &[u8],
    phone_identity: &KeyPair,
    rng: &dyn Entropy,
) -> Result<(Node, PrimaryState), PairCodeError> {
    let reg = hello
        .child("link_code_companion_reg")
        .ok_or(PairCodeError::Malformed("link_code_companion_reg"))?;
    let wrapped = child_bytes(reg, "link_code_pairing_wrapped_companion_ephemeral_pub")?;
    let companion_ephemeral = unwrap_public(typed_code, wrapped)?;
    let ephemeral = KeyPair::generate(rng);
    let id: [u8; 4] = random_bytes(rng);
    let n = Node::new("notification")
        .attr("from", "s.whatsapp.net")
        .attr("type", "link_code_companion_reg")
        .attr("id", hex::encode(id))
        .children(vec![
            Node::new("link_code_companion_reg")
                .attr("stage", "primary_hello")
                .children(vec![
                    Node::new("link_code_pairing_ref").bytes(reference.to_vec()),
                    Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .bytes(wrap_public(typed_code, &ephemeral.public, rng)),
                    Node::new("primary_identity_pub").bytes(phone_identity.public.to_vec()),
                ]),
        ]);
    Ok((
        n,
        PrimaryState {
            ephemeral,
            companion_ephemeral,
        },
    ))
}

/// Phone: opens the companion's key bundle; returns the ADV secret and the companion identity.
pub fn primary_finish(
    finish: &Node,
    state: &PrimaryState,
    phone_identity: &KeyPair,
) -> Result<([u8; 32], [u8; 32]), PairCodeError> {
    let reg = finish
        .child("link_code_companion_reg")
        .ok_or(PairCodeError::Malformed("link_code_companion_reg"))?;
    let bundle = child_bytes(reg, "link_code_pairing_wrapped_key_bundle")?;
    let companion_identity = key32(
        child_bytes(reg, "companion_identity_public")?,
        "companion_identity_public",
    )?;
    if bundle.len() < 32 + 12 + 16 {
        return Err(PairCodeError::Malformed("key bundle"));
    }
    let shared = state.ephemeral.dh(&state.companion_ephemeral);
    let bundle_key = hkdf32(&shared, Some(&bundle[..32]), BUNDLE_INFO);
    let plain = Aes256Gcm::new((&bundle_key).into())
        .decrypt(
            Nonce::from_slice(&bundle[32..44]),
            Payload {
                msg: &bundle[44..],
                aad: &[],
            },
        )
        .map_err(|_| PairCodeError::Decrypt)?;
    if plain.len() != 96
        || plain[..32] != companion_identity
        || plain[32..64] != phone_identity.public
    {
        return Err(PairCodeError::IdentityMismatch);
    }
    let identity_shared = phone_identity.dh(&companion_identity);
    let adv = hkdf32(
        &[&shared[..], &identity_shared, &plain[64..]].concat(),
        None,
        ADV_INFO,
    );
    Ok((adv, companion_identity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    #[test]
    fn fast_pbkdf2_matches_the_pbkdf2_crate() {
        for (pw, salt, rounds) in [
            (&b"ABCD1234"[..], &[1u8; 32][..], 1u32),
            (b"ZZZZZZZZ", &[9; 32], 1000),
            (&[7u8; 80], b"s", 3),
        ] {
            let mut want = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt, rounds, &mut want);
            assert_eq!(pbkdf2_sha256_32(pw, salt, rounds), want);
        }
    }

    #[test]
    fn alphabet_encoding_matches_baileys_bytes_to_crockford() {
        // 5 bytes → 8 characters, 5 bits each.
        assert_eq!(to_alphabet(&[0, 0, 0, 0, 0]), "11111111");
        assert_eq!(to_alphabet(&[0xFF; 5]), "ZZZZZZZZ");
        assert_eq!(to_alphabet(&[0x08, 0x86, 0x42, 0x98, 0xE8]), "23456789");
        assert_eq!(display("ABCDEFGH"), "ABCD-EFGH");
    }

    #[test]
    fn both_sides_agree_on_the_adv_secret() {
        let rng = SeededEntropy::new(8);
        let (identity, phone, eph) = (
            KeyPair::generate(&rng),
            KeyPair::generate(&rng),
            KeyPair::generate(&rng),
        );
        let code = generate_code(&rng);
        assert_eq!(code.len(), 8);
        let hello = companion_hello("15550001234", &code, &eph, &[7; 32], &rng);
        let (notif, state) = primary_hello(&hello, &code, b"ref", &phone, &rng).unwrap();
        let (finish, adv_c) =
            companion_finish(&notif, "15550001234", &code, &eph, &identity, &rng).unwrap();
        let (adv_p, companion) = primary_finish(&finish, &state, &phone).unwrap();
        assert_eq!(adv_c, adv_p);
        assert_eq!(companion, identity.public);
    }

    #[test]
    fn a_wrong_code_unwraps_a_different_key() {
        let rng = SeededEntropy::new(9);
        let k = KeyPair::generate(&rng);
        let w = wrap_public_rounds("ABCDEFGH", &k.public, &rng, 100);
        assert_eq!(unwrap_public_rounds("ABCDEFGH", &w, 100).unwrap(), k.public);
        assert_ne!(unwrap_public_rounds("ABCDEFGJ", &w, 100).unwrap(), k.public);
        assert_eq!(
            unwrap_public_rounds("ABCDEFGH", &w[..79], 100),
            Err(PairCodeError::Malformed("wrapped key"))
        );
    }
}
