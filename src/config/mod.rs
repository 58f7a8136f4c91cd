//! The config compiler: the only module that reads config files.
//!
//! System layer (`/etc/openclaw/openclaw.json`) + state layer (`<state>/openclaw.json`) →
//! strict JSON5 parse → merge with provenance → schema + semantic validation → [`Snapshot`].

pub mod json5;
pub mod model;
pub mod secrets;
pub mod diagnostic;
pub mod effect;
pub mod env;
pub mod hints;
pub mod merge;
pub mod path;
pub mod schema;
pub mod compile;
pub mod locate;
pub mod semantic;
pub mod snapshot;
pub mod sources;
pub mod validate;

pub use compile::{compile, Compilation, Compiled, Options};
pub use diagnostic::{Diagnostic, Severity};
pub use snapshot::Snapshot;
