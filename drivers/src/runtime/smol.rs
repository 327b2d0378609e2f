//! The smol runtime: tasks on smol's global executor, the driver loop on a thread of its
//! own (driving async-io's reactor while it waits), blocking work on the `blocking` pool,
//! timers from async-io. Needs no tokio runtime from the user.

use std::future::Future;
use std::time::{Duration, Instant};

use herald_core::BoxFuture;

use super::Runtime;

/// Runs the driver on smol (its global executor; works inside `smol::block_on`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(future).detach();
    }

    fn spawn_driver(&self, driver: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        // smol's global executor never shuts down: the loop ends only as Herald does.
        std::thread::Builder::new()
            .name("herald-driver".into())
            .spawn(move || async_io::block_on(driver))
            .map(drop)
    }

    fn unblock<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        Box::pin(blocking::unblock(work))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            async_io::Timer::after(duration).await;
        })
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}
