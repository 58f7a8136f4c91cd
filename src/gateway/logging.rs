//! Logging setup: human lines on a terminal, JSON lines otherwise, journald under systemd.
//! Every line also goes to the in-memory ring served by `logs.tail`.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::gateway::logbuf::LogBuffer;

/// Which output the logs go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMode {
    /// Human-readable lines (stderr is a terminal).
    Human,
    /// JSON lines on stderr.
    Json,
    /// The systemd journal (stderr is connected to it: `$JOURNAL_STREAM` matches).
    Journald,
}

/// True when stderr is the journal stream systemd told us about (`JOURNAL_STREAM=dev:ino`).
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else { return false };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else { return false };
    dev.parse::<u64>().ok() == Some(meta.dev()) && ino.parse::<u64>().ok() == Some(meta.ino())
}

/// Picks the mode from the environment: `OPENCLAW_LOG_FORMAT=json|human|journald` overrides.
pub fn detect_mode() -> LogMode {
    match std::env::var("OPENCLAW_LOG_FORMAT").ok().as_deref() {
        Some("json") => return LogMode::Json,
        Some("human") => return LogMode::Human,
        Some("journald") => return LogMode::Journald,
        _ => {}
    }
    if stderr_is_journal() {
        LogMode::Journald
    } else if std::io::stderr().is_terminal() {
        LogMode::Human
    } else {
        LogMode::Json
    }
}

/// Libraries that log whole frames or headers at debug/trace level: a `connect` frame carries
/// the gateway token, a hook request its bearer token. They are capped at `info` whatever level
/// is asked for, so the token never reaches the logs or `logs.tail`.
pub const WIRE_LOGGING_TARGETS: &[&str] = &["tungstenite", "tokio_tungstenite", "hyper", "hyper_util", "h2", "axum::serve"];

/// Adds `<target>=info` for each of [`WIRE_LOGGING_TARGETS`] when the filter is more verbose.
fn cap_wire_logging(mut filter: EnvFilter) -> EnvFilter {
    let verbose = filter.max_level_hint().is_none_or(|l| l > tracing::level_filters::LevelFilter::INFO);
    if verbose {
        for t in WIRE_LOGGING_TARGETS {
            if let Ok(d) = format!("{t}=info").parse() {
                filter = filter.add_directive(d);
            }
        }
    }
    filter
}

/// Installs the global subscriber (once; later calls are ignored). Level from `OPENCLAW_LOG_LEVEL`
/// or `RUST_LOG`, default `info`.
pub fn init(mode: LogMode, ring: LogBuffer) -> LogMode {
    let filter = std::env::var("OPENCLAW_LOG_LEVEL")
        .ok()
        .and_then(|l| EnvFilter::try_new(l).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let filter = cap_wire_logging(filter);
    let journald = if mode == LogMode::Journald {
        tracing_journald::layer().ok().map(|l| l.with_syslog_identifier("openclaw-gateway".into()))
    } else {
        None
    };
    let mode = if mode == LogMode::Journald && journald.is_none() { LogMode::Json } else { mode };
    let human = (mode == LogMode::Human).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false));
    let json = (mode == LogMode::Json).then(|| {
        tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(false).with_writer(std::io::stderr)
    });
    let _ = tracing_subscriber::registry().with(filter).with(ring).with(journald).with(human).with(json).try_init();
    mode
}

/// At most this many bytes of a client-supplied value (an `Origin`, a `Host`) go into a log line.
pub const MAX_LOGGED_VALUE_BYTES: usize = 128;

/// A client-supplied value cut to [`MAX_LOGGED_VALUE_BYTES`] (on a char boundary), with the
/// original length noted when it was cut.
pub fn clip(v: &str) -> String {
    if v.len() <= MAX_LOGGED_VALUE_BYTES {
        return v.to_string();
    }
    let mut end = MAX_LOGGED_VALUE_BYTES;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &v[..end], v.len())
}

/// Lets one warning of a kind through per interval and counts the ones it held back, so a
/// client repeating a refused request cannot flood the logs (or the `logs.tail` ring).
#[derive(Debug)]
pub struct WarnThrottle {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl WarnThrottle {
    /// One warning per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self { interval, state: Mutex::new((None, 0)) }
    }

    /// `Some(suppressed since the last warning)` when a warning may be logged at `now`.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                s.1 += 1;
                None
            }
            _ => {
                let suppressed = s.1;
                *s = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue14_item13_wire_logging_is_capped_at_info() {
        let f = cap_wire_logging(EnvFilter::new("trace"));
        let text = f.to_string();
        assert!(text.contains("tungstenite=info") && text.contains("hyper=info"), "{text}");
        assert_eq!(cap_wire_logging(EnvFilter::new("warn")).to_string(), "warn");
    }

    #[test]
    fn clip_and_throttle() {
        assert_eq!(clip("http://a"), "http://a");
        let long = "é".repeat(300);
        let c = clip(&long);
        assert!(c.len() < MAX_LOGGED_VALUE_BYTES + 20 && c.ends_with("(600 bytes)"), "{c}");
        let t = WarnThrottle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(10)), Some(2));
    }
}
