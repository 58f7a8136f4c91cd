//! The gateway: HTTP (Control UI, `/health`, hooks) and the WebSocket control protocol on one
//! loopback port, started from a validated snapshot.
//!
//! Startup order: state-dir lock → token consistency checks → device store → bind → ready
//! (sd_notify). SIGTERM drains and exits 0.

pub mod client;
pub mod control;
pub mod devices;
pub mod from_snapshot;
pub mod health;
pub mod hooks;
pub mod identity;
pub mod lock;
pub mod logbuf;
pub mod logging;
pub mod portinfo;
pub mod protocol;
pub mod ratelimit;
pub mod server;
pub mod settings;
pub mod state;
pub mod token;

pub use server::{prepare, serve, GatewayError, RunOptions};
pub use settings::GatewaySettings;
