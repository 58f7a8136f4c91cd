//! What the message path keeps about a group (issue 12 item 3): its subject, addressing and
//! members, cached in the account store as JSON; the `w:g2` queries that fetch it (one group,
//! every group we are in) and the parser of the `<group>` answer. Pure.

use serde::{Deserialize, Serialize};

use crate::channels::whatsapp::binary::Node;

/// The group server.
pub const GROUP_SERVER: &str = "g.us";

/// A group member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member's user JID in the group's addressing (LID in LID groups).
    pub jid: String,
    /// The member's phone-number JID, when the server gave it.
    #[serde(default)]
    pub phone: Option<String>,
    /// The member's LID, when the server gave it.
    #[serde(default)]
    pub lid: Option<String>,
    /// Admin or super admin.
    #[serde(default)]
    pub admin: bool,
}

/// A group's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMeta {
    /// `<id>@g.us`.
    pub jid: String,
    /// The subject.
    pub subject: String,
    /// `addressing_mode="lid"`: members are addressed by LID.
    pub lid_addressing: bool,
    /// The members.
    pub members: Vec<Member>,
}

/// `<iq to=group type=get xmlns=w:g2><query request=interactive/></iq>`.
pub fn query_group(group: &str) -> Node {
    Node::new("iq")
        .attr("to", group)
        .attr("type", "get")
        .attr("xmlns", "w:g2")
        .children(vec![Node::new("query").attr("request", "interactive")])
}

/// `<iq to=@g.us type=get xmlns=w:g2><participating><participants/><description/></participating></iq>`.
pub fn query_participating() -> Node {
    Node::new("iq").attr("to", "@g.us").attr("type", "get").attr("xmlns", "w:g2").children(vec![
        Node::new("participating").children(vec![Node::new("participants"), Node::new("description")]),
    ])
}

fn user_jid(s: &str) -> Option<String> {
    let j = super::stanza::Jid::parse(s)?;
    j.is_user().then(|| j.user_jid())
}

/// Parses one `<group>` element.
pub fn parse_group(g: &Node) -> Option<GroupMeta> {
    let id = g.get_attr("id").filter(|s| !s.is_empty())?;
    let jid = if id.contains('@') { id.to_owned() } else { format!("{id}@{GROUP_SERVER}") };
    let lid_addressing = g.get_attr("addressing_mode") == Some("lid");
    let members = g
        .child_nodes()
        .iter()
        .filter(|p| p.tag == "participant")
        .filter_map(|p| {
            let jid = user_jid(p.get_attr("jid")?)?;
            let phone = p.get_attr("phone_number").and_then(user_jid).or_else(|| jid.ends_with("@s.whatsapp.net").then(|| jid.clone()));
            let lid = p.get_attr("lid").and_then(user_jid).or_else(|| jid.ends_with("@lid").then(|| jid.clone()));
            let admin = matches!(p.get_attr("type"), Some("admin" | "superadmin"));
            Some(Member { jid, phone, lid, admin })
        })
        .collect();
    Some(GroupMeta { jid, subject: g.get_attr("subject").unwrap_or_default().to_owned(), lid_addressing, members })
}

/// The groups of an iq answer: its `<group>` child, or the `<groups><group>…` of `participating`.
pub fn parse_answer(iq: &Node) -> Vec<GroupMeta> {
    let mut out: Vec<GroupMeta> = iq.child_nodes().iter().filter(|n| n.tag == "group").filter_map(parse_group).collect();
    if let Some(gs) = iq.child("groups") {
        out.extend(gs.child_nodes().iter().filter(|n| n.tag == "group").filter_map(parse_group));
    }
    out
}

/// What a `w:gp2` notification means for our caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    /// Members left or were removed: our sender key must rotate, the metadata is stale.
    MembersLeft {
        /// The group.
        group: String,
    },
    /// Anything else (add, promote, subject…): the metadata is stale.
    Changed {
        /// The group.
        group: String,
    },
}

/// Classifies a `<notification type="w:gp2" from=group>`.
pub fn parse_notification(n: &Node) -> Option<GroupChange> {
    if n.get_attr("type") != Some("w:gp2") {
        return None;
    }
    let group = n.get_attr("from").filter(|f| f.ends_with("@g.us"))?.to_owned();
    let left = n.child_nodes().iter().any(|c| matches!(c.tag.as_str(), "remove" | "leave"));
    Some(if left { GroupChange::MembersLeft { group } } else { GroupChange::Changed { group } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lid_group_answer_parses_with_phone_numbers_and_admins() {
        let g = Node::new("group")
            .attr("id", "120363001")
            .attr("subject", "Trip")
            .attr("addressing_mode", "lid")
            .children(vec![
                Node::new("participant").attr("jid", "111@lid").attr("phone_number", "1555@s.whatsapp.net").attr("type", "superadmin"),
                Node::new("participant").attr("jid", "222@lid").attr("phone_number", "1666@s.whatsapp.net"),
                Node::new("participant").attr("jid", "junk"),
            ]);
        let iq = Node::new("iq").attr("type", "result").children(vec![g.clone()]);
        let got = parse_answer(&iq);
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!((m.jid.as_str(), m.subject.as_str(), m.lid_addressing), ("120363001@g.us", "Trip", true));
        assert_eq!(m.members.len(), 2);
        assert_eq!(m.members[0], Member { jid: "111@lid".into(), phone: Some("1555@s.whatsapp.net".into()), lid: Some("111@lid".into()), admin: true });
        assert!(!m.members[1].admin);
        let other = Node::new("group").attr("id", "9-9").attr("subject", "B");
        let all = Node::new("iq").children(vec![Node::new("groups").children(vec![g, other])]);
        assert_eq!(parse_answer(&all).iter().map(|g| g.jid.as_str()).collect::<Vec<_>>(), ["120363001@g.us", "9-9@g.us"]);
        let back: GroupMeta = serde_json::from_str(&serde_json::to_string(m).unwrap()).unwrap();
        assert_eq!(&back, m);
    }

    #[test]
    fn removals_and_leaves_ask_for_rotation() {
        let n = |tag: &str| Node::new("notification").attr("type", "w:gp2").attr("from", "1-2@g.us").children(vec![Node::new(tag)]);
        assert_eq!(parse_notification(&n("remove")), Some(GroupChange::MembersLeft { group: "1-2@g.us".into() }));
        assert_eq!(parse_notification(&n("leave")), Some(GroupChange::MembersLeft { group: "1-2@g.us".into() }));
        assert_eq!(parse_notification(&n("add")), Some(GroupChange::Changed { group: "1-2@g.us".into() }));
        assert_eq!(parse_notification(&Node::new("notification").attr("type", "devices").attr("from", "1-2@g.us")), None);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(id in ".{0,12}", jid in ".{0,20}", mode in ".{0,5}") {
            let g = Node::new("group").attr("id", id).attr("addressing_mode", mode).children(vec![Node::new("participant").attr("jid", jid.clone())]);
            let _ = parse_answer(&Node::new("iq").children(vec![g]));
            let _ = parse_notification(&Node::new("notification").attr("type", "w:gp2").attr("from", jid));
        }
    }
}
