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
    /// Where this CLI's token came from (`--token`, `OPENCLAW_GATEWAY_TOKEN`, a file path, ...).
    pub token_source: String,
    /// The CLI's state dir (absolute).
    pub state_dir: PathBuf,
    /// Pid of the running gateway from the runtime file, if any.
    pub pid: Option<u32>,
    /// The running gateway's token fingerprint and source, from its runtime file.
    pub gateway_token: Option<(String, String)>,
    /// Control UI base path.
    pub base_path: String,
}

impl Target {
    /// Fingerprint of this CLI's token, or `none`.
    pub fn token_fingerprint(&self) -> String {
        self.token.as_ref().map(|t| crate::config::secrets::fingerprint(t.as_bytes())).unwrap_or_else(|| "none".into())
    }

    /// When the running gateway (same state dir) uses another token than this CLI: the sentence
    /// that says which source each comes from and how to fix it.
    pub fn token_disagreement(&self) -> Option<String> {
        let (gw_fp, gw_src) = self.gateway_token.as_ref()?;
        (gw_fp != &self.token_fingerprint()).then(|| {
            format!(
                "this CLI's token comes from {} ({}), but the running gateway (pid {}) uses the token from {gw_src} ({gw_fp}); \
                 run the CLI with the same source (e.g. export OPENCLAW_GATEWAY_TOKEN as the gateway's service does, or pass --token)",
                self.token_source,
                self.token_fingerprint(),
                self.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            )
        })
    }
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
    let gateway_token = match (&runtime, pid) {
        (Some(r), Some(_)) => r["tokenFingerprint"].as_str().map(|fp| {
            (fp.to_string(), r["tokenSource"].as_str().unwrap_or("an unknown source").to_string())
        }),
        _ => None,
    };
    let host = if settings.bind_host.is_unspecified() { "127.0.0.1".to_string() } else { settings.bind_host.to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = a.url.clone().unwrap_or_else(|| format!("ws://{host}:{port}"));
    let http = url.replacen("ws://", "http://", 1).replacen("wss://", "https://", 1);
    let (tok, token_source) = match &a.token {
        Some(t) => (Some(t.clone()), "--token".to_string()),
        None => match token::agree(&settings.token_sources).map_err(|e| anyhow!("{e}"))? {
            Some(s) => (Some(s.value.expose().to_string()), s.label.clone()),
            None => match token::read_generated(&layout).map_err(|e| anyhow!("{e}"))? {
                Some(s) => (Some(s.expose().to_string()), format!("generated token file {}", absolute(&layout.gateway_token_file()).display())),
                None => (None, format!("nowhere (no token configured and no generated token file in {})", absolute(layout.root()).display())),
            },
        },
    };
    Ok(Target {
        url,
        http,
        token: tok,
        token_source,
        state_dir: absolute(layout.root()),
        pid,
        gateway_token,
        base_path: settings.control_ui.base_path,
    })
}

/// `p` made absolute against the current directory (not resolving symlinks); unchanged on error.
pub fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Connects with the shared token (no device identity) and returns the connection and hello.
/// Errors say what happened: nothing listening (with the state dir it looked in), or the
/// gateway refusing this CLI's token (with where the token came from), never one for the other.
pub async fn open(t: &Target, timeout_ms: u64) -> anyhow::Result<(Conn, Value)> {
    match try_open(t, timeout_ms).await? {
        Some(x) => Ok(x),
        None => Err(anyhow!(
            "no gateway is listening at {} (looked for a running gateway of state dir {})\nhint: start it with `openclaw gateway run` (NixOS: systemctl start openclaw); `openclaw doctor` checks the usual causes",
            t.url,
            t.state_dir.display()
        )),
    }
}

/// Like [`open`], but `Ok(None)` when nothing answers at the URL (so a caller can fall back to
/// the state dir's files); an authentication failure or any other refusal is an error.
pub async fn try_open(t: &Target, timeout_ms: u64) -> anyhow::Result<Option<(Conn, Value)>> {
    let opts = ConnectOptions { token: t.token.clone(), ..Default::default() };
    let (c, hello) = match client::connect(&t.url, &opts, Duration::from_millis(timeout_ms)).await {
        Ok(x) => x,
        Err(client::ClientError::Unreachable { .. }) => return Ok(None),
        Err(e) => return Err(explain_refusal(t, e)),
    };
    if let Some(gw_dir) = hello.pointer("/snapshot/stateDir").and_then(Value::as_str) {
        let same = std::fs::canonicalize(gw_dir).ok() == std::fs::canonicalize(&t.state_dir).ok();
        if !same {
            eprintln!(
                "note: the gateway uses state dir {gw_dir} (at {}), this CLI uses {} (set OPENCLAW_STATE_DIR or --state-dir to match)",
                t.url,
                t.state_dir.display()
            );
        }
    }
    Ok(Some((c, hello)))
}

/// Like [`try_open`] without the state-dir note on stderr (for callers that report it
/// themselves, like `doctor`).
pub async fn try_open_quiet(t: &Target, timeout_ms: u64) -> anyhow::Result<Option<(Conn, Value)>> {
    let opts = ConnectOptions { token: t.token.clone(), ..Default::default() };
    match client::connect(&t.url, &opts, Duration::from_millis(timeout_ms)).await {
        Ok(x) => Ok(Some(x)),
        Err(client::ClientError::Unreachable { .. }) => Ok(None),
        Err(e) => Err(explain_refusal(t, e)),
    }
}

/// Turns a connect failure into a sentence that names the cause and the fix.
fn explain_refusal(t: &Target, e: client::ClientError) -> anyhow::Error {
    let text = e.to_string();
    let auth = text.contains("unauthorized") || text.contains("AUTH_") || text.contains("device identity required");
    if auth {
        let why = t.token_disagreement().unwrap_or_else(|| {
            let other = if t.pid.is_none() {
                format!(
                    "; no gateway of state dir {} is running, so the one at {} belongs to another state dir or user: use its token (--token) or its state dir (--state-dir)",
                    t.state_dir.display(),
                    t.url
                )
            } else {
                String::new()
            };
            format!("this CLI's token comes from {} ({}){other}", t.token_source, t.token_fingerprint())
        });
        return anyhow!("the gateway at {} is running but refused this CLI's credentials ({text})\n{why}", t.url);
    }
    if text.contains("pairing required") {
        return anyhow!("{text}\nhint: approve the device with `openclaw devices list` then `openclaw devices approve <requestId>`");
    }
    match e {
        client::ClientError::Timeout => anyhow!(
            "{e} at {} (a process accepts connections there but did not answer as a gateway; `openclaw doctor` names it)",
            t.url
        ),
        other => anyhow!("{other}"),
    }
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
                    "  {}/{}: configured={} linked={} connected={}{}{}",
                    c["id"].as_str().unwrap_or("?"),
                    c["account"].as_str().unwrap_or("?"),
                    c["configured"],
                    c["linked"],
                    c["connected"],
                    match (c["self"]["e164"].as_str(), c["self"]["jid"].as_str()) {
                        (Some(p), Some(j)) => format!(" phone={p} jid={j}"),
                        _ => String::new(),
                    },
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
                println!("  {}", crate::cli::human::log_line(l.as_str().unwrap_or("")));
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
        let opened = try_open(&t, a.timeout).await;
        let refused = opened.is_err();
        match opened.and_then(|c| c.ok_or_else(|| anyhow!("no gateway is listening at {} (state dir {})", t.url, t.state_dir.display()))) {
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
                    println!("{}", json!({"running": refused, "refused": refused, "url": t.url, "error": e.to_string()}));
                } else {
                    if refused {
                        println!("Gateway: running at {} but it refused this CLI (see below)", t.url);
                    } else {
                        println!("Gateway: not reachable at {} (state dir {})", t.url, t.state_dir.display());
                    }
                }
                Err(e)
            }
        }
    }).and_then(|r| r))
}

/// `openclaw dashboard`: prints the Control UI URL with the token in the `#token=` fragment,
/// and where that token comes from; `--json` prints the same as an object.
pub fn dashboard(a: ClientArgs) -> ExitCode {
    finish((|| {
        let t = target(&a)?;
        let base = format!("{}{}/", t.http, t.base_path);
        let url = match &t.token {
            Some(tok) => format!("{base}#token={tok}"),
            None => base.clone(),
        };
        let port = t.http.rsplit(':').next().unwrap_or("18789").trim_end_matches('/').to_string();
        let tunnel = format!("ssh -N -L {port}:127.0.0.1:{port} <user>@<gateway-host>");
        let mismatch = t.token_disagreement();
        if a.json {
            let doc = json!({
                "url": url,
                "baseUrl": base,
                "tokenSource": t.token_source,
                "tokenFingerprint": t.token.as_ref().map(|_| t.token_fingerprint()),
                "stateDir": t.state_dir,
                "gateway": {"running": t.pid.is_some(), "pid": t.pid, "tokenFingerprint": t.gateway_token.as_ref().map(|g| &g.0), "tokenSource": t.gateway_token.as_ref().map(|g| &g.1)},
                "tokenMismatch": mismatch,
                "sshTunnel": tunnel,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(());
        }
        println!("{url}");
        eprintln!("Token: from {} ({}).", t.token_source, t.token_fingerprint());
        if let Some(m) = mismatch {
            eprintln!("warning: this link will be refused: {m}");
        } else if t.pid.is_none() {
            eprintln!("note: no gateway of state dir {} is running right now.", t.state_dir.display());
        }
        eprintln!("From another machine: {tunnel}, then open the URL above.");
        Ok(())
    })())
}
