//! The schema walk (issue 14): every key of the generated schema is either used by the gateway
//! (this test shows its effect on the settings the gateway runs with, or names the test that
//! shows it), rejected by the compiler as "not supported by this gateway yet", or listed in
//! `config::effect` (valid upstream keys whose part of the gateway has not landed: the compiler
//! warns). No key is silently ignored.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use openclaw::config::sources::SourceRequest;
use openclaw::config::{Compilation, Options, effect};
use openclaw::gateway::from_snapshot::Overrides;
use openclaw::gateway::settings::GatewaySettings;
use serde_json::Value;

type Settings = Result<GatewaySettings, String>;

/// A key used by the gateway: a base config and one that sets the key; what the gateway runs
/// with (`show`) must differ between them.
struct Used {
    key: &'static str,
    base: &'static str,
    set: &'static str,
    show: fn(&Settings) -> String,
}

fn used() -> Vec<Used> {
    fn ok<T: std::fmt::Debug>(s: &Settings, f: impl Fn(&GatewaySettings) -> T) -> String {
        match s {
            Ok(s) => format!("{:?}", f(s)),
            Err(e) => format!("refused: {e}"),
        }
    }
    vec![
        Used { key: "gateway.port", base: "{}", set: "{gateway:{port:19999}}", show: |s| ok(s, |s| s.port) },
        Used { key: "gateway.mode", base: "{}", set: "{gateway:{mode:'remote'}}", show: |s| ok(s, |s| s.port) },
        Used { key: "gateway.bind", base: "{gateway:{auth:{token:'t0123456789abcdef'}}}", set: "{gateway:{bind:'lan',auth:{token:'t0123456789abcdef'}}}", show: |s| ok(s, |s| s.bind_host) },
        Used { key: "gateway.customBindHost", base: "{gateway:{bind:'custom',customBindHost:'127.0.0.1',auth:{token:'t0123456789abcdef'}}}", set: "{gateway:{bind:'custom',customBindHost:'127.0.0.2',auth:{token:'t0123456789abcdef'}}}", show: |s| ok(s, |s| s.bind_host) },
        Used { key: "gateway.auth.mode", base: "{}", set: "{gateway:{auth:{mode:'none'}}}", show: |s| ok(s, |s| s.auth_mode) },
        Used { key: "gateway.auth.token", base: "{}", set: "{gateway:{auth:{token:'t0123456789abcdef'}}}", show: |s| ok(s, |s| s.token_sources.len()) },
        Used { key: "gateway.auth.tokenFile", base: "{}", set: "{gateway:{auth:{tokenFile:'$DIR/token'}}}", show: |s| ok(s, |s| s.token_sources.len()) },
        Used { key: "gateway.auth.rateLimit.maxAttempts", base: "{}", set: "{gateway:{auth:{rateLimit:{maxAttempts:3}}}}", show: |s| ok(s, |s| s.rate_limit.max_attempts) },
        Used { key: "gateway.auth.rateLimit.windowMs", base: "{}", set: "{gateway:{auth:{rateLimit:{windowMs:1000}}}}", show: |s| ok(s, |s| s.rate_limit.window_ms) },
        Used { key: "gateway.controlUi.enabled", base: "{}", set: "{gateway:{controlUi:{enabled:false}}}", show: |s| ok(s, |s| s.control_ui.enabled) },
        Used { key: "gateway.controlUi.basePath", base: "{}", set: "{gateway:{controlUi:{basePath:'/ui'}}}", show: |s| ok(s, |s| s.control_ui.base_path.clone()) },
        Used { key: "gateway.controlUi.allowedOrigins", base: "{}", set: "{gateway:{controlUi:{allowedOrigins:['https://a.example']}}}", show: |s| ok(s, |s| s.control_ui.allowed_origins.clone()) },
        Used { key: "gateway.remote.url", base: "{gateway:{remote:{token:'r0123456789'}}}", set: "{gateway:{remote:{url:'wss://gw.example',token:'r0123456789'}}}", show: |s| ok(s, |s| s.remote_token.is_some()) },
        Used { key: "gateway.remote.token", base: "{}", set: "{gateway:{remote:{token:'r0123456789'}}}", show: |s| ok(s, |s| s.remote_token.is_some()) },
        Used { key: "gateway.nodes.pairing.autoApproveLocal", base: "{}", set: "{gateway:{nodes:{pairing:{autoApproveLocal:false}}}}", show: |s| ok(s, |s| s.auto_approve_local) },
        Used { key: "hooks.enabled", base: "{hooks:{token:'h0123456789'}}", set: "{hooks:{enabled:true,token:'h0123456789'}}", show: |s| ok(s, |s| s.hooks.enabled) },
        Used { key: "hooks.token", base: "{}", set: "{hooks:{token:'h0123456789'}}", show: |s| ok(s, |s| s.hooks.token_sources.len()) },
        Used { key: "hooks.tokenFile", base: "{}", set: "{hooks:{tokenFile:'$DIR/token'}}", show: |s| ok(s, |s| s.hooks.token_sources.len()) },
        Used { key: "hooks.path", base: "{}", set: "{hooks:{path:'/wh'}}", show: |s| ok(s, |s| s.hooks.path.clone()) },
        Used { key: "hooks.maxBodyBytes", base: "{}", set: "{hooks:{maxBodyBytes:1000}}", show: |s| ok(s, |s| s.hooks.max_body_bytes) },
        Used { key: "hooks.allowedAgentIds", base: "{}", set: "{hooks:{allowedAgentIds:['main']}}", show: |s| ok(s, |s| s.hooks.allowed_agent_ids.clone()) },
        Used { key: "hooks.defaultSessionKey", base: "{}", set: "{hooks:{defaultSessionKey:'s1'}}", show: |s| ok(s, |s| s.hooks.default_session_key.clone()) },
        Used { key: "channels.whatsapp", base: "{}", set: "{channels:{whatsapp:{}}}", show: |s| ok(s, |s| s.whatsapp.clone()) },
        Used { key: "channels.whatsapp.enabled", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{enabled:false}}}", show: |s| ok(s, |s| s.whatsapp.clone()) },
        Used { key: "channels.whatsapp.accounts", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{accounts:{work:{}}}}}", show: |s| ok(s, |s| s.whatsapp.clone()) },
        Used { key: "channels.whatsapp.accounts.*.enabled", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{enabled:false}}}}}", show: |s| ok(s, |s| s.whatsapp.clone()) },
        Used { key: "channels.whatsapp.accounts.*.authDir", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{authDir:'wa/work'}}}}}", show: |s| ok(s, |s| s.whatsapp.clone()) },
        // DM handling: what the operations layer replies with (`GatewaySettings.app`).
        Used { key: "channels.whatsapp.dmPolicy", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{dmPolicy:'disabled'}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.allowFrom", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{allowFrom:['+15550001111']}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.defaultTo", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{defaultTo:'+15550001111'}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.textChunkLimit", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{textChunkLimit:1000}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.streaming.chunkMode", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{streaming:{chunkMode:'newline'}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.sendReadReceipts", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{sendReadReceipts:false}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.replyToMode", base: "{channels:{whatsapp:{}}}", set: "{channels:{whatsapp:{replyToMode:'all'}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.accounts.*.dmPolicy", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{dmPolicy:'disabled'}}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.accounts.*.allowFrom", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{allowFrom:['+15550001111']}}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.accounts.*.defaultTo", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{defaultTo:'+15550001111'}}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.accounts.*.textChunkLimit", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{textChunkLimit:1000}}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.accounts.*.streaming.chunkMode", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{streaming:{chunkMode:'newline'}}}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.accounts.*.sendReadReceipts", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{sendReadReceipts:false}}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        Used { key: "channels.whatsapp.accounts.*.replyToMode", base: "{channels:{whatsapp:{accounts:{work:{}}}}}", set: "{channels:{whatsapp:{accounts:{work:{replyToMode:'all'}}}}}", show: |s| ok(s, |s| s.app.accounts.clone()) },
        // Group gating (issue 12): the account settings the inbound consumer decides with;
        // tests/group_policy_table.rs shows the answers and silences they lead to.
        Used { key: "messages.groupChat", base: "{}", set: "{messages:{groupChat:{historyLimit:3}}}", show: |s| ok(s, |s| s.app.group_chat_history_limit) },
        Used { key: "messages.groupChat.historyLimit", base: "{messages:{groupChat:{}}}", set: "{messages:{groupChat:{historyLimit:3}}}", show: |s| ok(s, |s| s.app.group_chat_history_limit) },
        Used { key: "messages.groupChat.mentionPatterns", base: "{messages:{groupChat:{}}}", set: "{messages:{groupChat:{mentionPatterns:['bot']}}}", show: |s| ok(s, |s| s.app.mention_patterns.len()) },
        // The ack reaction: sent on WhatsApp as a `reactionMessage` (tests/assistant_baileys.rs).
        Used { key: "messages.ackReaction", base: "{}", set: "{messages:{ackReaction:'👀'}}", show: |s| ok(s, |s| s.app.ack_reaction.clone()) },
        Used { key: "session.dmScope", base: "{}", set: "{session:{dmScope:'per-channel-peer'}}", show: |s| ok(s, |s| s.app.dm_scope) },
        Used { key: "session", base: "{}", set: "{session:{dmScope:'per-peer'}}", show: |s| ok(s, |s| s.app.dm_scope) },
        Used { key: "messages.ackReactionScope", base: "{}", set: "{messages:{ackReactionScope:'all'}}", show: |s| ok(s, |s| s.app.ack_reaction_scope) },
    ]
    .into_iter()
    .chain(group_keys())
    .collect()
}

/// The group keys, on the channel root and on an account: each changes the account settings.
fn group_keys() -> Vec<Used> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let keys: &[(&str, &str, &str)] = &[
        ("groupPolicy", "", "groupPolicy:'open'"),
        ("groupAllowFrom", "", "groupAllowFrom:['+15550001111']"),
        ("groups", "", "groups:{'*':{}}"),
        ("groups.*.requireMention", "groups:{'*':{}}", "groups:{'*':{requireMention:false}}"),
        ("historyLimit", "", "historyLimit:5"),
        ("mentionPatterns", "", "mentionPatterns:{}"),
        ("mentionPatterns.mode", "mentionPatterns:{}", "mentionPatterns:{mode:'deny'}"),
        ("mentionPatterns.allowIn", "mentionPatterns:{}", "mentionPatterns:{allowIn:['1@g.us']}"),
        ("mentionPatterns.denyIn", "mentionPatterns:{}", "mentionPatterns:{denyIn:['1@g.us']}"),
    ];
    let mut out = Vec::new();
    for (key, base, set) in keys {
        out.push(Used {
            key: leak(format!("channels.whatsapp.{key}")),
            base: leak(format!("{{channels:{{whatsapp:{{{base}}}}}}}")),
            set: leak(format!("{{channels:{{whatsapp:{{{set}}}}}}}")),
            show: |s| match s {
                Ok(s) => format!("{:?}", s.app.accounts),
                Err(e) => format!("refused: {e}"),
            },
        });
        out.push(Used {
            key: leak(format!("channels.whatsapp.accounts.*.{key}")),
            base: leak(format!("{{channels:{{whatsapp:{{accounts:{{work:{{{base}}}}}}}}}}}")),
            set: leak(format!("{{channels:{{whatsapp:{{accounts:{{work:{{{set}}}}}}}}}}}")),
            show: |s| match s {
                Ok(s) => format!("{:?}", s.app.accounts),
                Err(e) => format!("refused: {e}"),
            },
        });
    }
    out
}

/// Keys used outside the gateway's settings, with the test that shows their effect
/// (`file`, `fn name`).
const USED_ELSEWHERE: &[(&str, &str, &str)] = &[
    ("channels.whatsapp.defaultAccount", "tests/whatsapp_cli_state.rs", "issue14_item22_logout_honours_default_account_and_auth_dir"),
    ("$schema", "src/config/schema.rs", "committed_schema_is_current"),
    ("agents.defaults.model", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("agents.defaults.model.primary", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("agents.defaults.model.fallbacks", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("agents.defaults.workspace", "tests/agent_providers.rs", "openai_completions_turn_streams_the_mock_text_with_system_prompt_and_history"),
    ("models.providers.*.baseUrl", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("models.providers.*.apiKey", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("models.providers.*.apiKeyFile", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("models.providers.*.api", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("models.providers.*.headers", "tests/config_secrets_scan.rs", "issue14_item14_the_gateway_still_gets_the_real_values"),
    ("models.providers.*.models", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("models.providers.*.models.[].id", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
    ("models.providers.*.models.[].maxTokens", "src/agent/providers/mod.rs", "provider_set_reads_chain_and_keys"),
];

/// Keys the compiler rejects as not supported yet, with a config that sets them.
const REJECTED: &[(&str, &str)] = &[
    ("gateway.auth.password", "{gateway:{auth:{password:'p0123456789'}}}"),
    ("gateway.auth.rateLimit.lockoutMs", "{gateway:{auth:{rateLimit:{lockoutMs:1000}}}}"),
    ("gateway.auth.rateLimit.exemptLoopback", "{gateway:{auth:{rateLimit:{exemptLoopback:true}}}}"),
    ("hooks.mappings", "{hooks:{mappings:[{match:{path:'gh'}}]}}"),
    ("hooks.allowRequestSessionKey", "{hooks:{allowRequestSessionKey:true}}"),
];

/// Values the compiler rejects as not supported yet (the gateway refuses them at startup).
const REJECTED_VALUES: &[(&str, &str)] = &[
    ("gateway.auth.mode", "{gateway:{auth:{mode:'password',password:'p0123456789'}}}"),
    ("gateway.auth.mode", "{gateway:{auth:{mode:'trusted-proxy'}}}"),
    ("gateway.bind", "{gateway:{bind:'tailnet',auth:{token:'t0123456789abcdef'}}}"),
];

/// Every key of the generated schema, dotted; `*` is a map entry, `[]` an array item.
fn schema_keys() -> Vec<String> {
    let root = openclaw::config::schema::get();
    let defs = root.get("definitions").or_else(|| root.get("$defs")).cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    fn walk(node: &Value, defs: &Value, prefix: &str, seen: &mut Vec<String>, out: &mut Vec<String>) {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default().to_string();
            if seen.contains(&name) {
                return;
            }
            seen.push(name.clone());
            walk(&defs[&name], defs, prefix, seen, out);
            seen.pop();
            return;
        }
        for k in ["allOf", "anyOf", "oneOf"] {
            for sub in node.get(k).and_then(Value::as_array).into_iter().flatten() {
                walk(sub, defs, prefix, seen, out);
            }
        }
        for (k, v) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
            let key = format!("{prefix}{k}");
            out.push(key.clone());
            walk(v, defs, &format!("{key}."), seen, out);
        }
        if let Some(ap) = node.get("additionalProperties").filter(|v| v.is_object()) {
            walk(ap, defs, &format!("{prefix}*."), seen, out);
        }
        if let Some(items) = node.get("items").filter(|v| v.is_object()) {
            walk(items, defs, &format!("{prefix}[]."), seen, out);
        }
    }
    walk(root, &defs, "", &mut Vec::new(), &mut out);
    out.sort();
    out.dedup();
    out
}

fn compile(dir: &Path, text: &str) -> Compilation {
    let text = text.replace("$DIR", &dir.display().to_string());
    let file = dir.join("openclaw.json5");
    std::fs::write(&file, text).unwrap();
    let request = SourceRequest { config: Some(file), state_dir: Some(dir.join("state")), no_state: false };
    openclaw::config::compile(&Options { request }, &HashMap::<String, String>::new()).unwrap()
}

fn settings(dir: &Path, text: &str) -> Settings {
    let c = compile(dir, text);
    let errors: Vec<String> = c.errors().map(|d| d.to_string()).collect();
    let snap = c.snapshot().ok_or_else(|| format!("invalid: {errors:?}"))?;
    GatewaySettings::from_snapshot(&snap, &Overrides::default()).map_err(|e| e.to_string())
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "file-token-0123456789\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    dir
}

#[test]
fn every_schema_key_is_used_rejected_or_warned_about() {
    let keys = schema_keys();
    assert!(keys.len() > 150, "the walk found only {} keys", keys.len());
    let used = used();
    let used_keys: BTreeSet<&str> =
        used.iter().map(|u| u.key).chain(USED_ELSEWHERE.iter().map(|(k, _, _)| *k)).collect();
    let rejected = |k: &str| REJECTED.iter().any(|(r, _)| k == *r || k.starts_with(&format!("{r}.")));
    // Containers are covered when every key below them is (deepest first).
    let direct = |k: &str| used_keys.contains(k) || rejected(k) || effect::listed(k);
    let mut by_depth: Vec<&String> = keys.iter().collect();
    by_depth.sort_by_key(|k| std::cmp::Reverse(k.matches('.').count()));
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for k in by_depth {
        let mut children = keys.iter().filter(|c| c.starts_with(&format!("{k}."))).peekable();
        let container = children.peek().is_some();
        if direct(k) || (container && children.all(|c| covered.contains(c))) {
            covered.insert(k.clone());
        }
    }
    let missing: Vec<&String> = keys.iter().filter(|k| !covered.contains(*k)).collect();
    assert!(missing.is_empty(), "schema keys neither used, rejected nor warned about (silently ignored): {missing:#?}");
    // No stale entries: each one names a real key.
    for k in used_keys.iter().copied().chain(REJECTED.iter().map(|(k, _)| *k)) {
        assert!(keys.iter().any(|x| x == k), "{k} is not a schema key any more");
    }
    for k in effect::WHATSAPP_KEYS.iter().chain(effect::WHATSAPP_ROOT_KEYS) {
        assert!(keys.contains(&format!("channels.whatsapp.{k}")), "effect lists channels.whatsapp.{k}, not in the schema");
    }
    eprintln!("{} schema keys: {} used with a shown effect, {} rejected, the rest warned about or containers", keys.len(), used_keys.len(), REJECTED.len());
}

#[test]
fn each_used_key_changes_what_the_gateway_runs_with() {
    let dir = setup();
    for u in used() {
        let base = settings(dir.path(), u.base);
        assert!(base.is_ok(), "{}: base config refused: {base:?}", u.key);
        let set = settings(dir.path(), u.set);
        let (a, b) = ((u.show)(&base), (u.show)(&set));
        assert_ne!(a, b, "{}: setting it changes nothing the gateway runs with", u.key);
        let c = compile(dir.path(), u.set);
        assert!(c.warnings().all(|d| d.code != "no-effect-yet"), "{}: warned about as without effect", u.key);
    }
    for (key, file, name) in USED_ELSEWHERE {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        assert!(text.contains(&format!("fn {name}(")), "{key}: {file} has no test {name}");
    }
}

#[test]
fn issue14_item10_settings_the_gateway_ignores_are_rejected() {
    let dir = setup();
    for (key, text) in REJECTED.iter().chain(REJECTED_VALUES) {
        let c = compile(dir.path(), text);
        let hit = c.errors().find(|d| d.code == "unsupported" && d.path == *key);
        let d = hit.unwrap_or_else(|| panic!("{key}: not rejected as unsupported: {:?}", c.diagnostics));
        assert!(d.message.contains("not supported by this gateway yet"), "{}", d.message);
        assert!(!c.is_valid());
    }
}

#[test]
fn keys_without_effect_yet_are_never_silent() {
    let dir = setup();
    for (text, section) in [
        ("{channels:{whatsapp:{groups:{'1203@g.us':{systemPrompt:'be brief'}}}}}", "channels.whatsapp"),
        ("{channels:{whatsapp:{accounts:{work:{name:'Work',mediaMaxMb:5}}}}}", "channels.whatsapp"),
        ("{channels:{whatsapp:{streaming:{block:{enabled:true}}}}}", "channels.whatsapp"),
        ("{channels:{whatsapp:{actions:{polls:false}}}}", "channels.whatsapp"),
        ("{messages:{responsePrefix:'[bot]'}}", "messages"),
        ("{agents:{entries:{ops:{name:'Ops'}}}}", "agents"),
        ("{models:{providers:{ollama:{baseUrl:'http://127.0.0.1:11434/v1',models:[{id:'llama3',contextWindow:8192}]}}}}", "models"),
    ] {
        let c = compile(dir.path(), text);
        assert!(c.is_valid(), "{text}: {:?}", c.diagnostics);
        let w: Vec<_> = c.warnings().filter(|d| d.code == "no-effect-yet").collect();
        assert_eq!(w.len(), 1, "{text}: {:?}", c.diagnostics);
        assert_eq!(w[0].path, section);
        assert!(w[0].message.contains("no effect yet") && w[0].line.is_some(), "{}", w[0]);
    }
    // Settings that take effect are not warned about.
    for text in [
        "{channels:{whatsapp:{dmPolicy:'allowlist',allowFrom:['+15551234567'],sendReadReceipts:false,streaming:{chunkMode:'newline'}}}}",
        "{agents:{defaults:{model:'ollama/llama3'}},models:{providers:{ollama:{baseUrl:'http://127.0.0.1:11434/v1'}}}}",
        "{channels:{whatsapp:{groupPolicy:'open',groupAllowFrom:['*'],historyLimit:10,groups:{'1203@g.us':{requireMention:false}},mentionPatterns:{mode:'allow'}}},messages:{groupChat:{mentionPatterns:['bot'],historyLimit:20}}}",
        "{messages:{ackReaction:'👀',ackReactionScope:'all'}}",
    ] {
        let c = compile(dir.path(), text);
        assert!(c.is_valid(), "{text}: {:?}", c.diagnostics);
        assert_eq!(c.warnings().filter(|d| d.code == "no-effect-yet").count(), 0, "{text}: {:?}", c.diagnostics);
    }
}
