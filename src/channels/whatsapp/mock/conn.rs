//! One mock-server connection: HTTP admin request or WebSocket + Noise responder + stanza loop.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use super::super::binary::{Node, SERVER_JID};
use super::super::cert::mint_chain;
use super::super::crypto::{KeyPair, random_bytes, xeddsa_verify};
use super::super::frame::{routing_info_of, strip_intro};
use super::super::noise::Responder;
use super::super::payload::is_login;
use super::super::proto::{ClientPayload, HandshakeMessage, handshake_message};
use super::super::socket::{FramedWs, NoiseSocket, SocketError};
use super::accounts::DeviceAddr;
use super::prekey_store::{Bundle, parse_upload};
use super::{Cmd, ConnEntry, PendingPair, Shared, admin, link, relay};

/// Peeks the request head to route it: WebSocket upgrade or admin HTTP.
pub(super) async fn serve(shared: Arc<Shared>, tcp: TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut last = 0;
    let head = loop {
        let n = match tcp.peek(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            break String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        }
        if n == buf.len() {
            return;
        }
        if n == last {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        last = n;
    };
    if head.contains("upgrade: websocket") {
        let refuse = {
            let mut g = shared.lock();
            let now = tokio::time::Instant::now();
            g.attempts.push(now);
            if g.sticky.offline {
                g.refused.push(now);
            }
            g.sticky.offline
        };
        if refuse {
            // Close before the upgrade: to the client the server is unreachable.
            drop(tcp);
            return;
        }
        let _ = serve_ws(shared, tcp).await;
    } else {
        admin::serve(shared, tcp).await;
    }
}

#[allow(clippy::result_large_err)] // the ErrorResponse type is tungstenite's
async fn serve_ws(shared: Arc<Shared>, tcp: TcpStream) -> Result<(), SocketError> {
    let mut origin = None;
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        origin = req
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if req.uri().path() != "/ws/chat" {
            let mut r = ErrorResponse::new(Some("not found".into()));
            *r.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            return Err(r);
        }
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(super::super::socket::ws_config())).await?;
    let mut framed = FramedWs::new(ws);
    let mut intro = Vec::new();
    loop {
        intro.extend(framed.recv_raw().await?);
        if let Some(n) = strip_intro(&intro)? {
            shared.lock().last_routing_info = routing_info_of(&intro).map(hex::encode);
            framed.push(&intro[n..]);
            break;
        }
    }
    let hello = framed.recv_frame().await?;
    let ce = HandshakeMessage::decode(hello.as_slice())
        .ok()
        .and_then(|m| m.client_hello)
        .and_then(|h| h.ephemeral)
        .ok_or(SocketError::Handshake("expected ClientHello"))?;
    let now = (shared.clock)();
    let forge = shared.lock().sticky.forge_cert;
    let chain = if forge {
        mint_chain(
            &KeyPair::generate(shared.rng.as_ref()),
            &shared.server_static.public,
            now,
            shared.rng.as_ref(),
        )
    } else {
        mint_chain(
            &shared.root,
            &shared.server_static.public,
            now,
            shared.rng.as_ref(),
        )
    };
    let (resp, e, s, p) = Responder::respond(
        &ce,
        KeyPair::generate(shared.rng.as_ref()),
        &shared.server_static,
        &chain,
    )?;
    let sh = HandshakeMessage {
        server_hello: Some(handshake_message::ServerHello {
            ephemeral: Some(e.to_vec()),
            r#static: Some(s),
            payload: Some(p),
        }),
        ..Default::default()
    };
    framed.send_frame(&sh.encode_to_vec()).await?;
    let fin = framed.recv_frame().await?;
    let cf = HandshakeMessage::decode(fin.as_slice())
        .ok()
        .and_then(|m| m.client_finish)
        .ok_or(SocketError::Handshake("expected ClientFinish"))?;
    let (Some(cs), Some(cp)) = (cf.r#static, cf.payload) else {
        return Err(SocketError::Handshake("ClientFinish missing a field"));
    };
    let opened = resp.read_client_finish(&cs, &cp)?;
    let payload = ClientPayload::decode(opened.payload.as_slice())
        .map_err(|_| SocketError::Handshake("ClientPayload"))?;
    let (w, r) = opened.transport.into_halves();
    let mut sock = NoiseSocket::new(framed, w, r);

    let (tx, rx) = mpsc::unbounded_channel();
    let id = {
        let mut g = shared.lock();
        g.total += 1;
        g.next_conn += 1;
        g.last_origin = origin;
        let id = g.next_conn;
        g.live.insert(
            id,
            ConnEntry {
                tx,
                pairing: None,
                device: None,
            },
        );
        id
    };
    let r = session(&shared, id, &mut sock, rx, payload, opened.client_static).await;
    let mut g = shared.lock();
    relay::disconnected(&mut g, id);
    g.live.remove(&id);
    r
}

fn result(id: &str) -> Node {
    Node::new("iq")
        .attr("from", "s.whatsapp.net")
        .attr("type", "result")
        .attr("id", id)
}

async fn session(
    shared: &Shared,
    conn: u64,
    sock: &mut NoiseSocket<TcpStream>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    payload: ClientPayload,
    client_static: [u8; 32],
) -> Result<(), SocketError> {
    if !shared.reply_delay.is_zero() {
        tokio::time::sleep(shared.reply_delay).await;
    }
    let fail = {
        let mut g = shared.lock();
        g.sticky.fail_next.take().or(g.sticky.fail_always)
    };
    if let Some(reason) = fail {
        sock.send(&Node::new("failure").attr("reason", reason.to_string()))
            .await?;
        sock.close().await;
        return Ok(());
    }
    let mut device: Option<DeviceAddr> = None;
    if is_login(&payload) {
        shared.lock().last_payload = Some("login");
        let found = {
            let g = shared.lock();
            g.dir
                .find_login(
                    payload.username.unwrap_or(0),
                    payload.device.unwrap_or(0),
                    &client_static,
                )
                .map(|a| (a, g.dir.jid(a, super::accounts::Domain::Lid)))
        };
        match found {
            Some((addr, lid)) => {
                let t = (shared.clock)().to_string();
                // <success>, the edge-routing <ib> and, when nothing waits for the device, the
                // empty-backlog <ib><offline count="0"/>, in one WebSocket message.
                let success = Node::new("success")
                    .attr("t", t.clone())
                    .attr("lid", lid)
                    .attr("creation", t);
                let ib = Node::new("ib").children(vec![Node::new("edge_routing").children(vec![
                    Node::new("routing_info").bytes(super::MOCK_ROUTING_INFO.to_vec()),
                ])]);
                let offline = relay::logged_in(&mut shared.lock(), conn, addr);
                let batch: Vec<Node> = [success, ib].into_iter().chain(offline).collect();
                sock.send_batch(&batch).await?;
                // A passive login gets its backlog after `<active/>`; an active one at once.
                if payload.passive != Some(true) {
                    relay::activate(&mut shared.lock(), conn);
                }
                device = Some(addr);
            }
            None => {
                sock.send(&Node::new("failure").attr("reason", "401"))
                    .await?;
                sock.close().await;
                return Ok(());
            }
        }
    } else {
        shared.lock().last_payload = Some("registration");
        let reg = payload.device_pairing_data.unwrap_or_default();
        let ident: Option<[u8; 32]> = reg.e_ident.as_deref().and_then(|k| k.try_into().ok());
        let spk_ok = match (ident, reg.e_skey_val.as_deref(), reg.e_skey_sig.as_deref()) {
            (Some(i), Some(v), Some(sig)) => xeddsa_verify(&i, &[&[5u8][..], v].concat(), sig),
            _ => false,
        };
        let Some(identity_pub) = ident.filter(|_| spk_ok) else {
            sock.send(&Node::new("failure").attr("reason", "400"))
                .await?;
            sock.close().await;
            return Ok(());
        };
        let refs: Vec<String> = (0..6)
            .map(|_| format!("2@{}", B64.encode(random_bytes::<24>(shared.rng.as_ref()))))
            .collect();
        if let Some(c) = shared.lock().live.get_mut(&conn) {
            c.pairing = Some(PendingPair {
                refs: refs.clone(),
                noise_pub: client_static,
                identity_pub,
                account: None,
                scanned: None,
                code_hello: None,
                primary: None,
            });
        }
        let iq_id = hex::encode(random_bytes::<4>(shared.rng.as_ref()));
        let refs = refs
            .into_iter()
            .map(|r| Node::new("ref").bytes(r.into_bytes()))
            .collect();
        sock.send(
            &Node::new("iq")
                .attr("from", "s.whatsapp.net")
                .attr("type", "set")
                .attr("id", iq_id)
                .attr("xmlns", "md")
                .children(vec![Node::new("pair-device").children(refs)]),
        )
        .await?;
    }

    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None | Some(Cmd::Drop) => return Ok(()),
                Some(Cmd::Send(n)) => sock.send(&n).await?,
                Some(Cmd::Close(n)) => {
                    sock.send(&n).await?;
                    sock.close().await;
                    return Ok(());
                }
                Some(Cmd::Garbage) => sock.send_unencrypted_frame(&random_bytes::<40>(shared.rng.as_ref())).await?,
            },
            node = sock.recv() => {
                let node = node?;
                if shared.lock().sticky.silent {
                    continue;
                }
                if let Some(done) = on_client_node(shared, conn, sock, &node, &mut device).await?
                    && done {
                        return Ok(());
                    }
            }
        }
    }
}

/// Handles one client stanza; `Some(true)` ends the connection.
async fn on_client_node(
    shared: &Shared,
    conn: u64,
    sock: &mut NoiseSocket<TcpStream>,
    node: &Node,
    device: &mut Option<DeviceAddr>,
) -> Result<Option<bool>, SocketError> {
    match node.tag.as_str() {
        "message" if device.is_some() => {
            if let Some(ack) = relay::client_message(shared, conn, node) {
                sock.send(&ack).await?;
            }
            return Ok(None);
        }
        "receipt" if device.is_some() => {
            let ack = relay::client_receipt(shared, conn, node);
            sock.send(&ack).await?;
            return Ok(None);
        }
        "ack" => {
            relay::client_ack(shared, conn, node);
            return Ok(None);
        }
        "chatstate" => {
            relay::client_chatstate(shared, conn, node);
            return Ok(None);
        }
        "iq" => {}
        _ => return Ok(None),
    }
    let id = node.get_attr("id").unwrap_or_default();
    let ty = node.get_attr("type").unwrap_or_default();
    // Clients address the server as the JID `@s.whatsapp.net` (Baileys' S_WHATSAPP_NET).
    if node.get_attr("to") != Some(SERVER_JID) {
        shared.lock().misaddressed += 1;
    }
    if node.child("pair-device-sign").is_some() {
        match link::device_signed(shared, conn, node) {
            None => return Ok(None),
            Some(Ok(_)) => {
                sock.send(&Node::new("stream:error").attr("code", "515"))
                    .await?
            }
            Some(Err(())) => {
                sock.send(&Node::new("stream:error").attr("code", "401"))
                    .await?
            }
        }
        // Let the client read the stream error and hang up itself (up to 2 s) before closing:
        // Baileys handles frames asynchronously, and a close that lands while it is still busy
        // with `pair-success` surfaces as 428 "Connection Terminated" instead of 515 (this made
        // the pairing-code test fail under load). Over a real network the close never beats the
        // frame by microseconds either.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while sock.recv().await.is_ok() {}
        })
        .await;
        sock.close().await;
        return Ok(Some(true));
    }
    if ty == "result" || ty == "error" {
        return Ok(None);
    }
    if let Some(reg) = node.child("link_code_companion_reg") {
        match reg.get_attr("stage") {
            Some("companion_hello") => {
                if let Some(p) = shared
                    .lock()
                    .live
                    .get_mut(&conn)
                    .and_then(|c| c.pairing.as_mut())
                {
                    p.code_hello = Some(node.clone());
                }
                let r =
                    result(id).children(vec![Node::new("link_code_companion_reg").children(vec![
                        Node::new("link_code_pairing_ref").bytes(b"mock-link-code-ref".to_vec()),
                    ])]);
                sock.send(&r).await?;
            }
            Some("companion_finish") => {
                sock.send(&result(id)).await?;
                if link::pair_code_finished(shared, conn, node).is_err() {
                    // What a phone shows for a wrong code; the server then drops the attempt.
                    sock.send(&Node::new("stream:error").attr("code", "401"))
                        .await?;
                    sock.close().await;
                    return Ok(Some(true));
                }
            }
            _ => sock.send(&result(id)).await?,
        }
        return Ok(None);
    }
    let reply = iq_reply(shared, conn, node, device);
    sock.send(&reply).await?;
    Ok(None)
}

/// The answer to an iq from a (registering or logged-in) device.
fn iq_reply(shared: &Shared, conn: u64, node: &Node, device: &mut Option<DeviceAddr>) -> Node {
    let id = node.get_attr("id").unwrap_or_default();
    let ty = node.get_attr("type").unwrap_or_default();
    let xmlns = node.get_attr("xmlns").unwrap_or_default();
    let mut g = shared.lock();
    let dev = *device;
    let bundle_of = |g: &mut super::Inner| {
        dev.and_then(|a| {
            g.dir
                .accounts
                .get_mut(a.account)
                .and_then(|acc| acc.device_mut(a.device))
        })
        .map(|d| {
            let identity = d.identity_pub;
            d.bundle
                .get_or_insert_with(|| Bundle::new(identity))
                .clone()
        })
    };
    match (xmlns, ty) {
        ("encrypt", "get") if node.child("count").is_some() => {
            let n = bundle_of(&mut g).map_or(0, |b| b.available());
            result(id).children(vec![Node::new("count").attr("value", n.to_string())])
        }
        ("encrypt", "get") if node.child("digest").is_some() => match bundle_of(&mut g) {
            Some(b) if b.signed.is_some() => result(id).children(vec![b.digest_node()]),
            _ => error(id, 404, "item-not-found"),
        },
        ("encrypt", "get") if node.child("key").is_some() => {
            let users: Vec<String> = node
                .child("key")
                .map(|k| {
                    k.child_nodes()
                        .iter()
                        .filter_map(|u| u.get_attr("jid").map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let mut list = Vec::new();
            for jid in users {
                let Some((addr, _)) = g.dir.resolve_device(&jid) else {
                    continue;
                };
                let Some(acc) = g.dir.accounts.get_mut(addr.account) else {
                    continue;
                };
                let bundle = if addr.device == 0 {
                    Some(&mut acc.phone_bundle)
                } else {
                    acc.device_mut(addr.device).and_then(|d| d.bundle.as_mut())
                };
                // A device that never uploaded is left out: Baileys skips it (an <error> child
                // would fail the whole answer).
                if let Some(n) = bundle.and_then(|b| b.take_user_node(&jid, shared.rng.as_ref())) {
                    list.push(n);
                    relay::prekeys_taken(&mut g, addr, (shared.clock)());
                }
            }
            result(id).children(vec![Node::new("list").children(list)])
        }
        ("encrypt", "set") => {
            let Some(a) = dev else {
                return error(id, 401, "not-authorized");
            };
            let upload = parse_upload(node);
            let d = g
                .dir
                .accounts
                .get_mut(a.account)
                .and_then(|acc| acc.device_mut(a.device));
            match (upload, d) {
                (Ok(u), Some(d)) => {
                    let identity = d.identity_pub;
                    match d
                        .bundle
                        .get_or_insert_with(|| Bundle::new(identity))
                        .apply(u)
                    {
                        Ok(()) => result(id),
                        Err(e) => error(id, 406, e),
                    }
                }
                (Err(e), _) => error(id, 400, e),
                (_, None) => error(id, 401, "not-authorized"),
            }
        }
        ("w:g2", _) => match dev {
            Some(sender) => relay::group_iq(&mut g, sender, node, (shared.clock)()),
            None => error(id, 401, "not-authorized"),
        },
        ("usync", "get") => match super::usync::answer(&g.dir, node, (shared.clock)()) {
            Some(u) => result(id).children(vec![u]),
            None => error(id, 400, "bad-request"),
        },
        ("privacy", "get") if node.child("privacy").is_some() => {
            // Everyone's default settings; Baileys picks "read" over "read-self" receipts from
            // `readreceipts`.
            let categories = [
                ("last", "all"),
                ("online", "all"),
                ("profile", "all"),
                ("status", "all"),
                ("groupadd", "all"),
                ("readreceipts", "all"),
                ("calladd", "all"),
            ]
            .into_iter()
            .map(|(n, v)| Node::new("category").attr("name", n).attr("value", v))
            .collect();
            result(id).children(vec![Node::new("privacy").children(categories)])
        }
        ("passive", _) => {
            if node.child("active").is_some() {
                relay::activate(&mut g, conn);
            }
            result(id)
        }
        ("md", _) if node.child("remove-companion-device").is_some() => {
            if let Some(a) = device.take() {
                relay::disconnected(&mut g, conn);
                if let Some(c) = g.live.get_mut(&conn) {
                    c.device = None;
                }
                relay::devices_changed(&mut g, a, "remove", (shared.clock)());
                g.dir.unlink(a);
            }
            result(id)
        }
        _ => {
            // Pings and anything else: an empty result.
            if xmlns == "w:p" {
                g.pings += 1;
            }
            result(id)
        }
    }
}

fn error(id: &str, code: u16, text: &str) -> Node {
    Node::new("iq")
        .attr("from", "s.whatsapp.net")
        .attr("type", "error")
        .attr("id", id)
        .children(vec![
            Node::new("error")
                .attr("code", code.to_string())
                .attr("text", text),
        ])
}
