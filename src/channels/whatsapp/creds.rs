//! Credentials of one linked WhatsApp account, stored under
//! `<state>/credentials/whatsapp/<accountId>/`:
//!
//! - `creds.json`: identity, keys, ADV account data (mode 0600, written atomically);
//! - `creds.json.bak`: the previous good copy, refreshed before every overwrite;
//! - `pre-keys.json`: one-time prekeys (private halves), keyed by id.
//!
//! A file that does not parse or fails validation is reported as [`CredsError::Corrupt`] and is
//! never overwritten by [`CredsStore::save`]: the operator decides (restore the `.bak`, or log out).
//!
//! # Mapping from a Baileys session (reference §5.3); implemented by [`super::baileys_import`]
//!
//! Field names follow Baileys' `creds.json` so an existing OpenClaw/Baileys session can be imported
//! without re-pairing. Differences: binary values are plain base64 strings here, where Baileys writes
//! `{"type":"Buffer","data":"<base64>"}` (BufferJSON); `account.*` and `advSecretKey` are base64
//! strings in both.
//!
//! | Baileys `creds.json` / key file | here |
//! |---|---|
//! | `noiseKey.{private,public}` (essential: the server knows the device by it) | `noiseKey` |
//! | `signedIdentityKey` | `signedIdentityKey` |
//! | `signedPreKey.{keyId,keyPair,signature}` | `signedPreKey` |
//! | `registrationId` | `registrationId` |
//! | `advSecretKey` (base64 string) | `advSecretKey` |
//! | `account.{details,accountSignatureKey,accountSignature,deviceSignature}` | `account` |
//! | `me.{id,lid,name}` | `me` |
//! | `platform`, `routingInfo` (Buffer) | same names (base64) |
//! | `nextPreKeyId`, `firstUnuploadedPreKeyId` | same names |
//! | `pre-key-<n>.json` (`{private,public}`) | `pre-keys.json` entry `"<n>"` |
//! | `session-*.json`, `sender-key-*`, `app-state-*` | not imported yet (Signal layer is a later issue) |

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::crypto::{Entropy, KeyPair, random_bytes};
use crate::store::{StateLayout, write_atomic};

/// Current on-disk format version.
pub const CREDS_VERSION: u32 = 1;

mod b64_opt {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&B64.encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => B64
                .decode(s.as_bytes())
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// A key pair as stored: base64 private and public halves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKeyPair {
    /// Private key (32 bytes).
    #[serde(with = "b64")]
    pub private: Vec<u8>,
    /// Public key (32 bytes).
    #[serde(with = "b64")]
    pub public: Vec<u8>,
}

impl std::fmt::Debug for StoredKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKeyPair")
            .field("public", &B64.encode(&self.public))
            .finish_non_exhaustive()
    }
}

impl From<&KeyPair> for StoredKeyPair {
    fn from(k: &KeyPair) -> Self {
        Self {
            private: k.private.to_vec(),
            public: k.public.to_vec(),
        }
    }
}

impl StoredKeyPair {
    /// The key pair, checking lengths and that the public half matches the private one.
    pub fn key_pair(&self) -> Result<KeyPair, &'static str> {
        let private = <[u8; 32]>::try_from(self.private.as_slice())
            .map_err(|_| "private key is not 32 bytes")?;
        let kp = KeyPair::from_private(private);
        if kp.public.as_slice() != self.public.as_slice() {
            return Err("public key does not match private key");
        }
        Ok(kp)
    }
}

/// The signed prekey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedPreKey {
    /// Key id (sent as 3 bytes).
    pub key_id: u32,
    /// The key pair.
    pub key_pair: StoredKeyPair,
    /// XEdDSA signature by the identity key over `0x05 || public`.
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
}

/// Who we are once linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Me {
    /// Phone-number JID with device, e.g. `15550001234:7@s.whatsapp.net`.
    pub id: String,
    /// LID JID with device, if the server sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
    /// Push name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Me {
    /// `(phone number, device)` from `id` (`PHONE:DEV@server` or `PHONE@server`).
    pub fn user_and_device(&self) -> Option<(u64, u32)> {
        let (user, _) = self.id.split_once('@')?;
        let (phone, dev) = match user.split_once(':') {
            Some((p, d)) => (p, d.parse().ok()?),
            None => (user, 0),
        };
        Some((phone.parse().ok()?, dev))
    }
}

/// The ADV account identity the phone signed at pairing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    /// Serialized `ADVDeviceIdentity`.
    #[serde(with = "b64")]
    pub details: Vec<u8>,
    /// The phone's identity key.
    #[serde(with = "b64")]
    pub account_signature_key: Vec<u8>,
    /// The phone's signature.
    #[serde(with = "b64")]
    pub account_signature: Vec<u8>,
    /// Our signature.
    #[serde(with = "b64")]
    pub device_signature: Vec<u8>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").finish_non_exhaustive()
    }
}

/// Everything needed to log in again without a QR code. `Debug` omits all key material.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Creds {
    /// Format version ([`CREDS_VERSION`]).
    pub version: u32,
    /// Long-term Noise static key.
    pub noise_key: StoredKeyPair,
    /// Signal identity key.
    pub signed_identity_key: StoredKeyPair,
    /// Signed prekey.
    pub signed_pre_key: SignedPreKey,
    /// Signal registration id (14 bits).
    pub registration_id: u32,
    /// ADV secret (32 bytes), shared with the phone through the QR code.
    #[serde(with = "b64")]
    pub adv_secret_key: Vec<u8>,
    /// Next prekey id to generate.
    pub next_pre_key_id: u32,
    /// Prekeys with ids below this have been uploaded.
    pub first_unuploaded_pre_key_id: u32,
    /// Set once linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me: Option<Me>,
    /// Set once linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// The phone's platform (`android`, `iphone`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Edge routing info from `<ib><edge_routing>`, sent back in the `ED` pre-intro on connect.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64_opt")]
    pub routing_info: Option<Vec<u8>>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("version", &self.version)
            .field("noiseKey", &self.noise_key)
            .field("registrationId", &self.registration_id)
            .field("me", &self.me)
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

impl Creds {
    /// Fresh, unlinked credentials.
    pub fn generate(rng: &dyn Entropy) -> Self {
        let identity = KeyPair::generate(rng);
        let spk = KeyPair::generate(rng);
        let mut msg = vec![5u8];
        msg.extend_from_slice(&spk.public);
        let signature = identity.sign(&msg, rng).to_vec();
        let reg: [u8; 2] = random_bytes(rng);
        Self {
            version: CREDS_VERSION,
            noise_key: (&KeyPair::generate(rng)).into(),
            signed_identity_key: (&identity).into(),
            signed_pre_key: SignedPreKey {
                key_id: 1,
                key_pair: (&spk).into(),
                signature,
            },
            registration_id: u32::from(u16::from_be_bytes(reg) & 0x3FFF),
            adv_secret_key: random_bytes::<32>(rng).to_vec(),
            next_pre_key_id: 1,
            first_unuploaded_pre_key_id: 1,
            me: None,
            account: None,
            platform: None,
            routing_info: None,
        }
    }

    /// Checks lengths and key consistency; returns the reason for the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != CREDS_VERSION {
            return Err(format!("unsupported version {}", self.version));
        }
        self.noise_key
            .key_pair()
            .map_err(|e| format!("noiseKey: {e}"))?;
        self.signed_identity_key
            .key_pair()
            .map_err(|e| format!("signedIdentityKey: {e}"))?;
        self.signed_pre_key
            .key_pair
            .key_pair()
            .map_err(|e| format!("signedPreKey: {e}"))?;
        if self.signed_pre_key.signature.len() != 64 {
            return Err("signedPreKey.signature is not 64 bytes".into());
        }
        if self.adv_secret_key.len() != 32 {
            return Err("advSecretKey is not 32 bytes".into());
        }
        if let Some(me) = &self.me {
            if me.user_and_device().is_none() {
                return Err(format!("me.id {:?} is not a phone JID", me.id));
            }
            if self.account.is_none() {
                return Err("linked (me set) but account missing".into());
            }
        }
        Ok(())
    }

    /// The Noise static key pair.
    pub fn noise(&self) -> KeyPair {
        // validate() has checked it; fall back to re-deriving from the private half.
        self.noise_key
            .key_pair()
            .unwrap_or_else(|_| KeyPair::from_private(arr32(&self.noise_key.private)))
    }

    /// The identity key pair.
    pub fn identity(&self) -> KeyPair {
        self.signed_identity_key
            .key_pair()
            .unwrap_or_else(|_| KeyPair::from_private(arr32(&self.signed_identity_key.private)))
    }

    /// Whether the account is linked (has a JID).
    pub fn is_linked(&self) -> bool {
        self.me.is_some()
    }
}

fn arr32(b: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    let n = b.len().min(32);
    a[..n].copy_from_slice(&b[..n]);
    a
}

/// Credential storage errors.
#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    /// The file exists but is unreadable as credentials (truncated, edited, wrong keys).
    #[error("credentials file {path} is corrupt ({reason}); it was left untouched{hint}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// A hint naming the backup, if one exists.
        hint: String,
    },
    /// Reading or writing failed.
    #[error("credentials I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The atomic write failed.
    #[error(transparent)]
    Write(#[from] crate::store::AtomicWriteError),
}

/// Removes the temp files `store::write_atomic` leaves in `dir` when its process dies mid-write
/// (`kill -9`, power loss): `.<name>.tmp.<pid>.<n>` whose process is gone. A live writer's temp
/// file is left alone. Returns how many were removed.
pub fn remove_stale_temp_files(dir: &Path) -> std::io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((_, tail)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp.")) else { continue };
        let Some(pid) = tail.split('.').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !crate::store::lockfile::pid_alive(pid) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Stored one-time prekeys: id → key pair.
pub type PreKeys = BTreeMap<u32, StoredKeyPair>;

/// Reads and writes one account's credential files.
#[derive(Debug, Clone)]
pub struct CredsStore {
    dir: PathBuf,
}

impl CredsStore {
    /// The store for `account_id` in the state dir `layout`.
    pub fn new(layout: &StateLayout, account_id: &str) -> Self {
        Self {
            dir: layout.whatsapp_account_dir(account_id),
        }
    }

    /// A store in an explicit directory.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The account directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `creds.json`.
    pub fn creds_path(&self) -> PathBuf {
        self.dir.join("creds.json")
    }

    fn backup_path(&self) -> PathBuf {
        self.dir.join("creds.json.bak")
    }

    fn prekeys_path(&self) -> PathBuf {
        self.dir.join("pre-keys.json")
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Creds, String> {
        let c: Creds = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        c.validate()?;
        let _ = path;
        Ok(c)
    }

    fn read(path: &Path) -> Result<Option<Vec<u8>>, CredsError> {
        match fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CredsError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Applies the one secret-file rule ([`crate::config::secrets::SECRET_FORBIDDEN_BITS`]) to
    /// the account's own files: the directory, `creds.json`, its backup and `pre-keys.json` are
    /// made private (0700 / 0600) with a warning when group or others have any access; a
    /// failed repair is an error (nothing is read from an open file).
    pub fn ensure_private(&self) -> Result<(), CredsError> {
        for path in [self.dir.clone(), self.creds_path(), self.backup_path(), self.prekeys_path()] {
            match crate::config::secrets::make_private(&path) {
                Ok(Some(old)) => tracing::warn!(
                    path = %path.display(),
                    "whatsapp: credentials had mode {old:04o} (group or others had access); made private. If other users could read them, unlink and link again (openclaw channels logout, then login)"
                ),
                Ok(None) => {}
                Err(source) => return Err(CredsError::Io { path, source }),
            }
        }
        Ok(())
    }

    /// Loads `creds.json`: `Ok(None)` when absent, [`CredsError::Corrupt`] when unreadable.
    /// Files too open are repaired first ([`CredsStore::ensure_private`]).
    pub fn load(&self) -> Result<Option<Creds>, CredsError> {
        self.ensure_private()?;
        remove_stale_temp_files(&self.dir).map_err(|source| CredsError::Io { path: self.dir.clone(), source })?;
        let path = self.creds_path();
        let Some(bytes) = Self::read(&path)? else {
            return Ok(None);
        };
        Self::parse(&path, &bytes).map(Some).map_err(|reason| {
            let hint = if self.backup_path().exists() {
                format!(
                    "; the previous good copy is {}",
                    self.backup_path().display()
                )
            } else {
                String::new()
            };
            CredsError::Corrupt { path, reason, hint }
        })
    }

    /// Saves `creds` atomically with mode 0600, first keeping the current good copy as
    /// `creds.json.bak`. Refuses to replace a corrupt file.
    pub fn save(&self, creds: &Creds) -> Result<(), CredsError> {
        let path = self.creds_path();
        if let Some(old) = Self::read(&path)? {
            match Self::parse(&path, &old) {
                Ok(_) => write_atomic(&self.backup_path(), &old, 0o600)?,
                Err(reason) => {
                    return Err(CredsError::Corrupt {
                        path,
                        reason,
                        hint: "; refusing to overwrite it".into(),
                    });
                }
            }
        }
        let json = serde_json::to_vec_pretty(creds).map_err(|e| CredsError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        write_atomic(&path, &json, 0o600)?;
        Ok(())
    }

    /// Loads the stored prekeys (empty when absent). A corrupt or unreadable file is an error,
    /// never an empty map: its private keys are needed for messages sent to prekeys already on
    /// the server, so it must not be replaced.
    pub fn load_prekeys(&self) -> Result<PreKeys, CredsError> {
        let path = self.prekeys_path();
        let Some(bytes) = Self::read(&path)? else {
            return Ok(PreKeys::new());
        };
        serde_json::from_slice(&bytes).map_err(|e| CredsError::Corrupt {
            path,
            reason: e.to_string(),
            hint: "; refusing to replace it (its keys answer messages already addressed to them): restore it from a backup, or unlink and link again (openclaw channels logout, then login)".into(),
        })
    }

    /// Saves the prekeys atomically with mode 0600.
    pub fn save_prekeys(&self, keys: &PreKeys) -> Result<(), CredsError> {
        let path = self.prekeys_path();
        let json = serde_json::to_vec(keys).map_err(|e| CredsError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        write_atomic(&path, &json, 0o600)?;
        Ok(())
    }

    /// Moves the credential files (`creds.json`, its backup, the prekeys) into the subdirectory
    /// `label` and returns it, so the account reads as not linked but nothing is lost (the
    /// phone logged the device out). `Ok(None)` when there were no credentials.
    pub fn retire(&self, label: &str) -> Result<Option<PathBuf>, CredsError> {
        if !self.creds_path().exists() {
            return Ok(None);
        }
        let to = self.dir.join(label);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CredsError::Io { path, source }
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&to).map_err(io(&to))?;
        }
        for from in [self.creds_path(), self.backup_path(), self.prekeys_path()] {
            let Some(name) = from.file_name() else { continue };
            match fs::rename(&from, to.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&from)(e)),
            }
        }
        Ok(Some(to))
    }

    /// Removes every credential file of the account (logout): everything in the directory
    /// except `session.lock`, which the caller holds (deleting it would let a second process
    /// lock a new file while this one still runs). The directory itself stays.
    pub fn remove(&self) -> Result<(), CredsError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CredsError::Io { path, source }
        };
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&self.dir))?;
            if entry.file_name() == "session.lock" {
                continue;
            }
            let path = entry.path();
            let is_dir = entry.file_type().map_err(io(&path))?.is_dir();
            let removed = if is_dir { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    fn linked(rng: &SeededEntropy) -> Creds {
        let mut c = Creds::generate(rng);
        c.me = Some(Me {
            id: "15550001234:7@s.whatsapp.net".into(),
            lid: Some("1234:7@lid".into()),
            name: None,
        });
        c.account = Some(Account {
            details: vec![1],
            account_signature_key: vec![2; 32],
            account_signature: vec![3; 64],
            device_signature: vec![4; 64],
        });
        c
    }

    #[test]
    fn save_load_round_trip_with_mode_0600_and_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredsStore::in_dir(dir.path().join("acct"));
        assert!(store.load().unwrap().is_none());
        let rng = SeededEntropy::new(4);
        let a = Creds::generate(&rng);
        store.save(&a).unwrap();
        let mode = fs::metadata(store.creds_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(store.load().unwrap().unwrap(), a);
        let b = linked(&rng);
        store.save(&b).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), b);
        let bak: Creds =
            serde_json::from_slice(&fs::read(dir.path().join("acct/creds.json.bak")).unwrap())
                .unwrap();
        assert_eq!(bak, a);
        assert_eq!(b.me.unwrap().user_and_device(), Some((15550001234, 7)));
    }

    #[test]
    fn issue14_item15_open_credentials_are_made_private_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredsStore::in_dir(dir.path().join("acct"));
        let rng = SeededEntropy::new(7);
        store.save(&Creds::generate(&rng)).unwrap();
        store.save(&Creds::generate(&rng)).unwrap();
        store.save_prekeys(&PreKeys::new()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        for f in [store.creds_path(), store.backup_path(), store.prekeys_path()] {
            fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert!(store.load().unwrap().is_some());
        assert_eq!(mode(store.dir()), 0o700);
        for f in [store.creds_path(), store.backup_path(), store.prekeys_path()] {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        // Write bits for group or others count too (the same rule as secret files).
        fs::set_permissions(store.creds_path(), fs::Permissions::from_mode(0o620)).unwrap();
        store.load().unwrap();
        assert_eq!(mode(&store.creds_path()), 0o600);
    }

    #[test]
    fn stale_temp_files_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredsStore::in_dir(dir.path());
        store.save(&Creds::generate(&SeededEntropy::new(8))).unwrap();
        // pid 4000000000 is above any pid_max, so never alive; our own pid is.
        let dead = dir.path().join(".creds.json.tmp.4000000000.0");
        let live = dir.path().join(format!(".creds.json.tmp.{}.9", std::process::id()));
        fs::write(&dead, "{").unwrap();
        fs::write(&live, "{").unwrap();
        assert!(store.load().unwrap().is_some());
        assert!(!dead.exists() && live.exists());
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let c = linked(&SeededEntropy::new(6));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains(&B64.encode(&c.adv_secret_key))
                && !dbg.contains(&B64.encode(&c.noise_key.private))
        );
        assert!(!dbg.contains(&format!("{:?}", c.adv_secret_key)));
    }

    #[test]
    fn corrupt_or_partial_file_is_reported_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredsStore::in_dir(dir.path());
        let rng = SeededEntropy::new(5);
        store.save(&Creds::generate(&rng)).unwrap();
        store.save(&Creds::generate(&rng)).unwrap();
        let full = fs::read(store.creds_path()).unwrap();
        // Truncated (a partial write by some other tool).
        fs::write(store.creds_path(), &full[..full.len() / 2]).unwrap();
        let err = store.load().unwrap_err();
        assert!(matches!(err, CredsError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("creds.json.bak"), "{err}");
        assert!(store.save(&Creds::generate(&rng)).is_err());
        assert_eq!(
            fs::read(store.creds_path()).unwrap(),
            &full[..full.len() / 2]
        );
        // Parsable JSON but a public key that does not match its private key.
        let mut c: Creds = serde_json::from_slice(&full).unwrap();
        c.noise_key.public[0] ^= 1;
        fs::write(store.creds_path(), serde_json::to_vec(&c).unwrap()).unwrap();
        assert!(store.load().unwrap_err().to_string().contains("noiseKey"));
    }
}
