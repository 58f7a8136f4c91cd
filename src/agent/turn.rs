//! One agent turn: the session's history and the workspace system prompt, sent to the model
//! chain (`agents.defaults.model`: primary, then each fallback; 429/5xx retried per model),
//! streamed, and the exchange appended to the history on success.
//!
//! `/new` and `/reset` (upstream's reset triggers) start the session over: alone, the history
//! is cleared and the model is asked to greet; followed by text, the history is cleared and the
//! text is the message.
//!
//! Turns of one session run one at a time (a per-session lock); turns of different sessions run
//! in parallel up to a global limit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::history::{limit_user_turns, History, HistoryError, InMemoryHistory};
use super::providers::{
    retry, ChatMessage, ChatRequest, HttpClient, ModelTarget, ProviderError, ProviderSet, RetryPolicy, SetupError,
    Sleeper, Timeouts, TokioSleeper, Usage,
};
use super::workspace;

/// Upstream's reset triggers.
pub const RESET_TRIGGERS: &[&str] = &["/new", "/reset"];
/// What the model is asked after a bare `/new`.
pub const RESET_PROMPT: &str = "A new session was started via /new or /reset. Greet the user in your configured persona in 1-3 sentences and ask what they want to do. Do not mention internal steps, files or tools.";
/// Turns running at once across sessions, by default.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;
/// How long a system prompt read from the workspace files is used before they are read again:
/// an edit to `SOUL.md` shows from the next turn that starts this long after it, and a burst of
/// turns does not wait for the disk each time.
pub const PROMPT_TTL: Duration = Duration::from_secs(1);

/// A turn to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRequest {
    /// The session (see [`crate::routing::session_key`]).
    pub session_key: String,
    /// The inbound text.
    pub message: String,
    /// A `provider/model` to use instead of the configured chain (hooks' `model`).
    pub model: Option<String>,
}

/// A finished turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnReply {
    /// The reply text (unformatted Markdown, unchunked).
    pub text: String,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// Token counts, if reported.
    pub usage: Option<Usage>,
    /// The session was reset by this message.
    pub reset: bool,
    /// Models that failed before this one answered (fallbacks used).
    #[serde(skip)]
    pub failed: Vec<ProviderError>,
    /// Time from start to the last token.
    pub duration_ms: u64,
}

/// Why a turn produced no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnError {
    /// No model is configured.
    #[error("no model configured: set agents.defaults.model to \"<provider>/<model>\"")]
    NoModel,
    /// Every model of the chain failed; each error names its provider, model and reason.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; then "))]
    AllFailed(Vec<ProviderError>),
    /// History could not be read or written.
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl TurnError {
    /// The last provider failure, if the turn got that far.
    pub fn last_failure(&self) -> Option<&ProviderError> {
        match self {
            TurnError::AllFailed(v) => v.last(),
            _ => None,
        }
    }
}

/// Everything a turn needs; cheap to share (`Arc`).
pub struct Agent {
    /// The HTTP client.
    pub client: HttpClient,
    /// Providers and the model chain.
    pub providers: ProviderSet,
    /// Retries per model.
    pub retry: RetryPolicy,
    /// Sleeps between retries.
    pub sleeper: Arc<dyn Sleeper>,
    /// Conversation history.
    pub history: Arc<dyn History>,
    /// The workspace directory holding `AGENTS.md`, `SOUL.md`, ...
    pub workspace: Option<PathBuf>,
    /// History sent with a turn, in user turns (`dmHistoryLimit`); `None`: all that is stored.
    pub history_limit: Option<usize>,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    permits: Arc<tokio::sync::Semaphore>,
    prompt: Mutex<Option<(Instant, String)>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("providers", &self.providers).field("workspace", &self.workspace).finish()
    }
}

impl Agent {
    /// An agent over `providers` with default retries, tokio sleeps, bounded in-memory history
    /// and [`DEFAULT_MAX_CONCURRENT`] turns at once.
    pub fn new(client: HttpClient, providers: ProviderSet) -> Self {
        Self {
            client,
            providers,
            retry: RetryPolicy::default(),
            sleeper: Arc::new(TokioSleeper),
            history: Arc::new(InMemoryHistory::default()),
            workspace: None,
            history_limit: None,
            sessions: Mutex::new(HashMap::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_CONCURRENT)),
            prompt: Mutex::new(None),
        }
    }

    /// The agent of a compiled snapshot: its providers (keys re-read from their sources), the
    /// workspace `agents.defaults.workspace` (else `<state dir>/workspace`).
    pub fn from_snapshot(snapshot: &crate::config::Snapshot, timeouts: Timeouts) -> Result<Self, SetupError> {
        let providers = ProviderSet::from_snapshot(snapshot)?;
        let cfg = snapshot.typed().map_err(|e| SetupError::Config(e.to_string()))?;
        let mut agent = Self::new(HttpClient::new(timeouts)?, providers);
        agent.workspace = cfg
            .agents
            .defaults
            .workspace
            .map(PathBuf::from)
            .or_else(|| snapshot.state_dir.as_ref().map(|d| d.join("workspace")));
        Ok(agent)
    }

    /// Sets the number of turns running at once (at least 1).
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.permits = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// The system prompt from the workspace (read off the async workers, again once it is
    /// [`PROMPT_TTL`] old).
    pub async fn system_prompt(&self) -> String {
        let Some(dir) = self.workspace.clone() else { return workspace::build_system_prompt(&[]) };
        if let Some((at, p)) = self.prompt.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < PROMPT_TTL
        {
            return p.clone();
        }
        let files = tokio::task::spawn_blocking(move || workspace::load_workspace_files(&dir)).await.unwrap_or_default();
        let p = workspace::build_system_prompt(&files);
        *self.prompt.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), p.clone()));
        p
    }

    fn session_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_string()).or_default().clone()
    }

    fn release_session(&self, key: &str) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(key);
        }
    }

    /// Runs one turn, streaming the reply's text to `on_delta` as it arrives.
    pub async fn turn(&self, req: TurnRequest, on_delta: &mut (dyn FnMut(&str) + Send)) -> Result<TurnReply, TurnError> {
        match self.turn_then(req, on_delta, |reply| async move { reply }).await? {
            (reply, None) => Ok(reply),
            (_, Some(e)) => Err(TurnError::History(e)),
        }
    }

    /// Runs one turn like [`Agent::turn`] and hands the reply to `after` (which delivers it),
    /// then appends the exchange to the session's history, so the reply does not wait for that
    /// write nor share the disk with it. The session's lock is held until both are done: the
    /// session's next turn sees the exchange. Returns what `after` returned and, when the
    /// history could not be written, why (logged here; the reply has gone out all the same).
    pub async fn turn_then<T, Fut>(
        &self,
        req: TurnRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
        after: impl FnOnce(TurnReply) -> Fut,
    ) -> Result<(T, Option<HistoryError>), TurnError>
    where
        Fut: std::future::Future<Output = T>,
    {
        let lock = self.session_lock(&req.session_key);
        let result = {
            let _session = lock.lock().await;
            let _permit = self.permits.acquire().await;
            self.turn_locked(&req, on_delta, after).await
        };
        drop(lock);
        self.release_session(&req.session_key);
        result
    }

    async fn turn_locked<T, Fut>(
        &self,
        req: &TurnRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
        after: impl FnOnce(TurnReply) -> Fut,
    ) -> Result<(T, Option<HistoryError>), TurnError>
    where
        Fut: std::future::Future<Output = T>,
    {
        let started = Instant::now();
        let (reset, message) = split_reset(&req.message);
        if reset {
            self.history.reset(&req.session_key).await?;
            tracing::debug!(session = %req.session_key, "session reset");
        }
        let message = if message.is_empty() { RESET_PROMPT.to_string() } else { message.to_string() };
        let chain: Vec<String> = match &req.model {
            Some(m) => vec![m.clone()],
            None => self.providers.chain.clone(),
        };
        if chain.is_empty() {
            return Err(TurnError::NoModel);
        }
        let (history, system) = tokio::join!(self.history.load(&req.session_key), self.system_prompt());
        let history = history?;
        let mut messages = limit_user_turns(&history, self.history_limit).to_vec();
        messages.push(ChatMessage::user(message.clone()));
        let request = ChatRequest { system: Some(system), messages };

        let mut failed = Vec::new();
        for name in &chain {
            let Some(target) = ModelTarget::parse(name) else {
                failed.push(config_error(name, "", "not a \"provider/model\" reference"));
                continue;
            };
            let Some(spec) = self.providers.providers.get(&target.provider) else {
                failed.push(config_error(&target.provider, &target.model, "no such provider in models.providers"));
                continue;
            };
            let result = retry::complete_with_retries(
                &self.client,
                spec,
                &target.model,
                &request,
                &self.retry,
                self.sleeper.as_ref(),
                on_delta,
            )
            .await;
            match result {
                Ok(c) => {
                    let exchange = vec![ChatMessage::user(message), ChatMessage::assistant(c.text.clone())];
                    let reply = TurnReply {
                        text: c.text,
                        provider: target.provider,
                        model: target.model,
                        usage: c.usage,
                        reset,
                        failed,
                        duration_ms: duration_ms(started.elapsed()),
                    };
                    // The reply first, alone: the history's synced commit would compete with
                    // the reply's own for the disk.
                    let out = after(reply).await;
                    let saved = self.history.append(&req.session_key, exchange).await;
                    let unsaved = saved.err();
                    if let Some(e) = &unsaved {
                        tracing::error!(session = %req.session_key, error = %e, "the turn was not added to the session history; the next turn will not see it");
                    }
                    return Ok((out, unsaved));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "model failed; trying the next fallback");
                    failed.push(e);
                }
            }
        }
        Err(TurnError::AllFailed(failed))
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn config_error(provider: &str, model: &str, why: &str) -> ProviderError {
    ProviderError {
        provider: provider.to_string(),
        model: model.to_string(),
        kind: super::providers::FailureKind::Config(why.to_string()),
        attempts: 0,
    }
}

/// Whether `text` starts with a reset trigger, and the text after it.
pub fn split_reset(text: &str) -> (bool, &str) {
    let t = text.trim();
    for trigger in RESET_TRIGGERS {
        if let Some(rest) = t.strip_prefix(trigger)
            && (rest.is_empty() || rest.starts_with(char::is_whitespace))
        {
            return (true, rest.trim());
        }
    }
    (false, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_triggers() {
        assert_eq!(split_reset("/new"), (true, ""));
        assert_eq!(split_reset("  /reset  tell me a joke "), (true, "tell me a joke"));
        assert_eq!(split_reset("/newsletter"), (false, "/newsletter"));
        assert_eq!(split_reset("hello /new"), (false, "hello /new"));
    }

    #[tokio::test]
    async fn no_model_is_a_typed_error_and_nothing_is_stored() {
        let agent = Agent::new(HttpClient::new(Timeouts::default()).unwrap(), ProviderSet::default());
        let req = TurnRequest { session_key: "s".into(), message: "hi".into(), model: None };
        assert_eq!(agent.turn(req, &mut |_| {}).await, Err(TurnError::NoModel));
        assert!(agent.history.load("s").await.unwrap().is_empty());
        assert!(agent.sessions.lock().unwrap().is_empty(), "session locks are released");
    }

    #[tokio::test]
    async fn unknown_providers_are_reported_per_model() {
        let providers = ProviderSet { providers: Default::default(), chain: vec!["nope/m".into(), "bad".into()] };
        let agent = Agent::new(HttpClient::new(Timeouts::default()).unwrap(), providers);
        let req = TurnRequest { session_key: "s".into(), message: "hi".into(), model: None };
        let err = agent.turn(req, &mut |_| {}).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "provider nope, model m: not usable: no such provider in models.providers; then provider bad, model : not usable: not a \"provider/model\" reference"
        );
    }

    #[tokio::test]
    async fn workspace_edits_show_once_the_prompt_is_a_ttl_old() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("SOUL.md"), "Speak softly.\n").unwrap();
        let mut agent = Agent::new(HttpClient::new(Timeouts::default()).unwrap(), ProviderSet::default());
        agent.workspace = Some(dir.path().to_path_buf());
        assert!(agent.system_prompt().await.contains("Speak softly."));
        std::fs::write(dir.path().join("SOUL.md"), "Speak loudly.\n").unwrap();
        assert!(agent.system_prompt().await.contains("Speak softly."), "a burst of turns reads the disk once");
        tokio::time::sleep(PROMPT_TTL + Duration::from_millis(50)).await;
        let p = agent.system_prompt().await;
        assert!(p.contains("Speak loudly.") && !p.contains("softly"), "{p}");
    }

    /// A history whose append waits until `gate` is notified, and then fails when `fail`.
    struct GatedHistory {
        inner: InMemoryHistory,
        gate: Arc<tokio::sync::Notify>,
        fail: bool,
    }

    impl History for GatedHistory {
        fn load<'a>(&'a self, key: &'a str) -> super::super::history::HistoryFuture<'a, Vec<ChatMessage>> {
            self.inner.load(key)
        }
        fn append<'a>(&'a self, key: &'a str, messages: Vec<ChatMessage>) -> super::super::history::HistoryFuture<'a, ()> {
            Box::pin(async move {
                self.gate.notified().await;
                if self.fail {
                    return Err(HistoryError("disk full".into()));
                }
                self.inner.append(key, messages).await
            })
        }
        fn reset<'a>(&'a self, key: &'a str) -> super::super::history::HistoryFuture<'a, ()> {
            self.inner.reset(key)
        }
    }

    /// An OpenAI-compatible provider that answers every request with `text` at once.
    async fn instant_provider(text: &'static str) -> ProviderSet {
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move || async move {
                axum::Json(serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}))
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        let cfg: crate::config::model::OpenClawConfig = serde_json::from_value(serde_json::json!({
            "models": {"providers": {"p": {"baseUrl": url, "apiKey": "k", "api": "openai-completions", "models": [{"id": "m"}]}}},
            "agents": {"defaults": {"model": "p/m"}}
        }))
        .unwrap();
        ProviderSet::from_config(&cfg, |_| Ok(None)).unwrap()
    }

    fn gated_agent(providers: ProviderSet, fail: bool) -> (Agent, Arc<tokio::sync::Notify>) {
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut agent = Agent::new(HttpClient::new(Timeouts::default()).unwrap(), providers);
        agent.history = Arc::new(GatedHistory { inner: InMemoryHistory::default(), gate: gate.clone(), fail });
        (agent, gate)
    }

    #[tokio::test]
    async fn the_reply_is_handed_on_while_the_history_is_written() {
        let (agent, gate) = gated_agent(instant_provider("hello back").await, false);
        let req = TurnRequest { session_key: "s".into(), message: "hi".into(), model: None };
        // The history write waits for the delivery: were they one after the other, this would
        // never finish.
        let mut on_delta = |_: &str| {};
        let turn = agent.turn_then(req, &mut on_delta, |reply| async move {
            gate.notify_one();
            format!("delivered {}", reply.text)
        });
        let out = tokio::time::timeout(Duration::from_secs(10), turn).await.expect("delivery and history write overlap");
        assert_eq!(out, Ok(("delivered hello back".to_string(), None)));
        let history = agent.history.load("s").await.unwrap();
        assert_eq!(history, vec![ChatMessage::user("hi"), ChatMessage::assistant("hello back")]);
        assert!(agent.sessions.lock().unwrap().is_empty(), "session locks are released");
    }

    #[tokio::test]
    async fn a_history_that_cannot_be_written_is_reported_after_delivery() {
        let (agent, gate) = gated_agent(instant_provider("hello back").await, true);
        let req = TurnRequest { session_key: "s".into(), message: "hi".into(), model: None };
        let out = agent.turn_then(req.clone(), &mut |_| {}, |_| async { gate.notify_one() }).await;
        assert_eq!(out, Ok(((), Some(HistoryError("disk full".into())))), "delivered, and the failure is reported");
        // Without a delivery step the same failure fails the turn, as before.
        gate.notify_one();
        assert_eq!(agent.turn(req, &mut |_| {}).await, Err(TurnError::History(HistoryError("disk full".into()))));
    }
}
