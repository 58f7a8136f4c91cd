//! Agent runs: admission, state tracking and (later) execution against LLM providers.

pub mod runs;
