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

/// The process-wide allocator for every binary of this crate (the gateway, the mock, tests and
/// benches): mimalloc, whose small allocations and frees cost less than glibc's on the message
/// path (full-turn bench, README "Benchmarks"). Built without transparent huge pages
/// (`no_thp`), which would otherwise nearly double the gateway's resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
