//! A control-protocol client (used by the CLI and the tests): open, answer the challenge with
//! `connect` (token and/or signed device identity), then request/response.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::gateway::identity::{DeviceKey, SignedFields};
use crate::gateway::protocol::PROTOCOL_VERSION;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Client-side failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway is not reachable.
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable {
        /// URL.
        url: String,
        /// Cause.
        reason: String,
    },
    /// The gateway closed the connection.
    #[error("gateway closed the connection ({code}): {reason}")]
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The gateway answered with an error.
    #[error("{code}: {message}")]
    Rejected {
        /// Error code.
        code: String,
        /// Message.
        message: String,
        /// The whole error object.
        error: Value,
        /// The close frame that followed, if any.
        close: Option<(u16, String)>,
    },
    /// A protocol violation or I/O error.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("timed out waiting for the gateway")]
    Timeout,
}

/// What to present in `connect`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Shared gateway token.
    pub token: Option<String>,
    /// Device token from an earlier `hello-ok`.
    pub device_token: Option<String>,
    /// Device identity to sign with.
    pub device: Option<DeviceKey>,
    /// Role.
    pub role: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// Protocol range.
    pub min_protocol: u64,
    /// Protocol range.
    pub max_protocol: u64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            token: None,
            device_token: None,
            device: None,
            role: "operator".into(),
            scopes: vec![],
            client_id: "cli".into(),
            client_mode: "cli".into(),
            min_protocol: PROTOCOL_VERSION,
            max_protocol: PROTOCOL_VERSION,
        }
    }
}

/// An open connection.
pub struct Conn {
    ws: Ws,
    /// The `connect.challenge` payload.
    pub challenge: Value,
    next_id: u64,
    timeout: Duration,
}

/// One received frame or the close.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A JSON frame.
    Frame(Value),
    /// The close frame (code, reason), or `(1006, "")` without one.
    Closed(u16, String),
}

impl Conn {
    /// Opens `url` and reads the challenge.
    pub async fn open(url: &str, timeout: Duration) -> Result<Conn, ClientError> {
        let fut = tokio_tungstenite::connect_async(url);
        let (ws, _) = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(|e| ClientError::Unreachable { url: url.to_string(), reason: e.to_string() })?;
        let mut c = Conn { ws, challenge: Value::Null, next_id: 0, timeout };
        match c.recv().await? {
            Incoming::Frame(v) if v["event"] == "connect.challenge" => c.challenge = v["payload"].clone(),
            Incoming::Frame(v) => return Err(ClientError::Protocol(format!("expected connect.challenge, got {v}"))),
            Incoming::Closed(code, reason) => return Err(ClientError::Closed { code, reason }),
        }
        Ok(c)
    }

    /// The challenge nonce.
    pub fn nonce(&self) -> String {
        self.challenge["nonce"].as_str().unwrap_or_default().to_string()
    }

    /// Sends any JSON value as a text frame.
    pub async fn send_json(&mut self, v: &Value) -> Result<(), ClientError> {
        self.ws.send(Message::Text(v.to_string().into())).await.map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Receives the next frame or the close.
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        loop {
            let next = tokio::time::timeout(self.timeout, self.ws.next()).await.map_err(|_| ClientError::Timeout)?;
            match next {
                None => return Ok(Incoming::Closed(1006, String::new())),
                Some(Err(e)) => return Err(ClientError::Protocol(e.to_string())),
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(&t).map(Incoming::Frame).map_err(|e| ClientError::Protocol(e.to_string()));
                }
                Some(Ok(Message::Close(f))) => {
                    return Ok(match f {
                        Some(f) => Incoming::Closed(f.code.into(), f.reason.to_string()),
                        None => Incoming::Closed(1005, String::new()),
                    });
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Builds `connect` params for this connection's challenge.
    pub fn connect_params(&self, o: &ConnectOptions) -> Value {
        let nonce = self.nonce();
        let ts = self.challenge["ts"].as_u64().unwrap_or(0);
        let platform = std::env::consts::OS;
        let mut auth = serde_json::Map::new();
        if let Some(t) = &o.token {
            auth.insert("token".into(), json!(t));
        }
        if let Some(t) = &o.device_token {
            auth.insert("deviceToken".into(), json!(t));
        }
        let mut p = json!({
            "minProtocol": o.min_protocol,
            "maxProtocol": o.max_protocol,
            "client": {"id": o.client_id, "version": env!("CARGO_PKG_VERSION"), "platform": platform, "mode": o.client_mode},
            "role": o.role,
            "scopes": o.scopes,
            "auth": auth,
        });
        if let Some(k) = &o.device {
            let id = k.device_id();
            let sig_token = o.token.clone().or_else(|| o.device_token.clone()).unwrap_or_default();
            let fields = SignedFields {
                device_id: &id,
                client_id: &o.client_id,
                client_mode: &o.client_mode,
                role: &o.role,
                scopes: &o.scopes,
                signed_at_ms: ts,
                token: &sig_token,
                nonce: &nonce,
                platform,
                device_family: "",
            };
            p["device"] = json!({"id": id, "publicKey": k.public_key_b64(), "signature": k.sign_v3(&fields), "signedAt": ts, "nonce": nonce});
        }
        p
    }

    /// Sends a request and waits for its response (events in between are skipped).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        self.send_json(&json!({"type": "req", "id": id, "method": method, "params": params})).await?;
        loop {
            match self.recv().await? {
                Incoming::Frame(v) if v["type"] == "res" && v["id"] == id.as_str() => {
                    if v["ok"] == true {
                        return Ok(v["payload"].clone());
                    }
                    let error = v["error"].clone();
                    let close = match tokio::time::timeout(Duration::from_millis(200), self.ws.next()).await {
                        Ok(Some(Ok(Message::Close(Some(f))))) => Some((u16::from(f.code), f.reason.to_string())),
                        _ => None,
                    };
                    return Err(ClientError::Rejected {
                        code: error["code"].as_str().unwrap_or("").to_string(),
                        message: error["message"].as_str().unwrap_or("").to_string(),
                        error,
                        close,
                    });
                }
                Incoming::Frame(_) => continue,
                Incoming::Closed(code, reason) => return Err(ClientError::Closed { code, reason }),
            }
        }
    }

    /// Sends `connect` and returns the `hello-ok` payload.
    pub async fn connect(&mut self, o: &ConnectOptions) -> Result<Value, ClientError> {
        let p = self.connect_params(o);
        self.request("connect", p).await
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Opens and connects in one step.
pub async fn connect(url: &str, o: &ConnectOptions, timeout: Duration) -> Result<(Conn, Value), ClientError> {
    let mut c = Conn::open(url, timeout).await?;
    let hello = c.connect(o).await?;
    Ok((c, hello))
}
