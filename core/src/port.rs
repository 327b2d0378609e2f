//! The port the domain depends on (Clean Architecture): send an event, ask how it went.
//! Drivers implement it; domain code holds an `Arc<dyn IntegrationPort>`.

use std::future::Future;
use std::pin::Pin;

use crate::engine::InputError;
use crate::event::ExternalEvent;
use crate::id::EventId;
use crate::status::{DeliveryHistory, IntegrationResult};

/// A boxed future, so that [`IntegrationPort`] stays dyn-compatible without any runtime.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Delivers events to one external system, at least once.
///
/// `send` resolves once the event is durably accepted (or refused), never after the
/// delivery itself; delivery happens in the background and is observed with `status`
/// and `history`. None of the methods blocks a thread.
pub trait IntegrationPort: Send + Sync {
    /// Accepts an event for delivery. Sending the same event again (same id, same
    /// content) is harmless and returns the existing delivery's state; the same id with
    /// different content is a [`InputError::Conflict`].
    fn send(&self, event: ExternalEvent) -> BoxFuture<'_, Result<IntegrationResult, SendError>>;

    /// The current state of the delivery of event `id`, if this port has it.
    fn status<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<Option<IntegrationResult>, QueryError>>;

    /// The state and every attempt of the delivery of event `id`, if this port has it.
    fn history<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<Option<DeliveryHistory>, QueryError>>;
}

/// Why `send` did not accept an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The port refused the event (too large, conflicting, shutting down); nothing was
    /// stored.
    #[error(transparent)]
    Rejected(#[from] InputError),
    /// Storing the acceptance failed; it may or may not have been stored. Sending the
    /// same event again is safe: it is accepted once.
    #[error("the acceptance could not be recorded ({0}); sending the same event again is safe")]
    Unrecorded(String),
    /// The port's driver has stopped.
    #[error("the port is closed")]
    Closed,
}

/// Why a status or history query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The store could not be read.
    #[error("the delivery store could not be read: {0}")]
    Store(String),
    /// The port's driver has stopped.
    #[error("the port is closed")]
    Closed,
}
