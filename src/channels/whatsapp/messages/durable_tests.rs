//! The durable inbound queue on the WhatsApp receive path (issue 10, task "durable inbound
//! queue"): a crash between the commit (message marked processed) and the hand-off to the
//! consumer no longer loses the message.


use prost::Message as _;

use super::content;
use super::driver::ConnInbound;
use crate::channels::whatsapp::account::store::AccountStore;
use crate::channels::whatsapp::binary::Node;
use crate::channels::whatsapp::creds::StoredKeyPair;
use crate::channels::whatsapp::crypto::KeyPair;
use crate::channels::whatsapp::signal::{LocalIdentity, SessionRecord, padding};
use crate::channels::whatsapp::supervisor::open_messaging_with;
use crate::messaging::inbound_queue;

fn tags(out: &[Node]) -> Vec<&str> {
    out.iter().map(|n| n.tag.as_str()).collect()
}

/// The process dies after `commit_inbound` (message marked processed, ack may even have left)
/// and before the hand-off: simulated by a consumer that is gone. After the restart the message
/// reaches the new consumer exactly once, the server's redelivery of the same stanza is not
/// handed over again, and once confirmed it is never handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_durable_inbound_crash_between_commit_and_hand_off_delivers_once_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.db");
    let (rng, creds) = super::test_support::our_creds(9);

    // Run 1: the consumer is gone (the crash point: commit done, hand-off never happens).
    let (sink, rx) = inbound_queue(4);
    drop(rx);
    let (m, _h) = open_messaging_with(AccountStore::open_at(&path).unwrap(), "default", sink).unwrap();
    let one_time = KeyPair::generate(rng.as_ref());
    let ot = StoredKeyPair::from(&one_time);
    m.db.write(move |ops| ops.put_prekeys(&[(77, ot)], 1)).await.unwrap();
    let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 5 };
    let bundle = super::test_support::our_bundle(&creds, Some((77, one_time.public)));
    let mut theirs = SessionRecord::new();
    theirs.start_outgoing(&peer, &bundle, rng.as_ref()).unwrap();
    let (_, c1) = theirs.encrypt(&padding::pad(&content::text_message("survives").encode_to_vec(), rng.as_ref())).unwrap();
    let m1 = super::test_support::contact_message("M1", "pkmsg", c1);
    let out = ConnInbound::new(m.clone()).on_message(&m1, &creds, 100, &rng).await.unwrap();
    assert_eq!(tags(&out), ["receipt", "ack"], "committed and acknowledged");
    assert_eq!(m.inbound.counts().await.unwrap(), (1, 0), "stored pending with the commit");
    drop((m, _h));

    // Run 2 (restart): the stored message is handed over at connect, before anything else.
    let (sink, mut rx) = inbound_queue(4);
    let (m, _h) = open_messaging_with(AccountStore::open_at(&path).unwrap(), "default", sink).unwrap();
    m.redeliver_inbound().await;
    let (got, receipt) = rx.recv_tracked().await.unwrap();
    assert_eq!((got.id.as_str(), got.body.text()), ("M1", Some("survives")));
    assert_eq!(got.sender_e164.as_deref(), Some("+15550003333"));
    // The server re-delivers the stanza (its ack may not have left): acknowledged, not handed over.
    let out = ConnInbound::new(m.clone()).on_message(&m1, &creds, 100, &rng).await.unwrap();
    assert_eq!(tags(&out), ["receipt", "ack"]);
    // A reconnect within the process does not hand over what is in flight.
    m.redeliver_inbound().await;
    assert!(rx.try_recv_for_test().is_none(), "exactly once");
    assert_eq!(m.sink.counters().accepted, 1);
    receipt.handled().await.unwrap();
    assert_eq!(m.inbound.counts().await.unwrap(), (0, 1));
    drop((m, _h, rx));

    // Run 3: confirmed means never again.
    let (sink, mut rx) = inbound_queue(4);
    let (m, _h) = open_messaging_with(AccountStore::open_at(&path).unwrap(), "default", sink).unwrap();
    m.redeliver_inbound().await;
    assert!(rx.try_recv_for_test().is_none());
    assert_eq!(m.sink.counters().accepted, 0);
}

/// Issue 10 item 2: WhatsApp's server relays a repeated message id (a sender re-running its
/// outbox after a crash re-encrypts the same message under the same id). The receiver keys
/// messages by (chat, id): the repeat is acknowledged, not handed over again, and the session
/// keeps decrypting what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_item2_a_resend_under_the_same_id_reaches_the_consumer_once() {
    let (rng, creds) = super::test_support::our_creds(11);
    let (sink, mut rx) = inbound_queue(8);
    let (m, _h) = open_messaging_with(AccountStore::in_memory().unwrap(), "default", sink).unwrap();
    let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 5 };
    let bundle = super::test_support::our_bundle(&creds, None);
    let mut theirs = SessionRecord::new();
    theirs.start_outgoing(&peer, &bundle, rng.as_ref()).unwrap();
    let mut encrypt = |text: &str| theirs.encrypt(&padding::pad(&content::text_message(text).encode_to_vec(), rng.as_ref())).unwrap();
    let (k1, first) = encrypt("once");
    let (k2, again) = encrypt("once");
    let (_, next) = encrypt("next");
    assert_ne!(first, again, "the repeat is a new ciphertext, as a sender's re-run outbox makes it");
    let mut conn = ConnInbound::new(m.clone());
    conn.on_message(&super::test_support::contact_message("R1", k1.as_str(), first), &creds, 100, &rng).await.unwrap();
    let out = conn.on_message(&super::test_support::contact_message("R1", k2.as_str(), again), &creds, 100, &rng).await.unwrap();
    assert_eq!(tags(&out), ["receipt", "ack"], "the repeat is acknowledged");
    conn.on_message(&super::test_support::contact_message("R2", k2.as_str(), next), &creds, 100, &rng).await.unwrap();
    assert_eq!(rx.recv().await.unwrap().body.text(), Some("once"));
    assert_eq!(rx.recv().await.unwrap().body.text(), Some("next"), "the session still decrypts what follows");
    assert!(rx.try_recv_for_test().is_none());
    assert_eq!(m.sink.counters().accepted, 2);
}
