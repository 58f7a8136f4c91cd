//! `web.login.start` / `web.login.wait` / `channels.logout` over the control protocol (issue 13
//! item 1), as upstream's Control UI calls them: advertised in hello, a QR as a data URL that
//! rotates, linked → `connected: true`, a cooldown refused in words with the time it ends, and
//! logout refused in words while the gateway holds the session.

mod gateway_support;
#[path = "support/scan_login.rs"]
mod scan_login;

use std::time::Duration;

use gateway_support::{start, write_config};
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::channels::whatsapp::supervisor::persist::{AccountFiles, Cooldown};
use openclaw::gateway::client::{ClientError, ConnectOptions};
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
    let t0 = std::time::Instant::now();
    loop {
        let s = c.request("channels.status", json!({})).await.unwrap();
        if s["channels"][0]["connected"] == true {
            break;
        }
        assert!(t0.elapsed() < T, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = c.request("channels.logout", json!({"channel": "whatsapp"})).await.expect_err("session held by the gateway");
    match err {
        ClientError::Rejected { code, message, .. } => {
            assert_eq!(code, "UNAVAILABLE");
            assert!(message.contains("systemctl stop openclaw && openclaw channels logout --account default"), "{message}");
        }
        other => panic!("{other}"),
    }
    drop(c);
    drop(gw);
}
