//! The WebSocket upgrade of the control protocol, with the pre-`connect` size limit enforced on
//! the socket itself: until `connect` succeeds, the stream yields at most
//! [`PRECONNECT_READ_BUDGET`] bytes, so an unauthenticated client can never make the gateway
//! buffer more than that (a frame header announcing 15 MiB is cut off after the budget, not
//! buffered whole). After `connect` the budget is lifted and `policy.maxPayload` applies.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::gateway::protocol;

/// Bytes a client may send before `connect` succeeded: the largest pre-connect frame
/// ([`protocol::MAX_PRECONNECT_BYTES`]) plus room for frame headers and control frames.
pub const PRECONNECT_READ_BUDGET: usize = protocol::MAX_PRECONNECT_BYTES + 4096;

/// The read budget of one connection, shared between the stream and the protocol task.
#[derive(Debug)]
pub struct ReadBudget {
    remaining: AtomicUsize,
    lifted: AtomicBool,
}

impl ReadBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Arc<Self> {
        Arc::new(Self { remaining: AtomicUsize::new(bytes), lifted: AtomicBool::new(false) })
    }

    /// Lifts the limit (after a successful `connect`).
    pub fn lift(&self) {
        self.lifted.store(true, Ordering::Release);
    }

    /// True when the client sent more than the budget before it was lifted.
    pub fn exhausted(&self) -> bool {
        !self.lifted.load(Ordering::Acquire) && self.remaining.load(Ordering::Acquire) == 0
    }
}

/// A stream whose reads stop (with an error) once the budget is spent, until it is lifted.
#[derive(Debug)]
pub struct Limited<S> {
    inner: S,
    budget: Arc<ReadBudget>,
}

impl<S> Limited<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, budget: Arc<ReadBudget>) -> Self {
        Self { inner, budget }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.budget.lifted.load(Ordering::Acquire) {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let remaining = self.budget.remaining.load(Ordering::Acquire);
        if remaining == 0 {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "pre-connect size limit exceeded")));
        }
        let mut chunk = [0u8; 8192];
        let want = remaining.min(chunk.len()).min(buf.remaining());
        let mut small = ReadBuf::new(&mut chunk[..want]);
        match Pin::new(&mut self.inner).poll_read(cx, &mut small) {
            Poll::Ready(Ok(())) => {
                let n = small.filled().len();
                buf.put_slice(small.filled());
                self.budget.remaining.fetch_sub(n, Ordering::AcqRel);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The control WebSocket as the protocol task sees it.
pub type ControlSocket = WebSocketStream<Limited<TokioIo<hyper::upgrade::Upgraded>>>;

fn header_has_token(h: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Answers a WebSocket upgrade request with 101 and runs `serve` on the socket; a malformed
/// upgrade gets 400.
pub fn upgrade<F, Fut>(mut req: Request<Body>, serve: F) -> Response
where
    F: FnOnce(ControlSocket, Arc<ReadBudget>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let h = req.headers();
    let key = h.get(header::SEC_WEBSOCKET_KEY).cloned();
    let valid = req.method() == Method::GET
        && header_has_token(h, header::CONNECTION, "upgrade")
        && header_has_token(h, header::UPGRADE, "websocket")
        && h.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = key.filter(|_| valid) else {
        return (StatusCode::BAD_REQUEST, "Bad Request: not a valid WebSocket upgrade").into_response();
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let budget = ReadBudget::new(PRECONNECT_READ_BUDGET);
        let io = Limited::new(TokioIo::new(upgraded), budget.clone());
        // Small reads: tungstenite zero-fills this much of its buffer before each one (128 KiB
        // by default); control frames are small, a larger one grows the buffer.
        let mut config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        config.max_message_size = Some(protocol::MAX_PAYLOAD_BYTES);
        config.max_frame_size = Some(protocol::MAX_PAYLOAD_BYTES);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        serve(ws, budget).await;
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hs = resp.headers_mut();
    hs.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    hs.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hs.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_stop_at_the_budget_until_lifted() {
        let data = vec![7u8; 100_000];
        let budget = ReadBudget::new(1000);
        let mut r = Limited::new(&data[..], budget.clone());
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let err = loop {
            match r.read(&mut buf).await {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got.len(), 1000);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(budget.exhausted());
        budget.lift();
        assert!(!budget.exhausted());
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), 99_000);
    }
}
