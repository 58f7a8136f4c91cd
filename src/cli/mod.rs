//! The `openclaw` command line: argument parsing and dispatch. One file per command group.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod channels_cmd;
pub mod agent_cmd;
pub mod config_cmd;
pub mod devices_cmd;
pub mod gateway_cmd;
pub mod message_cmd;
pub mod models_cmd;
pub mod pairing_cmd;
pub mod sessions_cmd;
pub mod status_cmd;

/// openclaw: a NixOS-first personal AI assistant gateway (OpenClaw compatible).
#[derive(Debug, Parser)]
#[command(name = "openclaw", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands. Each variant's handler lives in its own file in `src/cli/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, compile, explain and describe the configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Run the gateway (default) or show its status.
    Gateway(gateway_cmd::GatewayCli),
    /// List, approve, reject and revoke paired devices.
    #[command(subcommand)]
    Devices(devices_cmd::DevicesCommand),
    /// Show the running gateway's status (tokens as fingerprints).
    Status {
        /// Include devices, config files and recent log lines.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        args: status_cmd::ClientArgs,
    },
    /// Ask the running gateway for its health.
    Health(status_cmd::ClientArgs),
    /// Print the Control UI URL (with the token in the #token= fragment).
    Dashboard(status_cmd::ClientArgs),
    /// Link, unlink and inspect channel accounts (WhatsApp QR login, connection status).
    #[command(subcommand)]
    Channels(channels_cmd::ChannelsCommand),
    /// Secure DM pairing (approve inbound requests).
    #[command(subcommand)]
    Pairing(pairing_cmd::PairingCommand),
    /// LLM providers: `models status` checks each one (reachable, key accepted, models listed).
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    /// Send messages through the running gateway (`message send`).
    #[command(subcommand)]
    Message(message_cmd::MessageCommand),
    /// Run one agent turn through the running gateway (optionally delivering the reply).
    Agent(agent_cmd::AgentArgs),
    /// Conversation sessions (`sessions list`).
    #[command(subcommand)]
    Sessions(sessions_cmd::SessionsCommand),
}

/// Picks rustls' crypto provider once for the process (several may be compiled in).
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Parses the process arguments and runs the command; returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Gateway(cmd) => {
            install_tls_provider();
            gateway_cmd::run(cmd)
        }
        Command::Devices(cmd) => devices_cmd::run(cmd),
        Command::Status { all, args } => status_cmd::status(args, all),
        Command::Health(args) => status_cmd::health(args),
        Command::Dashboard(args) => status_cmd::dashboard(args),
        Command::Channels(cmd) => {
            install_tls_provider();
            channels_cmd::run(cmd)
        }
        Command::Pairing(cmd) => pairing_cmd::run(cmd),
        Command::Models(cmd) => models_cmd::run(cmd),
        Command::Message(cmd) => message_cmd::run(cmd),
        Command::Agent(a) => agent_cmd::run(a),
        Command::Sessions(cmd) => sessions_cmd::run(cmd),
    }
}
