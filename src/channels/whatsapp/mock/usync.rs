//! Answers `<iq xmlns="usync">` queries the way Baileys 7 reads them (`WAUSync/`): `devices`
//! (device list with `key-index` for companions), `lid` (the user's LID, `<lid val>`), and
//! `contact` (`<contact type="in|out">` for a phone number). Other protocols get no element,
//! which Baileys treats as "no data". Pure: directory in, node out.

use super::super::binary::Node;
use super::accounts::{Directory, Domain, parse_jid};

/// The `<usync>` reply for query `iq` (`None` if `iq` is not a usync query).
pub(super) fn answer(dir: &Directory, iq: &Node, now: u64) -> Option<Node> {
    let usync = iq.child("usync")?;
    let protocols: Vec<&str> = usync
        .child("query")
        .map(|q| q.child_nodes().iter().map(|p| p.tag.as_str()).collect())
        .unwrap_or_default();
    let users = usync
        .child("list")
        .map(|l| {
            l.child_nodes()
                .iter()
                .filter(|u| u.tag == "user")
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for u in users {
        // A phone lookup (`<contact>+1555…</contact>`) has no jid attribute.
        let phone = u.child("contact").and_then(Node::content_bytes).map(|b| {
            String::from_utf8_lossy(b)
                .trim()
                .trim_start_matches('+')
                .to_owned()
        });
        let (jid, account) = match (u.get_attr("jid"), &phone) {
            (Some(j), _) => {
                let parsed = parse_jid(j);
                let account = parsed.as_ref().and_then(|p| dir.account_of(p));
                (
                    j.to_owned(),
                    account.map(|a| (a, parsed.map_or(Domain::Pn, |p| p.domain))),
                )
            }
            (None, Some(p)) => (
                format!("{p}@s.whatsapp.net"),
                dir.by_phone(p).map(|a| (a, Domain::Pn)),
            ),
            (None, None) => continue,
        };
        let acct = account.and_then(|(a, d)| dir.account(a).map(|acc| (acc, d)));
        let mut children = Vec::new();
        for p in &protocols {
            match *p {
                "devices" => {
                    let list = acct
                        .map(|(a, _)| {
                            a.device_numbers()
                                .into_iter()
                                .map(|d| {
                                    let n = Node::new("device").attr("id", d.to_string());
                                    if d == 0 {
                                        n
                                    } else {
                                        n.attr("key-index", d.to_string())
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    children.push(Node::new("devices").children(vec![
                        Node::new("device-list").children(list),
                        Node::new("key-index-list").attr("ts", now.to_string()),
                    ]));
                }
                "lid" => {
                    let n = Node::new("lid");
                    children.push(match acct {
                        Some((a, Domain::Pn)) => n.attr("val", format!("{}@lid", a.lid)),
                        _ => n,
                    });
                }
                "contact" => {
                    let ty = if acct.is_some() { "in" } else { "out" };
                    children.push(Node::new("contact").attr("type", ty));
                }
                _ => {}
            }
        }
        out.push(Node::new("user").attr("jid", jid).children(children));
    }
    let mut attrs = Node::new("usync");
    for k in ["sid", "mode", "context", "index", "last"] {
        if let Some(v) = usync.get_attr(k) {
            attrs = attrs.attr(k, v);
        }
    }
    Some(attrs.children(vec![Node::new("list").children(out)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::{KeyPair, SeededEntropy};

    fn query(protocols: &[&str], users: Vec<Node>) -> Node {
        Node::new("iq").attr("xmlns", "usync").children(vec![
            Node::new("usync")
                .attr("sid", "s1")
                .attr("context", "message")
                .children(vec![
                    Node::new("query").children(protocols.iter().map(|p| Node::new(*p)).collect()),
                    Node::new("list").children(users),
                ]),
        ])
    }

    #[test]
    fn devices_lid_and_contact_have_the_shapes_baileys_reads() {
        let rng = SeededEntropy::new(5);
        let mut d = Directory::default();
        d.create(
            "15550002222",
            Some("200000000000001"),
            None,
            KeyPair::generate(&rng),
            &rng,
        )
        .unwrap();
        d.link(0, [1; 32], [2; 32], 7, true).unwrap();
        let q = query(
            &["devices", "lid"],
            vec![
                Node::new("user").attr("jid", "15550002222@s.whatsapp.net"),
                Node::new("user").attr("jid", "19999999999@s.whatsapp.net"),
            ],
        );
        let r = answer(&d, &q, 1000).unwrap();
        assert_eq!(r.get_attr("sid"), Some("s1"));
        let users = r.child("list").unwrap().child_nodes();
        assert_eq!(users[0].get_attr("jid"), Some("15550002222@s.whatsapp.net"));
        let devs = users[0]
            .child("devices")
            .unwrap()
            .child("device-list")
            .unwrap()
            .child_nodes();
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[0].get_attr("id"), Some("0"));
        assert_eq!(devs[0].get_attr("key-index"), None);
        assert_eq!(devs[1].get_attr("id"), Some("7"));
        assert_eq!(
            devs[1].get_attr("key-index"),
            Some("7"),
            "Baileys drops companions without one"
        );
        assert_eq!(
            users[0].child("lid").unwrap().get_attr("val"),
            Some("200000000000001@lid")
        );
        assert!(
            users[1]
                .child("devices")
                .unwrap()
                .child("device-list")
                .unwrap()
                .child_nodes()
                .is_empty()
        );
        assert_eq!(users[1].child("lid").unwrap().get_attr("val"), None);

        let q = query(
            &["contact"],
            vec![
                Node::new("user").children(vec![Node::new("contact").text("+15550002222")]),
                Node::new("user").children(vec![Node::new("contact").text("+19999999999")]),
            ],
        );
        let r = answer(&d, &q, 1000).unwrap();
        let users = r.child("list").unwrap().child_nodes();
        assert_eq!(users[0].get_attr("jid"), Some("15550002222@s.whatsapp.net"));
        assert_eq!(
            users[0].child("contact").unwrap().get_attr("type"),
            Some("in")
        );
        assert_eq!(
            users[1].child("contact").unwrap().get_attr("type"),
            Some("out")
        );
    }
}
