//! `openclaw doctor [--fix]` and upstream OpenClaw's legacy WhatsApp credentials (issue 13 item
//! 2): Baileys auth files directly in `<state>/credentials/` (upstream's old layout) and an
//! account directory in Baileys' format. `doctor` reports each (read-only, exit 1), `--fix`
//! copies, verifies and moves the old files aside (never deletes), refuses while another
//! process holds the session, and the gateway then connects with the migrated credentials.

mod gateway_support;
#[path = "support/scan_login.rs"]
mod scan_login;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use gateway_support::{cmd, http, start, write_config};
use openclaw::channels::whatsapp::creds::CredsStore;
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::channels::whatsapp::supervisor::session_lock::SessionLock;
use openclaw::store::StateLayout;
use serde_json::{Value, json};

const JID: &str = "15550001234:7@s.whatsapp.net";

fn mock_env(m: &MockServer) -> [(&'static str, String); 2] {
    [("OPENCLAW_WA_TEST_SERVER", m.url()), ("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()))]
}

fn doctor(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let out = cmd().args(["doctor", "--json", "--state-dir"]).arg(dir).args(extra).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {} / {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn finding<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    v["findings"].as_array().unwrap().iter().find(|f| f["id"] == id)
}

/// A state dir with WhatsApp declared and an account linked (by the CLI, with the mock phone).
async fn linked_state(m: &MockServer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    write_config(dir.path(), &json!({"gateway": {"port": port}, "channels": {"whatsapp": {"dmPolicy": "pairing"}}}));
    let mut c = cmd();
    c.args(["channels", "login", "--json", "--state-dir"]).arg(dir.path()).stderr(Stdio::null());
    for (k, v) in mock_env(m) {
        c.env(k, v);
    }
    let (status, lines) = scan_login::run_scanning(m, c).await;
    assert!(status.success(), "{lines:?}");
    dir
}

/// Binary fields Baileys writes as `{"type":"Buffer","data":"<base64>"}`.
const BUFFER_FIELDS: &[&str] = &[
    "private", "public", "signature", "advSecretKey", "details", "accountSignatureKey", "accountSignature", "deviceSignature", "routingInfo",
];

fn buffers(v: &mut Value) {
    if let Value::Object(m) = v {
        for (k, x) in m.iter_mut() {
            if BUFFER_FIELDS.contains(&k.as_str()) && x.is_string() {
                *x = json!({"type": "Buffer", "data": x.take()});
            } else {
                buffers(x);
            }
        }
    }
}

/// Writes the account's credentials (our `creds.json` + `pre-keys.json` in `from`) as a Baileys
/// auth folder (`useMultiFileAuthState`) into `to`: returns the Baileys `creds.json` bytes.
fn write_baileys(from: &Path, to: &Path) -> Vec<u8> {
    let mut creds: Value = serde_json::from_slice(&std::fs::read(from.join("creds.json")).unwrap()).unwrap();
    let prekeys: Value = serde_json::from_slice(&std::fs::read(from.join("pre-keys.json")).unwrap()).unwrap();
    let o = creds.as_object_mut().unwrap();
    o.remove("version");
    o.insert("registered".into(), json!(true));
    o.insert("processedHistoryMessages".into(), json!([]));
    o.insert("accountSyncCounter".into(), json!(0));
    buffers(&mut creds);
    std::fs::create_dir_all(to).unwrap();
    let bytes = serde_json::to_vec(&creds).unwrap();
    std::fs::write(to.join("creds.json"), &bytes).unwrap();
    for (id, kp) in prekeys.as_object().unwrap() {
        let mut kp = kp.clone();
        buffers(&mut kp);
        std::fs::write(to.join(format!("pre-key-{id}.json")), serde_json::to_vec(&kp).unwrap()).unwrap();
    }
    std::fs::write(to.join("app-state-sync-key-AAAAAAAA.json"), br#"{"keyData":"AAAA","fingerprint":{},"timestamp":0}"#).unwrap();
    bytes
}

fn folders(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).map(|e| e.path()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item2_legacy_flat_layout_is_reported_migrated_and_the_gateway_connects_with_it() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let dir = linked_state(&m).await;
    let layout = StateLayout::new(dir.path());
    let account = layout.whatsapp_account_dir("default");
    let prekeys_before = CredsStore::in_dir(account.clone()).load_prekeys().unwrap().len();
    // Upstream's old layout: the Baileys files directly in <state>/credentials/ (next to the
    // upstream-only oauth.json, which stays), no account directory.
    let creds_dir = layout.credentials_dir();
    let original = write_baileys(&account, &creds_dir);
    std::fs::write(creds_dir.join("oauth.json"), b"{}").unwrap();
    std::fs::remove_dir_all(creds_dir.join("whatsapp")).unwrap();

    let (code, v) = doctor(dir.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let f = finding(&v, "whatsapp.default.legacy-creds").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(f["status"], "fail");
    assert_eq!(f["autoFixable"], true);
    assert!(f["message"].as_str().unwrap().contains("upstream's old layout"), "{f}");
    assert!(f["fix"].as_str().unwrap().starts_with("openclaw doctor --fix"), "{f}");
    assert!(f["evidence"].to_string().contains(&format!("linked as {JID}")), "{f}");
    assert!(finding(&v, "whatsapp.default.linked").is_none(), "no \"link again\" advice for a session that can be kept: {v:#}");
    assert!(creds_dir.join("creds.json").is_file(), "doctor without --fix changes nothing");

    let (_, v) = doctor(dir.path(), &["--fix"]);
    let repairs = v["repairs"].as_array().unwrap();
    let r = repairs.iter().find(|r| r["action"].as_str().unwrap().contains("legacy WhatsApp credentials")).unwrap_or_else(|| panic!("{v:#}"));
    assert!(r["error"].is_null(), "{r}");
    assert!(finding(&v, "whatsapp.default.legacy-creds").is_none(), "{v:#}");
    // Moved aside, never deleted: the flat files and the Baileys originals are both kept.
    assert!(!creds_dir.join("creds.json").exists());
    assert!(creds_dir.join("oauth.json").is_file(), "not a WhatsApp auth file: left alone");
    let flat = folders(&creds_dir, "legacy-flat-");
    assert_eq!(flat.len(), 1);
    assert_eq!(std::fs::read(flat[0].join("creds.json")).unwrap(), original);
    assert!(flat[0].join("app-state-sync-key-AAAAAAAA.json").is_file());
    let baileys = folders(&account, "legacy-baileys-");
    assert_eq!(std::fs::read(baileys[0].join("creds.json")).unwrap(), original);
    // Our format now, same identity and prekeys.
    let store = CredsStore::in_dir(account.clone());
    let c = store.load().unwrap().expect("creds.json");
    assert_eq!(c.me.as_ref().map(|m| m.id.as_str()), Some(JID));
    assert_eq!(store.load_prekeys().unwrap().len(), prekeys_before);
    assert!(folders(&account, ".migrate-").is_empty(), "no staging folder left");

    // The gateway connects with the migrated credentials: the link survived.
    let env = mock_env(&m);
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = start(dir.path(), &[], &envs).expect("gateway");
    let t0 = Instant::now();
    loop {
        let h = http(gw.port, "GET", "/health", &[], b"").json();
        if h["whatsapp"]["connected"] == true {
            assert_eq!(h["whatsapp"]["phone"], "+15550001234", "{h}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "{h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_item2_baileys_format_account_dir_is_refused_while_the_session_is_held_then_migrated() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let dir = linked_state(&m).await;
    let layout = StateLayout::new(dir.path());
    let account = layout.whatsapp_account_dir("default");
    // An account directory upstream wrote (Baileys' format in place of ours).
    let ours = tempfile::tempdir().unwrap();
    for n in ["creds.json", "pre-keys.json"] {
        std::fs::rename(account.join(n), ours.path().join(n)).unwrap();
    }
    let _ = std::fs::remove_file(account.join("creds.json.bak"));
    let original = write_baileys(ours.path(), &account);

    let (code, v) = doctor(dir.path(), &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "whatsapp.default.legacy-creds").unwrap_or_else(|| panic!("{v:#}"));
    assert!(f["message"].as_str().unwrap().contains("Baileys format"), "{f}");
    assert!(finding(&v, "whatsapp.default.creds").is_none(), "not reported as corrupt: {v:#}");

    // Refused while another process holds the session; nothing changes.
    let held = SessionLock::try_acquire(&account).unwrap();
    let (code, v) = doctor(dir.path(), &["--fix"]);
    assert_eq!(code, 1);
    let r = v["repairs"].as_array().unwrap().iter().find(|r| r["action"].as_str().unwrap().contains("legacy")).unwrap().clone();
    let err = r["error"].as_str().expect("refused");
    assert!(err.contains(&format!("(pid {})", std::process::id())) && err.contains("nothing was changed"), "{err}");
    assert_eq!(std::fs::read(account.join("creds.json")).unwrap(), original);
    assert!(folders(&account, "legacy-baileys-").is_empty() && folders(&account, ".migrate-").is_empty());
    drop(held);

    let (_, v) = doctor(dir.path(), &["--fix"]);
    assert!(finding(&v, "whatsapp.default.legacy-creds").is_none(), "{v:#}");
    let f = finding(&v, "whatsapp.default.linked").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(f["status"], "ok", "{f}");
    let c = CredsStore::in_dir(account.clone()).load().unwrap().expect("creds.json");
    assert_eq!(c.me.map(|m| m.id), Some(JID.to_string()));
    let kept = folders(&account, "legacy-baileys-");
    assert_eq!(std::fs::read(kept[0].join("creds.json")).unwrap(), original);
    assert!(kept[0].join("pre-key-1.json").is_file());
}
