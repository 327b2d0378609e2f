//! The NATS JetStream transport: publishes each event to a subject (a template with
//! `{type}` and `{id}` allowed) with `Nats-Msg-Id` = event id, and waits for the stream's
//! publish ack within the attempt timeout.
//!
//! ```no_run
//! # fn main() -> Result<(), herald::ConfigError> {
//! use herald::PortConfig;
//! use herald::transport::nats::NatsConfig;
//!
//! let config = NatsConfig::builder("nats://127.0.0.1:4222")
//!     .subject("events.{type}")
//!     .token_env("NATS_TOKEN")
//!     .build()?;
//! let port = PortConfig::nats("analytics", config)?;
//! # Ok(()) }
//! ```
//!
//! **De-duplication.** Every attempt of an event carries the same `Nats-Msg-Id`; JetStream
//! stores a message once per id within the stream's duplicate window (2 minutes by default)
//! and acknowledges a repeat as a duplicate, which counts as delivered. Set the window to at
//! least the span of the port's retry schedule if a repeat must never be stored twice.
//!
//! **Messages.** The payload's exact bytes; headers `Nats-Msg-Id`, `Content-Type`,
//! `Herald-Event-Type`, `Herald-Occurred-At` (RFC 3339) and `Herald-Meta-<key>` for each
//! metadata entry. An event whose type or id would make an invalid subject (whitespace,
//! wildcards, empty tokens) fails permanently (`invalid_request`) instead of being
//! published elsewhere.
//!
//! **Outcomes** (facts for the core to classify, DESIGN.md §2):
//!
//! | what happened | outcome code | class |
//! |---|---|---|
//! | ack (new or duplicate) | `acknowledged` | delivered |
//! | no stream captures the subject | `no_stream` | permanent |
//! | JetStream API error with code 408, 429 or 5xx (e.g. stream full, no leader) | `jetstream_<code>` | retryable |
//! | any other JetStream API error | `jetstream_<code>` | permanent |
//! | message larger than the server's max payload | `too_large` | permanent |
//! | the first connection refused, or not reconnected within 2 s | `connect_error` | retryable |
//! | the server refuses the credentials | `access_refused` | permanent |
//! | connection lost before the ack | `connection_reset` | retryable |
//! | no ack within the attempt timeout | `timeout` | retryable |
//!
//! **Connection.** One client per port, connected by the first attempt (one that fails is
//! a connect error, and the next attempt tries again); from then on it reconnects by itself
//! with a backoff capped at 2 s, so a server that was down is used again as soon as it is
//! back. Credentials (token, or user and password; from values or environment variables,
//! or in the URL) are never logged nor shown by `Debug`.
//!
//! | file | holds |
//! |---|---|
//! | `config.rs` | [`NatsConfig`], its builder and validation |
//! | `subject.rs` | subject templates: parsing, checks, rendering |
//! | `client.rs` | [`NatsTransport`]: the connection, the publish, the outcome |

mod client;
mod config;
mod subject;

pub use client::{MSG_ID_HEADER, NatsTransport};
pub use config::{NatsConfig, NatsConfigBuilder};
