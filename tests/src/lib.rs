//! Shared fixtures for Herald's integration tests: the engine reference model and the
//! helpers the scenario tests share.
#![forbid(unsafe_code)]
