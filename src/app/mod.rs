//! The operations layer: what hooks, control methods and the CLI do, written once (DESIGN.md
//! "one code path per operation, whatever the front end"). Each front end is a thin adapter that
//! parses its request, calls one of these and maps the typed answer to its wire format.
//!
//! - [`send`]: resolve a target, enqueue a message in the account's outbox, read its outcome;
//! - [`delivery`]: resolve where an agent run's reply goes **before** the run is accepted
//!   (`channel`+`to`, else the channel's `defaultTo`, else the session's last route);
//! - [`executor`]: the run executor (agent turn, then delivery through the outbox);
//! - [`run_delivery`]: a `sending` run follows its reply parts in the outbox to `delivered` or
//!   `failed` (delivered means the server acknowledged every part);
//! - [`inbound`]: the consumer of the inbound queue (routing decision, pairing, ack reaction,
//!   read receipt, one turn per session at a time, the reply chunked and sent in order);
//! - [`groups`]: group chats — mention detection against the account's identity, group
//!   history windows, the ring of recent routing decisions ("why was this ignored").
//! - [`inbound_runs`]: each inbound DM turn recorded as a run (`origin: "inbound"`).
//!
//! Depends on config, messaging, routing, agent and the channel registry; never on the gateway.

pub mod delivery;
pub mod executor;
pub mod group_list;
pub mod groups;
pub mod inbound;
pub mod inbound_runs;
pub mod run_delivery;
pub mod send;

use std::sync::{Arc, RwLock};

use crate::agent::pairing_store::PairingStore;
use crate::agent::sessions::SessionStore;
use crate::agent::turn::Agent;
use crate::channels::registry::ChannelRegistry;
use crate::channels::status::ChannelStatusHandle;
use crate::config::model::messages::AckReactionScope;
use crate::config::model::whatsapp::{ChunkMode, ReplyToMode, ResolvedAccount};
use crate::routing::DmScope;

pub use delivery::{DeliveryError, DeliveryRequest};
pub use send::{SendAccepted, SendOpError, SendRequest};

/// How long an unsent message waits in the outbox for its account to connect before it
/// expires (sends, hook deliveries and replies).
pub const DEFAULT_SEND_DEADLINE_MS: u64 = 24 * 60 * 60 * 1000;

/// The effective settings of one channel account that the operations need.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSettings {
    /// The channel id (`whatsapp`).
    pub channel: String,
    /// Inherited settings (policies, `textChunkLimit`, `sendReadReceipts`, …).
    pub resolved: ResolvedAccount,
    /// `streaming.chunkMode` (default `length`).
    pub chunk_mode: ChunkMode,
    /// `replyToMode` (default `off`).
    pub reply_to_mode: ReplyToMode,
    /// `defaultTo`: where hook deliveries go when a request names the channel but no `to`.
    pub default_to: Option<String>,
}

/// What the operations layer is configured with (built by the gateway from the snapshot).
#[derive(Clone, Default)]
pub struct AppConfig {
    /// Every configured channel account.
    pub accounts: Vec<AccountSettings>,
    /// The default account id per channel (`channels.whatsapp.defaultAccount`, else `default`).
    pub default_accounts: Vec<(String, String)>,
    /// `messages.ackReaction` (empty or unset: off).
    pub ack_reaction: Option<String>,
    /// `messages.ackReactionScope`.
    pub ack_reaction_scope: AckReactionScope,
    /// `session.dmScope` (default `main`).
    pub dm_scope: DmScope,
    /// History sent with a turn, in user turns (`dmHistoryLimit`); `None`: all that is kept.
    pub history_limit: Option<usize>,
    /// The agent, when given directly (tests); otherwise built by [`App::new`] from `snapshot`
    /// with the persistent session history.
    pub agent: Option<Arc<Agent>>,
    /// The compiled snapshot the agent (providers, keys, workspace) is built from.
    pub snapshot: Option<Arc<crate::config::Snapshot>>,
    /// Why there is no agent (the run error text), when there is none.
    pub agent_unavailable: Option<String>,
    /// `messages.groupChat.historyLimit`: the group history window when a channel sets none.
    pub group_chat_history_limit: Option<u32>,
    /// The compiled group mention patterns ([`groups::compile_patterns`]).
    pub mention_patterns: crate::routing::mention::MentionPatterns,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("accounts", &self.accounts.len())
            .field("agent", &self.agent.is_some())
            .field("agent_unavailable", &self.agent_unavailable)
            .finish()
    }
}

impl AppConfig {
    /// The operations settings of a compiled config: every WhatsApp account with its inherited
    /// `streaming.chunkMode`, `replyToMode` and `defaultTo`, and `messages.ackReaction*`.
    pub fn from_config(cfg: &crate::config::model::OpenClawConfig, snapshot: Option<Arc<crate::config::Snapshot>>) -> Self {
        let mut out = AppConfig {
            ack_reaction: cfg.messages.ack_reaction.clone(),
            ack_reaction_scope: cfg.messages.ack_reaction_scope,
            group_chat_history_limit: cfg.messages.group_chat.as_ref().and_then(|g| g.history_limit),
            mention_patterns: groups::compile_patterns(cfg),
            dm_scope: cfg.session.dm_scope,
            snapshot,
            ..AppConfig::default()
        };
        if let Some(wa) = &cfg.channels.whatsapp {
            out.default_accounts.push(("whatsapp".into(), wa.default_account_id()));
            for id in wa.account_ids() {
                let own = wa.accounts.get(&id);
                let shared = wa.accounts.get(crate::config::model::whatsapp::DEFAULT_ACCOUNT_ID).filter(|_| id != crate::config::model::whatsapp::DEFAULT_ACCOUNT_ID);
                macro_rules! pick {
                    ($($f:tt)+) => {
                        own.and_then(|a| a.$($f)+.clone())
                            .or_else(|| shared.and_then(|a| a.$($f)+.clone()))
                            .or_else(|| wa.$($f)+.clone())
                    };
                }
                let chunk_mode = own
                    .and_then(|a| a.streaming.as_ref().and_then(|s| s.chunk_mode))
                    .or_else(|| shared.and_then(|a| a.streaming.as_ref().and_then(|s| s.chunk_mode)))
                    .or_else(|| wa.streaming.as_ref().and_then(|s| s.chunk_mode))
                    .unwrap_or(ChunkMode::Length);
                out.accounts.push(AccountSettings {
                    channel: "whatsapp".into(),
                    resolved: wa.account(&id),
                    chunk_mode,
                    reply_to_mode: pick!(reply_to_mode).unwrap_or(ReplyToMode::Off),
                    default_to: pick!(default_to),
                });
            }
        }
        out
    }

    /// The settings of `channel`/`account`.
    pub fn account(&self, channel: &str, account: &str) -> Option<&AccountSettings> {
        self.accounts.iter().find(|a| a.channel == channel && a.resolved.id == account)
    }

    /// The default account id of `channel`, if the channel is configured.
    pub fn default_account(&self, channel: &str) -> Option<&str> {
        self.default_accounts.iter().find(|(c, _)| c == channel).map(|(_, a)| a.as_str())
    }

    /// The configured channel ids, in order, without repeats.
    pub fn channels(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.accounts {
            if !out.contains(&a.channel.as_str()) {
                out.push(&a.channel);
            }
        }
        out
    }
}

/// The operations layer of one gateway. Cheap to share (`Arc`).
pub struct App {
    cfg: AppConfig,
    registry: RwLock<ChannelRegistry>,
    status: ChannelStatusHandle,
    sessions: SessionStore,
    pairing: PairingStore,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    groups: groups::GroupState,
    /// The run registry inbound turns are recorded in (set by the gateway once it is open).
    runs: std::sync::OnceLock<crate::agent::runs::RunRegistry>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl App {
    /// An operations layer over `cfg`, with channel statuses, sessions and pairing state.
    /// The registry starts empty: the gateway sets it once the channel drivers run.
    pub fn new(
        cfg: AppConfig,
        status: ChannelStatusHandle,
        sessions: SessionStore,
        pairing: PairingStore,
        clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Self {
        let mut cfg = cfg;
        if cfg.agent.is_none()
            && let Some(snap) = cfg.snapshot.clone()
        {
            match Agent::from_snapshot(&snap, crate::agent::providers::Timeouts::default()) {
                Ok(mut agent) if !agent.providers.chain.is_empty() => {
                    agent.history = Arc::new(sessions.clone());
                    agent.history_limit = cfg.history_limit;
                    cfg.agent = Some(Arc::new(agent));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the agent cannot be set up; agent runs will fail");
                    cfg.agent_unavailable = Some(format!("the agent cannot be set up: {e}"));
                }
            }
        }
        Self {
            cfg,
            registry: RwLock::new(ChannelRegistry::default()),
            status,
            sessions,
            pairing,
            clock,
            groups: Default::default(),
            runs: std::sync::OnceLock::new(),
        }
    }

    /// Replaces the channel registry (the running accounts' handles).
    pub fn set_registry(&self, registry: ChannelRegistry) {
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = registry;
    }

    /// The current channel registry (a cheap clone).
    pub fn registry(&self) -> ChannelRegistry {
        self.registry.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.cfg
    }

    /// The session store.
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// Unix ms now.
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }
}

#[cfg(test)]
mod tests {
    /// DESIGN.md: `app` sits below the gateway (front ends call it, never the reverse).
    #[test]
    fn app_never_imports_the_gateway() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app");
        let mut scanned = 0;
        let needles = [format!("crate::{}", "gateway"), format!("crate::{}", "cli")];
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            scanned += 1;
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                assert!(needles.iter().all(|n| !line.contains(n.as_str())), "{}: {line}", p.display());
            }
        }
        assert!(scanned >= 5);
    }
}
