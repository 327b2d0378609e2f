//! A deterministic simulation of Herald: the real driver loop and engine, the real redb
//! store on a fault-injecting in-memory disk, simulated transports, receiver and clock,
//! all driven by one seed.
//!
//! Each seed picks its own fault mix (swarm testing, see `plan.rs`): transport errors
//! (5xx, 4xx, 429 with `Retry-After`, timeouts, connection drops, responses lost after the
//! receiver got the request, answers after the deadline), disk failures (an I/O error the
//! process survives, or a power loss in the middle of a commit), crashes at random points
//! (the disk then keeps only what its model says survives), wall-clock steps at restarts,
//! and shutdowns with attempts in flight. The application sends events (re-sends, a few
//! conflicting contents, some over the size limit), re-sends those whose outcome was
//! unknown, queries statuses, waits, and redrives. Then the faults stop: one clean
//! restart, and every delivery must end within the policy's window.
//!
//! The invariants of DESIGN.md §4 are checked while it runs (`transport.rs`, `store.rs`,
//! [`world::WorldState::see`]) and at its end (`check.rs`); invariant 10 by running each
//! seed twice ([`check_seed`]) and comparing the hashes of the two traces.
//!
//! Half the seeds poll ready tasks in a seeded random order rather than first in, first
//! out: the interleavings of a multi-threaded runtime, reproducibly. The caller of
//! `shutdown` is an urgent task: it looks at what is in flight the moment `shutdown`
//! returns, before the tasks woken with it run (that is what catches a loop that stops
//! while attempts still run, in a mutation test).
//!
//! Why one executor for the whole run, not one per process incarnation: the network and
//! the receiver are outside the process, so a request on the wire still arrives after its
//! sender crashed (a real source of duplicates). A crash drops every task of the
//! incarnation ([`executor::Executor::kill`]) and nothing else.

mod check;
pub mod executor;
pub mod plan;
pub mod rng;
pub mod store;
pub mod transport;
pub mod world;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald::core::{InputError, SendError};
use herald::{EventId, Herald, Port, PortConfig, StartError, StatusChange};
use herald_store::faults::FaultyBackend;
use herald_store::{RedbOptions, RedbStore, Store};

use executor::{ExecHandle, Executor, SimRuntime, Stopped};
use plan::{Action, Plan};
use rng::Rng;
use store::{SimObserver, SimStore};
use transport::SimTransport;
use world::{Seen, SendOutcome, SendRecord, World, app_event, event_name};

/// Most polls at one simulated instant before the run is declared a livelock.
const MAX_POLLS_PER_INSTANT: u64 = 500_000;

/// What one run of a seed did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// A seed without faults.
    pub fault_free: bool,
    /// Sends made (re-sends included).
    pub sends: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// Deliveries in the store at the end.
    pub deliveries: u64,
    /// Transport calls.
    pub attempts: u64,
    /// Requests that reached the receiver.
    pub arrivals: u64,
    /// Duplicate deliveries the receiver took (after ambiguity).
    pub duplicates: u64,
    /// Crashes (power losses included).
    pub crashes: u64,
    /// Power losses in the middle of a commit.
    pub powerlosses: u64,
    /// Restarts with the wall clock stepped back or forward.
    pub clock_steps: u64,
    /// Attempts recorded as timed out.
    pub timeouts: u64,
    /// Attempts recorded as interrupted (crash or shutdown).
    pub interrupted: u64,
    /// Redrives that started a new cycle.
    pub redrives: u64,
    /// Shutdowns.
    pub shutdowns: u64,
    /// Commits that failed.
    pub failed_commits: u64,
    /// Commits made.
    pub commits: u64,
    /// Simulated time covered, in ms.
    pub sim_ms: u64,
    /// FNV-1a of the trace.
    pub trace_hash: u64,
}

/// A failed run: the first invariant broken, and the trace that led there.
#[derive(Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Every violation found, first first.
    pub violations: Vec<String>,
    /// The trace.
    pub trace: Vec<String>,
}

struct Incarnation {
    id: u32,
    herald: Herald,
    ports: Vec<Port>,
    store: Arc<SimStore>,
    backend: FaultyBackend,
    /// Simulated time the shutdown returned, once it did.
    shutdown_done: Arc<Mutex<Option<u64>>>,
    shutting_down: bool,
}

struct Sim {
    plan: Plan,
    exec: Executor,
    world: World,
    rng: Rng,
    store_rng: Arc<Mutex<Rng>>,
    origin: Instant,
    disk: Vec<u8>,
    inc: Option<Incarnation>,
    next_incarnation: u32,
    offset_ms: i64,
    max_offset_ms: i64,
    queue: BTreeMap<(u64, u64), Action>,
    queue_seq: u64,
    deferred: Vec<Action>,
    crashes: u64,
    powerlosses: u64,
    clock_steps: u64,
    shutdowns: u64,
}

fn options() -> RedbOptions {
    RedbOptions {
        cache_size: 4 << 20,
        verify_on_open: true,
    }
}

impl Sim {
    fn new(plan: Plan) -> Result<Self, String> {
        let exec = Executor::new();
        let mut rng = Rng::new(plan.seed.wrapping_mul(31).wrapping_add(7));
        exec.shuffle(plan.shuffle.then(|| rng.next_u64()));
        let world = World::new(exec.handle(), rng.fork(), plan.resend_percent);
        let store_rng = Arc::new(Mutex::new(rng.fork()));
        // Set the store up on a healthy disk: through a backend, setting up is not
        // crash-atomic (a file path is: `RedbStore::open_with`).
        let fresh = FaultyBackend::default();
        drop(RedbStore::open_with_backend(fresh.clone(), "sim", &options()).map_err(|e| e.to_string())?);
        let disk = fresh.crash_image(|_| false);
        let mut sim = Sim {
            plan,
            exec,
            world,
            rng,
            store_rng,
            origin: Instant::now(),
            disk,
            inc: None,
            next_incarnation: 1,
            offset_ms: 0,
            max_offset_ms: 0,
            queue: BTreeMap::new(),
            queue_seq: 0,
            deferred: Vec::new(),
            crashes: 0,
            powerlosses: 0,
            clock_steps: 0,
            shutdowns: 0,
        };
        for (at, a) in sim.plan.actions.clone() {
            sim.push(at, a);
        }
        Ok(sim)
    }

    fn handle(&self) -> ExecHandle {
        self.exec.handle()
    }

    fn now(&self) -> u64 {
        self.exec.now_ms()
    }

    fn push(&mut self, at: u64, action: Action) {
        self.queue_seq += 1;
        self.queue.insert((at, self.queue_seq), action);
    }

    fn trace(&self, line: impl AsRef<str>) {
        self.world.lock().trace(line);
    }

    fn violation(&self, what: impl Into<String>) {
        self.world.lock().violation(what);
    }

    /// Runs the executor until simulated time `t`, handling crash requests on the way.
    fn run_to(&mut self, t: u64) -> Result<(), String> {
        while self.exec.run_until(t, MAX_POLLS_PER_INSTANT)? == Stopped::Requested {
            self.powerlosses += 1;
            self.crash("power loss during a commit");
        }
        // Re-sends the application scheduled for itself.
        let resends = std::mem::take(&mut self.world.lock().resends);
        for (at, port, id, variant) in resends {
            self.push(at, Action::Send { port, id, variant });
        }
        Ok(())
    }

    /// Starts a new incarnation of the process on the current disk image.
    fn start(&mut self) -> Result<(), String> {
        let id = self.next_incarnation;
        self.next_incarnation += 1;
        let backend = FaultyBackend::with_bytes(self.disk.clone());
        let inner = RedbStore::open_with_backend(backend.clone(), "sim", &options())
            .map_err(|e| format!("invariant 1: the disk does not open after a restart: {e}"))?;
        self.check_committed(&inner);
        let store = Arc::new(SimStore::new(
            inner,
            SimObserver::new(
                backend.clone(),
                self.world.clone(),
                self.handle(),
                self.plan.ports.clone(),
            ),
        ));
        {
            let mut w = self.world.lock();
            w.incarnation = id;
            w.offset_ms = self.offset_ms;
            w.trace(format!("start incarnation {id} wall offset {} ms", self.offset_ms));
        }
        let runtime = SimRuntime::new(
            self.handle(),
            id,
            self.origin,
            world::WALL_ORIGIN_MS,
            self.offset_ms,
            self.plan.store_latency_ms,
            self.store_rng.clone(),
        );
        let mut builder = Herald::builder().store(store.clone() as Arc<dyn Store>);
        for (i, p) in self.plan.ports.iter().enumerate() {
            let transport = SimTransport::new(self.world.clone(), self.handle(), i, id, p.flavor, p.mix.clone());
            let world = self.world.clone();
            builder = builder.port(
                PortConfig::new(p.name.clone(), transport)
                    .policy(p.policy.clone())
                    .max_in_flight(p.max_in_flight)
                    .payload_limit(self.plan.payload_limit)
                    .seed(p.jitter_seed)
                    .on_status_change(move |c: &StatusChange| {
                        let mut w = world.lock();
                        let at = w.now();
                        let seen = Seen {
                            at,
                            source: "hook",
                            cycle: c.result.cycle,
                            status: c.result.status,
                            attempts: c.result.attempts_made,
                        };
                        w.see(i, c.result.event_id.as_str(), seen);
                    }),
            );
        }
        let slot: Arc<Mutex<Option<Result<Herald, StartError>>>> = Arc::default();
        let out = slot.clone();
        self.handle().spawn(id, async move {
            let started = builder.start_on(runtime).await;
            *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        });
        let deadline = self.now() + 60_000;
        let herald = loop {
            if let Some(r) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                break r.map_err(|e| format!("invariant 1: Herald does not start after a restart: {e}"))?;
            }
            if self.now() >= deadline {
                return Err("Herald did not start within 60 s of simulated time".into());
            }
            match self.exec.run_until(self.now() + 1, MAX_POLLS_PER_INSTANT)? {
                Stopped::Requested => return Err("a crash was requested while starting".into()),
                Stopped::Limit | Stopped::Idle => {}
            }
        };
        let ports = self
            .plan
            .ports
            .iter()
            .map(|p| herald.port(&p.name).expect("configured port"))
            .collect();
        self.inc = Some(Incarnation {
            id,
            herald,
            ports,
            store,
            backend,
            shutdown_done: Arc::default(),
            shutting_down: false,
        });
        // The application comes back too: sends it could not make while down.
        let now = self.now();
        for a in std::mem::take(&mut self.deferred) {
            self.push(now, a);
        }
        Ok(())
    }

    /// Invariant 1 across restarts: every record a successful commit returned is still
    /// stored, at that state or a later one.
    fn check_committed(&self, store: &RedbStore) {
        let mut w = self.world.lock();
        let committed: Vec<_> = w.committed.iter().map(|(k, r)| (*k, r.clone())).collect();
        for ((port, key), before) in committed {
            let name = &self.plan.ports[port].name;
            let problem = match store.record(name, key) {
                Err(e) => Some(format!("cannot be read: {e}")),
                Ok(None) => Some("is gone".to_owned()),
                Ok(Some(r)) => {
                    let behind = r.cycle < before.cycle
                        || r.attempts < before.attempts
                        || (r.cycle == before.cycle && before.status.is_terminal() && r.status != before.status);
                    behind.then(|| {
                        format!(
                            "went back from cycle {} {} ({} attempts) to cycle {} {} ({} attempts)",
                            before.cycle, before.status, before.attempts, r.cycle, r.status, r.attempts
                        )
                    })
                }
            };
            if let Some(p) = problem {
                w.violation(format!(
                    "invariant 1 (a committed change is never lost): after a restart, {} on {name} {p}",
                    before.id
                ));
            }
        }
    }

    /// The process dies: every task of the incarnation stops at once; the disk keeps what
    /// its model says survives a power loss.
    fn crash(&mut self, why: &str) {
        let Some(inc) = self.inc.take() else { return };
        self.crashes += 1;
        self.exec.kill(inc.id);
        let pending = inc.backend.pending_writes();
        let image = match self.rng.below(3) {
            0 => inc.backend.crash_image(|_| false),
            1 => inc.backend.crash_image(|_| true),
            _ => {
                let mut keep = self.rng.fork();
                inc.backend.crash_image(|_| keep.percent(50))
            }
        };
        self.disk = image;
        self.end_incarnation(inc.id);
        self.trace(format!(
            "crash of incarnation {} ({why}); {pending} unsynced writes in doubt",
            inc.id
        ));
        drop(inc);
        let (lo, hi) = self.plan.downtime_ms;
        let at = self.now() + self.rng.range(lo, hi);
        self.push(at, Action::Restart);
    }

    /// After an incarnation stopped: sends it never answered have an unknown outcome.
    fn end_incarnation(&mut self, id: u32) {
        let mut w = self.world.lock();
        w.incarnation = 0;
        let resend = w.resend_percent;
        let now = w.now();
        let mut resends = Vec::new();
        for i in 0..w.sends.len() {
            if w.sends[i].incarnation == id && w.sends[i].outcome.is_none() {
                w.sends[i].outcome = Some(SendOutcome::Unknown("the process stopped".into()));
                let s = &w.sends[i];
                resends.push((s.port, s.id, s.variant));
            }
        }
        for (port, id, variant) in resends {
            if w.rng.percent(resend) {
                let at = now + w.rng.range(0, 5_000);
                w.resends.push((at, port, id, variant));
            }
        }
    }

    /// A clean exit after a shutdown returned: every write reached the disk.
    fn exit(&mut self) {
        let Some(inc) = self.inc.take() else { return };
        self.exec.kill(inc.id);
        self.disk = inc.backend.crash_image(|_| true);
        self.end_incarnation(inc.id);
        self.trace(format!("exit of incarnation {}", inc.id));
    }

    fn spawn_app(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Some(inc) = &self.inc {
            self.handle().spawn(inc.id, f);
        }
    }

    fn send(&mut self, port: usize, id: u32, variant: u8, healed: bool) {
        let Some(inc) = &self.inc else {
            self.deferred.push(Action::Send { port, id, variant });
            return;
        };
        let event = app_event(id, variant, self.plan.payload_limit);
        let p = inc.ports[port].clone();
        let world = self.world.clone();
        let index = {
            let mut w = world.lock();
            let at = w.now();
            w.sends.push(SendRecord {
                at,
                port,
                id,
                variant,
                incarnation: inc.id,
                outcome: None,
                healed,
            });
            w.trace(format!("send p{port} {} v{variant}", event.id()));
            w.sends.len() - 1
        };
        self.spawn_app(async move {
            let r = p.send(event).await;
            let mut w = world.lock();
            let outcome = match r {
                Ok(res) => SendOutcome::Acked(res.status),
                Err(SendError::Rejected(InputError::Conflict { .. })) => SendOutcome::Conflict,
                Err(SendError::Rejected(InputError::PayloadTooLarge { .. })) => SendOutcome::TooLarge,
                Err(SendError::Rejected(InputError::ShuttingDown)) => SendOutcome::ShuttingDown,
                Err(SendError::Rejected(e)) => SendOutcome::Refused(e.to_string()),
                Err(SendError::Unrecorded(_)) => SendOutcome::Unknown("unrecorded".into()),
                Err(SendError::Closed) => SendOutcome::Unknown("closed".into()),
            };
            w.trace(format!("sent p{port} {} v{variant} -> {outcome:?}", event_name(id)));
            if matches!(outcome, SendOutcome::Unknown(_)) && !healed {
                let percent = w.resend_percent;
                if w.rng.percent(percent) {
                    let at = w.now() + w.rng.range(0, 5_000);
                    w.resends.push((at, port, id, variant));
                }
            }
            w.sends[index].outcome = Some(outcome);
        });
    }

    fn perform(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Send { port, id, variant } => self.send(port, id, variant, false),
            Action::Query { port, id } => {
                if let Some(inc) = &self.inc {
                    let (p, world) = (inc.ports[port].clone(), self.world.clone());
                    self.spawn_app(async move {
                        let eid = EventId::new(event_name(id)).expect("valid id");
                        if let Ok(Some(r)) = p.status(&eid).await {
                            let mut w = world.lock();
                            let at = w.now();
                            let seen = Seen {
                                at,
                                source: "query",
                                cycle: r.cycle,
                                status: r.status,
                                attempts: r.attempts_made,
                            };
                            w.see(port, eid.as_str(), seen);
                        }
                    });
                }
            }
            Action::Wait { port, id } => {
                if let Some(inc) = &self.inc {
                    let (p, world) = (inc.ports[port].clone(), self.world.clone());
                    self.spawn_app(async move {
                        let eid = EventId::new(event_name(id)).expect("valid id");
                        let r = p.wait_for_terminal(&eid).await;
                        let mut w = world.lock();
                        w.trace(format!("waited p{port} {eid} -> {:?}", r.as_ref().map(|r| r.status)));
                        if let Ok(r) = r
                            && !r.status.is_terminal()
                        {
                            w.violation(format!(
                                "wait_for_terminal answered {eid} on port {port} with {}",
                                r.status
                            ));
                        }
                    });
                }
            }
            Action::Redrive { port, id } => {
                if let Some(inc) = &self.inc {
                    let (p, world) = (inc.ports[port].clone(), self.world.clone());
                    self.spawn_app(async move {
                        let eid = EventId::new(event_name(id)).expect("valid id");
                        let r = p.redrive(&eid).await;
                        let mut w = world.lock();
                        w.trace(format!(
                            "redrive p{port} {eid} -> {:?}",
                            r.as_ref().map(|r| (r.status, r.cycle))
                        ));
                        w.redrives += u64::from(r.is_ok());
                        if let Ok(r) = r
                            && (r.status.is_terminal() || r.cycle == 0)
                        {
                            w.violation(format!(
                                "a redrive of {eid} on port {port} answered {} in cycle {}",
                                r.status, r.cycle
                            ));
                        }
                    });
                }
            }
            Action::Crash => self.crash("planned"),
            Action::Shutdown { grace_ms, downtime_ms } => {
                if let Some(inc) = self.inc.as_mut().filter(|i| !i.shutting_down) {
                    inc.shutting_down = true;
                    self.shutdowns += 1;
                    let at = self.now() + grace_ms + downtime_ms;
                    self.begin_shutdown(grace_ms);
                    self.push(at, Action::Restart);
                }
            }
            Action::StoreFault { after_ops, powerloss } => {
                if let Some(inc) = &self.inc {
                    inc.backend.fail_after(after_ops);
                    inc.store.hook().powerloss.store(powerloss, Ordering::SeqCst);
                    self.trace(format!(
                        "disk fails after {after_ops} more writes; power loss: {powerloss}"
                    ));
                }
            }
            Action::Restart => {
                if self.inc.as_ref().is_some_and(|i| i.shutting_down) {
                    self.finish_shutdown()?;
                    self.exit();
                }
                if self.inc.is_none() {
                    if self.plan.faults.clock {
                        let step = self.plan.clock_step_ms;
                        let offset = self.rng.range(0, 2 * step) as i64 - step as i64;
                        self.clock_steps += u64::from(offset != self.offset_ms);
                        self.offset_ms = offset;
                        self.max_offset_ms = self.max_offset_ms.max(self.offset_ms);
                    }
                    self.start()?;
                }
            }
        }
        Ok(())
    }

    /// Calls `Herald::shutdown(grace)` from a task; [`Sim::finish_shutdown`] waits for it.
    fn begin_shutdown(&mut self, grace_ms: u64) {
        let Some(inc) = &self.inc else { return };
        let (herald, world, done, id) = (
            inc.herald.clone(),
            self.world.clone(),
            inc.shutdown_done.clone(),
            inc.id,
        );
        self.trace(format!("shutdown of incarnation {id}, grace {grace_ms} ms"));
        // Urgent: it checks what is in flight the moment `shutdown` returns, before the
        // tasks woken with it run (as a caller on another thread could).
        self.handle().spawn_urgent(id, async move {
            herald.shutdown(Duration::from_millis(grace_ms)).await;
            let mut w = world.lock();
            let now = w.now();
            // Invariant 9: after shutdown returns, nothing is in flight.
            let left = w.in_flight.get(&id).copied().unwrap_or(0);
            w.trace(format!("shutdown returned; {left} attempts in flight"));
            if left > 0 {
                w.violation(format!(
                    "invariant 9 (nothing in flight after shutdown): {left} attempts still in flight when shutdown returned"
                ));
            }
            *done.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        });
    }

    /// Runs until the shutdown under way returns (a minute of simulated time at most).
    fn finish_shutdown(&mut self) -> Result<(), String> {
        let limit = self.now() + 60_000;
        loop {
            let Some(inc) = &self.inc else { return Ok(()) };
            if inc.shutdown_done.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                return Ok(());
            }
            if self.now() >= limit {
                self.violation("invariant 9: shutdown did not return within its grace period and a minute");
                return Ok(());
            }
            let step = (self.now() + 1_000).min(limit);
            self.run_to(step)?;
        }
    }

    /// The faults stop: a clean restart, the application re-sends what it does not know
    /// to be accepted, and every delivery must end within the policy's window.
    fn heal(&mut self) -> Result<(), String> {
        self.world.lock().healed = true;
        self.trace("faults stop");
        self.queue.retain(|_, a| !matches!(a, Action::Restart));
        if let Some(inc) = &self.inc {
            inc.backend.disarm();
            inc.store.hook().powerloss.store(false, Ordering::SeqCst);
            if inc.backend.tripped() {
                self.crash("the disk failed; restart on a new one");
            } else if !inc.shutting_down {
                let grace = self.plan.ports.iter().map(|p| p.timeout_ms()).max().unwrap_or(0) + 1_000;
                self.inc.as_mut().expect("alive").shutting_down = true;
                self.begin_shutdown(grace);
            }
        }
        if self.inc.is_some() {
            self.finish_shutdown()?;
            self.exit();
        }
        self.queue.retain(|_, a| !matches!(a, Action::Restart));
        self.offset_ms = self.max_offset_ms;
        self.start()?;
        let restart_at = self.now();
        // Sends whose outcome the application does not know, or that were refused only
        // because of a shutdown, are sent again; now they must be answered for good.
        let resend: BTreeMap<(usize, u32), u8> = {
            let w = self.world.lock();
            let mut last: BTreeMap<(usize, u32), (bool, Option<u8>)> = BTreeMap::new();
            for s in &w.sends {
                let e = last.entry((s.port, s.id)).or_default();
                match &s.outcome {
                    Some(SendOutcome::Acked(_)) => e.0 = true,
                    Some(SendOutcome::Unknown(_) | SendOutcome::ShuttingDown) | None => e.1 = Some(s.variant),
                    _ => {}
                }
            }
            last.into_iter()
                .filter_map(|(k, (acked, v))| if acked { None } else { v.map(|v| (k, v)) })
                .collect()
        };
        for ((port, id), variant) in resend {
            self.send(port, id, variant, true);
        }
        let ports = &self.plan.ports;
        let max_gap = ports.iter().map(|p| p.max_gap_ms()).max().unwrap_or(0);
        let max_timeout = ports.iter().map(|p| p.timeout_ms()).max().unwrap_or(0);
        let min_in_flight = ports.iter().map(|p| p.max_in_flight).min().unwrap_or(1).max(1);
        let store_hi = self.plan.store_latency_ms.1;
        // The longest wait the policy can impose, then one attempt per delivery in the
        // available slots, plus the store's latency per round.
        let events = u64::from(self.plan.events) * 2 + 8;
        let bound =
            max_gap + max_timeout + (events / u64::from(min_in_flight) + 1) * (max_timeout + 8 * store_hi) + 10_000;
        let limit = restart_at + bound;
        let step = (max_gap / 50).max(200);
        loop {
            let t = (self.now() + step).min(limit);
            self.run_to(t)?;
            if self.inc.is_none() {
                return Err("the process stopped after the faults stopped".into());
            }
            if self.all_settled()? {
                break;
            }
            if self.now() >= limit {
                let active = self.active_deliveries()?;
                self.violation(format!(
                    "invariant 8 (liveness): {} ms after the faults stopped, {active} deliveries are not terminal (bound {bound} ms from the policy)",
                    self.now() - restart_at
                ));
                break;
            }
        }
        // Every send once healed is answered for good.
        {
            let mut w = self.world.lock();
            let bad: Vec<String> = w
                .sends
                .iter()
                .filter(|s| s.healed)
                .filter(|s| {
                    !matches!(
                        s.outcome,
                        Some(SendOutcome::Acked(_) | SendOutcome::Conflict | SendOutcome::TooLarge)
                    )
                })
                .map(|s| format!("{} v{} -> {:?}", event_name(s.id), s.variant, s.outcome))
                .collect();
            if !bad.is_empty() {
                w.violation(format!(
                    "invariant 8 (liveness): sends after the faults stopped were not acknowledged: {}",
                    bad.join("; ")
                ));
            }
        }
        // The final, clean shutdown.
        let grace = max_timeout + 1_000;
        self.inc.as_mut().expect("alive").shutting_down = true;
        self.begin_shutdown(grace);
        self.finish_shutdown()?;
        Ok(())
    }

    fn active_deliveries(&self) -> Result<u64, String> {
        let Some(inc) = &self.inc else { return Ok(0) };
        let mut n = 0;
        for p in &self.plan.ports {
            let counts = inc.store.inner().count_by_status(&p.name).map_err(|e| e.to_string())?;
            n += counts
                .iter()
                .filter(|(s, _)| !s.is_terminal())
                .map(|(_, c)| *c)
                .sum::<u64>();
        }
        Ok(n)
    }

    fn all_settled(&self) -> Result<bool, String> {
        let Some(inc) = &self.inc else { return Ok(true) };
        let app_busy = self.exec.tasks_of(inc.id) > 1; // the driver loop itself
        let sends_open = self.world.lock().sends.iter().any(|s| s.outcome.is_none());
        Ok(!app_busy && !sends_open && self.active_deliveries()? == 0)
    }

    fn run(&mut self) -> Result<(), String> {
        self.start()?;
        let end = self.plan.fault_end_ms;
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            if at >= end {
                break;
            }
            self.run_to(at)?;
            let Some(action) = self.queue.remove(&(at, seq)) else {
                continue;
            };
            self.world.lock().trace(format!("action {action:?}"));
            self.perform(action)?;
        }
        self.run_to(end)?;
        self.heal()?;
        let inc = self.inc.as_ref().expect("alive after healing");
        let store = inc.store.clone();
        let mut w = self.world.lock();
        check::final_checks(&self.plan, store.inner(), &mut w);
        Ok(())
    }
}

/// Runs seed `seed` once with `events` distinct events.
pub fn run_seed(seed: u64, events: u32) -> Result<Summary, Failure> {
    run_traced(seed, events).0
}

/// Runs seed `seed` once; also returns the trace.
pub fn run_traced(seed: u64, events: u32) -> (Result<Summary, Failure>, Vec<String>) {
    let plan = Plan::new(seed, events);
    let fault_free = plan.fault_free;
    let mut sim = match Sim::new(plan) {
        Ok(s) => s,
        Err(e) => {
            let failure = Failure {
                seed,
                violations: vec![e],
                trace: Vec::new(),
            };
            return (Err(failure), Vec::new());
        }
    };
    let result = sim.run();
    let sim_ms = sim.now();
    let (crashes, shutdowns, powerlosses, clock_steps) = (sim.crashes, sim.shutdowns, sim.powerlosses, sim.clock_steps);
    // Ends every task (and the reference cycles through them).
    if let Some(inc) = sim.inc.take() {
        sim.exec.kill(inc.id);
    }
    sim.exec.kill_all();
    let mut w = sim.world.lock();
    if let Err(e) = result {
        w.violation(e);
    }
    let trace = std::mem::take(&mut w.trace);
    if !w.violations.is_empty() {
        let failure = Failure {
            seed,
            violations: w.violations.clone(),
            trace: trace.clone(),
        };
        return (Err(failure), trace);
    }
    let summary = Summary {
        seed,
        fault_free,
        sends: w.sends.len() as u64,
        acked: w
            .sends
            .iter()
            .filter(|s| matches!(s.outcome, Some(SendOutcome::Acked(_))))
            .count() as u64,
        deliveries: w.deliveries,
        attempts: w.calls.len() as u64,
        arrivals: w.arrivals.len() as u64,
        duplicates: w.duplicates,
        crashes,
        powerlosses,
        clock_steps,
        timeouts: w.timeouts,
        interrupted: w.interrupted,
        redrives: w.redrives,
        shutdowns,
        failed_commits: w.failed_commits,
        commits: w.commits,
        sim_ms,
        trace_hash: w.hash.0,
    };
    (Ok(summary), trace)
}

/// Runs seed `seed` twice and checks that both runs left the same trace (invariant 10).
pub fn check_seed(seed: u64, events: u32) -> Result<Summary, Failure> {
    let (first, trace) = run_traced(seed, events);
    let first = first?;
    let (second, again) = run_traced(seed, events);
    let second = second?;
    if first.trace_hash != second.trace_hash {
        let at = trace
            .iter()
            .zip(&again)
            .position(|(a, b)| a != b)
            .unwrap_or(trace.len().min(again.len()));
        return Err(Failure {
            seed,
            violations: vec![format!(
                "invariant 10 (same seed, same trace): the two runs' traces hash to {:016x} and {:016x}; line {at} differs: {:?} vs {:?}",
                first.trace_hash,
                second.trace_hash,
                trace.get(at),
                again.get(at)
            )],
            trace,
        });
    }
    Ok(first)
}
