//! Channel-neutral messages: where a message lives between a channel and the agent.
//!
//! - [`types`]: [`InboundMessage`], [`OutboundMessage`], [`ChatId`], [`MessageId`], [`Delivery`];
//! - [`sink`]: the bounded [`InboundSink`] channels push received messages into, with counters;
//! - [`outbox`]: the persistent [`Outbox`]: accepted means stored; `pending → sending → sent |
//!   failed | expired`; a deadline per message; in order per chat; crash recovery that re-sends
//!   with the same message id.
//!
//! Depends on `util`-level crates and [`crate::store`] only; never on channels, agent or gateway.

pub mod outbox;
pub mod sink;
pub mod types;

pub use outbox::{Enqueued, Outbox, OutboxCounts, OutboxError, OutboxPolicy, OutboxRecord, OutboxState};
pub use sink::{inbound_queue, InboundReceiver, InboundSink, PushError, SinkCounters};
pub use types::{ChatId, Delivery, InboundBody, InboundMessage, MediaKind, MessageId, OutboundBody, OutboundMessage};

#[cfg(test)]
mod layering {
    /// `crate::…` paths used in code (not comments) under `src/<dir>`.
    fn crate_paths(dir: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for (i, _) in code.match_indices("crate::") {
                    let path: String = code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !path.is_empty() {
                        out.push((p.display().to_string(), path));
                    }
                }
            }
        }
        out
    }

    /// The arrows of DESIGN.md's layout: each folder may use only the modules below it.
    #[test]
    fn arrows_point_down_for_store_messaging_and_runs() {
        let rules: [(&str, &[&str]); 4] = [
            ("store", &["store"]),
            ("messaging", &["store", "messaging"]),
            ("routing", &["config", "routing"]),
            ("agent", &["config", "store", "messaging", "routing", "agent"]),
        ];
        for (dir, allowed) in rules {
            let paths = crate_paths(dir);
            assert!(!paths.is_empty(), "scan found nothing in {dir}");
            for (file, top) in paths {
                assert!(allowed.contains(&top.as_str()), "{file} uses crate::{top}; {dir} may use only {allowed:?}");
            }
        }
    }
}
