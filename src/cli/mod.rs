//! The `openclaw` command line: argument parsing and dispatch. One file per command group.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod channels_cmd;
pub mod config_cmd;

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
    /// Link and unlink channel accounts (WhatsApp QR login).
    #[command(subcommand)]
    Channels(channels_cmd::ChannelsCommand),
}

/// Parses the process arguments and runs the command; returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Channels(cmd) => channels_cmd::run(cmd),
    }
}
