//! XEdDSA and X25519 known answers from libsignal-node (issue 4): `tests/peers/xeddsa-vectors.json`
//! was produced by `tests/peers/gen-xeddsa-vectors.mjs`. Runs without node; the live two-way check
//! is `tests/whatsapp_libsignal.rs`.

use openclaw::channels::whatsapp::crypto::{KeyPair, xeddsa_verify};
use serde_json::Value;

fn b(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn libsignal_keys_signatures_and_agreements_match_ours() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/xeddsa-vectors.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        let kp = KeyPair::from_private(b(&v["private"]).try_into().unwrap());
        assert_eq!(kp.public.to_vec(), b(&v["public"]), "public key derivation");
        let (msg, sig) = (b(&v["message"]), b(&v["signature"]));
        assert!(
            xeddsa_verify(&kp.public, &msg, &sig),
            "libsignal signature verifies"
        );
        let mut bad = sig.clone();
        bad[40] ^= 1;
        assert!(!xeddsa_verify(&kp.public, &msg, &bad));
        let peer: [u8; 32] = b(&v["peerPublic"]).try_into().unwrap();
        assert_eq!(kp.dh(&peer).to_vec(), b(&v["shared"]), "X25519 agreement");
    }
}
