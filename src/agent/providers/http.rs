//! The HTTP client of the providers.
//!
//! **Choice:** hyper-util's pooled `legacy::Client` over the `hyper` 1.x that axum already
//! brings, with `hyper-rustls` for HTTPS, built explicitly on rustls' **ring** provider and the
//! webpki root store. That adds four small crates (hyper-rustls, want, try-lock,
//! futures-channel) and no C build. `reqwest` 0.13 was the alternative: its default TLS is
//! rustls on aws-lc-rs (a second crypto provider and a ~2.5 min C build); configured without a
//! provider it would still bring its own stack of URL, redirect and decompression layers we do
//! not use. Everything the providers need — a POST with headers, a streamed body, a GET — is a
//! few lines over hyper.
//!
//! Timeouts: `connect` bounds the TCP (and TLS) connection; `idle` bounds the wait for the
//! response head and then for every body chunk (the stream-idle watchdog; upstream uses 120 s,
//! 300 s for local providers).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Connect and idle timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Bound on establishing a connection.
    pub connect: Duration,
    /// Bound on waiting for the response head, and then for each body chunk.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(10), idle: Duration::from_secs(120) }
    }
}

/// Which wait timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Connecting.
    Connect,
    /// Waiting for the response head.
    Response,
    /// Waiting for the next chunk of a streamed body.
    Stream,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::Response => "waiting for the response",
            TimeoutPhase::Stream => "waiting for the next streamed chunk",
        })
    }
}

/// A transport failure (no HTTP status was received, or the body broke off).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The URL does not parse or has no host.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A wait exceeded its timeout.
    #[error("timed out after {after:?} {phase}")]
    Timeout {
        /// Which wait.
        phase: TimeoutPhase,
        /// The timeout.
        after: Duration,
    },
    /// The exchange failed after connecting.
    #[error("{0}")]
    Io(String),
}

/// A response whose body has not been read yet.
#[derive(Debug)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    body: Incoming,
    idle: Duration,
}

impl Response {
    /// The next chunk of the body, `None` at its end; each wait bounded by the idle timeout.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            let frame = tokio::time::timeout(self.idle, self.body.frame())
                .await
                .map_err(|_| TransportError::Timeout { phase: TimeoutPhase::Stream, after: self.idle })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(TransportError::Io(error_chain(&e))),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The whole body, at most `limit` bytes (the rest is dropped).
    pub async fn text(mut self, limit: usize) -> Result<String, TransportError> {
        let mut buf = Vec::new();
        while let Some(c) = self.chunk().await? {
            let room = limit.saturating_sub(buf.len());
            buf.extend_from_slice(&c[..c.len().min(room)]);
            if buf.len() >= limit {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// A pooled HTTP/1.1 client (HTTP and HTTPS).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("timeouts", &self.timeouts).finish()
    }
}

impl HttpClient {
    /// A client with these timeouts. Fails only if rustls refuses the ring provider.
    pub fn new(timeouts: Timeouts) -> Result<Self, TransportError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeouts.connect));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| TransportError::Connect(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(https);
        Ok(Self { client, timeouts })
    }

    /// The timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sends a request and waits (bounded) for the response head.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, TransportError> {
        let invalid = |reason: String| TransportError::InvalidUrl { url: url.to_string(), reason };
        let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        if uri.host().is_none() {
            return Err(invalid("no host".into()));
        }
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            let name = HeaderName::try_from(k.as_str()).map_err(|e| invalid(format!("header {k}: {e}")))?;
            let value = HeaderValue::try_from(v.as_str()).map_err(|_| invalid(format!("header {k}: invalid value")))?;
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| invalid(e.to_string()))?;
        // The connect timeout is the connector's; the overall wait for the head is bounded by
        // connect + idle so a slow connect is reported as such.
        let wait = self.timeouts.connect + self.timeouts.idle;
        let resp = match tokio::time::timeout(wait, self.client.request(req)).await {
            Err(_) => return Err(TransportError::Timeout { phase: TimeoutPhase::Response, after: self.timeouts.idle }),
            Ok(Err(e)) if e.is_connect() => {
                let text = error_chain(&e);
                if text.contains("timed out") || text.contains("timeout") {
                    return Err(TransportError::Timeout { phase: TimeoutPhase::Connect, after: self.timeouts.connect });
                }
                return Err(TransportError::Connect(text));
            }
            Ok(Err(e)) => return Err(TransportError::Io(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let (parts, body) = resp.into_parts();
        Ok(Response { status: parts.status, headers: parts.headers, body, idle: self.timeouts.idle })
    }
}

/// An error and its sources, `: `-joined, without repeats.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}
