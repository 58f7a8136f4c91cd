//! Issue 10: resident memory of the real gateway binary with one connected WhatsApp account and
//! 1,000 Signal sessions (goal: < 20 MiB).
//!
//! The relay mock gets 1,000 contacts; the account is linked through `channels login` (the mock
//! phone scans the QR); its store gets, per contact, what one exchanged message leaves behind: a
//! session record (built by our Signal core from the contact's real prekey bundle shape, one
//! message encrypted on it), the contact's identity key, its device list and a processed message
//! id. Then the gateway runs the account, `message send` delivers one message over a stored
//! session (server ack), and `/proc/<pid>/status` gives `VmRSS` (and the peak, `VmHWM`).
//!
//! `scripts/measure-rss` runs it in release (the figure to report; the goal is asserted there).
//! In a debug build the path is exercised and the figure printed, without the assertion.

mod gateway_support;
#[path = "support/scan_login.rs"]
mod scan_login;

use std::process::Stdio;
use std::time::{Duration, Instant};

use gateway_support::{cmd, start, write_config};
use openclaw::channels::whatsapp::account::store::{AccountStore, SessionRecord as Stored};
use openclaw::channels::whatsapp::crypto::{KeyPair, SeededEntropy};
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::channels::whatsapp::signal::record::RECORD_FORMAT_VERSION;
use openclaw::channels::whatsapp::signal::wire::serialize_public;
use openclaw::channels::whatsapp::signal::{LocalIdentity, PreKeyBundle, SessionRecord};
use openclaw::store::StateLayout;
use serde_json::{Value, json};

const SESSIONS: usize = 1000;
const GOAL_MIB: f64 = 20.0;

fn contact(i: usize) -> String {
    format!("1555200{i:04}")
}

fn mock_env(m: &MockServer) -> [(&'static str, String); 2] {
    [("OPENCLAW_WA_TEST_SERVER", m.url()), ("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()))]
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing in /proc/{pid}/status"))
}

fn account_state(dir: &std::path::Path) -> Value {
    let out = cmd().args(["channels", "status", "--json", "--state-dir"]).arg(dir).output().expect("status");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["channels"].as_array().and_then(|l| l.iter().find(|c| c["id"] == "whatsapp")).cloned().unwrap_or(Value::Null)
}

/// What 1,000 one-message conversations leave in the account store.
fn seed_sessions(layout: &StateLayout) {
    let rng = SeededEntropy::new(10);
    let mut store = AccountStore::open(layout, "default").expect("store");
    let ours = LocalIdentity { key_pair: KeyPair::generate(&rng), registration_id: 7 };
    let now = 1_700_000_000_000u64;
    store
        .transaction(|ops| {
            for i in 0..SESSIONS {
                let them = KeyPair::generate(&rng);
                let signed = KeyPair::generate(&rng);
                let bundle = PreKeyBundle {
                    registration_id: 1000 + i as u32,
                    identity_key: them.public,
                    signed_pre_key_id: 1,
                    signed_pre_key: signed.public,
                    signed_pre_key_signature: them.sign(&serialize_public(&signed.public), &rng).to_vec(),
                    pre_key: Some((5, KeyPair::generate(&rng).public)),
                };
                let mut rec = SessionRecord::new();
                rec.start_outgoing(&ours, &bundle, &rng).expect("session");
                rec.encrypt(&[0x5a; 48]).expect("one message");
                let user = format!("{}@s.whatsapp.net", contact(i));
                let stored = Stored { version: u32::from(RECORD_FORMAT_VERSION), bytes: rec.to_bytes() };
                ops.put_session(&user, &stored, now)?;
                ops.trust_identity(&user, &them.public, now)?;
                ops.put_device_list(&user, &[0], now, u64::MAX / 2)?;
                ops.mark_processed(&user, &format!("3EB0SEED{i:05}"), now)?;
            }
            Ok(())
        })
        .expect("seed");
    assert_eq!(store.ops().session_count().expect("count"), SESSIONS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_gateway_rss_with_one_connected_account_and_1000_sessions() {
    let m = MockServer::start("127.0.0.1:0".parse().expect("addr"), MockOptions::default()).await.expect("mock");
    for i in 0..SESSIONS {
        m.create_account(&contact(i), None, Some(&format!("Contact {i}"))).expect("contact");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));

    // Link through the CLI, as a user would.
    let mut login = cmd();
    login.args(["channels", "login", "--channel", "whatsapp", "--json", "--state-dir"]).arg(dir.path()).stderr(Stdio::null());
    for (k, v) in mock_env(&m) {
        login.env(k, v);
    }
    let (status, lines) = scan_login::run_scanning(&m, login).await;
    assert!(status.success(), "login failed: {lines:?}");

    let layout = StateLayout::new(dir.path());
    let l2 = layout.clone();
    tokio::task::spawn_blocking(move || seed_sessions(&l2)).await.expect("seed");

    let env = mock_env(&m);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = start(dir.path(), &[], &envs).expect("gateway starts");
    let pid = gw.child.id();
    let t0 = Instant::now();
    loop {
        let d = dir.path().to_path_buf();
        let s = tokio::task::spawn_blocking(move || account_state(&d)).await.expect("join");
        if s["state"] == "connected" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never connected: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // One message over a stored session, acknowledged by the server.
    let out = cmd()
        .args(["message", "send", "--channel", "whatsapp", "-t", &format!("+{}", contact(SESSIONS / 2)), "-m", "hello from the RSS check", "--json", "--state-dir"])
        .arg(dir.path())
        .args(["--url", &format!("ws://127.0.0.1:{}", gw.port)])
        .output()
        .expect("message send");
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // Let the account settle (prekey count, keepalive), then read the figures.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = status_kib(pid, "VmRSS:") as f64 / 1024.0;
    let hwm = status_kib(pid, "VmHWM:") as f64 / 1024.0;
    let sessions = AccountStore::open(&layout, "default").expect("store").ops().session_count().expect("count");
    assert!(sessions >= SESSIONS as u64);
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "gateway RSS ({profile} build), 1 connected account, {sessions} sessions, 1 message sent: VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB (goal < {GOAL_MIB} MiB)"
    );
    if !cfg!(debug_assertions) {
        assert!(rss < GOAL_MIB, "VmRSS {rss:.1} MiB is over the {GOAL_MIB} MiB goal");
    }
    drop(gw);
}
