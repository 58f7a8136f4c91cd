//! `session`: how conversations map to agent sessions (upstream's `session.*`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Session settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionConfig {
    /// How direct messages map to sessions: `main` (default: every DM shares the agent's main
    /// session), `per-peer` (one per sender), `per-channel-peer` (one per channel and sender),
    /// `per-account-channel-peer` (one per channel account and sender).
    #[serde(default)]
    pub dm_scope: DmScope,
}

/// How direct chats map to sessions (`session.dmScope`, upstream's values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DmScope {
    /// One session shared by every DM (default): `agent:<agent>:main`.
    #[default]
    Main,
    /// One session per sender, across channels: `agent:<agent>:direct:<peer>`.
    PerPeer,
    /// One session per channel and sender: `agent:<agent>:<channel>:direct:<peer>`.
    PerChannelPeer,
    /// One session per channel account and sender:
    /// `agent:<agent>:<channel>:<account>:direct:<peer>`.
    PerAccountChannelPeer,
}
