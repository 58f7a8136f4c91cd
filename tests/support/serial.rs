//! Runs a test binary's real-peer tests one at a time. Each of them starts a mock server and one
//! or more Node processes running Baileys; on a 2-core machine, several at once starve each other
//! and time-dependent steps (pairing-code entry, delivery order checks) fail spuriously.

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the binary-wide lock until the guard is dropped (a panicking test does not poison it
/// for the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
