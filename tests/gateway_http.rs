//! The real binary on an ephemeral loopback port: HTTP surface, hooks status codes, token rules,
//! lock and port refusals, SIGTERM.

mod gateway_support;

use std::os::unix::fs::PermissionsExt;

use gateway_support::{http, start, write_config, Gw};
use serde_json::json;

const GW_TOKEN: &str = "gw-token-0123456789";
const HOOK_TOKEN: &str = "hook-token-abcdef";

fn hooks_gateway() -> (tempfile::TempDir, Gw) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({
        "gateway": {"mode": "local", "auth": {"mode": "token", "token": GW_TOKEN}},
        "hooks": {"enabled": true, "token": HOOK_TOKEN, "path": "/hooks"}
    }));
    let gw = start(dir.path(), &[], &[]).expect("start");
    (dir, gw)
}

fn post(gw: &Gw, path: &str, headers: &[(&str, &str)], body: &str) -> gateway_support::Resp {
    http(gw.port, "POST", path, headers, body.as_bytes())
}

const BEARER: (&str, &str) = ("Authorization", "Bearer hook-token-abcdef");

#[test]
fn health_ready_ui_and_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &[], &[]).expect("start");
    let h = http(gw.port, "GET", "/health", &[], b"");
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["status"], "live");
    assert!(v["uptimeMs"].is_u64() && v["version"].is_string() && v["channels"].is_array(), "{v}");
    assert!(!h.body.contains(std::fs::read_to_string(dir.path().join("credentials/gateway-token")).unwrap().trim()));
    assert_eq!(h.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(h.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(h.header("cache-control"), Some("no-store"));
    let r = http(gw.port, "GET", "/ready", &[], b"");
    assert_eq!((r.status, r.json()["ready"].clone()), (200, json!(true)));
    let ui = http(gw.port, "GET", "/", &[], b"");
    assert_eq!(ui.status, 200);
    assert!(ui.header("content-type").unwrap().starts_with("text/html"));
    assert!(ui.body.contains("data-openclaw-control-ui-base-path"));
    assert_eq!(ui.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(http(gw.port, "GET", "/nope", &[], b"").status, 404);
    // Hooks are off by default: the path does not exist.
    assert_eq!(post(&gw, "/hooks/agent", &[BEARER], r#"{"message":"x"}"#).status, 404);
    // Banner: listening line and the dashboard without the token (stdout is not a terminal).
    assert!(gw.stdout[0].contains(&format!("127.0.0.1:{}", gw.port)), "{:?}", gw.stdout);
    assert!(gw.stdout[1].starts_with("Dashboard: http://127.0.0.1:") && !gw.stdout[1].contains("#token="), "{:?}", gw.stdout);
}

#[test]
fn websocket_upgrade_from_foreign_origin_is_403() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &[], &[]).expect("start");
    let up = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let mut evil = up.to_vec();
    evil.push(("Origin", "https://evil.example"));
    assert_eq!(http(gw.port, "GET", "/", &evil, b"").status, 403);
    let mut local = up.to_vec();
    let origin = format!("http://127.0.0.1:{}", gw.port);
    local.push(("Origin", &origin));
    assert_eq!(http(gw.port, "GET", "/", &local, b"").status, 101);
}

#[test]
fn hooks_status_codes_match_upstream() {
    let (_d, gw) = hooks_gateway();
    // 401: none, wrong bearer, wrong x-openclaw-token.
    let r = post(&gw, "/hooks/agent", &[], r#"{"message":"hi"}"#);
    assert_eq!((r.status, r.body.as_str()), (401, "Unauthorized"));
    assert_eq!(post(&gw, "/hooks/agent", &[("Authorization", "Bearer nope")], r#"{"message":"hi"}"#).status, 401);
    assert_eq!(post(&gw, "/hooks/agent", &[("x-openclaw-token", "nope")], r#"{"message":"hi"}"#).status, 401);
    // The gateway token is not the hooks token.
    assert_eq!(post(&gw, "/hooks/agent", &[("Authorization", "Bearer gw-token-0123456789")], r#"{"message":"hi"}"#).status, 401);
    // 400: token in the query string, even with a valid header.
    let r = post(&gw, "/hooks/agent?token=hook-token-abcdef", &[BEARER], r#"{"message":"hi"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.body, "Hook token must be provided via Authorization: Bearer <token> or X-OpenClaw-Token header (query parameters are not allowed).");
    // 405 on GET.
    let r = http(gw.port, "GET", "/hooks/agent", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    // 400 JSON: missing message, malformed JSON.
    for body in ["{}", r#"{"message":""}"#] {
        let r = post(&gw, "/hooks/agent", &[BEARER], body);
        assert_eq!((r.status, r.json()), (400, json!({"ok": false, "error": "message required"})));
    }
    let r = post(&gw, "/hooks/agent", &[BEARER], "{bad");
    assert_eq!(r.status, 400);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(r.json()["ok"], false);
    // 200 with a runId, via Bearer and via x-openclaw-token without a Content-Type.
    let r = post(&gw, "/hooks/agent", &[BEARER, ("Content-Type", "application/json")], r#"{"message":"hello","deliver":false}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let run_id = r.json()["runId"].as_str().unwrap().to_string();
    assert_eq!(r.json()["ok"], true);
    let r = post(&gw, "/hooks/agent", &[("x-openclaw-token", HOOK_TOKEN)], r#"{"message":"hello","deliver":false}"#);
    assert_eq!(r.status, 200);
    // The run is recorded and, with no provider, fails loudly.
    let mut state = json!(null);
    for _ in 0..200 {
        let r = http(gw.port, "GET", &format!("/hooks/runs/{run_id}"), &[BEARER], b"");
        assert_eq!(r.status, 200);
        state = r.json()["run"].clone();
        if state["state"] == "failed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(state["state"], "failed", "{state}");
    assert!(state["error"].as_str().unwrap().contains("no LLM provider"), "{state}");
    let r = http(gw.port, "GET", "/hooks/runs/00000000-0000-0000-0000-000000000000", &[BEARER], b"");
    assert_eq!((r.status, r.json()["ok"].clone()), (404, json!(false)));
    // Idempotency-Key replays return the first runId (header, then payload key).
    let a = post(&gw, "/hooks/agent", &[BEARER, ("Idempotency-Key", "k-1")], r#"{"message":"once","deliver":false}"#).json();
    let b = post(&gw, "/hooks/agent", &[BEARER, ("Idempotency-Key", "k-1")], r#"{"message":"once","deliver":false}"#).json();
    assert_eq!(a["runId"], b["runId"]);
    let c = post(&gw, "/hooks/agent", &[BEARER], r#"{"message":"once","deliver":false,"idempotencyKey":"k-2"}"#).json();
    let d = post(&gw, "/hooks/agent", &[BEARER], r#"{"message":"once","deliver":false,"idempotencyKey":"k-2"}"#).json();
    assert_eq!(c["runId"], d["runId"]);
    assert_ne!(a["runId"], c["runId"]);
    // 422 (issue 11 item 4): delivering (explicitly or by default) with nowhere to deliver, or
    // to a channel that is not configured; the reason and the hint, and no run.
    for body in [r#"{"message":"x","deliver":true}"#, r#"{"message":"x"}"#] {
        let r = post(&gw, "/hooks/agent", &[BEARER], body);
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains("has no last route"), "{}", r.body);
        assert_eq!(r.json()["hint"], "set channel and to, or deliver: false");
        assert!(r.json().get("runId").is_none());
    }
    let r = post(&gw, "/hooks/agent", &[BEARER], r#"{"message":"x","deliver":true,"channel":"whatsapp","to":"+15550001"}"#);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("not configured"), "{}", r.body);
    // Wake.
    let r = post(&gw, "/hooks/wake", &[BEARER], r#"{"text":"ping","mode":"now"}"#);
    assert_eq!(r.status, 200);
    assert_eq!((r.json()["mode"].clone(), r.json()["eventOutcome"].clone()), (json!("now"), json!("queued")));
    let r = post(&gw, "/hooks/wake", &[BEARER], "{}");
    assert_eq!((r.status, r.json()), (400, json!({"ok": false, "error": "text required"})));
    // 404: unknown mapping and bare path.
    assert_eq!(post(&gw, "/hooks/foo", &[BEARER], "{}").status, 404);
    assert_eq!(post(&gw, "/hooks", &[BEARER], "{}").status, 404);
    // 413: over 262144 bytes; 255 KB is fine.
    let big = format!(r#"{{"message":"{}"}}"#, "a".repeat(300 * 1024));
    let r = post(&gw, "/hooks/agent", &[BEARER], &big);
    assert_eq!((r.status, r.json()), (413, json!({"ok": false, "error": "payload too large"})));
    let ok = format!(r#"{{"message":"{}","deliver":false}}"#, "a".repeat(255 * 1024));
    assert_eq!(post(&gw, "/hooks/agent", &[BEARER], &ok).status, 200);
}

#[test]
fn hooks_throttle_after_twenty_failures() {
    let (_d, gw) = hooks_gateway();
    for i in 0..20 {
        assert_eq!(post(&gw, "/hooks/agent", &[("Authorization", "Bearer bad")], "{}").status, 401, "attempt {i}");
    }
    let r = post(&gw, "/hooks/agent", &[("Authorization", "Bearer bad")], "{}");
    assert_eq!((r.status, r.body.as_str()), (429, "Too Many Requests"));
    assert_eq!(r.header("retry-after"), Some("60"));
    // While throttled even a valid token is refused (issue 14 item 6).
    assert_eq!(post(&gw, "/hooks/agent", &[BEARER], r#"{"message":"x"}"#).status, 429);
}

#[test]
fn restart_keeps_generated_token_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), &[], &[]).expect("start");
    let tok_file = dir.path().join("credentials/gateway-token");
    let first = std::fs::read_to_string(&tok_file).unwrap();
    assert_eq!(std::fs::metadata(&tok_file).unwrap().permissions().mode() & 0o777, 0o600);
    let status = gw.sigterm();
    assert_eq!(status.code(), Some(0));
    assert!(!dir.path().join("gateway.json").exists(), "runtime file removed on clean exit");
    let mut gw = start(dir.path(), &[], &[]).expect("restart");
    assert_eq!(std::fs::read_to_string(&tok_file).unwrap(), first, "a restart never changes the token");
    // The CLI reaches it with the same token from the state dir.
    let (code, out, err) = gateway_support::cli(&["status", "--json", "--state-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(first.trim()), "status never prints the token");
    assert_eq!(gw.sigterm().code(), Some(0));
}

fn refused(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let f = start(dir, args, envs).err().expect("must refuse to start");
    (f.code.unwrap_or(-1), f.stderr)
}

#[test]
fn disagreeing_token_sources_refuse_with_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": "config-secret-1"}}}));
    let (code, err) = refused(dir.path(), &[], &[("OPENCLAW_GATEWAY_TOKEN", "env-secret-2")]);
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("gateway.auth.token in") && err.contains("OPENCLAW_GATEWAY_TOKEN = sha256:"), "{err}");
    assert!(!err.contains("config-secret-1") && !err.contains("env-secret-2"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    // Flag vs config too; agreeing sources start.
    assert_eq!(refused(dir.path(), &["--token", "flag-secret"], &[]).0, 10);
    assert!(start(dir.path(), &["--token", "config-secret-1"], &[("OPENCLAW_GATEWAY_TOKEN", "config-secret-1")]).is_ok());
}

/// Compiles the state dir's config into `<dir>/snapshot.json` with the real binary.
fn compile_snapshot(dir: &std::path::Path) -> std::path::PathBuf {
    let snap = dir.join("snapshot.json");
    let out = gateway_support::cmd()
        .args(["config", "compile", "--state-dir"])
        .arg(dir)
        .arg("--out")
        .arg(&snap)
        .output()
        .expect("run config compile");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    snap
}

#[test]
fn config_layers_that_disagree_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": "state-layer-secret"}}}));
    let sys = tempfile::tempdir().unwrap();
    write_config(sys.path(), &json!({"gateway": {"auth": {"token": "system-layer-secret"}}}));
    let sys_file = sys.path().join("openclaw.json");
    let (code, err) = refused(dir.path(), &["--config", sys_file.to_str().unwrap()], &[]);
    // The config compiler sees both layers: a config error naming both, by fingerprint.
    assert_eq!(code, 78, "{err}");
    let fp = |t: &[u8]| openclaw::config::secrets::fingerprint(t);
    assert!(err.contains("gateway.auth.token differs between the state file"), "{err}");
    assert!(err.contains(&fp(b"state-layer-secret")) && err.contains(&fp(b"system-layer-secret")), "{err}");
    assert!(!err.contains("layer-secret"), "{err}");
}

#[test]
fn insecure_token_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    std::fs::write(&tf, "file-secret\n").unwrap();
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"tokenFile": tf}}}));
    // Compiling in-process, the config compiler refuses it with the key's position (EX_CONFIG).
    let (code, err) = refused(dir.path(), &[], &[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("openclaw.json:") && err.contains("readable by group or others") && err.contains("LoadCredential"), "{err}");
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let gw = start(dir.path(), &[], &[]).expect("0600 token file accepted");
    drop(gw);
    // From a snapshot, the gateway re-checks the file at startup: opened up since, it is refused.
    let snap = compile_snapshot(dir.path());
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, err) = refused(dir.path(), &["--snapshot", snap.to_str().unwrap()], &[]);
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("readable by group or others") && err.contains("LoadCredential"), "{err}");
    // An inline token in a world-readable config file is refused too.
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": "inline"}}}));
    std::fs::set_permissions(dir.path().join("openclaw.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(refused(dir.path(), &[], &[]).0, 11);
}

#[test]
fn snapshot_fingerprint_remote_token_and_bind_rules() {
    let dir = tempfile::tempdir().unwrap();
    // A token changed after the snapshot was compiled: the snapshot's fingerprint no longer matches.
    let tf = dir.path().join("token");
    std::fs::write(&tf, "compiled-token\n").unwrap();
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"tokenFile": tf}}}));
    let snap = compile_snapshot(dir.path());
    std::fs::write(&tf, "rotated-token\n").unwrap();
    let (code, err) = refused(dir.path(), &["--snapshot", snap.to_str().unwrap()], &[]);
    assert_eq!(code, 14, "{err}");
    let fp = openclaw::config::secrets::fingerprint(b"compiled-token");
    assert!(err.contains(&format!("does not match the snapshot ({fp})")), "{err}");
    assert!(!err.contains("rotated-token") && !err.contains("compiled-token"), "{err}");
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": "t1"}, "remote": {"url": "ws://127.0.0.1:18789", "token": "t2"}}}));
    assert_eq!(refused(dir.path(), &["--port", "18789"], &[]).0, 15);
    // Rules the config compiler knows are refused before any token check, with positions.
    write_config(dir.path(), &json!({"gateway": {"bind": "lan", "auth": {"mode": "none"}}}));
    let (code, err) = refused(dir.path(), &[], &[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("no authentication"), "{err}");
    // A flag that widens the bind is checked by the gateway itself.
    write_config(dir.path(), &json!({"gateway": {"auth": {"mode": "none"}}}));
    let (code, err) = refused(dir.path(), &["--bind", "lan"], &[]);
    assert_eq!(code, 16, "{err}");
    assert!(err.contains("without auth"), "{err}");
    write_config(dir.path(), &json!({"hooks": {"enabled": true}}));
    let (code, err) = refused(dir.path(), &[], &[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("hooks.enabled needs a hooks token"), "{err}");
    std::fs::write(dir.path().join("openclaw.json"), "{not json").unwrap();
    let (code, err) = refused(dir.path(), &[], &[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("openclaw.json:1:6: error: invalid JSON5"), "{err}");
}

#[test]
fn one_gateway_per_state_dir_and_port_in_use_names_holder() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), &[], &[]).expect("start");
    let (code, err) = refused(dir.path(), &[], &[]);
    assert_eq!(code, 20, "{err}");
    assert!(err.contains(&format!("pid {}", gw.child.id())), "{err}");
    let other = tempfile::tempdir().unwrap();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let f = start(other.path(), &["--port", &port], &[]).err().expect("port in use");
    assert_eq!(f.code, Some(22), "{}", f.stderr);
    assert!(f.stderr.contains(&format!("by pid {}", std::process::id())), "{}", f.stderr);
}

#[test]
fn sd_notify_ready_and_stopping_json_logs_and_drain() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"hooks": {"enabled": true, "token": HOOK_TOKEN}}));
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut gw = start(dir.path(), &[], &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]).expect("start");
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.contains("READY=1"), "{msg}");
    // A request in flight when SIGTERM arrives still completes.
    let body = r#"{"message":"in flight","deliver":false}"#;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    write!(s, "POST /hooks/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {HOOK_TOKEN}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}", body.len(), &body[..5]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let _ = std::process::Command::new("kill").arg("-TERM").arg(gw.child.id().to_string()).status();
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    s.write_all(body[5..].as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(gw.sigterm().code(), Some(0));
    // Logs are JSON lines when stderr is not a terminal; each run logs its runId; no secrets.
    let logs = gw.stderr();
    assert!(logs.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{logs}");
    let run_id = resp.split("\"runId\":\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(logs.lines().any(|l| l.contains(run_id) && l.contains("run failed") && l.contains("no LLM provider")), "{logs}");
    assert!(!logs.contains(HOOK_TOKEN));
    assert!(logs.contains("shutdown completed cleanly"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_starting_or_draining() {
    use openclaw::gateway::state::Phase;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = openclaw::gateway::GatewaySettings::new(openclaw::store::StateLayout::new(dir.path()));
    settings.port = 0;
    let prepared = openclaw::gateway::prepare(
        settings,
        openclaw::gateway::logbuf::LogBuffer::new(),
        openclaw::channels::status::ChannelStatusHandle::new(),
    )
    .unwrap();
    let st = prepared.state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = openclaw::gateway::server::router(st.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let get = move |path: &'static str| tokio::task::spawn_blocking(move || http(port, "GET", path, &[], b""));
    assert_eq!(st.phase(), Phase::Starting);
    let r = get("/ready").await.unwrap();
    assert_eq!((r.status, r.json()["failing"].clone()), (503, json!(["starting"])));
    st.set_phase(Phase::Ready);
    assert_eq!(get("/readyz").await.unwrap().status, 200);
    st.set_phase(Phase::Draining);
    let r = get("/ready").await.unwrap();
    assert_eq!((r.status, r.json()["failing"].clone()), (503, json!(["draining"])));
    assert_eq!(get("/health").await.unwrap().json()["status"], "draining");
}

#[test]
fn newcomer_defaults_home_state_dir_and_port_18789() {
    // `openclaw gateway` with no flags and no config: state in ~/.openclaw, 127.0.0.1:18789.
    let home = tempfile::tempdir().unwrap();
    let mut child = gateway_support::cmd()
        .arg("gateway")
        .env("HOME", home.path())
        .env_remove("OPENCLAW_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let state = home.path().join(".openclaw");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            // Someone else on this machine holds 18789: then the refusal must say so.
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(status.code(), Some(22), "{err}");
            assert!(err.contains("port 18789 on 127.0.0.1 is already in use"), "{err}");
            return;
        }
        if let Ok(t) = std::fs::read_to_string(state.join("gateway.json")) {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            assert_eq!((v["host"].as_str(), v["port"].as_u64()), (Some("127.0.0.1"), Some(18789)));
            assert!(state.join("credentials/gateway-token").exists());
            assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
            let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("Dashboard: http://127.0.0.1:18789/"), "{stdout}");
            assert!(stdout.contains("ssh -N -L 18789:127.0.0.1:18789"), "{stdout}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
