//! # herald
//!
//! Runtime drivers and transports for Herald (work in progress: see the driver issues).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use herald_core as core;
