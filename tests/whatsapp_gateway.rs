//! The real gateway binary runs the WhatsApp account (issue 5) against the mock server: it
//! connects with the saved creds, `channels status [--probe] --json` reports it, `/health` keeps
//! answering while the channel is down, a network outage heals within seconds, a login cannot
//! steal the session, a restart logs in again without a QR, and a cooldown survives a restart.

mod gateway_support;
#[path = "support/scan_login.rs"]
mod scan_login;

use std::process::Stdio;
use std::time::{Duration, Instant};

use gateway_support::{Gw, cmd, http, start, write_config};
use openclaw::channels::whatsapp::mock::{Fault, MockOptions, MockServer};
use serde_json::{Value, json};

fn mock_env(m: &MockServer) -> [(&'static str, String); 2] {
    [("OPENCLAW_WA_TEST_SERVER", m.url()), ("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()))]
}

/// `channels login --json`, scanning each QR with the mock phone. Returns (exit code, lines).
async fn login(m: &MockServer, dir: &std::path::Path) -> (i32, Vec<Value>) {
    let mut c = cmd();
    c.args(["channels", "login", "--channel", "whatsapp", "--json", "--state-dir"]).arg(dir).stderr(Stdio::null());
    for (k, v) in mock_env(m) {
        c.env(k, v);
    }
    let (status, lines) = scan_login::run_scanning(m, c).await;
    (status.code().unwrap_or(-1), lines)
}

fn channels_status(dir: &std::path::Path, extra: &[&str]) -> (i32, Value) {
    let mut c = cmd();
    c.args(["channels", "status", "--json", "--state-dir"]).arg(dir).args(extra);
    let out = c.output().expect("run status");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text} / {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn account(v: &Value) -> Value {
    v["channels"].as_array().and_then(|l| l.iter().find(|c| c["id"] == "whatsapp")).cloned().unwrap_or(Value::Null)
}

/// Polls `channels status` until the account is in `state`.
async fn wait_state(dir: &std::path::Path, state: &str, limit: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let d = dir.to_path_buf();
        let (_, v) = tokio::task::spawn_blocking(move || channels_status(&d, &[])).await.expect("join");
        if account(&v)["state"] == state {
            return account(&v);
        }
        assert!(t0.elapsed() < limit, "never reached {state}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_gateway(dir: &std::path::Path, m: &MockServer) -> Gw {
    let env = mock_env(m);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start(dir, &[], &envs).expect("gateway starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_runs_the_linked_account_reports_it_and_recovers() {
    let m = MockServer::start("127.0.0.1:0".parse().expect("addr"), MockOptions::default()).await.expect("mock");
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));

    // Not linked: the gateway says so and does not connect.
    let mut gw = start_gateway(dir.path(), &m);
    let s = wait_state(dir.path(), "notLinked", Duration::from_secs(10)).await;
    assert_eq!(s["connected"], false);
    assert_eq!(m.state()["connectionAttempts"], 0);

    // Linking while the gateway runs: the gateway picks the new creds up by itself.
    let (code, lines) = login(&m, dir.path()).await;
    assert_eq!(code, 0, "{lines:?}");
    let s = wait_state(dir.path(), "connected", Duration::from_secs(10)).await;
    assert_eq!(s["linked"], true);

    // --probe pings WhatsApp over the live session.
    let (code, v) = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || channels_status(&d, &["--probe"])
    })
    .await
    .expect("join");
    assert_eq!(code, 0);
    assert_eq!(account(&v)["probe"]["ok"], true, "{v}");
    assert!(account(&v)["probe"]["rttMs"].is_u64());
    assert_eq!(v["gateway"]["running"], true);

    // A second login cannot take the session the gateway runs (no 440 fight).
    let attempts = m.state()["connectionAttempts"].as_u64().unwrap_or(0);
    let (code, lines) = login(&m, dir.path()).await;
    assert_eq!(code, 1);
    assert!(lines.last().and_then(|l| l["reason"].as_str()).unwrap_or_default().contains("uses this account's session"), "{lines:?}");
    assert_eq!(m.state()["connectionAttempts"].as_u64().unwrap_or(0), attempts);

    // Network outage: /health and the control protocol keep working; back within 5 s.
    m.fault(Fault::Offline { enabled: true });
    wait_state(dir.path(), "waitingForNetwork", Duration::from_secs(10)).await;
    let h = http(gw.port, "GET", "/health", &[], b"");
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["channels"][0]["state"], "waitingForNetwork");
    tokio::time::sleep(Duration::from_secs(4)).await;
    m.fault(Fault::Offline { enabled: false });
    let t_up = Instant::now();
    wait_state(dir.path(), "connected", Duration::from_secs(10)).await;
    assert!(t_up.elapsed() <= Duration::from_secs(5), "back after {:?}", t_up.elapsed());

    // A restart logs in again with the saved creds: no QR, no new device.
    assert!(gw.sigterm().success());
    let devices = m.linked_devices().len();
    let mut gw = start_gateway(dir.path(), &m);
    wait_state(dir.path(), "connected", Duration::from_secs(10)).await;
    assert_eq!(m.linked_devices().len(), devices);
    assert_eq!(m.state()["lastClientPayload"], "login");
    assert!(!gw.stderr().contains("\"event\":\"qr\""));

    // 440: stopped, said plainly, nothing reconnects.
    m.fault(Fault::StreamError { code: 440 });
    let s = wait_state(dir.path(), "replaced", Duration::from_secs(10)).await;
    assert!(s["detail"].as_str().unwrap_or_default().contains("another instance uses this session"), "{s}");
    let attempts = m.state()["connectionAttempts"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(m.state()["connectionAttempts"].as_u64().unwrap_or(0), attempts);
    assert!(gw.sigterm().success());

    // Without a gateway, the status comes from disk.
    let (code, v) = channels_status(dir.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(v["gateway"]["running"], false);
    assert_eq!(account(&v)["linked"], true);
    assert_eq!(account(&v)["connected"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_cools_down_and_a_restart_does_not_retry() {
    let m = MockServer::start("127.0.0.1:0".parse().expect("addr"), MockOptions::default()).await.expect("mock");
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    let (code, _) = login(&m, dir.path()).await;
    assert_eq!(code, 0);

    m.fault(Fault::Failure { reason: 401 });
    let mut gw = start_gateway(dir.path(), &m);
    let s = wait_state(dir.path(), "coolingDown", Duration::from_secs(10)).await;
    let until = s["cooldownUntil"].as_u64().expect("cooldownUntil");
    let now = openclaw::agent::runs::unix_ms();
    assert!(until >= now + 19 * 60 * 1000, "20-minute cooldown: {s}");
    assert!(gw.sigterm().success());

    let attempts = m.state()["connectionAttempts"].as_u64().unwrap_or(0);
    let gw = start_gateway(dir.path(), &m);
    wait_state(dir.path(), "coolingDown", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(m.state()["connectionAttempts"].as_u64().unwrap_or(0), attempts, "no attempt after the restart");
    drop(gw);

    // A login during the cooldown is refused for now (exit 75) and says when to retry.
    let (code, lines) = login(&m, dir.path()).await;
    assert_eq!(code, 75, "{lines:?}");
    let last = lines.last().cloned().unwrap_or_default();
    assert_eq!(last["nextAllowedAt"].as_u64(), Some(until), "{last}");
    assert!(last["reason"].as_str().unwrap_or_default().contains("next attempt is allowed at"), "{last}");
    assert_eq!(m.state()["connectionAttempts"].as_u64().unwrap_or(0), attempts);
}
