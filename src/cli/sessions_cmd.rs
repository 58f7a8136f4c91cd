//! `openclaw sessions list [--json]`: the sessions of this state dir (`<state>/agent/sessions.db`,
//! read directly; SQLite's WAL lets the CLI read while the gateway writes), most recent first,
//! with their last route and history size.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;

use crate::agent::sessions::{self, MIGRATIONS};
use crate::cli::gateway_cmd::{load_settings, GatewayArgs};
use crate::cli::status_cmd::ClientArgs;
use crate::store::db::Db;

/// `openclaw sessions` subcommands.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions.
    List(#[command(flatten)] ClientArgs),
}

/// Runs a `sessions` subcommand.
pub fn run(cmd: SessionsCommand) -> ExitCode {
    let SessionsCommand::List(a) = cmd;
    match list(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn list(a: &ClientArgs) -> anyhow::Result<()> {
    let settings = load_settings(&GatewayArgs { state_dir: a.state_dir.clone(), config: a.config.clone(), ..Default::default() })?;
    let path = settings.state.root().join("agent").join("sessions.db");
    let rows = if path.exists() {
        let db = Db::open(&path, MIGRATIONS).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        sessions::list(&db).map_err(|e| anyhow!("{e}"))?
    } else {
        Vec::new()
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json!({"path": path, "count": rows.len(), "sessions": rows}))?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No sessions.");
        return Ok(());
    }
    println!("{:<40} {:<40} {:>8}  Updated", "Key", "Last route", "Messages");
    for s in rows {
        let route = s.last_route.map(|r| format!("{}/{} {}", r.channel, r.account_id, r.peer)).unwrap_or_else(|| "-".into());
        println!("{:<40} {:<40} {:>8}  {}", s.key, route, s.messages, crate::channels::whatsapp::supervisor::persist::fmt_ms(s.updated_at_ms));
    }
    Ok(())
}
