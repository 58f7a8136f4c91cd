//! A bounded in-memory ring of recent log lines, served by the `logs.tail` method.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// How many lines are kept.
pub const CAPACITY: usize = 2000;

/// The shared ring. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer {
    inner: Arc<Mutex<Ring>>,
}

#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<String>,
    /// Sequence number of the next line.
    next: u64,
}

impl LogBuffer {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a line.
    pub fn push(&self, line: String) {
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if r.lines.len() >= CAPACITY {
            r.lines.pop_front();
        }
        r.lines.push_back(line);
        r.next += 1;
    }

    /// The last `limit` lines after `cursor` (a sequence number from an earlier call), and the new cursor.
    pub fn tail(&self, limit: usize, cursor: Option<u64>) -> (Vec<String>, u64) {
        let r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let first_seq = r.next - r.lines.len() as u64;
        let start = cursor.map(|c| c.max(first_seq) - first_seq).unwrap_or(0) as usize;
        let avail: Vec<&String> = r.lines.iter().skip(start).collect();
        let skip = avail.len().saturating_sub(limit);
        (avail.into_iter().skip(skip).cloned().collect(), r.next)
    }
}

struct LineVisitor(String);

impl Visit for LineVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?} "));
        } else {
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        use std::fmt::Write;
        if field.name() == "message" {
            self.0.insert_str(0, value);
            self.0.insert(value.len(), ' ');
        } else {
            let _ = write!(self.0, "{}={} ", field.name(), value);
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogBuffer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut v = LineVisitor(String::new());
        event.record(&mut v);
        let meta = event.metadata();
        let ts = crate::agent::runs::unix_ms();
        self.push(format!("{ts} {} {}: {}", meta.level(), meta.target(), v.0.trim_end()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_with_cursor() {
        let b = LogBuffer::new();
        for i in 0..5 {
            b.push(format!("l{i}"));
        }
        let (lines, c) = b.tail(2, None);
        assert_eq!(lines, vec!["l3", "l4"]);
        b.push("l5".into());
        let (lines, _) = b.tail(10, Some(c));
        assert_eq!(lines, vec!["l5"]);
    }
}
