//! A gateway in this process whose channel registry holds our WhatsApp client, linked to the
//! relay mock: what the supervisor wires in production, without its reconnect policy. Shared by
//! the end-to-end tests with real Baileys contacts and `benches/full_turn.rs`.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openclaw::channels::registry::ChannelRegistry;
use openclaw::channels::status::{ChannelStatus, ChannelStatusHandle, ConnectionState};
use openclaw::channels::whatsapp::account::store::AccountStore;
use openclaw::channels::whatsapp::cert::TrustedRoot;
use openclaw::channels::whatsapp::client::{link, run_session, ClientConfig, Event, LinkOutcome, RunMode};
use openclaw::channels::whatsapp::creds::CredsStore;
use openclaw::channels::whatsapp::mock::MockServer;
use openclaw::channels::whatsapp::socket::{Endpoint, WA_WEB_ORIGIN};
use openclaw::channels::whatsapp::supervisor::open_messaging_with;
use openclaw::gateway::settings::GatewaySettings;
use openclaw::gateway::state::AppState;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, watch};

/// Our client's config for the mock: credentials under `<dir>/auth`, the mock's certificate
/// root, a small prekey upload.
pub fn client_config(m: &MockServer, dir: &Path) -> ClientConfig {
    let mut c = ClientConfig::new(CredsStore::in_dir(dir.join("auth")));
    c.endpoint = Endpoint { url: m.url(), origin: WA_WEB_ORIGIN.into(), root: TrustedRoot::for_testing(m.root_key()) };
    c.prekey_upload_count = 30;
    c
}

/// Links `cfg`'s credentials to the mock account `phone` by scanning the QR code.
pub async fn link_account(m: &MockServer, cfg: &ClientConfig, phone: &str, wait: Duration) {
    m.set_link_target(phone).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = link(cfg, &tx);
    tokio::pin!(fut);
    let out = tokio::time::timeout(wait, async {
        loop {
            tokio::select! {
                out = &mut fut => return out,
                Some(ev) = rx.recv() => if let Event::Qr { qr, .. } = ev { m.scan(&qr).unwrap(); },
            }
        }
    })
    .await
    .expect("link in time");
    assert!(matches!(out.unwrap(), LinkOutcome::Linked { .. }));
}

/// The running gateway and our client's session loop.
pub struct InprocGateway {
    /// The gateway's HTTP port.
    pub port: u16,
    /// The gateway's state (app, runs, inbound queue).
    pub state: Arc<AppState>,
    stop_wa: watch::Sender<bool>,
    stop_gw: oneshot::Sender<()>,
    wa_task: tokio::task::JoinHandle<()>,
    gw_task: tokio::task::JoinHandle<()>,
}

impl InprocGateway {
    /// Prepares the gateway from `settings` with the `whatsapp/default` account shown as
    /// connected, opens the account store in `wa_dir` (already linked with
    /// [`link_account`]), hands its handle to the registry and runs the client's session in a
    /// loop (reconnecting after 200 ms) until [`InprocGateway::stop`].
    pub fn start(rt: &Runtime, settings: GatewaySettings, m: &MockServer, wa_dir: &Path) -> Self {
        let status = ChannelStatusHandle::new();
        let mut s = ChannelStatus::new("whatsapp", "default", ConnectionState::Connected { since_ms: 0 });
        s.linked = true;
        s.connected = true;
        status.upsert(s);
        let _g = rt.enter();
        let prepared = openclaw::gateway::prepare(settings, openclaw::gateway::logbuf::LogBuffer::new(), status).unwrap();
        let port = prepared.local_addr().port();
        let state = prepared.state();
        let store = AccountStore::open_at(&wa_dir.join("store.db")).unwrap();
        let (messaging, handle) = open_messaging_with(store, "default", state.inbound.clone()).unwrap();
        state.app.set_registry(ChannelRegistry::new([handle]));
        let mut ccfg = client_config(m, wa_dir);
        ccfg.messaging = Some(messaging);
        let (stop_wa, mut stopped) = watch::channel(false);
        let wa_task = rt.spawn(async move {
            let (tx, _rx) = mpsc::unbounded_channel();
            loop {
                tokio::select! {
                    _ = run_session(&ccfg, &tx, RunMode::UntilDisconnect, None) => {}
                    _ = stopped.changed() => return,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let (stop_gw, rx) = oneshot::channel::<()>();
        let gw_task = rt.spawn(async move {
            openclaw::gateway::serve(prepared, Default::default(), async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self { port, state, stop_wa, stop_gw, wa_task, gw_task }
    }

    /// Stops the gateway (bounded drain) and the client's session loop.
    pub fn stop(self, rt: &Runtime) {
        let _ = self.stop_gw.send(());
        let _ = self.stop_wa.send(true);
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(15), self.gw_task).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wa_task).await;
        });
    }
}
