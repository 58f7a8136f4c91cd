//! The `openclaw` command line: argument parsing and dispatch. One file per command group.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod channels_cmd;
pub mod channels_groups;
pub mod agent_cmd;
pub mod config_cmd;
pub mod devices_cmd;
pub mod doctor_cmd;
pub mod gateway_cmd;
pub mod message_cmd;
pub mod models_cmd;
pub mod pairing_cmd;
pub mod human;
pub mod logs_cmd;
pub mod sessions_cmd;
pub mod status_cmd;
pub mod whatsapp_cmd;

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
    /// Check this installation for the known failure modes; each finding has evidence and
    /// the command that fixes it (exit 1 when something is broken).
    Doctor(doctor_cmd::DoctorArgs),
    /// The running gateway's recent log lines (`--follow` to keep reading; NixOS: the full
    /// history is in `journalctl -u openclaw`).
    Logs(logs_cmd::LogsArgs),
    /// Runbook names for WhatsApp: `pair` (= channels login), `status` (= channels status),
    /// `send` (= message send).
    #[command(subcommand)]
    Whatsapp(whatsapp_cmd::WhatsappCommand),
    /// Send messages through the running gateway (`message send`).
    #[command(subcommand)]
    Message(message_cmd::MessageCommand),
    /// Run one agent turn through the running gateway (optionally delivering the reply).
    Agent(agent_cmd::AgentArgs),
    /// Conversation sessions (`sessions list`).
    #[command(subcommand)]
    Sessions(sessions_cmd::SessionsCommand),
}

/// Client commands die quietly on a closed pipe (`openclaw status | head -3`) like other Unix
/// tools, instead of panicking in `println!`: the default SIGPIPE action is restored. The gateway
/// keeps Rust's ignored SIGPIPE, so a vanished peer is an I/O error there, never a kill.
fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Picks rustls' crypto provider once for the process (several may be compiled in).
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Parses the process arguments and runs the command; returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(&cli.command, Command::Gateway(g) if g.runs_server()) {
        default_sigpipe();
    }
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
        Command::Logs(a) => logs_cmd::run(a),
        Command::Doctor(a) => {
            install_tls_provider();
            doctor_cmd::run(a)
        }
        Command::Whatsapp(cmd) => {
            install_tls_provider();
            whatsapp_cmd::run(cmd)
        }
        Command::Agent(a) => agent_cmd::run(a),
        Command::Sessions(cmd) => sessions_cmd::run(cmd),
    }
}
