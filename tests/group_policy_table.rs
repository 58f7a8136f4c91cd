//! Issue 12 item 3, proven end to end: the group policy table. A real gateway (`prepare` +
//! `serve`) with in-test fake channel drivers (as `tests/assistant_fake_driver.rs`), real agent
//! turns through the LiteLLM proxy (requests asserted from its side), and for every combination
//! of `groupPolicy` (open / allowlist / disabled) × the group listed in `groups` or not × the
//! sender in `groupAllowFrom` or not × `requireMention` on / off × mentioned or not, the test
//! asserts an answer (the mock reply in the outbox, quoting the message, after the ack reaction)
//! or silence (nothing sent to the group and no provider request carrying the message). Then:
//! group history reaches the agent as context on the next answered message, mentions by LID,
//! by reply and by pattern count, and `openclaw channels status --verbose` explains a dropped
//! message with the config key to change.

#[path = "support/litellm.rs"]
#[allow(dead_code)]
mod litellm;
#[path = "support/fake_driver.rs"]
mod fake_driver;
#[path = "support/peer.rs"]
#[allow(dead_code)]
mod peer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openclaw::agent::providers::{HttpClient, ProviderSet, RetryPolicy, Timeouts};
use openclaw::agent::turn::Agent;
use openclaw::app::{AccountSettings, AppConfig};
use openclaw::channels::registry::ChannelRegistry;
use openclaw::channels::status::{ChannelStatus, ChannelStatusHandle, ConnectionState, SelfId};
use openclaw::config::model::whatsapp::{ChunkMode, GroupPolicy, ReplyToMode, WhatsAppConfig};
use openclaw::config::model::OpenClawConfig;
use openclaw::messaging::{ChatId, InboundBody, InboundMessage, MessageId, OutboundBody};
use fake_driver::{cli, fake_driver, jid, now, Seen};
use serde_json::{json, Value};

/// The linked account (every test account is linked as this number).
const OWN: &str = "+15550000000";
const OWN_JID: &str = "15550000000:4@s.whatsapp.net";
const OWN_LID: &str = "88000000000001:4@lid";
/// A member in `groupAllowFrom`.
const ALLOWED: &str = "+15550001111";
/// A member who is not.
const OTHER: &str = "+15550002222";






/// A group message from `sender` in `group`.
fn group_msg(account: &str, group: &str, sender: &str, id: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel: "whatsapp".into(),
        account_id: account.into(),
        chat: ChatId::new(group),
        sender: ChatId::new(jid(sender)),
        sender_e164: Some(sender.into()),
        sender_name: Some(format!("Member {}", &sender[sender.len() - 4..])),
        id: MessageId::new(id),
        timestamp_ms: now(),
        is_group: true,
        from_me: false,
        reply_to: None,
        reply_to_sender: None,
        mentions: Vec::new(),
        body: InboundBody::Text { text: text.into() },
    }
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

/// A gateway whose WhatsApp accounts are `accounts` (a `channels.whatsapp.accounts` JSON
/// object), every one linked as [`OWN`] and connected through a fake driver, answering through
/// the LiteLLM proxy; ack reaction 👀 in upstream's default scope (`group-mentions`).
async fn gateway(dir: &std::path::Path, p: &litellm::LiteLlm, accounts: Value, messages: Value) -> Gw {
    let wa: WhatsAppConfig = serde_json::from_value(json!({ "accounts": accounts })).unwrap();
    let cfg: OpenClawConfig = serde_json::from_value(json!({
        "models": {"providers": {"litellm": {"baseUrl": format!("{}/v1", p.base_url()), "apiKey": litellm::MASTER_KEY,
                                              "api": "openai-completions", "models": [{"id": "mock-gpt"}]}}},
        "agents": {"defaults": {"model": "litellm/mock-gpt"}},
        "messages": messages,
    }))
    .unwrap();
    let set = ProviderSet::from_config(&cfg, |_| Ok(None)).unwrap();
    let mut agent = Agent::new(HttpClient::new(Timeouts { connect: Duration::from_secs(2), idle: Duration::from_secs(30) }).unwrap(), set);
    agent.retry = RetryPolicy { rate_limit_attempts: 3, server_error_attempts: 1, ..RetryPolicy::default() };
    let ids = wa.account_ids();
    let mut app = AppConfig::from_config(&cfg, None);
    app.accounts = ids
        .iter()
        .map(|id| AccountSettings {
            channel: "whatsapp".into(),
            resolved: wa.account(id),
            chunk_mode: ChunkMode::Length,
            reply_to_mode: ReplyToMode::Off,
            default_to: None,
        })
        .collect();
    app.default_accounts = vec![("whatsapp".into(), ids[0].clone())];
    app.ack_reaction = Some("👀".into());
    app.agent = Some(Arc::new(agent));
    let mut settings = openclaw::gateway::GatewaySettings::new(openclaw::store::StateLayout::new(dir));
    settings.port = 0;
    settings.app = app;
    let status = ChannelStatusHandle::new();
    for id in &ids {
        let mut s = ChannelStatus::new("whatsapp", id, ConnectionState::Connected { since_ms: now() });
        s.linked = true;
        s.connected = true;
        s.set_self(Some(SelfId { e164: OWN.into(), jid: OWN_JID.into(), lid: Some(OWN_LID.into()), name: None }));
        status.upsert(s);
    }
    let prepared = openclaw::gateway::prepare(settings, openclaw::gateway::logbuf::LogBuffer::new(), status).unwrap();
    let port = prepared.local_addr().port();
    let st = prepared.state();
    let seen = Arc::new(Seen::default());
    let handles: Vec<_> = ids.iter().map(|id| fake_driver(dir, id, seen.clone())).collect();
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

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}


/// The text of the last user message of a recorded provider request.
fn last_user(req: &Value) -> String {
    let msgs = req["messages"].as_array().cloned().unwrap_or_default();
    let last = msgs.iter().rev().find(|m| m["role"] == "user").cloned().unwrap_or(Value::Null);
    match &last["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        other => other.to_string(),
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Case {
    policy: GroupPolicy,
    listed: bool,
    sender_allowed: bool,
    require_mention: bool,
    mentioned: bool,
    account: String,
    group: String,
    id: String,
    tag: String,
}

impl Case {
    /// Upstream's semantics (reference agent.md §1 "Groups"), written independently of
    /// `routing::policy`: disabled drops; a non-empty `groups` map drops unlisted groups;
    /// allowlist needs the sender in `groupAllowFrom`; `requireMention` needs a mention.
    fn answered(&self) -> bool {
        self.policy != GroupPolicy::Disabled
            && self.listed
            && (self.policy == GroupPolicy::Open || self.sender_allowed)
            && (!self.require_mention || self.mentioned)
    }
}

fn policy_name(p: GroupPolicy) -> &'static str {
    match p {
        GroupPolicy::Open => "open",
        GroupPolicy::Allowlist => "allowlist",
        GroupPolicy::Disabled => "disabled",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue12_item3_group_policy_table_answer_or_silence() {
    let Some(p) = litellm::shared("issue12_group_policy_table") else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    // One account per (groupPolicy, requireMention); per message its own group, so an
    // unanswered message kept as history never reaches another row's provider request.
    let mut cases = Vec::new();
    let mut accounts = serde_json::Map::new();
    let mut n = 0;
    for policy in [GroupPolicy::Open, GroupPolicy::Allowlist, GroupPolicy::Disabled] {
        for require_mention in [true, false] {
            let account = format!("{}-{}", policy_name(policy), if require_mention { "rm" } else { "norm" });
            let mut groups = serde_json::Map::new();
            for listed in [true, false] {
                for sender_allowed in [true, false] {
                    for mentioned in [true, false] {
                        n += 1;
                        let group = format!("1203630000000{n:05}@g.us");
                        if listed {
                            groups.insert(group.clone(), json!({"requireMention": require_mention}));
                        }
                        cases.push(Case {
                            policy,
                            listed,
                            sender_allowed,
                            require_mention,
                            mentioned,
                            account: account.clone(),
                            group,
                            id: format!("M{n:03}"),
                            tag: format!("row{n:03}-{run}"),
                        });
                    }
                }
            }
            // An unlisted group is one missing from a non-empty map.
            groups.insert("120363999999999999@g.us".into(), json!({}));
            accounts.insert(
                account,
                json!({"groupPolicy": policy_name(policy), "groupAllowFrom": [ALLOWED], "groups": groups}),
            );
        }
    }
    assert_eq!(cases.len(), 48);
    let gw = gateway(dir.path(), p, Value::Object(accounts), json!({})).await;
    for c in &cases {
        let sender = if c.sender_allowed { ALLOWED } else { OTHER };
        let mut m = group_msg(&c.account, &c.group, sender, &c.id, &format!("hello {}", c.tag));
        if c.mentioned {
            m.mentions = vec![ChatId::new("15550000000@s.whatsapp.net")];
        }
        gw.st.inbound.push(m).await.unwrap();
    }
    let answered: Vec<&Case> = cases.iter().filter(|c| c.answered()).collect();
    assert_eq!(answered.len(), 9, "open: 2 senders × (1 + 2); allowlist: 1 sender × (1 + 2)");
    for c in &answered {
        wait_until(&format!("the answer to {c:?}"), || {
            gw.seen.to(&c.group).iter().any(|m| matches!(&m.body, OutboundBody::Text { text } if text == litellm::MOCK_TEXT))
        })
        .await;
    }
    // Silence is checked after every answer is out, plus a margin for stragglers.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut table = String::from("groupPolicy | listed | sender allowed | requireMention | mentioned | outcome\n");
    for c in &cases {
        let out = gw.seen.to(&c.group);
        let reqs = p.requests_with(&c.tag);
        table.push_str(&format!(
            "{} | {} | {} | {} | {} | {}\n",
            policy_name(c.policy),
            c.listed,
            c.sender_allowed,
            c.require_mention,
            c.mentioned,
            if c.answered() { "answer" } else { "silence" }
        ));
        if c.answered() {
            assert_eq!(reqs.len(), 1, "{c:?}: one provider request");
            assert_eq!(out.len(), 2, "{c:?}: the ack reaction and one reply: {out:?}");
            assert!(
                matches!(&out[0].body, OutboundBody::Reaction { target, emoji } if target.as_str() == c.id && emoji == "👀"),
                "{c:?}: {out:?}"
            );
            assert_eq!(out[1].reply_to.as_ref().map(MessageId::as_str), Some(c.id.as_str()), "{c:?}: the reply quotes the message");
            // The agent sees who spoke.
            let sender = if c.sender_allowed { ALLOWED } else { OTHER };
            let said = last_user(&reqs[0]);
            assert_eq!(said, format!("Member {} ({sender}): hello {}", &sender[sender.len() - 4..], c.tag), "{c:?}");
        } else {
            assert!(reqs.is_empty(), "{c:?}: silence means no provider request");
            assert!(out.is_empty(), "{c:?}: silence means nothing sent to the group: {out:?}");
        }
    }
    eprintln!("{table}");
    // Every message left a decision with its rule; the dropped ones name the key to change.
    let decisions = gw.st.app.recent_decisions(&Default::default(), 1000);
    assert_eq!(decisions.len(), 48);
    for d in &decisions {
        let c = cases.iter().find(|c| c.id == d.message_id).unwrap();
        assert_eq!(d.admitted, c.answered(), "{c:?}: {d:?}");
        assert_eq!(d.fix.is_some(), !c.answered(), "{d:?}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue12_item3_group_history_mentions_and_why_was_it_ignored() {
    let Some(p) = litellm::shared("issue12_group_history") else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    const G: &str = "120363000000000777@g.us";
    const UNLISTED: &str = "120363000000000888@g.us";
    let accounts = json!({
        "default": {"groupPolicy": "allowlist", "groupAllowFrom": [ALLOWED, OTHER], "historyLimit": 2,
                    "groups": {G: {}}}
    });
    let gw = gateway(dir.path(), p, accounts, json!({"groupChat": {"mentionPatterns": ["\\bclawd\\b"]}})).await;
    // Three unmentioned messages (window 2: the first falls out), then a mention by LID.
    let tags: Vec<String> = (0..3).map(|i| format!("chatter{i}-{run}")).collect();
    for (i, t) in tags.iter().enumerate() {
        gw.st.inbound.push(group_msg("default", G, OTHER, &format!("H{i}"), &format!("just chatting {t}"))).await.unwrap();
    }
    let ask = format!("ask-{run}");
    let mut m = group_msg("default", G, ALLOWED, "A1", &format!("what did they say? {ask}"));
    m.mentions = vec![ChatId::new("88000000000001@lid")];
    gw.st.inbound.push(m).await.unwrap();
    wait_until("the answer with history", || p.requests_with(&ask).len() == 1).await;
    let body = last_user(&p.requests_with(&ask)[0]);
    assert!(body.contains("[Chat messages since your last reply - for context]"), "{body}");
    assert!(body.contains("[Current message - respond to this]"), "{body}");
    assert!(!body.contains(&tags[0]), "the window holds the last 2 only: {body}");
    assert!(body.contains(&format!("Member 2222 ({OTHER}): just chatting {}", tags[1])), "{body}");
    assert!(body.contains(&tags[2]), "{body}");
    // History messages cause no request of their own; the oldest fell out of the window.
    assert_eq!(p.requests_with(&tags[0]).len(), 0);
    assert_eq!((p.requests_with(&tags[1]).len(), p.requests_with(&tags[2]).len()), (1, 1));
    // The window was taken: the next answered message does not carry it again.
    let pat = format!("pattern-{run}");
    gw.st.inbound.push(group_msg("default", G, ALLOWED, "A2", &format!("Clawd, again {pat}"))).await.unwrap();
    wait_until("the pattern mention's answer", || p.requests_with(&pat).len() == 1).await;
    let body = last_user(&p.requests_with(&pat)[0]);
    assert!(!body.contains("[Chat messages since your last reply") && body.contains(&pat), "{body}");
    // A reply to one of our messages is a mention too.
    let quoted = format!("quoted-{run}");
    let mut r = group_msg("default", G, ALLOWED, "A3", &format!("thanks {quoted}"));
    r.reply_to = Some(MessageId::new("OURS1"));
    r.reply_to_sender = Some(ChatId::new(OWN_JID));
    gw.st.inbound.push(r).await.unwrap();
    wait_until("the reply-to-us answer", || p.requests_with(&quoted).len() == 1).await;
    // Dropped: an unlisted group, and a message without mention.
    let lost = format!("lost-{run}");
    gw.st.inbound.push(group_msg("default", UNLISTED, ALLOWED, "D1", &format!("@bot? {lost}"))).await.unwrap();
    let mut both = group_msg("default", G, OTHER, "D2", "no mention here");
    both.timestamp_ms = now();
    gw.st.inbound.push(both).await.unwrap();
    wait_until("both decisions", || gw.st.app.recent_decisions(&Default::default(), 100).iter().any(|d| d.message_id == "D2")).await;
    assert!(p.requests_with(&lost).is_empty());
    // `channels status --verbose` explains the drops, newest first, with the key to change.
    let (code, out, err) = cli(dir.path(), gw.port, &["channels", "status", "--verbose"]).await;
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("Ignored group messages (last"), "{out}");
    let unlisted_line = out.lines().position(|l| l.contains(UNLISTED)).unwrap_or_else(|| panic!("{out}"));
    assert!(out.lines().nth(unlisted_line).unwrap().contains("group not in the groups map"), "{out}");
    assert!(
        out.lines().nth(unlisted_line + 1).unwrap().contains(&format!("to have it answered: add {UNLISTED} to channels.whatsapp.groups")),
        "{out}"
    );
    assert!(out.contains(&format!("channels.whatsapp.groups.\"{G}\".requireMention to false")), "{out}");
    let first_drop = out.lines().position(|l| l.contains("group requires a mention")).unwrap();
    assert!(first_drop < unlisted_line, "newest first: {out}");
    // The same through --json.
    let (code, out, _) = cli(dir.path(), gw.port, &["channels", "status", "--verbose", "--json"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let rules: Vec<&str> = v["groupDecisions"].as_array().unwrap().iter().filter_map(|d| d["rule"].as_str()).collect();
    assert!(rules.contains(&"group-not-listed") && rules.contains(&"group-not-mentioned"), "{v}");
    assert!(rules.iter().all(|r| *r != "group-admitted"), "only ignored messages: {v}");
    let by_id: BTreeMap<String, Value> =
        v["groupDecisions"].as_array().unwrap().iter().map(|d| (d["messageId"].as_str().unwrap_or("").to_string(), d.clone())).collect();
    assert_eq!(by_id["D1"]["chat"], UNLISTED);
    // `openclaw doctor` finds the running gateway of the state dir and says the same.
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_openclaw"))
            .args(["doctor", "--json", "--provider-timeout", "200", "--state-dir"])
            .arg(&d)
            .env_remove("OPENCLAW_CONFIG_PATH")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["id"] == "groups.ignored").cloned().unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(f["status"], "warn", "{f:#}");
    assert_eq!(
        f["fix"].as_str().unwrap_or_default(),
        format!("add {UNLISTED} to channels.whatsapp.groups (or \"*\" for every group); then restart the gateway"),
        "{f:#}"
    );
    assert!(f["evidence"].to_string().contains("group requires a mention"), "{f:#}");
    gw.stop().await;
}
