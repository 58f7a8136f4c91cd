//! Small building blocks every layer may use; depends on nothing else in the crate.

pub mod clock;
