//! Routing as WhatsApp's server does it, without decrypting anything (it cannot): a client's
//! `<message>` becomes one stanza per addressed device (`<participants><to jid>` fan-out, or a
//! direct `<enc>` for one device), with `from`/`recipient`/`t`/`notify` and the sender's other
//! identity (`sender_lid` or `sender_pn`) set by the server; `<device-identity>` goes along with
//! `pkmsg`s. A `<receipt>` goes back to the addressed device (or every device of the user).
//! The sender gets an `<ack>`. Pure: directory and stanza in, deliveries and ack out.

use super::super::binary::{Content, Node};
use super::accounts::{DeviceAddr, Directory, Domain, parse_jid};

/// A stanza for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Delivery {
    /// The device.
    pub to: DeviceAddr,
    /// The stanza as the device receives it.
    pub node: Node,
}

/// What routing one client stanza produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Routed {
    /// Stanzas to deliver.
    pub deliveries: Vec<Delivery>,
    /// The `<ack>` for the sender.
    pub ack: Node,
    /// `<to jid>`s that named no device of the addressed user or the sender (dropped).
    pub dropped: usize,
}

/// Attributes a client may set on a message that the server passes on.
pub(super) const PASSED_MESSAGE_ATTRS: [&str; 4] =
    ["category", "edit", "push_priority", "expiration"];

/// The server's `<ack class id from t [error]>` for a client stanza.
pub(super) fn ack(class: &str, stanza: &Node, now: u64, error: Option<&str>) -> Node {
    let mut a = Node::new("ack")
        .attr("class", class)
        .attr("id", stanza.get_attr("id").unwrap_or_default());
    if let Some(to) = stanza.get_attr("to") {
        a = a.attr("from", to);
    }
    if class == "receipt"
        && let Some(t) = stanza.get_attr("type")
    {
        a = a.attr("type", t);
    }
    a = a.attr("t", now.to_string());
    if let Some(e) = error {
        a = a.attr("error", e);
    }
    a
}

fn other_domain(d: Domain) -> Domain {
    match d {
        Domain::Pn => Domain::Lid,
        Domain::Lid => Domain::Pn,
    }
}

/// Routes `<message>` `stanza` sent by device `sender`. A repeated id is relayed again, like
/// WhatsApp's server (receivers dedupe by id; see `messaging::outbox`, "Crash recovery").
pub(super) fn message(dir: &Directory, sender: DeviceAddr, stanza: &Node, now: u64) -> Routed {
    let reject = |code: &str| Routed {
        deliveries: Vec::new(),
        ack: ack("message", stanza, now, Some(code)),
        dropped: 0,
    };
    let Some(to_attr) = stanza.get_attr("to") else {
        return reject("400");
    };
    let Some(to) = parse_jid(to_attr) else {
        // Groups are routed by `groups` before this; broadcasts and newsletters are not relayed.
        return reject("501");
    };
    let Some(target_account) = dir.account_of(&to) else {
        return reject("404");
    };
    let Some(sender_account) = dir.account(sender.account) else {
        return reject("401");
    };
    let domain = to.domain;
    let from = sender_account.jid(sender.device, domain);
    let alt_name = match domain {
        Domain::Pn => "sender_lid",
        Domain::Lid => "sender_pn",
    };
    let alt = sender_account.jid(sender.device, other_domain(domain));
    let device_identity = stanza.child("device-identity").cloned();
    let shared: Vec<Node> = stanza
        .child_nodes()
        .iter()
        .filter(|n| !matches!(n.tag.as_str(), "participants" | "device-identity" | "enc"))
        .cloned()
        .collect();

    // (device, its enc nodes)
    let mut targets: Vec<(DeviceAddr, Vec<Node>)> = Vec::new();
    let mut dropped = 0;
    if let Some(parts) = stanza.child("participants") {
        for t in parts.child_nodes().iter().filter(|t| t.tag == "to") {
            let resolved = t.get_attr("jid").and_then(|j| dir.resolve_device(j));
            match resolved {
                Some((addr, _))
                    if addr != sender
                        && (addr.account == target_account || addr.account == sender.account) =>
                {
                    let encs = t
                        .child_nodes()
                        .iter()
                        .filter(|e| e.tag == "enc")
                        .cloned()
                        .collect();
                    targets.push((addr, encs));
                }
                _ => dropped += 1,
            }
        }
    } else {
        let encs: Vec<Node> = stanza
            .child_nodes()
            .iter()
            .filter(|e| e.tag == "enc")
            .cloned()
            .collect();
        if encs.is_empty() {
            return reject("400");
        }
        match dir.resolve_device(to_attr) {
            Some((addr, _)) if addr != sender => targets.push((addr, encs)),
            _ => return reject("404"),
        }
    }

    let deliveries = targets
        .into_iter()
        .map(|(addr, encs)| {
            let own = addr.account == sender.account;
            let mut n = Node::new("message")
                .attr("from", from.clone())
                .attr("id", stanza.get_attr("id").unwrap_or_default())
                .attr("type", stanza.get_attr("type").unwrap_or("text"))
                .attr("t", now.to_string());
            if own {
                // A copy for the sender's other devices: the chat is the addressed user.
                let recipient = stanza.get_attr("recipient").unwrap_or(to_attr);
                if recipient != from {
                    n = n.attr("recipient", recipient);
                }
            } else {
                n = n.attr("notify", sender_account.name.clone());
            }
            n = n.attr(alt_name, alt.clone());
            for k in PASSED_MESSAGE_ATTRS {
                if let Some(v) = stanza.get_attr(k) {
                    n = n.attr(k, v);
                }
            }
            let pkmsg = encs.iter().any(|e| e.get_attr("type") == Some("pkmsg"));
            let mut content = encs;
            if pkmsg && let Some(di) = &device_identity {
                content.push(di.clone());
            }
            content.extend(shared.iter().cloned());
            Delivery {
                to: addr,
                node: n.children(content),
            }
        })
        .collect();
    Routed {
        deliveries,
        ack: ack("message", stanza, now, None),
        dropped,
    }
}

/// Where a receipt for `account` goes: the named `device` alone, else every device of the
/// account; never back to the `sender` device, and only to devices that exist (the phone,
/// device 0, always does). Shared by 1:1 and group receipts.
pub(super) fn receipt_deliveries(dir: &Directory, account: usize, device: Option<u32>, sender: DeviceAddr, node: &Node) -> Vec<Delivery> {
    let devices: Vec<u32> = match device {
        Some(d) => vec![d],
        None => dir.account(account).map(|a| a.device_numbers()).unwrap_or_default(),
    };
    devices
        .into_iter()
        .map(|device| DeviceAddr { account, device })
        .filter(|a| *a != sender)
        .filter(|a| a.device == 0 || dir.account(a.account).and_then(|x| x.device(a.device)).is_some())
        .map(|to| Delivery { to, node: node.clone() })
        .collect()
}

/// Routes `<receipt>` `stanza` sent by device `sender` (delivery, read, retry, ...).
pub(super) fn receipt(dir: &Directory, sender: DeviceAddr, stanza: &Node, now: u64) -> Routed {
    let reject = |code: &str| Routed {
        deliveries: Vec::new(),
        ack: ack("receipt", stanza, now, Some(code)),
        dropped: 0,
    };
    let Some(to) = stanza.get_attr("to").and_then(parse_jid) else {
        return reject("501");
    };
    let Some(account) = dir.account_of(&to) else {
        return reject("404");
    };
    let Some(sender_account) = dir.account(sender.account) else {
        return reject("401");
    };
    let from = sender_account.jid(sender.device, to.domain);
    let mut node = Node::new("receipt")
        .attr("from", from)
        .attr("id", stanza.get_attr("id").unwrap_or_default())
        .attr(
            "t",
            stanza
                .get_attr("t")
                .map_or_else(|| now.to_string(), str::to_owned),
        );
    // "inactive" tells the server the client is in the background; the receiver gets a plain
    // delivery receipt (Baileys maps a receipt without type to DELIVERY_ACK, "inactive" to nothing).
    match stanza.get_attr("type") {
        None | Some("inactive") => {}
        Some(t) => node = node.attr("type", t),
    }
    for k in ["recipient", "participant"] {
        if let Some(v) = stanza.get_attr(k) {
            node = node.attr(k, v);
        }
    }
    if let Content::Nodes(c) = &stanza.content {
        node = node.children(c.clone());
    }
    let deliveries = receipt_deliveries(dir, account, to.device, sender, &node);
    if deliveries.is_empty() {
        return reject("404");
    }
    Routed {
        deliveries,
        ack: ack("receipt", stanza, now, None),
        dropped: 0,
    }
}

/// Routes a `<chatstate to><composing|paused/></chatstate>` (typing) from device `sender`: one
/// copy per companion of the addressed user, `from` the sender's user JID in the addressing the
/// sender used. Chat states are ephemeral: the caller writes them to live devices only.
pub(super) fn chatstate(dir: &Directory, sender: DeviceAddr, stanza: &Node) -> Vec<Delivery> {
    let Some(to) = stanza.get_attr("to").and_then(parse_jid) else {
        return Vec::new();
    };
    let (Some(account), Some(sender_account)) = (dir.account_of(&to), dir.account(sender.account))
    else {
        return Vec::new();
    };
    let node = Node::new("chatstate")
        .attr("from", sender_account.jid(0, to.domain))
        .children(stanza.child_nodes().to_vec());
    dir.account(account)
        .map(|a| a.devices.iter().map(|d| d.index).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|device| DeviceAddr { account, device })
        .filter(|a| *a != sender)
        .map(|to| Delivery {
            to,
            node: node.clone(),
        })
        .collect()
}

/// The ids a `<receipt>` acknowledges: its `id` and any `<list><item id>`.
pub(super) fn receipt_ids(stanza: &Node) -> Vec<String> {
    let mut ids: Vec<String> = stanza
        .get_attr("id")
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(list) = stanza.child("list") {
        ids.extend(
            list.child_nodes()
                .iter()
                .filter_map(|i| i.get_attr("id").map(str::to_owned)),
        );
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::{KeyPair, SeededEntropy};

    /// Alice (account 0, device 7) and Bob (account 1, device 9).
    fn dir() -> Directory {
        let rng = SeededEntropy::new(8);
        let mut d = Directory::default();
        d.create(
            "15550001111",
            Some("100000000000001"),
            Some("Alice"),
            KeyPair::generate(&rng),
            &rng,
        )
        .unwrap();
        d.create(
            "15550002222",
            Some("100000000000002"),
            Some("Bob"),
            KeyPair::generate(&rng),
            &rng,
        )
        .unwrap();
        d.link(0, [1; 32], [1; 32], 7, true).unwrap();
        d.link(1, [2; 32], [2; 32], 9, true).unwrap();
        d
    }
    const A7: DeviceAddr = DeviceAddr {
        account: 0,
        device: 7,
    };
    const B9: DeviceAddr = DeviceAddr {
        account: 1,
        device: 9,
    };

    fn enc(ty: &str, b: u8) -> Node {
        Node::new("enc")
            .attr("v", "2")
            .attr("type", ty)
            .bytes(vec![b; 4])
    }

    #[test]
    fn fan_out_gives_each_device_its_own_enc_with_server_attributes() {
        let d = dir();
        let stanza = Node::new("message")
            .attr("id", "M1")
            .attr("to", "15550002222@s.whatsapp.net")
            .attr("type", "text")
            .children(vec![
                Node::new("participants").children(vec![
                    Node::new("to")
                        .attr("jid", "15550002222@s.whatsapp.net")
                        .children(vec![enc("pkmsg", 1)]),
                    Node::new("to")
                        .attr("jid", "100000000000002:9@lid")
                        .children(vec![enc("msg", 2)]),
                    Node::new("to")
                        .attr("jid", "15550001111@s.whatsapp.net")
                        .children(vec![enc("pkmsg", 3)]),
                    Node::new("to")
                        .attr("jid", "15550003333@s.whatsapp.net")
                        .children(vec![enc("msg", 4)]),
                ]),
                Node::new("device-identity").bytes(vec![9; 3]),
            ]);
        let r = message(&d, A7, &stanza, 500);
        assert_eq!(r.dropped, 1, "an unknown user's device is dropped");
        assert_eq!(r.ack.get_attr("class"), Some("message"));
        assert_eq!(r.ack.get_attr("id"), Some("M1"));
        assert_eq!(r.ack.get_attr("from"), Some("15550002222@s.whatsapp.net"));
        assert_eq!(r.ack.get_attr("error"), None);
        let to: Vec<_> = r.deliveries.iter().map(|x| x.to).collect();
        assert_eq!(
            to,
            vec![
                DeviceAddr {
                    account: 1,
                    device: 0
                },
                B9,
                DeviceAddr {
                    account: 0,
                    device: 0
                }
            ]
        );
        let bob = &r.deliveries[1].node;
        assert_eq!(bob.get_attr("from"), Some("15550001111:7@s.whatsapp.net"));
        assert_eq!(bob.get_attr("sender_lid"), Some("100000000000001:7@lid"));
        assert_eq!(bob.get_attr("notify"), Some("Alice"));
        assert_eq!(bob.get_attr("t"), Some("500"));
        assert_eq!(bob.get_attr("to"), None);
        assert_eq!(
            bob.child_nodes().len(),
            1,
            "a msg carries no device-identity"
        );
        assert_eq!(
            bob.child("enc").unwrap().content_bytes(),
            Some(&[2u8; 4][..])
        );
        let bob_phone = &r.deliveries[0].node;
        assert!(
            bob_phone.child("device-identity").is_some(),
            "a pkmsg carries it"
        );
        let own = &r.deliveries[2].node;
        assert_eq!(
            own.get_attr("recipient"),
            Some("15550002222@s.whatsapp.net")
        );
        assert_eq!(own.get_attr("notify"), None);
    }

    #[test]
    fn a_lid_addressed_message_comes_from_the_lid_with_sender_pn() {
        let d = dir();
        let stanza = Node::new("message")
            .attr("id", "M2")
            .attr("to", "100000000000002:9@lid")
            .attr("type", "text")
            .children(vec![enc("msg", 1)]);
        let r = message(&d, A7, &stanza, 1);
        assert_eq!(r.deliveries.len(), 1);
        assert_eq!(r.deliveries[0].to, B9);
        assert_eq!(
            r.deliveries[0].node.get_attr("from"),
            Some("100000000000001:7@lid")
        );
        assert_eq!(
            r.deliveries[0].node.get_attr("sender_pn"),
            Some("15550001111:7@s.whatsapp.net")
        );
    }

    #[test]
    fn unknown_or_unsupported_recipients_get_an_error_ack_and_nothing_is_routed() {
        let d = dir();
        for (to, code) in [
            ("15550009999@s.whatsapp.net", "404"),
            ("123-456@g.us", "501"),
        ] {
            let s = Node::new("message")
                .attr("id", "X")
                .attr("to", to)
                .children(vec![enc("msg", 1)]);
            let r = message(&d, A7, &s, 1);
            assert!(r.deliveries.is_empty());
            assert_eq!(r.ack.get_attr("error"), Some(code));
        }
        let s = Node::new("message")
            .attr("id", "X")
            .attr("to", "15550002222:5@s.whatsapp.net")
            .children(vec![enc("msg", 1)]);
        assert_eq!(
            message(&d, A7, &s, 1).ack.get_attr("error"),
            Some("404"),
            "no device 5"
        );
    }

    #[test]
    fn typing_goes_to_every_companion_of_the_addressed_user() {
        let d = dir();
        let s = Node::new("chatstate")
            .attr("from", "15550001111:7@s.whatsapp.net")
            .attr("to", "15550002222@s.whatsapp.net")
            .children(vec![Node::new("composing")]);
        let r = chatstate(&d, A7, &s);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].to, B9);
        assert_eq!(
            r[0].node.get_attr("from"),
            Some("15550001111@s.whatsapp.net")
        );
        assert_eq!(r[0].node.get_attr("to"), None);
        assert!(r[0].node.child("composing").is_some());
        let to_nobody = Node::new("chatstate").attr("to", "15550009999@s.whatsapp.net");
        assert!(chatstate(&d, A7, &to_nobody).is_empty());
    }

    #[test]
    fn receipts_go_back_to_the_addressed_device_as_delivery() {
        let d = dir();
        let s = Node::new("receipt")
            .attr("id", "M1")
            .attr("to", "15550001111:7@s.whatsapp.net")
            .attr("type", "inactive");
        let r = receipt(&d, B9, &s, 77);
        assert_eq!(r.deliveries.len(), 1);
        assert_eq!(r.deliveries[0].to, A7);
        let n = &r.deliveries[0].node;
        assert_eq!(n.get_attr("from"), Some("15550002222:9@s.whatsapp.net"));
        assert_eq!(n.get_attr("type"), None);
        assert_eq!(n.get_attr("t"), Some("77"));
        assert_eq!(r.ack.get_attr("class"), Some("receipt"));

        let read = Node::new("receipt")
            .attr("id", "M1")
            .attr("to", "15550001111@s.whatsapp.net")
            .attr("type", "read")
            .attr("t", "5")
            .children(vec![
                Node::new("list").children(vec![Node::new("item").attr("id", "M2")]),
            ]);
        let r = receipt(&d, B9, &read, 77);
        assert_eq!(
            r.deliveries.iter().map(|x| x.to.device).collect::<Vec<_>>(),
            vec![0, 7]
        );
        assert_eq!(r.deliveries[1].node.get_attr("type"), Some("read"));
        assert_eq!(r.deliveries[1].node.get_attr("t"), Some("5"));
        assert_eq!(receipt_ids(&read), vec!["M1".to_owned(), "M2".to_owned()]);
    }
}
