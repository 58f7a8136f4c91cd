//! Import of a linked Baileys session (`useMultiFileAuthState` folder, as OpenClaw's TypeScript
//! gateway keeps it) into our [`Creds`], so a user keeps the link without re-pairing. The field
//! mapping is documented on [`super::creds`] (reference §5.3).
//!
//! Imported: `creds.json` (keys, registration, ADV account, `me`, platform, routing info), the
//! `pre-key-<n>.json` files ([`import_baileys`]) and the Signal sessions `session-*.json`
//! ([`import_sessions`], written to the account store by [`store_sessions`]), so existing
//! contacts keep talking without a retry storm. Not imported: sender keys (groups are separate
//! work) and app-state keys.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use super::creds::{Account, CREDS_VERSION, Creds, Me, PreKeys, SignedPreKey, StoredKeyPair};

/// Why a Baileys folder could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not the JSON Baileys writes, or lacks a field.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The session was never linked (no `me`/`account`): link anew instead.
    #[error("the Baileys session in {0} is not linked")]
    NotLinked(PathBuf),
}

/// Bytes from Baileys' BufferJSON forms: `{"type":"Buffer","data":"<base64>"}`, the older
/// `{"type":"Buffer","data":[n,...]}`, a `{"0":n,"1":n,...}` map, or a plain base64 string.
fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => B64.decode(s).ok(),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Buffer") => {
            match o.get("data")? {
                Value::String(s) => B64.decode(s).ok(),
                Value::Array(a) => a
                    .iter()
                    .map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
                    .collect(),
                _ => None,
            }
        }
        Value::Object(o) => {
            let mut out = Vec::with_capacity(o.len());
            for i in 0..o.len() {
                out.push(u8::try_from(o.get(&i.to_string())?.as_u64()?).ok()?);
            }
            Some(out)
        }
        _ => None,
    }
}

fn key_pair(v: &Value) -> Option<StoredKeyPair> {
    Some(StoredKeyPair {
        private: bytes(v.get("private")?)?,
        public: bytes(v.get("public")?)?,
    })
}

fn read_json(path: &Path) -> Result<Value, ImportError> {
    let text = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| ImportError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads a Baileys auth folder. The result is validated like our own files.
pub fn import_baileys(dir: &Path) -> Result<(Creds, PreKeys), ImportError> {
    let path = dir.join("creds.json");
    let c = read_json(&path)?;
    let invalid = |reason: &str| ImportError::Invalid {
        path: path.clone(),
        reason: reason.to_owned(),
    };
    let (Some(me), Some(account)) = (c.get("me"), c.get("account")) else {
        return Err(ImportError::NotLinked(dir.to_path_buf()));
    };
    let field = |v: &Value, k: &str| {
        v.get(k)
            .and_then(bytes)
            .ok_or_else(|| invalid(&format!("missing or bad {k}")))
    };
    let spk = c
        .get("signedPreKey")
        .ok_or_else(|| invalid("missing signedPreKey"))?;
    let u32_field = |k: &str| {
        c.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let creds = Creds {
        version: CREDS_VERSION,
        noise_key: c
            .get("noiseKey")
            .and_then(key_pair)
            .ok_or_else(|| invalid("bad noiseKey"))?,
        signed_identity_key: c
            .get("signedIdentityKey")
            .and_then(key_pair)
            .ok_or_else(|| invalid("bad signedIdentityKey"))?,
        signed_pre_key: SignedPreKey {
            key_id: spk
                .get("keyId")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            key_pair: spk
                .get("keyPair")
                .and_then(key_pair)
                .ok_or_else(|| invalid("bad signedPreKey.keyPair"))?,
            signature: field(spk, "signature")?,
        },
        registration_id: u32_field("registrationId")
            .ok_or_else(|| invalid("bad registrationId"))?,
        adv_secret_key: field(&c, "advSecretKey")?,
        next_pre_key_id: u32_field("nextPreKeyId").unwrap_or(1),
        first_unuploaded_pre_key_id: u32_field("firstUnuploadedPreKeyId").unwrap_or(1),
        me: Some(Me {
            id: me
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("bad me.id"))?
                .to_owned(),
            lid: me.get("lid").and_then(Value::as_str).map(str::to_owned),
            name: me.get("name").and_then(Value::as_str).map(str::to_owned),
        }),
        account: Some(Account {
            details: field(account, "details")?,
            account_signature_key: field(account, "accountSignatureKey")?,
            account_signature: field(account, "accountSignature")?,
            device_signature: field(account, "deviceSignature")?,
        }),
        platform: c.get("platform").and_then(Value::as_str).map(str::to_owned),
        routing_info: c.get("routingInfo").and_then(bytes),
    };
    creds.validate().map_err(|reason| ImportError::Invalid {
        path: path.clone(),
        reason,
    })?;

    let mut prekeys = PreKeys::new();
    let entries = std::fs::read_dir(dir).map_err(|source| ImportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix("pre-key-")
            .and_then(|s| s.strip_suffix(".json"))
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        let kp = key_pair(&read_json(&e.path())?).ok_or_else(|| ImportError::Invalid {
            path: e.path(),
            reason: "bad key pair".into(),
        })?;
        prekeys.insert(id, kp);
    }
    Ok((creds, prekeys))
}

/// Signal sessions read from a Baileys folder.
#[derive(Debug, Default)]
pub struct SessionImport {
    /// `(device address as the account store keys it, record)`.
    pub sessions: Vec<(String, crate::channels::whatsapp::signal::SessionRecord)>,
    /// Files left out, with why (hosted domains, unreadable records).
    pub skipped: Vec<(String, String)>,
}

/// Reads every `session-<user>[_<domain>].<device>.json` of `dir` with our identity from `creds`.
/// Phone-number (`_0`/none) and LID (`_1`) sessions are imported; others are skipped and listed.
pub fn import_sessions(dir: &Path, creds: &Creds) -> Result<SessionImport, ImportError> {
    use crate::channels::whatsapp::signal::libsignal_import::{import_session_json, parse_session_file_name};
    let local = crate::channels::whatsapp::signal::LocalIdentity {
        key_pair: creds.identity(),
        registration_id: creds.registration_id,
    };
    let mut out = SessionImport::default();
    let entries = std::fs::read_dir(dir).map_err(|source| ImportError::Io { path: dir.to_path_buf(), source })?;
    let mut names: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| n.starts_with("session-"))
        .collect();
    names.sort();
    for (name, path) in names {
        let Some(addr) = parse_session_file_name(&name) else {
            out.skipped.push((name, "not a session file name".into()));
            continue;
        };
        let server = match addr.domain_type {
            0 => "s.whatsapp.net",
            1 => "lid",
            d => {
                out.skipped.push((name, format!("domain type {d} is not supported")));
                continue;
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ImportError::Io { path: path.clone(), source })?;
        match import_session_json(&local, &text) {
            Ok(rec) => {
                let address = if addr.device == 0 {
                    format!("{}@{server}", addr.user)
                } else {
                    format!("{}:{}@{server}", addr.user, addr.device)
                };
                out.sessions.push((address, rec));
            }
            Err(e) => out.skipped.push((name, e.to_string())),
        }
    }
    Ok(out)
}

/// Writes imported sessions (and their remote identities, trusted on first use) into the
/// account store in one transaction. An address that already has a session keeps it.
pub fn store_sessions(
    store: &mut crate::channels::whatsapp::account::store::AccountStore,
    import: &SessionImport,
    now_ms: u64,
) -> Result<usize, crate::channels::whatsapp::account::store::StoreError> {
    use crate::channels::whatsapp::account::store::SessionRecord as Stored;
    use crate::channels::whatsapp::signal::record::RECORD_FORMAT_VERSION;
    store.transaction(|ops| {
        let mut n = 0;
        for (addr, rec) in &import.sessions {
            if ops.session(addr)?.is_some() {
                continue;
            }
            ops.put_session(addr, &Stored { version: u32::from(RECORD_FORMAT_VERSION), bytes: rec.to_bytes() }, now_ms)?;
            if let Some(id) = rec.remote_identity() {
                ops.trust_identity(addr, &id, now_ms)?;
            }
            n += 1;
        }
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_json_forms() {
        assert_eq!(
            bytes(&serde_json::json!({"type": "Buffer", "data": "AQID"})),
            Some(vec![1, 2, 3])
        );
        assert_eq!(
            bytes(&serde_json::json!({"type": "Buffer", "data": [1, 2, 3]})),
            Some(vec![1, 2, 3])
        );
        assert_eq!(
            bytes(&serde_json::json!({"0": 1, "1": 2})),
            Some(vec![1, 2])
        );
        assert_eq!(bytes(&serde_json::json!("AQID")), Some(vec![1, 2, 3]));
        assert_eq!(
            bytes(&serde_json::json!({"type": "Buffer", "data": [300]})),
            None
        );
        assert_eq!(bytes(&serde_json::json!(5)), None);
    }

    #[test]
    fn unlinked_and_missing_folders_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            import_baileys(dir.path()),
            Err(ImportError::Io { .. })
        ));
        std::fs::write(dir.path().join("creds.json"), r#"{"noiseKey":{}}"#).unwrap();
        assert!(matches!(
            import_baileys(dir.path()),
            Err(ImportError::NotLinked(_))
        ));
        std::fs::write(dir.path().join("creds.json"), "{").unwrap();
        assert!(matches!(
            import_baileys(dir.path()),
            Err(ImportError::Invalid { .. })
        ));
    }
}
