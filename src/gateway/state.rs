//! The shared state of a running gateway, handed to every handler.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{broadcast, watch};

use crate::agent::runs::RunRegistry;
use crate::channels::status::ChannelStatusHandle;
use crate::gateway::devices::DeviceStore;
use crate::gateway::logbuf::LogBuffer;
use crate::gateway::ratelimit::AuthLimiter;
use crate::gateway::settings::{GatewaySettings, Secret};

/// The gateway version reported by `/health` and `hello-ok`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Lifecycle phase, for `/ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Bound, not yet ready.
    Starting = 0,
    /// Serving.
    Ready = 1,
    /// SIGTERM received; finishing in-flight work.
    Draining = 2,
}

/// Shared gateway state.
pub struct AppState {
    /// The settings it was started with.
    pub settings: GatewaySettings,
    /// The resolved gateway token (`None` with `auth.mode: none`).
    pub token: Option<Secret>,
    /// The resolved hooks token.
    pub hooks_token: Option<Secret>,
    phase: AtomicU8,
    /// Monotonic start time.
    pub started: Instant,
    /// A random id of this boot.
    pub boot_id: String,
    /// The bound address.
    pub local_addr: SocketAddr,
    /// Channel statuses published by channels.
    pub channels: ChannelStatusHandle,
    /// The WhatsApp account supervisors (started by `serve`).
    pub whatsapp: crate::channels::whatsapp::supervisor::Supervisors,
    /// Agent runs.
    pub runs: RunRegistry,
    /// The operations layer (send, runs, inbound) shared by hooks, control methods and the CLI.
    pub app: Arc<crate::app::App>,
    /// The producer side of the inbound queue, for the channel drivers.
    pub inbound: crate::messaging::InboundSink,
    /// Hook auth throttling.
    pub hooks_limiter: AuthLimiter,
    /// WebSocket auth throttling.
    pub ws_limiter: AuthLimiter,
    devices: Mutex<DeviceStore>,
    /// Recent log lines.
    pub logs: LogBuffer,
    /// Flips to true when the gateway starts draining.
    pub shutdown: watch::Receiver<bool>,
    /// Unix ms clock (injectable for tests).
    pub clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    conn_seq: AtomicU64,
    /// Handshake timeout in ms (`OPENCLAW_HANDSHAKE_TIMEOUT_MS`, default 15 000).
    pub handshake_timeout_ms: u64,
    /// Events for connected control clients: `(scope needed, event frame)`.
    pub events: broadcast::Sender<(&'static str, String)>,
    /// Host names requests may name besides IP literals and `localhost` (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Connected WebSocket control clients (capped at [`crate::gateway::conns::MAX_WS_CLIENTS`]).
    pub ws_clients: crate::gateway::conns::WsClients,
    /// WhatsApp links started from the Control UI (`web.login.start`), by credentials directory.
    pub web_logins: crate::gateway::weblogin::WebLogins,
}

impl AppState {
    /// Builds the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: GatewaySettings,
        token: Option<Secret>,
        hooks_token: Option<Secret>,
        local_addr: SocketAddr,
        runs: RunRegistry,
        app: Arc<crate::app::App>,
        inbound: crate::messaging::InboundSink,
        devices: DeviceStore,
        logs: LogBuffer,
        channels: ChannelStatusHandle,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let rl = settings.rate_limit;
        let handshake_timeout_ms = std::env::var("OPENCLAW_HANDSHAKE_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15_000);
        let machine_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
        let allowed_hosts = crate::gateway::server::allowed_host_names(&settings.control_ui.allowed_origins, machine_hostname.as_deref());
        Self {
            settings,
            token,
            hooks_token,
            phase: AtomicU8::new(Phase::Starting as u8),
            started: Instant::now(),
            boot_id: uuid::Uuid::new_v4().to_string(),
            local_addr,
            channels,
            whatsapp: crate::channels::whatsapp::supervisor::Supervisors::new(),
            runs,
            app,
            inbound,
            hooks_limiter: AuthLimiter::new(rl),
            ws_limiter: AuthLimiter::new(rl),
            devices: Mutex::new(devices),
            logs,
            shutdown,
            clock: Arc::new(crate::agent::runs::unix_ms),
            conn_seq: AtomicU64::new(0),
            handshake_timeout_ms,
            events: broadcast::channel(256).0,
            ws_clients: Default::default(),
            web_logins: Default::default(),
            allowed_hosts,
        }
    }

    /// Sends an event frame to every connected control client holding `scope`.
    pub fn emit(&self, scope: &'static str, event: &str, payload: serde_json::Value) {
        let _ = self.events.send((scope, crate::gateway::protocol::event(event, payload)));
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            1 => Phase::Ready,
            2 => Phase::Draining,
            _ => Phase::Starting,
        }
    }

    /// Moves to a phase.
    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    /// Milliseconds since start.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The device store (short critical sections only).
    pub fn devices(&self) -> MutexGuard<'_, DeviceStore> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.conn_seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}
