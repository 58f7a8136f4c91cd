//! `openclaw message send --channel whatsapp -t <E.164|JID> -m TEXT [--account ID] [--json]`
//! (upstream's flags), through the running gateway's control method `send` (the operations
//! layer, [`crate::app::send`]). Exit 0 only once the channel acknowledged the message; 1 when
//! it was refused or failed; 75 (EX_TEMPFAIL) when it is stored but not acknowledged within
//! `--wait` (it stays queued until its deadline and goes out when the account connects).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::status_cmd::{block_on, open, target, ClientArgs};
use crate::gateway::client::ClientError;

/// `openclaw message` subcommands.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Send a text message through a channel account.
    Send(SendArgs),
}

/// `message send` flags.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The channel (default: the only configured one).
    #[arg(long)]
    pub channel: Option<String>,
    /// The recipient: an E.164 number (+15551234567) or a chat id.
    #[arg(short = 't', long)]
    pub target: String,
    /// The text.
    #[arg(short = 'm', long)]
    pub message: String,
    /// The sending account (default: the channel's default account).
    #[arg(long)]
    pub account: Option<String>,
    /// Seconds to wait for the channel's acknowledgement.
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Exit code when the message is stored but not acknowledged yet.
pub const EXIT_QUEUED: u8 = 75;

fn iso(ms: u64) -> String {
    crate::channels::whatsapp::supervisor::persist::fmt_ms(ms)
}

/// Runs a `message` subcommand.
pub fn run(cmd: MessageCommand) -> ExitCode {
    let MessageCommand::Send(a) = cmd;
    let json_out = a.client.json;
    let r = block_on(send(&a)).and_then(|r| r);
    match r {
        Ok((code, v, text)) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else if code == 0 {
                println!("{text}");
            } else {
                eprintln!("{text}");
            }
            ExitCode::from(code)
        }
        Err(e) => {
            if json_out {
                println!("{}", json!({"ok": false, "error": format!("{e:#}")}));
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn send(a: &SendArgs) -> anyhow::Result<(u8, Value, String)> {
    let t = target(&a.client)?;
    let (mut c, _) = open(&t, a.client.timeout).await?;
    let mut params = json!({"to": a.target, "message": a.message, "idempotencyKey": uuid::Uuid::new_v4().to_string()});
    if let Some(ch) = &a.channel {
        params["channel"] = json!(ch);
    }
    if let Some(acc) = &a.account {
        params["accountId"] = json!(acc);
    }
    let accepted = match c.request("send", params).await {
        Ok(v) => v,
        Err(ClientError::Rejected { message, error, .. }) => {
            c.close().await;
            let code = error.pointer("/details/code").and_then(Value::as_str).unwrap_or("").to_string();
            let v = json!({"ok": false, "error": message, "code": code});
            return Ok((1, v, format!("error: {message}")));
        }
        Err(e) => return Err(anyhow!("{e}")),
    };
    let id = accepted["messageId"].as_str().unwrap_or_default().to_string();
    let start = Instant::now();
    let mut last;
    loop {
        let r = c.request("send.get", json!({"messageId": id})).await.map_err(|e| anyhow!("{e}"))?;
        let state = r["state"].as_str().unwrap_or("").to_string();
        last = r;
        match state.as_str() {
            "sent" => {
                c.close().await;
                let v = json!({"ok": true, "messageId": id, "state": "sent", "channel": accepted["channel"], "accountId": accepted["accountId"], "chat": accepted["chat"]});
                return Ok((0, v, format!("Sent via {}. Message ID: {id}", accepted["channel"].as_str().unwrap_or("channel"))));
            }
            "failed" | "expired" => {
                c.close().await;
                let err = last.pointer("/message/lastError").and_then(Value::as_str).unwrap_or("no reason recorded").to_string();
                let v = json!({"ok": false, "messageId": id, "state": state, "error": err});
                return Ok((1, v, format!("error: message {id} {state}: {err}")));
            }
            _ => {}
        }
        if start.elapsed() >= Duration::from_secs(a.wait) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.close().await;
    let deadline = accepted["deadlineMs"].as_u64().unwrap_or(0);
    let connection = accepted["connection"].as_str().map(str::to_string).unwrap_or_else(|| "connected, but the channel has not acknowledged it".into());
    let text = format!(
        "error: message {id} was not acknowledged within {}s: the account is not connected ({connection}).\n\
         It stays queued until {} and is sent when the account connects; check it with \
         GET <hooks.path>/send/{id}.",
        a.wait,
        iso(deadline)
    );
    let v = json!({"ok": false, "messageId": id, "state": last["state"], "queued": true, "deadlineMs": deadline, "connection": connection});
    Ok((EXIT_QUEUED, v, text))
}
