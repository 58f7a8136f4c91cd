//! Conversation history per session key, behind a storage-agnostic trait.
//!
//! [`History`] is what a turn needs: load a session's messages, append a finished exchange,
//! reset a session (`/new`). Methods are async (boxed futures) so a database implementation can
//! do its I/O off the async workers. [`InMemoryHistory`] is the bounded implementation used
//! until a persistent one lands: at most `max_messages` per session (oldest dropped first, in
//! whole user/assistant exchanges) and at most `max_sessions` sessions (the least recently used
//! is dropped).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use super::providers::{ChatMessage, Role};

/// Why history could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history store: {0}")]
pub struct HistoryError(pub String);

/// A boxed future of a history operation.
pub type HistoryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HistoryError>> + Send + 'a>>;

/// Conversation history by session key.
pub trait History: Send + Sync {
    /// The messages of `session_key`, oldest first (empty for a new session).
    fn load<'a>(&'a self, session_key: &'a str) -> HistoryFuture<'a, Vec<ChatMessage>>;
    /// Appends `messages` (a user message and the reply) to `session_key`.
    fn append<'a>(&'a self, session_key: &'a str, messages: Vec<ChatMessage>) -> HistoryFuture<'a, ()>;
    /// Forgets `session_key`'s messages (`/new`).
    fn reset<'a>(&'a self, session_key: &'a str) -> HistoryFuture<'a, ()>;
}

/// The last `user_turns` user messages and what followed each (upstream `dmHistoryLimit`
/// counts user turns). `None` keeps everything.
pub fn limit_user_turns(messages: &[ChatMessage], user_turns: Option<usize>) -> &[ChatMessage] {
    let Some(n) = user_turns else { return messages };
    if n == 0 {
        return &[];
    }
    let mut seen = 0;
    for (i, m) in messages.iter().enumerate().rev() {
        if m.role == Role::User {
            seen += 1;
            if seen == n {
                return &messages[i..];
            }
        }
    }
    messages
}

/// Default message cap per session of [`InMemoryHistory`].
pub const DEFAULT_MAX_MESSAGES: usize = 200;
/// Default session cap of [`InMemoryHistory`].
pub const DEFAULT_MAX_SESSIONS: usize = 1_000;

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, (u64, Vec<ChatMessage>)>,
    tick: u64,
}

/// Bounded in-memory history (lost on restart).
#[derive(Debug)]
pub struct InMemoryHistory {
    inner: Mutex<Inner>,
    max_messages: usize,
    max_sessions: usize,
}

impl Default for InMemoryHistory {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGES, DEFAULT_MAX_SESSIONS)
    }
}

impl InMemoryHistory {
    /// A store keeping at most `max_messages` per session and `max_sessions` sessions.
    pub fn new(max_messages: usize, max_sessions: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), max_messages: max_messages.max(2), max_sessions: max_sessions.max(1) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Result<T, HistoryError> {
        let mut g = self.inner.lock().map_err(|_| HistoryError("in-memory history lock poisoned".into()))?;
        Ok(f(&mut g))
    }
}

impl History for InMemoryHistory {
    fn load<'a>(&'a self, session_key: &'a str) -> HistoryFuture<'a, Vec<ChatMessage>> {
        let r = self.with(|i| {
            i.tick += 1;
            let tick = i.tick;
            i.sessions.get_mut(session_key).map(|(t, m)| {
                *t = tick;
                m.clone()
            })
        });
        Box::pin(async move { r.map(Option::unwrap_or_default) })
    }

    fn append<'a>(&'a self, session_key: &'a str, messages: Vec<ChatMessage>) -> HistoryFuture<'a, ()> {
        let (max_messages, max_sessions) = (self.max_messages, self.max_sessions);
        let r = self.with(|i| {
            i.tick += 1;
            let tick = i.tick;
            let entry = i.sessions.entry(session_key.to_string()).or_default();
            entry.0 = tick;
            entry.1.extend(messages);
            // Drop whole exchanges from the front: the history always starts with a user message.
            while entry.1.len() > max_messages {
                let next_user = entry.1.iter().skip(1).position(|m| m.role == Role::User).map(|p| p + 1);
                let cut = next_user.unwrap_or(entry.1.len() - max_messages);
                entry.1.drain(..cut);
            }
            while i.sessions.len() > max_sessions {
                let oldest = i.sessions.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => i.sessions.remove(&k),
                    None => break,
                };
            }
        });
        Box::pin(async move { r })
    }

    fn reset<'a>(&'a self, session_key: &'a str) -> HistoryFuture<'a, ()> {
        let r = self.with(|i| {
            i.sessions.remove(session_key);
        });
        Box::pin(async move { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(n: usize) -> Vec<ChatMessage> {
        vec![ChatMessage::user(format!("q{n}")), ChatMessage::assistant(format!("a{n}"))]
    }

    #[tokio::test]
    async fn append_load_reset() {
        let h = InMemoryHistory::default();
        assert!(h.load("s").await.unwrap().is_empty());
        h.append("s", exchange(1)).await.unwrap();
        h.append("s", exchange(2)).await.unwrap();
        h.append("other", exchange(9)).await.unwrap();
        assert_eq!(h.load("s").await.unwrap(), [exchange(1), exchange(2)].concat());
        h.reset("s").await.unwrap();
        assert!(h.load("s").await.unwrap().is_empty());
        assert_eq!(h.load("other").await.unwrap(), exchange(9));
    }

    #[tokio::test]
    async fn bounded_per_session_in_whole_exchanges_and_in_sessions() {
        let h = InMemoryHistory::new(4, 2);
        for n in 0..5 {
            h.append("s", exchange(n)).await.unwrap();
        }
        assert_eq!(h.load("s").await.unwrap(), [exchange(3), exchange(4)].concat());
        h.append("t", exchange(0)).await.unwrap();
        h.load("s").await.unwrap(); // s is now more recent than t
        h.append("u", exchange(0)).await.unwrap();
        assert!(h.load("t").await.unwrap().is_empty(), "least recently used session dropped");
        assert!(!h.load("s").await.unwrap().is_empty());
    }

    #[test]
    fn limit_counts_user_turns() {
        let all = [exchange(1), exchange(2), exchange(3)].concat();
        assert_eq!(limit_user_turns(&all, Some(2)), &all[2..]);
        assert_eq!(limit_user_turns(&all, Some(5)), &all[..]);
        assert_eq!(limit_user_turns(&all, None), &all[..]);
        assert!(limit_user_turns(&all, Some(0)).is_empty());
    }
}
