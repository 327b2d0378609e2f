//! The RabbitMQ transport (AMQP 0-9-1): publishes each event to an exchange with a routing
//! key, as a persistent message whose `message_id` is the event id, with the mandatory
//! flag, and waits for the publisher confirm.
//!
//! ```no_run
//! # fn main() -> Result<(), herald::ConfigError> {
//! use herald::PortConfig;
//! use herald::transport::amqp::AmqpConfig;
//!
//! let config = AmqpConfig::builder("amqps://herald@broker.example.com/prod")
//!     .password_env("RABBITMQ_PASSWORD")
//!     .exchange("orders")
//!     .routing_key("orders.{type}")
//!     .build()?;
//! let port = PortConfig::amqp("orders", config)?;
//! # Ok(()) }
//! ```
//!
//! **Configuration.** The URL is `amqp://` or `amqps://` (TLS, rustls with the platform's
//! trust store) with a user; the password is in the URL or read from an environment
//! variable ([`AmqpConfigBuilder::password_env`]), or the whole URL is
//! ([`AmqpConfig::builder_url_env`]). The path is the virtual host (`%2f` for `/`, the
//! default when there is no path); `heartbeat`, `connection_timeout`, `frame_max` and
//! `channel_max` may be given in the query. The routing key is a template with `{type}`
//! and `{id}` (default `{type}`). Errors name the field (`amqp.url`, `amqp.password_env`,
//! `amqp.exchange`, `amqp.routing_key`, ...); the password is never in an error, a log or
//! `Debug`, which shows host, port, virtual host, exchange and routing key only. Herald
//! declares nothing: the exchange, queues and bindings are the operator's.
//!
//! **Messages** carry `message_id` (the event id, the same on every attempt: consumers
//! de-duplicate on it), `content_type`, `type` (the event type), `timestamp` (occurred-at,
//! seconds), the metadata as headers, and `delivery_mode` 2 (persistent); the body is the
//! payload, byte for byte (see `message.rs`).
//!
//! **Outcomes.** A confirm (`basic.ack`) is delivered; a `basic.nack` is retryable
//! (`nack`); a message returned because no queue is bound for its routing key
//! (`basic.return`, thanks to the mandatory flag) fails permanently (`unroutable`, the
//! detail names the exchange, the routing key and the broker's reply); no confirm within
//! the attempt timeout is a timeout; a refused or lost connection is a network error
//! (`connect_error`, `connection_reset`), retried by the core, and the next attempt opens a
//! new connection. A missing exchange (`no_exchange`) or refused access (`access_refused`)
//! is permanent. Nothing here decides a retry.
//!
//! **Runtime.** lapin 4 runs its socket IO on a thread of its own and asks an async-rs
//! runtime kit for sockets, timers and a few tasks. This transport always gives it the smol
//! kit (async-io's reactor thread and smol's global executor), so it needs no tokio context
//! and works the same under the tokio driver, the smol driver or any other executor; the
//! futures an attempt awaits are lapin's promises and an async-io timer, which any executor
//! can poll. (The tokio kit would bind the connection to the runtime that happened to open
//! it, and fail under smol.)
//!
//! | file | holds |
//! |---|---|
//! | `config.rs` | [`AmqpConfig`], its builder: URL, credentials, exchange, routing key |
//! | `routing.rs` | routing-key templates |
//! | `message.rs` | the exchange, routing key and properties of one event's message |
//! | `connection.rs` | the lazily (re)opened connection and its pool of confirm-mode channels |
//! | `client.rs` | [`AmqpTransport`]: the attempt (publish, confirm, timeout) |
//! | `observe.rs` | broker answers and lapin errors as observations |

mod client;
mod config;
mod connection;
mod message;
mod observe;
mod routing;

pub use client::AmqpTransport;
pub use config::{AmqpConfig, AmqpConfigBuilder, DEFAULT_ROUTING_KEY};
