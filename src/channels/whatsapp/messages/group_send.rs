//! The outbox consumer's group side (child of `driver`, issue 12 items 2 and 3): group metadata
//! (cached in the store, refetched when stale or after a `w:gp2` notification), our sender key
//! per group (created on first use, rotated when a member leaves), its distribution to every
//! member device that lacks it (pairwise, tracked per device in the store once the server
//! acknowledged the message that carried it), one `skmsg`, `phash` and `addressing_mode`.
//!
//! Order on a send: our advanced sender key and the pairwise sessions are committed before the
//! stanza leaves (a crash never reuses an iteration); the devices are recorded as holders only
//! after the server's ack (a lost send means they get the key again next time).

use std::collections::BTreeSet;
use std::time::Duration;

use prost::Message as _;

use crate::channels::whatsapp::account::store::{GroupRow, OWN_SENDER};
use crate::channels::whatsapp::binary::Node;
use crate::channels::whatsapp::groups::metadata;
use crate::channels::whatsapp::groups::phash::participant_hash;
use crate::channels::whatsapp::signal::padding;
use crate::channels::whatsapp::signal::sender_key::SenderKeyRecord;
use crate::channels::whatsapp::proto;
use crate::messaging::{MessageId, OutboundBody, OutboxRecord};

use super::super::content;
use super::super::context;
use super::super::group_meta::{self, GroupChange, GroupMeta};
use super::super::stanza::Jid;
use super::{Consumer, Outgoing, Reply, SendFail, device_identity, now_ms, stored};

/// How long cached group metadata is used before it is fetched again.
pub const GROUP_META_TTL: Duration = Duration::from_secs(6 * 3600);

fn meta_row(g: &GroupMeta, now: u64) -> Result<GroupRow, SendFail> {
    let info = serde_json::to_string(g).map_err(|e| SendFail::Permanent(format!("group metadata: {e}")))?;
    Ok(GroupRow { jid: g.jid.clone(), info, fetched_at_ms: now, expires_at_ms: now + GROUP_META_TTL.as_millis() as u64 })
}

impl Consumer {
    /// The group's metadata, from the cache or one `w:g2` query (then cached).
    pub(super) async fn group_meta(&self, group: &str) -> Result<GroupMeta, SendFail> {
        let now = now_ms(&self.clock);
        let g = group.to_owned();
        if let Some(row) = self.m.db.read(move |ops| ops.group(&g, now)).await?
            && let Ok(meta) = serde_json::from_str::<GroupMeta>(&row.info)
        {
            return Ok(meta);
        }
        let ans = self.link.iq(metadata::query_group(group), Duration::from_secs(20)).await?;
        let meta = group_meta::parse_answer(&ans).map_err(|e| SendFail::Permanent(format!("{group}: {e}")))?;
        let row = meta_row(&meta, now)?;
        self.m.db.write(move |ops| ops.put_group(&row)).await?;
        Ok(meta)
    }

    /// Every group the account is in (one `participating` query; each is cached).
    pub(super) async fn participating(&self) -> Result<Vec<GroupMeta>, SendFail> {
        let ans = self.link.iq(metadata::query_participating(), Duration::from_secs(20)).await?;
        let groups = group_meta::parse_participating(&ans).map_err(|e| SendFail::Transient(e.to_string()))?;
        let now = now_ms(&self.clock);
        let rows = groups.iter().map(|g| meta_row(g, now)).collect::<Result<Vec<_>, _>>()?;
        self.m
            .db
            .write(move |ops| {
                for r in &rows {
                    ops.put_group(r)?;
                }
                Ok(())
            })
            .await?;
        Ok(groups)
    }

    /// Sends one outbox message to a group.
    pub(super) async fn send_group(&self, rec: &OutboxRecord, group: &Jid) -> Result<(), SendFail> {
        let started = std::time::Instant::now();
        let gjid = group.user_jid();
        let meta = self.group_meta(&gjid).await?;
        let own_user = if meta.lid_addressing {
            self.own_lid_user().map(|u| format!("{u}@lid")).unwrap_or_else(|| self.me.with_device(0).user_jid())
        } else {
            self.me.with_device(0).user_jid()
        };
        let own_jid = Jid::parse(&own_user).unwrap_or_else(|| self.me.with_device(0));
        let mut users: Vec<String> = meta.members.iter().map(|m| m.jid.clone()).collect();
        if !users.contains(&own_user) {
            users.push(own_user.clone());
        }
        let lists = self.devices(users.clone()).await?;
        let mut all = Vec::new();
        for u in &users {
            let Some(j) = Jid::parse(u) else { continue };
            for d in lists.get(u).cloned().unwrap_or_default() {
                all.push(j.with_device(d).device_jid());
            }
        }
        let me_device = own_jid.with_device(self.me.device).device_jid();
        if !all.contains(&me_device) {
            all.push(me_device.clone());
        }
        let phash = participant_hash(&all);
        let targets: Vec<String> = all.into_iter().filter(|d| *d != me_device).collect();

        // Our sender key for the group: stored, or new (then nobody holds it yet).
        let g2 = gjid.clone();
        let stored_key = self.m.db.read(move |ops| ops.sender_key(&g2, OWN_SENDER)).await?;
        let mut key = match stored_key.clone().and_then(|b| SenderKeyRecord::from_bytes(&b).ok()) {
            Some(k) if !k.is_empty() => k,
            _ => SenderKeyRecord::new_own(self.rng.as_ref()),
        };
        let key_id = key.key_id().ok_or_else(|| SendFail::Permanent("sender key without an id".into()))?;
        let (g2, kid) = (gjid.clone(), key_id);
        let holders: BTreeSet<String> = self.m.db.read(move |ops| ops.sender_key_holders(&g2, kid)).await?.into_iter().collect();
        let need: Vec<String> = targets.iter().filter(|d| !holders.contains(*d)).cloned().collect();

        // The distribution (at the key's current iteration) for every device that lacks it.
        let skdm = key.distribution().map_err(|e| SendFail::Permanent(e.to_string()))?.encode();
        let dist = context::distribution_message(&gjid, skdm).encode_to_vec();
        let (ratchets, sessions) = if need.is_empty() { (self.m.ratchets.lock().await, Vec::new()) } else { self.sessions(need, None).await? };
        // Read again under the lock: a member who left meanwhile made the key rotate
        // (`on_group_notification`), and writing the old one back would undo that.
        let g2 = gjid.clone();
        let now_key = self.m.db.read(move |ops| ops.sender_key(&g2, OWN_SENDER)).await?;
        if now_key != stored_key {
            return Err(SendFail::Transient("our sender key for the group changed while sending; sent again with the new one".into()));
        }
        let mut encs = Vec::new();
        let mut records = Vec::new();
        for (d, addr, mut r) in sessions {
            match r.encrypt(&padding::pad(&dist, self.rng.as_ref())) {
                Ok((ty, ct)) => {
                    encs.push(super::DeviceEnc { jid: d, kind: ty.as_str(), ciphertext: ct });
                    records.push((addr, stored(&r)));
                }
                Err(e) => tracing::warn!(device = %d, "sender key distribution not encrypted: {e}"),
            }
        }
        let msg = self.group_content(rec, &gjid).await?;
        let skmsg = key.encrypt(&padding::pad(&msg.encode_to_vec(), self.rng.as_ref()), self.rng.as_ref()).map_err(|e| SendFail::Permanent(e.to_string()))?;

        // Committed before anything leaves: the advanced key and the pairwise sessions.
        let now = now_ms(&self.clock);
        let (g2, key_bytes) = (gjid.clone(), key.to_bytes());
        self.m
            .db
            .write(move |ops| {
                ops.put_sender_key(&g2, OWN_SENDER, &key_bytes, now)?;
                for (a, r) in &records {
                    ops.put_session(a, r, now)?;
                }
                Ok(())
            })
            .await?;
        drop(ratchets);

        let mut node = Node::new("message").attr("to", gjid.clone()).attr("id", rec.message.id.as_str()).attr("type", "text").attr("phash", phash.clone());
        if meta.lid_addressing {
            node = node.attr("addressing_mode", "lid");
        }
        let mut children = Vec::new();
        if !encs.is_empty() {
            let parts = encs
                .iter()
                .map(|e| Node::new("to").attr("jid", e.jid.clone()).children(vec![Node::new("enc").attr("v", "2").attr("type", e.kind).bytes(e.ciphertext.clone())]))
                .collect();
            children.push(Node::new("participants").children(parts));
        }
        children.push(Node::new("enc").attr("v", "2").attr("type", "skmsg").bytes(skmsg));
        if encs.iter().any(|e| e.kind == "pkmsg")
            && let Some(di) = device_identity(&self.creds)
        {
            children.push(Node::new("device-identity").bytes(di));
        }
        let prepared = started.elapsed();
        let ack = self.group_ack(super::with_kind(node.children(children), &msg)).await?;
        tracing::debug!(group = %gjid, devices = targets.len(), distributed = encs.len(), ?prepared, acked = ?started.elapsed(), "group message sent");
        let shared: Vec<String> = encs.into_iter().map(|e| e.jid).collect();
        let server_phash = ack.get_attr("phash").map(str::to_owned);
        let g2 = gjid.clone();
        let stale = server_phash.as_deref().is_some_and(|p| p != phash);
        self.m
            .db
            .write(move |ops| {
                ops.mark_sender_key_shared(&g2, &shared, key_id, now)?;
                if stale {
                    ops.invalidate_group(&g2)?;
                }
                Ok(())
            })
            .await?;
        if stale {
            // Our member or device list is out of date: refetched on the next send.
            tracing::info!(group = %gjid, "the server's participant hash differs from ours; group metadata refreshed next time");
        }
        Ok(())
    }

    /// A retry receipt for our group message from one member device: it lost (or never got)
    /// our sender key, so it is forgotten as a holder (the next send distributes the key again)
    /// and gets the message itself pairwise, to the group with `participant` naming it.
    pub(super) async fn answer_group_retry(&self, r: &super::RetryRequest, rec: &OutboxRecord, group: &Jid) -> Result<(), SendFail> {
        let gjid = group.user_jid();
        let dev = r.from.device_jid();
        let (g2, d2) = (gjid.clone(), dev.clone());
        self.m.db.write(move |ops| ops.unmark_sender_key_shared(&g2, &d2)).await?;
        let meta = self.group_meta(&gjid).await?;
        let force = r.bundle.clone().filter(|_| r.count >= 2).map(|b| (dev.clone(), b));
        let (ratchets, sessions) = self.sessions(vec![dev.clone()], force).await?;
        let Some((d, addr, mut session)) = sessions.into_iter().next() else { return Ok(()) };
        let msg = self.group_content(rec, &gjid).await?;
        let (ty, ct) = session.encrypt(&padding::pad(&msg.encode_to_vec(), self.rng.as_ref())).map_err(|e| SendFail::Permanent(e.to_string()))?;
        let (now, rec_bytes) = (now_ms(&self.clock), stored(&session));
        self.m.db.write(move |ops| ops.put_session(&addr, &rec_bytes, now)).await?;
        drop(ratchets);
        let mut node = Node::new("message").attr("to", gjid.clone()).attr("id", rec.message.id.as_str()).attr("type", "text").attr("participant", d.clone());
        if meta.lid_addressing {
            node = node.attr("addressing_mode", "lid");
        }
        let mut children = vec![Node::new("participants").children(vec![Node::new("to").attr("jid", d.clone()).children(vec![
            Node::new("enc").attr("v", "2").attr("type", ty.as_str()).attr("count", r.count.to_string()).bytes(ct),
        ])])];
        if ty.as_str() == "pkmsg"
            && let Some(di) = device_identity(&self.creds)
        {
            children.push(Node::new("device-identity").bytes(di));
        }
        tracing::info!(id = %r.id, device = %d, count = r.count, group = %gjid, "re-sending a group message pairwise after a retry receipt");
        self.link.fire(super::with_kind(node.children(children), &msg)).await
    }

    /// The `Message` an outbox record becomes in a group: text quoting the message it replies
    /// to (with that message's author), or a reaction whose key names the reacted message's
    /// author as `participant` (WhatsApp needs it to find the message in a group).
    async fn group_content(&self, rec: &OutboxRecord, gjid: &str) -> Result<proto::Message, SendFail> {
        let author_of = |id: &MessageId| {
            let (g2, q) = (gjid.to_owned(), id.as_str().to_owned());
            self.m.db.read(move |ops| ops.group_message_sender(&g2, &q))
        };
        Ok(match &rec.message.body {
            OutboundBody::Text { text } => {
                let quoted_sender = match &rec.message.reply_to {
                    Some(q) => author_of(q).await?,
                    None => None,
                };
                context::quoting_text(text, rec.message.reply_to.as_ref().map(|r| r.as_str()), quoted_sender.as_deref())
            }
            OutboundBody::Reaction { target, emoji } => {
                let author = author_of(target).await?;
                content::reaction_message(gjid, author.as_deref(), target, emoji, rec.created_at_ms)
            }
        })
    }

    async fn group_ack(&self, node: Node) -> Result<Node, SendFail> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.link.out.send(Outgoing { node, reply: Reply::MessageAck(tx) }).await.map_err(|_| SendFail::Closed)?;
        match tokio::time::timeout(self.m.ack_timeout, rx).await {
            Ok(Ok(ack)) => match ack.get_attr("error") {
                None => Ok(ack),
                Some(code) => Err(SendFail::Transient(format!("server refused the group message ({code})"))),
            },
            Ok(Err(_)) => Err(SendFail::Closed),
            Err(_) => Err(SendFail::Timeout),
        }
    }
}

/// Applies a `w:gp2` notification to the store: the metadata is stale; a member who left or was
/// removed makes our sender key rotate, so the next message uses a key they never got.
pub async fn on_group_notification(m: &super::Messaging, n: &Node) -> Result<(), crate::channels::whatsapp::account::store::StoreError> {
    let Some(change) = group_meta::classify_notification(n) else { return Ok(()) };
    let db = &m.db;
    match change {
        GroupChange::MembersLeft { group } => {
            // Not while the consumer holds the key between reading and storing it.
            let _ratchets = m.ratchets.lock().await;
            db.write(move |ops| {
                ops.invalidate_group(&group)?;
                if ops.rotate_own_sender_key(&group)? {
                    tracing::info!(group = %group, "a member left: our sender key for the group rotates");
                }
                Ok(())
            })
            .await
        }
        GroupChange::Changed { group } => db.write(move |ops| ops.invalidate_group(&group)).await,
    }
}
