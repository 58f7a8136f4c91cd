//! The Noise socket: WebSocket + frames + Noise transport, carrying WABinary nodes. Generic over
//! the byte stream so the mock server uses the same code as the client.

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::binary::{DecodeError, Node, marshal, unpack};
use super::cert::{CertError, TrustedRoot, verify_chain};
use super::crypto::{Entropy, KeyPair};
use super::frame::{
    FrameDecoder, FrameError, WA_HEADER, edge_routing_intro, encode_frame, encode_frame_into,
};
use super::noise::{Initiator, NoiseError, TransportReader, TransportWriter};
use super::proto::{HandshakeMessage, handshake_message};

/// WhatsApp Web's WebSocket endpoint.
pub const WA_WEB_URL: &str = "wss://web.whatsapp.com/ws/chat";
/// The Origin WhatsApp Web sends.
pub const WA_WEB_ORIGIN: &str = "https://web.whatsapp.com";

/// How much a WebSocket read asks of the socket at a time. tungstenite zero-fills this much of
/// its read buffer before every read (128 KiB by default): with WhatsApp's small stanzas that
/// memset was most of the connection task's time in a turn (`benches/full_turn.rs`, profiled).
/// A larger frame still arrives whole (the buffer grows to the frame's length), in more reads.
pub const WS_READ_BUFFER: usize = 16 * 1024;

/// The WebSocket settings of the WhatsApp link (both ends in the mock): tungstenite's defaults
/// but for [`WS_READ_BUFFER`].
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(WS_READ_BUFFER)
}

/// Where to connect and which root to trust.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// WebSocket URL.
    pub url: String,
    /// Origin header.
    pub origin: String,
    /// Trusted certificate root.
    pub root: TrustedRoot,
}

impl Default for Endpoint {
    /// The real WhatsApp service.
    fn default() -> Self {
        Self {
            url: WA_WEB_URL.into(),
            origin: WA_WEB_ORIGIN.into(),
            root: TrustedRoot::whatsapp(),
        }
    }
}

/// Transport-level failures.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// WebSocket connect or I/O failure.
    #[error("websocket: {0}")]
    Ws(Box<tokio_tungstenite::tungstenite::Error>),
    /// The peer closed the connection.
    #[error("connection closed")]
    Closed,
    /// The WebSocket could not be opened: DNS, TCP, TLS (the server never saw us).
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server refused the WebSocket upgrade with this HTTP status.
    #[error("the server refused the websocket with HTTP {0}")]
    Refused(u16),
    /// Framing error.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Noise failure (bad handshake or undecryptable frame).
    #[error(transparent)]
    Noise(#[from] NoiseError),
    /// The server's certificate chain was rejected.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A node could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A handshake message was not what the protocol requires.
    #[error("handshake: {0}")]
    Handshake(&'static str),
}

impl From<tokio_tungstenite::tungstenite::Error> for SocketError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::Ws(Box::new(e))
    }
}

/// A WebSocket whose binary messages carry 3-byte-framed data.
pub struct FramedWs<S> {
    ws: WebSocketStream<S>,
    decoder: FrameDecoder,
}

impl<S: AsyncRead + AsyncWrite + Unpin> FramedWs<S> {
    /// Wraps an established WebSocket.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            decoder: FrameDecoder::new(),
        }
    }

    /// Adds bytes already received (e.g. after stripping the intro header).
    pub fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    /// Sends raw bytes as one binary message.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), SocketError> {
        self.ws.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    /// Sends one frame.
    pub async fn send_frame(&mut self, payload: &[u8]) -> Result<(), SocketError> {
        self.send_raw(encode_frame(payload)?).await
    }

    /// Receives the next raw binary message (no framing), for the server's intro.
    pub async fn recv_raw(&mut self) -> Result<Vec<u8>, SocketError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
                Some(Ok(Message::Close(_))) | None => return Err(SocketError::Closed),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Receives the next frame. Cancel-safe: partial data stays buffered.
    pub async fn recv_frame(&mut self) -> Result<Vec<u8>, SocketError> {
        loop {
            if let Some(f) = self.decoder.next_frame() {
                return Ok(f);
            }
            let b = self.recv_raw().await?;
            self.decoder.push(&b);
        }
    }

    /// Closes the WebSocket (best effort).
    pub async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// An established Noise session carrying WABinary nodes.
pub struct NoiseSocket<S> {
    framed: FramedWs<S>,
    writer: TransportWriter,
    reader: TransportReader,
}

impl<S: AsyncRead + AsyncWrite + Unpin> NoiseSocket<S> {
    /// Wraps a framed WebSocket whose handshake produced `writer`/`reader`.
    pub fn new(framed: FramedWs<S>, writer: TransportWriter, reader: TransportReader) -> Self {
        Self {
            framed,
            writer,
            reader,
        }
    }

    /// Encrypts and sends one node.
    pub async fn send(&mut self, node: &Node) -> Result<(), SocketError> {
        let ct = self.writer.encrypt(&marshal(node))?;
        self.framed.send_frame(&ct).await
    }

    /// Sends several nodes in one WebSocket message (several frames per message).
    pub async fn send_batch(&mut self, nodes: &[Node]) -> Result<(), SocketError> {
        let mut out = Vec::new();
        for n in nodes {
            let ct = self.writer.encrypt(&marshal(n))?;
            encode_frame_into(&mut out, &ct)?;
        }
        self.framed.send_raw(out).await
    }

    /// Sends raw bytes unencrypted (the mock's garbage fault).
    pub async fn send_unencrypted_frame(&mut self, bytes: &[u8]) -> Result<(), SocketError> {
        self.framed.send_frame(bytes).await
    }

    /// Receives and decrypts the next node. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Node, SocketError> {
        let f = self.framed.recv_frame().await?;
        let pt = self.reader.decrypt(&f)?;
        Ok(unpack(&pt)?)
    }

    /// Closes the WebSocket.
    pub async fn close(&mut self) {
        self.framed.close().await;
    }
}

/// The client socket type.
pub type ClientSocket = NoiseSocket<MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, runs the Noise XX handshake with `noise_key`, verifies the certificate chain against
/// `ep.root` at `now_unix`, and sends `client_payload` in ClientFinish. With `routing_info` the
/// first message starts with the `ED` edge-routing pre-intro.
pub async fn connect(
    ep: &Endpoint,
    routing_info: Option<&[u8]>,
    noise_key: &KeyPair,
    client_payload: &super::proto::ClientPayload,
    now_unix: u64,
    rng: &dyn Entropy,
) -> Result<ClientSocket, SocketError> {
    if ep.url.starts_with("wss:") {
        // Several crypto providers may be compiled in; pick one explicitly (idempotent).
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut req = ep.url.as_str().into_client_request()?;
    if let Ok(origin) = HeaderValue::from_str(&ep.origin) {
        req.headers_mut().insert("Origin", origin);
    }
    // Nagle off: stanzas are small frames, and Nagle plus the peer's delayed ACK held each
    // reply back ~40 ms (found by benches/full_turn.rs).
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(ws_config()), true).await.map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => SocketError::Refused(resp.status().as_u16()),
        other => SocketError::Unreachable(other.to_string()),
    })?;
    let mut framed = FramedWs::new(ws);

    let (mut init, e_pub) = Initiator::new(KeyPair::generate(rng));
    let hello = HandshakeMessage {
        client_hello: Some(handshake_message::ClientHello {
            ephemeral: Some(e_pub.to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut first = match routing_info {
        Some(r) => edge_routing_intro(r)?,
        None => Vec::new(),
    };
    first.extend_from_slice(&WA_HEADER);
    encode_frame_into(&mut first, &hello.encode_to_vec())?;
    framed.send_raw(first).await?;

    let reply = framed.recv_frame().await?;
    let sh = HandshakeMessage::decode(reply.as_slice())
        .ok()
        .and_then(|m| m.server_hello)
        .ok_or(SocketError::Handshake("expected ServerHello"))?;
    let (Some(e), Some(s), Some(p)) = (sh.ephemeral, sh.r#static, sh.payload) else {
        return Err(SocketError::Handshake("ServerHello missing a field"));
    };
    let opened = init.read_server_hello(&e, &s, &p)?;
    verify_chain(
        &opened.cert_chain,
        &opened.server_static,
        &ep.root,
        now_unix,
    )?;
    let (c_static, c_payload, transport) =
        init.write_client_finish(&opened, noise_key, &client_payload.encode_to_vec())?;
    let finish = HandshakeMessage {
        client_finish: Some(handshake_message::ClientFinish {
            r#static: Some(c_static),
            payload: Some(c_payload),
        }),
        ..Default::default()
    };
    framed.send_frame(&finish.encode_to_vec()).await?;
    let (writer, reader) = transport.into_halves();
    Ok(NoiseSocket::new(framed, writer, reader))
}
