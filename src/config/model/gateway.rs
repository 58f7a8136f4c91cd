//! `gateway`: the process, its listener and its authentication.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The default gateway port (upstream `DEFAULT_GATEWAY_PORT`).
pub const DEFAULT_PORT: u16 = 18789;

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_true() -> bool {
    true
}

/// Gateway process settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    /// TCP port for HTTP and the WebSocket control protocol (one listener). `--port` overrides it.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// `local` runs a gateway here; `remote` means this config only describes a gateway elsewhere
    /// (the CLI connects to `gateway.remote.url`).
    #[serde(default)]
    pub mode: GatewayMode,
    /// Which addresses to listen on. `loopback` (127.0.0.1) is the default; every other mode
    /// needs authentication.
    #[serde(default)]
    pub bind: BindMode,
    /// The IPv4 address to listen on when `bind` is `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_bind_host: Option<String>,
    /// How clients authenticate to the gateway.
    #[serde(default)]
    pub auth: GatewayAuth,
    /// The browser dashboard served at `/`.
    #[serde(default)]
    pub control_ui: ControlUi,
    /// Where the CLI finds a remote gateway (client-side settings).
    #[serde(default)]
    pub remote: GatewayRemote,
    /// Device and node settings of the control protocol.
    #[serde(default)]
    pub nodes: GatewayNodes,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            port: default_port(),
            mode: GatewayMode::default(),
            bind: BindMode::default(),
            custom_bind_host: None,
            auth: GatewayAuth::default(),
            control_ui: ControlUi::default(),
            remote: GatewayRemote::default(),
            nodes: GatewayNodes::default(),
        }
    }
}

/// Gateway mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GatewayMode {
    /// Run the gateway on this machine.
    #[default]
    Local,
    /// Connect to a gateway elsewhere.
    Remote,
}

/// Listener address modes (upstream names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BindMode {
    /// All interfaces when in a container, else loopback (upstream's `auto`).
    Auto,
    /// All interfaces (0.0.0.0).
    Lan,
    /// 127.0.0.1 only.
    #[default]
    Loopback,
    /// The address in `gateway.customBindHost`.
    Custom,
    /// The Tailscale interface address.
    Tailnet,
}

impl BindMode {
    /// Whether this mode listens on loopback only.
    pub fn is_loopback(self) -> bool {
        matches!(self, BindMode::Loopback)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::Auto => "auto",
            BindMode::Lan => "lan",
            BindMode::Loopback => "loopback",
            BindMode::Custom => "custom",
            BindMode::Tailnet => "tailnet",
        }
    }
}

/// Gateway authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayAuth {
    /// `token` (shared secret, the default when a token exists), `password`, `none` (loopback
    /// only) or `trusted-proxy`. Required when both a token and a password are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AuthMode>,
    /// The shared gateway token. Prefer `tokenFile`: a token here is readable by whoever reads
    /// the config (on NixOS, everyone: the store is world-readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Path of a file holding the gateway token (e.g. a systemd `LoadCredential` path). Read at
    /// compile and startup; must not be group/world readable. Not together with `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// A password clients may send instead of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Limits on failed authentication attempts.
    #[serde(default)]
    pub rate_limit: AuthRateLimit,
}

/// Authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// No authentication (loopback binds only).
    None,
    /// Shared token.
    Token,
    /// Password.
    Password,
    /// A reverse proxy authenticates users and passes a header.
    TrustedProxy,
}

fn default_max_attempts() -> u32 {
    20
}
fn default_window_ms() -> u64 {
    60_000
}

/// Failed-authentication throttling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthRateLimit {
    /// Failed attempts allowed per window before clients are locked out.
    #[serde(default = "default_max_attempts")]
    #[schemars(range(min = 1))]
    pub max_attempts: u32,
    /// The counting window in milliseconds.
    #[serde(default = "default_window_ms")]
    #[schemars(range(min = 1))]
    pub window_ms: u64,
    /// How long a locked-out client waits, in milliseconds. **Not supported by this gateway
    /// yet** (a throttled client waits until its window ends): setting it is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockout_ms: Option<u64>,
    /// Exempt loopback clients from the limit. **Not supported by this gateway yet** (loopback
    /// clients are throttled like any other): setting it is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt_loopback: Option<bool>,
}

impl Default for AuthRateLimit {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            window_ms: default_window_ms(),
            lockout_ms: None,
            exempt_loopback: None,
        }
    }
}

/// The Control UI (dashboard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlUi {
    /// Serve the dashboard.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// URL path prefix of the dashboard, e.g. `/openclaw` behind a reverse proxy; empty for `/`.
    #[serde(default)]
    pub base_path: String,
    /// Extra browser origins allowed to open the control WebSocket (the gateway's own origin is
    /// always allowed).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl Default for ControlUi {
    fn default() -> Self {
        Self { enabled: true, base_path: String::new(), allowed_origins: Vec::new() }
    }
}

/// Client-side settings for reaching a gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayRemote {
    /// WebSocket URL of the gateway, e.g. `ws://127.0.0.1:18789`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The token the CLI sends; when set for this gateway it must equal `gateway.auth.token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Devices and nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayNodes {
    /// Device pairing.
    #[serde(default)]
    pub pairing: NodePairing,
}

/// Device pairing policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePairing {
    /// Approve new devices connecting from loopback without asking.
    #[serde(default = "default_true")]
    pub auto_approve_local: bool,
}

impl Default for NodePairing {
    fn default() -> Self {
        Self { auto_approve_local: true }
    }
}
