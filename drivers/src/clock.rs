//! The driver's wall clock: read once from the runtime at start ([`Runtime::wall_now`]),
//! then advanced by the runtime's monotonic clock. Retry times stay wall-clock (they are
//! persisted), while a stepping system clock cannot move a running driver backwards. An
//! injected clock (a [`Runtime`] whose `now` and `sleep` agree, like the tests' warped
//! runtime or the simulator's) moves Herald with it; tokio's paused clock does not suit:
//! the driver loop works on a thread of its own, which tokio's auto-advance cannot see.

use std::time::{Duration, Instant};

use herald_core::Timestamp;

use crate::runtime::Runtime;

/// Wall-clock time for the engine, from an anchor plus monotonic elapsed time.
#[derive(Clone, Debug)]
pub(crate) struct Clock<R> {
    runtime: R,
    wall_anchor: Timestamp,
    mono_anchor: Instant,
}

impl<R: Runtime> Clock<R> {
    pub(crate) fn new(runtime: R) -> Self {
        Clock {
            wall_anchor: runtime.wall_now(),
            mono_anchor: runtime.now(),
            runtime,
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.wall_anchor
            .saturating_add(self.runtime.now().saturating_duration_since(self.mono_anchor))
    }

    /// How long from now until `t` (zero if it has passed).
    pub(crate) fn until(&self, t: Timestamp) -> Duration {
        t.saturating_since(self.now())
    }
}
