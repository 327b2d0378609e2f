//! The real [`RedbStore`], on the fault-injecting backend, behind a thin observer that
//! sees every commit the driver makes (a [`CommitHook`]; reads go straight to the store).
//!
//! The observer changes nothing: it delegates every call. Before a commit it replays the
//! batch on the records as stored (with the core's own `DeliveryRecord::apply`) to check
//! invariant 7 (no attempt before `next_attempt_at`, at most `max_attempts` per cycle, a
//! retry scheduled within the policy's bounds); after a successful commit it records the
//! durable attempt starts (invariant 2 is checked against them in the transport) and the
//! committed records (invariant 1 is checked against them after every restart). A commit
//! the store refuses means the engine emitted a change that does not fit the record
//! (invariant 3). With `powerloss` armed, a failed commit stops the process at once: a
//! crash in the middle of the commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use herald::core::{Backoff, Change, DeliveryRecord, EventKey, Jitter, RetryPolicy, Transition};
use herald_store::faults::FaultyBackend;
use herald_store::{Applied, CommitError, RedbStore, Store};

use super::executor::ExecHandle;
use super::plan::{PortPlan, ms};
use super::world::World;
use crate::hooked::{CommitHook, Hooked};

/// The store one incarnation runs on.
pub type SimStore = Hooked<SimObserver>;

/// What the simulator does around each commit.
#[derive(Debug)]
pub struct SimObserver {
    /// The disk under the store.
    pub backend: FaultyBackend,
    world: World,
    exec: ExecHandle,
    ports: Vec<PortPlan>,
    /// A failed commit stops the process (power loss mid-commit).
    pub powerloss: Arc<AtomicBool>,
}

impl SimObserver {
    /// An observer of the store opened on `backend`.
    pub fn new(backend: FaultyBackend, world: World, exec: ExecHandle, ports: Vec<PortPlan>) -> Self {
        SimObserver {
            backend,
            world,
            exec,
            ports,
            powerloss: Arc::new(AtomicBool::new(false)),
        }
    }

    fn port_index(&self, name: &str) -> usize {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .expect("a simulated port")
    }

    /// Replays `batch` on the stored records and checks invariant 7 on every change.
    fn precheck(&self, store: &RedbStore, batch: &[(&str, Change)]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut records: BTreeMap<(usize, EventKey), Option<DeliveryRecord>> = BTreeMap::new();
        for (name, change) in batch {
            let port = self.port_index(name);
            let key = change.key();
            let record = match records.entry((port, key)) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => match store.record(name, key) {
                    Ok(r) => v.insert(r),
                    // A dead disk: the commit will fail too; nothing to check.
                    Err(_) => return problems,
                },
            };
            let plan = &self.ports[port];
            let policy = &plan.policy;
            match (change, record.as_mut()) {
                (Change::Accepted { event, at }, None) => {
                    *record = Some(DeliveryRecord::accepted(event, *at));
                    continue;
                }
                (Change::Accepted { .. }, Some(_)) => continue,
                (_, None) => {
                    problems.push(format!("a change for a delivery that is not stored: {change:?}"));
                    continue;
                }
                (
                    Change::AttemptStarted {
                        attempt, at, deadline, ..
                    },
                    Some(r),
                ) => {
                    if r.next_attempt_at.is_none_or(|due| due > *at) {
                        problems.push(format!(
                            "invariant 7 (no attempt before its next_attempt_at): {} attempt {attempt} started at {at:?}, due {:?}",
                            r.id, r.next_attempt_at
                        ));
                    }
                    if r.attempts_in_cycle() >= policy.get_max_attempts() {
                        problems.push(format!(
                            "invariant 7 (at most max_attempts): {} attempt {attempt} is attempt {} of its cycle; max_attempts is {}",
                            r.id,
                            r.attempts_in_cycle() + 1,
                            policy.get_max_attempts()
                        ));
                    }
                    if *deadline != at.saturating_add(policy.get_attempt_timeout()) {
                        problems.push(format!(
                            "invariant 7: {} attempt {attempt} has deadline {deadline:?}, not start {at:?} + timeout",
                            r.id
                        ));
                    }
                }
                (
                    Change::AttemptFinished {
                        next: Transition::RetryAt(t),
                        at,
                        outcome,
                        attempt,
                        ..
                    },
                    Some(r),
                ) => {
                    let n = r.attempts_in_cycle();
                    let (lo, hi) = delay_bounds(policy, n);
                    let mut earliest = at.saturating_add(std::time::Duration::from_millis(lo));
                    let mut latest = at.saturating_add(std::time::Duration::from_millis(hi));
                    if let Some(asked) = outcome.retry_after {
                        let capped =
                            asked.min(at.saturating_add(std::time::Duration::from_millis(plan.retry_after_cap_ms)));
                        earliest = earliest.max(capped);
                        latest = latest.max(capped);
                    }
                    if *t < earliest || *t > latest {
                        problems.push(format!(
                            "invariant 7 (retry schedule): {} attempt {attempt} (attempt {n} of its cycle) failed at {at:?}; retry at {t:?} is outside [{earliest:?}, {latest:?}]",
                            r.id
                        ));
                    }
                    if let Some(w) = policy.get_retry_window()
                        && *t > r.cycle_started_at.saturating_add(w)
                    {
                        problems.push(format!(
                            "invariant 7 (retry window): {} retry at {t:?} is after the window ends",
                            r.id
                        ));
                    }
                    if n >= policy.get_max_attempts() {
                        problems.push(format!(
                            "invariant 7 (at most max_attempts): {} retry scheduled after {n} attempts",
                            r.id
                        ));
                    }
                }
                (Change::AttemptFinished { .. } | Change::Redriven { .. }, Some(_)) => {}
            }
            if let Some(r) = record.as_mut()
                && let Err(e) = r.apply(change)
            {
                problems.push(format!(
                    "invariant 3 (status only moves forward, attempt numbers only grow): the engine emitted a change its record refuses: {e}"
                ));
            }
        }
        problems
    }
}

/// Bounds of the delay the policy may choose after the `n`-th failed attempt of a cycle,
/// in ms, from the policy's definition (not from its code).
pub fn delay_bounds(policy: &RetryPolicy, n: u32) -> (u64, u64) {
    let v = ms(policy.base_delay(n));
    match (policy.get_jitter(), policy.backoff()) {
        (Jitter::None, _) => (v, v),
        (Jitter::Full, _) => (0, v),
        (Jitter::Equal, _) => (v / 2, v),
        (Jitter::Decorrelated, Backoff::Exponential { base, cap, .. }) => (ms(*base).min(ms(*cap)), ms(*cap)),
        (Jitter::Decorrelated, Backoff::Fixed(_)) => (0, u64::MAX),
    }
}

impl CommitHook for SimObserver {
    fn commit(&self, store: &RedbStore, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError> {
        let problems = self.precheck(store, batch);
        let result = store.commit(batch);
        let mut w = self.world.lock();
        for p in problems {
            w.violation(p);
        }
        let summary: Vec<String> = batch.iter().map(|(p, c)| describe(p, c)).collect();
        match &result {
            Ok(applied) => {
                w.commits += 1;
                w.trace(format!("commit ok [{}]", summary.join(", ")));
                for ((name, change), a) in batch.iter().zip(applied) {
                    let port = self.port_index(name);
                    if let Change::AttemptStarted { key, attempt, .. } = change {
                        w.durable_starts.insert((port, *key, *attempt));
                    }
                    w.committed.insert((port, change.key()), a.record.clone());
                }
            }
            Err(CommitError::Rejected { .. }) => {
                w.trace(format!("commit REJECTED [{}]", summary.join(", ")));
                w.violation(format!(
                    "invariant 3: the store refused a batch the engine emitted: {}",
                    result.as_ref().err().map(ToString::to_string).unwrap_or_default()
                ));
            }
            Err(e) => {
                w.failed_commits += 1;
                w.trace(format!("commit FAILED [{}]: {e}", summary.join(", ")));
                if self.powerloss.load(Ordering::SeqCst) {
                    w.trace("power loss during the commit");
                    self.exec.request_stop();
                }
            }
        }
        result
    }
}

fn describe(port: &str, c: &Change) -> String {
    match c {
        Change::Accepted { event, at } => format!("{port} accepted {} at {}", event.id(), at.as_millis()),
        Change::AttemptStarted {
            key,
            attempt,
            at,
            deadline,
        } => format!(
            "{port} start {:016x}#{attempt} at {} until {}",
            key.low_u64(),
            at.as_millis(),
            deadline.as_millis()
        ),
        Change::AttemptFinished {
            key,
            attempt,
            at,
            outcome,
            next,
        } => format!(
            "{port} finish {:016x}#{attempt} at {} {} -> {next:?}",
            key.low_u64(),
            at.as_millis(),
            outcome.code
        ),
        Change::Redriven { key, at } => format!("{port} redrive {:016x} at {}", key.low_u64(), at.as_millis()),
    }
}
