//! Interop with a client nobody here wrote: the upstream `openclaw` CLI from npm (on Node 26)
//! connects to our gateway over the control protocol and reads health and status.
//!
//! Installed by `scripts/setup-test-peers` into `tests/peers/upstream-cli/`. When it is missing the
//! test prints a loud `SKIPPED:` line on stderr (bypassing the test harness capture).

mod gateway_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use gateway_support::{start, write_config};
use serde_json::{json, Value};

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/upstream-cli")
}

#[path = "support/peer.rs"]
mod peer;

fn skipped(why: &str) {
    peer::missing("upstream openclaw CLI interop", why);
}

/// Runs the upstream CLI with an isolated HOME; returns (exit code, stdout, stderr).
fn upstream(home: &Path, args: &[&str]) -> (i32, String, String) {
    let dir = peer_dir();
    // coreutils `timeout` bounds each run so a stuck peer fails the test instead of hanging CI.
    let out = Command::new("timeout")
        .arg("120")
        .arg(dir.join("n26/node_modules/.bin/node"))
        .arg(dir.join("node_modules/openclaw/openclaw.mjs"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("OPENCLAW_NO_AUTO_UPDATE", "1")
        .env("DO_NOT_TRACK", "1")
        .env("OPENCLAW_DISABLE_BONJOUR", "1")
        .output()
        .expect("run upstream cli");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn client_home(gateway: Value) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let cfg_dir = home.path().join(".openclaw");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    write_config(&cfg_dir, &json!({
        "gateway": gateway,
        "update": {"checkOnStart": false},
        "discovery": {"mdns": {"mode": "off"}},
    }));
    home
}

fn installed() -> bool {
    let d = peer_dir();
    d.join("n26/node_modules/.bin/node").exists() && d.join("node_modules/openclaw/openclaw.mjs").exists()
}

#[test]
fn upstream_cli_connects_with_token_and_reads_health() {
    if !installed() {
        return skipped("tests/peers/upstream-cli is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"token": "interop-token-0123"}}}));
    let gw = start(dir.path(), &[], &[]).expect("start");
    let home = client_home(json!({"mode": "local", "port": gw.port, "auth": {"token": "interop-token-0123"}}));
    let (rc, out, err) = upstream(home.path(), &["health", "--json"]);
    assert_eq!(rc, 0, "stdout: {out}\nstderr: {err}");
    let h: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(h["ok"], true);
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    let (rc, out, err) = upstream(home.path(), &["gateway", "call", "status", "--json"]);
    assert_eq!(rc, 0, "stdout: {out}\nstderr: {err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["pid"], json!(gw.child.id()));
    // Upstream's own `openclaw status` renders our status payload and reports the gateway reachable.
    let (rc, out, err) = upstream(home.path(), &["status"]);
    assert_eq!(rc, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("reachable"), "{out}");
    // With a wrong token the upstream CLI is refused.
    let bad = client_home(json!({"mode": "local", "port": gw.port, "auth": {"token": "wrong"}}));
    let (rc, out, err) = upstream(bad.path(), &["health", "--json"]);
    assert_ne!(rc, 0, "stdout: {out}\nstderr: {err}");
}

#[test]
fn upstream_cli_device_identity_is_verified_and_paired() {
    if !installed() {
        return skipped("tests/peers/upstream-cli is not installed");
    }
    // Without a shared secret the upstream CLI signs the v3 payload with its own Ed25519 key.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({"gateway": {"auth": {"mode": "none"}}}));
    let gw = start(dir.path(), &[], &[]).expect("start");
    let home = client_home(json!({"mode": "local", "port": gw.port, "auth": {"mode": "none"}}));
    // `status` loads-or-creates the CLI's device identity. Its own rendering of our status payload
    // is not asserted; the pairing record proves the handshake.
    let _ = upstream(home.path(), &["status", "--json"]);
    let paired = std::fs::read_to_string(dir.path().join("devices/paired.json")).expect("a device was paired");
    let v: Value = serde_json::from_str(&paired).unwrap();
    let dev = &v["devices"][0];
    assert_eq!(dev["approvedVia"], "auto-local", "{v}");
    assert_eq!(dev["deviceId"].as_str().unwrap().len(), 64);
    assert!(dev["tokenSha256"].is_string(), "a device token was issued in hello-ok: {v}");
}
