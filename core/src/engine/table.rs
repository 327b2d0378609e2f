//! The engine's per-delivery state, packed small: a slab of fixed-size slots and an
//! index from key to slot. No strings, no payloads.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::id::{EventKey, Fingerprint};
use crate::time::Timestamp;

/// What a tracked delivery is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for its timer (`Slot::at` is the due time).
    Scheduled,
    /// Due, waiting for a free attempt slot.
    Ready,
    /// An attempt is in flight (`Slot::at` is its deadline).
    InFlight,
}

/// One tracked delivery: 48 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) key: EventKey,
    pub(crate) fingerprint: Fingerprint,
    /// Due time while `Scheduled`, deadline while `InFlight`, ms since the epoch.
    pub(crate) at: u64,
    /// Start of the current cycle, ms since the epoch (for the retry window).
    pub(crate) cycle_start: u64,
    /// Last attempt number started.
    pub(crate) attempt: u32,
    /// Attempts started in the current cycle (at most `RetryPolicy::MAX_ATTEMPTS_LIMIT`).
    pub(crate) in_cycle: u16,
    pub(crate) phase: Phase,
}

impl Slot {
    pub(crate) fn at(&self) -> Timestamp {
        Timestamp::from_millis(self.at)
    }
    pub(crate) fn cycle_start(&self) -> Timestamp {
        Timestamp::from_millis(self.cycle_start)
    }
    pub(crate) fn attempts_in_cycle(&self) -> u32 {
        u32::from(self.in_cycle)
    }
}

/// Hashes an [`EventKey`] by taking the eight bytes it writes: it is a digest already.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// Slots plus a key index; freed slots are reused.
#[derive(Default)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashMap<EventKey, u32, BuildHasherDefault<KeyHasher>>,
}

impl Table {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn find(&self, key: &EventKey) -> Option<u32> {
        self.index.get(key).copied()
    }

    pub(crate) fn get(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }

    /// Tracks a new delivery; the caller checked that its key is not tracked.
    pub(crate) fn insert(&mut self, slot: Slot) -> u32 {
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 tracked deliveries")
            }
        };
        self.index.insert(slot.key, i);
        i
    }

    /// Stops tracking a delivery (it reached a terminal state).
    pub(crate) fn remove(&mut self, i: u32) {
        let key = self.slots[i as usize].key;
        self.index.remove(&key);
        self.free.push(i);
    }

    /// Whether slot `i` currently holds a tracked delivery.
    pub(crate) fn is_live(&self, i: u32) -> bool {
        self.slots
            .get(i as usize)
            .is_some_and(|s| self.index.get(&s.key) == Some(&i))
    }

    /// Iterates over the tracked deliveries.
    pub(crate) fn live(&self) -> impl Iterator<Item = &Slot> {
        self.index.values().map(|&i| &self.slots[i as usize])
    }

    /// Bytes this table holds on the heap for its capacity (an estimate of the
    /// allocator's view: a hashbrown table has a power-of-two number of buckets, each with
    /// one control byte).
    pub(crate) fn heap_bytes(&self) -> usize {
        let buckets = (self.index.capacity() * 8 / 7).next_power_of_two();
        self.slots.capacity() * size_of::<Slot>()
            + self.free.capacity() * 4
            + buckets * (size_of::<(EventKey, u32)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_48_bytes() {
        assert_eq!(size_of::<Slot>(), 48);
    }
}
