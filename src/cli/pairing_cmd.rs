//! `openclaw pairing list|approve`: DM pairing requests (upstream's flags and texts, reference
//! `agent.md` §1). Works on the state dir's pairing store directly, so it needs no running
//! gateway; the gateway reads the same store under the same lock. The config file is never
//! rewritten: an approved sender goes to the pairing store, not to `allowFrom`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::agent::pairing_store::PairingStore;
use crate::routing::pairing::ApproveError;
use crate::routing::PairingRequest;
use crate::store::layout::resolve_state_dir;

/// The channels that support DM pairing.
pub const PAIRING_CHANNELS: &[&str] = &["whatsapp"];

/// `openclaw pairing` subcommands.
#[derive(Debug, Subcommand)]
pub enum PairingCommand {
    /// List pending pairing requests.
    List {
        /// Channel (whatsapp).
        #[arg(value_name = "CHANNEL")]
        channel_arg: Option<String>,
        #[command(flatten)]
        common: PairingArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pairing code and allow that sender.
    Approve {
        /// Pairing code (or channel when using 2 args).
        #[arg(value_name = "CODE_OR_CHANNEL")]
        code_or_channel: String,
        /// Pairing code (when the channel is the first argument).
        #[arg(value_name = "CODE")]
        code: Option<String>,
        #[command(flatten)]
        common: PairingArgs,
    },
}

/// Options shared by the `pairing` subcommands.
#[derive(Debug, Clone, Args)]
pub struct PairingArgs {
    /// Channel (whatsapp).
    #[arg(long)]
    pub channel: Option<String>,
    /// Account id (for multi-account channels).
    #[arg(long)]
    pub account: Option<String>,
    /// State directory (default: $OPENCLAW_STATE_DIR, else ~/.openclaw).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Runs a `pairing` subcommand.
pub fn run(cmd: PairingCommand) -> ExitCode {
    match execute(cmd) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Upstream's channel parsing: lower case, must support pairing.
fn parse_channel(raw: &str) -> anyhow::Result<String> {
    let value = raw.trim().to_lowercase();
    if value.is_empty() {
        bail!("Missing channel. Use openclaw pairing list --channel <channel>.");
    }
    if !PAIRING_CHANNELS.contains(&value.as_str()) {
        bail!(
            "Channel \"{value}\" does not support pairing. Supported pairing channels: {}.",
            PAIRING_CHANNELS.join(", ")
        );
    }
    Ok(value)
}

fn account(raw: &Option<String>) -> anyhow::Result<Option<String>> {
    match raw.as_deref().map(str::trim) {
        Some("") => bail!("--account must not be blank"),
        other => Ok(other.map(str::to_string)),
    }
}

/// Upstream's `createdAt`/`lastSeenAt` format: ISO 8601 UTC with milliseconds.
fn iso(ms: u64) -> String {
    let s = crate::channels::whatsapp::supervisor::persist::fmt_ms(ms);
    format!("{}T{}.{:03}Z", &s[..10], &s[11..19], ms % 1000)
}

/// A request as upstream's `--json` shows it: `{id, code, createdAt, lastSeenAt, meta}` with
/// `accountId` inside `meta`.
fn request_json(r: &PairingRequest) -> Value {
    let mut meta = Map::new();
    for (k, v) in &r.meta {
        meta.insert(k.clone(), Value::String(v.clone()));
    }
    meta.insert("accountId".into(), Value::String(r.account_id.clone()));
    json!({
        "id": r.id,
        "code": r.code,
        "createdAt": iso(r.created_at_ms),
        "lastSeenAt": iso(r.last_seen_at_ms),
        "meta": meta,
    })
}

fn execute(cmd: PairingCommand) -> anyhow::Result<String> {
    match cmd {
        PairingCommand::List { channel_arg, common, json } => {
            let raw = common.channel.clone().or(channel_arg.clone()).unwrap_or_else(|| PAIRING_CHANNELS[0].into());
            let channel = parse_channel(&raw)?;
            if let (Some(_), Some(pos)) = (&common.channel, &channel_arg) {
                let positional = parse_channel(pos)?;
                if positional != channel {
                    bail!(
                        "Conflicting pairing channels: \"{channel}\" and \"{positional}\". Pass the channel either positionally or with --channel."
                    );
                }
            }
            let account = account(&common.account)?;
            let store = PairingStore::new(&resolve_state_dir(common.state_dir.as_deref()));
            let now = now_ms();
            let state = store.load(&channel).context("cannot read the pairing store")?;
            let requests = state.pending(account.as_deref(), now);
            if json {
                let list: Vec<Value> = requests.iter().map(|r| request_json(r)).collect();
                return Ok(serde_json::to_string_pretty(&json!({"channel": channel, "requests": list}))?);
            }
            if requests.is_empty() {
                return Ok(format!("No pending {channel} pairing requests."));
            }
            // Upstream's column header (MEASURED with WhatsApp: "userId").
            let id_label = "userId";
            let rows: Vec<[String; 4]> = requests
                .iter()
                .map(|r| {
                    let meta = request_json(r)["meta"].to_string();
                    [r.code.clone(), r.id.clone(), meta, iso(r.created_at_ms)]
                })
                .collect();
            Ok(format!("Pairing requests ({})\n{}", requests.len(), table(["Code", id_label, "Meta", "Requested"], &rows)))
        }
        PairingCommand::Approve { code_or_channel, code, common } => {
            if common.channel.is_some() && code.is_some() {
                bail!("Too many arguments. Use: openclaw pairing approve --channel <channel> <code>");
            }
            let (channel_raw, code) = match (&common.channel, code) {
                (Some(c), None) => (c.clone(), code_or_channel),
                (None, Some(code)) => (code_or_channel, code),
                _ => (PAIRING_CHANNELS[0].to_string(), code_or_channel),
            };
            let channel = parse_channel(&channel_raw)?;
            let account = account(&common.account)?;
            let store = PairingStore::new(&resolve_state_dir(common.state_dir.as_deref()));
            let now = now_ms();
            let approved = store
                .update(&channel, |s| s.approve(&code, account.as_deref(), now))
                .context("cannot update the pairing store")?;
            match approved {
                Ok(req) => Ok(format!("Approved {channel} sender {}.", req.id)),
                Err(ApproveError::UnknownCode(_)) => bail!(
                    "No pending pairing request found for code \"{code}\". Run openclaw pairing list --channel {channel} to list pending requests."
                ),
            }
        }
    }
}

/// A plain text table: a header row, a rule, and the rows, columns padded to their widest cell.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut width = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells.iter().zip(width).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec()), width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ")];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_javascripts_to_iso_string() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_764_400_000_123), "2025-11-29T07:06:40.123Z");
    }

    #[test]
    fn unknown_channels_are_refused_with_upstreams_text() {
        assert_eq!(
            parse_channel("Telegram").unwrap_err().to_string(),
            "Channel \"telegram\" does not support pairing. Supported pairing channels: whatsapp."
        );
        assert_eq!(parse_channel(" WhatsApp ").unwrap(), "whatsapp");
    }
}
