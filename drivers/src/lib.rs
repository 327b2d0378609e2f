//! # herald
//!
//! Deliver events to webhooks, REST APIs and message queues at least once, with retries,
//! stable ids and a queryable status. This crate holds the runtime drivers (tokio, smol),
//! the transports and the `herald` binary; the decisions are made by the sans-IO engine
//! in [`herald_core`], and state is kept in [`herald_store`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod driver;
pub mod error;
mod port;
pub mod runtime;
pub mod transport;

pub use driver::{Herald, HeraldBuilder, PortConfig, StatusChange, StatusHook};
pub use error::{ConfigError, RedriveError, StartError, WaitError};
pub use herald_core as core;
pub use herald_core::{
    DeliveryHistory, DeliveryStatus, EventId, ExternalEvent, IntegrationPort, IntegrationResult, QueryError,
    RetryPolicy, SendError, Timestamp,
};
pub use port::Port;

/// The current wall-clock time, for `ExternalEvent::builder(..).occurred_at(herald::now())`.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
