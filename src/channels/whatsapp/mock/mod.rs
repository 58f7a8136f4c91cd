//! A mock WhatsApp server for tests and the NixOS VM tests (cargo feature `wa-mock`).
//!
//! It plays both WhatsApp's server and the user's phone: Noise XX responder with its own
//! certificate chain (root key printed at start), `pair-device` refs, a scan hook, `pair-success`
//! signed by a mock phone identity, 515, login by Noise static key, `<success>`, prekey count and
//! upload, pings, and scripted failures. An admin HTTP API shares the WebSocket port:
//!
//! - `POST /admin/scan` (body: the QR string): the phone scans it;
//! - `POST /admin/pair-code` (body: the code): the user types a pairing code on the phone;
//! - `POST /admin/fault` (JSON, see [`Fault`]);
//! - `GET /admin/state`: `{"connections", "totalConnections", "connectionAttempts",
//!   "refusedAttempts", "linkedDevices", "lastClientPayload", "lastOrigin", "lastRoutingInfo"}`.
//!
//! Its honesty is checked by the real Baileys client (`tests/whatsapp_baileys.rs`).

mod admin;
mod conn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::binary::Node;
use super::client::{Clock, system_clock};
use super::crypto::{KeyPair, SharedEntropy, os_entropy};
use super::pairing::{build_pair_success, parse_qr};

/// A scripted failure, as posted to `/admin/fault`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Drop every live connection without a close frame.
    Drop,
    /// Send `<stream:error>` to every live connection and close it. 440 is sent as a code-less
    /// `<conflict type="replaced"/>` and 500 as a bare stream error, like the real server.
    StreamError {
        /// The code.
        code: u16,
    },
    /// Answer the next handshake with `<failure reason=N>`.
    Failure {
        /// The reason code.
        reason: u16,
    },
    /// Send an undecryptable frame to every live connection.
    Garbage,
    /// Send `<ib><downgrade_webclient/></ib>` (411).
    Downgrade,
    /// Send `<xmlstreamend/>`.
    StreamEnd,
    /// Stop (or resume) answering anything, so clients hit their liveness timeout.
    Silence {
        /// On or off.
        enabled: bool,
    },
    /// Sign new certificate chains with a root other than the advertised one.
    ForgeCert {
        /// On or off.
        enabled: bool,
    },
    /// Put a random account signature into pair-success.
    ForgeAccountSignature {
        /// On or off.
        enabled: bool,
    },
    /// Answer every handshake with `<failure reason=N>` (`null`: stop), until turned off.
    FailAlways {
        /// The reason code, or none to stop.
        reason: Option<u16>,
    },
    /// Network outage: drop every live connection and close new ones before the WebSocket
    /// upgrade (clients see the server as unreachable) until turned off.
    Offline {
        /// On or off.
        enabled: bool,
    },
}

/// A device the mock phone has linked.
#[derive(Debug, Clone)]
pub struct LinkedDevice {
    /// `PHONE:DEV@s.whatsapp.net`.
    pub jid: String,
    /// `LID:DEV@lid`.
    pub lid: String,
    /// The companion's Noise static key: login is accepted only with it.
    pub noise_pub: [u8; 32],
    /// The companion's identity key.
    pub identity_pub: [u8; 32],
    /// One-time prekeys uploaded.
    pub prekeys: usize,
    /// Whether the uploaded signed prekey signature verified.
    pub signed_prekey_valid: Option<bool>,
    /// Whether the pair-device-sign reply stripped accountSignatureKey.
    pub account_key_stripped: bool,
}

enum Cmd {
    Send(Node),
    Close(Node),
    Garbage,
    Drop,
}

struct PendingPair {
    refs: Vec<String>,
    noise_pub: [u8; 32],
    identity_pub: [u8; 32],
    scanned: Option<(String, String)>,
    /// The companion's `companion_hello` (pairing-code flow).
    code_hello: Option<Node>,
    /// The phone's state after the user typed the code.
    primary: Option<super::paircode::PrimaryState>,
}

struct ConnEntry {
    tx: mpsc::UnboundedSender<Cmd>,
    pairing: Option<PendingPair>,
}

#[derive(Default)]
struct Sticky {
    fail_next: Option<u16>,
    silent: bool,
    forge_cert: bool,
    forge_account_signature: bool,
    offline: bool,
    fail_always: Option<u16>,
}

#[derive(Default)]
struct Inner {
    total: u64,
    next_conn: u64,
    live: HashMap<u64, ConnEntry>,
    linked: Vec<LinkedDevice>,
    last_payload: Option<&'static str>,
    last_origin: Option<String>,
    last_routing_info: Option<String>,
    pings: u64,
    misaddressed: u64,
    sticky: Sticky,
    next_device: u32,
    /// When each WebSocket upgrade request arrived (tokio time), refused ones included.
    attempts: Vec<tokio::time::Instant>,
    /// The subset of `attempts` refused by the `offline` fault.
    refused: Vec<tokio::time::Instant>,
}

struct Shared {
    root: KeyPair,
    server_static: KeyPair,
    phone: KeyPair,
    rng: SharedEntropy,
    clock: Clock,
    reply_delay: std::time::Duration,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// The phone number of the mock phone.
pub const MOCK_PHONE: &str = "15550001234";
/// The phone's LID user.
pub const MOCK_LID: &str = "123456789012345";

/// The edge routing info the mock hands out after login (hex `0801` + "mock").
pub const MOCK_ROUTING_INFO: &[u8] = b"\x08\x01mock";

/// Settings for a mock server.
#[derive(Clone)]
pub struct MockOptions {
    /// Randomness (keys, refs).
    pub rng: SharedEntropy,
    /// Wall clock for certificates and timestamps.
    pub clock: Clock,
    /// Pause between the end of the handshake and the first stanza, like a network round trip.
    /// Baileys 6.x needs it: it switches to transport keys only after its ClientFinish write
    /// completes, so a frame that arrives sooner is misread (7.x buffers such frames).
    pub reply_delay: std::time::Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            rng: os_entropy(),
            clock: system_clock(),
            reply_delay: std::time::Duration::ZERO,
        }
    }
}

/// A running mock server.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Binds `listen` (use port 0 for a free one) and serves in the background.
    pub async fn start(listen: SocketAddr, opts: MockOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let rng = opts.rng;
        let shared = Arc::new(Shared {
            root: KeyPair::generate(rng.as_ref()),
            server_static: KeyPair::generate(rng.as_ref()),
            phone: KeyPair::generate(rng.as_ref()),
            rng,
            clock: opts.clock,
            reply_delay: opts.reply_delay,
            inner: Mutex::new(Inner {
                next_device: 7,
                ..Default::default()
            }),
        });
        let s2 = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let s = s2.clone();
                tokio::spawn(async move { conn::serve(s, tcp).await });
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// `ws://ADDR/ws/chat`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    /// `http://ADDR` (admin API base).
    pub fn admin_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The root public key that signs this server's certificates.
    pub fn root_key(&self) -> [u8; 32] {
        self.shared.root.public
    }

    /// The one-line JSON the binary prints at start.
    pub fn banner(&self) -> serde_json::Value {
        serde_json::json!({ "url": self.url(), "rootKey": hex::encode(self.root_key()), "admin": self.admin_base() })
    }

    /// The phone scans `qr`. Returns the JID the device will get.
    pub fn scan(&self, qr: &str) -> Result<String, String> {
        scan(&self.shared, qr)
    }

    /// The user types `code` on the phone (pairing-code flow).
    pub fn enter_pair_code(&self, code: &str) -> Result<(), String> {
        enter_pair_code(&self.shared, code)
    }

    /// Applies a scripted failure.
    pub fn fault(&self, f: Fault) {
        fault(&self.shared, f)
    }

    /// The admin state document.
    pub fn state(&self) -> serde_json::Value {
        state(&self.shared)
    }

    /// When each WebSocket upgrade request arrived (tokio time; refused ones included).
    pub fn attempt_times(&self) -> Vec<tokio::time::Instant> {
        self.shared.lock().attempts.clone()
    }

    /// When each attempt refused by the `offline` fault arrived (tokio time).
    pub fn refused_times(&self) -> Vec<tokio::time::Instant> {
        self.shared.lock().refused.clone()
    }

    /// Connections that completed the handshake.
    pub fn total_connections(&self) -> u64 {
        self.shared.lock().total
    }

    /// Connections open right now.
    pub fn live_connections(&self) -> usize {
        self.shared.lock().live.len()
    }

    /// Linked devices.
    pub fn linked_devices(&self) -> Vec<LinkedDevice> {
        self.shared.lock().linked.clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
        for (_, c) in self.shared.lock().live.drain() {
            let _ = c.tx.send(Cmd::Drop);
        }
    }
}

fn state(shared: &Shared) -> serde_json::Value {
    let g = shared.lock();
    let devices: Vec<_> = g
        .linked
        .iter()
        .map(|d| {
            serde_json::json!({
                "jid": d.jid, "lid": d.lid, "preKeys": d.prekeys,
                "signedPreKeyValid": d.signed_prekey_valid, "accountSignatureKeyStripped": d.account_key_stripped,
            })
        })
        .collect();
    serde_json::json!({
        "connections": g.live.len(),
        "totalConnections": g.total,
        "linkedDevices": devices,
        "lastClientPayload": g.last_payload,
        "lastOrigin": g.last_origin,
        "lastRoutingInfo": g.last_routing_info,
        "pingsAnswered": g.pings,
        "connectionAttempts": g.attempts.len(),
        "refusedAttempts": g.refused.len(),
        "misaddressedIqs": g.misaddressed,
    })
}

fn scan(shared: &Shared, qr: &str) -> Result<String, String> {
    let q = parse_qr(qr).map_err(|e| e.to_string())?;
    let mut g = shared.lock();
    let dev = g.next_device;
    let Inner { live, sticky, .. } = &mut *g;
    let entry = live
        .values_mut()
        .find(|c| {
            c.pairing
                .as_ref()
                .is_some_and(|p| p.refs.contains(&q.reference))
        })
        .ok_or("no connection is showing this ref")?;
    let Some(p) = entry.pairing.as_ref() else {
        return Err("no pairing".into());
    };
    if p.noise_pub != q.noise_pub || p.identity_pub != q.identity_pub {
        return Err("QR keys do not match the registering connection".into());
    }
    let forge = sticky.forge_account_signature;
    let jid = send_pair_success(shared, entry, dev, forge, q.adv_secret, q.reference)?;
    g.next_device += 1;
    Ok(jid)
}

/// The pair-success for a device that proved `adv_secret` (QR scan or pairing code).
fn send_pair_success(
    shared: &Shared,
    entry: &mut ConnEntry,
    dev: u32,
    forge: bool,
    adv_secret: [u8; 32],
    reference: String,
) -> Result<String, String> {
    let Some(p) = entry.pairing.as_mut() else {
        return Err("no pairing".into());
    };
    let q = super::pairing::QrData {
        reference,
        noise_pub: p.noise_pub,
        identity_pub: p.identity_pub,
        adv_secret,
        platform: None,
    };
    let jid = format!("{MOCK_PHONE}:{dev}@s.whatsapp.net");
    let lid = format!("{MOCK_LID}:{dev}@lid");
    let node = build_pair_success(
        &q,
        &shared.phone,
        &jid,
        &lid,
        dev,
        (shared.clock)(),
        forge,
        shared.rng.as_ref(),
    );
    p.scanned = Some((jid.clone(), lid));
    entry
        .tx
        .send(Cmd::Send(node))
        .map_err(|_| "connection gone")?;
    Ok(jid)
}

fn enter_pair_code(shared: &Shared, code: &str) -> Result<(), String> {
    let code: String = code.trim().chars().filter(|c| *c != '-').collect();
    let mut g = shared.lock();
    let entry = g
        .live
        .values_mut()
        .find(|c| c.pairing.as_ref().is_some_and(|p| p.code_hello.is_some()))
        .ok_or("no connection asked for a pairing code")?;
    let Some(p) = entry.pairing.as_mut() else {
        return Err("no pairing".into());
    };
    let Some(hello) = p.code_hello.as_ref() else {
        return Err("no hello".into());
    };
    let (notification, state) = super::paircode::primary_hello(
        hello,
        &code,
        b"mock-link-code-ref",
        &shared.phone,
        shared.rng.as_ref(),
    )
    .map_err(|e| e.to_string())?;
    p.primary = Some(state);
    entry
        .tx
        .send(Cmd::Send(notification))
        .map_err(|_| "connection gone".to_owned())
}

/// The companion finished the pairing-code exchange on connection `conn`: derive the ADV secret
/// like the phone does and send pair-success. A wrong code fails here, as on a real phone.
fn pair_code_finished(shared: &Shared, conn: u64, finish: &Node) -> Result<String, String> {
    let mut g = shared.lock();
    let dev = g.next_device;
    let forge = g.sticky.forge_account_signature;
    let entry = g.live.get_mut(&conn).ok_or("connection gone")?;
    let p = entry.pairing.as_ref().ok_or("no pairing")?;
    let state = p.primary.as_ref().ok_or("no code entered")?;
    let (adv, identity) =
        super::paircode::primary_finish(finish, state, &shared.phone).map_err(|e| e.to_string())?;
    if identity != p.identity_pub {
        return Err("companion identity differs from the registration".into());
    }
    let jid = send_pair_success(shared, entry, dev, forge, adv, "link-code".into())?;
    g.next_device += 1;
    Ok(jid)
}

fn fault(shared: &Shared, f: Fault) {
    let mut g = shared.lock();
    let broadcast = |g: &mut Inner, make: &dyn Fn() -> Cmd| {
        for c in g.live.values() {
            let _ = c.tx.send(make());
        }
    };
    match f {
        Fault::Drop => broadcast(&mut g, &|| Cmd::Drop),
        Fault::StreamError { code } => {
            let node = match code {
                440 => Node::new("stream:error")
                    .children(vec![Node::new("conflict").attr("type", "replaced")]),
                500 => Node::new("stream:error"),
                c => Node::new("stream:error").attr("code", c.to_string()),
            };
            broadcast(&mut g, &|| Cmd::Close(node.clone()));
        }
        Fault::Failure { reason } => g.sticky.fail_next = Some(reason),
        Fault::Garbage => broadcast(&mut g, &|| Cmd::Garbage),
        Fault::Downgrade => broadcast(&mut g, &|| {
            Cmd::Send(Node::new("ib").children(vec![Node::new("downgrade_webclient")]))
        }),
        Fault::StreamEnd => broadcast(&mut g, &|| Cmd::Send(Node::new("xmlstreamend"))),
        Fault::Silence { enabled } => g.sticky.silent = enabled,
        Fault::ForgeCert { enabled } => g.sticky.forge_cert = enabled,
        Fault::ForgeAccountSignature { enabled } => g.sticky.forge_account_signature = enabled,
        Fault::FailAlways { reason } => g.sticky.fail_always = reason,
        Fault::Offline { enabled } => {
            g.sticky.offline = enabled;
            if enabled {
                broadcast(&mut g, &|| Cmd::Drop);
            }
        }
    }
}
