//! LLM providers: `models.providers.<id>` resolved into callable endpoints, the two wire
//! protocols (`openai-completions`, `anthropic-messages`), always streamed, with retries on
//! 429/5xx honouring `Retry-After` and typed errors naming the provider, the model and why.
//!
//! - [`http`]: the HTTP client (hyper-util + rustls/ring; the choice is explained there);
//! - [`sse`]: the incremental Server-Sent Events parser;
//! - [`openai`], [`anthropic`]: request bodies and stream events of each protocol;
//! - [`retry`]: the backoff policy and its injectable sleeper;
//! - [`status`]: reachability, key and model checks for `openclaw models status`;
//! - [`ProviderSet`]: the configured providers, with their keys re-read from the snapshot's
//!   secret sources.

pub mod anthropic;
pub mod http;
pub mod openai;
pub mod retry;
pub mod sse;
pub mod status;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::model::agents::ModelRef;
use crate::config::model::models::{ProviderApi, ProviderModel};
use crate::config::model::OpenClawConfig;
use crate::config::Snapshot;

pub use self::http::{HttpClient, Timeouts, TransportError};
pub use self::retry::{RetryPolicy, Sleeper, TokioSleeper};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person.
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation (the system prompt is separate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl ChatMessage {
    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self { role: Role::User, content: text.into() }
    }
    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: text.into() }
    }
}

/// What is sent to a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// The system prompt, if any.
    pub system: Option<String>,
    /// History then the new user message.
    pub messages: Vec<ChatMessage>,
}

/// Token counts, when the provider reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The whole text.
    pub text: String,
    /// Token counts, if reported.
    pub usage: Option<Usage>,
    /// Why the model stopped (`stop`, `end_turn`, `length`...), if reported.
    pub finish_reason: Option<String>,
}

/// Why one provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureKind {
    /// 401/403: the key is missing, wrong or not allowed.
    #[error("key rejected (HTTP {status}): {detail}")]
    Unauthorized {
        /// The status.
        status: u16,
        /// The provider's message.
        detail: String,
    },
    /// 429.
    #[error("rate limited (HTTP 429){}: {detail}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited {
        /// The provider's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// The provider's message.
        detail: String,
    },
    /// 5xx.
    #[error("server error (HTTP {status}): {detail}")]
    Server {
        /// The status.
        status: u16,
        /// The provider's message.
        detail: String,
    },
    /// Another 4xx (bad request, unknown model...).
    #[error("request rejected (HTTP {status}): {detail}")]
    Rejected {
        /// The status.
        status: u16,
        /// The provider's message.
        detail: String,
    },
    /// No connection.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A timeout.
    #[error("{0}")]
    Timeout(String),
    /// The response broke off or did not follow the protocol.
    #[error("bad response: {0}")]
    Protocol(String),
    /// The provider is not usable as configured.
    #[error("not usable: {0}")]
    Config(String),
}

impl FailureKind {
    /// Whether another attempt at the same model may succeed (429 and 5xx).
    pub fn retryable(&self) -> bool {
        matches!(self, FailureKind::RateLimited { .. } | FailureKind::Server { .. })
    }

    /// A short machine-readable name (`unauthorized`, `rate-limited`, `server-error`,
    /// `rejected`, `unreachable`, `timeout`, `bad-response`, `config`).
    pub fn code(&self) -> &'static str {
        match self {
            FailureKind::Unauthorized { .. } => "unauthorized",
            FailureKind::RateLimited { .. } => "rate-limited",
            FailureKind::Server { .. } => "server-error",
            FailureKind::Rejected { .. } => "rejected",
            FailureKind::Unreachable(_) => "unreachable",
            FailureKind::Timeout(_) => "timeout",
            FailureKind::Protocol(_) => "bad-response",
            FailureKind::Config(_) => "config",
        }
    }

    /// The failure for an HTTP error status with the body's error message.
    pub fn from_status(status: u16, retry_after: Option<Duration>, body: &str) -> Self {
        let detail = error_detail(body);
        match status {
            401 | 403 => FailureKind::Unauthorized { status, detail },
            429 => FailureKind::RateLimited { retry_after, detail },
            500..=599 => FailureKind::Server { status, detail },
            _ => FailureKind::Rejected { status, detail },
        }
    }
}

impl From<TransportError> for FailureKind {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Connect(_) | TransportError::InvalidUrl { .. } => FailureKind::Unreachable(e.to_string()),
            TransportError::Timeout { .. } => FailureKind::Timeout(e.to_string()),
            TransportError::Io(_) => FailureKind::Protocol(e.to_string()),
        }
    }
}

/// The `error.message` of a JSON error body (OpenAI, Anthropic and LiteLLM shapes), else the
/// body itself, shortened.
pub fn error_detail(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| {
        let e = v.get("error")?;
        e.get("message").and_then(|m| m.as_str()).map(String::from).or_else(|| e.as_str().map(String::from))
    });
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    if short.is_empty() { "(no details)".into() } else { short }
}

/// A failed call of one model, after its retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider {provider}, model {model}: {kind}{}", if *attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() })]
pub struct ProviderError {
    /// The provider id.
    pub provider: String,
    /// The model id.
    pub model: String,
    /// Why.
    pub kind: FailureKind,
    /// How many attempts were made.
    pub attempts: u32,
}

/// One configured provider, ready to call.
#[derive(Clone)]
pub struct ProviderSpec {
    /// The id (`models.providers.<id>`).
    pub id: String,
    /// The wire protocol.
    pub api: ProviderApi,
    /// The base URL, without a trailing `/`.
    pub base_url: String,
    /// The API key, if any (never printed; [`crate::config::secrets::fingerprint`] for logs).
    pub api_key: Option<String>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// The declared models.
    pub models: Vec<ProviderModel>,
}

impl std::fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("id", &self.id)
            .field("api", &self.api)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|k| crate::config::secrets::fingerprint(k.as_bytes())))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("models", &self.models.iter().map(|m| &m.id).collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderSpec {
    /// The largest completion for `model`, if declared.
    pub fn max_tokens(&self, model: &str) -> Option<u32> {
        self.models.iter().find(|m| m.id == model).and_then(|m| m.max_tokens)
    }

    /// Calls `model` once, streaming: `on_delta` gets each piece of text as it arrives.
    pub async fn complete(
        &self,
        client: &HttpClient,
        model: &str,
        req: &ChatRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, FailureKind> {
        match self.api {
            ProviderApi::OpenaiCompletions => openai::complete(client, self, model, req, on_delta).await,
            ProviderApi::AnthropicMessages => anthropic::complete(client, self, model, req, on_delta).await,
            other => Err(FailureKind::Config(format!(
                "api {:?} is not supported by this gateway yet (use openai-completions or anthropic-messages)",
                serde_json::to_value(other).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            ))),
        }
    }
}

/// A `provider/model` reference split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTarget {
    /// The provider id.
    pub provider: String,
    /// The model id (may itself contain `/`).
    pub model: String,
}

impl ModelTarget {
    /// Parses `provider/model` (split at the first `/`).
    pub fn parse(name: &str) -> Option<Self> {
        let (p, m) = name.split_once('/')?;
        (!p.is_empty() && !m.is_empty()).then(|| Self { provider: p.to_string(), model: m.to_string() })
    }
}

impl std::fmt::Display for ModelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Why the providers cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The snapshot's config does not decode.
    #[error("the snapshot's config does not decode: {0}")]
    Config(String),
    /// A provider's key cannot be re-read from its source.
    #[error("provider {provider}: API key: {reason}")]
    Secret {
        /// The provider id.
        provider: String,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] TransportError),
}

/// The configured providers and the model chain of the default agent.
#[derive(Debug, Clone, Default)]
pub struct ProviderSet {
    /// Providers by id.
    pub providers: BTreeMap<String, ProviderSpec>,
    /// `agents.defaults.model`: primary first, then the fallbacks.
    pub chain: Vec<String>,
}

impl ProviderSet {
    /// From a compiled snapshot: keys are re-read from their sources (file, environment or
    /// config file) and checked against the compiled fingerprints.
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<Self, SetupError> {
        let cfg = snapshot.typed().map_err(|e| SetupError::Config(e.to_string()))?;
        Self::from_config(&cfg, |id| {
            let name = format!("models.providers.{id}.apiKey");
            if !snapshot.secrets.contains_key(&name) {
                return Ok(None);
            }
            snapshot.resolve_secret(&name).map(Some).map_err(|e| e.to_string())
        })
    }

    /// From a typed config with the keys supplied by `key(provider_id)`.
    pub fn from_config(
        cfg: &OpenClawConfig,
        key: impl Fn(&str) -> Result<Option<String>, String>,
    ) -> Result<Self, SetupError> {
        let mut providers = BTreeMap::new();
        for (id, p) in &cfg.models.providers {
            let api_key = match &p.api_key {
                Some(k) if !k.is_empty() => Some(k.clone()),
                _ => key(id).map_err(|reason| SetupError::Secret { provider: id.clone(), reason })?,
            };
            providers.insert(
                id.clone(),
                ProviderSpec {
                    id: id.clone(),
                    api: p.api.unwrap_or(ProviderApi::OpenaiCompletions),
                    base_url: p.base_url.clone().unwrap_or_default().trim_end_matches('/').to_string(),
                    api_key,
                    headers: p.headers.clone(),
                    models: p.models.clone(),
                },
            );
        }
        let chain = cfg.agents.defaults.model.as_ref().map(ModelRef::names).unwrap_or_default();
        Ok(Self { providers, chain: chain.into_iter().map(String::from).collect() })
    }
}

/// The most of an error body kept for the message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// `Retry-After` (delta seconds, possibly fractional) or `retry-after-ms`, if present; values
/// beyond a day are read as a day (the retry policy caps them lower anyway).
pub fn retry_after(headers: &::http::HeaderMap) -> Option<Duration> {
    const DAY: f64 = 86_400.0;
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    let secs = |v: f64| (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(DAY)));
    if let Some(d) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).and_then(|ms| secs(ms / 1000.0)) {
        return Some(d);
    }
    get("retry-after").and_then(|v| v.parse::<f64>().ok()).and_then(secs)
}

/// POSTs a JSON body and returns the response when its status is 2xx; otherwise the failure
/// with the provider's error message.
pub(crate) async fn post_json(
    client: &HttpClient,
    url: &str,
    headers: Vec<(String, String)>,
    body: &impl Serialize,
) -> Result<self::http::Response, FailureKind> {
    let bytes = serde_json::to_vec(body).map_err(|e| FailureKind::Protocol(e.to_string()))?;
    let resp = client.send(::http::Method::POST, url, &headers, Some(bytes)).await?;
    if resp.status.is_success() {
        return Ok(resp);
    }
    let status = resp.status.as_u16();
    let after = retry_after(&resp.headers);
    let text = resp.text(ERROR_BODY_LIMIT).await.unwrap_or_default();
    Err(FailureKind::from_status(status, after, &text))
}

/// Whether a response is a JSON document rather than an event stream (some servers, e.g.
/// LiteLLM's mock models on `/v1/messages`, answer plain JSON even when asked to stream).
pub(crate) fn is_plain_json(resp: &self::http::Response) -> bool {
    resp.headers
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// The most of a plain (non-streamed) completion read.
pub(crate) const PLAIN_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Reads a streamed response's SSE events into `handle` until it reports the end (`Ok(true)`)
/// or the body ends.
pub(crate) async fn read_events(
    mut resp: self::http::Response,
    mut handle: impl FnMut(sse::SseEvent) -> Result<bool, FailureKind>,
) -> Result<(), FailureKind> {
    let mut parser = sse::SseParser::new();
    while let Some(chunk) = resp.chunk().await? {
        for ev in parser.push(&chunk) {
            if handle(ev)? {
                return Ok(());
            }
        }
    }
    if let Some(ev) = parser.finish() {
        handle(ev)?;
    }
    Ok(())
}

/// The extra headers of a provider plus the given ones (the provider's win on conflict).
pub(crate) fn headers_with(spec: &ProviderSpec, base: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        base.into_iter().filter(|(k, _)| !spec.headers.keys().any(|h| h.eq_ignore_ascii_case(k))).collect();
    out.extend(spec.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds_with_the_providers_message() {
        let body = r#"{"error":{"message":"Invalid API key","type":"auth"}}"#;
        assert_eq!(
            FailureKind::from_status(401, None, body),
            FailureKind::Unauthorized { status: 401, detail: "Invalid API key".into() }
        );
        assert!(FailureKind::from_status(429, Some(Duration::from_secs(2)), "slow down").retryable());
        assert!(FailureKind::from_status(503, None, "").retryable());
        assert!(!FailureKind::from_status(400, None, "").retryable());
        assert_eq!(FailureKind::from_status(404, None, "").code(), "rejected");
    }

    #[test]
    fn errors_name_provider_model_and_reason() {
        let e = ProviderError {
            provider: "litellm".into(),
            model: "mock-429".into(),
            kind: FailureKind::RateLimited { retry_after: None, detail: "limit".into() },
            attempts: 3,
        };
        assert_eq!(e.to_string(), "provider litellm, model mock-429: rate limited (HTTP 429): limit (after 3 attempts)");
    }

    #[test]
    fn retry_after_reads_seconds_and_ms_and_never_panics() {
        let h = |k: &str, v: &str| {
            let mut m = ::http::HeaderMap::new();
            m.insert(::http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
            m
        };
        assert_eq!(retry_after(&h("retry-after", "2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&h("retry-after", "0.5")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(&h("retry-after-ms", "250")), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&h("retry-after", "1e300")), Some(Duration::from_secs(86_400)));
        assert_eq!(retry_after(&h("retry-after", "-1")), None);
        assert_eq!(retry_after(&h("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&::http::HeaderMap::new()), None);
    }

    #[test]
    fn model_targets_split_at_the_first_slash() {
        assert_eq!(
            ModelTarget::parse("openrouter/anthropic/claude"),
            Some(ModelTarget { provider: "openrouter".into(), model: "anthropic/claude".into() })
        );
        assert_eq!(ModelTarget::parse("nomodel"), None);
        assert_eq!(ModelTarget::parse("/x"), None);
    }

    #[test]
    fn provider_set_reads_chain_and_keys() {
        let cfg: OpenClawConfig = serde_json::from_value(serde_json::json!({
            "models": {"providers": {
                "a": {"baseUrl": "http://h/v1/", "api": "anthropic-messages", "models": [{"id": "m", "maxTokens": 100}]},
                "b": {"baseUrl": "http://h/v1", "apiKey": "inline"}
            }},
            "agents": {"defaults": {"model": {"primary": "a/m", "fallbacks": ["b/x"]}}}
        }))
        .unwrap();
        let set = ProviderSet::from_config(&cfg, |id| Ok((id == "a").then(|| "from-file".to_string()))).unwrap();
        assert_eq!(set.chain, vec!["a/m", "b/x"]);
        assert_eq!(set.providers["a"].base_url, "http://h/v1");
        assert_eq!(set.providers["a"].api_key.as_deref(), Some("from-file"));
        assert_eq!(set.providers["b"].api_key.as_deref(), Some("inline"));
        assert_eq!(set.providers["b"].api, ProviderApi::OpenaiCompletions);
        assert_eq!(set.providers["a"].max_tokens("m"), Some(100));
        assert!(!format!("{:?}", set.providers["a"]).contains("from-file"), "keys never in Debug output");
    }
}
