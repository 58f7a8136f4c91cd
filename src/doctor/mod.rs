//! `openclaw doctor`: what is wrong with this installation, in the words of the field reports,
//! each with its evidence and the exact command that fixes it.
//!
//! Three parts with one job each: [`facts`] gathers (read-only: files, `/proc`, and what the
//! running gateway reports when the caller passes it in), [`checks`] judges (pure: facts in,
//! findings out, vector-tested without a filesystem), [`fix`] repairs only what is safe to repair
//! unattended (file modes, a stale runtime file).

pub mod checks;
pub mod facts;
pub mod fix;
pub mod group_checks;
pub mod provider_checks;
pub mod provider_probe;

pub use checks::{run_checks, Finding, Status};
pub use facts::Facts;
