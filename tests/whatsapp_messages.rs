//! Issue 10 items 3 and 4 at the channel level: our WhatsApp client (with its message path:
//! account store, outbox, inbound queue) linked to the relay mock, and a real Baileys client
//! (npm `baileys@7.0.0-rc14`) as the contact on another account of the relay. Without node or
//! the package the tests print a loud `SKIPPED:` line (a failure under `CI`).

#[path = "support/baileys_peer.rs"]
mod baileys_peer;
#[path = "support/inproc_gateway.rs"]
mod inproc_gateway;
#[path = "support/peer.rs"]
mod peer;
#[path = "support/serial.rs"]
mod serial;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use inproc_gateway::client_config;
use baileys_peer::{BaileysPeer, missing_baileys};
use openclaw::channels::registry::AccountHandle;
use openclaw::channels::whatsapp::account::store::AccountStore;
use openclaw::channels::whatsapp::client::{ClientConfig, RunMode, run_session};
use openclaw::channels::whatsapp::messages::Messaging;
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::channels::whatsapp::supervisor::open_messaging_with;
use openclaw::messaging::{ChatId, InboundMessage, InboundReceiver, MessageId, OutboundBody, OutboundMessage, inbound_queue};
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

const US: &str = "15550004444";
const BOB: &str = "15550003333";
const WAIT: Duration = Duration::from_secs(30);
/// `proto.WebMessageInfo.Status.DELIVERY_ACK`.
const DELIVERY_ACK: u64 = 3;

fn rt() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Our side: the client config, its message path and the account handle.
struct Ours {
    cfg: ClientConfig,
    handle: AccountHandle,
    inbound: InboundReceiver,
    messaging: Arc<Messaging>,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}


fn store_path(dir: &Path) -> PathBuf {
    dir.join("store.db")
}

/// Links our device to account `US` by QR (scanned by that account's mock phone).
async fn link_us(m: &MockServer, cfg: &ClientConfig) {
    inproc_gateway::link_account(m, cfg, US, WAIT).await;
}

/// Opens the message path over the store in `dir` and runs connections until stopped.
fn start_ours(rt: &Runtime, m: &MockServer, dir: &Path) -> Ours {
    let _g = rt.enter();
    let (sink, inbound) = inbound_queue(64);
    let store = AccountStore::open_at(&store_path(dir)).unwrap();
    let (messaging, handle) = open_messaging_with(store, "default", sink).unwrap();
    let mut cfg = client_config(m, dir);
    cfg.messaging = Some(messaging.clone());
    let (stop, mut stopped) = watch::channel(false);
    let run_cfg = cfg.clone();
    let task = rt.spawn(async move {
        let (tx, _rx) = mpsc::unbounded_channel();
        loop {
            tokio::select! {
                _ = run_session(&run_cfg, &tx, RunMode::UntilDisconnect, None) => {}
                _ = stopped.changed() => return,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    Ours { cfg, handle, inbound, messaging, stop: Some(stop), task: Some(task) }
}

impl Ours {
    fn stop(&mut self, rt: &Runtime) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.task.take() {
            rt.block_on(t).unwrap();
        }
    }

    /// The next inbound message, confirmed as handled (the durable inbound queue hands an
    /// unconfirmed message over again after a restart).
    fn next_inbound(&mut self, rt: &Runtime) -> InboundMessage {
        rt.block_on(async {
            let (m, receipt) = tokio::time::timeout(WAIT, self.inbound.recv_tracked()).await.expect("inbound in time").expect("queue open");
            receipt.handled().await.expect("confirmed");
            m
        })
    }

    fn send(&self, rt: &Runtime, id: &str, text: &str) {
        let msg = OutboundMessage {
            id: MessageId::new(id),
            channel: "whatsapp".into(),
            account_id: "default".into(),
            chat: ChatId::new(format!("{BOB}@s.whatsapp.net")),
            reply_to: None,
            body: OutboundBody::Text { text: text.into() },
        };
        let now = now_ms();
        rt.block_on(self.handle.send(msg, now + 120_000, now)).unwrap();
    }

    fn wait_sent(&self, rt: &Runtime, id: &str) {
        let rec = rt.block_on(self.handle.wait_final(&MessageId::new(id), WAIT)).unwrap();
        assert_eq!(rec.state.as_str(), "sent", "{rec:?}");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The enc types the relay routed to device JID `to_user` for message `id`.
fn routed_enc(m: &MockServer, id: &str, to_user: &str) -> Vec<String> {
    m.relay_state()["recent"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["tag"] == "message" && r["id"] == id && r["to"] == to_user)
        .flat_map(|r| r["enc"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Waits until the relay saw device `jid` go offline (a restart then logs in anew).
fn wait_offline(m: &MockServer, jid: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let online = m.relay_state()["devices"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["jid"] == jid).map(|d| d["online"] == true))
            .unwrap_or(false);
        if !online {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{jid} still online");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bob_dev() -> String {
    format!("{BOB}:7@s.whatsapp.net")
}

fn receive(peer: &mut BaileysPeer, id: &str) -> Value {
    peer.wait_from(0, WAIT, &format!("message {id}"), |v| v["event"] == "message" && v["id"] == id && v["fromMe"] == false)
}

fn delivered(peer: &mut BaileysPeer, id: &str) {
    peer.wait_from(0, WAIT, &format!("delivery of {id}"), |v| {
        v["event"] == "update" && v["id"] == id && v["status"].as_u64() >= Some(DELIVERY_ACK)
    });
}

struct World {
    rt: Runtime,
    m: MockServer,
    dir: tempfile::TempDir,
    bob_auth: tempfile::TempDir,
}

fn world(test: &str) -> Option<World> {
    if let Some(why) = missing_baileys() {
        peer::missing(test, &format!("{why}; the message path is NOT validated by this run"));
        return None;
    }
    let rt = rt();
    let m = rt.block_on(MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())).unwrap();
    m.create_account(US, None, Some("Us")).unwrap();
    m.create_account(BOB, None, Some("Bob")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(link_us(&m, &client_config(&m, dir.path())));
    Some(World { rt, m, dir, bob_auth: tempfile::tempdir().unwrap() })
}

fn bob(w: &World) -> BaileysPeer {
    let mut b = BaileysPeer::start("bob", &w.m.url(), &w.m.admin_base(), w.bob_auth.path(), BOB, false);
    b.wait_open();
    b
}

#[test]
fn issue10_items3_4_baileys_and_our_client_exchange_dms_both_ways() {
    let _serial = serial::serial();
    let Some(w) = world("issue10_items3_4_baileys_and_our_client_exchange_dms_both_ways") else { return };
    let mut ours = start_ours(&w.rt, &w.m, w.dir.path());
    let mut bob = bob(&w);

    // (a) Bob sends 3 DMs; each is decrypted (the first a pkmsg), reaches the sink in order, and
    // the delivery receipts reach Bob.
    let texts = ["hello gateway", "second: ünïcode ✓", "third and last"];
    let ids: Vec<String> = texts.iter().map(|t| bob.send_text(US, t)).collect();
    for (id, text) in ids.iter().zip(texts) {
        let got = ours.next_inbound(&w.rt);
        assert_eq!(got.id.as_str(), id, "in order");
        assert_eq!(got.body.text(), Some(text));
        assert_eq!(got.sender.as_str(), format!("{BOB}@s.whatsapp.net"));
        assert_eq!(got.sender_e164.as_deref(), Some(&*format!("+{BOB}")));
        assert!(!got.from_me);
    }
    assert_eq!(routed_enc(&w.m, &ids[0], &format!("{US}:7@s.whatsapp.net")), vec!["pkmsg"], "{}", w.m.relay_state());
    for id in &ids {
        delivered(&mut bob, id);
    }
    assert_eq!(ours.messaging.stats.received.load(std::sync::atomic::Ordering::Relaxed), 3);

    // (b) 3 sends through the account handle reach Bob with the exact text, each `sent` only
    // after the server ack.
    let out = ["hi bob", "zweite Nachricht ✓", "the third"];
    for (i, t) in out.iter().enumerate() {
        ours.send(&w.rt, &format!("3EB0OUT{i}"), t);
    }
    for (i, t) in out.iter().enumerate() {
        let id = format!("3EB0OUT{i}");
        ours.wait_sent(&w.rt, &id);
        let got = receive(&mut bob, &id);
        assert_eq!(got["text"], *t, "{}", bob.transcript());
        assert_eq!(got["from"], format!("{US}@s.whatsapp.net"));
        // Bob started the session, so ours to his device are plain ratchet messages.
        assert_eq!(routed_enc(&w.m, &id, &bob_dev()), vec!["msg"]);
    }
    let _ = &ours.cfg;
    ours.stop(&w.rt);
    bob.quit();
}

#[test]
fn issue10_items3_4_restart_keeps_sessions_and_a_lost_session_heals_by_retry_receipt() {
    let _serial = serial::serial();
    let Some(w) = world("issue10_items3_4_restart_keeps_sessions_and_a_lost_session_heals_by_retry_receipt") else { return };
    let mut ours = start_ours(&w.rt, &w.m, w.dir.path());
    let mut bob = bob(&w);
    let first = bob.send_text(US, "before the restart");
    assert_eq!(ours.next_inbound(&w.rt).id.as_str(), first);
    ours.send(&w.rt, "3EB0R1", "reply before the restart");
    ours.wait_sent(&w.rt, "3EB0R1");
    receive(&mut bob, "3EB0R1");

    // (c) A restart: a new connection over the same store. Both directions work, and our next
    // message to Bob's device is no new pkmsg.
    ours.stop(&w.rt);
    drop(ours);
    wait_offline(&w.m, &format!("{US}:7@s.whatsapp.net"));
    let mut ours = start_ours(&w.rt, &w.m, w.dir.path());
    let after = bob.send_text(US, "after the restart");
    let got = ours.next_inbound(&w.rt);
    assert_eq!((got.id.as_str(), got.body.text()), (after.as_str(), Some("after the restart")));
    ours.send(&w.rt, "3EB0R2", "reply after the restart");
    ours.wait_sent(&w.rt, "3EB0R2");
    assert_eq!(receive(&mut bob, "3EB0R2")["text"], "reply after the restart");
    assert_eq!(routed_enc(&w.m, "3EB0R2", &bob_dev()), vec!["msg"], "no new session from our side");

    // (d) Our session with Bob's device is lost: his next message draws our retry receipt, and
    // the re-sent message decrypts.
    let bob_lid_dev = w.m.relay_state()["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["jid"] == bob_dev())
        .and_then(|d| d["lid"].as_str().map(str::to_owned))
        .unwrap();
    let dev = bob_dev();
    let deleted = w
        .rt
        .block_on(ours.messaging.db.write(move |ops| Ok(ops.delete_session(&dev)? | ops.delete_session(&bob_lid_dev)?)))
        .unwrap();
    assert!(deleted);
    let lost = bob.send_text(US, "after you lost the session");
    let got = ours.next_inbound(&w.rt);
    assert_eq!((got.id.as_str(), got.body.text()), (lost.as_str(), Some("after you lost the session")));
    assert!(ours.messaging.stats.retries_sent.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let retries: Vec<Value> = w.m.relay_state()["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tag"] == "receipt" && r["id"] == lost.as_str() && r["type"] == "retry")
        .cloned()
        .collect();
    assert!(!retries.is_empty(), "{}", w.m.relay_state());
    // And the conversation goes on both ways.
    ours.send(&w.rt, "3EB0R3", "healed");
    ours.wait_sent(&w.rt, "3EB0R3");
    assert_eq!(receive(&mut bob, "3EB0R3")["text"], "healed");
    let again = bob.send_text(US, "and again");
    assert_eq!(ours.next_inbound(&w.rt).id.as_str(), again);
    ours.stop(&w.rt);
    bob.quit();
}

#[test]
fn issue10_item8_an_imported_baileys_auth_folder_continues_the_conversation() {
    let _serial = serial::serial();
    let test = "issue10_item8_an_imported_baileys_auth_folder_continues_the_conversation";
    if let Some(why) = missing_baileys() {
        peer::missing(test, &format!("{why}; the session import is NOT validated by this run"));
        return;
    }
    let rt = rt();
    let m = rt.block_on(MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())).unwrap();
    m.create_account(US, None, Some("Us")).unwrap();
    m.create_account(BOB, None, Some("Bob")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let upstream = tempfile::tempdir().unwrap();
    let bob_auth = tempfile::tempdir().unwrap();

    // Upstream OpenClaw (Baileys) ran this account and talked with Bob both ways.
    let mut old = BaileysPeer::start("upstream", &m.url(), &m.admin_base(), upstream.path(), US, false);
    old.wait_open();
    let mut bob = BaileysPeer::start("bob", &m.url(), &m.admin_base(), bob_auth.path(), BOB, false);
    bob.wait_open();
    let a = bob.send_text(US, "hi upstream");
    receive(&mut old, &a);
    let b = old.send_text(BOB, "hi bob from upstream");
    receive(&mut bob, &b);
    let c = bob.send_text(US, "still there?");
    receive(&mut old, &c);
    old.quit();

    // Import creds, prekeys and sessions; no re-pairing.
    let (creds, prekeys) = openclaw::channels::whatsapp::baileys_import::import_baileys(upstream.path()).unwrap();
    let cfg = client_config(&m, dir.path());
    cfg.store.save(&creds).unwrap();
    cfg.store.save_prekeys(&prekeys).unwrap();
    let imported = openclaw::channels::whatsapp::baileys_import::import_sessions(upstream.path(), &creds).unwrap();
    assert!(
        imported.sessions.iter().any(|(a, _)| a.starts_with(BOB) || a.contains(":7@lid")),
        "sessions: {:?}, skipped: {:?}",
        imported.sessions.iter().map(|(a, _)| a).collect::<Vec<_>>(),
        imported.skipped
    );
    let mut store = AccountStore::open_at(&store_path(dir.path())).unwrap();
    assert!(openclaw::channels::whatsapp::baileys_import::store_sessions(&mut store, &imported, now_ms()).unwrap() >= 1);
    drop(store);

    let mut ours = start_ours(&rt, &m, dir.path());
    let d = bob.send_text(US, "now talking to the rust gateway");
    let got = ours.next_inbound(&rt);
    assert_eq!((got.id.as_str(), got.body.text()), (d.as_str(), Some("now talking to the rust gateway")));
    assert_eq!(
        ours.messaging.stats.retries_sent.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the imported session decrypted it: no retry storm"
    );
    ours.send(&rt, "3EB0IMP1", "continuing the conversation");
    ours.wait_sent(&rt, "3EB0IMP1");
    assert_eq!(receive(&mut bob, "3EB0IMP1")["text"], "continuing the conversation");
    assert_eq!(routed_enc(&m, "3EB0IMP1", &bob_dev()), vec!["msg"], "the imported session, not a new one");
    ours.stop(&rt);
    bob.quit();
}

#[test]
fn issue10_item4_live_commands_targets_read_receipts_and_prekey_replenishment() {
    let _serial = serial::serial();
    let Some(w) = world("issue10_item4_live_commands_targets_read_receipts_and_prekey_replenishment") else { return };
    let mut ours = start_ours(&w.rt, &w.m, w.dir.path());
    let mut bob = bob(&w);
    let first = bob.send_text(US, "read me");
    let got = ours.next_inbound(&w.rt);
    assert_eq!(got.id.as_str(), first);

    // Resolve targets through usync: on WhatsApp, not on WhatsApp, invalid.
    let h = &ours.handle;
    let t = Duration::from_secs(20);
    assert_eq!(w.rt.block_on(h.resolve_target(&format!("+{BOB}"), t)).unwrap().as_str(), format!("{BOB}@s.whatsapp.net"));
    assert_eq!(
        w.rt.block_on(h.resolve_target(&format!("{BOB}@s.whatsapp.net"), t)).unwrap().as_str(),
        format!("{BOB}@s.whatsapp.net")
    );
    assert!(matches!(
        w.rt.block_on(h.resolve_target("+15559990000", t)),
        Err(openclaw::channels::registry::TargetError::NotOnChannel(_))
    ));
    assert!(matches!(
        w.rt.block_on(h.resolve_target("call me", t)),
        Err(openclaw::channels::registry::TargetError::Invalid(_))
    ));

    // A read receipt reaches Bob as status READ (4).
    assert!(h.command(openclaw::channels::registry::AccountCommand::MarkRead {
        chat: got.chat.clone(),
        sender: ChatId::new(format!("{BOB}:7@s.whatsapp.net")),
        ids: vec![got.id.clone()],
    }));
    bob.wait_from(0, WAIT, "read status", |v| v["event"] == "update" && v["id"] == first.as_str() && v["status"].as_u64() >= Some(4));

    // Typing state reaches Bob.
    assert!(h.command(openclaw::channels::registry::AccountCommand::Presence {
        chat: got.chat.clone(),
        state: openclaw::channels::registry::Presence::Composing,
    }));
    let p = bob.wait_from(0, WAIT, "composing", |v| v["event"] == "presence" && v.to_string().contains("composing"));
    assert!(p.to_string().contains(US), "{p}");

    // The server says our prekeys run low: we upload more.
    let ours_dev = format!("{US}:7@s.whatsapp.net");
    assert!(w.m.drain_prekeys(&ours_dev, 1).unwrap() <= 1);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, accts) = baileys_peer::admin_request(&w.m.admin_base(), "GET", "/admin/accounts", "");
        let avail = accts.to_string();
        let n = accts["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["devices"].as_array().cloned().unwrap_or_default())
            .find(|d| d["jid"] == ours_dev.as_str())
            .and_then(|d| d["preKeysAvailable"].as_u64());
        if n.is_some_and(|n| n >= 5) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "prekeys not replenished: {avail}");
        std::thread::sleep(Duration::from_millis(100));
    }
    ours.stop(&w.rt);
    bob.quit();
}

#[test]
fn issue10_item3_the_signed_prekey_rotates_and_new_sessions_use_it() {
    let _serial = serial::serial();
    let Some(w) = world("issue10_item3_the_signed_prekey_rotates_and_new_sessions_use_it") else { return };
    let creds_store = client_config(&w.m, w.dir.path()).store;
    let first_id = creds_store.load().unwrap().unwrap().signed_pre_key.key_id;
    // Our signed prekey was stored eight days ago (rotation is weekly): the next login replaces it.
    let creds = creds_store.load().unwrap().unwrap();
    let eight_days_ago = now_ms() - 8 * 86_400_000;
    AccountStore::open_at(&store_path(w.dir.path())).unwrap().ops().put_signed_prekey(&creds.signed_pre_key, eight_days_ago).unwrap();
    let mut ours = start_ours(&w.rt, &w.m, w.dir.path());
    let deadline = std::time::Instant::now() + WAIT;
    while creds_store.load().unwrap().unwrap().signed_pre_key.key_id == first_id {
        assert!(std::time::Instant::now() < deadline, "signed prekey not rotated");
        std::thread::sleep(Duration::from_millis(50));
    }
    let new_id = creds_store.load().unwrap().unwrap().signed_pre_key.key_id;
    let kept = w.rt.block_on(ours.messaging.db.read(move |ops| Ok((ops.signed_prekey(first_id)?.is_some(), ops.active_signed_prekey()?.map(|s| s.key_id))))).unwrap();
    assert_eq!(kept, (true, Some(new_id)), "the old one is kept, the new one is active");
    // A contact that fetches our bundle now builds its session on the new signed prekey: with
    // the old one deleted, its first message still decrypts without a retry.
    let pruned = w.rt.block_on(ours.messaging.db.write(|ops| ops.prune_signed_prekeys(u64::MAX / 2))).unwrap();
    assert_eq!(pruned, 1);
    let mut bob = bob(&w);
    let id = bob.send_text(US, "on the rotated key");
    let got = ours.next_inbound(&w.rt);
    assert_eq!((got.id.as_str(), got.body.text()), (id.as_str(), Some("on the rotated key")));
    assert_eq!(ours.messaging.stats.retries_sent.load(std::sync::atomic::Ordering::Relaxed), 0);
    ours.stop(&w.rt);
    bob.quit();
}
