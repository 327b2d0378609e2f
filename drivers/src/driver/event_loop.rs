//! The driver loop, written once for every runtime. It moves bytes, reads the clock and
//! calls the store; every decision is the engine's (see `herald_core`'s loop contract).
//!
//! The loop runs on a thread of its own ([`Runtime::spawn_driver`]) and calls the store
//! right there: a round waits for its commit anyway, and a hand-off to a blocking pool
//! and back cost more than the work it carried.
//!
//! One round: take every queued command and attempt result → look up stored records the
//! engine needs → feed the engines → let time pass → drain outputs → commit every
//! `Persist` of every port in one transaction (group commit) → answer the senders, publish
//! status changes → read the events of the attempts to start (those accepted in this
//! round are at hand) → start the attempts as tasks of the runtime. Then sleep until the
//! earliest engine timeout, a command or an attempt result.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use herald_core::{
    Attempt, AttemptReport, Change, DeliveryRecord, Engine, EngineConfig, EventKey, ExternalEvent, Input, InputError,
    NetworkError, Observation, Output, SendError,
};
use herald_store::Store;
use tracing::{debug, info, warn};

use super::command::{Command, Finished, Reply, StatusChange, StatusHook, answer};
use crate::clock::Clock;
use crate::error::RedriveError;
use crate::runtime::Runtime;
use crate::transport::{AttemptRequest, Transport};

/// Most commands taken into one round (bounds the latency of the first one).
const MAX_ROUND: usize = 4096;

/// One port as the loop sees it.
pub(crate) struct PortState {
    pub(crate) name: Arc<str>,
    pub(crate) config: EngineConfig,
    pub(crate) engine: Engine,
    pub(crate) transport: Arc<dyn Transport>,
    /// At most the configured `max_in_flight` attempts run at once.
    running: Arc<async_lock::Semaphore>,
    pub(crate) on_status: Option<StatusHook>,
    /// Ordered, so that callers are answered in the same order on every run (a hash
    /// map's order, seeded per process, showed in simulations when the loop stopped).
    waiters: BTreeMap<EventKey, Vec<Reply<Option<DeliveryRecord>>>>,
}

impl PortState {
    pub(crate) fn new(
        name: Arc<str>,
        config: EngineConfig,
        engine: Engine,
        transport: Arc<dyn Transport>,
        running: u32,
        on_status: Option<StatusHook>,
    ) -> Self {
        PortState {
            name,
            config,
            engine,
            transport,
            running: Arc::new(async_lock::Semaphore::new(running as usize)),
            on_status,
            waiters: BTreeMap::new(),
        }
    }
}

/// An answer that waits for the round's commit.
enum Pending {
    Send {
        port: usize,
        key: EventKey,
        reply: Reply<Result<herald_core::IntegrationResult, SendError>>,
    },
    Redrive {
        port: usize,
        key: EventKey,
        reply: Reply<Result<herald_core::IntegrationResult, RedriveError>>,
    },
}

pub(crate) struct Driver<R: Runtime> {
    pub(crate) runtime: R,
    pub(crate) clock: Clock<R>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) ports: Vec<PortState>,
    pub(crate) commands: async_channel::Receiver<Command>,
    pub(crate) finished_tx: async_channel::Sender<Finished>,
    pub(crate) finished_rx: async_channel::Receiver<Finished>,
    /// Closed to cancel every attempt still running when the shutdown grace ends.
    pub(crate) cancel: (async_channel::Sender<()>, async_channel::Receiver<()>),
    pub(crate) attempts_running: usize,
    pub(crate) stopping: bool,
    pub(crate) shutdown_replies: Vec<Reply<()>>,
}

enum Wake {
    Command(Command),
    Finished(Finished),
    Timeout,
    HandlesGone,
}

impl<R: Runtime> Driver<R> {
    pub(crate) async fn run(mut self) {
        info!(ports = self.ports.len(), "herald driver started");
        // The restored engines may hold changes already (attempts found interrupted,
        // deliveries due): commit them before the first sleep, which nothing might end.
        self.round(Vec::new(), Vec::new()).await;
        loop {
            let mut commands = Vec::new();
            let mut finished = Vec::new();
            match self.wait().await {
                Wake::Command(c) => commands.push(c),
                Wake::Finished(f) => finished.push(f),
                Wake::Timeout => {}
                Wake::HandlesGone => self.begin_shutdown(Duration::ZERO, None),
            }
            while commands.len() + finished.len() < MAX_ROUND {
                if let Ok(f) = self.finished_rx.try_recv() {
                    finished.push(f);
                } else if let Ok(c) = self.commands.try_recv() {
                    commands.push(c);
                } else {
                    break;
                }
            }
            self.round(commands, finished).await;
            if self.is_done() {
                break;
            }
        }
        // Later sends fail at once; commands already queued are answered, so that no
        // caller waits on a reply that would never come.
        self.commands.close();
        let commands = self.commands.clone();
        let shutdown_replies = std::mem::take(&mut self.shutdown_replies);
        // Release the store (and everything else) before anyone hears that the loop
        // stopped: a caller may reopen the same file as soon as `shutdown` returns.
        drop(self);
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Send { reply, .. } => answer(reply, Err(SendError::Closed)),
                Command::Redrive { reply, .. } => answer(reply, Err(RedriveError::Closed)),
                Command::Wait { reply, .. } => answer(reply, None),
                Command::Shutdown { reply, .. } => answer(reply, ()),
            }
        }
        for reply in shutdown_replies {
            answer(reply, ());
        }
        info!("herald driver stopped");
    }

    /// Sleeps until a command, an attempt result, or the earliest engine timeout.
    async fn wait(&self) -> Wake {
        let timeout = self.ports.iter().filter_map(|p| p.engine.poll_timeout()).min();
        let sleep = async {
            match timeout {
                Some(t) => self.runtime.sleep(self.clock.until(t)).await,
                None => future::pending::<()>().await,
            }
            Wake::Timeout
        };
        let finished = async {
            match self.finished_rx.recv().await {
                Ok(f) => Wake::Finished(f),
                Err(_) => future::pending().await,
            }
        };
        let commands = async {
            if self.stopping && self.commands.is_closed() {
                return future::pending().await;
            }
            match self.commands.recv().await {
                Ok(c) => Wake::Command(c),
                Err(_) => Wake::HandlesGone,
            }
        };
        future::or(finished, future::or(commands, sleep)).await
    }

    /// Stopping, and nothing in flight. Changes the engines still hold are not waited
    /// for: after a round they are left only when the commit failed (and the engines,
    /// restored from the store, hold the changes of their restore), which the next start
    /// derives again from the store. Waiting for them hung shutdown while the disk failed.
    fn is_done(&self) -> bool {
        self.stopping
            && self.attempts_running == 0
            && self
                .ports
                .iter()
                .all(|p| p.engine.is_shutting_down() && p.engine.in_flight() == 0)
    }

    fn begin_shutdown(&mut self, grace: Duration, reply: Option<Reply<()>>) {
        let grace_until = self.clock.now().saturating_add(grace);
        let now = self.clock.now();
        for p in &mut self.ports {
            let _ = p.engine.handle_input(Input::Shutdown { grace_until }, now);
        }
        self.stopping = true;
        if let Some(r) = reply {
            self.shutdown_replies.push(r);
        }
        info!(grace_ms = grace.as_millis() as u64, "herald shutdown requested");
    }

    async fn round(&mut self, commands: Vec<Command>, finished: Vec<Finished>) {
        // Records the engine needs: priors of sends (re-sends of finished deliveries) and
        // of redrives, read in one blocking call after the previous round's commit.
        let keys: Vec<(usize, EventKey)> = commands
            .iter()
            .filter_map(|c| match c {
                Command::Send { port, event, .. } => Some((*port, event.key())),
                Command::Redrive { port, key, .. } => Some((*port, *key)),
                _ => None,
            })
            .collect();
        let priors = match self.read_records(keys).await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "reading stored records failed; refusing this round's sends");
                for c in commands {
                    match c {
                        Command::Send { reply, .. } => answer(reply, Err(SendError::Unrecorded(e.clone()))),
                        Command::Redrive { reply, .. } => answer(reply, Err(RedriveError::Store(e.clone()))),
                        other => self.handle_plain(other),
                    }
                }
                return;
            }
        };

        let now = self.clock.now();
        let mut pending = Vec::new();
        // Waits are registered after this round's commit: a delivery that ends in this
        // round is terminal in the store by then.
        let mut waits = Vec::new();
        for f in finished {
            self.attempts_running -= 1;
            let p = &mut self.ports[f.port];
            let ack = p.engine.handle_input(
                Input::Report {
                    key: f.key,
                    attempt: f.attempt,
                    report: f.report,
                },
                now,
            );
            debug!(port = %p.name, attempt = f.attempt, ?ack, "attempt reported");
        }
        for c in commands {
            match c {
                Command::Send { port, event, reply } => {
                    let key = event.key();
                    let prior = priors.get(&(port, key)).cloned().flatten();
                    let p = &mut self.ports[port];
                    let id = event.id().clone();
                    match p.engine.handle_input(Input::Send { event, prior }, now) {
                        Ok(ack) => {
                            debug!(port = %p.name, event_id = %id, ?ack, "send");
                            pending.push(Pending::Send { port, key, reply });
                        }
                        Err(e) => {
                            debug!(port = %p.name, event_id = %id, error = %e, "send refused");
                            answer(reply, Err(SendError::Rejected(e)));
                        }
                    }
                }
                Command::Redrive { port, key, reply } => {
                    let Some(record) = priors.get(&(port, key)).cloned().flatten() else {
                        answer(reply, Err(RedriveError::NotFound(format!("{key:?}"))));
                        continue;
                    };
                    let id = record.id.to_string();
                    match self.ports[port].engine.handle_input(Input::Redrive { record }, now) {
                        Ok(_) => pending.push(Pending::Redrive { port, key, reply }),
                        Err(InputError::NotTerminal { status, .. }) => answer(
                            reply,
                            Err(RedriveError::Refused(InputError::NotTerminal {
                                id: herald_core::EventId::new(id).expect("stored ids are valid"),
                                status,
                            })),
                        ),
                        Err(e) => answer(reply, Err(RedriveError::Refused(e))),
                    }
                }
                wait @ Command::Wait { .. } => waits.push(wait),
                other => self.handle_plain(other),
            }
        }
        for p in &mut self.ports {
            if p.engine.poll_timeout().is_some_and(|t| t <= now) {
                p.engine.handle_timeout(now);
            }
        }
        self.cancel_after_grace();

        // Drain every engine: persists into one batch, attempts to start after it.
        let mut batch: Vec<(usize, Change)> = Vec::new();
        let mut attempts: Vec<(usize, Attempt)> = Vec::new();
        let mut fresh: HashMap<(usize, EventKey), ExternalEvent> = HashMap::new();
        for (i, p) in self.ports.iter_mut().enumerate() {
            while let Some(out) = p.engine.poll_output() {
                match out {
                    Output::Persist(change) => {
                        if let Change::Accepted { event, .. } = &change {
                            fresh.insert((i, event.key()), event.clone());
                        }
                        batch.push((i, change));
                    }
                    Output::Attempt(a) => attempts.push((i, a)),
                }
            }
        }
        let mut latest: HashMap<(usize, EventKey), DeliveryRecord> = HashMap::new();
        if !batch.is_empty() {
            let store = self.store.clone();
            let names: Vec<Arc<str>> = self.ports.iter().map(|p| p.name.clone()).collect();
            let kinds: Vec<(usize, EventKey, bool)> = batch
                .iter()
                .map(|(i, c)| (*i, c.key(), matches!(c, Change::AttemptStarted { .. })))
                .collect();
            let committed = self
                .runtime
                .driver_store_call(move || {
                    let refs: Vec<(&str, Change)> = batch.into_iter().map(|(i, c)| (&*names[i], c)).collect();
                    store.commit(&refs)
                })
                .await;
            match committed {
                Ok(applied) => {
                    debug!(changes = kinds.len(), "committed");
                    for ((port, key, started), a) in kinds.into_iter().zip(applied) {
                        if !started && !a.existed {
                            self.publish(port, key, &a.record);
                        }
                        latest.insert((port, key), a.record);
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    warn!(error = %why, "commit failed; its outcome is unknown, restoring from the store");
                    for p in pending {
                        match p {
                            Pending::Send { reply, .. } => answer(reply, Err(SendError::Unrecorded(why.clone()))),
                            Pending::Redrive { reply, .. } => answer(reply, Err(RedriveError::Unrecorded(why.clone()))),
                        }
                    }
                    self.restore_engines().await;
                    for wait in waits {
                        self.handle_plain(wait);
                    }
                    return;
                }
            }
        }
        self.answer_pending(pending, latest).await;
        for wait in waits {
            self.handle_plain(wait);
        }
        let events = self.attempt_events(&attempts, fresh).await;
        for ((port, attempt), event) in attempts.into_iter().zip(events) {
            self.start_attempt(port, attempt, event);
        }
    }

    /// The event of each attempt to start: at hand if accepted in this round, else read
    /// from the store (the engine holds keys and times, not payloads), all in one call.
    async fn attempt_events(
        &self,
        attempts: &[(usize, Attempt)],
        mut fresh: HashMap<(usize, EventKey), ExternalEvent>,
    ) -> Vec<Result<Option<ExternalEvent>, String>> {
        let mut events = Vec::with_capacity(attempts.len());
        let mut missing = Vec::new();
        for (i, (port, a)) in attempts.iter().enumerate() {
            match fresh.remove(&(*port, a.key)) {
                Some(event) => events.push(Ok(Some(event))),
                None => {
                    events.push(Ok(None));
                    missing.push((i, *port, a.key));
                }
            }
        }
        if !missing.is_empty() {
            let store = self.store.clone();
            let names: Vec<Arc<str>> = self.ports.iter().map(|p| p.name.clone()).collect();
            let read = self
                .runtime
                .driver_store_call(move || {
                    let keys: Vec<(&str, EventKey)> =
                        missing.iter().map(|&(_, port, key)| (&*names[port], key)).collect();
                    let read = store.events(&keys);
                    missing.into_iter().map(|(i, _, _)| i).zip(read).collect::<Vec<_>>()
                })
                .await;
            for (i, event) in read {
                events[i] = event.map_err(|e| e.to_string());
            }
        }
        events
    }

    /// Commands that need no stored record.
    fn handle_plain(&mut self, command: Command) {
        match command {
            Command::Wait { port, key, reply } => {
                let p = &mut self.ports[port];
                if p.engine.tracked(&key).is_some() {
                    p.waiters.entry(key).or_default().push(reply);
                } else {
                    // Not tracked: terminal or unknown; the caller reads the store.
                    answer(reply, None);
                }
            }
            Command::Shutdown { grace, reply } => self.begin_shutdown(grace, Some(reply)),
            Command::Send { .. } | Command::Redrive { .. } => unreachable!("handled with their records"),
        }
    }

    /// Publishes a durable status change and wakes those waiting for a terminal state.
    fn publish(&mut self, port: usize, key: EventKey, record: &DeliveryRecord) {
        let p = &mut self.ports[port];
        let result = record.to_result(p.config.policy.get_max_attempts());
        info!(port = %p.name, event_id = %record.id, status = %record.status, attempts = result.attempts_made, "status");
        if let Some(hook) = &p.on_status {
            hook(&StatusChange {
                port: p.name.clone(),
                result,
            });
        }
        if record.status.is_terminal() {
            for w in p.waiters.remove(&key).unwrap_or_default() {
                answer(w, Some(record.clone()));
            }
        }
    }

    async fn answer_pending(&mut self, pending: Vec<Pending>, latest: HashMap<(usize, EventKey), DeliveryRecord>) {
        if pending.is_empty() {
            return;
        }
        let missing: Vec<(usize, EventKey)> = pending
            .iter()
            .map(|p| match p {
                Pending::Send { port, key, .. } | Pending::Redrive { port, key, .. } => (*port, *key),
            })
            .filter(|k| !latest.contains_key(k))
            .collect();
        let read = self.read_records(missing).await.unwrap_or_default();
        for p in pending {
            match p {
                Pending::Send { port, key, reply } => {
                    let record = latest
                        .get(&(port, key))
                        .cloned()
                        .or_else(|| read.get(&(port, key)).cloned().flatten());
                    let max = self.ports[port].config.policy.get_max_attempts();
                    match record {
                        Some(r) => answer(reply, Ok(r.to_result(max))),
                        None => answer(
                            reply,
                            Err(SendError::Unrecorded("record not found after commit".into())),
                        ),
                    }
                }
                Pending::Redrive { port, key, reply } => {
                    let max = self.ports[port].config.policy.get_max_attempts();
                    match latest.get(&(port, key)) {
                        Some(r) => answer(reply, Ok(r.to_result(max))),
                        None => answer(
                            reply,
                            Err(RedriveError::Unrecorded("record not found after commit".into())),
                        ),
                    }
                }
            }
        }
    }

    async fn read_records(
        &self,
        keys: Vec<(usize, EventKey)>,
    ) -> Result<HashMap<(usize, EventKey), Option<DeliveryRecord>>, String> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let store = self.store.clone();
        let names: Vec<Arc<str>> = self.ports.iter().map(|p| p.name.clone()).collect();
        self.runtime
            .driver_store_call(move || {
                let named: Vec<(&str, EventKey)> = keys.iter().map(|&(port, key)| (&*names[port], key)).collect();
                let read = store.records(&named);
                let mut out = HashMap::with_capacity(keys.len());
                for (k, r) in keys.into_iter().zip(read) {
                    out.insert(k, r.map_err(|e| e.to_string())?);
                }
                Ok(out)
            })
            .await
    }

    /// After a failed commit: rebuild every engine from what the store holds.
    async fn restore_engines(&mut self) {
        let now = self.clock.now();
        for i in 0..self.ports.len() {
            let store = self.store.clone();
            let name = self.ports[i].name.clone();
            let config = self.ports[i].config.clone();
            let restored = self
                .runtime
                .driver_store_call(move || -> Result<Engine, String> {
                    let mut engine = Engine::new(config, now).map_err(|e| e.to_string())?;
                    store
                        .for_each_unfinished(&name, &mut |r| engine.restore_record(&r))
                        .map_err(|e| e.to_string())?;
                    engine.handle_timeout(now);
                    Ok(engine)
                })
                .await;
            match restored {
                Ok(engine) => {
                    let was_shutting_down = self.ports[i].engine.is_shutting_down();
                    self.ports[i].engine = engine;
                    if was_shutting_down {
                        let _ = self.ports[i]
                            .engine
                            .handle_input(Input::Shutdown { grace_until: now }, now);
                    }
                }
                Err(e) => warn!(port = %self.ports[i].name, error = %e, "restore failed; keeping the old engine"),
            }
        }
    }

    /// Once every engine passed its grace deadline, cancels attempts still running so
    /// that nothing is in flight when shutdown returns.
    fn cancel_after_grace(&mut self) {
        if self.stopping && self.ports.iter().all(|p| p.engine.in_flight() == 0) && self.attempts_running > 0 {
            self.cancel.0.close();
        }
    }

    fn start_attempt(&mut self, port: usize, attempt: Attempt, event: Result<Option<ExternalEvent>, String>) {
        self.attempts_running += 1;
        let p = &self.ports[port];
        let transport = p.transport.clone();
        let running = p.running.clone();
        let runtime = self.runtime.clone();
        let clock = self.clock.clone();
        let done = self.finished_tx.clone();
        let cancel = self.cancel.1.clone();
        self.runtime.spawn(async move {
            let started = runtime.now();
            let work = async {
                match event {
                    Ok(Some(event)) => {
                        let _slot = running.acquire_arc().await;
                        let now = clock.now();
                        let request = AttemptRequest {
                            event: &event,
                            attempt: attempt.attempt,
                            now,
                            timeout: clock.until(attempt.deadline),
                        };
                        transport.attempt(request).await
                    }
                    Ok(None) => AttemptReport::new(Observation::Refused {
                        retryable: false,
                        reason: "event_missing".into(),
                    })
                    .with_detail("the event is not in the store"),
                    Err(e) => AttemptReport::new(Observation::Network(NetworkError::Other))
                        .with_detail(format!("reading the event from the store failed: {e}")),
                }
            };
            let timeout = async {
                runtime.sleep(clock.until(attempt.deadline)).await;
                AttemptReport::new(Observation::TimedOut)
            };
            let cancelled = async {
                let _ = cancel.recv().await;
                AttemptReport::new(Observation::TimedOut).with_detail("cancelled at shutdown")
            };
            let mut report = future::or(work, future::or(timeout, cancelled)).await;
            report.duration = runtime.now().saturating_duration_since(started);
            let _ = done
                .send(Finished {
                    port,
                    key: attempt.key,
                    attempt: attempt.attempt,
                    report,
                })
                .await;
        });
    }
}
