//! The conformance suite for the tokio driver with the webhook transport.

use herald_tests::combos::{Tokio, Webhook};
use herald_tests::conformance::Combo;

herald_tests::conformance_suite!(Combo::new(Tokio, Webhook), Tokio::block_on, Tokio::spawn);
