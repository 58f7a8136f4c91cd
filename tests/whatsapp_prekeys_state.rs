//! Fail-closed prekey storage (issue 14 item 26) against the mock server: a corrupt
//! `pre-keys.json` is never replaced by a fresh map, and a failed save never skips the upload
//! silently; the supervisor does not connect with a corrupt one.

use std::sync::Arc;
use std::time::Duration;

use openclaw::channels::status::ChannelStatusHandle;
use openclaw::channels::whatsapp::cert::TrustedRoot;
use openclaw::channels::whatsapp::client::{self, ClientConfig, ClientError, LinkOutcome};
use openclaw::channels::whatsapp::creds::{CredsError, CredsStore};
use openclaw::channels::whatsapp::crypto::SeededEntropy;
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::channels::whatsapp::socket::{Endpoint, WA_WEB_ORIGIN};
use openclaw::channels::whatsapp::supervisor::persist::{AccountFiles, LinkLimits};
use openclaw::channels::whatsapp::supervisor::policy::Policy;
use openclaw::channels::whatsapp::supervisor::{AccountSpec, ClientConnector, SupervisorEnv, WallClock, spawn};
use openclaw::store::StateLayout;
use tokio::sync::mpsc;

fn config(m: &MockServer, store: CredsStore) -> ClientConfig {
    let mut c = ClientConfig::new(store);
    c.endpoint = Endpoint { url: m.url(), origin: WA_WEB_ORIGIN.into(), root: TrustedRoot::for_testing(m.root_key()) };
    // Fewer than the server minimum: every login uploads again.
    c.prekey_upload_count = 3;
    c
}

async fn link(m: &MockServer, cfg: &ClientConfig) -> Result<LinkOutcome, ClientError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = client::link(cfg, &tx);
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            Some(ev) = rx.recv() => if let client::Event::Qr { qr, .. } = ev {
                m.scan(&qr).expect("scan");
            },
        }
    }
}

async fn linked() -> (MockServer, tempfile::TempDir, StateLayout, ClientConfig) {
    let m = MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = StateLayout::new(dir.path());
    let cfg = config(&m, CredsStore::new(&layout, "default"));
    assert!(matches!(link(&m, &cfg).await, Ok(LinkOutcome::Linked { .. })));
    (m, dir, layout, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_item26_corrupt_prekeys_json_is_never_replaced() {
    let (m, _dir, _layout, cfg) = linked().await;
    let path = cfg.store.dir().join("pre-keys.json");
    assert_eq!(cfg.store.load_prekeys().unwrap().len(), 3);
    let full = std::fs::read(&path).unwrap();
    let torn = &full[..full.len() / 2];
    std::fs::write(&path, torn).unwrap();
    // Logging in again wants to upload more prekeys: the corrupt store stops it with a clear
    // error instead of starting over with a fresh map.
    let e = link(&m, &cfg).await.expect_err("a corrupt pre-keys.json fails the login");
    assert!(matches!(e, ClientError::Creds(CredsError::Corrupt { .. })), "{e}");
    assert!(e.to_string().contains("pre-keys.json") && e.to_string().contains("refusing to replace it"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), torn, "the corrupt file is left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_item26_failed_prekey_save_does_not_skip_the_upload_silently() {
    let (m, _dir, _layout, cfg) = linked().await;
    let dir = cfg.store.dir().to_path_buf();
    let uploads_before = m.state()["linkedDevices"][0]["preKeys"].clone();
    // Make the credentials directory unwritable: chmod for a normal user, the immutable
    // attribute for root (chmod does not stop root).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let mut immutable = false;
    if std::fs::write(dir.join("probe"), b"x").is_ok() {
        let _ = std::fs::remove_file(dir.join("probe"));
        immutable = std::process::Command::new("chattr").arg("+i").arg(&dir).status().is_ok_and(|s| s.success());
        if !immutable || std::fs::write(dir.join("probe"), b"x").is_ok() {
            let _ = std::process::Command::new("chattr").arg("-i").arg(&dir).status();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            assert!(std::env::var_os("CI").is_none(), "cannot make a directory unwritable here");
            eprintln!("SKIPPED: cannot make a directory unwritable (root without chattr)");
            return;
        }
    }
    let out = link(&m, &cfg).await;
    if immutable {
        let _ = std::process::Command::new("chattr").arg("-i").arg(&dir).status();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let e = out.expect_err("a failed save of pre-keys.json fails the login");
    assert!(e.to_string().contains("pre-keys.json"), "{e}");
    assert_eq!(m.state()["linkedDevices"][0]["preKeys"], uploads_before, "nothing uploaded whose private half is not on disk");
    // Writable again: the next login uploads.
    assert!(matches!(link(&m, &cfg).await, Ok(LinkOutcome::Linked { .. })));
    assert_eq!(cfg.store.load_prekeys().unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_item26_supervisor_does_not_connect_with_a_corrupt_prekeys_json() {
    let (m, _dir, layout, cfg) = linked().await;
    std::fs::write(cfg.store.dir().join("pre-keys.json"), b"{\"1\": ").unwrap();
    let before = m.state()["totalConnections"].as_u64().unwrap();
    let status = ChannelStatusHandle::new();
    let wall: WallClock = Arc::new(|| 1_800_000_000_000);
    let spec = AccountSpec {
        account: "default".into(),
        enabled: true,
        creds: cfg.store.clone(),
        files: AccountFiles::new(&layout, "default"),
        connector: Arc::new(ClientConnector(cfg.clone())),
    };
    let env = SupervisorEnv {
        policy: Policy::default(),
        link_limits: LinkLimits::default(),
        wall,
        rng: Arc::new(SeededEntropy::new(1)),
        status: status.clone(),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let h = spawn(spec, env, rx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = status.get("whatsapp", "default").expect("status");
    assert_eq!(s.state.name(), "unsupported", "{s:?}");
    assert!(s.detail.contains("pre-keys.json"), "{}", s.detail);
    assert_eq!(m.state()["totalConnections"].as_u64().unwrap(), before, "no connection");
    tx.send_replace(true);
    h.join().await;
}
