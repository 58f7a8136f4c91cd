//! The group tables of the account store (schema version 4): sender keys per `(group, sender
//! device)` (ours under [`OWN_SENDER`]), which participant devices hold our current sender key,
//! who wrote a received group message (a reply quotes its author; bounded), and cached group
//! metadata with an expiry.

use rusqlite::{OptionalExtension, params};

use super::{Ops, StoreError, i};
use crate::store::db::Migration;

/// The `sender` under which our own sender key for a group is stored.
pub const OWN_SENDER: &str = "@own";

pub(super) const GROUPS_V4: Migration = Migration::sql(
    "whatsapp groups v4",
    "CREATE TABLE sender_keys (
        group_jid TEXT NOT NULL,
        sender TEXT NOT NULL,
        record BLOB NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (group_jid, sender)
    );
    CREATE TABLE sender_key_shared (
        group_jid TEXT NOT NULL,
        device TEXT NOT NULL,
        key_id INTEGER NOT NULL,
        shared_at_ms INTEGER NOT NULL,
        PRIMARY KEY (group_jid, device)
    );
    CREATE TABLE group_message_senders (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        group_jid TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        UNIQUE (group_jid, message_id)
    );
    CREATE TABLE group_metadata (
        group_jid TEXT PRIMARY KEY,
        info TEXT NOT NULL,
        fetched_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    );",
);

/// A cached group's metadata row: the encoded info (JSON, owned by the message path) and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The group JID.
    pub jid: String,
    /// The encoded metadata.
    pub info: String,
    /// Unix ms of the fetch.
    pub fetched_at_ms: u64,
    /// Unix ms after which it is refetched.
    pub expires_at_ms: u64,
}

impl Ops<'_> {
    /// The sender-key record (opaque bytes) of `sender` in `group`.
    pub fn sender_key(&self, group: &str, sender: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT record FROM sender_keys WHERE group_jid = ?1 AND sender = ?2")?.query_row(params![group, sender], |r| r.get(0))
            .optional()?)
    }

    /// Stores (replaces) a sender-key record.
    pub fn put_sender_key(&self, group: &str, sender: &str, record: &[u8], now_ms: u64) -> Result<(), StoreError> {
        self.conn.prepare_cached("INSERT INTO sender_keys (group_jid, sender, record, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (group_jid, sender) DO UPDATE SET record = ?3, updated_at_ms = ?4")?.execute(
            params![group, sender, record, i(now_ms)],
        )?;
        Ok(())
    }

    /// Forgets our own sender key for `group` and who held it (rotation: the next send makes a
    /// new key and distributes it to the current participants only).
    pub fn rotate_own_sender_key(&self, group: &str) -> Result<bool, StoreError> {
        let n = self.conn.prepare_cached("DELETE FROM sender_keys WHERE group_jid = ?1 AND sender = ?2")?.execute(params![group, OWN_SENDER])?;
        self.conn.prepare_cached("DELETE FROM sender_key_shared WHERE group_jid = ?1")?.execute([group])?;
        Ok(n == 1)
    }

    /// The devices that hold our sender key `key_id` for `group`.
    pub fn sender_key_holders(&self, group: &str, key_id: u32) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare("SELECT device FROM sender_key_shared WHERE group_jid = ?1 AND key_id = ?2 ORDER BY device")?;
        let rows = st.query_map(params![group, key_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that `devices` received our sender key `key_id` for `group`.
    pub fn mark_sender_key_shared(&self, group: &str, devices: &[String], key_id: u32, now_ms: u64) -> Result<(), StoreError> {
        let mut st = self.conn.prepare(
            "INSERT INTO sender_key_shared (group_jid, device, key_id, shared_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (group_jid, device) DO UPDATE SET key_id = ?3, shared_at_ms = ?4",
        )?;
        for d in devices {
            st.execute(params![group, d, key_id, i(now_ms)])?;
        }
        Ok(())
    }

    /// Forgets that `device` holds our key for `group` (it asked for a retry: it lost it).
    pub fn unmark_sender_key_shared(&self, group: &str, device: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached("DELETE FROM sender_key_shared WHERE group_jid = ?1 AND device = ?2")?.execute(params![group, device])?;
        Ok(())
    }

    /// Remembers who wrote group message `message_id` (a reply quotes its author). Keeps the
    /// newest [`super::DEDUPE_LIMIT`] rows.
    pub fn put_group_message_sender(&self, group: &str, message_id: &str, sender: &str) -> Result<(), StoreError> {
        let n = self.conn.prepare_cached("INSERT INTO group_message_senders (group_jid, message_id, sender) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?.execute(
            params![group, message_id, sender],
        )?;
        if n == 1 {
            self.conn.prepare_cached("DELETE FROM group_message_senders WHERE seq <= (SELECT max(seq) FROM group_message_senders) - ?1")?.execute(
                [super::DEDUPE_LIMIT],
            )?;
        }
        Ok(())
    }

    /// Who wrote group message `message_id`, if we received it.
    pub fn group_message_sender(&self, group: &str, message_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT sender FROM group_message_senders WHERE group_jid = ?1 AND message_id = ?2")?.query_row(params![group, message_id], |r| r.get(0))
            .optional()?)
    }

    /// Caches a group's metadata until `expires_at_ms`.
    pub fn put_group(&self, row: &GroupRow) -> Result<(), StoreError> {
        self.conn.prepare_cached("INSERT INTO group_metadata (group_jid, info, fetched_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (group_jid) DO UPDATE SET info = ?2, fetched_at_ms = ?3, expires_at_ms = ?4")?.execute(
            params![row.jid, row.info, i(row.fetched_at_ms), i(row.expires_at_ms)],
        )?;
        Ok(())
    }

    /// A cached group, fresh at `now_ms` (`None` when absent or expired).
    pub fn group(&self, jid: &str, now_ms: u64) -> Result<Option<GroupRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT group_jid, info, fetched_at_ms, expires_at_ms FROM group_metadata WHERE group_jid = ?1 AND expires_at_ms > ?2")?.query_row(
                params![jid, i(now_ms)],
                |r| Ok(GroupRow { jid: r.get(0)?, info: r.get(1)?, fetched_at_ms: r.get::<_, i64>(2)?.max(0) as u64, expires_at_ms: r.get::<_, i64>(3)?.max(0) as u64 }),
            )
            .optional()?)
    }

    /// Every cached group (expired ones too), by JID.
    pub fn groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        let mut st = self.conn.prepare("SELECT group_jid, info, fetched_at_ms, expires_at_ms FROM group_metadata ORDER BY group_jid")?;
        let rows = st.query_map([], |r| {
            Ok(GroupRow { jid: r.get(0)?, info: r.get(1)?, fetched_at_ms: r.get::<_, i64>(2)?.max(0) as u64, expires_at_ms: r.get::<_, i64>(3)?.max(0) as u64 })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// [`Ops::commit_inbound`] without the dedupe row: the decryption's session, prekey and
    /// identity are kept, but the message id stays unprocessed (a group message whose `skmsg`
    /// still needs the sender's re-send under the same id).
    pub fn commit_inbound_unmarked(&self, c: &super::InboundCommit<'_>) -> Result<super::CommitOutcome, StoreError> {
        let identity = match c.identity {
            Some((addr, key)) => Some(self.trust_identity(addr, key, c.now_ms)?),
            None => None,
        };
        if let Some((addr, rec)) = c.session {
            self.put_session(addr, rec, c.now_ms)?;
        }
        if let Some(id) = c.consumed_prekey {
            self.remove_prekey(id)?;
        }
        Ok(super::CommitOutcome::Committed { identity })
    }

    /// Marks a cached group stale (a notification changed it); the next use refetches it.
    pub fn invalidate_group(&self, jid: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached("UPDATE group_metadata SET expires_at_ms = 0 WHERE group_jid = ?1")?.execute([jid])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::account::store::AccountStore;

    #[test]
    fn issue12_item2_rotation_forgets_our_key_and_its_holders_but_keeps_peers_keys() {
        let s = AccountStore::in_memory().unwrap();
        let o = s.ops();
        let g = "1-2@g.us";
        o.put_sender_key(g, OWN_SENDER, &[1, 2], 1).unwrap();
        o.put_sender_key(g, "5:1@s.whatsapp.net", &[3], 1).unwrap();
        o.mark_sender_key_shared(g, &["5:1@s.whatsapp.net".into(), "6@s.whatsapp.net".into()], 7, 1).unwrap();
        assert_eq!(o.sender_key_holders(g, 7).unwrap().len(), 2);
        assert!(o.sender_key_holders(g, 8).unwrap().is_empty(), "holders are per key id");
        o.unmark_sender_key_shared(g, "6@s.whatsapp.net").unwrap();
        assert_eq!(o.sender_key_holders(g, 7).unwrap(), vec!["5:1@s.whatsapp.net".to_string()]);
        assert!(o.rotate_own_sender_key(g).unwrap());
        assert_eq!(o.sender_key(g, OWN_SENDER).unwrap(), None);
        assert!(o.sender_key_holders(g, 7).unwrap().is_empty());
        assert_eq!(o.sender_key(g, "5:1@s.whatsapp.net").unwrap(), Some(vec![3]));
        assert!(!o.rotate_own_sender_key(g).unwrap());
        o.put_group_message_sender(g, "M1", "5@lid").unwrap();
        assert_eq!(o.group_message_sender(g, "M1").unwrap().as_deref(), Some("5@lid"));
        assert_eq!(o.group_message_sender("9@g.us", "M1").unwrap(), None);
    }

    #[test]
    fn group_metadata_expires_and_is_invalidated() {
        let s = AccountStore::in_memory().unwrap();
        let o = s.ops();
        let row = GroupRow { jid: "1-2@g.us".into(), info: "{}".into(), fetched_at_ms: 10, expires_at_ms: 100 };
        o.put_group(&row).unwrap();
        assert_eq!(o.group("1-2@g.us", 50).unwrap(), Some(row.clone()));
        assert_eq!(o.group("1-2@g.us", 100).unwrap(), None);
        o.invalidate_group("1-2@g.us").unwrap();
        assert_eq!(o.group("1-2@g.us", 11).unwrap(), None);
        assert_eq!(o.groups().unwrap().len(), 1, "the list keeps stale rows");
    }
}
