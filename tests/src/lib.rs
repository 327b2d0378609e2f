//! Shared fixtures for Herald's integration tests: the checked engine (the engine plus a
//! reference model of the store, with DESIGN.md §4's invariants checked on every step)
//! and the events and policies the scenario tests share.
#![forbid(unsafe_code)]

pub mod fixtures;
pub mod model;
