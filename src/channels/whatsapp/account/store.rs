//! The protocol-state store of one WhatsApp account: one SQLite file, one owner of its schema.
//!
//! Path: [`StateLayout::whatsapp_store_db`] = `<state>/channels/whatsapp/<account>/store.db` (0600,
//! directories 0700). It holds secret key material: never log record contents.
//!
//! | table | what |
//! |---|---|
//! | `prekeys` | one-time prekeys (id, key pair, uploaded flag) |
//! | `signed_prekeys` | signed prekeys; exactly one `active` |
//! | `sessions` | Signal session per device address: an opaque record with its format version |
//! | `identities` | peer identity keys, trust on first use, changes counted |
//! | `lid_mappings` | phone-number user ↔ LID user |
//! | `device_lists` | a user's device ids with an expiry |
//! | `processed_messages` | (remote, message id) already handled; bounded to [`DEDUPE_LIMIT`] rows |
//! | `outbox_messages` | the [`crate::messaging::outbox`], hosted here |
//! | `inbound_messages` | the durable inbound queue ([`crate::messaging::inbound_log`]), hosted here |
//! | `sender_keys`, `sender_key_shared`, `group_metadata` | groups (v4, `store_groups.rs`) |
//!
//! ## Schema versions
//! [`MIGRATIONS`] is this store's list (append-only): version 1 is the account tables, version 2 the
//! outbox v1 ([`crate::messaging::outbox::MIGRATIONS`]), version 3 the inbound queue v1
//! ([`crate::messaging::inbound_log::MIGRATIONS`]), version 4 the group tables (sender keys, who
//! holds our sender key, cached metadata). A new migration (ours, the outbox's or the inbound
//! queue's) is appended at the end of the list.
//! [`SCHEMA_VERSION`] is the version this program writes.
//!
//! ## Commit, then ack
//! [`Ops::commit_inbound`] writes, in one transaction, the session the decryption produced, the
//! consumed one-time prekey, the sender's identity (TOFU) and the dedupe row. The driver sends the
//! `<ack>`/receipt only after it returns. The decoded message is stored in that same transaction
//! ([`Ops::record_inbound`]) and handed to the consumer after the commit: a crash in between leaves
//! it pending in `inbound_messages`, handed out again at the next start. A crash before the commit leaves the old session and no
//! dedupe row, so the server's redelivery decrypts again; a crash after it leaves the message marked
//! processed, so a redelivery is acknowledged without being handled twice.
//!
//! ## Threads
//! Every [`AccountStore`] method blocks on file I/O. In the async driver, use [`AccountDb`]
//! ([`AccountStore::into_async`]): [`AccountDb::read`] and [`AccountDb::write`] run [`Ops`] on the
//! store's own thread, and [`AccountDb::outbox`] is the account's [`Outbox`] on that same thread.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::channels::whatsapp::creds::{PreKeys, SignedPreKey, StoredKeyPair};
use crate::messaging::inbound_log::{self, InboundLog};
use crate::messaging::outbox::{self, Outbox, OutboxPolicy};
use crate::messaging::InboundMessage;
use crate::store::db::{Db, DbError, DbThread, Migration};
use crate::store::StateLayout;

/// How many processed message ids are kept for dedupe (oldest dropped first).
pub const DEDUPE_LIMIT: i64 = 10_000;

const ACCOUNT_V1: Migration = Migration::sql(
    "whatsapp account v1",
    "CREATE TABLE prekeys (
        key_id INTEGER PRIMARY KEY CHECK (key_id BETWEEN 0 AND 16777215),
        public_key BLOB NOT NULL CHECK (length(public_key) = 32),
        private_key BLOB NOT NULL CHECK (length(private_key) = 32),
        uploaded INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE signed_prekeys (
        key_id INTEGER PRIMARY KEY CHECK (key_id BETWEEN 0 AND 16777215),
        public_key BLOB NOT NULL CHECK (length(public_key) = 32),
        private_key BLOB NOT NULL CHECK (length(private_key) = 32),
        signature BLOB NOT NULL CHECK (length(signature) = 64),
        active INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX signed_prekeys_one_active ON signed_prekeys (active) WHERE active = 1;
    CREATE TABLE sessions (
        address TEXT PRIMARY KEY,
        record_version INTEGER NOT NULL,
        record BLOB NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE identities (
        address TEXT PRIMARY KEY,
        identity_key BLOB NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        changed_at_ms INTEGER,
        changes INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE lid_mappings (
        pn TEXT PRIMARY KEY,
        lid TEXT NOT NULL UNIQUE,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE device_lists (
        user TEXT PRIMARY KEY,
        devices TEXT NOT NULL,
        fetched_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    );
    CREATE TABLE processed_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        remote TEXT NOT NULL,
        message_id TEXT NOT NULL,
        processed_at_ms INTEGER NOT NULL,
        UNIQUE (remote, message_id)
    );",
);

/// This store's migrations, in order (see the module doc). Append only.
pub const MIGRATIONS: &[Migration] = &[
    ACCOUNT_V1,                 // 1
    outbox::MIGRATIONS[0],      // 2
    inbound_log::MIGRATIONS[0], // 3
    groups::GROUPS_V4,          // 4
];

/// The schema version this program writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed; the transaction was rolled back.
    #[error("whatsapp account store: {0}")]
    Db(#[from] DbError),
    /// The account id cannot name a directory.
    #[error("invalid WhatsApp account id {0:?}: use letters, digits, '-', '_' or '.' (not '.' or '..')")]
    InvalidAccountId(String),
    /// A key to store or import is malformed.
    #[error("invalid key {what} {id}: {reason}")]
    InvalidKey {
        /// Which kind of key.
        what: &'static str,
        /// Its id.
        id: u32,
        /// What is wrong.
        reason: String,
    },
    /// An import found a different key under an id that is already stored.
    #[error("prekey {0} is already stored with a different key; refusing to overwrite it")]
    PrekeyConflict(u32),
    /// A stored row is corrupt.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::Sqlite(e))
    }
}

/// A Signal session record, opaque here: the Signal layer owns its encoding and `version`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The record's format version (the Signal layer's, not the schema's).
    pub version: u32,
    /// The encoded record.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord").field("version", &self.version).field("len", &self.bytes.len()).finish()
    }
}

/// A stored one-time prekey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKey {
    /// Key id (24 bits).
    pub id: u32,
    /// The key pair.
    pub key: StoredKeyPair,
    /// Whether the server has it.
    pub uploaded: bool,
}

/// What trust on first use decided for a peer identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityVerdict {
    /// First time this address is seen; the key is stored.
    New,
    /// The stored key matches.
    Known,
    /// The key differs from the stored one; the new key replaces it (as WhatsApp clients do) and
    /// the change is counted and logged.
    Changed {
        /// The key that was stored before.
        previous: Vec<u8>,
    },
}

/// A user's device list as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList {
    /// Device ids (0 is the phone).
    pub devices: Vec<u32>,
    /// Unix ms of the fetch.
    pub fetched_at_ms: u64,
    /// Unix ms after which it must be fetched again.
    pub expires_at_ms: u64,
}

/// Everything one decrypted inbound message changes, committed together before the ack.
#[derive(Debug, Clone)]
pub struct InboundCommit<'a> {
    /// The chat/sender JID the message id belongs to (dedupe key with `message_id`).
    pub remote: &'a str,
    /// The message id.
    pub message_id: &'a str,
    /// The session the decryption produced: `(address, record)`.
    pub session: Option<(&'a str, &'a SessionRecord)>,
    /// The one-time prekey a `pkmsg` consumed (deleted here).
    pub consumed_prekey: Option<u32>,
    /// The sender device's identity key: `(address, key)` (trust on first use).
    pub identity: Option<(&'a str, &'a [u8])>,
    /// Unix ms now.
    pub now_ms: u64,
}

/// What [`Ops::commit_inbound`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Everything was committed; ack now.
    Committed {
        /// The identity verdict, when an identity was given.
        identity: Option<IdentityVerdict>,
    },
    /// The message id was already processed: nothing was written; ack without handling it again.
    Duplicate,
}

/// What [`Ops::import_prekeys`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Keys written.
    pub imported: usize,
    /// Keys already stored with the same value.
    pub unchanged: usize,
}

fn account_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The account's store, opened and migrated. See the module doc.
#[derive(Debug)]
pub struct AccountStore {
    db: Db,
}

impl AccountStore {
    /// Opens (creating if needed) the store of `account_id` under `layout`.
    pub fn open(layout: &StateLayout, account_id: &str) -> Result<Self, StoreError> {
        if !account_id_ok(account_id) {
            return Err(StoreError::InvalidAccountId(account_id.to_string()));
        }
        Self::open_at(&layout.whatsapp_store_db(account_id))
    }

    /// Opens the store at an explicit path.
    pub fn open_at(path: &Path) -> Result<Self, StoreError> {
        Ok(Self { db: Db::open(path, MIGRATIONS)? })
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self { db: Db::open_in_memory(MIGRATIONS)? })
    }

    /// Typed operations, each statement its own transaction (reads, single writes).
    pub fn ops(&self) -> Ops<'_> {
        Ops::new(self.db.conn())
    }

    /// Runs `f` in one transaction: all of its writes or none.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Ops<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.db.transaction(|tx| f(&Ops::new(tx)))
    }

    /// [`Ops::commit_inbound`] in its own transaction.
    pub fn commit_inbound(&mut self, c: &InboundCommit<'_>) -> Result<CommitOutcome, StoreError> {
        self.transaction(|o| o.commit_inbound(c))
    }

    /// Imports the one-time prekeys of `pre-keys.json` (see [`Ops::import_prekeys`]), all or none.
    pub fn import_prekeys(&mut self, keys: &PreKeys, first_unuploaded_id: u32, now_ms: u64) -> Result<ImportReport, StoreError> {
        self.transaction(|o| o.import_prekeys(keys, first_unuploaded_id, now_ms))
    }

    /// Crash recovery of the hosted outbox: every `sending` message becomes `pending` again
    /// (same id). Call once when the account starts, before its driver claims anything.
    pub fn recover_outbox(&self, now_ms: u64) -> Result<usize, crate::messaging::OutboxError> {
        outbox::ops::recover(self.db.conn(), now_ms)
    }

    /// Moves the store onto its own thread (for the async driver).
    pub fn into_thread(self) -> Result<DbThread, StoreError> {
        Ok(DbThread::spawn("openclaw-wa-store", self.db)?)
    }

    /// The account's outbox, hosted in this store, over `thread` (from [`Self::into_thread`]).
    pub fn outbox(thread: &DbThread, policy: OutboxPolicy) -> Outbox {
        Outbox::new(thread.clone(), policy)
    }

    /// Moves the store onto its own thread behind the async handle the driver uses.
    pub fn into_async(self) -> Result<AccountDb, StoreError> {
        Ok(AccountDb { thread: self.into_thread()? })
    }
}

/// The account store on its own thread, for async code: every call awaits the database thread and
/// never blocks an async worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AccountDb {
    thread: DbThread,
}

impl AccountDb {
    /// Runs `f` with [`Ops`] outside a transaction (reads, single writes).
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Ops<'_>) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        self.thread.call(move |db| f(&Ops::new(db.conn()))).await
    }

    /// Runs `f` in one transaction: all of its writes or none.
    pub async fn write<T: Send + 'static>(&self, f: impl FnOnce(&Ops<'_>) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        self.thread.call(move |db| db.transaction(|tx| f(&Ops::new(tx)))).await
    }

    /// [`AccountDb::write`] whose commit is not synced to disk (see
    /// [`crate::store::db::Db::transaction_unsynced`]); [`AccountDb::sync`] or the next synced
    /// commit makes it durable. Nothing that depends on it may leave before either.
    pub async fn write_unsynced<T: Send + 'static>(&self, f: impl FnOnce(&Ops<'_>) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        self.thread.call(move |db| db.transaction_unsynced(|tx| f(&Ops::new(tx)))).await
    }

    /// Makes every commit so far durable (see [`crate::store::db::Db::sync`]).
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.thread.sync().await.map_err(StoreError::from)
    }

    /// The account's outbox, in the same database and on the same thread.
    pub fn outbox(&self, policy: OutboxPolicy) -> Outbox {
        Outbox::new(self.thread.clone(), policy)
    }

    /// The account's durable inbound queue, in the same database and on the same thread.
    pub fn inbound_log(&self) -> InboundLog {
        InboundLog::new(self.thread.clone())
    }

    /// The database thread (to combine outbox and store steps in one transaction).
    pub fn thread(&self) -> &DbThread {
        &self.thread
    }
}

/// Typed operations on an account store connection or transaction.
#[derive(Clone, Copy)]
pub struct Ops<'c> {
    conn: &'c Connection,
}

impl std::fmt::Debug for Ops<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ops")
    }
}

fn i(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

fn check_pair(what: &'static str, id: u32, k: &StoredKeyPair) -> Result<(), StoreError> {
    if id > 0xFF_FFFF {
        return Err(StoreError::InvalidKey { what, id, reason: "id does not fit in 24 bits".into() });
    }
    k.key_pair().map(|_| ()).map_err(|r| StoreError::InvalidKey { what, id, reason: r.into() })
}

impl<'c> Ops<'c> {
    /// Operations on `conn` (a `rusqlite::Transaction` derefs to a `Connection`); the schema must be
    /// this store's (for use inside [`DbThread::call`]).
    pub fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }

    // ---- one-time prekeys ----

    /// Stores new prekeys (not uploaded). An id already present is an error.
    pub fn put_prekeys(&self, keys: &[(u32, StoredKeyPair)], now_ms: u64) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO prekeys (key_id, public_key, private_key, uploaded, created_at_ms) VALUES (?1, ?2, ?3, 0, ?4)",
        )?;
        for (id, k) in keys {
            check_pair("prekey", *id, k)?;
            st.execute(params![id, k.public, k.private, i(now_ms)])?;
        }
        Ok(())
    }

    /// A prekey by id.
    pub fn prekey(&self, id: u32) -> Result<Option<PreKey>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT public_key, private_key, uploaded FROM prekeys WHERE key_id = ?1")?.query_row([id], |r| {
                Ok(PreKey { id, key: StoredKeyPair { public: r.get(0)?, private: r.get(1)? }, uploaded: r.get(2)? })
            })
            .optional()?)
    }

    /// Deletes a prekey (consumed by a session setup); true if it existed.
    pub fn remove_prekey(&self, id: u32) -> Result<bool, StoreError> {
        Ok(self.conn.prepare_cached("DELETE FROM prekeys WHERE key_id = ?1")?.execute([id])? == 1)
    }

    /// `(total, uploaded)` prekey counts.
    pub fn prekey_counts(&self) -> Result<(u64, u64), StoreError> {
        Ok(self.conn.prepare_cached("SELECT count(*), coalesce(sum(uploaded), 0) FROM prekeys")?.query_row([], |r| {
            Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64))
        })?)
    }

    /// Ids of prekeys not yet uploaded, ascending, at most `limit`.
    pub fn unuploaded_prekey_ids(&self, limit: usize) -> Result<Vec<u32>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT key_id FROM prekeys WHERE uploaded = 0 ORDER BY key_id LIMIT ?1")?;
        Ok(st.query_map([limit as i64], |r| r.get(0))?.collect::<Result<_, _>>()?)
    }

    /// Marks prekeys uploaded (after the server acknowledged the upload).
    pub fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached("UPDATE prekeys SET uploaded = 1 WHERE key_id = ?1")?;
        for id in ids {
            st.execute([id])?;
        }
        Ok(())
    }

    /// Imports `pre-keys.json`'s map: keys with id `< first_unuploaded_id` count as uploaded (as
    /// Baileys' `firstUnuploadedPreKeyId`). Every key is checked (32-byte halves, public matching
    /// private); an id stored with a different key is [`StoreError::PrekeyConflict`]. Run it in a
    /// transaction ([`AccountStore::import_prekeys`]) so a bad key imports nothing.
    pub fn import_prekeys(&self, keys: &PreKeys, first_unuploaded_id: u32, now_ms: u64) -> Result<ImportReport, StoreError> {
        let mut report = ImportReport::default();
        let mut ins = self.conn.prepare_cached(
            "INSERT INTO prekeys (key_id, public_key, private_key, uploaded, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (id, k) in keys {
            check_pair("prekey", *id, k)?;
            match self.prekey(*id)? {
                Some(p) if p.key == *k => report.unchanged += 1,
                Some(_) => return Err(StoreError::PrekeyConflict(*id)),
                None => {
                    ins.execute(params![id, k.public, k.private, *id < first_unuploaded_id, i(now_ms)])?;
                    report.imported += 1;
                }
            }
        }
        Ok(report)
    }

    // ---- signed prekeys ----

    /// Stores a signed prekey and makes it the active one (the previous stays for late `pkmsg`s).
    pub fn put_signed_prekey(&self, spk: &SignedPreKey, now_ms: u64) -> Result<(), StoreError> {
        check_pair("signed prekey", spk.key_id, &spk.key_pair)?;
        if spk.signature.len() != 64 {
            return Err(StoreError::InvalidKey { what: "signed prekey", id: spk.key_id, reason: "signature is not 64 bytes".into() });
        }
        self.conn.prepare_cached("UPDATE signed_prekeys SET active = 0 WHERE active = 1")?.execute([])?;
        self.conn.prepare_cached("INSERT INTO signed_prekeys (key_id, public_key, private_key, signature, active, created_at_ms) VALUES (?1, ?2, ?3, ?4, 1, ?5)
             ON CONFLICT (key_id) DO UPDATE SET public_key = ?2, private_key = ?3, signature = ?4, active = 1")?.execute(
            params![spk.key_id, spk.key_pair.public, spk.key_pair.private, spk.signature, i(now_ms)],
        )?;
        Ok(())
    }

    fn signed(&self, filter: &str, p: impl rusqlite::Params) -> Result<Option<SignedPreKey>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT key_id, public_key, private_key, signature FROM signed_prekeys WHERE {filter}"), p, |r| {
                Ok(SignedPreKey { key_id: r.get(0)?, key_pair: StoredKeyPair { public: r.get(1)?, private: r.get(2)? }, signature: r.get(3)? })
            })
            .optional()?)
    }

    /// The active signed prekey.
    pub fn active_signed_prekey(&self) -> Result<Option<SignedPreKey>, StoreError> {
        self.signed("active = 1", [])
    }

    /// A signed prekey by id (active or kept).
    pub fn signed_prekey(&self, id: u32) -> Result<Option<SignedPreKey>, StoreError> {
        self.signed("key_id = ?1", [id])
    }

    /// When the active signed prekey was stored (unix ms), if there is one.
    pub fn active_signed_prekey_created_ms(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT created_at_ms FROM signed_prekeys WHERE active = 1")?.query_row([], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|v| v.max(0) as u64))
    }

    /// Deletes inactive signed prekeys created before `before_ms`; returns how many.
    pub fn prune_signed_prekeys(&self, before_ms: u64) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached("DELETE FROM signed_prekeys WHERE active = 0 AND created_at_ms < ?1")?.execute([i(before_ms)])?)
    }

    // ---- sessions ----

    /// The session record for a Signal address (`<user>.<device>` as the Signal layer names it).
    pub fn session(&self, address: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT record_version, record FROM sessions WHERE address = ?1")?.query_row([address], |r| {
                Ok(SessionRecord { version: r.get(0)?, bytes: r.get(1)? })
            })
            .optional()?)
    }

    /// The session record under `address`, else under `fallback` (the address an older record
    /// was stored under: the phone-number device JID before the LID one was known).
    pub fn session_or(&self, address: &str, fallback: &str) -> Result<Option<SessionRecord>, StoreError> {
        match self.session(address)? {
            Some(r) => Ok(Some(r)),
            None if fallback != address => self.session(fallback),
            None => Ok(None),
        }
    }

    /// Stores (replaces) the session record of an address.
    pub fn put_session(&self, address: &str, record: &SessionRecord, now_ms: u64) -> Result<(), StoreError> {
        self.conn.prepare_cached("INSERT INTO sessions (address, record_version, record, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (address) DO UPDATE SET record_version = ?2, record = ?3, updated_at_ms = ?4")?.execute(
            params![address, record.version, record.bytes, i(now_ms)],
        )?;
        Ok(())
    }

    /// Deletes the session of an address; true if there was one.
    pub fn delete_session(&self, address: &str) -> Result<bool, StoreError> {
        Ok(self.conn.prepare_cached("DELETE FROM sessions WHERE address = ?1")?.execute([address])? == 1)
    }

    /// Number of stored sessions.
    pub fn session_count(&self) -> Result<u64, StoreError> {
        Ok(self.conn.prepare_cached("SELECT count(*) FROM sessions")?.query_row([], |r| r.get::<_, i64>(0))?.max(0) as u64)
    }

    // ---- identities ----

    /// Trust on first use: stores the key of a new address, compares a known one, and replaces a
    /// changed one (counting and logging the change).
    pub fn trust_identity(&self, address: &str, key: &[u8], now_ms: u64) -> Result<IdentityVerdict, StoreError> {
        let stored: Option<Vec<u8>> =
            self.conn.prepare_cached("SELECT identity_key FROM identities WHERE address = ?1")?.query_row([address], |r| r.get(0)).optional()?;
        Ok(match stored {
            None => {
                self.conn.prepare_cached("INSERT INTO identities (address, identity_key, first_seen_ms) VALUES (?1, ?2, ?3)")?.execute(
                    params![address, key, i(now_ms)],
                )?;
                IdentityVerdict::New
            }
            Some(k) if k == key => IdentityVerdict::Known,
            Some(previous) => {
                self.conn.prepare_cached("UPDATE identities SET identity_key = ?2, changed_at_ms = ?3, changes = changes + 1 WHERE address = ?1")?.execute(
                    params![address, key, i(now_ms)],
                )?;
                tracing::info!(address, "peer identity key changed (trusted, as WhatsApp clients do)");
                IdentityVerdict::Changed { previous }
            }
        })
    }

    /// The stored identity key of an address.
    pub fn identity(&self, address: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.conn.prepare_cached("SELECT identity_key FROM identities WHERE address = ?1")?.query_row([address], |r| r.get(0)).optional()?)
    }

    // ---- PN ↔ LID ----

    /// Records that phone-number user `pn` is LID user `lid` (replacing older mappings of either).
    pub fn put_lid_mapping(&self, pn: &str, lid: &str, now_ms: u64) -> Result<(), StoreError> {
        self.conn.prepare_cached("DELETE FROM lid_mappings WHERE lid = ?1 AND pn <> ?2")?.execute(params![lid, pn])?;
        self.conn.prepare_cached("INSERT INTO lid_mappings (pn, lid, updated_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (pn) DO UPDATE SET lid = ?2, updated_at_ms = ?3")?.execute(
            params![pn, lid, i(now_ms)],
        )?;
        Ok(())
    }

    /// The LID user of a phone-number user.
    pub fn lid_for_pn(&self, pn: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn.prepare_cached("SELECT lid FROM lid_mappings WHERE pn = ?1")?.query_row([pn], |r| r.get(0)).optional()?)
    }

    /// The phone-number user of a LID user.
    pub fn pn_for_lid(&self, lid: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn.prepare_cached("SELECT pn FROM lid_mappings WHERE lid = ?1")?.query_row([lid], |r| r.get(0)).optional()?)
    }

    // ---- device lists ----

    /// Caches a user's device list until `expires_at_ms`.
    pub fn put_device_list(&self, user: &str, devices: &[u32], now_ms: u64, expires_at_ms: u64) -> Result<(), StoreError> {
        let json = serde_json::to_string(devices).map_err(|e| StoreError::Corrupt { table: "device_lists", reason: e.to_string() })?;
        self.conn.prepare_cached("INSERT INTO device_lists (user, devices, fetched_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user) DO UPDATE SET devices = ?2, fetched_at_ms = ?3, expires_at_ms = ?4")?.execute(
            params![user, json, i(now_ms), i(expires_at_ms)],
        )?;
        Ok(())
    }

    /// A user's cached device list if it has not expired at `now_ms`.
    pub fn device_list(&self, user: &str, now_ms: u64) -> Result<Option<DeviceList>, StoreError> {
        let row: Option<(String, i64, i64)> = self
            .conn
            .prepare_cached("SELECT devices, fetched_at_ms, expires_at_ms FROM device_lists WHERE user = ?1 AND expires_at_ms > ?2")?.query_row(
                params![user, i(now_ms)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(d, f, e)| {
            let devices = serde_json::from_str(&d).map_err(|e| StoreError::Corrupt { table: "device_lists", reason: e.to_string() })?;
            Ok(DeviceList { devices, fetched_at_ms: f.max(0) as u64, expires_at_ms: e.max(0) as u64 })
        })
        .transpose()
    }

    /// Forgets a user's device list (on a device notification).
    pub fn invalidate_device_list(&self, user: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached("DELETE FROM device_lists WHERE user = ?1")?.execute([user])?;
        Ok(())
    }

    // ---- processed message ids ----

    /// Whether `(remote, message_id)` was already processed.
    pub fn is_processed(&self, remote: &str, message_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM processed_messages WHERE remote = ?1 AND message_id = ?2")?.query_row(params![remote, message_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Records `(remote, message_id)` as processed; false if it already was. Keeps the newest
    /// [`DEDUPE_LIMIT`] rows.
    pub fn mark_processed(&self, remote: &str, message_id: &str, now_ms: u64) -> Result<bool, StoreError> {
        let n = self.conn.prepare_cached("INSERT INTO processed_messages (remote, message_id, processed_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?.execute(
            params![remote, message_id, i(now_ms)],
        )?;
        if n == 1 {
            self.conn.prepare_cached("DELETE FROM processed_messages WHERE seq <= (SELECT max(seq) FROM processed_messages) - ?1")?.execute(
                [DEDUPE_LIMIT],
            )?;
        }
        Ok(n == 1)
    }

    /// The outbox's expiry at `now` and claim at `claim_now` ([`crate::messaging::outbox::ops`])
    /// for `account`, inside this transaction: the consumer claims and encrypts in one trip.
    pub fn expire_and_claim(&self, account: &str, now: u64, claim_now: u64, reason: &str) -> Result<(Vec<crate::messaging::MessageId>, Option<crate::messaging::OutboxRecord>), StoreError> {
        use crate::messaging::outbox::{ops, OutboxError};
        let map = |e: OutboxError| match e {
            OutboxError::Db(d) => StoreError::Db(d),
            other => StoreError::Corrupt { table: "outbox_messages", reason: other.to_string() },
        };
        let expired = ops::expire_due(self.conn, "whatsapp", account, now, reason).map_err(map)?;
        Ok((expired, ops::claim_next(self.conn, "whatsapp", account, claim_now).map_err(map)?))
    }

    /// Stores a decoded inbound message as pending in the durable inbound queue and returns its
    /// row; call it in the transaction of [`Self::commit_inbound`] (module doc, "Commit, then ack").
    pub fn record_inbound(&self, msg: &InboundMessage, now_ms: u64) -> Result<i64, StoreError> {
        inbound_log::ops::record(self.conn, msg, now_ms).map_err(|e| match e {
            inbound_log::InboundLogError::Db(d) => StoreError::Db(d),
            inbound_log::InboundLogError::Corrupt { reason, .. } => StoreError::Corrupt { table: "inbound_messages", reason },
        })
    }

    /// Commits what one decrypted message changed (module doc, "Commit, then ack"). Call inside a
    /// transaction ([`AccountStore::commit_inbound`] or `db.transaction`): on
    /// [`CommitOutcome::Duplicate`] nothing is written.
    pub fn commit_inbound(&self, c: &InboundCommit<'_>) -> Result<CommitOutcome, StoreError> {
        if !self.mark_processed(c.remote, c.message_id, c.now_ms)? {
            return Ok(CommitOutcome::Duplicate);
        }
        self.commit_inbound_unmarked(c)
    }
}

#[path = "store_groups.rs"]
mod groups;
pub use groups::{GroupRow, OWN_SENDER};

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
