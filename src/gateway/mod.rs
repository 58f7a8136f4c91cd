//! The gateway: HTTP (Control UI, `/health`, hooks) and the WebSocket control protocol on one
//! loopback port, started from a validated snapshot.
//!
//! Startup order: state-dir lock → token consistency checks → device store → bind → ready
//! (sd_notify). SIGTERM drains and exits 0.
//!
//! Exit codes of `openclaw gateway run` (one per refusal; `doctor` can reuse [`token`]'s checks):
//!
//! | code | refusal |
//! |---|---|
//! | 10 | explicit token sources disagree (each listed with its fingerprint) |
//! | 11 | a token or token file is group/world readable |
//! | 12 | a token file is in `/nix/store` |
//! | 13 | a token source is empty |
//! | 14 | the token does not match the snapshot's fingerprint |
//! | 15 | `gateway.remote.token` for this gateway differs |
//! | 16 | non-loopback bind without auth |
//! | 17 | `hooks.enabled` without a hooks token |
//! | 18 | the generated token file cannot be read or written |
//! | 19 | a token shorter than 16 characters on a non-loopback bind |
//! | 20 | another gateway holds the state dir (its pid is named) |
//! | 21 | the lock file cannot be opened |
//! | 22 | the port is in use (the holder's pid is named when visible) |
//! | 23 | binding failed otherwise |
//! | 24 | the device store is unreadable |
//! | 25 | the run store (`<state>/agent/runs.db`) cannot be opened |
//! | 78 | the configuration cannot be read (EX_CONFIG, as upstream) |
//! | 1 | the server failed while running |

pub mod client;
pub mod conns;
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
pub mod wsupgrade;
pub mod ui;
pub mod weblogin;

pub use server::{prepare, serve, GatewayError, RunOptions};
pub use settings::GatewaySettings;
