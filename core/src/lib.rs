//! # herald-core
//!
//! The sans-IO heart of Herald: the types of an event and its delivery, the retry policy,
//! the classification of attempt results, and the [`Engine`] — a pure state machine that
//! decides what to persist, when to attempt, and what each result means. It reads no
//! clock, does no IO, draws no random numbers and spawns nothing, so it runs inside any
//! executor and under property tests, fuzzers and deterministic simulation alike.
//!
//! ## The loop contract
//!
//! A driver owns one [`Engine`] per port and runs this loop (after
//! [quinn-proto](https://docs.rs/quinn-proto) and [str0m](https://docs.rs/str0m)):
//!
//! 1. **Make one change**: [`Engine::handle_input`] (a send, an attempt report, a
//!    redrive, shutdown) or [`Engine::handle_timeout`], always with the current wall-clock
//!    `now`. A `now` earlier than one already seen is clamped: the engine's time never
//!    goes back, even when the wall clock does.
//! 2. **Drain** [`Engine::poll_output`] until it returns `None`, keeping the order:
//!    - commit every [`Output::Persist`] drained in one transaction (group commit);
//!    - only after that commit succeeded, acknowledge the sends handled in step 1 and
//!      start every [`Output::Attempt`] drained with it. An attempt is never started
//!      before the change that announced it is durable (invariant 2).
//!    - If the commit fails, its outcome is unknown: drop the engine and
//!      [`Engine::restore`] a new one from the store (crash-only recovery).
//! 3. **Wait** for the earliest of [`Engine::poll_timeout`], an attempt's end (report it
//!    with [`Input::Report`], or [`Observation::TimedOut`] at its deadline) or a command.
//!
//! Several changes may be made before one drain; that is how many sends share a commit.
//!
//! ## Identity
//!
//! An [`EventId`] is given by the caller or derived from the event's content: the
//! hyphenated UUIDv5 of a canonical, length-prefixed encoding of type, content type,
//! payload, occurred-at and metadata (see `ContentDigest::of` in `id.rs`), the same on
//! every platform and run. The engine tracks a 16-byte [`EventKey`] digest of the id and a
//! 64-bit content [`Fingerprint`]: equal ids with equal fingerprints are a re-send (no
//! second delivery), unequal fingerprints a conflict.
//!
//! ## What is where
//!
//! | file | holds |
//! |---|---|
//! | `time.rs` | [`Timestamp`]: milliseconds since the epoch, RFC 3339 |
//! | `id.rs`, `event.rs` | [`EventId`], [`EventKey`], [`ExternalEvent`] and its builder |
//! | `status.rs` | [`DeliveryStatus`], [`IntegrationResult`], [`AttemptRecord`] |
//! | `retry.rs`, `retry_after.rs` | [`RetryPolicy`], jitter, `Retry-After` parsing |
//! | `report.rs`, `classify.rs` | what a transport saw, and what it means |
//! | `record.rs` | [`DeliveryRecord`] and the [`Change`]s a store applies |
//! | `engine/` | the [`Engine`] |
//! | `port.rs`, `memory.rs` | the [`IntegrationPort`] trait and its test double |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod classify;
mod config;
mod engine;
mod event;
mod id;
mod memory;
mod port;
mod record;
mod report;
mod retry;
mod retry_after;
mod serde_bytes;
mod status;
mod time;

pub use classify::{AttemptOutcome, Classifier, ClassifierError, OutcomeClass, default_http_class};
pub use config::{ConfigError, EngineConfig};
pub use engine::{Ack, Attempt, Engine, Input, InputError, Output, Tracked};
pub use event::{EventBuilder, EventError, ExternalEvent};
pub use id::{EventId, EventIdError, EventKey, Fingerprint};
pub use memory::{MemoryPort, Settle};
pub use port::{BoxFuture, IntegrationPort, QueryError, SendError};
pub use record::{ApplyError, Change, DeliveryRecord, InFlight, Transition};
pub use report::{AttemptReport, NetworkError, Observation, ResponseExcerpt};
pub use retry::{Backoff, ExhaustedBy, Jitter, NextStep, PolicyError, RetryPolicy};
pub use retry_after::{RetryAfter, RetryAfterError};
pub use status::{AttemptRecord, DeliveryHistory, DeliveryStatus, FailureDetail, IntegrationResult, UnknownStatus};
pub use time::{Timestamp, TimestampError};
