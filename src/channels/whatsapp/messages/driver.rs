//! The I/O side of the message path: runs [`super::inbound`]'s actions against the account store
//! ([`AccountDb`], its own thread) and the inbound queue, and runs the outbox consumer (usync,
//! prekey bundles, per-device encryption, server ack, `mark_sent`) over the connection's socket
//! through [`Outgoing`] requests that the client loop writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::channels::registry::{AccountCommand, Presence, TargetError};
use crate::channels::whatsapp::account::store::{AccountDb, InboundCommit, SessionRecord as StoredRecord, StoreError};
use crate::channels::whatsapp::binary::Node;
use crate::channels::whatsapp::creds::{Creds, StoredKeyPair};
use crate::channels::whatsapp::crypto::{KeyPair, SharedEntropy};
use crate::channels::whatsapp::proto;
use crate::channels::whatsapp::signal::{LocalIdentity, SessionRecord, padding, record::RECORD_FORMAT_VERSION};
use crate::messaging::outbox::recovery::{HOLD_BOUND, Hold};
use crate::messaging::{InboundLog, InboundSink, MessageId, Outbox, OutboxRecord};

use super::content;
use super::inbound::{self, Action, Loaded, Me};
use super::stanza::{self, DeviceEnc, Jid, RetryKeys, RetryRequest};

#[path = "group_recv.rs"]
mod group_recv;
#[path = "group_send.rs"]
mod group_send;

pub use group_send::{GROUP_META_TTL, on_group_notification};

/// How long a cached device list is trusted (refreshed earlier on a devices notification).
pub const DEVICE_LIST_TTL: Duration = Duration::from_secs(3600);

/// Counters shown in `channels status`.
#[derive(Debug, Default)]
pub struct MessageStats {
    /// Messages decrypted and handed to the inbound queue.
    pub received: AtomicU64,
    /// Messages the server acknowledged.
    pub sent: AtomicU64,
    /// Retry receipts we sent.
    pub retries_sent: AtomicU64,
    /// Stanzas dropped (undecryptable after retries, groups, malformed).
    pub dropped: AtomicU64,
}

/// One account's message path, shared by its successive connections.
pub struct Messaging {
    /// Channel account id.
    pub account_id: String,
    /// The protocol-state store.
    pub db: AccountDb,
    /// The outbox (same database).
    pub outbox: Outbox,
    /// Where inbound messages go.
    pub sink: InboundSink,
    /// The durable inbound queue (same database): a message is stored with its commit and
    /// handed to `sink` after it.
    pub inbound: InboundLog,
    /// Live operations from the account's handle.
    pub commands: Mutex<mpsc::Receiver<AccountCommand>>,
    /// Counters.
    pub stats: Arc<MessageStats>,
    /// How long to wait for the server's ack of a sent message.
    pub ack_timeout: Duration,
    /// Where the counters are published for `channels status` (`None` in tests).
    pub status: Option<crate::channels::status::ChannelStatusHandle>,
    /// Serialises every load–advance–store of this account's Signal sessions and sender keys.
    /// The connection task decrypts (and applies group notifications) while the outbox consumer
    /// encrypts; without this, one of two concurrent updates of the same record is lost: a
    /// message key used twice, a receiving chain gone, or a rotated group key brought back.
    /// Held only for local work (store reads, crypto, the commit), never across a network wait:
    /// the connection task that would answer that wait may itself be waiting for the lock.
    pub ratchets: Mutex<()>,
}

impl Messaging {
    /// Hands the stored messages the consumer has not confirmed to the sink, in order (at start
    /// and on each connect, before the connection's own messages).
    pub async fn redeliver_inbound(&self) {
        match self.inbound.redeliver(&self.sink).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(account = %self.account_id, count = n, "unconfirmed inbound messages handed to the consumer again"),
            Err(e) => tracing::error!(account = %self.account_id, "inbound queue not re-delivered: {e}"),
        }
    }

    fn publish(&self, f: impl FnOnce(&mut crate::channels::status::ChannelStatus)) {
        if let Some(s) = &self.status {
            s.update("whatsapp", &self.account_id, f);
        }
    }
}

impl std::fmt::Debug for Messaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messaging").field("account_id", &self.account_id).finish_non_exhaustive()
    }
}

/// What a request over the connection waits for.
#[derive(Debug)]
pub enum Reply {
    /// The `<iq>` answer (the client assigns the id).
    Iq(oneshot::Sender<Node>),
    /// The `<ack class="message">` for the message's id.
    MessageAck(oneshot::Sender<Node>),
    /// Nothing.
    None,
}

/// A stanza the consumer asks the client loop to write.
#[derive(Debug)]
pub struct Outgoing {
    /// The stanza.
    pub node: Node,
    /// What to route back.
    pub reply: Reply,
}

/// Events from the client loop to the consumer.
#[derive(Debug)]
pub enum ConnEvent {
    /// A retry receipt for one of our messages.
    Retry(Box<RetryRequest>),
    /// `<ib><offline count>`: the offline backlog has been processed (its receipts committed).
    BacklogDone,
    /// A receipt proved these held messages arrived (already committed `sent`).
    Confirmed(Vec<MessageId>),
}

/// Why a send did not complete.
#[derive(Debug, thiserror::Error)]
enum SendFail {
    #[error("connection closed")]
    Closed,
    #[error("timed out waiting for the server")]
    Timeout,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

fn now_ms(clock: &crate::channels::whatsapp::client::Clock) -> u64 {
    clock().saturating_mul(1000)
}

fn local_identity(creds: &Creds) -> LocalIdentity {
    LocalIdentity { key_pair: creds.identity(), registration_id: creds.registration_id }
}

fn device_identity(creds: &Creds) -> Option<Vec<u8>> {
    let a = creds.account.as_ref()?;
    Some(
        proto::AdvSignedDeviceIdentity {
            details: Some(a.details.clone()),
            account_signature_key: Some(a.account_signature_key.clone()),
            account_signature: Some(a.account_signature.clone()),
            device_signature: Some(a.device_signature.clone()),
        }
        .encode_to_vec(),
    )
}

/// Sets the `<message type>` and the extra `<enc>` attributes of `msg`'s kind
/// ([`content::stanza_kind`]) on a built `<message>` stanza.
fn with_kind(mut node: Node, msg: &crate::channels::whatsapp::proto::Message) -> Node {
    let (kind, enc_attrs) = content::stanza_kind(msg);
    for (k, v) in node.attrs.iter_mut() {
        if k == "type" {
            *v = kind.to_owned();
        }
    }
    fn walk(n: &mut Node, extra: &[(&str, &str)]) {
        if n.tag == "enc" {
            n.attrs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        }
        if let crate::channels::whatsapp::binary::Content::Nodes(children) = &mut n.content {
            for c in children {
                walk(c, extra);
            }
        }
    }
    if !enc_attrs.is_empty() {
        walk(&mut node, enc_attrs);
    }
    node
}

fn stored(rec: &SessionRecord) -> StoredRecord {
    StoredRecord { version: u32::from(RECORD_FORMAT_VERSION), bytes: rec.to_bytes() }
}

fn load_record(r: Option<StoredRecord>) -> Option<SessionRecord> {
    // An unreadable record is treated as no session: the sender's retry then rebuilds one.
    r.and_then(|r| SessionRecord::from_bytes(&r.bytes).ok())
}

/// What the receive path reads for a message: whether it was processed, the sending device's
/// session (under its LID address, else the phone-number one of older records), and the
/// prekeys a `pkmsg` names.
struct DmLoadKey {
    chat_remote: String,
    addr: String,
    legacy: String,
    id: String,
    ids: Option<(Option<u32>, u32)>,
    spk: crate::channels::whatsapp::creds::SignedPreKey,
}

impl DmLoadKey {
    fn load(&self, ops: &crate::channels::whatsapp::account::store::Ops<'_>, loaded: &mut Loaded) -> Result<(), StoreError> {
        loaded.duplicate = ops.is_processed(&self.chat_remote, &self.id)?;
        loaded.record = load_record(ops.session_or(&self.addr, &self.legacy)?);
        if let Some((ot, sid)) = self.ids {
            if let Some(ot) = ot {
                loaded.one_time = ops.prekey(ot)?.and_then(|p| p.key.key_pair().ok());
            }
            let signed = if sid == self.spk.key_id { Some(self.spk.key_pair.clone()) } else { ops.signed_prekey(sid)?.map(|s| s.key_pair) };
            loaded.signed = signed.and_then(|k| k.key_pair().ok());
        }
        Ok(())
    }
}

/// Commits what one decrypted message changed, with the message itself in the durable inbound
/// queue (`emit`) and, in a group, who wrote it; inside the caller's transaction.
fn persist(
    ops: &crate::channels::whatsapp::account::store::Ops<'_>,
    p: &inbound::Persist,
    emit: Option<&crate::messaging::InboundMessage>,
    group_author: Option<&str>,
    now: u64,
) -> Result<(crate::channels::whatsapp::account::store::CommitOutcome, Option<i64>), StoreError> {
    if let Some((pn, lid)) = &p.lid_mapping {
        ops.put_lid_mapping(pn, lid, now)?;
    }
    let session = p.session.as_ref().map(|(a, r)| (a.clone(), stored(r)));
    let commit = InboundCommit {
        remote: &p.remote,
        message_id: &p.message_id,
        session: session.as_ref().map(|(a, r)| (a.as_str(), r)),
        consumed_prekey: p.consumed_prekey,
        identity: p.identity.as_ref().map(|(a, k)| (a.as_str(), &k[..])),
        now_ms: now,
    };
    let outcome = if p.mark_processed { ops.commit_inbound(&commit)? } else { ops.commit_inbound_unmarked(&commit)? };
    let mut seq = None;
    if let crate::channels::whatsapp::account::store::CommitOutcome::Committed { .. } = &outcome {
        if let Some((g, s, r)) = &p.sender_key {
            ops.put_sender_key(g, s, &r.to_bytes(), now)?;
        }
        if let (true, Some(author)) = (p.mark_processed, group_author) {
            ops.put_group_message_sender(&p.remote, &p.message_id, author)?;
        }
        if let Some(m) = emit {
            seq = Some(ops.record_inbound(m, now)?);
        }
    }
    Ok((outcome, seq))
}

/// Per-connection receive state, owned by the client loop.
pub struct ConnInbound {
    m: Arc<Messaging>,
    retries: HashMap<String, u32>,
}

impl ConnInbound {
    /// For a new connection.
    pub fn new(m: Arc<Messaging>) -> Self {
        Self { m, retries: HashMap::new() }
    }

    /// Handles one `<message>`; returns the stanzas to write, in order. Errors are store
    /// failures: nothing is acknowledged then (the server re-delivers after reconnecting).
    pub async fn on_message(
        &mut self,
        node: &Node,
        creds: &Creds,
        now_s: u64,
        rng: &SharedEntropy,
    ) -> Result<Vec<Node>, StoreError> {
        let ack = stanza::ack("message", node);
        let msg = match stanza::parse_message(node) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(account = %self.m.account_id, "dropping message stanza: {e}");
                self.m.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(vec![ack]);
            }
        };
        let me = Me { account_id: self.m.account_id.clone(), local: local_identity(creds) };
        // Load, decrypt and commit as one step against the consumer's encryptions.
        let ratchets = self.m.ratchets.lock().await;
        let loaded = Loaded { retries_sent: self.retries.get(&msg.id).copied().unwrap_or(0), ..Default::default() };
        let remote = msg.from.with_device(0).user_jid();
        let chat_remote = match (&msg.alt, msg.from.server.as_str()) {
            (Some(a), "lid") if a.server == "s.whatsapp.net" => a.user_jid(),
            _ => remote,
        };
        // Sessions live under the LID address when known; one stored under the phone-number
        // address (older records) is read as a fallback and moves to the LID address on commit.
        let (addr, legacy, id) = (inbound::session_address(&msg), msg.from.device_jid(), msg.id.clone());
        let ids = inbound::prekey_ids(&msg);
        let spk = creds.signed_pre_key.clone();
        let key = DmLoadKey { chat_remote, addr, legacy, id, ids, spk };
        let now_ms = now_s.saturating_mul(1000);
        // The usual message (1:1, no retry receipt sent for it yet) is loaded, decrypted and
        // committed in one trip to the store thread; groups and retries take the long way.
        // That commit is not synced: the message is handed over at once and the disk sync runs
        // while the assistant works; the receipt and ack wait for it (below). After a power cut
        // before the sync, the server (never acked) delivers the message again and the older
        // ratchet state decrypts it; a reply cannot have left, as the consumer's claim is a
        // synced commit of this same file.
        let one_trip = loaded.retries_sent == 0 && !super::group_inbound::is_group(&msg);
        let (actions, mut precommitted) = if one_trip {
            let (me2, msg2, rng2) = (me.clone(), msg.clone(), rng.clone());
            self.m
                .db
                .write_unsynced(move |ops| {
                    let mut loaded = Loaded::default();
                    key.load(ops, &mut loaded)?;
                    let actions = inbound::process(&me2, &msg2, loaded, now_s, rng2.as_ref());
                    let emit = actions.iter().find_map(|a| if let Action::Emit(m) = a { Some(&**m) } else { None });
                    let committed = match actions.iter().find_map(|a| if let Action::Persist(p) = a { Some(&**p) } else { None }) {
                        Some(p) => Some(persist(ops, p, emit, None, now_ms)?),
                        None => None,
                    };
                    Ok((actions, committed))
                })
                .await?
        } else {
            let mut loaded = self
                .m
                .db
                .read(move |ops| {
                    let mut loaded = loaded;
                    key.load(ops, &mut loaded)?;
                    Ok(loaded)
                })
                .await?;
            if loaded.retries_sent >= 1 {
                loaded.retry_keys = self.retry_keys(creds, now_s, rng).await?;
            }
            if super::group_inbound::is_group(&msg) {
                self.load_group(&msg, creds, &mut loaded).await?;
            }
            (inbound::process(&me, &msg, loaded, now_s, rng.as_ref()), None)
        };
        // Only a commit needs the sync (a message that failed to decrypt wrote nothing).
        let sync_before_ack = one_trip && precommitted.is_some();
        let mut out = Vec::new();
        let mut skip_emit = false;
        // The message to emit is stored in the commit's transaction (durable inbound queue).
        let mut emit = actions.iter().find_map(|a| if let Action::Emit(m) = a { Some((**m).clone()) } else { None });
        let mut stored_seq = None;
        for a in actions {
            match a {
                Action::Persist(p) => {
                    let (outcome, seq) = match precommitted.take() {
                        Some(done) => done,
                        None => {
                            let group_author = super::group_inbound::participant(&msg).filter(|_| super::group_inbound::is_group(&msg)).map(|j| j.user_jid());
                            let emit = emit.take();
                            self.m.db.write(move |ops| persist(ops, &p, emit.as_ref(), group_author.as_deref(), now_ms)).await?
                        }
                    };
                    stored_seq = seq;
                    match outcome {
                        crate::channels::whatsapp::account::store::CommitOutcome::Duplicate => skip_emit = true,
                        crate::channels::whatsapp::account::store::CommitOutcome::Committed { identity } => {
                            if let Some(crate::channels::whatsapp::account::store::IdentityVerdict::Changed { .. }) = identity {
                                tracing::warn!(account = %self.m.account_id, device = %msg.from.device_jid(), "identity key changed for this contact device");
                            }
                        }
                    }
                    self.retries.remove(&msg.id);
                }
                Action::Emit(m) if !skip_emit => {
                    let len = m.body.text().map_or(0, |t| t.chars().count());
                    tracing::info!(account = %self.m.account_id, sender = %m.sender.as_str(), len, from_me = m.from_me, offline = msg.offline, "whatsapp message received");
                    self.m.stats.received.fetch_add(1, Ordering::Relaxed);
                    self.m.publish(|s| s.messages_received += 1);
                    let handed = match stored_seq.take() {
                        Some(seq) => self.m.inbound.hand_off(&self.m.sink, seq, *m).await,
                        None => self.m.sink.push(*m).await.is_ok(),
                    };
                    if !handed {
                        tracing::warn!(account = %self.m.account_id, "inbound queue closed; message kept for the next start");
                    }
                }
                Action::Emit(_) => {}
                Action::Send(n) => out.push(n),
                Action::RetrySent(id) => {
                    *self.retries.entry(id).or_insert(0) += 1;
                    self.m.stats.retries_sent.fetch_add(1, Ordering::Relaxed);
                }
                Action::Drop { why } => {
                    self.m.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(account = %self.m.account_id, from = %msg.from.device_jid(), id = %msg.id, "message not delivered: {why}");
                }
            }
        }
        if self.retries.len() > 1000 {
            self.retries.clear();
        }
        drop(ratchets);
        if sync_before_ack {
            // Durable before anything tells the server (receipt, ack) that it arrived.
            self.m.db.sync().await?;
        }
        out.push(ack);
        Ok(out)
    }

    /// Keys for a retry receipt: a fresh one-time prekey (stored first), our signed prekey and
    /// identity. Fresh prekeys for retries take ids from `0xF00000` up (random), apart from the
    /// sequential uploads.
    async fn retry_keys(&self, creds: &Creds, now_s: u64, rng: &SharedEntropy) -> Result<Option<RetryKeys>, StoreError> {
        let Some(di) = device_identity(creds) else { return Ok(None) };
        let Ok(signed_pub) = creds.signed_pre_key.key_pair.public.clone().try_into() else { return Ok(None) };
        let kp = KeyPair::generate(rng.as_ref());
        let r: [u8; 4] = crate::channels::whatsapp::crypto::random_bytes(rng.as_ref());
        let id = 0xF0_0000 | (u32::from_be_bytes(r) & 0x0F_FFFF);
        let pair = StoredKeyPair::from(&kp);
        let ok = self
            .m
            .db
            .write(move |ops| {
                if ops.prekey(id)?.is_some() {
                    return Ok(false);
                }
                ops.put_prekeys(&[(id, pair)], now_s.saturating_mul(1000))?;
                Ok(true)
            })
            .await?;
        if !ok {
            return Ok(None);
        }
        Ok(Some(RetryKeys {
            identity: creds.identity().public,
            pre_key: (id, kp.public),
            signed: (creds.signed_pre_key.key_id, signed_pub, creds.signed_pre_key.signature.clone()),
            device_identity: di,
        }))
    }
}

/// A claimed message and, for the usual DM, its ciphertexts (`None`: the long way).
pub(super) type Claimed = (OutboxRecord, Option<Vec<DeviceEnc>>);

/// Who we are, for encrypting a DM inside a store transaction.
pub(super) struct DmKeys {
    me: Jid,
    own_lid_user: Option<String>,
    local: crate::channels::whatsapp::signal::LocalIdentity,
    rng: SharedEntropy,
}

impl DmKeys {
    /// Inside a transaction: expires what is overdue, claims `account`'s next message and, for
    /// the usual DM, encrypts it ([`DmKeys::encrypt_cached`]). The account clock counts whole
    /// seconds while messages are stored with their unix ms: the claim uses the end of the
    /// current second, or a reply stored at .069 s waits for the next second (measured: ~1 s
    /// per reply in benches/full_turn.rs).
    pub(super) fn claim_next(&self, ops: &crate::channels::whatsapp::account::store::Ops<'_>, account: &str, now: u64) -> Result<(Vec<MessageId>, Option<Claimed>), StoreError> {
        let (expired, claimed) = ops.expire_and_claim(account, now, now + 999, "deadline passed before it could be sent")?;
        let Some(rec) = claimed else { return Ok((expired, None)) };
        let encrypted = self.encrypt_cached(ops, &rec, now)?;
        Ok((expired, Some((rec, encrypted))))
    }

    /// Our user (LID when the chat is a LID chat and ours is known) and its JID.
    fn own_for(&self, chat: &Jid) -> (String, Jid) {
        let own_user = match (&self.own_lid_user, chat.server.as_str()) {
            (Some(l), "lid") => format!("{l}@lid"),
            _ => self.me.with_device(0).user_jid(),
        };
        let own_jid = Jid::parse(&own_user).unwrap_or_else(|| self.me.with_device(0));
        (own_user, own_jid)
    }

    /// Inside the claim's transaction: encrypts DM `rec` for every device of the contact and
    /// our other devices and stores the advanced sessions, when every device list is cached and
    /// every device has a session. `None`, with nothing written, otherwise (groups too).
    pub(super) fn encrypt_cached(&self, ops: &crate::channels::whatsapp::account::store::Ops<'_>, rec: &OutboxRecord, now: u64) -> Result<Option<Vec<DeviceEnc>>, StoreError> {
        let Some(chat) = Jid::parse(rec.message.chat.as_str()).filter(Jid::is_user).map(|j| j.with_device(0)) else { return Ok(None) };
        let (own_user, own_jid) = self.own_for(&chat);
        let mut lists = HashMap::new();
        let mut stored = HashMap::new();
        for u in [chat.user_jid(), own_user.clone()] {
            let Some(l) = ops.device_list(&u, now)? else { return Ok(None) };
            let Some(j) = Jid::parse(&u) else { return Ok(None) };
            for d in &l.devices {
                let dj = j.with_device(*d).device_jid();
                stored.insert(dj.clone(), stored_session(ops, &dj)?);
            }
            lists.insert(u, l.devices);
        }
        // A contact without devices takes the long way, which says so.
        let Ok(devices) = dm_devices(&chat, &own_user, &own_jid, self.me.device, &lists) else { return Ok(None) };
        let wanted: Vec<_> = devices.iter().filter_map(|d| stored.remove(d)).collect();
        let (have, need) = assign_sessions(wanted, None, &HashMap::new(), &self.local, self.rng.as_ref());
        if !need.is_empty() || !have.iter().any(|(d, _, _)| Jid::parse(d).is_some_and(|j| j.user == chat.user)) {
            return Ok(None);
        }
        let msg = content::outbound_message(&rec.message.body, rec.message.chat.as_str(), rec.created_at_ms);
        let bodies = DmBodies::new(&chat, &msg, &self.me.user, self.own_lid_user.clone());
        let (encs, records) = bodies.encrypt(have, self.rng.as_ref());
        for (a, r) in &records {
            ops.put_session(a, r, now)?;
        }
        Ok(Some(encs))
    }
}

/// What a DM's devices get: the contact's devices the message, our own other devices the
/// `deviceSentMessage` copy naming the chat.
struct DmBodies {
    plain: Vec<u8>,
    device_sent: Vec<u8>,
    own_users: (String, Option<String>),
}

impl DmBodies {
    fn new(chat: &Jid, msg: &proto::Message, own_user: &str, own_lid_user: Option<String>) -> Self {
        Self {
            plain: msg.encode_to_vec(),
            device_sent: content::device_sent(&chat.user_jid(), msg).encode_to_vec(),
            own_users: (own_user.to_owned(), own_lid_user),
        }
    }

    /// Encrypts for each session (padded); returns the ciphertexts and the advanced records to
    /// commit before they leave. A device whose encryption fails is left out (logged).
    fn encrypt(
        &self,
        sessions: Vec<(String, String, SessionRecord)>,
        rng: &dyn crate::channels::whatsapp::crypto::Entropy,
    ) -> (Vec<DeviceEnc>, Vec<(String, StoredRecord)>) {
        let mut encs = Vec::new();
        let mut records = Vec::new();
        for (d, addr, mut rec) in sessions {
            let own = Jid::parse(&d).is_some_and(|j| j.user == self.own_users.0 || Some(j.user.as_str()) == self.own_users.1.as_deref());
            let body = if own { &self.device_sent } else { &self.plain };
            match rec.encrypt(&padding::pad(body, rng)) {
                Ok((ty, ct)) => {
                    encs.push(DeviceEnc { jid: d, kind: ty.as_str(), ciphertext: ct });
                    records.push((addr, stored(&rec)));
                }
                Err(e) => tracing::warn!(device = %d, "encryption failed: {e}"),
            }
        }
        (encs, records)
    }
}

/// Device `d`'s stored session record: under its LID address when the mapping is known (the
/// address it is committed under), else under `d`. Returns `(d, address, record)`.
fn stored_session(ops: &crate::channels::whatsapp::account::store::Ops<'_>, d: &str) -> Result<(String, String, Option<StoredRecord>), StoreError> {
    let j = Jid::parse(d);
    let lid = match &j {
        Some(j) if j.server == "s.whatsapp.net" => ops.lid_for_pn(&j.user_jid())?.and_then(|l| Jid::parse(&l)).map(|l| l.with_device(j.device).device_jid()),
        _ => None,
    };
    let addr = lid.unwrap_or_else(|| d.to_owned());
    let rec = ops.session_or(&addr, d)?;
    Ok((d.to_owned(), addr, rec))
}

/// The devices a DM to `chat` goes to: each of the contact's devices and each of our own but
/// this one, from the users' device lists.
fn dm_devices(chat: &Jid, own_user: &str, own_jid: &Jid, this_device: u32, lists: &HashMap<String, Vec<u32>>) -> Result<Vec<String>, SendFail> {
    let their = lists.get(&chat.user_jid()).cloned().unwrap_or_default();
    if their.is_empty() {
        return Err(SendFail::Permanent(format!("{} is not on WhatsApp (no devices)", chat.user_jid())));
    }
    let mut devices: Vec<String> = their.iter().map(|d| chat.with_device(*d).device_jid()).collect();
    for d in lists.get(own_user).cloned().unwrap_or_default() {
        if d != this_device {
            devices.push(own_jid.with_device(d).device_jid());
        }
    }
    Ok(devices)
}

/// Sorts stored records into usable sessions and the devices that still need a bundle:
/// `force` starts a new session from its bundle on top of the stored record; a device without a
/// current session starts one from `bundles` when it has one there, else it is listed as needed.
fn assign_sessions(
    stored: Vec<(String, String, Option<StoredRecord>)>,
    force: Option<&(String, crate::channels::whatsapp::signal::PreKeyBundle)>,
    bundles: &HashMap<String, crate::channels::whatsapp::signal::PreKeyBundle>,
    local: &crate::channels::whatsapp::signal::LocalIdentity,
    rng: &dyn crate::channels::whatsapp::crypto::Entropy,
) -> (Vec<(String, String, SessionRecord)>, Vec<String>) {
    let mut have = Vec::new();
    let mut need = Vec::new();
    for (d, addr, r) in stored {
        let rec = load_record(r).unwrap_or_default();
        if let Some((fd, b)) = force
            && *fd == d
        {
            let mut rec = rec;
            match rec.start_outgoing(local, b, rng) {
                Ok(()) => have.push((d, addr, rec)),
                Err(e) => tracing::warn!(device = %d, "retry bundle rejected: {e}"),
            }
            continue;
        }
        if rec.has_current_session() {
            have.push((d, addr, rec));
            continue;
        }
        let Some(b) = bundles.get(&d) else {
            need.push(d);
            continue;
        };
        let mut rec = SessionRecord::new();
        match rec.start_outgoing(local, b, rng) {
            Ok(()) => have.push((d, addr, rec)),
            Err(e) => tracing::warn!(device = %d, "prekey bundle rejected: {e}"),
        }
    }
    (have, need)
}

/// The consumer's view of the connection.
struct Link {
    out: mpsc::Sender<Outgoing>,
}

impl Link {
    async fn iq(&self, node: Node, timeout: Duration) -> Result<Node, SendFail> {
        let (tx, rx) = oneshot::channel();
        self.out.send(Outgoing { node, reply: Reply::Iq(tx) }).await.map_err(|_| SendFail::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(n)) if n.get_attr("type") == Some("result") => Ok(n),
            Ok(Ok(n)) => Err(SendFail::Transient(format!(
                "server answered {} with an error{}",
                n.child_nodes().first().map_or("", |_| "query"),
                n.child("error").and_then(|e| e.get_attr("code")).map(|c| format!(" {c}")).unwrap_or_default()
            ))),
            Ok(Err(_)) => Err(SendFail::Closed),
            Err(_) => Err(SendFail::Timeout),
        }
    }

    async fn fire(&self, node: Node) -> Result<(), SendFail> {
        self.out.send(Outgoing { node, reply: Reply::None }).await.map_err(|_| SendFail::Closed)
    }
}

/// The outbox consumer of one connection: runs until the connection's request channel closes.
pub struct Consumer {
    m: Arc<Messaging>,
    creds: Creds,
    link: Link,
    events: mpsc::Receiver<ConnEvent>,
    clock: crate::channels::whatsapp::client::Clock,
    rng: SharedEntropy,
    me: Jid,
}

impl Consumer {
    /// A consumer writing through `out` and reading retry events from `events`.
    pub fn new(
        m: Arc<Messaging>,
        creds: Creds,
        out: mpsc::Sender<Outgoing>,
        events: mpsc::Receiver<ConnEvent>,
        clock: crate::channels::whatsapp::client::Clock,
        rng: SharedEntropy,
    ) -> Option<Self> {
        let me = creds.me.as_ref().and_then(|m| Jid::parse(&m.id))?;
        Some(Self { m, creds, link: Link { out }, events, clock, rng, me })
    }

    /// Runs until the connection ends.
    pub async fn run(mut self) {
        let m = self.m.clone();
        if let Some(lid) = self.own_lid_user() {
            let (pn, lid, now) = (self.me.with_device(0).user_jid(), format!("{lid}@lid"), now_ms(&self.clock));
            if let Err(e) = m.db.write(move |ops| ops.put_lid_mapping(&pn, &lid, now)).await {
                tracing::warn!("own LID mapping not stored: {e}");
            }
        }
        let mut commands = m.commands.lock().await;
        let mut commands_open = true;
        let account = m.account_id.clone();
        // Before the first claim every `sending` message is one whose fate a restart (or a lost
        // connection whose outcome was not recorded) made unknown: hold it until the backlog ends.
        let held = match m.outbox.sending_ids("whatsapp", &account).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(account = %account, "outbox: held messages not read: {e}");
                Vec::new()
            }
        };
        if !held.is_empty() {
            tracing::info!(account = %account, count = held.len(), "messages interrupted by a restart are held until the offline backlog shows whether they arrived");
        }
        let mut hold = Hold::new(held, now_ms(&self.clock), HOLD_BOUND);
        // A reply stored while this consumer lives is claimed and encrypted in its own
        // transaction (`express`); removed when the consumer ends.
        let express = super::express::ExpressClaim::install(&m, self.dm_keys());
        loop {
            if let Some((rec, encrypted)) = express.take() {
                if !self.send_claimed(rec, encrypted).await {
                    return;
                }
                continue;
            }
            let now = now_ms(&self.clock);
            let released = hold.tick(now);
            self.release_held(released, now).await;
            let claimed = self.claim_and_encrypt(now).await.map(|(expired, claimed)| {
                if !expired.is_empty() {
                    tracing::warn!(account = %account, count = expired.len(), "outbound messages expired unsent");
                }
                claimed
            });
            match claimed {
                Ok(Some((rec, encrypted))) => {
                    if !self.send_claimed(rec, encrypted).await {
                        return;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(account = %account, "outbox claim failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            let next_due = m.outbox.next_due_ms("whatsapp", &account, now).await.ok().flatten();
            let next_due = match (next_due, hold.wake_at_ms()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = next_due.map_or(Duration::from_secs(60), |t| Duration::from_millis(t.saturating_sub(now).max(50)));
            let until = tokio::time::Instant::now() + wait;
            // Wait for new work, the next due time or an event; a live command (typing, read
            // receipt, target check) adds no outbox work, so after one the wait goes on without
            // another claim. New work first: a reply stored together with a live command (its
            // `paused`) is claimed before the command is written.
            loop {
                tokio::select! {
                    biased;
                    _ = m.outbox.wait_for_work() => break,
                    _ = tokio::time::sleep_until(until) => break,
                    _ = self.link.out.closed() => return,
                    ev = self.events.recv() => {
                        if !self.on_conn_event(ev, &mut hold).await {
                            return;
                        }
                        break;
                    }
                    cmd = commands.recv(), if commands_open => match cmd {
                        Some(c) => {
                            if let Err(SendFail::Closed) = self.command(c).await {
                                return;
                            }
                        }
                        // Every handle is gone: keep serving the outbox without commands.
                        None => commands_open = false,
                    },
                }
            }
        }
    }

    /// One event of the connection task (retry receipt, delivery confirmation, end of the
    /// offline backlog); false when the connection is gone.
    async fn on_conn_event(&mut self, ev: Option<ConnEvent>, hold: &mut Hold) -> bool {
        let account = self.m.account_id.clone();
        match ev {
            Some(ConnEvent::Retry(r)) => {
                if let Err(e) = self.answer_retry(*r).await {
                    tracing::warn!(account = %account, "could not answer a retry receipt: {e}");
                    if matches!(e, SendFail::Closed) {
                        return false;
                    }
                }
            }
            Some(ConnEvent::Confirmed(ids)) => {
                for id in &ids {
                    if hold.confirmed(id) {
                        tracing::info!(account = %account, id = %id, "held message confirmed by a receipt; not re-sent");
                    }
                }
            }
            Some(ConnEvent::BacklogDone) => {
                let released = hold.backlog_done();
                self.release_held(released, now_ms(&self.clock)).await;
            }
            None => return false,
        }
        true
    }

    /// Makes the held messages that no receipt confirmed claimable again (same ids).
    async fn release_held(&self, ids: Vec<MessageId>, now: u64) {
        if ids.is_empty() {
            return;
        }
        let account = &self.m.account_id;
        match self.m.outbox.release_held(ids, now).await {
            Ok(0) => tracing::info!(account = %account, "every held message was confirmed by a receipt; nothing is re-sent"),
            Ok(n) => tracing::info!(account = %account, count = n, "held messages without a receipt are re-sent with their ids"),
            Err(e) => tracing::error!(account = %account, "outbox: held messages not released: {e}"),
        }
    }

    /// Sends one claimed message; false when the connection is gone.
    async fn send_claimed(&mut self, rec: OutboxRecord, encrypted: Option<Vec<DeviceEnc>>) -> bool {
        let id = rec.message.id.clone();
        let r = self.send_record(&rec, encrypted).await;
        let now = now_ms(&self.clock);
        let m = &self.m;
        let res = match &r {
            Ok(()) => {
                m.stats.sent.fetch_add(1, Ordering::Relaxed);
                m.publish(|s| s.messages_sent += 1);
                tracing::info!(account = %m.account_id, id = %id, chat = %rec.message.chat.as_str(), "whatsapp message sent (server ack)");
                m.outbox.mark_sent(&id, now).await.map(|_| ())
            }
            Err(SendFail::Permanent(why)) => {
                tracing::warn!(account = %m.account_id, id = %id, "outbound message failed: {why}");
                m.outbox.mark_failed(&id, why, now).await
            }
            Err(e) => {
                let backoff = 1000u64 << rec.attempts.min(6);
                tracing::warn!(account = %m.account_id, id = %id, "outbound message not sent yet: {e}");
                m.outbox.release(&id, &e.to_string(), now + backoff, now).await.map(|_| ())
            }
        };
        if let Err(e) = res {
            tracing::error!(account = %m.account_id, id = %id, "outbox update failed: {e}");
        }
        !matches!(r, Err(SendFail::Closed))
    }

    /// Device lists for `users` (user JIDs), from the cache or one usync query.
    async fn devices(&self, users: Vec<String>) -> Result<HashMap<String, Vec<u32>>, SendFail> {
        let now = now_ms(&self.clock);
        let u2 = users.clone();
        let mut found: HashMap<String, Vec<u32>> = self
            .m
            .db
            .read(move |ops| {
                let mut f = HashMap::new();
                for u in &u2 {
                    if let Some(l) = ops.device_list(u, now)? {
                        f.insert(u.clone(), l.devices);
                    }
                }
                Ok(f)
            })
            .await?;
        let missing: Vec<String> = users.into_iter().filter(|u| !found.contains_key(u)).collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let sid = format!("{}.{}", now, self.me.device);
        let ans = self.link.iq(stanza::usync_devices_query(&missing, &sid), Duration::from_secs(20)).await?;
        let users = stanza::parse_usync(&ans);
        let ttl = DEVICE_LIST_TTL.as_millis() as u64;
        let write: Vec<(String, Vec<u32>, Option<String>)> = users
            .iter()
            .filter_map(|u| {
                let j = Jid::parse(&u.jid)?.with_device(0).user_jid();
                Some((j, u.devices.clone()?, u.lid.clone()))
            })
            .collect();
        for (j, d, _) in &write {
            found.insert(j.clone(), d.clone());
        }
        self.m
            .db
            .write(move |ops| {
                for (j, d, lid) in &write {
                    ops.put_device_list(j, d, now, now + ttl)?;
                    if let Some(l) = lid
                        && j.ends_with("@s.whatsapp.net")
                    {
                        ops.put_lid_mapping(j, l, now)?;
                    }
                }
                Ok(())
            })
            .await?;
        Ok(found)
    }

    /// Loads (or creates from bundles) the sessions of `devices` (wire JIDs); devices without
    /// keys are left out. Returns `(wire JID, session address, record)`: the address is the LID
    /// device JID when the user's LID is known (as Baileys 7 keys sessions), else the wire JID.
    /// The stored session record of each device (under its LID address when known).
    async fn stored_sessions(&self, devices: Vec<String>) -> Result<Vec<(String, String, Option<StoredRecord>)>, SendFail> {
        Ok(self.m.db.read(move |ops| devices.iter().map(|d| stored_session(ops, d)).collect::<Result<Vec<_>, StoreError>>()).await?)
    }

    /// Expires what is overdue and claims the next message in one synced transaction; for the
    /// usual DM (device lists cached, a session with every device) the same trip, under the
    /// ratchet lock, also encrypts it and commits the advanced sessions, so one disk sync comes
    /// before it leaves ([`DmKeys::claim_next`]). `Some((record, None))` when the message takes
    /// the long way ([`Consumer::send_record`]: usync, bundles, groups).
    async fn claim_and_encrypt(&self, now: u64) -> Result<(Vec<MessageId>, Option<Claimed>), StoreError> {
        let keys = self.dm_keys();
        let account = self.m.account_id.clone();
        let _ratchets = self.m.ratchets.lock().await;
        self.m.db.write(move |ops| keys.claim_next(ops, &account, now)).await
    }

    /// A session for each device, with the ratchet lock held for the caller's encryption and
    /// commit: the stored one, else one started from the device's prekey bundle (fetched
    /// without the lock, then the records are read again under it). `force_new` starts a new
    /// session for one device from the bundle of its retry receipt. Devices without a session
    /// or bundle are left out.
    async fn sessions(
        &self,
        devices: Vec<String>,
        force_new: Option<(String, crate::channels::whatsapp::signal::PreKeyBundle)>,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, Vec<(String, String, SessionRecord)>), SendFail> {
        let local = local_identity(&self.creds);
        let guard = self.m.ratchets.lock().await;
        let stored = self.stored_sessions(devices.clone()).await?;
        let (have, need) = assign_sessions(stored, force_new.as_ref(), &HashMap::new(), &local, self.rng.as_ref());
        if need.is_empty() {
            return Ok((guard, have));
        }
        drop(guard);
        let ans = self.link.iq(stanza::bundle_query(&need), Duration::from_secs(20)).await?;
        let bundles: HashMap<String, _> = stanza::parse_bundles(&ans)
            .into_iter()
            .filter_map(|(j, b)| Some((Jid::parse(&j)?.device_jid(), b)))
            .collect();
        let guard = self.m.ratchets.lock().await;
        let stored = self.stored_sessions(devices).await?;
        let (have, missing) = assign_sessions(stored, force_new.as_ref(), &bundles, &local, self.rng.as_ref());
        for d in missing {
            tracing::debug!(device = %d, "no prekey bundle; device skipped");
        }
        Ok((guard, have))
    }

    /// Encrypts `plain` for each session (own devices get the `deviceSentMessage` copy), commits
    /// the records, and returns the per-device ciphertexts; the ratchet lock `_ratchets` (from
    /// [`Consumer::sessions`]) is released once the records are committed.
    async fn encrypt_all(
        &self,
        _ratchets: tokio::sync::MutexGuard<'_, ()>,
        sessions: Vec<(String, String, SessionRecord)>,
        chat: &Jid,
        msg: &proto::Message,
    ) -> Result<Vec<DeviceEnc>, SendFail> {
        let bodies = DmBodies::new(chat, msg, &self.me.user, self.own_lid_user());
        let (encs, records) = bodies.encrypt(sessions, self.rng.as_ref());
        let now = now_ms(&self.clock);
        // Sessions are committed before the ciphertexts leave.
        self.m
            .db
            .write(move |ops| {
                for (d, r) in &records {
                    ops.put_session(d, r, now)?;
                }
                Ok(())
            })
            .await?;
        Ok(encs)
    }

    pub(super) fn dm_keys(&self) -> DmKeys {
        DmKeys { me: self.me.clone(), own_lid_user: self.own_lid_user(), local: local_identity(&self.creds), rng: self.rng.clone() }
    }

    fn own_lid_user(&self) -> Option<String> {
        self.creds.me.as_ref()?.lid.as_deref().and_then(Jid::parse).map(|j| j.user)
    }

    async fn send_record(&self, rec: &OutboxRecord, encrypted: Option<Vec<DeviceEnc>>) -> Result<(), SendFail> {
        if let Some(g) = Jid::parse(rec.message.chat.as_str()).filter(|j| j.server == super::group_meta::GROUP_SERVER) {
            return self.send_group(rec, &g).await;
        }
        let chat = Jid::parse(rec.message.chat.as_str())
            .filter(Jid::is_user)
            .ok_or_else(|| SendFail::Permanent(format!("unsupported chat {:?} (groups are separate work)", rec.message.chat.as_str())))?
            .with_device(0);
        let msg = content::outbound_message(&rec.message.body, rec.message.chat.as_str(), rec.created_at_ms);
        let encs = match encrypted {
            Some(encs) => encs,
            None => {
                let keys = self.dm_keys();
                let (own_user, own_jid) = keys.own_for(&chat);
                let users = vec![chat.user_jid(), own_user.clone()];
                let lists = self.devices(users).await?;
                let devices = dm_devices(&chat, &own_user, &own_jid, self.me.device, &lists)?;
                let (ratchets, sessions) = self.sessions(devices, None).await?;
                if !sessions.iter().any(|(d, _, _)| Jid::parse(d).is_some_and(|j| j.user == chat.user)) {
                    return Err(SendFail::Transient("no device of the recipient has keys".into()));
                }
                self.encrypt_all(ratchets, sessions, &chat, &msg).await?
            }
        };
        let node = stanza::outgoing_message(&chat.user_jid(), rec.message.id.as_str(), &encs, device_identity(&self.creds).as_deref());
        self.await_ack(with_kind(node, &msg)).await
    }

    async fn await_ack(&self, node: Node) -> Result<(), SendFail> {
        let (tx, rx) = oneshot::channel();
        self.link.out.send(Outgoing { node, reply: Reply::MessageAck(tx) }).await.map_err(|_| SendFail::Closed)?;
        match tokio::time::timeout(self.m.ack_timeout, rx).await {
            Ok(Ok(ack)) => match ack.get_attr("error") {
                None => Ok(()),
                Some(code) => Err(SendFail::Transient(format!("server refused the message ({code})"))),
            },
            Ok(Err(_)) => Err(SendFail::Closed),
            Err(_) => Err(SendFail::Timeout),
        }
    }

    /// A retry receipt for our message: re-encrypt for that device only (a new session when the
    /// receipt carries keys) and send it to that device with the same id.
    async fn answer_retry(&self, r: RetryRequest) -> Result<(), SendFail> {
        let Some(rec) = self.m.outbox.get(&MessageId::new(r.id.clone())).await.map_err(|e| SendFail::Transient(e.to_string()))? else {
            tracing::info!(id = %r.id, "retry receipt for a message we no longer have");
            return Ok(());
        };
        let Some(chat) = Jid::parse(rec.message.chat.as_str()) else { return Ok(()) };
        if chat.server == super::group_meta::GROUP_SERVER {
            return self.answer_group_retry(&r, &rec, &chat).await;
        }
        let dev = r.from.device_jid();
        let force = r.bundle.clone().filter(|_| r.count >= 2).map(|b| (dev.clone(), b));
        let (ratchets, sessions) = self.sessions(vec![dev.clone()], force).await?;
        let msg = content::outbound_message(&rec.message.body, rec.message.chat.as_str(), rec.created_at_ms);
        let (kind, enc_attrs) = content::stanza_kind(&msg);
        let encs = self.encrypt_all(ratchets, sessions, &chat.with_device(0), &msg).await?;
        let Some(e) = encs.into_iter().next() else { return Ok(()) };
        let mut node = Node::new("message").attr("to", dev.clone()).attr("id", r.id.clone()).attr("type", kind);
        let mut enc = Node::new("enc").attr("v", "2").attr("type", e.kind).attr("count", r.count.to_string());
        for (k, v) in enc_attrs {
            enc = enc.attr(*k, *v);
        }
        let mut children = vec![enc.bytes(e.ciphertext)];
        if e.kind == "pkmsg"
            && let Some(di) = device_identity(&self.creds)
        {
            children.push(Node::new("device-identity").bytes(di));
        }
        node = node.children(children);
        tracing::info!(id = %r.id, device = %dev, count = r.count, "re-sending a message after a retry receipt");
        self.link.fire(node).await
    }

    async fn command(&self, c: AccountCommand) -> Result<(), SendFail> {
        match c {
            AccountCommand::Presence { chat, state } => {
                self.link.fire(stanza::chatstate(chat.as_str(), state == Presence::Composing)).await
            }
            AccountCommand::MarkRead { chat, sender, ids } => {
                let ids: Vec<String> = ids.iter().map(|i| i.as_str().to_owned()).collect();
                if chat.as_str().ends_with("@g.us") {
                    let p = Some(sender.as_str()).filter(|s| !s.is_empty());
                    return self.link.fire(stanza::receipt(chat.as_str(), p, &ids, Some("read"))).await;
                }
                let to = if sender.as_str().is_empty() { chat.as_str() } else { sender.as_str() };
                self.link.fire(stanza::receipt(to, None, &ids, Some("read"))).await
            }
            AccountCommand::ResolveTarget { target, reply } => {
                let r = self.resolve(&target).await;
                let closed = matches!(r, Err(SendFail::Closed));
                let answer = match r {
                    Ok(x) => x,
                    Err(_) => Err(TargetError::NotConnected),
                };
                let _ = reply.send(answer);
                if closed { Err(SendFail::Closed) } else { Ok(()) }
            }
            AccountCommand::ListGroups { reply } => {
                let r = self.participating().await;
                let closed = matches!(r, Err(SendFail::Closed));
                let answer = match r {
                    Ok(gs) => Ok(gs
                        .into_iter()
                        .map(|g| crate::channels::registry::GroupSummary { id: crate::messaging::ChatId::new(g.jid), subject: g.subject, participants: g.members.len() })
                        .collect()),
                    Err(e) => {
                        tracing::warn!(account = %self.m.account_id, "group list failed: {e}");
                        Err(TargetError::NotConnected)
                    }
                };
                let _ = reply.send(answer);
                if closed { Err(SendFail::Closed) } else { Ok(()) }
            }
        }
    }

    async fn resolve(&self, target: &str) -> Result<Result<crate::messaging::ChatId, TargetError>, SendFail> {
        let t = target.trim();
        if let Some(g) = Jid::parse(t).filter(|j| j.server == super::group_meta::GROUP_SERVER) {
            // A group: it exists and we are in it when the server answers its metadata.
            return match self.group_meta(&g.user_jid()).await {
                Ok(meta) => Ok(Ok(crate::messaging::ChatId::new(meta.jid))),
                Err(SendFail::Closed) => Err(SendFail::Closed),
                Err(SendFail::Timeout) => Err(SendFail::Timeout),
                Err(_) => Ok(Err(TargetError::NotOnChannel(t.to_owned()))),
            };
        }
        if t.contains('@') {
            let Some(j) = Jid::parse(t).filter(Jid::is_user) else {
                return Ok(Err(TargetError::Invalid(t.to_owned())));
            };
            let lists = self.devices(vec![j.user_jid()]).await?;
            return Ok(if lists.get(&j.user_jid()).is_some_and(|d| !d.is_empty()) {
                Ok(crate::messaging::ChatId::new(j.user_jid()))
            } else {
                Err(TargetError::NotOnChannel(t.to_owned()))
            });
        }
        let digits: String = t.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
        let digits = digits.strip_prefix('+').unwrap_or(&digits).to_owned();
        if digits.len() < 7 || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) || digits.starts_with('0') {
            return Ok(Err(TargetError::Invalid(t.to_owned())));
        }
        let sid = format!("r{}", now_ms(&self.clock));
        let ans = self.link.iq(stanza::usync_contact_query(&digits, &sid), Duration::from_secs(20)).await?;
        let on = stanza::parse_usync(&ans).iter().any(|u| u.contact.as_deref() == Some("in"));
        Ok(if on {
            Ok(crate::messaging::ChatId::new(format!("{digits}@s.whatsapp.net")))
        } else {
            Err(TargetError::NotOnChannel(format!("+{digits}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::account::store::AccountStore;
    use crate::messaging::inbound_queue;

    fn kinds(out: &[Node]) -> Vec<String> {
        out.iter()
            .map(|n| format!("{}{}", n.tag, n.get_attr("type").map(|t| format!(":{t}")).unwrap_or_default()))
            .collect()
    }

    /// Garbage, truncated, replayed and far-future ciphertexts: a retry receipt or a logged drop,
    /// always an ack, never a panic, and the account keeps decrypting afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue10_item3_hostile_ciphertexts_never_stick_the_account() {
        let (rng, creds) = super::super::test_support::our_creds(42);
        let (sink, mut inbound) = inbound_queue(16);
        let store = AccountStore::in_memory().unwrap();
        let (m, _handle) = crate::channels::whatsapp::supervisor::open_messaging_with(store, "default", sink).unwrap();
        let one_time = KeyPair::generate(rng.as_ref());
        let ot = StoredKeyPair::from(&one_time);
        m.db.write(move |ops| ops.put_prekeys(&[(77, ot)], 1)).await.unwrap();
        let mut conn = ConnInbound::new(m.clone());

        // The contact starts a session from our bundle.
        let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 5 };
        let bundle = super::super::test_support::our_bundle(&creds, Some((77, one_time.public)));
        let mut theirs = SessionRecord::new();
        theirs.start_outgoing(&peer, &bundle, rng.as_ref()).unwrap();
        let mut encrypt = |text: &str| {
            let p = padding::pad(&content::text_message(text).encode_to_vec(), rng.as_ref());
            theirs.encrypt(&p).unwrap()
        };
        let (k1, c1) = encrypt("first");
        assert_eq!(k1.as_str(), "pkmsg");
        let out = conn.on_message(&super::super::test_support::contact_message("M1", "pkmsg", c1.clone()), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["receipt", "ack"]);
        assert_eq!(inbound.recv().await.unwrap().body.text(), Some("first"));
        // The consumed one-time prekey is gone, the session is stored under the LID address.
        assert!(m.db.read(|ops| ops.prekey(77)).await.unwrap().is_none());
        assert!(m.db.read(|ops| ops.session("999:7@lid")).await.unwrap().is_some());

        // Replayed stanza (same id): acknowledged again, not delivered again.
        let out = conn.on_message(&super::super::test_support::contact_message("M1", "pkmsg", c1.clone()), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["receipt", "ack"]);
        // Replayed ciphertext under a new id: recognised as already decrypted → a logged drop.
        let out = conn.on_message(&super::super::test_support::contact_message("M1b", "pkmsg", c1), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["ack"]);

        // The peer's second message, kept for later; then a far-future one (2,100 ahead).
        let (_, c2) = encrypt("second");
        let mut far = None;
        for i in 0..2100 {
            far = Some(encrypt(&format!("far {i}")));
        }
        let (_, far) = far.unwrap();
        let out = conn.on_message(&super::super::test_support::contact_message("FAR", "msg", far.clone()), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["receipt:retry", "ack"], "far-future is refused, not a memory blow-up");
        // Truncated and garbage ciphertexts.
        let out = conn.on_message(&super::super::test_support::contact_message("TR", "msg", far[..far.len() / 2].to_vec()), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["receipt:retry", "ack"]);
        let out = conn.on_message(&super::super::test_support::contact_message("GB", "pkmsg", vec![0x33, 0xff, 0x00, 0x12]), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["receipt:retry", "ack"]);
        let out = conn.on_message(&Node::new("message").attr("id", "X"), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["ack"], "a malformed stanza is acknowledged and dropped");
        // Retries of one message stop after the limit: then only an ack.
        for _ in 0..inbound::MAX_RETRIES {
            conn.on_message(&super::super::test_support::contact_message("GB2", "msg", vec![1, 2, 3]), &creds, 100, &rng).await.unwrap();
        }
        let out = conn.on_message(&super::super::test_support::contact_message("GB2", "msg", vec![1, 2, 3]), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["ack"]);

        // Not stuck: the held-back second message still decrypts.
        let out = conn.on_message(&super::super::test_support::contact_message("M2", "pkmsg", c2), &creds, 100, &rng).await.unwrap();
        assert_eq!(kinds(&out), ["receipt", "ack"]);
        assert_eq!(inbound.recv().await.unwrap().body.text(), Some("second"));
        assert_eq!(m.sink.counters().accepted, 2, "nothing else was delivered");
        assert_eq!(m.stats.received.load(Ordering::Relaxed), 2);
    }
}
