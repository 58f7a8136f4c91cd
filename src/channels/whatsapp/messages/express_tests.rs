//! The express claim: a reply stored while the consumer lives is claimed and encrypted in the
//! transaction that stores it, and the contact decrypts it; it stands aside when the consumer
//! has not taken the last one, when the ratchet lock is held, and once the consumer is gone.

use std::sync::{Arc, Mutex};

use prost::Message as _;

use super::content;
use super::driver::Consumer;
use super::express::ExpressClaim;
use crate::channels::whatsapp::account::store::AccountStore;
use crate::channels::whatsapp::crypto::KeyPair;
use crate::channels::whatsapp::signal::{LocalIdentity, SessionRecord, padding};
use crate::channels::whatsapp::supervisor::open_messaging_with;
use crate::messaging::{ChatId, MessageId, OutboundBody, OutboundMessage, OutboxState, inbound_queue};

const PEER: &str = "15550003333@s.whatsapp.net";

fn reply(id: &str, text: &str) -> OutboundMessage {
    OutboundMessage {
        id: MessageId::new(id),
        channel: "whatsapp".into(),
        account_id: "default".into(),
        chat: ChatId::new(PEER),
        reply_to: None,
        body: OutboundBody::Text { text: text.into() },
    }
}

#[tokio::test]
async fn a_stored_reply_is_claimed_and_encrypted_in_its_own_transaction() {
    let (rng, creds) = super::test_support::our_creds(31);
    let (sink, mut rx) = inbound_queue(8);
    let (m, handle) = open_messaging_with(AccountStore::in_memory().unwrap(), "default", sink).unwrap();
    // The contact opens the session; both device lists are cached (the usual DM).
    let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 5 };
    let theirs = Arc::new(Mutex::new(SessionRecord::new()));
    theirs.lock().unwrap().start_outgoing(&peer, &super::test_support::our_bundle(&creds, None), rng.as_ref()).unwrap();
    let (kind, ct) = theirs.lock().unwrap().encrypt(&padding::pad(&content::text_message("hello").encode_to_vec(), rng.as_ref())).unwrap();
    let mut conn = super::driver::ConnInbound::new(m.clone());
    conn.on_message(&super::test_support::contact_message("P0", kind.as_str(), ct), &creds, 100, &rng).await.unwrap();
    assert_eq!(rx.recv().await.unwrap().body.text(), Some("hello"));
    m.db
        .write(|ops| {
            ops.put_device_list(PEER, &[7], 100_000, u64::MAX / 2)?;
            ops.put_device_list("15550004444@s.whatsapp.net", &[7], 100_000, u64::MAX / 2)
        })
        .await
        .unwrap();
    let (out_tx, _out_rx) = tokio::sync::mpsc::channel(4);
    let (_ev_tx, ev_rx) = tokio::sync::mpsc::channel(4);
    let consumer = Consumer::new(m.clone(), creds.clone(), out_tx, ev_rx, Arc::new(|| 100), rng.clone()).unwrap();
    let express = ExpressClaim::install(&m, consumer.dm_keys());
    let state = |id: &'static str| {
        let outbox = m.outbox.clone();
        async move { outbox.get(&MessageId::new(id)).await.unwrap().map(|r| r.state) }
    };

    // Stored, claimed and encrypted in one step: the consumer has it ready, and the contact
    // decrypts it.
    handle.send_reply(vec![reply("R1", "first")], u64::MAX / 2, 100_000).await.unwrap();
    let (rec, encs) = express.take().expect("the reply is ready for the consumer");
    assert_eq!(rec.message.id.as_str(), "R1");
    assert_eq!(state("R1").await, Some(OutboxState::Sending));
    let encs = encs.expect("encrypted in the same transaction (the usual DM)");
    assert_eq!(encs.len(), 1, "{encs:?}");
    assert_eq!(encs[0].kind, "msg");
    let d = theirs.lock().unwrap().decrypt_msg(&encs[0].ciphertext, rng.as_ref()).unwrap();
    match content::decode(padding::unpad(&d.plaintext).unwrap()).unwrap() {
        content::Content::Deliver { body, .. } => assert_eq!(body.text(), Some("first")),
        other => panic!("{other:?}"),
    }
    m.outbox.mark_sent(&MessageId::new("R1"), 100_000).await.unwrap();

    // Two parts: the first is claimed; the second waits its turn (one message of a chat at a
    // time) for the consumer's own claim.
    handle.send_reply(vec![reply("R2", "a"), reply("R3", "b")], u64::MAX / 2, 100_000).await.unwrap();
    assert_eq!(state("R2").await, Some(OutboxState::Sending));
    assert_eq!(state("R3").await, Some(OutboxState::Pending));
    assert_eq!(express.take().map(|(r, _)| r.message.id.as_str().to_owned()).as_deref(), Some("R2"));
    m.outbox.mark_sent(&MessageId::new("R2"), 100_000).await.unwrap();

    // A receive or a long-way send between its load and its commit: nothing is claimed.
    {
        let _busy = m.ratchets.lock().await;
        handle.send_reply(vec![reply("R4", "c")], u64::MAX / 2, 100_000).await.unwrap();
        assert!(express.take().is_none());
    }
    assert_eq!(state("R3").await, Some(OutboxState::Pending), "left for the consumer's own claim");
    assert_eq!(state("R4").await, Some(OutboxState::Pending));

    // Once the consumer is gone its claim is removed; replies wait for the next one.
    drop(express);
    handle.send_reply(vec![reply("R5", "d")], u64::MAX / 2, 100_000).await.unwrap();
    assert_eq!(state("R3").await, Some(OutboxState::Pending));
}
