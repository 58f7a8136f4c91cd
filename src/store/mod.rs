//! The state directory: where it is, what lives in it, and how files in it are written.
//!
//! Every file under the state dir is written through [`atomic::write_atomic`] (temp file in the same
//! directory, fsync, rename, fsync of the directory), so a crash leaves the old or the new file.

pub mod atomic;
pub mod db;
pub mod layout;
pub mod lockfile;

pub use atomic::{write_atomic, AtomicWriteError};
pub use layout::{default_state_dir, StateLayout};
