//! Groups on the relay, as WhatsApp's server keeps them (never decrypting anything): a registry
//! of groups (`<id>@g.us`, subject, creator, members with admin roles, PN or LID addressing),
//! the `w:g2` iqs clients send (create, query one, all participating, add/remove/promote/demote,
//! subject, leave), the `w:gp2` notifications members get about changes, and the fan-out of a
//! group `<message>`: every member device gets the `skmsg` plus its own pairwise `<enc>` (the
//! sender-key distribution) if the sender made one for it. Pure: registry, directory and
//! stanza in; answers, deliveries and notifications out.
//!
//! Shapes follow what clients parse (Baileys 7 `extractGroupMetadata` and its `w:gp2` handler,
//! whatsmeow's group parser): the `<group>` element carries `id` (without `@g.us`), `subject`,
//! `s_o`/`s_t`, `creation`, `creator`, `addressing_mode` and `size`, one `<participant jid
//! [type]>` per member with the other identity in `phone_number` (LID groups) or `lid` (PN
//! groups). Errors: 404 no such group, 403 the requester is not a member, 401 not an admin.

use super::super::binary::{Content, Node};
use super::super::groups::phash::participant_hash;
use super::accounts::{DeviceAddr, Directory, Domain, parse_jid};
use super::route::{Delivery, PASSED_MESSAGE_ATTRS, Routed, ack, receipt_deliveries};

/// The server of group JIDs.
pub(super) const GROUP_SERVER: &str = "g.us";
/// The longest subject accepted (characters), as WhatsApp's limit.
const MAX_SUBJECT: usize = 100;
/// The most members a group holds, as WhatsApp's limit.
const MAX_MEMBERS: usize = 1024;

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A plain member.
    Member,
    /// An admin (may add, remove, promote and demote).
    Admin,
    /// The creator's role.
    SuperAdmin,
}

impl Role {
    /// The `type` attribute of a `<participant>` (none for plain members).
    fn attr(self) -> Option<&'static str> {
        match self {
            Role::Member => None,
            Role::Admin => Some("admin"),
            Role::SuperAdmin => Some("superadmin"),
        }
    }
}

/// One member of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    /// The member's account.
    pub account: usize,
    /// Its role.
    pub role: Role,
}

/// One group.
#[derive(Debug, Clone)]
pub(super) struct Group {
    /// The user part of the JID (`120363…` digits, or `<digits>-<digits>`).
    pub id: String,
    /// The subject (name).
    pub subject: String,
    /// Who set the subject last.
    pub subject_owner: usize,
    /// When (unix seconds).
    pub subject_time: u64,
    /// Who created it.
    pub creator: usize,
    /// When (unix seconds).
    pub creation: u64,
    /// Members in join order.
    pub members: Vec<Member>,
    /// How members are addressed: `Lid` (`addressing_mode="lid"`) or `Pn`.
    pub mode: Domain,
}

impl Group {
    /// `<id>@g.us`.
    pub fn jid(&self) -> String {
        format!("{}@{GROUP_SERVER}", self.id)
    }

    /// The member entry of `account`.
    pub fn member(&self, account: usize) -> Option<&Member> {
        self.members.iter().find(|m| m.account == account)
    }

    fn is_admin(&self, account: usize) -> bool {
        self.member(account).is_some_and(|m| m.role != Role::Member)
    }

    /// Every device of every member (each phone, then its companions), in join order.
    pub fn devices(&self, dir: &Directory) -> Vec<DeviceAddr> {
        self.members
            .iter()
            .filter_map(|m| dir.account(m.account).map(|a| (m.account, a)))
            .flat_map(|(account, a)| {
                a.device_numbers()
                    .into_iter()
                    .map(move |device| DeviceAddr { account, device })
            })
            .collect()
    }

    /// `addressing_mode` value.
    fn mode_attr(&self) -> &'static str {
        match self.mode {
            Domain::Lid => "lid",
            Domain::Pn => "pn",
        }
    }
}

/// The user part of a group JID (`<digits>@g.us` or `<digits>-<digits>@g.us`).
pub(super) fn parse_group_jid(s: &str) -> Option<&str> {
    let user = s.strip_suffix("@g.us")?;
    let mut parts = user.split('-');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let first = parts.next();
    let second = parts.next();
    (ok(first) && (second.is_none() || ok(second)) && parts.next().is_none()).then_some(user)
}

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum GroupError {
    /// No group with this JID.
    #[error("no such group")]
    NoSuchGroup,
    /// The requester is not a member.
    #[error("not a member of the group")]
    NotMember,
    /// The requester is not an admin.
    #[error("only admins may do this")]
    NotAdmin,
    /// A named account does not exist.
    #[error("no such account: {0}")]
    NoSuchAccount(String),
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
}

impl GroupError {
    /// The iq error code and text.
    fn code(&self) -> (u16, &'static str) {
        match self {
            GroupError::NoSuchGroup => (404, "item-not-found"),
            GroupError::NotMember => (403, "forbidden"),
            GroupError::NotAdmin => (401, "not-authorized"),
            GroupError::NoSuchAccount(_) | GroupError::BadRequest(_) => (400, "bad-request"),
        }
    }
}

/// A membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Add members.
    Add,
    /// Remove members.
    Remove,
    /// Make members admins.
    Promote,
    /// Make admins plain members.
    Demote,
}

impl Action {
    /// The element name (`add`, `remove`, `promote`, `demote`).
    pub fn tag(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Remove => "remove",
            Action::Promote => "promote",
            Action::Demote => "demote",
        }
    }

    /// Parses an element name.
    pub fn from_tag(t: &str) -> Option<Self> {
        Some(match t {
            "add" => Action::Add,
            "remove" => Action::Remove,
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            _ => return None,
        })
    }
}

/// The outcome for one account named in a membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    /// The JID as the request named it.
    pub jid: String,
    /// The account, if it exists.
    pub account: Option<usize>,
    /// `None` when applied; else the per-participant error code (404 unknown, 409 already a
    /// member / not a member).
    pub error: Option<u16>,
}

/// What a group request produced: the answer and notifications for member devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outcome {
    /// The `<iq>` answer (result or error).
    pub reply: Node,
    /// `<notification type="w:gp2">`s without `id` (the relay numbers them).
    pub notices: Vec<Delivery>,
    /// Pairs of accounts that now share a group (they hear of each other's device changes).
    pub peers: Vec<(usize, usize)>,
}

/// An applied membership change: each named JID's outcome, the notifications to deliver, and
/// the pairs of accounts that share the group.
pub(super) type Applied = (Vec<Change>, Vec<Delivery>, Vec<(usize, usize)>);

/// Every group on the relay.
#[derive(Debug, Default)]
pub(super) struct Groups {
    list: Vec<Group>,
    created: u64,
}

fn iq_result(id: &str, from: &str) -> Node {
    Node::new("iq")
        .attr("from", from)
        .attr("type", "result")
        .attr("id", id)
}

fn iq_error(id: &str, from: &str, e: &GroupError) -> Node {
    let (code, text) = e.code();
    Node::new("iq")
        .attr("from", from)
        .attr("type", "error")
        .attr("id", id)
        .children(vec![
            Node::new("error")
                .attr("code", code.to_string())
                .attr("text", text),
        ])
}

fn other(d: Domain) -> Domain {
    match d {
        Domain::Pn => Domain::Lid,
        Domain::Lid => Domain::Pn,
    }
}

/// The `<participant>` element of account `account` in a group addressed in `mode`.
fn participant_node(dir: &Directory, account: usize, mode: Domain, role: Option<Role>) -> Node {
    let Some(a) = dir.account(account) else {
        return Node::new("participant");
    };
    let alt_name = match mode {
        Domain::Lid => "phone_number",
        Domain::Pn => "lid",
    };
    let mut n = Node::new("participant")
        .attr("jid", a.jid(0, mode))
        .attr(alt_name, a.jid(0, other(mode)));
    if let Some(t) = role.and_then(Role::attr) {
        n = n.attr("type", t);
    }
    n
}

/// The `<group>` element describing `g`.
pub(super) fn group_node(dir: &Directory, g: &Group) -> Node {
    let jid = |acct: usize, d: Domain| dir.account(acct).map(|a| a.jid(0, d)).unwrap_or_default();
    let mut n = Node::new("group")
        .attr("id", g.id.clone())
        .attr("subject", g.subject.clone())
        .attr("s_o", jid(g.subject_owner, g.mode))
        .attr("s_t", g.subject_time.to_string())
        .attr("creation", g.creation.to_string())
        .attr("creator", jid(g.creator, g.mode));
    if g.mode == Domain::Lid {
        n = n
            .attr("s_o_pn", jid(g.subject_owner, Domain::Pn))
            .attr("creator_pn", jid(g.creator, Domain::Pn));
    }
    n = n
        .attr("addressing_mode", g.mode_attr())
        .attr("size", g.members.len().to_string());
    let parts = g
        .members
        .iter()
        .map(|m| participant_node(dir, m.account, g.mode, Some(m.role)))
        .collect();
    n.children(parts)
}

/// The account a member JID names (PN or LID, device ignored).
fn account_of(dir: &Directory, jid: &str) -> Option<usize> {
    parse_jid(jid).and_then(|j| dir.account_of(&j))
}

/// Every pair of members of `g`.
fn member_pairs(g: &Group) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    for (i, a) in g.members.iter().enumerate() {
        for b in &g.members[i + 1..] {
            if a.account != b.account {
                v.push((a.account.min(b.account), a.account.max(b.account)));
            }
        }
    }
    v
}

impl Groups {
    /// Every group, in creation order.
    pub fn list(&self) -> &[Group] {
        &self.list
    }

    /// The group with JID `jid`.
    #[cfg(test)]
    pub fn get(&self, jid: &str) -> Option<&Group> {
        let id = parse_group_jid(jid)?;
        self.list.iter().find(|g| g.id == id)
    }

    fn index(&self, jid: &str) -> Result<usize, GroupError> {
        let id = parse_group_jid(jid).ok_or(GroupError::NoSuchGroup)?;
        self.list
            .iter()
            .position(|g| g.id == id)
            .ok_or(GroupError::NoSuchGroup)
    }

    /// Creates a group of `creator` (superadmin) and `members` (existing accounts; the creator
    /// and repeats are left out). Returns its index.
    pub fn create(
        &mut self,
        creator: usize,
        subject: &str,
        members: &[usize],
        mode: Domain,
        now: u64,
    ) -> Result<usize, GroupError> {
        let subject = subject.trim();
        if subject.is_empty() || subject.chars().count() > MAX_SUBJECT {
            return Err(GroupError::BadRequest(
                "subject must be 1 to 100 characters",
            ));
        }
        let mut list = vec![Member {
            account: creator,
            role: Role::SuperAdmin,
        }];
        for &m in members {
            if !list.iter().any(|x| x.account == m) {
                list.push(Member {
                    account: m,
                    role: Role::Member,
                });
            }
        }
        if list.len() > MAX_MEMBERS {
            return Err(GroupError::BadRequest("too many participants"));
        }
        self.created += 1;
        // New-style ids: `120363` and 12 more digits, unique per relay.
        let id = format!("120363{:012}", self.created);
        self.list.push(Group {
            id,
            subject: subject.to_owned(),
            subject_owner: creator,
            subject_time: now,
            creator,
            creation: now,
            members: list,
            mode,
        });
        Ok(self.list.len() - 1)
    }

    /// Applies `action` by `actor` (who must be an admin; `None`: the relay's operator) to the
    /// accounts named by `jids` in group `gi`. Returns each named JID's outcome.
    fn change(
        &mut self,
        dir: &Directory,
        gi: usize,
        actor: Option<usize>,
        action: Action,
        jids: &[String],
    ) -> Result<Vec<Change>, GroupError> {
        let g = &mut self.list[gi];
        if let Some(a) = actor {
            if g.member(a).is_none() {
                return Err(GroupError::NotMember);
            }
            if !g.is_admin(a) {
                return Err(GroupError::NotAdmin);
            }
        }
        let mut out = Vec::new();
        for jid in jids {
            let account = account_of(dir, jid);
            let error = match (account, action) {
                (None, _) => Some(404),
                (Some(acc), Action::Add) => {
                    if g.member(acc).is_some() {
                        Some(409)
                    } else if g.members.len() >= MAX_MEMBERS {
                        Some(500)
                    } else {
                        g.members.push(Member {
                            account: acc,
                            role: Role::Member,
                        });
                        None
                    }
                }
                (Some(acc), Action::Remove) => {
                    match g.members.iter().position(|m| m.account == acc) {
                        Some(i) => {
                            g.members.remove(i);
                            None
                        }
                        None => Some(404),
                    }
                }
                (Some(acc), Action::Promote | Action::Demote) => {
                    match g.members.iter_mut().find(|m| m.account == acc) {
                        Some(m) => {
                            m.role = if action == Action::Promote {
                                Role::Admin
                            } else {
                                Role::Member
                            };
                            None
                        }
                        None => Some(404),
                    }
                }
            };
            out.push(Change {
                jid: jid.clone(),
                account,
                error,
            });
        }
        Ok(out)
    }

    /// A membership change requested through the admin API (acted by the group's creator,
    /// whatever their role now; every member device is notified). `jids` name accounts (PN or
    /// LID JIDs).
    pub fn admin_change(
        &mut self,
        dir: &Directory,
        group: &str,
        action: Action,
        jids: &[String],
        now: u64,
    ) -> Result<Applied, GroupError> {
        let gi = self.index(group)?;
        let before: Vec<usize> = self.list[gi].members.iter().map(|m| m.account).collect();
        let changes = self.change(dir, gi, None, action, jids)?;
        let g = &self.list[gi];
        let notices = change_notices(dir, g, &before, g.creator, None, action, &changes, now);
        Ok((changes, notices, member_pairs(g)))
    }

    /// The notifications announcing a new group (a `<create>` with its `<group>`) to every
    /// member device but `except`.
    pub fn create_notices(
        &self,
        dir: &Directory,
        gi: usize,
        except: Option<DeviceAddr>,
        now: u64,
    ) -> Vec<Delivery> {
        let g = &self.list[gi];
        let body = Node::new("create").children(vec![group_node(dir, g)]);
        g.devices(dir)
            .into_iter()
            .filter(|d| Some(*d) != except)
            .map(|to| Delivery {
                to,
                node: notification(dir, g, g.creator, now, body.clone()),
            })
            .collect()
    }

    /// Pairs of members of group `gi`.
    pub fn pairs(&self, gi: usize) -> Vec<(usize, usize)> {
        member_pairs(&self.list[gi])
    }

    /// Answers a `<iq xmlns="w:g2">` from device `sender`.
    pub fn iq(&mut self, dir: &Directory, sender: DeviceAddr, iq: &Node, now: u64) -> Outcome {
        let id = iq.get_attr("id").unwrap_or_default().to_owned();
        let to = iq.get_attr("to").unwrap_or_default().to_owned();
        let from = if to.is_empty() {
            GROUP_SERVER.to_owned()
        } else {
            to.trim_start_matches('@').to_owned()
        };
        match self.iq_inner(dir, sender, iq, &to, now) {
            Ok((content, notices, peers)) => Outcome {
                reply: iq_result(&id, &from).children(content),
                notices,
                peers,
            },
            Err(e) => Outcome {
                reply: iq_error(&id, &from, &e),
                notices: Vec::new(),
                peers: Vec::new(),
            },
        }
    }

    #[allow(clippy::type_complexity)]
    fn iq_inner(
        &mut self,
        dir: &Directory,
        sender: DeviceAddr,
        iq: &Node,
        to: &str,
        now: u64,
    ) -> Result<(Vec<Node>, Vec<Delivery>, Vec<(usize, usize)>), GroupError> {
        let ty = iq.get_attr("type").unwrap_or_default();
        let child = iq
            .child_nodes()
            .first()
            .ok_or(GroupError::BadRequest("empty group query"))?;
        let me = sender.account;
        match (ty, child.tag.as_str()) {
            ("set", "create") => {
                let subject = child.get_attr("subject").unwrap_or_default();
                let mut members = Vec::new();
                for p in child
                    .child_nodes()
                    .iter()
                    .filter(|p| p.tag == "participant")
                {
                    let jid = p.get_attr("jid").unwrap_or_default();
                    // Unknown numbers are left out, as the server leaves out who cannot be added.
                    if let Some(a) = account_of(dir, jid) {
                        members.push(a);
                    }
                }
                // Groups created from a client use LID addressing, like new groups on WhatsApp.
                let gi = self.create(me, subject, &members, Domain::Lid, now)?;
                let notices = self.create_notices(dir, gi, Some(sender), now);
                Ok((
                    vec![group_node(dir, &self.list[gi])],
                    notices,
                    self.pairs(gi),
                ))
            }
            ("get", "participating") => {
                let groups = self
                    .list
                    .iter()
                    .filter(|g| g.member(me).is_some())
                    .map(|g| group_node(dir, g))
                    .collect();
                Ok((
                    vec![Node::new("groups").children(groups)],
                    Vec::new(),
                    Vec::new(),
                ))
            }
            ("get", "query") => {
                let gi = self.index(to)?;
                let g = &self.list[gi];
                if g.member(me).is_none() {
                    return Err(GroupError::NotMember);
                }
                Ok((vec![group_node(dir, g)], Vec::new(), Vec::new()))
            }
            ("set", tag @ ("add" | "remove" | "promote" | "demote")) => {
                let action = Action::from_tag(tag).ok_or(GroupError::BadRequest("action"))?;
                let gi = self.index(to)?;
                let before: Vec<usize> = self.list[gi].members.iter().map(|m| m.account).collect();
                let jids: Vec<String> = child
                    .child_nodes()
                    .iter()
                    .filter(|p| p.tag == "participant")
                    .filter_map(|p| p.get_attr("jid").map(str::to_owned))
                    .collect();
                let changes = self.change(dir, gi, Some(me), action, &jids)?;
                let g = &self.list[gi];
                let notices =
                    change_notices(dir, g, &before, me, Some(sender), action, &changes, now);
                let answer = Node::new(tag).children(
                    changes
                        .iter()
                        .map(|c| {
                            let mut p = match c.account {
                                Some(a) => participant_node(dir, a, g.mode, None),
                                None => Node::new("participant").attr("jid", c.jid.clone()),
                            };
                            if let Some(e) = c.error {
                                p = p.attr("error", e.to_string());
                            }
                            p
                        })
                        .collect(),
                );
                Ok((vec![answer], notices, member_pairs(g)))
            }
            ("set", "subject") => {
                let gi = self.index(to)?;
                let subject = match &child.content {
                    Content::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    Content::Text(t) => t.clone(),
                    _ => String::new(),
                };
                let subject = subject.trim().to_owned();
                if subject.is_empty() || subject.chars().count() > MAX_SUBJECT {
                    return Err(GroupError::BadRequest(
                        "subject must be 1 to 100 characters",
                    ));
                }
                let g = &mut self.list[gi];
                if g.member(me).is_none() {
                    return Err(GroupError::NotMember);
                }
                g.subject = subject;
                g.subject_owner = me;
                g.subject_time = now;
                let g = &self.list[gi];
                let owner = dir
                    .account(me)
                    .map(|a| a.jid(0, g.mode))
                    .unwrap_or_default();
                let body = Node::new("subject")
                    .attr("subject", g.subject.clone())
                    .attr("s_o", owner)
                    .attr("s_t", now.to_string());
                let notices = g
                    .devices(dir)
                    .into_iter()
                    .filter(|d| *d != sender)
                    .map(|to| Delivery {
                        to,
                        node: notification(dir, g, me, now, body.clone()),
                    })
                    .collect();
                Ok((Vec::new(), notices, Vec::new()))
            }
            ("set", "leave") => {
                let mut left = Vec::new();
                let mut notices = Vec::new();
                for gnode in child.child_nodes().iter().filter(|n| n.tag == "group") {
                    let gjid = gnode.get_attr("id").unwrap_or_default();
                    let gjid = if gjid.contains('@') {
                        gjid.to_owned()
                    } else {
                        format!("{gjid}@{GROUP_SERVER}")
                    };
                    let gi = self.index(&gjid)?;
                    let before: Vec<usize> =
                        self.list[gi].members.iter().map(|m| m.account).collect();
                    if !before.contains(&me) {
                        return Err(GroupError::NotMember);
                    }
                    self.list[gi].members.retain(|m| m.account != me);
                    let g = &self.list[gi];
                    let change = Change {
                        jid: dir
                            .account(me)
                            .map(|a| a.jid(0, g.mode))
                            .unwrap_or_default(),
                        account: Some(me),
                        error: None,
                    };
                    notices.extend(change_notices(
                        dir,
                        g,
                        &before,
                        me,
                        Some(sender),
                        Action::Remove,
                        &[change],
                        now,
                    ));
                    left.push(Node::new("group").attr("id", gjid));
                }
                Ok((vec![Node::new("leave").children(left)], notices, Vec::new()))
            }
            _ => Err(GroupError::BadRequest("unsupported group query")),
        }
    }

    /// Routes a `<message to="…@g.us">` from device `sender`: every member device but the
    /// sender gets `from=<group> participant=<sender device>` (in the group's addressing, the
    /// other identity in `participant_pn`/`participant_lid`) with the shared `skmsg` and its own
    /// pairwise `<enc>` if the sender listed it in `<participants>`. A `<to>` naming a device
    /// outside the group is dropped. With `participant` (a retry for one device) only that
    /// device gets the stanza. A `phash` that differs from the server's own hash over the
    /// group's devices is answered with the server's hash in the ack (delivery still happens).
    pub fn route_message(
        &self,
        dir: &Directory,
        sender: DeviceAddr,
        stanza: &Node,
        now: u64,
    ) -> Routed {
        let reject = |code: &str| Routed {
            deliveries: Vec::new(),
            ack: ack("message", stanza, now, Some(code)),
            dropped: 0,
        };
        let to = stanza.get_attr("to").unwrap_or_default();
        let Ok(gi) = self.index(to) else {
            return reject("404");
        };
        let g = &self.list[gi];
        let Some(sender_account) = dir.account(sender.account) else {
            return reject("401");
        };
        if g.member(sender.account).is_none() {
            return reject("403");
        }
        let all = g.devices(dir);
        let mut targets: Vec<DeviceAddr> = all.iter().copied().filter(|d| *d != sender).collect();
        if let Some(p) = stanza.get_attr("participant") {
            match dir.resolve_device(p) {
                Some((addr, _)) if targets.contains(&addr) => targets = vec![addr],
                _ => return reject("404"),
            }
        }
        let mut pairwise: Vec<(DeviceAddr, Vec<Node>)> = Vec::new();
        let mut dropped = 0;
        if let Some(parts) = stanza.child("participants") {
            for t in parts.child_nodes().iter().filter(|t| t.tag == "to") {
                match t.get_attr("jid").and_then(|j| dir.resolve_device(j)) {
                    Some((addr, _)) if targets.contains(&addr) => {
                        let encs = t
                            .child_nodes()
                            .iter()
                            .filter(|e| e.tag == "enc")
                            .cloned()
                            .collect();
                        pairwise.push((addr, encs));
                    }
                    _ => dropped += 1,
                }
            }
        }
        let direct: Vec<Node> = stanza
            .child_nodes()
            .iter()
            .filter(|e| e.tag == "enc")
            .cloned()
            .collect();
        if direct.is_empty() && pairwise.is_empty() {
            return reject("400");
        }
        let device_identity = stanza.child("device-identity").cloned();
        let shared: Vec<Node> = stanza
            .child_nodes()
            .iter()
            .filter(|n| !matches!(n.tag.as_str(), "participants" | "device-identity" | "enc"))
            .cloned()
            .collect();
        let alt_name = match g.mode {
            Domain::Lid => "participant_pn",
            Domain::Pn => "participant_lid",
        };
        let gjid = g.jid();
        let deliveries = targets
            .into_iter()
            .filter_map(|addr| {
                let mut content: Vec<Node> = pairwise
                    .iter()
                    .filter(|(a, _)| *a == addr)
                    .flat_map(|(_, e)| e.iter().cloned())
                    .collect();
                content.extend(direct.iter().cloned());
                if content.is_empty() {
                    return None;
                }
                let mut n = Node::new("message")
                    .attr("from", gjid.clone())
                    .attr("id", stanza.get_attr("id").unwrap_or_default())
                    .attr("type", stanza.get_attr("type").unwrap_or("text"))
                    .attr("t", now.to_string())
                    .attr("participant", sender_account.jid(sender.device, g.mode))
                    .attr(alt_name, sender_account.jid(sender.device, other(g.mode)))
                    .attr("addressing_mode", g.mode_attr());
                if addr.account != sender.account {
                    n = n.attr("notify", sender_account.name.clone());
                }
                for k in PASSED_MESSAGE_ATTRS {
                    if let Some(v) = stanza.get_attr(k) {
                        n = n.attr(k, v);
                    }
                }
                if content.iter().any(|e| e.get_attr("type") == Some("pkmsg"))
                    && let Some(di) = &device_identity
                {
                    content.push(di.clone());
                }
                content.extend(shared.iter().cloned());
                Some(Delivery {
                    to: addr,
                    node: n.children(content),
                })
            })
            .collect();
        let mut ack = ack("message", stanza, now, None);
        if let Some(theirs) = stanza.get_attr("phash") {
            let ours = self.phash(dir, gi);
            if theirs != ours {
                ack = ack.attr("phash", ours);
            }
        }
        Routed {
            deliveries,
            ack,
            dropped,
        }
    }

    /// The server's participant hash of group `gi`: every member device, in the group's
    /// addressing (see [`participant_hash`]).
    pub fn phash(&self, dir: &Directory, gi: usize) -> String {
        let g = &self.list[gi];
        let jids: Vec<String> = g
            .devices(dir)
            .into_iter()
            .map(|d| dir.jid(d, g.mode))
            .collect();
        participant_hash(&jids)
    }

    /// Routes a `<receipt to="…@g.us" participant="<author>">` from device `sender` to the
    /// author's device (every device of the author when `participant` names no device), `from`
    /// the group with `participant` = the receipt's sender device.
    pub fn route_receipt(
        &self,
        dir: &Directory,
        sender: DeviceAddr,
        stanza: &Node,
        now: u64,
    ) -> Routed {
        let reject = |code: &str| Routed {
            deliveries: Vec::new(),
            ack: ack("receipt", stanza, now, Some(code)),
            dropped: 0,
        };
        let to = stanza.get_attr("to").unwrap_or_default();
        let Ok(gi) = self.index(to) else {
            return reject("404");
        };
        let g = &self.list[gi];
        let Some(author) = stanza.get_attr("participant").and_then(parse_jid) else {
            return reject("400");
        };
        let (Some(author_account), Some(sender_account)) =
            (dir.account_of(&author), dir.account(sender.account))
        else {
            return reject("404");
        };
        let mut node = Node::new("receipt")
            .attr("from", g.jid())
            .attr("id", stanza.get_attr("id").unwrap_or_default())
            .attr("participant", sender_account.jid(sender.device, g.mode))
            .attr(
                "t",
                stanza
                    .get_attr("t")
                    .map_or_else(|| now.to_string(), str::to_owned),
            );
        match stanza.get_attr("type") {
            None | Some("inactive") => {}
            Some(t) => node = node.attr("type", t),
        }
        if let Content::Nodes(c) = &stanza.content {
            node = node.children(c.clone());
        }
        let deliveries = receipt_deliveries(dir, author_account, author.device, sender, &node);
        if deliveries.is_empty() {
            return reject("404");
        }
        Routed {
            deliveries,
            ack: ack("receipt", stanza, now, None),
            dropped: 0,
        }
    }

    /// The `GET /admin/groups` document.
    pub fn json(&self, dir: &Directory) -> serde_json::Value {
        let groups: Vec<_> = self
            .list
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let members: Vec<_> = g
                    .members
                    .iter()
                    .filter_map(|m| dir.account(m.account).map(|a| (m, a)))
                    .map(|(m, a)| {
                        serde_json::json!({
                            "phone": a.phone,
                            "jid": a.jid(0, Domain::Pn),
                            "lid": a.jid(0, Domain::Lid),
                            "admin": m.role.attr(),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "jid": g.jid(),
                    "subject": g.subject,
                    "creator": dir.account(g.creator).map(|a| a.phone.clone()),
                    "addressingMode": g.mode_attr(),
                    "participants": members,
                    "phash": self.phash(dir, gi),
                })
            })
            .collect();
        serde_json::json!({ "groups": groups })
    }
}

/// A `<notification type="w:gp2">` about group `g`, acted by account `actor`, with `body`.
fn notification(dir: &Directory, g: &Group, actor: usize, now: u64, body: Node) -> Node {
    let mut n = Node::new("notification")
        .attr("from", g.jid())
        .attr("type", "w:gp2")
        .attr("t", now.to_string());
    if let Some(a) = dir.account(actor) {
        n = n.attr("participant", a.jid(0, g.mode));
        if g.mode == Domain::Lid {
            n = n.attr("participant_pn", a.jid(0, Domain::Pn));
        }
    }
    n.attr("addressing_mode", g.mode_attr())
        .children(vec![body])
}

/// Notifications of applied `changes`: every device of the members before and after the change
/// (removed members learn they are out) but `except`.
#[allow(clippy::too_many_arguments)]
fn change_notices(
    dir: &Directory,
    g: &Group,
    before: &[usize],
    actor: usize,
    except: Option<DeviceAddr>,
    action: Action,
    changes: &[Change],
    now: u64,
) -> Vec<Delivery> {
    let applied: Vec<Node> = changes
        .iter()
        .filter(|c| c.error.is_none())
        .filter_map(|c| c.account)
        .map(|a| participant_node(dir, a, g.mode, None))
        .collect();
    if applied.is_empty() {
        return Vec::new();
    }
    let body = Node::new(action.tag()).children(applied);
    let mut accounts: Vec<usize> = before.to_vec();
    for m in &g.members {
        if !accounts.contains(&m.account) {
            accounts.push(m.account);
        }
    }
    accounts
        .into_iter()
        .filter_map(|i| dir.account(i).map(|a| (i, a)))
        .flat_map(|(account, a)| {
            a.device_numbers()
                .into_iter()
                .map(move |device| DeviceAddr { account, device })
        })
        .filter(|d| Some(*d) != except)
        .map(|to| Delivery {
            to,
            node: notification(dir, g, actor, now, body.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::{KeyPair, SeededEntropy};

    const A7: DeviceAddr = DeviceAddr {
        account: 0,
        device: 7,
    };
    const B9: DeviceAddr = DeviceAddr {
        account: 1,
        device: 9,
    };
    const C8: DeviceAddr = DeviceAddr {
        account: 2,
        device: 8,
    };

    /// Alice (0, device 7), Bob (1, device 9), Carol (2, device 8).
    fn dir() -> Directory {
        let rng = SeededEntropy::new(21);
        let mut d = Directory::default();
        for (phone, lid, name) in [
            ("15550001111", "100000000000001", "Alice"),
            ("15550002222", "100000000000002", "Bob"),
            ("15550003333", "100000000000003", "Carol"),
        ] {
            d.create(phone, Some(lid), Some(name), KeyPair::generate(&rng), &rng)
                .unwrap();
        }
        d.link(0, [1; 32], [1; 32], 7, true).unwrap();
        d.link(1, [2; 32], [2; 32], 9, true).unwrap();
        d.link(2, [3; 32], [3; 32], 8, true).unwrap();
        d
    }

    fn iq(ty: &str, to: &str, child: Node) -> Node {
        Node::new("iq")
            .attr("id", "Q1")
            .attr("type", ty)
            .attr("xmlns", "w:g2")
            .attr("to", to)
            .children(vec![child])
    }

    fn participant(jid: &str) -> Node {
        Node::new("participant").attr("jid", jid)
    }

    fn create(groups: &mut Groups, d: &Directory) -> (String, Outcome) {
        let req = iq(
            "set",
            "@g.us",
            Node::new("create")
                .attr("subject", "Trip")
                .attr("key", "K1")
                .children(vec![
                    participant("15550002222@s.whatsapp.net"),
                    participant("15550009999@s.whatsapp.net"),
                ]),
        );
        let out = groups.iq(d, A7, &req, 1000);
        let id = out
            .reply
            .child("group")
            .unwrap()
            .get_attr("id")
            .unwrap()
            .to_owned();
        (format!("{id}@g.us"), out)
    }

    fn skmsg_stanza(gjid: &str, to: &[(&str, &str)]) -> Node {
        let parts = to
            .iter()
            .map(|(jid, ty)| {
                Node::new("to").attr("jid", *jid).children(vec![
                    Node::new("enc")
                        .attr("v", "2")
                        .attr("type", *ty)
                        .bytes(vec![1, 2]),
                ])
            })
            .collect();
        Node::new("message")
            .attr("id", "G1")
            .attr("to", gjid)
            .attr("type", "text")
            .children(vec![
                Node::new("participants").children(parts),
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", "skmsg")
                    .bytes(vec![9; 3]),
                Node::new("device-identity").bytes(vec![7; 2]),
            ])
    }

    #[test]
    fn group_jids_are_digits_with_an_optional_dash_part() {
        assert_eq!(
            parse_group_jid("120363000000000001@g.us"),
            Some("120363000000000001")
        );
        assert_eq!(
            parse_group_jid("15550001111-1690000000@g.us"),
            Some("15550001111-1690000000")
        );
        for bad in [
            "@g.us",
            "1-2-3@g.us",
            "12a@g.us",
            "1-@g.us",
            "15550001111@s.whatsapp.net",
        ] {
            assert_eq!(parse_group_jid(bad), None, "{bad}");
        }
    }

    #[test]
    fn create_answers_the_group_and_tells_the_other_members_devices() {
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, out) = create(&mut groups, &d);
        assert_eq!(out.reply.get_attr("type"), Some("result"));
        assert_eq!(out.reply.get_attr("id"), Some("Q1"));
        let g = out.reply.child("group").unwrap();
        assert_eq!(g.get_attr("subject"), Some("Trip"));
        assert_eq!(g.get_attr("addressing_mode"), Some("lid"));
        assert_eq!(g.get_attr("creator"), Some("100000000000001@lid"));
        assert_eq!(g.get_attr("creator_pn"), Some("15550001111@s.whatsapp.net"));
        assert_eq!(
            g.get_attr("size"),
            Some("2"),
            "the unknown number is left out"
        );
        let parts: Vec<_> = g
            .child_nodes()
            .iter()
            .map(|p| {
                (
                    p.get_attr("jid"),
                    p.get_attr("phone_number"),
                    p.get_attr("type"),
                )
            })
            .collect();
        assert_eq!(
            parts,
            vec![
                (
                    Some("100000000000001@lid"),
                    Some("15550001111@s.whatsapp.net"),
                    Some("superadmin")
                ),
                (
                    Some("100000000000002@lid"),
                    Some("15550002222@s.whatsapp.net"),
                    None
                ),
            ]
        );
        // Alice's phone, Bob's phone and Bob's companion; not the creating device.
        let to: Vec<_> = out.notices.iter().map(|n| n.to).collect();
        assert_eq!(
            to,
            vec![
                DeviceAddr {
                    account: 0,
                    device: 0
                },
                DeviceAddr {
                    account: 1,
                    device: 0
                },
                B9
            ]
        );
        let n = &out.notices[2].node;
        assert_eq!(n.get_attr("type"), Some("w:gp2"));
        assert_eq!(n.get_attr("from"), Some(gjid.as_str()));
        assert_eq!(n.get_attr("participant"), Some("100000000000001@lid"));
        assert!(n.child("create").and_then(|c| c.child("group")).is_some());
        assert_eq!(out.peers, vec![(0, 1)]);
    }

    #[test]
    fn query_and_participating_answer_members_only() {
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, _) = create(&mut groups, &d);
        let q = iq(
            "get",
            &gjid,
            Node::new("query").attr("request", "interactive"),
        );
        let bob = groups.iq(&d, B9, &q, 1);
        assert_eq!(
            bob.reply.child("group").unwrap().get_attr("subject"),
            Some("Trip")
        );
        let carol = groups.iq(&d, C8, &q, 1);
        assert_eq!(carol.reply.get_attr("type"), Some("error"));
        assert_eq!(
            carol.reply.child("error").unwrap().get_attr("code"),
            Some("403")
        );
        let missing = groups.iq(&d, A7, &iq("get", "999@g.us", Node::new("query")), 1);
        assert_eq!(
            missing.reply.child("error").unwrap().get_attr("code"),
            Some("404")
        );
        let all = iq(
            "get",
            "@g.us",
            Node::new("participating")
                .children(vec![Node::new("participants"), Node::new("description")]),
        );
        let bob_all = groups.iq(&d, B9, &all, 1);
        assert_eq!(
            bob_all.reply.child("groups").unwrap().child_nodes().len(),
            1
        );
        let carol_all = groups.iq(&d, C8, &all, 1);
        assert!(
            carol_all
                .reply
                .child("groups")
                .unwrap()
                .child_nodes()
                .is_empty()
        );
    }

    #[test]
    fn only_admins_change_members_and_everyone_involved_is_told() {
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, _) = create(&mut groups, &d);
        let add_carol = iq(
            "set",
            &gjid,
            Node::new("add").children(vec![participant("15550003333@s.whatsapp.net")]),
        );
        let by_bob = groups.iq(&d, B9, &add_carol, 5);
        assert_eq!(
            by_bob.reply.child("error").unwrap().get_attr("code"),
            Some("401")
        );
        assert!(by_bob.notices.is_empty());

        let by_alice = groups.iq(&d, A7, &add_carol, 5);
        let p = by_alice
            .reply
            .child("add")
            .unwrap()
            .child("participant")
            .unwrap();
        assert_eq!(p.get_attr("jid"), Some("100000000000003@lid"));
        assert_eq!(p.get_attr("error"), None);
        assert!(
            by_alice.notices.iter().any(|n| n.to == C8),
            "the new member is told"
        );
        assert!(
            by_alice.notices.iter().all(|n| n.to != A7),
            "not the acting device"
        );
        assert!(by_alice.peers.contains(&(1, 2)));
        let again = groups.iq(&d, A7, &add_carol, 6);
        assert_eq!(
            again
                .reply
                .child("add")
                .unwrap()
                .child("participant")
                .unwrap()
                .get_attr("error"),
            Some("409")
        );
        assert!(again.notices.is_empty(), "nothing changed, nobody is told");

        let remove_bob = iq(
            "set",
            &gjid,
            Node::new("remove").children(vec![participant("100000000000002@lid")]),
        );
        let out = groups.iq(&d, A7, &remove_bob, 7);
        assert!(
            out.notices.iter().any(|n| n.to == B9),
            "the removed member is told"
        );
        let n = &out.notices.iter().find(|n| n.to == B9).unwrap().node;
        let removed = n.child("remove").unwrap().child("participant").unwrap();
        assert_eq!(removed.get_attr("jid"), Some("100000000000002@lid"));
        assert_eq!(
            removed.get_attr("phone_number"),
            Some("15550002222@s.whatsapp.net")
        );
        let g = groups.get(&gjid).unwrap();
        assert_eq!(
            g.members.iter().map(|m| m.account).collect::<Vec<_>>(),
            vec![0, 2]
        );

        let promote = iq(
            "set",
            &gjid,
            Node::new("promote").children(vec![participant("15550003333@s.whatsapp.net")]),
        );
        groups.iq(&d, A7, &promote, 8);
        assert_eq!(
            groups.get(&gjid).unwrap().member(2).unwrap().role,
            Role::Admin
        );
        let subject = iq(
            "set",
            &gjid,
            Node::new("subject").bytes(b"New name".to_vec()),
        );
        let out = groups.iq(&d, C8, &subject, 9);
        assert_eq!(out.reply.get_attr("type"), Some("result"));
        let s = out.notices[0].node.child("subject").unwrap();
        assert_eq!(s.get_attr("subject"), Some("New name"));
        assert_eq!(s.get_attr("s_o"), Some("100000000000003@lid"));
        let leave = iq(
            "set",
            "@g.us",
            Node::new("leave").children(vec![Node::new("group").attr("id", gjid.clone())]),
        );
        let out = groups.iq(&d, C8, &leave, 10);
        assert_eq!(
            out.reply
                .child("leave")
                .unwrap()
                .child("group")
                .unwrap()
                .get_attr("id"),
            Some(gjid.as_str())
        );
        assert!(groups.get(&gjid).unwrap().member(2).is_none());
        let n = &out.notices[0].node;
        assert_eq!(
            n.get_attr("participant"),
            Some("100000000000003@lid"),
            "a self-removal"
        );
    }

    #[test]
    fn a_group_message_fans_out_the_skmsg_with_each_devices_own_distribution() {
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, _) = create(&mut groups, &d);
        let stanza = skmsg_stanza(
            &gjid,
            &[
                ("100000000000002:9@lid", "pkmsg"),
                ("100000000000002@lid", "msg"),
                ("100000000000003:8@lid", "pkmsg"),
            ],
        );
        let r = groups.route_message(&d, A7, &stanza, 50);
        assert_eq!(r.dropped, 1, "Carol is not a member");
        assert_eq!(r.ack.get_attr("error"), None);
        assert_eq!(r.ack.get_attr("from"), Some(gjid.as_str()));
        assert_eq!(
            r.ack.get_attr("phash"),
            None,
            "no phash sent, none compared"
        );
        let to: Vec<_> = r.deliveries.iter().map(|x| x.to).collect();
        assert_eq!(
            to,
            vec![
                DeviceAddr {
                    account: 0,
                    device: 0
                },
                DeviceAddr {
                    account: 1,
                    device: 0
                },
                B9
            ]
        );
        let bob = &r.deliveries[2].node;
        assert_eq!(bob.get_attr("from"), Some(gjid.as_str()));
        assert_eq!(bob.get_attr("participant"), Some("100000000000001:7@lid"));
        assert_eq!(
            bob.get_attr("participant_pn"),
            Some("15550001111:7@s.whatsapp.net")
        );
        assert_eq!(bob.get_attr("addressing_mode"), Some("lid"));
        assert_eq!(bob.get_attr("notify"), Some("Alice"));
        let types: Vec<_> = bob
            .child_nodes()
            .iter()
            .map(|n| (n.tag.as_str(), n.get_attr("type")))
            .collect();
        assert_eq!(
            types,
            vec![
                ("enc", Some("pkmsg")),
                ("enc", Some("skmsg")),
                ("device-identity", None)
            ]
        );
        let alice_phone = &r.deliveries[0].node;
        assert_eq!(alice_phone.child_nodes().len(), 1, "the skmsg only");
        assert_eq!(alice_phone.get_attr("notify"), None, "own device");

        let carol = groups.route_message(&d, C8, &stanza, 50);
        assert_eq!(carol.ack.get_attr("error"), Some("403"));
        assert!(carol.deliveries.is_empty());
    }

    #[test]
    fn a_stale_phash_is_answered_with_the_servers_hash() {
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, _) = create(&mut groups, &d);
        let devices = [
            "100000000000001@lid",
            "100000000000001:7@lid",
            "100000000000002@lid",
            "100000000000002:9@lid",
        ];
        let right = participant_hash(&devices);
        let ok = skmsg_stanza(&gjid, &[]).attr("phash", right.clone());
        assert_eq!(
            groups.route_message(&d, A7, &ok, 1).ack.get_attr("phash"),
            None
        );
        let stale = skmsg_stanza(&gjid, &[]).attr("phash", participant_hash(&devices[..2]));
        let r = groups.route_message(&d, A7, &stale, 1);
        assert_eq!(r.ack.get_attr("phash"), Some(right.as_str()));
        assert_eq!(r.ack.get_attr("error"), None, "delivered anyway");
        assert_eq!(r.deliveries.len(), 3);
    }

    #[test]
    fn a_pn_group_addresses_members_by_phone_number() {
        let d = dir();
        let mut groups = Groups::default();
        let gi = groups.create(1, "PN group", &[0], Domain::Pn, 3).unwrap();
        let gjid = groups.list()[gi].jid();
        let g = group_node(&d, &groups.list()[gi]);
        assert_eq!(g.get_attr("addressing_mode"), Some("pn"));
        assert_eq!(g.get_attr("creator"), Some("15550002222@s.whatsapp.net"));
        assert_eq!(
            g.child_nodes()[1].get_attr("lid"),
            Some("100000000000001@lid")
        );
        let r = groups.route_message(
            &d,
            B9,
            &skmsg_stanza(&gjid, &[("15550001111:7@s.whatsapp.net", "pkmsg")]),
            4,
        );
        let alice = r.deliveries.iter().find(|x| x.to == A7).unwrap();
        assert_eq!(
            alice.node.get_attr("participant"),
            Some("15550002222:9@s.whatsapp.net")
        );
        assert_eq!(
            alice.node.get_attr("participant_lid"),
            Some("100000000000002:9@lid")
        );
    }

    #[test]
    fn group_receipts_go_to_the_authors_device_from_the_group() {
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, _) = create(&mut groups, &d);
        let s = Node::new("receipt")
            .attr("id", "G1")
            .attr("to", gjid.clone())
            .attr("participant", "100000000000001:7@lid")
            .attr("type", "read");
        let r = groups.route_receipt(&d, B9, &s, 9);
        assert_eq!(r.deliveries.len(), 1);
        assert_eq!(r.deliveries[0].to, A7);
        let n = &r.deliveries[0].node;
        assert_eq!(n.get_attr("from"), Some(gjid.as_str()));
        assert_eq!(n.get_attr("participant"), Some("100000000000002:9@lid"));
        assert_eq!(n.get_attr("type"), Some("read"));
        assert_eq!(r.ack.get_attr("class"), Some("receipt"));
    }

    #[test]
    fn a_retry_with_participant_goes_to_that_device_only_and_outsiders_cannot_be_targeted() {
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, _) = create(&mut groups, &d);
        let retry = Node::new("message")
            .attr("id", "G1")
            .attr("to", gjid.clone())
            .attr("type", "text")
            .attr("participant", "100000000000002:9@lid")
            .children(vec![
                Node::new("enc")
                    .attr("v", "2")
                    .attr("type", "msg")
                    .bytes(vec![4]),
            ]);
        let r = groups.route_message(&d, A7, &retry, 1);
        assert_eq!(r.deliveries.len(), 1);
        assert_eq!(r.deliveries[0].to, B9);
        assert_eq!(
            r.deliveries[0].node.child("enc").unwrap().get_attr("type"),
            Some("msg")
        );
        let mut outsider = retry.clone();
        for (k, v) in &mut outsider.attrs {
            if k == "participant" {
                *v = "100000000000003:8@lid".into();
            }
        }
        let r = groups.route_message(&d, A7, &outsider, 1);
        assert_eq!(r.ack.get_attr("error"), Some("404"));
        assert!(r.deliveries.is_empty());
        let unknown = skmsg_stanza("999@g.us", &[]);
        assert_eq!(
            groups
                .route_message(&d, A7, &unknown, 1)
                .ack
                .get_attr("error"),
            Some("404")
        );
    }

    /// Our client's parsers (`groups::metadata`, `groups::notification`) read what the relay
    /// produces: the vectors are the relay's own answers and notifications.
    #[test]
    fn the_clients_group_parsers_read_the_relays_stanzas() {
        use crate::channels::whatsapp::groups::metadata::{
            AddressingMode, Admin, parse_participating_answer, parse_query_answer,
        };
        use crate::channels::whatsapp::groups::notification::{
            GroupEvent, MemberChange, parse_notification,
        };
        let d = dir();
        let mut groups = Groups::default();
        let (gjid, out) = create(&mut groups, &d);
        let info = parse_query_answer(&out.reply).unwrap();
        assert_eq!(info.jid, gjid);
        assert_eq!(info.subject, "Trip");
        assert_eq!(info.addressing_mode, AddressingMode::Lid);
        assert_eq!(info.owner_pn.as_deref(), Some("15550001111@s.whatsapp.net"));
        assert_eq!(info.participants.len(), 2);
        assert_eq!(info.participants[0].admin, Admin::SuperAdmin);
        assert_eq!(
            info.participant("15550002222@s.whatsapp.net")
                .and_then(|p| p.lid.as_deref()),
            Some("100000000000002@lid")
        );
        let created = parse_notification(&out.notices[2].node).unwrap();
        assert!(matches!(&created.events[0], GroupEvent::Created(g) if g.jid == gjid));

        let all = iq("get", "@g.us", Node::new("participating"));
        let list = parse_participating_answer(&groups.iq(&d, B9, &all, 2).reply).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].jid, gjid);

        let add = iq(
            "set",
            &gjid,
            Node::new("add").children(vec![participant("15550003333@s.whatsapp.net")]),
        );
        let out = groups.iq(&d, A7, &add, 3);
        let n = parse_notification(&out.notices.iter().find(|n| n.to == C8).unwrap().node).unwrap();
        assert_eq!(n.group, gjid);
        assert_eq!(n.actor.as_deref(), Some("100000000000001@lid"));
        assert_eq!(n.actor_pn.as_deref(), Some("15550001111@s.whatsapp.net"));
        match &n.events[0] {
            GroupEvent::Members {
                change,
                participants,
            } => {
                assert_eq!(*change, MemberChange::Add);
                assert_eq!(
                    participants[0].phone.as_deref(),
                    Some("15550003333@s.whatsapp.net")
                );
            }
            e => panic!("{e:?}"),
        }
        let leave = iq(
            "set",
            "@g.us",
            Node::new("leave").children(vec![Node::new("group").attr("id", gjid.clone())]),
        );
        let out = groups.iq(&d, B9, &leave, 4);
        let n = parse_notification(&out.notices[0].node).unwrap();
        assert!(matches!(
            n.events[0],
            GroupEvent::Members {
                change: MemberChange::Leave,
                ..
            }
        ));
        assert!(n.changes_members());
        let subject = iq(
            "set",
            &gjid,
            Node::new("subject").bytes(b"Renamed".to_vec()),
        );
        let out = groups.iq(&d, A7, &subject, 5);
        let n = parse_notification(&out.notices[0].node).unwrap();
        assert_eq!(
            n.events,
            vec![GroupEvent::Subject {
                subject: "Renamed".into()
            }]
        );
        // The client's phash over the group's devices is the relay's: no correction in the ack.
        let info = parse_query_answer(
            &groups
                .iq(&d, A7, &iq("get", &gjid, Node::new("query")), 6)
                .reply,
        )
        .unwrap();
        let mut devices = Vec::new();
        for p in &info.participants {
            let user = p.jid.trim_end_matches("@lid");
            let acct = d.accounts.iter().find(|a| a.lid == user).unwrap();
            for dev in acct.device_numbers() {
                devices.push(acct.jid(dev, Domain::Lid));
            }
        }
        let msg = skmsg_stanza(&gjid, &[]).attr("phash", participant_hash(&devices));
        assert_eq!(
            groups.route_message(&d, A7, &msg, 7).ack.get_attr("phash"),
            None
        );
    }
}
