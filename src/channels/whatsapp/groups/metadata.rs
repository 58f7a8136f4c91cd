//! Group metadata (`xmlns="w:g2"`): the queries a client sends and the `<group>` answers it
//! parses into a [`GroupInfo`]. Pure: nodes in, typed values out (and back).
//!
//! Queries (the caller adds the iq `id`, as for every iq):
//!
//! - one group: `<iq to="<group>@g.us" type="get" xmlns="w:g2"><query request="interactive"/>`;
//! - every group the account is in: `<iq to="@g.us" type="get" xmlns="w:g2"><participating>
//!   <participants/><description/></participating>`, answered with `<groups><group/>…`.
//!
//! A `<group>` carries `id` (with or without `@g.us`), `subject`, `s_o`/`s_t` (who set it,
//! when), `creation`, `creator` (`creator_pn` in LID groups), `addressing_mode` (`lid` or `pn`,
//! absent = `pn`), optional `size`, and one `<participant jid [type=admin|superadmin]>` per
//! member with the other identity in `phone_number` (LID groups) or `lid` (PN groups). Optional
//! children: `<description><body>`, `<ephemeral expiration>`, `<announcement/>`, `<locked/>`.

use crate::channels::whatsapp::binary::{Content, Node};

/// The server of group JIDs.
pub const GROUP_SERVER: &str = "g.us";

/// How a group addresses its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressingMode {
    /// By phone number (`…@s.whatsapp.net`); the default when the attribute is absent.
    #[default]
    Pn,
    /// By LID (`…@lid`).
    Lid,
}

impl AddressingMode {
    /// Parses the `addressing_mode` attribute (`lid`; anything else is `pn`).
    pub fn from_attr(v: Option<&str>) -> Self {
        match v {
            Some("lid") => AddressingMode::Lid,
            _ => AddressingMode::Pn,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressingMode::Pn => "pn",
            AddressingMode::Lid => "lid",
        }
    }
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Admin {
    /// A plain member.
    #[default]
    Member,
    /// An admin.
    Admin,
    /// The super admin (usually the creator).
    SuperAdmin,
}

impl Admin {
    fn from_attr(v: Option<&str>) -> Self {
        match v {
            Some("admin") => Admin::Admin,
            Some("superadmin") => Admin::SuperAdmin,
            _ => Admin::Member,
        }
    }

    /// Whether the member may manage the group (admin or super admin).
    pub fn is_admin(self) -> bool {
        self != Admin::Member
    }
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Participant {
    /// The member's JID in the group's addressing (`…@lid` or `…@s.whatsapp.net`).
    pub jid: String,
    /// The member's LID JID, when known (the `jid` itself in LID groups).
    pub lid: Option<String>,
    /// The member's phone-number JID, when known (the `jid` itself in PN groups).
    pub phone: Option<String>,
    /// The member's role.
    pub admin: Admin,
}

/// A group's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupInfo {
    /// `<id>@g.us`.
    pub jid: String,
    /// The subject (name).
    pub subject: String,
    /// Who set the subject (JID), if given.
    pub subject_owner: Option<String>,
    /// When the subject was set (unix seconds), if given.
    pub subject_time: Option<u64>,
    /// The creator (JID in the group's addressing), if given.
    pub owner: Option<String>,
    /// The creator's phone-number JID (LID groups), if given.
    pub owner_pn: Option<String>,
    /// Creation time (unix seconds), if given.
    pub creation: Option<u64>,
    /// How members are addressed.
    pub addressing_mode: AddressingMode,
    /// The member count the server states (`size`), else the number of participants.
    pub size: usize,
    /// The members.
    pub participants: Vec<Participant>,
    /// The description text, if any.
    pub description: Option<String>,
    /// Disappearing-messages timer (seconds), if on.
    pub ephemeral: Option<u32>,
    /// Only admins may send (`<announcement/>`).
    pub announce: bool,
    /// Only admins may edit the group info (`<locked/>`).
    pub locked: bool,
}

impl GroupInfo {
    /// The member whose JID, LID or phone JID is `jid` (user part compared, device ignored).
    pub fn participant(&self, jid: &str) -> Option<&Participant> {
        let user = user_of(jid)?;
        self.participants.iter().find(|p| {
            [Some(&p.jid), p.lid.as_ref(), p.phone.as_ref()]
                .into_iter()
                .flatten()
                .any(|j| user_of(j) == Some(user))
        })
    }
}

/// `(user, server)` of `user[.agent][:device]@server`.
fn user_of(jid: &str) -> Option<(&str, &str)> {
    let (local, server) = jid.split_once('@')?;
    let user = local.split(':').next().unwrap_or(local);
    let user = user.split('.').next().unwrap_or(user);
    Some((user, server))
}

/// Why a metadata answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The server answered with an error (404: no such group, 403: not a member, 401: not
    /// authorized).
    #[error("the server answered {code} {text}")]
    Server {
        /// The error code.
        code: u16,
        /// The error text.
        text: String,
    },
    /// The answer has no `<group>` (or `<groups>`).
    #[error("the answer has no <{0}>")]
    Missing(&'static str),
    /// A `<group>` has no usable `id`.
    #[error("a group has no id")]
    NoId,
}

/// The query for group `group_jid`'s metadata (`<query request="interactive"/>`).
pub fn query_group(group_jid: &str) -> Node {
    Node::new("iq")
        .attr("to", group_jid)
        .attr("type", "get")
        .attr("xmlns", "w:g2")
        .children(vec![Node::new("query").attr("request", "interactive")])
}

/// The query for every group the account participates in, with members and descriptions.
pub fn query_participating() -> Node {
    Node::new("iq")
        .attr("to", format!("@{GROUP_SERVER}"))
        .attr("type", "get")
        .attr("xmlns", "w:g2")
        .children(vec![Node::new("participating").children(vec![
            Node::new("participants"),
            Node::new("description"),
        ])])
}

/// An error `<iq>` answer as [`MetadataError::Server`].
fn server_error(iq: &Node) -> Option<MetadataError> {
    if iq.get_attr("type") != Some("error") {
        return None;
    }
    let e = iq.child("error");
    Some(MetadataError::Server {
        code: e
            .and_then(|e| e.get_attr("code"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(500),
        text: e
            .and_then(|e| e.get_attr("text"))
            .unwrap_or("error")
            .to_owned(),
    })
}

/// Parses the answer to [`query_group`] (or a group create/`<create>` body holding a
/// `<group>`).
pub fn parse_query_answer(iq: &Node) -> Result<GroupInfo, MetadataError> {
    if let Some(e) = server_error(iq) {
        return Err(e);
    }
    parse_group(iq.child("group").ok_or(MetadataError::Missing("group"))?)
}

/// Parses the answer to [`query_participating`]. A `<group>` without an id is skipped.
pub fn parse_participating_answer(iq: &Node) -> Result<Vec<GroupInfo>, MetadataError> {
    if let Some(e) = server_error(iq) {
        return Err(e);
    }
    let groups = iq.child("groups").ok_or(MetadataError::Missing("groups"))?;
    Ok(groups
        .child_nodes()
        .iter()
        .filter(|g| g.tag == "group")
        .filter_map(|g| parse_group(g).ok())
        .collect())
}

fn text_of(n: &Node) -> Option<String> {
    match &n.content {
        Content::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Content::Text(t) => Some(t.clone()),
        _ => None,
    }
}

fn num<T: std::str::FromStr>(n: &Node, k: &str) -> Option<T> {
    n.get_attr(k).and_then(|v| v.parse().ok())
}

fn owned(n: &Node, k: &str) -> Option<String> {
    n.get_attr(k).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Parses one `<participant>` (also the ones in `w:gp2` notifications).
pub fn parse_participant(p: &Node) -> Option<Participant> {
    let jid = owned(p, "jid")?;
    let (_, server) = user_of(&jid)?;
    let (lid, phone) = if server == "lid" {
        (Some(jid.clone()), owned(p, "phone_number"))
    } else {
        (owned(p, "lid"), Some(jid.clone()))
    };
    Some(Participant {
        jid,
        lid,
        phone,
        admin: Admin::from_attr(p.get_attr("type")),
    })
}

/// Parses one `<group>` element.
pub fn parse_group(g: &Node) -> Result<GroupInfo, MetadataError> {
    let id = g
        .get_attr("id")
        .filter(|i| !i.is_empty())
        .ok_or(MetadataError::NoId)?;
    let jid = if id.contains('@') {
        id.to_owned()
    } else {
        format!("{id}@{GROUP_SERVER}")
    };
    let participants: Vec<Participant> = g
        .child_nodes()
        .iter()
        .filter(|p| p.tag == "participant")
        .filter_map(parse_participant)
        .collect();
    Ok(GroupInfo {
        jid,
        subject: g.get_attr("subject").unwrap_or_default().to_owned(),
        subject_owner: owned(g, "s_o"),
        subject_time: num(g, "s_t"),
        owner: owned(g, "creator"),
        owner_pn: owned(g, "creator_pn"),
        creation: num(g, "creation"),
        addressing_mode: AddressingMode::from_attr(g.get_attr("addressing_mode")),
        size: num(g, "size").unwrap_or(participants.len()),
        description: g
            .child("description")
            .and_then(|d| d.child("body"))
            .and_then(text_of),
        ephemeral: g.child("ephemeral").and_then(|e| num(e, "expiration")),
        announce: g.child("announcement").is_some(),
        locked: g.child("locked").is_some(),
        participants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LID group as the server (and our relay mock) answers it.
    fn lid_group() -> Node {
        Node::new("iq")
            .attr("from", "120363000000000001@g.us")
            .attr("type", "result")
            .attr("id", "q1")
            .children(vec![
                Node::new("group")
                    .attr("id", "120363000000000001")
                    .attr("subject", "Trip")
                    .attr("s_o", "100000000000001@lid")
                    .attr("s_t", "1700000000")
                    .attr("creation", "1700000000")
                    .attr("creator", "100000000000001@lid")
                    .attr("creator_pn", "15550001111@s.whatsapp.net")
                    .attr("addressing_mode", "lid")
                    .attr("size", "2")
                    .children(vec![
                        Node::new("participant")
                            .attr("jid", "100000000000001@lid")
                            .attr("phone_number", "15550001111@s.whatsapp.net")
                            .attr("type", "superadmin"),
                        Node::new("participant")
                            .attr("jid", "100000000000002@lid")
                            .attr("phone_number", "15550002222@s.whatsapp.net"),
                        Node::new("description")
                            .children(vec![Node::new("body").bytes(b"Where we go".to_vec())]),
                        Node::new("ephemeral").attr("expiration", "86400"),
                        Node::new("announcement"),
                    ]),
            ])
    }

    #[test]
    fn queries_have_the_shapes_clients_send() {
        let q = query_group("120363000000000001@g.us");
        assert_eq!(q.get_attr("to"), Some("120363000000000001@g.us"));
        assert_eq!(q.get_attr("xmlns"), Some("w:g2"));
        assert_eq!(q.get_attr("type"), Some("get"));
        assert_eq!(
            q.child("query").and_then(|c| c.get_attr("request")),
            Some("interactive")
        );
        let all = query_participating();
        assert_eq!(all.get_attr("to"), Some("@g.us"));
        let p = all.child("participating").unwrap();
        let tags: Vec<_> = p.child_nodes().iter().map(|n| n.tag.as_str()).collect();
        assert_eq!(tags, vec!["participants", "description"]);
    }

    #[test]
    fn a_lid_group_answer_becomes_group_info() {
        let g = parse_query_answer(&lid_group()).unwrap();
        assert_eq!(g.jid, "120363000000000001@g.us");
        assert_eq!(g.subject, "Trip");
        assert_eq!(g.addressing_mode, AddressingMode::Lid);
        assert_eq!(g.owner.as_deref(), Some("100000000000001@lid"));
        assert_eq!(g.owner_pn.as_deref(), Some("15550001111@s.whatsapp.net"));
        assert_eq!(g.subject_time, Some(1_700_000_000));
        assert_eq!(g.size, 2);
        assert_eq!(g.description.as_deref(), Some("Where we go"));
        assert_eq!(g.ephemeral, Some(86400));
        assert!(g.announce && !g.locked);
        assert_eq!(
            g.participants,
            vec![
                Participant {
                    jid: "100000000000001@lid".into(),
                    lid: Some("100000000000001@lid".into()),
                    phone: Some("15550001111@s.whatsapp.net".into()),
                    admin: Admin::SuperAdmin,
                },
                Participant {
                    jid: "100000000000002@lid".into(),
                    lid: Some("100000000000002@lid".into()),
                    phone: Some("15550002222@s.whatsapp.net".into()),
                    admin: Admin::Member,
                },
            ]
        );
        assert_eq!(
            g.participant("15550002222:7@s.whatsapp.net")
                .map(|p| p.jid.as_str()),
            Some("100000000000002@lid"),
            "found by phone, device ignored"
        );
        assert!(g.participant("15550009999@s.whatsapp.net").is_none());
    }

    #[test]
    fn a_pn_group_without_mode_or_size_defaults_sensibly() {
        let g = Node::new("group")
            .attr("id", "15550001111-1600000000@g.us")
            .attr("subject", "Old")
            .children(vec![
                Node::new("participant")
                    .attr("jid", "15550001111@s.whatsapp.net")
                    .attr("lid", "100000000000001@lid")
                    .attr("type", "admin"),
                Node::new("participant"),
            ]);
        let g = parse_group(&g).unwrap();
        assert_eq!(g.jid, "15550001111-1600000000@g.us");
        assert_eq!(g.addressing_mode, AddressingMode::Pn);
        assert_eq!(g.size, 1, "a participant without jid is skipped");
        assert_eq!(
            g.participants[0].lid.as_deref(),
            Some("100000000000001@lid")
        );
        assert!(g.participants[0].admin.is_admin());
    }

    #[test]
    fn errors_and_missing_parts_are_typed() {
        let err = Node::new("iq").attr("type", "error").children(vec![
            Node::new("error")
                .attr("code", "403")
                .attr("text", "forbidden"),
        ]);
        assert_eq!(
            parse_query_answer(&err),
            Err(MetadataError::Server {
                code: 403,
                text: "forbidden".into()
            })
        );
        assert_eq!(
            parse_query_answer(&Node::new("iq").attr("type", "result")),
            Err(MetadataError::Missing("group"))
        );
        assert_eq!(parse_group(&Node::new("group")), Err(MetadataError::NoId));
        let all =
            Node::new("iq")
                .attr("type", "result")
                .children(vec![Node::new("groups").children(vec![
                    lid_group().child("group").unwrap().clone(),
                    Node::new("group"),
                ])]);
        let list = parse_participating_answer(&all).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].subject, "Trip");
    }
}
