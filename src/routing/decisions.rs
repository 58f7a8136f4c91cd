//! "Why was this message ignored": the last routing decisions of each channel account, kept in
//! a bounded ring in memory, each with the rule that decided and, for a dropped message, the
//! config key to change (issue 12 item 3). Pure data; the caller stamps the time and holds the
//! log under its own lock.

use std::collections::{BTreeMap, VecDeque};

use super::mention::MentionReason;
use super::{ChatKind, Inbound, Rule};

/// Decisions kept per account.
pub const DEFAULT_CAPACITY: usize = 50;

/// One decision, as shown by `channels.decisions` and `openclaw channels status --verbose`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// When it was decided (unix ms).
    pub at_ms: u64,
    /// The channel (`whatsapp`).
    pub channel: String,
    /// The account.
    pub account_id: String,
    /// `direct` or `group`.
    pub chat_kind: ChatKind,
    /// The chat (for a group its JID).
    pub chat: String,
    /// The sender (E.164 when known, else its address).
    pub sender: String,
    /// The channel's message id.
    pub message_id: String,
    /// Whether the message went to the agent.
    pub admitted: bool,
    /// The rule that decided.
    pub rule: Rule,
    /// Why it mentioned the assistant, when it did (groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mention: Option<MentionReason>,
    /// The rule in words.
    pub reason: String,
    /// What to change to have such a message answered, naming the config key; `None` when
    /// nothing should change (admitted, or our own message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The config path of `key` for `account`: the channel root for the default account, else the
/// account's own block (both work for an account that inherits; this names the narrowest).
fn key_path(channel: &str, account: &str, key: &str) -> String {
    if account == crate::config::model::whatsapp::DEFAULT_ACCOUNT_ID {
        format!("channels.{channel}.{key}")
    } else {
        format!("channels.{channel}.accounts.{account}.{key}")
    }
}

/// What to change so that a message like `msg` is answered, for a drop by `rule`.
pub fn fix_for(rule: Rule, msg: &Inbound) -> Option<String> {
    let k = |key: &str| key_path(&msg.channel, &msg.account_id, key);
    let (chat, peer) = (msg.chat_id.as_str(), msg.peer_id());
    Some(match rule {
        Rule::GroupDisabled => format!(
            "set {} to \"allowlist\" (and add {chat} to {}) or to \"open\"",
            k("groupPolicy"),
            k("groups")
        ),
        Rule::GroupNotListed => format!("add {chat} to {} (or \"*\" for every group)", k("groups")),
        Rule::GroupAllowlistEmpty => format!(
            "add {peer} to {} (or \"*\" for every member), or set {} to \"open\"",
            k("groupAllowFrom"),
            k("groupPolicy")
        ),
        Rule::GroupSenderNotAllowed => format!(
            "add {peer} to {} (or \"*\" for every member), or set {} to \"open\"",
            k("groupAllowFrom"),
            k("groupPolicy")
        ),
        Rule::GroupNotMentioned => format!(
            "mention the assistant (@its number, reply to one of its messages, or match messages.groupChat.mentionPatterns), or set {}.\"{chat}\".requireMention to false",
            k("groups")
        ),
        Rule::DmDisabled => format!("set {} to \"allowlist\" or \"pairing\"", k("dmPolicy")),
        Rule::NotAllowlisted | Rule::OpenWithoutWildcard => format!("add {peer} to {}", k("allowFrom")),
        Rule::PairingChallenge | Rule::PairingPending => {
            format!("approve the sender with `openclaw pairing approve {} <code>`", msg.channel)
        }
        Rule::PairingFull => format!("approve or let expire the pending requests (`openclaw pairing list {}`)", msg.channel),
        Rule::PairingBacklog => "nothing: the sender gets a pairing code on their next message".to_string(),
        Rule::FromMe
        | Rule::OwnNumber
        | Rule::Wildcard
        | Rule::AllowFrom
        | Rule::PairingApproved
        | Rule::GroupAdmitted => return None,
    })
}

impl DecisionRecord {
    /// The record of `rule` deciding `msg` (id `message_id`) at `at_ms`.
    pub fn new(at_ms: u64, msg: &Inbound, message_id: &str, rule: Rule, admitted: bool, mention: Option<MentionReason>) -> Self {
        Self {
            at_ms,
            channel: msg.channel.clone(),
            account_id: msg.account_id.clone(),
            chat_kind: msg.chat_kind,
            chat: msg.chat_id.clone(),
            sender: msg.peer_id().to_string(),
            message_id: message_id.to_string(),
            admitted,
            rule,
            mention,
            reason: rule.to_string(),
            fix: if admitted { None } else { fix_for(rule, msg) },
        }
    }

    /// One line for people: `group 1203…@g.us from +1555…: dropped — <reason>; to answer: <fix>`.
    pub fn describe(&self) -> String {
        let kind = match self.chat_kind {
            ChatKind::Group => format!("group {}", self.chat),
            ChatKind::Direct => "direct chat".to_string(),
        };
        let verdict = if self.admitted { "answered" } else { "ignored" };
        let mut s = format!("{kind} from {}: {verdict}: {}", self.sender, self.reason);
        if let Some(fix) = &self.fix {
            s.push_str(&format!("; to have it answered: {fix}"));
        }
        s
    }
}

/// The last decisions per `(channel, account)`, newest last.
#[derive(Debug)]
pub struct DecisionLog {
    capacity: usize,
    rings: BTreeMap<(String, String), VecDeque<DecisionRecord>>,
}

impl Default for DecisionLog {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl DecisionLog {
    /// Keeps `capacity` decisions per account (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), rings: BTreeMap::new() }
    }

    /// Adds a decision, dropping the account's oldest beyond capacity.
    pub fn push(&mut self, rec: DecisionRecord) {
        let ring = self.rings.entry((rec.channel.clone(), rec.account_id.clone())).or_default();
        ring.push_back(rec);
        while ring.len() > self.capacity {
            ring.pop_front();
        }
    }

    /// Decisions, newest first, filtered by channel / account / kind / outcome, at most `limit`.
    pub fn recent(&self, filter: &DecisionFilter<'_>, limit: usize) -> Vec<DecisionRecord> {
        let mut out: Vec<DecisionRecord> = self
            .rings
            .iter()
            .filter(|((c, a), _)| filter.channel.is_none_or(|x| x == c) && filter.account.is_none_or(|x| x == a))
            .flat_map(|(_, ring)| ring.iter().rev())
            .filter(|r| filter.kind.is_none_or(|k| k == r.chat_kind))
            .filter(|r| !filter.dropped_only || !r.admitted)
            .cloned()
            .collect();
        // Stable: decisions of the same millisecond stay newest first.
        out.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
        out.truncate(limit);
        out
    }
}

/// Which decisions [`DecisionLog::recent`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionFilter<'a> {
    /// Only this channel.
    pub channel: Option<&'a str>,
    /// Only this account.
    pub account: Option<&'a str>,
    /// Only direct chats or only groups.
    pub kind: Option<ChatKind>,
    /// Only messages that were not answered.
    pub dropped_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(account: &str, sender: &str) -> Inbound {
        Inbound {
            channel: "whatsapp".into(),
            account_id: account.into(),
            sender_e164: Some(sender.into()),
            sender_id: format!("{}@s.whatsapp.net", sender.trim_start_matches('+')),
            chat_kind: ChatKind::Group,
            chat_id: "120363000000000001@g.us".into(),
            self_chat: false,
            from_me: false,
            mentioned: false,
            is_backlog: false,
            sender_name: None,
            text: "hi".into(),
        }
    }

    #[test]
    fn every_group_drop_names_the_key_to_change() {
        let m = group("default", "+15550000001");
        let fix = |r| fix_for(r, &m).unwrap();
        assert_eq!(fix(Rule::GroupNotListed), "add 120363000000000001@g.us to channels.whatsapp.groups (or \"*\" for every group)");
        assert!(fix(Rule::GroupDisabled).contains("channels.whatsapp.groupPolicy"));
        assert!(fix(Rule::GroupSenderNotAllowed).starts_with("add +15550000001 to channels.whatsapp.groupAllowFrom"));
        assert!(fix(Rule::GroupAllowlistEmpty).contains("channels.whatsapp.groupAllowFrom"));
        assert!(fix(Rule::GroupNotMentioned).contains("channels.whatsapp.groups.\"120363000000000001@g.us\".requireMention to false"));
        let work = group("work", "+15550000001");
        assert!(fix_for(Rule::GroupNotListed, &work).unwrap().contains("channels.whatsapp.accounts.work.groups"));
        assert_eq!(fix_for(Rule::GroupAdmitted, &m), None);
        assert_eq!(fix_for(Rule::FromMe, &m), None);
    }

    #[test]
    fn the_ring_keeps_the_last_n_per_account_newest_first() {
        let mut log = DecisionLog::new(3);
        for t in 0..5u64 {
            log.push(DecisionRecord::new(t, &group("default", "+15550000001"), &format!("m{t}"), Rule::GroupNotListed, false, None));
        }
        log.push(DecisionRecord::new(10, &group("work", "+15550000002"), "w1", Rule::GroupAdmitted, true, Some(MentionReason::Mentioned)));
        let all = log.recent(&DecisionFilter::default(), 100);
        assert_eq!(all.iter().map(|r| r.message_id.as_str()).collect::<Vec<_>>(), ["w1", "m4", "m3", "m2"]);
        let dropped = log.recent(&DecisionFilter { dropped_only: true, ..Default::default() }, 2);
        assert_eq!(dropped.iter().map(|r| r.message_id.as_str()).collect::<Vec<_>>(), ["m4", "m3"]);
        let work = log.recent(&DecisionFilter { account: Some("work"), ..Default::default() }, 10);
        assert_eq!(work.len(), 1);
        assert!(work[0].describe().contains("answered"));
        let line = all[1].describe();
        assert_eq!(
            line,
            "group 120363000000000001@g.us from +15550000001: ignored: group not in the groups map; to have it answered: add 120363000000000001@g.us to channels.whatsapp.groups (or \"*\" for every group)"
        );
        let v = serde_json::to_value(&all[0]).unwrap();
        assert_eq!((v["rule"].as_str(), v["chatKind"].as_str(), v["mention"].as_str()), (Some("group-admitted"), Some("group"), Some("mentioned")));
    }
}
