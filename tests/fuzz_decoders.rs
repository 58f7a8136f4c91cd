//! Bounded, seeded mutation fuzzing of every decoder that reads untrusted bytes, on stable Rust
//! inside `cargo test` (issue 14): the config parser and compiler, WABinary, the Noise frame
//! layer (frames, intro, ServerHello, certificate chain, transport ciphertext), the gateway's
//! control-protocol frames and Signal messages (`msg`, `pkmsg`, sender-key messages and
//! distributions, stored session records, and decryption with a fixed local identity).
//!
//! Each target mutates the committed corpus under `tests/fuzz/corpus/<target>/` and checks that
//! nothing panics (and a few invariants). Knobs, all optional:
//!
//! - `OPENCLAW_FUZZ_SECS`: time per target (default 10);
//! - `OPENCLAW_FUZZ_SEED`: the seed (default fixed per target: runs are reproducible);
//! - `OPENCLAW_FUZZ_REPLAY=<file>`: run only that input (for every target whose name the file
//!   path contains).
//!
//! A failing input is printed (hex and text) with the seed and iteration and written to
//! `$TMPDIR/openclaw-fuzz-<target>-<seed>-<iteration>.bin` for `OPENCLAW_FUZZ_REPLAY`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openclaw::channels::whatsapp::binary::{marshal, unpack};
use openclaw::channels::whatsapp::cert::{TrustedRoot, verify_chain};
use openclaw::channels::whatsapp::crypto::{Entropy, KeyPair};
use openclaw::channels::whatsapp::frame::{FrameDecoder, routing_info_of, strip_intro};
use openclaw::channels::whatsapp::noise::{Initiator, SymmetricState};
use openclaw::channels::whatsapp::proto::HandshakeMessage;
use openclaw::channels::whatsapp::signal::sender_key::{SenderKeyDistribution, SenderKeyMessage, SenderKeyRecord};
use openclaw::channels::whatsapp::signal::{
    CiphertextType, LocalIdentity, PreKeyBundle, PreKeySignalMessage, PreKeys, SessionRecord, SignalMessage, wire,
};
use openclaw::config::compile::compile_sources;
use openclaw::config::json5;
use openclaw::config::sources::{Inputs, Layer, Source};
use openclaw::gateway::protocol::{ConnectParams, ErrorShape, ReqFrame, event, res_err, res_ok};
use prost::Message as _;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Byte strings that steer parsers into their interesting corners.
const TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b"\"", b"'", b":", b",", b"\\u0000", b"\\", b"//", b"/*", b"*/", b"Infinity", b"-Infinity",
    b"NaN", b"1e309", b"-0", b"0x1F", b"${HOME}", b"${NOPE}", b"$${X}", b"null", b"true", b"\xff\xfe", b"\x00",
    b"gateway", b"channels", b"whatsapp", b"accounts", b"port", b"token", b"tokenFile", b"headers", b"baseUrl",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", b"{a:{a:{a:{a:{a:{a:{a:{a:", b"\xf8", b"\xfc", b"\xfd", b"\xfa", b"\xfb", b"\xff\xff\xff",
];

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                v.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = v[a..b].to_vec();
                let i = rng.below(len + 1);
                v.splice(i..i, chunk);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(128)).min(other.len());
                    let i = rng.below(len + 1);
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
            6 => v.truncate(rng.below(len + 1)),
            7 if len > 0 => {
                // Interesting integers (lengths, counts) in place.
                let i = rng.below(len);
                v[i] = [0u8, 1, 0x7f, 0x80, 0xfe, 0xff][rng.below(6)];
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v.truncate(1 << 20);
    v
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let out: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("read corpus file")).collect();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

/// Runs `check` on the corpus, then on mutations of it until the time bound.
fn fuzz(target: &str, check: fn(&[u8])) {
    let secs = std::env::var("OPENCLAW_FUZZ_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(10.0);
    let seed = std::env::var("OPENCLAW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| target.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)));
    let run = |input: &[u8], what: &str| {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| check(input))) {
            let file = std::env::temp_dir().join(format!("openclaw-fuzz-{target}-{what}.bin"));
            let _ = std::fs::write(&file, input);
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!(
                "fuzz target {target} failed on {what} (OPENCLAW_FUZZ_SEED={seed}): {}\ninput ({} bytes) saved to {}\nhex: {}\ntext: {:?}",
                msg.unwrap_or_default(),
                input.len(),
                file.display(),
                hex::encode(&input[..input.len().min(4096)]),
                String::from_utf8_lossy(&input[..input.len().min(4096)]),
            );
        }
    };
    if let Ok(replay) = std::env::var("OPENCLAW_FUZZ_REPLAY") {
        if replay.contains(target) {
            run(&std::fs::read(&replay).expect("replay file"), "replay");
        }
        return;
    }
    let corpus = corpus(target);
    for (i, c) in corpus.iter().enumerate() {
        run(c, &format!("corpus-{i}"));
    }
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while Instant::now() < deadline {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, &corpus);
        run(&input, &format!("{seed}-{n}"));
        n += 1;
    }
    eprintln!("fuzz {target}: {n} mutated inputs in {secs} s (seed {seed}), corpus {}", corpus.len());
    assert!(n > 0 || secs == 0.0, "no input ran");
}

fn check_config(input: &[u8]) {
    let text = String::from_utf8_lossy(input).into_owned();
    let parsed = json5::parse(&text);
    for e in &parsed.errors {
        assert!(e.pos.line > 0 && e.pos.col > 0, "parse error without a position: {e:?}");
    }
    // The same text as the system file, and as a state file under a small valid system file.
    let env: HashMap<String, String> = [("HOME".to_string(), "/home/x".to_string())].into();
    let src = |layer, name: &str, text: String| Source { layer, path: PathBuf::from(name), text, sha256: String::new() };
    for srcs in [
        vec![src(Layer::System, "system.json5", text.clone())],
        vec![src(Layer::System, "system.json5", "{ gateway: { port: 1 } }".into()), src(Layer::State, "state.json", text)],
    ] {
        let c = compile_sources(Inputs { system: None, state_dir: None }, srcs, &env, false);
        for d in &c.diagnostics {
            assert!(d.file.is_some() && d.line.unwrap_or(0) > 0, "diagnostic without a position: {d:?}");
        }
        if let Some(s) = c.snapshot() {
            assert!(s.typed().is_ok(), "a snapshot's config always decodes");
            let back: openclaw::config::Snapshot = serde_json::from_str(&s.to_json()).expect("snapshot JSON round trip");
            assert_eq!(back.config, s.config);
        }
    }
}

fn check_wabinary(input: &[u8]) {
    if let Ok(node) = unpack(input) {
        // What we decoded we can encode, and that encoding is a fixed point (text and bytes
        // content encode alike, so compare bytes, not nodes).
        let bytes = marshal(&node);
        let again = unpack(&bytes).expect("re-encoded node decodes");
        assert_eq!(marshal(&again), bytes, "encode(decode(encode(n))) != encode(n)");
    }
    let _ = openclaw::channels::whatsapp::binary::decode_node(input);
}

fn check_noise(input: &[u8]) {
    let Some((&mode, rest)) = input.split_first() else { return };
    match mode % 5 {
        0 => {
            let mut d = FrameDecoder::new();
            let _ = routing_info_of(rest);
            if let Ok(Some(n)) = strip_intro(rest) {
                assert!(n <= rest.len(), "intro longer than the input");
            }
            for chunk in rest.chunks(7) {
                d.push(chunk);
                while let Some(f) = d.next_frame() {
                    assert!(f.len() < 1 << 24);
                }
            }
            assert!(d.pending() <= rest.len());
        }
        1 => {
            if rest.len() < 4 {
                return;
            }
            let le = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let ls = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let body = &rest[4..];
            let (e, body) = body.split_at(le.min(body.len()));
            let (s, p) = body.split_at(ls.min(body.len()));
            let (mut init, _) = Initiator::new(KeyPair::from_private([7; 32]));
            let _ = init.read_server_hello(e, s, p);
        }
        2 => {
            let _ = verify_chain(rest, &[9; 32], &TrustedRoot::whatsapp(), 1_800_000_000);
        }
        3 => {
            let mut sym = SymmetricState::new();
            sym.mix_key(b"fuzz key material");
            let _ = sym.decrypt_and_hash(rest);
        }
        _ => {
            if let Ok(m) = HandshakeMessage::decode(rest) {
                let _ = m.encode_to_vec();
            }
        }
    }
}

fn check_control(input: &[u8]) {
    if let Ok(f) = serde_json::from_slice::<ReqFrame>(input) {
        let _ = serde_json::from_value::<ConnectParams>(f.params.clone());
        // Whatever id a client sends, our replies are valid JSON that echo it.
        let ok: serde_json::Value = serde_json::from_str(&res_ok(&f.id, f.params.clone())).expect("res_ok is JSON");
        assert_eq!(ok["id"], f.id);
        let err = ErrorShape::new("INVALID_REQUEST", f.method.clone(), Some(f.params.clone()));
        let _: serde_json::Value = serde_json::from_str(&res_err(&f.id, &err)).expect("res_err is JSON");
        let _: serde_json::Value = serde_json::from_str(&event(&f.method, f.params)).expect("event is JSON");
    }
    let _ = serde_json::from_slice::<ConnectParams>(input);
}

/// Deterministic randomness for the Signal fixture (the library's seeded source is test-only).
struct Counter(AtomicU64);

impl Entropy for Counter {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            let mut r = Rng(self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) | 1);
            *b = r.next() as u8;
        }
    }
}

/// Fixed keys and states the `signal` target decrypts against, and the valid messages its
/// corpus holds (each prefixed with the mode byte `check_signal` dispatches on).
struct SignalWorld {
    /// Our identity (the receiver, "bob").
    local: LocalIdentity,
    signed: KeyPair,
    one_time: KeyPair,
    /// Bob's record after accepting alice's first `pkmsg`.
    established: SessionRecord,
    /// Bob's record of alice's group sender key, after her distribution.
    group: SenderKeyRecord,
    corpus: Vec<(&'static str, Vec<u8>)>,
}

const SIGNED_ID: u32 = 7;
const ONE_TIME_ID: u32 = 101;

fn signal_world() -> &'static SignalWorld {
    static W: OnceLock<SignalWorld> = OnceLock::new();
    W.get_or_init(|| {
        let rng = Counter(AtomicU64::new(14));
        let alice = LocalIdentity { key_pair: KeyPair::from_private([1; 32]), registration_id: 1111 };
        let local = LocalIdentity { key_pair: KeyPair::from_private([2; 32]), registration_id: 2222 };
        let signed = KeyPair::from_private([3; 32]);
        let one_time = KeyPair::from_private([4; 32]);
        let bundle = PreKeyBundle {
            registration_id: local.registration_id,
            identity_key: local.key_pair.public,
            signed_pre_key_id: SIGNED_ID,
            signed_pre_key: signed.public,
            signed_pre_key_signature: local.key_pair.sign(&wire::serialize_public(&signed.public), &rng).to_vec(),
            pre_key: Some((ONE_TIME_ID, one_time.public)),
        };
        let mut a = SessionRecord::new();
        a.start_outgoing(&alice, &bundle, &rng).expect("start session");
        let (kind, pkmsg) = a.encrypt(b"hello bob").expect("encrypt pkmsg");
        assert_eq!(kind, CiphertextType::PreKey);
        let mut established = SessionRecord::new();
        let m = PreKeySignalMessage::decode(&pkmsg).expect("decode pkmsg");
        let keys = PreKeys { signed: Some(&signed), one_time: Some(&one_time) };
        established.decrypt_pkmsg(&local, keys, &m, &rng).expect("accept pkmsg");
        let mut b = established.clone();
        let (_, reply) = b.encrypt(b"hello alice").expect("encrypt reply");
        a.decrypt_msg(&reply, &rng).expect("alice decrypts the reply");
        let (kind, msg) = a.encrypt(b"second message").expect("encrypt msg");
        assert_eq!(kind, CiphertextType::Whisper);

        let mut own = SenderKeyRecord::new_own(&rng);
        let dist = own.distribution().expect("distribution");
        let skdm = dist.encode();
        let skmsg = own.encrypt(b"hello group", &rng).expect("encrypt skmsg");
        let mut group = SenderKeyRecord::new();
        group.process_distribution(&dist);

        let tagged = |mode: u8, bytes: &[u8]| [&[mode][..], bytes].concat();
        let corpus = vec![
            ("0-msg.bin", tagged(0, &msg)),
            ("1-pkmsg.bin", tagged(1, &pkmsg)),
            ("2-skmsg.bin", tagged(2, &skmsg)),
            ("3-skdm.bin", tagged(3, &skdm)),
            ("4-session-record.bin", tagged(4, &established.to_bytes())),
            ("5-sender-key-record.bin", tagged(5, &group.to_bytes())),
        ];
        SignalWorld { local, signed, one_time, established, group, corpus }
    })
}

fn check_signal(input: &[u8]) {
    let Some((&mode, rest)) = input.split_first() else { return };
    let w = signal_world();
    let rng = Counter(AtomicU64::new(u64::from(mode)));
    match mode % 6 {
        0 => {
            if let Ok(m) = SignalMessage::decode(rest) {
                assert_eq!(SignalMessage::decode(m.as_bytes()).as_ref().map(SignalMessage::as_bytes), Ok(m.as_bytes()));
            }
            for start in [SessionRecord::new(), w.established.clone()] {
                let mut rec = start.clone();
                if rec.decrypt_msg(rest, &rng).is_err() {
                    assert!(rec == start, "a failed msg decrypt changed the record");
                }
            }
        }
        1 => {
            let Ok(m) = PreKeySignalMessage::decode(rest) else { return };
            let keys = PreKeys {
                signed: (m.signed_pre_key_id == SIGNED_ID).then_some(&w.signed),
                one_time: (m.pre_key_id == Some(ONE_TIME_ID)).then_some(&w.one_time),
            };
            for start in [SessionRecord::new(), w.established.clone()] {
                let mut rec = start.clone();
                if rec.decrypt_pkmsg(&w.local, keys, &m, &rng).is_err() {
                    assert!(rec == start, "a failed pkmsg decrypt changed the record");
                }
            }
        }
        2 => {
            let _ = SenderKeyMessage::decode(rest);
            let mut rec = w.group.clone();
            if rec.decrypt(rest).is_err() {
                assert!(rec == w.group, "a failed skmsg decrypt changed the record");
            }
        }
        3 => {
            if let Ok(d) = SenderKeyDistribution::decode(rest) {
                let again = SenderKeyDistribution::decode(&d.encode()).expect("re-encoded distribution decodes");
                assert_eq!(again.encode(), d.encode());
                let mut rec = w.group.clone();
                rec.process_distribution(&d);
                let _ = rec.decrypt(&w.corpus[2].1[1..]);
            }
        }
        4 => {
            if let Ok(rec) = SessionRecord::from_bytes(rest) {
                let bytes = rec.to_bytes();
                let again = SessionRecord::from_bytes(&bytes).expect("re-encoded record decodes");
                assert_eq!(again.to_bytes(), bytes, "record encoding is not a fixed point");
                let mut r = rec.clone();
                let _ = r.decrypt_msg(&w.corpus[0].1[1..], &rng);
                let _ = r.encrypt(b"x");
            }
        }
        _ => {
            if let Ok(rec) = SenderKeyRecord::from_bytes(rest) {
                let bytes = rec.to_bytes();
                let again = SenderKeyRecord::from_bytes(&bytes).expect("re-encoded sender key record decodes");
                assert_eq!(again.to_bytes(), bytes, "sender key record encoding is not a fixed point");
                let mut r = rec.clone();
                let _ = r.decrypt(&w.corpus[2].1[1..]);
                let _ = r.encrypt(b"x", &rng);
            }
        }
    }
}

#[test]
fn fuzz_config() {
    fuzz("config", check_config);
}

#[test]
fn fuzz_wabinary() {
    fuzz("wabinary", check_wabinary);
}

#[test]
fn fuzz_noise() {
    fuzz("noise", check_noise);
}

#[test]
fn fuzz_control() {
    fuzz("control", check_control);
}

#[test]
fn fuzz_signal() {
    fuzz("signal", check_signal);
}

/// The committed `signal` corpus is the fixture's valid messages (they decrypt against it);
/// `OPENCLAW_FUZZ_WRITE_SIGNAL_CORPUS=1` rewrites it after a change to the Signal core.
#[test]
fn signal_corpus_matches_the_fixture() {
    let w = signal_world();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/signal");
    if std::env::var_os("OPENCLAW_FUZZ_WRITE_SIGNAL_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (name, bytes) in &w.corpus {
            std::fs::write(dir.join(name), bytes).expect("write corpus file");
        }
    }
    for (name, bytes) in &w.corpus {
        let committed = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("corpus file {name}: {e}"));
        assert_eq!(&committed, bytes, "tests/fuzz/corpus/signal/{name} differs from the fixture");
    }
    // The valid messages really decrypt (the fuzzer starts from inputs that reach the ratchet).
    let rng = Counter(AtomicU64::new(0));
    let mut rec = w.established.clone();
    assert_eq!(rec.decrypt_msg(&w.corpus[0].1[1..], &rng).expect("msg decrypts").plaintext, b"second message");
    let m = PreKeySignalMessage::decode(&w.corpus[1].1[1..]).expect("pkmsg decodes");
    let keys = PreKeys { signed: Some(&w.signed), one_time: Some(&w.one_time) };
    let got = SessionRecord::new().decrypt_pkmsg(&w.local, keys, &m, &rng).expect("pkmsg decrypts");
    assert_eq!(got.plaintext, b"hello bob");
    assert_eq!(w.group.clone().decrypt(&w.corpus[2].1[1..]).expect("skmsg decrypts"), b"hello group");
}
