//! Schema migrations keyed by `PRAGMA user_version`.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::open::DbError;

/// What a migration does.
#[derive(Clone, Copy)]
enum Step {
    Sql(&'static str),
    Rust(fn(&Transaction<'_>) -> rusqlite::Result<()>),
}

/// One step of a schema's history. The list a database owner passes to [`migrate`] is append-only:
/// entry *n* (1-based) produces schema version *n*.
#[derive(Clone, Copy)]
pub struct Migration {
    /// A short name, used in errors.
    pub name: &'static str,
    step: Step,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration").field("name", &self.name).finish()
    }
}

impl Migration {
    /// A migration made of SQL statements (run with `execute_batch`).
    pub const fn sql(name: &'static str, sql: &'static str) -> Self {
        Self { name, step: Step::Sql(sql) }
    }

    /// A migration written in Rust (data conversions); it runs inside the migration's transaction.
    pub const fn rust(name: &'static str, f: fn(&Transaction<'_>) -> rusqlite::Result<()>) -> Self {
        Self { name, step: Step::Rust(f) }
    }
}

/// The schema version of a database (`PRAGMA user_version`).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies the migrations the database has not seen yet, each in its own `IMMEDIATE` transaction
/// together with the `user_version` bump, and returns the final version. A failing migration is
/// rolled back whole (its earlier statements included) and reported; the ones before it stay.
pub fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<i64, DbError> {
    let known = migrations.len();
    let found = schema_version(conn)?;
    if found < 0 || found as usize > known {
        return Err(DbError::TooNew { found, known });
    }
    for (i, m) in migrations.iter().enumerate().skip(found as usize) {
        let index = i + 1;
        let fail = |source| DbError::Migration { index, name: m.name, source };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let now = schema_version(&tx).map_err(fail)?;
        if now as usize >= index {
            continue;
        }
        match m.step {
            Step::Sql(sql) => tx.execute_batch(sql),
            Step::Rust(f) => f(&tx),
        }
        .map_err(fail)?;
        tx.pragma_update(None, "user_version", index as i64).map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::debug!(version = index, name = m.name, "database migrated");
    }
    Ok(schema_version(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::Db;

    const V1: Migration = Migration::sql("t", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);");
    const V2: Migration = Migration::sql("t.w", "ALTER TABLE t ADD COLUMN w INTEGER NOT NULL DEFAULT 0;");
    // Its first statement succeeds, its second fails: the whole migration must roll back.
    const BAD: Migration = Migration::sql("bad", "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);");

    fn tables(db: &Db) -> Vec<String> {
        let mut s = db.conn().prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").unwrap();
        s.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn applies_in_order_once_and_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.db");
        let db = Db::open(&p, &[V1]).unwrap();
        db.conn().execute("INSERT INTO t (v) VALUES ('kept')", []).unwrap();
        drop(db);
        let db = Db::open(&p, &[V1, V2]).unwrap();
        assert_eq!(schema_version(db.conn()).unwrap(), 2);
        let (v, w): (String, i64) = db.conn().query_row("SELECT v, w FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((v.as_str(), w), ("kept", 0));
        drop(db);
        // Re-opening with the same list applies nothing (V1 again would fail: table exists).
        Db::open(&p, &[V1, V2]).unwrap();
    }

    #[test]
    fn failing_migration_rolls_back_whole_and_keeps_earlier_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.db");
        let err = Db::open(&p, &[V1, BAD]).unwrap_err();
        assert!(matches!(err, DbError::Migration { index: 2, name: "bad", .. }), "{err}");
        let db = Db::open(&p, &[V1]).unwrap();
        assert_eq!(schema_version(db.conn()).unwrap(), 1);
        assert_eq!(tables(&db), vec!["t".to_string()], "the half-applied table is gone");
    }

    #[test]
    fn rust_migration_runs_in_the_transaction() {
        fn fill(tx: &Transaction<'_>) -> rusqlite::Result<()> {
            tx.execute("INSERT INTO t (v) VALUES ('from rust')", []).map(|_| ())
        }
        let db = Db::open_in_memory(&[V1, Migration::rust("fill", fill)]).unwrap();
        let v: String = db.conn().query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(v, "from rust");
    }

    #[test]
    fn newer_database_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.db");
        Db::open(&p, &[V1, V2]).unwrap();
        let err = Db::open(&p, &[V1]).unwrap_err();
        assert!(matches!(err, DbError::TooNew { found: 2, known: 1 }), "{err}");
    }
}
