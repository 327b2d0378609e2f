//! The conformance suite for the tokio driver with the NATS JetStream transport (a scripted
//! JetStream behind a cuttable proxy; see `herald_tests::nats_front`). Skips with a printed
//! reason when NATS is down, unless HERALD_REQUIRE_BROKERS=1.

use herald_tests::combos::{Nats, Tokio};
use herald_tests::conformance::Combo;

herald_tests::conformance_suite!(Combo::new(Tokio, Nats), Tokio::block_on, Tokio::spawn);
