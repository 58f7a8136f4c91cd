//! A mock WhatsApp server for tests and the NixOS VM tests (cargo feature `wa-mock`).
//!
//! It plays WhatsApp's server and, for every account on it, that person's phone (device 0):
//! Noise XX responder with its own certificate chain (root key printed at start),
//! `pair-device` refs, a scan hook, `pair-success` signed by the account's phone identity, 515,
//! login by Noise static key, `<success>`, pings, and scripted failures. It is also a **relay**
//! like WhatsApp's server: several accounts (PN + LID, a phone and linked companions), prekey
//! uploads stored per device and handed out in bundles (one-time prekeys once), usync answers
//! (devices, lid, contact), `<message>`/`<receipt>` routing to the addressed devices' live
//! connections with server acks, and per-device offline queues delivered in order at the next
//! login. It never decrypts: it has no keys but the phones' public bundles.
//!
//! Modules, one job each: `accounts` (directory), `prekey_store` (uploads, bundles), `usync`
//! (queries), `route` (fan-out, receipts, acks), `groups` (group registry, `w:g2` iqs, `w:gp2`
//! notifications, group fan-out and receipts), `offline` (mailboxes), `relay` (glue between
//! them and the live connections, notifications), `link` (QR and code pairing), `conn` (one
//! socket), `admin` (HTTP).
//!
//! On the wire, as Baileys 7 expects it:
//!
//! - usync `devices` lists the phone (`id="0"`) and every companion with `key-index`; `lid`
//!   answers `<lid val="LID@lid"/>`; `contact` answers `type="in"`/`"out"`.
//! - A prekey query `<key><user jid>` (PN or LID, with or without device) answers one
//!   `<user jid>` per device that has keys (`registration`, `type`, `identity`, `skey`, `key`);
//!   a one-time prekey goes out once. Each phone has a real bundle (its identity is the account
//!   key), so senders encrypt for device 0 too, and the phone takes those stanzas silently.
//! - A routed message comes `from` the sender's device JID in the addressing the sender used
//!   (PN or LID) with the other one in `sender_lid`/`sender_pn`, plus `t`, `notify` (the
//!   account's name) and, for the sender's own other devices, `recipient`. `<device-identity>`
//!   goes along with `pkmsg`s. The sender gets `<ack class="message" id from t>`.
//! - A receipt comes `from` the receiving device's JID; `type="inactive"` arrives as a plain
//!   delivery receipt. The sender gets `<ack class="receipt">`.
//! - Stanzas wait per device while it is offline (or logged in passively and not yet
//!   `<active/>`), and are written with `offline="1"` followed by `<ib><offline count=N/>`;
//!   an empty backlog's `<ib>` goes with `<success>`. Written stanzas stay in flight until the
//!   device acknowledges them (`<receipt>` or `<ack>`), else they are written again next time.
//! - A linked or removed companion is announced with `<notification type="devices">` to its
//!   account's devices and to accounts it exchanged messages with (or shares a group with).
//! - Groups (`<id>@g.us`, LID- or PN-addressed): `w:g2` iqs create (`<create subject>` with
//!   `<participant jid>`s; client-created groups are LID-addressed), query one (`<query
//!   request="interactive"/>`), list (`<participating>` → `<groups>`), add/remove/promote/demote
//!   (admins only; per-participant `error` 404/409), subject, leave. Answers carry `<group id
//!   subject s_o s_t creation creator [creator_pn] addressing_mode size>` with `<participant jid
//!   [phone_number|lid] [type]>`. Errors: 404 no group, 403 not a member, 401 not an admin.
//!   Changes go to every member device (and removed members) as `<notification type="w:gp2"
//!   from=<group> participant=<actor>>` with `<create>`, `<add>`, `<remove>`, `<promote>`,
//!   `<demote>` or `<subject>`. A `<message to=<group>>` reaches every member device but the
//!   sender's as `from=<group> participant=<sender device> participant_pn|participant_lid
//!   addressing_mode`, with the shared `skmsg` and the device's own pairwise `<enc>` (the
//!   sender-key distribution) when the sender made one; `<to>`s for non-members are dropped, a
//!   `participant` attribute (retry) targets one device. A `phash` that differs from the
//!   server's hash over the group's devices (`groups::phash`) comes back in the ack; delivery
//!   still happens. Group receipts (`to=<group> participant=<author>`) go to the author's
//!   device `from=<group> participant=<reader>`.
//!
//! Account 0 (phone [`MOCK_PHONE`], LID [`MOCK_LID`]) always exists and is where a scan links
//! unless told otherwise. The admin HTTP API shares the WebSocket port:
//!
//! - `POST /admin/scan[?account=PHONE]` (body: the QR string): that account's phone scans it;
//! - `POST /admin/pair-code[?account=PHONE]` (body: the code): the user types a pairing code
//!   (default account: the one whose number the companion gave, else the link target);
//! - `POST /admin/link-target` (`{"account": PHONE}`): where later scans/codes link by default;
//! - `POST /admin/accounts` or `/admin/contacts` (`{"phone", "lid"?, "name"?}`): a new person;
//!   answers `{"ok", "account": {"phone", "jid", "lid", "lidJid", "name"}}` (409 if it exists);
//! - `GET /admin/accounts`: every account with its devices (and their `preKeysAvailable`);
//! - `POST /admin/drain-prekeys` (`{"jid": "PHONE:DEV@s.whatsapp.net", "leave": N}`): the
//!   device's one-time prekeys drop to N; below 5 it gets `<notification type="encrypt"><count>`
//!   (also sent when contacts' bundle fetches use them up);
//! - `GET /admin/relay`: per-device counters (`sent`, `delivered`, `queued`, `inflight`,
//!   `backlogDelivered`, `acked`, `online`, `active`), stanzas taken by each phone, and the last
//!   routed stanzas' metadata (tag, id, from, to, type, enc types, outcome: `delivered`,
//!   `queued` or `phone`), never content;
//! - `POST /admin/groups` (`{"subject", "creator", "participants": [phone or JID],
//!   "addressingMode"?: "lid"|"pn"}`): a group, members notified; answers `{"ok", "jid"}`;
//! - `POST /admin/groups/<jid>/participants` (`{"add"|"remove"|"promote"|"demote": [...]}`, one
//!   action): as the group's creator; answers `{"ok", "results": [{"jid", "error"}]}`;
//! - `GET /admin/groups`: every group with subject, addressing mode, members (phone, jid, lid,
//!   admin) and the server's `phash`;
//! - `POST /admin/fault` (JSON, see [`Fault`]);
//! - `GET /admin/state`: `{"connections", "totalConnections", "connectionAttempts",
//!   "refusedAttempts", "linkedDevices", "lastClientPayload", "lastOrigin", "lastRoutingInfo"}`.
//!
//! Its honesty is checked by the real Baileys client (`tests/whatsapp_baileys.rs`,
//! `tests/whatsapp_relay.rs`: two Baileys clients talking through it;
//! `tests/whatsapp_relay_groups.rs`: three Baileys clients in groups).

mod accounts;
mod admin;
mod conn;
mod groups;
mod link;
mod offline;
mod prekey_store;
mod relay;
mod route;
mod usync;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::binary::Node;
use super::client::{Clock, system_clock};
use super::crypto::{KeyPair, SharedEntropy, os_entropy};
use accounts::{AccountError, DeviceAddr, Directory};

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
    /// Route the `<message>`s with this id as usual but never acknowledge them to their sender
    /// (the server's ack lost with the sender: it cannot know whether the message went out).
    WithholdMessageAck {
        /// The message id (`null`: stop withholding).
        id: Option<String>,
    },
}

/// A device linked to an account on the mock.
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
    /// One-time prekeys uploaded (in total).
    pub prekeys: usize,
    /// Whether the uploaded signed prekey signature verified.
    pub signed_prekey_valid: Option<bool>,
    /// Whether the pair-device-sign reply stripped accountSignatureKey.
    pub account_key_stripped: bool,
}

/// A person on the mock, as the admin API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// Phone number digits (also the account's id in the admin API).
    pub phone: String,
    /// `PHONE@s.whatsapp.net`.
    pub jid: String,
    /// LID digits.
    pub lid: String,
    /// `LID@lid`.
    pub lid_jid: String,
    /// Push name shown to contacts.
    pub name: String,
}

impl AccountInfo {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "phone": self.phone, "jid": self.jid, "lid": self.lid, "lidJid": self.lid_jid, "name": self.name,
        })
    }
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
    /// The account the device is being linked to, once a phone scanned or a code was typed.
    account: Option<usize>,
    /// Device number and JIDs assigned by pair-success.
    scanned: Option<(u32, String, String)>,
    /// The companion's `companion_hello` (pairing-code flow).
    code_hello: Option<Node>,
    /// The phone's state after the user typed the code.
    primary: Option<super::paircode::PrimaryState>,
}

struct ConnEntry {
    tx: mpsc::UnboundedSender<Cmd>,
    pairing: Option<PendingPair>,
    /// The logged-in device on this connection.
    device: Option<DeviceAddr>,
}

#[derive(Default)]
struct Sticky {
    fail_next: Option<u16>,
    silent: bool,
    forge_cert: bool,
    forge_account_signature: bool,
    offline: bool,
    fail_always: Option<u16>,
    withhold_message_ack: Option<String>,
}

#[derive(Default)]
struct Inner {
    total: u64,
    next_conn: u64,
    live: HashMap<u64, ConnEntry>,
    dir: Directory,
    /// Where a scan or code links when the request names no account.
    link_target: usize,
    relay: relay::RelayState,
    /// Groups and their members.
    groups: groups::Groups,
    last_payload: Option<&'static str>,
    last_origin: Option<String>,
    last_routing_info: Option<String>,
    pings: u64,
    misaddressed: u64,
    sticky: Sticky,
    /// When each WebSocket upgrade request arrived (tokio time), refused ones included.
    attempts: Vec<tokio::time::Instant>,
    /// The subset of `attempts` refused by the `offline` fault.
    refused: Vec<tokio::time::Instant>,
}

struct Shared {
    root: KeyPair,
    server_static: KeyPair,
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

/// The phone number of the mock's first account (account 0).
pub const MOCK_PHONE: &str = "15550001234";
/// Account 0's LID user.
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
        let mut dir = Directory::default();
        dir.create(
            MOCK_PHONE,
            Some(MOCK_LID),
            Some("Mock Phone"),
            KeyPair::generate(rng.as_ref()),
            rng.as_ref(),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let shared = Arc::new(Shared {
            root: KeyPair::generate(rng.as_ref()),
            server_static: KeyPair::generate(rng.as_ref()),
            rng,
            clock: opts.clock,
            reply_delay: opts.reply_delay,
            inner: Mutex::new(Inner {
                dir,
                ..Default::default()
            }),
        });
        let s2 = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                // Small frames both ways: without this, Nagle and delayed ACKs add ~40 ms per
                // stanza, which a real server's edge does not.
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("mock: TCP_NODELAY not set: {e}");
                }
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

    /// The link-target account's phone scans `qr`. Returns the JID the device will get.
    pub fn scan(&self, qr: &str) -> Result<String, String> {
        link::scan(&self.shared, qr, None)
    }

    /// The phone of account `phone` scans `qr`. Returns the JID the device will get.
    pub fn scan_for(&self, phone: &str, qr: &str) -> Result<String, String> {
        link::scan(&self.shared, qr, Some(phone))
    }

    /// The user types `code` on the phone (pairing-code flow).
    pub fn enter_pair_code(&self, code: &str) -> Result<(), String> {
        link::enter_pair_code(&self.shared, code, None)
    }

    /// Adds a person (a contact for the others). `lid`/`name` default to generated values.
    pub fn create_account(
        &self,
        phone: &str,
        lid: Option<&str>,
        name: Option<&str>,
    ) -> Result<AccountInfo, String> {
        create_account(&self.shared, phone, lid, name).map_err(|e| e.to_string())
    }

    /// Drops all but `leave` one-time prekeys of companion `jid` (`PHONE:DEV@s.whatsapp.net`)
    /// and, if that is below the threshold, sends it the prekey-low notification. Returns the
    /// count left.
    pub fn drain_prekeys(&self, jid: &str, leave: usize) -> Result<usize, String> {
        drain_prekeys(&self.shared, jid, leave)
    }

    /// Makes later scans and codes without an explicit account link to account `phone`.
    pub fn set_link_target(&self, phone: &str) -> Result<(), String> {
        set_link_target(&self.shared, phone)
    }

    /// Applies a scripted failure.
    pub fn fault(&self, f: Fault) {
        fault(&self.shared, f)
    }

    /// The admin state document.
    pub fn state(&self) -> serde_json::Value {
        state(&self.shared)
    }

    /// The relay document (`GET /admin/relay`).
    pub fn relay_state(&self) -> serde_json::Value {
        relay::state_json(&self.shared.lock())
    }

    /// Creates a group of account `creator` (phone) with `participants` (phones or JIDs),
    /// addressed by LID (`lid`) or by phone number; every member device gets the `<create>`
    /// notification. Returns the group JID.
    pub fn create_group(
        &self,
        subject: &str,
        creator: &str,
        participants: &[&str],
        lid: bool,
    ) -> Result<String, String> {
        let p: Vec<String> = participants.iter().map(|s| (*s).to_owned()).collect();
        create_group(&self.shared, subject, creator, &p, lid).map_err(|e| e.to_string())
    }

    /// Adds (`add`) or removes (`!add`) `participants` (phones or JIDs) in group `jid`, as its
    /// creator; members are notified. Returns `[{"jid", "error"}]` per participant.
    pub fn update_group(
        &self,
        jid: &str,
        add: bool,
        participants: &[&str],
    ) -> Result<serde_json::Value, String> {
        let p: Vec<String> = participants.iter().map(|s| (*s).to_owned()).collect();
        let action = if add {
            groups::Action::Add
        } else {
            groups::Action::Remove
        };
        change_group(&self.shared, jid, action, &p).map_err(|e| e.to_string())
    }

    /// The groups document (`GET /admin/groups`).
    pub fn groups_state(&self) -> serde_json::Value {
        let g = self.shared.lock();
        g.groups.json(&g.dir)
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

    /// Linked devices of every account, in link order.
    pub fn linked_devices(&self) -> Vec<LinkedDevice> {
        linked_devices(&self.shared.lock())
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

fn create_account(
    shared: &Shared,
    phone: &str,
    lid: Option<&str>,
    name: Option<&str>,
) -> Result<AccountInfo, AccountError> {
    let identity = KeyPair::generate(shared.rng.as_ref());
    let mut g = shared.lock();
    let i = g
        .dir
        .create(phone, lid, name, identity, shared.rng.as_ref())?;
    Ok(account_info(&g.dir, i))
}

/// Drops all but `leave` of device `jid`'s one-time prekeys (as if contacts had used them) and
/// sends the prekey-low notification if the count is now low. Returns the count left.
fn drain_prekeys(shared: &Shared, jid: &str, leave: usize) -> Result<usize, String> {
    let mut g = shared.lock();
    let (addr, _) = g.dir.resolve_device(jid).ok_or("no such device")?;
    let bundle = g
        .dir
        .accounts
        .get_mut(addr.account)
        .and_then(|a| a.device_mut(addr.device))
        .and_then(|d| d.bundle.as_mut())
        .ok_or("the device has uploaded no prekeys")?;
    bundle.drain(leave);
    let left = bundle.available();
    relay::prekeys_taken(&mut g, addr, (shared.clock)());
    Ok(left)
}

/// The account a reference names: phone digits (with or without `+`) or a PN/LID JID.
fn account_ref(dir: &Directory, r: &str) -> Result<usize, groups::GroupError> {
    let found = if r.contains('@') {
        accounts::parse_jid(r).and_then(|j| dir.account_of(&j))
    } else {
        dir.by_phone(r)
    };
    found.ok_or_else(|| groups::GroupError::NoSuchAccount(r.to_owned()))
}

/// Creates a group of `creator` with `participants` (account references) addressed by LID
/// (`lid`) or phone number; members are notified. Returns the group JID.
fn create_group(
    shared: &Shared,
    subject: &str,
    creator: &str,
    participants: &[String],
    lid: bool,
) -> Result<String, groups::GroupError> {
    let now = (shared.clock)();
    let mut g = shared.lock();
    let creator = account_ref(&g.dir, creator)?;
    let members = participants
        .iter()
        .map(|p| account_ref(&g.dir, p))
        .collect::<Result<Vec<_>, _>>()?;
    let mode = if lid {
        accounts::Domain::Lid
    } else {
        accounts::Domain::Pn
    };
    let gi = g.groups.create(creator, subject, &members, mode, now)?;
    let notices = g.groups.create_notices(&g.dir, gi, None, now);
    let pairs = g.groups.pairs(gi);
    let jid = g.groups.list()[gi].jid();
    relay::group_notices(&mut g, notices, pairs);
    Ok(jid)
}

/// Adds, removes, promotes or demotes `participants` (account references) in group `jid`, as
/// its creator; members are notified. Returns `[{"jid", "error"}]` per participant.
fn change_group(
    shared: &Shared,
    jid: &str,
    action: groups::Action,
    participants: &[String],
) -> Result<serde_json::Value, groups::GroupError> {
    let now = (shared.clock)();
    let mut g = shared.lock();
    let jids = participants
        .iter()
        .map(|p| {
            account_ref(&g.dir, p).map(|a| {
                g.dir.jid(
                    DeviceAddr {
                        account: a,
                        device: 0,
                    },
                    accounts::Domain::Pn,
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let inner = &mut *g;
    let (changes, notices, pairs) = inner
        .groups
        .admin_change(&inner.dir, jid, action, &jids, now)?;
    relay::group_notices(&mut g, notices, pairs);
    Ok(serde_json::Value::Array(
        changes
            .into_iter()
            .map(|c| serde_json::json!({ "jid": c.jid, "error": c.error }))
            .collect(),
    ))
}

fn account_info(dir: &Directory, i: usize) -> AccountInfo {
    let a = &dir.accounts[i];
    AccountInfo {
        phone: a.phone.clone(),
        jid: a.jid(0, accounts::Domain::Pn),
        lid: a.lid.clone(),
        lid_jid: a.jid(0, accounts::Domain::Lid),
        name: a.name.clone(),
    }
}

fn set_link_target(shared: &Shared, phone: &str) -> Result<(), String> {
    let mut g = shared.lock();
    let i = g.dir.by_phone(phone).ok_or("no such account")?;
    g.link_target = i;
    Ok(())
}

fn linked_devices(g: &Inner) -> Vec<LinkedDevice> {
    g.dir
        .linked()
        .into_iter()
        .map(|(addr, d)| LinkedDevice {
            jid: g.dir.jid(addr, accounts::Domain::Pn),
            lid: g.dir.jid(addr, accounts::Domain::Lid),
            noise_pub: d.noise_pub,
            identity_pub: d.identity_pub,
            prekeys: d.bundle.as_ref().map_or(0, |b| b.uploaded),
            signed_prekey_valid: d
                .bundle
                .as_ref()
                .and_then(|b| b.signed.as_ref().map(|_| b.signed_valid)),
            account_key_stripped: d.account_key_stripped,
        })
        .collect()
}

fn accounts_json(g: &Inner) -> serde_json::Value {
    let list: Vec<_> = (0..g.dir.accounts.len())
        .map(|i| {
            let mut v = account_info(&g.dir, i).json();
            let devices: Vec<_> = g.dir.accounts[i]
                .devices
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "device": d.index,
                        "jid": g.dir.accounts[i].jid(d.index, accounts::Domain::Pn),
                        "lid": g.dir.accounts[i].jid(d.index, accounts::Domain::Lid),
                        "preKeysAvailable": d.bundle.as_ref().map_or(0, |b| b.available()),
                    })
                })
                .collect();
            v["devices"] = serde_json::Value::Array(devices);
            v["linkTarget"] = serde_json::Value::Bool(i == g.link_target);
            v
        })
        .collect();
    serde_json::json!({ "accounts": list })
}

fn state(shared: &Shared) -> serde_json::Value {
    let g = shared.lock();
    let devices: Vec<_> = linked_devices(&g)
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
        Fault::WithholdMessageAck { id } => g.sticky.withhold_message_ack = id,
        Fault::Offline { enabled } => {
            g.sticky.offline = enabled;
            if enabled {
                broadcast(&mut g, &|| Cmd::Drop);
            }
        }
    }
}
