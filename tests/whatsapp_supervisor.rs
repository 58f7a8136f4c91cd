//! The WhatsApp supervisor (issue 5) against the mock server, on tokio's paused clock: each
//! disconnect reason's reaction, the persisted cooldown across a restart, the link guard,
//! network recovery, 100 random disconnects within the backoff bounds, crash isolation and the
//! live probe. Real sockets on 127.0.0.1; time is virtual, so hours of policy run in seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use openclaw::channels::status::{ChannelStatus, ChannelStatusHandle, ConnectionState};
use openclaw::channels::whatsapp::cert::TrustedRoot;
use openclaw::channels::whatsapp::client::{
    ClientConfig, ClientError, ConnectionEnd, Event, LinkOutcome, SessionCommand,
};
use openclaw::channels::whatsapp::creds::CredsStore;
use openclaw::channels::whatsapp::crypto::SeededEntropy;
use openclaw::channels::whatsapp::disconnect::DisconnectReason;
use openclaw::channels::whatsapp::mock::{Fault, MockOptions, MockServer};
use openclaw::channels::whatsapp::socket::{Endpoint, WA_WEB_ORIGIN};
use openclaw::channels::whatsapp::supervisor::link::{LinkError, LinkGuard, guarded_link};
use openclaw::channels::whatsapp::supervisor::persist::{AccountFiles, LinkLimits, LinkRefusal};
use openclaw::channels::whatsapp::supervisor::policy::Policy;
use openclaw::channels::whatsapp::supervisor::run::{BoxFuture, LogoutResult};
use openclaw::channels::whatsapp::supervisor::{
    AccountHandle, AccountSpec, ClientConnector, Connector, SupervisorEnv, WallClock, spawn,
};
use openclaw::store::StateLayout;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const WALL_BASE_MS: u64 = 1_800_000_000_000;

struct Rig {
    mock: MockServer,
    _dir: tempfile::TempDir,
    layout: StateLayout,
    status: ChannelStatusHandle,
    wall: WallClock,
    policy: Policy,
    shutdown: watch::Sender<bool>,
}

impl Rig {
    async fn new() -> Self {
        let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"), MockOptions::default())
            .await
            .expect("mock starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = StateLayout::new(dir.path());
        let start = Instant::now();
        let wall: WallClock = Arc::new(move || WALL_BASE_MS + start.elapsed().as_millis() as u64);
        Self {
            mock,
            _dir: dir,
            layout,
            status: ChannelStatusHandle::new(),
            wall,
            policy: Policy::default(),
            shutdown: watch::channel(false).0,
        }
    }

    fn client(&self, account: &str) -> ClientConfig {
        let mut c = ClientConfig::new(CredsStore::new(&self.layout, account));
        c.endpoint = Endpoint {
            url: self.mock.url(),
            origin: WA_WEB_ORIGIN.into(),
            root: TrustedRoot::for_testing(self.mock.root_key()),
        };
        c.prekey_upload_count = 5;
        c
    }

    fn files(&self, account: &str) -> AccountFiles {
        AccountFiles::new(&self.layout, account)
    }

    fn guard(&self, account: &str) -> LinkGuard {
        LinkGuard {
            files: self.files(account),
            limits: LinkLimits::default(),
            cooldown: self.policy.auth_cooldown,
            wall: self.wall.clone(),
        }
    }

    /// Links `account` through the guard, scanning every QR with the mock phone.
    async fn link(&self, account: &str) -> Result<LinkOutcome, LinkError> {
        let cfg = self.client(account);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let guard = self.guard(account);
        let fut = guarded_link(&cfg, &guard, &tx);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                Some(ev) = rx.recv() => if let Event::Qr { qr, .. } = ev {
                    self.mock.scan(&qr).expect("scan");
                },
            }
        }
    }

    fn spawn_with(&self, account: &str, connector: Arc<dyn Connector>) -> AccountHandle {
        let spec = AccountSpec {
            account: account.into(),
            enabled: true,
            creds: CredsStore::new(&self.layout, account),
            files: self.files(account),
            connector,
        };
        let env = SupervisorEnv {
            policy: self.policy.clone(),
            link_limits: LinkLimits::default(),
            wall: self.wall.clone(),
            rng: Arc::new(SeededEntropy::new(42)),
            status: self.status.clone(),
        };
        spawn(spec, env, self.shutdown.subscribe())
    }

    fn spawn(&self, account: &str) -> AccountHandle {
        self.spawn_with(account, Arc::new(ClientConnector(self.client(account))))
    }

    fn get(&self, account: &str) -> ChannelStatus {
        self.status.get("whatsapp", account).expect("status published")
    }

    /// Waits (virtual time) until the account's state is `name`; panics after `limit`.
    async fn wait_state(&self, account: &str, name: &str, limit: Duration) -> ChannelStatus {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.status.get("whatsapp", account)
                && s.state.name() == name
            {
                return s;
            }
            assert!(t0.elapsed() < limit, "{account} never reached {name} within {limit:?}: {:?}", self.status.get("whatsapp", account));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn attempts(&self) -> usize {
        self.mock.attempt_times().len()
    }

    /// Stops every supervisor of this rig and waits for them.
    async fn stop(&self, handles: &[AccountHandle]) {
        self.shutdown.send_replace(true);
        for h in handles {
            h.join().await;
        }
        self.shutdown.send_replace(false);
    }
}

async fn linked_rig() -> Rig {
    let rig = Rig::new().await;
    assert!(matches!(rig.link("default").await, Ok(LinkOutcome::Linked { .. })));
    rig
}

#[tokio::test(start_paused = true)]
async fn liveness_comes_from_pings_only_a_quiet_session_stays_up_for_hours() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let before = rig.attempts();
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let s = rig.get("default");
    assert!(s.connected, "{s:?}");
    assert_eq!(s.connects, 1);
    assert_eq!(rig.attempts(), before, "no reconnect while pings are answered");
    let pings = rig.mock.state()["pingsAnswered"].as_u64().unwrap_or(0);
    assert!(pings >= 3 * 3600 / 30 - 2, "keepalive pings every 30 s: {pings}");
    rig.stop(&[h]).await;
    assert_eq!(rig.get("default").state, ConnectionState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn silence_ends_in_408_after_the_liveness_window_then_backs_off() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    rig.mock.fault(Fault::Silence { enabled: true });
    let t0 = Instant::now();
    let s = rig.wait_state("default", "backingOff", Duration::from_secs(120)).await;
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_secs(30) && waited <= Duration::from_secs(66), "{waited:?}");
    assert_eq!(s.last_disconnect.as_ref().map(|d| d.code), Some(408));
    rig.mock.fault(Fault::Silence { enabled: false });
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn restart_required_reconnects_at_once() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let before = rig.attempts();
    let t0 = Instant::now();
    rig.mock.fault(Fault::StreamError { code: 515 });
    while rig.get("default").connects < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(t0.elapsed() < Duration::from_millis(100), "515 waits for nothing: {:?}", t0.elapsed());
    assert_eq!(rig.attempts(), before + 1);
    assert_eq!(rig.get("default").last_disconnect.map(|d| d.code), Some(515));
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn transient_reasons_back_off_about_one_second_then_reconnect() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let p = rig.policy.clone();
    let cases: [(Fault, u16); 3] = [
        (Fault::Drop, 428),
        (Fault::StreamError { code: 500 }, 500),
        (Fault::StreamError { code: 503 }, 503),
    ];
    for (fault, code) in cases {
        // Stay up past the stable period so each case starts the schedule from the beginning.
        tokio::time::sleep(p.stable_after + Duration::from_secs(1)).await;
        let connects = rig.get("default").connects;
        let before = rig.attempts();
        let t0 = Instant::now();
        rig.mock.fault(fault.clone());
        let s = rig.wait_state("default", "backingOff", Duration::from_secs(1)).await;
        assert_eq!(s.last_disconnect.as_ref().map(|d| d.code), Some(code), "{fault:?}");
        while rig.attempts() == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let gap = rig.mock.attempt_times()[before] - t0;
        let (lo, hi) = p.jitter_bounds(p.nominal_backoff(0), p.backoff_max);
        assert!(gap >= lo && gap <= hi + Duration::from_millis(20), "{fault:?}: next attempt after {gap:?}, not in {lo:?}..{hi:?}");
        while rig.get("default").connects == connects {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn rate_limited_429_backs_off_for_minutes() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let before = rig.attempts();
    let t0 = Instant::now();
    rig.mock.fault(Fault::StreamError { code: 429 });
    let s = rig.wait_state("default", "backingOff", Duration::from_secs(1)).await;
    let (lo, _) = rig.policy.jitter_bounds(rig.policy.rate_limited_initial, rig.policy.rate_limited_max);
    assert!(s.next_attempt_at.unwrap_or(0) >= (rig.wall)() + lo.as_millis() as u64 - 1000, "{s:?}");
    tokio::time::sleep(lo - Duration::from_secs(1)).await;
    assert_eq!(rig.attempts(), before, "no attempt within {lo:?} of a 429");
    rig.wait_state("default", "connected", Duration::from_secs(600)).await;
    assert!(t0.elapsed() >= lo);
    rig.stop(&[h]).await;
}

async fn auth_refusal_at_login_cools_down_and_survives_a_restart(code: u16) {
    let rig = linked_rig().await;
    rig.mock.fault(Fault::Failure { reason: code });
    let before = rig.attempts();
    let h = rig.spawn("default");
    let s = rig.wait_state("default", "coolingDown", Duration::from_secs(5)).await;
    assert_eq!(rig.attempts(), before + 1);
    let until = s.cooldown_until.expect("cooldown_until set");
    assert!(until >= (rig.wall)() + 20 * 60 * 1000 - 1000, "20 minutes: {s:?}");
    assert!(s.detail.contains("during login"), "{}", s.detail);
    // A restart of the gateway during the cooldown: the new supervisor does not connect.
    rig.stop(&[h]).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let h = rig.spawn("default");
    rig.wait_state("default", "coolingDown", Duration::from_secs(1)).await;
    let left = Duration::from_millis(until - (rig.wall)());
    tokio::time::sleep(left - Duration::from_secs(1)).await;
    assert_eq!(rig.attempts(), before + 1, "{code}: no attempt during the 20-minute cooldown, restart included");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    assert_eq!(rig.attempts(), before + 2);
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn unauthorized_401_at_login_cools_down_20_minutes_across_a_restart() {
    auth_refusal_at_login_cools_down_and_survives_a_restart(401).await;
}

#[tokio::test(start_paused = true)]
async fn forbidden_403_at_login_cools_down_20_minutes_across_a_restart() {
    auth_refusal_at_login_cools_down_and_survives_a_restart(403).await;
}

#[tokio::test(start_paused = true)]
async fn a_401_during_pairing_means_zero_attempts_for_20_minutes() {
    let rig = Rig::new().await;
    // The gateway runs the (not yet linked) account meanwhile; it must not connect either.
    let h = rig.spawn("default");
    rig.wait_state("default", "notLinked", Duration::from_secs(1)).await;
    rig.mock.fault(Fault::Failure { reason: 401 });
    let out = rig.link("default").await;
    assert!(matches!(out, Ok(LinkOutcome::Failed(DisconnectReason::LoggedOut))), "{out:?}");
    assert_eq!(rig.attempts(), 1);
    let mut refusals = 0;
    for _ in 0..19 {
        tokio::time::sleep(Duration::from_secs(60)).await;
        match rig.link("default").await {
            Err(LinkError::Refused(LinkRefusal::CoolingDown { until_ms, reason })) => {
                assert!(reason.contains("during pairing"), "{reason}");
                assert!(until_ms > (rig.wall)());
                refusals += 1;
            }
            other => panic!("expected a cooldown refusal, got {other:?}"),
        }
    }
    assert_eq!(refusals, 19);
    assert_eq!(rig.attempts(), 1, "no connection attempt at all during the cooldown");
    let s = rig.wait_state("default", "coolingDown", Duration::from_secs(1)).await;
    assert!(s.link_allowed_at.is_some());
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(matches!(rig.link("default").await, Ok(LinkOutcome::Linked { .. })));
    // The supervisor picks up the new link by itself.
    rig.wait_state("default", "connected", Duration::from_secs(10)).await;
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn the_link_guard_caps_attempts_and_says_when_the_next_is_allowed() {
    let rig = Rig::new().await;
    // Five attempts that fail without a scan (the user never scans: QR refs run out).
    for i in 0..5 {
        let cfg = rig.client("default");
        let (tx, _rx) = mpsc::unbounded_channel();
        let out = guarded_link(&cfg, &rig.guard("default"), &tx).await;
        assert!(matches!(out, Ok(LinkOutcome::Failed(_))), "attempt {i}: {out:?}");
    }
    let attempts = rig.attempts();
    match rig.link("default").await {
        Err(LinkError::Refused(r @ LinkRefusal::TooManyAttempts { .. })) => {
            assert!(r.to_string().contains("next attempt is allowed at"), "{r}");
            assert!(r.next_allowed_ms() > (rig.wall)());
        }
        other => panic!("expected TooManyAttempts, got {other:?}"),
    }
    assert_eq!(rig.attempts(), attempts, "a refused link does not connect");
}

#[tokio::test(start_paused = true)]
async fn replaced_440_stops_without_reconnecting() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let before = rig.attempts();
    rig.mock.fault(Fault::StreamError { code: 440 });
    let s = rig.wait_state("default", "replaced", Duration::from_secs(1)).await;
    assert!(s.detail.contains("another instance uses this session"), "{}", s.detail);
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    assert_eq!(rig.attempts(), before, "440 produces no attempt");
    assert_eq!(rig.get("default").state, ConnectionState::Replaced);
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn logged_out_keeps_a_backup_of_the_creds_and_waits_for_a_new_link() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let before = rig.attempts();
    rig.mock.fault(Fault::StreamError { code: 401 });
    let s = rig.wait_state("default", "loggedOut", Duration::from_secs(1)).await;
    let ConnectionState::LoggedOut { backup: Some(backup), .. } = &s.state else { panic!("{s:?}") };
    assert!(std::path::Path::new(backup).join("creds.json").is_file(), "backup at {backup}");
    let store = CredsStore::new(&rig.layout, "default");
    assert!(store.load().expect("readable").is_none(), "the account reads as not linked");
    assert!(!s.linked);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(rig.attempts(), before, "no attempt with dead credentials");
    assert!(matches!(rig.link("default").await, Ok(LinkOutcome::Linked { .. })));
    rig.wait_state("default", "connected", Duration::from_secs(10)).await;
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn issue13_item1_logout_over_the_live_session_unlinks_and_moves_the_creds_aside() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    assert_eq!(rig.mock.state()["linkedDevices"].as_array().unwrap().len(), 1);
    let r = h.logout(Duration::from_secs(30)).await.expect("logged out");
    let LogoutResult::Unlinked { backup: Some(backup) } = &r else { panic!("{r:?}") };
    assert!(backup.join("creds.json").is_file(), "backup at {}", backup.display());
    assert_eq!(rig.mock.state()["linkedDevices"].as_array().unwrap().len(), 0, "the server removed the device");
    let s = rig.get("default");
    assert!(matches!(s.state, ConnectionState::LoggedOut { by_operator: true, .. }), "{s:?}");
    assert!(!s.linked && !s.connected);
    assert!(CredsStore::new(&rig.layout, "default").load().expect("readable").is_none());
    // It stays logged out (no attempt with removed credentials), a second logout has nothing
    // to do, and a new link is taken up.
    let before = rig.attempts();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(rig.attempts(), before);
    assert_eq!(rig.get("default").state.name(), "loggedOut");
    assert_eq!(h.logout(Duration::from_secs(5)).await, Ok(LogoutResult::NotLinked));
    assert!(matches!(rig.link("default").await, Ok(LinkOutcome::Linked { .. })));
    rig.wait_state("default", "connected", Duration::from_secs(10)).await;
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn issue13_item1_logout_while_offline_moves_the_creds_without_connecting() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    rig.mock.fault(Fault::Offline { enabled: true });
    rig.wait_state("default", "waitingForNetwork", Duration::from_secs(10)).await;
    let before = (rig.attempts(), rig.mock.state()["refusedAttempts"].as_u64());
    let r = h.logout(Duration::from_secs(30)).await.expect("logged out locally");
    let LogoutResult::RemovedLocallyOnly { why, backup: Some(backup) } = &r else { panic!("{r:?}") };
    assert!(why.contains("not connected"), "{why}");
    assert!(backup.join("creds.json").is_file());
    assert_eq!((rig.attempts(), rig.mock.state()["refusedAttempts"].as_u64()), before, "no connection just to log out");
    assert_eq!(rig.get("default").state.name(), "loggedOut");
    rig.mock.fault(Fault::Offline { enabled: false });
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(rig.attempts(), before.0, "nothing reconnects without credentials");
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn after_a_network_outage_the_session_is_back_within_5_seconds() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    rig.mock.fault(Fault::Offline { enabled: true });
    rig.wait_state("default", "waitingForNetwork", Duration::from_secs(10)).await;
    let t_down = Instant::now();
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    let during = rig.attempts();
    let refused = rig.mock.state()["refusedAttempts"].as_u64().unwrap_or(0);
    // Probes never reach the server's handshake; still, they stay a few per minute.
    let minutes = t_down.elapsed().as_secs_f64() / 60.0;
    assert!((refused as f64) / minutes <= 60.0 / 2.4 + 1.0, "{refused} probes in {minutes:.1} min");
    let connects = rig.get("default").connects;
    rig.mock.fault(Fault::Offline { enabled: false });
    let t_up = Instant::now();
    while rig.get("default").connects == connects {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let back = t_up.elapsed();
    assert!(back <= Duration::from_secs(5), "reconnected {back:?} after the network returned");
    assert!(rig.attempts() > during);
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn a_hundred_random_disconnects_never_leave_the_backoff_bounds() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let p = rig.policy.clone();
    let rng = SeededEntropy::new(2026);
    let pick = |n: u64| {
        let mut b = [0u8; 8];
        openclaw::channels::whatsapp::crypto::Entropy::fill(&rng, &mut b);
        u64::from_le_bytes(b) % n
    };
    // The model: failures in a row since the last stable connection.
    let mut failures = 0u32;
    let mut connected_at = Instant::now();
    let mut max_gap = Duration::ZERO;
    for i in 0..100 {
        // Sometimes stay up long enough to count as stable.
        let up = if pick(4) == 0 { p.stable_after + Duration::from_secs(pick(30)) } else { Duration::from_millis(pick(20_000)) };
        tokio::time::sleep(up).await;
        if connected_at.elapsed() >= p.stable_after {
            failures = 0;
        }
        let fault = match pick(5) {
            0 => Fault::Drop,
            1 => Fault::StreamError { code: 428 },
            2 => Fault::StreamError { code: 500 },
            3 => Fault::StreamError { code: 503 },
            _ => Fault::StreamError { code: 408 },
        };
        let connects = rig.get("default").connects;
        let before = rig.attempts();
        let t0 = Instant::now();
        rig.mock.fault(fault.clone());
        while rig.attempts() == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let gap = rig.mock.attempt_times()[before] - t0;
        let (lo, hi) = p.jitter_bounds(p.nominal_backoff(failures), p.backoff_max);
        assert!(gap >= lo && gap <= hi + Duration::from_millis(20),
            "disconnect {i} ({fault:?}) after {failures} failures: waited {gap:?}, bounds {lo:?}..{hi:?}");
        assert!(gap <= p.backoff_max + Duration::from_millis(20));
        max_gap = max_gap.max(gap);
        failures += 1;
        while rig.get("default").connects == connects {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        connected_at = Instant::now();
    }
    assert!(max_gap >= Duration::from_secs(30), "the schedule grew: longest wait {max_gap:?}");
    rig.stop(&[h]).await;
}

/// Panics on its first `n` connections, then behaves like the real client.
struct PanicsFirst {
    inner: ClientConnector,
    left: AtomicU32,
}

impl Connector for PanicsFirst {
    fn connect<'a>(
        &'a self,
        events: &'a mpsc::UnboundedSender<Event>,
        commands: &'a mut mpsc::UnboundedReceiver<SessionCommand>,
    ) -> BoxFuture<'a, Result<ConnectionEnd, ClientError>> {
        if self.left.load(Ordering::SeqCst) > 0 {
            self.left.fetch_sub(1, Ordering::SeqCst);
            panic!("injected fault in the account task");
        }
        self.inner.connect(events, commands)
    }
}

#[tokio::test(start_paused = true)]
async fn a_crashing_account_is_restarted_with_backoff_and_the_others_keep_running() {
    let rig = Rig::new().await;
    assert!(matches!(rig.link("work").await, Ok(LinkOutcome::Linked { .. })));
    assert!(matches!(rig.link("home").await, Ok(LinkOutcome::Linked { .. })));
    let home = rig.spawn("home");
    rig.wait_state("home", "connected", Duration::from_secs(5)).await;
    let work = rig.spawn_with(
        "work",
        Arc::new(PanicsFirst { inner: ClientConnector(rig.client("work")), left: AtomicU32::new(3) }),
    );
    let t0 = Instant::now();
    let s = rig.wait_state("work", "crashed", Duration::from_secs(1)).await;
    let ConnectionState::Crashed { message, .. } = &s.state else { panic!() };
    assert!(message.contains("injected fault"), "{message}");
    rig.wait_state("work", "connected", Duration::from_secs(60)).await;
    // Three crashes: restarts after ~1 s, ~2 s, ~4 s.
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(5600) && took <= Duration::from_millis(8500), "{took:?}");
    assert_eq!(rig.get("work").crashes, 3);
    let h = rig.get("home");
    assert!(h.connected && h.connects == 1 && h.crashes == 0, "the other account never noticed: {h:?}");
    rig.stop(&[home, work]).await;
}

#[tokio::test(start_paused = true)]
async fn probe_pings_the_live_session() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(5)).await;
    let before = rig.mock.state()["pingsAnswered"].as_u64().unwrap_or(0);
    let rtt = h.probe(Duration::from_secs(5)).await.expect("probe answered");
    assert!(rtt < Duration::from_secs(1));
    assert_eq!(rig.mock.state()["pingsAnswered"].as_u64().unwrap_or(0), before + 1);
    rig.mock.fault(Fault::StreamError { code: 440 });
    rig.wait_state("default", "replaced", Duration::from_secs(1)).await;
    let e = h.probe(Duration::from_secs(5)).await.expect_err("nothing to probe");
    assert!(e.contains("another instance"), "{e}");
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn the_gateway_does_not_fight_a_login_for_the_session() {
    let rig = linked_rig().await;
    // A login (another process in real life) holds the session lock.
    let lock = openclaw::channels::whatsapp::supervisor::session_lock::SessionLock::try_acquire(
        CredsStore::new(&rig.layout, "default").dir(),
    );
    // Same process: flock is per open file, so this models another holder.
    let lock = lock.expect("lock");
    let h = rig.spawn("default");
    rig.wait_state("default", "pairing", Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let before = rig.attempts();
    drop(lock);
    rig.wait_state("default", "connected", Duration::from_secs(10)).await;
    assert_eq!(rig.attempts(), before + 1);
    rig.stop(&[h]).await;
}

/// Real clock: a data-only stanza that ends the stream (`<xmlstreamend/>`) is noticed at once.
/// (On tokio's paused clock such a frame is only read after the client's next write, so the
/// paused tests above use faults that close the socket.)
#[tokio::test]
async fn a_stream_end_stanza_is_noticed_at_once_and_backs_off() {
    let rig = linked_rig().await;
    let h = rig.spawn("default");
    rig.wait_state("default", "connected", Duration::from_secs(10)).await;
    let t0 = Instant::now();
    rig.mock.fault(Fault::StreamEnd);
    let s = rig.wait_state("default", "backingOff", Duration::from_secs(2)).await;
    assert!(t0.elapsed() < Duration::from_millis(500), "{:?}", t0.elapsed());
    assert_eq!(s.last_disconnect.map(|d| d.code), Some(428));
    rig.wait_state("default", "connected", Duration::from_secs(3)).await;
    rig.stop(&[h]).await;
}

#[tokio::test(start_paused = true)]
async fn issue14_item9_corrupt_supervisor_json_keeps_the_gateway_from_connecting() {
    let rig = linked_rig().await;
    let files = rig.files("default");
    std::fs::create_dir_all(files.dir()).expect("dir");
    std::fs::write(files.dir().join("supervisor.json"), b"\0\0garbage").expect("corrupt");
    let before = rig.attempts();
    let h = rig.spawn("default");
    let s = rig.wait_state("default", "coolingDown", Duration::from_secs(5)).await;
    assert!(s.detail.contains("corrupt"), "the reason names the corrupt file: {}", s.detail);
    tokio::time::sleep(Duration::from_secs(19 * 60)).await;
    assert_eq!(rig.attempts(), before, "no connection while the assumed cooldown runs");
    rig.wait_state("default", "connected", Duration::from_secs(120)).await;
    rig.stop(&[h]).await;
}
