//! `web.login.start` / `web.login.wait` / `channels.logout` over the control protocol (issue 13
//! item 1), as upstream's Control UI calls them: advertised in hello, a QR as a data URL that
//! rotates, linked → `connected: true`, a cooldown refused in words with the time it ends, and
//! a waiting `web.login.wait` that does not hold up its connection, and
//! logout while the gateway runs the account (Control UI and `openclaw channels logout`): the
//! mock unlinks the device, the credentials are moved aside, the state is `loggedOut`, and Link
//! shows a fresh QR.

mod gateway_support;
#[path = "support/scan_login.rs"]
mod scan_login;

use std::time::Duration;

use gateway_support::{start, write_config};
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::channels::whatsapp::supervisor::persist::{AccountFiles, Cooldown};
use openclaw::gateway::client::{ClientError, ConnectOptions, Incoming};
use openclaw::store::StateLayout;
use serde_json::json;

const TOKEN: &str = "weblogin-token-0123456789";
const T: Duration = Duration::from_secs(15);

fn opts() -> ConnectOptions {
    ConnectOptions { token: Some(TOKEN.into()), ..Default::default() }
}

fn decode_svg_data_url(url: &str) -> String {
    use base64::Engine as _;
    let b64 = url.strip_prefix("data:image/svg+xml;base64,").expect("an SVG data URL");
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

/// Decodes the QR code of an SVG made of one `<path>` of `M{x} {y}h{w}v{h}H{x}V{y}` rectangles
/// (the `qrcode` crate's SVG) by painting it and reading it with `rqrr`.
fn decode_svg_qr(svg: &str) -> Option<String> {
    let num = |key: &str| -> Option<usize> { svg.split(&format!(" {key}=\"")).nth(1)?.split('"').next()?.parse().ok() };
    let (w, h) = (num("width")?, num("height")?);
    let mut px = vec![255u8; w * h];
    let d = svg.split(" d=\"").nth(1)?.split('"').next()?;
    for rect in d.split('M').filter(|r| !r.is_empty()) {
        let nums: Vec<usize> = rect.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty()).filter_map(|t| t.parse().ok()).collect();
        let [x, y, rw, rh, ..] = nums[..] else { return None };
        for yy in y..(y + rh).min(h) {
            for xx in x..(x + rw).min(w) {
                px[yy * w + xx] = 0;
            }
        }
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| px[y * w + x]);
    img.detect_grids().first().and_then(|g| g.decode().ok()).map(|(_, s)| s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item1_web_login_start_wait_link_and_cooldown() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": TOKEN}}, "channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    let env = [("OPENCLAW_WA_TEST_SERVER", m.url()), ("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()))];
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // A cooldown in force: the link is refused in words, with the time it ends.
    let until = openclaw::agent::runs::unix_ms() + 19 * 60_000;
    AccountFiles::new(&StateLayout::new(dir.path()), "default")
        .set_cooldown(openclaw::agent::runs::unix_ms(), Cooldown { until_ms: until, reason: "loggedOut [401] during login".into() })
        .unwrap();
    let gw = start(dir.path(), &[], &envs).expect("gateway");
    let (mut c, hello) = openclaw::gateway::client::connect(&gw.ws_url(), &opts(), T).await.unwrap();
    let methods = hello["features"]["methods"].as_array().unwrap();
    for name in ["web.login.start", "web.login.wait", "channels.logout", "channels.status"] {
        assert!(methods.iter().any(|x| x == name), "{name} advertised");
    }
    let r = c.request("web.login.start", json!({"channel": "whatsapp", "timeoutMs": 5000})).await.unwrap();
    assert_eq!(r["connected"], false);
    assert!(r["qrDataUrl"].is_null());
    assert_eq!(r["nextAllowedAt"], until, "{r}");
    assert!(r["message"].as_str().unwrap().contains("WhatsApp refused an earlier attempt"), "{r}");
    assert_eq!(m.state()["connectionAttempts"], 0, "no attempt during the cooldown");
    drop(c);
    drop(gw);

    // No cooldown: a QR arrives as an SVG data URL, then the phone scans it.
    std::fs::remove_file(dir.path().join("channels/whatsapp/default/supervisor.json")).unwrap();
    let gw = start(dir.path(), &[], &envs).expect("gateway");
    let (mut c, _) = openclaw::gateway::client::connect(&gw.ws_url(), &opts(), T).await.unwrap();
    let err = c.request("web.login.wait", json!({"timeoutMs": 100})).await.expect_err("wait before start");
    assert!(matches!(err, ClientError::Rejected { ref message, .. } if message.contains("web.login.start")), "{err}");
    let r = c.request("web.login.start", json!({"channel": "whatsapp", "timeoutMs": 10000})).await.unwrap();
    let qr = r["qrDataUrl"].as_str().expect("a QR").to_string();
    assert!(decode_svg_data_url(&qr).contains("<svg"));
    // `wait` with the current QR: times out unchanged (still the same code).
    let w = c.request("web.login.wait", json!({"timeoutMs": 300, "currentQrDataUrl": qr})).await.unwrap();
    assert_eq!(w["connected"], false);
    assert_eq!(w["qrDataUrl"], qr.as_str());
    // A waiting `web.login.wait` does not hold up its connection: a `status` sent after it is
    // answered first, the wait when its time is up.
    c.send_json(&json!({"type": "req", "id": "w", "method": "web.login.wait", "params": {"timeoutMs": 2000, "currentQrDataUrl": qr}})).await.unwrap();
    c.send_json(&json!({"type": "req", "id": "s", "method": "status", "params": {}})).await.unwrap();
    let t0 = std::time::Instant::now();
    let mut order = Vec::new();
    while order.len() < 2 {
        if let Incoming::Frame(v) = c.recv().await.unwrap()
            && v["type"] == "res"
        {
            assert_eq!(v["ok"], true, "{v}");
            order.push((v["id"].as_str().unwrap().to_string(), t0.elapsed()));
        }
    }
    assert_eq!((order[0].0.as_str(), order[1].0.as_str()), ("s", "w"), "{order:?}");
    assert!(order[0].1 < Duration::from_millis(1500) && order[1].1 >= Duration::from_millis(1900), "{order:?}");
    drop(c);
    drop(gw);

    // Linked (here by the CLI): start answers connected with the number; logging out while
    // the gateway holds the session is refused in words with the commands that do it.
    let mut cli = gateway_support::cmd();
    cli.args(["channels", "login", "--json", "--state-dir"]).arg(dir.path()).stderr(std::process::Stdio::null());
    for (k, v) in &env {
        cli.env(k, v);
    }
    let (status, lines) = scan_login::run_scanning(&m, cli).await;
    assert!(status.success(), "{lines:?}");
    let gw = start(dir.path(), &[], &envs).expect("gateway");
    let (mut c, _) = openclaw::gateway::client::connect(&gw.ws_url(), &opts(), T).await.unwrap();
    let r = c.request("web.login.start", json!({"channel": "whatsapp"})).await.unwrap();
    assert_eq!((r["connected"].as_bool(), r["phone"].as_str()), (Some(true), Some("+15550001234")), "{r}");
    wait_connected(&mut c).await;
    // Log out while the gateway runs the account: its supervisor tells WhatsApp over the live
    // session, moves the credentials aside like a 401 logout, and publishes `loggedOut`.
    assert_eq!(m.state()["linkedDevices"].as_array().unwrap().len(), 1, "{}", m.state());
    let r = c.request("channels.logout", json!({"channel": "whatsapp"})).await.expect("logout through the supervisor");
    assert_eq!((r["cleared"].as_bool(), r["loggedOut"].as_bool(), r["toldWhatsApp"].as_bool()), (Some(true), Some(true), Some(true)), "{r}");
    assert!(r["message"].as_str().unwrap().contains("WhatsApp removed this device"), "{r}");
    assert_linked_out(&m, dir.path(), &r, &mut c).await;

    // Link shows a fresh QR at once: the supervisor released the session with the credentials.
    let r = c.request("web.login.start", json!({"channel": "whatsapp", "timeoutMs": 10000})).await.unwrap();
    assert_eq!(r["connected"], false, "{r}");
    let qr = r["qrDataUrl"].as_str().expect("a fresh QR after the logout").to_string();
    assert!(decode_svg_data_url(&qr).contains("<svg"));
    // Logging out while the link waits for the phone has nothing to unlink and leaves it alone.
    let r = c.request("channels.logout", json!({"channel": "whatsapp"})).await.unwrap();
    assert_eq!((r["cleared"].as_bool(), r["loggedOut"].as_bool()), (Some(false), Some(false)), "{r}");
    let scanned = decode_svg_qr(&decode_svg_data_url(&qr)).expect("the new QR decodes");
    m.scan(&scanned).expect("the mock phone scans the new code");
    let w = c.request("web.login.wait", json!({"timeoutMs": 15000, "currentQrDataUrl": qr})).await.unwrap();
    assert_eq!(w["connected"], true, "{w}");
    wait_connected(&mut c).await;

    // `openclaw channels logout` while the gateway runs: done by the gateway, not refused.
    let out = gateway_support::cmd().args(["channels", "logout", "--json", "--state-dir"]).arg(dir.path()).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!((v["event"].as_str(), v["via"].as_str()), (Some("unlinked"), Some("gateway")), "{v}");
    let r = json!({"backup": v["backup"]});
    assert_linked_out(&m, dir.path(), &r, &mut c).await;
    drop(c);
    drop(gw);
}

/// Waits until `channels.status` says the account is connected.
async fn wait_connected(c: &mut openclaw::gateway::client::Conn) {
    let t0 = std::time::Instant::now();
    loop {
        let s = c.request("channels.status", json!({})).await.unwrap();
        if s["channels"][0]["connected"] == true {
            return;
        }
        assert!(t0.elapsed() < T, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After a logout: the mock lists no linked device, `creds.json` moved into the backup folder
/// named in `r`, and the status reads `loggedOut` (not linked, not connected).
async fn assert_linked_out(m: &MockServer, state: &std::path::Path, r: &serde_json::Value, c: &mut openclaw::gateway::client::Conn) {
    assert_eq!(m.state()["linkedDevices"].as_array().unwrap().len(), 0, "the mock unlinked the device: {}", m.state());
    let creds_dir = state.join("credentials/whatsapp/default");
    assert!(!creds_dir.join("creds.json").exists(), "creds moved away");
    let backup = std::path::PathBuf::from(r["backup"].as_str().expect("a backup folder"));
    assert!(backup.starts_with(&creds_dir) && backup.join("creds.json").is_file(), "{}", backup.display());
    let s = c.request("channels.status", json!({})).await.unwrap();
    let ch = &s["channels"][0];
    assert_eq!((ch["state"].as_str(), ch["linked"].as_bool(), ch["connected"].as_bool()), (Some("loggedOut"), Some(false), Some(false)), "{s}");
    assert!(ch["detail"].as_str().unwrap().contains("logged out on request"), "{s}");
}
