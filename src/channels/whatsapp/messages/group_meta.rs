//! What the message path keeps about a group (issue 12 item 3): its subject, addressing and
//! members, cached in the account store as JSON, built from the answers
//! [`crate::channels::whatsapp::groups::metadata`] parses; and what a `w:gp2` notification
//! ([`crate::channels::whatsapp::groups::notification`]) means for our caches. Pure.

use serde::{Deserialize, Serialize};

use crate::channels::whatsapp::binary::Node;
use crate::channels::whatsapp::groups::metadata::{self, AddressingMode, GroupInfo, MetadataError};
use crate::channels::whatsapp::groups::notification::{self, GroupEvent, MemberChange};

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

/// The cached form of `groups::metadata`'s [`GroupInfo`].
pub fn from_info(g: &GroupInfo) -> GroupMeta {
    GroupMeta {
        jid: g.jid.clone(),
        subject: g.subject.clone(),
        lid_addressing: g.addressing_mode == AddressingMode::Lid,
        members: g
            .participants
            .iter()
            .map(|p| Member { jid: p.jid.clone(), phone: p.phone.clone(), lid: p.lid.clone(), admin: p.admin.is_admin() })
            .collect(),
    }
}

/// The group of a `query_group` answer.
pub fn parse_answer(iq: &Node) -> Result<GroupMeta, MetadataError> {
    metadata::parse_query_answer(iq).map(|g| from_info(&g))
}

/// The groups of a `query_participating` answer.
pub fn parse_participating(iq: &Node) -> Result<Vec<GroupMeta>, MetadataError> {
    metadata::parse_participating_answer(iq).map(|gs| gs.iter().map(from_info).collect())
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

/// Classifies a `<notification type="w:gp2" from=group>` (`None`: not one, or unparsable).
pub fn classify_notification(n: &Node) -> Option<GroupChange> {
    let parsed = notification::parse_notification(n).ok()?;
    let left = parsed.events.iter().any(|e| matches!(e, GroupEvent::Members { change: MemberChange::Remove | MemberChange::Leave, .. }));
    let group = parsed.group;
    Some(if left { GroupChange::MembersLeft { group } } else { GroupChange::Changed { group } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Node {
        Node::new("group")
            .attr("id", "120363001")
            .attr("subject", "Trip")
            .attr("addressing_mode", "lid")
            .children(vec![
                Node::new("participant").attr("jid", "111@lid").attr("phone_number", "1555@s.whatsapp.net").attr("type", "superadmin"),
                Node::new("participant").attr("jid", "222@lid").attr("phone_number", "1666@s.whatsapp.net"),
            ])
    }

    #[test]
    fn a_lid_group_answer_caches_with_phone_numbers_and_admins() {
        let iq = Node::new("iq").attr("type", "result").children(vec![group()]);
        let m = parse_answer(&iq).unwrap();
        assert_eq!((m.jid.as_str(), m.subject.as_str(), m.lid_addressing), ("120363001@g.us", "Trip", true));
        assert_eq!(m.members.len(), 2);
        assert_eq!(m.members[0].jid, "111@lid");
        assert_eq!(m.members[0].phone.as_deref(), Some("1555@s.whatsapp.net"));
        assert!(m.members[0].admin && !m.members[1].admin);
        let all = Node::new("iq").attr("type", "result").children(vec![Node::new("groups").children(vec![group()])]);
        assert_eq!(parse_participating(&all).unwrap(), vec![m.clone()]);
        let back: GroupMeta = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn removals_and_leaves_ask_for_rotation() {
        let n = |tag: &str| {
            Node::new("notification").attr("id", "N1").attr("type", "w:gp2").attr("from", "1-2@g.us").attr("participant", "111@lid").children(vec![
                Node::new(tag).children(vec![Node::new("participant").attr("jid", "222@lid")]),
            ])
        };
        assert_eq!(classify_notification(&n("remove")), Some(GroupChange::MembersLeft { group: "1-2@g.us".into() }));
        assert_eq!(classify_notification(&n("add")), Some(GroupChange::Changed { group: "1-2@g.us".into() }));
        assert_eq!(classify_notification(&Node::new("notification").attr("type", "devices").attr("from", "1-2@g.us")), None);
    }
}
