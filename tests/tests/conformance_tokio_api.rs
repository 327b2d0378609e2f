//! The conformance suite for the tokio driver with the REST API transport.

use herald_tests::combos::{Api, Tokio};
use herald_tests::conformance::Combo;

herald_tests::conformance_suite!(Combo::new(Tokio, Api), Tokio::block_on, Tokio::spawn);
