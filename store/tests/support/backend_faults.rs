//! The fault-injecting backend lives in the crate (`herald_store::faults`, feature
//! `fault-injection`) so that the simulator in `herald-tests` uses the same one.

#[allow(unused_imports)] // each test binary uses a part of `support`
pub(crate) use herald_store::faults::FaultyBackend;
