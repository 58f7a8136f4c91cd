//! The driver's loading step for a group message (child of `driver`): the participant device's
//! pairwise session, its sender key in the group, its phone number (LID mapping) and whether it
//! is one of our own devices.

use crate::channels::whatsapp::account::store::StoreError;
use crate::channels::whatsapp::creds::Creds;
use crate::channels::whatsapp::signal::sender_key::SenderKeyRecord;

use super::super::group_inbound;
use super::super::inbound::Loaded;
use super::super::stanza::{IncomingMessage, Jid};
use super::{ConnInbound, load_record};

impl ConnInbound {
    /// Fills `loaded` with what [`group_inbound::process`] needs.
    pub(super) async fn load_group(&self, msg: &IncomingMessage, creds: &Creds, loaded: &mut Loaded) -> Result<(), StoreError> {
        let (Some(p), Some(addr), Some(sk)) =
            (group_inbound::participant(msg), group_inbound::session_address(msg), group_inbound::sender_key_address(msg))
        else {
            return Ok(());
        };
        let legacy = p.device_jid();
        let group = msg.from.user_jid();
        let lid_user = (p.server == "lid").then(|| p.user_jid());
        let (rec, key, pn) = self
            .m
            .db
            .read(move |ops| {
                let rec = ops.session_or(&addr, &legacy)?;
                let key = ops.sender_key(&group, &sk)?;
                let pn = match &lid_user {
                    Some(l) => ops.pn_for_lid(l)?,
                    None => None,
                };
                Ok((rec, key, pn))
            })
            .await?;
        loaded.record = load_record(rec);
        // An unreadable stored key is treated as none: the sender's retry brings it again.
        loaded.sender_key = key.and_then(|b| SenderKeyRecord::from_bytes(&b).ok());
        loaded.sender_pn = pn;
        let me = creds.me.as_ref();
        let own_pn = me.and_then(|m| Jid::parse(&m.id)).map(|j| j.user);
        let own_lid = me.and_then(|m| m.lid.as_deref()).and_then(Jid::parse).map(|j| j.user);
        loaded.sender_is_me = Some(&p.user) == own_pn.as_ref() || Some(&p.user) == own_lid.as_ref();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    
    use std::sync::atomic::Ordering;

    use prost::Message as _;

    use super::super::super::{content, context};
    use super::ConnInbound;
    use crate::channels::whatsapp::account::store::AccountStore;
    use crate::channels::whatsapp::binary::Node;
    
    use crate::channels::whatsapp::crypto::KeyPair;
    use crate::channels::whatsapp::signal::sender_key::SenderKeyRecord;
    use crate::channels::whatsapp::signal::{LocalIdentity, SessionRecord, padding};
    use crate::messaging::inbound_queue;

    fn node(id: &str, encs: Vec<(&str, Vec<u8>)>) -> Node {
        Node::new("message")
            .attr("from", "120363009@g.us")
            .attr("participant", "15550003333:2@s.whatsapp.net")
            .attr("id", id)
            .attr("type", "text")
            .attr("t", "100")
            .children(encs.into_iter().map(|(k, c)| Node::new("enc").attr("v", "2").attr("type", k).bytes(c)).collect())
    }

    /// Through the driver and a real store: the SKDM is committed with the first message, so the
    /// second (skmsg only) decrypts with the stored key; a replay is acknowledged, not emitted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue12_item1_the_participants_sender_key_is_committed_and_used_for_the_next_skmsg() {
        let (rng, creds) = crate::channels::whatsapp::messages::test_support::our_creds(9);
        let (sink, mut inbound) = inbound_queue(16);
        let store = AccountStore::in_memory().unwrap();
        let (m, _handle) = crate::channels::whatsapp::supervisor::open_messaging_with(store, "default", sink).unwrap();
        let mut conn = ConnInbound::new(m.clone());
        let bundle = crate::channels::whatsapp::messages::test_support::our_bundle(&creds, None);
        let peer = LocalIdentity { key_pair: KeyPair::generate(rng.as_ref()), registration_id: 5 };
        let mut pairwise = SessionRecord::new();
        pairwise.start_outgoing(&peer, &bundle, rng.as_ref()).unwrap();
        let mut key = SenderKeyRecord::new_own(rng.as_ref());
        let skdm = context::distribution_message("120363009@g.us", key.distribution().unwrap().encode());
        let (_, pk) = pairwise.encrypt(&padding::pad(&skdm.encode_to_vec(), rng.as_ref())).unwrap();
        let mut group_text = |t: &str| key.encrypt(&padding::pad(&content::text_message(t).encode_to_vec(), rng.as_ref()), rng.as_ref()).unwrap();
        let s1 = group_text("one");
        let s2 = group_text("two");

        let out = conn.on_message(&node("G1", vec![("pkmsg", pk), ("skmsg", s1)]), &creds, 100, &rng).await.unwrap();
        assert_eq!(out.iter().map(|n| n.tag.as_str()).collect::<Vec<_>>(), ["receipt", "ack"]);
        let got = inbound.recv().await.unwrap();
        assert_eq!((got.body.text(), got.chat.as_str(), got.sender.as_str()), (Some("one"), "120363009@g.us", "15550003333@s.whatsapp.net"));
        assert_eq!(got.sender_e164.as_deref(), Some("+15550003333"));
        assert!(got.is_group && !got.from_me);
        let stored = m.db.read(|o| o.sender_key("120363009@g.us", "15550003333:2@s.whatsapp.net")).await.unwrap();
        assert!(stored.is_some(), "the participant's sender key is committed");

        let out = conn.on_message(&node("G2", vec![("skmsg", s2.clone())]), &creds, 100, &rng).await.unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(inbound.recv().await.unwrap().body.text(), Some("two"));
        let out = conn.on_message(&node("G2", vec![("skmsg", s2)]), &creds, 100, &rng).await.unwrap();
        assert_eq!(out.iter().map(|n| n.tag.as_str()).collect::<Vec<_>>(), ["receipt", "ack"]);
        assert_eq!(m.stats.received.load(Ordering::Relaxed), 2);
    }
}
