//! Gathering the facts the checks judge. Read-only: nothing here writes, locks or connects;
//! what the running gateway says (over the control protocol) is gathered by the caller and
//! handed in as [`Live`]; so are the model providers' answers ([`ProviderFacts`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::channels::whatsapp::supervisor::persist::AccountFiles;
use crate::channels::whatsapp::supervisor::session_lock::SessionLock;
use crate::config::env::ProcessEnv;
use crate::config::sources::{Layer, SourceRequest};
use crate::doctor::provider_probe::ProviderFacts;
use crate::gateway::portinfo::{find_holder, PortHolder};
use crate::store::StateLayout;
use crate::store::lockfile::pid_alive;

/// Everything the checks look at.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Wall clock at gathering (unix ms).
    pub now_ms: u64,
    /// The state dir, absolute.
    pub state_dir: PathBuf,
    /// Its unix mode, if it exists.
    pub state_dir_mode: Option<u32>,
    /// The configuration.
    pub config: ConfigFacts,
    /// Token sources.
    pub tokens: TokenFacts,
    /// The gateway process and its port.
    pub gateway: GatewayFacts,
    /// Device pairing requests on disk.
    pub devices: DeviceFacts,
    /// Each configured WhatsApp account (plus any with credentials on disk).
    pub whatsapp: Vec<AccountFacts>,
    /// Legacy WhatsApp credentials (upstream's flat layout or Baileys' format) found on disk.
    pub legacy_creds: Vec<crate::channels::whatsapp::legacy::LegacyCreds>,
    /// Files holding secrets and their modes.
    pub secret_files: Vec<FileMode>,
    /// What the running gateway reported, when it was reached.
    pub live: Option<Live>,
    /// The model providers as probed by the caller ([`crate::doctor::provider_probe::gather`]).
    pub providers: ProviderFacts,
}

/// A file and its mode.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileMode {
    /// Absolute path.
    pub path: PathBuf,
    /// Unix permission bits.
    pub mode: u32,
}

/// The configuration as compiled.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFacts {
    /// No errors.
    pub valid: bool,
    /// Error messages (with file and line).
    pub errors: Vec<String>,
    /// The system file, when one is used.
    pub system_file: Option<PathBuf>,
    /// The state dir's `openclaw.json`.
    pub state_file: PathBuf,
    /// `channels.whatsapp` in the merged config.
    pub whatsapp_declared: bool,
    /// `channels.whatsapp` in the system file.
    pub whatsapp_in_system: bool,
    /// `channels.whatsapp` in the state file.
    pub whatsapp_in_state: bool,
    /// `hooks.enabled`.
    pub hooks_enabled: bool,
    /// The gateway port the config asks for.
    pub port: u16,
    /// Configured WhatsApp accounts `(id, enabled)`.
    pub accounts: Vec<(String, bool)>,
}

/// One token source.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TokenFact {
    /// Human label (`OPENCLAW_GATEWAY_TOKEN`, `gateway.auth.tokenFile in …`).
    pub label: String,
    /// Fingerprint of the value.
    pub fingerprint: String,
    /// The file it was read from and its mode, if any.
    pub file: Option<FileMode>,
}

/// The token sources this process can see.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenFacts {
    /// Explicit sources (config, tokenFile, environment).
    pub explicit: Vec<TokenFact>,
    /// The generated token file, if present.
    pub generated: Option<TokenFact>,
}

/// The gateway process.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayFacts {
    /// The runtime file (`gateway.json`).
    pub runtime_file: PathBuf,
    /// Pid named by the runtime file.
    pub runtime_pid: Option<u32>,
    /// Whether that pid is alive.
    pub runtime_pid_alive: bool,
    /// The port the runtime file names.
    pub runtime_port: Option<u16>,
    /// Token fingerprint and source the running gateway reported in its runtime file.
    pub runtime_token: Option<(String, String)>,
    /// The port checked (the runtime file's when its gateway is alive, else the config's).
    pub port: u16,
    /// Who listens on that port.
    pub port_holder: Option<PortHolder>,
    /// The holder's command line, when it is readable.
    pub holder_cmdline: Option<String>,
    /// The state dir the holder runs with, when it is an openclaw gateway and it can be told.
    pub holder_state_dir: Option<PathBuf>,
}

/// Device pairing on disk.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceFacts {
    /// Pending requests `(requestId, deviceId, client)`.
    pub pending: Vec<(String, String, String)>,
    /// The device files could not be read.
    pub error: Option<String>,
}

/// What `creds.json` holds.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CredsFact {
    /// No file.
    Missing,
    /// Created by a login that never finished (no `me`).
    Unlinked,
    /// Linked as this number.
    Linked {
        /// E.164.
        e164: String,
        /// JID.
        jid: String,
    },
    /// Unreadable as credentials.
    Corrupt {
        /// Why (names the backup when there is one).
        reason: String,
    },
}

/// One WhatsApp account.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountFacts {
    /// Account id.
    pub id: String,
    /// Declared in the config.
    pub configured: bool,
    /// `enabled` in the config.
    pub enabled: bool,
    /// Its credentials directory.
    pub creds_dir: PathBuf,
    /// What `creds.json` holds.
    pub creds: CredsFact,
    /// Credentials moved aside after the phone logged the device out (`logged-out-*`).
    pub logged_out_backups: Vec<PathBuf>,
    /// Cooldown in force `(until ms, reason)`.
    pub cooldown: Option<(u64, String)>,
    /// The pid holding the account's session lock, if held.
    pub session_holder: Option<u32>,
    /// The holder's command name.
    pub session_holder_name: Option<String>,
}

/// What the running gateway reported over the control protocol.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Live {
    /// The `status` document.
    pub status: Value,
    /// `channels.status` list.
    pub channels: Vec<Value>,
    /// The state dir the gateway reported in its hello.
    pub state_dir: Option<String>,
    /// `channels.decisions {kind: "group", droppedOnly: true}`: the last ignored group
    /// messages, newest first (empty when the gateway does not offer the method).
    #[serde(default)]
    pub group_decisions: Vec<Value>,
}

/// Options for [`gather`].
#[derive(Debug, Clone, Default)]
pub struct GatherOptions {
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--config`.
    pub config: Option<PathBuf>,
}

fn mode_of(p: &Path) -> Option<u32> {
    std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o7777)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn declares_whatsapp(text: &str) -> bool {
    crate::config::json5::parse(text).node.map(|n| n.to_value()).is_some_and(|v| v.pointer("/channels/whatsapp").is_some())
}

/// Reads the config, the state dir and `/proc`. `live` is what the caller got from the
/// running gateway (if it reached one).
pub fn gather(opts: &GatherOptions, live: Option<Live>, now_ms: u64) -> Facts {
    let request = SourceRequest { config: opts.config.clone(), state_dir: opts.state_dir.clone(), no_state: false };
    let state_dir = absolute(&crate::config::sources::state_dir(opts.state_dir.as_deref(), &ProcessEnv));
    let layout = StateLayout::new(&state_dir);
    let mut config = ConfigFacts { state_file: layout.config_file(), port: 18789, ..Default::default() };
    let mut tokens = TokenFacts::default();
    let mut hooks_enabled = false;
    match crate::config::compile(&crate::config::Options { request }, &ProcessEnv) {
        Err(e) => config.errors.push(e.to_string()),
        Ok(c) => {
            config.valid = c.is_valid();
            config.errors = c.errors().map(|d| d.to_string()).collect();
            for s in &c.sources {
                match s.layer {
                    Layer::System => {
                        config.system_file = Some(absolute(&s.path));
                        config.whatsapp_in_system = declares_whatsapp(&s.text);
                    }
                    Layer::State => config.whatsapp_in_state = declares_whatsapp(&s.text),
                }
            }
            if let Some(out) = &c.output {
                config.whatsapp_declared = out.config.channels.whatsapp.is_some();
            }
            if let Some(snap) = c.snapshot() {
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                let overrides = crate::gateway::from_snapshot::Overrides {
                    env_port: env("OPENCLAW_GATEWAY_PORT"),
                    env_token: env("OPENCLAW_GATEWAY_TOKEN"),
                    state_dir: opts.state_dir.clone(),
                    ..Default::default()
                };
                if let Ok(settings) = crate::gateway::settings::GatewaySettings::from_snapshot(&snap, &overrides) {
                    config.port = settings.port;
                    hooks_enabled = settings.hooks.enabled;
                    config.accounts = settings.whatsapp.iter().map(|a| (a.id.clone(), a.enabled)).collect();
                    tokens.explicit = settings
                        .token_sources
                        .iter()
                        .map(|s| TokenFact {
                            label: s.label.clone(),
                            fingerprint: s.value.fingerprint(),
                            file: s.file.as_ref().map(|f| FileMode { path: absolute(&f.path), mode: f.mode }),
                        })
                        .collect();
                }
            }
        }
    }
    config.hooks_enabled = hooks_enabled;
    let gen_path = layout.gateway_token_file();
    if let Ok((secret, file)) = crate::gateway::token::read_secret_file(&gen_path) {
        tokens.generated = Some(TokenFact {
            label: format!("generated token file {}", absolute(&gen_path).display()),
            fingerprint: secret.fingerprint(),
            file: Some(FileMode { path: absolute(&file.path), mode: file.mode }),
        });
    }

    let gateway = gather_gateway(&layout, config.port);
    let devices = gather_devices(&layout, now_ms);
    let whatsapp = gather_whatsapp(&layout, &config, now_ms);
    let dirs: Vec<(String, PathBuf)> = whatsapp.iter().map(|a| (a.id.clone(), a.creds_dir.clone())).collect();
    let legacy_creds = crate::channels::whatsapp::legacy::detect(&layout, &dirs);
    let mut secret_files: Vec<FileMode> = Vec::new();
    for t in tokens.explicit.iter().chain(tokens.generated.iter()) {
        if let Some(f) = &t.file
            && !secret_files.contains(f)
        {
            secret_files.push(f.clone());
        }
    }
    for a in &whatsapp {
        for name in ["creds.json", "creds.json.bak", "pre-keys.json"] {
            let p = a.creds_dir.join(name);
            if let Some(mode) = mode_of(&p) {
                secret_files.push(FileMode { path: p, mode });
            }
        }
    }
    Facts {
        now_ms,
        state_dir_mode: mode_of(&state_dir),
        state_dir,
        config,
        tokens,
        gateway,
        devices,
        whatsapp,
        legacy_creds,
        secret_files,
        live,
        providers: ProviderFacts::default(),
    }
}

fn gather_gateway(layout: &StateLayout, config_port: u16) -> GatewayFacts {
    let runtime_file = layout.gateway_runtime_file();
    let runtime: Option<Value> = std::fs::read_to_string(&runtime_file).ok().and_then(|t| serde_json::from_str(&t).ok());
    let runtime_pid = runtime.as_ref().and_then(|r| r["pid"].as_u64()).map(|p| p as u32);
    let runtime_pid_alive = runtime_pid.is_some_and(pid_alive);
    let runtime_port = runtime.as_ref().and_then(|r| r["port"].as_u64()).map(|p| p as u16);
    let runtime_token = runtime.as_ref().and_then(|r| {
        Some((r["tokenFingerprint"].as_str()?.to_string(), r["tokenSource"].as_str().unwrap_or("?").to_string()))
    });
    let port = match (runtime_pid_alive, runtime_port) {
        (true, Some(p)) => p,
        _ => config_port,
    };
    let port_holder = find_holder(port);
    let holder_cmdline = port_holder.as_ref().and_then(|h| {
        let raw = std::fs::read(format!("/proc/{}/cmdline", h.pid)).ok()?;
        Some(raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
    });
    let holder_state_dir = port_holder.as_ref().and_then(|h| holder_state_dir(h.pid));
    GatewayFacts {
        runtime_file,
        runtime_pid,
        runtime_pid_alive,
        runtime_port,
        runtime_token: if runtime_pid_alive { runtime_token } else { None },
        port,
        port_holder,
        holder_cmdline,
        holder_state_dir,
    }
}

/// The state dir an openclaw process runs with: its `--state-dir` argument, else its
/// `OPENCLAW_STATE_DIR`, else `$HOME/.openclaw` (when its environment is readable).
fn holder_state_dir(pid: u32) -> Option<PathBuf> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let is_gateway = args.first().is_some_and(|a| a.ends_with("openclaw")) && args.iter().any(|a| a == "gateway");
    if !is_gateway {
        return None;
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    let resolve = |p: &str| {
        let p = PathBuf::from(p);
        match (&cwd, p.is_relative()) {
            (Some(c), true) => c.join(p),
            _ => p,
        }
    };
    for (i, a) in args.iter().enumerate() {
        if a == "--state-dir" {
            return args.get(i + 1).map(|p| resolve(p));
        }
        if let Some(v) = a.strip_prefix("--state-dir=") {
            return Some(resolve(v));
        }
    }
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let vars: Vec<String> = env.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let get = |k: &str| vars.iter().find_map(|v| v.strip_prefix(&format!("{k}=")).map(str::to_string)).filter(|v| !v.is_empty());
    get("OPENCLAW_STATE_DIR").map(|p| resolve(&p)).or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".openclaw")))
}

fn gather_devices(layout: &StateLayout, now_ms: u64) -> DeviceFacts {
    match crate::gateway::devices::DeviceStore::load(layout) {
        Ok(store) => DeviceFacts {
            pending: store
                .pending(now_ms)
                .iter()
                .map(|r| {
                    let v = serde_json::to_value(r).unwrap_or_default();
                    (
                        v["requestId"].as_str().unwrap_or("?").to_string(),
                        v["deviceId"].as_str().unwrap_or("?").to_string(),
                        v["clientId"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect(),
            error: None,
        },
        Err(e) => DeviceFacts { pending: vec![], error: Some(e.to_string()) },
    }
}

fn gather_whatsapp(layout: &StateLayout, config: &ConfigFacts, now_ms: u64) -> Vec<AccountFacts> {
    let mut ids: Vec<(String, bool, bool)> = config.accounts.iter().map(|(id, en)| (id.clone(), true, *en)).collect();
    // Accounts with credentials on disk but not in the config (the "declared only in the state
    // file" / "provider not available" symptom).
    if let Ok(rd) = std::fs::read_dir(layout.whatsapp_account_dir("default").parent().unwrap_or(layout.root())) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().join("creds.json").exists() && !ids.iter().any(|(i, _, _)| *i == name) {
                ids.push((name, false, false));
            }
        }
    }
    ids.sort_by(|a, b| a.0.cmp(&b.0));
    ids.into_iter()
        .map(|(id, configured, enabled)| {
            // Directory names come from disk or the compiled config: no authDir to resolve here.
            let store = crate::channels::whatsapp::creds::CredsStore::new(layout, &id);
            let creds = match store.load() {
                Ok(None) => CredsFact::Missing,
                Ok(Some(c)) => match c.me.as_ref().and_then(crate::channels::status::SelfId::from_whatsapp_me) {
                    Some(me) => CredsFact::Linked { e164: me.e164, jid: me.jid },
                    None => CredsFact::Unlinked,
                },
                Err(e) => CredsFact::Corrupt { reason: e.to_string() },
            };
            let mut logged_out_backups: Vec<PathBuf> = std::fs::read_dir(store.dir())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("logged-out-"))
                .map(|e| e.path())
                .collect();
            logged_out_backups.sort();
            let files = AccountFiles::new(layout, &id);
            let cooldown = files.peek_cooldown(now_ms).map(|c| (c.until_ms, c.reason.to_string()));
            let session_holder = SessionLock::is_held(store.dir()).then(|| SessionLock::holder(store.dir())).flatten();
            let session_holder_name = session_holder
                .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
                .map(|s| s.trim().to_string());
            AccountFacts {
                id,
                configured,
                enabled,
                creds_dir: store.dir().to_path_buf(),
                creds,
                logged_out_backups,
                cooldown,
                session_holder,
                session_holder_name,
            }
        })
        .collect()
}
