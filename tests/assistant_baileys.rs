//! End to end (issues 10 item 5 and 11): our gateway, in-process, with its operations layer
//! wired to our real WhatsApp client (message path: account store, outbox, the gateway's inbound
//! queue) linked to the relay mock; the real npm Baileys client as the contact on another
//! account of the relay; the LiteLLM proxy as the provider. Shows: an allow-listed contact's DM
//! gets the ack reaction, the read receipt, `composing` while the model works then `paused`, and
//! the model's reply on Baileys; `/hooks/send`, `/hooks/agent` with `deliver` and
//! `openclaw message send` reach Baileys. Without node/Baileys or LiteLLM: a loud `SKIPPED:`.

#[path = "support/baileys_peer.rs"]
mod baileys_peer;
#[path = "support/inproc_gateway.rs"]
mod inproc_gateway;
#[path = "support/litellm.rs"]
#[allow(dead_code)]
mod litellm;
#[path = "support/peer.rs"]
mod peer;

use std::sync::Arc;
use std::time::Duration;

use inproc_gateway::{client_config, InprocGateway};
use baileys_peer::{missing_baileys, BaileysPeer};
use openclaw::agent::providers::{HttpClient, ProviderSet, Timeouts};
use openclaw::agent::turn::Agent;
use openclaw::app::{AccountSettings, AppConfig};
use openclaw::channels::whatsapp::client::ClientConfig;
use openclaw::channels::whatsapp::mock::{MockOptions, MockServer};
use openclaw::config::model::whatsapp::{ChunkMode, ReplyToMode, WhatsAppConfig};
use openclaw::config::model::OpenClawConfig;
use openclaw::gateway::settings::{Secret, TokenSource, TokenSourceKind};
use serde_json::{json, Value};

const US: &str = "15550004444";
const BOB: &str = "15550003333";
const WAIT: Duration = Duration::from_secs(30);
const HOOK_TOKEN: &str = "hook-token-0123456789abcdef";


async fn link_us(m: &MockServer, cfg: &ClientConfig) {
    inproc_gateway::link_account(m, cfg, US, WAIT).await;
}

fn http(port: u16, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let b = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {HOOK_TOKEN}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: u16 = out[9..12].parse().unwrap();
    (status, serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap_or(Value::Null))
}

fn received_text(bob: &mut BaileysPeer, what: &str, text: &str) -> Value {
    bob.wait_from(0, WAIT, what, |v| v["event"] == "message" && v["fromMe"] == false && v["text"] == text)
}

#[test]
fn issue10_item5_issue11_end_to_end_with_baileys_as_the_contact() {
    let test = "issue10_item5_issue11_end_to_end_with_baileys_as_the_contact";
    if let Some(why) = missing_baileys() {
        peer::missing(test, &format!("{why}; the end-to-end path is NOT validated by this run"));
        return;
    }
    let Some(llm) = litellm::shared(test) else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let m = rt.block_on(MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())).unwrap();
    m.create_account(US, None, Some("Us")).unwrap();
    m.create_account(BOB, None, Some("Bob")).unwrap();
    let wa_dir = tempfile::tempdir().unwrap();
    let gw_dir = tempfile::tempdir().unwrap();
    rt.block_on(link_us(&m, &client_config(&m, wa_dir.path())));

    // The gateway: account `default` allows Bob; LiteLLM's mock-slow answers (after 1.5 s, so
    // the typing state has time to show).
    let wa: WhatsAppConfig =
        serde_json::from_value(json!({"dmPolicy": "allowlist", "allowFrom": [format!("+{BOB}")]})).unwrap();
    let cfg: OpenClawConfig = serde_json::from_value(json!({
        "models": {"providers": {"litellm": {"baseUrl": format!("{}/v1", llm.base_url()), "apiKey": litellm::MASTER_KEY,
                                              "api": "openai-completions", "models": [{"id": "mock-slow"}]}}},
        "agents": {"defaults": {"model": "litellm/mock-slow"}}
    }))
    .unwrap();
    let agent = Agent::new(HttpClient::new(Timeouts::default()).unwrap(), ProviderSet::from_config(&cfg, |_| Ok(None)).unwrap());
    let mut settings = openclaw::gateway::GatewaySettings::new(openclaw::store::StateLayout::new(gw_dir.path()));
    settings.port = 0;
    settings.hooks.enabled = true;
    settings.hooks.token_sources =
        vec![TokenSource { kind: TokenSourceKind::Flag, label: "--hooks-token".into(), value: Secret::new(HOOK_TOKEN), file: None }];
    settings.app = AppConfig {
        accounts: vec![AccountSettings {
            channel: "whatsapp".into(),
            resolved: wa.account("default"),
            chunk_mode: ChunkMode::Length,
            reply_to_mode: ReplyToMode::Off,
            default_to: None,
        }],
        default_accounts: vec![("whatsapp".into(), "default".into())],
        ack_reaction: Some("👀".into()),
        ack_reaction_scope: openclaw::config::model::messages::AckReactionScope::Direct,
        agent: Some(Arc::new(agent)),
        ..AppConfig::default()
    };
    let gw = InprocGateway::start(&rt, settings, &m, wa_dir.path());
    let port = gw.port;
    let _st = gw.state.clone();

    let bob_auth = tempfile::tempdir().unwrap();
    let mut bob = BaileysPeer::start("bob", &m.url(), &m.admin_base(), bob_auth.path(), BOB, false);
    bob.wait_open();

    // 1. Bob's DM gets the model's reply on Baileys; the proxy saw Bob's text.
    bob.command(json!({"cmd": "presence-subscribe", "to": US}));
    bob.wait(WAIT, "the presence subscription", |v| v["event"] == "subscribed");
    let tag = format!("e2e-{}", uuid::Uuid::new_v4());
    let dm_id = bob.send_text(US, &format!("hello assistant {tag}"));
    received_text(&mut bob, "the model's reply", litellm::MOCK_TEXT);
    assert_eq!(llm.requests_with(&tag).len(), 1);
    // The read receipt reached Bob.
    bob.wait_from(0, WAIT, "the read receipt", |v| v["event"] == "update" && v["id"] == dm_id.as_str() && v["status"].as_u64() >= Some(4));
    // The ack reaction (`messages.ackReaction`) reached Bob as a `reactionMessage` on his own
    // message, before the reply.
    let is_ack = |v: &Value| {
        (v["event"] == "message" && v["reaction"]["text"] == "👀" && v["reaction"]["key"]["id"] == dm_id.as_str())
            || (v["event"] == "reaction" && v["text"] == "👀" && v["id"] == dm_id.as_str())
    };
    bob.wait_from(0, WAIT, "the ack reaction", is_ack);
    // Typing reached Bob while the model worked: `composing` at least the model's delay before
    // the reply, then `paused` (Baileys reports it as `available`).
    let presence = |state: &'static str| {
        move |v: &Value| {
            v["event"] == "presence"
                && v["id"].as_str().is_some_and(|id| id.starts_with(US))
                && v["presences"].as_object().is_some_and(|p| p.values().any(|x| x["lastKnownPresence"] == state))
        }
    };
    bob.wait_from(0, WAIT, "composing", presence("composing"));
    bob.wait_from(0, WAIT, "paused (available)", presence("available"));
    let pos = |pred: &dyn Fn(&Value) -> bool| bob.events.iter().position(pred);
    let reaction_at = pos(&is_ack).unwrap();
    let reply_at = pos(&|v: &Value| v["event"] == "message" && v["fromMe"] == false && v["text"] == litellm::MOCK_TEXT).unwrap();
    assert!(reaction_at < reply_at, "the ack reaction arrives before the reply\n{}", bob.transcript());
    let composing_at = pos(&presence("composing")).unwrap();
    let paused_at = pos(&presence("available")).unwrap();
    assert!(composing_at < paused_at, "composing, then paused\n{}", bob.transcript());
    let ms = |i: usize| bob.events[i]["ms"].as_u64().unwrap();
    assert!(
        ms(reply_at) >= ms(composing_at) + (litellm::SLOW_SECS * 1000.0) as u64 - 200,
        "composing shown while the model worked (composing at {} ms, reply at {} ms)",
        ms(composing_at),
        ms(reply_at)
    );
    let upsert = bob.events.iter().find(|v| v["event"] == "message" && !v["reaction"].is_null()).cloned().unwrap_or(Value::Null);
    assert_eq!(upsert["reaction"]["key"]["fromMe"], true, "Bob sees the reaction on his own message: {upsert}");

    // 2. /hooks/send reaches Baileys, and its outcome reads `sent`.
    let (code, v) = http(port, "POST", "/hooks/send", Some(json!({"channel": "whatsapp", "to": format!("+{BOB}"), "message": "from a webhook"})));
    assert_eq!(code, 202, "{v}");
    received_text(&mut bob, "the hook's message", "from a webhook");
    let id = v["messageId"].as_str().unwrap().to_string();
    let mut state = Value::Null;
    for _ in 0..300 {
        state = http(port, "GET", &format!("/hooks/send/{id}"), None).1;
        if state["state"] == "sent" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(state["state"], "sent", "{state}");

    // 3. /hooks/agent with deliver to Bob's number: the model's reply reaches Baileys.
    let since = bob.events.len();
    let (code, v) = http(port, "POST", "/hooks/agent", Some(json!({"message": "hook turn", "channel": "whatsapp", "to": format!("+{BOB}")})));
    assert_eq!(code, 200, "{v}");
    bob.wait_from(since, WAIT, "the hook run's reply", |v| v["event"] == "message" && v["fromMe"] == false && v["text"] == litellm::MOCK_TEXT);
    let run_id = v["runId"].as_str().unwrap().to_string();
    let mut run = Value::Null;
    for _ in 0..300 {
        run = http(port, "GET", &format!("/hooks/runs/{run_id}"), None).1["run"].clone();
        if run["state"] == "delivered" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(run["state"], "delivered", "{run}");
    assert_eq!(run["delivery"]["to"], format!("{BOB}@s.whatsapp.net"));

    // 4. `openclaw message send` exits 0 once WhatsApp acknowledged; Bob sees the text.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openclaw"))
        .args(["message", "send", "--channel", "whatsapp", "-t", &format!("+{BOB}"), "-m", "from the CLI", "--json", "--state-dir"])
        .arg(gw_dir.path())
        .args(["--url", &format!("ws://127.0.0.1:{port}")])
        .env_remove("OPENCLAW_CONFIG_PATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "sent");
    received_text(&mut bob, "the CLI's message", "from the CLI");

    bob.quit();
    gw.stop(&rt);
}
