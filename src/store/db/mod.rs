//! SQLite for state that changes often and must survive a crash: protocol state, the outbox, runs.
//!
//! - [`Db`] opens one database file: parent directories created 0700, the file created 0600 (SQLite
//!   gives its `-wal` and `-shm` files the same mode), WAL journal, `synchronous=FULL`, a busy
//!   timeout and foreign keys on.
//! - [`migrate`] brings a schema up to date, keyed by `PRAGMA user_version`: the owner of a database
//!   passes its ordered list of [`Migration`]s; migration *n* (1-based) is applied when
//!   `user_version < n`, in its own `IMMEDIATE` transaction together with the version bump, so a
//!   failing migration rolls back whole and leaves the previous version. A database whose version is
//!   newer than the list is refused ([`DbError::TooNew`]), never downgraded.
//! - [`Db::transaction`] runs a closure in an `IMMEDIATE` transaction: committed when it returns
//!   `Ok`, rolled back on `Err` (or a panic).
//! - [`DbThread`] owns a [`Db`] on a dedicated OS thread, for async callers; its
//!   [`DbThread::sync`] makes earlier unsynced commits durable through the file's [`WalSync`],
//!   without a slot on that thread.
//!
//! ## Why `synchronous=FULL`
//! In WAL mode, `NORMAL` survives a process crash (`kill -9`) but may lose the last commits on power
//! loss. The callers of this module promise "accepted means stored" (runs, outbox) and "acked only
//! after commit" (Signal sessions): a lost commit after a power cut would be a message acknowledged
//! to WhatsApp whose ratchet state is gone. `FULL` costs one `fsync` of the WAL per commit, which is
//! small next to a network round trip; batch writes in one transaction where throughput matters.
//!
//! ## Async callers
//! Every call here is blocking file I/O. Never call it on an async worker thread or while holding a
//! lock that `/health` takes. From async code, use [`DbThread::call`] (one dedicated thread per
//! database, which also serialises writers) or `tokio::task::spawn_blocking` with an owned [`Db`].
//! [`DbThread::call_blocking`] is for synchronous code outside the runtime's workers.
//!
//! ## Hosting several schemas in one file
//! `user_version` is one number per file, so one owner lists the migrations of a database. A module
//! whose tables can live in someone else's database (the [`crate::messaging::outbox`]) exports its
//! migrations; the host appends them to its own list once and never reorders the list.

mod migrate;
mod open;
mod thread;

pub use migrate::{migrate, schema_version, Migration};
pub use open::{Db, DbError, WalSync, BUSY_TIMEOUT};
pub use thread::DbThread;

/// Re-exported so callers name one SQLite crate version.
pub use rusqlite;
