//! Agent runs: admission, state tracking, and turns against LLM providers.
//!
//! - [`runs`]: the run registry hooks write to;
//! - [`providers`]: the provider clients (`openai-completions`, `anthropic-messages`);
//! - [`turn`]: one turn (system prompt, history, model chain with fallbacks);
//! - [`workspace`]: the system prompt from the workspace files;
//! - [`history`]: conversation history per session key;
//! - [`pairing_store`]: the persisted DM pairing state;
//! - [`sessions`]: persisted history and last routes per session (`<state>/agent/sessions.db`).

pub mod history;
pub mod pairing_store;
pub mod providers;
pub mod runs;
pub mod sessions;
pub mod turn;
pub mod workspace;
