//! Building [`GatewaySettings`] from a compiled [`Snapshot`] plus command-line and environment
//! overrides. The snapshot is the only config input; secrets are re-read from their sources
//! through [`Snapshot::read_secret`] (the config module owns that), and the token checks in
//! [`crate::gateway::token`] then compare them with the compiled fingerprint.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::config::model::gateway::{AuthMode as ConfigAuthMode, BindMode, GatewayMode};
use crate::config::secrets::SecretSource;
use crate::channels::whatsapp::supervisor::AccountConfig;
use crate::config::Snapshot;
use crate::gateway::settings::{
    normalize_base_path, AuthMode, GatewaySettings, Secret, TokenSource, TokenSourceKind,
};
use crate::store::StateLayout;

/// What the command line and environment add to the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--port`.
    pub port: Option<u16>,
    /// `OPENCLAW_GATEWAY_PORT` (`1234`, `host:1234`, `[v6]:1234`).
    pub env_port: Option<String>,
    /// `--bind`: a mode name or an IP address.
    pub bind: Option<String>,
    /// `--auth`: `token` or `none`.
    pub auth: Option<String>,
    /// `--token`.
    pub token: Option<String>,
    /// `OPENCLAW_GATEWAY_TOKEN`.
    pub env_token: Option<String>,
    /// `--state-dir`: wins over the snapshot's state dir (which wins over the default).
    pub state_dir: Option<PathBuf>,
}

/// Why the snapshot cannot start a gateway.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The snapshot's config does not decode.
    #[error("the snapshot's config does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    /// A setting this gateway does not run.
    #[error("{0}")]
    Unsupported(String),
    /// A bad override.
    #[error("{0}")]
    Invalid(String),
    /// A secret could not be read from its source.
    #[error("{0}")]
    Secret(String),
}

fn secret_source(snap: &Snapshot, name: &str, kind_label: &str) -> Result<Option<TokenSource>, SettingsError> {
    let Some(info) = snap.secrets.get(name) else { return Ok(None) };
    let value = snap.read_secret(name).map_err(|e| SettingsError::Secret(e.to_string()))?;
    let (kind, label, file) = match &info.source {
        SecretSource::File { path } => {
            let file = crate::gateway::token::secret_file_info(path)
                .map_err(|e| SettingsError::Secret(format!("cannot stat {}: {e}", path.display())))?;
            (TokenSourceKind::ConfigTokenFile, format!("{kind_label}File {}", path.display()), Some(file))
        }
        SecretSource::Inline { file, line, column } => {
            let info = crate::gateway::token::secret_file_info(file)
                .map_err(|e| SettingsError::Secret(format!("cannot stat {}: {e}", file.display())))?;
            (TokenSourceKind::ConfigToken, format!("{kind_label} in {}:{line}:{column}", file.display()), Some(info))
        }
        SecretSource::Env { var } => (TokenSourceKind::Env, format!("{kind_label} (${{{var}}})"), None),
    };
    Ok(Some(TokenSource { kind, label, value: Secret::new(value), file }))
}

fn parse_env_port(s: &str) -> Option<u16> {
    s.rsplit(':').next().and_then(|p| p.parse().ok())
}

fn points_here(url: &str, port: u16) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hostport = rest.split('/').next().unwrap_or("");
    let (host, p) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse::<u16>().ok()),
        _ => (hostport, None),
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]") && p.is_none_or(|p| p == port)
}

impl GatewaySettings {
    /// The settings for running `snap` with `o` applied.
    pub fn from_snapshot(snap: &Snapshot, o: &Overrides) -> Result<Self, SettingsError> {
        let cfg = snap.typed()?;
        let g = &cfg.gateway;
        if g.mode == GatewayMode::Remote {
            return Err(SettingsError::Unsupported(
                "gateway.mode is \"remote\": this config describes a client of another gateway".into(),
            ));
        }
        let state = o.state_dir.clone().or_else(|| snap.state_dir.clone()).unwrap_or_else(crate::store::default_state_dir);
        let mut s = GatewaySettings::new(StateLayout::new(state));
        s.config_paths = snap.sources.iter().map(|x| x.path.clone()).collect();
        // Port: --port > OPENCLAW_GATEWAY_PORT > gateway.port.
        s.port = match (o.port, o.env_port.as_deref()) {
            (Some(p), _) => p,
            (None, Some(e)) => parse_env_port(e)
                .ok_or_else(|| SettingsError::Invalid(format!("OPENCLAW_GATEWAY_PORT={e:?} is not a port")))?,
            (None, None) => g.port,
        };
        // Bind: --bind (a mode or an address) > gateway.bind.
        let bind_mode = match o.bind.as_deref() {
            None => Some(g.bind),
            Some("loopback") => Some(BindMode::Loopback),
            Some("lan") => Some(BindMode::Lan),
            Some("auto") => Some(BindMode::Auto),
            Some("custom") => Some(BindMode::Custom),
            Some("tailnet") => Some(BindMode::Tailnet),
            Some(addr) => {
                s.bind_host = addr.parse().map_err(|_| {
                    SettingsError::Invalid(format!("--bind {addr:?} is neither a bind mode (loopback, lan, auto, custom) nor an IP address"))
                })?;
                None
            }
        };
        if let Some(mode) = bind_mode {
            s.bind_host = match mode {
                BindMode::Loopback => IpAddr::V4(Ipv4Addr::LOCALHOST),
                BindMode::Lan | BindMode::Auto => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                BindMode::Custom => g
                    .custom_bind_host
                    .as_deref()
                    .and_then(|h| h.parse().ok())
                    .ok_or_else(|| SettingsError::Invalid("bind \"custom\" needs gateway.customBindHost".into()))?,
                BindMode::Tailnet => {
                    return Err(SettingsError::Unsupported("gateway.bind \"tailnet\" is not supported by this gateway yet".into()))
                }
            };
        }
        // Auth mode.
        s.auth_mode = match (o.auth.as_deref(), g.auth.mode) {
            (Some("token"), _) | (None, None | Some(ConfigAuthMode::Token)) => AuthMode::Token,
            (Some("none"), _) | (None, Some(ConfigAuthMode::None)) => AuthMode::None,
            (Some(other), _) => return Err(SettingsError::Invalid(format!("--auth {other:?} is not supported (token, none)"))),
            (None, Some(m)) => {
                return Err(SettingsError::Unsupported(format!(
                    "gateway.auth.mode {:?} is not supported by this gateway yet (token, none)",
                    serde_json::to_value(m).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
                )))
            }
        };
        s.rate_limit.max_attempts = g.auth.rate_limit.max_attempts;
        s.rate_limit.window_ms = g.auth.rate_limit.window_ms;
        // Token sources, in precedence order: config, environment, flag.
        s.token_sources.extend(secret_source(snap, "gateway.auth.token", "gateway.auth.token")?);
        s.expected_token_fingerprint = snap.secrets.get("gateway.auth.token").and_then(|i| i.fingerprint.clone());
        if let Some(t) = o.env_token.as_deref().filter(|t| !t.is_empty()) {
            s.token_sources.push(TokenSource {
                kind: TokenSourceKind::Env,
                label: "OPENCLAW_GATEWAY_TOKEN".into(),
                value: Secret::new(t),
                file: None,
            });
        }
        if let Some(t) = &o.token {
            s.token_sources.push(TokenSource { kind: TokenSourceKind::Flag, label: "--token".into(), value: Secret::new(t.clone()), file: None });
        }
        let remote_here = g.remote.url.as_deref().is_none_or(|u| points_here(u, s.port));
        if remote_here {
            s.remote_token = secret_source(snap, "gateway.remote.token", "gateway.remote.token")?;
        }
        s.control_ui.enabled = g.control_ui.enabled;
        s.control_ui.base_path = normalize_base_path(&g.control_ui.base_path).unwrap_or_default();
        s.control_ui.allowed_origins = g.control_ui.allowed_origins.clone();
        s.auto_approve_local = g.nodes.pairing.auto_approve_local;
        let h = &cfg.hooks;
        s.hooks.enabled = h.enabled;
        s.hooks.path = normalize_base_path(&h.path).unwrap_or_else(|| "/hooks".into());
        s.hooks.max_body_bytes = usize::try_from(h.max_body_bytes).unwrap_or(usize::MAX);
        s.hooks.allowed_agent_ids = h.allowed_agent_ids.clone();
        s.hooks.default_session_key = h.default_session_key.clone();
        s.hooks.token_sources.extend(secret_source(snap, "hooks.token", "hooks.token")?);
        if let Some(wa) = &cfg.channels.whatsapp {
            s.whatsapp = wa
                .account_ids()
                .into_iter()
                .map(|id| {
                    let a = wa.account(&id);
                    AccountConfig { id, enabled: a.enabled, auth_dir: a.auth_dir }
                })
                .collect();
        }
        s.app = crate::app::AppConfig::from_config(&cfg, Some(std::sync::Arc::new(snap.clone())));
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_url_detection() {
        assert!(points_here("ws://127.0.0.1:18789", 18789));
        assert!(points_here("ws://localhost", 18789));
        assert!(!points_here("ws://127.0.0.1:18790", 18789));
        assert!(!points_here("wss://gw.example.org", 18789));
        assert_eq!(parse_env_port("[::1]:1234"), Some(1234));
    }
}
