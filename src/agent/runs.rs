//! The in-process run registry: hooks and the control protocol submit runs here; a worker moves
//! them through `queued → running → done | failed`. Every accepted run is recorded with its runId
//! before the caller answers, so "accepted" always means "recorded".

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::mpsc;

/// How many finished runs are kept for `GET /hooks/runs/{id}` before the oldest are dropped.
pub const DEFAULT_RETENTION: usize = 20_000;
/// How many admitted runs may wait for the worker before admission answers "busy".
pub const QUEUE_CAPACITY: usize = 65_536;

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Accepted, waiting for the worker.
    Queued,
    /// Being executed.
    Running,
    /// Finished successfully.
    Done,
    /// Finished with an error (see `error`).
    Failed,
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

/// Where a run's reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Channel id.
    pub channel: String,
    /// Recipient.
    pub to: String,
}

/// A request to run something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// Agent turn or wake.
    pub kind: RunKind,
    /// The message (agent) or text (wake).
    pub message: String,
    /// Target agent, if given.
    pub agent_id: Option<String>,
    /// Session key, if given.
    pub session_key: Option<String>,
    /// Where to deliver the reply, if anywhere.
    pub delivery: Option<Delivery>,
    /// Where the request came from (`hook`, `ws`).
    pub origin: &'static str,
}

/// The recorded state of one run.
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
    pub origin: &'static str,
    /// Unix ms of admission.
    pub created_at_ms: u64,
    /// Unix ms of completion.
    pub finished_at_ms: Option<u64>,
}

/// Totals since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounters {
    /// Runs accepted (each has a runId).
    pub accepted: u64,
    /// Replays answered with an earlier runId.
    pub replayed: u64,
    /// Runs finished `done`.
    pub done: u64,
    /// Runs finished `failed`.
    pub failed: u64,
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
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The run id (the earlier one on a replay).
    pub run_id: String,
    /// True when an idempotency key matched an earlier run.
    pub replayed: bool,
}

/// Executes runs. The only implementation today fails every run because no provider exists yet.
pub trait RunExecutor: Send + Sync + 'static {
    /// Executes a run; `Err` holds a message for the run's `error` field.
    fn execute(&self, run: &RunRecord) -> Result<(), String>;
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

#[derive(Debug, Default)]
struct Inner {
    runs: HashMap<String, RunRecord>,
    order: VecDeque<String>,
    idempotency: HashMap<String, String>,
    idem_order: VecDeque<String>,
    counters: RunCounters,
}

/// The registry of runs. Cheap to clone.
#[derive(Clone)]
pub struct RunRegistry {
    inner: Arc<Mutex<Inner>>,
    tx: mpsc::Sender<String>,
    retention: usize,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    seq: Arc<AtomicU64>,
}

impl std::fmt::Debug for RunRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRegistry").field("counters", &self.counters()).finish()
    }
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl RunRegistry {
    /// A registry and its worker future (spawn it). `clock` gives unix ms.
    pub fn new(
        executor: Arc<dyn RunExecutor>,
        retention: usize,
        clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE_CAPACITY);
        let reg = Self { inner: Arc::default(), tx, retention, clock, seq: Arc::default() };
        let worker_reg = reg.clone();
        let worker = async move {
            let mut batch = Vec::with_capacity(256);
            while rx.recv_many(&mut batch, 256).await > 0 {
                worker_reg.process_batch(&*executor, &batch);
                batch.clear();
            }
        };
        (reg, worker)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a run: records it as `queued` and hands it to the worker. With an idempotency key
    /// seen before, returns the first runId instead.
    pub fn submit(&self, req: RunRequest, idempotency_key: Option<&str>) -> Result<Submitted, SubmitError> {
        // A v4 UUID from the thread-local CSPRNG (no syscall per run).
        let run_id = uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string();
        {
            let mut inner = self.lock();
            if let Some(key) = idempotency_key
                && let Some(first) = inner.idempotency.get(key).cloned() {
                    inner.counters.replayed += 1;
                    return Ok(Submitted { run_id: first, replayed: true });
                }
            let permit = self.tx.try_reserve().map_err(|e| match e {
                mpsc::error::TrySendError::Full(()) => SubmitError::Busy,
                mpsc::error::TrySendError::Closed(()) => SubmitError::Closed,
            })?;
            let record = RunRecord {
                run_id: run_id.clone(),
                kind: req.kind,
                state: RunState::Queued,
                error: None,
                agent_id: req.agent_id,
                session_key: req.session_key,
                delivery: req.delivery,
                origin: req.origin,
                created_at_ms: (self.clock)(),
                finished_at_ms: None,
            };
            inner.runs.insert(run_id.clone(), record);
            inner.order.push_back(run_id.clone());
            inner.counters.accepted += 1;
            if let Some(key) = idempotency_key {
                inner.idempotency.insert(key.to_string(), run_id.clone());
                inner.idem_order.push_back(key.to_string());
                if inner.idem_order.len() > self.retention
                    && let Some(old) = inner.idem_order.pop_front() {
                        inner.idempotency.remove(&old);
                    }
            }
            self.evict(&mut inner);
            permit.send(run_id.clone());
        }
        self.seq.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(runId = %run_id, kind = ?req.kind, origin = req.origin, "run accepted");
        Ok(Submitted { run_id, replayed: false })
    }

    fn evict(&self, inner: &mut Inner) {
        while inner.order.len() > self.retention {
            // Drop the oldest finished run; unfinished runs are never dropped.
            let pos = inner.order.iter().position(|id| {
                inner.runs.get(id).is_none_or(|r| matches!(r.state, RunState::Done | RunState::Failed))
            });
            match pos.and_then(|p| inner.order.remove(p)) {
                Some(id) => {
                    inner.runs.remove(&id);
                }
                None => break,
            }
        }
    }

    fn process_batch(&self, executor: &dyn RunExecutor, ids: &[String]) {
        let records: Vec<RunRecord> = {
            let mut inner = self.lock();
            ids.iter()
                .filter_map(|id| {
                    let r = inner.runs.get_mut(id)?;
                    r.state = RunState::Running;
                    Some(r.clone())
                })
                .collect()
        };
        let outcomes: Vec<(String, RunKind, &'static str, Result<(), String>)> = records
            .into_iter()
            .map(|r| {
                let o = executor.execute(&r);
                (r.run_id, r.kind, r.origin, o)
            })
            .collect();
        let now = (self.clock)();
        let mut inner = self.lock();
        // One line per run, at its end, with its runId (admission is logged at debug level).
        for (id, kind, origin, outcome) in outcomes {
            match &outcome {
                Ok(()) => inner.counters.done += 1,
                Err(_) => inner.counters.failed += 1,
            }
            if let Some(r) = inner.runs.get_mut(&id) {
                r.finished_at_ms = Some(now);
                match outcome {
                    Ok(()) => {
                        r.state = RunState::Done;
                        tracing::info!(runId = %id, kind = ?kind, origin, "run done");
                    }
                    Err(e) => {
                        tracing::warn!(runId = %id, kind = ?kind, origin, error = %e, "run failed");
                        r.state = RunState::Failed;
                        r.error = Some(e);
                    }
                }
            }
        }
    }

    /// The record of a run, if still retained.
    pub fn get(&self, run_id: &str) -> Option<RunRecord> {
        self.lock().runs.get(run_id).cloned()
    }

    /// Totals since start.
    pub fn counters(&self) -> RunCounters {
        self.lock().counters
    }

    /// Runs not yet finished.
    pub fn in_flight(&self) -> usize {
        let c = self.counters();
        (c.accepted - c.done - c.failed) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RunRequest {
        RunRequest { kind: RunKind::Agent, message: "hi".into(), agent_id: None, session_key: None, delivery: None, origin: "test" }
    }

    #[tokio::test]
    async fn run_without_provider_fails_loudly() {
        let (reg, worker) = RunRegistry::new(Arc::new(NoProvider), 10, Arc::new(|| 7));
        let h = tokio::spawn(worker);
        let s = reg.submit(req(), None).unwrap();
        assert_eq!(reg.get(&s.run_id).unwrap().state, RunState::Queued);
        for _ in 0..100 {
            if reg.get(&s.run_id).unwrap().state == RunState::Failed {
                break;
            }
            tokio::task::yield_now().await;
        }
        let r = reg.get(&s.run_id).unwrap();
        assert_eq!(r.state, RunState::Failed);
        assert!(r.error.unwrap().contains("no LLM provider"));
        assert_eq!(reg.counters().failed, 1);
        h.abort();
    }

    #[tokio::test]
    async fn idempotency_key_replays_first_run() {
        let (reg, _worker) = RunRegistry::new(Arc::new(NoProvider), 10, Arc::new(|| 0));
        let a = reg.submit(req(), Some("k")).unwrap();
        let b = reg.submit(req(), Some("k")).unwrap();
        assert_eq!(a.run_id, b.run_id);
        assert!(b.replayed);
        assert_ne!(reg.submit(req(), Some("other")).unwrap().run_id, a.run_id);
        assert_eq!(reg.counters().accepted, 2);
    }

    #[tokio::test]
    async fn retention_never_drops_unfinished_runs() {
        let (reg, _worker) = RunRegistry::new(Arc::new(NoProvider), 2, Arc::new(|| 0));
        let ids: Vec<_> = (0..4).map(|_| reg.submit(req(), None).unwrap().run_id).collect();
        assert!(ids.iter().all(|id| reg.get(id).is_some()), "queued runs are kept past retention");
    }
}
