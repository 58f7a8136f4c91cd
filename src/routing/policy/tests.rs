//! Table tests: every dmPolicy × allowFrom shape × kind of sender, and the group gates.

use std::collections::BTreeMap;

use super::*;

const OWN: &str = "+15550000000";
const FRIEND: &str = "+15550000001";
const STRANGER: &str = "+15550000009";
const APPROVED: &str = "+15550000005";

fn dm(sender: &str) -> Inbound {
    Inbound {
        channel: "whatsapp".into(),
        account_id: "default".into(),
        sender_e164: Some(sender.into()),
        sender_id: format!("{}@s.whatsapp.net", sender.trim_start_matches('+')),
        chat_kind: ChatKind::Direct,
        chat_id: format!("{}@s.whatsapp.net", sender.trim_start_matches('+')),
        self_chat: sender == OWN,
        from_me: sender == OWN,
        mentioned: false,
        is_backlog: false,
        sender_name: Some("Ann".into()),
        text: "hi".into(),
    }
}

fn store() -> PendingPairings {
    let mut s = PendingPairings::default();
    s.allow_from.insert("default".into(), vec![APPROVED.into()]);
    s
}

fn ctx<'a>(policy: DmPolicy, allow: &'a [String], pairing: &'a PendingPairings, groups: &'a BTreeMap<String, WhatsAppGroup>) -> AccessContext<'a> {
    AccessContext {
        dm_policy: policy,
        allow_from: allow,
        group_policy: GroupPolicy::Allowlist,
        group_allow_from: allow,
        groups,
        own_e164: Some(OWN),
        pairing,
        now_ms: 1_000,
    }
}

fn rng() -> impl FnMut(usize) -> usize {
    let mut n = 0;
    move |m| {
        n += 7;
        n % m
    }
}

#[test]
fn every_dm_policy_combination() {
    use DmPolicy::*;
    use Rule::*;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // (policy, allowFrom, sender, expected rule)
    let table: &[(DmPolicy, &[&str], &str, Rule)] = &[
        // pairing (default)
        (Pairing, &[], OWN, OwnNumber),
        (Pairing, &[], FRIEND, PairingChallenge),
        (Pairing, &[], APPROVED, PairingApproved),
        (Pairing, &[FRIEND], FRIEND, AllowFrom),
        (Pairing, &[FRIEND], STRANGER, PairingChallenge),
        (Pairing, &[FRIEND], APPROVED, PairingApproved),
        (Pairing, &[FRIEND], OWN, OwnNumber),
        (Pairing, &["*"], STRANGER, Wildcard),
        // allowlist
        (Allowlist, &[FRIEND], FRIEND, AllowFrom),
        (Allowlist, &[FRIEND], STRANGER, NotAllowlisted),
        (Allowlist, &[FRIEND], APPROVED, NotAllowlisted),
        (Allowlist, &[FRIEND], OWN, OwnNumber),
        (Allowlist, &[], FRIEND, NotAllowlisted),
        (Allowlist, &[], OWN, OwnNumber),
        (Allowlist, &["*"], STRANGER, Wildcard),
        // open
        (Open, &["*"], STRANGER, Wildcard),
        (Open, &["*", FRIEND], FRIEND, Wildcard),
        (Open, &[FRIEND], FRIEND, AllowFrom),
        (Open, &[FRIEND], STRANGER, OpenWithoutWildcard),
        (Open, &[], OWN, OwnNumber),
        // disabled
        (Disabled, &["*"], STRANGER, DmDisabled),
        (Disabled, &[FRIEND], FRIEND, DmDisabled),
        (Disabled, &[], OWN, DmDisabled),
        (Disabled, &[], APPROVED, DmDisabled),
    ];
    let groups = BTreeMap::new();
    let pairing = store();
    for &(policy, allow, sender, want) in table {
        let allow = s(allow);
        let d = decide(&ctx(policy, &allow, &pairing, &groups), &dm(sender), &mut rng());
        assert_eq!(d.rule, want, "{policy:?} allowFrom={allow:?} sender={sender}");
        let admitted = matches!(want, OwnNumber | Wildcard | AllowFrom | PairingApproved);
        assert_eq!(d.admitted(), admitted, "{policy:?} {allow:?} {sender}");
        assert_eq!(matches!(d.action, Action::Challenge { .. }), want == PairingChallenge);
        assert_eq!(d.pairing_state.is_some(), want == PairingChallenge, "only a new request changes the store");
    }
}

#[test]
fn the_challenge_carries_the_reply_to_the_chat_and_the_new_state() {
    let groups = BTreeMap::new();
    let pairing = store();
    let d = decide(&ctx(DmPolicy::Pairing, &[], &pairing, &groups), &dm(STRANGER), &mut rng());
    let Action::Challenge { to, code, reply } = &d.action else { panic!("{d:?}") };
    assert_eq!(to, "15550000009@s.whatsapp.net");
    assert!(reply.contains("Your WhatsApp phone number: +15550000009"));
    assert!(reply.ends_with(&format!("openclaw pairing approve whatsapp {code}\n```")));
    let state = d.pairing_state.unwrap();
    assert_eq!(state.requests.len(), 1);
    assert_eq!(state.requests[0].meta.get("name").map(String::as_str), Some("Ann"));
    assert_eq!(state.allow_from, pairing.allow_from, "approved senders untouched");

    // Second message from the same sender: no reply, state (lastSeen) updated.
    let mut later = ctx(DmPolicy::Pairing, &[], &state, &groups);
    later.now_ms = 2_000;
    let d2 = decide(&later, &dm(STRANGER), &mut rng());
    assert_eq!((d2.rule, d2.action.clone()), (Rule::PairingPending, Action::Drop));
    assert_eq!(d2.pairing_state.unwrap().requests[0].last_seen_at_ms, 2_000);
}

#[test]
fn a_fourth_new_sender_is_ignored() {
    let groups = BTreeMap::new();
    let mut state = PendingPairings::default();
    for (i, sender) in ["+15550000011", "+15550000012", "+15550000013"].iter().enumerate() {
        let d = decide(&ctx(DmPolicy::Pairing, &[], &state, &groups), &dm(sender), &mut rng());
        assert_eq!(d.rule, Rule::PairingChallenge, "sender {i}");
        state = d.pairing_state.unwrap();
    }
    let d = decide(&ctx(DmPolicy::Pairing, &[], &state, &groups), &dm("+15550000014"), &mut rng());
    assert_eq!((d.rule, d.action), (Rule::PairingFull, Action::Drop));
    assert_eq!(d.pairing_state, None);
    // After an hour the old ones expire and a new sender gets a code again.
    let mut later = ctx(DmPolicy::Pairing, &[], &state, &groups);
    later.now_ms = 1_000 + pairing::PENDING_TTL_MS + 1;
    assert_eq!(decide(&later, &dm("+15550000014"), &mut rng()).rule, Rule::PairingChallenge);
}

#[test]
fn backlog_gets_no_challenge_and_from_me_is_not_an_inbound() {
    let groups = BTreeMap::new();
    let pairing = store();
    let mut old = dm(STRANGER);
    old.is_backlog = true;
    let d = decide(&ctx(DmPolicy::Pairing, &[], &pairing, &groups), &old, &mut rng());
    assert_eq!((d.rule, d.pairing_state), (Rule::PairingBacklog, None));

    let mut echo = dm(FRIEND);
    echo.from_me = true;
    let allow = vec![FRIEND.to_string()];
    assert_eq!(decide(&ctx(DmPolicy::Allowlist, &allow, &pairing, &groups), &echo, &mut rng()).rule, Rule::FromMe);
    // Even when the channel names the account itself as the sender of a message it sent to a
    // friend: only the self chat admits the account's own messages.
    let mut mine = dm(FRIEND);
    mine.from_me = true;
    mine.sender_e164 = Some(OWN.into());
    for policy in [DmPolicy::Pairing, DmPolicy::Allowlist, DmPolicy::Open] {
        let d = decide(&ctx(policy, &allow, &pairing, &groups), &mine, &mut rng());
        assert_eq!((d.rule, d.pairing_state), (Rule::FromMe, None), "{policy:?}");
    }
}

#[test]
fn self_chat_is_admitted_without_read_receipt() {
    let groups = BTreeMap::new();
    let pairing = store();
    let allow = vec![FRIEND.to_string()];
    let d = decide(&ctx(DmPolicy::Allowlist, &allow, &pairing, &groups), &dm(OWN), &mut rng());
    assert_eq!(d.action, Action::Admit { mark_read: false });
    let d = decide(&ctx(DmPolicy::Allowlist, &allow, &pairing, &groups), &dm(FRIEND), &mut rng());
    assert_eq!(d.action, Action::Admit { mark_read: true });
}

#[test]
fn group_gates() {
    use Rule::*;
    let pairing = store();
    let friend = vec![FRIEND.to_string()];
    let none: Vec<String> = vec![];
    let group = |sender: &str, mentioned: bool| Inbound {
        chat_kind: ChatKind::Group,
        chat_id: "1203@g.us".into(),
        self_chat: false,
        from_me: false,
        mentioned,
        ..dm(sender)
    };
    let listed: BTreeMap<String, WhatsAppGroup> =
        [("1203@g.us".to_string(), WhatsAppGroup { require_mention: Some(false), ..Default::default() })].into();
    let other: BTreeMap<String, WhatsAppGroup> = [("999@g.us".to_string(), WhatsAppGroup::default())].into();
    let star: BTreeMap<String, WhatsAppGroup> = [("*".to_string(), WhatsAppGroup::default())].into();
    let empty = BTreeMap::new();
    // (groupPolicy, groupAllowFrom, groups, sender, mentioned, expected)
    type Row<'a> = (GroupPolicy, &'a Vec<String>, &'a BTreeMap<String, WhatsAppGroup>, &'a str, bool, Rule);
    let table: Vec<Row> = vec![
        (GroupPolicy::Disabled, &friend, &empty, FRIEND, true, GroupDisabled),
        (GroupPolicy::Allowlist, &none, &empty, FRIEND, true, GroupAllowlistEmpty),
        (GroupPolicy::Allowlist, &friend, &empty, STRANGER, true, GroupSenderNotAllowed),
        (GroupPolicy::Allowlist, &friend, &empty, FRIEND, false, GroupNotMentioned),
        (GroupPolicy::Allowlist, &friend, &empty, FRIEND, true, GroupAdmitted),
        (GroupPolicy::Allowlist, &friend, &listed, FRIEND, false, GroupAdmitted),
        (GroupPolicy::Allowlist, &friend, &other, FRIEND, true, GroupNotListed),
        (GroupPolicy::Allowlist, &friend, &star, FRIEND, false, GroupNotMentioned),
        (GroupPolicy::Open, &none, &empty, STRANGER, true, GroupAdmitted),
        (GroupPolicy::Open, &none, &other, STRANGER, true, GroupNotListed),
        (GroupPolicy::Open, &none, &empty, STRANGER, false, GroupNotMentioned),
    ];
    let mut mine = group(FRIEND, true);
    mine.from_me = true;
    let mut c = ctx(DmPolicy::Pairing, &friend, &pairing, &empty);
    c.group_policy = GroupPolicy::Open;
    assert_eq!(decide(&c, &mine, &mut rng()).rule, FromMe, "own group messages are not inbound");
    for (gp, gaf, groups, sender, mentioned, want) in table {
        let mut c = ctx(DmPolicy::Pairing, &none, &pairing, groups);
        c.group_policy = gp;
        c.group_allow_from = gaf;
        let d = decide(&c, &group(sender, mentioned), &mut rng());
        assert_eq!(d.rule, want, "{gp:?} {gaf:?} {groups:?} {sender} mentioned={mentioned}");
        assert_eq!(d.admitted(), want == GroupAdmitted);
        assert_eq!(d.pairing_state, None, "groups never create pairing requests");
    }
}

#[test]
fn every_rule_has_a_log_text() {
    assert_eq!(Rule::NotAllowlisted.to_string(), "dmPolicy allowlist: sender not in allowFrom (dropped silently)");
}

#[test]
fn context_from_a_resolved_account() {
    let cfg: crate::config::model::WhatsAppConfig =
        serde_json::from_value(serde_json::json!({"dmPolicy": "allowlist", "allowFrom": [FRIEND]})).unwrap();
    let acc = cfg.account("default");
    let pairing = PendingPairings::default();
    let c = AccessContext::for_account(&acc, Some(OWN), &pairing, 0);
    assert_eq!(decide(&c, &dm(FRIEND), &mut rng()).rule, Rule::AllowFrom);
    assert_eq!(decide(&c, &dm(STRANGER), &mut rng()).rule, Rule::NotAllowlisted);
    assert_eq!(c.group_allow_from, [FRIEND.to_string()], "groupAllowFrom falls back to allowFrom");
}

#[test]
fn issue12_require_mention_falls_back_to_the_star_entry_then_true() {
    let g = |rm: Option<bool>| WhatsAppGroup { require_mention: rm, ..Default::default() };
    let groups: BTreeMap<String, WhatsAppGroup> =
        [("1203@g.us".to_string(), g(None)), ("77@g.us".to_string(), g(Some(true))), ("*".to_string(), g(Some(false)))].into();
    assert!(!require_mention(&groups, "1203@g.us"), "own entry without the key: the \"*\" entry decides");
    assert!(require_mention(&groups, "77@g.us"), "own entry wins");
    assert!(!require_mention(&groups, "other@g.us"), "unlisted group under \"*\"");
    assert!(require_mention(&BTreeMap::new(), "1203@g.us"), "upstream default true");
    let only: BTreeMap<String, WhatsAppGroup> = [("1203@g.us".to_string(), g(None))].into();
    assert!(require_mention(&only, "1203@g.us"));
}
