//! Known answers for the Signal core (issue 10 item 1) from libsignal-node, the library Baileys
//! uses: `tests/peers/gen-signal-vectors.mjs` recorded a whole conversation between two
//! libsignal endpoints with fixed keys (X3DH with a one-time prekey, `pkmsg`s, out-of-order
//! delivery, four ratchet turns). Our core replays each side and must produce the same
//! ciphertexts byte for byte and decrypt the other side's. The same file holds Bob's session as
//! Baileys stores it (`session-*.json`) mid-conversation: imported, it continues the
//! conversation (issue 10 item 8).

use std::collections::VecDeque;
use std::sync::Mutex;

use openclaw::channels::whatsapp::crypto::{Entropy, KeyPair};
use openclaw::channels::whatsapp::signal::libsignal_import::import_session_json;
use openclaw::channels::whatsapp::signal::padding::unpad;
use openclaw::channels::whatsapp::signal::{
    CiphertextType, LocalIdentity, PreKeyBundle, PreKeySignalMessage, PreKeys, SessionRecord,
};
use serde_json::Value;

/// Hands out the recorded private keys in order, one per key generation.
struct Scripted(Mutex<VecDeque<[u8; 32]>>);

impl Entropy for Scripted {
    fn fill(&self, buf: &mut [u8]) {
        assert_eq!(buf.len(), 32, "the ratchet only draws key pairs");
        let k = self
            .0
            .lock()
            .unwrap()
            .pop_front()
            .expect("a recorded key left");
        buf.copy_from_slice(&k);
    }
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("peers/signal-vectors.json")).unwrap()
}

fn h32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn local(v: &Value, who: &str) -> LocalIdentity {
    let kp = KeyPair::from_private(h32(&v[who]["identityPrivate"]));
    assert_eq!(kp.public, h32(&v[who]["identityPublic"]));
    LocalIdentity {
        key_pair: kp,
        registration_id: v[who]["registrationId"].as_u64().unwrap() as u32,
    }
}

fn keys_of(v: &Value, who: &str, from_step: u64) -> Scripted {
    let keys = v["generatedKeys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["owner"] == who && k["atStep"].as_u64().unwrap() >= from_step)
        .map(|k| {
            let kp = KeyPair::from_private(h32(&k["private"]));
            assert_eq!(kp.public, h32(&k["public"]), "same public key as libsignal");
            h32(&k["private"])
        })
        .collect();
    Scripted(Mutex::new(keys))
}

fn kind(step: &Value) -> CiphertextType {
    match step["type"].as_str().unwrap() {
        "pkmsg" => CiphertextType::PreKey,
        "msg" => CiphertextType::Whisper,
        t => panic!("type {t}"),
    }
}

/// Replays `who`'s side of the transcript from `from_step` on `record`; returns how many
/// encryptions and decryptions it checked.
fn replay(
    v: &Value,
    who: &str,
    record: &mut SessionRecord,
    from_step: usize,
    rng: &Scripted,
) -> (usize, usize) {
    let me = local(v, who);
    let signed = KeyPair::from_private(h32(&v["bob"]["signedPreKeyPrivate"]));
    let one_time = KeyPair::from_private(h32(&v["bob"]["preKeyPrivate"]));
    let (mut enc, mut dec) = (0, 0);
    for (i, step) in v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .skip(from_step)
    {
        if step["actor"] != who {
            continue;
        }
        let ct = hx(&step["ciphertext"]);
        let pt = hx(&step["plaintext"]);
        if step["op"] == "encrypt" {
            let (k, ours) = record.encrypt(&pt).unwrap();
            assert_eq!(k, kind(step), "step {i}: ciphertext type");
            assert_eq!(
                hex::encode(&ours),
                hex::encode(&ct),
                "step {i}: {who}'s ciphertext differs from libsignal's"
            );
            enc += 1;
        } else {
            let d = match kind(step) {
                CiphertextType::Whisper => record.decrypt_msg(&ct, rng).unwrap(),
                CiphertextType::PreKey => {
                    let m = PreKeySignalMessage::decode(&ct).unwrap();
                    assert_eq!(m.signed_pre_key_id, 7);
                    assert_eq!(m.pre_key_id, Some(31));
                    assert_eq!(m.registration_id, 1111);
                    record
                        .decrypt_pkmsg(
                            &me,
                            PreKeys {
                                signed: Some(&signed),
                                one_time: Some(&one_time),
                            },
                            &m,
                            rng,
                        )
                        .unwrap()
                }
            };
            assert_eq!(d.plaintext, pt, "step {i}: plaintext");
            let other = if who == "alice" { "bob" } else { "alice" };
            assert_eq!(d.remote_identity, h32(&v[other]["identityPublic"]));
            let text = String::from_utf8(unpad(&d.plaintext).unwrap().to_vec()).unwrap();
            assert!(text.starts_with(&format!("{other} message ")), "{text}");
            dec += 1;
        }
    }
    (enc, dec)
}

#[test]
fn bob_replays_libsignal_as_responder() {
    let v = vectors();
    let rng = keys_of(&v, "bob", 0);
    let mut bob = SessionRecord::new();
    let (enc, dec) = replay(&v, "bob", &mut bob, 0, &rng);
    assert_eq!((enc, dec), (4, 8));
    assert!(
        rng.0.lock().unwrap().is_empty(),
        "every ratchet key libsignal generated was used"
    );
}

#[test]
fn alice_replays_libsignal_as_initiator() {
    let v = vectors();
    let b = &v["bob"];
    let bundle = PreKeyBundle {
        registration_id: 2222,
        identity_key: h32(&b["identityPublic"]),
        signed_pre_key_id: 7,
        signed_pre_key: h32(&b["signedPreKeyPublic"]),
        signed_pre_key_signature: hx(&b["signedPreKeySignature"]),
        pre_key: Some((31, h32(&b["preKeyPublic"]))),
    };
    let rng = keys_of(&v, "alice", 0);
    let mut alice = SessionRecord::new();
    alice
        .start_outgoing(&local(&v, "alice"), &bundle, &rng)
        .unwrap();
    assert!(alice.is_pending_prekey());
    // Alice's first three messages are pkmsgs identical to libsignal's, including the X3DH header.
    let (enc, dec) = replay(&v, "alice", &mut alice, 0, &rng);
    assert_eq!((enc, dec), (8, 4));
    assert!(!alice.is_pending_prekey());
    assert!(rng.0.lock().unwrap().is_empty());
}

#[test]
fn issue10_item8_imported_libsignal_session_continues_the_conversation() {
    let v = vectors();
    let snap = &v["snapshots"][0];
    assert_eq!(snap["owner"], "bob");
    let at = snap["atStep"].as_u64().unwrap();
    let bob = import_session_json(&local(&v, "bob"), snap["json"].as_str().unwrap()).unwrap();
    assert!(bob.has_current_session());
    assert!(!bob.is_pending_prekey());
    assert_eq!(
        bob.remote_identity(),
        Some(h32(&v["alice"]["identityPublic"]))
    );
    assert_eq!(bob.remote_registration_id(), Some(1111));
    // The imported state survives our own blob format too.
    let mut bob = SessionRecord::from_bytes(&bob.to_bytes()).unwrap();
    let rng = keys_of(&v, "bob", at);
    let (enc, dec) = replay(&v, "bob", &mut bob, at as usize, &rng);
    assert!(
        enc >= 2 && dec >= 5,
        "both directions after the import: {enc} sent, {dec} received"
    );
    assert!(rng.0.lock().unwrap().is_empty());
}

/// Sender keys (issue 12 item 1) against Baileys' group cipher: we read its distribution
/// message and its `skmsg`s in any order; our first message under the same key is the same
/// ciphertext (only the randomised signature differs) and carries a valid signature.
#[test]
fn issue12_item1_sender_keys_match_baileys_group_cipher() {
    use openclaw::channels::whatsapp::crypto::{SeededEntropy, xeddsa_verify};
    use openclaw::channels::whatsapp::signal::sender_key::{
        SenderKeyDistribution, SenderKeyError, SenderKeyMessage, SenderKeyRecord,
    };
    let v: Value = serde_json::from_str(include_str!("peers/signal-sender-vectors.json")).unwrap();
    let d = SenderKeyDistribution::decode(&hx(&v["distribution"])).unwrap();
    assert_eq!(d.key_id, v["keyId"].as_u64().unwrap() as u32);
    assert_eq!(d.iteration, 0);
    assert_eq!(d.chain_key, h32(&v["chainKey"]));
    assert_eq!(d.signing_key, h32(&v["signingPublic"]));
    assert_eq!(
        d.encode(),
        hx(&v["distribution"]),
        "our SKDM encoding is byte-identical"
    );
    let mut rec = SenderKeyRecord::new();
    rec.process_distribution(&d);
    let msgs = v["messages"].as_array().unwrap();
    let iterations: Vec<u32> = msgs
        .iter()
        .map(|m| {
            SenderKeyMessage::decode(&hx(&m["ciphertext"]))
                .unwrap()
                .iteration
        })
        .collect();
    assert_eq!(
        iterations,
        [0, 2, 4, 6, 8, 10],
        "Baileys skips every other iteration"
    );
    for i in [0usize, 3, 1, 5, 4, 2] {
        let pt = rec.decrypt(&hx(&msgs[i]["ciphertext"])).unwrap();
        assert_eq!(pt, hx(&msgs[i]["plaintext"]), "message {i}");
    }
    assert_eq!(
        rec.decrypt(&hx(&msgs[2]["ciphertext"])),
        Err(SenderKeyError::Duplicate(4))
    );
    // Our sender with the same key: same ciphertext for iteration 0, valid signature.
    let own = SenderKeyRecord::from_own_parts(
        d.key_id,
        0,
        h32(&v["chainKey"]),
        KeyPair::from_private(h32(&v["signingPrivate"])),
    );
    let mut own = own;
    let rng = SeededEntropy::new(1);
    let ours = own.encrypt(&hx(&msgs[0]["plaintext"]), &rng).unwrap();
    let theirs = hx(&msgs[0]["ciphertext"]);
    assert_eq!(ours[..ours.len() - 64], theirs[..theirs.len() - 64]);
    assert!(xeddsa_verify(
        &d.signing_key,
        &ours[..ours.len() - 64],
        &ours[ours.len() - 64..]
    ));
    assert_eq!(own.distribution().unwrap().iteration, 1);
}

/// Baileys' `sender-key-*.json` files import (issue 10 item 8): a receiver's record, saved after
/// two of the six messages, reads the other four (including the skipped ones it kept); the
/// sender's own record imports as our own key and carries on from Baileys' chain position.
#[test]
fn issue10_item8_baileys_sender_key_files_import() {
    use openclaw::channels::whatsapp::signal::libsignal_import::import_sender_key_json;
    use openclaw::channels::whatsapp::signal::sender_key::{SenderKeyError, SenderKeyRecord};
    let v: Value = serde_json::from_str(include_str!("peers/signal-sender-vectors.json")).unwrap();
    let msgs = v["messages"].as_array().unwrap();
    let mut rec = import_sender_key_json(v["receiverFile"].as_str().unwrap()).unwrap();
    assert_eq!(rec.key_id(), Some(v["keyId"].as_u64().unwrap() as u32));
    assert!(
        rec.distribution().is_err(),
        "a peer's key is not ours to send with"
    );
    let done: Vec<usize> = v["receiverFileAfter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    for i in [5usize, 1, 2, 4] {
        assert!(!done.contains(&i));
        assert_eq!(
            rec.decrypt(&hx(&msgs[i]["ciphertext"])).unwrap(),
            hx(&msgs[i]["plaintext"]),
            "message {i}"
        );
    }
    assert!(matches!(
        rec.decrypt(&hx(&msgs[done[0]]["ciphertext"])),
        Err(SenderKeyError::Duplicate(_))
    ));
    let mut own = import_sender_key_json(v["senderFile"].as_str().unwrap()).unwrap();
    let d = own.distribution().unwrap();
    assert_eq!(d.iteration, 11, "after Baileys' iterations 0, 2, …, 10");
    let rng = openclaw::channels::whatsapp::crypto::SeededEntropy::new(9);
    let next = own.encrypt(b"after import", &rng).unwrap();
    // A receiver that got the original distribution reads what we send with the imported key.
    let mut reader = SenderKeyRecord::new();
    reader.process_distribution(
        &openclaw::channels::whatsapp::signal::sender_key::SenderKeyDistribution::decode(&hx(
            &v["distribution"],
        ))
        .unwrap(),
    );
    assert_eq!(reader.decrypt(&next).unwrap(), b"after import");
}
