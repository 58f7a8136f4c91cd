//! Bounded, seeded mutation fuzzing of every decoder that reads untrusted bytes, on stable Rust
//! inside `cargo test` (issue 14): the config parser and compiler, WABinary, the Noise frame
//! layer (frames, intro, ServerHello, certificate chain, transport ciphertext) and the gateway's
//! control-protocol frames.
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
use std::time::{Duration, Instant};

use openclaw::channels::whatsapp::binary::{marshal, unpack};
use openclaw::channels::whatsapp::cert::{TrustedRoot, verify_chain};
use openclaw::channels::whatsapp::crypto::KeyPair;
use openclaw::channels::whatsapp::frame::{FrameDecoder, routing_info_of, strip_intro};
use openclaw::channels::whatsapp::noise::{Initiator, SymmetricState};
use openclaw::channels::whatsapp::proto::HandshakeMessage;
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
