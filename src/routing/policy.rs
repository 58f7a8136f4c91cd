//! Who may talk to the assistant: the inbound access decision, pure.
//!
//! Upstream's semantics (`checkInboundAccessControl`, reference `agent.md` §1), in order, for a
//! direct chat:
//!
//! 1. a message the linked account sent (from the phone or another device) is dropped unless it
//!    is in the self chat: it is our own outbound traffic (groups too);
//! 2. `dmPolicy: disabled` drops every DM;
//! 3. the self chat (and the account's own number) is always admitted;
//! 4. `"*"` in `allowFrom` admits anyone, and so does `open` (which the config compiler only
//!    accepts together with `"*"`; without it this layer falls back to the allowlist);
//! 5. a sender in `allowFrom` is admitted; an empty `allowFrom` counts as `[own number]`;
//! 6. under `pairing`, a sender approved with `openclaw pairing approve` is admitted;
//! 7. otherwise `allowlist` (and `open` without `"*"`) drops silently, and `pairing` answers
//!    the one challenge a new request gets (no reply to a pending one, to the 4th pending
//!    sender, or to backlog from before the connection).
//!
//! Groups (upstream `resolveChannelGroupPolicy`, `applyGroupGating`), in order: a message the
//! account sent itself is dropped; `groupPolicy` (default `allowlist`) `disabled` drops; a
//! non-empty `groups` map admits only the listed JIDs (or every group with `"*"`); `allowlist`
//! needs the sender in `groupAllowFrom` (falls back to `allowFrom`; an empty list blocks all
//! groups; `"*"` admits every member), `open` admits any member; `requireMention` (the group's
//! entry, else `"*"`'s, default `true`) drops unmentioned messages, which the caller keeps as
//! group history.

use std::collections::BTreeMap;

use crate::config::model::whatsapp::{DmPolicy, GroupPolicy, WhatsAppGroup};

use super::pairing::{self, PendingPairings, Upsert};
use super::{ChatKind, Inbound};

/// The access settings of one channel account (see
/// [`crate::config::model::whatsapp::ResolvedAccount`]) plus runtime facts.
#[derive(Debug, Clone)]
pub struct AccessContext<'a> {
    /// `dmPolicy`.
    pub dm_policy: DmPolicy,
    /// The configured `allowFrom` (E.164 or `"*"`).
    pub allow_from: &'a [String],
    /// `groupPolicy`.
    pub group_policy: GroupPolicy,
    /// The effective `groupAllowFrom` (already falling back to `allowFrom`).
    pub group_allow_from: &'a [String],
    /// The `groups` map by JID or `"*"`.
    pub groups: &'a BTreeMap<String, WhatsAppGroup>,
    /// The linked account's own number, once known.
    pub own_e164: Option<&'a str>,
    /// The pairing state of the channel (pending requests and approved senders).
    pub pairing: &'a PendingPairings,
    /// Now, Unix ms (for pairing expiry).
    pub now_ms: u64,
}

impl<'a> AccessContext<'a> {
    /// The context of a resolved WhatsApp account (`allowFrom`, `groupAllowFrom` falling back to
    /// it, `groups`, policies) with the runtime facts.
    pub fn for_account(
        account: &'a crate::config::model::whatsapp::ResolvedAccount,
        own_e164: Option<&'a str>,
        pairing: &'a PendingPairings,
        now_ms: u64,
    ) -> Self {
        Self {
            dm_policy: account.dm_policy,
            allow_from: &account.allow_from,
            group_policy: account.group_policy,
            group_allow_from: &account.group_allow_from,
            groups: &account.groups,
            own_e164,
            pairing,
            now_ms,
        }
    }
}

/// The rule that made a decision; its `Display` is the debug-log text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Sent by the linked account to someone else: our own outbound traffic.
    FromMe,
    /// `dmPolicy: disabled`.
    DmDisabled,
    /// The sender is the account's own number (self chat, or the empty-`allowFrom` default).
    OwnNumber,
    /// `"*"` in `allowFrom` (or `dmPolicy: open` with it).
    Wildcard,
    /// The sender is in the configured `allowFrom`.
    AllowFrom,
    /// The sender was approved with `openclaw pairing approve`.
    PairingApproved,
    /// `dmPolicy: allowlist` and the sender is not listed: dropped silently.
    NotAllowlisted,
    /// `dmPolicy: open` without `"*"` in `allowFrom` (the compiler refuses this config): treated
    /// as an allowlist, the sender is not listed.
    OpenWithoutWildcard,
    /// `dmPolicy: pairing`, new sender: a request was created and the challenge is sent.
    PairingChallenge,
    /// `dmPolicy: pairing`, the sender already has a pending request: no second reply.
    PairingPending,
    /// `dmPolicy: pairing`, the account already has 3 pending requests: ignored.
    PairingFull,
    /// `dmPolicy: pairing`, the message predates the connection: no challenge.
    PairingBacklog,
    /// `groupPolicy: disabled`.
    GroupDisabled,
    /// The group is not in the `groups` map.
    GroupNotListed,
    /// `groupPolicy: allowlist` with an empty `groupAllowFrom`/`allowFrom`.
    GroupAllowlistEmpty,
    /// `groupPolicy: allowlist` and the sender is not in `groupAllowFrom`.
    GroupSenderNotAllowed,
    /// The group requires a mention and there was none (kept as history, not answered).
    GroupNotMentioned,
    /// The group message passed every gate.
    GroupAdmitted,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Rule::FromMe => "sent by the linked account to someone else (own outbound message)",
            Rule::DmDisabled => "dmPolicy is disabled",
            Rule::OwnNumber => "sender is the account's own number",
            Rule::Wildcard => "allowFrom contains \"*\"",
            Rule::AllowFrom => "sender is in allowFrom",
            Rule::PairingApproved => "sender was approved by pairing",
            Rule::NotAllowlisted => "dmPolicy allowlist: sender not in allowFrom (dropped silently)",
            Rule::OpenWithoutWildcard => "dmPolicy open without \"*\" in allowFrom: sender not in allowFrom",
            Rule::PairingChallenge => "dmPolicy pairing: new sender, pairing code sent",
            Rule::PairingPending => "dmPolicy pairing: request already pending, no second reply",
            Rule::PairingFull => "dmPolicy pairing: 3 requests pending on this account, sender ignored",
            Rule::PairingBacklog => "dmPolicy pairing: message predates the connection, no challenge",
            Rule::GroupDisabled => "groupPolicy is disabled",
            Rule::GroupNotListed => "group not in the groups map",
            Rule::GroupAllowlistEmpty => "groupPolicy allowlist with an empty groupAllowFrom",
            Rule::GroupSenderNotAllowed => "groupPolicy allowlist: sender not in groupAllowFrom",
            Rule::GroupNotMentioned => "group requires a mention",
            Rule::GroupAdmitted => "group message admitted",
        };
        f.write_str(s)
    }
}

/// What to do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand it to the agent.
    Admit {
        /// Send a read receipt (if `sendReadReceipts`): never in the self chat.
        mark_read: bool,
    },
    /// Do nothing visible: no reply, no read receipt, no provider request.
    Drop,
    /// Send exactly this reply to `to` and nothing else (the message is not marked read).
    Challenge {
        /// Where the reply goes (the chat id).
        to: String,
        /// The pairing code.
        code: String,
        /// The reply text ([`pairing::challenge_text`]).
        reply: String,
    },
}

/// A routing decision: the action, the rule that made it and, when the pairing state changed,
/// the new state to persist **before** any reply is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why.
    pub rule: Rule,
    /// The new pairing state, when it changed.
    pub pairing_state: Option<PendingPairings>,
}

impl Decision {
    fn new(action: Action, rule: Rule) -> Self {
        Self { action, rule, pairing_state: None }
    }
    fn admit(rule: Rule, mark_read: bool) -> Self {
        Self::new(Action::Admit { mark_read }, rule)
    }
    fn drop(rule: Rule) -> Self {
        Self::new(Action::Drop, rule)
    }

    /// Whether the message goes to the agent.
    pub fn admitted(&self) -> bool {
        matches!(self.action, Action::Admit { .. })
    }
}

/// Decides what happens to `msg`. `random_index(n)` picks a pairing-code character (uniform
/// below `n`); it is called only when a new pairing request is created.
pub fn decide(ctx: &AccessContext<'_>, msg: &Inbound, random_index: &mut dyn FnMut(usize) -> usize) -> Decision {
    match msg.chat_kind {
        ChatKind::Direct => decide_direct(ctx, msg, random_index),
        ChatKind::Group => decide_group(ctx, msg),
    }
}

fn decide_direct(ctx: &AccessContext<'_>, msg: &Inbound, random_index: &mut dyn FnMut(usize) -> usize) -> Decision {
    let peer = msg.peer_id();
    if msg.from_me && !msg.self_chat {
        return Decision::drop(Rule::FromMe);
    }
    if ctx.dm_policy == DmPolicy::Disabled {
        return Decision::drop(Rule::DmDisabled);
    }
    let own = msg.self_chat || ctx.own_e164.is_some_and(|o| o == peer);
    if own {
        return Decision::admit(Rule::OwnNumber, !msg.self_chat);
    }
    let wildcard = ctx.allow_from.iter().any(|e| e == "*");
    if wildcard {
        return Decision::admit(Rule::Wildcard, true);
    }
    if ctx.allow_from.iter().any(|e| e == peer) {
        return Decision::admit(Rule::AllowFrom, true);
    }
    match ctx.dm_policy {
        DmPolicy::Allowlist | DmPolicy::Disabled => Decision::drop(Rule::NotAllowlisted),
        DmPolicy::Open => Decision::drop(Rule::OpenWithoutWildcard),
        DmPolicy::Pairing => {
            if ctx.pairing.is_approved(&msg.account_id, peer) {
                return Decision::admit(Rule::PairingApproved, true);
            }
            if msg.is_backlog {
                return Decision::drop(Rule::PairingBacklog);
            }
            let mut state = ctx.pairing.clone();
            let mut meta = BTreeMap::new();
            if let Some(name) = msg.sender_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                meta.insert("name".to_string(), name.to_string());
            }
            let outcome = state.upsert(&msg.account_id, peer, meta, ctx.now_ms, random_index);
            let changed = (state != *ctx.pairing).then_some(state);
            let (action, rule) = match outcome {
                Upsert::Created { code } => {
                    let reply = pairing::challenge_text(&msg.channel, &pairing::id_line(&msg.channel, peer), &code);
                    (Action::Challenge { to: msg.chat_id.clone(), code, reply }, Rule::PairingChallenge)
                }
                Upsert::AlreadyPending { .. } => (Action::Drop, Rule::PairingPending),
                Upsert::Full => (Action::Drop, Rule::PairingFull),
            };
            Decision { action, rule, pairing_state: changed }
        }
    }
}

fn decide_group(ctx: &AccessContext<'_>, msg: &Inbound) -> Decision {
    if msg.from_me {
        return Decision::drop(Rule::FromMe);
    }
    if ctx.group_policy == GroupPolicy::Disabled {
        return Decision::drop(Rule::GroupDisabled);
    }
    let (own, star) = (ctx.groups.get(&msg.chat_id), ctx.groups.get("*"));
    if !ctx.groups.is_empty() && own.is_none() && star.is_none() {
        return Decision::drop(Rule::GroupNotListed);
    }
    if ctx.group_policy == GroupPolicy::Allowlist {
        if ctx.group_allow_from.is_empty() {
            return Decision::drop(Rule::GroupAllowlistEmpty);
        }
        let peer = msg.peer_id();
        let ok = ctx.group_allow_from.iter().any(|e| e == "*" || e == peer);
        if !ok {
            return Decision::drop(Rule::GroupSenderNotAllowed);
        }
    }
    let require_mention = require_mention(ctx.groups, &msg.chat_id);
    if require_mention && !msg.mentioned {
        return Decision::drop(Rule::GroupNotMentioned);
    }
    Decision::admit(Rule::GroupAdmitted, true)
}

/// `requireMention` of group `chat_id`: the group's own entry, else the `"*"` entry, else
/// `true` (upstream's default).
pub fn require_mention(groups: &BTreeMap<String, WhatsAppGroup>, chat_id: &str) -> bool {
    groups
        .get(chat_id)
        .and_then(|g| g.require_mention)
        .or_else(|| groups.get("*").and_then(|g| g.require_mention))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests;
