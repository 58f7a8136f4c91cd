//! Live interop of the Signal core with libsignal-node (issue 10 item 1 and item 8): a Node
//! process (`tests/peers/gen-signal-peer.mjs`) is a real libsignal endpoint with random keys.
//! libsignal decrypts what we encrypt and we decrypt what it encrypts, across several ratchet
//! turns in both directions and out-of-order delivery, with either side starting the session;
//! and a session libsignal built is imported from its Baileys-format JSON and goes on.
//! Without node or the installed peer the tests print a loud `SKIPPED:` line.

#[path = "support/peer.rs"]
mod peer;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use openclaw::channels::whatsapp::crypto::{KeyPair, SeededEntropy};
use openclaw::channels::whatsapp::signal::libsignal_import::import_session_json;
use openclaw::channels::whatsapp::signal::padding::{pad, unpad};
use openclaw::channels::whatsapp::signal::wire::serialize_public;
use openclaw::channels::whatsapp::signal::{
    CiphertextType, LocalIdentity, PreKeyBundle, PreKeySignalMessage, PreKeys, SessionRecord,
};
use serde_json::{Value, json};

struct Libsignal {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Libsignal {
    fn spawn(test: &str) -> Option<Self> {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
        if !peers
            .join("node_modules/libsignal/src/session_cipher.js")
            .exists()
            || Command::new("node").arg("--version").output().is_err()
        {
            peer::missing(test, "node or tests/peers/node_modules/libsignal missing");
            return None;
        }
        let mut child = Command::new("node")
            .arg(peers.join("gen-signal-peer.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn call(&mut self, req: Value) -> Value {
        writeln!(self.stdin, "{req}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v.get("fatal").is_none(), "peer failed: {}", v["fatal"]);
        v
    }

    fn encrypt(&mut self, text: &str) -> (CiphertextType, Vec<u8>) {
        let v = self.call(json!({"op": "encrypt", "plaintext": hex::encode(text)}));
        (
            kind(&v["type"]),
            hex::decode(v["body"].as_str().unwrap()).unwrap(),
        )
    }

    /// libsignal decrypts; returns the plaintext or its error.
    fn decrypt(&mut self, kind: CiphertextType, body: &[u8]) -> Result<Vec<u8>, String> {
        let v =
            self.call(json!({"op": "decrypt", "type": kind.as_str(), "body": hex::encode(body)}));
        match v.get("error") {
            Some(e) => Err(e.to_string()),
            None => Ok(hex::decode(v["plaintext"].as_str().unwrap()).unwrap()),
        }
    }
}

impl Drop for Libsignal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kind(v: &Value) -> CiphertextType {
    match v.as_str().unwrap() {
        "pkmsg" => CiphertextType::PreKey,
        "msg" => CiphertextType::Whisper,
        t => panic!("type {t}"),
    }
}

fn h32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// Our endpoint: identity, prekeys and the record for the peer.
struct Us {
    local: LocalIdentity,
    signed: KeyPair,
    one_time: KeyPair,
    record: SessionRecord,
    rng: SeededEntropy,
}

impl Us {
    fn new(seed: u64) -> Self {
        let rng = SeededEntropy::new(seed);
        Self {
            local: LocalIdentity {
                key_pair: KeyPair::generate(&rng),
                registration_id: 4242,
            },
            signed: KeyPair::generate(&rng),
            one_time: KeyPair::generate(&rng),
            record: SessionRecord::new(),
            rng,
        }
    }

    fn send(&mut self, text: &str) -> (CiphertextType, Vec<u8>) {
        let padded = pad(text.as_bytes(), &self.rng);
        self.record.encrypt(&padded).unwrap()
    }

    fn receive(&mut self, (k, body): &(CiphertextType, Vec<u8>)) -> String {
        let d = match k {
            CiphertextType::Whisper => self.record.decrypt_msg(body, &self.rng).unwrap(),
            CiphertextType::PreKey => {
                let m = PreKeySignalMessage::decode(body).unwrap();
                assert_eq!(m.signed_pre_key_id, 9);
                let keys = PreKeys {
                    signed: Some(&self.signed),
                    one_time: (m.pre_key_id == Some(3)).then_some(&self.one_time),
                };
                self.record
                    .decrypt_pkmsg(&self.local, keys, &m, &self.rng)
                    .unwrap()
            }
        };
        String::from_utf8(d.plaintext).unwrap()
    }
}

/// Several turns with bursts delivered out of order in both directions.
fn converse(us: &mut Us, ls: &mut Libsignal, turns: usize) {
    for t in 0..turns {
        let ours: Vec<_> = (0..3)
            .map(|i| (format!("ours {t}.{i}"), us.send(&format!("ours {t}.{i}"))))
            .collect();
        for i in [2usize, 0, 1] {
            let (text, c) = &ours[i];
            assert_eq!(c.0, CiphertextType::Whisper, "turn {t}");
            let pt = ls
                .decrypt(c.0, &c.1)
                .unwrap_or_else(|e| panic!("libsignal refused turn {t} msg {i}: {e}"));
            assert_eq!(unpad(&pt).unwrap(), text.as_bytes());
        }
        let theirs: Vec<_> = (0..3)
            .map(|i| {
                (
                    format!("theirs {t}.{i}"),
                    ls.encrypt(&format!("theirs {t}.{i}")),
                )
            })
            .collect();
        for i in [1usize, 2, 0] {
            assert_eq!(us.receive(&theirs[i].1), theirs[i].0, "turn {t}");
        }
    }
}

#[test]
fn we_start_the_session_and_libsignal_answers() {
    let Some(mut ls) = Libsignal::spawn("we_start_the_session_and_libsignal_answers") else {
        return;
    };
    let mut us = Us::new(11);
    let b = ls.call(json!({"op": "bundle"}));
    let bundle = PreKeyBundle {
        registration_id: b["registrationId"].as_u64().unwrap() as u32,
        identity_key: h32(&b["identityKey"]),
        signed_pre_key_id: b["signedPreKeyId"].as_u64().unwrap() as u32,
        signed_pre_key: h32(&b["signedPreKey"]),
        signed_pre_key_signature: hex::decode(b["signature"].as_str().unwrap()).unwrap(),
        pre_key: Some((b["preKeyId"].as_u64().unwrap() as u32, h32(&b["preKey"]))),
    };
    us.record
        .start_outgoing(&us.local, &bundle, &us.rng)
        .unwrap();
    // Two pkmsgs before any answer, delivered in reverse order.
    let first = us.send("first");
    let second = us.send("second");
    assert_eq!(
        (first.0, second.0),
        (CiphertextType::PreKey, CiphertextType::PreKey)
    );
    assert_eq!(
        unpad(&ls.decrypt(second.0, &second.1).unwrap()).unwrap(),
        b"second"
    );
    assert_eq!(
        unpad(&ls.decrypt(first.0, &first.1).unwrap()).unwrap(),
        b"first"
    );
    let answer = ls.encrypt("answer");
    assert_eq!(answer.0, CiphertextType::Whisper);
    assert_eq!(us.receive(&answer), "answer");
    assert!(!us.record.is_pending_prekey());
    converse(&mut us, &mut ls, 4);
    // A replayed message is refused by us without harm, and the conversation continues.
    let again = ls.encrypt("again");
    assert_eq!(us.receive(&again), "again");
    assert!(us.record.decrypt_msg(&again.1, &us.rng).is_err());
    converse(&mut us, &mut ls, 1);
}

#[test]
fn libsignal_starts_the_session_from_our_bundle() {
    let Some(mut ls) = Libsignal::spawn("libsignal_starts_the_session_from_our_bundle") else {
        return;
    };
    let mut us = Us::new(12);
    let sig = us
        .local
        .key_pair
        .sign(&serialize_public(&us.signed.public), &us.rng);
    ls.call(json!({"op": "start", "bundle": {
        "registrationId": us.local.registration_id,
        "identityKey": hex::encode(us.local.key_pair.public),
        "signedPreKeyId": 9, "signedPreKey": hex::encode(us.signed.public), "signature": hex::encode(sig),
        "preKeyId": 3, "preKey": hex::encode(us.one_time.public),
    }}));
    let m1 = ls.encrypt("hello");
    let m2 = ls.encrypt("hello again");
    assert_eq!(m1.0, CiphertextType::PreKey);
    assert_eq!(us.receive(&m2), "hello again");
    assert_eq!(us.receive(&m1), "hello");
    converse(&mut us, &mut ls, 4);
}

#[test]
fn issue10_item8_session_built_by_libsignal_is_imported_and_continues() {
    let Some(mut ls) =
        Libsignal::spawn("issue10_item8_session_built_by_libsignal_is_imported_and_continues")
    else {
        return;
    };
    let h = ls.call(json!({"op": "handover", "rounds": 3}));
    let local = LocalIdentity {
        key_pair: KeyPair::from_private(h32(&h["identityPrivate"])),
        registration_id: h["registrationId"].as_u64().unwrap() as u32,
    };
    assert_eq!(local.key_pair.public, h32(&h["identityPublic"]));
    let record = import_session_json(&local, h["sessionJson"].as_str().unwrap()).unwrap();
    assert!(record.has_current_session());
    let mut us = Us::new(13);
    us.local = local;
    us.record = SessionRecord::from_bytes(&record.to_bytes()).unwrap();
    // The message libsignal sent before the handover decrypts after it.
    let in_flight = (
        kind(&h["inFlight"]["type"]),
        hex::decode(h["inFlight"]["body"].as_str().unwrap()).unwrap(),
    );
    assert_eq!(us.receive(&in_flight), "in flight");
    converse(&mut us, &mut ls, 3);
}

/// Sender keys live (issue 12 item 1): Baileys' group cipher reads our distribution message and
/// our `skmsg`s (delivered out of order), and we read its.
#[test]
fn issue12_item1_sender_keys_both_ways_with_baileys_group_cipher() {
    use openclaw::channels::whatsapp::signal::sender_key::{
        SenderKeyDistribution, SenderKeyRecord,
    };
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    if !peers
        .join("node_modules/baileys/lib/Signal/Group/index.js")
        .exists()
    {
        peer::missing(
            "issue12_item1_sender_keys_both_ways_with_baileys_group_cipher",
            "baileys missing",
        );
        return;
    }
    let Some(mut ls) =
        Libsignal::spawn("issue12_item1_sender_keys_both_ways_with_baileys_group_cipher")
    else {
        return;
    };
    let rng = SeededEntropy::new(21);
    let mut own = SenderKeyRecord::new_own(&rng);
    // A few messages before the distribution: the SKDM carries the current iteration.
    for _ in 0..3 {
        own.encrypt(b"before", &rng).unwrap();
    }
    let skdm = own.distribution().unwrap().encode();
    let texts: Vec<String> = (0..5).map(|i| format!("our group {i}")).collect();
    let msgs: Vec<Vec<u8>> = texts
        .iter()
        .map(|t| own.encrypt(t.as_bytes(), &rng).unwrap())
        .collect();
    let order = [4usize, 0, 2, 1, 3];
    let v = ls.call(json!({
        "op": "groupReceive", "skdm": hex::encode(&skdm),
        "messages": order.iter().map(|&i| hex::encode(&msgs[i])).collect::<Vec<_>>(),
    }));
    assert!(v.get("error").is_none(), "Baileys refused: {}", v["error"]);
    for (k, &i) in order.iter().enumerate() {
        assert_eq!(
            hex::decode(v["plaintexts"][k].as_str().unwrap()).unwrap(),
            texts[i].as_bytes()
        );
    }
    let v = ls.call(json!({"op": "groupSend", "count": 4}));
    let mut theirs = SenderKeyRecord::new();
    theirs.process_distribution(
        &SenderKeyDistribution::decode(&hex::decode(v["skdm"].as_str().unwrap()).unwrap()).unwrap(),
    );
    for i in [3usize, 1, 0, 2] {
        let pt = theirs
            .decrypt(&hex::decode(v["messages"][i].as_str().unwrap()).unwrap())
            .unwrap();
        assert_eq!(pt, format!("baileys group {i}").as_bytes());
    }
}
