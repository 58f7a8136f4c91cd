//! The HTTP accept loop, with bounds: at most [`MAX_CONNECTIONS`] open HTTP connections, idle
//! ones (no request in flight: before the first request, partial headers, keep-alive between
//! requests) closed after [`IDLE_TIMEOUT`], at most [`MAX_REQUESTS_PER_CONNECTION`] requests per
//! connection, and a drain that never waits on an idle or half-sent connection.
//!
//! When the limit is reached, a new connection evicts the connection that has been idle longest,
//! so a flood of idle sockets cannot take `/health` offline; only when every connection is busy
//! (a request in flight, which needs no token only for the quick routes) is the newcomer closed.
//! An `accept` error (e.g. `EMFILE`) pauses the loop briefly instead of spinning.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Notify;

/// Most HTTP connections open at once. Sized, with [`MAX_WS_CLIENTS`], well below systemd's
/// default 1024-descriptor soft limit (the NixOS unit raises `LimitNOFILE` on top). A constant,
/// not a config key, until a setting is added to the schema.
pub const MAX_CONNECTIONS: usize = 256;
/// Most WebSocket control clients at once (upgrades beyond it get 503).
pub const MAX_WS_CLIENTS: usize = 128;
/// An HTTP connection with no request in flight for this long is closed (idle before the first
/// request, partial request headers, keep-alive between requests).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's own bound on reading one request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (and read buffer) per connection: 256 connections hold at most 16 MiB
/// of buffered headers. Larger heads get 431. (Upstream's Node server allows 16 KiB.)
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// After this many requests on one connection the response says `Connection: close`.
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 1000;
/// How often a connection checks its idle clock.
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// Pause after a failed `accept` (descriptor exhaustion) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// One open connection, as the tracker sees it.
struct Slot {
    /// Requests in flight.
    busy: AtomicUsize,
    /// Milliseconds since the tracker's epoch of the last request start or end.
    last_active_ms: AtomicU64,
    /// Requests served so far.
    served: AtomicU32,
    /// Close now (eviction, idle drain, drain deadline).
    kill: Notify,
    /// Finish the request in flight, then close.
    graceful: Notify,
    /// Set once `kill` was sent (a `Notify` permit may be consumed by an earlier select).
    killed: AtomicBool,
}

/// The open connections.
pub struct Tracker {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    seq: AtomicU64,
    epoch: Instant,
    closed: Notify,
}

impl Default for Tracker {
    fn default() -> Self {
        Self { slots: Mutex::new(HashMap::new()), seq: AtomicU64::new(0), epoch: Instant::now(), closed: Notify::new() }
    }
}

impl Tracker {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Admits a new connection, evicting the longest-idle one at the limit; `None` when every
    /// connection is busy.
    fn admit(&self) -> Option<(u64, Arc<Slot>)> {
        let mut slots = self.slots();
        if slots.len() >= MAX_CONNECTIONS {
            let victim = slots
                .iter()
                .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, s)| s.last_active_ms.load(Ordering::Acquire))
                .map(|(id, _)| *id)?;
            if let Some(s) = slots.remove(&victim) {
                s.killed.store(true, Ordering::Release);
                s.kill.notify_one();
            }
        }
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            busy: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(self.now_ms()),
            served: AtomicU32::new(0),
            kill: Notify::new(),
            graceful: Notify::new(),
            killed: AtomicBool::new(false),
        });
        slots.insert(id, slot.clone());
        Some((id, slot))
    }

    fn remove(&self, id: u64) {
        let mut slots = self.slots();
        slots.remove(&id);
        if slots.is_empty() {
            self.closed.notify_waiters();
        }
    }

    /// Starts the drain: idle connections close now, busy ones after their response.
    fn drain(&self) {
        for s in self.slots().values() {
            if s.busy.load(Ordering::Acquire) == 0 {
                s.killed.store(true, Ordering::Release);
                s.kill.notify_one();
            } else {
                s.graceful.notify_one();
            }
        }
    }

    /// Closes every connection still open.
    fn kill_all(&self) {
        for s in self.slots().values() {
            s.killed.store(true, Ordering::Release);
            s.kill.notify_one();
        }
    }

    /// Waits until no connection is open, at most until `deadline`.
    async fn wait_empty(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let closed = self.closed.notified();
            if self.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                return self.is_empty();
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains: stops accepting, closes
/// idle connections at once, lets busy ones finish until `deadline_after` has passed, and closes
/// the rest.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
    tracker: Arc<Tracker>,
    drain_timeout: Duration,
) {
    tokio::pin!(shutdown);
    let mut last_accept_warning: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some((id, slot)) = tracker.admit() else {
                        tracing::debug!(peer = %peer, "connection refused: every connection is busy");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, peer, app.clone(), tracker.clone(), id, slot));
                }
                Err(e) => {
                    if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(error = %e, open = tracker.len(), "accept failed; retrying (further failures logged once a minute)");
                        last_accept_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    tracker.drain();
    let deadline = tokio::time::Instant::now() + drain_timeout;
    if !tracker.wait_empty(deadline).await {
        tracing::warn!(open = tracker.len(), "drain deadline reached; closing the remaining connections");
        tracker.kill_all();
        let _ = tracker.wait_empty(tokio::time::Instant::now() + Duration::from_secs(1)).await;
    }
}

/// Ends the slot's in-flight count when dropped (also when the request future is cancelled).
struct BusyGuard {
    slot: Arc<Slot>,
    tracker: Arc<Tracker>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.slot.last_active_ms.store(self.tracker.now_ms(), Ordering::Release);
        self.slot.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, app: Router, tracker: Arc<Tracker>, id: u64, slot: Arc<Slot>) {
    let inner = TowerToHyperService::new(app);
    let svc_slot = slot.clone();
    let svc_tracker = tracker.clone();
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        svc_slot.busy.fetch_add(1, Ordering::AcqRel);
        let guard = BusyGuard { slot: svc_slot.clone(), tracker: svc_tracker.clone() };
        let n = svc_slot.served.fetch_add(1, Ordering::AcqRel) + 1;
        req.extensions_mut().insert(ConnectInfo(peer));
        let fut = hyper::service::Service::call(&inner, req);
        async move {
            let mut resp = match fut.await {
                Ok(r) => r,
                Err(e) => match e {},
            };
            if n >= MAX_REQUESTS_PER_CONNECTION {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            drop(guard);
            Ok::<_, Infallible>(resp)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), svc).with_upgrades();
    tokio::pin!(conn);
    let mut idle_check = tokio::time::interval(IDLE_CHECK);
    let mut graceful = false;
    loop {
        if slot.killed.load(Ordering::Acquire) {
            break;
        }
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::trace!(peer = %peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = slot.kill.notified() => break,
            _ = slot.graceful.notified(), if !graceful => {
                graceful = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle_check.tick() => {
                let idle_ms = tracker.now_ms().saturating_sub(slot.last_active_ms.load(Ordering::Acquire));
                if slot.busy.load(Ordering::Acquire) == 0 && idle_ms >= IDLE_TIMEOUT.as_millis() as u64 {
                    tracing::trace!(peer = %peer, "closing idle connection");
                    break;
                }
            }
        }
    }
    tracker.remove(id);
}

/// Counts WebSocket control clients; a [`WsPermit`] holds one place.
#[derive(Debug, Default)]
pub struct WsClients(Arc<AtomicUsize>);

/// One WebSocket client's place, released on drop.
#[derive(Debug)]
pub struct WsPermit(Arc<AtomicUsize>);

impl WsClients {
    /// Takes a place, or `None` at [`MAX_WS_CLIENTS`].
    pub fn try_acquire(&self) -> Option<WsPermit> {
        let mut n = self.0.load(Ordering::Acquire);
        loop {
            if n >= MAX_WS_CLIENTS {
                return None;
            }
            match self.0.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(WsPermit(self.0.clone())),
                Err(cur) => n = cur,
            }
        }
    }

    /// Clients connected now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for WsPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_evicts_the_longest_idle_and_refuses_when_all_busy() {
        let t = Tracker::default();
        let mut slots = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            slots.push(t.admit().unwrap());
        }
        slots[0].1.last_active_ms.store(5, Ordering::Release);
        for (_, s) in &slots[1..] {
            s.last_active_ms.store(10, Ordering::Release);
        }
        slots[3].1.last_active_ms.store(1, Ordering::Release);
        let (_, _) = t.admit().unwrap();
        assert_eq!(t.len(), MAX_CONNECTIONS);
        assert!(slots[3].1.killed.load(Ordering::Acquire), "the longest idle goes first");
        assert!(!slots[0].1.killed.load(Ordering::Acquire));
        // Every remaining connection busy: the newcomer is refused.
        for s in t.slots().values() {
            s.busy.store(1, Ordering::Release);
        }
        assert!(t.admit().is_none());
        assert_eq!(t.len(), MAX_CONNECTIONS);
    }

    #[test]
    fn ws_clients_are_capped() {
        let c = WsClients::default();
        let permits: Vec<_> = (0..MAX_WS_CLIENTS).map(|_| c.try_acquire().unwrap()).collect();
        assert!(c.try_acquire().is_none());
        drop(permits);
        assert_eq!(c.count(), 0);
        assert!(c.try_acquire().is_some());
    }
}
