//! An injected clock for driver tests: a tokio runtime whose time runs `factor` times
//! faster, so retry schedules of minutes and hours run in milliseconds against a real
//! receiver. (tokio's paused clock cannot be used with real sockets: it jumps to the next
//! timer, an attempt's deadline, whenever the runtime waits for IO.)

use std::time::{Duration, Instant};

use herald::core::BoxFuture;
use herald::runtime::{Runtime, TokioRuntime};

/// Tokio with time sped up by `factor`.
#[derive(Clone, Debug)]
pub struct Warped {
    inner: TokioRuntime,
    factor: u32,
    origin: Instant,
}

impl Warped {
    /// The current tokio runtime, `factor` times faster.
    pub fn current(factor: u32) -> Self {
        Warped {
            inner: TokioRuntime::current().expect("inside a tokio runtime"),
            factor: factor.max(1),
            origin: Instant::now(),
        }
    }
}

impl Runtime for Warped {
    fn spawn(&self, future: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.spawn(future);
    }

    fn spawn_driver(&self, driver: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        self.inner.spawn_driver(driver)
    }

    fn unblock<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        self.inner.unblock(work)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.inner.sleep(duration / self.factor)
    }

    fn now(&self) -> Instant {
        self.origin + self.origin.elapsed() * self.factor
    }
}
