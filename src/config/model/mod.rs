//! The typed configuration: upstream OpenClaw's key names, strict (unknown keys are errors), a doc
//! comment on every field (it becomes the schema description), defaults as functions.
//!
//! `schema/openclaw.schema.json` is generated from these types (see [`crate::config::schema`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod agents;
pub mod gateway;
pub mod hooks;
pub mod messages;
pub mod models;
pub mod session;
pub mod whatsapp;

pub use agents::AgentsConfig;
pub use gateway::GatewayConfig;
pub use hooks::HooksConfig;
pub use messages::MessagesConfig;
pub use models::ModelsConfig;
pub use session::SessionConfig;
pub use whatsapp::WhatsAppConfig;

/// The whole OpenClaw configuration, after the system and state layers are merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "OpenClawConfig")]
pub struct OpenClawConfig {
    /// Optional URL of the JSON Schema, for editors. Ignored by the gateway.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The gateway process: port, bind address, authentication, Control UI.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// HTTP webhooks (`POST /hooks/agent`, `/hooks/wake`) that start agent runs or send messages.
    #[serde(default)]
    pub hooks: HooksConfig,
    /// Messaging channels. When a system config file exists, channels are declared there only.
    #[serde(default)]
    pub channels: ChannelsConfig,
    /// Message handling shared by all channels: ack reactions, reply prefix.
    #[serde(default)]
    pub messages: MessagesConfig,
    /// Agents: the default model and named agent entries.
    #[serde(default)]
    pub agents: AgentsConfig,
    /// LLM providers (OpenAI-compatible HTTP endpoints).
    #[serde(default)]
    pub models: ModelsConfig,
    /// Sessions: how direct messages map to agent sessions (`dmScope`).
    #[serde(default)]
    pub session: SessionConfig,
}

/// The channels this gateway runs. A channel is declared by the presence of its key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelsConfig {
    /// The WhatsApp Web (multi-device) channel, linked by QR code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<WhatsAppConfig>,
}
