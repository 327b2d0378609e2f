//! The tokio runtime: tasks on the current runtime, the driver loop on a thread of its own
//! (inside the runtime's context, so its timers are the runtime's), blocking work on the
//! runtime's blocking pool.

use std::future::Future;
use std::time::{Duration, Instant};

use herald_core::BoxFuture;

use super::Runtime;

/// Runs the driver on a tokio runtime (the one current when Herald is started).
#[derive(Clone, Debug)]
pub struct TokioRuntime {
    handle: ::tokio::runtime::Handle,
}

impl TokioRuntime {
    /// The runtime of the calling context, if there is one.
    pub fn current() -> Option<Self> {
        ::tokio::runtime::Handle::try_current()
            .ok()
            .map(|handle| TokioRuntime { handle })
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        drop(self.handle.spawn(future));
    }

    fn spawn_driver(&self, driver: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let handle = self.handle.clone();
        // A task of the runtime holds `alive`; when the runtime shuts down its tasks are
        // dropped (before its timers stop), which wakes `gone` and ends the loop, as it
        // would end the loop's task if it were one. Polled first, so that the loop never
        // polls a timer of a runtime that is gone (tokio panics on that).
        let (alive, gone) = async_channel::bounded::<()>(1);
        drop(handle.spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await
        }));
        std::thread::Builder::new()
            .name("herald-driver".into())
            .spawn(move || {
                let _runtime = handle.enter();
                let gone = async move {
                    let _ = gone.recv().await;
                };
                futures_lite::future::block_on(futures_lite::future::or(gone, driver));
            })
            .map(drop)
    }

    fn unblock<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        let task = self.handle.spawn_blocking(work);
        Box::pin(async move {
            match task.await {
                Ok(v) => v,
                // The runtime is shutting down; whatever waits for this ends with it.
                Err(e) if e.is_cancelled() => std::future::pending().await,
                // The closure panicked: surface the panic where it belongs.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(::tokio::time::sleep(duration))
    }

    fn now(&self) -> Instant {
        ::tokio::time::Instant::now().into_std()
    }
}
