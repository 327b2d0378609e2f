//! The tokio runtime: tasks on the current runtime, store work on its blocking pool.

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

    fn unblock<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
        let task = self.handle.spawn_blocking(work);
        Box::pin(async move {
            match task.await {
                Ok(v) => v,
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
