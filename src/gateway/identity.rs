//! Device identity of the control protocol: Ed25519 keys, device ids and the signed connect
//! payload (upstream `packages/gateway-client/src/device-auth.ts`, protocol v4).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Why a device proof was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The public key is not 32 bytes of base64url, or not a valid point.
    #[error("device public key invalid")]
    PublicKey,
    /// `device.id` is not the SHA-256 of the public key.
    #[error("device id does not match its public key")]
    IdMismatch,
    /// The signature does not verify over the v3 or v2 payload.
    #[error("device signature invalid")]
    Signature,
    /// The signed nonce is not this connection's challenge.
    #[error("device nonce does not match the challenge")]
    Nonce,
}

/// The fields that the device signs, in upstream's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFields<'a> {
    /// Device id (hex SHA-256 of the raw public key).
    pub device_id: &'a str,
    /// `client.id`.
    pub client_id: &'a str,
    /// `client.mode`.
    pub client_mode: &'a str,
    /// Requested role.
    pub role: &'a str,
    /// Requested scopes, in request order.
    pub scopes: &'a [String],
    /// `device.signedAt` (the challenge `ts`).
    pub signed_at_ms: u64,
    /// The token the client sent (shared or device token), or empty.
    pub token: &'a str,
    /// The challenge nonce.
    pub nonce: &'a str,
    /// `client.platform`.
    pub platform: &'a str,
    /// `client.deviceFamily`.
    pub device_family: &'a str,
}

/// Trims and lowercases ASCII A–Z only, as upstream `normalizeDeviceMetadataForAuth`.
fn norm_meta(s: &str) -> String {
    s.trim().chars().map(|c| c.to_ascii_lowercase()).collect()
}

/// The v3 payload: `v3|deviceId|clientId|clientMode|role|scopes|signedAtMs|token|nonce|platform|deviceFamily`.
pub fn payload_v3(f: &SignedFields<'_>) -> String {
    format!(
        "v3|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        f.device_id,
        f.client_id,
        f.client_mode,
        f.role,
        f.scopes.join(","),
        f.signed_at_ms,
        f.token,
        f.nonce,
        norm_meta(f.platform),
        norm_meta(f.device_family)
    )
}

/// The legacy v2 payload (still accepted): `v2|deviceId|clientId|clientMode|role|scopes|signedAtMs|token|nonce`.
pub fn payload_v2(f: &SignedFields<'_>) -> String {
    format!(
        "v2|{}|{}|{}|{}|{}|{}|{}|{}",
        f.device_id,
        f.client_id,
        f.client_mode,
        f.role,
        f.scopes.join(","),
        f.signed_at_ms,
        f.token,
        f.nonce
    )
}

/// Device id of a raw public key: lowercase hex SHA-256.
pub fn device_id(public_key: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(public_key))
}

/// Decodes a base64url (or standard base64) raw Ed25519 public key.
pub fn decode_public_key(b64: &str) -> Result<[u8; 32], IdentityError> {
    let raw = decode_b64(b64).ok_or(IdentityError::PublicKey)?;
    raw.try_into().map_err(|_| IdentityError::PublicKey)
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let t = s.trim().trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t).ok())
}

/// Verifies a connect proof: id matches key, nonce matches challenge, signature valid (v3 or v2).
pub fn verify(
    public_key_b64: &str,
    signature_b64: &str,
    expected_nonce: &str,
    fields: &SignedFields<'_>,
) -> Result<(), IdentityError> {
    let pk = decode_public_key(public_key_b64)?;
    if device_id(&pk) != fields.device_id.to_ascii_lowercase() {
        return Err(IdentityError::IdMismatch);
    }
    if fields.nonce != expected_nonce {
        return Err(IdentityError::Nonce);
    }
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| IdentityError::PublicKey)?;
    let sig_raw = decode_b64(signature_b64).ok_or(IdentityError::Signature)?;
    let sig = Signature::from_slice(&sig_raw).map_err(|_| IdentityError::Signature)?;
    for payload in [payload_v3(fields), payload_v2(fields)] {
        if key.verify_strict(payload.as_bytes(), &sig).is_ok() {
            return Ok(());
        }
    }
    Err(IdentityError::Signature)
}

/// A device keypair held by a client (the CLI, tests).
#[derive(Clone)]
pub struct DeviceKey {
    key: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.device_id())
    }
}

impl DeviceKey {
    /// A key from 32 secret bytes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(&secret) }
    }
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_secret(rand::random())
    }
    /// The 32 secret bytes (for persisting the client's own identity, mode 0600).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
    /// The raw public key, base64url.
    pub fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes())
    }
    /// The device id.
    pub fn device_id(&self) -> String {
        device_id(&self.key.verifying_key().to_bytes())
    }
    /// Signs the v3 payload; returns base64url.
    pub fn sign_v3(&self, fields: &SignedFields<'_>) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(payload_v3(fields).as_bytes()).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(id: &'a str, scopes: &'a [String]) -> SignedFields<'a> {
        SignedFields {
            device_id: id,
            client_id: "cli",
            client_mode: "cli",
            role: "operator",
            scopes,
            signed_at_ms: 1700000000000,
            token: "tok",
            nonce: "n-1",
            platform: "Linux",
            device_family: "",
        }
    }

    #[test]
    fn payload_shape_matches_upstream() {
        let scopes = vec!["operator.read".to_string(), "operator.write".to_string()];
        assert_eq!(
            payload_v3(&fields("dev", &scopes)),
            "v3|dev|cli|cli|operator|operator.read,operator.write|1700000000000|tok|n-1|linux|"
        );
    }

    #[test]
    fn sign_and_verify_roundtrip_and_tamper() {
        let k = DeviceKey::from_secret([7; 32]);
        let id = k.device_id();
        let scopes = vec!["operator.admin".to_string()];
        let f = fields(&id, &scopes);
        let sig = k.sign_v3(&f);
        assert_eq!(verify(&k.public_key_b64(), &sig, "n-1", &f), Ok(()));
        let mut g = f.clone();
        g.role = "node";
        assert_eq!(verify(&k.public_key_b64(), &sig, "n-1", &g), Err(IdentityError::Signature));
        assert_eq!(verify(&k.public_key_b64(), &sig, "n-2", &f), Err(IdentityError::Nonce));
        let other = DeviceKey::from_secret([8; 32]);
        assert_eq!(verify(&other.public_key_b64(), &sig, "n-1", &f), Err(IdentityError::IdMismatch));
    }
}
