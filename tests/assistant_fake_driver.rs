//! The assistant answers (issue 11 items 3–4) and hooks deliver or refuse (issue 10 item 5),
//! in-process: a real gateway (`prepare` + `serve`) with an in-test fake channel driver (a task
//! that claims from each account's `Outbox`, records and marks `sent`, answers target checks,
//! and pushes `InboundMessage`s into the gateway's sink), and real providers: the LiteLLM proxy
//! (requests asserted from its side) and small in-test OpenAI-compatible servers for what the
//! proxy cannot produce (a 9,000-character reply, 429 then 200).

#[path = "support/litellm.rs"]
#[allow(dead_code)]
mod litellm;
#[path = "support/fake_driver.rs"]
mod fake_driver;
#[path = "support/peer.rs"]
mod peer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use openclaw::agent::providers::{HttpClient, ProviderSet, RetryPolicy, Timeouts};
use openclaw::agent::turn::Agent;
use openclaw::app::{AccountSettings, AppConfig};
use openclaw::channels::registry::{AccountHandle, ChannelRegistry};
use openclaw::channels::status::{ChannelStatus, ChannelStatusHandle, ConnectionState};
use openclaw::config::model::whatsapp::{ChunkMode, DmPolicy, ReplyToMode, WhatsAppConfig};
use openclaw::config::model::OpenClawConfig;
use openclaw::gateway::settings::{Secret, TokenSource, TokenSourceKind};
use openclaw::messaging::{ChatId, InboundBody, InboundMessage, MessageId, OutboundBody, Outbox, OutboxPolicy};
use fake_driver::{cli, fake_driver, jid, now, Seen};
use serde_json::{json, Value};

const HOOK_TOKEN: &str = "hook-token-0123456789abcdef";
const OWNER: &str = "+15550001111";
const STRANGER: &str = "+15550002222";






fn dm(account: &str, from: &str, id: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel: "whatsapp".into(),
        account_id: account.into(),
        chat: ChatId::new(jid(from)),
        sender: ChatId::new(jid(from)),
        sender_e164: Some(from.into()),
        sender_name: None,
        id: MessageId::new(id),
        timestamp_ms: now(),
        is_group: false,
        from_me: false,
        reply_to: None,
        reply_to_sender: None,
        mentions: Vec::new(),
        body: InboundBody::Text { text: text.into() },
    }
}

fn agent(providers: Value, model: &str) -> Agent {
    let cfg: OpenClawConfig =
        serde_json::from_value(json!({"models": {"providers": providers}, "agents": {"defaults": {"model": model}}})).unwrap();
    let set = ProviderSet::from_config(&cfg, |_| Ok(None)).unwrap();
    let mut a = Agent::new(HttpClient::new(Timeouts { connect: Duration::from_secs(2), idle: Duration::from_secs(30) }).unwrap(), set);
    a.retry = RetryPolicy { rate_limit_attempts: 3, server_error_attempts: 1, ..RetryPolicy::default() };
    a
}

struct Gw {
    port: u16,
    st: Arc<openclaw::gateway::state::AppState>,
    seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Gw {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(15), self.done).await;
    }
}

/// A gateway with accounts `default` (allowlist: OWNER) and `pair` (pairing), the given agent,
/// both accounts linked and connected through the fake driver.
async fn gateway(dir: &std::path::Path, agent: Option<Agent>, default_to: Option<&str>) -> Gw {
    gateway_opts(dir, agent, default_to, true).await
}

/// [`gateway`]; with `connected` false both accounts are linked but disconnected (their drivers
/// claim nothing until `seen.hold` is cleared).
async fn gateway_opts(dir: &std::path::Path, agent: Option<Agent>, default_to: Option<&str>, connected: bool) -> Gw {
    let wa: WhatsAppConfig = serde_json::from_value(json!({
        "accounts": {
            "default": {"dmPolicy": "allowlist", "allowFrom": [OWNER]},
            "pair": {"dmPolicy": "pairing", "allowFrom": [OWNER]}
        }
    }))
    .unwrap();
    let mut settings = openclaw::gateway::GatewaySettings::new(openclaw::store::StateLayout::new(dir));
    settings.port = 0;
    settings.hooks.enabled = true;
    settings.hooks.token_sources =
        vec![TokenSource { kind: TokenSourceKind::Flag, label: "--hooks-token".into(), value: Secret::new(HOOK_TOKEN), file: None }];
    let accounts = ["default", "pair"]
        .iter()
        .map(|id| {
            let mut resolved = wa.account(id);
            assert_eq!(resolved.dm_policy, if *id == "pair" { DmPolicy::Pairing } else { DmPolicy::Allowlist });
            resolved.text_chunk_limit = 4000;
            AccountSettings {
                channel: "whatsapp".into(),
                resolved,
                chunk_mode: ChunkMode::Length,
                reply_to_mode: ReplyToMode::First,
                default_to: default_to.map(str::to_string).filter(|_| *id == "default"),
            }
        })
        .collect();
    settings.app = AppConfig {
        accounts,
        default_accounts: vec![("whatsapp".into(), "default".into())],
        ack_reaction: Some("👀".into()),
        ack_reaction_scope: openclaw::config::model::messages::AckReactionScope::Direct,
        agent: agent.map(Arc::new),
        ..AppConfig::default()
    };
    let status = ChannelStatusHandle::new();
    for id in ["default", "pair"] {
        let state = if connected {
            ConnectionState::Connected { since_ms: now() }
        } else {
            ConnectionState::BackingOff { until_ms: now() + 60_000, reason: "connection lost".into(), attempt: 1 }
        };
        let mut s = ChannelStatus::new("whatsapp", id, state);
        s.linked = true;
        s.connected = connected;
        status.upsert(s);
    }
    let prepared = openclaw::gateway::prepare(settings, openclaw::gateway::logbuf::LogBuffer::new(), status).unwrap();
    let port = prepared.local_addr().port();
    let st = prepared.state();
    let seen = Arc::new(Seen::default());
    seen.hold.store(!connected, Ordering::SeqCst);
    let handles: Vec<_> = ["default", "pair"].iter().map(|id| fake_driver(dir, id, seen.clone())).collect();
    st.app.set_registry(ChannelRegistry::new(handles));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        openclaw::gateway::serve(prepared, Default::default(), async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Gw { port, st, seen, stop: Some(stop), done }
}

async fn http(port: u16, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (m, p) = (method.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let b = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{m} {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {HOOK_TOKEN}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status: u16 = out[9..12].parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn run_state(port: u16, id: &str, want: &[&str]) -> Value {
    for _ in 0..1500 {
        let (_, v) = http(port, "GET", &format!("/hooks/runs/{id}"), None).await;
        if want.contains(&v["run"]["state"].as_str().unwrap_or("")) {
            return v["run"].clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run {id} never reached {want:?}");
}


fn litellm_agent(p: &litellm::LiteLlm) -> Agent {
    agent(
        json!({"litellm": {"baseUrl": format!("{}/v1", p.base_url()), "apiKey": litellm::MASTER_KEY, "api": "openai-completions",
                            "models": [{"id": "mock-gpt"}]}}),
        "litellm/mock-gpt",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_allowlisted_dm_gets_the_reply_stranger_gets_nothing_and_no_provider_request() {
    let Some(p) = litellm::shared("issue11_allowlisted_dm") else { return };
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), Some(litellm_agent(p)), None).await;
    let tag_owner = format!("owner-{}", uuid::Uuid::new_v4());
    let tag_stranger = format!("stranger-{}", uuid::Uuid::new_v4());
    gw.st.inbound.push(dm("default", STRANGER, "S1", &format!("hi {tag_stranger}"))).await.unwrap();
    gw.st.inbound.push(dm("default", OWNER, "O1", &format!("hello {tag_owner}"))).await.unwrap();
    let owner_chat = jid(OWNER);
    wait_until("the owner's reply", || gw.seen.texts_to(&owner_chat).iter().any(|t| t == litellm::MOCK_TEXT)).await;
    // The ack reaction went out first, the reply quotes the message (replyToMode first), read.
    let sent = gw.seen.sent.lock().unwrap().clone();
    let to_owner: Vec<_> = sent.iter().filter(|m| m.chat.as_str() == owner_chat).collect();
    assert!(matches!(&to_owner[0].body, OutboundBody::Reaction { target, emoji } if target.as_str() == "O1" && emoji == "👀"), "{to_owner:?}");
    assert_eq!(to_owner[1].reply_to.as_ref().map(|m| m.as_str()), Some("O1"));
    assert!(gw.seen.read.lock().unwrap().contains(&"O1".to_string()));
    assert!(gw.seen.typing.load(Ordering::SeqCst) >= 2, "composing then paused");
    // The proxy saw the owner's message with the system prompt, and nothing of the stranger's.
    let reqs = p.requests_with(&tag_owner);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(reqs[0].to_string().contains("system"), "{}", reqs[0]);
    assert!(p.requests_with(&tag_stranger).is_empty(), "a dropped sender causes no provider request");
    assert!(gw.seen.texts_to(&jid(STRANGER)).is_empty());
    assert!(!gw.seen.read.lock().unwrap().contains(&"S1".to_string()));
    // The turn is recorded as an inbound run: peer, session, provider/model, delivered once the
    // (fake) driver recorded the server's ack; GET …/runs/{id} shows it. The dropped stranger
    // made no run.
    let inbound = gw.st.runs.list(10, Some("inbound"));
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    let run = run_state(gw.port, &inbound[0].run_id, &["delivered", "failed"]).await;
    assert_eq!((run["state"].as_str(), run["origin"].as_str()), (Some("delivered"), Some("inbound")), "{run}");
    assert_eq!(run["delivery"]["to"], owner_chat);
    assert_eq!(run["sessionKey"], "agent:main:main");
    assert_eq!((run["provider"].as_str(), run["model"].as_str()), (Some("litellm"), Some("mock-gpt")));
    assert!(run["message"].as_str().unwrap().contains(&tag_owner), "{run}");
    assert_eq!(run["reply"], litellm::MOCK_TEXT);
    // History is persisted: the next turn carries the first exchange.
    let tag2 = format!("second-{}", uuid::Uuid::new_v4());
    gw.st.inbound.push(dm("default", OWNER, "O2", &format!("again {tag2}"))).await.unwrap();
    wait_until("the second reply", || p.requests_with(&tag2).len() == 1).await;
    let r = p.requests_with(&tag2)[0].to_string();
    assert!(r.contains(&tag_owner) && r.contains(litellm::MOCK_TEXT), "history sent: {r}");
    // /hooks/agent with channel "last" targets the contact of the last DM.
    let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "from a hook", "channel": "last"}))).await;
    assert_eq!(code, 200, "{v}");
    let run = run_state(gw.port, v["runId"].as_str().unwrap(), &["delivered", "failed"]).await;
    assert_eq!(run["state"], "delivered", "{run}");
    assert_eq!(run["delivery"]["to"], owner_chat);
    assert_eq!((run["provider"].as_str(), run["model"].as_str()), (Some("litellm"), Some("mock-gpt")));
    gw.stop().await;
    // Sessions persist: `sessions list` shows the main session with its route.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openclaw"))
        .args(["sessions", "list", "--json", "--state-dir"])
        .arg(dir.path())
        .env_remove("OPENCLAW_CONFIG_PATH")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["sessions"][0]["key"], "agent:main:main", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(v["sessions"][0]["lastRoute"]["peer"], OWNER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_pairing_code_reply_then_approve_then_answered() {
    let Some(p) = litellm::shared("issue11_pairing") else { return };
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), Some(litellm_agent(p)), None).await;
    let tag = format!("pair-{}", uuid::Uuid::new_v4());
    gw.st.inbound.push(dm("pair", STRANGER, "P1", &format!("hi {tag}"))).await.unwrap();
    let chat = jid(STRANGER);
    wait_until("the pairing challenge", || gw.seen.texts_to(&chat).len() == 1).await;
    let challenge = gw.seen.texts_to(&chat)[0].clone();
    assert!(challenge.contains("Pairing code") && challenge.contains(STRANGER), "{challenge}");
    let code = challenge
        .lines()
        .skip_while(|l| !l.contains("Pairing code"))
        .skip(1)
        .map(|l| l.trim().trim_matches('`').trim())
        .find(|l| !l.is_empty())
        .unwrap()
        .to_string();
    assert!(p.requests_with(&tag).is_empty(), "no provider request before approval");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openclaw"))
        .args(["pairing", "approve", "whatsapp", &code, "--state-dir"])
        .arg(dir.path())
        .env_remove("OPENCLAW_CONFIG_PATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let tag2 = format!("approved-{}", uuid::Uuid::new_v4());
    gw.st.inbound.push(dm("pair", STRANGER, "P2", &format!("now {tag2}"))).await.unwrap();
    wait_until("the reply after approval", || gw.seen.texts_to(&chat).iter().any(|t| t == litellm::MOCK_TEXT)).await;
    assert_eq!(p.requests_with(&tag2).len(), 1);
    gw.stop().await;
}

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// An OpenAI-compatible server answering `text` (plain JSON), after `fail_first` 429s.
async fn scripted(text: String, fail_first: usize) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let (h, text) = (h.clone(), text.clone());
            async move {
                if h.fetch_add(1, Ordering::SeqCst) < fail_first {
                    (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "{\"error\":{\"message\":\"slow down\"}}").into_response()
                } else {
                    axum::Json(json!({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})).into_response()
                }
            }
        }),
    );
    (serve(app).await, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_a_9000_character_reply_is_three_ordered_messages_and_429_then_200_is_one_reply() {
    let dir = tempfile::tempdir().unwrap();
    let long = (0..1500).map(|i| format!("w{i:04} ")).collect::<String>(); // 9,000 characters
    assert_eq!(long.chars().count(), 9_000);
    let (base, hits) = scripted(long.clone(), 1).await;
    let gw = gateway(dir.path(), Some(agent(json!({"p": {"baseUrl": format!("{base}/v1")}}), "p/m")), None).await;
    gw.st.inbound.push(dm("default", OWNER, "L1", "long please")).await.unwrap();
    let chat = jid(OWNER);
    wait_until("three parts", || gw.seen.texts_to(&chat).len() == 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let parts = gw.seen.texts_to(&chat);
    assert_eq!(parts.len(), 3, "one reply only");
    // Parts break at whitespace (dropped at the break, as upstream): every word, in order.
    let words: Vec<&str> = parts.iter().flat_map(|p| p.split_whitespace()).collect();
    assert!(words == long.split_whitespace().collect::<Vec<_>>(), "in order, nothing lost");
    assert!(parts.iter().all(|p| p.encode_utf16().count() <= 4000));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "429 then 200");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_provider_down_run_fails_with_the_reason_and_no_reply() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gw = gateway(dir.path(), Some(agent(json!({"down": {"baseUrl": format!("http://127.0.0.1:{dead}/v1")}}), "down/m")), None).await;
    let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "hi", "channel": "whatsapp", "to": OWNER}))).await;
    assert_eq!(code, 200, "{v}");
    let run = run_state(gw.port, v["runId"].as_str().unwrap(), &["failed", "delivered"]).await;
    assert_eq!(run["state"], "failed");
    let err = run["error"].as_str().unwrap();
    assert!(err.contains("down") && err.contains("unreachable"), "{err}");
    assert_eq!(run["delivery"]["to"], jid(OWNER));
    // And an inbound DM gets no reply either.
    gw.st.inbound.push(dm("default", OWNER, "D1", "anyone there?")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gw.seen.texts_to(&jid(OWNER)).is_empty(), "{:?}", gw.seen.texts_to(&jid(OWNER)));
    // The failed inbound turn is a failed run with the reason.
    let mut inbound = Vec::new();
    wait_until("the inbound run", || {
        inbound = gw.st.runs.list(10, Some("inbound"));
        inbound.first().is_some_and(|r| r.state == openclaw::agent::runs::RunState::Failed)
    })
    .await;
    let err = inbound[0].error.as_deref().unwrap();
    assert!(err.contains("down") && err.contains("unreachable"), "{err}");
    assert_eq!(inbound[0].delivery.as_ref().map(|d| d.to.as_str()), Some(jid(OWNER).as_str()));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_item5_hooks_send_enqueues_reports_the_outcome_and_refuses_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), None, None).await;
    let (code, v) = http(gw.port, "POST", "/hooks/send", Some(json!({"channel": "whatsapp", "to": OWNER, "message": "no LLM here"}))).await;
    assert_eq!(code, 202, "{v}");
    let id = v["messageId"].as_str().unwrap().to_string();
    assert_eq!(v["chat"], jid(OWNER));
    wait_until("the send", || gw.seen.texts_to(&jid(OWNER)) == ["no LLM here"]).await;
    let mut state = Value::Null;
    for _ in 0..200 {
        state = http(gw.port, "GET", &format!("/hooks/send/{id}"), None).await.1;
        if state["state"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(state["state"], "sent", "{state}");
    // Refusals: invalid number, not on WhatsApp, unknown account, unknown channel — nothing stored.
    for (body, want, needle) in [
        (json!({"channel": "whatsapp", "to": "12345", "message": "x"}), 400, "invalid target"),
        (json!({"channel": "whatsapp", "to": "+15559999000", "message": "x"}), 422, "not on WhatsApp"),
        (json!({"channel": "whatsapp", "to": OWNER, "message": "x", "account": "nope"}), 400, "Unknown account \"nope\""),
        (json!({"channel": "telegram", "to": OWNER, "message": "x"}), 400, "not configured"),
        (json!({"channel": "whatsapp", "to": OWNER}), 400, "message required"),
    ] {
        let (code, v) = http(gw.port, "POST", "/hooks/send", Some(body.clone())).await;
        assert_eq!(code, want, "{body} → {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{v}");
    }
    assert_eq!(gw.seen.count(), 1);
    // `openclaw message send`: exit 0 once acknowledged; clear errors otherwise.
    let (code, out, err) = cli(dir.path(), gw.port, &["message", "send", "--channel", "whatsapp", "-t", OWNER, "-m", "from the cli", "--json"]).await;
    assert_eq!(code, 0, "{out} {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["ok"].clone(), v["state"].clone()), (json!(true), json!("sent")));
    assert!(gw.seen.texts_to(&jid(OWNER)).contains(&"from the cli".to_string()));
    let (code, _, err) = cli(dir.path(), gw.port, &["message", "send", "-t", "12345", "-m", "x"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("invalid target \"12345\""), "{err}");
    let (code, _, err) = cli(dir.path(), gw.port, &["message", "send", "-t", "+15559999000", "-m", "x"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("+15559999000 is not on WhatsApp"), "{err}");
    assert_eq!(gw.seen.count(), 2);
    // /hooks/agent: nothing resolves → 422 with the hint and no run.
    let before = gw.st.runs.counters().accepted;
    let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "x"}))).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["hint"], "set channel and to, or deliver: false");
    let (code, _) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "x", "channel": "telegram", "to": OWNER}))).await;
    assert_eq!(code, 422);
    assert_eq!(gw.st.runs.counters().accepted, before, "no run accepted");
    // A disconnected (but linked) account is not a refusal: the message waits in the outbox.
    gw.st.channels.update("whatsapp", "default", |s| {
        s.connected = false;
        s.state = ConnectionState::Connecting { attempt: 2 };
    });
    let (code, v) = http(gw.port, "POST", "/hooks/send", Some(json!({"channel": "whatsapp", "to": OWNER, "message": "later"}))).await;
    assert_eq!((code, v["connected"].clone()), (202, json!(false)), "{v}");
    assert!(v["connection"].as_str().unwrap().contains("connecting"), "{v}");
    // Not linked: upstream's words.
    gw.st.channels.update("whatsapp", "default", |s| s.linked = false);
    let (code, v) = http(gw.port, "POST", "/hooks/send", Some(json!({"channel": "whatsapp", "to": OWNER, "message": "x"}))).await;
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("No active WhatsApp Web listener (account: default)"), "{v}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_hooks_agent_deliver_to_a_number_and_default_to() {
    let Some(p) = litellm::shared("issue11_hooks_deliver") else { return };
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), Some(litellm_agent(p)), Some(STRANGER)).await;
    let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "hook one", "channel": "whatsapp", "to": OWNER}))).await;
    assert_eq!(code, 200, "{v}");
    run_state(gw.port, v["runId"].as_str().unwrap(), &["delivered"]).await;
    // `delivered` means the driver recorded the server's ack (`sent`), so the reply is out.
    assert_eq!(gw.seen.texts_to(&jid(OWNER)), [litellm::MOCK_TEXT]);
    // No channel/to: the account's defaultTo.
    let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "hook two"}))).await;
    assert_eq!(code, 200, "{v}");
    let run = run_state(gw.port, v["runId"].as_str().unwrap(), &["delivered"]).await;
    assert_eq!(run["delivery"]["to"], jid(STRANGER));
    wait_until("the defaultTo hook's reply", || !gw.seen.texts_to(&jid(STRANGER)).is_empty()).await;
    assert_eq!(gw.seen.texts_to(&jid(STRANGER)), [litellm::MOCK_TEXT]);
    let run_id = v["runId"].as_str().unwrap().to_string();
    // `openclaw agent`: the same run path; prints the reply, delivers with --deliver.
    let (code, out, err) = cli(dir.path(), gw.port, &["agent", "-m", "cli turn", "--json"]).await;
    assert_eq!(code, 0, "{out} {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"]["payloads"][0]["text"], litellm::MOCK_TEXT, "{v}");
    assert_eq!(v["result"]["meta"]["agentMeta"]["model"], "mock-gpt");
    let (code, out, err) = cli(dir.path(), gw.port, &["agent", "-m", "cli deliver", "--deliver", "-t", OWNER]).await;
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out.trim(), litellm::MOCK_TEXT);
    wait_until("the CLI run's delivery", || gw.seen.texts_to(&jid(OWNER)).len() == 2).await;
    gw.stop().await;
    // The run survives a gateway restart: same record, same state, provider and model.
    let gw = gateway(dir.path(), None, None).await;
    let (code, v) = http(gw.port, "GET", &format!("/hooks/runs/{run_id}"), None).await;
    assert_eq!(code, 200);
    assert_eq!((v["run"]["state"].as_str(), v["run"]["model"].as_str()), (Some("delivered"), Some("mock-gpt")), "{v}");
    assert_eq!(v["run"]["reply"], litellm::MOCK_TEXT);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_item5_message_send_to_a_disconnected_account_stays_queued_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), None, None).await;
    // A driver that is not connected: nothing claims from its outbox.
    let outbox = Outbox::open(&dir.path().join("outbox-idle.db"), OutboxPolicy::default()).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::channel(4);
    gw.st.app.set_registry(ChannelRegistry::new([AccountHandle::new("whatsapp", "default", outbox.clone(), tx)]));
    gw.st.channels.update("whatsapp", "default", |s| {
        s.connected = false;
        s.state = ConnectionState::BackingOff { until_ms: now() + 60_000, reason: "connection lost".into(), attempt: 2 };
    });
    let (code, out, err) = cli(dir.path(), gw.port, &["message", "send", "-t", OWNER, "-m", "when you are back", "--wait", "1"]).await;
    assert_eq!(code, 75, "{out} {err}");
    assert!(err.contains("not connected (disconnected (connection lost); reconnecting at"), "{err}");
    assert!(err.contains("stays queued until"), "{err}");
    // It is in the outbox, pending, for the driver to send when the account is back.
    let id = err.split("message ").nth(1).unwrap().split(' ').next().unwrap();
    let rec = outbox.get(&MessageId::new(id)).await.unwrap().unwrap();
    assert_eq!(rec.state.as_str(), "pending");
    assert_eq!(rec.message.chat.as_str(), jid(OWNER));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_run_is_sending_while_disconnected_then_delivered_after_restart_or_failed_with_the_reason() {
    let Some(p) = litellm::shared("issue11_run_follows_outbox") else { return };
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway_opts(dir.path(), Some(litellm_agent(p)), None, false).await;
    let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "while away", "channel": "whatsapp", "to": OWNER}))).await;
    assert_eq!(code, 200, "linked but disconnected is not a refusal: {v}");
    let run_id = v["runId"].as_str().unwrap().to_string();
    let run = run_state(gw.port, &run_id, &["sending", "delivered", "failed"]).await;
    assert_eq!(run["state"], "sending", "{run}");
    assert_eq!(run["parts"].as_array().map(Vec::len), Some(1), "{run}");
    assert!(run["deliveryDeadlineMs"].as_u64().unwrap() > now() + 3_600_000, "{run}");
    assert!(run["finishedAtMs"].is_null(), "{run}");
    assert_eq!(run["reply"], litellm::MOCK_TEXT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, v) = http(gw.port, "GET", &format!("/hooks/runs/{run_id}"), None).await;
    assert_eq!(v["run"]["state"], "sending", "nothing acknowledged it: {v}");
    assert_eq!(gw.seen.count(), 0);
    gw.stop().await;
    // After a restart the run resumes following its part; the connected driver sends it.
    let gw = gateway(dir.path(), Some(litellm_agent(p)), None).await;
    let run = run_state(gw.port, &run_id, &["delivered", "failed"]).await;
    assert_eq!(run["state"], "delivered", "{run}");
    assert!(run["finishedAtMs"].as_u64().is_some(), "{run}");
    assert_eq!(gw.seen.texts_to(&jid(OWNER)), [litellm::MOCK_TEXT], "sent once");
    // A part the server refuses: the run fails with that reason.
    *gw.seen.fail_with.lock().unwrap() = Some("server refused the message (479)".into());
    let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": "refused", "channel": "whatsapp", "to": OWNER}))).await;
    assert_eq!(code, 200, "{v}");
    let run = run_state(gw.port, v["runId"].as_str().unwrap(), &["delivered", "failed"]).await;
    assert_eq!(run["state"], "failed", "{run}");
    let err = run["error"].as_str().unwrap();
    assert!(err.contains("failed: server refused the message (479)"), "{err}");
    assert_eq!(run["model"], "mock-gpt", "the turn's model stays recorded: {run}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_item5_hook_runs_of_different_sessions_overlap_against_a_slow_model() {
    let Some(p) = litellm::shared("issue11_item5_parallel_hook_runs") else { return };
    let dir = tempfile::tempdir().unwrap();
    let slow = agent(
        json!({"litellm": {"baseUrl": format!("{}/v1", p.base_url()), "apiKey": litellm::MASTER_KEY, "api": "openai-completions",
                            "models": [{"id": "mock-slow"}]}}),
        "litellm/mock-slow",
    );
    let gw = gateway(dir.path(), Some(slow), None).await;
    // Without hooks.defaultSessionKey each hook run has its own session.
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..2 {
        let (code, v) = http(gw.port, "POST", "/hooks/agent", Some(json!({"message": format!("parallel {i}"), "deliver": false}))).await;
        assert_eq!(code, 200, "{v}");
        ids.push(v["runId"].as_str().unwrap().to_string());
    }
    let mut runs = Vec::new();
    for id in &ids {
        runs.push(run_state(gw.port, id, &["done", "failed"]).await);
    }
    let elapsed = started.elapsed();
    for r in &runs {
        assert_eq!((r["state"].as_str(), r["model"].as_str()), (Some("done"), Some("mock-slow")), "{r}");
    }
    let (s0, e0) = (runs[0]["startedAtMs"].as_u64().unwrap(), runs[0]["finishedAtMs"].as_u64().unwrap());
    let (s1, e1) = (runs[1]["startedAtMs"].as_u64().unwrap(), runs[1]["finishedAtMs"].as_u64().unwrap());
    assert!(s1 < e0 && s0 < e1, "the two runs overlap in time: [{s0}, {e0}] and [{s1}, {e1}]");
    let slow_ms = (litellm::SLOW_SECS * 1000.0) as u64;
    assert!(e0 - s0 >= slow_ms - 100 && e1 - s1 >= slow_ms - 100, "each waited for the slow model");
    assert!(elapsed < Duration::from_millis(2 * slow_ms), "together in less than two model delays: {elapsed:?}");
    gw.stop().await;
}
