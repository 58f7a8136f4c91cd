//! The gateway's input boundary: everything the gateway needs, as plain values.
//!
//! The CLI builds a [`GatewaySettings`] (from the compiled snapshot, flags and environment) and hands
//! it to [`crate::gateway::run`]. Nothing in `gateway` reads config files.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::store::StateLayout;

/// The default gateway port (upstream `DEFAULT_GATEWAY_PORT`, `src/config/paths.ts`).
pub const DEFAULT_PORT: u16 = 18789;
/// Upstream's hook body limit in bytes (`src/gateway/hooks.ts`).
pub const DEFAULT_HOOKS_MAX_BODY_BYTES: usize = 262_144;

/// A secret value. `Debug` and `Display` never show it; use [`Secret::expose`] deliberately.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself. Never log or print the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The printable fingerprint (`sha256:` + 8 hex).
    pub fn fingerprint(&self) -> String {
        crate::config::secrets::fingerprint(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSourceKind {
    /// `gateway.auth.token` inline in a config layer (the file is the config file).
    ConfigToken,
    /// `gateway.auth.tokenFile` named by a config layer.
    ConfigTokenFile,
    /// The `OPENCLAW_GATEWAY_TOKEN` environment variable.
    Env,
    /// The `--token` flag.
    Flag,
}

/// A file a secret was read from, with its unix mode as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// The path as configured.
    pub path: PathBuf,
    /// The permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// The canonical path (symlinks resolved), used for the `/nix/store` check.
    pub canonical: PathBuf,
}

/// One explicit source of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource {
    /// What kind of source this is.
    pub kind: TokenSourceKind,
    /// A human label naming the source, e.g. `gateway.auth.token in /etc/openclaw/openclaw.json`.
    pub label: String,
    /// The value (redacted in `Debug`).
    pub value: Secret,
    /// The file the value was read from, if any.
    pub file: Option<SecretFile>,
}

/// How clients authenticate to the gateway (`gateway.auth.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Shared token (the default).
    Token,
    /// No authentication; only allowed on loopback.
    None,
}

/// Auth failure throttling (`gateway.auth.rateLimit`), also used for hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Failures allowed within the window before answering 429.
    pub max_attempts: u32,
    /// The window in milliseconds.
    pub window_ms: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        // Upstream: 20 failures per 60 s (`src/gateway/hooks.ts`).
        Self { max_attempts: 20, window_ms: 60_000 }
    }
}

/// `hooks.*` as the gateway needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksSettings {
    /// `hooks.enabled`.
    pub enabled: bool,
    /// Sources of the hooks token (`hooks.token`, `hooks.tokenFile` from each layer).
    pub token_sources: Vec<TokenSource>,
    /// `hooks.path`, normalised: leading `/`, no trailing `/`, never `/`.
    pub path: String,
    /// `hooks.maxBodyBytes` (default 262 144).
    pub max_body_bytes: usize,
    /// `hooks.allowedAgentIds`: `None` = all, `Some([])` = none.
    pub allowed_agent_ids: Option<Vec<String>>,
    /// `hooks.defaultSessionKey`.
    pub default_session_key: Option<String>,
}

impl Default for HooksSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            token_sources: Vec::new(),
            path: "/hooks".into(),
            max_body_bytes: DEFAULT_HOOKS_MAX_BODY_BYTES,
            allowed_agent_ids: None,
            default_session_key: None,
        }
    }
}

/// `gateway.controlUi.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlUiSettings {
    /// Serve the Control UI page.
    pub enabled: bool,
    /// Base path of the UI, normalised like `hooks.path` (`""` = root).
    pub base_path: String,
    /// Extra origins allowed to open the WebSocket (same-origin and loopback are always allowed).
    pub allowed_origins: Vec<String>,
}

impl Default for ControlUiSettings {
    fn default() -> Self {
        Self { enabled: true, base_path: String::new(), allowed_origins: Vec::new() }
    }
}

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Address to bind (resolved from `gateway.bind`/`customBindHost`/`--bind`).
    pub bind_host: IpAddr,
    /// Port (`--port` > `OPENCLAW_GATEWAY_PORT` > `gateway.port` > 18789; 0 = ephemeral).
    pub port: u16,
    /// `gateway.auth.mode`.
    pub auth_mode: AuthMode,
    /// Every explicit source of the gateway token, in precedence order.
    pub token_sources: Vec<TokenSource>,
    /// Fingerprint of the gateway token compiled into the snapshot, if it had one.
    pub expected_token_fingerprint: Option<String>,
    /// `gateway.remote.token` when `gateway.remote.url` points at this gateway.
    pub remote_token: Option<TokenSource>,
    /// `gateway.auth.rateLimit`.
    pub rate_limit: RateLimitSettings,
    /// `hooks.*`.
    pub hooks: HooksSettings,
    /// `gateway.controlUi.*`.
    pub control_ui: ControlUiSettings,
    /// `gateway.nodes.pairing.autoApproveLocal` (default true).
    pub auto_approve_local: bool,
    /// The state directory layout.
    pub state: StateLayout,
    /// The config files that were read, for status output.
    pub config_paths: Vec<PathBuf>,
    /// `channels.whatsapp` accounts to run (empty: WhatsApp not configured).
    pub whatsapp: Vec<crate::channels::whatsapp::supervisor::AccountConfig>,
    /// What the operations layer needs (accounts' reply settings, ack reaction, the agent).
    pub app: crate::app::AppConfig,
}

impl GatewaySettings {
    /// Defaults for a state dir: loopback, port 18789, token auth, hooks off.
    pub fn new(state: StateLayout) -> Self {
        Self {
            bind_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            auth_mode: AuthMode::Token,
            token_sources: Vec::new(),
            expected_token_fingerprint: None,
            remote_token: None,
            rate_limit: RateLimitSettings::default(),
            hooks: HooksSettings::default(),
            control_ui: ControlUiSettings::default(),
            auto_approve_local: true,
            state,
            config_paths: Vec::new(),
            whatsapp: Vec::new(),
            app: crate::app::AppConfig::default(),
        }
    }

    /// The socket address to bind.
    pub fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_host, self.port)
    }
}

/// Normalises a path prefix as upstream does for `hooks.path` (the config compiler's rule: a
/// leading `/` added, trailing ones removed). Returns `None` for `/` (or empty), which upstream
/// rejects for hooks and which means "no prefix" for the Control UI.
pub fn normalize_base_path(p: &str) -> Option<String> {
    let normalized = crate::config::semantic::normalize_hooks_path(p);
    (normalized != "/").then_some(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2-very-secret");
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("sha256:"));
    }

    #[test]
    fn base_path_normalisation() {
        assert_eq!(normalize_base_path("hooks/").as_deref(), Some("/hooks"));
        assert_eq!(normalize_base_path("/a/b//").as_deref(), Some("/a/b"));
        assert_eq!(normalize_base_path("/"), None);
    }
}
