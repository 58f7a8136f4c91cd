//! Glue between the pure relay parts ([`super::route`], [`super::offline`],
//! [`super::prekey_store`], [`super::usync`]) and the live connections: which device is online
//! on which connection, delivery to a connection or a mailbox, login backlogs, acks, counters.

use std::collections::{HashMap, HashSet, VecDeque};

use super::super::binary::{Node, SERVER_JID};
use super::accounts::{DeviceAddr, Domain};
use super::groups::parse_group_jid;
use super::offline::{Mailbox, offline_ib};
use super::route::{self, Delivery};
use super::{Cmd, Inner, Shared};

/// How many routed stanzas `/admin/relay` remembers.
const RECENT: usize = 200;

/// A device's live connection.
#[derive(Debug, Clone, Copy)]
struct Online {
    conn: u64,
    /// Backlog delivered and live routing on (after `<active/>`, or at once for a non-passive
    /// login).
    active: bool,
    /// `<ib><offline>` already went out with `<success>` (nothing was waiting at login).
    ib_sent: bool,
}

/// The relay's mutable state (inside the mock's lock).
#[derive(Default)]
pub(super) struct RelayState {
    online: HashMap<DeviceAddr, Online>,
    mail: HashMap<DeviceAddr, Mailbox>,
    /// Stanzas each device sent (messages and receipts).
    sent: HashMap<DeviceAddr, u64>,
    /// Stanzas addressed to each account's phone (device 0), which takes them silently.
    phone_took: HashMap<usize, u64>,
    /// Metadata of the last routed stanzas (never content).
    recent: VecDeque<serde_json::Value>,
    /// `<to>` entries dropped because they named no device of the sender or recipient.
    dropped: u64,
    /// Pairs of accounts that exchanged messages (they hear of each other's device changes).
    peers: HashSet<(usize, usize)>,
    /// Server notifications sent.
    notifications: u64,
    /// Chat states (typing) written to live devices.
    chatstates: u64,
}

fn enc_types(n: &Node) -> Vec<String> {
    n.child_nodes()
        .iter()
        .filter(|e| e.tag == "enc")
        .filter_map(|e| e.get_attr("type").map(str::to_owned))
        .collect()
}

/// Writes or queues `d` and records it.
fn deliver(g: &mut Inner, d: Delivery) {
    let to_jid = g.dir.jid(d.to, Domain::Pn);
    let mut meta = serde_json::json!({
        "tag": d.node.tag,
        "id": d.node.get_attr("id"),
        "from": d.node.get_attr("from"),
        "to": to_jid,
        "type": d.node.get_attr("type"),
        "enc": enc_types(&d.node),
        // When the relay routed it (unix ms, sub-millisecond): benches/full_turn.rs measures an
        // assistant's own share of a turn from here.
        "atMs": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    });
    let r = &mut g.relay;
    if d.to.device == 0 {
        *r.phone_took.entry(d.to.account).or_default() += 1;
        meta["outcome"] = "phone".into();
    } else {
        let online = r.online.get(&d.to).filter(|o| o.active).map(|o| o.conn);
        let tx = online.and_then(|c| g.live.get(&c)).map(|c| c.tx.clone());
        let mailbox = r.mail.entry(d.to).or_default();
        match mailbox.offer(d.node, tx.is_some()) {
            Some(node) => {
                meta["outcome"] = "delivered".into();
                if let Some(tx) = tx {
                    // A closed channel means the connection is ending; `disconnected` requeues.
                    let _ = tx.send(Cmd::Send(node));
                }
            }
            None => meta["outcome"] = "queued".into(),
        }
    }
    if r.recent.len() == RECENT {
        r.recent.pop_front();
    }
    r.recent.push_back(meta);
}

/// Device `addr` logged in on connection `conn` (not active yet). Returns the `<ib><offline
/// count="0"/>` to send with `<success>` when nothing waits for the device (the server ends an
/// empty backlog at once); otherwise the backlog and its `<ib>` follow `<active/>`.
pub(super) fn logged_in(g: &mut Inner, conn: u64, addr: DeviceAddr) -> Option<Node> {
    if let Some(c) = g.live.get_mut(&conn) {
        c.device = Some(addr);
    }
    let mailbox = g.relay.mail.entry(addr).or_default();
    let replaced = g.relay.online.get(&addr).is_some_and(|o| o.active);
    if replaced {
        // The older connection's unacknowledged stanzas are redelivered on this one.
        mailbox.disconnected();
    }
    let empty = mailbox.queued() == 0;
    g.relay.online.insert(
        addr,
        Online {
            conn,
            active: false,
            ib_sent: empty,
        },
    );
    empty.then(|| offline_ib(0))
}

/// The device on `conn` is ready for stanzas: write its backlog in order and the `<ib><offline>`
/// that ends it (unless it went with `<success>` and nothing arrived since). Only the first call
/// per login does anything.
pub(super) fn activate(g: &mut Inner, conn: u64) {
    let Some(addr) = g.live.get(&conn).and_then(|c| c.device) else {
        return;
    };
    let Some(o) = g
        .relay
        .online
        .get_mut(&addr)
        .filter(|o| o.conn == conn && !o.active)
    else {
        return;
    };
    o.active = true;
    let ib_sent = o.ib_sent;
    let mut backlog = g.relay.mail.entry(addr).or_default().drain_backlog();
    if !ib_sent || !backlog.is_empty() {
        backlog.push(offline_ib(backlog.len()));
    }
    if let Some(c) = g.live.get(&conn) {
        for n in backlog {
            let _ = c.tx.send(Cmd::Send(n));
        }
    }
}

/// Connection `conn` ended: its device goes offline and its unacknowledged stanzas go back to
/// the front of the queue.
pub(super) fn disconnected(g: &mut Inner, conn: u64) {
    let Some(addr) = g.live.get(&conn).and_then(|c| c.device) else {
        return;
    };
    if g.relay.online.get(&addr).is_some_and(|o| o.conn == conn) {
        let was_active = g.relay.online.remove(&addr).is_some_and(|o| o.active);
        if was_active {
            g.relay.mail.entry(addr).or_default().disconnected();
        }
    }
}

/// A `<message>` from the device on `conn`: route it; returns the ack for the sender (`None`
/// under the `withhold-message-ack` fault for its id).
pub(super) fn client_message(shared: &Shared, conn: u64, node: &Node) -> Option<Node> {
    let now = (shared.clock)();
    let mut g = shared.lock();
    let Some(sender) = g.live.get(&conn).and_then(|c| c.device) else {
        return Some(
            Node::new("ack")
                .attr("class", "message")
                .attr("id", node.get_attr("id").unwrap_or_default())
                .attr("error", "401"),
        );
    };
    *g.relay.sent.entry(sender).or_default() += 1;
    let to_group = node.get_attr("to").and_then(parse_group_jid).is_some();
    let routed = if to_group {
        g.groups.route_message(&g.dir, sender, node, now)
    } else {
        route::message(&g.dir, sender, node, now)
    };
    g.relay.dropped += routed.dropped as u64;
    for d in &routed.deliveries {
        let (a, b) = (sender.account, d.to.account);
        if a != b {
            g.relay.peers.insert((a.min(b), a.max(b)));
        }
    }
    for d in routed.deliveries {
        deliver(&mut g, d);
    }
    let withheld = g.sticky.withhold_message_ack.is_some() && g.sticky.withhold_message_ack.as_deref() == node.get_attr("id");
    (!withheld).then_some(routed.ack)
}

/// A `<receipt>` from the device on `conn`: it acknowledges the messages it names, and is
/// routed to the addressed devices. Returns the ack for the sender.
pub(super) fn client_receipt(shared: &Shared, conn: u64, node: &Node) -> Node {
    let now = (shared.clock)();
    let mut g = shared.lock();
    let Some(sender) = g.live.get(&conn).and_then(|c| c.device) else {
        return Node::new("ack")
            .attr("class", "receipt")
            .attr("id", node.get_attr("id").unwrap_or_default())
            .attr("error", "401");
    };
    *g.relay.sent.entry(sender).or_default() += 1;
    let mailbox = g.relay.mail.entry(sender).or_default();
    for id in route::receipt_ids(node) {
        mailbox.ack("message", &id);
    }
    let to_group = node.get_attr("to").and_then(parse_group_jid).is_some();
    let routed = if to_group {
        g.groups.route_receipt(&g.dir, sender, node, now)
    } else {
        route::receipt(&g.dir, sender, node, now)
    };
    for d in routed.deliveries {
        deliver(&mut g, d);
    }
    routed.ack
}

/// A `<chatstate>` (typing) from the device on `conn`: written to the addressed user's live
/// devices, never queued (a stale "typing…" means nothing later).
pub(super) fn client_chatstate(shared: &Shared, conn: u64, node: &Node) {
    let mut g = shared.lock();
    let Some(sender) = g.live.get(&conn).and_then(|c| c.device) else {
        return;
    };
    for d in route::chatstate(&g.dir, sender, node) {
        let live = g
            .relay
            .online
            .get(&d.to)
            .filter(|o| o.active)
            .map(|o| o.conn);
        if let Some(c) = live.and_then(|c| g.live.get(&c)) {
            let _ = c.tx.send(Cmd::Send(d.node));
            g.relay.chatstates += 1;
        }
    }
}

/// An `<ack class id>` from the device on `conn`: it processed that stanza.
pub(super) fn client_ack(shared: &Shared, conn: u64, node: &Node) {
    let mut g = shared.lock();
    let Some(sender) = g.live.get(&conn).and_then(|c| c.device) else {
        return;
    };
    if let (Some(class), Some(id)) = (node.get_attr("class"), node.get_attr("id")) {
        g.relay.mail.entry(sender).or_default().ack(class, id);
    }
}

/// A server `<notification type>` with `children`, from `from`, for device `to` (queued like
/// any stanza when the device is offline).
fn notify(g: &mut Inner, to: DeviceAddr, from: &str, ty: &str, children: Vec<Node>, now: u64) {
    g.relay.notifications += 1;
    let id = format!("mock-n{}", g.relay.notifications);
    let n = Node::new("notification")
        .attr("from", from)
        .attr("type", ty)
        .attr("id", id)
        .attr("t", now.to_string())
        .children(children);
    deliver(g, Delivery { to, node: n });
}

/// Numbers and delivers group notifications (`w:gp2`), and records the accounts that now share
/// a group as peers (they hear of each other's device changes).
pub(super) fn group_notices(g: &mut Inner, notices: Vec<Delivery>, peers: Vec<(usize, usize)>) {
    g.relay.peers.extend(peers);
    for mut d in notices {
        g.relay.notifications += 1;
        let id = format!("mock-n{}", g.relay.notifications);
        d.node.attrs.insert(0, ("id".into(), id));
        deliver(g, d);
    }
}

/// A `<iq xmlns="w:g2">` from device `sender`: the registry answers, members are notified.
pub(super) fn group_iq(g: &mut Inner, sender: DeviceAddr, node: &Node, now: u64) -> Node {
    let out = g.groups.iq(&g.dir, sender, node, now);
    group_notices(g, out.notices, out.peers);
    out.reply
}

/// Tells device `addr` its one-time prekeys run low (`<notification type="encrypt"><count>`),
/// once per drop below the threshold.
pub(super) fn prekeys_taken(g: &mut Inner, addr: DeviceAddr, now: u64) {
    let low = g
        .dir
        .accounts
        .get_mut(addr.account)
        .and_then(|a| a.device_mut(addr.device))
        .and_then(|d| d.bundle.as_mut())
        .and_then(|b| b.low_notice());
    if let Some(n) = low {
        let count = Node::new("count").attr("value", n.to_string());
        // `@s.whatsapp.net` (a JID pair with no user), not the bare token: Baileys compares
        // `from` with its S_WHATSAPP_NET before acting on the count.
        notify(g, addr, SERVER_JID, "encrypt", vec![count], now);
    }
}

/// Device `addr` was linked (`add`) or unlinked (`remove`): the account's other companions and
/// the companions of every account it exchanged messages with get a `<notification
/// type="devices">`, so cached device lists are refreshed.
pub(super) fn devices_changed(g: &mut Inner, addr: DeviceAddr, tag: &str, now: u64) {
    let Some(acct) = g.dir.account(addr.account) else {
        return;
    };
    let from = acct.jid(0, Domain::Pn);
    let device = Node::new("device")
        .attr("jid", acct.jid(addr.device, Domain::Pn))
        .attr("key-index", addr.device.to_string());
    let change = Node::new(tag)
        .attr("device_hash", format!("2:{}", acct.device_numbers().len()))
        .children(vec![
            device,
            Node::new("key-index-list").attr("ts", now.to_string()),
        ]);
    let mut accounts: Vec<usize> = vec![addr.account];
    accounts.extend(g.relay.peers.iter().filter_map(|&(a, b)| {
        if a == addr.account {
            Some(b)
        } else if b == addr.account {
            Some(a)
        } else {
            None
        }
    }));
    let targets: Vec<DeviceAddr> = accounts
        .into_iter()
        .filter_map(|i| g.dir.account(i).map(|a| (i, a)))
        .flat_map(|(i, a)| {
            a.devices.iter().map(move |d| DeviceAddr {
                account: i,
                device: d.index,
            })
        })
        .filter(|t| *t != addr)
        .collect();
    for t in targets {
        notify(g, t, &from, "devices", vec![change.clone()], now);
    }
}

/// The `/admin/relay` document.
pub(super) fn state_json(g: &Inner) -> serde_json::Value {
    let r = &g.relay;
    let devices: Vec<_> = g
        .dir
        .linked()
        .into_iter()
        .map(|(addr, _)| {
            let m = r.mail.get(&addr).cloned().unwrap_or_default();
            let o = r.online.get(&addr);
            serde_json::json!({
                "jid": g.dir.jid(addr, Domain::Pn),
                "lid": g.dir.jid(addr, Domain::Lid),
                "online": o.is_some(),
                "active": o.is_some_and(|o| o.active),
                "sent": r.sent.get(&addr).copied().unwrap_or(0),
                "delivered": m.delivered,
                "queued": m.queued(),
                "queuedTotal": m.queued_total,
                "inflight": m.inflight(),
                "backlogDelivered": m.backlog_delivered,
                "acked": m.acked,
            })
        })
        .collect();
    let phones: Vec<_> = g
        .dir
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::json!({
                "jid": a.jid(0, Domain::Pn),
                "took": r.phone_took.get(&i).copied().unwrap_or(0),
                "preKeysHandedOut": a.phone_bundle.handed_out,
            })
        })
        .collect();
    serde_json::json!({
        "devices": devices,
        "phones": phones,
        "dropped": r.dropped,
        "notifications": r.notifications,
        "chatstates": r.chatstates,
        "recent": r.recent.iter().cloned().collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::channels::whatsapp::crypto::{KeyPair, SeededEntropy};
    use crate::channels::whatsapp::mock::ConnEntry;

    const A7: DeviceAddr = DeviceAddr {
        account: 0,
        device: 7,
    };
    const B7: DeviceAddr = DeviceAddr {
        account: 1,
        device: 7,
    };

    fn inner() -> Inner {
        let rng = SeededEntropy::new(11);
        let mut g = Inner::default();
        for phone in ["15550001111", "15550002222"] {
            let i = g
                .dir
                .create(phone, None, None, KeyPair::generate(&rng), &rng)
                .unwrap();
            g.dir
                .link(i, [i as u8; 32], [i as u8; 32], 7, true)
                .unwrap();
        }
        g
    }

    fn connect(g: &mut Inner, conn: u64) -> mpsc::UnboundedReceiver<Cmd> {
        let (tx, rx) = mpsc::unbounded_channel();
        g.live.insert(
            conn,
            ConnEntry {
                tx,
                pairing: None,
                device: None,
            },
        );
        rx
    }

    fn sent(rx: &mut mpsc::UnboundedReceiver<Cmd>) -> Vec<Node> {
        let mut out = Vec::new();
        while let Ok(c) = rx.try_recv() {
            if let Cmd::Send(n) = c {
                out.push(n);
            }
        }
        out
    }

    fn msg(id: &str) -> Delivery {
        Delivery {
            to: B7,
            node: Node::new("message").attr("id", id),
        }
    }

    #[test]
    fn backlog_waits_for_active_then_live_stanzas_follow_in_order() {
        let mut g = inner();
        deliver(&mut g, msg("m1"));
        let mut rx = connect(&mut g, 1);
        assert_eq!(
            logged_in(&mut g, 1, B7),
            None,
            "a backlog: no <ib> with <success>"
        );
        deliver(&mut g, msg("m2"));
        assert!(sent(&mut rx).is_empty(), "nothing before <active/>");
        activate(&mut g, 1);
        deliver(&mut g, msg("m3"));
        let out = sent(&mut rx);
        let tags: Vec<_> = out
            .iter()
            .map(|n| (n.tag.as_str(), n.get_attr("id"), n.get_attr("offline")))
            .collect();
        assert_eq!(
            tags,
            vec![
                ("message", Some("m1"), Some("1")),
                ("message", Some("m2"), Some("1")),
                ("ib", None, None),
                ("message", Some("m3"), None),
            ]
        );
        assert_eq!(
            out[2].child("offline").unwrap().get_attr("count"),
            Some("2")
        );
        activate(&mut g, 1);
        assert!(sent(&mut rx).is_empty(), "one backlog per login");
    }

    #[test]
    fn issue10_a_delivery_receipt_for_an_offline_sender_waits_in_its_backlog_before_the_ib() {
        let mut g = inner();
        // B's device confirms A's message while A's only companion is offline (A's process was
        // killed between the server's ack and its own `sent` commit).
        let receipt = Node::new("receipt")
            .attr("id", "3EB0HELD")
            .attr("to", "15550001111@s.whatsapp.net");
        let routed = route::receipt(&g.dir, B7, &receipt, 5);
        assert_eq!(routed.ack.get_attr("error"), None);
        for d in routed.deliveries {
            deliver(&mut g, d);
        }
        let mut rx = connect(&mut g, 1);
        assert_eq!(logged_in(&mut g, 1, A7), None, "the receipt is waiting: no empty-backlog <ib>");
        activate(&mut g, 1);
        let out = sent(&mut rx);
        let tags: Vec<_> = out
            .iter()
            .map(|n| (n.tag.as_str(), n.get_attr("id"), n.get_attr("type"), n.get_attr("offline")))
            .collect();
        assert_eq!(
            tags,
            vec![("receipt", Some("3EB0HELD"), None, Some("1")), ("ib", None, None, None)],
            "a plain delivery receipt, marked offline, then the end of the backlog"
        );
        assert_eq!(out[1].child("offline").unwrap().get_attr("count"), Some("1"));
    }

    #[test]
    fn an_empty_backlog_is_announced_with_success_and_unacked_stanzas_survive_a_drop() {
        let mut g = inner();
        let mut rx = connect(&mut g, 1);
        let ib = logged_in(&mut g, 1, B7).expect("empty backlog: <ib> goes with <success>");
        assert_eq!(ib.child("offline").unwrap().get_attr("count"), Some("0"));
        activate(&mut g, 1);
        deliver(&mut g, msg("m1"));
        deliver(&mut g, msg("m2"));
        assert_eq!(sent(&mut rx).len(), 2, "no second <ib>");
        g.relay.mail.get_mut(&B7).unwrap().ack("message", "m1");
        disconnected(&mut g, 1);
        g.live.remove(&1);
        let mut rx = connect(&mut g, 2);
        assert_eq!(logged_in(&mut g, 2, B7), None);
        activate(&mut g, 2);
        let ids: Vec<_> = sent(&mut rx)
            .iter()
            .map(|n| n.get_attr("id").map(str::to_owned))
            .collect();
        assert_eq!(
            ids,
            vec![Some("m2".into()), None],
            "m2 redelivered, m1 was acked"
        );
    }

    #[test]
    fn stanzas_for_the_phone_are_taken_not_queued_and_devices_changes_reach_peers() {
        let mut g = inner();
        deliver(
            &mut g,
            Delivery {
                to: DeviceAddr {
                    account: 1,
                    device: 0,
                },
                node: Node::new("message").attr("id", "p"),
            },
        );
        assert_eq!(g.relay.phone_took.get(&1), Some(&1));
        let phone = DeviceAddr {
            account: 1,
            device: 0,
        };
        assert!(!g.relay.mail.contains_key(&phone), "nothing queued for a phone");
        // A and B talked, so B's new device is announced to A's device (and to B's device 7).
        g.relay.peers.insert((0, 1));
        let b8 = g.dir.link(1, [9; 32], [9; 32], 8, true).unwrap();
        devices_changed(&mut g, b8, "add", 5);
        for addr in [A7, B7] {
            assert_eq!(g.relay.mail[&addr].queued(), 1, "{addr:?}");
        }
        let mut rx = connect(&mut g, 3);
        logged_in(&mut g, 3, A7);
        activate(&mut g, 3);
        let n = &sent(&mut rx)[0];
        assert_eq!(n.get_attr("type"), Some("devices"));
        assert_eq!(n.get_attr("from"), Some("15550002222@s.whatsapp.net"));
        let dev = n.child("add").unwrap().child("device").unwrap();
        assert_eq!(dev.get_attr("jid"), Some("15550002222:8@s.whatsapp.net"));
        assert_eq!(dev.get_attr("key-index"), Some("8"));
    }

    #[test]
    fn group_messages_and_notifications_wait_for_an_offline_member() {
        let mut g = inner();
        let gi = g.groups.create(0, "G", &[1], Domain::Lid, 1).unwrap();
        let notices = g.groups.create_notices(&g.dir, gi, None, 1);
        let pairs = g.groups.pairs(gi);
        group_notices(&mut g, notices, pairs);
        let gjid = g.groups.list()[gi].jid();
        let stanza = Node::new("message")
            .attr("id", "G1")
            .attr("to", gjid.clone())
            .attr("type", "text")
            .children(vec![
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", "skmsg")
                    .bytes(vec![1]),
            ]);
        let routed = g.groups.route_message(&g.dir, A7, &stanza, 2);
        for d in routed.deliveries {
            deliver(&mut g, d);
        }
        let mut rx = connect(&mut g, 1);
        logged_in(&mut g, 1, B7);
        activate(&mut g, 1);
        let got = sent(&mut rx);
        let kinds: Vec<_> = got
            .iter()
            .map(|n| (n.tag.as_str(), n.get_attr("type"), n.get_attr("from")))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("notification", Some("w:gp2"), Some(gjid.as_str())),
                ("message", Some("text"), Some(gjid.as_str())),
                ("ib", None, None),
            ]
        );
        assert!(
            got[0]
                .get_attr("id")
                .is_some_and(|i| i.starts_with("mock-n"))
        );
        assert!(
            g.relay.peers.contains(&(0, 1)),
            "members hear of each other's devices"
        );
    }
}
