//! Paired and pending devices of the control protocol, persisted as two JSON files in
//! `<state>/devices/` (atomic writes, mode 0600). Device tokens are stored as SHA-256 digests.
//!
//! Every method that depends on time takes `now_ms`, so expiry is tested without sleeping.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{write_atomic, AtomicWriteError, StateLayout};

/// How long a pending pairing request stays valid.
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;
/// At most this many pending requests are kept (the oldest are dropped).
pub const MAX_PENDING: usize = 64;

/// Errors reading or writing the device files.
#[derive(Debug, thiserror::Error)]
pub enum DeviceStoreError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape.
    #[error("{} is corrupt: {source}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A write failed (the old file is intact).
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
    /// No pending request has this id.
    #[error("No pending device request matches {0}.")]
    UnknownRequest(String),
    /// No paired device has this id.
    #[error("No paired device matches {0}.")]
    UnknownDevice(String),
}

/// What a client presented when it connected, kept with a request and a pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// Hex SHA-256 of the public key.
    pub device_id: String,
    /// Raw public key, base64url.
    pub public_key: String,
    /// `client.platform`.
    #[serde(default)]
    pub platform: String,
    /// `client.deviceFamily`.
    #[serde(default)]
    pub device_family: String,
    /// `client.id`.
    #[serde(default)]
    pub client_id: String,
    /// `client.mode`.
    #[serde(default)]
    pub client_mode: String,
    /// `client.displayName`.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A paired device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    /// Identity and client metadata.
    #[serde(flatten)]
    pub info: DeviceInfo,
    /// Approved roles.
    pub roles: Vec<String>,
    /// Approved scopes.
    pub scopes: Vec<String>,
    /// How it was approved: `auto-local`, `cli`, `control`.
    pub approved_via: String,
    /// First seen.
    pub created_at_ms: u64,
    /// Last approval.
    pub approved_at_ms: u64,
    /// SHA-256 (hex) of the current device token, if one was issued.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// When the current token was issued.
    #[serde(default)]
    pub token_issued_at_ms: Option<u64>,
}

/// A pending pairing request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    /// The request id (a UUID) shown to the operator.
    pub request_id: String,
    /// Identity and client metadata.
    #[serde(flatten)]
    pub info: DeviceInfo,
    /// Requested role.
    pub role: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// `not-paired`, `role-upgrade` or `scope-upgrade`.
    pub reason: String,
    /// Peer address at request time.
    #[serde(default)]
    pub remote_addr: Option<String>,
    /// Created.
    pub created_at_ms: u64,
    /// Expires.
    pub expires_at_ms: u64,
}

/// The result of checking a device against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairCheck {
    /// Paired with the requested role and scopes.
    Paired,
    /// Unknown device.
    NotPaired,
    /// Paired, but the role or scopes asked for need approval (`role-upgrade`/`scope-upgrade`).
    Upgrade(&'static str),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PairedFile {
    version: u32,
    devices: Vec<PairedDevice>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    requests: Vec<PendingRequest>,
}

/// The device store.
#[derive(Debug)]
pub struct DeviceStore {
    layout: StateLayout,
    paired: Vec<PairedDevice>,
    pending: Vec<PendingRequest>,
}

fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// True when `granted` covers `wanted`: equal, or `operator.admin` covers every `operator.*`.
pub fn scope_covered(granted: &[String], wanted: &str) -> bool {
    granted.iter().any(|g| g == wanted || (g == "operator.admin" && wanted.starts_with("operator.")))
}

/// Device ids are lowercase hex; clients may send any case.
fn norm_id(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// True when `d` holds `role` and covers every scope in `scopes`.
fn covers(d: &PairedDevice, role: &str, scopes: &[String]) -> bool {
    d.roles.iter().any(|r| r == role) && scopes.iter().all(|s| scope_covered(&d.scopes, s))
}

/// Whether a file name is a temp file of [`write_atomic`] for one of the device files.
fn is_device_temp_file(name: &str) -> bool {
    name.starts_with(".paired.json.tmp.") || name.starts_with(".pending.json.tmp.")
}

impl DeviceStore {
    /// Loads both files (missing files mean empty). Callers hold the state-dir lock, so temp
    /// files of an interrupted write (a `kill -9` mid-write) are stale and removed here, and a
    /// pending request that its device's pairing already covers (an approval interrupted between
    /// its two writes, by an older version that wrote `paired.json` first) is dropped.
    pub fn load(layout: &StateLayout) -> Result<Self, DeviceStoreError> {
        fn read<T: Default + for<'de> Deserialize<'de>>(path: PathBuf) -> Result<T, DeviceStoreError> {
            match std::fs::read_to_string(&path) {
                Ok(t) => serde_json::from_str(&t).map_err(|source| DeviceStoreError::Corrupt { path, source }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
                Err(source) => Err(DeviceStoreError::Read { path, source }),
            }
        }
        if let Ok(entries) = std::fs::read_dir(layout.devices_dir()) {
            for e in entries.flatten() {
                if is_device_temp_file(&e.file_name().to_string_lossy())
                    && let Err(err) = std::fs::remove_file(e.path())
                {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove a stale temp file");
                }
            }
        }
        let paired: PairedFile = read(layout.paired_devices_file())?;
        let pending: PendingFile = read(layout.pending_devices_file())?;
        let mut store = Self { layout: layout.clone(), paired: paired.devices, pending: pending.requests };
        let settled: Vec<PendingRequest> = store
            .pending
            .iter()
            .filter(|r| !store.paired.iter().any(|d| d.info.device_id == r.info.device_id && covers(d, &r.role, &r.scopes)))
            .cloned()
            .collect();
        if settled.len() != store.pending.len() {
            store.write_pending(&settled)?;
            store.pending = settled;
        }
        Ok(store)
    }

    fn write_paired(&self, devices: &[PairedDevice]) -> Result<(), DeviceStoreError> {
        let f = PairedFile { version: 1, devices: devices.to_vec() };
        let bytes = serde_json::to_vec_pretty(&f).unwrap_or_default();
        write_atomic(&self.layout.paired_devices_file(), &bytes, 0o600)?;
        Ok(())
    }

    fn write_pending(&self, requests: &[PendingRequest]) -> Result<(), DeviceStoreError> {
        let f = PendingFile { version: 1, requests: requests.to_vec() };
        let bytes = serde_json::to_vec_pretty(&f).unwrap_or_default();
        write_atomic(&self.layout.pending_devices_file(), &bytes, 0o600)?;
        Ok(())
    }

    /// Replaces the pending list: on disk first, then in memory.
    fn commit_pending(&mut self, requests: Vec<PendingRequest>) -> Result<(), DeviceStoreError> {
        self.write_pending(&requests)?;
        self.pending = requests;
        Ok(())
    }

    /// Replaces the paired list: on disk first, then in memory.
    fn commit_paired(&mut self, devices: Vec<PairedDevice>) -> Result<(), DeviceStoreError> {
        self.write_paired(&devices)?;
        self.paired = devices;
        Ok(())
    }

    /// Drops expired pending requests (persisting if any were dropped).
    pub fn expire(&mut self, now_ms: u64) -> Result<(), DeviceStoreError> {
        let kept: Vec<PendingRequest> = self.pending.iter().filter(|p| p.expires_at_ms > now_ms).cloned().collect();
        if kept.len() != self.pending.len() {
            self.commit_pending(kept)?;
        }
        Ok(())
    }

    /// Paired devices.
    pub fn paired(&self) -> &[PairedDevice] {
        &self.paired
    }

    /// Pending requests not expired at `now_ms`.
    pub fn pending(&self, now_ms: u64) -> Vec<PendingRequest> {
        self.pending.iter().filter(|p| p.expires_at_ms > now_ms).cloned().collect()
    }

    /// The unexpired pending request with this id.
    pub fn pending_request(&self, request_id: &str, now_ms: u64) -> Option<&PendingRequest> {
        self.pending.iter().find(|p| p.request_id == request_id && p.expires_at_ms > now_ms)
    }

    fn find_paired(&self, device_id: &str) -> Option<&PairedDevice> {
        let id = norm_id(device_id);
        self.paired.iter().find(|d| d.info.device_id == id)
    }

    /// Checks whether `device_id` may connect with `role` and `scopes`.
    pub fn check(&self, device_id: &str, role: &str, scopes: &[String]) -> PairCheck {
        match self.find_paired(device_id) {
            None => PairCheck::NotPaired,
            Some(d) if !d.roles.iter().any(|r| r == role) => PairCheck::Upgrade("role-upgrade"),
            Some(d) if !scopes.iter().all(|s| scope_covered(&d.scopes, s)) => PairCheck::Upgrade("scope-upgrade"),
            Some(_) => PairCheck::Paired,
        }
    }

    /// Records (or refreshes) a pending request for this device; one per device.
    pub fn request(
        &mut self,
        mut info: DeviceInfo,
        role: &str,
        scopes: &[String],
        reason: &str,
        remote_addr: Option<String>,
        now_ms: u64,
    ) -> Result<PendingRequest, DeviceStoreError> {
        info.device_id = norm_id(&info.device_id);
        let mut pending: Vec<PendingRequest> = self.pending.iter().filter(|p| p.expires_at_ms > now_ms).cloned().collect();
        let request_id = match pending.iter().position(|p| p.info.device_id == info.device_id) {
            Some(i) => pending.remove(i).request_id,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let req = PendingRequest {
            request_id,
            info,
            role: role.to_string(),
            scopes: scopes.to_vec(),
            reason: reason.to_string(),
            remote_addr,
            created_at_ms: now_ms,
            expires_at_ms: now_ms + PENDING_TTL_MS,
        };
        pending.push(req.clone());
        while pending.len() > MAX_PENDING {
            pending.remove(0);
        }
        self.commit_pending(pending)?;
        Ok(req)
    }

    /// The paired list with `info` paired (merged into an existing pairing), and the record.
    fn with_pairing(&self, info: DeviceInfo, role: &str, scopes: &[String], via: &str, now_ms: u64) -> (Vec<PairedDevice>, PairedDevice) {
        let mut paired = self.paired.clone();
        let dev = match paired.iter_mut().find(|d| d.info.device_id == info.device_id) {
            Some(d) => {
                if !d.roles.iter().any(|r| r == role) {
                    d.roles.push(role.to_string());
                }
                for s in scopes {
                    if !d.scopes.contains(s) {
                        d.scopes.push(s.clone());
                    }
                }
                d.info = info;
                d.approved_via = via.to_string();
                d.approved_at_ms = now_ms;
                d.clone()
            }
            None => {
                let d = PairedDevice {
                    info,
                    roles: vec![role.to_string()],
                    scopes: scopes.to_vec(),
                    approved_via: via.to_string(),
                    created_at_ms: now_ms,
                    approved_at_ms: now_ms,
                    token_sha256: None,
                    token_issued_at_ms: None,
                };
                paired.push(d.clone());
                d
            }
        };
        (paired, dev)
    }

    /// Pairs a device: `pending` (without the requests the pairing settles) is written first,
    /// then `paired`. A crash between the two writes leaves the device neither pending nor
    /// paired with the new grant (it asks again) — never both.
    fn settle(&mut self, pending: Vec<PendingRequest>, paired: Vec<PairedDevice>, dev: &PairedDevice) -> Result<(), DeviceStoreError> {
        let pending: Vec<PendingRequest> =
            pending.into_iter().filter(|r| !(r.info.device_id == dev.info.device_id && covers(dev, &r.role, &r.scopes))).collect();
        if pending != self.pending {
            self.commit_pending(pending)?;
        }
        self.commit_paired(paired)
    }

    /// Pairs a device directly (local auto-approval) and returns the stored record.
    pub fn pair(
        &mut self,
        mut info: DeviceInfo,
        role: &str,
        scopes: &[String],
        via: &str,
        now_ms: u64,
    ) -> Result<PairedDevice, DeviceStoreError> {
        info.device_id = norm_id(&info.device_id);
        let (paired, dev) = self.with_pairing(info, role, scopes, via, now_ms);
        self.settle(self.pending.clone(), paired, &dev)?;
        Ok(dev)
    }

    /// Approves a pending request: pairs the device with the requested role and scopes.
    pub fn approve(&mut self, request_id: &str, via: &str, now_ms: u64) -> Result<PairedDevice, DeviceStoreError> {
        let (pending, req) = self.without_pending(request_id, now_ms)?;
        let (paired, dev) = self.with_pairing(req.info, &req.role, &req.scopes, via, now_ms);
        self.settle(pending, paired, &dev)?;
        Ok(dev)
    }

    /// Rejects a pending request.
    pub fn reject(&mut self, request_id: &str, now_ms: u64) -> Result<PendingRequest, DeviceStoreError> {
        let (pending, req) = self.without_pending(request_id, now_ms)?;
        self.commit_pending(pending)?;
        Ok(req)
    }

    /// The pending list without an unexpired request, and that request (nothing is changed).
    fn without_pending(&self, request_id: &str, now_ms: u64) -> Result<(Vec<PendingRequest>, PendingRequest), DeviceStoreError> {
        let i = self
            .pending
            .iter()
            .position(|p| p.request_id == request_id && p.expires_at_ms > now_ms)
            .ok_or_else(|| DeviceStoreError::UnknownRequest(request_id.to_string()))?;
        let mut pending = self.pending.clone();
        let req = pending.remove(i);
        Ok((pending, req))
    }

    /// Removes a paired device and its token (it must pair again).
    pub fn revoke(&mut self, device_id: &str) -> Result<PairedDevice, DeviceStoreError> {
        let id = norm_id(device_id);
        let i = self
            .paired
            .iter()
            .position(|d| d.info.device_id == id)
            .ok_or_else(|| DeviceStoreError::UnknownDevice(device_id.to_string()))?;
        let mut paired = self.paired.clone();
        let d = paired.remove(i);
        self.commit_paired(paired)?;
        Ok(d)
    }

    /// Issues a fresh device token for a paired device (replacing the old one); returns it.
    pub fn issue_token(&mut self, device_id: &str, now_ms: u64) -> Result<String, DeviceStoreError> {
        let id = norm_id(device_id);
        let token = crate::gateway::token::generate_token();
        let mut paired = self.paired.clone();
        let d = paired
            .iter_mut()
            .find(|d| d.info.device_id == id)
            .ok_or_else(|| DeviceStoreError::UnknownDevice(device_id.to_string()))?;
        d.token_sha256 = Some(sha_hex(token.expose()));
        d.token_issued_at_ms = Some(now_ms);
        self.commit_paired(paired)?;
        Ok(token.expose().to_string())
    }

    /// Checks a device token in constant time (the device id in any case).
    pub fn verify_token(&self, device_id: &str, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let Some(stored) = self.find_paired(device_id).and_then(|d| d.token_sha256.as_ref()) else {
            return false;
        };
        let presented = sha_hex(token);
        presented.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> DeviceInfo {
        DeviceInfo {
            device_id: id.into(),
            public_key: "pk".into(),
            platform: "linux".into(),
            device_family: String::new(),
            client_id: "cli".into(),
            client_mode: "cli".into(),
            display_name: None,
        }
    }

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn request_approve_token_persist() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let mut st = DeviceStore::load(&layout).unwrap();
        assert_eq!(st.check("d1", "operator", &[]), PairCheck::NotPaired);
        let r1 = st.request(info("d1"), "operator", &scopes(&["operator.read"]), "not-paired", None, 1000).unwrap();
        let r2 = st.request(info("d1"), "operator", &scopes(&["operator.read"]), "not-paired", None, 2000).unwrap();
        assert_eq!(r1.request_id, r2.request_id, "one request per device");
        let mut st = DeviceStore::load(&layout).unwrap();
        assert_eq!(st.pending(2000).len(), 1);
        st.approve(&r1.request_id, "cli", 3000).unwrap();
        let t = st.issue_token("d1", 3000).unwrap();
        let st = DeviceStore::load(&layout).unwrap();
        assert_eq!(st.check("d1", "operator", &scopes(&["operator.read"])), PairCheck::Paired);
        assert_eq!(st.check("d1", "operator", &scopes(&["operator.admin"])), PairCheck::Upgrade("scope-upgrade"));
        assert_eq!(st.check("d1", "node", &[]), PairCheck::Upgrade("role-upgrade"));
        assert!(st.verify_token("d1", &t));
        assert!(!st.verify_token("d1", "nope"));
        let text = std::fs::read_to_string(layout.paired_devices_file()).unwrap();
        assert!(!text.contains(&t), "device tokens are stored hashed");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(layout.paired_devices_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn pending_requests_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = DeviceStore::load(&StateLayout::new(dir.path())).unwrap();
        let r = st.request(info("d1"), "operator", &[], "not-paired", None, 0).unwrap();
        assert_eq!(st.pending(PENDING_TTL_MS - 1).len(), 1);
        assert!(st.pending(PENDING_TTL_MS).is_empty());
        assert!(matches!(st.approve(&r.request_id, "cli", PENDING_TTL_MS), Err(DeviceStoreError::UnknownRequest(_))));
        st.expire(PENDING_TTL_MS).unwrap();
        assert!(DeviceStore::load(&StateLayout::new(dir.path())).unwrap().pending(0).is_empty());
    }

    #[test]
    fn role_upgrade_needs_approval_and_approval_merges() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = DeviceStore::load(&StateLayout::new(dir.path())).unwrap();
        st.pair(info("d1"), "operator", &scopes(&["operator.read"]), "auto-local", 0).unwrap();
        assert_eq!(st.check("d1", "node", &[]), PairCheck::Upgrade("role-upgrade"));
        let r = st.request(info("d1"), "node", &[], "role-upgrade", None, 1).unwrap();
        let d = st.approve(&r.request_id, "cli", 2).unwrap();
        assert_eq!(d.roles, vec!["operator".to_string(), "node".to_string()]);
        assert_eq!(st.check("d1", "operator", &scopes(&["operator.read"])), PairCheck::Paired);
        assert_eq!(st.check("d1", "node", &[]), PairCheck::Paired);
    }

    #[test]
    fn reject_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = DeviceStore::load(&StateLayout::new(dir.path())).unwrap();
        let r = st.request(info("d1"), "operator", &[], "not-paired", None, 0).unwrap();
        st.reject(&r.request_id, 1).unwrap();
        assert!(st.pending(1).is_empty());
        st.pair(info("d2"), "operator", &scopes(&["operator.admin"]), "auto-local", 1).unwrap();
        assert_eq!(st.check("d2", "operator", &scopes(&["operator.pairing"])), PairCheck::Paired);
        st.revoke("d2").unwrap();
        assert_eq!(st.check("d2", "operator", &[]), PairCheck::NotPaired);
        assert!(st.revoke("d2").is_err());
    }

    #[test]
    fn issue14_item24_a_failed_write_leaves_memory_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let mut st = DeviceStore::load(&layout).unwrap();
        let r = st.request(info("d1"), "operator", &scopes(&["operator.read"]), "not-paired", None, 0).unwrap();
        // paired.json cannot be replaced (a directory stands in its place).
        std::fs::create_dir_all(layout.paired_devices_file().join("blocker")).unwrap();
        assert!(matches!(st.pair(info("d2"), "operator", &[], "auto-local", 1), Err(DeviceStoreError::Write(_))));
        assert_eq!(st.check("d2", "operator", &[]), PairCheck::NotPaired, "memory follows the disk");
        assert!(st.approve(&r.request_id, "cli", 1).is_err());
        assert_eq!(st.check("d1", "operator", &[]), PairCheck::NotPaired);
        assert!(st.paired().is_empty());
        // pending.json was written first: the request is gone on disk and in memory alike.
        let on_disk: PendingFile = serde_json::from_str(&std::fs::read_to_string(layout.pending_devices_file()).unwrap()).unwrap();
        assert_eq!(on_disk.requests, st.pending(1));
        assert!(st.pending(1).is_empty(), "never pending and paired: the approval is dropped, not half-applied");
        // pending.json blocked too: a request is not kept in memory either.
        std::fs::remove_file(layout.pending_devices_file()).unwrap();
        std::fs::create_dir_all(layout.pending_devices_file().join("blocker")).unwrap();
        assert!(st.request(info("d3"), "operator", &[], "not-paired", None, 2).is_err());
        assert!(st.pending(2).is_empty());
        std::fs::remove_dir_all(layout.paired_devices_file()).unwrap();
        assert!(st.revoke("d1").is_err());
    }

    #[test]
    fn issue14_item23_device_ids_match_in_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = DeviceStore::load(&StateLayout::new(dir.path())).unwrap();
        st.pair(info("ABCDEF01"), "operator", &scopes(&["operator.read"]), "auto-local", 0).unwrap();
        assert_eq!(st.paired()[0].info.device_id, "abcdef01", "stored lowercase");
        let t = st.issue_token("AbCdEf01", 1).unwrap();
        assert!(st.verify_token("ABCDEF01", &t));
        assert!(st.verify_token("abcdef01", &t));
        assert_eq!(st.check("ABCDEF01", "operator", &scopes(&["operator.read"])), PairCheck::Paired);
        st.revoke("ABCDEF01").unwrap();
        assert!(st.paired().is_empty());
    }

    #[test]
    fn issue14_item19_load_removes_temp_files_and_settled_requests() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateLayout::new(dir.path());
        let mut st = DeviceStore::load(&layout).unwrap();
        let r = st.request(info("d1"), "operator", &scopes(&["operator.read"]), "not-paired", None, 0).unwrap();
        // The state an older approve left when killed between its writes: paired and pending.
        let paired = PairedFile { version: 1, devices: vec![st.with_pairing(r.info.clone(), "operator", &r.scopes, "cli", 1).1] };
        std::fs::write(layout.paired_devices_file(), serde_json::to_vec(&paired).unwrap()).unwrap();
        let tmp = layout.devices_dir().join(".paired.json.tmp.4242.0");
        std::fs::write(&tmp, b"{\"version\": 1, \"dev").unwrap();
        let other = layout.devices_dir().join("notes.txt");
        std::fs::write(&other, b"keep").unwrap();
        let st = DeviceStore::load(&layout).unwrap();
        assert!(st.pending(1).is_empty());
        assert_eq!(st.check("d1", "operator", &scopes(&["operator.read"])), PairCheck::Paired);
        assert!(!tmp.exists(), "stale temp files are removed at start");
        assert!(other.exists());
        let on_disk: PendingFile = serde_json::from_str(&std::fs::read_to_string(layout.pending_devices_file()).unwrap()).unwrap();
        assert!(on_disk.requests.is_empty());
    }
}
