//! Group chats in the operations layer (issue 12 items 2–3): who the account is (for mention
//! detection), the group history windows, and the ring of recent routing decisions that
//! explains why a message was or was not answered.
//!
//! The pure parts live in `routing` ([`crate::routing::mention`],
//! [`crate::routing::group_history`], [`crate::routing::decisions`]); this file holds their
//! in-memory state for one gateway and reads the account's identity from the channel status
//! (`self.e164/jid/lid`, published by the channel once linked). The locks are held for a few
//! map operations only, never across I/O or an `await`.

use std::sync::Mutex;

use crate::config::model::OpenClawConfig;
use crate::messaging::InboundMessage;
use crate::routing::decisions::{DecisionFilter, DecisionLog, DecisionRecord};
use crate::routing::group_history::{self, Entry, GroupHistory};
use crate::routing::mention::{self, MentionInput, MentionPatterns, MentionReason, OwnIdentity, PatternSource};
use crate::routing::Inbound;

use super::{AccountSettings, App};

/// The in-memory group state of one gateway.
#[derive(Debug, Default)]
pub struct GroupState {
    history: Mutex<GroupHistory>,
    decisions: Mutex<DecisionLog>,
}

/// The mention pattern sources of a config: the default agent's `groupChat.mentionPatterns`
/// and `identity`, and `messages.groupChat.mentionPatterns` (upstream `resolveMentionPatterns`).
/// The default agent is the entry marked `default: true`, else the entry `main`.
pub fn pattern_source(cfg: &OpenClawConfig) -> PatternSource {
    let entries = &cfg.agents.entries;
    let agent = entries
        .values()
        .find(|e| e.default == Some(true))
        .or_else(|| entries.get(crate::routing::session_key::DEFAULT_AGENT_ID));
    let identity = agent.and_then(|a| a.identity.as_ref());
    PatternSource {
        agent: agent.and_then(|a| a.group_chat.as_ref()).and_then(|g| g.mention_patterns.clone()),
        global: cfg.messages.group_chat.as_ref().and_then(|g| g.mention_patterns.clone()),
        identity_name: identity.and_then(|i| i.name.clone()),
        identity_emoji: identity.and_then(|i| i.emoji.clone()),
    }
}

/// Compiles the mention patterns of `cfg`, logging (warn) each pattern the regex engine refuses.
pub fn compile_patterns(cfg: &OpenClawConfig) -> MentionPatterns {
    let (patterns, rejected) = MentionPatterns::compile(&pattern_source(cfg));
    for r in rejected {
        tracing::warn!(pattern = %r.pattern, reason = %r.reason, "ignoring an unsupported group mention pattern");
    }
    patterns
}

/// The sender as the agent reads it in a group: `Name (+1555…)`, or the number / address alone.
pub fn sender_label(msg: &InboundMessage, routed: &Inbound) -> String {
    let peer = routed.peer_id();
    match msg.sender_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} ({peer})"),
        None => peer.to_string(),
    }
}

impl App {
    /// Who `channel`/`account` is linked as, from its published status (empty until linked).
    pub fn own_identity(&self, channel: &str, account: &str) -> OwnIdentity {
        match self.status.get(channel, account).and_then(|s| s.self_id) {
            Some(me) => OwnIdentity { e164: Some(me.e164), jid: Some(me.jid), lid: me.lid },
            None => OwnIdentity::default(),
        }
    }

    /// Whether group message `msg` mentions the account, and why.
    pub fn group_mention(&self, settings: &AccountSettings, own: &OwnIdentity, msg: &InboundMessage, text: &str) -> Option<MentionReason> {
        let mentions: Vec<String> = msg.mentions.iter().map(|m| m.to_string()).collect();
        let input = MentionInput {
            chat_id: msg.chat.as_str(),
            text,
            mentions: &mentions,
            reply_to_sender: msg.reply_to_sender.as_ref().map(|s| s.as_str()),
        };
        mention::detect(own, &self.cfg.mention_patterns, settings.resolved.mention_patterns.as_ref(), &input)
    }

    /// The group history window of an account: `historyLimit` (account, inherited) →
    /// `messages.groupChat.historyLimit` → 50, at most 200.
    pub fn group_history_limit(&self, settings: &AccountSettings) -> usize {
        group_history::resolve_limit(&[settings.resolved.history_limit, self.cfg.group_chat_history_limit])
    }

    /// Keeps an unanswered group message as context for the session `key`.
    pub(crate) fn record_group_history(&self, key: &str, entry: Entry, limit: usize) {
        let n = self.groups.history.lock().unwrap_or_else(|p| p.into_inner()).record(key, entry, limit);
        tracing::debug!(session = %key, kept = n, limit, "group message kept as history");
    }

    /// Takes the group history of session `key` (cleared: the next turn sees only newer ones).
    pub(crate) fn take_group_history(&self, key: &str, limit: usize) -> Vec<Entry> {
        self.groups.history.lock().unwrap_or_else(|p| p.into_inner()).take(key, limit)
    }

    /// Remembers a routing decision (see [`App::recent_decisions`]).
    pub(crate) fn remember_decision(&self, rec: DecisionRecord) {
        self.groups.decisions.lock().unwrap_or_else(|p| p.into_inner()).push(rec);
    }

    /// The last routing decisions (newest first), at most `limit`; the ring keeps
    /// [`crate::routing::decisions::DEFAULT_CAPACITY`] per account.
    pub fn recent_decisions(&self, filter: &DecisionFilter<'_>, limit: usize) -> Vec<DecisionRecord> {
        self.groups.decisions.lock().unwrap_or_else(|p| p.into_inner()).recent(filter, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_sources_follow_upstreams_precedence() {
        let cfg: OpenClawConfig = serde_json::from_value(serde_json::json!({
            "messages": {"groupChat": {"mentionPatterns": ["computer"], "historyLimit": 7}},
            "agents": {"entries": {
                "main": {"identity": {"name": "Claw", "emoji": "🦞"}},
                "ops": {"default": true, "identity": {"name": "Ops"}, "groupChat": {"mentionPatterns": ["\\bops bot\\b"]}}
            }}
        }))
        .unwrap();
        let src = pattern_source(&cfg);
        assert_eq!(src.agent, Some(vec!["\\bops bot\\b".to_string()]), "the default agent is the one marked default");
        assert_eq!(src.identity_name.as_deref(), Some("Ops"));
        assert!(compile_patterns(&cfg).matches("hey OPS BOT"));
        let cfg: OpenClawConfig =
            serde_json::from_value(serde_json::json!({"agents": {"entries": {"main": {"identity": {"name": "Claw"}}}}})).unwrap();
        let p = compile_patterns(&cfg);
        assert!(p.matches("@claw hi") && !p.matches("computer"));
        assert!(compile_patterns(&OpenClawConfig::default()).is_empty(), "nothing configured: no patterns");
    }
}
