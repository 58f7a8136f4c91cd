//! Our XEdDSA signatures and X25519 agreement against libsignal-node (issue 4), the library Baileys
//! and the phone side of the ecosystem use. Baileys' own signature checks are vacuous (reference
//! §1.4), so this calls libsignal's `verifySignature` directly. Without node or the installed peer
//! the test prints a loud `SKIPPED:` line.

#[path = "support/peer.rs"]
mod peer;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use openclaw::channels::whatsapp::crypto::{KeyPair, SeededEntropy, xeddsa_verify};
use serde_json::{Value, json};

#[test]
fn xeddsa_and_x25519_agree_with_libsignal() {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    if !peers.join("node_modules/libsignal/src/curve.js").exists()
        || Command::new("node").arg("--version").output().is_err()
    {
        peer::missing("xeddsa_and_x25519_agree_with_libsignal", "node or tests/peers/node_modules/libsignal missing");
        return;
    }
    let rng = SeededEntropy::new(42);
    let keys: Vec<KeyPair> = (0..8).map(|_| KeyPair::generate(&rng)).collect();
    let msgs: Vec<Vec<u8>> = (0..8)
        .map(|i| [&[5u8][..], &vec![i as u8; 10 + i * 7]].concat())
        .collect();
    let mut verify = Vec::new();
    let mut expect = Vec::new();
    for (k, m) in keys.iter().zip(&msgs) {
        let sig = k.sign(m, &rng);
        verify.push(
            json!({"pub": hex::encode(k.public), "msg": hex::encode(m), "sig": hex::encode(sig)}),
        );
        expect.push(true);
        let mut bad = sig;
        bad[10] ^= 0x40;
        verify.push(
            json!({"pub": hex::encode(k.public), "msg": hex::encode(m), "sig": hex::encode(bad)}),
        );
        expect.push(false);
    }
    let sign: Vec<Value> = keys
        .iter()
        .zip(&msgs)
        .map(|(k, m)| json!({"priv": hex::encode(k.private), "msg": hex::encode(m)}))
        .collect();
    let dh: Vec<Value> = keys
        .windows(2)
        .map(|w| json!({"priv": hex::encode(w[0].private), "pub": hex::encode(w[1].public)}))
        .collect();

    let mut child = Command::new("node")
        .arg(peers.join("xeddsa-check.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({"verify": verify, "sign": sign, "dh": dh}).to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();

    // libsignal accepts our signatures and rejects tampered ones.
    let got: Vec<bool> = v["verify"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    assert_eq!(got, expect);
    // We accept libsignal's signatures, and derive the same public keys.
    for ((k, m), s) in keys.iter().zip(&msgs).zip(v["sign"].as_array().unwrap()) {
        assert_eq!(s["pub"].as_str().unwrap(), hex::encode(k.public));
        let sig = hex::decode(s["sig"].as_str().unwrap()).unwrap();
        assert!(xeddsa_verify(&k.public, m, &sig));
        assert!(!xeddsa_verify(&k.public, b"other", &sig));
    }
    // Same shared secrets.
    for (w, s) in keys.windows(2).zip(v["dh"].as_array().unwrap()) {
        assert_eq!(s.as_str().unwrap(), hex::encode(w[0].dh(&w[1].public)));
    }
}
