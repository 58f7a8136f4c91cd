//! Where things live under the state directory.
//!
//! The state dir is `--state-dir`, else `$OPENCLAW_STATE_DIR`, else `~/.openclaw` (on the NixOS
//! appliance `/var/lib/sokrates/periphery`). Every path the program writes under it is named here,
//! so the layout is in one place.

use std::path::{Path, PathBuf};

/// Environment variable naming the state directory (as upstream OpenClaw).
pub const STATE_DIR_ENV: &str = "OPENCLAW_STATE_DIR";

/// The default state directory: `$OPENCLAW_HOME/.openclaw`, else `$HOME/.openclaw`, else
/// `./.openclaw` when no home is known.
pub fn default_state_dir() -> PathBuf {
    resolve_state_dir_with(None, |k| std::env::var(k).ok())
}

/// Resolves the state dir from an explicit flag, then the environment, then the default.
pub fn resolve_state_dir(flag: Option<&Path>) -> PathBuf {
    resolve_state_dir_with(flag, |k| std::env::var(k).ok())
}

/// The one state-dir rule, with the environment injected: the flag, else `$OPENCLAW_STATE_DIR`
/// (a leading `~/` expanded), else `$OPENCLAW_HOME/.openclaw`, else `$HOME/.openclaw`, else
/// `./.openclaw`.
pub fn resolve_state_dir_with(flag: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(v) = set(STATE_DIR_ENV) {
        return match (v.strip_prefix("~/"), set("HOME")) {
            (Some(rest), Some(home)) => Path::new(&home).join(rest),
            _ => PathBuf::from(v),
        };
    }
    let home = set("OPENCLAW_HOME").or_else(|| set("HOME")).unwrap_or_else(|| ".".into());
    Path::new(&home).join(".openclaw")
}

/// Paths inside one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLayout {
    root: PathBuf,
}

impl StateLayout {
    /// A layout rooted at `root` (not created here).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The state directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mutable state-layer config file, `<state>/openclaw.json`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("openclaw.json")
    }

    /// The directory for credentials, `<state>/credentials` (mode 0700).
    pub fn credentials_dir(&self) -> PathBuf {
        self.root.join("credentials")
    }

    /// The generated gateway token, persisted once and reused (mode 0600).
    pub fn gateway_token_file(&self) -> PathBuf {
        self.credentials_dir().join("gateway-token")
    }

    /// The gateway's lock file: one gateway per state dir.
    pub fn gateway_lock_file(&self) -> PathBuf {
        self.root.join("gateway.lock")
    }

    /// Runtime facts of the running gateway (pid, address), written after the port is bound.
    pub fn gateway_runtime_file(&self) -> PathBuf {
        self.root.join("gateway.json")
    }

    /// Paired devices of the control protocol (mode 0600).
    pub fn paired_devices_file(&self) -> PathBuf {
        self.devices_dir().join("paired.json")
    }

    /// Pending device pairing requests (mode 0600).
    pub fn pending_devices_file(&self) -> PathBuf {
        self.devices_dir().join("pending.json")
    }

    /// Paired and pending devices of the control protocol.
    pub fn devices_dir(&self) -> PathBuf {
        self.root.join("devices")
    }

    /// WhatsApp credentials of one account: `<state>/credentials/whatsapp/<accountId>/`.
    pub fn whatsapp_account_dir(&self, account_id: &str) -> PathBuf {
        self.credentials_dir().join("whatsapp").join(account_id)
    }

    /// The agent run store (SQLite): `<state>/agent/runs.db` (mode 0600).
    pub fn runs_db(&self) -> PathBuf {
        self.root.join("agent").join("runs.db")
    }

    /// The protocol-state database of one WhatsApp account (sessions, prekeys, outbox):
    /// `<state>/channels/whatsapp/<accountId>/store.db` (mode 0600).
    pub fn whatsapp_store_db(&self, account_id: &str) -> PathBuf {
        self.channel_state_dir("whatsapp", account_id).join("store.db")
    }

    /// Per-channel runtime state that must survive a restart (cooldowns):
    /// `<state>/channels/<channel>/<accountId>/`.
    pub fn channel_state_dir(&self, channel: &str, account_id: &str) -> PathBuf {
        self.root.join("channels").join(channel).join(account_id)
    }
}
