//! `openclaw pairing list|approve` through the real binary on a state dir whose store the
//! routing layer filled (issue 11): upstream's texts and JSON, the approved sender admitted by
//! the next decision, and the config file left byte for byte as it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use openclaw::agent::pairing_store::PairingStore;
use openclaw::config::model::whatsapp::{DmPolicy, GroupPolicy};
use openclaw::routing::policy::Action;
use openclaw::routing::{decide, AccessContext, ChatKind, Inbound, Rule};
use serde_json::Value;

fn openclaw(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openclaw"))
        .env_remove("OPENCLAW_CONFIG_PATH")
        .env_remove("OPENCLAW_STATE_DIR")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn dm(sender: &str) -> Inbound {
    Inbound {
        channel: "whatsapp".into(),
        account_id: "default".into(),
        sender_e164: Some(sender.into()),
        sender_id: format!("{}@s.whatsapp.net", &sender[1..]),
        chat_kind: ChatKind::Direct,
        chat_id: format!("{}@s.whatsapp.net", &sender[1..]),
        self_chat: false,
        from_me: false,
        mentioned: false,
        is_backlog: false,
        sender_name: Some("Bob".into()),
        text: "hello".into(),
    }
}

/// One inbound DM under `dmPolicy: pairing`, decided inside the store's lock like the gateway.
fn inbound(store: &PairingStore, sender: &str) -> openclaw::routing::Decision {
    let groups = BTreeMap::new();
    let allow = vec!["+15550000001".to_string()];
    let mut rng = |n: usize| (getrandom::u32().unwrap() as usize) % n;
    store
        .update("whatsapp", |state| {
            let ctx = AccessContext {
                dm_policy: DmPolicy::Pairing,
                allow_from: &allow,
                group_policy: GroupPolicy::Allowlist,
                group_allow_from: &allow,
                groups: &groups,
                own_e164: Some("+15550000000"),
                pairing: state,
                now_ms: now_ms(),
            };
            let d = decide(&ctx, &dm(sender), &mut rng);
            if let Some(next) = &d.pairing_state {
                *state = next.clone();
            }
            d
        })
        .unwrap()
}

#[test]
fn pairing_flow_code_reply_then_approve_then_admitted() {
    let dir = tempfile::tempdir().unwrap();
    let config = "{ channels: { whatsapp: { dmPolicy: 'pairing', allowFrom: ['+15550000001'] } } }\n";
    std::fs::write(dir.path().join("openclaw.json"), config).unwrap();
    let store = PairingStore::new(dir.path());

    let out = openclaw(dir.path(), &["pairing", "list", "--channel", "whatsapp"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "No pending whatsapp pairing requests.\n");

    let d = inbound(&store, "+15550001111");
    assert_eq!(d.rule, Rule::PairingChallenge);
    let Action::Challenge { code, reply, .. } = d.action else { panic!() };
    assert!(reply.contains(&format!("openclaw pairing approve whatsapp {code}")));
    // The same sender again: no second reply.
    assert_eq!(inbound(&store, "+15550001111").rule, Rule::PairingPending);

    let out = openclaw(dir.path(), &["pairing", "list", "whatsapp", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channel"], "whatsapp");
    let req = &v["requests"][0];
    assert_eq!(req["id"], "+15550001111");
    assert_eq!(req["code"], code.as_str());
    assert_eq!(req["meta"], serde_json::json!({"name": "Bob", "accountId": "default"}));
    assert!(req["createdAt"].as_str().unwrap().ends_with('Z'));

    let out = openclaw(dir.path(), &["pairing", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Pairing requests (1)\nCode      userId        Meta"), "{text}");
    assert!(text.contains(&code) && text.contains("+15550001111"), "{text}");

    let out = openclaw(dir.path(), &["pairing", "approve", "whatsapp", "ZZZZZZZZ"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No pending pairing request found for code \"ZZZZZZZZ\". Run openclaw pairing list --channel whatsapp to list pending requests.\n"
    );

    let out = openclaw(dir.path(), &["pairing", "approve", "whatsapp", &code.to_lowercase()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Approved whatsapp sender +15550001111.\n");

    // The next DM is admitted by the store entry; the config file was not touched.
    let d = inbound(&store, "+15550001111");
    assert_eq!((d.rule, d.action), (Rule::PairingApproved, Action::Admit { mark_read: true }));
    assert_eq!(std::fs::read_to_string(dir.path().join("openclaw.json")).unwrap(), config);
    let out = openclaw(dir.path(), &["pairing", "list", "--channel", "whatsapp"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "No pending whatsapp pairing requests.\n");

    // `--channel` form, and a channel without pairing.
    let out = openclaw(dir.path(), &["pairing", "approve", "--channel", "whatsapp", &code]);
    assert_eq!(out.status.code(), Some(1), "a code is used once");
    let out = openclaw(dir.path(), &["pairing", "list", "--channel", "telegram"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not support pairing"));
}

#[test]
fn a_fourth_sender_gets_no_code_and_is_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = PairingStore::new(dir.path());
    for s in ["+15550002001", "+15550002002", "+15550002003"] {
        assert_eq!(inbound(&store, s).rule, Rule::PairingChallenge);
    }
    let d = inbound(&store, "+15550002004");
    assert_eq!((d.rule, d.action), (Rule::PairingFull, Action::Drop));
    let out = openclaw(dir.path(), &["pairing", "list", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["requests"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert!(!ids.contains(&"+15550002004"));
}
