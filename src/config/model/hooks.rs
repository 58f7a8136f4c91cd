//! `hooks`: authenticated HTTP webhooks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_path() -> String {
    "/hooks".to_string()
}
fn default_max_body_bytes() -> u64 {
    262_144
}
fn default_true() -> bool {
    true
}

/// Webhook settings (upstream-compatible `POST {path}/agent` and `{path}/wake`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HooksConfig {
    /// Serve the webhook endpoints. Needs `token` or `tokenFile`.
    #[serde(default)]
    pub enabled: bool,
    /// The webhook token, sent as `Authorization: Bearer` or `x-openclaw-token`. Prefer
    /// `tokenFile`. Should differ from the gateway token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Path of a file holding the webhook token. Not together with `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// URL path prefix of the webhooks. A leading `/` is added and a trailing one removed; `/`
    /// itself is refused.
    #[serde(default = "default_path")]
    pub path: String,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_max_body_bytes")]
    #[schemars(range(min = 1))]
    pub max_body_bytes: u64,
    /// Custom webhook paths mapped to agent runs or wake events. **Not supported by this gateway
    /// yet**: a non-empty list is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<HookMapping>,
    /// Agents a webhook may target: omitted or `["*"]` means all, `[]` none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_agent_ids: Option<Vec<String>>,
    /// Session key used when a request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_session_key: Option<String>,
    /// Let requests choose their session key. **Not supported by this gateway yet**: setting it
    /// is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_request_session_key: Option<bool>,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token: None,
            token_file: None,
            path: default_path(),
            max_body_bytes: default_max_body_bytes(),
            mappings: Vec::new(),
            allowed_agent_ids: None,
            default_session_key: None,
            allow_request_session_key: None,
        }
    }
}

/// A custom webhook: `POST {hooks.path}/{match.path}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookMapping {
    /// Identifier used in logs and run records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Which requests this mapping handles.
    #[serde(rename = "match")]
    pub matcher: HookMatch,
    /// `agent` starts an agent run (default); `wake` queues a wake event.
    #[serde(default)]
    pub action: HookAction,
    /// Display name of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Agent to run; defaults to the default agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Session key of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    /// Template of the agent message, with `{{field}}` placeholders from the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template: Option<String>,
    /// Template of the wake text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_template: Option<String>,
    /// Deliver the agent's reply to a channel.
    #[serde(default = "default_true")]
    pub deliver: bool,
    /// Channel to deliver to; `last` means the last channel the session used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Recipient on that channel (E.164 for WhatsApp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Model override, `provider/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Run timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u32>,
}

/// Request matcher of a mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookMatch {
    /// Path below `hooks.path`, e.g. `github`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Source tag the request carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What a mapping does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HookAction {
    /// Start an agent run.
    #[default]
    Agent,
    /// Queue a wake event.
    Wake,
}
