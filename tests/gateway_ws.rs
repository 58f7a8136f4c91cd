//! The WebSocket control protocol against the real binary: handshake failures as upstream,
//! methods, and device pairing end to end through the `openclaw devices` CLI.

mod gateway_support;

use std::time::Duration;

use gateway_support::{cli, start, write_config, Gw};
use openclaw::gateway::client::{ClientError, Conn, ConnectOptions, Incoming};
use openclaw::gateway::identity::DeviceKey;
use serde_json::{json, Value};

const TOKEN: &str = "ws-token-0123456789";
const T: Duration = Duration::from_secs(10);

fn gateway(extra: Value) -> (tempfile::TempDir, Gw) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = json!({"gateway": {"auth": {"token": TOKEN}}});
    if let (Some(c), Some(e)) = (cfg["gateway"].as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    write_config(dir.path(), &cfg);
    let gw = start(dir.path(), &[], &[]).expect("start");
    (dir, gw)
}

fn token_opts() -> ConnectOptions {
    ConnectOptions { token: Some(TOKEN.into()), ..Default::default() }
}

fn device_opts(key: &DeviceKey, scopes: &[&str]) -> ConnectOptions {
    ConnectOptions {
        token: Some(TOKEN.into()),
        device: Some(key.clone()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        client_id: "openclaw-tui".into(),
        ..Default::default()
    }
}

async fn rejected(url: &str, o: &ConnectOptions) -> (String, Value, Option<(u16, String)>) {
    let mut c = Conn::open(url, T).await.unwrap();
    match c.connect(o).await {
        Err(ClientError::Rejected { code, error, close, .. }) => (code, error, close),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn handshake_failures_match_upstream() {
    let (_d, gw) = gateway(json!({}));
    let url = gw.ws_url();
    // The server speaks first.
    let mut c = Conn::open(&url, T).await.unwrap();
    assert!(!c.nonce().is_empty());
    assert!(c.challenge["ts"].is_u64());
    // First frame not connect → INVALID_REQUEST, close 1008.
    c.send_json(&json!({"type": "req", "id": "1", "method": "health", "params": {}})).await.unwrap();
    let Incoming::Frame(res) = c.recv().await.unwrap() else { panic!() };
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "invalid handshake: first request must be connect");
    assert_eq!(c.recv().await.unwrap(), Incoming::Closed(1008, "invalid handshake: first request must be connect".into()));
    // Wrong shared token.
    let (code, err, close) = rejected(&url, &ConnectOptions { token: Some("wrong".into()), ..Default::default() }).await;
    assert_eq!(code, "INVALID_REQUEST");
    assert_eq!(err["details"]["code"], "AUTH_TOKEN_MISMATCH");
    assert!(err["message"].as_str().unwrap().starts_with("unauthorized: gateway token mismatch"));
    assert_eq!(close.unwrap().0, 1008);
    // Protocol 3 → 1002.
    let (_, err, close) = rejected(&url, &ConnectOptions { min_protocol: 3, max_protocol: 3, ..token_opts() }).await;
    assert_eq!((err["message"].clone(), err["details"]["code"].clone()), (json!("protocol mismatch"), json!("PROTOCOL_MISMATCH")));
    assert_eq!(close.unwrap().0, 1002);
    // No auth, no device.
    let (code, err, close) = rejected(&url, &ConnectOptions::default()).await;
    assert_eq!((code.as_str(), err["message"].as_str().unwrap()), ("NOT_PAIRED", "device identity required"));
    assert_eq!(close.unwrap().0, 1008);
    // Bad signature: sign for one nonce, send on a connection with another.
    let key = DeviceKey::generate();
    let other = Conn::open(&url, T).await.unwrap();
    let params = other.connect_params(&device_opts(&key, &[]));
    let mut c = Conn::open(&url, T).await.unwrap();
    let mut p = params.clone();
    p["device"]["nonce"] = json!(c.nonce());
    let err = c.request("connect", p).await.unwrap_err();
    let ClientError::Rejected { error, close, .. } = err else { panic!("{err:?}") };
    assert_eq!(error["message"], "device signature invalid");
    assert_eq!(error["details"]["code"], "DEVICE_AUTH_SIGNATURE_INVALID");
    assert_eq!(close.unwrap().0, 1008);
}

#[tokio::test]
async fn methods_after_hello() {
    let (_d, gw) = gateway(json!({}));
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    let hello = c.connect(&token_opts()).await.unwrap();
    assert_eq!(hello["type"], "hello-ok");
    assert_eq!(hello["protocol"], 4);
    assert_eq!(hello["auth"]["scopes"], json!(["operator.admin"]));
    assert!(hello["auth"]["deviceToken"].is_null(), "no device, no device token");
    assert!(hello["policy"]["tickIntervalMs"].is_u64());
    let h = c.request("health", json!({})).await.unwrap();
    assert_eq!(h["ok"], true);
    let s = c.request("status", json!({})).await.unwrap();
    assert_eq!(s["auth"]["tokenFingerprint"], json!(openclaw::config::secrets::fingerprint(TOKEN.as_bytes())));
    assert!(!s.to_string().contains(TOKEN));
    assert!(c.request("channels.status", json!({})).await.unwrap()["channels"].is_array());
    let run = c.request("agent", json!({"message": "hi"})).await.unwrap();
    let id = run["runId"].as_str().unwrap().to_string();
    let mut state = Value::Null;
    for _ in 0..200 {
        state = c.request("agent.run.get", json!({"runId": id})).await.unwrap();
        if state["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(state["state"], "failed");
    assert!(c.request("wake", json!({"text": "ping"})).await.unwrap()["runId"].is_string());
    let logs = c.request("logs.tail", json!({"limit": 50})).await.unwrap();
    assert!(logs["lines"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains(&id)), "runs log their runId: {logs}");
    // `send` goes through the operations layer: a channel that is not configured is refused.
    let ClientError::Rejected { code, error, .. } = c.request("send", json!({"channel": "whatsapp", "to": "+1", "message": "x"})).await.unwrap_err() else { panic!() };
    assert_eq!((code.as_str(), error["details"]["code"].as_str()), ("INVALID_REQUEST", Some("UNKNOWN_CHANNEL")));
    let ClientError::Rejected { code, message, .. } = c.request("no.such.method", json!({})).await.unwrap_err() else { panic!() };
    assert_eq!((code.as_str(), message.as_str()), ("INVALID_REQUEST", "unknown method: no.such.method"));
}

#[tokio::test]
async fn local_device_is_auto_approved_by_default() {
    let (_d, gw) = gateway(json!({}));
    let key = DeviceKey::generate();
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    let hello = c.connect(&device_opts(&key, &["operator.read"])).await.unwrap();
    let dt = hello["auth"]["deviceToken"].as_str().unwrap().to_string();
    assert_eq!(dt.len(), 43);
    // The device token alone (no shared token) authenticates the same device.
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    let o = ConnectOptions { token: None, device_token: Some(dt), ..device_opts(&key, &["operator.read"]) };
    let hello = c.connect(&o).await.unwrap();
    assert_eq!(hello["auth"]["scopes"], json!(["operator.read"]));
    // Read scope cannot run agents.
    let ClientError::Rejected { code, error, .. } = c.request("agent", json!({"message": "x"})).await.unwrap_err() else { panic!() };
    assert_eq!((code.as_str(), error["details"]["code"].as_str()), ("FORBIDDEN", Some("MISSING_SCOPE")));
}

#[tokio::test]
async fn pairing_flow_end_to_end_with_cli() {
    let (dir, mut gw) = gateway(json!({"nodes": {"pairing": {"autoApproveLocal": false}}}));
    let sd = dir.path().to_str().unwrap().to_string();
    let url = gw.ws_url();
    let key = DeviceKey::generate();
    // An operator connected meanwhile is told about the request.
    let mut admin = Conn::open(&url, T).await.unwrap();
    admin.connect(&token_opts()).await.unwrap();
    // New device → NOT_PAIRED with a requestId, close 1008.
    let (code, err, close) = rejected(&url, &device_opts(&key, &["operator.read"])).await;
    assert_eq!(code, "NOT_PAIRED");
    assert_eq!(err["details"]["code"], "PAIRING_REQUIRED");
    assert_eq!(err["details"]["reason"], "not-paired");
    assert_eq!(err["details"]["deviceId"], key.device_id());
    let request_id = err["details"]["requestId"].as_str().unwrap().to_string();
    let (cc, reason) = close.unwrap();
    assert_eq!(cc, 1008);
    assert!(reason.contains(&request_id), "{reason}");
    loop {
        let Incoming::Frame(ev) = admin.recv().await.unwrap() else { panic!("closed") };
        if ev["event"] == "device.pair.requested" {
            assert_eq!(ev["payload"]["requestId"], json!(request_id));
            break;
        }
    }
    // The CLI lists and approves it.
    let (rc, out, e) = cli(&["devices", "list", "--json", "--state-dir", &sd]);
    assert_eq!(rc, 0, "{e}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["pending"][0]["requestId"], json!(request_id));
    let (rc, out, e) = cli(&["devices", "approve", &request_id, "--state-dir", &sd]);
    assert_eq!(rc, 0, "{e}");
    assert_eq!(out.trim(), format!("Approved {} ({request_id})", key.device_id()));
    let (rc, _, e) = cli(&["devices", "approve", &request_id, "--state-dir", &sd]);
    assert_ne!(rc, 0);
    assert!(e.contains("No pending device request matches"), "{e}");
    // The same key now connects and receives a device token.
    let mut c = Conn::open(&url, T).await.unwrap();
    let hello = c.connect(&device_opts(&key, &["operator.read"])).await.unwrap();
    let device_token = hello["auth"]["deviceToken"].as_str().unwrap().to_string();
    c.close().await;
    // A scope upgrade needs approval again.
    let (code, err, _) = rejected(&url, &device_opts(&key, &["operator.admin"])).await;
    assert_eq!((code.as_str(), err["details"]["reason"].as_str()), ("NOT_PAIRED", Some("scope-upgrade")));
    let upgrade_id = err["details"]["requestId"].as_str().unwrap().to_string();
    let (rc, out, _) = cli(&["devices", "reject", &upgrade_id, "--state-dir", &sd]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("Rejected"), "{out}");
    // Pairings survive a restart; the device token keeps working.
    assert_eq!(gw.sigterm().code(), Some(0));
    let gw = start(dir.path(), &[], &[]).expect("restart");
    let o = ConnectOptions { token: None, device_token: Some(device_token.clone()), ..device_opts(&key, &["operator.read"]) };
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    c.connect(&o).await.unwrap();
    c.close().await;
    // Revoke: the device token stops working.
    let (rc, out, e) = cli(&["devices", "revoke", &key.device_id(), "--state-dir", &sd]);
    assert_eq!(rc, 0, "{e}");
    assert!(out.starts_with("Revoked"));
    let (_, err, _) = rejected(&gw.ws_url(), &o).await;
    assert_eq!(err["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH");
    // The device files are 0600 and hold no device token.
    use std::os::unix::fs::PermissionsExt;
    let paired = dir.path().join("devices/paired.json");
    assert_eq!(std::fs::metadata(&paired).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!std::fs::read_to_string(&paired).unwrap().contains(&device_token));
}

#[tokio::test]
async fn devices_cli_works_offline_on_the_files() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": TOKEN}, "nodes": {"pairing": {"autoApproveLocal": false}}}}));
    let sd = dir.path().to_str().unwrap().to_string();
    let key = DeviceKey::generate();
    let request_id = {
        let gw = start(dir.path(), &[], &[]).expect("start");
        let (_, err, _) = rejected(&gw.ws_url(), &device_opts(&key, &[])).await;
        err["details"]["requestId"].as_str().unwrap().to_string()
    };
    let (rc, out, e) = cli(&["devices", "approve", &request_id, "--state-dir", &sd]);
    assert_eq!(rc, 0, "{e}");
    assert!(out.starts_with("Approved"));
    let gw = start(dir.path(), &[], &[]).expect("start");
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    assert!(c.connect(&device_opts(&key, &[])).await.unwrap()["auth"]["deviceToken"].is_string());
}

#[test]
fn status_health_dashboard_cli() {
    let (dir, gw) = gateway(json!({}));
    let sd = dir.path().to_str().unwrap();
    let (rc, out, e) = cli(&["status", "--all", "--state-dir", sd]);
    assert_eq!(rc, 0, "{e}");
    assert!(out.contains(&openclaw::config::secrets::fingerprint(TOKEN.as_bytes())) && !out.contains(TOKEN), "{out}");
    assert!(out.contains("Recent log lines"), "{out}");
    let (rc, out, _) = cli(&["health", "--state-dir", sd]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("Gateway: ok"), "{out}");
    let (rc, out, _) = cli(&["gateway", "status", "--state-dir", sd]);
    assert_eq!(rc, 0);
    assert!(out.contains(&format!("pid {}", gw.child.id())), "{out}");
    let (rc, out, _) = cli(&["dashboard", "--state-dir", sd]);
    assert_eq!(rc, 0);
    assert_eq!(out.trim(), format!("http://127.0.0.1:{}/#token={TOKEN}", gw.port));
    // A CLI with another state dir is told so.
    let other = tempfile::tempdir().unwrap();
    let (rc, _, e) = cli(&["health", "--state-dir", other.path().to_str().unwrap(), "--url", &gw.ws_url(), "--token", TOKEN]);
    assert_eq!(rc, 0, "{e}");
    assert!(e.contains("note: the gateway uses state dir"), "{e}");
    // No gateway for a state dir: a clear error, non-zero.
    let (rc, out, _) = cli(&["gateway", "status", "--state-dir", other.path().to_str().unwrap(), "--url", "ws://127.0.0.1:9"]);
    assert_ne!(rc, 0);
    assert!(out.contains("not reachable"), "{out}");
}
