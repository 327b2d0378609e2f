//! The conformance suite for the smol driver with the RabbitMQ transport (through an AMQP
//! front to the real broker; skipped when RabbitMQ is unreachable, unless
//! `HERALD_REQUIRE_BROKERS=1`).

use herald_tests::combos::{Amqp, Smol};
use herald_tests::conformance::Combo;

herald_tests::conformance_suite!(Combo::new(Smol, Amqp), Smol::block_on, Smol::spawn);
