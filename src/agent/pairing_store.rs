//! The DM pairing store: pending requests and approved senders of each channel, one small JSON
//! file per channel, `<state>/pairing/<channel>.json` (mode 0600, written with
//! [`crate::store::write_atomic`]), updated under an exclusive `flock` on
//! `<state>/pairing/<channel>.lock` so the gateway and `openclaw pairing approve` never lose
//! each other's writes.
//!
//! The decisions themselves are pure ([`crate::routing::pairing`]); this module only loads,
//! locks and saves. Its I/O is blocking: async callers run it in `spawn_blocking`.
//! The config file is never rewritten: approved senders live here, not in `allowFrom`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::model::whatsapp::{DmPolicy, ResolvedAccount};
use crate::routing::{AccessContext, ChatKind, Decision, Inbound, PendingPairings};

/// The file format identifier.
pub const FORMAT: &str = "openclaw-pairing/1";

/// Why the pairing store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PairingStoreError {
    /// The channel name is not a plain identifier.
    #[error("invalid channel \"{0}\": use lowercase letters, numbers, \"_\" or \"-\"")]
    InvalidChannel(String),
    /// Reading or locking failed.
    #[error("cannot {step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not decode.
    #[error("{path} is not a pairing store: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] crate::store::AtomicWriteError),
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    #[serde(flatten)]
    state: PendingPairings,
}

/// The pairing files under one state directory.
#[derive(Debug, Clone)]
pub struct PairingStore {
    dir: PathBuf,
}

impl PairingStore {
    /// The store of state directory `state_dir` (`<state>/pairing/`).
    pub fn new(state_dir: &Path) -> Self {
        Self { dir: state_dir.join("pairing") }
    }

    /// The state file of `channel`.
    pub fn file(&self, channel: &str) -> Result<PathBuf, PairingStoreError> {
        valid_channel(channel)?;
        Ok(self.dir.join(format!("{channel}.json")))
    }

    /// Reads the state of `channel` (empty when there is no file yet), without locking.
    pub fn load(&self, channel: &str) -> Result<PendingPairings, PairingStoreError> {
        read(&self.file(channel)?)
    }

    /// Locks `channel`'s state, lets `f` change it, and saves it when it changed, before the lock
    /// is released. Returns what `f` returned, only after the save succeeded.
    pub fn update<T>(&self, channel: &str, f: impl FnOnce(&mut PendingPairings) -> T) -> Result<T, PairingStoreError> {
        let path = self.file(channel)?;
        let lock_path = self.dir.join(format!("{channel}.lock"));
        let lock = crate::store::lockfile::open_lock_file(&lock_path)
            .map_err(|source| PairingStoreError::Io { step: "open", path: lock_path.clone(), source })?;
        lock.lock().map_err(|source| PairingStoreError::Io { step: "lock", path: lock_path.clone(), source })?;
        let before = read(&path)?;
        let mut state = before.clone();
        let out = f(&mut state);
        if state != before {
            let file = File { format: FORMAT.into(), state };
            let mut text = serde_json::to_string_pretty(&file).map_err(|e| PairingStoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            text.push('\n');
            crate::store::write_atomic(&path, text.as_bytes(), 0o600)?;
        }
        drop(lock);
        Ok(out)
    }
}

impl PairingStore {
    /// Whether [`PairingStore::decide_inbound`] reads (and may write) the pairing file for
    /// `msg`: only a direct message under `dmPolicy: pairing`. Otherwise the decision is pure
    /// and may be made on an async worker.
    pub fn reads_store(account: &ResolvedAccount, msg: &Inbound) -> bool {
        account.dm_policy == DmPolicy::Pairing && msg.chat_kind == ChatKind::Direct
    }

    /// Decides an inbound message for `account` ([`crate::routing::decide`]) and persists a
    /// changed pairing state before returning, so a challenge is only sent for a stored
    /// request. Only a DM under `dmPolicy: pairing` touches the store (read and written under
    /// its lock; [`PairingStore::reads_store`]); other messages are decided without I/O.
    /// Blocking when it reads the store: call it off the async workers then.
    pub fn decide_inbound(
        &self,
        account: &ResolvedAccount,
        own_e164: Option<&str>,
        msg: &Inbound,
        now_ms: u64,
        random_index: &mut dyn FnMut(usize) -> usize,
    ) -> Result<Decision, PairingStoreError> {
        if !Self::reads_store(account, msg) {
            let empty = PendingPairings::default();
            let ctx = AccessContext::for_account(account, own_e164, &empty, now_ms);
            return Ok(crate::routing::decide(&ctx, msg, random_index));
        }
        self.update(&msg.channel, |state| {
            let ctx = AccessContext::for_account(account, own_e164, state, now_ms);
            let d = crate::routing::decide(&ctx, msg, random_index);
            if let Some(next) = &d.pairing_state {
                *state = next.clone();
            }
            d
        })
    }
}

fn valid_channel(channel: &str) -> Result<(), PairingStoreError> {
    let ok = !channel.is_empty()
        && channel.len() <= 64
        && channel.starts_with(|c: char| c.is_ascii_lowercase())
        && channel.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok { Ok(()) } else { Err(PairingStoreError::InvalidChannel(channel.to_string())) }
}

fn read(path: &Path) -> Result<PendingPairings, PairingStoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PendingPairings::default()),
        Err(source) => return Err(PairingStoreError::Io { step: "read", path: path.to_path_buf(), source }),
    };
    let corrupt = |reason: String| PairingStoreError::Corrupt { path: path.to_path_buf(), reason };
    let file: File = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.format != FORMAT {
        return Err(corrupt(format!("format {:?}, expected {FORMAT:?}", file.format)));
    }
    Ok(file.state)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::routing::pairing::Upsert;

    #[test]
    fn update_persists_with_mode_0600_and_load_reads_it_back() {
        let d = tempfile::tempdir().unwrap();
        let store = PairingStore::new(d.path());
        assert_eq!(store.load("whatsapp").unwrap(), PendingPairings::default());
        let up = store
            .update("whatsapp", |s| s.upsert("default", "+1555", BTreeMap::new(), 5, &mut |n| n - 1))
            .unwrap();
        assert_eq!(up, Upsert::Created { code: "99999999".into() });
        let path = store.file("whatsapp").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = store.load("whatsapp").unwrap();
        assert_eq!(loaded.requests[0].id, "+1555");
        let approved = store.update("whatsapp", |s| s.approve("99999999", None, 6)).unwrap().unwrap();
        assert_eq!(approved.id, "+1555");
        assert!(store.load("whatsapp").unwrap().is_approved("default", "+1555"));
    }

    #[test]
    fn corrupt_file_is_an_error_not_an_empty_store() {
        let d = tempfile::tempdir().unwrap();
        let store = PairingStore::new(d.path());
        std::fs::create_dir_all(d.path().join("pairing")).unwrap();
        std::fs::write(store.file("whatsapp").unwrap(), "{not json").unwrap();
        assert!(matches!(store.load("whatsapp"), Err(PairingStoreError::Corrupt { .. })));
        assert!(store.update("whatsapp", |_| ()).is_err());
    }

    #[test]
    fn decide_inbound_persists_only_pairing_changes() {
        use crate::config::model::WhatsAppConfig;
        use crate::routing::policy::Action;
        use crate::routing::Rule;
        let d = tempfile::tempdir().unwrap();
        let store = PairingStore::new(d.path());
        let msg = Inbound {
            channel: "whatsapp".into(),
            account_id: "default".into(),
            sender_e164: Some("+15550001111".into()),
            sender_id: "15550001111@s.whatsapp.net".into(),
            chat_kind: ChatKind::Direct,
            chat_id: "15550001111@s.whatsapp.net".into(),
            self_chat: false,
            from_me: false,
            mentioned: false,
            is_backlog: false,
            sender_name: None,
            text: "hi".into(),
        };
        let cfg = |v: serde_json::Value| serde_json::from_value::<WhatsAppConfig>(v).unwrap().account("default");
        let allowlist = cfg(serde_json::json!({"dmPolicy": "allowlist", "allowFrom": ["+15550002222"]}));
        let dec = store.decide_inbound(&allowlist, None, &msg, 0, &mut |_| 0).unwrap();
        assert_eq!(dec.rule, Rule::NotAllowlisted);
        assert!(!store.file("whatsapp").unwrap().exists(), "no store I/O outside pairing");
        assert!(!PairingStore::reads_store(&allowlist, &msg), "decided on the async worker");

        let pairing = cfg(serde_json::json!({}));
        assert!(PairingStore::reads_store(&pairing, &msg));
        assert!(!PairingStore::reads_store(&pairing, &Inbound { chat_kind: ChatKind::Group, ..msg.clone() }), "groups never read it");
        let dec = store.decide_inbound(&pairing, None, &msg, 0, &mut |_| 0).unwrap();
        assert!(matches!(dec.action, Action::Challenge { ref code, .. } if code == "AAAAAAAA"));
        assert_eq!(store.load("whatsapp").unwrap().requests.len(), 1, "stored before the reply is sent");
        store.update("whatsapp", |s| s.approve("aaaaaaaa", None, 1)).unwrap().unwrap();
        let dec = store.decide_inbound(&pairing, None, &msg, 2, &mut |_| 0).unwrap();
        assert_eq!(dec.rule, Rule::PairingApproved);
    }

    #[test]
    fn channel_names_cannot_escape_the_directory() {
        let store = PairingStore::new(Path::new("/tmp/x"));
        assert!(store.file("../etc").is_err());
        assert!(store.file("WhatsApp").is_err());
        assert!(store.file("whatsapp").is_ok());
    }
}
