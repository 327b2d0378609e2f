//! # herald-store
//!
//! Durable delivery records for Herald (work in progress: see the store issue).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
