//! Opening a database file with the pragmas every database here uses.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::migrate::{migrate, Migration};

/// How long a statement waits for another connection's lock before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (rusqlite's default is 16; the account store alone
/// has more hot statements than that).
const STATEMENT_CACHE: usize = 128;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Creating the directory or the file failed.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused to open the file or to set a pragma.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The file's schema is newer than this program knows.
    #[error("database schema version {found} is newer than this program supports ({known}); refusing to open it")]
    TooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// Number of migrations this program knows.
        known: usize,
    },
    /// A migration failed; it was rolled back whole and the version is still `index - 1`.
    #[error("migration {index} ({name}) failed and was rolled back: {source}")]
    Migration {
        /// 1-based position in the list (the version it would have produced).
        index: usize,
        /// Its name.
        name: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database thread has stopped.
    #[error("the database thread has stopped")]
    ThreadGone,
    /// The job panicked on the database thread (its transaction was rolled back).
    #[error("a database operation panicked and was rolled back")]
    JobFailed,
    /// Syncing the write-ahead log to disk failed: the unsynced commits before it may not
    /// survive a power cut.
    #[error("cannot sync {path} to disk: {source}")]
    Sync {
        /// The write-ahead log file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One open database connection with this project's pragmas and an up-to-date schema.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    path: Option<PathBuf>,
    /// The write-ahead log, to sync (see [`WalSync`]); `None` in memory.
    wal: Option<std::sync::Arc<WalSync>>,
}

/// The write-ahead log (`<file>-wal`) of one database file, to make its commits durable from
/// any thread: syncing it needs no access to the connection, so a sync can run beside the next
/// job on the database's thread (see [`crate::store::db::DbThread::sync`]).
#[derive(Debug)]
pub struct WalSync {
    path: PathBuf,
    /// Opened at the first sync that finds the log.
    file: std::sync::Mutex<Option<std::sync::Arc<fs::File>>>,
}

impl WalSync {
    fn new(db: &Path) -> Self {
        let mut path = db.to_path_buf().into_os_string();
        path.push("-wal");
        Self { path: PathBuf::from(path), file: std::sync::Mutex::new(None) }
    }

    /// Syncs the log to disk: every commit that returned before this call is durable after it
    /// (frames are appended in order, so one sync covers all before it). Nothing to do when no
    /// log exists yet (nothing was written).
    pub fn sync(&self) -> Result<(), DbError> {
        let fail = |source| DbError::Sync { path: self.path.clone(), source };
        let file = {
            let mut slot = self.file.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(f) => f.clone(),
                None => match OpenOptions::new().read(true).write(true).open(&self.path) {
                    Ok(f) => slot.insert(std::sync::Arc::new(f)).clone(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(fail(e)),
                },
            }
        };
        file.sync_data().map_err(fail)
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies `migrations`.
    ///
    /// Missing parent directories are created with mode 0700 and a new file with mode 0600; an
    /// existing file with group or other bits is tightened to 0600.
    pub fn open(path: &Path, migrations: &[Migration]) -> Result<Self, DbError> {
        let create = |source| DbError::Create { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(create)?;
        }
        // Create the file ourselves so it is 0600 from its first byte; SQLite copies this mode to
        // the -wal and -shm files it creates.
        let existed = path.exists();
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).map_err(create)?;
        if !existed {
            // Make the new directory entry durable before anything is committed into the file.
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(create)?;
        }
        let meta = f.metadata().map_err(create)?;
        if meta.permissions().mode() & 0o077 != 0 {
            f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(create)?;
            tracing::warn!(path = %path.display(), "database file was readable by others; tightened to 0600");
        }
        drop(f);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| DbError::Open { path: path.to_path_buf(), source })?;
        let mut db = Self { conn, path: Some(path.to_path_buf()), wal: Some(std::sync::Arc::new(WalSync::new(path))) };
        db.configure(true).map_err(|source| DbError::Open { path: path.to_path_buf(), source })?;
        migrate(&mut db.conn, migrations)?;
        Ok(db)
    }

    /// A private in-memory database with the same pragmas (except WAL) and `migrations` applied;
    /// for tests and for registries that need no persistence.
    pub fn open_in_memory(migrations: &[Migration]) -> Result<Self, DbError> {
        let conn = Connection::open_in_memory().map_err(|source| DbError::Open { path: ":memory:".into(), source })?;
        let mut db = Self { conn, path: None, wal: None };
        db.configure(false).map_err(|source| DbError::Open { path: ":memory:".into(), source })?;
        migrate(&mut db.conn, migrations)?;
        Ok(db)
    }

    fn configure(&mut self, wal: bool) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // The hot paths (receive, outbox, runs, sessions) use `prepare_cached`: parsing and
        // planning their statements anew was a fifth to a quarter of the store thread's time
        // in a turn.
        self.conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Without the query planner stability guarantee, a statement whose WHERE compares an
        // indexed column with a parameter is marked to be planned again for new bindings, and
        // the cache's clearing of the bindings expires it: every cached use was parsed and
        // planned again (SQLite's reprepare counter: one per use). Our queries do not need
        // plans that depend on the bound values.
        self.conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        if wal {
            let mode: String = self.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(rusqlite::Error::InvalidParameterName(format!("journal_mode is {mode}, expected wal")));
            }
        }
        self.conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        Ok(())
    }

    /// The file this database lives in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection, for reads and single statements (each is its own transaction).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in an `IMMEDIATE` transaction (the write lock is taken at the start, so two writers
    /// never deadlock on a lock upgrade): committed when `f` returns `Ok`, rolled back otherwise.
    pub fn transaction<T, E>(&mut self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| E::from(DbError::Sqlite(e)))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| E::from(DbError::Sqlite(e)))?;
        Ok(out)
    }

    /// Like [`Db::transaction`], but the commit is not synced to disk (`synchronous=NORMAL` for
    /// this one commit). It survives a crash of the process at once, and a power cut from the
    /// next synced commit of this database on: WAL frames are appended in order and that commit
    /// syncs the whole file. Only for a step that nobody outside relies on until such a commit
    /// follows; the caller documents which commit that is.
    pub fn transaction_unsynced<T, E>(&mut self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DbError>,
    {
        self.set_synchronous_full(false).map_err(|e| E::from(DbError::Sqlite(e)))?;
        let out = self.transaction(f);
        // Back to FULL before anything else commits here, whatever `f` returned.
        self.set_synchronous_full(true).map_err(|e| E::from(DbError::Sqlite(e)))?;
        out
    }

    /// `PRAGMA synchronous=FULL` or `NORMAL`, through the statement cache (twice per unsynced
    /// commit).
    fn set_synchronous_full(&self, full: bool) -> rusqlite::Result<()> {
        let sql = if full { "PRAGMA synchronous=FULL" } else { "PRAGMA synchronous=NORMAL" };
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    /// Makes every commit so far durable, unsynced ones included: syncs the write-ahead log
    /// (`<file>-wal`) to disk, which is what a synced commit does after writing its frames
    /// (frames are appended in order, so one sync covers all before it). For a step that must
    /// come before an external effect but need not delay the work after an unsynced commit.
    /// Nothing to do in memory, or when no write-ahead log exists (nothing was written).
    pub fn sync(&mut self) -> Result<(), DbError> {
        self.wal.as_ref().map_or(Ok(()), |w| w.sync())
    }

    /// A handle to this database's write-ahead log for syncing it from another thread (`None`
    /// in memory).
    pub fn wal(&self) -> Option<std::sync::Arc<WalSync>> {
        self.wal.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::schema_version;

    const M: &[Migration] = &[
        Migration::sql("create t", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);"),
        Migration::sql("create u", "CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER NOT NULL REFERENCES t(id));"),
    ];

    #[test]
    fn an_unsynced_transaction_commits_and_leaves_the_connection_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.db");
        let mut db = Db::open(&path, M).unwrap();
        db.transaction_unsynced(|tx| tx.execute("INSERT INTO t (v) VALUES ('a')", []).map_err(DbError::from)).unwrap();
        let failed: Result<(), DbError> = db.transaction_unsynced(|tx| {
            tx.execute("INSERT INTO t (v) VALUES ('rolled back')", [])?;
            Err(DbError::Sqlite(rusqlite::Error::InvalidQuery))
        });
        assert!(failed.is_err());
        let sync: i64 = db.conn().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL again after both");
        drop(db);
        let db = Db::open(&path, M).unwrap();
        let vs: Vec<String> = db.conn().prepare("SELECT v FROM t").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(vs, ["a"]);
    }

    #[test]
    fn sync_covers_an_unsynced_commit_and_is_a_no_op_without_a_log() {
        let mut mem = Db::open_in_memory(M).unwrap();
        mem.sync().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.db");
        let mut db = Db::open(&path, M).unwrap();
        db.transaction_unsynced(|tx| tx.execute("INSERT INTO t (v) VALUES ('a')", []).map_err(DbError::from)).unwrap();
        let wal = tmp.path().join("x.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the commit is in the write-ahead log");
        db.sync().unwrap();
        let wal = db.wal().expect("a file database has a log");
        assert!(wal.file.lock().unwrap().is_some(), "the log stays open for the next sync");
        // From another thread, beside the connection.
        std::thread::spawn(move || wal.sync()).join().unwrap().unwrap();
        db.sync().unwrap();
    }

    #[test]
    fn a_cached_statement_is_not_planned_again_for_new_bindings() {
        let m = [Migration::sql(
            "t",
            "CREATE TABLE t (seq INTEGER PRIMARY KEY, k TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('p', 'd')));
             CREATE INDEX t_by_state ON t (k, state, seq);",
        )];
        let db = Db::open_in_memory(&m).unwrap();
        for _ in 0..20 {
            db.conn().execute("INSERT INTO t (k, state) VALUES ('a', 'p')", []).unwrap();
        }
        // The outbox's claim has this shape: an indexed equality on a parameter.
        let sql = "SELECT seq FROM t WHERE k = ?1 AND state = 'p' AND seq > ?2 ORDER BY seq LIMIT 1";
        for after in 0..5i64 {
            let seq: i64 = db.conn().prepare_cached(sql).unwrap().query_row(rusqlite::params!["a", after], |r| r.get(0)).unwrap();
            assert_eq!(seq, after + 1);
        }
        let reprepared = db.conn().prepare_cached(sql).unwrap().get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(reprepared, 0, "the cached statement was parsed and planned again");
    }

    #[test]
    fn open_creates_private_file_and_dirs_with_pragmas() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/x.db");
        let db = Db::open(&path, M).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        db.conn().execute("INSERT INTO t (v) VALUES ('x')", []).unwrap();
        for suffix in ["-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&p), 0o600, "{suffix}");
        }
        let jm: String = db.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(jm, "wal");
        let sync: i64 = db.conn().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL");
        let fk: i64 = db.conn().query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
        assert_eq!(schema_version(db.conn()).unwrap(), 2);
        // Foreign keys are enforced.
        assert!(db.conn().execute("INSERT INTO u (t_id) VALUES (999)", []).is_err());
    }

    #[test]
    fn open_tightens_a_world_readable_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.db");
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Db::open(&path, M).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn transaction_commits_on_ok_and_rolls_back_on_err() {
        let mut db = Db::open_in_memory(M).unwrap();
        db.transaction(|tx| tx.execute("INSERT INTO t (v) VALUES ('a')", []).map_err(DbError::from)).unwrap();
        let r: Result<(), DbError> = db.transaction(|tx| {
            tx.execute("INSERT INTO t (v) VALUES ('b')", [])?;
            Err(DbError::ThreadGone)
        });
        assert!(r.is_err());
        let n: i64 = db.conn().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn garbage_file_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.db");
        fs::write(&path, vec![0x42u8; 8192]).unwrap();
        assert!(Db::open(&path, M).is_err());
    }
}
