//! Secrets scan of the snapshot and `config explain` (issue 14 item 14): provider header values
//! and base-URL user-info never appear in clear; the gateway still gets the real values through
//! the snapshot's secret re-read.

use std::path::Path;
use std::process::Command;

use openclaw::config::Snapshot;

const HEADER_SECRET: &str = "Bearer hdr-7f3a9c1e-secret";
const ENV_HEADER_SECRET: &str = "env-hdr-55aa-secret";
const USERINFO: &str = "alice:pw-91b2-secret";
const BASE_URL: &str = "https://alice:pw-91b2-secret@llm.example.test/v1";

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("system.json5"),
        format!(
            "{{ models: {{ providers: {{\n  remote: {{ baseUrl: {BASE_URL:?}, headers: {{ Authorization: {HEADER_SECRET:?}, \"X-Team\": '${{TEAM_HEADER}}' }} }},\n  local: {{ baseUrl: 'http://127.0.0.1:11434/v1', headers: {{}} }},\n}} }} }}\n"
        ),
    )
    .unwrap();
    dir
}

fn openclaw(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_openclaw"))
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("PATH", "/usr/bin:/bin")
        .env("TEAM_HEADER", ENV_HEADER_SECRET)
        .args(args)
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

fn assert_clean(what: &str, text: &str) {
    for secret in [HEADER_SECRET, "hdr-7f3a9c1e", ENV_HEADER_SECRET, USERINFO, "pw-91b2", "alice:"] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

#[test]
fn issue14_item14_snapshot_and_explain_hide_header_values_and_url_userinfo() {
    let dir = setup();
    let (code, _, err) = openclaw(dir.path(), &["config", "compile", "--config", "system.json5", "--no-state", "--out", "snap.json"]);
    assert_eq!(code, 0, "{err}");
    assert_clean("compile output", &err);
    let text = std::fs::read_to_string(dir.path().join("snap.json")).unwrap();
    assert_clean("the snapshot", &text);
    let snap = Snapshot::load(&dir.path().join("snap.json")).unwrap();
    let fp = |v: &str| openclaw::config::secrets::fingerprint(v.as_bytes());
    assert_eq!(snap.secrets["models.providers.remote.headers.Authorization"].fingerprint.as_deref(), Some(fp(HEADER_SECRET).as_str()));
    assert_eq!(snap.secrets["models.providers.remote.baseUrl"].fingerprint.as_deref(), Some(fp(BASE_URL).as_str()));
    // A base URL without user-info stays a plain setting.
    assert_eq!(snap.config["models"]["providers"]["local"]["baseUrl"], "http://127.0.0.1:11434/v1");
    for key in [
        "models.providers.remote.headers.Authorization",
        "models.providers.remote.headers[\"X-Team\"]",
        "models.providers.remote.headers",
        "models.providers.remote.baseUrl",
        "models.providers.remote",
        "models.providers",
        "models",
    ] {
        for json in [false, true] {
            let mut args = vec!["config", "explain", key, "--config", "system.json5", "--no-state"];
            if json {
                args.push("--json");
            }
            let (code, out, err) = openclaw(dir.path(), &args);
            assert_eq!(code, 0, "{key}: {err}");
            assert_clean(&format!("config explain {key} (json {json})"), &format!("{out}{err}"));
        }
    }
    let (_, out, _) = openclaw(dir.path(), &["config", "explain", "models.providers.remote.headers.Authorization", "--config", "system.json5", "--no-state"]);
    assert!(out.contains(&format!("<secret {}>", fp(HEADER_SECRET))), "{out}");
}

#[test]
fn issue14_item14_the_gateway_still_gets_the_real_values() {
    let dir = setup();
    let (code, _, err) = openclaw(dir.path(), &["config", "compile", "--config", "system.json5", "--no-state", "--out", "snap.json"]);
    assert_eq!(code, 0, "{err}");
    let snap = Snapshot::load(&dir.path().join("snap.json")).unwrap();
    // SAFETY of the test: the variable is set for this process only, before reading it.
    unsafe { std::env::set_var("TEAM_HEADER", ENV_HEADER_SECRET) };
    let headers = snap.provider_headers("remote").unwrap();
    assert_eq!(headers.get("Authorization").map(String::as_str), Some(HEADER_SECRET));
    assert_eq!(headers.get("X-Team").map(String::as_str), Some(ENV_HEADER_SECRET));
    assert_eq!(snap.provider_base_url("remote").unwrap().as_deref(), Some(BASE_URL));
    assert_eq!(snap.provider_base_url("local").unwrap().as_deref(), Some("http://127.0.0.1:11434/v1"));
    assert!(snap.provider_headers("local").unwrap().is_empty());
    // A header changed after compiling is caught, without showing either value.
    std::fs::write(dir.path().join("system.json5"), std::fs::read_to_string(dir.path().join("system.json5")).unwrap().replace("hdr-7f3a9c1e", "hdr-changed0")).unwrap();
    let e = snap.provider_headers("remote").unwrap_err().to_string();
    assert!(e.contains("differs from the compiled snapshot"), "{e}");
    assert!(!e.contains("hdr-"), "{e}");
}

#[test]
fn url_userinfo_detection() {
    use openclaw::config::secrets::url_has_userinfo;
    assert!(url_has_userinfo("https://u:p@h/x"));
    assert!(url_has_userinfo("http://u@h"));
    assert!(!url_has_userinfo("http://h/x@y"));
    assert!(!url_has_userinfo("http://127.0.0.1:11434/v1"));
}
