//! Group change notifications: `<notification type="w:gp2" from="<group>@g.us"
//! participant="<actor>" [participant_pn] t>` with one or more children, parsed into typed
//! [`GroupEvent`]s. Pure. The children clients act on:
//!
//! - `<create><group …/></create>`: the account was put in a new group (metadata inside);
//! - `<add|remove|promote|demote><participant jid [phone_number|lid]/>…`: members changed (a
//!   `remove` whose only participant is the actor is that member leaving);
//! - `<subject subject s_o s_t/>`: the group was renamed;
//! - `<description><body>…</body></description>`, `<announcement/>`/`<not_announcement/>`,
//!   `<locked/>`/`<unlocked/>`, `<ephemeral expiration/>`/`<not_ephemeral/>`.
//!
//! Anything else is kept as [`GroupEvent::Other`] with its tag, so a caller can still refresh
//! its cached metadata.

use super::metadata::{GroupInfo, Participant, parse_group, parse_participant};
use crate::channels::whatsapp::binary::{Content, Node};

/// What changed about the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Added (or joined).
    Add,
    /// Removed by an admin.
    Remove,
    /// Left on their own (a `remove` of the actor alone).
    Leave,
    /// Made admin.
    Promote,
    /// No longer admin.
    Demote,
}

/// One change a `w:gp2` notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// The account was put in a new group.
    Created(GroupInfo),
    /// Members were added, removed, promoted or demoted, or one left.
    Members {
        /// The change.
        change: MemberChange,
        /// Who it applies to.
        participants: Vec<Participant>,
    },
    /// The subject changed.
    Subject {
        /// The new subject.
        subject: String,
    },
    /// The description changed (`None`: removed).
    Description(Option<String>),
    /// Only admins may send (`true`) or everyone (`false`).
    Announce(bool),
    /// Only admins may edit the info (`true`) or everyone (`false`).
    Locked(bool),
    /// Disappearing messages timer in seconds (0: off).
    Ephemeral(u32),
    /// A change this parser does not model (its tag).
    Other(String),
}

/// A parsed `w:gp2` notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNotification {
    /// The notification id (for the ack).
    pub id: String,
    /// The group (`…@g.us`).
    pub group: String,
    /// Who made the change (JID in the group's addressing), if given.
    pub actor: Option<String>,
    /// The actor's phone-number JID (LID groups), if given.
    pub actor_pn: Option<String>,
    /// When (unix seconds), if given.
    pub time: Option<u64>,
    /// The changes, in order.
    pub events: Vec<GroupEvent>,
}

impl GroupNotification {
    /// Whether any event changes who is in the group (the sender-key and metadata caches must
    /// be refreshed).
    pub fn changes_members(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                GroupEvent::Created(_)
                    | GroupEvent::Members {
                        change: MemberChange::Add | MemberChange::Remove | MemberChange::Leave,
                        ..
                    }
            )
        })
    }
}

/// Why a notification is not a group notification we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Not `<notification type="w:gp2">`.
    #[error("not a w:gp2 notification")]
    NotGroup,
    /// `from` is not a group JID.
    #[error("from is not a group: {0:?}")]
    BadFrom(Option<String>),
}

fn user(jid: &str) -> &str {
    let local = jid.split('@').next().unwrap_or(jid);
    let u = local.split(':').next().unwrap_or(local);
    u.split('.').next().unwrap_or(u)
}

/// Parses a `<notification type="w:gp2">`.
pub fn parse_notification(n: &Node) -> Result<GroupNotification, NotificationError> {
    if n.tag != "notification" || n.get_attr("type") != Some("w:gp2") {
        return Err(NotificationError::NotGroup);
    }
    let group = n
        .get_attr("from")
        .filter(|f| f.ends_with("@g.us") && f.len() > "@g.us".len())
        .ok_or_else(|| NotificationError::BadFrom(n.get_attr("from").map(str::to_owned)))?;
    let actor = n.get_attr("participant").map(str::to_owned);
    let actor_pn = n.get_attr("participant_pn").map(str::to_owned);
    let events = n
        .child_nodes()
        .iter()
        .map(|c| event(c, actor.as_deref(), actor_pn.as_deref()))
        .collect();
    Ok(GroupNotification {
        id: n.get_attr("id").unwrap_or_default().to_owned(),
        group: group.to_owned(),
        actor,
        actor_pn,
        time: n.get_attr("t").and_then(|t| t.parse().ok()),
        events,
    })
}

fn event(c: &Node, actor: Option<&str>, actor_pn: Option<&str>) -> GroupEvent {
    let members = |change| {
        let participants: Vec<Participant> = c
            .child_nodes()
            .iter()
            .filter(|p| p.tag == "participant")
            .filter_map(parse_participant)
            .collect();
        let is_actor = |p: &Participant| {
            [actor, actor_pn].into_iter().flatten().any(|a| {
                [Some(p.jid.as_str()), p.lid.as_deref(), p.phone.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|j| user(j) == user(a))
            })
        };
        let change = match (change, participants.as_slice()) {
            (MemberChange::Remove, [only]) if is_actor(only) => MemberChange::Leave,
            (c, _) => c,
        };
        GroupEvent::Members {
            change,
            participants,
        }
    };
    match c.tag.as_str() {
        "create" => match c.child("group").map(parse_group) {
            Some(Ok(g)) => GroupEvent::Created(g),
            _ => GroupEvent::Other("create".into()),
        },
        "add" => members(MemberChange::Add),
        "remove" => members(MemberChange::Remove),
        "leave" => members(MemberChange::Leave),
        "promote" => members(MemberChange::Promote),
        "demote" => members(MemberChange::Demote),
        "subject" => GroupEvent::Subject {
            subject: c.get_attr("subject").unwrap_or_default().to_owned(),
        },
        "description" => GroupEvent::Description(c.child("body").and_then(|b| match &b.content {
            Content::Bytes(x) => Some(String::from_utf8_lossy(x).into_owned()),
            Content::Text(t) => Some(t.clone()),
            _ => None,
        })),
        "announcement" => GroupEvent::Announce(true),
        "not_announcement" => GroupEvent::Announce(false),
        "locked" => GroupEvent::Locked(true),
        "unlocked" => GroupEvent::Locked(false),
        "ephemeral" => GroupEvent::Ephemeral(
            c.get_attr("expiration")
                .and_then(|e| e.parse().ok())
                .unwrap_or(0),
        ),
        "not_ephemeral" => GroupEvent::Ephemeral(0),
        other => GroupEvent::Other(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gp2(children: Vec<Node>) -> Node {
        Node::new("notification")
            .attr("id", "n1")
            .attr("from", "120363000000000001@g.us")
            .attr("type", "w:gp2")
            .attr("t", "1700000001")
            .attr("participant", "100000000000001@lid")
            .attr("participant_pn", "15550001111@s.whatsapp.net")
            .children(children)
    }

    fn p(jid: &str, pn: &str) -> Node {
        Node::new("participant")
            .attr("jid", jid)
            .attr("phone_number", pn)
    }

    #[test]
    fn member_changes_are_typed_and_a_self_removal_is_a_leave() {
        let n = parse_notification(&gp2(vec![
            Node::new("remove")
                .children(vec![p("100000000000002@lid", "15550002222@s.whatsapp.net")]),
        ]))
        .unwrap();
        assert_eq!(n.id, "n1");
        assert_eq!(n.group, "120363000000000001@g.us");
        assert_eq!(n.actor.as_deref(), Some("100000000000001@lid"));
        assert_eq!(n.time, Some(1_700_000_001));
        let GroupEvent::Members {
            change,
            participants,
        } = &n.events[0]
        else {
            panic!("{n:?}")
        };
        assert_eq!(*change, MemberChange::Remove);
        assert_eq!(
            participants[0].phone.as_deref(),
            Some("15550002222@s.whatsapp.net")
        );
        assert!(n.changes_members());

        let left = parse_notification(&gp2(vec![
            Node::new("remove")
                .children(vec![p("100000000000001@lid", "15550001111@s.whatsapp.net")]),
        ]))
        .unwrap();
        assert!(matches!(
            left.events[0],
            GroupEvent::Members {
                change: MemberChange::Leave,
                ..
            }
        ));
        let promoted = parse_notification(&gp2(vec![
            Node::new("promote").children(vec![p("100000000000002@lid", "x")]),
        ]))
        .unwrap();
        assert!(!promoted.changes_members());
    }

    #[test]
    fn subject_settings_and_unknown_children() {
        let n = parse_notification(&gp2(vec![
            Node::new("subject")
                .attr("subject", "Renamed")
                .attr("s_o", "100000000000001@lid")
                .attr("s_t", "5"),
            Node::new("announcement"),
            Node::new("unlocked"),
            Node::new("ephemeral").attr("expiration", "604800"),
            Node::new("description").children(vec![Node::new("body").bytes(b"About".to_vec())]),
            Node::new("invite").attr("code", "x"),
        ]))
        .unwrap();
        assert_eq!(
            n.events,
            vec![
                GroupEvent::Subject {
                    subject: "Renamed".into()
                },
                GroupEvent::Announce(true),
                GroupEvent::Locked(false),
                GroupEvent::Ephemeral(604_800),
                GroupEvent::Description(Some("About".into())),
                GroupEvent::Other("invite".into()),
            ]
        );
        assert!(!n.changes_members());
    }

    #[test]
    fn other_notifications_are_refused() {
        assert_eq!(
            parse_notification(&Node::new("notification").attr("type", "devices")),
            Err(NotificationError::NotGroup)
        );
        let bad = Node::new("notification")
            .attr("type", "w:gp2")
            .attr("from", "15550001111@s.whatsapp.net");
        assert!(matches!(
            parse_notification(&bad),
            Err(NotificationError::BadFrom(_))
        ));
    }
}
