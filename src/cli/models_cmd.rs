//! `openclaw models status [--json]`: for each configured provider, whether it is reachable,
//! whether its key is accepted and whether its models are listed, plus the default model chain.
//! Compiles the config like every command (keys are re-read from their sources); needs no
//! running gateway. Exit code 0 when every provider is fine, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::agent::providers::status::{probe_all, ProviderStatus};
use crate::agent::providers::{HttpClient, ProviderSet, Timeouts};
use crate::config::env::ProcessEnv;
use crate::config::sources::SourceRequest;

/// `openclaw models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Check each provider: reachable, key accepted, models listed.
    Status(StatusArgs),
}

/// Options of `models status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// System config file (default: $OPENCLAW_CONFIG_PATH, else /etc/openclaw/openclaw.json).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory (default: $OPENCLAW_STATE_DIR, else ~/.openclaw).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds allowed per provider.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// Runs a `models` subcommand.
pub fn run(cmd: ModelsCommand) -> ExitCode {
    let ModelsCommand::Status(args) = cmd;
    match status(&args) {
        Ok(ok) => {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn status(args: &StatusArgs) -> anyhow::Result<bool> {
    let request = SourceRequest { config: args.config.clone(), state_dir: args.state_dir.clone(), no_state: false };
    let c = crate::config::compile(&crate::config::Options { request }, &ProcessEnv)?;
    let Some(snapshot) = c.snapshot() else {
        for d in c.errors() {
            eprintln!("{d}");
        }
        bail!("the config is invalid; fix it first (`openclaw config check` lists the errors)");
    };
    let set = ProviderSet::from_snapshot(&snapshot)?;
    let t = Duration::from_secs(args.timeout.max(1));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let statuses = rt.block_on(async {
        let client = HttpClient::new(Timeouts { connect: t, idle: t })?;
        Ok::<_, anyhow::Error>(probe_all(&client, &set).await)
    })?;
    let ok = !statuses.is_empty() && statuses.iter().all(ProviderStatus::ok);
    if args.json {
        let primary = set.chain.first().cloned();
        let fallbacks: Vec<&String> = set.chain.iter().skip(1).collect();
        let providers: Vec<serde_json::Value> = statuses
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["ok"] = json!(s.ok());
                v
            })
            .collect();
        let out = json!({"ok": ok, "defaultModel": primary, "fallbacks": fallbacks, "providers": providers});
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| anyhow!(e))?);
    } else {
        print!("{}", render(&set, &statuses));
    }
    Ok(ok)
}

/// The human-readable report.
pub fn render(set: &ProviderSet, statuses: &[ProviderStatus]) -> String {
    let mut out = String::new();
    match set.chain.split_first() {
        Some((primary, [])) => out.push_str(&format!("Default model: {primary}\n")),
        Some((primary, rest)) => out.push_str(&format!("Default model: {primary} (fallbacks: {})\n", rest.join(", "))),
        None => out.push_str("Default model: not set (agents.defaults.model)\n"),
    }
    if statuses.is_empty() {
        out.push_str("No providers configured (models.providers).\n");
        return out;
    }
    for s in statuses {
        let key = s.key_fingerprint.as_deref().map(|f| format!(", key {f}")).unwrap_or_else(|| ", no key".into());
        out.push_str(&format!("\n{} ({}, {}{key}): {}\n", s.id, s.api, s.base_url, if s.ok() { "ok" } else { "PROBLEM" }));
        let reach = match (s.reachable, s.http_status, s.latency_ms) {
            (true, Some(code), Some(ms)) => format!("yes (HTTP {code}, {ms} ms)"),
            (true, Some(code), None) => format!("yes (HTTP {code})"),
            (true, None, _) => "yes".into(),
            (false, ..) => format!("no: {}", s.error.as_deref().unwrap_or("no answer")),
        };
        out.push_str(&format!("  reachable:    {reach}\n"));
        if s.reachable {
            let key = match s.key_accepted {
                Some(true) => "accepted".to_string(),
                Some(false) => format!("REJECTED: {}", s.error.as_deref().unwrap_or("")),
                None => format!("unknown: {}", s.error.as_deref().unwrap_or("")),
            };
            out.push_str(&format!("  key:          {key}\n"));
        }
        for m in &s.models {
            let state = match m.listed {
                Some(true) => "listed",
                Some(false) => "NOT listed by the provider",
                None => "not checked",
            };
            out.push_str(&format!("  model {}: {state}\n", m.id));
        }
    }
    out
}
