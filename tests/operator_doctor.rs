//! `openclaw doctor` (issue 13 item 2): each field-report symptom reproduced in a temp state dir
//! gives its named check, with the exit code and the fix text asserted; `--fix` repairs only
//! file modes and a stale runtime file.

mod gateway_support;
#[path = "support/litellm.rs"]
#[allow(dead_code)]
mod litellm;
#[path = "support/peer.rs"]
mod peer;
#[path = "support/scan_login.rs"]
mod scan_login;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gateway_support::{cmd, start, write_config};
use openclaw::channels::whatsapp::mock::{Fault, MockOptions, MockServer};
use openclaw::channels::whatsapp::supervisor::persist::{AccountFiles, Cooldown};
use openclaw::channels::whatsapp::supervisor::session_lock::SessionLock;
use openclaw::gateway::devices::{DeviceInfo, DeviceStore};
use openclaw::store::StateLayout;
use serde_json::{Value, json};

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `doctor --json` for `dir` (plus `extra` args and `envs`); returns (exit code, report).
fn doctor(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> (i32, Value) {
    let mut c = cmd();
    c.args(["doctor", "--json", "--state-dir"]).arg(dir).args(extra);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {} / {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn finding<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["findings"].as_array().unwrap().iter().find(|f| f["id"] == id).unwrap_or_else(|| panic!("no finding {id}: {v:#}"))
}

fn fix(v: &Value, id: &str) -> String {
    finding(v, id)["fix"].as_str().unwrap_or_default().to_string()
}

/// A state dir whose config uses a port where nothing listens (so `gateway.running` is stable).
fn state(cfg: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cfg;
    if cfg["gateway"]["port"].is_null() {
        cfg["gateway"]["port"] = json!(free_port());
    }
    write_config(dir.path(), &cfg);
    dir
}

fn mock_env(m: &MockServer) -> [(&'static str, String); 2] {
    [("OPENCLAW_WA_TEST_SERVER", m.url()), ("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()))]
}

async fn link(m: &MockServer, dir: &Path) {
    let mut c = cmd();
    c.args(["channels", "login", "--json", "--state-dir"]).arg(dir).stderr(Stdio::null());
    for (k, v) in mock_env(m) {
        c.env(k, v);
    }
    let (status, lines) = scan_login::run_scanning(m, c).await;
    assert!(status.success(), "{lines:?}");
}

#[test]
fn issue13_item2_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openclaw.json"), "{ gateway: { port: 'not a port' } }").unwrap();
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "config.valid")["status"], "fail");
    assert!(fix(&v, "config.valid").starts_with("openclaw config check"));
    assert!(finding(&v, "config.valid")["evidence"][0].as_str().unwrap().contains("gateway.port"), "{v:#}");
}

#[test]
fn issue13_item2_gateway_not_running() {
    let dir = state(json!({}));
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "gateway.running");
    assert_eq!(f["status"], "fail");
    assert!(f["message"].as_str().unwrap().contains("no active listener"));
    assert_eq!(fix(&v, "gateway.running"), "systemctl start openclaw   # NixOS service; or in the foreground: openclaw gateway run");
}

#[test]
fn issue13_item2_port_held_by_another_process() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let dir = state(json!({"gateway": {"port": port}}));
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "gateway.port");
    assert_eq!(f["status"], "fail");
    let me = std::process::id();
    assert!(f["message"].as_str().unwrap().contains(&format!("pid {me}")), "{f}");
    assert!(fix(&v, "gateway.port").starts_with(&format!("kill {me}")));
}

#[test]
fn issue13_item2_cli_state_dir_differs_from_the_running_gateway() {
    let a = tempfile::tempdir().unwrap();
    let gw = start(a.path(), &[], &[]).expect("gateway");
    let b = state(json!({"gateway": {"port": gw.port}}));
    let (code, v) = doctor(b.path(), &[], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "gateway.state_dir");
    assert_eq!(f["status"], "fail");
    assert!(f["evidence"][0].as_str().unwrap().contains(&a.path().display().to_string()), "{f}");
    assert_eq!(fix(&v, "gateway.state_dir").split("   #").next().unwrap(), format!("export OPENCLAW_STATE_DIR={}", a.path().display()));
    // The gateway's own state dir: all good.
    let (code, v) = doctor(a.path(), &[], &[]);
    assert_eq!(finding(&v, "gateway.running")["status"], "ok", "{v:#}");
    assert_eq!(code, 0, "{v:#}");
    drop(gw);
}

#[test]
fn issue13_item2_token_sources_disagree_and_cli_token_differs_from_gateway() {
    let dir = state(json!({"gateway": {"auth": {"token": "from-the-config-file"}}}));
    let (code, v) = doctor(dir.path(), &[], &[("OPENCLAW_GATEWAY_TOKEN", "from-the-environment")]);
    assert_eq!(code, 1);
    let f = finding(&v, "token.sources");
    assert_eq!(f["status"], "fail");
    assert_eq!(f["evidence"].as_array().unwrap().len(), 2, "{f}");
    assert!(fix(&v, "token.sources").contains("same token"));

    // The gateway runs with OPENCLAW_GATEWAY_TOKEN, the CLI only sees the generated file.
    let d2 = tempfile::tempdir().unwrap();
    let mut gw = start(d2.path(), &[], &[]).expect("gateway");
    assert!(gw.sigterm().success());
    let gw = start(d2.path(), &[], &[("OPENCLAW_GATEWAY_TOKEN", "service-token")]).expect("gateway");
    let (code, v) = doctor(d2.path(), &[], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "token.sources");
    assert_eq!(f["status"], "fail", "{f}");
    assert!(f["message"].as_str().unwrap().contains("gateway token mismatch"));
    assert!(fix(&v, "token.sources").contains("the gateway uses OPENCLAW_GATEWAY_TOKEN"), "{f}");
    drop(gw);
}

#[test]
fn issue13_item2_world_readable_token_file_and_fix() {
    // The generated token file made readable to others: the gateway and the CLI refuse it.
    let dir = state(json!({}));
    let tf = dir.path().join("credentials/gateway-token");
    std::fs::create_dir_all(tf.parent().unwrap()).unwrap();
    // A well-formed generated token (43 base64url characters; a damaged one is refused outright).
    std::fs::write(&tf, format!("{}\n", "A".repeat(43))).unwrap();
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "token.file_mode")["status"], "fail");
    assert_eq!(fix(&v, "token.file_mode"), format!("chmod 600 {}   # or openclaw doctor --fix", tf.display()));
    let (_, v) = doctor(dir.path(), &["--fix"], &[]);
    assert_eq!(std::fs::metadata(&tf).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(v["repairs"].as_array().unwrap().iter().any(|r| r["action"] == format!("chmod 600 {}", tf.display())), "{v:#}");
    assert!(v["findings"].as_array().unwrap().iter().all(|f| f["id"] != "token.file_mode"));
    // A world-readable tokenFile named by the config makes the config invalid; doctor says so
    // with the config compiler's chmod hint.
    let d2 = tempfile::tempdir().unwrap();
    let t2 = d2.path().join("token.txt");
    std::fs::write(&t2, "a-token-in-a-file\n").unwrap();
    std::fs::set_permissions(&t2, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_config(d2.path(), &json!({"gateway": {"port": free_port(), "auth": {"tokenFile": t2}}}));
    let (code, v) = doctor(d2.path(), &[], &[]);
    assert_eq!(code, 1);
    assert!(finding(&v, "config.valid")["evidence"][0].as_str().unwrap().contains(&format!("chmod 600 {}", t2.display())));
}

#[test]
fn issue13_item2_loose_state_dir_and_stale_runtime_file_are_fixed() {
    let dir = state(json!({}));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = dir.path().join("gateway.json");
    std::fs::write(&runtime, r#"{"pid": 4194303, "port": 1}"#).unwrap();
    let (_, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(finding(&v, "state.file_modes")["status"], "warn");
    assert_eq!(finding(&v, "gateway.stale_runtime")["status"], "warn");
    assert_eq!(fix(&v, "gateway.stale_runtime"), format!("rm {}   # or openclaw doctor --fix", runtime.display()));
    let (_, v) = doctor(dir.path(), &["--fix"], &[]);
    assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(!runtime.exists());
    assert_eq!(finding(&v, "state.file_modes")["status"], "ok");
    assert!(v["findings"].as_array().unwrap().iter().all(|f| f["id"] != "gateway.stale_runtime"));
}

#[test]
fn issue13_item2_pending_device_approval() {
    let dir = state(json!({}));
    let layout = StateLayout::new(dir.path());
    let mut store = DeviceStore::load(&layout).unwrap();
    let info = DeviceInfo {
        device_id: "ab".repeat(32),
        public_key: "pk".into(),
        platform: "linux".into(),
        device_family: "desktop".into(),
        client_id: "openclaw-control-ui".into(),
        client_mode: "webchat".into(),
        display_name: None,
    };
    let now = openclaw::agent::runs::unix_ms();
    let req = store.request(info, "operator", &["operator.read".into()], "not-paired", Some("10.0.0.2".into()), now).unwrap();
    let (_, v) = doctor(dir.path(), &[], &[]);
    let f = finding(&v, "devices.pending");
    assert_eq!(f["status"], "warn");
    assert!(f["message"].as_str().unwrap().contains("pairing required"));
    assert!(fix(&v, "devices.pending").starts_with(&format!("openclaw devices approve {}", req.request_id)));
}

#[test]
fn issue13_item2_whatsapp_not_linked_corrupt_logged_out_cooling_down_session_held() {
    let dir = state(json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "whatsapp.default.linked")["status"], "fail");
    assert!(fix(&v, "whatsapp.default.linked").starts_with("openclaw channels login"));

    // Logged out by the phone: the supervisor moved the creds aside.
    let acct = dir.path().join("credentials/whatsapp/default");
    std::fs::create_dir_all(acct.join("logged-out-1796000000000")).unwrap();
    let (_, v) = doctor(dir.path(), &[], &[]);
    let f = finding(&v, "whatsapp.default.linked");
    assert!(f["message"].as_str().unwrap().contains("logged this device out"), "{f}");
    assert!(f["evidence"][0].as_str().unwrap().contains("logged-out-1796000000000"));

    // Cooling down, with the time left.
    let layout = StateLayout::new(dir.path());
    let until = openclaw::agent::runs::unix_ms() + 19 * 60_000 + 10_000;
    AccountFiles::new(&layout, "default").set_cooldown(openclaw::agent::runs::unix_ms(), Cooldown { until_ms: until, reason: "loggedOut [401] during login".into() }).unwrap();
    let (_, v) = doctor(dir.path(), &[], &[]);
    let f = finding(&v, "whatsapp.default.cooldown");
    assert_eq!(f["status"], "warn");
    assert!(f["message"].as_str().unwrap().contains("(in 19 min)"), "{f}");
    assert!(fix(&v, "whatsapp.default.cooldown").starts_with("wait until "));

    // Session held by another process (a login, here: this test).
    let lock = SessionLock::try_acquire(&acct).unwrap();
    let (_, v) = doctor(dir.path(), &[], &[]);
    let f = finding(&v, "whatsapp.default.session");
    assert_eq!(f["status"], "fail");
    assert_eq!(fix(&v, "whatsapp.default.session"), format!("let that login finish, or stop it: kill {}", std::process::id()));
    drop(lock);

    // Corrupt creds.
    std::fs::write(acct.join("creds.json"), "{ truncated").unwrap();
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "whatsapp.default.creds")["status"], "fail");
    assert!(finding(&v, "whatsapp.default.creds")["evidence"][0].as_str().unwrap().contains("corrupt"));
}

#[test]
fn issue13_item2_hooks_enabled_but_runs_cannot_be_delivered() {
    let dir = state(json!({
        "hooks": {"enabled": true, "token": "a-hook-token-that-is-long-enough", "path": "/hooks"},
        "channels": {"whatsapp": {"dmPolicy": "pairing"}}
    }));
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "hooks.delivery");
    assert_eq!(f["status"], "fail", "{f}");
    assert!(f["message"].as_str().unwrap().contains("cannot deliver"));
    assert!(fix(&v, "hooks.delivery").starts_with("link and connect WhatsApp first: openclaw channels login"));
    let f = finding(&v, "model.provider");
    assert_eq!(f["status"], "skip");
    assert!(f["message"].as_str().unwrap().contains("no model provider is configured"), "{f}");
}

/// Linked creds but the config no longer declares WhatsApp (seed 000: "web login provider is
/// not available"); then declared only in the state file while a system file is in use; then a
/// running gateway whose session another instance took over (440 replaced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item2_whatsapp_undeclared_state_only_and_replaced() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let dir = state(json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    link(&m, dir.path()).await;
    let port = free_port();
    write_config(dir.path(), &json!({"gateway": {"port": port}}));
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "whatsapp.declared");
    assert_eq!(f["status"], "fail", "{f}");
    assert!(f["message"].as_str().unwrap().contains("web login provider is not available"));
    assert_eq!(fix(&v, "whatsapp.declared"), format!("add channels.whatsapp to {}", dir.path().join("openclaw.json").display()));

    let sys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(sys.path(), format!("{{ gateway: {{ port: {port} }} }}")).unwrap();
    write_config(dir.path(), &json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    let (code, v) = doctor(dir.path(), &["--config", sys.path().to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "whatsapp.declared");
    assert_eq!(f["status"], "fail", "{f}");
    assert!(f["message"].as_str().unwrap().contains("declared only in the state dir's file"), "{f}");
    assert_eq!(
        fix(&v, "whatsapp.declared"),
        format!("add channels.whatsapp to {} (NixOS: services.openclaw.settings.channels.whatsapp = {{ }}; then nixos-rebuild switch)", sys.path().display())
    );

    // A running gateway: linked and connected, then replaced.
    let env = mock_env(&m);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = start(dir.path(), &[], &envs).expect("gateway");
    let t0 = Instant::now();
    loop {
        let (code, v) = doctor(dir.path(), &[], &[]);
        let f = finding(&v, "whatsapp.default.linked");
        if f["message"] == "linked as +15550001234 and connected" {
            assert_eq!(code, 0, "{v:#}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{v:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    m.fault(Fault::StreamError { code: 440 });
    let t0 = Instant::now();
    loop {
        let (code, v) = doctor(dir.path(), &[], &[]);
        let f = finding(&v, "whatsapp.default.linked");
        if f["status"] == "fail" {
            assert!(f["message"].as_str().unwrap().contains("440 replaced"), "{f}");
            assert!(fix(&v, "whatsapp.default.linked").starts_with("stop the other instance"));
            assert_eq!(code, 1);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{v:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(gw);
}

/// A state dir whose provider `local` (key in an `apiKeyFile`) is at `base_url`, with
/// `agents.defaults.model` = `model`; returns the dir and the key file.
fn provider_state(base_url: &str, key: &str, model: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("local.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = state(json!({
        "models": {"providers": {"local": {"baseUrl": base_url, "apiKeyFile": key_file, "api": "openai-completions"}}},
        "agents": {"defaults": {"model": model}}
    }));
    // Keep the key file with the state dir.
    let kept = dir.path().join("local.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let cfg_path = dir.path().join("openclaw.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap().replace(&key_file.display().to_string(), &kept.display().to_string());
    std::fs::write(&cfg_path, cfg).unwrap();
    (dir, kept)
}

#[test]
fn issue13_item2_model_provider_down_fails_with_base_url_fix() {
    let base = format!("http://127.0.0.1:{}/v1", free_port());
    let (dir, _) = provider_state(&base, "sk-down", "local/m1");
    let t0 = Instant::now();
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert!(t0.elapsed() < Duration::from_secs(10), "doctor took {:?}", t0.elapsed());
    assert_eq!(code, 1);
    let f = finding(&v, "model.provider.local");
    assert_eq!(f["status"], "fail", "{f}");
    assert!(f["message"].as_str().unwrap().contains("unreachable"), "{f}");
    assert!(f["evidence"][0].as_str().unwrap().contains(&format!("GET {base}/models failed")), "{f}");
    assert_eq!(
        fix(&v, "model.provider.local"),
        format!("start the provider at {base} (or correct models.providers.local.baseUrl), then `openclaw models status`")
    );
    assert_eq!(finding(&v, "model.default")["status"], "skip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item2_model_provider_rejecting_the_key_names_api_key_file() {
    use axum::http::StatusCode;
    let app = axum::Router::new().fallback(|| async { (StatusCode::UNAUTHORIZED, r#"{"error":{"message":"invalid api key"}}"#) });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let base = format!("http://127.0.0.1:{port}/v1");
    let (dir, key_file) = provider_state(&base, "sk-wrong-key-value", "local/m1");
    let d = dir.path().to_path_buf();
    let (code, v) = tokio::task::spawn_blocking(move || doctor(&d, &[], &[])).await.unwrap();
    assert_eq!(code, 1);
    let f = finding(&v, "model.provider.local");
    assert_eq!(f["status"], "fail", "{f}");
    assert_eq!(f["message"], "model provider local rejects the API key (HTTP 401)");
    assert!(f["evidence"][0].as_str().unwrap().contains("invalid api key"), "{f}");
    let fp = openclaw::config::secrets::fingerprint(b"sk-wrong-key-value");
    assert_eq!(f["evidence"][1], format!("key {fp} from {}", key_file.display()));
    assert_eq!(
        fix(&v, "model.provider.local"),
        format!("write the provider's valid key to {} (named by models.providers.local.apiKeyFile), then `openclaw gateway restart`", key_file.display())
    );
    assert!(!v.to_string().contains("sk-wrong-key-value"), "the key is printed: {v:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item2_model_provider_litellm_ok_and_default_model_listed() {
    let test = "issue13_item2_model_provider_litellm_ok_and_default_model_listed";
    let Some(p) = tokio::task::spawn_blocking(move || litellm::shared(test)).await.unwrap() else { return };
    let base = format!("{}/v1", p.base_url());
    let (dir, _) = provider_state(&base, litellm::MASTER_KEY, "local/mock-gpt");
    let d = dir.path().to_path_buf();
    let (_, v) = tokio::task::spawn_blocking(move || doctor(&d, &[], &[])).await.unwrap();
    assert_eq!(finding(&v, "model.provider.local")["status"], "ok", "{v:#}");
    assert_eq!(finding(&v, "model.default")["status"], "ok", "{v:#}");
    // A default model the proxy does not serve: the fix names it and the listed ones.
    let (dir, _) = provider_state(&base, litellm::MASTER_KEY, "local/gpt-nope");
    let d = dir.path().to_path_buf();
    let (code, v) = tokio::task::spawn_blocking(move || doctor(&d, &[], &[])).await.unwrap();
    assert_eq!(code, 1);
    let f = finding(&v, "model.default");
    assert_eq!(f["status"], "fail", "{f}");
    let fx = fix(&v, "model.default");
    assert!(fx.contains("mock-gpt") && fx.contains("serve model gpt-nope"), "{fx}");
}

/// A damaged `supervisor.json` means an assumed cooldown (fail closed); doctor names it as
/// damaged and stays read-only: the file is neither moved aside nor rewritten.
#[test]
fn issue14_item9_doctor_names_a_corrupt_supervisor_json_and_leaves_it_alone() {
    let dir = state(json!({"channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    let sup_dir = dir.path().join("channels/whatsapp/default");
    std::fs::create_dir_all(&sup_dir).unwrap();
    let sup = sup_dir.join("supervisor.json");
    std::fs::write(&sup, "{\"cooldown\": {\"untilMs\": 18").unwrap();
    let (code, v) = doctor(dir.path(), &[], &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "whatsapp.default.cooldown");
    assert_eq!(f["status"], "warn");
    assert!(f["message"].as_str().unwrap().contains("damaged"), "{f}");
    assert!(f["evidence"][0].as_str().unwrap().contains("is corrupt"), "{f}");
    assert_eq!(std::fs::read_to_string(&sup).unwrap(), "{\"cooldown\": {\"untilMs\": 18", "doctor rewrote supervisor.json");
    let aside: Vec<_> = std::fs::read_dir(&sup_dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains("corrupt-")).collect();
    assert!(aside.is_empty(), "doctor moved the file aside");
}
