//! `messages`: handling shared by every channel.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Message handling settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessagesConfig {
    /// Emoji reacted to an accepted inbound message (e.g. `👀`); empty or unset disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_reaction: Option<String>,
    /// Which messages get the ack reaction.
    #[serde(default)]
    pub ack_reaction_scope: AckReactionScope,
    /// Text put in front of every reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_prefix: Option<String>,
    /// Group chat handling shared by every channel: mention patterns and the group history
    /// window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_chat: Option<GroupChatConfig>,
}

/// Group chat settings (`messages.groupChat`, and per agent `agents.entries.<id>.groupChat`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupChatConfig {
    /// Regular expressions (case-insensitive) that count as mentioning the assistant in a group
    /// message's text. When set (even empty) they replace the patterns derived from the agent's
    /// `identity`; an agent's own list replaces this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mention_patterns: Option<Vec<String>>,
    /// Unanswered group messages kept as context for the next answered one, per group, when the
    /// channel sets no `historyLimit`. Default 50, at most 200; 0 keeps none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_limit: Option<u32>,
}

/// Scope of the ack reaction (upstream enum).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AckReactionScope {
    /// Group messages that mention the assistant (default).
    #[default]
    GroupMentions,
    /// Every group message.
    GroupAll,
    /// Direct messages.
    Direct,
    /// Everything.
    All,
    /// Never.
    Off,
    /// Never (alias of `off`).
    None,
}
