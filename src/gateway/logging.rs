//! Logging setup: human lines on a terminal, JSON lines otherwise, journald under systemd.
//! Every line also goes to the in-memory ring served by `logs.tail`.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

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

/// Installs the global subscriber (once; later calls are ignored). Level from `OPENCLAW_LOG_LEVEL`
/// or `RUST_LOG`, default `info`.
pub fn init(mode: LogMode, ring: LogBuffer) -> LogMode {
    let filter = std::env::var("OPENCLAW_LOG_LEVEL")
        .ok()
        .and_then(|l| EnvFilter::try_new(l).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
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
