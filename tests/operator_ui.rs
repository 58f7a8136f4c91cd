//! The Control UI in Debian's headless Chromium, driven over the DevTools protocol (issue 13
//! item 1, "What it must show"): it loads with the token, Channels shows "Not linked", Link
//! shows a QR that decodes from a screenshot to a ref the mock accepts, the mock phone scans it
//! and the page turns to Connected with the number without a reload; a device waiting for a
//! scope upgrade is approved on the Devices page and the waiting client connects; Log out
//! (confirmed) unlinks the device and Link shows a fresh QR. Screenshots
//! of each page go to target/ui-screenshots/.

mod gateway_support;
#[path = "support/cdp.rs"]
mod cdp;
#[path = "support/peer.rs"]
mod peer;

use std::path::PathBuf;
use std::time::Duration;

use gateway_support::{start, write_config};
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::gateway::client::{Conn, ConnectOptions};
use openclaw::gateway::identity::DeviceKey;
use serde_json::json;

const TOKEN: &str = "ui-test-token-0123456789";
const T: Duration = Duration::from_secs(15);

fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("ui-screenshots")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item1_control_ui_links_whatsapp_and_approves_a_device() {
    let Some(chromium) = cdp::chromium() else {
        return peer::missing("issue13_item1_control_ui", "chromium is not installed");
    };
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({
        "gateway": {"auth": {"token": TOKEN}},
        "hooks": {"enabled": true, "token": "ui-test-hook-token-0123", "path": "/hooks"},
        "channels": {"whatsapp": {"dmPolicy": "pairing"}}
    }));
    let env = [("OPENCLAW_WA_TEST_SERVER", m.url()), ("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()))];
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = start(dir.path(), &[], &envs).expect("gateway");
    let base = format!("http://127.0.0.1:{}/", gw.port);
    let out = shots();

    let mut b = cdp::Browser::launch(&chromium).await;
    let p = &mut b.page;

    // Loads with the token from `openclaw dashboard`'s link; the token leaves the address bar.
    p.goto(&format!("{base}#token={TOKEN}")).await;
    p.wait_for("document.querySelector('#conn').textContent === 'connected'", T).await;
    p.wait_for("document.querySelector('main').innerText.includes('State dir')", T).await;
    let text = p.eval("document.querySelector('main').innerText").await;
    let text = text.as_str().unwrap();
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    assert!(text.contains(&openclaw::config::secrets::fingerprint(TOKEN.as_bytes())) && !text.contains(TOKEN), "{text}");
    assert!(!p.eval("location.href").await.as_str().unwrap().contains(TOKEN));
    p.screenshot(&out.join("overview.png"), None, 1.0).await;

    // The browser paired itself as a device (loopback auto-approval) with its own identity.
    let paired = std::fs::read_to_string(dir.path().join("devices/paired.json")).expect("the browser paired");
    assert!(paired.contains("openclaw-control-ui"), "{paired}");

    // Channels: Not linked.
    p.eval("window.__noReload = 1; location.hash = '#/channels'").await;
    p.wait_for("document.querySelector('#headline-default') && document.querySelector('#headline-default').textContent === 'Not linked'", T).await;
    p.screenshot(&out.join("channels-not-linked.png"), None, 1.0).await;

    // Link: a QR appears; decode it from a screenshot of the page and let the mock phone scan it.
    p.eval("[...document.querySelectorAll('button')].find(b => b.textContent === 'Link').click()").await;
    p.wait_for("(() => { const i = document.querySelector('#qr'); return i && i.complete && i.naturalWidth > 0; })()", T).await;
    let rect = p.eval("(() => { const r = document.querySelector('#qr').getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()").await;
    let r: Vec<f64> = rect.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    p.screenshot(&out.join("channels-qr.png"), None, 1.0).await;
    let png = p.screenshot(&out.join("qr-only.png"), Some([r[0] - 16.0, r[1] - 16.0, r[2] + 32.0, r[3] + 32.0]), 2.0).await;
    let decoded = cdp::decode_png_qr(&png).expect("the QR on the page decodes");
    assert!(decoded.contains(",1") && decoded.contains("2@"), "{decoded}");
    m.scan(&decoded).expect("the mock accepts the ref shown by the page");

    // Linked, then Connected with the number, without a reload.
    p.wait_for("document.querySelector('#headline-default') && document.querySelector('#headline-default').textContent === 'Connected'", T).await;
    let card = p.eval("document.querySelector('[data-account=default]').innerText").await;
    assert!(card.as_str().unwrap().contains("+15550001234"), "{card}");
    assert_eq!(p.eval("window.__noReload").await, 1, "the page was reloaded");
    p.screenshot(&out.join("channels.png"), None, 1.0).await;

    // Devices: a client asks for more scopes (pairing required, 1008) and waits; approve it here.
    let key = DeviceKey::generate();
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    c.connect(&device_opts(&key, &["operator.read"])).await.expect("first pairing is automatic on loopback");
    c.close().await;
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    let err = c.connect(&device_opts(&key, &["operator.read", "operator.admin"])).await.expect_err("a scope upgrade needs approval");
    let request_id = match &err {
        openclaw::gateway::client::ClientError::Rejected { error, .. } => error["details"]["requestId"].as_str().unwrap().to_string(),
        other => panic!("{other}"),
    };
    p.eval("location.hash = '#/devices'").await;
    p.wait_for(&format!("!!document.querySelector('tr[data-request=\"{request_id}\"]')"), T).await;
    p.screenshot(&out.join("devices.png"), None, 1.0).await;
    p.eval(&format!("document.querySelector('tr[data-request=\"{request_id}\"] button.primary').click()")).await;
    p.wait_for(&format!("!document.querySelector('tr[data-request=\"{request_id}\"]')"), T).await;
    let mut c = Conn::open(&gw.ws_url(), T).await.unwrap();
    let hello = c.connect(&device_opts(&key, &["operator.read", "operator.admin"])).await.expect("the approved client connects");
    assert!(hello["auth"]["deviceToken"].is_string());
    c.close().await;

    // Runs: a hook run shows with its state. Logs: live lines with a level filter.
    let r = gateway_support::http(gw.port, "POST", "/hooks/agent", &[("Authorization", "Bearer ui-test-hook-token-0123")], br#"{"message":"hello from a hook","deliver":false}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let run_id = r.json()["runId"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.eval("location.hash = '#/runs'").await;
    let row = p.wait_for(&format!("(document.querySelector('tr[data-run=\"{run_id}\"]') || {{}}).innerText"), T).await;
    assert!(row.as_str().unwrap().contains("failed") && row.as_str().unwrap().contains("no LLM provider"), "{row}");
    p.screenshot(&out.join("runs.png"), None, 1.0).await;
    p.eval("location.hash = '#/logs'").await;
    p.wait_for("document.querySelector('#logs') && document.querySelector('#logs').innerText.includes('linked from the Control UI')", T).await;
    p.eval("(() => { const s = document.querySelector('#level'); s.value = 'warn'; s.dispatchEvent(new Event('change')); })()").await;
    let logs = p.eval("document.querySelector('#logs').innerText").await;
    assert!(!logs.as_str().unwrap().contains(" INFO "), "the level filter hides INFO lines");
    p.eval("(() => { const s = document.querySelector('#level'); s.value = 'info'; s.dispatchEvent(new Event('change')); })()").await;
    p.screenshot(&out.join("logs.png"), None, 1.0).await;

    // Log out (with a confirmation) while the gateway runs the account: the mock unlinks the
    // device, the card turns to "Not linked" without a reload, and Link shows a fresh QR.
    p.eval("location.hash = '#/channels'").await;
    p.wait_for("document.querySelector('#headline-default') && document.querySelector('#headline-default').textContent === 'Connected'", T).await;
    p.eval("[...document.querySelectorAll('button')].find(b => b.textContent === 'Log out').click()").await;
    p.wait_for("[...document.querySelectorAll('button')].some(b => b.textContent === 'Yes, log out')", T).await;
    assert_eq!(m.state()["linkedDevices"].as_array().unwrap().len(), 1, "nothing happens before the confirmation");
    p.eval("[...document.querySelectorAll('button')].find(b => b.textContent === 'Yes, log out').click()").await;
    p.wait_for("document.querySelector('#headline-default').textContent === 'Not linked' && document.querySelector('#link-msg') && document.querySelector('#link-msg').textContent.includes('WhatsApp removed this device')", T).await;
    assert_eq!(m.state()["linkedDevices"].as_array().unwrap().len(), 0, "the mock unlinked the device");
    assert!(!dir.path().join("credentials/whatsapp/default/creds.json").exists(), "credentials moved aside");
    p.screenshot(&out.join("channels-logged-out.png"), None, 1.0).await;
    p.eval("[...document.querySelectorAll('button')].find(b => b.textContent === 'Link').click()").await;
    p.wait_for("(() => { const i = document.querySelector('#qr'); return i && i.complete && i.naturalWidth > 0; })()", T).await;
    assert_eq!(p.eval("window.__noReload").await, 1, "the page was reloaded");
    drop(b);
    drop(gw);
}

/// Not on loopback auto-approval (`autoApproveLocal: false`): the page says it waits for
/// approval with the request id, `openclaw devices approve` lets it in without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item1_control_ui_waits_for_device_approval() {
    let Some(chromium) = cdp::chromium() else {
        return peer::missing("issue13_item1_control_ui_waits_for_device_approval", "chromium is not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": TOKEN}, "nodes": {"pairing": {"autoApproveLocal": false}}}}));
    let gw = start(dir.path(), &[], &[]).expect("gateway");
    let mut b = cdp::Browser::launch(&chromium).await;
    let p = &mut b.page;
    p.goto(&format!("http://127.0.0.1:{}/#token={TOKEN}", gw.port)).await;
    let why = p.wait_for("(() => { const w = document.querySelector('#login-why').textContent; return w.includes('openclaw devices approve') && w; })()", T).await;
    let why = why.as_str().unwrap().to_string();
    let request_id = why.split("openclaw devices approve ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let out = gateway_support::cmd().args(["devices", "approve", &request_id, "--state-dir"]).arg(dir.path()).env("OPENCLAW_GATEWAY_TOKEN", TOKEN).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    p.wait_for("document.querySelector('#conn').textContent === 'connected' && document.querySelector('main').innerText.includes('State dir')", T).await;
    drop(b);
    drop(gw);
}
