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
//!
//! This file holds the loop itself (waiting, taking inputs, shutdown, what happens to
//! callers when it stops); `round.rs` one round from inputs to answers; `attempt.rs`
//! starting attempts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use herald_core::{DeliveryRecord, Engine, EngineConfig, EventKey, Input, SendError};
use herald_store::Store;
use tracing::{info, warn};

use super::command::{Command, Finished, Reply, StatusChange, StatusHook, answer};
use crate::clock::Clock;
use crate::error::RedriveError;
use crate::runtime::Runtime;
use crate::transport::Transport;

/// Most commands taken into one round (bounds the latency of the first one).
const MAX_ROUND: usize = 4096;

/// One port as the loop sees it.
pub(crate) struct PortState {
    pub(crate) name: Arc<str>,
    pub(crate) config: EngineConfig,
    pub(crate) engine: Engine,
    pub(crate) transport: Arc<dyn Transport>,
    /// At most the configured `max_in_flight` attempts run at once.
    pub(super) running: Arc<async_lock::Semaphore>,
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

pub(crate) struct Driver<R: Runtime> {
    pub(crate) runtime: R,
    pub(crate) clock: Clock<R>,
    pub(crate) store: Arc<dyn Store>,
    /// The ports' names by index, as the store keys them (rounds name ports by index).
    pub(crate) names: Arc<[Arc<str>]>,
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

/// Ends the loop however it ends: after its last round, or dropped mid-round with its
/// runtime (see [`Runtime::spawn_driver`]).
struct Teardown<R: Runtime> {
    driver: Option<Driver<R>>,
    commands: async_channel::Receiver<Command>,
}

impl<R: Runtime> Drop for Teardown<R> {
    fn drop(&mut self) {
        // Later sends fail at once; commands already queued are answered, so that no
        // caller waits on a reply that would never come.
        self.commands.close();
        let shutdown_replies = self
            .driver
            .as_mut()
            .map(|d| std::mem::take(&mut d.shutdown_replies))
            .unwrap_or_default();
        // Release the store (and everything else) before anyone hears that the loop
        // stopped: a caller may reopen the same file as soon as `shutdown` returns.
        drop(self.driver.take());
        while let Ok(command) = self.commands.try_recv() {
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
}

impl<R: Runtime> Driver<R> {
    /// The loop. The teardown is made here, not in the future: a future dropped before its
    /// first poll (its runtime gone at once) still answers what was queued.
    pub(crate) fn run(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut teardown = Teardown {
            commands: self.commands.clone(),
            driver: Some(self),
        };
        async move {
            if let Some(driver) = teardown.driver.as_mut() {
                driver.rounds().await;
            }
        }
    }

    /// Round after round until shutdown is done.
    async fn rounds(&mut self) {
        info!(ports = self.ports.len(), "herald driver started");
        // The first round has no inputs: the restored engines may hold changes already
        // (attempts found interrupted, deliveries due), committed before the first sleep,
        // which nothing might end.
        let (mut commands, mut finished) = (Vec::new(), Vec::new());
        loop {
            if let Some((round, batch)) = self
                .prepare(std::mem::take(&mut commands), std::mem::take(&mut finished))
                .await
            {
                let committed = self.commit(batch).await;
                self.finish(round, committed).await;
            }
            if self.is_done() {
                break;
            }
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
        }
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

    /// A store call of the loop (see [`Runtime::driver_store_call`]), given the store and
    /// the ports' names by index.
    pub(super) fn store_call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Store, &[Arc<str>]) -> T + Send + 'static,
    ) -> herald_core::BoxFuture<'static, T> {
        let (store, names) = (self.store.clone(), self.names.clone());
        self.runtime.driver_store_call(move || work(&*store, &names))
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

    /// Commands that need no stored record.
    pub(super) fn handle_plain(&mut self, command: Command) {
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
    pub(super) fn publish(&mut self, port: usize, key: EventKey, record: &DeliveryRecord) {
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

    /// After a failed commit: rebuild every engine from what the store holds.
    pub(super) async fn restore_engines(&mut self) {
        let now = self.clock.now();
        for i in 0..self.ports.len() {
            let config = self.ports[i].config.clone();
            let restored = self
                .store_call(move |store, names| -> Result<Engine, String> {
                    let mut engine = Engine::new(config, now).map_err(|e| e.to_string())?;
                    store
                        .for_each_unfinished(&names[i], &mut |r| engine.restore_record(&r))
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
    pub(super) fn cancel_after_grace(&mut self) {
        if self.stopping && self.ports.iter().all(|p| p.engine.in_flight() == 0) && self.attempts_running > 0 {
            self.cancel.0.close();
        }
    }
}
