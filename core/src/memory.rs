//! An in-memory [`IntegrationPort`] for testing domain code without a driver: it records
//! what was sent, settles every accepted event as you tell it, and can be told to fail.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::classify::OutcomeClass;
use crate::engine::InputError;
use crate::event::ExternalEvent;
use crate::id::EventId;
use crate::port::{BoxFuture, IntegrationPort, QueryError, SendError};
use crate::status::{DeliveryHistory, DeliveryStatus, FailureDetail, IntegrationResult};

/// What the [`MemoryPort`] does with the events it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    /// They are delivered at once.
    Deliver,
    /// They stay pending.
    Hold,
    /// They fail permanently with this message.
    Fail(String),
}

/// A test double for [`IntegrationPort`]. It reads no clock: results are stamped with
/// the event's `occurred_at`.
#[derive(Debug)]
pub struct MemoryPort {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    settle: Settle,
    sent: Vec<ExternalEvent>,
    results: HashMap<EventId, (ExternalEvent, IntegrationResult)>,
    failures: VecDeque<SendError>,
}

impl Default for MemoryPort {
    fn default() -> Self {
        Self::new(Settle::Deliver)
    }
}

impl MemoryPort {
    /// A port that settles accepted events as `settle` says.
    pub fn new(settle: Settle) -> Self {
        MemoryPort {
            state: Mutex::new(State {
                settle,
                sent: Vec::new(),
                results: HashMap::new(),
                failures: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not hide what was recorded.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the next `send` fail with `err` (queued: call again for more).
    pub fn fail_next_send(&self, err: SendError) {
        self.lock().failures.push_back(err);
    }

    /// Changes how later events settle.
    pub fn settle(&self, settle: Settle) {
        self.lock().settle = settle;
    }

    /// Every event accepted, in order (re-sends of the same event appear once).
    pub fn sent(&self) -> Vec<ExternalEvent> {
        self.lock().sent.clone()
    }

    fn send_now(&self, event: ExternalEvent) -> Result<IntegrationResult, SendError> {
        let mut st = self.lock();
        if let Some(err) = st.failures.pop_front() {
            return Err(err);
        }
        if let Some((prev, result)) = st.results.get(event.id()) {
            return if prev.fingerprint() == event.fingerprint() {
                Ok(result.clone())
            } else {
                Err(InputError::Conflict { id: event.id().clone() }.into())
            };
        }
        let at = event.occurred_at();
        let (status, delivered_at, last_failure) = match &st.settle {
            Settle::Deliver => (DeliveryStatus::Delivered, Some(at), None),
            Settle::Hold => (DeliveryStatus::Pending, None, None),
            Settle::Fail(message) => (
                DeliveryStatus::Failed,
                None,
                Some(FailureDetail {
                    attempt: 1,
                    class: OutcomeClass::Permanent,
                    code: "memory_port".into(),
                    message: message.clone(),
                    at,
                }),
            ),
        };
        let attempted = u32::from(status != DeliveryStatus::Pending);
        let result = IntegrationResult {
            event_id: event.id().clone(),
            status,
            attempts_made: attempted,
            attempts_remaining: 1 - attempted,
            next_attempt_at: None,
            last_failure,
            accepted_at: at,
            delivered_at,
            cycle: 0,
            updated_at: at,
        };
        st.sent.push(event.clone());
        st.results.insert(event.id().clone(), (event, result.clone()));
        Ok(result)
    }
}

impl IntegrationPort for MemoryPort {
    fn send(&self, event: ExternalEvent) -> BoxFuture<'_, Result<IntegrationResult, SendError>> {
        let r = self.send_now(event);
        Box::pin(std::future::ready(r))
    }

    fn status<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<Option<IntegrationResult>, QueryError>> {
        let r = self.lock().results.get(id).map(|(_, r)| r.clone());
        Box::pin(std::future::ready(Ok(r)))
    }

    fn history<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<Option<DeliveryHistory>, QueryError>> {
        let r = self.lock().results.get(id).map(|(_, r)| DeliveryHistory {
            result: r.clone(),
            attempts: Vec::new(),
        });
        Box::pin(std::future::ready(Ok(r)))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::time::Timestamp;

    /// The double's futures are always ready: poll once.
    fn now<T>(f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("MemoryPort futures are ready at once"),
        }
    }

    fn event(id: &str, payload: &str) -> ExternalEvent {
        ExternalEvent::builder("t")
            .id(id)
            .payload(payload.as_bytes().to_vec())
            .occurred_at(Timestamp::from_secs(1))
            .build()
            .unwrap()
    }

    #[test]
    fn records_sends_and_answers_status_through_the_trait() {
        let port: &dyn IntegrationPort = &MemoryPort::default();
        let r = now(port.send(event("a", "1"))).unwrap();
        assert_eq!(r.status, DeliveryStatus::Delivered);
        let s = now(port.status(&EventId::new("a").unwrap())).unwrap().unwrap();
        assert_eq!(s, r);
        assert!(now(port.status(&EventId::new("b").unwrap())).unwrap().is_none());
    }

    #[test]
    fn resends_are_idempotent_and_conflicts_refused() {
        let port = MemoryPort::new(Settle::Hold);
        now(port.send(event("a", "1"))).unwrap();
        assert_eq!(now(port.send(event("a", "1"))).unwrap().status, DeliveryStatus::Pending);
        let e = now(port.send(event("a", "2"))).unwrap_err();
        assert!(matches!(e, SendError::Rejected(InputError::Conflict { .. })));
        assert_eq!(port.sent().len(), 1);
    }

    #[test]
    fn can_be_told_to_fail() {
        let port = MemoryPort::new(Settle::Fail("receiver said no".into()));
        port.fail_next_send(SendError::Closed);
        assert_eq!(now(port.send(event("a", "1"))), Err(SendError::Closed));
        let r = now(port.send(event("a", "1"))).unwrap();
        assert_eq!(r.status, DeliveryStatus::Failed);
        assert_eq!(r.last_failure.unwrap().message, "receiver said no");
        assert!(port.sent().len() == 1);
    }
}
