//! Client commands over the control protocol: `openclaw status`, `health`, `dashboard`,
//! `gateway status`. Tokens are never printed except by `dashboard` (that is its job).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::{json, Value};

use crate::cli::gateway_cmd::{load_settings, GatewayArgs};
use crate::gateway::client::{self, ConnectOptions, Conn};
use crate::gateway::token;
use crate::store::lockfile::pid_alive;

/// Flags shared by client commands.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientArgs {
    /// Gateway WebSocket URL (default: this state dir's running gateway, else the configured port).
    #[arg(long)]
    pub url: Option<String>,
    /// Gateway token (default: the configured or generated token of this state dir).
    #[arg(long)]
    pub token: Option<String>,
    /// State directory (default $OPENCLAW_STATE_DIR or ~/.openclaw).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where and how the CLI reaches the gateway.
#[derive(Debug, Clone)]
pub struct Target {
    /// WebSocket URL.
    pub url: String,
    /// HTTP base URL.
    pub http: String,
    /// Token, if any.
    pub token: Option<String>,
    /// The CLI's state dir.
    pub state_dir: PathBuf,
    /// Pid of the running gateway from the runtime file, if any.
    pub pid: Option<u32>,
    /// Control UI base path.
    pub base_path: String,
}

/// Resolves URL and token from flags, the runtime file and the settings (no token is generated).
pub fn target(a: &ClientArgs) -> anyhow::Result<Target> {
    let settings = load_settings(&GatewayArgs { state_dir: a.state_dir.clone(), config: a.config.clone(), ..Default::default() })?;
    let layout = settings.state.clone();
    let runtime: Option<Value> = std::fs::read_to_string(layout.gateway_runtime_file()).ok().and_then(|t| serde_json::from_str(&t).ok());
    let pid = runtime.as_ref().and_then(|r| r["pid"].as_u64()).map(|p| p as u32).filter(|p| pid_alive(*p));
    let port = match (&runtime, pid) {
        (Some(r), Some(_)) => r["port"].as_u64().map(|p| p as u16).unwrap_or(settings.port),
        _ => settings.port,
    };
    let host = if settings.bind_host.is_unspecified() { "127.0.0.1".to_string() } else { settings.bind_host.to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = a.url.clone().unwrap_or_else(|| format!("ws://{host}:{port}"));
    let http = url.replacen("ws://", "http://", 1).replacen("wss://", "https://", 1);
    let tok = match &a.token {
        Some(t) => Some(t.clone()),
        None => match token::agree(&settings.token_sources).map_err(|e| anyhow!("{e}"))? {
            Some(s) => Some(s.value.expose().to_string()),
            None => token::load_generated(&layout).map_err(|e| anyhow!("{e}"))?.map(|s| s.expose().to_string()),
        },
    };
    Ok(Target { url, http, token: tok, state_dir: layout.root().to_path_buf(), pid, base_path: settings.control_ui.base_path })
}

/// Connects with the shared token (no device identity) and returns the connection and hello.
pub async fn open(t: &Target, timeout_ms: u64) -> anyhow::Result<(Conn, Value)> {
    let opts = ConnectOptions { token: t.token.clone(), ..Default::default() };
    let (c, hello) = client::connect(&t.url, &opts, Duration::from_millis(timeout_ms)).await.map_err(|e| match e {
        client::ClientError::Unreachable { .. } | client::ClientError::Timeout => anyhow!(
            "{e}\nhint: is the gateway running for state dir {}? Start it with `openclaw gateway`",
            t.state_dir.display()
        ),
        other => anyhow!("{other}"),
    })?;
    if let Some(gw_dir) = hello.pointer("/snapshot/stateDir").and_then(Value::as_str) {
        let same = std::fs::canonicalize(gw_dir).ok() == std::fs::canonicalize(&t.state_dir).ok();
        if !same {
            eprintln!(
                "note: the gateway uses state dir {gw_dir}, this CLI uses {} (set OPENCLAW_STATE_DIR or --state-dir to match)",
                t.state_dir.display()
            );
        }
    }
    Ok((c, hello))
}

/// Runs an async block on a small runtime.
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    Ok(rt.block_on(f))
}

fn finish(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn call(a: &ClientArgs, method: &str, params: Value) -> anyhow::Result<Value> {
    let t = target(a)?;
    let (mut c, _) = open(&t, a.timeout).await?;
    let v = c.request(method, params).await.map_err(|e| anyhow!("{method}: {e}"))?;
    c.close().await;
    Ok(v)
}

fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 { format!("{s}s") } else if s < 3600 { format!("{}m{}s", s / 60, s % 60) } else { format!("{}h{}m", s / 3600, (s % 3600) / 60) }
}

fn print_channels(list: &Value) {
    match list.as_array() {
        Some(l) if !l.is_empty() => {
            for c in l {
                println!(
                    "  {}/{}: configured={} linked={} connected={}{}",
                    c["id"].as_str().unwrap_or("?"),
                    c["account"].as_str().unwrap_or("?"),
                    c["configured"],
                    c["linked"],
                    c["connected"],
                    c["lastError"].as_str().map(|e| format!(" lastError={e}")).unwrap_or_default()
                );
            }
        }
        _ => println!("  (no channels configured)"),
    }
}

/// `openclaw status [--all]`.
pub fn status(a: ClientArgs, all: bool) -> ExitCode {
    finish(block_on(async {
        let t = target(&a)?;
        let (mut c, _) = open(&t, a.timeout).await?;
        let mut st = c.request("status", json!({})).await.map_err(|e| anyhow!("status: {e}"))?;
        if all {
            st["devicesDetail"] = c.request("device.pair.list", json!({})).await.map_err(|e| anyhow!("{e}"))?;
            st["logs"] = c.request("logs.tail", json!({"limit": 20})).await.map_err(|e| anyhow!("{e}"))?["lines"].clone();
        }
        c.close().await;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&st)?);
            return Ok(());
        }
        println!("Gateway {} (pid {}), up {}", st["version"].as_str().unwrap_or("?"), st["pid"], fmt_ms(st["uptimeMs"].as_u64().unwrap_or(0)));
        println!("Listening: {}", st["listen"].as_str().unwrap_or("?"));
        println!("State dir: {}", st["stateDir"].as_str().unwrap_or("?"));
        println!("Auth: {} (token {})", st["auth"]["mode"].as_str().unwrap_or("?"), st["auth"]["tokenFingerprint"].as_str().unwrap_or("none"));
        println!(
            "Hooks: {}",
            if st["hooks"]["enabled"] == true { format!("enabled at {} (token {})", st["hooks"]["path"].as_str().unwrap_or("?"), st["hooks"]["tokenFingerprint"].as_str().unwrap_or("none")) } else { "disabled".into() }
        );
        let r = &st["runs"];
        println!("Runs: accepted {} done {} failed {}", r["accepted"], r["done"], r["failed"]);
        println!("Devices: {} paired, {} pending", st["devices"]["paired"], st["devices"]["pending"]);
        println!("Channels:");
        print_channels(&st["channels"]);
        if all {
            println!("Config files: {}", st["configPaths"]);
            for d in st["devicesDetail"]["paired"].as_array().into_iter().flatten() {
                println!("  paired {} {} scopes={}", d["deviceId"].as_str().unwrap_or("?"), d["clientId"].as_str().unwrap_or(""), d["scopes"]);
            }
            for d in st["devicesDetail"]["pending"].as_array().into_iter().flatten() {
                println!("  pending {} device {} ({})", d["requestId"].as_str().unwrap_or("?"), d["deviceId"].as_str().unwrap_or("?"), d["reason"].as_str().unwrap_or(""));
            }
            println!("Recent log lines:");
            for l in st["logs"].as_array().into_iter().flatten() {
                println!("  {}", l.as_str().unwrap_or(""));
            }
        }
        Ok(())
    }).and_then(|r| r))
}

/// `openclaw health`.
pub fn health(a: ClientArgs) -> ExitCode {
    finish(block_on(async {
        let h = call(&a, "health", json!({})).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&h)?);
        } else {
            println!("Gateway: {} ({}), version {}, up {}", if h["ok"] == true { "ok" } else { "NOT ok" }, h["status"].as_str().unwrap_or("?"), h["version"].as_str().unwrap_or("?"), fmt_ms(h["uptimeMs"].as_u64().unwrap_or(0)));
            print_channels(&h["channelList"]);
        }
        Ok(())
    }).and_then(|r| r))
}

/// `openclaw gateway status`.
pub fn gateway_status(a: ClientArgs) -> ExitCode {
    finish(block_on(async {
        let t = target(&a)?;
        match open(&t, a.timeout).await {
            Ok((mut c, _)) => {
                let st = c.request("status", json!({})).await.map_err(|e| anyhow!("{e}"))?;
                c.close().await;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&json!({"running": true, "status": st}))?);
                } else {
                    println!("Gateway: running (pid {}) on {}, up {}", st["pid"], st["listen"].as_str().unwrap_or("?"), fmt_ms(st["uptimeMs"].as_u64().unwrap_or(0)));
                    println!("State dir: {}", st["stateDir"].as_str().unwrap_or("?"));
                }
                Ok(())
            }
            Err(e) => {
                if a.json {
                    println!("{}", json!({"running": false, "url": t.url, "error": e.to_string()}));
                } else {
                    println!("Gateway: not reachable at {} (state dir {})", t.url, t.state_dir.display());
                }
                Err(e)
            }
        }
    }).and_then(|r| r))
}

/// `openclaw dashboard`: prints the Control UI URL with the token in the `#token=` fragment.
pub fn dashboard(a: ClientArgs) -> ExitCode {
    finish((|| {
        let t = target(&a)?;
        let base = format!("{}{}/", t.http, t.base_path);
        match &t.token {
            Some(tok) => println!("{base}#token={tok}"),
            None => println!("{base}"),
        }
        let port = t.http.rsplit(':').next().unwrap_or("18789").trim_end_matches('/').to_string();
        eprintln!("From another machine: ssh -N -L {port}:127.0.0.1:{port} <user>@<gateway-host>, then open the URL above.");
        Ok(())
    })())
}
