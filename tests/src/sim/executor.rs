//! A deterministic single-threaded executor with a simulated clock, and [`SimRuntime`],
//! herald's [`Runtime`] on top of it.
//!
//! Tasks live in a slab and are polled from one FIFO ready queue; wakers (`std::task::Wake`)
//! push a task back on that queue. Timers sit in a `BTreeMap` keyed by (simulated instant,
//! sequence number), so equal instants fire in the order they were set. Time moves only
//! when no task is ready: it jumps to the earliest timer. Nothing reads a real clock or a
//! random source, so the same inputs give the same interleaving, every run.
//!
//! Every task has an *owner*: the world (the network and the receiver, owner 0) or one
//! incarnation of the process (the driver, its attempts, the application). A crash drops
//! every task of an incarnation at once, mid-flight, while the world keeps running.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use herald::core::{BoxFuture, Timestamp};
use herald::runtime::Runtime;

use super::rng::Rng;

type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The owner of the world's own tasks (network, receiver): never killed by a crash.
pub const WORLD: u32 = 0;

struct Slot {
    generation: u64,
    owner: u32,
    /// `None` while the task is being polled.
    future: Option<TaskFuture>,
    queued: bool,
    /// Polled before every other ready task once woken.
    urgent: bool,
}

#[derive(Default)]
struct State {
    /// Simulated time since the start, in whole milliseconds.
    now_ms: u64,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    ready: VecDeque<(usize, u64)>,
    /// Woken urgent tasks, polled first.
    urgent: VecDeque<(usize, u64)>,
    timers: BTreeMap<(u64, u64), Waker>,
    next_seq: u64,
    next_generation: u64,
    /// A crash was requested from inside a task: stop polling at once.
    stop: bool,
    polls: u64,
    /// Picks the next ready task at random (seeded) instead of first in, first out:
    /// the interleavings of a multi-threaded runtime, reproducibly.
    shuffle: Option<Rng>,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct TaskWaker {
    shared: Weak<Shared>,
    index: usize,
    generation: u64,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(shared) = self.shared.upgrade() else { return };
        let mut s = shared.lock();
        if let Some(Some(slot)) = s.slots.get_mut(self.index)
            && slot.generation == self.generation
            && !slot.queued
        {
            slot.queued = true;
            if slot.urgent {
                s.urgent.push_back((self.index, self.generation));
            } else {
                s.ready.push_back((self.index, self.generation));
            }
        }
    }
}

/// Why [`Executor::run_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Simulated time reached the limit.
    Limit,
    /// A task asked to stop (a crash in the middle of a commit).
    Requested,
    /// Nothing is ready and no timer is set: every task waits for something that never
    /// comes.
    Idle,
}

/// The executor; the simulation holds the only strong handle.
pub struct Executor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.lock();
        f.debug_struct("Executor")
            .field("now_ms", &s.now_ms)
            .field("tasks", &(s.slots.len() - s.free.len()))
            .field("timers", &s.timers.len())
            .finish()
    }
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor {
    /// An executor at simulated time zero.
    pub fn new() -> Self {
        Executor {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Polls ready tasks in a random order drawn from `seed` (`None`: first in, first
    /// out).
    pub fn shuffle(&self, seed: Option<u64>) {
        self.shared.lock().shuffle = seed.map(Rng::new);
    }

    /// A weak handle for tasks (sleeping, spawning, reading the clock).
    pub fn handle(&self) -> ExecHandle {
        ExecHandle {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Simulated milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        self.shared.lock().now_ms
    }

    /// Polls ready tasks and advances time until `limit_ms`, a stop request, or idleness.
    /// `max_polls` bounds the work done at one instant (a livelock guard).
    pub fn run_until(&self, limit_ms: u64, max_polls_per_instant: u64) -> Result<Stopped, String> {
        let mut polls_here = 0u64;
        loop {
            // Poll everything that is ready.
            loop {
                let next = {
                    let mut s = self.shared.lock();
                    if s.stop {
                        s.stop = false;
                        return Ok(Stopped::Requested);
                    }
                    let s = &mut *s;
                    let len = s.ready.len() as u64;
                    let next = if !s.urgent.is_empty() {
                        s.urgent.pop_front()
                    } else if len > 1
                        && let Some(rng) = s.shuffle.as_mut()
                    {
                        s.ready.swap_remove_back(rng.below(len) as usize)
                    } else {
                        s.ready.pop_front()
                    };
                    let Some((index, generation)) = next else {
                        break;
                    };
                    match s.slots.get_mut(index) {
                        Some(Some(slot)) if slot.generation == generation => {
                            slot.queued = false;
                            slot.future.take().map(|f| (index, generation, f))
                        }
                        _ => None,
                    }
                };
                let Some((index, generation, mut future)) = next else {
                    continue;
                };
                polls_here += 1;
                if polls_here > max_polls_per_instant {
                    return Err(format!(
                        "livelock: more than {max_polls_per_instant} polls at t={}ms without time passing",
                        self.now_ms()
                    ));
                }
                let waker = Waker::from(Arc::new(TaskWaker {
                    shared: Arc::downgrade(&self.shared),
                    index,
                    generation,
                }));
                let done = future.as_mut().poll(&mut Context::from_waker(&waker)).is_ready();
                let mut s = self.shared.lock();
                s.polls += 1;
                let finished = match s.slots.get_mut(index) {
                    Some(Some(slot)) if slot.generation == generation => {
                        if done {
                            s.slots[index] = None;
                            s.free.push(index);
                            Some(future)
                        } else {
                            slot.future = Some(future);
                            None
                        }
                    }
                    // Killed while it was being polled.
                    _ => Some(future),
                };
                drop(s);
                drop(finished);
            }
            // Nothing is ready: let time pass to the next timer.
            let due = {
                let mut s = self.shared.lock();
                if s.stop {
                    s.stop = false;
                    return Ok(Stopped::Requested);
                }
                let Some((&(at, _), _)) = s.timers.first_key_value() else {
                    if s.now_ms < limit_ms && limit_ms != u64::MAX {
                        s.now_ms = limit_ms;
                        return Ok(Stopped::Limit);
                    }
                    return Ok(Stopped::Idle);
                };
                if at > limit_ms {
                    s.now_ms = s.now_ms.max(limit_ms);
                    return Ok(Stopped::Limit);
                }
                s.now_ms = s.now_ms.max(at);
                polls_here = 0;
                let now = s.now_ms;
                let mut due = Vec::new();
                while let Some(entry) = s.timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    due.push(entry.remove());
                }
                due
            };
            for w in due {
                w.wake();
            }
        }
    }

    /// Drops every task of `owner` (a crash or the end of a process), without polling any
    /// of them again.
    pub fn kill(&self, owner: u32) {
        let dropped: Vec<TaskFuture> = {
            let mut s = self.shared.lock();
            let mut out = Vec::new();
            for i in 0..s.slots.len() {
                if s.slots[i].as_ref().is_some_and(|slot| slot.owner == owner) {
                    let slot = s.slots[i].take().expect("checked");
                    s.free.push(i);
                    out.extend(slot.future);
                }
            }
            out
        };
        // Dropping futures wakes others and cancels timers: outside the lock.
        drop(dropped);
    }

    /// Drops every task (the end of a run; breaks reference cycles through tasks).
    pub fn kill_all(&self) {
        loop {
            let dropped: Vec<TaskFuture> = {
                let mut s = self.shared.lock();
                let out: Vec<TaskFuture> = s.slots.iter_mut().filter_map(|slot| slot.take()?.future).collect();
                s.free.clear();
                s.slots.clear();
                s.ready.clear();
                s.urgent.clear();
                out
            };
            if dropped.is_empty() {
                break;
            }
            drop(dropped);
        }
        self.shared.lock().timers.clear();
    }

    /// Live tasks of `owner`.
    pub fn tasks_of(&self, owner: u32) -> usize {
        let s = self.shared.lock();
        s.slots.iter().flatten().filter(|slot| slot.owner == owner).count()
    }

    /// Tasks polled so far.
    pub fn polls(&self) -> u64 {
        self.shared.lock().polls
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A weak handle to the executor, for tasks and runtimes.
#[derive(Clone)]
pub struct ExecHandle {
    shared: Weak<Shared>,
}

impl std::fmt::Debug for ExecHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecHandle")
    }
}

impl ExecHandle {
    /// Simulated milliseconds since the start (0 once the executor is gone).
    pub fn now_ms(&self) -> u64 {
        self.shared.upgrade().map_or(0, |s| s.lock().now_ms)
    }

    /// Runs `future` as a task of `owner`.
    pub fn spawn(&self, owner: u32, future: impl Future<Output = ()> + Send + 'static) {
        self.spawn_with(owner, false, future);
    }

    /// Runs `future` as a task of `owner` that, once woken, is polled before any other
    /// ready task: an observer that must see the state at the moment it is woken (e.g.
    /// what is still in flight when `shutdown` returns), not after the tasks woken with it
    /// ran.
    pub fn spawn_urgent(&self, owner: u32, future: impl Future<Output = ()> + Send + 'static) {
        self.spawn_with(owner, true, future);
    }

    fn spawn_with(&self, owner: u32, urgent: bool, future: impl Future<Output = ()> + Send + 'static) {
        let Some(shared) = self.shared.upgrade() else { return };
        let mut s = shared.lock();
        let generation = s.next_generation;
        s.next_generation += 1;
        let slot = Slot {
            generation,
            owner,
            future: Some(Box::pin(future)),
            queued: true,
            urgent,
        };
        let index = match s.free.pop() {
            Some(i) => {
                s.slots[i] = Some(slot);
                i
            }
            None => {
                s.slots.push(Some(slot));
                s.slots.len() - 1
            }
        };
        s.ready.push_back((index, generation));
    }

    /// Completes `ms` simulated milliseconds from now.
    pub fn sleep_ms(&self, ms: u64) -> Sleep {
        let at = self.now_ms().saturating_add(ms);
        Sleep {
            shared: self.shared.clone(),
            at,
            key: None,
        }
    }

    /// Asks the executor to stop polling after the current poll (a crash mid-commit).
    pub fn request_stop(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.lock().stop = true;
        }
    }
}

/// A simulated timer.
#[derive(Debug)]
pub struct Sleep {
    shared: Weak<Shared>,
    at: u64,
    key: Option<(u64, u64)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Poll::Pending;
        };
        let mut s = shared.lock();
        if s.now_ms >= self.at {
            if let Some(k) = self.key.take() {
                s.timers.remove(&k);
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(k) => k,
            None => {
                let k = (self.at, s.next_seq);
                s.next_seq += 1;
                k
            }
        };
        s.timers.insert(key, cx.waker().clone());
        drop(s);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(k), Some(shared)) = (self.key, self.shared.upgrade()) {
            shared.lock().timers.remove(&k);
        }
    }
}

/// Herald's [`Runtime`] on the simulated executor, for one incarnation of the process.
///
/// `spawn` and `spawn_driver` add a task owned by the incarnation; `unblock` and
/// `driver_store_call` run the blocking work inline after a simulated store latency drawn
/// from the seed; `sleep` is a simulated timer; the
/// monotonic clock is an origin `Instant` plus simulated time, and the wall clock starts at
/// the simulated wall time of this incarnation (which a test may step back or forward).
#[derive(Clone)]
pub struct SimRuntime {
    exec: ExecHandle,
    owner: u32,
    origin: Instant,
    wall_origin_ms: u64,
    wall_offset_ms: i64,
    store_latency_ms: (u64, u64),
    rng: Arc<Mutex<Rng>>,
}

impl std::fmt::Debug for SimRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRuntime")
            .field("owner", &self.owner)
            .field("wall_offset_ms", &self.wall_offset_ms)
            .finish_non_exhaustive()
    }
}

impl SimRuntime {
    /// A runtime for incarnation `owner`, whose wall clock reads `wall_origin_ms +
    /// simulated time + wall_offset_ms`; blocking work takes `store_latency_ms` (an
    /// inclusive range, drawn from `rng`).
    pub fn new(
        exec: ExecHandle,
        owner: u32,
        origin: Instant,
        wall_origin_ms: u64,
        wall_offset_ms: i64,
        store_latency_ms: (u64, u64),
        rng: Arc<Mutex<Rng>>,
    ) -> Self {
        SimRuntime {
            exec,
            owner,
            origin,
            wall_origin_ms,
            wall_offset_ms,
            store_latency_ms,
            rng,
        }
    }

    /// The incarnation's wall clock, in milliseconds since the epoch.
    pub fn wall_ms(&self) -> u64 {
        wall_ms(self.wall_origin_ms, self.exec.now_ms(), self.wall_offset_ms)
    }
}

/// `origin + now + offset`, saturating.
pub fn wall_ms(origin: u64, now: u64, offset: i64) -> u64 {
    origin.saturating_add(now).saturating_add_signed(offset)
}

impl Runtime for SimRuntime {
    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        self.exec.spawn(self.owner, future);
    }

    /// The loop is one more task of the incarnation; its store calls take simulated time.
    fn spawn_driver(&self, driver: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        self.exec.spawn(self.owner, driver);
        Ok(())
    }

    fn driver_store_call<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        self.unblock(work)
    }

    fn unblock<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        let (lo, hi) = self.store_latency_ms;
        let ms = if hi > lo {
            self.rng.lock().unwrap_or_else(|e| e.into_inner()).range(lo, hi)
        } else {
            lo
        };
        let sleep = (ms > 0).then(|| self.exec.sleep_ms(ms));
        Box::pin(async move {
            if let Some(s) = sleep {
                s.await;
            }
            work()
        })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // Round up: a timer never fires early.
        let ms = u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Box::pin(self.exec.sleep_ms(ms))
    }

    fn now(&self) -> Instant {
        self.origin + Duration::from_millis(self.exec.now_ms())
    }

    fn wall_now(&self) -> Timestamp {
        Timestamp::from_millis(self.wall_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn timers_fire_in_time_order_and_time_jumps() {
        let exec = Executor::new();
        let h = exec.handle();
        let log = Arc::new(Mutex::new(Vec::new()));
        for (i, ms) in [30u64, 10, 20, 10].into_iter().enumerate() {
            let (h2, log) = (h.clone(), log.clone());
            h.spawn(1, async move {
                h2.sleep_ms(ms).await;
                log.lock().unwrap().push((i, h2.now_ms()));
            });
        }
        assert_eq!(exec.run_until(u64::MAX, 1000), Ok(Stopped::Idle));
        assert_eq!(*log.lock().unwrap(), [(1, 10), (3, 10), (2, 20), (0, 30)]);
    }

    fn poll_order(shuffle: Option<u64>) -> Vec<usize> {
        let exec = Executor::new();
        exec.shuffle(shuffle);
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..16 {
            let log = log.clone();
            exec.handle().spawn(1, async move { log.lock().unwrap().push(i) });
        }
        exec.run_until(u64::MAX, 1000).unwrap();
        Arc::try_unwrap(log).unwrap().into_inner().unwrap()
    }

    #[test]
    fn a_shuffled_executor_polls_in_a_seeded_order() {
        assert_eq!(poll_order(None), (0..16).collect::<Vec<_>>());
        assert_ne!(poll_order(Some(1)), poll_order(None));
        assert_eq!(poll_order(Some(1)), poll_order(Some(1)));
        assert_ne!(poll_order(Some(1)), poll_order(Some(2)));
    }

    #[test]
    fn an_urgent_task_runs_before_the_tasks_woken_with_it() {
        let exec = Executor::new();
        let h = exec.handle();
        let log = Arc::new(Mutex::new(Vec::new()));
        for (i, urgent) in [(0, false), (1, true), (2, false)] {
            let (h2, log) = (h.clone(), log.clone());
            let task = async move {
                h2.sleep_ms(10).await;
                log.lock().unwrap().push(i);
            };
            if urgent {
                h.spawn_urgent(1, task);
            } else {
                h.spawn(1, task);
            }
        }
        exec.run_until(u64::MAX, 1000).unwrap();
        assert_eq!(*log.lock().unwrap(), [1, 0, 2]);
    }

    #[test]
    fn a_killed_task_is_never_polled_again_and_its_timers_go() {
        let exec = Executor::new();
        let h = exec.handle();
        let count = Arc::new(AtomicU64::new(0));
        let (h2, c) = (h.clone(), count.clone());
        h.spawn(7, async move {
            loop {
                h2.sleep_ms(5).await;
                c.fetch_add(1, Ordering::SeqCst);
            }
        });
        assert_eq!(exec.run_until(12, 1000), Ok(Stopped::Limit));
        assert_eq!(count.load(Ordering::SeqCst), 2);
        exec.kill(7);
        assert_eq!(exec.tasks_of(7), 0);
        assert_eq!(exec.run_until(u64::MAX, 1000), Ok(Stopped::Idle));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
