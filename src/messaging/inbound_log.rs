//! The durable inbound queue: a received message is stored in the same transaction as the
//! channel's own "processed" commit, handed to the [`InboundSink`] after that commit, and stays
//! `pending` until the consumer confirms it with [`Receipt::handled`].
//!
//! ```text
//! channel commit (session, dedupe row, + ops::record) ─> pending ──Receipt::handled──> handled
//!                                                           └── process start / reconnect:
//!                                                               InboundLog::redeliver (in order)
//! ```
//! - **No loss between commit and hand-off**: a crash after the channel's commit (which marks the
//!   message processed, so the server's redelivery is only acknowledged) leaves the row `pending`;
//!   [`InboundLog::redeliver`] hands it to the consumer at the next start.
//! - **Once per process**: a row handed out and not yet confirmed is *in flight*; a reconnect
//!   redelivers only the pending rows that are not in flight, so the consumer sees a message once
//!   per process, and again after a restart only if it never confirmed it.
//! - **Bounded retention**: a handled row keeps only its id and times (the message body is
//!   cleared) and is deleted once [`HANDLED_KEEP`] newer messages were received; a pending row
//!   [`PENDING_LIMIT`] messages old is dropped unconfirmed (an error is logged), so at most that
//!   many wait.
//!
//! Like the [`crate::messaging::outbox`], the table (`inbound_messages`) comes with
//! [`MIGRATIONS`] so a channel account's database hosts it, and the functions in [`ops`] take a
//! `&Connection` so a host writes a row inside its own transaction. Time is passed in.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use super::sink::InboundSink;
use super::types::InboundMessage;
use crate::store::db::{DbError, DbThread, Migration};

/// The inbound-queue schema (append-only; hosts append this list to theirs).
pub const MIGRATIONS: &[Migration] = &[Migration::sql(
    "inbound queue v1",
    "CREATE TABLE inbound_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        account_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        message TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending','handled')),
        received_at_ms INTEGER NOT NULL,
        handled_at_ms INTEGER
    );
    CREATE INDEX inbound_by_state ON inbound_messages (state, seq);",
)];

/// A handled row (id and times only) is deleted once this many newer messages were received.
pub const HANDLED_KEEP: i64 = 1_000;
/// A pending row this many messages old is dropped unconfirmed (logged): at most this many wait.
pub const PENDING_LIMIT: i64 = 10_000;

/// Why an inbound-queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InboundLogError {
    /// The database failed; nothing was changed.
    #[error("inbound queue: {0}")]
    Db(#[from] DbError),
    /// A stored message could not be encoded or decoded.
    #[error("inbound queue row {seq} is corrupt: {reason}")]
    Corrupt {
        /// The row.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

impl From<rusqlite::Error> for InboundLogError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::Sqlite(e))
    }
}

/// The synchronous steps, on a connection or inside a host's transaction.
pub mod ops {
    use super::*;

    fn i(v: u64) -> i64 {
        v.min(i64::MAX as u64) as i64
    }

    /// Stores `msg` as `pending` and returns its sequence number. Call it inside the transaction
    /// that marks the message processed, so both are committed or neither.
    pub fn record(conn: &Connection, msg: &InboundMessage, now_ms: u64) -> Result<i64, InboundLogError> {
        let json = serde_json::to_string(msg).map_err(|e| InboundLogError::Corrupt { seq: 0, reason: e.to_string() })?;
        conn.prepare_cached("INSERT INTO inbound_messages (channel, account_id, message_id, message, state, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5)")?.execute(
            params![msg.channel, msg.account_id, msg.id.as_str(), json, i(now_ms)],
        )?;
        let seq = conn.last_insert_rowid();
        let over = conn.prepare_cached("UPDATE inbound_messages SET state = 'handled', message = NULL, handled_at_ms = ?2
             WHERE state = 'pending' AND seq <= ?1")?.execute(
            params![seq - PENDING_LIMIT, i(now_ms)],
        )?;
        if over > 0 {
            tracing::error!(dropped = over, limit = PENDING_LIMIT, "inbound queue over its bound; oldest unconfirmed messages dropped");
        }
        Ok(seq)
    }

    /// `pending → handled` (the body is cleared); false when the row is not pending (already
    /// handled, or pruned). Deletes handled rows [`HANDLED_KEEP`] messages old.
    pub fn mark_handled(conn: &Connection, seq: i64, now_ms: u64) -> Result<bool, InboundLogError> {
        let n = conn.prepare_cached("UPDATE inbound_messages SET state = 'handled', message = NULL, handled_at_ms = ?2 WHERE seq = ?1 AND state = 'pending'")?.execute(
            params![seq, i(now_ms)],
        )?;
        if n == 1 {
            conn.prepare_cached("DELETE FROM inbound_messages WHERE state = 'handled'
                 AND seq <= (SELECT max(seq) FROM inbound_messages) - ?1")?.execute(
                [HANDLED_KEEP],
            )?;
        }
        Ok(n == 1)
    }

    /// The pending messages in order, at most `limit`, skipping the sequence numbers in `skip`.
    pub fn pending(conn: &Connection, limit: usize, skip: &BTreeSet<i64>) -> Result<Vec<(i64, InboundMessage)>, InboundLogError> {
        let mut st = conn.prepare_cached("SELECT seq, message FROM inbound_messages WHERE state = 'pending' ORDER BY seq")?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            if out.len() >= limit {
                break;
            }
            let seq: i64 = r.get(0)?;
            if skip.contains(&seq) {
                continue;
            }
            let json: Option<String> = r.get(1)?;
            let corrupt = |reason: String| InboundLogError::Corrupt { seq, reason };
            let msg = serde_json::from_str(json.as_deref().unwrap_or("")).map_err(|e| corrupt(e.to_string()))?;
            out.push((seq, msg));
        }
        Ok(out)
    }

    /// `(pending, handled)` row counts.
    pub fn counts(conn: &Connection) -> Result<(u64, u64), InboundLogError> {
        Ok(conn.prepare_cached("SELECT coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'handled'), 0) FROM inbound_messages")?.query_row(
            [],
            |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64)),
        )?)
    }

    /// The state of row `seq`, if it is still kept (`"pending"` or `"handled"`).
    pub fn state(conn: &Connection, seq: i64) -> Result<Option<String>, InboundLogError> {
        Ok(conn.prepare_cached("SELECT state FROM inbound_messages WHERE seq = ?1")?.query_row([seq], |r| r.get(0)).optional()?)
    }
}

/// The inbound queue of one host database, over its [`DbThread`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct InboundLog {
    thread: DbThread,
    in_flight: Arc<Mutex<BTreeSet<i64>>>,
}

impl InboundLog {
    /// The queue hosted in `thread`'s database (its schema must include [`MIGRATIONS`]).
    pub fn new(thread: DbThread) -> Self {
        Self { thread, in_flight: Arc::default() }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The confirmation handle of row `seq` (committed by the caller), marked in flight.
    pub fn receipt(&self, seq: i64) -> Receipt {
        self.in_flight().insert(seq);
        Receipt { log: Some(self.clone()), seq }
    }

    /// Hands `msg` (stored as row `seq`, committed) to `sink`, waiting for room. When the
    /// consumer is gone the row stays pending for the next start.
    pub async fn hand_off(&self, sink: &InboundSink, seq: i64, msg: InboundMessage) -> bool {
        let receipt = self.receipt(seq);
        if sink.push_tracked(msg, receipt).await.is_ok() {
            return true;
        }
        self.in_flight().remove(&seq);
        false
    }

    /// Hands every pending message that is not in flight to `sink`, in order (at start and on
    /// reconnect); returns how many were handed over.
    pub async fn redeliver(&self, sink: &InboundSink) -> Result<usize, InboundLogError> {
        let mut n = 0;
        loop {
            let skip = self.in_flight().clone();
            let batch = self.thread.call(move |db| ops::pending(db.conn(), 64, &skip)).await?;
            if batch.is_empty() {
                return Ok(n);
            }
            for (seq, msg) in batch {
                if !self.hand_off(sink, seq, msg).await {
                    return Ok(n);
                }
                n += 1;
            }
        }
    }

    /// Marks row `seq` handled (see [`Receipt::handled`]), in a transaction that is **not
    /// synced**: the consumer's next step does not wait for the disk. The host's database also
    /// holds the outbox (the WhatsApp account store), so the synced commit before any reply
    /// leaves makes the mark durable first; a mark lost to a power cut before that is a message
    /// whose answer never left, handed out again at the next start and answered then (a message
    /// that gets no answer is decided again, to the same effect).
    pub async fn handled(&self, seq: i64, now_ms: u64) -> Result<bool, InboundLogError> {
        let r = self.thread.call(move |db| db.transaction_unsynced(|tx| ops::mark_handled(tx, seq, now_ms))).await;
        if r.is_ok() {
            self.in_flight().remove(&seq);
        }
        r
    }

    /// `(pending, handled)` row counts.
    pub async fn counts(&self) -> Result<(u64, u64), InboundLogError> {
        self.thread.call(|db| ops::counts(db.conn())).await
    }
}

/// How a consumer confirms one inbound message: call [`Receipt::handled`] once the routing
/// decision and its effects are stored. Dropping it unconfirmed leaves the message pending: it is
/// handed out again after a restart (not within this process).
#[derive(Debug)]
#[must_use = "confirm the message with `handled` once its effects are stored"]
pub struct Receipt {
    log: Option<InboundLog>,
    seq: i64,
}

impl Receipt {
    /// A receipt for a message that is not stored (nothing to confirm).
    pub fn untracked() -> Self {
        Self { log: None, seq: 0 }
    }

    /// The stored row, if the message is tracked.
    pub fn seq(&self) -> Option<i64> {
        self.log.as_ref().map(|_| self.seq)
    }

    /// Confirms the message: it is never handed out again. Idempotent.
    pub async fn handled(self) -> Result<(), InboundLogError> {
        match &self.log {
            Some(log) => log.handled(self.seq, crate::util::clock::unix_ms()).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::sink::inbound_queue;
    use crate::messaging::sink::tests::msg;
    use crate::store::db::Db;

    fn db_at(p: &std::path::Path) -> Db {
        Db::open(p, MIGRATIONS).unwrap()
    }

    #[tokio::test]
    async fn pending_rows_are_redelivered_in_order_once_per_process_until_handled() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("q.db");
        let mut db = db_at(&p);
        for i in 1..=3 {
            db.transaction(|tx| ops::record(tx, &msg(i), 10)).unwrap();
        }
        let log = InboundLog::new(DbThread::spawn("t", db).unwrap());
        let (sink, mut rx) = inbound_queue(8);
        assert_eq!(log.redeliver(&sink).await.unwrap(), 3);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv_tracked().await.unwrap());
        }
        assert_eq!(got.iter().map(|(m, _)| m.id.as_str()).collect::<Vec<_>>(), ["m1", "m2", "m3"]);
        // A reconnect within the process does not hand out what is in flight.
        assert_eq!(log.redeliver(&sink).await.unwrap(), 0);
        let (_m1, r1) = got.remove(0);
        r1.handled().await.unwrap();
        assert_eq!(log.counts().await.unwrap(), (2, 1));
        drop(got);
        drop((log, sink, rx));

        // "Restart": the two unconfirmed ones come back, in order; the handled one never does.
        let log = InboundLog::new(DbThread::spawn("t", db_at(&p)).unwrap());
        let (sink, mut rx) = inbound_queue(8);
        assert_eq!(log.redeliver(&sink).await.unwrap(), 2);
        let (a, ra) = rx.recv_tracked().await.unwrap();
        let (b, rb) = rx.recv_tracked().await.unwrap();
        assert_eq!((a.id.as_str(), b.id.as_str()), ("m2", "m3"));
        assert_eq!(a, msg(2), "the stored message is the one received");
        let seq = ra.seq().unwrap();
        ra.handled().await.unwrap();
        rb.handled().await.unwrap();
        assert_eq!(log.counts().await.unwrap(), (0, 3));
        // A handled row keeps no body.
        let body: Option<String> = log
            .thread
            .call(move |db| db.conn().query_row("SELECT message FROM inbound_messages WHERE seq = ?1", [seq], |r| r.get(0)).map_err(DbError::from))
            .await
            .unwrap();
        assert_eq!(body, None);
        assert_eq!(log.redeliver(&sink).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_closed_consumer_leaves_the_row_pending_for_the_next_hand_off() {
        let db = Db::open_in_memory(MIGRATIONS).unwrap();
        let seq = ops::record(db.conn(), &msg(1), 1).unwrap();
        let log = InboundLog::new(DbThread::spawn("t", db).unwrap());
        let (sink, rx) = inbound_queue(1);
        drop(rx);
        assert!(!log.hand_off(&sink, seq, msg(1)).await);
        let (sink, mut rx) = inbound_queue(1);
        assert_eq!(log.redeliver(&sink).await.unwrap(), 1, "not stuck in flight after a failed hand-off");
        assert_eq!(rx.recv().await.unwrap().id.as_str(), "m1");
    }

    #[test]
    fn retention_is_bounded() {
        let db = Db::open_in_memory(MIGRATIONS).unwrap();
        let c = db.conn();
        let n = HANDLED_KEEP + 5;
        for i in 0..n {
            let seq = ops::record(c, &msg(i as u32), 1).unwrap();
            assert!(ops::mark_handled(c, seq, 2).unwrap());
            assert!(!ops::mark_handled(c, seq, 2).unwrap(), "idempotent");
        }
        assert_eq!(ops::counts(c).unwrap(), (0, HANDLED_KEEP as u64));
        assert_eq!(ops::state(c, 1).unwrap(), None, "the oldest handled rows are gone");
        assert_eq!(ops::state(c, n).unwrap().as_deref(), Some("handled"));
        for i in 0..PENDING_LIMIT + 3 {
            ops::record(c, &msg(i as u32), 3).unwrap();
        }
        assert_eq!(ops::counts(c).unwrap().0, PENDING_LIMIT as u64, "pending rows are bounded too");
        let first = ops::pending(c, 1, &BTreeSet::new()).unwrap();
        assert_eq!(first[0].1.id.as_str(), "m3", "the oldest pending rows were dropped first");
    }
}
