//! A checked engine: the real [`Engine`] plus a reference model of what the store holds,
//! with the invariants of DESIGN.md §4 checked after every step.
//!
//! The model is deliberately simple: every drained `Persist` is applied, in order, to a
//! `BTreeMap` of [`DeliveryRecord`]s with the core's `DeliveryRecord::apply` (which refuses
//! out-of-order attempts and changes to terminal records), as a driver's commit would.
//! Everything the engine claims is then compared with that map.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use herald_core::{
    Ack, AttemptReport, Change, DeliveryRecord, DeliveryStatus, Engine, EngineConfig, EventKey, ExhaustedBy,
    ExternalEvent, Input, InputError, Observation, OutcomeClass, Output, Timestamp, Transition,
};

/// An invariant that did not hold, with the step it broke on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(Violation(format!($($arg)*)));
        }
    };
}

/// The engine under test and the model it is checked against.
pub struct CheckedEngine {
    config: EngineConfig,
    engine: Engine,
    /// Records as a store would hold them after each commit.
    store: BTreeMap<EventKey, DeliveryRecord>,
    /// Attempts started and not yet reported, as a driver would track them.
    outstanding: BTreeSet<(EventKey, u32)>,
    /// Attempts that ended; reporting them again must change nothing.
    ended: Vec<(EventKey, u32)>,
    /// Every output and ack, in order: two runs of the same inputs must match.
    trace: String,
    /// The wall clock the driver would read (may step back).
    wall: Timestamp,
}

impl std::fmt::Debug for CheckedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedEngine")
            .field("engine", &self.engine)
            .field("records", &self.store.len())
            .finish_non_exhaustive()
    }
}

impl CheckedEngine {
    /// A fresh engine at `now`.
    pub fn new(config: EngineConfig, now: Timestamp) -> Self {
        let engine = Engine::new(config.clone(), now).expect("valid config");
        CheckedEngine {
            config,
            engine,
            store: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            ended: Vec::new(),
            trace: String::new(),
            wall: now,
        }
    }

    /// The engine (for queries).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The committed records.
    pub fn records(&self) -> &BTreeMap<EventKey, DeliveryRecord> {
        &self.store
    }

    /// Attempts in flight from the driver's point of view.
    pub fn outstanding(&self) -> Vec<(EventKey, u32)> {
        self.outstanding.iter().copied().collect()
    }

    /// Attempts that already ended.
    pub fn ended(&self) -> &[(EventKey, u32)] {
        &self.ended
    }

    /// Everything that happened, as text.
    pub fn trace(&self) -> &str {
        &self.trace
    }

    /// The wall clock.
    pub fn wall(&self) -> Timestamp {
        self.wall
    }

    /// Moves the wall clock (forwards or backwards).
    pub fn set_wall(&mut self, now: Timestamp) {
        self.wall = now;
    }

    /// Sends an event, answering re-sends of finished deliveries from the store as a
    /// driver does.
    pub fn send(&mut self, event: ExternalEvent) -> Result<Result<Ack, InputError>, Violation> {
        let key = event.key();
        let prior = self.store.get(&key).cloned();
        let accepted_before = self.store.contains_key(&key);
        let r = self.engine.handle_input(Input::Send { event, prior }, self.wall);
        let _ = writeln!(self.trace, "send {key:?} -> {r:?}");
        if accepted_before {
            ensure!(
                !matches!(r, Ok(Ack::Accepted)),
                "a second delivery was accepted for {key:?}"
            );
        }
        self.drain(None)?;
        Ok(r)
    }

    /// Reports the end of an attempt.
    pub fn report(&mut self, key: EventKey, attempt: u32, report: AttemptReport) -> Result<Ack, Violation> {
        let success = matches!(
            report.observation,
            Observation::Http { status: 200..=299, .. } | Observation::Acknowledged { .. }
        ) && self.config.classifier.http_class(status_of(&report)) == OutcomeClass::Delivered;
        let was_outstanding = self.outstanding.remove(&(key, attempt));
        let r = self
            .engine
            .handle_input(Input::Report { key, attempt, report }, self.wall)
            .map_err(|e| Violation(format!("report refused: {e}")))?;
        let _ = writeln!(self.trace, "report {key:?}#{attempt} -> {r:?}");
        if !was_outstanding {
            ensure!(
                r == Ack::Stale,
                "a report for an attempt that ended was recorded: {key:?}#{attempt}"
            );
        }
        if r == Ack::Recorded {
            self.ended.push((key, attempt));
        }
        self.drain(success.then_some((key, attempt)))?;
        Ok(r)
    }

    /// Redrives a terminal delivery.
    pub fn redrive(&mut self, key: EventKey) -> Result<Result<Ack, InputError>, Violation> {
        let Some(record) = self.store.get(&key).cloned() else {
            return Ok(Err(InputError::ShuttingDown));
        };
        let terminal = record.status.is_terminal();
        let r = self.engine.handle_input(Input::Redrive { record }, self.wall);
        let _ = writeln!(self.trace, "redrive {key:?} -> {r:?}");
        ensure!(terminal || r.is_err(), "an active delivery was redriven: {key:?}");
        self.drain(None)?;
        Ok(r)
    }

    /// Asks for shutdown with a grace period ending at `grace_until`.
    pub fn shutdown(&mut self, grace_until: Timestamp) -> Result<(), Violation> {
        let r = self.engine.handle_input(Input::Shutdown { grace_until }, self.wall);
        let _ = writeln!(self.trace, "shutdown until {grace_until:?} -> {r:?}");
        self.drain(None)
    }

    /// Lets time pass up to the wall clock.
    pub fn tick(&mut self) -> Result<(), Violation> {
        self.engine.handle_timeout(self.wall);
        let _ = writeln!(self.trace, "tick {:?}", self.wall);
        self.drain(None)
    }

    /// Jumps the wall clock to the engine's next timeout, if any, and ticks.
    pub fn advance_to_next_timeout(&mut self) -> Result<bool, Violation> {
        match self.engine.poll_timeout() {
            Some(t) => {
                self.wall = self.wall.max(t);
                self.tick()?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Simulates a crash: the engine and the driver's in-flight attempts are lost; a new
    /// engine is restored from the committed records.
    pub fn crash_and_restore(&mut self) -> Result<(), Violation> {
        let records: Vec<DeliveryRecord> = self.store.values().cloned().collect();
        let interrupted: BTreeSet<EventKey> = self
            .store
            .iter()
            .filter(|(_, r)| r.in_flight.is_some())
            .map(|(k, _)| *k)
            .collect();
        self.ended.extend(std::mem::take(&mut self.outstanding));
        self.engine = Engine::restore(self.config.clone(), records, self.wall).expect("valid config");
        let _ = writeln!(self.trace, "restart at {:?}", self.wall);
        let before: BTreeMap<EventKey, Option<u32>> = interrupted
            .iter()
            .map(|k| (*k, self.store[k].in_flight.map(|f| f.attempt)))
            .collect();
        self.drain(None)?;
        for (key, attempt) in before {
            let r = &self.store[&key];
            ensure!(
                r.in_flight.is_none_or(|f| Some(f.attempt) != attempt),
                "interrupted attempt {attempt:?} of {key:?} was not recorded on restore"
            );
        }
        Ok(())
    }

    /// Invariant 8 in the model: faults stop (one restart, then every attempt succeeds)
    /// and every delivery must end.
    pub fn settle_after_faults(&mut self) -> Result<(), Violation> {
        self.crash_and_restore()?;
        let success = || {
            AttemptReport::new(Observation::Http {
                status: 200,
                retry_after: None,
            })
        };
        for _ in 0..10_000 {
            for (key, attempt) in self.outstanding() {
                self.report(key, attempt, success())?;
            }
            if !self.advance_to_next_timeout()? && self.outstanding.is_empty() {
                return match self.store.iter().find(|(_, r)| !r.status.is_terminal()) {
                    Some((key, r)) => Err(Violation(format!(
                        "{key:?} is still {:?} after faults stopped",
                        r.status
                    ))),
                    None => Ok(()),
                };
            }
        }
        Err(Violation("deliveries did not settle after faults stopped".into()))
    }

    /// Drains the outputs, applying persists to the model and checking every invariant.
    /// `success` is the attempt a successful report was just given for, if any.
    fn drain(&mut self, success: Option<(EventKey, u32)>) -> Result<(), Violation> {
        let now = self.engine.now();
        while let Some(out) = self.engine.poll_output() {
            let _ = writeln!(self.trace, "  {}", describe(&out));
            match out {
                Output::Persist(change) => self.apply(change, now, success)?,
                Output::Attempt(a) => {
                    let r = self.store.get(&a.key);
                    // Invariant 2: the attempt's start is committed before the attempt.
                    ensure!(
                        r.is_some_and(|r| r
                            .in_flight
                            .is_some_and(|f| f.attempt == a.attempt && f.deadline == a.deadline)),
                        "attempt {:?}#{} emitted before its start was persisted",
                        a.key,
                        a.attempt
                    );
                    ensure!(self.outstanding.insert((a.key, a.attempt)), "attempt emitted twice");
                }
            }
        }
        self.check_state()
    }

    fn apply(&mut self, change: Change, now: Timestamp, success: Option<(EventKey, u32)>) -> Result<(), Violation> {
        let key = change.key();
        let policy = &self.config.policy;
        match &change {
            Change::Accepted { event, at } => {
                ensure!(!self.store.contains_key(&key), "second Accepted for {key:?}");
                ensure!(*at == now, "accepted at {at:?}, not at the engine's now {now:?}");
                self.store.insert(key, DeliveryRecord::accepted(event, *at));
                return Ok(());
            }
            Change::AttemptStarted {
                attempt, at, deadline, ..
            } => {
                let r = self
                    .store
                    .get(&key)
                    .ok_or_else(|| Violation(format!("start of unknown {key:?}")))?;
                // Invariant 7: no attempt before its time, within the policy's limits.
                ensure!(
                    r.next_attempt_at.is_some_and(|due| due <= *at),
                    "attempt {attempt} of {key:?} at {at:?} before it was due ({:?})",
                    r.next_attempt_at
                );
                ensure!(
                    r.attempts_in_cycle() < policy.get_max_attempts(),
                    "attempt {attempt} of {key:?} exceeds max_attempts {}",
                    policy.get_max_attempts()
                );
                ensure!(
                    *deadline == at.saturating_add(policy.get_attempt_timeout()),
                    "deadline {deadline:?} is not start + timeout"
                );
            }
            Change::AttemptFinished {
                attempt,
                outcome,
                next,
                at,
                ..
            } => {
                let r = self
                    .store
                    .get(&key)
                    .ok_or_else(|| Violation(format!("finish of unknown {key:?}")))?;
                // Invariant 4: delivered only after a success for the current attempt.
                if *next == Transition::Delivered {
                    ensure!(
                        success == Some((key, *attempt)) && outcome.class == OutcomeClass::Delivered,
                        "{key:?}#{attempt} delivered without a success report for it"
                    );
                }
                ensure!(
                    (outcome.class == OutcomeClass::Delivered) == (*next == Transition::Delivered)
                        && (outcome.class == OutcomeClass::Permanent) == (*next == Transition::Failed),
                    "outcome {:?} led to {next:?}",
                    outcome.class
                );
                match next {
                    Transition::RetryAt(t) => {
                        ensure!(*t >= *at, "retry at {t:?} scheduled before now {at:?}");
                        ensure!(
                            r.attempts_in_cycle() < policy.get_max_attempts(),
                            "retry scheduled after max attempts"
                        );
                        if let Some(w) = policy.get_retry_window() {
                            ensure!(*t <= r.cycle_started_at.saturating_add(w), "retry outside the window");
                        }
                    }
                    Transition::Exhausted(ExhaustedBy::MaxAttempts) => {
                        ensure!(
                            r.attempts_in_cycle() >= policy.get_max_attempts(),
                            "exhausted after {} of {} attempts",
                            r.attempts_in_cycle(),
                            policy.get_max_attempts()
                        );
                    }
                    _ => {}
                }
                if let Some(f) = r.in_flight {
                    // Invariant 7: every attempt ends by its timeout.
                    ensure!(
                        *at <= f.deadline || outcome.code == "timeout" || outcome.code == "interrupted",
                        "{key:?}#{attempt} ended at {at:?} after its deadline {:?} as {}",
                        f.deadline,
                        outcome.code
                    );
                }
            }
            Change::Redriven { .. } => {}
        }
        let record = self
            .store
            .get_mut(&key)
            .ok_or_else(|| Violation(format!("change to unknown {key:?}")))?;
        let before = record.status;
        // Invariant 3: the core's apply refuses changes to terminal records and attempt
        // numbers that do not follow.
        record
            .apply(&change)
            .map_err(|e| Violation(format!("engine emitted a change the record refuses: {e}")))?;
        if before.is_terminal() {
            ensure!(matches!(change, Change::Redriven { .. }), "terminal {key:?} changed");
        }
        Ok(())
    }

    /// Compares the engine's view with the model after a step.
    fn check_state(&self) -> Result<(), Violation> {
        let now = self.engine.now();
        let mut active = 0;
        let mut in_flight = 0;
        let mut earliest_deadline: Option<Timestamp> = None;
        let mut waiting_due = false;
        for (key, r) in &self.store {
            let tracked = self.engine.tracked(key);
            if r.status.is_terminal() {
                ensure!(tracked.is_none(), "terminal {key:?} is still tracked");
                continue;
            }
            active += 1;
            let t = tracked.ok_or_else(|| Violation(format!("active {key:?} ({:?}) is not tracked", r.status)))?;
            ensure!(
                t.status == r.status,
                "{key:?}: engine says {:?}, store says {:?}",
                t.status,
                r.status
            );
            ensure!(
                t.attempt == r.attempts,
                "{key:?}: attempt {} vs stored {}",
                t.attempt,
                r.attempts
            );
            if let Some(f) = r.in_flight {
                in_flight += 1;
                ensure!(f.deadline > now, "{key:?}#{} outlived its deadline", f.attempt);
                earliest_deadline = Some(earliest_deadline.map_or(f.deadline, |d| d.min(f.deadline)));
            } else if r.next_attempt_at.is_some_and(|d| d <= now) {
                waiting_due = true;
            }
        }
        ensure!(
            self.engine.tracked_count() == active,
            "engine tracks {} deliveries, store has {active} active",
            self.engine.tracked_count()
        );
        ensure!(
            self.engine.in_flight() == in_flight,
            "engine has {} in flight, store {in_flight}",
            self.engine.in_flight()
        );
        ensure!(
            in_flight <= self.config.max_in_flight,
            "{in_flight} in flight > max {}",
            self.config.max_in_flight
        );
        if !self.engine.is_shutting_down() {
            // Liveness within a step: a due delivery waits only for a free attempt slot.
            ensure!(
                !waiting_due || in_flight == self.config.max_in_flight,
                "a due delivery was not started with a free slot"
            );
        }
        if let (Some(d), Some(t)) = (earliest_deadline, self.engine.poll_timeout()) {
            ensure!(t <= d, "poll_timeout {t:?} sleeps past a deadline {d:?}");
        }
        if earliest_deadline.is_some() {
            ensure!(
                self.engine.poll_timeout().is_some(),
                "attempts in flight but no timeout to wake on"
            );
        }
        Ok(())
    }

    /// The status the model holds for a key.
    pub fn status(&self, key: &EventKey) -> Option<DeliveryStatus> {
        self.store.get(key).map(|r| r.status)
    }
}

fn status_of(r: &AttemptReport) -> u16 {
    match r.observation {
        Observation::Http { status, .. } => status,
        _ => 200,
    }
}

fn describe(o: &Output) -> String {
    match o {
        Output::Persist(Change::Accepted { event, at }) => format!("persist accepted {:?} at {at:?}", event.key()),
        other => format!("{other:?}"),
    }
}
