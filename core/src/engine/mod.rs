//! The delivery engine of one port: a state machine that turns inputs (sends, attempt
//! reports, redrives, shutdown, the passing of time) into outputs (changes to persist,
//! attempts to start). See the crate docs for the loop a driver runs around it.

mod table;
mod timers;

use std::collections::VecDeque;

use crate::classify::{AttemptOutcome, OutcomeClass};
use crate::config::{ConfigError, EngineConfig};
use crate::event::ExternalEvent;
use crate::id::{EventId, EventKey};
use crate::record::{Change, DeliveryRecord, Transition};
use crate::report::AttemptReport;
use crate::retry::NextStep;
use crate::status::DeliveryStatus;
use crate::time::Timestamp;

use table::{Phase, Slot, Table};
use timers::Timers;

/// Something that happened, for the engine to act on.
#[derive(Debug)]
pub enum Input {
    /// A caller sends an event. `prior` is the stored record under the event's key, if
    /// the driver found one; the engine uses it to answer re-sends of deliveries it no
    /// longer tracks (terminal ones).
    Send {
        /// The event.
        event: ExternalEvent,
        /// The stored record with the same key, if any.
        prior: Option<DeliveryRecord>,
    },
    /// An attempt ended; the transport's facts, not yet judged.
    Report {
        /// The delivery.
        key: EventKey,
        /// The attempt number from the [`Attempt`] output.
        attempt: u32,
        /// What the transport observed.
        report: AttemptReport,
    },
    /// An operator asks to deliver a terminal delivery again (a new cycle).
    Redrive {
        /// The stored record of the delivery.
        record: DeliveryRecord,
    },
    /// Stop starting attempts; attempts still in flight at `grace_until` are recorded as
    /// interrupted and rescheduled, so the next start resumes them.
    Shutdown {
        /// End of the grace period.
        grace_until: Timestamp,
    },
}

/// What the engine did with an input that it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    /// A new delivery; it is accepted once the `Persist` outputs drained with it are
    /// committed.
    Accepted,
    /// The same event was sent before; no second delivery. Answer with the stored state
    /// once the outputs drained with it are committed.
    Duplicate {
        /// The delivery's status as the engine knows it.
        status: DeliveryStatus,
    },
    /// The report was recorded.
    Recorded,
    /// The report is for an attempt that already ended (late, duplicated, or after its
    /// deadline) and changes nothing.
    Stale,
    /// A new cycle was started.
    Redriven,
    /// Shutdown has begun.
    ShuttingDown,
}

/// An input the engine refuses; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The payload is over the port's limit.
    #[error("payload is {size} bytes; this port's limit is {limit} bytes")]
    PayloadTooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The id was sent before with different content.
    #[error("event {id} was already sent with different content")]
    Conflict {
        /// The id.
        id: EventId,
    },
    /// Two different ids share a key digest (practically impossible; refused rather
    /// than merged).
    #[error("event id {id} collides with stored event id {stored}")]
    KeyCollision {
        /// The id sent.
        id: EventId,
        /// The id stored under the same key.
        stored: EventId,
    },
    /// The engine is shutting down and takes no new work.
    #[error("the port is shutting down")]
    ShuttingDown,
    /// A redrive of a delivery that is not terminal.
    #[error("delivery {id} is {status}; only delivered, failed or exhausted deliveries can be redriven")]
    NotTerminal {
        /// The delivery.
        id: EventId,
        /// Its status.
        status: DeliveryStatus,
    },
}

/// Something the driver must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Persist this change. All `Persist` outputs drained together go in one commit,
    /// which must succeed before any `Attempt` drained with them starts.
    Persist(Change),
    /// Start an attempt.
    Attempt(Attempt),
}

/// An attempt to start: load the event by key, send it, and report back with
/// [`Input::Report`] before `deadline` (or report [`Observation::TimedOut`](crate::Observation::TimedOut)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub key: EventKey,
    /// The attempt number, to echo in the report.
    pub attempt: u32,
    /// When the attempt must be given up.
    pub deadline: Timestamp,
}

/// What the engine knows about a delivery it tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// `Pending` or `Retrying`.
    pub status: DeliveryStatus,
    /// Last attempt number started.
    pub attempt: u32,
    /// Whether that attempt is in flight.
    pub in_flight: bool,
    /// Next due time (scheduled) or deadline (in flight); `None` while waiting for a free
    /// attempt slot.
    pub at: Option<Timestamp>,
}

/// The delivery engine of one port. Pure: no IO, no clock, no randomness, no threads.
pub struct Engine {
    config: EngineConfig,
    now: Timestamp,
    table: Table,
    timers: Timers,
    ready: VecDeque<u32>,
    in_flight: u32,
    outputs: VecDeque<Output>,
    shutdown: Option<Timestamp>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("now", &self.now)
            .field("tracked", &self.table.len())
            .field("in_flight", &self.in_flight)
            .field("ready", &self.ready.len())
            .field("outputs", &self.outputs.len())
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with nothing to deliver.
    pub fn new(config: EngineConfig, now: Timestamp) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Engine {
            config,
            now,
            table: Table::default(),
            timers: Timers::default(),
            ready: VecDeque::new(),
            in_flight: 0,
            outputs: VecDeque::new(),
            shutdown: None,
        })
    }

    /// An engine that resumes the unfinished deliveries of a store. Terminal records are
    /// skipped. An attempt that was in flight when the process stopped is recorded as
    /// interrupted (it counts toward `max_attempts`) and the delivery continues; those
    /// records are the first `Persist` outputs.
    pub fn restore(
        config: EngineConfig,
        records: impl IntoIterator<Item = DeliveryRecord>,
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        let mut engine = Engine::new(config, now)?;
        for record in records {
            engine.restore_record(&record);
        }
        engine.handle_timeout(now);
        Ok(engine)
    }

    /// Resumes one stored delivery, for drivers that stream records from a store instead
    /// of collecting them for [`Engine::restore`]. Call [`Engine::handle_timeout`] after
    /// the last one. Terminal and already tracked records are skipped.
    pub fn restore_record(&mut self, r: &DeliveryRecord) {
        if r.status.is_terminal() || self.table.find(&r.key()).is_some() {
            return;
        }
        let key = r.key();
        let i = self.table.insert(Slot {
            key,
            fingerprint: r.fingerprint,
            at: r.next_attempt_at.unwrap_or(self.now).as_millis(),
            cycle_start: r.cycle_started_at.as_millis(),
            attempt: r.attempts,
            in_cycle: u16::try_from(r.attempts_in_cycle()).unwrap_or(u16::MAX),
            phase: Phase::Scheduled,
        });
        match r.in_flight {
            Some(f) => {
                let outcome = AttemptOutcome::interrupted("the process stopped during the attempt");
                self.finish(i, f.attempt, outcome);
            }
            None => self.timers.push(self.table.get(i).at, i),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The latest time seen (inputs with an earlier `now` are clamped to it).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Deliveries tracked (accepted, not yet terminal).
    pub fn tracked_count(&self) -> usize {
        self.table.len()
    }

    /// Attempts in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Whether shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Shutdown is complete: nothing in flight and no output left to drain.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown.is_some() && self.in_flight == 0 && self.outputs.is_empty()
    }

    /// What the engine knows about a tracked delivery.
    pub fn tracked(&self, key: &EventKey) -> Option<Tracked> {
        let s = self.table.get(self.table.find(key)?);
        Some(Tracked {
            status: slot_status(s),
            attempt: s.attempt,
            in_flight: s.phase == Phase::InFlight,
            at: (s.phase != Phase::Ready).then(|| s.at()),
        })
    }

    /// Heap bytes of the engine's own per-delivery state (slots, index, timers, queues),
    /// by capacity. The benchmark checks it against the process's resident memory.
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes() + self.timers.heap_bytes() + self.ready.capacity() * 4
    }

    /// Feeds one input. On `Err`, nothing changed.
    pub fn handle_input(&mut self, input: Input, now: Timestamp) -> Result<Ack, InputError> {
        self.observe(now);
        let ack = match input {
            Input::Send { event, prior } => self.handle_send(event, prior),
            Input::Report { key, attempt, report } => Ok(self.handle_report(key, attempt, report)),
            Input::Redrive { record } => self.handle_redrive(record),
            Input::Shutdown { grace_until } => {
                self.shutdown = Some(self.shutdown.map_or(grace_until, |g| g.min(grace_until)));
                // Due deliveries stay persisted as due; the next start picks them up.
                for i in self.ready.drain(..) {
                    self.table.get_mut(i).phase = Phase::Scheduled;
                    self.timers.push(self.table.get(i).at, i);
                }
                self.handle_timeout(now);
                Ok(Ack::ShuttingDown)
            }
        };
        self.prune_timers();
        ack
    }

    fn handle_send(&mut self, event: ExternalEvent, prior: Option<DeliveryRecord>) -> Result<Ack, InputError> {
        let key = event.key();
        if let Some(i) = self.table.find(&key) {
            let slot = self.table.get(i);
            return if slot.fingerprint == event.fingerprint() {
                Ok(Ack::Duplicate {
                    status: slot_status(slot),
                })
            } else {
                Err(InputError::Conflict { id: event.id().clone() })
            };
        }
        if let Some(prior) = prior {
            if prior.id != *event.id() {
                return Err(InputError::KeyCollision {
                    id: event.id().clone(),
                    stored: prior.id,
                });
            }
            return if prior.fingerprint == event.fingerprint() {
                Ok(Ack::Duplicate { status: prior.status })
            } else {
                Err(InputError::Conflict { id: prior.id })
            };
        }
        if self.shutdown.is_some() {
            return Err(InputError::ShuttingDown);
        }
        let size = event.payload().len();
        if size > self.config.payload_limit {
            return Err(InputError::PayloadTooLarge {
                size,
                limit: self.config.payload_limit,
            });
        }
        let now = self.now;
        let i = self.table.insert(Slot {
            key,
            fingerprint: event.fingerprint(),
            at: now.as_millis(),
            cycle_start: now.as_millis(),
            attempt: 0,
            in_cycle: 0,
            phase: Phase::Ready,
        });
        self.outputs
            .push_back(Output::Persist(Change::Accepted { event, at: now }));
        self.make_ready(i);
        Ok(Ack::Accepted)
    }

    fn handle_report(&mut self, key: EventKey, attempt: u32, report: AttemptReport) -> Ack {
        let Some(i) = self.table.find(&key) else {
            return Ack::Stale;
        };
        let slot = self.table.get(i);
        if slot.phase != Phase::InFlight || slot.attempt != attempt {
            return Ack::Stale;
        }
        let outcome = self.config.classifier.classify(report, self.now);
        self.finish(i, attempt, outcome);
        self.start_ready();
        Ack::Recorded
    }

    fn handle_redrive(&mut self, record: DeliveryRecord) -> Result<Ack, InputError> {
        let key = record.key();
        if let Some(i) = self.table.find(&key) {
            return Err(InputError::NotTerminal {
                id: record.id,
                status: slot_status(self.table.get(i)),
            });
        }
        if !record.status.is_terminal() {
            return Err(InputError::NotTerminal {
                id: record.id,
                status: record.status,
            });
        }
        if self.shutdown.is_some() {
            return Err(InputError::ShuttingDown);
        }
        let now = self.now;
        let i = self.table.insert(Slot {
            key,
            fingerprint: record.fingerprint,
            at: now.as_millis(),
            cycle_start: now.as_millis(),
            attempt: record.attempts,
            in_cycle: 0,
            phase: Phase::Ready,
        });
        self.outputs
            .push_back(Output::Persist(Change::Redriven { key, at: now }));
        self.make_ready(i);
        Ok(Ack::Redriven)
    }

    /// Lets time pass: starts due attempts, times out attempts past their deadline, and
    /// ends the shutdown grace period. Calling it early or repeatedly is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.observe(now);
        let now_ms = self.now.as_millis();
        while let Some((at, i)) = self.timers.pop_due(now_ms) {
            if !self.table.is_live(i) || self.table.get(i).at != at {
                continue;
            }
            match self.table.get(i).phase {
                Phase::Scheduled => self.make_ready(i),
                Phase::InFlight => {
                    let attempt = self.table.get(i).attempt;
                    let outcome = AttemptOutcome::timed_out(self.config.policy.get_attempt_timeout());
                    self.finish(i, attempt, outcome);
                }
                Phase::Ready => {}
            }
        }
        if self.shutdown.is_some_and(|g| g <= self.now) && self.in_flight > 0 {
            self.abandon_in_flight();
        }
        self.start_ready();
        self.prune_timers();
    }

    /// The next output to carry out, in order: persistence before the attempts that
    /// depend on it.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Engine::handle_timeout`] should next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let timer = self.timers.peek().map(|(at, _)| Timestamp::from_millis(at));
        let grace = self.shutdown.filter(|_| self.in_flight > 0);
        match (timer, grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn observe(&mut self, now: Timestamp) {
        // The wall clock may step back; time inside the engine never does.
        self.now = self.now.max(now);
    }

    /// Queues a due delivery for an attempt slot.
    fn make_ready(&mut self, i: u32) {
        self.table.get_mut(i).phase = Phase::Ready;
        self.ready.push_back(i);
        self.start_ready();
    }

    fn start_ready(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        while self.in_flight < self.config.max_in_flight {
            let Some(i) = self.ready.pop_front() else { break };
            let now = self.now;
            let deadline = now.saturating_add(self.config.policy.get_attempt_timeout());
            let slot = self.table.get_mut(i);
            slot.attempt += 1;
            slot.in_cycle = slot.in_cycle.saturating_add(1);
            slot.phase = Phase::InFlight;
            slot.at = deadline.as_millis();
            let (key, attempt) = (slot.key, slot.attempt);
            self.in_flight += 1;
            self.timers.push(deadline.as_millis(), i);
            self.outputs.push_back(Output::Persist(Change::AttemptStarted {
                key,
                attempt,
                at: now,
                deadline,
            }));
            self.outputs
                .push_back(Output::Attempt(Attempt { key, attempt, deadline }));
        }
    }

    /// Records the end of attempt `attempt` of slot `i` and moves the delivery on.
    fn finish(&mut self, i: u32, attempt: u32, outcome: AttemptOutcome) {
        let now = self.now;
        let slot = *self.table.get(i);
        if slot.phase == Phase::InFlight {
            self.in_flight -= 1;
        }
        let next = match outcome.class {
            OutcomeClass::Delivered => Transition::Delivered,
            OutcomeClass::Permanent => Transition::Failed,
            OutcomeClass::Retryable => match self.config.policy.next_after_failure(
                self.config.seed,
                slot.key,
                slot.attempts_in_cycle(),
                slot.cycle_start(),
                now,
                outcome.retry_after,
            ) {
                NextStep::RetryAt(at) => Transition::RetryAt(at),
                NextStep::Exhausted(by) => Transition::Exhausted(by),
            },
        };
        self.outputs.push_back(Output::Persist(Change::AttemptFinished {
            key: slot.key,
            attempt,
            at: now,
            outcome,
            next,
        }));
        match next {
            // A retry due at once (a zero delay) takes a free slot now, not on the
            // driver's next wake-up.
            Transition::RetryAt(at) if at <= now => {
                self.table.get_mut(i).at = at.as_millis();
                self.make_ready(i);
            }
            Transition::RetryAt(at) => {
                let s = self.table.get_mut(i);
                s.phase = Phase::Scheduled;
                s.at = at.as_millis();
                self.timers.push(at.as_millis(), i);
            }
            _ => self.table.remove(i),
        }
    }

    fn abandon_in_flight(&mut self) {
        let in_flight: Vec<(u32, u32)> = self
            .table
            .live()
            .filter(|s| s.phase == Phase::InFlight)
            .map(|s| (self.table.find(&s.key).expect("live"), s.attempt))
            .collect();
        for (i, attempt) in in_flight {
            let outcome = AttemptOutcome::interrupted("shutdown grace period ended during the attempt");
            self.finish(i, attempt, outcome);
        }
    }

    fn prune_timers(&mut self) {
        let table = &self.table;
        self.timers.prune(|at, i| {
            table.is_live(i) && {
                let s = table.get(i);
                s.at == at && s.phase != Phase::Ready
            }
        });
    }

    /// The number of timer entries, stale ones included (for tests and diagnostics).
    #[doc(hidden)]
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }
}

fn slot_status(s: &Slot) -> DeliveryStatus {
    let finished = s.attempts_in_cycle() - u32::from(s.phase == Phase::InFlight);
    if finished == 0 {
        DeliveryStatus::Pending
    } else {
        DeliveryStatus::Retrying
    }
}

#[cfg(test)]
mod tests;
