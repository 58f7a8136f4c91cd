//! `openclaw gateway [run]` and `openclaw gateway status`, plus the settings loader shared by the
//! client commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};

use crate::config::env::ProcessEnv;
use crate::config::sources::SourceRequest;
use crate::config::Snapshot;
use crate::gateway::from_snapshot::Overrides;
use crate::gateway::settings::GatewaySettings;

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
    /// The system config file (default $OPENCLAW_CONFIG_PATH, else /etc/openclaw/openclaw.json
    /// if it exists); merged with <state dir>/openclaw.json.
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
    /// Upstream's service commands: openclaw does not manage a service; this says what to run.
    #[command(hide = true)]
    Start,
    /// See `start`.
    #[command(hide = true)]
    Stop,
    /// See `start`.
    #[command(hide = true)]
    Restart,
}

impl GatewayCli {
    /// True when this invocation runs the gateway server (not a client subcommand).
    pub fn runs_server(&self) -> bool {
        matches!(self.sub, None | Some(GatewaySub::Run(_)))
    }
}

/// What to run instead of upstream's `gateway start|stop|restart` (it installs its own service;
/// here the service is systemd's, from the NixOS module).
fn service_hint(verb: &str) -> ExitCode {
    eprintln!("openclaw does not manage a background service itself; the gateway runs under systemd (NixOS module) or in the foreground.");
    eprintln!("  as a service:    systemctl {verb} openclaw");
    if verb != "stop" {
        eprintln!("  in the foreground: openclaw gateway run");
    }
    eprintln!("  is it running?   openclaw gateway status");
    ExitCode::from(2)
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
        Some(GatewaySub::Start) => service_hint("start"),
        Some(GatewaySub::Stop) => service_hint("stop"),
        Some(GatewaySub::Restart) => service_hint("restart"),
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

/// Builds [`GatewaySettings`] from `--snapshot` (or the config layers, compiled in-process),
/// flags and environment. Config diagnostics are printed to stderr.
pub fn load_settings(args: &GatewayArgs) -> anyhow::Result<GatewaySettings> {
    let snap = match &args.snapshot {
        Some(p) => Snapshot::load(p)?,
        None => {
            let request = SourceRequest { config: args.config.clone(), state_dir: args.state_dir.clone(), no_state: false };
            let c = crate::config::compile(&crate::config::Options { request }, &ProcessEnv)?;
            for d in &c.diagnostics {
                eprintln!("{d}");
            }
            if !c.is_valid() {
                bail!("the config is invalid; see the errors above (`openclaw config check` shows them again)");
            }
            c.snapshot().ok_or_else(|| anyhow!("the config compiled but produced no snapshot"))?
        }
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let overrides = Overrides {
        port: args.port,
        env_port: env("OPENCLAW_GATEWAY_PORT"),
        bind: args.bind.clone(),
        auth: args.auth.clone(),
        token: args.token.clone(),
        env_token: env("OPENCLAW_GATEWAY_TOKEN"),
        state_dir: args.state_dir.clone(),
    };
    Ok(GatewaySettings::from_snapshot(&snap, &overrides)?)
}
