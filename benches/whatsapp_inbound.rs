//! Benchmark (issue 10): the inbound message path below the socket — a `msg` stanza → decrypt with
//! the stored session → unpad/decode → one SQLite transaction (session, dedupe row;
//! `synchronous=FULL`, a real file) → inbound queue → the receipt and ack stanzas built — per
//! message latency (p50/p99/max), and the process RSS once the account store holds 1,000
//! sessions. No socket: the loopback write of the two small stanzas is not included.
//!
//! `cargo bench --bench whatsapp_inbound` runs 2,000 messages; under `cargo test` (no `--bench`
//! argument) a few, as a smoke test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openclaw::channels::whatsapp::account::store::{AccountStore, SessionRecord as Stored};
use openclaw::channels::whatsapp::binary::Node;
use openclaw::channels::whatsapp::creds::{Creds, Me, StoredKeyPair};
use openclaw::channels::whatsapp::crypto::{KeyPair, SeededEntropy, SharedEntropy};
use openclaw::channels::whatsapp::messages::{ConnInbound, content};
use openclaw::channels::whatsapp::signal::{LocalIdentity, PreKeyBundle, SessionRecord, padding};
use openclaw::channels::whatsapp::supervisor::open_messaging_with;
use openclaw::messaging::inbound_queue;
use prost::Message as _;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn node(id: &str, kind: &str, ct: Vec<u8>) -> Node {
    Node::new("message")
        .attr("from", "15550003333:7@s.whatsapp.net")
        .attr("id", id)
        .attr("type", "text")
        .attr("t", "100")
        .children(vec![Node::new("enc").attr("v", "2").attr("type", kind).bytes(ct)])
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { 2000 } else { 20 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _g = rt.enter();
    let rng: SharedEntropy = Arc::new(SeededEntropy::new(1));
    let mut creds = Creds::generate(rng.as_ref());
    creds.me = Some(Me { id: "15550004444:7@s.whatsapp.net".into(), lid: None, name: None });
    let dir = tempfile::tempdir().unwrap();
    let (sink, mut inbound) = inbound_queue(4096);
    let store = AccountStore::open_at(&dir.path().join("store.db")).unwrap();
    let (m, _h) = open_messaging_with(store, "default", sink).unwrap();
    let one = KeyPair::generate(rng.as_ref());
    let ot = StoredKeyPair::from(&one);
    rt.block_on(m.db.write(move |ops| ops.put_prekeys(&[(1, ot)], 1))).unwrap();
    let mut conn = ConnInbound::new(m.clone());

    let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 9 };
    let bundle = PreKeyBundle {
        registration_id: creds.registration_id,
        identity_key: creds.identity().public,
        signed_pre_key_id: creds.signed_pre_key.key_id,
        signed_pre_key: creds.signed_pre_key.key_pair.public.clone().try_into().unwrap(),
        signed_pre_key_signature: creds.signed_pre_key.signature.clone(),
        pre_key: Some((1, one.public)),
    };
    let mut theirs = SessionRecord::new();
    theirs.start_outgoing(&peer, &bundle, rng.as_ref()).unwrap();
    let text = "a typical short chat message, sixty-odd bytes of text to decrypt";
    let enc = |r: &mut SessionRecord| r.encrypt(&padding::pad(&content::text_message(text).encode_to_vec(), rng.as_ref())).unwrap();
    let (k, c) = enc(&mut theirs);
    rt.block_on(conn.on_message(&node("W0", k.as_str(), c), &creds, 100, &rng)).unwrap();
    rt.block_on(inbound.recv()).unwrap();
    // Pre-encrypt so only our side is timed.
    let stanzas: Vec<Node> = (0..n).map(|i| {
        let (k, c) = enc(&mut theirs);
        node(&format!("M{i}"), k.as_str(), c)
    }).collect();
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    for s in &stanzas {
        let t = Instant::now();
        let out = rt.block_on(conn.on_message(s, &creds, 100, &rng)).unwrap();
        lat.push(t.elapsed());
        assert_eq!(out.len(), 2, "receipt and ack");
        rt.block_on(inbound.recv()).unwrap();
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "inbound msg -> receipt (decrypt + fsync'd commit + queue), {n} messages: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );

    // 1,000 sessions in the store (copies of a real record), then messages keep flowing.
    let blob = rt.block_on(m.db.read(|ops| ops.session("15550003333:7@s.whatsapp.net"))).unwrap().unwrap();
    let before = rss_kib();
    rt.block_on(m.db.write(move |ops| {
        for i in 0..1000u32 {
            ops.put_session(&format!("1555{i:07}:1@s.whatsapp.net"), &Stored { version: blob.version, bytes: blob.bytes.clone() }, 1)?;
        }
        Ok(())
    }))
    .unwrap();
    for i in 0..n.min(200) {
        let (k, c) = enc(&mut theirs);
        let s = node(&format!("R{i}"), k.as_str(), c);
        rt.block_on(conn.on_message(&s, &creds, 100, &rng)).unwrap();
        rt.block_on(inbound.recv()).unwrap();
    }
    let sessions = rt.block_on(m.db.read(|ops| ops.session_count())).unwrap();
    println!(
        "RSS with {sessions} sessions stored: {} KiB (was {before} KiB before adding 1,000; the sessions live in SQLite, not in memory)",
        rss_kib()
    );
}
