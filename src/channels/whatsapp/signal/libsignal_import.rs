//! Import of libsignal-node session records, the `session-<user>.<device>.json` files of a
//! Baileys auth folder (issue 10 item 8), so existing contacts keep talking without re-keying.
//!
//! The file is `JSON.stringify(record.serialize())` (through Baileys' `BufferJSON.replacer`):
//! `{version:"v1", _sessions:{<baseKeyB64>:{registrationId, currentRatchet:{ephemeralKeyPair:
//! {pubKey,privKey}, lastRemoteEphemeralKey, previousCounter, rootKey}, indexInfo:{baseKey,
//! baseKeyType (1 ours, 2 theirs), closed (-1 when open), used, created, remoteIdentityKey},
//! _chains:{<ratchetKeyB64>:{chainKey:{counter, key?}, chainType (1 sending, 2 receiving),
//! messageKeys:{<index>:<b64>}}}, pendingPreKey?:{signedKeyId, baseKey, preKeyId?}}}}`.
//! Keys are base64 of `0x05 ‖ key`; a chain's `counter` is the index of its last derived key
//! (-1 for none). Binary fields may also appear as Baileys' `{type:"Buffer", data}` objects.
//! That layout is a fact observed from the files the peers write (see the vectors test).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::record::{MAX_ARCHIVED_SESSIONS, SessionRecord};
use super::sender_key::{self, SenderKeyRecord, SenderState};
use super::session::{Chain, LocalIdentity, PendingPreKey, ReceivingChain, SessionState};
use crate::channels::whatsapp::crypto::KeyPair;

/// Why a libsignal-node session file cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// A field is missing or has the wrong type.
    #[error("session record field {0} missing or malformed")]
    Field(String),
    /// An unsupported record version.
    #[error("unsupported session record version {0}")]
    Version(String),
    /// The stored ratchet key pair is inconsistent.
    #[error("ratchet key pair does not match its public key")]
    KeyMismatch,
}

fn field<'a>(v: &'a Value, path: &str, name: &str) -> Result<&'a Value, ImportError> {
    v.get(name)
        .ok_or_else(|| ImportError::Field(format!("{path}.{name}")))
}

fn bytes(v: &Value, path: &str) -> Result<Vec<u8>, ImportError> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Buffer") => o
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| ImportError::Field(path.to_string()))?,
        _ => return Err(ImportError::Field(path.to_string())),
    };
    STANDARD
        .decode(s)
        .map_err(|_| ImportError::Field(path.to_string()))
}

fn key32(v: &Value, path: &str) -> Result<[u8; 32], ImportError> {
    bytes(v, path)?
        .try_into()
        .map_err(|_| ImportError::Field(path.to_string()))
}

/// A public key, with or without the `0x05` type byte.
fn public(v: &Value, path: &str) -> Result<[u8; 32], ImportError> {
    let b = bytes(v, path)?;
    match b.as_slice() {
        [0x05, rest @ ..] if rest.len() == 32 => Ok(rest.try_into().unwrap_or([0; 32])),
        rest if rest.len() == 32 => Ok(rest.try_into().unwrap_or([0; 32])),
        _ => Err(ImportError::Field(path.to_string())),
    }
}

fn int(v: &Value, path: &str) -> Result<i64, ImportError> {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .ok_or_else(|| ImportError::Field(path.to_string()))
}

/// A libsignal counter (index of the last derived key, -1 for none) as our next index.
fn next_index(counter: i64) -> u32 {
    (counter + 1).clamp(0, u32::MAX as i64) as u32
}

struct Imported {
    state: SessionState,
    closed: i64,
    used: i64,
}

fn import_entry(local: &LocalIdentity, e: &Value, path: &str) -> Result<Imported, ImportError> {
    let ratchet = field(e, path, "currentRatchet")?;
    let rpath = format!("{path}.currentRatchet");
    let pair = field(ratchet, &rpath, "ephemeralKeyPair")?;
    let our_ratchet = KeyPair::from_private(key32(
        field(pair, &rpath, "privKey")?,
        &format!("{rpath}.ephemeralKeyPair.privKey"),
    )?);
    if public(field(pair, &rpath, "pubKey")?, &rpath)? != our_ratchet.public {
        return Err(ImportError::KeyMismatch);
    }
    let info = field(e, path, "indexInfo")?;
    let ipath = format!("{path}.indexInfo");
    let mut sending = None;
    let mut receiving = Vec::new();
    let chains = field(e, path, "_chains")?
        .as_object()
        .ok_or_else(|| ImportError::Field(format!("{path}._chains")))?;
    for (k, c) in chains {
        let cpath = format!("{path}._chains.{k}");
        let ratchet_key = public(&Value::String(k.clone()), &cpath)?;
        let ck = field(c, &cpath, "chainKey")?;
        let chain = Chain {
            key: match ck.get("key") {
                None | Some(Value::Null) => None,
                Some(v) => Some(key32(v, &format!("{cpath}.chainKey.key"))?),
            },
            next: next_index(int(field(ck, &cpath, "counter")?, &cpath)?),
        };
        match int(field(c, &cpath, "chainType")?, &cpath)? {
            1 => {
                if ratchet_key != our_ratchet.public {
                    // A sending chain for a key we no longer hold cannot be used; skip it.
                    continue;
                }
                sending = Some(chain);
            }
            2 => {
                let mut skipped = Vec::new();
                if let Some(keys) = c.get("messageKeys").and_then(Value::as_object) {
                    for (idx, mk) in keys {
                        let i: u32 = idx.parse().map_err(|_| {
                            ImportError::Field(format!("{cpath}.messageKeys.{idx}"))
                        })?;
                        skipped.push((i, key32(mk, &format!("{cpath}.messageKeys.{idx}"))?));
                    }
                }
                skipped.sort_by_key(|(i, _)| *i);
                receiving.push(ReceivingChain {
                    ratchet_key,
                    chain,
                    skipped,
                });
            }
            _ => return Err(ImportError::Field(format!("{cpath}.chainType"))),
        }
    }
    // libsignal never drops old receiving chains; we keep the newest few (insertion order).
    if receiving.len() > super::session::MAX_RECEIVING_CHAINS {
        receiving.drain(..receiving.len() - super::session::MAX_RECEIVING_CHAINS);
    }
    let pending = match e.get("pendingPreKey") {
        None | Some(Value::Null) => None,
        Some(p) => Some(PendingPreKey {
            pre_key_id: match p.get("preKeyId") {
                None | Some(Value::Null) => None,
                Some(v) => Some(int(v, &format!("{path}.pendingPreKey.preKeyId"))? as u32),
            },
            signed_pre_key_id: int(
                field(p, path, "signedKeyId")?,
                &format!("{path}.pendingPreKey.signedKeyId"),
            )? as u32,
        }),
    };
    let state = SessionState {
        local_identity: local.key_pair.public,
        local_registration_id: local.registration_id,
        remote_identity: public(field(info, &ipath, "remoteIdentityKey")?, &ipath)?,
        remote_registration_id: e.get("registrationId").and_then(Value::as_u64).unwrap_or(0) as u32,
        root_key: key32(field(ratchet, &rpath, "rootKey")?, &rpath)?,
        their_ratchet: public(field(ratchet, &rpath, "lastRemoteEphemeralKey")?, &rpath)?,
        // libsignal keeps -1 as is; on the wire it is the same 32-bit pattern.
        previous_counter: int(field(ratchet, &rpath, "previousCounter")?, &rpath)? as u32,
        our_ratchet,
        sending,
        receiving,
        base_key: public(field(info, &ipath, "baseKey")?, &ipath)?,
        base_key_ours: int(field(info, &ipath, "baseKeyType")?, &ipath)? == 1,
        pending,
    };
    Ok(Imported {
        state,
        closed: info.get("closed").and_then(Value::as_i64).unwrap_or(-1),
        used: info.get("used").and_then(Value::as_i64).unwrap_or(0),
    })
}

/// Imports one `session-*.json` file's text as a [`SessionRecord`]. `local` is our identity
/// (from `creds.json`: `signedIdentityKey` and `registrationId`), which libsignal-node keeps
/// outside the record. The open session becomes current; closed ones are archived, most
/// recently closed first.
pub fn import_session_json(
    local: &LocalIdentity,
    json: &str,
) -> Result<SessionRecord, ImportError> {
    let v: Value = serde_json::from_str(json).map_err(|e| ImportError::Json(e.to_string()))?;
    match v.get("version") {
        Some(Value::String(s)) if s == "v1" => {}
        Some(other) => return Err(ImportError::Version(other.to_string())),
        None => return Err(ImportError::Version("none".into())),
    }
    let sessions = v
        .get("_sessions")
        .and_then(Value::as_object)
        .ok_or_else(|| ImportError::Field("_sessions".into()))?;
    let mut open = Vec::new();
    let mut closed = Vec::new();
    for (k, e) in sessions {
        let imp = import_entry(local, e, &format!("_sessions.{k}"))?;
        if imp.closed == -1 {
            open.push(imp);
        } else {
            closed.push(imp);
        }
    }
    open.sort_by_key(|i| std::cmp::Reverse(i.used));
    closed.sort_by_key(|i| std::cmp::Reverse(i.closed));
    let mut open = open.into_iter();
    let current = open.next().map(|i| i.state);
    // Any further "open" session (libsignal never leaves two) is kept as archived.
    let archived = open
        .chain(closed)
        .map(|i| i.state)
        .take(MAX_ARCHIVED_SESSIONS)
        .collect();
    Ok(SessionRecord { current, archived })
}

/// The address a Baileys `session-*.json` file name stands for:
/// `session-<user>[_<domain type>].<device>.json` (`_1` for LID users, `_128`/`_129` hosted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFileAddress {
    /// The user part (phone number or LID).
    pub user: String,
    /// The domain type suffix, 0 for the plain phone-number domain.
    pub domain_type: u32,
    /// The device id.
    pub device: u32,
}

/// Parses a Baileys session file name; `None` for anything else.
pub fn parse_session_file_name(name: &str) -> Option<SessionFileAddress> {
    let stem = name.strip_prefix("session-")?.strip_suffix(".json")?;
    let (addr, device) = stem.rsplit_once('.')?;
    let device = device.parse().ok()?;
    let (user, domain_type) = match addr.split_once('_') {
        Some((u, d)) => (u, d.parse().ok()?),
        None => (addr, 0),
    };
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(SessionFileAddress {
        user: user.to_string(),
        domain_type,
        device,
    })
}

/// Binary values in the forms Baileys' `BufferJSON` and Node's `Buffer.toJSON` write: a base64
/// string, `{type:"Buffer", data:<base64 or byte array>}`, a byte array, or `{"0":n, …}`.
fn any_bytes(v: &Value, path: &str) -> Result<Vec<u8>, ImportError> {
    let bad = || ImportError::Field(path.to_string());
    match v {
        Value::String(s) => STANDARD.decode(s).map_err(|_| bad()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .filter(|n| *n < 256)
                    .map(|n| n as u8)
                    .ok_or_else(bad)
            })
            .collect(),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Buffer") => {
            any_bytes(o.get("data").ok_or_else(bad)?, path)
        }
        Value::Object(o) => (0..o.len())
            .map(|i| {
                o.get(&i.to_string())
                    .and_then(Value::as_u64)
                    .filter(|n| *n < 256)
                    .map(|n| n as u8)
                    .ok_or_else(bad)
            })
            .collect(),
        _ => Err(bad()),
    }
}

fn any_key32(v: &Value, path: &str) -> Result<[u8; 32], ImportError> {
    any_bytes(v, path)?
        .try_into()
        .map_err(|_| ImportError::Field(path.to_string()))
}

/// Imports a Baileys `sender-key-<group>--<user>--<device>.json` file: a `BufferJSON` Buffer
/// holding the UTF-8 JSON array of SenderKeyStateStructure (`senderKeyId`, `senderChainKey:
/// {iteration, seed}`, `senderSigningKey:{public, private}`, `senderMessageKeys:[{iteration,
/// seed}]`). A state with a private signing key is our own.
pub fn import_sender_key_json(json: &str) -> Result<SenderKeyRecord, ImportError> {
    let outer: Value = serde_json::from_str(json).map_err(|e| ImportError::Json(e.to_string()))?;
    let inner_bytes = any_bytes(&outer, "sender key file")?;
    let inner: Value =
        serde_json::from_slice(&inner_bytes).map_err(|e| ImportError::Json(e.to_string()))?;
    let list = inner
        .as_array()
        .ok_or_else(|| ImportError::Field("sender key states".into()))?;
    let mut states = Vec::new();
    for (n, s) in list.iter().enumerate() {
        let p = format!("[{n}]");
        let chain = field(s, &p, "senderChainKey")?;
        let signing = field(s, &p, "senderSigningKey")?;
        let public = any_bytes(
            field(signing, &p, "public")?,
            &format!("{p}.senderSigningKey.public"),
        )?;
        let signing_public: [u8; 32] = match public.as_slice() {
            [0x05, rest @ ..] if rest.len() == 32 => rest.try_into().unwrap_or([0; 32]),
            rest if rest.len() == 32 => rest.try_into().unwrap_or([0; 32]),
            _ => return Err(ImportError::Field(format!("{p}.senderSigningKey.public"))),
        };
        let signing_private =
            match signing.get("private") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let b = any_bytes(v, &format!("{p}.senderSigningKey.private"))?;
                    if b.is_empty() {
                        None
                    } else {
                        Some(b.try_into().map_err(|_| {
                            ImportError::Field(format!("{p}.senderSigningKey.private"))
                        })?)
                    }
                }
            };
        let mut skipped = Vec::new();
        if let Some(keys) = s.get("senderMessageKeys").and_then(Value::as_array) {
            for (k, mk) in keys.iter().enumerate() {
                let kp = format!("{p}.senderMessageKeys[{k}]");
                skipped.push((
                    int(field(mk, &kp, "iteration")?, &kp)? as u32,
                    any_key32(field(mk, &kp, "seed")?, &kp)?,
                ));
            }
        }
        skipped.sort_by_key(|(i, _)| *i);
        if skipped.len() > sender_key::MAX_SKIPPED_KEYS {
            skipped.drain(..skipped.len() - sender_key::MAX_SKIPPED_KEYS);
        }
        states.push(SenderState {
            key_id: int(field(s, &p, "senderKeyId")?, &p)? as u32,
            iteration: int(field(chain, &p, "iteration")?, &p)? as u32,
            chain_key: any_key32(
                field(chain, &p, "seed")?,
                &format!("{p}.senderChainKey.seed"),
            )?,
            signing_public,
            signing_private,
            skipped,
        });
    }
    if states.len() > sender_key::MAX_STATES {
        states.drain(..states.len() - sender_key::MAX_STATES);
    }
    Ok(SenderKeyRecord { states })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A libsignal-node session file recorded by tests/peers/gen-signal-vectors.mjs.
    fn recorded_session_file() -> String {
        let v: Value =
            serde_json::from_str(include_str!("../../../../tests/peers/signal-vectors.json"))
                .unwrap();
        v["snapshots"][0]["json"].as_str().unwrap().to_string()
    }

    proptest! {
        #[test]
        fn damaged_files_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(),
                                     junk in ".{0,60}") {
            let l = local();
            let mut file = recorded_session_file().into_bytes();
            let i = pos.index(file.len());
            file[i] = byte;
            if let Ok(text) = String::from_utf8(file) {
                let _ = import_session_json(&l, &text);
                let _ = import_sender_key_json(&text);
            }
            let _ = import_session_json(&l, &junk);
            let _ = import_sender_key_json(&junk);
            let _ = parse_session_file_name(&junk);
        }
    }

    #[test]
    fn recorded_file_imports() {
        let r = import_session_json(&local(), &recorded_session_file()).unwrap();
        assert!(r.has_current_session());
    }
    use crate::channels::whatsapp::crypto::SeededEntropy;

    fn local() -> LocalIdentity {
        LocalIdentity {
            key_pair: KeyPair::generate(&SeededEntropy::new(1)),
            registration_id: 5,
        }
    }

    #[test]
    fn session_file_names() {
        let a = |u: &str, d, dev| {
            Some(SessionFileAddress {
                user: u.into(),
                domain_type: d,
                device: dev,
            })
        };
        assert_eq!(
            parse_session_file_name("session-15550009999.0.json"),
            a("15550009999", 0, 0)
        );
        assert_eq!(
            parse_session_file_name("session-123456789012345_1.12.json"),
            a("123456789012345", 1, 12)
        );
        assert_eq!(
            parse_session_file_name("session-15550009999_128.3.json"),
            a("15550009999", 128, 3)
        );
        for bad in [
            "pre-key-1.json",
            "session-.0.json",
            "session-abc.0.json",
            "session-1.x.json",
            "session-1_.0.json",
            "session-1.0",
        ] {
            assert_eq!(parse_session_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sender_key_byte_forms() {
        for v in [
            serde_json::json!("AQID"),
            serde_json::json!([1, 2, 3]),
            serde_json::json!({"type": "Buffer", "data": "AQID"}),
            serde_json::json!({"type": "Buffer", "data": [1, 2, 3]}),
            serde_json::json!({"0": 1, "1": 2, "2": 3}),
        ] {
            assert_eq!(any_bytes(&v, "x").unwrap(), vec![1, 2, 3], "{v}");
        }
        assert!(any_bytes(&serde_json::json!([256]), "x").is_err());
        assert!(import_sender_key_json("[]").is_err());
        assert!(import_sender_key_json(r#"{"type":"Buffer","data":"bm9wZQ=="}"#).is_err());
    }

    #[test]
    fn typed_errors_for_bad_files() {
        let l = local();
        assert!(matches!(
            import_session_json(&l, "nope"),
            Err(ImportError::Json(_))
        ));
        assert!(matches!(
            import_session_json(&l, "{}"),
            Err(ImportError::Version(_))
        ));
        assert!(matches!(
            import_session_json(&l, r#"{"version":"v2","_sessions":{}}"#),
            Err(ImportError::Version(_))
        ));
        assert!(matches!(
            import_session_json(&l, r#"{"version":"v1","_sessions":{"x":{}}}"#),
            Err(ImportError::Field(_))
        ));
        let empty = import_session_json(&l, r#"{"version":"v1","_sessions":{}}"#).unwrap();
        assert!(!empty.has_current_session());
    }
}
