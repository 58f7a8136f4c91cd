//! `openclaw logs [--follow] [--json] [--level L] [--run ID] [--limit N]`: the running gateway's
//! recent log lines over the control protocol (`logs.tail` with a cursor), filtered here.
//!
//! The gateway's ring holds the last 2000 lines as `"<unix ms> LEVEL target: message k=v …"`;
//! the full history is in the journal on NixOS (`journalctl -u openclaw -f`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::channels::whatsapp::supervisor::persist::fmt_ms;
use crate::cli::status_cmd::{block_on, open, target, ClientArgs};

/// `logs` flags.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new lines as they come (Ctrl-C to stop).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines at this level or more severe: error, warn, info, debug, trace.
    #[arg(long, value_name = "L", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub level: Option<String>,
    /// Only lines about this run (`runId=<ID>`, as `/hooks/agent` answers).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// How many recent lines to start with.
    #[arg(long, default_value_t = 200)]
    pub limit: u64,
    /// Poll interval for --follow, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval: u64,
    /// Gateway URL, token, state dir, config, timeout and `--json` (one JSON object per line).
    #[command(flatten)]
    pub client: ClientArgs,
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Unix ms, when the line has one.
    pub ts: Option<u64>,
    /// `YYYY-MM-DD HH:MM:SS UTC`, when the line has a time.
    pub time: Option<String>,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`, when present.
    pub level: Option<String>,
    /// The module that logged it.
    pub target: Option<String>,
    /// The message and its fields.
    pub message: String,
}

/// Severity rank (error 0 … trace 4); unknown levels rank as info.
fn rank(level: &str) -> u8 {
    match level.to_ascii_lowercase().as_str() {
        "error" => 0,
        "warn" => 1,
        "info" => 2,
        "debug" => 3,
        "trace" => 4,
        _ => 2,
    }
}

/// Parses `"<ms> LEVEL target: message"`; other lines become a bare message.
pub fn parse_line(raw: &str) -> LogLine {
    let bare = || LogLine { ts: None, time: None, level: None, target: None, message: raw.to_string() };
    let mut parts = raw.splitn(3, ' ');
    let (Some(ts), Some(level), Some(rest)) = (parts.next(), parts.next(), parts.next()) else { return bare() };
    let Ok(ts) = ts.parse::<u64>() else { return bare() };
    if !["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level) {
        return bare();
    }
    let (target, message) = match rest.split_once(": ") {
        Some((t, m)) if !t.contains(' ') => (Some(t.to_string()), m.to_string()),
        _ => (None, rest.to_string()),
    };
    LogLine { ts: Some(ts), time: Some(fmt_ms(ts)), level: Some(level.to_string()), target, message }
}

/// Whether `line` passes the `--level` and `--run` filters.
pub fn keep(line: &LogLine, level: Option<&str>, run: Option<&str>) -> bool {
    let level_ok = match (level, &line.level) {
        (Some(min), Some(l)) => rank(l) <= rank(min),
        _ => true,
    };
    let run_ok = run.is_none_or(|id| {
        line.message.split_whitespace().any(|w| w == format!("runId={id}") || w == format!("run_id={id}"))
    });
    level_ok && run_ok
}

fn print(line: &LogLine, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string(line).unwrap_or_default());
    } else {
        match (&line.time, &line.level) {
            (Some(t), Some(l)) => println!(
                "{t} {l:<5} {}{}",
                line.target.as_deref().map(|t| format!("{t}: ")).unwrap_or_default(),
                line.message
            ),
            _ => println!("{}", line.message),
        }
    }
}

/// Runs `openclaw logs`.
pub fn run(a: LogsArgs) -> ExitCode {
    let r = block_on(async {
        let t = target(&a.client)?;
        let (mut c, _) = open(&t, a.client.timeout).await?;
        let mut cursor: Option<u64> = None;
        let mut first = true;
        loop {
            let limit = if first { a.limit } else { 2000 };
            let mut params = json!({ "limit": limit });
            if let Some(cur) = cursor {
                params["cursor"] = json!(cur);
            }
            let v = c
                .request("logs.tail", params)
                .await
                .map_err(|e| anyhow!("logs.tail: {e} (the gateway at {} went away or refused)", t.url))?;
            for raw in v["lines"].as_array().into_iter().flatten().filter_map(|l| l.as_str()) {
                let line = parse_line(raw);
                if keep(&line, a.level.as_deref(), a.run.as_deref()) {
                    print(&line, a.client.json);
                }
            }
            cursor = v["cursor"].as_u64();
            first = false;
            if !a.follow {
                break;
            }
            tokio::time::sleep(Duration::from_millis(a.interval.max(100))).await;
        }
        c.close().await;
        Ok::<(), anyhow::Error>(())
    })
    .and_then(|r| r);
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue13_item3_parses_ring_lines() {
        let l = parse_line("1796000000000 WARN openclaw::agent::runs: run failed runId=abc kind=Agent error=no provider");
        assert_eq!(l.ts, Some(1_796_000_000_000));
        assert_eq!(l.level.as_deref(), Some("WARN"));
        assert_eq!(l.target.as_deref(), Some("openclaw::agent::runs"));
        assert_eq!(l.message, "run failed runId=abc kind=Agent error=no provider");
        assert_eq!(l.time.as_deref(), Some(fmt_ms(1_796_000_000_000).as_str()));
        let b = parse_line("not a ring line");
        assert_eq!((b.ts, b.message.as_str()), (None, "not a ring line"));
    }

    #[test]
    fn issue13_item3_level_and_run_filters() {
        let warn = parse_line("1 WARN x: run failed runId=abc");
        let info = parse_line("2 INFO x: run done runId=abcd");
        assert!(keep(&warn, Some("warn"), None));
        assert!(!keep(&info, Some("warn"), None));
        assert!(keep(&info, Some("debug"), None));
        assert!(keep(&warn, None, Some("abc")));
        assert!(!keep(&info, None, Some("abc")), "abcd is another run");
        assert!(!keep(&warn, Some("error"), Some("abc")));
    }
}
