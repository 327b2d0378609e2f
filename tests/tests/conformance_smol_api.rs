//! The conformance suite for the smol driver with the REST API transport: Herald runs inside
//! `smol::block_on` with no tokio runtime created by the test (reqwest's tokio context comes
//! from async-compat inside the transport).

use herald_tests::combos::{Api, Smol};
use herald_tests::conformance::Combo;

herald_tests::conformance_suite!(Combo::new(Smol, Api), Smol::block_on, Smol::spawn);
