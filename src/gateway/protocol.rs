//! Wire types of the control protocol (protocol 4): frames, connect params, errors.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The protocol version this gateway speaks.
pub const PROTOCOL_VERSION: u64 = 4;
/// Largest frame accepted before `connect` succeeded.
pub const MAX_PRECONNECT_BYTES: usize = 64 * 1024;
/// Largest frame accepted after `connect` (advertised as `policy.maxPayload`).
pub const MAX_PAYLOAD_BYTES: usize = 26_214_400;
/// Interval of `tick` events (advertised as `policy.tickIntervalMs`).
pub const TICK_INTERVAL_MS: u64 = 30_000;

/// Close codes used by the protocol.
pub mod close {
    /// Normal close (handshake timeout, client done).
    pub const NORMAL: u16 = 1000;
    /// Protocol error (protocol version mismatch).
    pub const PROTOCOL: u16 = 1002;
    /// Policy violation (auth, pairing, bad handshake).
    pub const POLICY: u16 = 1008;
    /// Message too big (more than the pre-connect limit before `connect`).
    pub const TOO_BIG: u16 = 1009;
    /// Service restart (the gateway is shutting down).
    pub const RESTART: u16 = 1012;
}

/// A request frame.
#[derive(Debug, Clone, Deserialize)]
pub struct ReqFrame {
    /// Always `req`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Correlates the response.
    pub id: Value,
    /// The method.
    pub method: String,
    /// Parameters.
    #[serde(default)]
    pub params: Value,
}

/// An error in a `res` frame.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorShape {
    /// `INVALID_REQUEST`, `NOT_PAIRED`, `UNAVAILABLE`, `FORBIDDEN`, …
    pub code: String,
    /// One sentence.
    pub message: String,
    /// Machine-readable details (`details.code` etc.).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Whether retrying may help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

impl ErrorShape {
    /// An error with details.
    pub fn new(code: &str, message: impl Into<String>, details: Option<Value>) -> Self {
        Self { code: code.into(), message: message.into(), details, retryable: None }
    }
}

/// A `res` frame with a payload.
pub fn res_ok(id: &Value, payload: Value) -> String {
    json!({"type": "res", "id": id, "ok": true, "payload": payload}).to_string()
}

/// A `res` frame with an error.
pub fn res_err(id: &Value, error: &ErrorShape) -> String {
    json!({"type": "res", "id": id, "ok": false, "error": error}).to_string()
}

/// An `event` frame.
pub fn event(name: &str, payload: Value) -> String {
    json!({"type": "event", "event": name, "payload": payload}).to_string()
}

/// `connect.client`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientInfo {
    /// Client id (`cli`, `openclaw-control-ui`, `gateway-client`, …).
    pub id: String,
    /// Client version.
    pub version: String,
    /// Platform.
    pub platform: String,
    /// Mode (`cli`, `ui`, `backend`, …).
    pub mode: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Device family.
    pub device_family: Option<String>,
}

/// `connect.auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectAuth {
    /// The shared gateway token.
    pub token: Option<String>,
    /// Shared secret sent as a password (accepted like `token`).
    pub password: Option<String>,
    /// A device token issued in an earlier `hello-ok`.
    pub device_token: Option<String>,
}

/// `connect.device`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectDevice {
    /// Hex SHA-256 of the public key.
    pub id: String,
    /// Raw Ed25519 public key, base64url.
    pub public_key: String,
    /// Signature over the v3 payload, base64url.
    pub signature: String,
    /// The challenge `ts`.
    pub signed_at: u64,
    /// The challenge nonce.
    pub nonce: String,
}

/// `connect` params.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    /// Lowest protocol the client speaks.
    pub min_protocol: u64,
    /// Highest protocol the client speaks.
    pub max_protocol: u64,
    /// Client info.
    #[serde(default)]
    pub client: ClientInfo,
    /// Requested role (default `operator`).
    #[serde(default)]
    pub role: Option<String>,
    /// Requested scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Credentials.
    #[serde(default)]
    pub auth: Option<ConnectAuth>,
    /// Device proof.
    #[serde(default)]
    pub device: Option<ConnectDevice>,
}
