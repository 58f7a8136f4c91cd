//! The mock's admin HTTP API (one request per connection, `Connection: close`).

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Fault, Shared, fault, groups, link, state};

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

/// Body of `POST /admin/accounts` (and `/admin/contacts`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    phone: String,
    lid: Option<String>,
    name: Option<String>,
}

/// Body of `POST /admin/drain-prekeys`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Drain {
    jid: String,
    leave: usize,
}

/// Body of `POST /admin/link-target`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkTarget {
    account: String,
}

/// Body of `POST /admin/groups`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewGroup {
    subject: String,
    creator: String,
    #[serde(default)]
    participants: Vec<String>,
    /// `"lid"` (default) or `"pn"`.
    addressing_mode: Option<String>,
}

/// Body of `POST /admin/groups/<jid>/participants`: exactly one action with its accounts.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupChange {
    add: Option<Vec<String>>,
    remove: Option<Vec<String>>,
    promote: Option<Vec<String>>,
    demote: Option<Vec<String>>,
}

impl GroupChange {
    fn action(self) -> Option<(groups::Action, Vec<String>)> {
        let mut set = [
            (groups::Action::Add, self.add),
            (groups::Action::Remove, self.remove),
            (groups::Action::Promote, self.promote),
            (groups::Action::Demote, self.demote),
        ]
        .into_iter()
        .filter_map(|(a, v)| v.map(|v| (a, v)));
        let first = set.next();
        if set.next().is_some() {
            return None;
        }
        first
    }
}

fn group_error(e: groups::GroupError) -> (&'static str, serde_json::Value) {
    match e {
        groups::GroupError::NoSuchGroup => fail("404 Not Found", e),
        _ => fail("400 Bad Request", e),
    }
}

fn ok(v: serde_json::Value) -> (&'static str, serde_json::Value) {
    ("200 OK", v)
}

fn fail(status: &'static str, e: impl ToString) -> (&'static str, serde_json::Value) {
    (
        status,
        serde_json::json!({ "ok": false, "error": e.to_string() }),
    )
}

/// `account=PHONE` from a query string.
fn account_param(query: &str) -> Option<&str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "account")
        .map(|(_, v)| v.trim_start_matches("%2B").trim_start_matches('+'))
}

fn route(
    shared: &Shared,
    method: &str,
    target: &str,
    body: &str,
) -> (&'static str, serde_json::Value) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let account = account_param(query);
    match (method, path) {
        ("GET", "/admin/state") => ok(state(shared)),
        ("GET", "/admin/relay") => ok(super::relay::state_json(&shared.lock())),
        ("GET", "/admin/accounts") => ok(super::accounts_json(&shared.lock())),
        ("POST", "/admin/accounts") | ("POST", "/admin/contacts") => {
            match serde_json::from_str::<NewAccount>(body) {
                Ok(a) => match super::create_account(
                    shared,
                    &a.phone,
                    a.lid.as_deref(),
                    a.name.as_deref(),
                ) {
                    Ok(info) => ok(serde_json::json!({ "ok": true, "account": info.json() })),
                    Err(e @ super::AccountError::Exists) => fail("409 Conflict", e),
                    Err(e) => fail("400 Bad Request", e),
                },
                Err(e) => fail("400 Bad Request", e),
            }
        }
        ("POST", "/admin/drain-prekeys") => match serde_json::from_str::<Drain>(body) {
            Ok(d) => match super::drain_prekeys(shared, &d.jid, d.leave) {
                Ok(left) => ok(serde_json::json!({ "ok": true, "available": left })),
                Err(e) => fail("404 Not Found", e),
            },
            Err(e) => fail("400 Bad Request", e),
        },
        ("POST", "/admin/link-target") => match serde_json::from_str::<LinkTarget>(body) {
            Ok(t) => match super::set_link_target(shared, &t.account) {
                Ok(()) => ok(serde_json::json!({ "ok": true })),
                Err(e) => fail("404 Not Found", e),
            },
            Err(e) => fail("400 Bad Request", e),
        },
        ("POST", "/admin/scan") | ("POST", "/admin/scan-qr") => {
            match link::scan(shared, body, account) {
                Ok(jid) => ok(serde_json::json!({ "ok": true, "jid": jid })),
                Err(e) => fail("404 Not Found", e),
            }
        }
        ("POST", "/admin/pair-code") => match link::enter_pair_code(shared, body, account) {
            Ok(()) => ok(serde_json::json!({ "ok": true })),
            Err(e) => fail("404 Not Found", e),
        },
        ("GET", "/admin/groups") => {
            let g = shared.lock();
            ok(g.groups.json(&g.dir))
        }
        ("POST", "/admin/groups") => match serde_json::from_str::<NewGroup>(body) {
            Ok(n) => {
                let lid = match n.addressing_mode.as_deref() {
                    None | Some("lid") => true,
                    Some("pn") => false,
                    Some(_) => return fail("400 Bad Request", "addressingMode is lid or pn"),
                };
                match super::create_group(shared, &n.subject, &n.creator, &n.participants, lid) {
                    Ok(jid) => ok(serde_json::json!({ "ok": true, "jid": jid })),
                    Err(e) => group_error(e),
                }
            }
            Err(e) => fail("400 Bad Request", e),
        },
        ("POST", p) if p.starts_with("/admin/groups/") && p.ends_with("/participants") => {
            let jid = &p["/admin/groups/".len()..p.len() - "/participants".len()];
            let Ok(change) = serde_json::from_str::<GroupChange>(body) else {
                return fail(
                    "400 Bad Request",
                    "body: {\"add\"|\"remove\"|\"promote\"|\"demote\": [accounts]}",
                );
            };
            let Some((action, list)) = change.action() else {
                return fail(
                    "400 Bad Request",
                    "exactly one of add, remove, promote, demote",
                );
            };
            match super::change_group(shared, jid, action, &list) {
                Ok(results) => ok(serde_json::json!({ "ok": true, "results": results })),
                Err(e) => group_error(e),
            }
        }
        ("POST", "/admin/fault") => match serde_json::from_str::<Fault>(body) {
            Ok(f) => {
                fault(shared, f);
                ok(serde_json::json!({ "ok": true }))
            }
            Err(e) => fail("400 Bad Request", e),
        },
        _ => fail("404 Not Found", "no such endpoint"),
    }
}
