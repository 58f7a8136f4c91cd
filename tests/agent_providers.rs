//! Agent turns against a real provider (issue 11): the LiteLLM proxy from PyPI (one per test
//! binary, `tests/support/litellm.rs`) for `openai-completions` and `anthropic-messages`, with
//! the requests asserted from the proxy's side; and small in-test HTTP servers for what the
//! proxy cannot show (401, `Retry-After`, a stalled stream, a provider that is down).

#[path = "support/litellm.rs"]
mod litellm;
#[path = "support/peer.rs"]
mod peer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;
use openclaw::agent::providers::{FailureKind, ProviderSet, RetryPolicy, Sleeper, Timeouts};
use openclaw::agent::providers::HttpClient;
use openclaw::agent::turn::{Agent, TurnError, TurnReply, TurnRequest};
use openclaw::config::model::OpenClawConfig;
use serde_json::{json, Value};

/// Records the delays instead of sleeping.
#[derive(Default)]
struct RecordingSleeper(Mutex<Vec<Duration>>);

impl Sleeper for RecordingSleeper {
    fn sleep(&self, d: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.0.lock().unwrap().push(d);
        Box::pin(async {})
    }
}

fn agent(providers: Value, chain: &[&str], workspace: Option<&Path>, timeouts: Timeouts) -> (Agent, Arc<RecordingSleeper>) {
    let cfg: OpenClawConfig = serde_json::from_value(json!({
        "models": {"providers": providers},
        "agents": {"defaults": {"model": {"primary": chain[0], "fallbacks": &chain[1..]}}}
    }))
    .unwrap();
    let set = ProviderSet::from_config(&cfg, |_| Ok(None)).unwrap();
    let mut a = Agent::new(HttpClient::new(timeouts).unwrap(), set);
    let sleeper = Arc::new(RecordingSleeper::default());
    a.sleeper = sleeper.clone();
    a.retry = RetryPolicy { rate_limit_attempts: 3, server_error_attempts: 2, ..RetryPolicy::default() };
    a.workspace = workspace.map(Path::to_path_buf);
    (a, sleeper)
}

fn litellm_providers(p: &litellm::LiteLlm) -> Value {
    json!({
        "litellm": {"baseUrl": format!("{}/v1", p.base_url()), "apiKey": litellm::MASTER_KEY, "api": "openai-completions",
                    "models": [{"id": "mock-gpt"}, {"id": "mock-429"}, {"id": "mock-500"}]},
        "anthro": {"baseUrl": p.base_url(), "apiKey": litellm::MASTER_KEY, "api": "anthropic-messages",
                   "models": [{"id": "relay-gpt", "maxTokens": 256}]}
    })
}

async fn turn(a: &Agent, session: &str, message: &str) -> (Result<TurnReply, TurnError>, Vec<String>) {
    let mut deltas = Vec::new();
    let req = TurnRequest { session_key: session.into(), message: message.into(), model: None };
    let r = a.turn(req, &mut |d: &str| deltas.push(d.to_string())).await;
    (r, deltas)
}

fn workspace(tag: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("AGENTS.md"), format!("Agents rules {tag}.\n")).unwrap();
    std::fs::write(d.path().join("SOUL.md"), "Speak softly.\n").unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_completions_turn_streams_the_mock_text_with_system_prompt_and_history() {
    let test = "openai_completions_turn_streams_the_mock_text_with_system_prompt_and_history";
    let Some(p) = tokio::task::spawn_blocking(move || litellm::shared(test)).await.unwrap() else { return };
    let tag = "tag-openai-7d1";
    let ws = workspace(tag);
    let (a, _) = agent(litellm_providers(p), &["litellm/mock-gpt"], Some(ws.path()), Timeouts::default());

    let (r, deltas) = turn(&a, "agent:main:main", &format!("first {tag}")).await;
    let reply = r.unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    assert_eq!(reply.text, litellm::MOCK_TEXT);
    assert!(deltas.len() > 1, "streamed in pieces: {deltas:?}");
    assert_eq!(deltas.concat(), litellm::MOCK_TEXT);
    assert_eq!((reply.provider.as_str(), reply.model.as_str()), ("litellm", "mock-gpt"));

    let (r, _) = turn(&a, "agent:main:main", &format!("second {tag}")).await;
    r.unwrap();
    let seen = p.requests_with(tag);
    assert_eq!(seen.len(), 2, "{seen:#?}");
    let second = &seen[1];
    assert_eq!(second["model"], "mock-gpt");
    assert_eq!(second["stream"], true);
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4, "system, first exchange, second message: {msgs:#?}");
    assert_eq!(msgs[0]["role"], "system");
    let system = msgs[0]["content"].as_str().unwrap();
    assert!(system.contains("## AGENTS.md") && system.contains(&format!("Agents rules {tag}.")), "{system}");
    assert!(system.contains("## SOUL.md\n\nSpeak softly."), "{system}");
    assert_eq!(msgs[1], json!({"role": "user", "content": format!("first {tag}")}));
    assert_eq!(msgs[2], json!({"role": "assistant", "content": litellm::MOCK_TEXT}));
    assert_eq!(msgs[3], json!({"role": "user", "content": format!("second {tag}")}));

    // `/new` starts over: the next request carries no history.
    let (r, _) = turn(&a, "agent:main:main", &format!("/new third {tag}")).await;
    assert!(r.unwrap().reset);
    let third = &p.requests_with(tag)[2];
    let msgs = third["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert_eq!(msgs[1]["content"], format!("third {tag}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_streams_the_relay_text() {
    let test = "anthropic_messages_streams_the_relay_text";
    let Some(p) = tokio::task::spawn_blocking(move || litellm::shared(test)).await.unwrap() else { return };
    let tag = "tag-anthropic-3c9";
    let ws = workspace(tag);
    let (a, _) = agent(litellm_providers(p), &["anthro/relay-gpt"], Some(ws.path()), Timeouts::default());
    let (r, deltas) = turn(&a, "agent:main:direct:+15550001111", &format!("hi {tag}")).await;
    let reply = r.unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    assert_eq!(reply.text, litellm::MOCK_TEXT);
    assert!(deltas.len() > 1, "streamed in pieces: {deltas:?}");
    assert_eq!((reply.provider.as_str(), reply.model.as_str()), ("anthro", "relay-gpt"));

    let seen: Vec<Value> = p.requests_with(tag).into_iter().filter(|r| r["call_type"] == "anthropic_messages").collect();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0]["model"], "relay-gpt");
    assert_eq!(seen[0]["max_tokens"], 256, "the model's maxTokens");
    assert!(seen[0]["system"].as_str().unwrap().contains(&format!("Agents rules {tag}.")));
    assert_eq!(seen[0]["messages"], json!([{"role": "user", "content": format!("hi {tag}")}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_model_is_retried_then_the_fallback_answers() {
    let test = "rate_limited_model_is_retried_then_the_fallback_answers";
    let Some(p) = tokio::task::spawn_blocking(move || litellm::shared(test)).await.unwrap() else { return };
    let tag = "tag-429-5e2";
    let (a, sleeper) = agent(litellm_providers(p), &["litellm/mock-429", "litellm/mock-gpt"], None, Timeouts::default());
    let (r, _) = turn(&a, "s-429", &format!("hello {tag}")).await;
    let reply = r.unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    assert_eq!((reply.text.as_str(), reply.model.as_str()), (litellm::MOCK_TEXT, "mock-gpt"));
    assert_eq!(reply.failed.len(), 1);
    let f = &reply.failed[0];
    assert_eq!((f.provider.as_str(), f.model.as_str(), f.attempts), ("litellm", "mock-429", 3));
    assert!(matches!(f.kind, FailureKind::RateLimited { .. }), "{f}");
    assert_eq!(sleeper.0.lock().unwrap().len(), 2, "two backoffs between three attempts");
    let models: Vec<String> = p.requests_with(tag).iter().map(|r| r["model"].as_str().unwrap().to_string()).collect();
    assert_eq!(models, ["mock-429", "mock-429", "mock-429", "mock-gpt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_typed_with_provider_and_model() {
    let test = "server_error_is_typed_with_provider_and_model";
    let Some(p) = tokio::task::spawn_blocking(move || litellm::shared(test)).await.unwrap() else { return };
    let tag = "tag-500-8a4";
    let (a, _) = agent(litellm_providers(p), &["litellm/mock-500"], None, Timeouts::default());
    let (r, deltas) = turn(&a, "s-500", &format!("hello {tag}")).await;
    let err = r.unwrap_err();
    let f = err.last_failure().unwrap();
    assert!(matches!(f.kind, FailureKind::Server { status: 500, .. }), "{err}");
    assert_eq!(f.attempts, 2);
    assert!(err.to_string().starts_with("provider litellm, model mock-500: server error (HTTP 500)"), "{err}");
    assert!(deltas.is_empty());
    assert_eq!(p.requests_with(tag).len(), 2);
    assert!(a.history.load("s-500").await.unwrap().is_empty(), "a failed turn stores nothing");
}

#[tokio::test]
async fn unreachable_provider_is_typed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let providers = json!({"down": {"baseUrl": format!("http://127.0.0.1:{port}/v1"), "api": "openai-completions"}});
    let (a, sleeper) = agent(providers, &["down/m"], None, Timeouts::default());
    let err = turn(&a, "s", "hi").await.0.unwrap_err();
    let f = err.last_failure().unwrap();
    assert!(matches!(f.kind, FailureKind::Unreachable(_)), "{err}");
    assert!(err.to_string().starts_with("provider down, model m: unreachable: cannot connect"), "{err}");
    assert!(sleeper.0.lock().unwrap().is_empty(), "no retry on an unreachable provider");
}

/// A loopback HTTP server for the cases LiteLLM cannot produce.
async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

const SSE_OK: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"o\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"k\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

#[tokio::test]
async fn rate_limit_then_ok_honours_retry_after_and_answers_once() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                if h.fetch_add(1, Ordering::SeqCst) == 0 {
                    (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "2")], "{\"error\":{\"message\":\"slow down\"}}")
                        .into_response()
                } else {
                    ([("content-type", "text/event-stream")], SSE_OK).into_response()
                }
            }
        }),
    );
    let base = serve(app).await;
    let (a, sleeper) = agent(json!({"p": {"baseUrl": format!("{base}/v1")}}), &["p/m"], None, Timeouts::default());
    let reply = turn(&a, "s", "hi").await.0.unwrap();
    assert_eq!(reply.text, "ok");
    assert!(reply.failed.is_empty());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(*sleeper.0.lock().unwrap(), vec![Duration::from_secs(2)], "Retry-After honoured");
}

#[tokio::test]
async fn rejected_key_is_typed_unauthorized_and_not_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                assert_eq!(headers["x-api-key"], "wrong");
                assert_eq!(headers["anthropic-version"], "2023-06-01");
                assert_eq!(headers["x-extra"], "1", "configured headers are sent");
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}",
                )
            }
        }),
    );
    let base = serve(app).await;
    let providers = json!({"claude": {"baseUrl": base, "api": "anthropic-messages", "apiKey": "wrong", "headers": {"x-extra": "1"}}});
    let (a, _) = agent(providers, &["claude/opus"], None, Timeouts::default());
    let err = turn(&a, "s", "hi").await.0.unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider claude, model opus: key rejected (HTTP 401): invalid x-api-key"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_stalled_stream_times_out_and_the_fallback_answers() {
    let app = axum::Router::new()
        .route(
            "/stall/chat/completions",
            axum::routing::post(|| async {
                let first = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from("data: {\"choices\":[]}\n\n"))
                });
                let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(first, futures_util::stream::pending()));
                ([("content-type", "text/event-stream")], body)
            }),
        )
        .route(
            "/ok/chat/completions",
            axum::routing::post(|| async { ([("content-type", "text/event-stream")], SSE_OK) }),
        );
    let base = serve(app).await;
    let providers = json!({"slow": {"baseUrl": format!("{base}/stall")}, "fast": {"baseUrl": format!("{base}/ok")}});
    let timeouts = Timeouts { connect: Duration::from_secs(2), idle: Duration::from_millis(300) };
    let (a, _) = agent(providers, &["slow/m", "fast/m"], None, timeouts);
    let reply = turn(&a, "s", "hi").await.0.unwrap();
    assert_eq!((reply.text.as_str(), reply.provider.as_str()), ("ok", "fast"));
    let f = &reply.failed[0];
    assert!(matches!(f.kind, FailureKind::Timeout(_)), "{f}");
    assert!(f.to_string().contains("waiting for the next streamed chunk"), "{f}");
}

fn models_status(system: &Path, state: &Path, json: bool) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_openclaw"));
    cmd.env_remove("OPENCLAW_CONFIG_PATH").env_remove("OPENCLAW_STATE_DIR").args(["models", "status", "--timeout", "5"]);
    cmd.arg("--config").arg(system).arg("--state-dir").arg(state);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_status_reports_reachability_key_and_listing_per_provider() {
    let test = "models_status_reports_reachability_key_and_listing_per_provider";
    let Some(p) = tokio::task::spawn_blocking(move || litellm::shared(test)).await.unwrap() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("litellm.key");
    std::fs::write(&key, format!("{}\n", litellm::MASTER_KEY)).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let good = format!(
        r#"{{
  models: {{ providers: {{
    litellm: {{ baseUrl: "{base}/v1", apiKeyFile: "{key}", api: "openai-completions", models: [{{ id: "mock-gpt" }}] }},
    anthro: {{ baseUrl: "{base}", apiKeyFile: "{key}", api: "anthropic-messages", models: [{{ id: "relay-gpt" }}] }},
  }} }},
  agents: {{ defaults: {{ model: {{ primary: "litellm/mock-gpt", fallbacks: ["anthro/relay-gpt"] }} }} }},
}}"#,
        base = p.base_url(),
        key = key.display()
    );
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let system = dir.path().join("openclaw.json");
    std::fs::write(&system, &good).unwrap();
    let (code, out, err) = models_status(&system, &state, false);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.starts_with("Default model: litellm/mock-gpt (fallbacks: anthro/relay-gpt)\n"), "{out}");
    assert!(out.contains("\nlitellm (openai-completions, "), "{out}");
    assert!(out.contains("  key:          accepted\n  model mock-gpt: listed\n"), "{out}");
    assert!(out.contains("  model relay-gpt: listed\n"), "{out}");
    assert!(!out.contains(litellm::MASTER_KEY), "the key is shown as a fingerprint only");

    let bad = good
        .replace("models: [{ id: \"mock-gpt\" }]", "models: [{ id: \"mock-gpt\" }, { id: \"ghost\" }]")
        .replace(
            "  } },\n  agents",
            &format!("    down: {{ baseUrl: \"http://127.0.0.1:{down}/v1\", models: [{{ id: \"x\" }}] }},\n  }} }},\n  agents"),
        );
    assert!(bad.contains("down:") && bad.contains("ghost"), "{bad}");
    std::fs::write(&system, &bad).unwrap();
    let (code, out, err) = models_status(&system, &state, true);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    let by_id = |id: &str| v["providers"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned().unwrap();
    let l = by_id("litellm");
    assert_eq!((l["reachable"].clone(), l["keyAccepted"].clone(), l["ok"].clone()), (json!(true), json!(true), json!(false)));
    assert_eq!(l["models"], json!([{"id": "mock-gpt", "listed": true}, {"id": "ghost", "listed": false}]));
    assert_eq!(l["keyFingerprint"], openclaw::config::secrets::fingerprint(litellm::MASTER_KEY.as_bytes()));
    let d = by_id("down");
    assert_eq!((d["reachable"].clone(), d["keyAccepted"].clone()), (json!(false), Value::Null));
    assert!(d["error"].as_str().unwrap().starts_with("cannot connect"), "{d}");
    assert_eq!(by_id("anthro")["ok"], true);
}

/// Counts requests in flight, overall and per session (the session is the message's first word).
#[derive(Default)]
struct InFlight {
    now: Mutex<std::collections::HashMap<String, usize>>,
    max: Mutex<std::collections::HashMap<String, usize>>,
}

impl InFlight {
    fn enter(&self, key: &str) {
        for k in [key, "*"] {
            let mut now = self.now.lock().unwrap();
            let n = now.entry(k.to_string()).or_default();
            *n += 1;
            let mut max = self.max.lock().unwrap();
            let m = max.entry(k.to_string()).or_default();
            *m = (*m).max(*n);
        }
    }
    fn leave(&self, key: &str) {
        for k in [key, "*"] {
            *self.now.lock().unwrap().get_mut(k).unwrap() -= 1;
        }
    }
    fn max(&self, key: &str) -> usize {
        self.max.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

async fn slow_server(inflight: Arc<InFlight>) -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |body: axum::Json<Value>| {
            let inflight = inflight.clone();
            async move {
                let msgs = body["messages"].as_array().unwrap();
                let last = msgs.last().unwrap()["content"].as_str().unwrap().to_string();
                let session = last.split_whitespace().next().unwrap().to_string();
                inflight.enter(&session);
                tokio::time::sleep(Duration::from_millis(150)).await;
                inflight.leave(&session);
                ([("content-type", "text/event-stream")], SSE_OK)
            }
        }),
    );
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_turn_at_a_time_per_session_sessions_in_parallel_within_the_limit() {
    let inflight = Arc::new(InFlight::default());
    let base = slow_server(inflight.clone()).await;
    let (a, _) = agent(json!({"p": {"baseUrl": format!("{base}/v1")}}), &["p/m"], None, Timeouts::default());
    let a = Arc::new(a.with_max_concurrent(4));
    let turns = ["A", "B"].iter().flat_map(|s| (0..3).map(move |n| (s.to_string(), n))).map(|(s, n)| {
        let a = a.clone();
        async move { turn(&a, &s, &format!("{s} message {n}")).await.0.unwrap() }
    });
    let replies = futures_util::future::join_all(turns).await;
    assert_eq!(replies.len(), 6);
    assert_eq!(inflight.max("A"), 1, "one turn at a time in session A");
    assert_eq!(inflight.max("B"), 1, "one turn at a time in session B");
    assert_eq!(inflight.max("*"), 2, "sessions A and B ran in parallel");
    let history = a.history.load("A").await.unwrap();
    assert_eq!(history.len(), 6, "three exchanges, none lost");

    let inflight = Arc::new(InFlight::default());
    let base = slow_server(inflight.clone()).await;
    let (b, _) = agent(json!({"p": {"baseUrl": format!("{base}/v1")}}), &["p/m"], None, Timeouts::default());
    let b = Arc::new(b.with_max_concurrent(1));
    let turns = ["C", "D", "E"].map(|s| {
        let b = b.clone();
        async move { turn(&b, s, &format!("{s} hi")).await.0.unwrap() }
    });
    futures_util::future::join_all(turns).await;
    assert_eq!(inflight.max("*"), 1, "global limit of 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_accepts_the_mocks_plain_json_answer() {
    // LiteLLM's mock models answer `/v1/messages` with plain JSON even when asked to stream
    // (reference §6): the client takes that as the whole reply.
    let test = "anthropic_messages_accepts_the_mocks_plain_json_answer";
    let Some(p) = tokio::task::spawn_blocking(move || litellm::shared(test)).await.unwrap() else { return };
    let providers = json!({"anthro": {"baseUrl": p.base_url(), "apiKey": litellm::MASTER_KEY, "api": "anthropic-messages"}});
    let (a, _) = agent(providers, &["anthro/mock-gpt"], None, Timeouts::default());
    let (r, deltas) = turn(&a, "s-plain", "hi tag-plain-4f0").await;
    let reply = r.unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    assert_eq!(reply.text, litellm::MOCK_TEXT);
    assert_eq!(deltas, [litellm::MOCK_TEXT]);
}
