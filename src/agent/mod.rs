//! Agent runs: admission, state tracking and (later) execution against LLM providers.

pub mod pairing_store;
pub mod runs;
