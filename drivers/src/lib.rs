//! # herald
//!
//! Deliver events to webhooks, REST APIs and message queues at least once, with retries,
//! stable ids and a queryable status. This crate holds the runtime drivers (tokio, smol),
//! the transports and the `herald` binary; the decisions are made by the sans-IO engine
//! in [`herald_core`], and state is kept in [`herald_store`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use herald::transport::webhook::WebhookConfig;
//! use herald::{ExternalEvent, Herald, PortConfig, RetryPolicy};
//!
//! let webhook = WebhookConfig::builder("https://example.com/hooks/orders")
//!     .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
//!     .build()?;
//! let herald = Herald::builder()
//!     .store_path("herald.redb")
//!     .port(PortConfig::webhook("orders", webhook)?.policy(RetryPolicy::default()))
//!     .start_tokio() // or `.start_smol()` with the `smol` feature
//!     .await?;
//! let orders = herald.port("orders").expect("configured");
//!
//! let event = ExternalEvent::builder("order.created")
//!     .id("order-42-created")
//!     .payload(br#"{"order":42}"#.to_vec())
//!     .occurred_at(herald::now())
//!     .build()?;
//! orders.send(event).await?; // returns once the event is durable
//! herald.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! | module | holds |
//! |---|---|
//! | [`Herald`], [`PortConfig`] | building and starting an instance (`driver/`) |
//! | [`Port`] | the handle domain code holds; implements [`IntegrationPort`] |
//! | [`runtime`] | the small trait the driver loop runs on, with tokio and smol |
//! | [`transport`] | how one attempt reaches a destination (webhook, ...) |
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
