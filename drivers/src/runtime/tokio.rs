//! The tokio runtime: tasks on the current runtime, the driver loop on a thread of its own
//! (inside the runtime's context, so its timers are the runtime's), blocking work on the
//! runtime's blocking pool.

use std::future::Future;
use std::time::{Duration, Instant};

use herald_core::BoxFuture;

use super::Runtime;

/// A task that is aborted when its handle is dropped (a timer nobody waits for).
struct AbortOnDrop(::tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

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
        // A task of the runtime holds `alive` until the loop's thread ends; when the
        // runtime shuts down its tasks are dropped, which wakes `gone` and ends the loop,
        // as it would end the loop's task if it were one. (The loop's timers are tasks of
        // the runtime too, see `sleep`: a loop busy in a commit while the runtime shuts
        // down then finds its next sleep cancelled, never a dead timer, which tokio panics
        // on.)
        let (alive, gone) = async_channel::bounded::<()>(1);
        let (ended, ended_rx) = async_channel::bounded::<()>(1);
        drop(handle.spawn(async move {
            let _alive = alive;
            let _ = ended_rx.recv().await;
        }));
        std::thread::Builder::new()
            .name("herald-driver".into())
            .spawn(move || {
                let _runtime = handle.enter();
                let _ended = ended;
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

    /// A timer task of the runtime, cancelled when dropped. Polling a tokio timer after
    /// its runtime shut down panics; awaiting a task that the shutdown cancelled does not
    /// (it then never completes, and whatever waited ends with the runtime).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let timer = AbortOnDrop(self.handle.spawn(::tokio::time::sleep(duration)));
        Box::pin(async move {
            let mut timer = timer;
            if (&mut timer.0).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    fn now(&self) -> Instant {
        ::tokio::time::Instant::now().into_std()
    }
}
