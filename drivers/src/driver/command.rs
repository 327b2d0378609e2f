//! What handles ask of the driver loop, and how it answers.

use std::sync::Arc;

use herald_core::{AttemptReport, DeliveryRecord, EventKey, ExternalEvent, IntegrationResult, SendError};

use crate::error::RedriveError;

/// A one-shot answer channel (a bounded channel of one: runtime-agnostic).
pub(crate) type Reply<T> = async_channel::Sender<T>;

/// Makes a one-shot answer channel.
pub(crate) fn reply<T>() -> (Reply<T>, async_channel::Receiver<T>) {
    async_channel::bounded(1)
}

/// Answers a reply; a caller that stopped waiting is not an error.
pub(crate) fn answer<T>(reply: Reply<T>, value: T) {
    let _ = reply.try_send(value);
}

/// A request from a handle (`Herald`, `Port`).
pub(crate) enum Command {
    Send {
        port: usize,
        event: ExternalEvent,
        reply: Reply<Result<IntegrationResult, SendError>>,
    },
    Redrive {
        port: usize,
        key: EventKey,
        reply: Reply<Result<IntegrationResult, RedriveError>>,
    },
    /// Answer once the delivery is terminal, or at once if the engine does not track it.
    Wait {
        port: usize,
        key: EventKey,
        reply: Reply<Option<DeliveryRecord>>,
    },
    Shutdown {
        grace: std::time::Duration,
        reply: Reply<()>,
    },
}

/// An attempt task's result.
pub(crate) struct Finished {
    pub(crate) port: usize,
    pub(crate) key: EventKey,
    pub(crate) attempt: u32,
    pub(crate) report: AttemptReport,
}

/// A status change, published after it is durable.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The port's name.
    pub port: Arc<str>,
    /// The delivery's state after the change.
    pub result: IntegrationResult,
}

/// A callback that observes status changes (monitoring, metrics). It runs on the driver
/// loop: keep it short and never block in it.
pub type StatusHook = Arc<dyn Fn(&StatusChange) + Send + Sync>;
