//! Issue 13, items 4, 5, 6 and 8 through the real binary: no panic on a closed pipe, sensible
//! suggestions, no flags that do nothing, a terminal QR that decodes on light and dark themes
//! and says when the terminal is too small, the `whatsapp pair|status|send` runbook aliases,
//! the linked number in `channels status`/`status`/`/health`, and token/state-dir honesty.

mod gateway_support;
#[path = "support/term_qr.rs"]
mod term_qr;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use gateway_support::{cmd, http, start, write_config};
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::channels::whatsapp::qr;
use serde_json::{Value, json};

fn mock_env(m: &MockServer) -> [(&'static str, String); 2] {
    [("OPENCLAW_WA_TEST_SERVER", m.url()), ("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()))]
}

/// A QR string shaped like WhatsApp's (a 2@ ref and three base64 keys): ~230 characters.
fn whatsapp_like_qr() -> String {
    let k = "q9V1n8Jp3xXh2c7LZlq5mJ9M3y0o1Qe8u7G3bq2p4sk=";
    format!("2@{},{k},{k},{k},1", "Xy7Zq".repeat(18))
}

#[test]
fn issue13_item6_terminal_qr_decodes_on_light_and_dark_themes() {
    let data = whatsapp_like_qr();
    let text = qr::render_terminal(&data).unwrap();
    assert_eq!(term_qr::decode(&text, term_qr::DARK).as_deref(), Some(data.as_str()), "dark theme");
    assert_eq!(term_qr::decode(&text, term_qr::LIGHT).as_deref(), Some(data.as_str()), "light theme");
    // Compact: two modules per row, width within 80 columns; the size function tells the truth.
    let (cols, rows) = qr::terminal_size(&data).unwrap();
    assert!(cols <= 80, "{cols} columns");
    assert_eq!(text.lines().count(), rows);
    let widest = text.lines().map(|l| l.chars().filter(|c| matches!(c, ' ' | '▀' | '▄' | '█')).count()).max().unwrap();
    assert_eq!(widest, cols);
}

#[test]
fn issue13_item6_qr_fit_message_names_the_size_needed() {
    let data = whatsapp_like_qr();
    let (cols, rows) = qr::terminal_size(&data).unwrap();
    let m = openclaw::cli::whatsapp_cmd::qr_fit_message(&data, 80, 24).expect("an 80×24 terminal is too short");
    assert!(m.contains(&format!("at least {cols} columns × {} rows", rows + 2)), "{m}");
    assert!(m.contains("80 × 24"), "{m}");
    assert_eq!(openclaw::cli::whatsapp_cmd::qr_fit_message(&data, 120, 60), None);
}

#[test]
fn issue13_item6_closed_pipe_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["config", "schema"], vec!["--help"], vec!["config", "explain", "gateway.port", "--json"]] {
        let mut child = cmd()
            .args(&args)
            .env("OPENCLAW_STATE_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head -c 1`: read one byte, then close the pipe.
        let mut out = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        let _ = out.read(&mut one);
        drop(out);
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
    }
}

#[test]
fn issue13_item6_status_head_does_not_panic_with_a_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &[], &[]).expect("gateway");
    // `status --all` prints more than a pipe buffer? No: close before reading anything at all.
    let mut child = cmd().args(["status", "--all", "--state-dir"]).arg(dir.path()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(status.code(), Some(101));
    drop(gw);
}

#[test]
fn issue13_item6_gateway_start_says_what_to_run_not_status() {
    let (code, _, err) = gateway_support::cli(&["gateway", "start"]);
    assert_eq!(code, 2);
    assert!(err.contains("systemctl start openclaw"), "{err}");
    assert!(err.contains("openclaw gateway run"), "{err}");
    assert!(!err.contains("similar"), "{err}");
}

#[test]
fn issue13_item6_logout_has_no_phone_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd().args(["channels", "logout", "--phone", "+15550001234", "--state-dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--phone'"));
    let help = cmd().args(["channels", "logout", "--help"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("--phone"));
}

#[test]
fn issue13_item6_dashboard_json_and_token_source() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &[], &[]).expect("gateway");
    let out = cmd().args(["dashboard", "--json", "--state-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = std::fs::read_to_string(dir.path().join("credentials/gateway-token")).unwrap();
    assert_eq!(v["url"], format!("http://127.0.0.1:{}/#token={}", gw.port, token.trim()));
    let src = v["tokenSource"].as_str().unwrap();
    assert_eq!(src, format!("generated token file {}", dir.path().join("credentials/gateway-token").display()));
    assert_eq!(v["gateway"]["running"], true);
    assert_eq!(v["gateway"]["tokenFingerprint"], v["tokenFingerprint"]);
    assert_eq!(v["tokenMismatch"], Value::Null);
    // Text mode names the source too.
    let out = cmd().args(["dashboard", "--state-dir"]).arg(dir.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Token: from generated token file /"));
}

#[test]
fn issue13_item5_env_token_differs_from_generated_file_cli_says_which_source() {
    let dir = tempfile::tempdir().unwrap();
    // First run generates the token file; the second runs with OPENCLAW_GATEWAY_TOKEN instead.
    let mut gw = start(dir.path(), &[], &[]).expect("gateway");
    assert!(gw.sigterm().success());
    let gw = start(dir.path(), &[], &[("OPENCLAW_GATEWAY_TOKEN", "the-service-token-xyz")]).expect("gateway");
    let out = cmd().args(["status", "--state-dir"]).arg(dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("is running but refused this CLI's credentials"), "{err}");
    assert!(err.contains("uses the token from OPENCLAW_GATEWAY_TOKEN"), "{err}");
    assert!(err.contains("generated token file /"), "{err}");
    assert!(!err.contains("not running") && !err.contains("no gateway is listening"), "{err}");
    // channels status must not fall back to "not running" either.
    let out = cmd().args(["channels", "status", "--state-dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not running"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused this CLI's credentials"));
    // dashboard warns that its link will be refused.
    let out = cmd().args(["dashboard", "--state-dir"]).arg(dir.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("this link will be refused"));
    // With the same source, it works.
    let out = cmd().args(["status", "--state-dir"]).arg(dir.path()).env("OPENCLAW_GATEWAY_TOKEN", "the-service-token-xyz").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(gw);
}

#[test]
fn issue13_item5_devices_list_with_another_state_dir_is_not_silently_empty() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let gw = start(a.path(), &[], &[]).expect("gateway");
    // B's config points at A's port: the CLI reaches A's gateway with B's (absent) token.
    write_config(b.path(), &json!({"gateway": {"port": gw.port}}));
    let out = cmd().args(["devices", "list", "--state-dir"]).arg(b.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Pending (0)"));
    assert!(err.contains("belongs to another state dir"), "{err}");
    drop(gw);
    // No gateway at all: the files are read, and the CLI says so.
    let out = cmd().args(["devices", "list", "--state-dir"]).arg(b.path()).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no gateway is running at") && err.contains("reading and changing"), "{err}");
    let abs = std::fs::canonicalize(b.path()).unwrap();
    assert!(err.contains(&abs.display().to_string()) || err.contains(&b.path().display().to_string()), "{err}");
}

#[test]
fn issue13_item5_state_dir_printed_absolute() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::create_dir(parent.path().join("rel")).unwrap();
    let out = cmd().current_dir(parent.path()).args(["devices", "list", "--state-dir", "rel"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}/rel", parent.path().display())), "{err}");
}

/// `whatsapp send` is `message send --channel whatsapp`: with no gateway running both fail the
/// same way, saying so (the sending itself is tested in `assistant_*` and `whatsapp_messages`).
#[test]
fn issue13_item8_whatsapp_send_is_message_send() {
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().to_str().unwrap();
    let (c1, _, e1) = gateway_support::cli(&["message", "send", "--channel", "whatsapp", "-t", "+15550001234", "-m", "hi", "--state-dir", sd]);
    let (c2, _, e2) = gateway_support::cli(&["whatsapp", "send", "-t", "+15550001234", "-m", "hi", "--state-dir", sd]);
    assert_ne!(c1, 0, "{e1}");
    assert_eq!((c1, &e1), (c2, &e2));
    assert!(!e1.contains("not available yet"), "{e1}");
}

/// Links through `whatsapp pair` (text mode): decodes the terminal QR the way a phone would, on
/// a light theme, and has the mock phone scan it; then `whatsapp status` and `channels status`
/// show the number; a gateway shows it in `status` and `/health`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_items4_6_8_pair_by_terminal_qr_then_the_number_shows_everywhere() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));

    let mut c = cmd();
    c.args(["whatsapp", "pair", "--state-dir"]).arg(dir.path()).env("COLUMNS", "80").env("LINES", "24");
    for (k, v) in mock_env(&m) {
        c.env(k, v);
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut block = String::new();
    let mut all = String::new();
    let mut scanned = false;
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        all.push_str(&line);
        all.push('\n');
        if line.contains(['▀', '▄', '█']) {
            block.push_str(&line);
            block.push('\n');
        } else if !block.is_empty() && !scanned {
            let decoded = term_qr::decode(&block, term_qr::LIGHT).expect("the terminal QR decodes on a light theme");
            m.scan(&decoded).expect("the mock accepts the decoded ref");
            scanned = true;
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(status.success(), "{all}\n{err}");
    assert!(all.contains("Linked WhatsApp +15550001234"), "{all}");
    assert!(err.contains("The QR code needs a terminal of at least"), "{err}");

    // Offline: `whatsapp status` (alias) names the number and JID.
    let out = cmd().args(["whatsapp", "status", "--state-dir"]).arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("whatsapp default (+15550001234, 15550001234:7@s.whatsapp.net)"), "{text}");
    let out = cmd().args(["channels", "status", "--json", "--state-dir"]).arg(dir.path()).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channels"][0]["self"]["e164"], "+15550001234");
    assert_eq!(v["channels"][0]["phone"], "+15550001234");

    // A running gateway: /health keyed per channel, `status`, `channels status`.
    let env = mock_env(&m);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = start(dir.path(), &[], &envs).expect("gateway");
    let t0 = Instant::now();
    let h = loop {
        let h = http(gw.port, "GET", "/health", &[], b"").json();
        if h["whatsapp"]["connected"] == true {
            break h;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(h["whatsapp"]["phone"], "+15550001234", "{h}");
    assert_eq!(h["whatsapp"]["jid"], "15550001234:7@s.whatsapp.net");
    assert_eq!(h["channels"][0]["self"]["jid"], "15550001234:7@s.whatsapp.net", "the list stays");
    let out = cmd().args(["status", "--state-dir"]).arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("phone=+15550001234 jid=15550001234:7@s.whatsapp.net"), "{text}");
    let out = cmd().args(["channels", "status", "--state-dir"]).arg(dir.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("(+15550001234, 15550001234:7@s.whatsapp.net)"));
    drop(gw);
}
