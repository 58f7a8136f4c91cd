//! The per-account supervisor task: the state machine that runs connections, reacts to each
//! disconnect by [`policy::react`](super::policy::react), publishes every state to the
//! [`ChannelStatusHandle`] and logs each transition once.
//!
//! Sleeping uses tokio's clock (tests pause it); persisted times use the injected wall clock.
//! The account's task runs inside a keeper task: a panic is caught there, reported as
//! `crashed`, and the task is restarted with its own backoff. Other accounts never notice.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::super::client::{
    ClientConfig, ClientError, ConnectionEnd, Event, RunMode, SessionCommand, run_session,
};
use super::super::creds::{Creds, CredsStore, Me};
use super::super::crypto::SharedEntropy;
use super::super::disconnect::DisconnectReason;
use super::persist::{AccountFiles, Cooldown, LinkLimits};
use super::policy::{Backoff, Policy, Reaction, react};
use super::session_lock::{SessionLock, SessionLockError};
use crate::channels::status::{ChannelStatusHandle, ConnectionState, LastDisconnect};

/// The channel id in statuses.
pub const CHANNEL: &str = "whatsapp";

/// Wall clock in unix milliseconds.
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system wall clock in unix ms.
pub fn system_wall_clock() -> WallClock {
    Arc::new(crate::util::clock::unix_ms)
}

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs one connection until it ends. The production connector is [`ClientConnector`]; tests
/// wrap it (for example to inject a panic).
pub trait Connector: Send + Sync + 'static {
    /// Connects with the account's credentials and runs until the connection ends, sending
    /// [`Event`]s (at least `Open` on `<success>`) and serving `commands`.
    fn connect<'a>(
        &'a self,
        events: &'a mpsc::UnboundedSender<Event>,
        commands: &'a mut mpsc::UnboundedReceiver<SessionCommand>,
    ) -> BoxFuture<'a, Result<ConnectionEnd, ClientError>>;
}

/// The real client.
pub struct ClientConnector(pub ClientConfig);

impl Connector for ClientConnector {
    fn connect<'a>(
        &'a self,
        events: &'a mpsc::UnboundedSender<Event>,
        commands: &'a mut mpsc::UnboundedReceiver<SessionCommand>,
    ) -> BoxFuture<'a, Result<ConnectionEnd, ClientError>> {
        Box::pin(run_session(&self.0, events, RunMode::UntilDisconnect, Some(commands)))
    }
}

/// One account to supervise.
#[derive(Clone)]
pub struct AccountSpec {
    /// The account id.
    pub account: String,
    /// `enabled` in the config; a disabled account only reports `disabled`.
    pub enabled: bool,
    /// Its credentials.
    pub creds: CredsStore,
    /// Its persisted cooldown and link guard.
    pub files: AccountFiles,
    /// How to connect.
    pub connector: Arc<dyn Connector>,
}

/// What every supervisor shares: timing, clocks, randomness and where statuses go.
#[derive(Clone)]
pub struct SupervisorEnv {
    /// The reconnect schedule.
    pub policy: Policy,
    /// The link guard's limits (reported as `linkAllowedAt`).
    pub link_limits: LinkLimits,
    /// Wall clock for persisted times and statuses.
    pub wall: WallClock,
    /// Jitter.
    pub rng: SharedEntropy,
    /// Where states are published.
    pub status: ChannelStatusHandle,
}

/// A request to a supervisor.
#[derive(Debug)]
pub enum Command {
    /// Ping the server over the live session and answer with the round trip.
    Probe(oneshot::Sender<Result<Duration, String>>),
    /// Log this companion out (see [`AccountHandle::logout`]).
    Logout(oneshot::Sender<Result<LogoutResult, String>>),
}

/// How long a live logout waits for the server's answer before the connection is dropped and
/// the credentials are moved aside anyway.
pub const LOGOUT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How a logout asked of a supervisor went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutResult {
    /// WhatsApp removed the device over the live session; the credentials were moved into
    /// `backup` (like a 401 logout) and the account reads `loggedOut`.
    Unlinked {
        /// Where the old credentials were kept.
        backup: Option<PathBuf>,
    },
    /// WhatsApp could not be told (`why`: not connected, no answer, refused); the credentials
    /// were moved into `backup` all the same. The device stays listed on the phone until
    /// removed there.
    RemovedLocallyOnly {
        /// Why WhatsApp was not told.
        why: String,
        /// Where the old credentials were kept.
        backup: Option<PathBuf>,
    },
    /// The account has no linked credentials; nothing changed.
    NotLinked,
}

/// A logout forwarded to the live session, waiting for the server's answer.
struct LiveLogout {
    reply: oneshot::Sender<Result<LogoutResult, String>>,
    answer: oneshot::Receiver<Result<(), String>>,
    deadline: Instant,
}

/// How [`Runner::connect_once`] ended.
enum Ended {
    /// Shutdown.
    Shutdown,
    /// The connection ended by itself: how, and for how long it was open.
    Connection(Result<ConnectionEnd, ClientError>, Option<Duration>),
    /// A logout ended it: the caller, and whether WhatsApp removed the device.
    LoggedOut(oneshot::Sender<Result<LogoutResult, String>>, Result<(), String>),
}

/// The handle of a running account supervisor.
#[derive(Clone)]
pub struct AccountHandle {
    account: String,
    tx: mpsc::UnboundedSender<Command>,
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl AccountHandle {
    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Pings the server over the live session (bounded by `timeout`).
    pub async fn probe(&self, timeout: Duration) -> Result<Duration, String> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Probe(tx)).map_err(|_| "the supervisor is not running".to_string())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the session ended before answering".into()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    /// Logs the account out, through its supervisor (the owner of its session): over a live
    /// session it asks WhatsApp to remove this companion device and ends the connection;
    /// then, holding the account's session lock throughout (no other process can link or
    /// connect in between), it moves the credentials aside exactly as a 401 logout does and
    /// publishes `loggedOut`. When not connected, WhatsApp is not contacted (no extra
    /// connection attempts) and the answer says so. Bounded by `timeout`.
    pub async fn logout(&self, timeout: Duration) -> Result<LogoutResult, String> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Logout(tx)).map_err(|_| "the supervisor is not running".to_string())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the supervisor stopped before answering".into()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    /// Waits until the supervisor has stopped (after shutdown).
    pub async fn join(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

/// Starts the supervisor of `spec`; it stops when `shutdown` turns true.
pub fn spawn(spec: AccountSpec, env: SupervisorEnv, shutdown: watch::Receiver<bool>) -> AccountHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let account = spec.account.clone();
    let commands = Arc::new(Mutex::new(rx));
    let task = tokio::spawn(keep(spec, env, shutdown, commands));
    AccountHandle { account, tx, task: Arc::new(std::sync::Mutex::new(Some(task))) }
}

/// Restarts the account's task after a panic, with backoff; returns on shutdown.
async fn keep(
    spec: AccountSpec,
    env: SupervisorEnv,
    shutdown: watch::Receiver<bool>,
    commands: Arc<Mutex<mpsc::UnboundedReceiver<Command>>>,
) {
    let mut crashes = 0u32;
    loop {
        let started = Instant::now();
        let runner = Runner::new(spec.clone(), env.clone(), shutdown.clone(), commands.clone());
        let task = tokio::spawn(runner.run());
        let err = match task.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => panic_message(e.into_panic()),
            Err(_) => return,
        };
        if *shutdown.borrow() {
            return;
        }
        if started.elapsed() >= env.policy.stable_after {
            crashes = 0;
        }
        let delay = env.policy.jitter(env.policy.nominal_crash(crashes), env.policy.crash_max, env.rng.as_ref());
        crashes += 1;
        let until_ms = (env.wall)() + delay.as_millis() as u64;
        env.status.update(CHANNEL, &spec.account, |s| {
            s.crashes = s.crashes.saturating_add(1);
            s.last_error = Some(err.clone());
        });
        publish(&env, &spec, None, ConnectionState::Crashed { until_ms, message: err, restarts: crashes });
        let mut sd = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = sd.wait_for(|v| *v) => return,
        }
    }
}

/// What the supervisor last read from disk for its statuses ([`Runner::refresh`]): publishing
/// itself reads no file (it runs on an async worker, under the status lock `/health` takes).
#[derive(Debug, Clone, Default)]
struct DiskView {
    /// `me` of the linked credentials.
    me: Option<Me>,
    /// When the link guard allows the next link.
    link_allowed_at: Option<u64>,
}

/// Publishes `state` for `spec`'s account (with the fields derived from it and from `disk`;
/// `None` keeps what the status says) and logs it when the state or its reason changed; every
/// crash is logged.
fn publish(env: &SupervisorEnv, spec: &AccountSpec, disk: Option<&DiskView>, state: ConnectionState) {
    let mut prev = None;
    let next = env.status.update(CHANNEL, &spec.account, |s| {
        prev = Some(s.state.clone());
        s.connected = matches!(state, ConnectionState::Connected { .. });
        if let Some(d) = disk {
            s.linked = d.me.is_some();
            s.set_self(d.me.as_ref().and_then(crate::channels::status::SelfId::from_whatsapp_me));
            s.link_allowed_at = d.link_allowed_at;
        }
        s.next_attempt_at = match &state {
            ConnectionState::BackingOff { until_ms, .. }
            | ConnectionState::CoolingDown { until_ms, .. }
            | ConnectionState::Crashed { until_ms, .. } => Some(*until_ms),
            ConnectionState::WaitingForNetwork { next_probe_ms, .. } => Some(*next_probe_ms),
            _ => None,
        };
        s.cooldown_until = match &state {
            ConnectionState::CoolingDown { until_ms, .. } => Some(*until_ms),
            _ => None,
        };
        s.detail = state.describe(super::persist::fmt_ms);
        s.state = state;
    });
    let changed = match (&prev, &next.state) {
        (_, ConnectionState::Crashed { .. }) => true,
        (Some(ConnectionState::WaitingForNetwork { .. }), ConnectionState::WaitingForNetwork { .. }) => false,
        (Some(a), b) => a.name() != b.name() || reason_of(a) != reason_of(b),
        (None, _) => true,
    };
    if !changed {
        return;
    }
    let (account, from, to) = (&spec.account, prev.as_ref().map_or("start", ConnectionState::name), next.state.name());
    match &next.state {
        ConnectionState::Crashed { .. } => tracing::error!(channel = CHANNEL, %account, from, to, crashes = next.crashes,
            "whatsapp: {}; other accounts and the gateway are not affected", next.detail),
        ConnectionState::CoolingDown { .. } | ConnectionState::Replaced | ConnectionState::LoggedOut { .. }
        | ConnectionState::Unsupported { .. } => {
            tracing::warn!(channel = CHANNEL, %account, from, to, "whatsapp: {}", next.detail)
        }
        _ => tracing::info!(channel = CHANNEL, %account, from, to, "whatsapp: {}", next.detail),
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".into()
    }
}

/// Why waiting stopped early.
enum Wake {
    Elapsed,
    Shutdown,
}

struct Runner {
    spec: AccountSpec,
    env: SupervisorEnv,
    shutdown: watch::Receiver<bool>,
    commands: Arc<Mutex<mpsc::UnboundedReceiver<Command>>>,
    backoff: Backoff,
    lock: Option<SessionLock>,
    disk: DiskView,
}

impl Runner {
    fn new(
        spec: AccountSpec,
        env: SupervisorEnv,
        shutdown: watch::Receiver<bool>,
        commands: Arc<Mutex<mpsc::UnboundedReceiver<Command>>>,
    ) -> Self {
        Self { spec, env, shutdown, commands, backoff: Backoff::default(), lock: None, disk: DiskView::default() }
    }

    fn now(&self) -> u64 {
        (self.env.wall)()
    }

    /// Publishes `state`; logs it when the state (or its reason) changed.
    fn report(&self, state: ConnectionState) {
        publish(&self.env, &self.spec, Some(&self.disk), state);
    }

    /// Reads the credentials (with the prekeys: a corrupt `pre-keys.json` stops the account
    /// like a corrupt `creds.json`) and the link guard on the blocking pool, and keeps what
    /// statuses show.
    /// Also returns the persisted cooldown in force.
    async fn refresh(&mut self) -> (Result<Option<Creds>, String>, Option<Cooldown>) {
        let (creds, files, limits, now) = (self.spec.creds.clone(), self.spec.files.clone(), self.env.link_limits.clone(), self.now());
        let read = tokio::task::spawn_blocking(move || {
            let loaded = creds.load().and_then(|c| creds.load_prekeys().map(|_| c)).map_err(|e| e.to_string());
            (loaded, files.link_allowed_at(now, &limits), files.cooldown(now))
        })
        .await;
        match read {
            Ok((loaded, link_allowed_at, cooldown)) => {
                self.disk = DiskView { me: loaded.as_ref().ok().and_then(|c| c.as_ref()).and_then(|c| c.me.clone()), link_allowed_at };
                (loaded, cooldown)
            }
            // The blocking pool is gone (runtime shutting down): read nothing, connect nothing.
            Err(e) => (Err(format!("reading the credentials failed: {e}")), None),
        }
    }

    /// Waits `d` of tokio time, answering commands meanwhile. A logout ends the wait
    /// ([`Wake::Elapsed`]: the state machine looks at the account again).
    async fn wait(&mut self, d: Duration) -> Wake {
        let deadline = Instant::now() + d;
        let commands = self.commands.clone();
        let mut rx = commands.lock().await;
        let mut shutdown = self.shutdown.clone();
        let logout = loop {
            let cmd = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Wake::Elapsed,
                _ = shutdown.wait_for(|v| *v) => return Wake::Shutdown,
                Some(cmd) = rx.recv() => cmd,
            };
            match cmd {
                Command::Probe(reply) => {
                    let _ = reply.send(Err(format!("not connected: {}", self.detail())));
                }
                Command::Logout(reply) => break reply,
            }
        };
        self.logout_idle(logout).await;
        Wake::Elapsed
    }

    fn detail(&self) -> String {
        self.env.status.get(CHANNEL, &self.spec.account).map(|s| s.detail).unwrap_or_default()
    }

    /// A logout while no session is open: nothing to do without linked credentials; else the
    /// credentials are moved aside without telling WhatsApp (connecting just for that could
    /// meet a cooldown, a replaced session or a dead network).
    async fn logout_idle(&mut self, reply: oneshot::Sender<Result<LogoutResult, String>>) {
        let creds = self.spec.creds.clone();
        let linked = tokio::task::spawn_blocking(move || creds.load()).await;
        match linked {
            Ok(Ok(Some(c))) if c.is_linked() => {}
            Ok(Ok(_)) => {
                let _ = reply.send(Ok(LogoutResult::NotLinked));
                return;
            }
            // Unreadable credentials: moving them aside is what the operator asked for.
            Ok(Err(_)) => {}
            Err(e) => {
                let _ = reply.send(Err(format!("cannot read the credentials: {e}")));
                return;
            }
        }
        let why = format!("not connected: {}", self.detail());
        self.finish_logout(reply, Err(why)).await;
    }

    /// Moves the credentials aside under the session lock, publishes `loggedOut` and answers.
    /// `told`: whether WhatsApp removed the device.
    async fn finish_logout(&mut self, reply: oneshot::Sender<Result<LogoutResult, String>>, told: Result<(), String>) {
        if self.lock.is_none() {
            match SessionLock::try_acquire(self.spec.creds.dir()) {
                Ok(l) => self.lock = Some(l),
                Err(SessionLockError::Held { pid }) if pid == Some(std::process::id()) => {
                    let _ = reply.send(Err(
                        "a link started from the Control UI holds this account's session; nothing was changed: try again when it has finished (or its QR code expired)".into(),
                    ));
                    return;
                }
                Err(SessionLockError::Held { pid }) => {
                    let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                    let _ = reply.send(Err(format!(
                        "another process{who} holds this account's session (an `openclaw channels login`?); nothing was changed: try again when it has finished"
                    )));
                    return;
                }
                Err(e) => {
                    let _ = reply.send(Err(e.to_string()));
                    return;
                }
            }
        }
        let now = self.now();
        let creds = self.spec.creds.clone();
        let retired = tokio::task::spawn_blocking(move || creds.retire(&format!("logged-out-{now}"))).await;
        let backup = match retired {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                self.set_error(format!("cannot move the logged-out credentials aside: {e}"));
                let _ = reply.send(Err(format!("cannot move the credentials aside: {e}")));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(format!("cannot move the credentials aside: {e}")));
                return;
            }
        };
        // The credentials are gone: releasing the session now lets a new link take it.
        self.lock = None;
        self.disk.me = None;
        self.env.status.update(CHANNEL, &self.spec.account, |s| s.last_error = None);
        self.report(ConnectionState::LoggedOut { backup: backup.as_ref().map(|p| p.display().to_string()), by_operator: true });
        tracing::info!(channel = CHANNEL, account = %self.spec.account, told_whatsapp = told.is_ok(), "whatsapp: logged out on request");
        let _ = reply.send(Ok(match told {
            Ok(()) => LogoutResult::Unlinked { backup },
            Err(why) => LogoutResult::RemovedLocallyOnly { why, backup },
        }));
    }

    async fn run(mut self) {
        if !self.spec.enabled {
            self.report(ConnectionState::Disabled);
            while !matches!(self.wait(Duration::from_secs(86_400)).await, Wake::Shutdown) {}
            return;
        }
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            match self.step().await {
                Wake::Elapsed => {}
                Wake::Shutdown => break,
            }
        }
        self.lock = None;
        self.report(ConnectionState::Stopped);
    }

    /// One turn of the state machine.
    async fn step(&mut self) -> Wake {
        let (loaded, cooldown) = self.refresh().await;
        // 1. A persisted cooldown (from this or an earlier process, or from a login) wins.
        if let Some(c) = cooldown {
            self.report(ConnectionState::CoolingDown { until_ms: c.until_ms, reason: c.reason });
            let left = Duration::from_millis(c.until_ms.saturating_sub(self.now()));
            return self.wait(left).await;
        }
        // 2. Only linked, readable credentials connect (a corrupt `pre-keys.json` stops the
        //    account like a corrupt `creds.json`: fail closed, nothing is replaced).
        match loaded {
            Ok(Some(c)) if c.is_linked() => {}
            Ok(_) => {
                self.lock = None;
                let dir = self.spec.creds.dir();
                if SessionLock::is_held(dir) {
                    self.report(ConnectionState::Pairing { pid: SessionLock::holder(dir) });
                } else if !matches!(self.current(), Some(ConnectionState::LoggedOut { .. })) {
                    self.report(ConnectionState::NotLinked);
                }
                return self.wait(self.env.policy.link_poll).await;
            }
            Err(e) => {
                self.set_error(e.to_string());
                self.report(ConnectionState::Unsupported { reason: format!("credentials unreadable: {e}") });
                return self.wait(self.env.policy.link_poll * 5).await;
            }
        }
        // 3. One session per account on this machine.
        if self.lock.is_none() {
            match SessionLock::try_acquire(self.spec.creds.dir()) {
                Ok(l) => self.lock = Some(l),
                Err(SessionLockError::Held { pid }) => {
                    self.report(ConnectionState::Pairing { pid });
                    return self.wait(self.env.policy.link_poll).await;
                }
                Err(e) => {
                    self.set_error(e.to_string());
                    return self.wait(self.env.policy.link_poll * 5).await;
                }
            }
        }
        // 4. Connect.
        match self.connect_once().await {
            Ended::Shutdown => Wake::Shutdown,
            Ended::Connection(result, open_for) => self.after((result, open_for)).await,
            Ended::LoggedOut(reply, told) => {
                self.finish_logout(reply, told).await;
                Wake::Elapsed
            }
        }
    }

    fn current(&self) -> Option<ConnectionState> {
        self.env.status.get(CHANNEL, &self.spec.account).map(|s| s.state)
    }

    fn set_error(&self, e: String) {
        self.env.status.update(CHANNEL, &self.spec.account, |s| s.last_error = Some(e));
    }

    /// Runs one connection until it ends, shutdown, or a logout's answer (a logout that gets no
    /// answer within [`LOGOUT_ANSWER_TIMEOUT`] drops the connection).
    async fn connect_once(&mut self) -> Ended {
        let probing = matches!(self.current(), Some(ConnectionState::WaitingForNetwork { .. }));
        if !probing {
            self.report(ConnectionState::Connecting { attempt: self.backoff.transient + 1 });
        }
        self.env.status.update(CHANNEL, &self.spec.account, |s| s.attempts += 1);
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (sess_tx, mut sess_rx) = mpsc::unbounded_channel();
        let connector = self.spec.connector.clone();
        let commands = self.commands.clone();
        let mut rx = commands.lock().await;
        let mut shutdown = self.shutdown.clone();
        let mut opened_at: Option<Instant> = None;
        let mut logout: Option<LiveLogout> = None;
        let fut = connector.connect(&ev_tx, &mut sess_rx);
        tokio::pin!(fut);
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let result = loop {
            let logout_deadline = logout.as_ref().map_or(far, |l| l.deadline);
            tokio::select! {
                r = &mut fut => break Some(r),
                Some(ev) = ev_rx.recv() => self.on_event(ev, &mut opened_at),
                Some(cmd) = rx.recv() => match cmd {
                    Command::Probe(reply) => { let _ = sess_tx.send(SessionCommand::Probe(reply)); }
                    Command::Logout(reply) if logout.is_some() => {
                        let _ = reply.send(Err("a logout is already in progress".into()));
                    }
                    Command::Logout(reply) => {
                        let (tx, answer) = oneshot::channel();
                        let _ = sess_tx.send(SessionCommand::Logout(tx));
                        logout = Some(LiveLogout { reply, answer, deadline: Instant::now() + LOGOUT_ANSWER_TIMEOUT });
                    }
                },
                _ = tokio::time::sleep_until(logout_deadline), if logout.is_some() => break None,
                _ = shutdown.wait_for(|v| *v) => return Ended::Shutdown,
            }
        };
        while let Ok(ev) = ev_rx.try_recv() {
            self.on_event(ev, &mut opened_at);
        }
        if let Some(mut l) = logout {
            // The session is over (ended or dropped here): nothing writes the credentials now.
            let told = match (l.answer.try_recv(), &result) {
                (Ok(told), _) => told,
                (Err(_), Some(Ok(ConnectionEnd { reason: Some(r), .. }))) => Err(format!("the connection ended first ({r})")),
                (Err(_), Some(Err(e))) => Err(format!("the connection failed ({e})")),
                (Err(_), Some(Ok(ConnectionEnd { reason: None, .. }))) => Err("the connection ended first".into()),
                (Err(_), None) => Err(format!("WhatsApp did not answer within {} s", LOGOUT_ANSWER_TIMEOUT.as_secs())),
            };
            return Ended::LoggedOut(l.reply, told);
        }
        match result {
            Some(r) => Ended::Connection(r, opened_at.map(|t| t.elapsed())),
            // Only a logout's deadline breaks without a result.
            None => Ended::Shutdown,
        }
    }

    fn on_event(&self, ev: Event, opened_at: &mut Option<Instant>) {
        if let Event::Open { .. } = ev {
            *opened_at = Some(Instant::now());
            self.env.status.update(CHANNEL, &self.spec.account, |s| {
                s.connects += 1;
                s.last_error = None;
            });
            self.report(ConnectionState::Connected { since_ms: self.now() });
        }
    }

    /// Reacts to the end of a connection.
    async fn after(&mut self, (result, open_for): (Result<ConnectionEnd, ClientError>, Option<Duration>)) -> Wake {
        if open_for.is_some_and(|d| d >= self.env.policy.stable_after) {
            self.backoff.connection_was_stable();
        }
        let (reason, opened) = match result {
            Ok(ConnectionEnd { reason: Some(r), opened }) => (r, opened),
            Ok(ConnectionEnd { reason: None, opened }) => (DisconnectReason::ConnectionClosed, opened),
            Err(e) => {
                // Not a server decision (bad creds file, rejected certificate chain, ...): retry
                // on the transient schedule and say why.
                self.set_error(e.to_string());
                (DisconnectReason::BadSession, open_for.is_some())
            }
        };
        let now = self.now();
        let phase = if opened { "" } else { " during login" };
        self.env.status.update(CHANNEL, &self.spec.account, |s| {
            s.last_disconnect = Some(LastDisconnect { code: reason.code(), reason: reason.to_string(), at_ms: now });
        });
        let reaction = react(&reason, opened);
        let delay = self.backoff.next_delay(&reaction, &self.env.policy, self.env.rng.as_ref());
        match (reaction, delay) {
            (Reaction::Cooldown, Some(d)) => {
                let c = Cooldown { until_ms: now + d.as_millis() as u64, reason: format!("{reason}{phase}") };
                let (files, saved) = (self.spec.files.clone(), c.clone());
                let persisted = tokio::task::spawn_blocking(move || files.set_cooldown(now, saved).map_err(|e| e.to_string()))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                if let Err(e) = persisted {
                    // Still cool down in memory: never hammer WhatsApp because a disk is full.
                    self.set_error(format!("cannot persist the cooldown: {e}"));
                }
                self.report(ConnectionState::CoolingDown { until_ms: c.until_ms, reason: c.reason });
                self.wait(d).await
            }
            (Reaction::LoggedOut, _) => {
                // Move the credentials aside while still holding the session lock: no other
                // process can take the session with credentials WhatsApp just refused.
                let creds = self.spec.creds.clone();
                let retired = tokio::task::spawn_blocking(move || creds.retire(&format!("logged-out-{now}")).map_err(|e| e.to_string()))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                self.lock = None;
                let backup = match retired {
                    Ok(p) => p.map(|p: PathBuf| p.display().to_string()),
                    Err(e) => {
                        self.set_error(format!("cannot keep the logged-out credentials: {e}"));
                        None
                    }
                };
                self.disk.me = None;
                self.report(ConnectionState::LoggedOut { backup, by_operator: false });
                Wake::Elapsed
            }
            (Reaction::Replaced, _) => {
                self.lock = None;
                self.report(ConnectionState::Replaced);
                self.park().await
            }
            (Reaction::Unsupported, _) => {
                self.lock = None;
                self.report(ConnectionState::Unsupported { reason: reason.to_string() });
                self.park().await
            }
            (Reaction::NetworkProbe, Some(d)) => {
                let since_ms = match self.current() {
                    Some(ConnectionState::WaitingForNetwork { since_ms, .. }) => since_ms,
                    _ => now,
                };
                self.report(ConnectionState::WaitingForNetwork {
                    since_ms,
                    next_probe_ms: now + d.as_millis() as u64,
                    probes: self.backoff.network,
                });
                self.wait(d).await
            }
            (_, Some(d)) if d.is_zero() => {
                tracing::info!(channel = CHANNEL, account = %self.spec.account, "whatsapp: {reason}; reconnecting at once");
                Wake::Elapsed
            }
            (_, Some(d)) => {
                self.report(ConnectionState::BackingOff {
                    until_ms: now + d.as_millis() as u64,
                    reason: reason.to_string(),
                    attempt: self.backoff.transient.max(self.backoff.rate_limited),
                });
                self.wait(d).await
            }
            (_, None) => self.park().await,
        }
    }

    /// Stays stopped until shutdown (440, 411): only a restart resumes.
    async fn park(&mut self) -> Wake {
        loop {
            if let Wake::Shutdown = self.wait(Duration::from_secs(86_400)).await {
                return Wake::Shutdown;
            }
        }
    }
}

fn reason_of(s: &ConnectionState) -> Option<&str> {
    match s {
        ConnectionState::BackingOff { reason, .. } | ConnectionState::CoolingDown { reason, .. } => Some(reason),
        _ => None,
    }
}
