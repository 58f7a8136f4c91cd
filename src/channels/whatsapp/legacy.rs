//! Legacy WhatsApp credentials left by upstream OpenClaw (TypeScript), found and migrated for
//! `openclaw doctor [--fix]`.
//!
//! Formats (reference `openclaw.md`, "Credentials"; upstream's doctor migration
//! `whatsapp-legacy-state` and its `isLegacyWhatsAppAuthFile` rule):
//!
//! - [`LegacyKind::FlatLayout`]: Baileys auth files (`creds.json`, `creds.json.bak`,
//!   `session-*.json`, `pre-key-*.json`, `sender-key-*.json`, `app-state-sync-*.json`, ...)
//!   directly in `<state>/credentials/`, where old upstream versions kept the default account.
//!   They belong in `<state>/credentials/whatsapp/default/`.
//! - [`LegacyKind::BaileysFormat`]: an account directory written by upstream (Baileys'
//!   `useMultiFileAuthState` JSON: `noiseKey`, `signedIdentityKey`, `pre-key-<n>.json`, ...),
//!   which this gateway reads as a corrupt `creds.json`. It converts into our `creds.json` +
//!   `pre-keys.json` (field mapping in [`super::baileys_import`]) and the Signal sessions into
//!   the account store.
//! - [`LegacyKind::Interrupted`]: a conversion that stopped between moving the Baileys files
//!   aside and putting the converted files in place (a crash): finishing it is one rename.
//!
//! Migration is copy → verify → move the old files aside, never delete, always under the
//! account's session lock (refused while the gateway or a login holds it).

use std::fs;
use std::path::{Path, PathBuf};

use super::baileys_import::{ImportError, import_baileys, import_sessions, store_sessions};
use super::creds::CredsStore;
use super::supervisor::session_lock::{SessionLock, SessionLockError};
use crate::store::StateLayout;

/// The account the flat layout served.
pub const FLAT_LAYOUT_ACCOUNT: &str = "default";

/// Prefix of the folder the Baileys files of an account are moved into after conversion.
pub const BAILEYS_BACKUP_PREFIX: &str = "legacy-baileys-";
/// Prefix of the folder (in `<state>/credentials/`) the flat-layout files are moved into.
pub const FLAT_BACKUP_PREFIX: &str = "legacy-flat-";
/// Prefix of the staging folder of a conversion in progress.
const STAGE_PREFIX: &str = ".migrate-";

/// Which legacy format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LegacyKind {
    /// Baileys files directly in `<state>/credentials/`.
    FlatLayout,
    /// Baileys' JSON in an account directory.
    BaileysFormat,
    /// A conversion interrupted before its converted files were put in place.
    Interrupted,
}

/// Legacy credentials found on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCreds {
    /// The format.
    pub kind: LegacyKind,
    /// The account they belong to.
    pub account: String,
    /// Where the legacy files are.
    pub source: PathBuf,
    /// The account's credentials directory (where they go).
    pub target: PathBuf,
    /// How many legacy files.
    pub files: usize,
    /// `me.id` in the legacy `creds.json`, when it is linked.
    pub linked_as: Option<String>,
    /// Why it cannot be migrated as it is (the fix names the manual step instead).
    pub blocked: Option<String>,
}

/// Why a migration stopped. Nothing was moved or deleted unless the message says so.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Another process holds the account's session.
    #[error("another process{} holds the session of account {account} (the running gateway or a login): stop it first (NixOS: systemctl stop openclaw), then run `openclaw doctor --fix` again; nothing was changed", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy {
        /// The account.
        account: String,
        /// The holder.
        pid: Option<u32>,
    },
    /// The migration cannot run as it is.
    #[error("{0}; nothing was changed")]
    Blocked(String),
    /// The legacy files do not convert.
    #[error("the legacy credentials do not convert: {0}; nothing was changed")]
    Import(#[from] ImportError),
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The converted or copied files do not read back as written.
    #[error("verification failed: {0}; the legacy files were left in place")]
    Verify(String),
    /// Writing the account store (Signal sessions) failed.
    #[error("cannot store the Signal sessions: {0}; the legacy files were left in place")]
    Store(String),
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Migrated {
    /// The account directory that now holds usable credentials.
    pub target: PathBuf,
    /// Where the legacy files were moved (kept, never deleted).
    pub kept: Vec<PathBuf>,
    /// Signal sessions imported into the account store.
    pub sessions: usize,
    /// The linked JID.
    pub jid: Option<String>,
}

/// Upstream's rule for a Baileys auth file in the flat layout (`isLegacyWhatsAppAuthFile`).
pub fn is_flat_legacy_file(name: &str) -> bool {
    if name == "creds.json" || name == "creds.json.bak" {
        return true;
    }
    name.ends_with(".json")
        && ["app-state-sync", "session", "sender-key", "pre-key"].iter().any(|p| name.starts_with(&format!("{p}-")))
}

/// The Baileys key-file categories (`<category>-<id>.json`) an account directory may hold.
const BAILEYS_CATEGORIES: &[&str] = &[
    "app-state-sync-key",
    "app-state-sync-version",
    "device-list",
    "identity-key",
    "lid-mapping",
    "pre-key",
    "sender-key",
    "sender-key-memory",
    "session",
    "tctoken",
];

/// A file Baileys keeps in an account directory (moved aside after conversion).
fn is_baileys_file(name: &str) -> bool {
    name == "creds.json"
        || name == "creds.json.bak"
        || (name.ends_with(".json") && BAILEYS_CATEGORIES.iter().any(|c| name.starts_with(&format!("{c}-"))))
}

/// `creds.json` as Baileys writes it (not our format): a JSON object with `noiseKey` and
/// `signedIdentityKey` and without our `version`.
pub fn is_baileys_creds(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).ok().is_some_and(|v| {
        v.get("noiseKey").is_some() && v.get("signedIdentityKey").is_some() && v.get("version").is_none()
    })
}

fn linked_as(creds_json: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(creds_json).ok()?).ok()?;
    v.pointer("/me/id").and_then(|x| x.as_str()).map(str::to_string)
}

fn names(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| keep(n))
        .collect();
    v.sort();
    v
}

fn stage_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(STAGE_PREFIX) && e.path().join("creds.json").is_file())
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Finds legacy credentials for `accounts` (id, credentials directory). Read-only.
pub fn detect(layout: &StateLayout, accounts: &[(String, PathBuf)]) -> Vec<LegacyCreds> {
    let mut out = Vec::new();
    let flat = layout.credentials_dir();
    let flat_files = names(&flat, is_flat_legacy_file);
    if !flat_files.is_empty() {
        let target = layout.whatsapp_account_dir(FLAT_LAYOUT_ACCOUNT);
        let blocked = target.join("creds.json").exists().then(|| {
            format!(
                "{} already has a creds.json; keep the one you use and move the other folder's files away by hand",
                target.display()
            )
        });
        out.push(LegacyCreds {
            kind: LegacyKind::FlatLayout,
            account: FLAT_LAYOUT_ACCOUNT.into(),
            source: flat.clone(),
            target,
            files: flat_files.len(),
            linked_as: linked_as(&flat.join("creds.json")),
            blocked,
        });
    }
    for (account, dir) in accounts {
        let creds = dir.join("creds.json");
        match fs::read(&creds) {
            Ok(bytes) if is_baileys_creds(&bytes) => out.push(LegacyCreds {
                kind: LegacyKind::BaileysFormat,
                account: account.clone(),
                source: dir.clone(),
                target: dir.clone(),
                files: names(dir, is_baileys_file).len(),
                linked_as: linked_as(&creds),
                blocked: None,
            }),
            Ok(_) => {}
            Err(_) => {
                if let Some(stage) = stage_dirs(dir).pop() {
                    out.push(LegacyCreds {
                        kind: LegacyKind::Interrupted,
                        account: account.clone(),
                        linked_as: linked_as(&stage.join("creds.json")),
                        source: stage,
                        target: dir.clone(),
                        files: 1,
                        blocked: None,
                    });
                }
            }
        }
    }
    out
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError {
    let path = path.to_path_buf();
    move |source| MigrateError::Io { what, path, source }
}

fn private_dir(path: &Path) -> Result<(), MigrateError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io("cannot create", path))
}

fn sync_dir(path: &Path) -> Result<(), MigrateError> {
    fs::File::open(path).and_then(|f| f.sync_all()).map_err(io("cannot sync", path))
}

/// Migrates `legacy` (found by [`detect`]) under the account's session lock: the flat layout
/// is copied into the account directory (verified byte for byte) and the originals moved to
/// `<state>/credentials/legacy-flat-<ms>/`; Baileys' format is converted into ours (verified
/// by reading it back), its Signal sessions stored in the account store, and the Baileys files
/// moved to `<account dir>/legacy-baileys-<ms>/`. Never deletes a legacy file.
pub fn migrate(layout: &StateLayout, legacy: &LegacyCreds, now_ms: u64) -> Result<Migrated, MigrateError> {
    if let Some(why) = &legacy.blocked {
        return Err(MigrateError::Blocked(why.clone()));
    }
    private_dir(&legacy.target)?;
    let _lock = SessionLock::try_acquire(&legacy.target).map_err(|e| match e {
        SessionLockError::Held { pid } => MigrateError::Busy { account: legacy.account.clone(), pid },
        SessionLockError::Io { path, source } => MigrateError::Io { what: "cannot lock", path, source },
    })?;
    let done = |kept: Vec<PathBuf>, sessions: usize| Migrated { target: legacy.target.clone(), kept, sessions, jid: legacy.linked_as.clone() };
    match legacy.kind {
        LegacyKind::FlatLayout => {
            // Check that it converts before anything moves.
            import_baileys(&legacy.source)?;
            let flat_kept = move_flat(layout, legacy, now_ms)?;
            let (kept, sessions) = convert(layout, &legacy.account, &legacy.target, now_ms)?;
            Ok(done(vec![flat_kept, kept], sessions))
        }
        LegacyKind::BaileysFormat => {
            let (kept, sessions) = convert(layout, &legacy.account, &legacy.target, now_ms)?;
            Ok(done(vec![kept], sessions))
        }
        LegacyKind::Interrupted => {
            put_in_place(&legacy.source, &legacy.target)?;
            match CredsStore::in_dir(legacy.target.clone()).load() {
                Ok(Some(c)) if c.is_linked() => Ok(done(Vec::new(), 0)),
                other => Err(MigrateError::Verify(format!("{} after finishing: {other:?}", legacy.target.display()))),
            }
        }
    }
}

/// Copies the flat layout's files into the account directory, checks every copy byte for
/// byte, then moves the originals into `<state>/credentials/legacy-flat-<ms>/`.
fn move_flat(layout: &StateLayout, legacy: &LegacyCreds, now_ms: u64) -> Result<PathBuf, MigrateError> {
    let files = names(&legacy.source, is_flat_legacy_file);
    for n in &files {
        let (from, to) = (legacy.source.join(n), legacy.target.join(n));
        let bytes = fs::read(&from).map_err(io("cannot read", &from))?;
        crate::store::write_atomic(&to, &bytes, 0o600)
            .map_err(|e| MigrateError::Io { what: "cannot write", path: to.clone(), source: std::io::Error::other(e.to_string()) })?;
        if fs::read(&to).map_err(io("cannot read back", &to))? != bytes {
            return Err(MigrateError::Verify(format!("{} differs from {}", to.display(), from.display())));
        }
    }
    let kept = layout.credentials_dir().join(format!("{FLAT_BACKUP_PREFIX}{now_ms}"));
    private_dir(&kept)?;
    for n in &files {
        let from = legacy.source.join(n);
        fs::rename(&from, kept.join(n)).map_err(io("cannot move aside", &from))?;
    }
    sync_dir(&kept)?;
    sync_dir(&legacy.source)?;
    Ok(kept)
}

/// Converts the Baileys files of `dir` into ours: staged in `dir/.migrate-<ms>/` and read back,
/// Signal sessions stored, Baileys files moved to `dir/legacy-baileys-<ms>/`, then the staged
/// files renamed into place. Returns the backup folder and the sessions imported.
fn convert(layout: &StateLayout, account: &str, dir: &Path, now_ms: u64) -> Result<(PathBuf, usize), MigrateError> {
    let (creds, prekeys) = import_baileys(dir)?;
    let sessions = import_sessions(dir, &creds)?;
    let stage = dir.join(format!("{STAGE_PREFIX}{now_ms}"));
    private_dir(&stage)?;
    let staged = CredsStore::in_dir(stage.clone());
    let verify = |e: super::creds::CredsError| MigrateError::Verify(e.to_string());
    staged.save(&creds).map_err(verify)?;
    staged.save_prekeys(&prekeys).map_err(verify)?;
    if staged.load().map_err(verify)?.as_ref() != Some(&creds) || staged.load_prekeys().map_err(verify)? != prekeys {
        return Err(MigrateError::Verify(format!("the converted files in {} do not read back as written", stage.display())));
    }
    let mut stored = 0;
    if !sessions.sessions.is_empty() {
        let mut db = super::account::store::AccountStore::open(layout, account).map_err(|e| MigrateError::Store(e.to_string()))?;
        stored = store_sessions(&mut db, &sessions, now_ms).map_err(|e| MigrateError::Store(e.to_string()))?;
    }
    let kept = dir.join(format!("{BAILEYS_BACKUP_PREFIX}{now_ms}"));
    private_dir(&kept)?;
    for n in names(dir, is_baileys_file) {
        let from = dir.join(&n);
        fs::rename(&from, kept.join(&n)).map_err(io("cannot move aside", &from))?;
    }
    sync_dir(&kept)?;
    put_in_place(&stage, dir)?;
    match CredsStore::in_dir(dir.to_path_buf()).load() {
        Ok(Some(c)) if c == creds => Ok((kept, stored)),
        other => Err(MigrateError::Verify(format!("{} after the conversion: {other:?}", dir.display()))),
    }
}

/// Renames the staged `creds.json` and `pre-keys.json` into `dir` and removes the empty stage.
fn put_in_place(stage: &Path, dir: &Path) -> Result<(), MigrateError> {
    for n in ["pre-keys.json", "creds.json"] {
        let from = stage.join(n);
        if from.exists() {
            fs::rename(&from, dir.join(n)).map_err(io("cannot put in place", &from))?;
        }
    }
    sync_dir(dir)?;
    fs::remove_dir(stage).map_err(io("cannot remove the empty staging folder", stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::creds::{Account, Creds, Me};
    use crate::channels::whatsapp::crypto::SeededEntropy;

    fn linked() -> Creds {
        let mut c = Creds::generate(&SeededEntropy::new(7));
        c.me = Some(Me { id: "15550001234:7@s.whatsapp.net".into(), lid: None, name: None });
        c.account = Some(Account {
            details: vec![1],
            account_signature_key: vec![2; 32],
            account_signature: vec![3; 64],
            device_signature: vec![4; 64],
        });
        c
    }

    #[test]
    fn upstream_flat_layout_rule() {
        for n in ["creds.json", "creds.json.bak", "session-123.0.json", "pre-key-5.json", "sender-key-g.json", "app-state-sync-key-A.json"] {
            assert!(is_flat_legacy_file(n), "{n}");
        }
        for n in ["oauth.json", "telegram-allowFrom.json", "session.lock", "pre-key-5.txt", "whatsapp"] {
            assert!(!is_flat_legacy_file(n), "{n}");
        }
        assert!(is_baileys_creds(br#"{"noiseKey":{},"signedIdentityKey":{}}"#));
        assert!(!is_baileys_creds(br#"{"version":1,"noiseKey":{},"signedIdentityKey":{}}"#));
        assert!(!is_baileys_creds(b"not json"));
    }

    #[test]
    fn issue13_item2_an_interrupted_conversion_is_found_and_finished() {
        let d = tempfile::tempdir().expect("tempdir");
        let layout = StateLayout::new(d.path());
        let dir = layout.whatsapp_account_dir("default");
        let stage = dir.join(".migrate-5");
        let creds = linked();
        CredsStore::in_dir(stage.clone()).save(&creds).expect("staged");
        let found = detect(&layout, &[("default".into(), dir.clone())]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].kind, found[0].linked_as.as_deref()), (LegacyKind::Interrupted, Some("15550001234:7@s.whatsapp.net")));
        // Held session: refused, nothing moves.
        let held = SessionLock::try_acquire(&dir).expect("lock");
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(migrate(&layout, &found[0], 9), Err(MigrateError::Busy { .. }))));
        });
        drop(held);
        assert!(stage.join("creds.json").is_file());
        let m = migrate(&layout, &found[0], 9).expect("finished");
        assert_eq!(m.target, dir);
        assert_eq!(CredsStore::in_dir(dir.clone()).load().expect("readable"), Some(creds));
        assert!(!stage.exists());
        assert!(detect(&layout, &[("default".into(), dir)]).is_empty());
    }
}
