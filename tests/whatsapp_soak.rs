//! Soak (issue 5): the supervisor against the mock injecting faults for a few minutes of wall
//! time, loopback only. The policy is compressed 60× (one policy minute per wall second), so the
//! default 120 s run covers two hours of policy time: healthy spells, flaky spells (random drops
//! and stream errors), server-side refusal (every handshake answered with 503), network outages,
//! a 429 and a 401 at login (cooldown). Connection attempts are counted per policy minute at the
//! mock and checked against what the policy allows; no attempt may fall inside a cooldown.
//!
//! `OPENCLAW_SOAK_SECS` changes the wall time, `OPENCLAW_SOAK_SEED` the fault schedule.

use std::sync::Arc;
use std::time::Duration;

use openclaw::channels::status::{ChannelStatusHandle, ConnectionState};
use openclaw::channels::whatsapp::cert::TrustedRoot;
use openclaw::channels::whatsapp::client::{ClientConfig, Event, LinkOutcome};
use openclaw::channels::whatsapp::creds::CredsStore;
use openclaw::channels::whatsapp::crypto::{Entropy, SeededEntropy};
use openclaw::channels::whatsapp::mock::{Fault, MockOptions, MockServer};
use openclaw::channels::whatsapp::socket::{Endpoint, WA_WEB_ORIGIN};
use openclaw::channels::whatsapp::supervisor::link::{LinkGuard, guarded_link};
use openclaw::channels::whatsapp::supervisor::persist::{AccountFiles, LinkLimits};
use openclaw::channels::whatsapp::supervisor::policy::Policy;
use openclaw::channels::whatsapp::supervisor::{AccountSpec, ClientConnector, SupervisorEnv, WallClock, spawn};
use openclaw::store::StateLayout;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const COMPRESS: u32 = 60;

/// The most attempts within `window` a schedule allows: one attempt, then the shortest jittered
/// delays `nominal(0), nominal(1), ...` (capped at `cap`), plus one more for an attempt made
/// after the schedule was reset (a stable connection, or the end of a network outage).
fn max_attempts(p: &Policy, window: Duration, nominal: impl Fn(u32) -> Duration, cap: Duration) -> usize {
    let mut t = Duration::ZERO;
    let mut n = 1;
    for k in 0.. {
        let (lo, _) = p.jitter_bounds(nominal(k), cap);
        t += lo;
        if t > window {
            break;
        }
        n += 1;
    }
    n + 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Healthy,
    Flaky,
    ServerRefuses,
    Offline,
    RateLimited,
    LoginRefused,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_attempts_per_minute_stay_within_the_policy() {
    let secs: u64 = std::env::var("OPENCLAW_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let seed: u64 = std::env::var("OPENCLAW_SOAK_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let policy = Policy::default().compressed(COMPRESS);
    let minute = Duration::from_secs(60) / COMPRESS;

    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"), MockOptions::default()).await.expect("mock");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = StateLayout::new(dir.path());
    let start = Instant::now();
    let wall: WallClock = Arc::new(move || 1_800_000_000_000 + start.elapsed().as_millis() as u64);
    let mut client = ClientConfig::new(CredsStore::new(&layout, "default"));
    client.endpoint = Endpoint { url: mock.url(), origin: WA_WEB_ORIGIN.into(), root: TrustedRoot::for_testing(mock.root_key()) };
    client.prekey_upload_count = 5;
    client.keepalive = Duration::from_secs(30) / COMPRESS;
    client.liveness = Duration::from_secs(35) / COMPRESS;
    client.connect_timeout = Duration::from_secs(2);

    // Link once.
    let guard = LinkGuard { files: AccountFiles::new(&layout, "default"), limits: LinkLimits::default(), cooldown: policy.auth_cooldown, wall: wall.clone() };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let linked = {
        let linking = guarded_link(&client, &guard, &tx);
        tokio::pin!(linking);
        loop {
            tokio::select! {
                out = &mut linking => break out,
                Some(ev) = rx.recv() => if let Event::Qr { qr, .. } = ev { mock.scan(&qr).expect("scan"); },
            }
        }
    };
    assert!(matches!(linked, Ok(LinkOutcome::Linked { .. })), "{linked:?}");

    let status = ChannelStatusHandle::new();
    let (shutdown_tx, shutdown) = watch::channel(false);
    let spec = AccountSpec {
        account: "default".into(),
        enabled: true,
        creds: CredsStore::new(&layout, "default"),
        files: AccountFiles::new(&layout, "default"),
        connector: Arc::new(ClientConnector(client)),
    };
    let env = SupervisorEnv { policy: policy.clone(), link_limits: LinkLimits::default(), wall: wall.clone(), rng: Arc::new(SeededEntropy::new(seed)), status: status.clone() };
    let handle = spawn(spec, env, shutdown);

    // Watch the states: cooldown windows (tokio time) and how often each state was seen.
    let watcher = {
        let status = status.clone();
        let wall = wall.clone();
        tokio::spawn(async move {
            let mut cooldowns: Vec<(Instant, Instant)> = Vec::new();
            let mut connected_samples = 0u64;
            let mut samples = 0u64;
            loop {
                if let Some(s) = status.get("whatsapp", "default") {
                    samples += 1;
                    match s.state {
                        ConnectionState::CoolingDown { until_ms, .. } => {
                            let left = Duration::from_millis(until_ms.saturating_sub(wall()));
                            let until = Instant::now() + left;
                            if cooldowns.last().is_none_or(|(_, u)| *u + Duration::from_millis(50) < until) {
                                cooldowns.push((Instant::now(), until));
                            }
                        }
                        ConnectionState::Connected { .. } => connected_samples += 1,
                        ConnectionState::Stopped => return (cooldowns, connected_samples, samples),
                        _ => {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // The fault schedule.
    let rng = SeededEntropy::new(seed ^ 0x5eed);
    let roll = |n: u64| {
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        u64::from_le_bytes(b) % n
    };
    let end = start + Duration::from_secs(secs);
    let mut phases = Vec::new();
    while Instant::now() < end {
        let phase = match roll(10) {
            0..=2 => Phase::Healthy,
            3..=5 => Phase::Flaky,
            6 => Phase::ServerRefuses,
            7 => Phase::Offline,
            8 => Phase::RateLimited,
            _ => Phase::LoginRefused,
        };
        let len = (minute * (2 + roll(9) as u32)).min(end.saturating_duration_since(Instant::now()));
        phases.push((phase, len));
        let phase_end = Instant::now() + len;
        match phase {
            Phase::Healthy => {}
            Phase::ServerRefuses => {
                mock.fault(Fault::FailAlways { reason: Some(503) });
                mock.fault(Fault::StreamError { code: 503 });
            }
            Phase::Offline => mock.fault(Fault::Offline { enabled: true }),
            Phase::RateLimited => mock.fault(Fault::StreamError { code: 429 }),
            Phase::LoginRefused => {
                mock.fault(Fault::Failure { reason: 401 });
                mock.fault(Fault::Drop);
            }
            Phase::Flaky => {}
        }
        while Instant::now() < phase_end {
            let pause = (minute / 5) * (1 + roll(15) as u32);
            tokio::time::sleep(pause.min(phase_end.saturating_duration_since(Instant::now()))).await;
            if phase == Phase::Flaky && Instant::now() < phase_end {
                mock.fault(match roll(5) {
                    0 => Fault::Drop,
                    1 => Fault::StreamError { code: 500 },
                    2 => Fault::StreamError { code: 503 },
                    3 => Fault::StreamError { code: 408 },
                    _ => Fault::StreamError { code: 428 },
                });
            }
        }
        mock.fault(Fault::FailAlways { reason: None });
        mock.fault(Fault::Offline { enabled: false });
    }
    shutdown_tx.send_replace(true);
    handle.join().await;
    let (cooldowns, connected_samples, samples) = watcher.await.expect("watcher");

    // Count per policy minute.
    let all = mock.attempt_times();
    let refused = mock.refused_times();
    let reaching: Vec<Instant> = all.iter().copied().filter(|t| !refused.contains(t)).collect();
    let buckets = secs * u64::from(COMPRESS) / 60 + 1;
    let per_minute = |ts: &[Instant]| -> Vec<usize> {
        let mut b = vec![0usize; buckets as usize + 1];
        for t in ts {
            let i = (t.saturating_duration_since(start).as_secs_f64() / minute.as_secs_f64()) as usize;
            if let Some(slot) = b.get_mut(i) {
                *slot += 1;
            }
        }
        b
    };
    let r = per_minute(&reaching);
    let p = per_minute(&refused);
    // Sliding windows too, not only aligned buckets.
    let max_in_window = |ts: &[Instant]| -> usize {
        let mut best = 0;
        for (i, t) in ts.iter().enumerate() {
            best = best.max(ts[i..].iter().take_while(|u| u.saturating_duration_since(*t) < minute).count());
        }
        best
    };
    let reach_bound = max_attempts(&policy, minute, |k| policy.nominal_backoff(k), policy.backoff_max);
    let probe_bound = max_attempts(&policy, minute, |k| policy.nominal_network_probe(k), policy.network_probe_max);
    let in_cooldown: Vec<&Instant> = all
        .iter()
        .filter(|t| cooldowns.iter().any(|(s, u)| **t > *s + Duration::from_millis(20) && **t + Duration::from_millis(20) < *u))
        .collect();
    let kinds: Vec<String> = phases.iter().map(|(ph, l)| format!("{ph:?}:{:.0}min", l.as_secs_f64() / minute.as_secs_f64())).collect();
    eprintln!(
        "soak: {secs} s wall = {} policy minutes, seed {seed}\n  phases: {}\n  attempts reaching the server: {} total, max {} per policy minute (sliding; bound {reach_bound}), mean {:.2}\n  network probes: {} total, max {} per policy minute (bound {probe_bound})\n  cooldowns: {}, attempts inside them: {}\n  connected {:.0}% of the time, {} logins",
        buckets - 1,
        kinds.join(" "),
        reaching.len(),
        max_in_window(&reaching),
        reaching.len() as f64 / (buckets - 1) as f64,
        refused.len(),
        max_in_window(&refused),
        cooldowns.len(),
        in_cooldown.len(),
        100.0 * connected_samples as f64 / samples.max(1) as f64,
        status.get("whatsapp", "default").map(|s| s.connects).unwrap_or(0),
    );
    eprintln!("  per policy minute, reaching: {r:?}\n  per policy minute, probes:   {p:?}");
    assert!(max_in_window(&reaching) <= reach_bound, "attempts reaching the server exceed the policy: {r:?}");
    assert!(max_in_window(&refused) <= probe_bound, "network probes exceed the policy: {p:?}");
    assert!(in_cooldown.is_empty(), "{} attempts inside a cooldown", in_cooldown.len());
    assert!(connected_samples > 0, "the session was never up");
    assert!(phases.len() >= 5, "too few phases to mean anything: {kinds:?}");
}
