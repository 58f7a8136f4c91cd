//! The mock's admin HTTP API (one request per connection, `Connection: close`).

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Fault, Shared, fault, scan, state};

const MAX_BODY: usize = 64 * 1024;

pub(super) async fn serve(shared: Arc<Shared>, mut tcp: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_BODY {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        first.next().unwrap_or_default().to_owned(),
        first.next().unwrap_or_default().to_owned(),
    );
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    while buf.len() < head_end + len {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..buf.len().min(head_end + len)]).into_owned();
    let (status, json) = route(&shared, &method, &path, &body);
    let text = json.to_string();
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = tcp.write_all(resp.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

fn route(
    shared: &Shared,
    method: &str,
    path: &str,
    body: &str,
) -> (&'static str, serde_json::Value) {
    match (method, path) {
        ("GET", "/admin/state") => ("200 OK", state(shared)),
        ("POST", "/admin/scan") | ("POST", "/admin/scan-qr") => match scan(shared, body) {
            Ok(jid) => ("200 OK", serde_json::json!({ "ok": true, "jid": jid })),
            Err(e) => (
                "404 Not Found",
                serde_json::json!({ "ok": false, "error": e }),
            ),
        },
        ("POST", "/admin/pair-code") => match super::enter_pair_code(shared, body) {
            Ok(()) => ("200 OK", serde_json::json!({ "ok": true })),
            Err(e) => (
                "404 Not Found",
                serde_json::json!({ "ok": false, "error": e }),
            ),
        },
        ("POST", "/admin/fault") => match serde_json::from_str::<Fault>(body) {
            Ok(f) => {
                fault(shared, f);
                ("200 OK", serde_json::json!({ "ok": true }))
            }
            Err(e) => (
                "400 Bad Request",
                serde_json::json!({ "ok": false, "error": e.to_string() }),
            ),
        },
        _ => (
            "404 Not Found",
            serde_json::json!({ "ok": false, "error": "no such endpoint" }),
        ),
    }
}
