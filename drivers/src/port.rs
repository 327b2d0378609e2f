//! The handle domain code holds: one port of a running Herald, implementing
//! [`IntegrationPort`].

use std::sync::Arc;

use herald_core::{
    BoxFuture, DeliveryHistory, EventId, ExternalEvent, IntegrationPort, IntegrationResult, QueryError, SendError,
};

use crate::driver::Shared;
use crate::driver::command::{self, Command};
use crate::error::{RedriveError, WaitError};

/// One port of a running [`Herald`](crate::Herald). Cheap to clone; usable as
/// `Arc<dyn IntegrationPort>`.
#[derive(Clone)]
pub struct Port {
    shared: Arc<Shared>,
    index: usize,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port").field("name", &self.name()).finish()
    }
}

impl Port {
    pub(crate) fn new(shared: Arc<Shared>, index: usize) -> Self {
        Port { shared, index }
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.shared.ports[self.index].name
    }

    fn max_attempts(&self) -> u32 {
        self.shared.ports[self.index].max_attempts
    }

    /// Accepts an event for delivery; resolves once its acceptance is durable.
    pub async fn send(&self, event: ExternalEvent) -> Result<IntegrationResult, SendError> {
        let (reply, answer) = command::reply();
        let cmd = Command::Send {
            port: self.index,
            event,
            reply,
        };
        self.shared.commands.send(cmd).await.map_err(|_| SendError::Closed)?;
        answer.recv().await.map_err(|_| SendError::Closed)?
    }

    /// The current state of the delivery of `id`, read from the store.
    ///
    /// Read on the calling thread: one lookup, served from the store's page cache but for
    /// a cold page (one disk read). A hand-off to a blocking pool cost more than the read
    /// (3× the time at p99, 10× under load, in the status benchmark).
    pub async fn status(&self, id: &EventId) -> Result<Option<IntegrationResult>, QueryError> {
        let record = self
            .shared
            .store
            .record(self.name(), id.key())
            .map_err(|e| QueryError::Store(e.to_string()))?;
        Ok(record.map(|r| r.to_result(self.max_attempts())))
    }

    /// The state and every attempt of the delivery of `id`, read on the calling thread
    /// (see [`Port::status`]): the record and one range of attempt records.
    pub async fn history(&self, id: &EventId) -> Result<Option<DeliveryHistory>, QueryError> {
        let found = self
            .shared
            .store
            .history(self.name(), id.key())
            .map_err(|e| QueryError::Store(e.to_string()))?;
        Ok(found.map(|h| DeliveryHistory {
            result: h.record.to_result(self.max_attempts()),
            attempts: h.attempts,
        }))
    }

    /// Waits until the delivery of `id` is delivered, failed or exhausted.
    pub async fn wait_for_terminal(&self, id: &EventId) -> Result<IntegrationResult, WaitError> {
        let (reply, answer) = command::reply();
        let cmd = Command::Wait {
            port: self.index,
            key: id.key(),
            reply,
        };
        self.shared.commands.send(cmd).await.map_err(|_| WaitError::Closed)?;
        if let Some(record) = answer.recv().await.map_err(|_| WaitError::Closed)? {
            return Ok(record.to_result(self.max_attempts()));
        }
        // Not tracked by the engine: terminal already, unknown, or (after a shutdown)
        // left for the next start.
        match self.status(id).await {
            Ok(Some(r)) if r.status.is_terminal() => Ok(r),
            Ok(Some(_)) => Err(WaitError::Closed),
            Ok(None) => Err(WaitError::NotFound(id.to_string())),
            Err(e) => Err(WaitError::Store(e.to_string())),
        }
    }

    /// Delivers a delivered, failed or exhausted event again, as a new recorded cycle.
    pub async fn redrive(&self, id: &EventId) -> Result<IntegrationResult, RedriveError> {
        let (reply, answer) = command::reply();
        let cmd = Command::Redrive {
            port: self.index,
            key: id.key(),
            reply,
        };
        self.shared.commands.send(cmd).await.map_err(|_| RedriveError::Closed)?;
        answer
            .recv()
            .await
            .map_err(|_| RedriveError::Closed)?
            .map_err(|e| match e {
                RedriveError::NotFound(_) => RedriveError::NotFound(id.to_string()),
                other => other,
            })
    }
}

impl IntegrationPort for Port {
    fn send(&self, event: ExternalEvent) -> BoxFuture<'_, Result<IntegrationResult, SendError>> {
        Box::pin(Port::send(self, event))
    }

    fn status<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<Option<IntegrationResult>, QueryError>> {
        Box::pin(Port::status(self, id))
    }

    fn history<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<Option<DeliveryHistory>, QueryError>> {
        Box::pin(Port::history(self, id))
    }
}
