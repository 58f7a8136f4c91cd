//! Regressions for the findings of the adversarial test pass (issue 14), against the real
//! binary on 127.0.0.1. Every load loop is bounded in count and time.

mod gateway_support;

use std::time::Duration;

use gateway_support::{start, write_config, Gw};
use openclaw::gateway::client::{ClientError, Conn, ConnectOptions};
use openclaw::gateway::identity::DeviceKey;
use serde_json::{json, Value};

const TOKEN: &str = "hardening-token-0123456789abcdef";
const T: Duration = Duration::from_secs(10);

/// A gateway with `gateway.auth.token = TOKEN` plus `extra` merged into `gateway`.
fn gateway_with(extra: Value, top: Value, envs: &[(&str, &str)]) -> (tempfile::TempDir, Gw) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = json!({"gateway": {"auth": {"token": TOKEN}}});
    if let (Some(c), Some(e)) = (cfg["gateway"].as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), top.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    write_config(dir.path(), &cfg);
    let gw = start(dir.path(), &[], envs).expect("start");
    (dir, gw)
}

fn gateway(extra: Value) -> (tempfile::TempDir, Gw) {
    gateway_with(extra, json!({}), &[])
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

/// Connect options presenting only a device token (no shared token).
fn device_token_opts(key: &DeviceKey, dt: &str, scopes: &[&str]) -> ConnectOptions {
    ConnectOptions { token: None, device_token: Some(dt.into()), ..device_opts(key, scopes) }
}

async fn rejected(url: &str, o: &ConnectOptions) -> (String, Value) {
    let mut c = Conn::open(url, T).await.unwrap();
    match c.connect(o).await {
        Err(ClientError::Rejected { code, error, .. }) => (code, error),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn pairing_request(url: &str, o: &ConnectOptions) -> String {
    let (code, err) = rejected(url, o).await;
    assert_eq!(code, "NOT_PAIRED", "{err}");
    err["details"]["requestId"].as_str().unwrap().to_string()
}

fn forbidden_code(r: Result<Value, ClientError>) -> String {
    match r {
        Err(ClientError::Rejected { code, error, .. }) => {
            assert_eq!(code, "FORBIDDEN", "{error}");
            error["details"]["code"].as_str().unwrap_or("").to_string()
        }
        other => panic!("expected FORBIDDEN, got {other:?}"),
    }
}

#[tokio::test]
async fn issue14_item1_pairing_scope_cannot_approve_escalation() {
    let (_d, gw) = gateway(json!({"nodes": {"pairing": {"autoApproveLocal": false}}}));
    let url = gw.ws_url();
    let mut admin = Conn::open(&url, T).await.unwrap();
    admin.connect(&token_opts()).await.unwrap();
    // Device A is paired with operator.pairing only, and from then on uses its device token.
    let a = DeviceKey::generate();
    let r = pairing_request(&url, &device_opts(&a, &["operator.pairing"])).await;
    admin.request("device.pair.approve", json!({"requestId": r})).await.unwrap();
    let mut c = Conn::open(&url, T).await.unwrap();
    let dt = c.connect(&device_opts(&a, &["operator.pairing"])).await.unwrap()["auth"]["deviceToken"].as_str().unwrap().to_string();
    c.close().await;
    // A asks to become admin, then approves its own request: refused.
    let r1 = pairing_request(&url, &device_token_opts(&a, &dt, &["operator.admin"])).await;
    let mut ca = Conn::open(&url, T).await.unwrap();
    ca.connect(&device_token_opts(&a, &dt, &["operator.pairing"])).await.unwrap();
    assert_eq!(forbidden_code(ca.request("device.pair.approve", json!({"requestId": r1})).await), "SELF_APPROVAL");
    // A second key B asks for admin; A cannot grant what it does not hold.
    let b = DeviceKey::generate();
    let r2 = pairing_request(&url, &device_opts(&b, &["operator.admin"])).await;
    let mut ca = Conn::open(&url, T).await.unwrap();
    ca.connect(&device_token_opts(&a, &dt, &["operator.pairing"])).await.unwrap();
    assert_eq!(forbidden_code(ca.request("device.pair.approve", json!({"requestId": r2})).await), "SCOPE_NOT_HELD");
    // Nor a role other than operator.
    let n = DeviceKey::generate();
    let rn = pairing_request(&url, &ConnectOptions { role: "node".into(), ..device_opts(&n, &[]) }).await;
    assert_eq!(forbidden_code(ca.request("device.pair.approve", json!({"requestId": rn})).await), "ROLE_NOT_HELD");
    // Both requests are still pending; A still cannot run agents.
    let list = ca.request("device.pair.list", json!({})).await.unwrap();
    let pending: Vec<&str> = list["pending"].as_array().unwrap().iter().map(|p| p["requestId"].as_str().unwrap()).collect();
    assert!(pending.contains(&r1.as_str()) && pending.contains(&r2.as_str()), "{list}");
    let (code, _) = rejected(&url, &device_token_opts(&a, &dt, &["operator.admin"])).await;
    assert_eq!(code, "NOT_PAIRED");
    // What A holds it may grant; the admin may grant the rest.
    let r3 = pairing_request(&url, &device_opts(&b, &["operator.pairing"])).await;
    ca.request("device.pair.approve", json!({"requestId": r3})).await.unwrap();
    admin.request("device.pair.approve", json!({"requestId": r1})).await.unwrap();
    let mut c = Conn::open(&url, T).await.unwrap();
    assert_eq!(c.connect(&device_token_opts(&a, &dt, &["operator.admin"])).await.unwrap()["auth"]["scopes"], json!(["operator.admin"]));
}
