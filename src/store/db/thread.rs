//! A database owned by one dedicated OS thread, for async callers.

use std::sync::mpsc;
use std::thread::JoinHandle;

use super::open::{Db, DbError, WalSync};

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// A handle to a [`Db`] that lives on its own thread. Jobs run one at a time, in submission order,
/// so writers are serialised without holding any lock in the caller. Cheap to clone; the thread
/// ends when the last handle is dropped.
#[derive(Clone)]
pub struct DbThread {
    tx: mpsc::Sender<Job>,
    wal: Option<std::sync::Arc<WalSync>>,
    _join: std::sync::Arc<JoinGuard>,
}

struct JoinGuard(Option<JoinHandle<()>>);

impl Drop for JoinGuard {
    fn drop(&mut self) {
        // The sender side is dropped with the last handle; the thread then drains and exits. Do not
        // join here: a drop on an async worker must not block.
        self.0.take();
    }
}

impl std::fmt::Debug for DbThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbThread").finish_non_exhaustive()
    }
}

impl DbThread {
    /// Moves `db` onto a new thread named `name`.
    pub fn spawn(name: &str, mut db: Db) -> Result<Self, DbError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let wal = db.wal();
        let join = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    // A panicking job unwinds through its own transaction guard (rolled back) and
                    // drops its reply sender, so its caller gets `JobFailed`; later jobs still run.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut db))).is_err() {
                        tracing::error!("a database job panicked; its transaction was rolled back");
                    }
                }
            })
            .map_err(|source| DbError::Create { path: name.into(), source })?;
        Ok(Self { tx, wal, _join: std::sync::Arc::new(JoinGuard(Some(join))) })
    }

    /// Makes every commit that returned before this call durable ([`Db::sync`]), on a blocking
    /// thread of the runtime rather than this database's own: the jobs queued behind it do not
    /// wait for the disk.
    pub async fn sync(&self) -> Result<(), DbError> {
        let Some(wal) = self.wal.clone() else { return Ok(()) };
        tokio::task::spawn_blocking(move || wal.sync()).await.map_err(|_| DbError::JobFailed)?
    }

    /// Runs `f` on the database thread and awaits its result. Safe on async workers: the caller's
    /// task is suspended, not its thread.
    pub async fn call<T, E>(&self, f: impl FnOnce(&mut Db) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |db| {
                let _ = reply.send(f(db));
            }))
            .map_err(|_| E::from(DbError::ThreadGone))?;
        rx.await.map_err(|_| E::from(DbError::JobFailed))?
    }

    /// Runs `f` on the database thread and blocks until it is done. For synchronous code that is
    /// not running on an async worker (see the module doc).
    pub fn call_blocking<T, E>(&self, f: impl FnOnce(&mut Db) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(Box::new(move |db| {
                let _ = reply.send(f(db));
            }))
            .map_err(|_| E::from(DbError::ThreadGone))?;
        rx.recv().map_err(|_| E::from(DbError::JobFailed))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::Migration;

    #[tokio::test]
    async fn calls_run_in_order_on_the_thread() {
        let db = Db::open_in_memory(&[Migration::sql("t", "CREATE TABLE t (v INTEGER);")]).unwrap();
        let th = DbThread::spawn("test-db", db).unwrap();
        for i in 0..10 {
            th.call(move |db| db.conn().execute("INSERT INTO t VALUES (?1)", [i]).map_err(DbError::from)).await.unwrap();
        }
        let th2 = th.clone();
        let sum: i64 = tokio::task::spawn_blocking(move || {
            th2.call_blocking(|db| db.conn().query_row("SELECT sum(v) FROM t", [], |r| r.get(0)).map_err(DbError::from))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(sum, 45);
        let name = th.call(|_| Ok::<_, DbError>(std::thread::current().name().map(str::to_string))).await.unwrap();
        assert_eq!(name.as_deref(), Some("test-db"));
    }

    #[tokio::test]
    async fn sync_runs_beside_the_thread_and_covers_an_unsynced_commit() {
        let mem = DbThread::spawn("test-db", Db::open_in_memory(&[]).unwrap()).unwrap();
        mem.sync().await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.db");
        let th = DbThread::spawn("test-db", Db::open(&path, &[Migration::sql("t", "CREATE TABLE t (v INTEGER);")]).unwrap()).unwrap();
        th.call(|db| db.transaction_unsynced(|tx| tx.execute("INSERT INTO t VALUES (7)", []).map_err(DbError::from))).await.unwrap();
        // A job that holds the database thread does not hold up the sync.
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let busy = th.call(move |_| held.recv().map_err(|_| DbError::JobFailed));
        let sync = tokio::time::timeout(std::time::Duration::from_secs(10), th.sync());
        let (busy, synced) = tokio::join!(busy, async {
            let r = sync.await;
            hold.send(()).unwrap();
            r
        });
        synced.expect("the sync did not wait for the busy thread").unwrap();
        busy.unwrap();
        let v: i64 = th.call(|db| db.conn().query_row("SELECT v FROM t", [], |r| r.get(0)).map_err(DbError::from)).await.unwrap();
        assert_eq!(v, 7);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_rolls_back() {
        let db = Db::open_in_memory(&[Migration::sql("t", "CREATE TABLE t (v INTEGER);")]).unwrap();
        let th = DbThread::spawn("test-db", db).unwrap();
        let r: Result<(), DbError> = th
            .call(|db| {
                db.transaction(|tx| {
                    tx.execute("INSERT INTO t VALUES (1)", [])?;
                    panic!("boom")
                })
            })
            .await;
        assert!(matches!(r, Err(DbError::JobFailed)), "{r:?}");
        let n: i64 = th.call(|db| db.conn().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(DbError::from)).await.unwrap();
        assert_eq!(n, 0, "the panicking job's insert was rolled back and the thread lives on");
    }
}
