//! Verification of the server certificate chain sent in the Noise ServerHello (reference §1.4).
//!
//! All five checks are made (unlike Baileys, whose signature checks are vacuous): the intermediate
//! is signed by the trusted root, the leaf by the intermediate's key, `intermediate.issuerSerial ==
//! 0`, `leaf.issuerSerial == intermediate.serial`, and the leaf key equals the server's Noise static
//! key. Validity windows are checked against an injected clock when present.

use prost::Message;

use super::crypto::xeddsa_verify;
use super::proto::CertChain;
use super::proto::cert_chain::NoiseCertificate;
use super::proto::cert_chain::noise_certificate::Details;

/// WhatsApp's long-term root key ("WhatsAppLongTerm1"), an XEdDSA Curve25519 key. The same bytes
/// appear in Baileys (`WA_CERT_DETAILS.PUBLIC_KEY`) and whatsmeow (`WACertPubKey`).
pub const WHATSAPP_ROOT_KEY: [u8; 32] = [
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
    0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
];

/// The root key that server certificate chains must chain to.
///
/// A production build can only construct [`TrustedRoot::whatsapp`]. Another root (the mock's) can be
/// injected only in tests or in builds with the `wa-mock` cargo feature, and never from config.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TrustedRoot([u8; 32]);

impl std::fmt::Debug for TrustedRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedRoot({})", hex::encode(self.0))
    }
}

impl TrustedRoot {
    /// WhatsApp's real root.
    pub const fn whatsapp() -> Self {
        Self(WHATSAPP_ROOT_KEY)
    }

    /// A different root, for the mock server. Test-only seam.
    #[cfg(any(test, feature = "wa-mock"))]
    pub const fn for_testing(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The root public key.
    pub fn key(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Default for TrustedRoot {
    fn default() -> Self {
        Self::whatsapp()
    }
}

/// Why a certificate chain was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    /// The chain or a certificate is not decodable or lacks a field.
    #[error("certificate chain malformed: {0}")]
    Malformed(&'static str),
    /// The intermediate is not signed by the trusted root.
    #[error("intermediate certificate not signed by the trusted root")]
    IntermediateSignature,
    /// The leaf is not signed by the intermediate.
    #[error("leaf certificate not signed by the intermediate")]
    LeafSignature,
    /// Issuer serials do not link up.
    #[error("certificate issuer serial mismatch")]
    IssuerSerial,
    /// The leaf key is not the key the server proved in the handshake.
    #[error("leaf key does not match the server's static key")]
    LeafKeyMismatch,
    /// Outside the validity window.
    #[error("certificate not valid at this time")]
    Expired,
}

fn parts(
    c: Option<NoiseCertificate>,
    what: &'static str,
) -> Result<(Vec<u8>, Vec<u8>, Details), CertError> {
    let c = c.ok_or(CertError::Malformed(what))?;
    let details = c.details.ok_or(CertError::Malformed(what))?;
    let sig = c.signature.ok_or(CertError::Malformed(what))?;
    let d = Details::decode(details.as_slice()).map_err(|_| CertError::Malformed(what))?;
    Ok((details, sig, d))
}

fn key(d: &Details, what: &'static str) -> Result<[u8; 32], CertError> {
    d.key
        .as_deref()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or(CertError::Malformed(what))
}

fn in_window(d: &Details, now_unix: u64) -> bool {
    let nb = d.not_before.unwrap_or(0);
    let na = d.not_after.unwrap_or(0);
    (nb == 0 || now_unix >= nb) && (na == 0 || now_unix <= na)
}

/// Verifies the decrypted ServerHello payload against `root` and the server static key.
pub fn verify_chain(
    chain: &[u8],
    server_static: &[u8; 32],
    root: &TrustedRoot,
    now_unix: u64,
) -> Result<(), CertError> {
    let chain = CertChain::decode(chain).map_err(|_| CertError::Malformed("chain"))?;
    let (i_raw, i_sig, i) = parts(chain.intermediate, "intermediate")?;
    let (l_raw, l_sig, l) = parts(chain.leaf, "leaf")?;
    if i.issuer_serial.unwrap_or(0) != 0 {
        return Err(CertError::IssuerSerial);
    }
    if !xeddsa_verify(root.key(), &i_raw, &i_sig) {
        return Err(CertError::IntermediateSignature);
    }
    let i_key = key(&i, "intermediate key")?;
    if !xeddsa_verify(&i_key, &l_raw, &l_sig) {
        return Err(CertError::LeafSignature);
    }
    if l.issuer_serial.unwrap_or(0) != i.serial.unwrap_or(0) {
        return Err(CertError::IssuerSerial);
    }
    if key(&l, "leaf key")? != *server_static {
        return Err(CertError::LeafKeyMismatch);
    }
    if !in_window(&i, now_unix) || !in_window(&l, now_unix) {
        return Err(CertError::Expired);
    }
    Ok(())
}

/// Mints a chain root → intermediate → leaf(`server_static`), valid for a day around `now_unix`.
/// Used by the mock server and tests.
#[cfg(any(test, feature = "wa-mock"))]
pub fn mint_chain(
    root: &super::crypto::KeyPair,
    server_static: &[u8; 32],
    now_unix: u64,
    rng: &dyn super::crypto::Entropy,
) -> Vec<u8> {
    let inter = super::crypto::KeyPair::generate(rng);
    let window = (now_unix.saturating_sub(3600), now_unix + 86_400);
    let i_details = Details {
        serial: Some(2),
        issuer_serial: Some(0),
        key: Some(inter.public.to_vec()),
        not_before: Some(window.0),
        not_after: Some(window.1),
    }
    .encode_to_vec();
    let l_details = Details {
        serial: Some(7),
        issuer_serial: Some(2),
        key: Some(server_static.to_vec()),
        not_before: Some(window.0),
        not_after: Some(window.1),
    }
    .encode_to_vec();
    CertChain {
        intermediate: Some(NoiseCertificate {
            signature: Some(root.sign(&i_details, rng).to_vec()),
            details: Some(i_details),
        }),
        leaf: Some(NoiseCertificate {
            signature: Some(inter.sign(&l_details, rng).to_vec()),
            details: Some(l_details),
        }),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::{KeyPair, SeededEntropy};

    const NOW: u64 = 1_800_000_000;

    fn setup() -> (KeyPair, KeyPair, Vec<u8>, SeededEntropy) {
        let rng = SeededEntropy::new(3);
        let root = KeyPair::generate(&rng);
        let server = KeyPair::generate(&rng);
        let chain = mint_chain(&root, &server.public, NOW, &rng);
        (root, server, chain, rng)
    }

    #[test]
    fn good_chain_verifies() {
        let (root, server, chain, _) = setup();
        verify_chain(
            &chain,
            &server.public,
            &TrustedRoot::for_testing(root.public),
            NOW,
        )
        .unwrap();
    }

    #[test]
    fn production_root_rejects_a_mock_chain() {
        let (_, server, chain, _) = setup();
        assert_eq!(
            verify_chain(&chain, &server.public, &TrustedRoot::whatsapp(), NOW),
            Err(CertError::IntermediateSignature)
        );
    }

    #[test]
    fn forged_signatures_serials_keys_and_times_are_rejected() {
        let (root, server, chain, rng) = setup();
        let r = TrustedRoot::for_testing(root.public);
        let mut c = CertChain::decode(chain.as_slice()).unwrap();
        // Random leaf signature (what Baileys would accept).
        let mut forged = c.clone();
        forged.leaf.as_mut().unwrap().signature = Some(vec![7u8; 64]);
        assert_eq!(
            verify_chain(&forged.encode_to_vec(), &server.public, &r, NOW),
            Err(CertError::LeafSignature)
        );
        // Zero intermediate signature.
        let mut forged = c.clone();
        forged.intermediate.as_mut().unwrap().signature = Some(vec![0u8; 64]);
        assert_eq!(
            verify_chain(&forged.encode_to_vec(), &server.public, &r, NOW),
            Err(CertError::IntermediateSignature)
        );
        // Leaf for another server key.
        let other = KeyPair::generate(&rng);
        assert_eq!(
            verify_chain(&chain, &other.public, &r, NOW),
            Err(CertError::LeafKeyMismatch)
        );
        // Outside the window.
        assert_eq!(
            verify_chain(&chain, &server.public, &r, NOW + 10 * 86_400),
            Err(CertError::Expired)
        );
        // Leaf issuer serial that does not name the intermediate (re-signed so only the serial is wrong).
        let inter_key = KeyPair::generate(&rng);
        let i_details = Details {
            serial: Some(2),
            issuer_serial: Some(0),
            key: Some(inter_key.public.to_vec()),
            ..Default::default()
        }
        .encode_to_vec();
        let l_details = Details {
            serial: Some(7),
            issuer_serial: Some(99),
            key: Some(server.public.to_vec()),
            ..Default::default()
        }
        .encode_to_vec();
        c.intermediate = Some(NoiseCertificate {
            signature: Some(root.sign(&i_details, &rng).to_vec()),
            details: Some(i_details),
        });
        c.leaf = Some(NoiseCertificate {
            signature: Some(inter_key.sign(&l_details, &rng).to_vec()),
            details: Some(l_details),
        });
        assert_eq!(
            verify_chain(&c.encode_to_vec(), &server.public, &r, NOW),
            Err(CertError::IssuerSerial)
        );
        // Garbage.
        assert!(matches!(
            verify_chain(&[1, 2, 3], &server.public, &r, NOW),
            Err(CertError::Malformed(_))
        ));
    }
}
