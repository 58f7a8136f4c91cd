//! `openclaw channels login/logout --channel whatsapp --json` against the mock server (issue 4),
//! through the real binary and the `OPENCLAW_WA_TEST_SERVER` / `OPENCLAW_WA_TEST_ROOT_KEY` seam of
//! the `wa-mock` feature.

#[path = "support/scan_login.rs"]
mod scan_login;

use std::process::Command;

use openclaw::channels::whatsapp::mock::{Fault, MockOptions, MockServer};
use serde_json::Value;

/// Declares the WhatsApp channel in the state dir's config (login refuses an undeclared one).
fn declare_whatsapp(state: &std::path::Path) {
    std::fs::write(state.join("openclaw.json"), "{ channels: { whatsapp: { dmPolicy: 'pairing' } } }\n").unwrap();
}

/// Runs the CLI, scanning every QR it prints with the mock phone. Returns (success, JSON lines).
async fn cli(m: &MockServer, state: &std::path::Path, args: &[&str]) -> (bool, Vec<Value>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openclaw"));
    cmd.env_remove("OPENCLAW_CONFIG_PATH")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env("OPENCLAW_WA_TEST_SERVER", m.url())
        .env("OPENCLAW_WA_TEST_ROOT_KEY", hex::encode(m.root_key()));
    let (status, lines) = scan_login::run_scanning(m, cmd).await;
    (status.success(), lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_login_json_links_logs_in_again_and_logout_unlinks() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    declare_whatsapp(dir.path());
    let login = ["channels", "login", "--channel", "whatsapp", "--json"];

    let (ok, lines) = cli(&m, dir.path(), &login).await;
    assert!(ok, "{lines:?}");
    assert_eq!(lines[0]["event"], "qr");
    assert_eq!(lines[0]["expiresInMs"], 60_000);
    assert_eq!(
        lines.last().unwrap(),
        &serde_json::json!({"event": "linked", "jid": "15550001234:7@s.whatsapp.net"})
    );
    assert!(
        dir.path()
            .join("credentials/whatsapp/default/creds.json")
            .exists()
    );

    // Again: saved creds, no QR.
    let (ok, lines) = cli(&m, dir.path(), &login).await;
    assert!(ok);
    assert_eq!(
        lines,
        vec![serde_json::json!({"event": "linked", "jid": "15550001234:7@s.whatsapp.net"})]
    );
    assert_eq!(m.state()["lastClientPayload"], "login");

    let (ok, lines) = cli(
        &m,
        dir.path(),
        &["channels", "logout", "--channel", "whatsapp", "--json"],
    )
    .await;
    assert!(ok);
    assert_eq!(lines, vec![serde_json::json!({"event": "unlinked"})]);
    assert!(!dir.path().join("credentials/whatsapp/default/creds.json").exists());
    // Only the session lock logout held stays (issue 14 item 22).
    assert_eq!(std::fs::read_dir(dir.path().join("credentials/whatsapp/default")).unwrap().count(), 1);
    assert_eq!(m.state()["linkedDevices"], serde_json::json!([]));

    // A refused login ends with a failed line and a non-zero exit.
    m.fault(Fault::Failure { reason: 403 });
    let (ok, lines) = cli(&m, dir.path(), &login).await;
    assert!(!ok);
    assert_eq!(lines.last().unwrap()["event"], "failed");
    assert!(
        lines.last().unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_login_refuses_bad_arguments_before_connecting() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    declare_whatsapp(dir.path());
    for args in [
        &[
            "channels",
            "login",
            "--channel",
            "whatsapp",
            "--json",
            "--phone",
            "not-a-number",
        ][..],
        &["channels", "login", "--channel", "telegram", "--json"][..],
        &["channels", "login", "--json", "--account", "../escape"][..],
    ] {
        let (ok, lines) = cli(&m, dir.path(), args).await;
        assert!(!ok, "{args:?}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["event"], "failed");
    }
    assert_eq!(m.state()["totalConnections"], 0);
}

/// Regression for the field report "web login provider is not available": an undeclared channel
/// is refused before connecting, naming the key to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_login_says_which_key_declares_the_channel() {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, lines) = cli(&m, dir.path(), &["channels", "login", "--channel", "whatsapp", "--json"]).await;
    assert!(!ok);
    let reason = lines[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("add channels.whatsapp to") && reason.contains("services.openclaw.settings.channels.whatsapp"), "{reason}");
    // With accounts listed, the account must be one of them.
    std::fs::write(dir.path().join("openclaw.json"), "{ channels: { whatsapp: { accounts: { work: {} } } } }").unwrap();
    let (ok, lines) = cli(&m, dir.path(), &["channels", "login", "--json", "--account", "home"]).await;
    assert!(!ok);
    assert!(lines[0]["reason"].as_str().unwrap_or_default().contains("\"home\" is not in channels.whatsapp.accounts (work)"), "{lines:?}");
    assert_eq!(m.state()["totalConnections"], 0);
}
