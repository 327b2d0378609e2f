//! The little a driver needs from an async runtime: spawn a task, give the driver loop a
//! thread of its own, run blocking store work off the executor, sleep, and read a monotonic
//! clock. The driver loop is written once against this trait; each runtime is a few dozen
//! lines (after quinn's `Runtime`).

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use herald_core::{BoxFuture, Timestamp};

#[cfg(feature = "smol")]
mod smol;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "smol")]
pub use self::smol::SmolRuntime;
#[cfg(feature = "tokio")]
pub use self::tokio::TokioRuntime;

/// An async runtime the driver can run on.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Runs a future in the background; it is never awaited (it reports through channels).
    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static);

    /// Runs the driver loop where its store calls may block: on a thread of its own. Every
    /// round of the loop waits for one commit (an fsync) anyway; calling the store right
    /// there costs no hand-off to a blocking pool and back, which measured a third of the
    /// time to acknowledge a send. Attempts still run as tasks of the runtime. The loop
    /// must end when the runtime shuts down, as a task of it would.
    fn spawn_driver(&self, driver: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()>;

    /// A store call of the driver loop. The loop has a thread of its own
    /// ([`Runtime::spawn_driver`]), so by default it runs right there. A runtime that runs
    /// the loop as a task must override it (the simulator charges simulated time and runs
    /// it on its single thread); otherwise an fsync would stall an executor thread.
    fn driver_store_call<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        let done = work();
        Box::pin(std::future::ready(done))
    }

    /// Runs blocking work (opening the store, restoring the engines at start) off the
    /// async threads. If the runtime shuts down first, the future never completes. Boxed and `'static`: an
    /// `impl Future` here trips the compiler's `Send` proof in callers (higher-ranked
    /// lifetime errors), and the allocation is noise next to the blocking call.
    fn unblock<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T>;

    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// A monotonic instant; under a paused or injected test clock it follows that clock.
    fn now(&self) -> Instant;

    /// The wall clock, read once when Herald starts (afterwards time advances by
    /// [`Runtime::now`]). A simulation overrides it to start at any time, including one
    /// earlier than times already persisted.
    fn wall_now(&self) -> Timestamp {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}
