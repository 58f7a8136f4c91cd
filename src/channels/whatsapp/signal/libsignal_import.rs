//! Import of libsignal-node session records (Baileys' `session-*.json`).
