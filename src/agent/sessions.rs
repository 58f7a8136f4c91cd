//! Sessions persisted in SQLite (`<state>/agent/sessions.db`): the conversation history of each
//! session key (the [`History`] trait, bounded per session) and each session's **last route**
//! (the channel, account and chat its last inbound message came from), which `/hooks/agent`
//! uses for `channel: "last"` and `openclaw sessions list` shows.
//!
//! Every change is a committed transaction on the store's own thread ([`DbThread`]); nothing
//! here runs on an async worker. All are synced but the route ([`SessionStore::record_route`]).
//!
//! The histories of the last [`CACHED_SESSIONS`] sessions used are also kept in memory, written
//! through: a turn reads its history without a trip to the database thread (where it would wait
//! behind the route write of the same message). The cache holds what the database holds: an
//! append or reset updates it with the committed result, and drops the entry when the write
//! failed. Only the gateway process writes histories (the CLI only lists sessions).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::history::{History, HistoryError, HistoryFuture};
use super::providers::{ChatMessage, Role};
use crate::store::db::{Db, DbError, DbThread, Migration};

/// Messages kept per session by default (oldest whole exchanges dropped first).
pub const DEFAULT_MAX_MESSAGES: usize = 200;
/// Sessions whose history is kept in memory as well (see the module doc).
pub const CACHED_SESSIONS: usize = 32;

/// The schema of `sessions.db`, in order.
pub const MIGRATIONS: &[Migration] = &[Migration::sql(
    "sessions v1",
    "CREATE TABLE sessions (
        session_key TEXT PRIMARY KEY,
        channel TEXT,
        account_id TEXT,
        chat TEXT,
        peer TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        session_key TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user','assistant')),
        content TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX history_by_session ON history (session_key, seq);",
)];

/// Where a session's last inbound message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Channel id.
    pub channel: String,
    /// The account that received it.
    pub account_id: String,
    /// The chat (channel address) to answer in.
    pub chat: String,
    /// The peer's E.164 number or address.
    pub peer: String,
}

/// One row of `openclaw sessions list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// The session key.
    pub key: String,
    /// Its last route, if a channel message ever reached it.
    pub last_route: Option<Route>,
    /// Messages stored in its history.
    pub messages: u64,
    /// Unix ms of creation.
    pub created_at_ms: u64,
    /// Unix ms of the last change.
    pub updated_at_ms: u64,
}

/// Why the session store failed.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct SessionStoreError(#[from] pub DbError);

impl From<rusqlite::Error> for SessionStoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(DbError::Sqlite(e))
    }
}

/// The session store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionStore {
    db: DbThread,
    max_messages: usize,
    cache: Arc<Mutex<HashMap<String, Vec<ChatMessage>>>>,
}

fn touch(tx: &rusqlite::Transaction<'_>, key: &str, now: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO sessions (session_key, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?2)
         ON CONFLICT (session_key) DO UPDATE SET updated_at_ms = excluded.updated_at_ms")?.execute(
        params![key, now as i64],
    )?;
    Ok(())
}

impl SessionStore {
    /// Opens (creating) the store at `path`, keeping at most `max_messages` per session.
    pub fn open(path: &Path, max_messages: usize) -> Result<Self, SessionStoreError> {
        Self::with_db(Db::open(path, MIGRATIONS)?, max_messages)
    }

    /// A store in memory (tests).
    pub fn in_memory(max_messages: usize) -> Result<Self, SessionStoreError> {
        Self::with_db(Db::open_in_memory(MIGRATIONS)?, max_messages)
    }

    fn with_db(db: Db, max_messages: usize) -> Result<Self, SessionStoreError> {
        Ok(Self { db: DbThread::spawn("openclaw-sessions-db", db)?, max_messages: max_messages.max(2), cache: Arc::default() })
    }

    /// Keeps `messages` as the cached history of `key` (`None`: forget it).
    fn cache_put(&self, key: &str, messages: Option<Vec<ChatMessage>>) {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match messages {
            Some(m) => {
                if c.len() >= CACHED_SESSIONS && !c.contains_key(key) {
                    // Any one entry: a personal assistant has few sessions at once.
                    if let Some(k) = c.keys().next().cloned() {
                        c.remove(&k);
                    }
                }
                c.insert(key.to_string(), m);
            }
            None => {
                c.remove(key);
            }
        }
    }

    fn cached(&self, key: &str) -> Option<Vec<ChatMessage>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// Records `route` as the last route of `key`. The commit is not synced (it runs while the
    /// turn starts and must not compete with the reply for the disk): it survives a crash of
    /// the process at once and a power cut from the next synced commit of this file on — the
    /// turn's history append, or [`Self::sync`] when the turn ends without one.
    pub async fn record_route(&self, key: &str, route: &Route, now: u64) -> Result<(), SessionStoreError> {
        let (key, r) = (key.to_string(), route.clone());
        self.db
            .call(move |db| {
                db.transaction_unsynced(|tx| {
                    touch(tx, &key, now)?;
                    tx.prepare_cached("UPDATE sessions SET channel = ?2, account_id = ?3, chat = ?4, peer = ?5 WHERE session_key = ?1")?.execute(
                        params![key, r.channel, r.account_id, r.chat, r.peer],
                    )?;
                    Ok::<_, SessionStoreError>(())
                })
            })
            .await
    }

    /// Makes every commit so far durable (the write-ahead log's sync, off this store's thread).
    pub async fn sync(&self) -> Result<(), SessionStoreError> {
        self.db.sync().await.map_err(SessionStoreError)
    }

    /// The last route of `key`, if any.
    pub async fn last_route(&self, key: &str) -> Result<Option<Route>, SessionStoreError> {
        let key = key.to_string();
        self.db
            .call(move |db| {
                let r = db
                    .conn()
                    .prepare_cached("SELECT channel, account_id, chat, peer FROM sessions WHERE session_key = ?1 AND channel IS NOT NULL")?.query_row(
                        [key],
                        |r| Ok(Route { channel: r.get(0)?, account_id: r.get(1)?, chat: r.get(2)?, peer: r.get(3)? }),
                    )
                    .optional()?;
                Ok::<_, SessionStoreError>(r)
            })
            .await
    }

    /// Every session, most recently updated first.
    pub async fn list(&self) -> Result<Vec<SessionInfo>, SessionStoreError> {
        self.db.call(|db| list(db)).await
    }
}

/// Every session of an opened database, most recently updated first (for the CLI, which opens
/// the file itself).
pub fn list(db: &Db) -> Result<Vec<SessionInfo>, SessionStoreError> {
    let mut stmt = db.conn().prepare(
        "SELECT s.session_key, s.channel, s.account_id, s.chat, s.peer, s.created_at_ms, s.updated_at_ms,
                (SELECT count(*) FROM history h WHERE h.session_key = s.session_key)
         FROM sessions s ORDER BY s.updated_at_ms DESC, s.session_key",
    )?;
    let rows = stmt.query_map([], |r| {
        let channel: Option<String> = r.get(1)?;
        let last_route = match channel {
            Some(channel) => Some(Route {
                channel,
                account_id: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                chat: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                peer: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(SessionInfo {
            key: r.get(0)?,
            last_route,
            created_at_ms: r.get::<_, i64>(5)?.max(0) as u64,
            updated_at_ms: r.get::<_, i64>(6)?.max(0) as u64,
            messages: r.get::<_, i64>(7)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn herr(e: SessionStoreError) -> HistoryError {
    HistoryError(e.to_string())
}

/// The stored history of `key`, oldest first.
fn load_history(conn: &rusqlite::Connection, key: &str) -> Result<Vec<ChatMessage>, SessionStoreError> {
    let mut stmt = conn.prepare_cached("SELECT role, content FROM history WHERE session_key = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([key], |r| {
        let role: String = r.get(0)?;
        Ok(ChatMessage { role: if role == "user" { Role::User } else { Role::Assistant }, content: r.get(1)? })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl History for SessionStore {
    fn load<'a>(&'a self, session_key: &'a str) -> HistoryFuture<'a, Vec<ChatMessage>> {
        let key = session_key.to_string();
        Box::pin(async move {
            if let Some(m) = self.cached(&key) {
                return Ok(m);
            }
            let k = key.clone();
            let loaded = self.db.call(move |db| load_history(db.conn(), &k)).await.map_err(herr)?;
            self.cache_put(&key, Some(loaded.clone()));
            Ok(loaded)
        })
    }

    fn append<'a>(&'a self, session_key: &'a str, messages: Vec<ChatMessage>) -> HistoryFuture<'a, ()> {
        let key = session_key.to_string();
        let max = self.max_messages as i64;
        let now = now_ms();
        Box::pin(async move {
            let result = self
                .db
                .call(move |db| {
                    db.transaction(|tx| {
                        touch(tx, &key, now)?;
                        for m in &messages {
                            let role = match m.role {
                                Role::User => "user",
                                Role::Assistant => "assistant",
                            };
                            tx.prepare_cached("INSERT INTO history (session_key, role, content, at_ms) VALUES (?1, ?2, ?3, ?4)")?.execute(
                                params![key, role, m.content, now as i64],
                            )?;
                        }
                        // Keep the newest `max`, then drop leading replies so the history
                        // starts with a user message (whole exchanges).
                        tx.prepare_cached("DELETE FROM history WHERE session_key = ?1 AND seq NOT IN
                               (SELECT seq FROM history WHERE session_key = ?1 ORDER BY seq DESC LIMIT ?2)")?.execute(
                            params![key, max],
                        )?;
                        tx.prepare_cached("DELETE FROM history WHERE session_key = ?1 AND seq < coalesce(
                               (SELECT min(seq) FROM history WHERE session_key = ?1 AND role = 'user'), 0)")?.execute(
                            params![key],
                        )?;
                        load_history(tx, &key)
                    })
                })
                .await;
            match result {
                Ok(history) => {
                    self.cache_put(session_key, Some(history));
                    Ok(())
                }
                Err(e) => {
                    self.cache_put(session_key, None);
                    Err(herr(e))
                }
            }
        })
    }

    fn reset<'a>(&'a self, session_key: &'a str) -> HistoryFuture<'a, ()> {
        let key = session_key.to_string();
        Box::pin(async move {
            let result = self
                .db
                .call(move |db| {
                    db.conn().prepare_cached("DELETE FROM history WHERE session_key = ?1")?.execute([key])?;
                    Ok::<_, SessionStoreError>(())
                })
                .await;
            self.cache_put(session_key, result.as_ref().ok().map(|_| Vec::new()));
            result.map_err(herr)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(n: usize) -> Vec<ChatMessage> {
        vec![ChatMessage::user(format!("q{n}")), ChatMessage::assistant(format!("a{n}"))]
    }

    #[tokio::test]
    async fn history_persists_is_bounded_in_whole_exchanges_and_resets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent/sessions.db");
        {
            let s = SessionStore::open(&path, 5).unwrap();
            for n in 0..4 {
                s.append("k", exchange(n)).await.unwrap();
            }
            s.append("other", exchange(9)).await.unwrap();
        }
        let s = SessionStore::open(&path, 5).unwrap();
        // 5 newest would start with a reply; whole exchanges only.
        assert_eq!(s.load("k").await.unwrap(), [exchange(2), exchange(3)].concat());
        s.reset("k").await.unwrap();
        assert!(s.load("k").await.unwrap().is_empty());
        assert_eq!(s.load("other").await.unwrap(), exchange(9));
    }

    #[tokio::test]
    async fn the_cached_history_is_what_the_database_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let s = SessionStore::open(&path, 5).unwrap();
        for n in 0..4 {
            s.append("k", exchange(n)).await.unwrap();
            assert!(s.cached("k").is_some(), "cached after the append");
            // A second store over the same file reads the database itself.
            let fresh = SessionStore::open(&path, 5).unwrap();
            assert_eq!(s.load("k").await.unwrap(), fresh.load("k").await.unwrap(), "after append {n}");
        }
        s.reset("k").await.unwrap();
        assert_eq!(s.cached("k"), Some(Vec::new()));
        assert!(SessionStore::open(&path, 5).unwrap().load("k").await.unwrap().is_empty());
        // Bounded: the oldest sessions fall out of memory, not out of the database.
        for n in 0..CACHED_SESSIONS + 5 {
            s.append(&format!("s{n}"), exchange(n)).await.unwrap();
        }
        assert!(s.cache.lock().unwrap().len() <= CACHED_SESSIONS);
        for n in 0..CACHED_SESSIONS + 5 {
            assert_eq!(s.load(&format!("s{n}")).await.unwrap(), exchange(n));
        }
    }

    #[tokio::test]
    async fn last_route_and_list() {
        let s = SessionStore::in_memory(10).unwrap();
        assert_eq!(s.last_route("agent:main:main").await.unwrap(), None);
        let r = Route { channel: "whatsapp".into(), account_id: "default".into(), chat: "1@s.whatsapp.net".into(), peer: "+1".into() };
        s.record_route("agent:main:main", &r, 5).await.unwrap();
        s.append("agent:main:main", exchange(1)).await.unwrap();
        assert_eq!(s.last_route("agent:main:main").await.unwrap(), Some(r.clone()));
        let l = s.list().await.unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].key.as_str(), l[0].messages, l[0].last_route.clone()), ("agent:main:main", 2, Some(r)));
    }
}
