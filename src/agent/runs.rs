//! The run registry: hooks and the control protocol submit runs here; a worker moves them through
//! `queued → running → done | sending | failed`, and a `sending` run (its reply's parts are in an
//! outbox) becomes `delivered` or `failed` once the executor's
//! [`RunExecutor::follow_delivery`] settles its parts.
//!
//! Runs live in SQLite (`<state>/agent/runs.db`, see [`crate::store::db`]). **Accepted means
//! committed**: [`RunRegistry::submit`] returns a runId only after the row (and the hash of its
//! idempotency key) is committed, so the same key after a restart or a `kill -9` answers the same
//! runId and makes no new run.
//!
//! ## Recovery rule at startup
//! - A run left `queued` never started: it is kept `queued` and executed by the new worker (the
//!   caller was promised it would run).
//! - A run left `sending` has its parts in a persistent outbox: the new worker follows them again.
//! - A run left `running` may already have talked to a provider or delivered part of a reply:
//!   re-running it could answer twice, so it is marked `failed` with
//!   [`INTERRUPTED_BY_RESTART`] (at most once, visible in `GET /hooks/runs/{id}`).
//!
//! ## Bounded records (issue 14 item 8)
//! Idempotency keys are stored as their SHA-256 (32 bytes, whatever the key's length);
//! `sessionKey`, `agentId` and the delivery target longer than [`MAX_SESSION_KEY_BYTES`] /
//! [`MAX_AGENT_ID_BYTES`] / [`MAX_TARGET_BYTES`] are refused with [`SubmitError::Invalid`]; a finished run keeps the first
//! [`RETAINED_MESSAGE_CHARS`] characters of its message; at most `retention` finished runs are
//! kept (unfinished runs are never dropped). Nothing per run is held in memory.
//!
//! ## Threads
//! Database work runs on a dedicated thread ([`DbThread`]). [`RunRegistry::submit_async`] and
//! [`RunRegistry::get_async`] await it; the synchronous [`RunRegistry::submit`] and
//! [`RunRegistry::get`] (kept for existing callers) wait inside `tokio::task::block_in_place` on a
//! multi-thread runtime, so other tasks move off the worker while the commit runs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::store::db::{Db, DbError, DbThread, Migration};

/// How many finished runs are kept for `GET /hooks/runs/{id}` before the oldest are dropped.
pub const DEFAULT_RETENTION: usize = 20_000;
/// How many unfinished runs may wait for the worker before admission answers "busy".
pub const QUEUE_CAPACITY: usize = 65_536;
/// Longest accepted `sessionKey`, in bytes.
pub const MAX_SESSION_KEY_BYTES: usize = 512;
/// Longest accepted `agentId`, in bytes.
pub const MAX_AGENT_ID_BYTES: usize = 128;
/// Longest accepted delivery `channel` or `to`, in bytes.
pub const MAX_TARGET_BYTES: usize = 512;
/// How many characters of its message a finished run keeps.
pub const RETAINED_MESSAGE_CHARS: usize = 1_000;
/// The error of a run that was executing when the process stopped.
pub const INTERRUPTED_BY_RESTART: &str =
    "interrupted by restart: the run was executing when the gateway stopped; it was not retried, to avoid a duplicate reply";
/// How many runs the worker claims at a time. One: a run is `running` only while it executes, so
/// a crash marks as interrupted only the runs that were executing, and queued runs resume.
const BATCH: usize = 1;
/// How many runs execute at once, across sessions (upstream's `agents.defaults.maxConcurrent`
/// is not in this gateway's config; this is its documented default here, the same as the
/// agent's global turn limit [`crate::agent::turn::DEFAULT_MAX_CONCURRENT`]). Runs of one
/// session key execute one at a time, in order.
pub const RUN_CONCURRENCY: usize = crate::agent::turn::DEFAULT_MAX_CONCURRENT;

/// The schema of `runs.db`, in order (see [`crate::store::db::migrate`]).
pub const MIGRATIONS: &[Migration] = &[
    Migration::sql(
    "runs v1",
    "CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued','running','done','delivered','failed')),
        message TEXT NOT NULL,
        message_truncated INTEGER NOT NULL DEFAULT 0,
        agent_id TEXT,
        session_key TEXT,
        channel TEXT,
        target TEXT,
        origin TEXT NOT NULL,
        idem_hash BLOB UNIQUE,
        provider TEXT,
        model TEXT,
        error TEXT,
        created_at_ms INTEGER NOT NULL,
        started_at_ms INTEGER,
        finished_at_ms INTEGER
    );
    CREATE INDEX runs_by_state ON runs (state, seq);",
    ),
    // v2: the delivering account and the reply text (for `openclaw agent` and `GET …/runs/{id}`).
    Migration::sql("runs v2", "ALTER TABLE runs ADD COLUMN account_id TEXT; ALTER TABLE runs ADD COLUMN reply TEXT;"),
    // v3: state `sending` (the reply's parts are in the outbox, not yet acknowledged by the
    // server), the parts' message ids and their outbox deadline. SQLite cannot change a CHECK
    // constraint in place, so the table is rebuilt (same rows, same seq).
    Migration::sql(
        "runs v3",
        "CREATE TABLE runs_v3 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued','running','sending','done','delivered','failed')),
            message TEXT NOT NULL,
            message_truncated INTEGER NOT NULL DEFAULT 0,
            agent_id TEXT,
            session_key TEXT,
            channel TEXT,
            target TEXT,
            origin TEXT NOT NULL,
            idem_hash BLOB UNIQUE,
            provider TEXT,
            model TEXT,
            error TEXT,
            created_at_ms INTEGER NOT NULL,
            started_at_ms INTEGER,
            finished_at_ms INTEGER,
            account_id TEXT,
            reply TEXT,
            parts TEXT,
            delivery_deadline_ms INTEGER
        );
        INSERT INTO runs_v3 (seq, run_id, kind, state, message, message_truncated, agent_id, session_key, channel, target,
                             origin, idem_hash, provider, model, error, created_at_ms, started_at_ms, finished_at_ms,
                             account_id, reply)
            SELECT seq, run_id, kind, state, message, message_truncated, agent_id, session_key, channel, target,
                   origin, idem_hash, provider, model, error, created_at_ms, started_at_ms, finished_at_ms,
                   account_id, reply FROM runs;
        DROP TABLE runs;
        ALTER TABLE runs_v3 RENAME TO runs;
        CREATE INDEX runs_by_state ON runs (state, seq);",
    ),
];

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Accepted, waiting for the worker.
    Queued,
    /// Being executed.
    Running,
    /// The turn finished and its reply's parts are in the account's outbox, waiting for the
    /// server's acknowledgement (also while the account is disconnected, until
    /// `deliveryDeadlineMs`).
    Sending,
    /// Finished successfully with nothing to deliver.
    Done,
    /// Finished and every part of its reply was acknowledged by the channel's server.
    Delivered,
    /// Finished with an error (see `error`).
    Failed,
}

impl RunState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "sending" => Self::Sending,
            "done" => Self::Done,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// What kind of run it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// An agent turn (`/hooks/agent`, `agent`).
    Agent,
    /// A wake event (`/hooks/wake`, `wake`).
    Wake,
}

impl RunKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Wake => "wake",
        }
    }
}

/// Where a run's reply goes (resolved before the run is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Channel id.
    pub channel: String,
    /// Recipient.
    pub to: String,
    /// The sending account (`None`: the channel's default account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// A request to run something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// Agent turn or wake.
    pub kind: RunKind,
    /// The message (agent) or text (wake).
    pub message: String,
    /// Target agent, if given (at most [`MAX_AGENT_ID_BYTES`]).
    pub agent_id: Option<String>,
    /// Session key, if given (at most [`MAX_SESSION_KEY_BYTES`]).
    pub session_key: Option<String>,
    /// Where to deliver the reply, if anywhere.
    pub delivery: Option<Delivery>,
    /// Where the request came from (`hook`, `ws`).
    pub origin: &'static str,
}

/// The recorded state of one run (the JSON of `GET /hooks/runs/{id}` and `agent.run.get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The run id (a UUID).
    pub run_id: String,
    /// Agent or wake.
    pub kind: RunKind,
    /// Current state.
    pub state: RunState,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Target agent.
    pub agent_id: Option<String>,
    /// Session key.
    pub session_key: Option<String>,
    /// Delivery target.
    pub delivery: Option<Delivery>,
    /// Where it came from.
    pub origin: String,
    /// Unix ms of admission.
    pub created_at_ms: u64,
    /// Unix ms of completion.
    pub finished_at_ms: Option<u64>,
    /// The message (agent) or text (wake); cut to [`RETAINED_MESSAGE_CHARS`] once finished.
    pub message: String,
    /// True when `message` was cut after the run finished.
    pub message_truncated: bool,
    /// Unix ms when the worker started it.
    pub started_at_ms: Option<u64>,
    /// The provider that served the run (`models.providers.<id>`), once known.
    pub provider: Option<String>,
    /// The model that served the run, once known.
    pub model: Option<String>,
    /// The reply text, once the run finished with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// The outbox message ids of the reply's parts, in order, once stored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// Unix ms after which parts still unsent expire (while `sending`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_deadline_ms: Option<u64>,
}

/// Totals since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounters {
    /// Runs accepted (each has a runId).
    pub accepted: u64,
    /// Replays answered with an earlier runId.
    pub replayed: u64,
    /// Runs finished `done` or `delivered` (a `sending` run counts once it is delivered).
    pub done: u64,
    /// Runs finished `failed`.
    pub failed: u64,
    /// Runs found `queued` at startup and executed by this process.
    pub recovered: u64,
    /// Runs found `running` at startup and marked failed ([`INTERRUPTED_BY_RESTART`]).
    pub interrupted: u64,
}

/// Why a run was not admitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full; retry later.
    #[error("run queue is full; retry shortly")]
    Busy,
    /// The worker has stopped (the gateway is shutting down).
    #[error("the gateway is shutting down")]
    Closed,
    /// The request is malformed (a field too long); the text says which.
    #[error("{0}")]
    Invalid(String),
    /// The run could not be stored, so it was not accepted.
    #[error("the run could not be stored, so it was not accepted: {0}")]
    Store(String),
}

impl From<DbError> for SubmitError {
    fn from(e: DbError) -> Self {
        Self::Store(e.to_string())
    }
}

/// Why the run store could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum RunStoreError {
    /// The database failed.
    #[error("run store: {0}")]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for RunStoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::Sqlite(e))
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The run id (the earlier one on a replay).
    pub run_id: String,
    /// True when an idempotency key matched an earlier run.
    pub replayed: bool,
}

/// A reply stored in an outbox, not yet acknowledged: the run is `sending` until
/// [`RunExecutor::follow_delivery`] settles it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingDelivery {
    /// The parts' message ids, in order.
    pub parts: Vec<String>,
    /// Unix ms after which unsent parts expire.
    pub deadline_ms: u64,
}

/// What a successful run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSuccess {
    /// True when the reply was already acknowledged by the channel (state `delivered`, else
    /// `done`, or `sending` with [`Self::pending`]).
    pub delivered: bool,
    /// The reply's parts in the outbox: the run is `sending` until they are acknowledged.
    pub pending: Option<PendingDelivery>,
    /// The provider that served it.
    pub provider: Option<String>,
    /// The model that served it.
    pub model: Option<String>,
    /// The reply text, if any.
    pub reply: Option<String>,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// The text for the run's `error` field (which provider/model failed and why).
    pub error: String,
    /// The provider tried last, if any.
    pub provider: Option<String>,
    /// The model tried last, if any.
    pub model: Option<String>,
}

impl From<String> for RunFailure {
    fn from(error: String) -> Self {
        Self { error, provider: None, model: None }
    }
}

/// The future of [`RunExecutor::execute_async`].
pub type RunFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunSuccess, RunFailure>> + Send + 'a>>;

/// The future of [`RunExecutor::follow_delivery`]: `Ok` when every part was acknowledged, `Err`
/// with the reason when one failed or expired.
pub type DeliveryFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;

/// Executes runs: [`NoProvider`] when no agent is configured, the operations layer's agent
/// executor (`crate::app`) otherwise.
pub trait RunExecutor: Send + Sync + 'static {
    /// Executes a run; `Err` holds a message for the run's `error` field.
    fn execute(&self, run: &RunRecord) -> Result<(), String>;

    /// Executes a run and reports what served it; the worker calls this. The default calls
    /// [`Self::execute`] (state `done`, no provider or model); an executor that knows the provider
    /// and model, or that delivered a reply (state `delivered`), overrides it.
    fn execute_detailed(&self, run: &RunRecord) -> Result<RunSuccess, RunFailure> {
        self.execute(run).map(|()| RunSuccess::default()).map_err(RunFailure::from)
    }

    /// Executes a run asynchronously (an agent turn waits for a provider); the worker awaits
    /// this. The default runs [`Self::execute_detailed`].
    fn execute_async<'a>(&'a self, run: &'a RunRecord) -> RunFuture<'a> {
        Box::pin(std::future::ready(self.execute_detailed(run)))
    }

    /// Follows a `sending` run's parts (`run.parts`) until the channel acknowledged all of them
    /// (`Ok`: `delivered`) or one failed or expired (`Err`: `failed` with the reason). Also called
    /// at startup for runs left `sending`. The default settles at once as delivered.
    fn follow_delivery<'a>(&'a self, _run: &'a RunRecord) -> DeliveryFuture<'a> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The executor used while no LLM provider is configured: every agent run fails, loudly.
#[derive(Debug, Default)]
pub struct NoProvider;

impl RunExecutor for NoProvider {
    fn execute(&self, run: &RunRecord) -> Result<(), String> {
        match run.kind {
            RunKind::Agent => Err("no LLM provider is configured; the run was accepted but cannot execute (configure models/agents)".into()),
            RunKind::Wake => Err("no agent heartbeat is configured; the wake event was recorded but nothing consumed it".into()),
        }
    }
}

struct Shared {
    db: DbThread,
    counters: Mutex<RunCounters>,
    /// Runs queued or running (admitted and not finished).
    unfinished: AtomicUsize,
    closed: AtomicBool,
    wake: Notify,
    /// Runs completed outside the worker with a reply in an outbox, for the worker to follow.
    follow_tx: tokio::sync::mpsc::UnboundedSender<String>,
    retention: usize,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// The registry of runs. Cheap to clone.
#[derive(Clone)]
pub struct RunRegistry {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RunRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRegistry").field("counters", &self.counters()).finish()
    }
}

pub use crate::util::clock::unix_ms;

/// Runs `f` where blocking is allowed: inside `block_in_place` on a multi-thread runtime's worker,
/// directly elsewhere (plain threads, `spawn_blocking`, a current-thread runtime in tests).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn idem_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

fn validate(req: &RunRequest) -> Result<(), SubmitError> {
    let check = |name: &str, v: Option<&str>, max: usize| match v {
        Some(s) if s.len() > max => {
            Err(SubmitError::Invalid(format!("{name} is too long ({} bytes; at most {max})", s.len())))
        }
        _ => Ok(()),
    };
    check("sessionKey", req.session_key.as_deref(), MAX_SESSION_KEY_BYTES)?;
    check("agentId", req.agent_id.as_deref(), MAX_AGENT_ID_BYTES)?;
    if let Some(d) = &req.delivery {
        check("channel", Some(&d.channel), MAX_TARGET_BYTES)?;
        check("to", Some(&d.to), MAX_TARGET_BYTES)?;
    }
    Ok(())
}

const COLUMNS: &str = "run_id, kind, state, message, message_truncated, agent_id, session_key, channel, target, origin, \
                       provider, model, error, created_at_ms, started_at_ms, finished_at_ms, account_id, reply, parts, \
                       delivery_deadline_ms";

fn record(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let text = |i: usize| row.get::<_, Option<String>>(i);
    let ms = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.map(|v| v.max(0) as u64));
    let kind: String = row.get(1)?;
    let state: String = row.get(2)?;
    let bad = |i: usize, what: &str| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, format!("unknown {what}").into());
    Ok(RunRecord {
        run_id: row.get(0)?,
        kind: match kind.as_str() {
            "agent" => RunKind::Agent,
            "wake" => RunKind::Wake,
            _ => return Err(bad(1, "run kind")),
        },
        state: RunState::parse(&state).ok_or_else(|| bad(2, "run state"))?,
        message: row.get(3)?,
        message_truncated: row.get(4)?,
        agent_id: text(5)?,
        session_key: text(6)?,
        delivery: match (text(7)?, text(8)?) {
            (Some(channel), Some(to)) => Some(Delivery { channel, to, account_id: text(16)? }),
            _ => None,
        },
        origin: row.get(9)?,
        provider: text(10)?,
        model: text(11)?,
        error: text(12)?,
        created_at_ms: ms(13)?.unwrap_or(0),
        started_at_ms: ms(14)?,
        finished_at_ms: ms(15)?,
        reply: text(17)?,
        parts: text(18)?.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default(),
        delivery_deadline_ms: ms(19)?,
    })
}

/// One run by id (a statement run several times per turn: kept in the statement cache).
static LOAD_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM runs WHERE run_id = ?1"));

/// The oldest queued runs whose session is not busy (run at every wake-up of the worker).
static CLAIM_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM runs WHERE state = 'queued'
           AND (session_key IS NULL OR session_key NOT IN (SELECT value FROM json_each(?2)))
         ORDER BY seq LIMIT ?1"
    )
});

fn load(db: &Db, run_id: &str) -> Result<Option<RunRecord>, DbError> {
    Ok(db.conn().prepare_cached(&LOAD_SQL)?.query_row([run_id], record).optional()?)
}

/// What the admission transaction did.
enum Admitted {
    New,
    Replay(String),
}

fn admit(db: &mut Db, req: &RunRequest, run_id: &str, key: Option<&[u8]>, now: u64) -> Result<Admitted, DbError> {
    db.transaction(|tx| {
        if let Some(h) = key
            && let Some(first) = tx.prepare_cached("SELECT run_id FROM runs WHERE idem_hash = ?1")?.query_row([h], |r| r.get::<_, String>(0)).optional()?
        {
            return Ok(Admitted::Replay(first));
        }
        tx.prepare_cached("INSERT INTO runs (run_id, kind, state, message, agent_id, session_key, channel, target, origin, idem_hash, created_at_ms, account_id)
             VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")?.execute(
            params![
                run_id,
                req.kind.as_str(),
                req.message,
                req.agent_id,
                req.session_key,
                req.delivery.as_ref().map(|d| &d.channel),
                req.delivery.as_ref().map(|d| &d.to),
                req.origin,
                key,
                now as i64,
                req.delivery.as_ref().and_then(|d| d.account_id.as_ref())
            ],
        )?;
        Ok(Admitted::New)
    })
}

/// Claims the oldest [`BATCH`] queued runs and marks them `running`.
fn claim(db: &mut Db, now: u64, busy: &[String]) -> Result<Vec<RunRecord>, DbError> {
    let busy = serde_json::to_string(busy).unwrap_or_else(|_| "[]".into());
    db.transaction(|tx| {
        let mut stmt = tx.prepare_cached(&CLAIM_SQL)?;
        let mut runs = stmt.query_map(params![BATCH as i64, busy], record)?.collect::<Result<Vec<_>, _>>()?;
        let mut upd = tx.prepare_cached("UPDATE runs SET state = 'running', started_at_ms = ?2 WHERE run_id = ?1")?;
        for r in &mut runs {
            upd.execute(params![r.run_id, now as i64])?;
            r.state = RunState::Running;
            r.started_at_ms = Some(now);
        }
        Ok(runs)
    })
}

/// The key runs are serialized by: the session key, else the run itself.
fn lane_of(r: &RunRecord) -> String {
    r.session_key.clone().unwrap_or_else(|| format!("\u{0}run:{}", r.run_id))
}

/// Records the outcomes, cuts finished messages and drops the oldest finished runs past retention.
/// A success with parts still in the outbox becomes `sending` (not finished: no `finished_at_ms`).
fn finish(db: &mut Db, outcomes: &[(String, Result<RunSuccess, RunFailure>)], now: u64, retention: usize) -> Result<(), DbError> {
    db.transaction(|tx| {
        let mut upd = tx.prepare_cached(
            "UPDATE runs SET state = ?2, error = ?3, provider = ?4, model = ?5, finished_at_ms = ?6,
                 message_truncated = length(message) > ?7, message = substr(message, 1, ?7), reply = ?8,
                 parts = ?9, delivery_deadline_ms = ?10
             WHERE run_id = ?1",
        )?;
        for (id, o) in outcomes {
            let (state, error, provider, model, reply) = match o {
                Ok(s) if s.pending.is_some() => (RunState::Sending, None, &s.provider, &s.model, s.reply.as_ref()),
                Ok(s) => (if s.delivered { RunState::Delivered } else { RunState::Done }, None, &s.provider, &s.model, s.reply.as_ref()),
                Err(f) => (RunState::Failed, Some(&f.error), &f.provider, &f.model, None),
            };
            let pending = o.as_ref().ok().and_then(|s| s.pending.as_ref());
            let parts = pending.map(|p| serde_json::to_string(&p.parts).unwrap_or_else(|_| "[]".into()));
            let finished = (state != RunState::Sending).then_some(now as i64);
            upd.execute(params![
                id,
                state.as_str(),
                error,
                provider,
                model,
                finished,
                RETAINED_MESSAGE_CHARS as i64,
                reply,
                parts,
                pending.map(|p| p.deadline_ms as i64)
            ])?;
        }
        let total: i64 = tx.prepare_cached("SELECT count(*) FROM runs")?.query_row([], |r| r.get(0))?;
        let excess = total - retention as i64;
        if excess > 0 {
            tx.prepare_cached("DELETE FROM runs WHERE seq IN (SELECT seq FROM runs WHERE state IN ('done','delivered','failed') ORDER BY seq LIMIT ?1)")?.execute(
                [excess],
            )?;
        }
        Ok(())
    })
}

/// Settles a `sending` run: `delivered`, or `failed` with the reason. A run no longer `sending`
/// is left alone (returns false).
fn settle(db: &mut Db, run_id: &str, outcome: &Result<(), String>, now: u64) -> Result<bool, DbError> {
    let (state, error) = match outcome {
        Ok(()) => (RunState::Delivered, None),
        Err(e) => (RunState::Failed, Some(e.as_str())),
    };
    let n = db.conn().prepare_cached("UPDATE runs SET state = ?2, error = ?3, finished_at_ms = ?4 WHERE run_id = ?1 AND state = 'sending'")?.execute(
        params![run_id, state.as_str(), error, now as i64],
    )?;
    Ok(n == 1)
}

/// The runs left `sending` (their parts are followed again at startup).
fn sending(db: &Db) -> Result<Vec<RunRecord>, DbError> {
    let mut stmt = db.conn().prepare(&format!("SELECT {COLUMNS} FROM runs WHERE state = 'sending' ORDER BY seq"))?;
    let runs = stmt.query_map([], record)?.collect::<Result<Vec<_>, _>>()?;
    Ok(runs)
}

/// Applies the startup recovery rule (module doc); returns `(queued, interrupted)`.
fn recover(db: &mut Db, now: u64) -> Result<(usize, usize), DbError> {
    db.transaction(|tx| {
        let interrupted = tx.prepare_cached("UPDATE runs SET state = 'failed', error = ?1, finished_at_ms = ?2 WHERE state = 'running'")?.execute(
            params![INTERRUPTED_BY_RESTART, now as i64],
        )?;
        let queued: i64 = tx.prepare_cached("SELECT count(*) FROM runs WHERE state = 'queued'")?.query_row([], |r| r.get(0))?;
        Ok((queued as usize, interrupted))
    })
}

/// Sets `closed` when the worker future is dropped (aborted at shutdown or finished).
struct ClosedOnDrop(Arc<Shared>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
    }
}

impl RunRegistry {
    /// Opens (creating if needed) the run store at `path` — normally
    /// [`crate::store::StateLayout::runs_db`] — applies the recovery rule, and returns the registry
    /// and its worker future (spawn it). `clock` gives unix ms.
    pub fn open(
        path: &Path,
        executor: Arc<dyn RunExecutor>,
        retention: usize,
        clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<(Self, impl std::future::Future<Output = ()> + Send + 'static), RunStoreError> {
        Self::with_db(Db::open(path, MIGRATIONS)?, executor, retention, clock)
    }

    /// A registry over a private in-memory database (nothing survives the process); for tests.
    pub fn in_memory(
        executor: Arc<dyn RunExecutor>,
        retention: usize,
        clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<(Self, impl std::future::Future<Output = ()> + Send + 'static), RunStoreError> {
        Self::with_db(Db::open_in_memory(MIGRATIONS)?, executor, retention, clock)
    }

    fn with_db(
        mut db: Db,
        executor: Arc<dyn RunExecutor>,
        retention: usize,
        clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<(Self, impl std::future::Future<Output = ()> + Send + 'static), RunStoreError> {
        let (queued, interrupted) = recover(&mut db, clock())?;
        if queued + interrupted > 0 {
            tracing::info!(queued, interrupted, "runs recovered at startup: queued runs will execute, interrupted runs marked failed");
        }
        let counters = RunCounters { recovered: queued as u64, interrupted: interrupted as u64, ..RunCounters::default() };
        let (follow_tx, follow_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            db: DbThread::spawn("openclaw-runs-db", db)?,
            counters: Mutex::new(counters),
            unfinished: AtomicUsize::new(queued),
            closed: AtomicBool::new(false),
            wake: Notify::new(),
            follow_tx,
            retention,
            clock,
        });
        let reg = Self { shared: shared.clone() };
        let worker_reg = reg.clone();
        // Captured (not created inside), so dropping the future unpolled also closes admission.
        let closed = ClosedOnDrop(shared);
        let worker = async move {
            let _closed = closed;
            worker_reg.work(executor, follow_rx).await;
        };
        Ok((reg, worker))
    }

    fn lock(&self) -> MutexGuard<'_, RunCounters> {
        self.shared.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn work(&self, executor: Arc<dyn RunExecutor>, mut follow_rx: tokio::sync::mpsc::UnboundedReceiver<String>) {
        let s = &self.shared;
        // Followers of `sending` runs live in this set: dropping the worker (shutdown) stops them.
        let mut followers = tokio::task::JoinSet::new();
        // Runs left `sending` by the previous process: their parts are followed again.
        loop {
            match s.db.call(|db| sending(db)).await {
                Ok(runs) => {
                    if !runs.is_empty() {
                        tracing::info!(count = runs.len(), "runs still sending at startup: following their reply parts again");
                    }
                    for r in runs {
                        followers.spawn(self.clone().follow(executor.clone(), r));
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "run store: cannot list sending runs; retrying in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
        // Runs executing now (at most RUN_CONCURRENCY), each yielding its lane and, when its
        // reply waits in an outbox, its id to follow.
        let mut executing: tokio::task::JoinSet<(String, Option<String>)> = tokio::task::JoinSet::new();
        let mut busy: Vec<(tokio::task::Id, String)> = Vec::new();
        loop {
            while followers.try_join_next().is_some() {}
            while let Some(done) = executing.try_join_next() {
                self.after_run(done, &mut busy, &mut followers, &executor).await;
            }
            if executing.len() < RUN_CONCURRENCY {
                let now = (s.clock)();
                let lanes: Vec<String> = busy.iter().map(|(_, l)| l.clone()).collect();
                let batch = match s.db.call(move |db| claim(db, now, &lanes)).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "run store: cannot claim queued runs; retrying in 1 s");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if !batch.is_empty() {
                    for r in batch {
                        let lane = lane_of(&r);
                        let task = executing.spawn(self.clone().run_one(executor.clone(), r, lane.clone()));
                        busy.push((task.id(), lane));
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = s.wake.notified() => {}
                Some(done) = executing.join_next(), if !executing.is_empty() => {
                    self.after_run(done, &mut busy, &mut followers, &executor).await;
                }
                Some(_) = followers.join_next(), if !followers.is_empty() => {}
                Some(id) = follow_rx.recv() => self.spawn_follow(&id, &mut followers, &executor).await,
            }
        }
    }

    /// Executes one claimed run and records its outcome; returns its lane and, when its reply
    /// waits in an outbox (`sending`), its id.
    async fn run_one(self, executor: Arc<dyn RunExecutor>, r: RunRecord, lane: String) -> (String, Option<String>) {
        let s = &self.shared;
        let o = executor.execute_async(&r).await;
        let pending = matches!(&o, Ok(x) if x.pending.is_some());
        match &o {
            Ok(_) if pending => tracing::info!(runId = %r.run_id, kind = ?r.kind, origin = %r.origin, "run sending"),
            Ok(_) => tracing::info!(runId = %r.run_id, kind = ?r.kind, origin = %r.origin, "run done"),
            Err(f) => tracing::warn!(runId = %r.run_id, kind = ?r.kind, origin = %r.origin, error = %f.error, "run failed"),
        }
        let failed = o.is_err();
        let now = (s.clock)();
        let retention = s.retention;
        let outcomes = Arc::new(vec![(r.run_id.clone(), o)]);
        loop {
            let o = outcomes.clone();
            match s.db.call(move |db| finish(db, &o, now, retention)).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, "run store: cannot record run outcomes; retrying in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
        {
            let mut c = self.lock();
            if failed {
                c.failed += 1;
            } else if !pending {
                c.done += 1;
            }
        }
        let _ = s.unfinished.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(1)));
        (lane, pending.then(|| r.run_id.clone()))
    }

    async fn after_run(
        &self,
        done: Result<(String, Option<String>), tokio::task::JoinError>,
        busy: &mut Vec<(tokio::task::Id, String)>,
        followers: &mut tokio::task::JoinSet<()>,
        executor: &Arc<dyn RunExecutor>,
    ) {
        match done {
            Ok((lane, follow)) => {
                busy.retain(|(_, l)| *l != lane);
                if let Some(id) = follow {
                    self.spawn_follow(&id, followers, executor).await;
                }
            }
            Err(e) => {
                // A panicking executor: its run stays `running` (interrupted at the next start).
                tracing::error!(error = %e, "a run's execution task failed");
                busy.retain(|(id, _)| *id != e.id());
            }
        }
    }

    async fn spawn_follow(&self, id: &str, followers: &mut tokio::task::JoinSet<()>, executor: &Arc<dyn RunExecutor>) {
        match self.get_async(id).await {
            Ok(Some(r)) if r.state == RunState::Sending => {
                followers.spawn(self.clone().follow(executor.clone(), r));
            }
            Ok(_) => {}
            Err(e) => tracing::error!(runId = %id, error = %e, "run store: cannot read a sending run; it is followed at the next start"),
        }
    }

    /// Follows one `sending` run until its parts settle, then records `delivered` or `failed`.
    async fn follow(self, executor: Arc<dyn RunExecutor>, run: RunRecord) {
        let outcome = executor.follow_delivery(&run).await;
        match &outcome {
            Ok(()) => tracing::info!(runId = %run.run_id, parts = run.parts.len(), "run delivered"),
            Err(e) => tracing::warn!(runId = %run.run_id, error = %e, "run failed"),
        }
        let s = &self.shared;
        let now = (s.clock)();
        let outcome = Arc::new(outcome);
        loop {
            let (id, o) = (run.run_id.clone(), outcome.clone());
            match s.db.call(move |db| settle(db, &id, &o, now)).await {
                Ok(true) => {
                    let mut c = self.lock();
                    if outcome.is_ok() {
                        c.done += 1;
                    } else {
                        c.failed += 1;
                    }
                    return;
                }
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(error = %e, "run store: cannot settle a sending run; retrying in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Validates and reserves a slot in `unfinished` (before the commit, so the worker can never
    /// finish a run that is not counted yet). Every path after it calls [`Self::post_admit`].
    fn pre_admit(&self, req: &RunRequest) -> Result<(), SubmitError> {
        validate(req)?;
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(SubmitError::Closed);
        }
        if self.shared.unfinished.fetch_add(1, Ordering::AcqRel) >= QUEUE_CAPACITY {
            self.release_slot();
            return Err(SubmitError::Busy);
        }
        Ok(())
    }

    fn release_slot(&self) {
        let _ = self.shared.unfinished.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(1)));
    }

    fn post_admit(&self, admitted: Result<Admitted, SubmitError>, run_id: String, req: &RunRequest) -> Result<Submitted, SubmitError> {
        let admitted = admitted.inspect_err(|_| self.release_slot())?;
        Ok(match admitted {
            Admitted::Replay(first) => {
                self.release_slot();
                self.lock().replayed += 1;
                Submitted { run_id: first, replayed: true }
            }
            Admitted::New => {
                self.lock().accepted += 1;
                self.shared.wake.notify_one();
                tracing::debug!(runId = %run_id, kind = ?req.kind, origin = req.origin, "run accepted");
                Submitted { run_id, replayed: false }
            }
        })
    }

    fn admission_job(&self, req: &RunRequest, idempotency_key: Option<&str>) -> (String, impl FnOnce(&mut Db) -> Result<Admitted, SubmitError> + Send + 'static) {
        // A v4 UUID from the thread-local CSPRNG (no syscall per run).
        let run_id = uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string();
        let key = idempotency_key.map(idem_hash);
        let now = (self.shared.clock)();
        let (req2, id2) = (req.clone(), run_id.clone());
        (run_id, move |db: &mut Db| admit(db, &req2, &id2, key.as_deref(), now).map_err(SubmitError::from))
    }

    /// Admits a run: commits it as `queued` and wakes the worker. With an idempotency key seen
    /// before (also before a restart), returns the first runId instead. Blocks until the commit
    /// (see the module doc); async code should prefer [`Self::submit_async`].
    pub fn submit(&self, req: RunRequest, idempotency_key: Option<&str>) -> Result<Submitted, SubmitError> {
        self.pre_admit(&req)?;
        let (run_id, job) = self.admission_job(&req, idempotency_key);
        let admitted = blocking(|| self.shared.db.call_blocking(job));
        self.post_admit(admitted, run_id, &req)
    }

    /// [`Self::submit`] for async callers: awaits the commit without blocking a worker thread.
    pub async fn submit_async(&self, req: RunRequest, idempotency_key: Option<&str>) -> Result<Submitted, SubmitError> {
        self.pre_admit(&req)?;
        let (run_id, job) = self.admission_job(&req, idempotency_key);
        let admitted = self.shared.db.call(job).await;
        self.post_admit(admitted, run_id, &req)
    }

    /// Records a run executed outside the worker (an inbound DM turn, `origin: "inbound"`):
    /// committed as `running` and returns its id. A restart while it runs marks it interrupted,
    /// like any running run. Finish it with [`Self::complete_external`]. The commit is not
    /// synced: nobody has been told of this run (its message was acknowledged by its channel
    /// already), and it is written while the model works, where a disk sync would compete with
    /// the reply; the outcome's synced commit covers it.
    pub async fn start_external(&self, req: RunRequest) -> Result<String, SubmitError> {
        validate(&req)?;
        let run_id = uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string();
        let now = (self.shared.clock)();
        let id = run_id.clone();
        self.shared
            .db
            .call(move |db| db.transaction_unsynced(|tx| {
                tx.prepare_cached("INSERT INTO runs (run_id, kind, state, message, session_key, channel, target, origin, created_at_ms, started_at_ms, account_id)
                     VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)")?.execute(
                    params![
                        id,
                        req.kind.as_str(),
                        req.message,
                        req.session_key,
                        req.delivery.as_ref().map(|d| &d.channel),
                        req.delivery.as_ref().map(|d| &d.to),
                        req.origin,
                        now as i64,
                        req.delivery.as_ref().and_then(|d| d.account_id.as_ref())
                    ],
                )?;
                Ok::<(), DbError>(())
            }))
            .await
            .map_err(SubmitError::from)?;
        self.lock().accepted += 1;
        tracing::info!(runId = %run_id, kind = ?req.kind, origin = req.origin, "run running");
        Ok(run_id)
    }

    /// Records the outcome of a run started with [`Self::start_external`] (as the worker does:
    /// `done`, `failed`, or `sending` and then followed by the worker until its parts settle).
    pub async fn complete_external(&self, run_id: &str, outcome: Result<RunSuccess, RunFailure>) -> Result<(), RunStoreError> {
        let pending = matches!(&outcome, Ok(s) if s.pending.is_some());
        match &outcome {
            Ok(_) if pending => tracing::info!(runId = %run_id, origin = "inbound", "run sending"),
            Ok(_) => tracing::info!(runId = %run_id, origin = "inbound", "run done"),
            Err(f) => tracing::warn!(runId = %run_id, origin = "inbound", error = %f.error, "run failed"),
        }
        let failed = outcome.is_err();
        let (now, retention) = ((self.shared.clock)(), self.shared.retention);
        let outcomes = vec![(run_id.to_string(), outcome)];
        self.shared.db.call(move |db| finish(db, &outcomes, now, retention)).await?;
        {
            let mut c = self.lock();
            if failed {
                c.failed += 1;
            } else if !pending {
                c.done += 1;
            }
        }
        if pending {
            let _ = self.shared.follow_tx.send(run_id.to_string());
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// The record of a run, if still retained. A store error is logged and reads as `None`;
    /// use [`Self::get_async`] to see it.
    pub fn get(&self, run_id: &str) -> Option<RunRecord> {
        let id = run_id.to_string();
        match blocking(|| self.shared.db.call_blocking(move |db| load(db, &id))) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "run store: cannot read a run");
                None
            }
        }
    }

    /// The most recent runs (newest first, at most `limit`), optionally only those of `origin`
    /// (`hook`, `ws`, `inbound`). A store error is logged and reads as empty.
    pub fn list(&self, limit: usize, origin: Option<&str>) -> Vec<RunRecord> {
        let origin = origin.map(str::to_string);
        let job = move |db: &mut Db| -> Result<Vec<RunRecord>, DbError> {
            let mut stmt = db.conn().prepare(&format!(
                "SELECT {COLUMNS} FROM runs WHERE (?1 IS NULL OR origin = ?1) ORDER BY seq DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![origin, limit as i64], record)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        };
        match blocking(|| self.shared.db.call_blocking(job)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "run store: cannot list runs");
                Vec::new()
            }
        }
    }

    /// The record of a run, if still retained, without blocking a worker thread.
    pub async fn get_async(&self, run_id: &str) -> Result<Option<RunRecord>, RunStoreError> {
        let id = run_id.to_string();
        Ok(self.shared.db.call(move |db| load(db, &id)).await?)
    }

    /// Totals since start (memory only; safe for `/health`).
    pub fn counters(&self) -> RunCounters {
        *self.lock()
    }

    /// Runs not yet finished (memory only).
    pub fn in_flight(&self) -> usize {
        self.shared.unfinished.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RunRequest {
        RunRequest { kind: RunKind::Agent, message: "hi".into(), agent_id: None, session_key: None, delivery: None, origin: "test" }
    }

    async fn wait_for(reg: &RunRegistry, id: &str, state: RunState) -> RunRecord {
        for _ in 0..2000 {
            let r = reg.get_async(id).await.unwrap().unwrap();
            if r.state == state {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("run {id} never reached {state:?}");
    }

    #[tokio::test]
    async fn run_without_provider_fails_loudly() {
        let (reg, worker) = RunRegistry::in_memory(Arc::new(NoProvider), 10, Arc::new(|| 7)).unwrap();
        let s = reg.submit(req(), None).unwrap();
        assert_eq!(reg.get(&s.run_id).unwrap().state, RunState::Queued);
        assert_eq!(reg.in_flight(), 1);
        let h = tokio::spawn(worker);
        let r = wait_for(&reg, &s.run_id, RunState::Failed).await;
        assert!(r.error.unwrap().contains("no LLM provider"));
        assert_eq!(r.message, "hi");
        assert_eq!(reg.counters().failed, 1);
        assert_eq!(reg.in_flight(), 0);
        h.abort();
    }

    #[tokio::test]
    async fn idempotency_key_replays_first_run() {
        let (reg, _worker) = RunRegistry::in_memory(Arc::new(NoProvider), 10, Arc::new(|| 0)).unwrap();
        let a = reg.submit(req(), Some("k")).unwrap();
        let b = reg.submit_async(req(), Some("k")).await.unwrap();
        assert_eq!(a.run_id, b.run_id);
        assert!(b.replayed);
        assert_ne!(reg.submit(req(), Some("other")).unwrap().run_id, a.run_id);
        assert_eq!(reg.counters().accepted, 2);
        assert_eq!(reg.counters().replayed, 1);
    }

    #[tokio::test]
    async fn retention_never_drops_unfinished_runs() {
        let (reg, _worker) = RunRegistry::in_memory(Arc::new(NoProvider), 2, Arc::new(|| 0)).unwrap();
        let ids: Vec<_> = (0..4).map(|_| reg.submit(req(), None).unwrap().run_id).collect();
        assert!(ids.iter().all(|id| reg.get(id).is_some()), "queued runs are kept past retention");
    }

    #[tokio::test]
    async fn retention_drops_the_oldest_finished_runs() {
        let (reg, worker) = RunRegistry::in_memory(Arc::new(NoProvider), 3, Arc::new(|| 0)).unwrap();
        let h = tokio::spawn(worker);
        let mut ids = Vec::new();
        for _ in 0..6 {
            let id = reg.submit_async(req(), None).await.unwrap().run_id;
            wait_for(&reg, &id, RunState::Failed).await;
            ids.push(id);
        }
        let kept: Vec<bool> = ids.iter().map(|id| reg.get(id).is_some()).collect();
        assert_eq!(kept, [false, false, false, true, true, true]);
        h.abort();
    }

    struct Delivers;
    impl RunExecutor for Delivers {
        fn execute(&self, _: &RunRecord) -> Result<(), String> {
            unreachable!("the worker calls execute_detailed")
        }
        fn execute_detailed(&self, _: &RunRecord) -> Result<RunSuccess, RunFailure> {
            Ok(RunSuccess { delivered: true, provider: Some("litellm".into()), model: Some("gpt-x".into()), reply: None, pending: None })
        }
    }

    #[tokio::test]
    async fn issue11_item4_record_shows_target_state_provider_and_model() {
        let (reg, worker) = RunRegistry::in_memory(Arc::new(Delivers), 10, Arc::new(|| 5)).unwrap();
        let h = tokio::spawn(worker);
        let mut r = req();
        r.message = "x".repeat(RETAINED_MESSAGE_CHARS + 10);
        r.delivery = Some(Delivery { channel: "whatsapp".into(), to: "+15550001".into(), account_id: None });
        let id = reg.submit(r, None).unwrap().run_id;
        let rec = wait_for(&reg, &id, RunState::Delivered).await;
        assert_eq!(rec.provider.as_deref(), Some("litellm"));
        assert_eq!(rec.model.as_deref(), Some("gpt-x"));
        assert_eq!(rec.started_at_ms, Some(5));
        assert_eq!(rec.finished_at_ms, Some(5));
        assert!(rec.message_truncated);
        assert_eq!(rec.message.chars().count(), RETAINED_MESSAGE_CHARS);
        let v = serde_json::to_value(&rec).unwrap();
        // Today's fields keep their names and shapes; the new ones are added.
        for k in ["runId", "kind", "state", "error", "agentId", "sessionKey", "delivery", "origin", "createdAtMs", "finishedAtMs", "message", "provider", "model"] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        assert_eq!(v["state"], "delivered");
        assert_eq!(v["delivery"], serde_json::json!({"channel": "whatsapp", "to": "+15550001"}));
        h.abort();
    }

    /// Stores parts (`sending`), then settles them when `release` says so.
    struct Sends {
        release: tokio::sync::watch::Receiver<Option<Result<(), String>>>,
        followed: AtomicUsize,
    }
    impl RunExecutor for Sends {
        fn execute(&self, _: &RunRecord) -> Result<(), String> {
            unreachable!()
        }
        fn execute_detailed(&self, _: &RunRecord) -> Result<RunSuccess, RunFailure> {
            let pending = PendingDelivery { parts: vec!["p1".into(), "p2".into()], deadline_ms: 99 };
            Ok(RunSuccess { pending: Some(pending), provider: Some("litellm".into()), model: Some("m".into()), reply: Some("hi".into()), delivered: false })
        }
        fn follow_delivery<'a>(&'a self, run: &'a RunRecord) -> DeliveryFuture<'a> {
            self.followed.fetch_add(1, Ordering::SeqCst);
            let mut rx = self.release.clone();
            let parts = run.parts.clone();
            Box::pin(async move {
                assert_eq!(parts, ["p1", "p2"]);
                let got = rx.wait_for(|v| v.is_some()).await.map(|v| v.clone()).ok().flatten();
                got.unwrap_or(Ok(()))
            })
        }
    }

    #[tokio::test]
    async fn issue11_sending_until_the_parts_settle_and_followed_again_after_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.db");
        let (tx, rx) = tokio::sync::watch::channel(None);
        let exec = Arc::new(Sends { release: rx, followed: AtomicUsize::new(0) });
        let mut r = req();
        r.delivery = Some(Delivery { channel: "whatsapp".into(), to: "1@s.whatsapp.net".into(), account_id: None });
        let (a, b) = {
            let (reg, worker) = RunRegistry::open(&path, exec.clone(), 10, Arc::new(|| 5)).unwrap();
            let h = tokio::spawn(worker);
            let a = reg.submit_async(r.clone(), None).await.unwrap().run_id;
            let b = reg.submit_async(r.clone(), None).await.unwrap().run_id;
            let rec = wait_for(&reg, &b, RunState::Sending).await;
            assert_eq!((rec.parts.len(), rec.delivery_deadline_ms, rec.finished_at_ms), (2, Some(99), None));
            assert_eq!(rec.reply.as_deref(), Some("hi"));
            let v = serde_json::to_value(&rec).unwrap();
            assert_eq!((v["state"].as_str(), v["deliveryDeadlineMs"].as_u64()), (Some("sending"), Some(99)), "{v}");
            wait_for(&reg, &a, RunState::Sending).await;
            for _ in 0..500 {
                if reg.in_flight() == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            assert_eq!(reg.in_flight(), 0, "a sending run does not hold a queue slot");
            assert_eq!(reg.counters().done, 0, "not counted before the parts settle");
            for _ in 0..500 {
                if exec.followed.load(Ordering::SeqCst) == 2 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            assert_eq!(exec.followed.load(Ordering::SeqCst), 2, "both followed");
            h.abort();
            let _ = h.await;
            (a, b)
        };
        // After a restart both runs are still `sending` and are followed again.
        let (reg, worker) = RunRegistry::open(&path, exec.clone(), 10, Arc::new(|| 6)).unwrap();
        assert_eq!(reg.get(&a).unwrap().state, RunState::Sending);
        let h = tokio::spawn(worker);
        for _ in 0..500 {
            if exec.followed.load(Ordering::SeqCst) == 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert_eq!(exec.followed.load(Ordering::SeqCst), 4);
        tx.send(Some(Err("part 2 of 2 (p2) failed: refused".into()))).unwrap();
        let ra = wait_for(&reg, &a, RunState::Failed).await;
        assert_eq!(ra.error.as_deref(), Some("part 2 of 2 (p2) failed: refused"));
        assert_eq!(ra.finished_at_ms, Some(6));
        wait_for(&reg, &b, RunState::Failed).await;
        for _ in 0..500 {
            if reg.counters().failed == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert_eq!(reg.counters().failed, 2);
        h.abort();
    }

    /// Sleeps 150 ms per run and records when each run (by message) started and ended.
    #[derive(Default)]
    struct Slow {
        spans: Mutex<Vec<(String, std::time::Instant, std::time::Instant)>>,
        now: AtomicUsize,
        peak: AtomicUsize,
    }
    impl RunExecutor for Slow {
        fn execute(&self, _: &RunRecord) -> Result<(), String> {
            unreachable!()
        }
        fn execute_async<'a>(&'a self, run: &'a RunRecord) -> RunFuture<'a> {
            Box::pin(async move {
                let start = std::time::Instant::now();
                let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                self.now.fetch_sub(1, Ordering::SeqCst);
                self.spans.lock().unwrap().push((run.message.clone(), start, std::time::Instant::now()));
                Ok(RunSuccess::default())
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue11_item5_runs_of_different_sessions_overlap_one_session_runs_in_order_with_a_global_limit() {
        let exec = Arc::new(Slow::default());
        let (reg, worker) = RunRegistry::in_memory(exec.clone(), 100, Arc::new(|| 0)).unwrap();
        let submit = |msg: &str, session: &str| {
            let mut r = req();
            r.message = msg.into();
            r.session_key = Some(session.into());
            reg.submit(r, None).unwrap().run_id
        };
        let a1 = submit("a1", "a");
        submit("b1", "b");
        submit("a2", "a");
        for i in 0..6 {
            submit(&format!("x{i}"), &format!("x{i}"));
        }
        let h = tokio::spawn(worker);
        for _ in 0..2000 {
            if exec.spans.lock().unwrap().len() == 9 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let spans = exec.spans.lock().unwrap().clone();
        assert_eq!(spans.len(), 9);
        let span = |m: &str| spans.iter().find(|s| s.0 == m).map(|s| (s.1, s.2)).unwrap();
        let (a1s, a1e) = span("a1");
        let (b1s, b1e) = span("b1");
        let (a2s, _) = span("a2");
        assert!(b1s < a1e && a1s < b1e, "different sessions overlap");
        assert!(a2s >= a1e, "one run at a time per session, in order");
        assert_eq!(exec.peak.load(Ordering::SeqCst), RUN_CONCURRENCY, "the global limit is reached, never passed");
        assert_eq!(wait_for(&reg, &a1, RunState::Done).await.state, RunState::Done);
        assert_eq!(reg.in_flight(), 0);
        h.abort();
    }

    #[test]
    fn issue11_runs_v2_rows_survive_the_v3_rebuild() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.db");
        {
            let db = Db::open(&path, &MIGRATIONS[..2]).unwrap();
            db.conn()
                .execute(
                    "INSERT INTO runs (run_id, kind, state, message, origin, idem_hash, created_at_ms, provider, reply)
                     VALUES ('r1', 'agent', 'delivered', 'hi', 'hook', x'01', 3, 'litellm', 'hello')",
                    [],
                )
                .unwrap();
        }
        let db = Db::open(&path, MIGRATIONS).unwrap();
        let r = load(&db, "r1").unwrap().unwrap();
        assert_eq!((r.state, r.provider.as_deref(), r.reply.as_deref(), r.created_at_ms), (RunState::Delivered, Some("litellm"), Some("hello"), 3));
        assert!(r.parts.is_empty());
        let dup = db.conn().execute(
            "INSERT INTO runs (run_id, kind, state, message, origin, idem_hash, created_at_ms) VALUES ('r2', 'agent', 'sending', 'x', 'hook', x'01', 4)",
            [],
        );
        assert!(dup.is_err(), "the idempotency hash stays unique");
    }

    #[tokio::test]
    async fn issue11_delivered_once_every_part_is_acknowledged() {
        let (tx, rx) = tokio::sync::watch::channel(None);
        let exec = Arc::new(Sends { release: rx, followed: AtomicUsize::new(0) });
        let (reg, worker) = RunRegistry::in_memory(exec, 10, Arc::new(|| 5)).unwrap();
        let h = tokio::spawn(worker);
        let mut r = req();
        r.delivery = Some(Delivery { channel: "whatsapp".into(), to: "1@s.whatsapp.net".into(), account_id: None });
        let id = reg.submit_async(r, None).await.unwrap().run_id;
        wait_for(&reg, &id, RunState::Sending).await;
        tx.send(Some(Ok(()))).unwrap();
        let rec = wait_for(&reg, &id, RunState::Delivered).await;
        assert_eq!((rec.error, rec.finished_at_ms), (None, Some(5)));
        for _ in 0..500 {
            if reg.counters().done == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert_eq!(reg.counters().done, 1, "counted once delivered");
        h.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_submit_works_on_a_multi_thread_runtime() {
        let (reg, _worker) = RunRegistry::in_memory(Arc::new(NoProvider), 10, Arc::new(|| 0)).unwrap();
        let s = reg.submit(req(), Some("k")).unwrap();
        assert_eq!(reg.get(&s.run_id).unwrap().run_id, s.run_id);
    }

    #[tokio::test]
    async fn closed_after_the_worker_stops() {
        let (reg, worker) = RunRegistry::in_memory(Arc::new(NoProvider), 10, Arc::new(|| 0)).unwrap();
        drop(worker);
        assert_eq!(reg.submit(req(), None), Err(SubmitError::Closed));
    }

    #[tokio::test]
    async fn issue14_item12_idempotency_key_survives_restart_and_queued_runs_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent/runs.db");
        let (first, queued_id) = {
            let (reg, _worker) = RunRegistry::open(&path, Arc::new(NoProvider), 10, Arc::new(|| 1)).unwrap();
            let a = reg.submit(req(), Some("key-1")).unwrap();
            (a.run_id, reg.submit(req(), None).unwrap().run_id)
            // dropped without the worker ever running: both runs stay queued, as after a crash
        };
        let (reg, worker) = RunRegistry::open(&path, Arc::new(NoProvider), 10, Arc::new(|| 2)).unwrap();
        assert_eq!(reg.counters().recovered, 2);
        let again = reg.submit(req(), Some("key-1")).unwrap();
        assert_eq!(again, Submitted { run_id: first.clone(), replayed: true });
        assert_eq!(reg.counters().accepted, 0, "no new run");
        let h = tokio::spawn(worker);
        wait_for(&reg, &queued_id, RunState::Failed).await;
        wait_for(&reg, &first, RunState::Failed).await;
        assert_eq!(reg.in_flight(), 0);
        h.abort();
    }

    #[tokio::test]
    async fn issue14_item12_running_runs_are_marked_interrupted_at_startup() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.db");
        let (id, waiting) = {
            let (reg, _w) = RunRegistry::open(&path, Arc::new(NoProvider), 10, Arc::new(|| 1)).unwrap();
            (reg.submit(req(), Some("k")).unwrap().run_id, reg.submit(req(), None).unwrap().run_id)
        };
        // Simulate a crash in the middle of the first run's execution.
        {
            let mut db = Db::open(&path, MIGRATIONS).unwrap();
            let claimed = claim(&mut db, 3, &[]).unwrap();
            assert_eq!(claimed.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), [id.as_str()], "one run executes at a time");
        }
        let (reg, _w) = RunRegistry::open(&path, Arc::new(NoProvider), 10, Arc::new(|| 9)).unwrap();
        assert_eq!(reg.get(&waiting).unwrap().state, RunState::Queued, "the run that never started resumes");
        assert_eq!(reg.counters().recovered, 1);
        let r = reg.get(&id).unwrap();
        assert_eq!(r.state, RunState::Failed);
        assert_eq!(r.error.as_deref(), Some(INTERRUPTED_BY_RESTART));
        assert_eq!(r.finished_at_ms, Some(9));
        assert_eq!(reg.counters().interrupted, 1);
        assert_eq!(reg.in_flight(), 1);
        assert!(reg.submit(req(), Some("k")).unwrap().replayed, "its key still replays");
    }

    #[tokio::test]
    async fn issue14_item8_long_keys_do_not_grow_the_store() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.db");
        let (reg, _w) = RunRegistry::open(&path, Arc::new(NoProvider), DEFAULT_RETENTION, Arc::new(|| 0)).unwrap();
        let big = "k".repeat(250 * 1024);
        for i in 0..2000 {
            reg.submit_async(req(), Some(&format!("{i}{big}"))).await.unwrap();
        }
        let size = |suffix: &str| std::fs::metadata(format!("{}{suffix}", path.display())).map(|m| m.len()).unwrap_or(0);
        let total = size("") + size("-wal") + size("-shm");
        // Verbatim keys would be 2,000 × 250 KB = 500 MB; hashes are 32 bytes each.
        assert!(total < 8 * 1024 * 1024, "store is {total} bytes");
        let mut long = req();
        long.session_key = Some(big.clone());
        assert!(matches!(reg.submit(long, None), Err(SubmitError::Invalid(m)) if m.contains("sessionKey is too long")));
        let mut long = req();
        long.agent_id = Some("a".repeat(MAX_AGENT_ID_BYTES + 1));
        assert!(matches!(reg.submit_async(long, None).await, Err(SubmitError::Invalid(m)) if m.contains("agentId")));
        let mut long = req();
        long.delivery = Some(Delivery { channel: "whatsapp".into(), to: big.clone(), account_id: None });
        assert!(matches!(reg.submit(long, None), Err(SubmitError::Invalid(m)) if m.contains("to is too long")));
        // The replay of a long key still works (hash lookup).
        assert!(reg.submit(req(), Some(&format!("7{big}"))).unwrap().replayed);
    }
}
