//! `openclaw gateway [run]` and `openclaw gateway status`, plus the settings loader shared by the
//! client commands.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::gateway::settings::{
    normalize_base_path, AuthMode, GatewaySettings, Secret, TokenSource, TokenSourceKind,
};
use crate::gateway::token::read_secret_file;
use crate::store::layout::resolve_state_dir;
use crate::store::StateLayout;

/// Exit code for unusable configuration (EX_CONFIG, as upstream).
pub const EXIT_CONFIG: u8 = 78;

/// Flags of `openclaw gateway run` (also accepted by bare `openclaw gateway`).
#[derive(Debug, Clone, Default, Args)]
pub struct GatewayArgs {
    /// Start from a compiled snapshot instead of compiling the config layers in-process.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Port to listen on (overrides OPENCLAW_GATEWAY_PORT and gateway.port; 0 = any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Bind mode: loopback, lan, auto, custom, or an IP address.
    #[arg(long)]
    pub bind: Option<String>,
    /// Gateway token (a token source like OPENCLAW_GATEWAY_TOKEN; all sources must agree).
    #[arg(long)]
    pub token: Option<String>,
    /// Auth mode: token or none (none only on loopback).
    #[arg(long)]
    pub auth: Option<String>,
    /// State directory (default $OPENCLAW_STATE_DIR or ~/.openclaw).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Config file (default $OPENCLAW_CONFIG_PATH, else <state>/openclaw.json).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `openclaw gateway` subcommands.
#[derive(Debug, Subcommand)]
pub enum GatewaySub {
    /// Run the gateway in the foreground.
    Run(GatewayArgs),
    /// Show whether a gateway is running for this state dir and what it reports.
    Status(crate::cli::status_cmd::ClientArgs),
}

/// `openclaw gateway ...`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayCli {
    /// Subcommand (default: run).
    #[command(subcommand)]
    pub sub: Option<GatewaySub>,
    /// Flags for the default `run`.
    #[command(flatten)]
    pub args: GatewayArgs,
}

/// Runs `openclaw gateway ...`.
pub fn run(cli: GatewayCli) -> ExitCode {
    match cli.sub {
        Some(GatewaySub::Status(a)) => crate::cli::status_cmd::gateway_status(a),
        Some(GatewaySub::Run(a)) => run_gateway(a),
        None => run_gateway(cli.args),
    }
}

fn refuse(sentence: &str, hint: &str, code: u8) -> ExitCode {
    eprintln!("Gateway failed to start: {sentence}");
    eprintln!("hint: {hint}");
    ExitCode::from(code)
}

/// `openclaw gateway run`: load settings, run the checks, serve until SIGTERM.
pub fn run_gateway(args: GatewayArgs) -> ExitCode {
    let t0 = std::time::Instant::now();
    let ring = crate::gateway::logbuf::LogBuffer::new();
    crate::gateway::logging::init(crate::gateway::logging::detect_mode(), ring.clone());
    let settings = match load_settings(&args) {
        Ok(s) => s,
        Err(e) => return refuse(&format!("{e:#}"), "fix the config file named above, then retry", EXIT_CONFIG),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return refuse(&format!("cannot start the async runtime: {e}"), "check process limits", 1),
    };
    // Signal handlers before binding: a SIGTERM right after the port opens still drains cleanly.
    let signal = {
        let _guard = rt.enter();
        match crate::gateway::server::shutdown_signal() {
            Ok(s) => s,
            Err(e) => return refuse(&format!("cannot install signal handlers: {e}"), "check process limits", 1),
        }
    };
    let prepared = match crate::gateway::prepare(settings, ring, crate::channels::status::ChannelStatusHandle::new()) {
        Ok(p) => p,
        Err(e) => return refuse(&e.to_string(), &e.hint(), e.exit_code()),
    };
    tracing::debug!(elapsed_us = t0.elapsed().as_micros() as u64, addr = %prepared.local_addr(), "bound");
    match rt.block_on(crate::gateway::serve(prepared, crate::gateway::RunOptions { banner: true }, signal)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway stopped with an error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

// TEMPORARY: replaced by config::compile at merge.
// Reads only the `gateway` and `hooks` sections (upstream key names) of the config file as plain
// JSON, plus flags and environment, and builds the gateway's input boundary.
/// Builds [`GatewaySettings`] from the config layers, `--snapshot`, flags and environment.
pub fn load_settings(args: &GatewayArgs) -> anyhow::Result<GatewaySettings> {
    let state_dir = resolve_state_dir(args.state_dir.as_deref());
    let layout = StateLayout::new(state_dir);
    let mut settings = GatewaySettings::new(layout.clone());

    // Layers, highest precedence first.
    let mut layers: Vec<(PathBuf, Value)> = Vec::new();
    let mut expected_fp = None;
    if let Some(snap) = &args.snapshot {
        let v = read_json(snap)?;
        expected_fp = v.pointer("/fingerprints/gateway.auth.token").and_then(Value::as_str).map(str::to_string);
        let cfg = v.get("config").cloned().unwrap_or(v);
        layers.push((snap.clone(), cfg));
    } else {
        let explicit = args.config.clone().or_else(|| std::env::var_os("OPENCLAW_CONFIG_PATH").filter(|v| !v.is_empty()).map(PathBuf::from));
        let state_file = layout.config_file();
        if let Some(p) = explicit {
            layers.push((p.clone(), read_json(&p)?));
        }
        if !layers.iter().any(|(p, _)| p == &state_file) && state_file.exists() {
            layers.push((state_file.clone(), read_json(&state_file)?));
        }
    }
    settings.config_paths = layers.iter().map(|(p, _)| p.clone()).collect();
    settings.expected_token_fingerprint = expected_fp;

    let get = |ptr: &str| layers.iter().find_map(|(_, v)| v.pointer(ptr).filter(|x| !x.is_null()).cloned());

    if let Some(mode) = get("/gateway/mode")
        && mode.as_str() == Some("remote") {
            bail!("gateway.mode is \"remote\": this machine is configured as a client of another gateway");
        }
    // Port: --port > OPENCLAW_GATEWAY_PORT > gateway.port > 18789.
    settings.port = match (args.port, std::env::var("OPENCLAW_GATEWAY_PORT").ok().filter(|v| !v.is_empty())) {
        (Some(p), _) => p,
        (None, Some(env)) => {
            let port = env.rsplit(':').next().unwrap_or(&env);
            port.parse().with_context(|| format!("OPENCLAW_GATEWAY_PORT={env:?} is not a port"))?
        }
        (None, None) => match get("/gateway/port") {
            Some(v) => v.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0).ok_or_else(|| anyhow!("gateway.port must be 1..65535"))?,
            None => crate::gateway::settings::DEFAULT_PORT,
        },
    };
    // Bind.
    let bind = args.bind.clone().or_else(|| get("/gateway/bind").and_then(|v| v.as_str().map(str::to_string)));
    settings.bind_host = match bind.as_deref() {
        None | Some("loopback") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some("lan") | Some("auto") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some("custom") => get("/gateway/customBindHost")
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| anyhow!("gateway.bind is \"custom\" but gateway.customBindHost is not an IP address"))?,
        Some("tailnet") => bail!("gateway.bind \"tailnet\" is not supported yet"),
        Some(other) => other.parse().map_err(|_| anyhow!("unknown bind mode {other:?} (loopback, lan, auto, custom)"))?,
    };
    // Auth mode.
    let auth = args.auth.clone().or_else(|| get("/gateway/auth/mode").and_then(|v| v.as_str().map(str::to_string)));
    settings.auth_mode = match auth.as_deref() {
        None | Some("token") => AuthMode::Token,
        Some("none") => AuthMode::None,
        Some(other) => bail!("gateway.auth.mode {other:?} is not supported yet (token, none)"),
    };
    if let Some(n) = get("/gateway/auth/rateLimit/maxAttempts").and_then(|v| v.as_u64()) {
        settings.rate_limit.max_attempts = n as u32;
    }
    if let Some(n) = get("/gateway/auth/rateLimit/windowMs").and_then(|v| v.as_u64()) {
        settings.rate_limit.window_ms = n;
    }
    // Token sources: each layer's token and tokenFile, then env, then flag.
    for (path, v) in &layers {
        settings.token_sources.extend(layer_token_sources(path, v, "/gateway/auth", "gateway.auth")?);
    }
    if let Some(t) = std::env::var("OPENCLAW_GATEWAY_TOKEN").ok().filter(|t| !t.is_empty()) {
        settings.token_sources.push(TokenSource { kind: TokenSourceKind::Env, label: "OPENCLAW_GATEWAY_TOKEN".into(), value: Secret::new(t), file: None });
    }
    if let Some(t) = &args.token {
        settings.token_sources.push(TokenSource { kind: TokenSourceKind::Flag, label: "--token".into(), value: Secret::new(t.clone()), file: None });
    }
    // gateway.remote.token, when the remote URL is this gateway (or unset).
    if let Some((path, v)) = layers.iter().find(|(_, v)| v.pointer("/gateway/remote/token").is_some()) {
        let url = v.pointer("/gateway/remote/url").and_then(Value::as_str);
        let this = url.is_none_or(|u| points_here(u, settings.port));
        if this
            && let Some(t) = v.pointer("/gateway/remote/token").and_then(Value::as_str) {
                settings.remote_token = Some(TokenSource {
                    kind: TokenSourceKind::ConfigToken,
                    label: format!("gateway.remote.token in {}", path.display()),
                    value: Secret::new(t),
                    file: Some(crate::gateway::token::secret_file_info(path).with_context(|| format!("cannot stat {}", path.display()))?),
                });
            }
    }
    // Control UI.
    if let Some(b) = get("/gateway/controlUi/enabled").and_then(|v| v.as_bool()) {
        settings.control_ui.enabled = b;
    }
    if let Some(p) = get("/gateway/controlUi/basePath").and_then(|v| v.as_str().map(str::to_string)) {
        settings.control_ui.base_path = normalize_base_path(&p).unwrap_or_default();
    }
    if let Some(list) = get("/gateway/controlUi/allowedOrigins").and_then(|v| v.as_array().cloned()) {
        settings.control_ui.allowed_origins = list.iter().filter_map(|o| o.as_str().map(str::to_string)).collect();
    }
    if let Some(b) = get("/gateway/nodes/pairing/autoApproveLocal").and_then(|v| v.as_bool()) {
        settings.auto_approve_local = b;
    }
    // Hooks.
    if let Some(b) = get("/hooks/enabled").and_then(|v| v.as_bool()) {
        settings.hooks.enabled = b;
    }
    if let Some(p) = get("/hooks/path").and_then(|v| v.as_str().map(str::to_string)) {
        settings.hooks.path = normalize_base_path(&p).ok_or_else(|| anyhow!("hooks.path may not be '/'"))?;
    }
    if let Some(n) = get("/hooks/maxBodyBytes").and_then(|v| v.as_u64()) {
        settings.hooks.max_body_bytes = n as usize;
    }
    if let Some(list) = get("/hooks/allowedAgentIds").and_then(|v| v.as_array().cloned()) {
        settings.hooks.allowed_agent_ids = Some(list.iter().filter_map(|o| o.as_str().map(str::to_string)).collect());
    }
    settings.hooks.default_session_key = get("/hooks/defaultSessionKey").and_then(|v| v.as_str().map(str::to_string));
    for (path, v) in &layers {
        settings.hooks.token_sources.extend(layer_token_sources(path, v, "/hooks", "hooks")?);
    }
    Ok(settings)
}

fn points_here(url: &str, port: u16) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hostport = rest.split('/').next().unwrap_or("");
    let (host, p) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok()),
        None => (hostport, None),
    };
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
    local && p.is_none_or(|p| p == port)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// `token` and `tokenFile` under `ptr` in one layer, as token sources.
fn layer_token_sources(path: &Path, v: &Value, ptr: &str, key: &str) -> anyhow::Result<Vec<TokenSource>> {
    let mut out = Vec::new();
    match v.pointer(&format!("{ptr}/token")) {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => out.push(TokenSource {
            kind: TokenSourceKind::ConfigToken,
            label: format!("{key}.token in {}", path.display()),
            value: Secret::new(t.clone()),
            file: Some(crate::gateway::token::secret_file_info(path).with_context(|| format!("cannot stat {}", path.display()))?),
        }),
        Some(Value::Object(r)) if r.get("source").and_then(Value::as_str) == Some("env") => {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            let t = std::env::var(id).with_context(|| format!("{key}.token in {} refers to env {id}, which is not set", path.display()))?;
            out.push(TokenSource { kind: TokenSourceKind::Env, label: format!("{key}.token (env {id}) in {}", path.display()), value: Secret::new(t), file: None });
        }
        Some(_) => bail!("{key}.token in {} must be a string or an env SecretRef", path.display()),
    }
    if let Some(f) = v.pointer(&format!("{ptr}/tokenFile")).and_then(Value::as_str) {
        let fp = PathBuf::from(f);
        let (secret, file) = read_secret_file(&fp).with_context(|| format!("cannot read {key}.tokenFile {f} (from {})", path.display()))?;
        out.push(TokenSource {
            kind: TokenSourceKind::ConfigTokenFile,
            label: format!("{key}.tokenFile {f} (from {})", path.display()),
            value: secret,
            file: Some(file),
        });
    }
    Ok(out)
}
