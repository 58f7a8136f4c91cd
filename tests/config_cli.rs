//! `openclaw config compile / explain / schema` through the real binary, and the snapshot's
//! secret handling.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use openclaw::config::Snapshot;

fn openclaw(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openclaw"))
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("PATH", "/usr/bin:/bin")
        .args(args)
        .output()
        .expect("run openclaw")
}

/// A system file, a state file and a private token file.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("gateway-token");
    std::fs::write(&token, "correct-horse-battery\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("system.json5"),
        format!(
            "{{\n  gateway: {{ port: 18789, auth: {{ tokenFile: {:?} }} }},\n  hooks: {{ enabled: true, token: 'hooks-secret-value' }},\n}}\n",
            token.display()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/openclaw.json"), "{ gateway: { port: 3000, bind: 'loopback' } }\n").unwrap();
    dir
}

#[test]
fn compile_writes_a_private_snapshot_without_secret_values() {
    let dir = setup();
    let out = openclaw(dir.path(), &["config", "compile", "--config", "system.json5", "--state-dir", "state", "--out", "run/snap.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snap_path = dir.path().join("run/snap.json");
    let mode = std::fs::metadata(&snap_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&snap_path).unwrap();
    assert!(!text.contains("correct-horse-battery"), "the token value leaked into the snapshot");
    assert!(!text.contains("hooks-secret-value"), "the hooks token leaked into the snapshot");
    let snap = Snapshot::load(&snap_path).unwrap();
    assert_eq!(snap.config["gateway"]["port"], 18789);
    assert_eq!(snap.config["gateway"]["bind"], "loopback");
    assert_eq!(snap.sources.len(), 2);
    assert_eq!(snap.sources[0].sha256.len(), 64);
    let port = &snap.provenance["gateway.port"];
    assert_eq!((port.at.line, port.at.column), (2, 14));
    assert_eq!(port.shadowed.len(), 1, "the state's port is recorded as shadowed");
    assert_eq!(snap.warnings.len(), 1);
    // Secrets: fingerprints only, and the gateway can re-read them from their source.
    let gw = &snap.secrets["gateway.auth.token"];
    assert_eq!(gw.fingerprint.as_deref(), Some(openclaw::config::secrets::fingerprint(b"correct-horse-battery").as_str()));
    assert_eq!(snap.resolve_secret("gateway.auth.token").unwrap(), "correct-horse-battery");
    assert_eq!(snap.resolve_secret("hooks.token").unwrap(), "hooks-secret-value");
    // A token changed after compiling is caught.
    std::fs::write(dir.path().join("gateway-token"), "another").unwrap();
    let err = snap.resolve_secret("gateway.auth.token").unwrap_err().to_string();
    assert!(err.contains("differs from the compiled snapshot"), "{err}");
    assert!(!err.contains("another"), "the error shows the secret: {err}");
}

#[test]
fn compile_refuses_an_invalid_config_and_writes_nothing() {
    let dir = setup();
    std::fs::write(dir.path().join("bad.json5"), "{ gateway: { prot: 1 } }").unwrap();
    let out = openclaw(dir.path(), &["config", "compile", "--config", "bad.json5", "--no-state", "--out", "snap.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.json5:1:14: error: unknown key \"prot\" in gateway [gateway.prot]"), "{stderr}");
    assert!(!dir.path().join("snap.json").exists());
}

#[test]
fn explain_shows_origin_shadowing_and_defaults() {
    let dir = setup();
    let base = ["--config", "system.json5", "--state-dir", "state"];
    let run = |key: &str| {
        let mut args = vec!["config", "explain", key];
        args.extend(base);
        let o = openclaw(dir.path(), &args);
        let prefix = format!("{}/", dir.path().display());
        let text = |b: &[u8]| String::from_utf8_lossy(b).replace(&prefix, "");
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    let (code, out, _) = run("gateway.port");
    assert_eq!(code, Some(0));
    assert_eq!(out, "gateway.port = 18789\n  set in system system.json5:2:14\n  shadows state state/openclaw.json:1:14\n");
    let (_, out, _) = run("gateway.bind");
    assert_eq!(out, "gateway.bind = \"loopback\"\n  set in state state/openclaw.json:1:26\n");
    let (_, out, _) = run("hooks.maxBodyBytes");
    assert_eq!(out, "hooks.maxBodyBytes = 262144\n  default (not set in any file)\n");
    let (_, out, _) = run("hooks.token");
    assert!(out.starts_with("hooks.token = \"<secret sha256:"), "{out}");
    assert!(!out.contains("hooks-secret-value"));
    let (code, _, err) = run("gateway.prot");
    assert_eq!(code, Some(1));
    assert!(err.contains("gateway.prot is not a setting (did you mean gateway.port?)"), "{err}");
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = openclaw(dir.path(), &["config", "schema"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/openclaw.schema.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn check_json_reports_unreadable_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = openclaw(dir.path(), &["config", "check", "--config", "missing.json5", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "unreadable");
}
