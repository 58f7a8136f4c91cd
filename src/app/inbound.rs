//! The consumer of the inbound queue: the assistant answers (issue 11 items 3–4).
//!
//! For each message, in arrival order:
//!
//! 1. the routing decision ([`PairingStore::decide_inbound`], logged with its rule): a dropped
//!    sender gets nothing (no reply, no read receipt, no provider request); a new sender under
//!    `dmPolicy: pairing` gets the one challenge reply, stored in the pairing file first;
//!    In a group the routing input carries whether the message mentions the account
//!    ([`App::group_mention`]); every decision (but our own messages) is remembered with its
//!    rule for `channels.decisions`; a group message dropped only for lack of a mention is kept
//!    as group history, and the next answered message of the group takes it as context;
//! 2. an admitted message gets the ack reaction (`messages.ackReaction` within
//!    `ackReactionScope`) and, when `sendReadReceipts`, a read receipt at once; the session's last
//!    route is recorded (for `/hooks/agent` `channel: "last"`) while the turn starts (a route
//!    that cannot be stored is logged; the contact is answered all the same);
//! 3. it joins its session's **lane**: one turn per session at a time. Messages that arrive while
//!    a turn runs wait and are collected into the next turn, joined by newlines (upstream's
//!    `collect` queue mode); turns of different sessions run in parallel within the agent's
//!    global limit;
//! 4. while the model works the chat shows `composing` (renewed every
//!    [`TYPING_INTERVAL`]), then `paused` (after the reply is stored, so the reply does not
//!    queue behind it); the reply is chunked and stored in the outbox in order
//!    ([`App::deliver_reply`], `replyToMode` quoting the last message of the batch). A failed
//!    turn sends nothing and is logged with the provider, model and reason. Each turn is
//!    recorded as a run (`origin: "inbound"`, [`super::inbound_runs`]), stored while the model
//!    works and completed once the reply is stored.
//!
//! Nothing between the decrypted message and the provider request, or between the answer and
//! the encrypted send, waits for a disk sync that the contact's answer does not depend on
//! (`benches/full_turn.rs` measures both legs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::agent::turn::TurnRequest;
use crate::channels::registry::{AccountCommand, Presence};
use crate::config::model::messages::AckReactionScope;
use crate::messaging::{ChatId, InboundMessage, InboundReceiver, MessageId, OutboundBody};
use crate::routing::policy::Action;
use crate::routing::{ChatKind, Inbound, SessionKeyContext};

use super::inbound_runs::TurnOutcome;
use super::send::chat_e164;
use super::App;

/// How often `composing` is renewed while a turn runs (upstream `typingIntervalSeconds`).
pub const TYPING_INTERVAL: Duration = Duration::from_secs(6);
/// Backlog older than the consumer's start minus this gets no pairing challenge.
pub const BACKLOG_GRACE_MS: u64 = 30_000;

/// An admitted message waiting for its session's turn.
#[derive(Debug, Clone)]
struct Pending {
    msg: InboundMessage,
    text: String,
}

type Lanes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Pending>>>>;

/// The routing view of a channel message.
pub fn to_routing(msg: &InboundMessage, text: &str, started_ms: u64) -> Inbound {
    let chat_number = chat_e164(msg.chat.as_str());
    let self_chat = msg.from_me && !msg.is_group && chat_number.is_some() && chat_number == msg.sender_e164;
    Inbound {
        channel: msg.channel.clone(),
        account_id: msg.account_id.clone(),
        sender_e164: msg.sender_e164.clone().or_else(|| chat_e164(msg.sender.as_str())),
        sender_id: msg.sender.to_string(),
        chat_kind: if msg.is_group { ChatKind::Group } else { ChatKind::Direct },
        chat_id: msg.chat.to_string(),
        self_chat,
        from_me: msg.from_me,
        mentioned: false,
        is_backlog: msg.timestamp_ms.saturating_add(BACKLOG_GRACE_MS) < started_ms,
        sender_name: msg.sender_name.clone(),
        text: text.to_string(),
    }
}

/// Whether an admitted message gets the ack reaction. `group-mentions` (upstream's default):
/// a group message that mentions the assistant, or any admitted message of a group that does
/// not require a mention (upstream's activation "always").
fn ack_in_scope(scope: AckReactionScope, is_group: bool, mentioned: bool, require_mention: bool) -> bool {
    match scope {
        AckReactionScope::All => true,
        AckReactionScope::Direct => !is_group,
        AckReactionScope::GroupAll => is_group,
        AckReactionScope::GroupMentions => is_group && (mentioned || !require_mention),
        AckReactionScope::Off | AckReactionScope::None => false,
    }
}

impl App {
    /// Reads `rx` until every sink is dropped or `shutdown` flips.
    pub async fn run_inbound(self: Arc<Self>, mut rx: InboundReceiver, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let started = self.now_ms();
        let lanes: Lanes = Arc::default();
        loop {
            let (msg, receipt) = tokio::select! {
                m = rx.recv_tracked() => match m { Some(m) => m, None => break },
                _ = shutdown.wait_for(|s| *s) => break,
            };
            // Confirmed once the routing decision and its effects are stored; an unconfirmed
            // message is handed out again after a restart.
            match self.clone().accept(msg, started, &lanes).await {
                Ok(()) => {
                    if let Err(e) = receipt.handled().await {
                        tracing::error!(error = %e, "inbound message handled but not confirmed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "inbound message not handled"),
            }
        }
    }

    async fn accept(self: Arc<Self>, msg: InboundMessage, started: u64, lanes: &Lanes) -> Result<(), String> {
        let Some(text) = msg.body.text().map(str::to_string).filter(|t| !t.trim().is_empty()) else {
            tracing::debug!(channel = %msg.channel, id = %msg.id, "inbound message without text ignored");
            return Ok(());
        };
        let Some(settings) = self.cfg.account(&msg.channel, &msg.account_id).cloned() else {
            return Err(format!("message for unconfigured account {}/{}", msg.channel, msg.account_id));
        };
        let mut routed = to_routing(&msg, &text, started);
        let me = self.own_identity(&msg.channel, &msg.account_id);
        let mention = if msg.is_group { self.group_mention(&settings, &me, &msg, &text) } else { None };
        routed.mentioned = mention.is_some();
        let own = routed.self_chat.then(|| routed.sender_e164.clone()).flatten().or_else(|| me.e164.clone());
        let pairing = self.pairing.clone();
        let now = self.now_ms();
        let r2 = routed.clone();
        let resolved = settings.resolved.clone();
        let decide = move || pairing.decide_inbound(&resolved, own.as_deref(), &r2, now, &mut |n| rand::random_range(0..n.max(1)));
        // Off the async workers only when the pairing file is read (a DM under `pairing`).
        let decision = if crate::agent::pairing_store::PairingStore::reads_store(&settings.resolved, &routed) {
            tokio::task::spawn_blocking(decide).await.map_err(|e| e.to_string())?
        } else {
            decide()
        }
        .map_err(|e| e.to_string())?;
        crate::routing::log_decision(&routed, &decision);
        if decision.rule != crate::routing::Rule::FromMe {
            // Our own messages (from the phone or another device) are not "ignored messages".
            let record = crate::routing::decisions::DecisionRecord::new(now, &routed, msg.id.as_str(), decision.rule, decision.admitted(), mention);
            self.remember_decision(record);
        }
        let key_ctx = SessionKeyContext { dm_scope: self.cfg.dm_scope, ..SessionKeyContext::default() };
        match decision.action {
            Action::Drop if decision.rule == crate::routing::Rule::GroupNotMentioned => {
                let key = crate::routing::session_key(&key_ctx, &routed);
                let entry = crate::routing::group_history::Entry {
                    sender: super::groups::sender_label(&msg, &routed),
                    body: text,
                    message_id: msg.id.to_string(),
                    timestamp_ms: msg.timestamp_ms,
                };
                self.record_group_history(&key, entry, self.group_history_limit(&settings));
                Ok(())
            }
            Action::Drop => Ok(()),
            Action::Challenge { to, reply, .. } => {
                let (handle, _, _) = self.handle_for(&msg.channel, Some(&msg.account_id)).map_err(|e| e.to_string())?;
                let id = super::send::new_message_id(None);
                self.enqueue(&handle, id, ChatId::new(to), None, OutboundBody::Text { text: reply })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
            Action::Admit { mark_read } => {
                let (handle, _, _) = self.handle_for(&msg.channel, Some(&msg.account_id)).map_err(|e| e.to_string())?;
                if let Some(emoji) = self.cfg.ack_reaction.as_deref().filter(|e| !e.trim().is_empty())
                    && ack_in_scope(
                        self.cfg.ack_reaction_scope,
                        msg.is_group,
                        routed.mentioned,
                        crate::routing::policy::require_mention(&settings.resolved.groups, msg.chat.as_str()),
                    )
                {
                    let body = OutboundBody::Reaction { target: msg.id.clone(), emoji: emoji.to_string() };
                    self.enqueue(&handle, super::send::new_message_id(None), msg.chat.clone(), None, body)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                if mark_read && settings.resolved.send_read_receipts {
                    handle.command(AccountCommand::MarkRead { chat: msg.chat.clone(), sender: msg.sender.clone(), ids: vec![msg.id.clone()] });
                }
                let key = crate::routing::session_key(&key_ctx, &routed);
                let route = crate::agent::sessions::Route {
                    channel: msg.channel.clone(),
                    account_id: msg.account_id.clone(),
                    chat: msg.chat.to_string(),
                    peer: routed.peer_id().to_string(),
                };
                // Stored while the turn starts: the contact's answer does not wait for it.
                let (sessions, route_key) = (self.sessions.clone(), key.clone());
                let route_stored = tokio::spawn(async move { sessions.record_route(&route_key, &route, now).await });
                let text = if msg.is_group {
                    // The unanswered messages since the last reply come first (upstream's shape).
                    let history = self.take_group_history(&key, self.group_history_limit(&settings));
                    let current = format!("{}: {text}", super::groups::sender_label(&msg, &routed));
                    crate::routing::group_history::build_context(&history, &current)
                } else {
                    text
                };
                self.clone().enqueue_turn(key.clone(), Pending { msg, text }, lanes);
                // Not stored is logged, not retried: the answer is under way, and handing the
                // message out again after a restart would answer it twice. Hooks with
                // `channel: "last"` then use the previous route.
                if let Err(e) = route_stored.await.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                    tracing::error!(session = %key, error = %e, "the session's last route was not stored");
                }
                Ok(())
            }
        }
    }

    fn enqueue_turn(self: Arc<Self>, key: String, p: Pending, lanes: &Lanes) {
        let mut map = lanes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(&key)
            && tx.send(p.clone()).is_ok()
        {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(p);
        map.insert(key.clone(), tx);
        tokio::spawn(self.lane(key, rx, lanes.clone()));
    }

    /// One session's turns, one at a time.
    async fn lane(self: Arc<Self>, key: String, mut rx: mpsc::UnboundedReceiver<Pending>, lanes: Lanes) {
        loop {
            let mut batch = Vec::new();
            {
                // Leave the map and stop only when nothing is waiting, under the map's lock, so
                // a message is never handed to a lane that is ending.
                let mut map = lanes.lock().unwrap_or_else(|e| e.into_inner());
                while let Ok(p) = rx.try_recv() {
                    batch.push(p);
                }
                if batch.is_empty() {
                    map.remove(&key);
                    return;
                }
            }
            self.turn_and_reply(&key, batch).await;
        }
    }

    async fn turn_and_reply(&self, key: &str, batch: Vec<Pending>) {
        let Some(last) = batch.last().map(|p| p.msg.clone()) else { return };
        let text = batch.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n");
        let Some(agent) = self.cfg.agent.clone() else {
            let run = self.start_inbound_run(key, &text, &last).await;
            let why = self.cfg.agent_unavailable.clone().unwrap_or_else(|| "no LLM provider is configured; the message was not answered".into());
            tracing::warn!(session = %key, reason = %why, "no agent; inbound message not answered");
            self.complete_inbound_run(run, TurnOutcome::NoAgent(why)).await;
            self.sync_route(key).await;
            return;
        };
        let handle = self.registry().get(&last.channel, &last.account_id).cloned();
        let typing = Mutex::new(handle.clone().map(|h| {
            let chat = last.chat.clone();
            tokio::spawn(async move {
                loop {
                    h.command(AccountCommand::Presence { chat: chat.clone(), state: Presence::Composing });
                    tokio::time::sleep(TYPING_INTERVAL).await;
                }
            })
        }));
        // `composing` stops being renewed when the model has answered or failed; `paused` goes
        // out once, after the reply is stored, so the reply does not queue behind it.
        let stop_renewing = || typing.lock().unwrap_or_else(|e| e.into_inner()).take().map(|t| t.abort()).is_some();
        let paused = || {
            if let Some(h) = &handle {
                h.command(AccountCommand::Presence { chat: last.chat.clone(), state: Presence::Paused });
            }
        };
        // The run is recorded while the model works, and the reply is stored in the outbox while
        // the exchange goes into the history: neither write delays the contact's answer. The
        // run's outcome is recorded after both (a run is never completed before it is stored).
        let request = TurnRequest { session_key: key.to_string(), message: text.clone(), model: None };
        let mut on_delta = |_: &str| {};
        let turn = agent.turn_then(request, &mut on_delta, |reply| async {
            let was_typing = stop_renewing();
            let quote: Option<MessageId> = Some(last.id.clone());
            let stored = self.deliver_reply(&last.channel, Some(&last.account_id), &last.chat, &reply.text, quote.as_ref()).await;
            if was_typing {
                paused();
            }
            (reply, stored)
        });
        let (run, result) = tokio::join!(self.start_inbound_run(key, &text, &last), turn);
        if stop_renewing() {
            // The turn failed before it had a reply.
            paused();
        }
        match result {
            Ok(((reply, stored), _)) => match stored {
                Ok((ids, deadline)) => {
                    tracing::info!(session = %key, provider = %reply.provider, model = %reply.model, parts = ids.len(), "reply stored in the outbox");
                    self.complete_inbound_run(run, TurnOutcome::Stored(&reply, &ids, deadline)).await;
                }
                Err(e) => {
                    tracing::error!(session = %key, error = %e, "reply not stored");
                    self.complete_inbound_run(run, TurnOutcome::NotStored(&reply, e.to_string())).await;
                }
            },
            Err(e) => {
                tracing::warn!(session = %key, error = %e, "turn failed; no reply sent");
                self.complete_inbound_run(run, TurnOutcome::Failed(&e)).await;
            }
        }
        self.sync_route(key).await;
    }

    /// Makes the session's last route (stored unsynced while the turn started) durable, once the
    /// reply is on its way; a no-op for the disk when the history append already synced it.
    async fn sync_route(&self, key: &str) {
        if let Err(e) = self.sessions.sync().await {
            tracing::error!(session = %key, error = %e, "the session's last route may not survive a power cut");
        }
    }
}
