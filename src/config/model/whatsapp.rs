//! `channels.whatsapp`: every key of upstream's WhatsApp plugin schema
//! (`@openclaw/whatsapp` `openclaw.plugin.json`, see `shared/reference/openclaw.md` §1.3),
//! plus `accounts` and `defaultAccount`.
//!
//! The channel root and each account share the policy keys, so one macro declares them for both.
//! They are all optional in the file; [`WhatsAppConfig::account`] resolves an account's effective
//! values (account → `accounts.default` → root → built-in default).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Upstream's default text chunk size.
pub const DEFAULT_TEXT_CHUNK_LIMIT: u32 = 4000;
/// WhatsApp's hard cap on one text message at send time.
pub const MAX_TEXT_CHUNK: u32 = 4096;
/// Upstream's default media size limit in MB.
pub const DEFAULT_MEDIA_MAX_MB: u32 = 50;
/// Upstream's default group history length.
pub const DEFAULT_GROUP_HISTORY_LIMIT: u32 = 50;
/// The account id used when none is configured.
pub const DEFAULT_ACCOUNT_ID: &str = "default";

/// Longest accepted account id.
pub const MAX_ACCOUNT_ID_LEN: usize = 64;

/// The one rule for WhatsApp account ids, shared by the config compiler, `openclaw channels
/// login/logout` and the gateway: 1 to [`MAX_ACCOUNT_ID_LEN`] ASCII letters, digits, `-` and
/// `_`. An id names directories under the state dir, so `/`, `.`, `..` and anything else that
/// could leave them are refused.
pub fn check_account_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ACCOUNT_ID_LEN {
        return Err(format!("account id {id:?} must have 1 to {MAX_ACCOUNT_ID_LEN} characters"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("invalid account id {id:?} (letters, digits, - and _ only)"));
    }
    Ok(())
}

/// What can be checked of an `authDir` without the file system (the config compiler): not
/// empty, no NUL, no `..` component, not `/`, and a relative one is not the state dir itself.
pub fn check_auth_dir(dir: &str) -> Result<(), String> {
    use std::path::Component;
    let path = std::path::Path::new(dir);
    if dir.trim().is_empty() || dir.contains('\0') {
        return Err(format!("authDir {dir:?} is not a directory path"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("authDir {dir:?} contains \"..\""));
    }
    if path.components().all(|c| matches!(c, Component::RootDir | Component::CurDir)) {
        return Err(format!("authDir {dir:?} is the root or the state directory itself; logout would delete everything in it"));
    }
    Ok(())
}

/// Directories of the state dir an `authDir` may not be or contain (logout empties the
/// `authDir`): the state dir itself and the ones holding other state.
const SHARED_STATE_DIRS: &[&str] = &["credentials", "credentials/whatsapp", "channels", "channels/whatsapp", "devices"];

/// The full rule for an `authDir`, checked before it is honoured (login, logout, the gateway):
/// [`check_auth_dir`]; relative paths are under `state_root`; the result is neither the state
/// dir, nor a parent of it, nor one of its shared directories; an absolute one (or, when it
/// does not exist yet, its nearest existing parent) is owned by this process's user.
pub fn resolve_auth_dir(state_root: &std::path::Path, dir: &str) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    check_auth_dir(dir)?;
    let given = Path::new(dir);
    let path = if given.is_absolute() { given.to_path_buf() } else { state_root.join(given) };
    // Resolve symlinks of the existing part, so a link cannot smuggle in the state dir or `/`.
    let canon = |p: &Path| -> PathBuf {
        let mut existing = p.to_path_buf();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
                _ => break,
            }
        }
        let mut out = std::fs::canonicalize(&existing).unwrap_or(existing);
        out.extend(rest.iter().rev());
        out
    };
    let real = canon(&path);
    let root = canon(state_root);
    if real == Path::new("/") {
        return Err(format!("authDir {dir:?} resolves to \"/\""));
    }
    if root.starts_with(&real) {
        return Err(format!(
            "authDir {dir:?} ({}) is the state directory or contains it; logout would delete it",
            real.display()
        ));
    }
    for shared in SHARED_STATE_DIRS {
        if root.join(shared).starts_with(&real) {
            return Err(format!(
                "authDir {dir:?} ({}) holds other state ({shared}); give the account a directory of its own",
                real.display()
            ));
        }
    }
    if given.is_absolute() {
        let uid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .map_err(|e| format!("cannot tell which user runs this process: {e}"))?;
        let mut probe = real.as_path();
        while !probe.exists() {
            probe = probe.parent().unwrap_or(Path::new("/"));
        }
        let owner = std::fs::metadata(probe).map_err(|e| format!("authDir {dir:?}: {}: {e}", probe.display()))?.uid();
        if owner != uid {
            return Err(format!(
                "authDir {dir:?}: {} belongs to uid {owner}, not to this user (uid {uid})",
                probe.display()
            ));
        }
        if real.exists() && !real.is_dir() {
            return Err(format!("authDir {dir:?} is not a directory"));
        }
    }
    Ok(path)
}

macro_rules! whatsapp_struct {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            /// Run this channel (or account). Default `true`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub enabled: Option<bool>,
            /// Let the channel write config changes (e.g. approved senders). Default `true`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub config_writes: Option<bool>,
            /// Capability tags advertised to agents.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub capabilities: Option<Vec<String>>,
            /// Who may start a direct conversation: `pairing` (default: unknown senders get a
            /// pairing code), `allowlist` (only `allowFrom`), `open` (anyone; needs `"*"` in
            /// `allowFrom`) or `disabled`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dm_policy: Option<DmPolicy>,
            /// Senders allowed to message the assistant directly, as E.164 numbers
            /// (`+15551234567`), or `"*"` for anyone.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub allow_from: Option<Vec<String>>,
            /// Default recipient (E.164) for messages sent without a target.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub default_to: Option<String>,
            /// Which groups the assistant answers in: `allowlist` (default: only `groups`),
            /// `open` or `disabled`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub group_policy: Option<GroupPolicy>,
            /// Group members allowed to address the assistant (E.164 or `"*"`); falls back to
            /// `allowFrom`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub group_allow_from: Option<Vec<String>>,
            /// Per-group settings by group JID (`...@g.us`) or `"*"`. Replaces the inherited map
            /// as a whole.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub groups: Option<BTreeMap<String, WhatsAppGroup>>,
            /// Per-sender direct-chat settings by E.164 number or `"*"`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub direct: Option<BTreeMap<String, WhatsAppDirect>>,
            /// Per-conversation history settings by id.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dms: Option<BTreeMap<String, WhatsAppDm>>,
            /// Group messages kept as context for the agent. Default 50.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub history_limit: Option<u32>,
            /// Direct messages kept as context for the agent.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dm_history_limit: Option<u32>,
            /// Longest reply chunk in characters. Default 4000; WhatsApp caps a message at 4096.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1))]
            pub text_chunk_limit: Option<u32>,
            /// How replies are split and streamed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub streaming: Option<WhatsAppStreaming>,
            /// Largest media file received or sent, in MB. Default 50.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1))]
            pub media_max_mb: Option<u32>,
            /// Send read receipts for accepted messages. Default `true`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub send_read_receipts: Option<bool>,
            /// The linked number is the user's own: answer messages to self.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub self_chat_mode: Option<bool>,
            /// Quote the inbound message in replies: `off` (default), `first`, `all`, `batched`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub reply_to_mode: Option<ReplyToMode>,
            /// How much the assistant reacts with emoji: `off`, `ack`, `minimal` (default),
            /// `extensive`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub reaction_level: Option<ReactionLevel>,
            /// Extra patterns that count as a mention in groups.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub mention_patterns: Option<MentionPatterns>,
            /// Which earlier messages the agent sees: `all`, `allowlist`, `allowlist_quote`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub context_visibility: Option<ContextVisibility>,
            /// Markdown rendering of replies.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub markdown: Option<WhatsAppMarkdown>,
            /// Text put in front of every reply on this channel.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub response_prefix: Option<String>,
            /// Visibility of heartbeat runs on this channel.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub heartbeat_visibility: Option<String>,
            /// Channel health monitoring.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub health_monitor: Option<HealthMonitor>,
            /// Plugin hooks on inbound messages.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub plugin_hooks: Option<PluginHooks>,
            $($extra)*
        }
    };
}

whatsapp_struct! {
    /// The WhatsApp channel: the settings of the default account plus named accounts.
    WhatsAppConfig {
        /// Named accounts (several linked numbers). Each inherits the channel settings.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub accounts: BTreeMap<String, WhatsAppAccount>,
        /// The account used when none is named. Defaults to `default`, else the first id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub default_account: Option<String>,
        /// Which actions agents may take on this channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub actions: Option<WhatsAppActions>,
    }
}

whatsapp_struct! {
    /// One linked WhatsApp number.
    WhatsAppAccount {
        /// Display name of the account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Credentials directory; defaults to `<state>/credentials/whatsapp/<accountId>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth_dir: Option<String>,
    }
}

/// Direct-message policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    /// Unknown senders get a pairing code to approve.
    #[default]
    Pairing,
    /// Only `allowFrom`.
    Allowlist,
    /// Anyone (requires `"*"` in `allowFrom`).
    Open,
    /// No direct messages.
    Disabled,
}

/// Group policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    /// Any group.
    Open,
    /// No groups.
    Disabled,
    /// Only groups listed in `groups`.
    #[default]
    Allowlist,
}

/// Settings of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatsAppGroup {
    /// Answer only when mentioned. (This key exists per group only, not at channel level.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_mention: Option<bool>,
    /// Extra system prompt for this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Tool policy in this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ToolPolicy>,
    /// Tool policy per sender (E.164) in this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_by_sender: Option<BTreeMap<String, ToolPolicy>>,
}

/// Tool allow/deny lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolPolicy {
    /// Only these tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// These tools in addition to the inherited ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub also_allow: Option<Vec<String>>,
    /// Never these tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
}

/// Settings of direct chats with one sender.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatsAppDirect {
    /// Extra system prompt for this sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
}

/// History settings of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatsAppDm {
    /// Messages kept as context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_limit: Option<u32>,
}

/// Reply streaming.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatsAppStreaming {
    /// Split long replies by `length` (default) or at `newline`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_mode: Option<ChunkMode>,
    /// Send partial replies in blocks while the agent is still writing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockStreaming>,
}

/// How replies are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChunkMode {
    /// At the chunk limit.
    Length,
    /// At line breaks.
    Newline,
}

/// Block streaming.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockStreaming {
    /// Stream replies in blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How small blocks are merged before sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<Coalesce>,
}

/// Block coalescing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Coalesce {
    /// Smallest block sent, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_chars: Option<u32>,
    /// Largest block sent, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<u32>,
    /// Send what is buffered after this many idle milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u32>,
}

/// Reply quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplyToMode {
    /// Never quote.
    Off,
    /// Quote in the first chunk.
    First,
    /// Quote in every chunk.
    All,
    /// Quote once per batch of inbound messages.
    Batched,
}

/// Reaction level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReactionLevel {
    /// No reactions.
    Off,
    /// Only the ack reaction.
    Ack,
    /// Few reactions.
    Minimal,
    /// Many reactions.
    Extensive,
}

/// Mention patterns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MentionPatterns {
    /// `allow` or `deny` the patterns below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MentionMode>,
    /// Groups where the patterns apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_in: Option<Vec<String>>,
    /// Groups where they don't.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_in: Option<Vec<String>>,
}

/// Mention pattern mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MentionMode {
    /// Allow.
    Allow,
    /// Deny.
    Deny,
}

/// Context visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContextVisibility {
    /// Every message.
    All,
    /// Messages from allowed senders.
    Allowlist,
    /// Allowed senders plus quoted messages.
    AllowlistQuote,
}

/// Markdown rendering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatsAppMarkdown {
    /// How Markdown tables are rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<String>,
}

/// Health monitoring.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthMonitor {
    /// Monitor the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Plugin hooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginHooks {
    /// Run plugin hooks on every received message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_received: Option<bool>,
}

/// Actions agents may take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatsAppActions {
    /// React to messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<bool>,
    /// Send messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_message: Option<bool>,
    /// Create polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls: Option<bool>,
    /// Place calls. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<bool>,
}

/// The effective settings of one account after inheritance.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAccount {
    /// The account id.
    pub id: String,
    /// Whether the account runs.
    pub enabled: bool,
    /// Direct-message policy.
    pub dm_policy: DmPolicy,
    /// Allowed direct senders.
    pub allow_from: Vec<String>,
    /// Group policy.
    pub group_policy: GroupPolicy,
    /// Allowed group senders (falls back to `allow_from`).
    pub group_allow_from: Vec<String>,
    /// Per-group settings.
    pub groups: BTreeMap<String, WhatsAppGroup>,
    /// Reply chunk size, capped at [`MAX_TEXT_CHUNK`].
    pub text_chunk_limit: u32,
    /// Media size limit in bytes.
    pub media_max_bytes: u64,
    /// Send read receipts.
    pub send_read_receipts: bool,
    /// Self-chat mode.
    pub self_chat_mode: bool,
    /// Credentials directory override.
    pub auth_dir: Option<String>,
    /// `historyLimit`: the group history window, when set on the account or inherited.
    pub history_limit: Option<u32>,
    /// `mentionPatterns`: where mention patterns apply (allow/deny per group).
    pub mention_patterns: Option<MentionPatterns>,
}

impl WhatsAppConfig {
    /// The ids of all accounts: the configured ones, or [`DEFAULT_ACCOUNT_ID`] when none are.
    pub fn account_ids(&self) -> Vec<String> {
        if self.accounts.is_empty() {
            vec![DEFAULT_ACCOUNT_ID.to_string()]
        } else {
            self.accounts.keys().cloned().collect()
        }
    }

    /// The account used when none is named: `defaultAccount`, else `default`, else the first id.
    pub fn default_account_id(&self) -> String {
        if let Some(id) = &self.default_account {
            return id.clone();
        }
        if self.accounts.is_empty() || self.accounts.contains_key(DEFAULT_ACCOUNT_ID) {
            return DEFAULT_ACCOUNT_ID.to_string();
        }
        self.accounts.keys().next().cloned().unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_string())
    }

    /// Effective settings of account `id`: the account's own value, else `accounts.default`'s,
    /// else the channel root's, else the built-in default. `enabled`, `selfChatMode`, `name` and
    /// `authDir` are not inherited from other accounts.
    pub fn account(&self, id: &str) -> ResolvedAccount {
        let own = self.accounts.get(id);
        let shared = self.accounts.get(DEFAULT_ACCOUNT_ID).filter(|_| id != DEFAULT_ACCOUNT_ID);
        macro_rules! pick {
            ($field:ident) => {
                own.and_then(|a| a.$field.clone())
                    .or_else(|| shared.and_then(|a| a.$field.clone()))
                    .or_else(|| self.$field.clone())
            };
        }
        let allow_from = pick!(allow_from).unwrap_or_default();
        let group_allow_from = pick!(group_allow_from).unwrap_or_else(|| allow_from.clone());
        let media_mb = pick!(media_max_mb).unwrap_or(DEFAULT_MEDIA_MAX_MB);
        ResolvedAccount {
            id: id.to_string(),
            enabled: own.and_then(|a| a.enabled).or(self.enabled).unwrap_or(true),
            dm_policy: pick!(dm_policy).unwrap_or_default(),
            allow_from,
            group_policy: pick!(group_policy).unwrap_or_default(),
            group_allow_from,
            groups: pick!(groups).unwrap_or_default(),
            text_chunk_limit: pick!(text_chunk_limit).unwrap_or(DEFAULT_TEXT_CHUNK_LIMIT).min(MAX_TEXT_CHUNK),
            media_max_bytes: u64::from(media_mb) * 1024 * 1024,
            send_read_receipts: pick!(send_read_receipts).unwrap_or(true),
            self_chat_mode: own.and_then(|a| a.self_chat_mode).or(self.self_chat_mode).unwrap_or(false),
            auth_dir: own.and_then(|a| a.auth_dir.clone()),
            history_limit: pick!(history_limit),
            mention_patterns: pick!(mention_patterns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue14_item20_account_ids_follow_one_rule() {
        for ok in ["default", "work", "a-b_C9", &"x".repeat(MAX_ACCOUNT_ID_LEN)] {
            assert!(check_account_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..", ".", "../x", "a b", "é", "a.b", &"x".repeat(MAX_ACCOUNT_ID_LEN + 1)] {
            assert!(check_account_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn issue14_item22_auth_dir_rule() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("state");
        std::fs::create_dir_all(root.join("credentials/whatsapp")).unwrap();
        assert_eq!(resolve_auth_dir(&root, "wa/work").unwrap(), root.join("wa/work"));
        let own = d.path().join("elsewhere/wa");
        assert_eq!(resolve_auth_dir(&root, own.to_str().unwrap()).unwrap(), own);
        for bad in ["", "/", ".", "./", "..", "../x", "wa/../..", "credentials", "credentials/whatsapp", "channels", "devices"] {
            assert!(resolve_auth_dir(&root, bad).is_err(), "{bad:?} accepted");
        }
        // A parent of the state dir, directly or through a symlink.
        assert!(resolve_auth_dir(&root, d.path().to_str().unwrap()).is_err());
        std::os::unix::fs::symlink(d.path(), root.join("up")).unwrap();
        assert!(resolve_auth_dir(&root, "up").is_err(), "symlink to a parent of the state dir");
        std::os::unix::fs::symlink("/", root.join("slash")).unwrap();
        assert!(resolve_auth_dir(&root, "slash").is_err(), "symlink to /");
        // A file is not a directory.
        std::fs::write(d.path().join("file"), "x").unwrap();
        assert!(resolve_auth_dir(&root, d.path().join("file").to_str().unwrap()).is_err());
        // Not owned by this user: /proc/1 belongs to root; as root, nothing under / is foreign,
        // so use a directory chowned to another uid.
        let foreign = d.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        if std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).is_ok() {
            let e = resolve_auth_dir(&root, foreign.to_str().unwrap()).unwrap_err();
            assert!(e.contains("belongs to uid 65534"), "{e}");
            assert!(resolve_auth_dir(&root, foreign.join("sub").to_str().unwrap()).is_err());
        }
    }

    #[test]
    fn accounts_inherit_account_then_default_then_root() {
        let cfg: WhatsAppConfig = serde_json::from_value(serde_json::json!({
            "dmPolicy": "allowlist",
            "allowFrom": ["+15550000001"],
            "textChunkLimit": 9000,
            "selfChatMode": true,
            "accounts": {
                "default": {"groupPolicy": "open", "selfChatMode": false},
                "work": {"allowFrom": ["+15550000002"]}
            }
        }))
        .unwrap();
        let work = cfg.account("work");
        assert_eq!(work.dm_policy, DmPolicy::Allowlist);
        assert_eq!(work.allow_from, vec!["+15550000002"]);
        assert_eq!(work.group_allow_from, vec!["+15550000002"]);
        assert_eq!(work.group_policy, GroupPolicy::Open, "from accounts.default");
        assert!(work.self_chat_mode, "selfChatMode is not inherited from accounts.default");
        assert_eq!(work.text_chunk_limit, MAX_TEXT_CHUNK);
        assert_eq!(cfg.default_account_id(), "default");
        assert_eq!(cfg.account_ids(), vec!["default", "work"]);
    }
}
