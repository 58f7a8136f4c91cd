//! Micro-benchmark (issue 4): Noise frame encrypt+decrypt and WABinary decode throughput in MB/s,
//! with Baileys' own decoder on the same input, measured in the same run, as the baseline.
//!
//! `cargo bench --bench whatsapp_codec` runs it for real (about 1 s per case). Under `cargo test`
//! (no `--bench` argument) it runs a few iterations as a smoke test only.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use openclaw::channels::whatsapp::binary::{Node, decode_node, encode_node};
use openclaw::channels::whatsapp::crypto::{KeyPair, SeededEntropy};
use openclaw::channels::whatsapp::frame::{FrameDecoder, encode_frame};
use openclaw::channels::whatsapp::noise::{Initiator, Responder, TransportState};

fn transports() -> (TransportState, TransportState) {
    let rng = SeededEntropy::new(1);
    let server = KeyPair::generate(&rng);
    let (mut init, ce) = Initiator::new(KeyPair::generate(&rng));
    let (resp, se, s, p) =
        Responder::respond(&ce, KeyPair::generate(&rng), &server, b"cert").expect("respond");
    let opened = init.read_server_hello(&se, &s, &p).expect("server hello");
    let (cs, cp, client) = init
        .write_client_finish(&opened, &KeyPair::generate(&rng), b"payload")
        .expect("finish");
    let fin = resp.read_client_finish(&cs, &cp).expect("client finish");
    (client, fin.transport)
}

/// Runs `f` (which processes `bytes` bytes) repeatedly for `budget`; returns MB/s.
fn measure(bytes: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    (bytes as f64 * n as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn stanzas() -> Vec<(&'static str, Node)> {
    let msg = Node::new("message")
        .attr("from", "15550009999@s.whatsapp.net")
        .attr("id", "3EB0ABCDEF0123456789")
        .attr("type", "text")
        .attr("t", "1800000000")
        .attr("notify", "Alice")
        .children(vec![
            Node::new("enc")
                .attr("v", "2")
                .attr("type", "msg")
                .bytes(vec![0x33; 180]),
        ]);
    let keys = (0..812u32)
        .map(|i| {
            Node::new("key").children(vec![
                Node::new("id").bytes(i.to_be_bytes()[1..].to_vec()),
                Node::new("value").bytes(vec![(i % 251) as u8; 32]),
            ])
        })
        .collect();
    let upload = Node::new("iq")
        .attr("id", "1.2")
        .attr("xmlns", "encrypt")
        .attr("type", "set")
        .attr("to", "s.whatsapp.net")
        .children(vec![Node::new("list").children(keys)]);
    vec![
        ("message (small stanza)", msg),
        ("prekey upload (812 keys)", upload),
    ]
}

/// Baileys' decoder on the same bytes, or why it could not run.
fn baileys_mb_per_s(encoded: &[u8], ms: u64) -> Result<f64, String> {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    if !peers.join("node_modules/baileys/package.json").exists() {
        return Err(
            "tests/peers/node_modules/baileys missing (run scripts/setup-test-peers)".into(),
        );
    }
    let input = std::env::temp_dir().join(format!("openclaw-bench-{}.hex", std::process::id()));
    std::fs::write(&input, hex::encode(encoded)).map_err(|e| e.to_string())?;
    let out = Command::new("node")
        .arg(peers.join("bench-decode.mjs"))
        .arg(&input)
        .arg(ms.to_string())
        .output()
        .map_err(|e| format!("node: {e}"));
    let _ = std::fs::remove_file(&input);
    let out = out?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| format!("node failed: {}", String::from_utf8_lossy(&out.stderr)))?;
    v["mbPerSec"].as_f64().ok_or_else(|| "no mbPerSec".into())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full {
        Duration::from_millis(1000)
    } else {
        Duration::from_millis(5)
    };

    println!(
        "whatsapp_codec: {}",
        if full {
            "benchmark"
        } else {
            "smoke run (use cargo bench for numbers)"
        }
    );
    let (mut client, mut server) = transports();
    for size in [1024usize, 64 * 1024] {
        let payload = vec![0x5Au8; size];
        let mut dec = FrameDecoder::new();
        let mbps = measure(size, budget, || {
            let ct = client.encrypt(&payload).expect("encrypt");
            dec.push(&encode_frame(&ct).expect("frame"));
            let f = dec.next_frame().expect("frame back");
            let pt = server.decrypt(&f).expect("decrypt");
            assert_eq!(pt.len(), size);
        });
        println!(
            "frame encrypt+decrypt {:>6} B payload: {mbps:>9.1} MB/s",
            size
        );
    }
    for (name, node) in stanzas() {
        let mut enc = Vec::new();
        encode_node(&node, &mut enc);
        let ours = measure(enc.len(), budget, || {
            let n = decode_node(&enc).expect("decode");
            assert_eq!(n.tag, node.tag);
        });
        if !full {
            println!(
                "wabinary decode {name:<26} {:>6} B: ours {ours:>8.1} MB/s (baseline only under cargo bench)",
                enc.len()
            );
            continue;
        }
        match baileys_mb_per_s(&enc, 1000) {
            Ok(b) => println!(
                "wabinary decode {name:<26} {:>6} B: ours {ours:>8.1} MB/s, Baileys {b:>8.1} MB/s, ratio {:.2}x",
                enc.len(),
                ours / b
            ),
            Err(why) => println!(
                "wabinary decode {name:<26} {:>6} B: ours {ours:>8.1} MB/s (SKIPPED: Baileys baseline: {why})",
                enc.len()
            ),
        }
    }
}
