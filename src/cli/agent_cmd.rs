//! `openclaw agent -m TEXT [-t TARGET] [--channel CH] [--deliver] [--session-id ID] [--json]`
//! (upstream's flags): one agent turn through the running gateway's control method `agent` (the
//! same run path as `/hooks/agent`), waiting up to 600 s for it to finish. With `--deliver` the
//! reply also goes to the target (resolved before the run is accepted: `--to`, else the
//! channel's `defaultTo`, else the session's last route).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use serde_json::{json, Value};

use crate::cli::status_cmd::{block_on, open, target, ClientArgs};
use crate::gateway::client::ClientError;

/// How long `openclaw agent` waits for the run (upstream's default `--timeout`).
pub const TURN_WAIT: Duration = Duration::from_secs(600);
/// How long `openclaw agent --deliver` waits, once the reply is in the outbox (`sending`), for the
/// channel to acknowledge it before answering "queued for delivery".
pub const SEND_WAIT: Duration = Duration::from_secs(15);

/// `agent` flags.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The message.
    #[arg(short = 'm', long)]
    pub message: String,
    /// Where to deliver the reply (E.164 or chat id); implies the only configured channel
    /// unless `--channel` is given.
    #[arg(short = 't', long)]
    pub to: Option<String>,
    /// The delivery channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Deliver the reply to the target (else it is only printed).
    #[arg(long)]
    pub deliver: bool,
    /// The session to continue (its history and last route), as a session key.
    #[arg(long)]
    pub session_id: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `openclaw agent`.
pub fn run(a: AgentArgs) -> ExitCode {
    let json_out = a.client.json;
    match block_on(turn(&a)).and_then(|r| r) {
        Ok((ok, v)) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else if ok {
                println!("{}", v.pointer("/result/payloads/0/text").and_then(Value::as_str).unwrap_or(""));
            } else {
                eprintln!("error: {}", v["summary"].as_str().unwrap_or("the run failed"));
            }
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn turn(a: &AgentArgs) -> anyhow::Result<(bool, Value)> {
    let t = target(&a.client)?;
    let (mut c, _) = open(&t, a.client.timeout).await?;
    let mut p = json!({"message": a.message, "deliver": a.deliver, "idempotencyKey": uuid::Uuid::new_v4().to_string()});
    if let Some(to) = &a.to {
        p["to"] = json!(to);
    }
    if let Some(ch) = &a.channel {
        p["channel"] = json!(ch);
    }
    if let Some(s) = &a.session_id {
        p["sessionKey"] = json!(s);
    }
    let started = Instant::now();
    let run_id = match c.request("agent", p).await {
        Ok(v) => v["runId"].as_str().unwrap_or_default().to_string(),
        Err(ClientError::Rejected { message, error, .. }) => {
            c.close().await;
            let hint = error.pointer("/details/hint").and_then(Value::as_str).map(|h| format!(" (hint: {h})")).unwrap_or_default();
            return Ok((false, json!({"runId": null, "status": "error", "summary": format!("{message}{hint}")})));
        }
        Err(e) => return Err(anyhow!("{e}")),
    };
    let mut sending_since: Option<Instant> = None;
    loop {
        let r = c.request("agent.run.get", json!({"runId": run_id})).await.map_err(|e| anyhow!("{e}"))?;
        let state = r["state"].as_str().unwrap_or("").to_string();
        if matches!(state.as_str(), "done" | "delivered" | "failed") {
            c.close().await;
            let ok = state != "failed";
            let summary = if ok { if state == "delivered" { "completed; reply delivered" } else { "completed" }.to_string() } else { r["error"].as_str().unwrap_or("failed").to_string() };
            let v = json!({
                "runId": run_id,
                "status": if ok { "ok" } else { "error" },
                "summary": summary,
                "result": {
                    "payloads": r["reply"].as_str().map(|t| json!([{"text": t}])).unwrap_or(json!([])),
                    "meta": {
                        "durationMs": started.elapsed().as_millis() as u64,
                        "agentMeta": {"sessionId": r["sessionKey"], "provider": r["provider"], "model": r["model"]},
                        "delivery": r["delivery"],
                    }
                }
            });
            return Ok((ok, v));
        }
        let since = if state == "sending" { *sending_since.get_or_insert_with(Instant::now) } else { Instant::now() };
        if state == "sending" && since.elapsed() >= SEND_WAIT {
            // The turn finished and the reply waits in the outbox (the account may be
            // disconnected): not a failure, and the run says when it expires.
            c.close().await;
            let deadline = r["deliveryDeadlineMs"].as_u64().map(|d| format!(" until {d} (unix ms)")).unwrap_or_default();
            let v = json!({
                "runId": run_id,
                "status": "ok",
                "summary": format!("completed; reply queued for delivery{deadline}, not yet acknowledged by the channel; see GET <hooks.path>/runs/{run_id}"),
                "result": {
                    "payloads": r["reply"].as_str().map(|t| json!([{"text": t}])).unwrap_or(json!([])),
                    "meta": {"agentMeta": {"sessionId": r["sessionKey"], "provider": r["provider"], "model": r["model"]}, "delivery": r["delivery"]}
                }
            });
            return Ok((true, v));
        }
        if started.elapsed() >= TURN_WAIT {
            c.close().await;
            return Ok((false, json!({"runId": run_id, "status": "timeout", "summary": format!("the run is still {state} after {}s; see GET <hooks.path>/runs/{run_id}", TURN_WAIT.as_secs())})));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
