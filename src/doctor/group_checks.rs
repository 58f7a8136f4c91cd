//! The doctor check for seed 001's "Group messages ignored": the running gateway's last ignored
//! group messages (`channels.decisions`), each with the rule that dropped it and the config key
//! to change. Pure: facts in, one finding out.

use serde_json::Value;

use super::checks::{Finding, Status};
use super::facts::Facts;

/// How many ignored group messages the check shows.
pub const SHOWN: usize = 5;

/// `groups.ignored`: skip without a running gateway; ok when no group message was ignored or
/// every one only lacked a mention (the normal case in a busy group); warn when the policy
/// blocked some (a group or member that is not allowed), with the newest block's fix.
pub fn groups_ignored(f: &Facts) -> Finding {
    let id = "groups.ignored";
    let Some(live) = &f.live else {
        return Finding::new(id, Status::Skip, "not checked: the gateway is not running (it keeps its recent decisions in memory)");
    };
    let list: Vec<&Value> = live.group_decisions.iter().take(SHOWN).collect();
    if list.is_empty() {
        return Finding::new(id, Status::Ok, "no group message was ignored since the gateway started");
    }
    let blocked: Vec<&&Value> = list.iter().filter(|d| d["rule"] != "group-not-mentioned").collect();
    let (status, message) = if blocked.is_empty() {
        (Status::Ok, format!("the last {} ignored group messages did not mention the assistant (kept as group history)", list.len()))
    } else {
        (Status::Warn, format!("{} of the last {} ignored group messages were blocked by the group policy", blocked.len(), list.len()))
    };
    let mut x = Finding::new(id, status, message);
    for d in &list {
        let mut line = format!(
            "{}/{} group {} from {}: {}",
            d["channel"].as_str().unwrap_or("?"),
            d["accountId"].as_str().unwrap_or("?"),
            d["chat"].as_str().unwrap_or("?"),
            d["sender"].as_str().unwrap_or("?"),
            d["reason"].as_str().unwrap_or("?")
        );
        if let Some(fix) = d["fix"].as_str() {
            line.push_str(&format!(" (to have it answered: {fix})"));
        }
        x = x.ev(line);
    }
    if let Some(fix) = blocked.first().and_then(|d| d["fix"].as_str()) {
        x = x.fix(format!("{fix}; then restart the gateway"));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::facts::Live;
    use crate::routing::decisions::DecisionRecord;
    use crate::routing::{ChatKind, Inbound, Rule};

    fn dropped(rule: Rule, chat: &str) -> Value {
        let msg = Inbound {
            channel: "whatsapp".into(),
            account_id: "default".into(),
            sender_e164: Some("+15550001111".into()),
            sender_id: "15550001111@s.whatsapp.net".into(),
            chat_kind: ChatKind::Group,
            chat_id: chat.into(),
            self_chat: false,
            from_me: false,
            mentioned: false,
            is_backlog: false,
            sender_name: None,
            text: "hi".into(),
        };
        serde_json::to_value(DecisionRecord::new(1, &msg, "M1", rule, false, None)).unwrap()
    }

    fn facts(decisions: Option<Vec<Value>>) -> Facts {
        Facts { live: decisions.map(|group_decisions| Live { group_decisions, ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn issue12_item3_doctor_explains_why_a_group_message_was_ignored() {
        assert_eq!(groups_ignored(&facts(None)).status, Status::Skip);
        assert_eq!(groups_ignored(&facts(Some(vec![]))).status, Status::Ok);
        let only_mentions = groups_ignored(&facts(Some(vec![dropped(Rule::GroupNotMentioned, "1@g.us")])));
        assert_eq!((only_mentions.status, only_mentions.fix.is_none()), (Status::Ok, true));
        let f = groups_ignored(&facts(Some(vec![
            dropped(Rule::GroupNotMentioned, "1@g.us"),
            dropped(Rule::GroupNotListed, "120363000000000042@g.us"),
        ])));
        assert_eq!(f.status, Status::Warn);
        assert!(f.message.starts_with("1 of the last 2"), "{}", f.message);
        assert_eq!(
            f.fix.as_deref(),
            Some("add 120363000000000042@g.us to channels.whatsapp.groups (or \"*\" for every group); then restart the gateway")
        );
        assert!(f.evidence[1].contains("group not in the groups map"), "{:?}", f.evidence);
        assert!(f.evidence[0].contains("requireMention to false"), "{:?}", f.evidence);
    }
}
