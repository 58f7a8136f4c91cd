//! `openclaw devices list|approve|reject|revoke`: over the control protocol when the gateway is
//! running, else directly on the state dir's device files (holding the gateway lock meanwhile).

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::cli::status_cmd::{block_on, open, target, try_open, ClientArgs};
use crate::gateway::devices::DeviceStore;

/// `openclaw devices` subcommands.
#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List pending requests and paired devices.
    List(#[command(flatten)] ClientArgs),
    /// Approve a pending pairing request.
    Approve {
        /// The request id (from `devices list` or the client's error).
        request_id: String,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Reject a pending pairing request.
    Reject {
        /// The request id.
        request_id: String,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Remove a paired device and invalidate its token (it must pair again).
    #[command(alias = "remove")]
    Revoke {
        /// The device id.
        device_id: String,
        #[command(flatten)]
        args: ClientArgs,
    },
}

/// Runs a `devices` subcommand.
pub fn run(cmd: DevicesCommand) -> ExitCode {
    let (args, method, params) = match &cmd {
        DevicesCommand::List(a) => (a.clone(), "device.pair.list", json!({})),
        DevicesCommand::Approve { request_id, args } => (args.clone(), "device.pair.approve", json!({"requestId": request_id})),
        DevicesCommand::Reject { request_id, args } => (args.clone(), "device.pair.reject", json!({"requestId": request_id})),
        DevicesCommand::Revoke { device_id, args } => (args.clone(), "device.pair.remove", json!({"deviceId": device_id})),
    };
    let result = block_on(async {
        let t = target(&args)?;
        let conn = if args.url.is_some() { Some(open(&t, args.timeout).await?) } else { try_open(&t, args.timeout).await? };
        let Some((mut c, _)) = conn else {
            // Nothing listens where this state dir's gateway would: the files are the truth.
            eprintln!(
                "note: no gateway is running at {} for state dir {}; reading and changing {} directly",
                t.url,
                t.state_dir.display(),
                t.state_dir.join("devices").display()
            );
            return offline(&t.state_dir, method, &params);
        };
        let v = c.request(method, params.clone()).await.map_err(|e| anyhow!("{e}"));
        c.close().await;
        v
    })
    .and_then(|r| r);
    match result {
        Ok(v) => {
            print(method, &v, args.json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The same operations on the files, with the gateway lock held so no gateway starts meanwhile.
fn offline(state_dir: &std::path::Path, method: &str, p: &Value) -> anyhow::Result<Value> {
    let layout = crate::store::StateLayout::new(state_dir);
    let _lock = crate::gateway::lock::acquire(&layout).map_err(|e| anyhow!("{e}"))?;
    let mut store = DeviceStore::load(&layout)?;
    let now = crate::agent::runs::unix_ms();
    let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    Ok(match method {
        "device.pair.list" => {
            store.expire(now)?;
            json!({"pending": store.pending(now), "paired": store.paired()})
        }
        "device.pair.approve" => {
            let d = store.approve(&s("requestId"), "cli", now)?;
            json!({"requestId": s("requestId"), "device": {"deviceId": d.info.device_id, "roles": d.roles, "scopes": d.scopes}})
        }
        "device.pair.reject" => {
            let r = store.reject(&s("requestId"), now)?;
            json!({"requestId": s("requestId"), "deviceId": r.info.device_id})
        }
        _ => {
            let d = store.revoke(&s("deviceId"))?;
            json!({"deviceId": d.info.device_id, "removed": true})
        }
    })
}

fn print(method: &str, v: &Value, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    match method {
        "device.pair.list" => {
            let pending = v["pending"].as_array().cloned().unwrap_or_default();
            let paired = v["paired"].as_array().cloned().unwrap_or_default();
            println!("Pending ({})", pending.len());
            for r in &pending {
                println!(
                    "  {}  device {}  {} {}  role {}  scopes {}  ({})",
                    r["requestId"].as_str().unwrap_or("?"),
                    r["deviceId"].as_str().unwrap_or("?"),
                    r["clientId"].as_str().unwrap_or(""),
                    r["platform"].as_str().unwrap_or(""),
                    r["role"].as_str().unwrap_or(""),
                    r["scopes"],
                    r["reason"].as_str().unwrap_or("")
                );
            }
            println!("Paired ({})", paired.len());
            for d in &paired {
                println!(
                    "  {}  {} {}  roles {}  scopes {}  via {}",
                    d["deviceId"].as_str().unwrap_or("?"),
                    d["clientId"].as_str().unwrap_or(""),
                    d["platform"].as_str().unwrap_or(""),
                    d["roles"],
                    d["scopes"],
                    d["approvedVia"].as_str().unwrap_or("")
                );
            }
        }
        "device.pair.approve" => println!("Approved {} ({})", v["device"]["deviceId"].as_str().unwrap_or("?"), v["requestId"].as_str().unwrap_or("?")),
        "device.pair.reject" => println!("Rejected {} ({})", v["deviceId"].as_str().unwrap_or("?"), v["requestId"].as_str().unwrap_or("?")),
        _ => println!("Revoked {}", v["deviceId"].as_str().unwrap_or("?")),
    }
}
