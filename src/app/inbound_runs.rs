//! Inbound DM turns are recorded as runs (`origin: "inbound"`), so `GET <hooks.path>/runs/{id}`,
//! control `agent.run.get`, the log and the Control UI's Runs page show them like hook runs: the
//! message, the peer (`delivery.to`, the chat), the session key, the state (`running →
//! sending → delivered | failed`), the provider/model that answered and the error.
//!
//! Recording is best effort for the conversation: a run store that cannot be written is logged
//! and the contact is still answered (the turn does not depend on it).

use crate::agent::runs::{Delivery, PendingDelivery, RunFailure, RunKind, RunRegistry, RunRequest, RunSuccess};
use crate::agent::turn::{TurnError, TurnReply as Reply};
use crate::messaging::{InboundMessage, MessageId};

use super::App;

/// The run origin of inbound turns.
pub const ORIGIN: &str = "inbound";

/// What an inbound turn ended with, for its run.
#[derive(Debug)]
pub enum TurnOutcome<'a> {
    /// No agent is configured (the reason).
    NoAgent(String),
    /// The turn failed.
    Failed(&'a TurnError),
    /// The reply was produced but could not be stored in the outbox.
    NotStored(&'a Reply, String),
    /// The reply's parts are in the outbox (ids, deadline).
    Stored(&'a Reply, &'a [MessageId], u64),
}

/// The run outcome of a turn outcome.
pub fn run_outcome(o: TurnOutcome<'_>) -> Result<RunSuccess, RunFailure> {
    match o {
        TurnOutcome::NoAgent(why) => Err(why.into()),
        TurnOutcome::Failed(e) => Err(super::executor::turn_failure(e)),
        TurnOutcome::NotStored(r, why) => Err(RunFailure {
            error: format!("the reply was not stored: {why}"),
            provider: Some(r.provider.clone()),
            model: Some(r.model.clone()),
        }),
        TurnOutcome::Stored(r, ids, deadline_ms) => Ok(RunSuccess {
            delivered: false,
            pending: Some(PendingDelivery { parts: ids.iter().map(|i| i.to_string()).collect(), deadline_ms }),
            provider: Some(r.provider.clone()),
            model: Some(r.model.clone()),
            reply: Some(r.text.clone()),
        }),
    }
}

impl App {
    /// Gives the operations layer the run registry (once; later calls are ignored).
    pub fn set_runs(&self, runs: RunRegistry) {
        let _ = self.runs.set(runs);
    }

    /// Records the start of an inbound turn for session `key` answering `last` with `text`;
    /// `None` when there is no registry or the record could not be stored (logged).
    pub(crate) async fn start_inbound_run(&self, key: &str, text: &str, last: &InboundMessage) -> Option<String> {
        let runs = self.runs.get()?;
        let req = RunRequest {
            kind: RunKind::Agent,
            message: text.to_string(),
            agent_id: None,
            session_key: Some(key.to_string()),
            delivery: Some(Delivery { channel: last.channel.clone(), to: last.chat.to_string(), account_id: Some(last.account_id.clone()) }),
            origin: ORIGIN,
        };
        match runs.start_external(req).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(session = %key, error = %e, "inbound turn not recorded as a run");
                None
            }
        }
    }

    /// Records how an inbound turn ended (no-op without a run id).
    pub(crate) async fn complete_inbound_run(&self, run_id: Option<String>, outcome: TurnOutcome<'_>) {
        let (Some(runs), Some(id)) = (self.runs.get(), run_id) else { return };
        if let Err(e) = runs.complete_external(&id, run_outcome(outcome)).await {
            tracing::error!(runId = %id, error = %e, "inbound run outcome not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue11_item4_inbound_outcomes_map_to_run_states() {
        let r = Reply { text: "hi".into(), provider: "litellm".into(), model: "mock-gpt".into(), usage: None, reset: false, failed: Vec::new(), duration_ms: 0 };
        let ids = [MessageId::new("A"), MessageId::new("B")];
        let ok = run_outcome(TurnOutcome::Stored(&r, &ids, 9)).unwrap();
        assert_eq!(ok.pending, Some(PendingDelivery { parts: vec!["A".into(), "B".into()], deadline_ms: 9 }));
        assert_eq!((ok.provider.as_deref(), ok.model.as_deref(), ok.reply.as_deref()), (Some("litellm"), Some("mock-gpt"), Some("hi")));
        let e = run_outcome(TurnOutcome::NotStored(&r, "disk full".into())).unwrap_err();
        assert_eq!((e.error.as_str(), e.model.as_deref()), ("the reply was not stored: disk full", Some("mock-gpt")));
        assert_eq!(run_outcome(TurnOutcome::NoAgent("no LLM provider".into())).unwrap_err().error, "no LLM provider");
    }
}
