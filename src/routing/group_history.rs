//! Group history: the unanswered messages of a group, kept as context for the agent's next
//! turn there (upstream's pending group history, reference `agent.md` §1 "Groups").
//!
//! - A group message that is admitted by the policy but does not mention the assistant (and so
//!   is not answered) is **recorded** in its group's window.
//! - The next answered message of that group **takes** the window: the agent sees it before the
//!   message, in upstream's prompt shape ([`build_context`]), and the window is cleared.
//! - The window holds the last `limit` messages ([`resolve_limit`]: `channels.whatsapp.
//!   historyLimit` (account-inherited) → `messages.groupChat.historyLimit` → 50, at most 200; 0
//!   keeps nothing). At most [`MAX_GROUPS`] groups are tracked; the least recently touched one
//!   is forgotten first. In memory only, like upstream: a restart forgets it.
//!
//! Pure data: no clock, no I/O; the caller holds it under its own lock.

use std::collections::{HashMap, VecDeque};

/// Default window when nothing is configured (upstream `DEFAULT_GROUP_HISTORY_LIMIT`).
pub const DEFAULT_LIMIT: usize = 50;
/// Hard cap of a window (upstream `MAX_PROMPT_HISTORY_LIMIT`).
pub const MAX_LIMIT: usize = 200;
/// Most groups tracked at once (upstream `MAX_HISTORY_KEYS`).
pub const MAX_GROUPS: usize = 1000;

/// Upstream's marker before the history lines.
pub const HISTORY_MARKER: &str = "[Chat messages since your last reply - for context]";
/// Upstream's marker before the message to answer.
pub const CURRENT_MARKER: &str = "[Current message - respond to this]";

/// The window size from the configured values, most specific first: the first one set wins,
/// capped at [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when none is set.
pub fn resolve_limit(configured: &[Option<u32>]) -> usize {
    let chosen = configured.iter().flatten().next().map(|n| *n as usize).unwrap_or(DEFAULT_LIMIT);
    chosen.min(MAX_LIMIT)
}

/// One unanswered group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Who wrote it, as shown to the agent (display name and number, or the address).
    pub sender: String,
    /// Its text.
    pub body: String,
    /// The channel's message id.
    pub message_id: String,
    /// When it was sent (unix ms).
    pub timestamp_ms: u64,
}

impl Entry {
    /// The line the agent reads: `sender: body`.
    pub fn line(&self) -> String {
        format!("{}: {}", self.sender, self.body)
    }
}

/// The windows of every group of one gateway, keyed by the group's session key.
#[derive(Debug, Default)]
pub struct GroupHistory {
    windows: HashMap<String, (u64, VecDeque<Entry>)>,
    touch: u64,
}

impl GroupHistory {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `entry` to the window of `key`, keeping the last `limit` entries; `limit` 0 keeps
    /// nothing. Returns the window's length.
    pub fn record(&mut self, key: &str, entry: Entry, limit: usize) -> usize {
        let limit = limit.min(MAX_LIMIT);
        if limit == 0 {
            return 0;
        }
        self.touch += 1;
        let stamp = self.touch;
        let slot = self.windows.entry(key.to_string()).or_insert_with(|| (stamp, VecDeque::new()));
        slot.0 = stamp;
        slot.1.push_back(entry);
        while slot.1.len() > limit {
            slot.1.pop_front();
        }
        let len = slot.1.len();
        if self.windows.len() > MAX_GROUPS
            && let Some(oldest) = self.windows.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone())
        {
            self.windows.remove(&oldest);
        }
        len
    }

    /// Removes and returns the window of `key` (oldest first), at most the last `limit`
    /// entries.
    pub fn take(&mut self, key: &str, limit: usize) -> Vec<Entry> {
        let Some((_, window)) = self.windows.remove(key) else { return Vec::new() };
        let skip = window.len().saturating_sub(limit.min(MAX_LIMIT));
        window.into_iter().skip(skip).collect()
    }

    /// How many entries the window of `key` holds.
    pub fn len(&self, key: &str) -> usize {
        self.windows.get(key).map_or(0, |(_, w)| w.len())
    }

    /// How many groups have a window.
    pub fn groups(&self) -> usize {
        self.windows.len()
    }
}

/// The text of a turn: `current` alone without history, else upstream's shape — the history
/// marker, one line per entry, a blank line, the current-message marker, then `current`.
pub fn build_context(history: &[Entry], current: &str) -> String {
    if history.is_empty() {
        return current.to_string();
    }
    let mut lines = vec![HISTORY_MARKER.to_string()];
    lines.extend(history.iter().map(Entry::line));
    lines.push(String::new());
    lines.push(CURRENT_MARKER.to_string());
    lines.push(current.to_string());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(n: u64) -> Entry {
        Entry { sender: format!("Ann (+1555000000{})", n % 10), body: format!("m{n}"), message_id: format!("id{n}"), timestamp_ms: n }
    }

    #[test]
    fn the_limit_follows_upstreams_chain_default_and_cap() {
        assert_eq!(resolve_limit(&[]), 50);
        assert_eq!(resolve_limit(&[None, None]), 50);
        assert_eq!(resolve_limit(&[None, Some(7)]), 7);
        assert_eq!(resolve_limit(&[Some(3), Some(7)]), 3);
        assert_eq!(resolve_limit(&[Some(0), Some(7)]), 0);
        assert_eq!(resolve_limit(&[Some(5000)]), 200);
    }

    #[test]
    fn the_window_keeps_the_last_limit_messages_and_take_clears_it() {
        let mut h = GroupHistory::new();
        for n in 0..8 {
            h.record("g1", e(n), 5);
        }
        h.record("g2", e(100), 5);
        assert_eq!((h.len("g1"), h.len("g2"), h.groups()), (5, 1, 2));
        let got = h.take("g1", 5);
        assert_eq!(got.iter().map(|x| x.body.as_str()).collect::<Vec<_>>(), ["m3", "m4", "m5", "m6", "m7"]);
        assert_eq!(h.len("g1"), 0);
        assert!(h.take("g1", 5).is_empty(), "taken once");
        assert_eq!(h.len("g2"), 1, "other groups untouched");
        // A smaller limit at take time (config changed) returns only the newest.
        for n in 0..4 {
            h.record("g3", e(n), 10);
        }
        assert_eq!(h.take("g3", 2).iter().map(|x| x.body.as_str()).collect::<Vec<_>>(), ["m2", "m3"]);
    }

    #[test]
    fn limit_zero_keeps_nothing_and_the_cap_holds() {
        let mut h = GroupHistory::new();
        assert_eq!(h.record("g", e(1), 0), 0);
        assert_eq!(h.groups(), 0);
        for n in 0..300 {
            h.record("g", e(n), 10_000);
        }
        assert_eq!(h.len("g"), MAX_LIMIT);
    }

    #[test]
    fn the_least_recently_touched_group_is_forgotten_first() {
        let mut h = GroupHistory::new();
        for g in 0..MAX_GROUPS {
            h.record(&format!("g{g}"), e(1), 5);
        }
        h.record("g0", e(2), 5); // g0 is now the most recent; g1 the oldest
        h.record("new", e(3), 5);
        assert_eq!(h.groups(), MAX_GROUPS);
        assert_eq!((h.len("g0"), h.len("g1"), h.len("new")), (2, 0, 1));
    }

    #[test]
    fn the_context_has_upstreams_markers() {
        assert_eq!(build_context(&[], "hi bot"), "hi bot");
        let text = build_context(&[e(1), e(2)], "@bot summarise");
        assert_eq!(
            text,
            "[Chat messages since your last reply - for context]\nAnn (+15550000001): m1\nAnn (+15550000002): m2\n\n[Current message - respond to this]\n@bot summarise"
        );
    }
}
