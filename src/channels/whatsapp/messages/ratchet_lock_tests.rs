//! The receive path (connection task) and the outbox consumer update the same contact's
//! session at the same time. Each loads the record, advances it and stores it; `Messaging::
//! ratchets` makes those steps exclusive. The contact here is our own Signal implementation
//! in the test (a serial, correct peer), so a failure is ours: a message key used twice (the
//! contact cannot decrypt) or a chain lost (we cannot decrypt what the contact sends next).
//! The crossfire checks the outcome; the second test checks that both paths take the lock
//! (each fails when the lock is removed from the path it covers).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;

use super::content;
use super::driver::{ConnInbound, Consumer, Outgoing, Reply};
use crate::channels::whatsapp::account::store::AccountStore;
use crate::channels::whatsapp::binary::Node;
use crate::channels::whatsapp::crypto::KeyPair;
use crate::channels::whatsapp::signal::{LocalIdentity, SessionRecord, padding};
use crate::channels::whatsapp::supervisor::open_messaging_with;
use crate::messaging::{ChatId, MessageId, OutboundBody, OutboundMessage, inbound_queue};

const PEER: &str = "15550003333@s.whatsapp.net";

/// The `<enc>` of an outgoing `<message>` (one device).
fn enc_of(n: &Node) -> Option<(String, Vec<u8>)> {
    let to = n.child("participants")?.child_nodes().first()?;
    let enc = to.child("enc")?;
    Some((enc.get_attr("type")?.to_owned(), enc.content_bytes()?.to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiving_and_sending_at_once_lose_no_session_update() {
    const ROUNDS: usize = 40;
    let (rng, creds) = super::test_support::our_creds(21);
    let (sink, mut rx) = inbound_queue(ROUNDS * 2);
    let (m, handle) = open_messaging_with(AccountStore::in_memory().unwrap(), "default", sink).unwrap();

    // The contact opens the session with a pkmsg.
    let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 5 };
    let theirs = Arc::new(Mutex::new(SessionRecord::new()));
    theirs.lock().unwrap().start_outgoing(&peer, &super::test_support::our_bundle(&creds, None), rng.as_ref()).unwrap();
    let encrypt = {
        let (theirs, rng) = (theirs.clone(), rng.clone());
        move |text: &str| {
            let (kind, ct) = theirs.lock().unwrap().encrypt(&padding::pad(&content::text_message(text).encode_to_vec(), rng.as_ref())).unwrap();
            (kind.as_str().to_owned(), ct)
        }
    };
    let mut conn = ConnInbound::new(m.clone());
    let (kind, ct) = encrypt("hello");
    conn.on_message(&super::test_support::contact_message("P0", &kind, ct), &creds, 100, &rng).await.unwrap();
    assert_eq!(rx.recv().await.unwrap().body.text(), Some("hello"));

    // The consumer, over a link that plays the server: each message is decrypted by the
    // contact (who thereby ratchets) and acknowledged. Device-list queries are answered with
    // the contact's device only: our own user's list is never cached, so every send takes the
    // long way (usync, then the sessions read and their commit as two trips to the store),
    // where only the ratchet lock keeps a receive from landing in between. (The usual DM and
    // the usual receive are one trip each, atomic on the store's thread by themselves.)
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Outgoing>(16);
    let (_ev_tx, ev_rx) = tokio::sync::mpsc::channel(4);
    let consumer = Consumer::new(m.clone(), creds.clone(), out_tx, ev_rx, Arc::new(|| 100), rng.clone()).unwrap();
    let consumer_task = tokio::spawn(consumer.run());
    let received: Arc<Mutex<Vec<Result<String, String>>>> = Arc::default();
    let server = {
        let (theirs, rng, received) = (theirs.clone(), rng.clone(), received.clone());
        tokio::spawn(async move {
            while let Some(o) = out_rx.recv().await {
                let ack = match o.reply {
                    Reply::MessageAck(ack) => ack,
                    Reply::Iq(answer) => {
                        let device = Node::new("devices").children(vec![Node::new("device-list").children(vec![Node::new("device").attr("id", "7")])]);
                        let user = Node::new("user").attr("jid", PEER).children(vec![device]);
                        let usync = Node::new("usync").children(vec![Node::new("list").children(vec![user])]);
                        let _ = answer.send(Node::new("iq").attr("type", "result").children(vec![usync]));
                        continue;
                    }
                    Reply::None => continue,
                };
                let decrypted = enc_of(&o.node).ok_or_else(|| "no enc".to_string()).and_then(|(kind, ct)| {
                    let mut rec = theirs.lock().unwrap();
                    // The contact started the session, so ours are plain ratchet messages.
                    if kind != "msg" {
                        return Err(format!("a {kind}"));
                    }
                    let d = rec.decrypt_msg(&ct, rng.as_ref()).map_err(|e| e.to_string())?;
                    let body = padding::unpad(&d.plaintext).map_err(|e| e.to_string())?;
                    match content::decode(body).map_err(|e| e.to_string())? {
                        content::Content::Deliver { body, .. } => Ok(body.text().unwrap_or_default().to_owned()),
                        other => Err(format!("{other:?}")),
                    }
                });
                received.lock().unwrap().push(decrypted);
                let _ = ack.send(Node::new("ack").attr("class", "message").attr("id", o.node.get_attr("id").unwrap_or_default()));
            }
        })
    };

    // Both directions at once: ours are queued in a burst, the contact's arrive meanwhile.
    let sends = {
        let handle = handle.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let msg = OutboundMessage {
                    id: MessageId::new(format!("3EB0L{i}")),
                    channel: "whatsapp".into(),
                    account_id: "default".into(),
                    chat: ChatId::new(PEER),
                    reply_to: None,
                    body: OutboundBody::Text { text: format!("ours {i}") },
                };
                handle.send(msg, u64::MAX / 2, 100_000).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    for i in 0..ROUNDS {
        let (kind, ct) = encrypt(&format!("theirs {i}"));
        conn.on_message(&super::test_support::contact_message(&format!("P{}", i + 1), &kind, ct), &creds, 100, &rng).await.unwrap();
        tokio::task::yield_now().await;
    }
    sends.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while received.lock().unwrap().len() < ROUNDS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And once more each way after the crossfire: the session still works.
    let (kind, ct) = encrypt("after");
    conn.on_message(&super::test_support::contact_message("PZ", &kind, ct), &creds, 100, &rng).await.unwrap();

    let mut theirs_got = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        theirs_got.push(msg.body.text().unwrap_or_default().to_owned());
    }
    let want_ours: Vec<Result<String, String>> = (0..ROUNDS).map(|i| Ok(format!("ours {i}"))).collect();
    assert_eq!(*received.lock().unwrap(), want_ours, "the contact decrypts each of ours, in order");
    let mut want_theirs: Vec<String> = (0..ROUNDS).map(|i| format!("theirs {i}")).collect();
    want_theirs.push("after".into());
    assert_eq!(theirs_got, want_theirs, "we decrypt each of the contact's");
    assert_eq!(m.stats.dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
    consumer_task.abort();
    server.abort();
}

/// The usual receive and the usual send are each one trip to the store thread (atomic there by
/// themselves), so the crossfire above stays correct even without the lock on those paths; the
/// lock guards the long ways (retries, groups, bundles, key rotation). This pins that both
/// paths take it: while the test holds it, neither a receive nor a send gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receive_path_and_the_consumer_wait_for_the_ratchet_lock() {
    let (rng, creds) = super::test_support::our_creds(22);
    let (sink, mut rx) = inbound_queue(8);
    let (m, handle) = open_messaging_with(AccountStore::in_memory().unwrap(), "default", sink).unwrap();
    m.db.write(|ops| {
        ops.put_device_list(PEER, &[7], 0, u64::MAX / 2)?;
        ops.put_device_list("15550004444@s.whatsapp.net", &[7], 0, u64::MAX / 2)
    })
    .await
    .unwrap();
    let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 5 };
    let mut theirs = SessionRecord::new();
    theirs.start_outgoing(&peer, &super::test_support::our_bundle(&creds, None), rng.as_ref()).unwrap();
    let mut encrypt = |text: &str| {
        let (kind, ct) = theirs.encrypt(&padding::pad(&content::text_message(text).encode_to_vec(), rng.as_ref())).unwrap();
        super::test_support::contact_message(text, kind.as_str(), ct)
    };
    let mut conn = ConnInbound::new(m.clone());
    conn.on_message(&encrypt("P0"), &creds, 100, &rng).await.unwrap();
    assert_eq!(rx.recv().await.unwrap().body.text(), Some("P0"));

    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Outgoing>(4);
    let (_ev_tx, ev_rx) = tokio::sync::mpsc::channel(4);
    let consumer = tokio::spawn(Consumer::new(m.clone(), creds.clone(), out_tx, ev_rx, Arc::new(|| 100), rng.clone()).unwrap().run());

    let held = m.ratchets.lock().await;
    let msg = OutboundMessage {
        id: MessageId::new("3EB0LOCK"),
        channel: "whatsapp".into(),
        account_id: "default".into(),
        chat: ChatId::new(PEER),
        reply_to: None,
        body: OutboundBody::Text { text: "waits".into() },
    };
    handle.send(msg, u64::MAX / 2, 100_000).await.unwrap();
    let next = encrypt("P1");
    let (m2, creds2, rng2) = (m.clone(), creds.clone(), rng.clone());
    let receive = tokio::spawn(async move { ConnInbound::new(m2).on_message(&next, &creds2, 100, &rng2).await.map(|out| out.len()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(out_rx.try_recv().is_err(), "nothing is encrypted while the lock is held");
    assert!(!receive.is_finished(), "nothing is decrypted while the lock is held");

    drop(held);
    assert!(receive.await.unwrap().unwrap() > 0, "the receive went on");
    assert_eq!(rx.recv().await.unwrap().body.text(), Some("P1"));
    let sent = tokio::time::timeout(Duration::from_secs(10), out_rx.recv()).await.expect("the send went on").unwrap();
    assert_eq!(sent.node.get_attr("id"), Some("3EB0LOCK"));
    consumer.abort();
}
