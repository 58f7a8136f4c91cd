//! `agents`: the default model and named agents.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Agent settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentsConfig {
    /// Settings every agent inherits.
    #[serde(default)]
    pub defaults: AgentDefaults,
    /// Named agents. The default agent id is `main`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entries: BTreeMap<String, AgentEntry>,
}

/// Defaults for all agents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentDefaults {
    /// The model, as `provider/model` or `{primary, fallbacks}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// Working directory of agent runs; defaults to `<state dir>/workspace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
}

/// One named agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentEntry {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// Working directory override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Marks the default agent (at most one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// How the agent presents itself; its `name` and `emoji` count as a mention in groups when
    /// no mention patterns are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<AgentIdentity>,
    /// Group chat settings of this agent (its `mentionPatterns` replace
    /// `messages.groupChat.mentionPatterns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_chat: Option<super::messages::GroupChatConfig>,
}

/// An agent's identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentIdentity {
    /// The agent's name (e.g. `Claw`): `@Claw` or the word `claw` in a group message mentions it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The agent's emoji: a group message containing it mentions the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

/// A model reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ModelRef {
    /// `provider/model`, e.g. `openai/gpt-4o` or `ollama/llama3`.
    Name(String),
    /// A primary model with fallbacks tried in order.
    WithFallbacks(ModelWithFallbacks),
}

/// Primary model plus fallbacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelWithFallbacks {
    /// `provider/model` tried first.
    pub primary: String,
    /// `provider/model` names tried when the primary fails.
    #[serde(default)]
    pub fallbacks: Vec<String>,
}

impl ModelRef {
    /// Every `provider/model` name in this reference, primary first.
    pub fn names(&self) -> Vec<&str> {
        match self {
            ModelRef::Name(n) => vec![n.as_str()],
            ModelRef::WithFallbacks(m) => {
                std::iter::once(m.primary.as_str()).chain(m.fallbacks.iter().map(String::as_str)).collect()
            }
        }
    }
}
