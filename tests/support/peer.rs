//! What a test does when the real peer it needs (npm Baileys, the upstream CLI...) is missing.
//!
//! Outside CI it prints a loud `SKIPPED:` line straight to stderr (the test harness does not
//! capture that), so the skip is visible in every run. In CI (`CI` set) `scripts/setup-test-peers`
//! installs every peer, so a missing one is a failure, never a silent pass.

use std::io::Write;

/// Reports a missing peer: fails under CI, else prints the SKIPPED line.
pub fn missing(test: &str, why: &str) {
    let line = format!("SKIPPED: {test}: {why}; run scripts/setup-test-peers");
    if std::env::var_os("CI").is_some() {
        panic!("{line} (CI installs every peer, so this is a failure)");
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}
