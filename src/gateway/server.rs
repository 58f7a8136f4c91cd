//! The HTTP server: routes, security headers, Control UI placeholder, Origin checks on the
//! WebSocket upgrade, and the start/drain lifecycle.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::json;
use tokio::sync::watch;

use crate::agent::runs::{RunRegistry, DEFAULT_RETENTION};
use crate::channels::status::ChannelStatusHandle;
use crate::gateway::devices::{DeviceStore, DeviceStoreError};
use crate::gateway::lock::{self, LockError};
use crate::gateway::logbuf::LogBuffer;
use crate::gateway::logging::{clip, WarnThrottle};
use crate::gateway::portinfo;
use crate::gateway::settings::GatewaySettings;
use crate::gateway::state::{AppState, Phase, VERSION};
use crate::gateway::token::{self, TokenError};
use crate::gateway::{conns, control, health, hooks, wsupgrade};
use crate::store::write_atomic;

/// How long SIGTERM waits for in-flight requests and runs before exiting anyway (idle and
/// half-sent connections are closed at once; the NixOS unit's `TimeoutStopSec` is above it).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway could not start (or stopped with an error). Each has an exit code and hint.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A token consistency check failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Another gateway holds the state dir.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The port is taken.
    #[error("port {port} on {host} is already in use{}", holder_text(.holder))]
    PortInUse {
        /// Host.
        host: IpAddr,
        /// Port.
        port: u16,
        /// Who holds it, when visible.
        holder: Option<portinfo::PortHolder>,
    },
    /// Binding failed for another reason.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A token too short to resist guessing on a non-loopback bind.
    #[error("the {which} is {len} characters long; a gateway listening on {bind} needs at least {MIN_TOKEN_CHARS_NON_LOOPBACK}")]
    WeakToken {
        /// `gateway token` or `hooks token`.
        which: &'static str,
        /// Its length in characters.
        len: usize,
        /// The bind address.
        bind: IpAddr,
    },
    /// The device store is unreadable.
    #[error(transparent)]
    Devices(#[from] DeviceStoreError),
    /// The run store could not be opened.
    #[error(transparent)]
    Runs(#[from] crate::agent::runs::RunStoreError),
    /// The session store could not be opened.
    #[error(transparent)]
    Sessions(#[from] crate::agent::sessions::SessionStoreError),
    /// The server failed while running.
    #[error("gateway server failed: {0}")]
    Serve(std::io::Error),
}

fn holder_text(h: &Option<portinfo::PortHolder>) -> String {
    match h {
        Some(h) => format!(" by pid {} ({})", h.pid, h.name),
        None => String::new(),
    }
}

impl GatewayError {
    /// The exit code (distinct per refusal).
    pub fn exit_code(&self) -> u8 {
        match self {
            GatewayError::Token(e) => e.exit_code(),
            GatewayError::Lock(e) => e.exit_code(),
            GatewayError::WeakToken { .. } => 19,
            GatewayError::PortInUse { .. } => 22,
            GatewayError::Bind { .. } => 23,
            GatewayError::Devices(_) => 24,
            GatewayError::Runs(_) => 25,
            GatewayError::Sessions(_) => 26,
            GatewayError::Serve(_) => 1,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            GatewayError::Token(e) => e.hint().to_string(),
            GatewayError::Lock(LockError::Held { .. }) => {
                "stop the other gateway (openclaw gateway status shows it) or use another --state-dir".into()
            }
            GatewayError::Lock(LockError::Io { .. }) => "check the state directory's ownership and permissions".into(),
            GatewayError::PortInUse { holder: Some(h), .. } => {
                format!("stop pid {} or start with --port <other>", h.pid)
            }
            GatewayError::PortInUse { .. } => "stop the other listener or start with --port <other>".into(),
            GatewayError::WeakToken { .. } => "use a long random token (remove gateway.auth.token to have one generated, or `openssl rand -hex 32`), or bind to loopback".into(),
            GatewayError::Bind { .. } => "check gateway.bind / --bind and that the address exists on this host".into(),
            GatewayError::Devices(_) => "restore or remove the named file under <state>/devices/".into(),
            GatewayError::Runs(_) => "check <state>/agent/runs.db (ownership, disk space); move it aside to start with no run history".into(),
            GatewayError::Sessions(_) => "check <state>/agent/sessions.db (ownership, disk space); move it aside to start with no conversation history".into(),
            GatewayError::Serve(_) => "see the log lines above".into(),
        }
    }
}

/// How many received messages may wait for the agent before channels feel back-pressure.
pub const INBOUND_CAPACITY: usize = 1024;

/// Shortest token accepted on a non-loopback bind (refused below it: a one-character token on
/// `0.0.0.0` is guessed within the throttle's first window). On loopback a shorter one only
/// warns. A constant, not a config key.
pub const MIN_TOKEN_CHARS_NON_LOOPBACK: usize = 16;

/// The exposure checks of a start: refuses weak tokens on a non-loopback bind and returns the
/// warnings for a non-loopback bind, `auth.mode: none` and short tokens on loopback.
pub fn exposure_check(
    bind: IpAddr,
    auth_mode: crate::gateway::settings::AuthMode,
    gateway_token: Option<&str>,
    hooks_token: Option<&str>,
) -> Result<Vec<String>, GatewayError> {
    use crate::gateway::settings::AuthMode;
    let mut warnings = Vec::new();
    let loopback = bind.is_loopback();
    for (which, token) in [("gateway token", gateway_token.filter(|_| auth_mode == AuthMode::Token)), ("hooks token", hooks_token)] {
        let Some(t) = token else { continue };
        let len = t.chars().count();
        if len >= MIN_TOKEN_CHARS_NON_LOOPBACK {
            continue;
        }
        if !loopback {
            return Err(GatewayError::WeakToken { which, len, bind });
        }
        warnings.push(format!("the {which} is only {len} characters long; use at least {MIN_TOKEN_CHARS_NON_LOOPBACK} (it would be refused on a non-loopback bind)"));
    }
    if !loopback {
        warnings.push(format!("listening on {bind}: the gateway is reachable from other machines; prefer a loopback bind with an SSH tunnel or a TLS reverse proxy"));
    }
    if auth_mode == AuthMode::None {
        warnings.push("gateway.auth.mode is none: every local process, and every browser page that passes the Origin and Host checks, gets operator.admin".into());
    }
    Ok(warnings)
}

/// Options of one run that are not settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print the banner (listening address, dashboard URL, SSH tunnel) on stdout.
    pub banner: bool,
}

/// The security headers upstream sends on every response.
async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(self), geolocation=()"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Builds the router for a state.
pub fn router(st: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/health", get(health_h))
        .route("/healthz", get(health_h))
        .route("/ready", get(ready_h))
        .route("/readyz", get(ready_h));
    if st.settings.hooks.enabled {
        let p = st.settings.hooks.path.clone();
        r = r.route(&p, any(hooks::handle)).route(&format!("{p}/{{*rest}}"), any(hooks::handle));
    }
    r.fallback(root_h)
        .layer(axum::middleware::from_fn_with_state(st.clone(), host_guard))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(st)
}

async fn health_h(State(st): State<Arc<AppState>>) -> Response {
    axum::Json(health::health(&st)).into_response()
}

async fn ready_h(State(st): State<Arc<AppState>>) -> Response {
    let (ok, body) = health::ready(&st);
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body)).into_response()
}

fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether a `Host` header names this gateway: an IP literal (a rebinding attack needs a DNS
/// name), `localhost` or `*.localhost`, or one of `names` (this machine's host name and the hosts
/// of `gateway.controlUi.allowedOrigins`). A missing `Host` (non-browser HTTP/1.0 clients) is
/// allowed: browsers always send one. Without this check a page on any domain that resolves to
/// 127.0.0.1 passes the same-origin test and, with `auth.mode: none`, gets `operator.admin`.
pub fn host_allowed(host: Option<&str>, names: &[String]) -> bool {
    let Some(host) = host.map(str::trim) else { return true };
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    !name.is_empty() && (name == "localhost" || name.ends_with(".localhost") || names.contains(&name))
}

/// The host names [`host_allowed`] accepts besides IP literals and `localhost`: this machine's
/// host name and the hosts of the allowed origins, lowercase.
pub fn allowed_host_names(allowed_origins: &[String], machine_hostname: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let Some(h) = machine_hostname.map(str::trim).filter(|h| !h.is_empty()) {
        names.push(h.to_ascii_lowercase());
        if let Some((short, _)) = h.split_once('.') {
            names.push(short.to_ascii_lowercase());
        }
    }
    for o in allowed_origins {
        let rest = o.split_once("://").map(|(_, r)| r).unwrap_or(o);
        let authority = rest.split('/').next().unwrap_or("");
        let name = match authority.rsplit_once(':') {
            Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => authority,
        };
        if !name.is_empty() && name != "*" {
            names.push(name.trim_end_matches('.').to_ascii_lowercase());
        }
    }
    names
}

static HOST_REFUSED_WARNINGS: WarnThrottle = WarnThrottle::new(Duration::from_secs(60));
static ORIGIN_REFUSED_WARNINGS: WarnThrottle = WarnThrottle::new(Duration::from_secs(60));

/// Refuses requests whose `Host` does not name this gateway (DNS rebinding), with 421.
async fn host_guard(State(st): State<Arc<AppState>>, req: Request, next: axum::middleware::Next) -> Response {
    let host = req.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if host_allowed(host, &st.allowed_hosts) {
        return next.run(req).await;
    }
    if let Some(suppressed) = HOST_REFUSED_WARNINGS.allow(std::time::Instant::now()) {
        tracing::warn!(host = %clip(host.unwrap_or("")), suppressed, "request refused: Host does not name this gateway (possible DNS rebinding; add the name to gateway.controlUi.allowedOrigins)");
    }
    (StatusCode::MISDIRECTED_REQUEST, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Misdirected Request: host not allowed").into_response()
}

/// Origin policy for the WebSocket: no Origin (non-browser clients), same origin as `Host`,
/// loopback origins, or one listed in `gateway.controlUi.allowedOrigins`.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else { return false };
    if host.is_some_and(|h| h.eq_ignore_ascii_case(rest)) {
        return true;
    }
    let hostname = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split(':').next().unwrap_or("")
    };
    hostname.eq_ignore_ascii_case("localhost") || hostname.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn root_h(State(st): State<Arc<AppState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    if is_upgrade(req.headers()) {
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
        if !origin_allowed(origin, host, &st.settings.control_ui.allowed_origins) {
            if let Some(suppressed) = ORIGIN_REFUSED_WARNINGS.allow(std::time::Instant::now()) {
                tracing::warn!(peer = %peer, origin = %clip(origin.unwrap_or("")), suppressed, "websocket upgrade refused: origin not allowed (further refusals logged once a minute)");
            }
            return (StatusCode::FORBIDDEN, "Forbidden: origin not allowed").into_response();
        }
        if st.phase() == Phase::Draining {
            return (StatusCode::SERVICE_UNAVAILABLE, "gateway stopping").into_response();
        }
        let Some(permit) = st.ws_clients.try_acquire() else {
            tracing::warn!(peer = %peer, "websocket upgrade refused: too many control clients");
            return (StatusCode::SERVICE_UNAVAILABLE, "too many control clients").into_response();
        };
        return wsupgrade::upgrade(req, move |ws, budget| async move {
            control::serve(ws, st, peer, budget).await;
            drop(permit);
        });
    }
    let base = st.settings.control_ui.base_path.as_str();
    let path = req.uri().path();
    let ui_path = path == "/" && base.is_empty() || !base.is_empty() && (path == base || path == format!("{base}/"));
    if st.settings.control_ui.enabled && ui_path && req.method() == axum::http::Method::GET {
        return ui_page(base).into_response();
    }
    if st.settings.control_ui.enabled && req.method() == axum::http::Method::GET
        && let Some((ctype, body)) = path.strip_prefix(&format!("{base}/assets/")).and_then(crate::gateway::ui::asset)
    {
        return ([(header::CONTENT_TYPE, ctype)], body).into_response();
    }
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Not Found").into_response()
}

fn ui_page(base: &str) -> Html<String> {
    Html(crate::gateway::ui::index(base))
}

/// Binds the listener; on `EADDRINUSE` names the holder.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, GatewayError> {
    match std::net::TcpListener::bind(addr) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(GatewayError::PortInUse { host: addr.ip(), port: addr.port(), holder: portinfo::find_holder(addr.port()) })
        }
        Err(source) => Err(GatewayError::Bind { addr, source }),
    }
}

/// The prepared gateway: checks passed, port bound, not yet serving.
pub struct Prepared {
    st: Arc<AppState>,
    listener: std::net::TcpListener,
    _lock: lock::StateLock,
    shutdown_tx: watch::Sender<bool>,
    worker: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    inbound: crate::messaging::InboundReceiver,
    warnings: Vec<String>,
}

impl Prepared {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.st.local_addr
    }

    /// The shared state (for in-process tests and embedding).
    pub fn state(&self) -> Arc<AppState> {
        self.st.clone()
    }
}

/// Startup before the runtime serves: lock, token checks (before binding), device store, bind.
pub fn prepare(settings: GatewaySettings, logs: LogBuffer, channels: ChannelStatusHandle) -> Result<Prepared, GatewayError> {
    let state_lock = lock::acquire(&settings.state)?;
    let bind_label = settings.bind_host.to_string();
    let resolved = token::resolve(
        settings.auth_mode,
        settings.bind_host.is_loopback(),
        &bind_label,
        &settings.token_sources,
        settings.expected_token_fingerprint.as_deref(),
        settings.remote_token.as_ref(),
        &settings.state,
        token::generate_token,
    )?;
    let hooks_token = if settings.hooks.enabled {
        match token::agree(&settings.hooks.token_sources)? {
            Some(s) => Some(s.value.clone()),
            None => return Err(TokenError::HooksTokenMissing.into()),
        }
    } else {
        None
    };
    let mut warnings = resolved.warnings.clone();
    warnings.extend(exposure_check(
        settings.bind_host,
        settings.auth_mode,
        resolved.token.as_ref().map(|t| t.expose()),
        hooks_token.as_ref().map(|t| t.expose()),
    )?);
    if let (Some(h), Some(g)) = (&hooks_token, &resolved.token)
        && token::tokens_equal(h.expose(), g.expose()) {
            warnings.push("hooks.token equals the gateway token; use a separate hooks token so a leaked webhook URL cannot control the gateway".into());
        }
    if resolved.generated_now {
        warnings.push(format!("generated a gateway token ({}) and stored it in {}; it is reused on every start", resolved.token.as_ref().map(|t| t.fingerprint()).unwrap_or_default(), settings.state.gateway_token_file().display()));
    }
    let mut devices = DeviceStore::load(&settings.state)?;
    // Expired requests stay hidden by `pending(now)` even when this write fails; say so.
    if let Err(e) = devices.expire(crate::agent::runs::unix_ms()) {
        tracing::warn!(error = %e, "could not drop expired device pairing requests from disk");
    }
    let listener = bind(settings.bind_addr())?;
    let local_addr = listener.local_addr().map_err(|source| GatewayError::Bind { addr: settings.bind_addr(), source })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let clock: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(crate::agent::runs::unix_ms);
    let sessions = crate::agent::sessions::SessionStore::open(
        &settings.state.root().join("agent").join("sessions.db"),
        crate::agent::sessions::DEFAULT_MAX_MESSAGES,
    )?;
    let app = Arc::new(crate::app::App::new(
        settings.app.clone(),
        channels.clone(),
        sessions,
        crate::agent::pairing_store::PairingStore::new(settings.state.root()),
        clock.clone(),
    ));
    let executor = Arc::new(crate::app::executor::AgentExecutor::new(app.clone()));
    let (runs, worker) = RunRegistry::open(&settings.state.runs_db(), executor, DEFAULT_RETENTION, clock)?;
    app.set_runs(runs.clone());
    let (inbound_sink, inbound) = crate::messaging::inbound_queue(INBOUND_CAPACITY);
    let st = Arc::new(AppState::new(
        settings,
        resolved.token,
        hooks_token,
        local_addr,
        runs,
        app,
        inbound_sink,
        devices,
        logs,
        channels,
        shutdown_rx,
    ));
    tracing::info!(source = %resolved.source_label, fingerprint = %st.token.as_ref().map(|t| t.fingerprint()).unwrap_or_else(|| "none".into()), "gateway token resolved");
    Ok(Prepared { st, listener, _lock: state_lock, shutdown_tx, worker: Box::pin(worker), inbound, warnings })
}

/// A label for the source of the token the gateway runs with (the first agreed explicit
/// source, else its generated token file).
fn runtime_token_source(st: &AppState) -> String {
    match (&st.token, st.settings.auth_mode) {
        (None, _) | (_, crate::gateway::settings::AuthMode::None) => "auth.mode none".into(),
        _ => st.settings.token_sources.first().map(|s| s.label.clone()).unwrap_or_else(|| {
            format!("generated token file {}", st.settings.state.gateway_token_file().display())
        }),
    }
}

fn write_runtime_file(st: &AppState) {
    let v = json!({
        "pid": std::process::id(),
        "host": st.local_addr.ip().to_string(),
        "port": st.local_addr.port(),
        "version": VERSION,
        "startedAtMs": crate::agent::runs::unix_ms(),
        "stateDir": st.settings.state.root(),
        // Which token the gateway runs with, so the CLI can say which source to use (no secret).
        "tokenFingerprint": st.token.as_ref().map(|t| t.fingerprint()),
        "tokenSource": runtime_token_source(st),
    });
    if let Err(e) = write_atomic(&st.settings.state.gateway_runtime_file(), v.to_string().as_bytes(), 0o600) {
        tracing::warn!(error = %e, "cannot write runtime file");
    }
}

fn print_banner(st: &AppState) {
    let addr = st.local_addr;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let base = &st.settings.control_ui.base_path;
    println!("openclaw gateway {VERSION} listening on http://{}", addr);
    let url = format!("http://{host}:{}{base}/", addr.port());
    match (&st.token, std::io::stdout().is_terminal()) {
        (Some(t), true) => println!("Dashboard: {url}#token={}", t.expose()),
        (Some(_), false) => println!("Dashboard: {url} (run `openclaw dashboard` for the URL with the token)"),
        (None, _) => println!("Dashboard: {url}"),
    }
    println!(
        "From another machine: ssh -N -L {p}:127.0.0.1:{p} {user}@<this-host>, then open http://127.0.0.1:{p}{base}/",
        p = addr.port(),
        user = std::env::var("USER").unwrap_or_else(|_| "you".into())
    );
    if st.settings.hooks.enabled {
        println!("Hooks: POST http://{host}:{}{}/agent (Authorization: Bearer <hooks token>)", addr.port(), st.settings.hooks.path);
    }
}

/// Starts the configured channel accounts. Each runs in its own supervised task: a failure
/// there is reported in `/health` and never stops the gateway. Returns the registry of their
/// handles (sending goes through it; `None` when no channel is configured). Inbound messages go
/// to the gateway's bounded queue, which the operations layer's consumer reads.
fn start_channels(st: &AppState) -> Option<crate::channels::registry::ChannelRegistry> {
    if st.settings.whatsapp.is_empty() {
        return None;
    }
    match crate::channels::whatsapp::supervisor::start_accounts_with_messages(&st.settings.state, &st.settings.whatsapp, &st.channels, &st.shutdown, st.inbound.clone()) {
        Ok((sups, registry)) => {
            for h in sups.all() {
                st.whatsapp.push(h);
            }
            tracing::info!(accounts = st.settings.whatsapp.len(), "whatsapp supervisors started");
            Some(registry)
        }
        Err(e) => {
            tracing::error!("whatsapp channel not started: {e}");
            None
        }
    }
}

/// Registers SIGTERM and SIGINT handlers now (call it before binding, inside the runtime, so a
/// signal that arrives early still drains cleanly) and returns a future that completes on either.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    })
}

/// Serves until SIGTERM/SIGINT, then drains: `/ready` turns 503, new connections stop, WS clients
/// get a `shutdown` event, in-flight requests and queued runs finish (bounded by [`DRAIN_TIMEOUT`]).
pub async fn serve(
    p: Prepared,
    opts: RunOptions,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let Prepared { st, listener, _lock, shutdown_tx, worker, inbound, warnings } = p;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    listener.set_nonblocking(true).map_err(GatewayError::Serve)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(GatewayError::Serve)?;
    let worker = tokio::spawn(worker);
    write_runtime_file(&st);
    st.set_phase(Phase::Ready);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("listening")]);
    tracing::info!(listen = %st.local_addr, auth = ?st.settings.auth_mode, hooks = st.settings.hooks.enabled,
        startup_ms = st.uptime_ms(), "gateway ready");
    if opts.banner {
        print_banner(&st);
    }
    if let Some(registry) = start_channels(&st) {
        st.app.set_registry(registry);
    }
    let consumer = tokio::spawn(st.app.clone().run_inbound(inbound, st.shutdown.clone()));
    let app = router(st.clone());
    let drain_st = st.clone();
    let shutdown = async move {
        signal.await;
        drain_st.set_phase(Phase::Draining);
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutdown requested; draining");
        let _ = shutdown_tx.send(true);
    };
    let drain_started = std::sync::Arc::new(std::sync::Mutex::new(None::<tokio::time::Instant>));
    let mark = drain_started.clone();
    let shutdown = async move {
        shutdown.await;
        *mark.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
    };
    conns::serve(listener, app, shutdown, Arc::new(conns::Tracker::default()), DRAIN_TIMEOUT).await;
    // Let queued runs reach a terminal state (they are recorded either way), within the same
    // bound as the connections.
    let started = drain_started.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(tokio::time::Instant::now);
    let deadline = started + DRAIN_TIMEOUT;
    while st.runs.in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.abort();
    consumer.abort();
    // The supervisors saw the shutdown flag with everyone else; give them a moment to close.
    let _ = tokio::time::timeout(Duration::from_secs(3), st.whatsapp.join_all()).await;
    let _ = std::fs::remove_file(st.settings.state.gateway_runtime_file());
    tracing::info!(uptime_ms = st.uptime_ms(), runs = ?st.runs.counters(), "shutdown completed cleanly");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_policy() {
        assert!(origin_allowed(None, None, &[]));
        assert!(origin_allowed(Some("http://127.0.0.1:18789"), Some("127.0.0.1:18789"), &[]));
        assert!(origin_allowed(Some("http://localhost:5173"), Some("127.0.0.1:18789"), &[]));
        assert!(origin_allowed(Some("http://[::1]:1"), None, &[]));
        assert!(!origin_allowed(Some("https://evil.example"), Some("127.0.0.1:18789"), &[]));
        assert!(origin_allowed(Some("https://ui.example"), Some("x"), &["https://ui.example".into()]));
        assert!(origin_allowed(Some("https://gw.example"), Some("gw.example"), &[]));
    }

    #[test]
    fn issue14_item7_weak_tokens_refused_off_loopback_and_exposure_warned() {
        use crate::gateway::settings::AuthMode;
        let lan: IpAddr = "0.0.0.0".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let strong = "0123456789abcdef";
        assert!(matches!(exposure_check(lan, AuthMode::Token, Some("x"), None), Err(GatewayError::WeakToken { which: "gateway token", len: 1, .. })));
        assert!(matches!(exposure_check(lan, AuthMode::Token, Some(strong), Some("short")), Err(GatewayError::WeakToken { which: "hooks token", .. })));
        assert_eq!(GatewayError::WeakToken { which: "gateway token", len: 1, bind: lan }.exit_code(), 19);
        let w = exposure_check(lan, AuthMode::Token, Some(strong), Some(strong)).unwrap();
        assert!(w.len() == 1 && w[0].contains("reachable from other machines"), "{w:?}");
        let w = exposure_check(lo, AuthMode::Token, Some("x"), None).unwrap();
        assert!(w.len() == 1 && w[0].contains("only 1 characters"), "{w:?}");
        let w = exposure_check(lo, AuthMode::None, None, None).unwrap();
        assert!(w.len() == 1 && w[0].contains("auth.mode is none"), "{w:?}");
        assert!(exposure_check(lo, AuthMode::Token, Some(strong), None).unwrap().is_empty());
    }

    #[test]
    fn issue14_item11_host_policy() {
        let names = allowed_host_names(&["https://UI.example:8443/".into(), "*".into()], Some("box.lan"));
        assert_eq!(names, vec!["box.lan", "box", "ui.example"]);
        for ok in [None, Some("127.0.0.1:18789"), Some("10.0.0.5"), Some("[::1]:18789"), Some("localhost:1"), Some("app.localhost"), Some("BOX:18789"), Some("box.lan."), Some("ui.example:8443")] {
            assert!(host_allowed(ok, &names), "{ok:?}");
        }
        for bad in [Some("evil.example:18789"), Some("127.0.0.1.evil.example"), Some("localhost.evil.example"), Some(""), Some("[evil]:1"), Some("gw.example")] {
            assert!(!host_allowed(bad, &names), "{bad:?}");
        }
    }
}
