//! Due times of the engine's slots: a min-heap with lazy deletion. An entry is live only
//! while its slot still has that time in the phase that set it; anything else is skipped
//! when it reaches the top. 16 bytes an entry.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: u64, slot: u32) {
        self.heap.push(Reverse((at, slot)));
    }

    /// The earliest entry, live or not.
    pub(crate) fn peek(&self) -> Option<(u64, u32)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<(u64, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Drops stale entries from the top, so `peek` gives a real deadline.
    pub(crate) fn prune(&mut self, mut is_live: impl FnMut(u64, u32) -> bool) {
        while let Some(Reverse((at, slot))) = self.heap.peek() {
            if is_live(*at, *slot) {
                break;
            }
            self.heap.pop();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.heap.capacity() * size_of::<Reverse<(u64, u32)>>()
    }
}
