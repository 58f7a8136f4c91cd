//! openclaw: a NixOS-first personal AI assistant gateway, compatible with OpenClaw.
//!
//! See `ARCHITECTURE.md` for the code map and invariants.

pub mod agent;
pub mod app;
pub mod channels;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod gateway;
pub mod messaging;
pub mod routing;
pub mod store;
pub mod util;

#[cfg(test)]
mod layering;
