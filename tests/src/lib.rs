//! Shared fixtures for Herald's integration tests: the checked engine (the engine plus a
//! reference model of the store, with DESIGN.md §4's invariants checked on every step),
//! a scripted HTTP receiver, and the conformance suite every driver × transport
//! combination runs.
#![forbid(unsafe_code)]

pub mod amqp_front;
pub mod amqp_wire;
pub mod brokers;
pub mod combos;
pub mod conformance;
pub mod fixtures;
pub mod fuzzing;
pub mod hooked;
pub mod model;
pub mod nats_front;
pub mod rabbitmq;
pub mod receiver;
pub mod sim;
pub mod warp;
