//! The durable state of a delivery and the changes the engine asks to persist.
//!
//! The engine emits [`Change`]s; a store applies them with [`DeliveryRecord::apply`]
//! inside one transaction. Keeping `apply` here means every backend, the reference models
//! in the tests and the simulator share one definition of what a change does.

use serde::{Deserialize, Serialize};

use crate::classify::{AttemptOutcome, OutcomeClass};
use crate::event::ExternalEvent;
use crate::id::{EventId, EventKey, Fingerprint};
use crate::retry::ExhaustedBy;
use crate::status::{AttemptRecord, DeliveryStatus, FailureDetail, IntegrationResult};
use crate::time::Timestamp;

/// A state change to persist. `Persist` outputs of the engine carry these, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new delivery was accepted; the store keeps the event and a `Pending` record.
    Accepted {
        /// The event (the store keeps its bytes; the engine does not).
        event: ExternalEvent,
        /// Acceptance time.
        at: Timestamp,
    },
    /// An attempt is about to start; persisted first so that a crash during the attempt
    /// is seen on restart as an interrupted attempt.
    AttemptStarted {
        /// The delivery.
        key: EventKey,
        /// The attempt number (one more than the last).
        attempt: u32,
        /// Start time.
        at: Timestamp,
        /// When the attempt times out.
        deadline: Timestamp,
    },
    /// An attempt ended (or was found interrupted) and the delivery moves on.
    AttemptFinished {
        /// The delivery.
        key: EventKey,
        /// The attempt that ended.
        attempt: u32,
        /// When its outcome was recorded.
        at: Timestamp,
        /// What happened.
        outcome: AttemptOutcome,
        /// Where the delivery goes next.
        next: Transition,
    },
    /// An operator redrove a terminal delivery: a new cycle starts.
    Redriven {
        /// The delivery.
        key: EventKey,
        /// Redrive time; the first attempt of the new cycle is due then.
        at: Timestamp,
    },
}

impl Change {
    /// The delivery this change is about.
    pub fn key(&self) -> EventKey {
        match self {
            Change::Accepted { event, .. } => event.key(),
            Change::AttemptStarted { key, .. } | Change::AttemptFinished { key, .. } | Change::Redriven { key, .. } => {
                *key
            }
        }
    }
}

/// Where a delivery goes after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// It is delivered.
    Delivered,
    /// It failed permanently.
    Failed,
    /// Its retries are used up.
    Exhausted(ExhaustedBy),
    /// Another attempt is due at this time.
    RetryAt(Timestamp),
}

impl Transition {
    /// The status this transition leads to.
    pub fn status(self) -> DeliveryStatus {
        match self {
            Transition::Delivered => DeliveryStatus::Delivered,
            Transition::Failed => DeliveryStatus::Failed,
            Transition::Exhausted(_) => DeliveryStatus::Exhausted,
            Transition::RetryAt(_) => DeliveryStatus::Retrying,
        }
    }
}

/// An attempt that was started and has not ended, as persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Its number.
    pub attempt: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When it times out.
    pub deadline: Timestamp,
}

/// The durable state of one delivery (one event on one port), without the event's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The event id.
    pub id: EventId,
    /// The event's content fingerprint, to tell a re-send from a conflict.
    pub fingerprint: Fingerprint,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When it was accepted.
    pub accepted_at: Timestamp,
    /// Redrives so far (0 in the first cycle).
    pub cycle: u32,
    /// When the current cycle started (acceptance or the last redrive).
    pub cycle_started_at: Timestamp,
    /// The last attempt number before the current cycle.
    pub cycle_base: u32,
    /// The last attempt number started, over all cycles.
    pub attempts: u32,
    /// The attempt in flight, if one was started and has not ended.
    pub in_flight: Option<InFlight>,
    /// When the next attempt is due, while one is scheduled.
    pub next_attempt_at: Option<Timestamp>,
    /// Why the last attempt of this cycle failed, if it did.
    pub last_failure: Option<FailureDetail>,
    /// Why the cycle was exhausted, if it was.
    pub exhausted_by: Option<ExhaustedBy>,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// When this record last changed.
    pub updated_at: Timestamp,
}

/// A change that does not fit the record it is applied to. With a correct engine this
/// never happens; a store reports it instead of guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The delivery is already terminal.
    #[error("delivery {id} is {status} and cannot change without a redrive")]
    Terminal {
        /// The delivery.
        id: EventId,
        /// Its status.
        status: DeliveryStatus,
    },
    /// A redrive of a delivery that is still active.
    #[error("delivery {id} is {status}; only a terminal delivery can be redriven")]
    NotTerminal {
        /// The delivery.
        id: EventId,
        /// Its status.
        status: DeliveryStatus,
    },
    /// An attempt number that does not follow the record's.
    #[error("delivery {id}: attempt {got} does not fit (last started {last}, in flight {in_flight:?})")]
    AttemptOutOfOrder {
        /// The delivery.
        id: EventId,
        /// The attempt number in the change.
        got: u32,
        /// The last attempt number started.
        last: u32,
        /// The attempt in flight.
        in_flight: Option<u32>,
    },
    /// `Accepted` for a delivery that exists (the store resolves this before applying).
    #[error("delivery {id} exists already")]
    Exists {
        /// The delivery.
        id: EventId,
    },
}

impl DeliveryRecord {
    /// The record a new delivery starts with.
    pub fn accepted(event: &ExternalEvent, at: Timestamp) -> Self {
        DeliveryRecord {
            id: event.id().clone(),
            fingerprint: event.fingerprint(),
            status: DeliveryStatus::Pending,
            accepted_at: at,
            cycle: 0,
            cycle_started_at: at,
            cycle_base: 0,
            attempts: 0,
            in_flight: None,
            next_attempt_at: Some(at),
            last_failure: None,
            exhausted_by: None,
            delivered_at: None,
            updated_at: at,
        }
    }

    /// The key of [`Self::id`].
    pub fn key(&self) -> EventKey {
        self.id.key()
    }

    /// Attempts made in the current cycle.
    pub fn attempts_in_cycle(&self) -> u32 {
        self.attempts - self.cycle_base
    }

    /// Applies a change to this record; returns the attempt record to append to the
    /// history, if the change ended an attempt. `Accepted` is not applied to an existing
    /// record (see [`DeliveryRecord::accepted`]).
    pub fn apply(&mut self, change: &Change) -> Result<Option<AttemptRecord>, ApplyError> {
        match change {
            Change::Accepted { .. } => Err(ApplyError::Exists { id: self.id.clone() }),
            Change::AttemptStarted {
                attempt, at, deadline, ..
            } => {
                self.ensure_active()?;
                if *attempt != self.attempts + 1 || self.in_flight.is_some() {
                    return Err(self.out_of_order(*attempt));
                }
                self.attempts = *attempt;
                self.in_flight = Some(InFlight {
                    attempt: *attempt,
                    started_at: *at,
                    deadline: *deadline,
                });
                self.next_attempt_at = None;
                self.updated_at = *at;
                Ok(None)
            }
            Change::AttemptFinished {
                attempt,
                at,
                outcome,
                next,
                ..
            } => {
                self.ensure_active()?;
                let started_at = match self.in_flight {
                    Some(f) if f.attempt == *attempt => f.started_at,
                    _ => return Err(self.out_of_order(*attempt)),
                };
                self.in_flight = None;
                self.status = next.status();
                self.next_attempt_at = match next {
                    Transition::RetryAt(t) => Some(*t),
                    _ => None,
                };
                self.exhausted_by = match next {
                    Transition::Exhausted(by) => Some(*by),
                    _ => None,
                };
                if outcome.class == OutcomeClass::Delivered {
                    self.delivered_at = Some(*at);
                } else {
                    self.last_failure = Some(FailureDetail {
                        attempt: *attempt,
                        class: outcome.class,
                        code: outcome.code.clone(),
                        message: outcome.message.clone(),
                        at: *at,
                    });
                }
                self.updated_at = *at;
                Ok(Some(AttemptRecord {
                    attempt: *attempt,
                    cycle: self.cycle,
                    started_at,
                    finished_at: *at,
                    outcome: outcome.clone(),
                }))
            }
            Change::Redriven { at, .. } => {
                if !self.status.is_terminal() {
                    return Err(ApplyError::NotTerminal {
                        id: self.id.clone(),
                        status: self.status,
                    });
                }
                self.status = DeliveryStatus::Pending;
                self.cycle += 1;
                self.cycle_base = self.attempts;
                self.cycle_started_at = *at;
                self.next_attempt_at = Some(*at);
                self.last_failure = None;
                self.exhausted_by = None;
                self.delivered_at = None;
                self.updated_at = *at;
                Ok(None)
            }
        }
    }

    /// The caller's view of this record under a policy allowing `max_attempts` per cycle.
    pub fn to_result(&self, max_attempts: u32) -> IntegrationResult {
        IntegrationResult {
            event_id: self.id.clone(),
            status: self.status,
            attempts_made: self.attempts_in_cycle(),
            attempts_remaining: if self.status.is_terminal() {
                0
            } else {
                max_attempts.saturating_sub(self.attempts_in_cycle())
            },
            next_attempt_at: self.next_attempt_at,
            last_failure: self.last_failure.clone(),
            accepted_at: self.accepted_at,
            delivered_at: self.delivered_at,
            cycle: self.cycle,
            updated_at: self.updated_at,
        }
    }

    fn ensure_active(&self) -> Result<(), ApplyError> {
        if self.status.is_terminal() {
            Err(ApplyError::Terminal {
                id: self.id.clone(),
                status: self.status,
            })
        } else {
            Ok(())
        }
    }

    fn out_of_order(&self, got: u32) -> ApplyError {
        ApplyError::AttemptOutOfOrder {
            id: self.id.clone(),
            got,
            last: self.attempts,
            in_flight: self.in_flight.map(|f| f.attempt),
        }
    }
}
