//! The client session: one connection from handshake to disconnect, plus the QR link flow
//! (registration → QR refs → pair-success → 515 → login) and logout.
//!
//! Time comes from tokio's clock (tests pause it) and from the injected `clock` for wall-clock
//! checks; randomness from the injected [`Entropy`](super::crypto::Entropy).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use super::binary::{Node, SERVER_JID};
use super::creds::Creds;
use super::creds::{CredsError, CredsStore};
use super::crypto::{SharedEntropy, os_entropy};
use super::disconnect::DisconnectReason;
use super::messages::{ConnEvent, ConnInbound, Consumer, Messaging, Outgoing, Reply, stanza};
use super::pairing::{PairError, handle_pair_success, qr_string, ref_lifetime};
use super::payload::{self, DEFAULT_APP_VERSION};
use super::prekeys::{self, INITIAL_PREKEY_COUNT, MIN_PREKEY_COUNT};
use super::socket::{ClientSocket, Endpoint, SocketError, connect};

/// How often the signed prekey is replaced (Signal recommends rotating it every few days to weeks;
/// we use a week).
pub const SIGNED_PREKEY_ROTATION: Duration = Duration::from_secs(7 * 86_400);

/// How long a replaced signed prekey is kept, for `pkmsg`s built from an older bundle.
pub const SIGNED_PREKEY_KEEP: Duration = Duration::from_secs(30 * 86_400);

/// Wall clock in unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Client settings. Build with [`ClientConfig::new`]; tests adjust the public fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// Server and trusted root.
    pub endpoint: Endpoint,
    /// Where the account's credentials live.
    pub store: CredsStore,
    /// WhatsApp Web version announced.
    pub app_version: [u32; 3],
    /// Keepalive ping interval (Baileys: 30 s).
    pub keepalive: Duration,
    /// Disconnect with 408 when nothing was received for this long (Baileys: interval + 5 s).
    pub liveness: Duration,
    /// Limit for connect + handshake (20 s, like all three reference clients).
    pub connect_timeout: Duration,
    /// Prekeys to upload when the server has fewer than the minimum.
    pub prekey_upload_count: u32,
    /// How long the first QR ref and each later one are shown (60 s and 20 s, reference §3.1).
    pub qr_ref_lifetimes: (Duration, Duration),
    /// Link by phone-number pairing code instead of QR: the account's phone number, digits only.
    pub pair_phone: Option<String>,
    /// Randomness.
    pub rng: SharedEntropy,
    /// Wall clock (certificate validity, timestamps).
    pub clock: Clock,
    /// The account's message path (store, outbox, inbound queue). `None`: messages are only
    /// acknowledged (the CLI's link and logout connections).
    pub messaging: Option<Arc<Messaging>>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Production settings for the account stored in `store`.
    pub fn new(store: CredsStore) -> Self {
        Self {
            endpoint: Endpoint::default(),
            store,
            app_version: DEFAULT_APP_VERSION,
            keepalive: Duration::from_secs(30),
            liveness: Duration::from_secs(35),
            connect_timeout: Duration::from_secs(20),
            prekey_upload_count: INITIAL_PREKEY_COUNT,
            qr_ref_lifetimes: (ref_lifetime(0), ref_lifetime(1)),
            pair_phone: None,
            rng: os_entropy(),
            clock: system_clock(),
            messaging: None,
        }
    }

    /// The configuration the gateway and the CLI use: production settings, except that a build
    /// with the `wa-mock` feature honours `OPENCLAW_WA_TEST_SERVER` / `OPENCLAW_WA_TEST_ROOT_KEY`
    /// (see [`ClientConfig::apply_test_env`]). Without the feature those variables do nothing.
    pub fn from_environment(store: CredsStore) -> Result<Self, String> {
        let cfg = Self::new(store);
        #[cfg(feature = "wa-mock")]
        let cfg = cfg.apply_test_env()?;
        Ok(cfg)
    }

    /// With the `wa-mock` feature only: when both `OPENCLAW_WA_TEST_SERVER` (url) and
    /// `OPENCLAW_WA_TEST_ROOT_KEY` (hex) are set, connect to that mock server and trust its root.
    /// Without the feature this function does not exist and the variables do nothing.
    #[cfg(feature = "wa-mock")]
    pub fn apply_test_env(mut self) -> Result<Self, String> {
        let (Ok(url), Ok(root)) = (
            std::env::var("OPENCLAW_WA_TEST_SERVER"),
            std::env::var("OPENCLAW_WA_TEST_ROOT_KEY"),
        ) else {
            return Ok(self);
        };
        let key: [u8; 32] = hex::decode(root.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or("OPENCLAW_WA_TEST_ROOT_KEY is not 32 bytes of hex")?;
        self.endpoint = Endpoint {
            url,
            origin: super::socket::WA_WEB_ORIGIN.into(),
            root: super::cert::TrustedRoot::for_testing(key),
        };
        Ok(self)
    }
}

/// What happens during a connection, for the CLI and the channel status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Show this QR string; it is valid for `expires_in`.
    Qr {
        /// The QR payload.
        qr: String,
        /// How long until the next ref replaces it.
        expires_in: Duration,
    },
    /// Type this code on the phone (Linked devices → Link with phone number); shown as `XXXX-XXXX`.
    PairingCode {
        /// The 8-character code.
        code: String,
    },
    /// pair-success verified and credentials saved; the server will ask for a restart (515).
    Paired {
        /// Our new JID.
        jid: String,
    },
    /// Logged in (`<success>`).
    Open {
        /// Our JID.
        jid: String,
    },
    /// Prekeys were uploaded.
    PreKeysUploaded {
        /// How many.
        count: u32,
    },
}

/// Failures that are not a server-side disconnect.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Credentials could not be read or written.
    #[error(transparent)]
    Creds(#[from] CredsError),
    /// The handshake failed (including a rejected certificate chain).
    #[error("handshake failed: {0}")]
    Handshake(#[source] SocketError),
    /// A pair-success was rejected (bad HMAC or signature).
    #[error("pairing rejected: {0}")]
    Pair(#[from] PairError),
    /// The phone's pairing-code notification was malformed.
    #[error(transparent)]
    PairCode(#[from] super::paircode::PairCodeError),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEnd {
    /// Whether `<success>` was reached.
    pub opened: bool,
    /// Why it ended; `None` if we closed it ourselves (run-until-open or logout).
    pub reason: Option<DisconnectReason>,
}

/// When [`run_connection`] should return on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Until the server or the network ends the connection.
    UntilDisconnect,
    /// Close once logged in and prekeys are settled (CLI login).
    UntilOpen,
    /// Log in, tell the server to remove this device, then close (CLI logout).
    Logout,
}

enum Pending {
    Count,
    Upload(u32),
    Ping,
    Probe(oneshot::Sender<Result<Duration, String>>, Instant),
    Logout,
    LiveLogout(oneshot::Sender<Result<(), String>>),
    Other,
    Reply(oneshot::Sender<Node>),
}

/// A request to a running session (see [`run_session`]).
#[derive(Debug)]
pub enum SessionCommand {
    /// Send a keepalive ping now and answer with the round-trip time.
    Probe(oneshot::Sender<Result<Duration, String>>),
    /// Ask the server to remove this companion device (`<remove-companion-device>`, as the
    /// phone's "Log out" does), answer whether it agreed, then end the connection. Before
    /// `<success>` it answers with an error and ends the connection all the same.
    Logout(oneshot::Sender<Result<(), String>>),
}

/// The next command, or never when there is no command channel (or it closed).
async fn next_command(
    rx: &mut Option<&mut mpsc::UnboundedReceiver<SessionCommand>>,
) -> SessionCommand {
    if let Some(r) = rx.as_mut()
        && let Some(c) = r.recv().await
    {
        return c;
    }
    *rx = None;
    std::future::pending().await
}

struct Session<'a> {
    cfg: &'a ClientConfig,
    creds: Creds,
    events: &'a mpsc::UnboundedSender<Event>,
    sock: ClientSocket,
    pending: HashMap<String, Pending>,
    next_id: u64,
    id_prefix: String,
    qr_refs: VecDeque<String>,
    qr_index: usize,
    qr_deadline: Option<Instant>,
    opened: bool,
    prekeys_settled: bool,
    logout_done: bool,
    pair_code: Option<(String, super::crypto::KeyPair)>,
    inbound: Option<ConnInbound>,
    out_rx: Option<mpsc::Receiver<Outgoing>>,
    conn_events: Option<mpsc::Sender<ConnEvent>>,
    ack_waiters: HashMap<String, oneshot::Sender<Node>>,
}

/// The next request of the outbox consumer, or never when there is none.
async fn next_outgoing(rx: &mut Option<mpsc::Receiver<Outgoing>>) -> Outgoing {
    if let Some(r) = rx.as_mut()
        && let Some(o) = r.recv().await
    {
        return o;
    }
    *rx = None;
    std::future::pending().await
}

/// The keepalive ping (Baileys' form, reference §1.6); also sent on demand by a probe.
fn ping_node() -> Node {
    Node::new("iq")
        .attr("to", SERVER_JID)
        .attr("type", "get")
        .attr("xmlns", "w:p")
        .children(vec![Node::new("ping")])
}

fn socket_reason(e: &SocketError) -> DisconnectReason {
    match e {
        SocketError::Closed | SocketError::Ws(_) => DisconnectReason::ConnectionClosed,
        _ => DisconnectReason::BadSession,
    }
}

/// Runs one connection: handshake (registration or login payload depending on the creds), then
/// the stanza loop until it ends.
pub async fn run_connection(
    cfg: &ClientConfig,
    events: &mpsc::UnboundedSender<Event>,
    mode: RunMode,
) -> Result<ConnectionEnd, ClientError> {
    run_session(cfg, events, mode, None).await
}

/// [`run_connection`] that also serves [`SessionCommand`]s (the supervisor's probes).
pub async fn run_session(
    cfg: &ClientConfig,
    events: &mpsc::UnboundedSender<Event>,
    mode: RunMode,
    commands: Option<&mut mpsc::UnboundedReceiver<SessionCommand>>,
) -> Result<ConnectionEnd, ClientError> {
    let creds = match cfg.store.load()? {
        Some(c) => c,
        None => Creds::generate(cfg.rng.as_ref()),
    };
    let p = match payload::login(&creds, cfg.app_version) {
        Ok(p) => p,
        Err(_) => payload::registration(&creds, cfg.app_version),
    };
    let noise = creds.noise();
    let connecting = connect(
        &cfg.endpoint,
        creds.routing_info.as_deref(),
        &noise,
        &p,
        (cfg.clock)(),
        cfg.rng.as_ref(),
    );
    let sock = match tokio::time::timeout(cfg.connect_timeout, connecting).await {
        Err(_) => {
            return Ok(ConnectionEnd {
                opened: false,
                reason: Some(DisconnectReason::TimedOut("connect".into())),
            });
        }
        Ok(Err(SocketError::Ws(_) | SocketError::Closed)) => {
            return Ok(ConnectionEnd {
                opened: false,
                reason: Some(DisconnectReason::ConnectionClosed),
            });
        }
        Ok(Err(SocketError::Unreachable(why))) => {
            return Ok(ConnectionEnd {
                opened: false,
                reason: Some(DisconnectReason::NetworkUnreachable(why)),
            });
        }
        Ok(Err(SocketError::Refused(status))) => {
            return Ok(ConnectionEnd {
                opened: false,
                reason: Some(DisconnectReason::Other(status)),
            });
        }
        Ok(Err(e)) => return Err(ClientError::Handshake(e)),
        Ok(Ok(s)) => s,
    };
    let prefix: [u8; 3] = super::crypto::random_bytes(cfg.rng.as_ref());
    let mut s = Session {
        cfg,
        creds,
        events,
        sock,
        pending: HashMap::new(),
        next_id: 1,
        id_prefix: hex::encode_upper(prefix),
        qr_refs: VecDeque::new(),
        qr_index: 0,
        qr_deadline: None,
        opened: false,
        prekeys_settled: false,
        logout_done: false,
        pair_code: None,
        inbound: None,
        out_rx: None,
        conn_events: None,
        ack_waiters: HashMap::new(),
    };
    let r = s.run(mode, commands).await;
    s.sock.close().await;
    r
}

impl Session<'_> {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{}.{}", self.id_prefix, self.next_id)
    }

    async fn send(&mut self, node: Node) -> Result<(), DisconnectReason> {
        self.sock.send(&node).await.map_err(|e| socket_reason(&e))
    }

    async fn query(&mut self, mut node: Node, kind: Pending) -> Result<(), DisconnectReason> {
        let id = self.id();
        node.attrs.retain(|(k, _)| k != "id");
        node.attrs.insert(0, ("id".into(), id.clone()));
        self.pending.insert(id, kind);
        self.send(node).await
    }

    fn end(&self, reason: Option<DisconnectReason>) -> Result<ConnectionEnd, ClientError> {
        Ok(ConnectionEnd {
            opened: self.opened,
            reason,
        })
    }

    async fn run(
        &mut self,
        mode: RunMode,
        mut commands: Option<&mut mpsc::UnboundedReceiver<SessionCommand>>,
    ) -> Result<ConnectionEnd, ClientError> {
        let mut last_recv = Instant::now();
        let mut next_ping = Instant::now() + self.cfg.keepalive;
        let far = Duration::from_secs(86_400 * 365);
        loop {
            let done = self.logout_done
                || match mode {
                    RunMode::UntilDisconnect => false,
                    RunMode::UntilOpen => self.opened && self.prekeys_settled,
                    RunMode::Logout => false,
                };
            if done {
                return self.end(None);
            }
            let qr_deadline = self.qr_deadline.unwrap_or_else(|| Instant::now() + far);
            tokio::select! {
                r = self.sock.recv() => match r {
                    Ok(node) => {
                        last_recv = Instant::now();
                        if let Some(end) = self.handle(node, mode).await? {
                            return self.end(Some(end));
                        }
                    }
                    Err(e) => return self.end(Some(socket_reason(&e))),
                },
                _ = sleep_until(next_ping) => {
                    next_ping = Instant::now() + self.cfg.keepalive;
                    if let Err(r) = self.query(ping_node(), Pending::Ping).await {
                        return self.end(Some(r));
                    }
                }
                _ = sleep_until(last_recv + self.cfg.liveness) => {
                    return self.end(Some(DisconnectReason::ConnectionLost));
                }
                cmd = next_command(&mut commands) => match cmd {
                    SessionCommand::Probe(reply) if self.opened => {
                        if let Err(r) = self.query(ping_node(), Pending::Probe(reply, Instant::now())).await {
                            return self.end(Some(r));
                        }
                    }
                    SessionCommand::Probe(reply) => {
                        let _ = reply.send(Err("not logged in yet".into()));
                    }
                    SessionCommand::Logout(reply) if self.opened => {
                        let rm = self.remove_device_iq();
                        if let Err(r) = self.query(rm, Pending::LiveLogout(reply)).await {
                            return self.end(Some(r));
                        }
                    }
                    SessionCommand::Logout(reply) => {
                        let _ = reply.send(Err("not logged in yet".into()));
                        self.logout_done = true;
                    }
                },
                o = next_outgoing(&mut self.out_rx) => {
                    if let Err(r) = self.write_outgoing(o).await {
                        return self.end(Some(r));
                    }
                }
                _ = sleep_until(qr_deadline), if self.qr_deadline.is_some() => {
                    if let Err(r) = self.show_next_qr().await {
                        return self.end(Some(r));
                    }
                }
            }
        }
    }

    async fn show_next_qr(&mut self) -> Result<(), DisconnectReason> {
        let Some(r) = self.qr_refs.pop_front() else {
            self.qr_deadline = None;
            return Err(DisconnectReason::TimedOut("QR refs attempts ended".into()));
        };
        let (first, next) = self.cfg.qr_ref_lifetimes;
        let life = if self.qr_index == 0 { first } else { next };
        self.qr_index += 1;
        self.qr_deadline = Some(Instant::now() + life);
        let _ = self.events.send(Event::Qr {
            qr: qr_string(&r, &self.creds),
            expires_in: life,
        });
        Ok(())
    }

    /// Handles one stanza; `Some(reason)` ends the connection.
    async fn handle(
        &mut self,
        node: Node,
        mode: RunMode,
    ) -> Result<Option<DisconnectReason>, ClientError> {
        let r = match node.tag.as_str() {
            "iq" => self.handle_iq(node, mode).await?,
            "notification" if node.get_attr("type") == Some("link_code_companion_reg") => {
                self.on_pair_code_notification(&node).await?
            }
            "success" => self.on_success(&node, mode).await,
            "failure" => Err(DisconnectReason::from_failure(&node)),
            "stream:error" => Err(DisconnectReason::from_stream_error(&node)),
            "xmlstreamend" => Err(DisconnectReason::ConnectionClosed),
            "ib" if node.child("downgrade_webclient").is_some() => {
                Err(DisconnectReason::MultideviceMismatch)
            }
            "ib" => {
                self.on_ib(&node);
                if node.child("offline").is_some()
                    && let Some(tx) = self.conn_events.as_ref()
                    && tx.try_send(ConnEvent::BacklogDone).is_err()
                {
                    tracing::warn!("end of the offline backlog not passed on: the consumer is busy (held messages wait for their bound)");
                }
                Ok(())
            }
            "message" => self.on_message(&node).await,
            "ack" => {
                self.on_ack(node);
                Ok(())
            }
            "receipt" => self.on_receipt(&node).await,
            "notification" => self.on_notification(&node).await?,
            _ => Ok(()),
        };
        Ok(r.err())
    }

    /// Stores `<ib><edge_routing><routing_info>` for the next connection's pre-intro.
    fn on_ib(&mut self, node: &Node) {
        let info = node
            .child("edge_routing")
            .and_then(|e| e.child("routing_info"))
            .and_then(Node::content_bytes);
        if let Some(info) = info
            && self.creds.routing_info.as_deref() != Some(info)
            && self.creds.is_linked()
        {
            self.creds.routing_info = Some(info.to_vec());
            let _ = self.cfg.store.save(&self.creds);
        }
    }

    async fn handle_iq(
        &mut self,
        node: Node,
        mode: RunMode,
    ) -> Result<Result<(), DisconnectReason>, ClientError> {
        let id = node.get_attr("id").unwrap_or_default().to_owned();
        let ty = node.get_attr("type").unwrap_or_default().to_owned();
        if ty == "result" || ty == "error" {
            let Some(kind) = self.pending.remove(&id) else {
                return Ok(Ok(()));
            };
            return self.on_response(kind, &node, ty == "result", mode).await;
        }
        if let Some(pd) = node.child("pair-device") {
            let refs: Vec<String> = pd
                .child_nodes()
                .iter()
                .filter(|n| n.tag == "ref")
                .filter_map(|n| {
                    n.content_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                })
                .collect();
            let ack = Node::new("iq")
                .attr("to", SERVER_JID)
                .attr("type", "result")
                .attr("id", id);
            if let Err(r) = self.send(ack).await {
                return Ok(Err(r));
            }
            self.qr_refs = refs.into();
            self.qr_index = 0;
            if let Some(phone) = self.cfg.pair_phone.clone() {
                return Ok(self.request_pairing_code(&phone).await);
            }
            return Ok(self.show_next_qr().await);
        }
        if node.child("pair-success").is_some() {
            return self.on_pair_success(&node, &id).await;
        }
        if node.get_attr("xmlns") == Some("urn:xmpp:ping") || node.child("ping").is_some() {
            let pong = Node::new("iq")
                .attr("to", SERVER_JID)
                .attr("type", "result")
                .attr("id", id);
            return Ok(self.send(pong).await);
        }
        Ok(Ok(()))
    }

    /// Sends `companion_hello` and shows the code instead of QR codes.
    async fn request_pairing_code(&mut self, phone: &str) -> Result<(), DisconnectReason> {
        let rng = self.cfg.rng.clone();
        let code = super::paircode::generate_code(rng.as_ref());
        let eph = super::crypto::KeyPair::generate(rng.as_ref());
        let hello = super::paircode::companion_hello(
            phone,
            &code,
            &eph,
            &self.creds.noise_key.public,
            rng.as_ref(),
        );
        self.pair_code = Some((code.clone(), eph));
        self.query(hello, Pending::Other).await?;
        let _ = self.events.send(Event::PairingCode { code });
        Ok(())
    }

    /// The phone accepted the code: answer with our key bundle and adopt the derived ADV secret.
    async fn on_pair_code_notification(
        &mut self,
        node: &Node,
    ) -> Result<Result<(), DisconnectReason>, ClientError> {
        let ack = Node::new("ack")
            .attr("id", node.get_attr("id").unwrap_or_default())
            .attr("class", "notification")
            .attr("type", "link_code_companion_reg")
            .attr("to", node.get_attr("from").unwrap_or(SERVER_JID));
        if let Err(r) = self.send(ack).await {
            return Ok(Err(r));
        }
        let (Some((code, eph)), Some(phone)) =
            (self.pair_code.as_ref(), self.cfg.pair_phone.as_deref())
        else {
            return Ok(Ok(()));
        };
        let identity = self.creds.identity();
        let (finish, adv) = super::paircode::companion_finish(
            node,
            phone,
            code,
            eph,
            &identity,
            self.cfg.rng.as_ref(),
        )?;
        self.creds.adv_secret_key = adv.to_vec();
        Ok(self.query(finish, Pending::Other).await)
    }

    async fn on_pair_success(
        &mut self,
        node: &Node,
        id: &str,
    ) -> Result<Result<(), DisconnectReason>, ClientError> {
        match handle_pair_success(node, &self.creds, self.cfg.rng.as_ref()) {
            Err(e) => {
                let code = "401";
                let text = match e {
                    PairError::HmacMismatch => "hmac-mismatch",
                    PairError::AccountSignature => "signature-mismatch",
                    _ => "internal-error",
                };
                let err = Node::new("iq")
                    .attr("to", SERVER_JID)
                    .attr("type", "error")
                    .attr("id", id)
                    .children(vec![
                        Node::new("error").attr("code", code).attr("text", text),
                    ]);
                let _ = self.sock.send(&err).await;
                Err(ClientError::Pair(e))
            }
            Ok(p) => {
                self.qr_deadline = None;
                self.qr_refs.clear();
                self.creds.me = Some(p.me.clone());
                self.creds.account = Some(p.account);
                self.creds.platform = p.platform;
                // Persist before acknowledging: a crash now leaves usable creds.
                self.cfg.store.save(&self.creds)?;
                let _ = self.events.send(Event::Paired { jid: p.me.id });
                Ok(self.send(p.reply).await)
            }
        }
    }

    /// `<iq xmlns="md" type="set"><remove-companion-device jid=… reason="user_initiated"/>`:
    /// a companion asks the server to unlink it (what Baileys' `logout()` and whatsmeow's
    /// `Logout` send). The reply is an empty result.
    fn remove_device_iq(&self) -> Node {
        let jid = self.creds.me.as_ref().map(|m| m.id.clone()).unwrap_or_default();
        Node::new("iq")
            .attr("to", SERVER_JID)
            .attr("type", "set")
            .attr("xmlns", "md")
            .children(vec![
                Node::new("remove-companion-device")
                    .attr("jid", jid)
                    .attr("reason", "user_initiated"),
            ])
    }

    async fn on_success(&mut self, node: &Node, mode: RunMode) -> Result<(), DisconnectReason> {
        self.opened = true;
        let jid = self
            .creds
            .me
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_default();
        if let (Some(lid), Some(me)) = (node.get_attr("lid"), self.creds.me.as_mut())
            && me.lid.as_deref() != Some(lid)
        {
            me.lid = Some(lid.to_owned());
            let _ = self.cfg.store.save(&self.creds);
        }
        let _ = self.events.send(Event::Open { jid: jid.clone() });
        let active = Node::new("iq")
            .attr("to", SERVER_JID)
            .attr("xmlns", "passive")
            .attr("type", "set")
            .children(vec![Node::new("active")]);
        self.query(active, Pending::Other).await?;
        if mode == RunMode::Logout {
            let rm = self.remove_device_iq();
            return self.query(rm, Pending::Logout).await;
        }
        if mode == RunMode::UntilDisconnect {
            self.start_messaging().await;
        }
        self.query(prekeys::count_query(""), Pending::Count).await
    }

    async fn on_response(
        &mut self,
        kind: Pending,
        node: &Node,
        ok: bool,
        _mode: RunMode,
    ) -> Result<Result<(), DisconnectReason>, ClientError> {
        match kind {
            Pending::Count => {
                let count = node
                    .child("count")
                    .and_then(|c| c.get_attr("value"))
                    .and_then(|v| v.parse::<u32>().ok());
                if ok && count.unwrap_or(0) < MIN_PREKEY_COUNT {
                    return self.upload_prekeys().await;
                }
                self.prekeys_settled = true;
            }
            Pending::Upload(n) => {
                self.prekeys_settled = true;
                if ok {
                    self.creds.first_unuploaded_pre_key_id = self.creds.next_pre_key_id;
                    self.cfg.store.save(&self.creds)?;
                    let _ = self.events.send(Event::PreKeysUploaded { count: n });
                }
            }
            Pending::Logout => self.logout_done = true,
            Pending::LiveLogout(reply) => {
                self.logout_done = true;
                let why = node.child("error").map(|e| {
                    format!("{} {}", e.get_attr("code").unwrap_or_default(), e.get_attr("text").unwrap_or_default())
                });
                let _ = reply.send(if ok {
                    Ok(())
                } else {
                    Err(format!("the server refused to remove the device ({})", why.unwrap_or_default().trim()))
                });
            }
            Pending::Probe(reply, sent) => {
                let _ = reply.send(if ok {
                    Ok(sent.elapsed())
                } else {
                    Err("the server answered the ping with an error".into())
                });
            }
            Pending::Reply(tx) => {
                let _ = tx.send(node.clone());
            }
            Pending::Ping | Pending::Other => {}
        }
        Ok(Ok(()))
    }

    /// Opens the message path for this connection: imports `pre-keys.json` into the store
    /// (first use), then starts the outbox consumer.
    async fn start_messaging(&mut self) {
        let Some(m) = self.cfg.messaging.clone() else {
            return;
        };
        let store = self.cfg.store.clone();
        let loaded = tokio::task::spawn_blocking(move || store.load_prekeys()).await;
        match loaded {
            Ok(Ok(keys)) if !keys.is_empty() => {
                let first = self.creds.first_unuploaded_pre_key_id;
                let now = (self.cfg.clock)().saturating_mul(1000);
                match m.db.write(move |ops| ops.import_prekeys(&keys, first, now)).await {
                    Ok(r) if r.imported > 0 => {
                        tracing::info!(account = %m.account_id, imported = r.imported, "prekeys imported into the account store")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(account = %m.account_id, "pre-keys.json not imported: {e}"),
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(account = %m.account_id, "pre-keys.json unreadable: {e}"),
            Err(e) => tracing::error!(account = %m.account_id, "pre-keys.json import task failed: {e}"),
        }
        if let Err(e) = self.rotate_signed_prekey_if_due(&m).await {
            tracing::error!(account = %m.account_id, "signed prekey rotation failed: {e}");
        }
        m.redeliver_inbound().await;
        self.inbound = Some(ConnInbound::new(m.clone()));
        let (out_tx, out_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        if let Some(c) = Consumer::new(m, self.creds.clone(), out_tx, ev_rx, self.cfg.clock.clone(), self.cfg.rng.clone()) {
            tokio::spawn(c.run());
            self.out_rx = Some(out_rx);
            self.conn_events = Some(ev_tx);
        }
    }

    /// Records the signed prekey in the store on first use and replaces it when it is older than
    /// [`SIGNED_PREKEY_ROTATION`]: the new one is stored (store, then `creds.json`) before the
    /// server gets it (`<rotate><skey>`); old ones stay [`SIGNED_PREKEY_KEEP`] for `pkmsg`s that
    /// were built from them.
    async fn rotate_signed_prekey_if_due(&mut self, m: &Arc<Messaging>) -> Result<(), String> {
        let now = (self.cfg.clock)().saturating_mul(1000);
        let current = self.creds.signed_pre_key.clone();
        let created = m
            .db
            .write(move |ops| {
                if ops.signed_prekey(current.key_id)?.is_none() {
                    ops.put_signed_prekey(&current, now)?;
                }
                ops.active_signed_prekey_created_ms()
            })
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(now);
        if now.saturating_sub(created) < SIGNED_PREKEY_ROTATION.as_millis() as u64 {
            return Ok(());
        }
        let identity = self.creds.identity();
        let kp = super::crypto::KeyPair::generate(self.cfg.rng.as_ref());
        let mut signed = vec![5u8];
        signed.extend_from_slice(&kp.public);
        let next = super::creds::SignedPreKey {
            key_id: (self.creds.signed_pre_key.key_id % 0xFF_FFFF) + 1,
            key_pair: (&kp).into(),
            signature: identity.sign(&signed, self.cfg.rng.as_ref()).to_vec(),
        };
        let stored = next.clone();
        let keep = SIGNED_PREKEY_KEEP.as_millis() as u64;
        m.db
            .write(move |ops| {
                ops.put_signed_prekey(&stored, now)?;
                ops.prune_signed_prekeys(now.saturating_sub(keep))
            })
            .await
            .map_err(|e| e.to_string())?;
        self.creds.signed_pre_key = next.clone();
        let (store, creds) = (self.cfg.store.clone(), self.creds.clone());
        tokio::task::spawn_blocking(move || store.save(&creds))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let iq = Node::new("iq")
            .attr("to", SERVER_JID)
            .attr("type", "set")
            .attr("xmlns", "encrypt")
            .children(vec![Node::new("rotate").children(vec![Node::new("skey").children(vec![
                Node::new("id").bytes(next.key_id.to_be_bytes()[1..].to_vec()),
                Node::new("value").bytes(next.key_pair.public.clone()),
                Node::new("signature").bytes(next.signature.clone()),
            ])])]);
        tracing::info!(account = %m.account_id, key_id = next.key_id, "signed prekey rotated");
        self.query(iq, Pending::Other).await.map_err(|r| r.to_string())
    }

    /// Writes a stanza for the consumer, registering where its answer goes.
    async fn write_outgoing(&mut self, o: Outgoing) -> Result<(), DisconnectReason> {
        match o.reply {
            Reply::Iq(tx) => self.query(o.node, Pending::Reply(tx)).await,
            Reply::MessageAck(tx) => {
                if let Some(id) = o.node.get_attr("id") {
                    self.ack_waiters.insert(id.to_owned(), tx);
                }
                self.send(o.node).await
            }
            Reply::None => self.send(o.node).await,
        }
    }

    /// A `<message>`: decrypt, commit, hand over, then receipt and ack (see `messages::inbound`).
    async fn on_message(&mut self, node: &Node) -> Result<(), DisconnectReason> {
        let Some(inbound) = self.inbound.as_mut() else {
            // No message path (the CLI's link/logout connections): leave it unacknowledged so
            // the server delivers it again to the connection that can process it.
            return Ok(());
        };
        let now = (self.cfg.clock)();
        match inbound.on_message(node, &self.creds, now, &self.cfg.rng).await {
            Ok(nodes) => {
                for n in nodes {
                    self.send(n).await?;
                }
                Ok(())
            }
            Err(e) => {
                // Nothing was acknowledged: reconnect so the server delivers it again.
                tracing::error!("message not processed (store failure), reconnecting: {e}");
                Err(DisconnectReason::ConnectionClosed)
            }
        }
    }

    fn on_ack(&mut self, node: Node) {
        if node.get_attr("class") == Some("message")
            && let Some(tx) = node.get_attr("id").and_then(|id| self.ack_waiters.remove(id))
        {
            let _ = tx.send(node);
        }
    }

    /// Receipts for our messages: acknowledged; retry receipts go to the consumer.
    async fn on_receipt(&mut self, node: &Node) -> Result<(), DisconnectReason> {
        if self.inbound.is_none() {
            // Not ours to settle without a message path (see `on_message`).
            return Ok(());
        }
        if crate::messaging::outbox::recovery::receipt_confirms(node.get_attr("type"))
            && let Some(m) = &self.cfg.messaging
        {
            // Committed before the ack: a receipt the server stops re-delivering has left its
            // mark (a message a restart left `sending` is never re-sent after it).
            let ids = stanza::receipt_ids(node).into_iter().map(crate::messaging::MessageId::new).collect();
            let now = (self.cfg.clock)().saturating_mul(1000);
            match m.outbox.confirm_by_receipt(ids, now).await {
                Ok(done) if done.is_empty() => {}
                Ok(done) => {
                    if let Some(tx) = self.conn_events.as_ref()
                        && tx.try_send(ConnEvent::Confirmed(done)).is_err()
                    {
                        tracing::debug!("receipt confirmation not passed on: the consumer is busy (the store has it)");
                    }
                }
                Err(e) => {
                    tracing::error!("receipt not recorded (store failure), reconnecting: {e}");
                    return Err(DisconnectReason::ConnectionClosed);
                }
            }
        }
        if node.get_attr("type") == Some("retry")
            && let (Some(r), Some(tx)) = (stanza::parse_retry(node), self.conn_events.as_ref())
            && tx.try_send(ConnEvent::Retry(Box::new(r))).is_err()
        {
            tracing::warn!("retry receipt dropped: the consumer is busy");
        }
        self.send(stanza::ack("receipt", node)).await
    }

    /// Notifications: acknowledged; device changes refresh the cached device list, a low prekey
    /// count triggers an upload.
    async fn on_notification(&mut self, node: &Node) -> Result<Result<(), DisconnectReason>, ClientError> {
        // Group changes (a member left: our sender key rotates) are committed before the ack.
        if node.get_attr("type") == Some("w:gp2")
            && let Some(m) = &self.cfg.messaging
            && let Err(e) = super::messages::driver::on_group_notification(m, node).await
        {
            tracing::error!("group notification not applied (store failure), reconnecting: {e}");
            return Ok(Err(DisconnectReason::ConnectionClosed));
        }
        if let Err(r) = self.send(stanza::ack("notification", node)).await {
            return Ok(Err(r));
        }
        match node.get_attr("type") {
            Some("devices") => {
                if let (Some(m), Some(from)) = (&self.cfg.messaging, node.get_attr("from").and_then(stanza::Jid::parse)) {
                    let user = from.with_device(0).user_jid();
                    if let Err(e) = m.db.write(move |ops| ops.invalidate_device_list(&user)).await {
                        tracing::warn!("device list not invalidated: {e}");
                    }
                }
            }
            Some("encrypt") => {
                let low = node
                    .child("count")
                    .and_then(|c| c.get_attr("value"))
                    .and_then(|v| v.parse::<u32>().ok())
                    .is_some_and(|n| n < MIN_PREKEY_COUNT);
                if low && self.opened {
                    tracing::info!("server prekey count is low; uploading more");
                    return self.upload_prekeys().await;
                }
            }
            _ => {}
        }
        Ok(Ok(()))
    }

    /// Generates and uploads prekeys. Fails closed: a corrupt or unreadable `pre-keys.json` is
    /// never replaced by a fresh map (its private keys answer messages to prekeys already on
    /// the server), and a failed save ends the connection with that error instead of skipping
    /// the upload silently. Private halves are on disk before their public halves are sent.
    async fn upload_prekeys(&mut self) -> Result<Result<(), DisconnectReason>, ClientError> {
        let n = self.cfg.prekey_upload_count;
        let mut store = self.cfg.store.load_prekeys()?;
        let ids = prekeys::generate(&mut self.creds, &mut store, n, self.cfg.rng.as_ref());
        self.cfg.store.save_prekeys(&store)?;
        self.cfg.store.save(&self.creds)?;
        if let Some(m) = &self.cfg.messaging {
            // The store decrypts with these: it must hold them before the server hands them out.
            // Fail closed like the saves above: no upload of keys the store cannot answer for.
            let (keys, first) = (store.clone(), self.creds.first_unuploaded_pre_key_id);
            let now = (self.cfg.clock)().saturating_mul(1000);
            if let Err(e) = m.db.write(move |ops| ops.import_prekeys(&keys, first, now)).await {
                tracing::error!(account = %m.account_id, "prekeys not stored in the account store: {e}");
                return Ok(Err(DisconnectReason::BadSession));
            }
        }
        let iq = prekeys::upload("", &self.creds, &store, &ids);
        Ok(self.query(iq, Pending::Upload(n)).await)
    }
}

/// The result of a link attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Linked (or already linked) and logged in.
    Linked {
        /// Our JID.
        jid: String,
    },
    /// The server ended the attempt.
    Failed(DisconnectReason),
}

/// Links a new device by QR (or logs in with saved creds): connects, shows QR refs through
/// `events`, handles pair-success and the 515 restart, and returns once logged in.
pub async fn link(
    cfg: &ClientConfig,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<LinkOutcome, ClientError> {
    // One restart (515 after pairing) is expected; allow a few more for robustness.
    for _ in 0..4 {
        let end = run_connection(cfg, events, RunMode::UntilOpen).await?;
        match end.reason {
            None if end.opened => {
                let jid = cfg
                    .store
                    .load()?
                    .and_then(|c| c.me)
                    .map(|m| m.id)
                    .unwrap_or_default();
                return Ok(LinkOutcome::Linked { jid });
            }
            Some(DisconnectReason::RestartRequired) => continue,
            Some(r) => return Ok(LinkOutcome::Failed(r)),
            None => return Ok(LinkOutcome::Failed(DisconnectReason::ConnectionClosed)),
        }
    }
    Ok(LinkOutcome::Failed(DisconnectReason::RestartRequired))
}

/// How a logout went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// The server removed the device and the local creds were deleted.
    Unlinked,
    /// No credentials were stored.
    NotLinked,
    /// The server could not be told (why); the local creds were deleted anyway.
    RemovedLocallyOnly(String),
}

/// Tells the server to remove this companion device, then deletes the local credentials.
pub async fn logout(cfg: &ClientConfig) -> Result<LogoutOutcome, ClientError> {
    match cfg.store.load()? {
        Some(c) if c.is_linked() => {}
        Some(_) => {
            cfg.store.remove()?;
            return Ok(LogoutOutcome::NotLinked);
        }
        None => return Ok(LogoutOutcome::NotLinked),
    }
    let (tx, _rx) = mpsc::unbounded_channel();
    let end = run_connection(cfg, &tx, RunMode::Logout).await;
    cfg.store.remove()?;
    match end {
        Ok(ConnectionEnd { reason: None, .. }) => Ok(LogoutOutcome::Unlinked),
        // The server already considers the device gone.
        Ok(ConnectionEnd {
            reason: Some(DisconnectReason::LoggedOut),
            ..
        }) => Ok(LogoutOutcome::Unlinked),
        Ok(ConnectionEnd {
            reason: Some(r), ..
        }) => Ok(LogoutOutcome::RemovedLocallyOnly(r.to_string())),
        Err(e) => Ok(LogoutOutcome::RemovedLocallyOnly(e.to_string())),
    }
}
