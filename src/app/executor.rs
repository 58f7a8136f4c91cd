//! The run executor: an agent turn for the run's session, then its reply chunked and stored in
//! the target account's outbox, in order (state `sending`, then `delivered` once WhatsApp
//! acknowledged every part, see [`super::run_delivery`]), or kept in the run (state `done`) when
//! the run does not deliver. Control `agent`, `/hooks/agent` and `openclaw agent` all end here.

use std::sync::Arc;

use crate::agent::runs::{DeliveryFuture, PendingDelivery, RunExecutor, RunFailure, RunFuture, RunKind, RunRecord, RunSuccess};
use crate::agent::turn::{TurnError, TurnRequest};
use crate::messaging::{ChatId, MessageId, OutboundBody, OutboundMessage};

use super::App;

/// The executor of a gateway with an operations layer.
#[derive(Debug, Clone)]
pub struct AgentExecutor {
    app: Arc<App>,
}

impl AgentExecutor {
    /// An executor over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

/// The text of a failed turn for the run's `error` and the provider/model tried last.
pub fn turn_failure(e: &TurnError) -> RunFailure {
    let last = e.last_failure();
    RunFailure {
        error: e.to_string(),
        provider: last.map(|f| f.provider.clone()),
        model: last.map(|f| f.model.clone()),
    }
}

impl App {
    /// Splits `text` for `channel`/`account` (Markdown adapted, `textChunkLimit`,
    /// `streaming.chunkMode`) and stores the parts in order; the first part (or every part,
    /// per `replyToMode`) quotes `quote`. Returns the message ids and their outbox deadline.
    pub async fn deliver_reply(
        &self,
        channel: &str,
        account: Option<&str>,
        chat: &ChatId,
        text: &str,
        quote: Option<&MessageId>,
    ) -> Result<(Vec<MessageId>, u64), super::SendOpError> {
        use crate::config::model::whatsapp::{ChunkMode, ReplyToMode};
        let (handle, _, _) = self.handle_for(channel, account)?;
        let settings = self.cfg.account(channel, handle.account());
        let limit = settings.map(|s| s.resolved.text_chunk_limit as usize).unwrap_or(crate::routing::chunk::DEFAULT_LIMIT);
        let mode = settings.map(|s| s.chunk_mode).unwrap_or(ChunkMode::Length);
        let reply_mode = settings.map(|s| s.reply_to_mode).unwrap_or(ReplyToMode::Off);
        // In a group a reply always quotes the message that triggered it (issue 12), so members
        // see whom the assistant answers; `replyToMode` still widens it to every part.
        let reply_mode = if reply_mode == ReplyToMode::Off && chat.as_str().ends_with("@g.us") { ReplyToMode::First } else { reply_mode };
        let now = self.now_ms();
        let deadline = now.saturating_add(super::DEFAULT_SEND_DEADLINE_MS);
        let parts: Vec<OutboundMessage> = crate::routing::prepare_whatsapp_reply(text, limit, mode)
            .into_iter()
            .enumerate()
            .map(|(i, part)| OutboundMessage {
                id: super::send::new_message_id(None),
                channel: handle.channel().to_string(),
                account_id: handle.account().to_string(),
                chat: chat.clone(),
                reply_to: match reply_mode {
                    ReplyToMode::Off => None,
                    ReplyToMode::First | ReplyToMode::Batched => quote.filter(|_| i == 0).cloned(),
                    ReplyToMode::All => quote.cloned(),
                },
                body: OutboundBody::Text { text: part },
            })
            .collect();
        let ids = parts.iter().map(|p| p.id.clone()).collect();
        // The run that asked for this reply is already stored (accepted means stored); the
        // parts go in unsynced, all or none (see `AccountHandle::send_reply`).
        handle.send_reply(parts, deadline, now).await.map_err(|e| super::SendOpError::Store(e.to_string()))?;
        Ok((ids, deadline))
    }

    /// Executes one run (see the module doc).
    pub async fn execute_run(&self, run: &RunRecord) -> Result<RunSuccess, RunFailure> {
        if run.kind == RunKind::Wake {
            return Err("no agent heartbeat is configured; the wake event was recorded but nothing consumed it".to_string().into());
        }
        let Some(agent) = self.cfg.agent.clone() else {
            return Err(self
                .cfg
                .agent_unavailable
                .clone()
                .unwrap_or_else(|| "no LLM provider is configured; the run was accepted but cannot execute (configure models/agents)".into())
                .into());
        };
        let session_key = run.session_key.clone().unwrap_or_else(|| format!("hook:{}", run.run_id));
        let req = TurnRequest { session_key, message: run.message.clone(), model: None };
        let reply = agent.turn(req, &mut |_| {}).await.map_err(|e| turn_failure(&e))?;
        let mut out = RunSuccess {
            delivered: false,
            pending: None,
            provider: Some(reply.provider.clone()),
            model: Some(reply.model.clone()),
            reply: Some(reply.text.clone()),
        };
        if let Some(d) = &run.delivery {
            let (parts, deadline_ms) = self
                .deliver_reply(&d.channel, d.account_id.as_deref(), &ChatId::new(d.to.clone()), &reply.text, None)
                .await
                .map_err(|e| RunFailure {
                    error: format!("the reply was not delivered: {e}"),
                    provider: out.provider.clone(),
                    model: out.model.clone(),
                })?;
            out.pending = Some(PendingDelivery { parts: parts.iter().map(|p| p.to_string()).collect(), deadline_ms });
        }
        Ok(out)
    }
}

impl RunExecutor for AgentExecutor {
    fn execute(&self, _run: &RunRecord) -> Result<(), String> {
        Err("the agent executor runs asynchronously".into())
    }

    fn execute_async<'a>(&'a self, run: &'a RunRecord) -> RunFuture<'a> {
        Box::pin(self.app.execute_run(run))
    }

    fn follow_delivery<'a>(&'a self, run: &'a RunRecord) -> DeliveryFuture<'a> {
        Box::pin(self.app.follow_run_delivery(run))
    }
}
