//! A redb storage backend in memory that fails on command and models what survives a
//! power loss (after redb's own fuzzer, which fails I/O after a countdown). For tests and
//! simulations only: enabled by the `fault-injection` feature.
//!
//! An fsync promises only that the writes before it are on disk. So the backend keeps the
//! bytes as of the last successful `sync_data` (`durable`) and the writes made since
//! (`pending`); a crash image is `durable` plus any subset of `pending`, in order: none
//! (nothing reached the disk), all (everything did, only the fsync failed), or some.
//!
//! ```
//! use herald_store::faults::FaultyBackend;
//! use herald_store::{RedbOptions, RedbStore};
//!
//! let disk = FaultyBackend::default();
//! let store = RedbStore::open_with_backend(disk.clone(), "disk", &RedbOptions::default())?;
//! disk.fail_after(3); // the fourth write, set_len or sync from now on fails, and all after it
//! drop(store);
//! // Power loss: only what the last successful sync promised survives.
//! let rebooted = FaultyBackend::with_bytes(disk.crash_image(|_| false));
//! let _store = RedbStore::open_with_backend(rebooted, "rebooted", &RedbOptions::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use redb::StorageBackend;

#[derive(Debug, Clone)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct State {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Op>,
    /// Mutating operations (write, set_len, sync_data) left before the failure.
    countdown: Option<u64>,
    /// Once one operation failed, every later mutation fails too, like a dead disk.
    tripped: bool,
    /// Mutating operations so far (for tests that pick a failure point).
    mutations: u64,
}

/// The backend; clones share one disk, so a test keeps one clone and gives redb another.
#[derive(Debug, Clone, Default)]
pub struct FaultyBackend(Arc<Mutex<State>>);

fn fail(what: &str) -> std::io::Error {
    std::io::Error::other(format!("injected failure of {what}"))
}

fn apply(bytes: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, data } => {
            let start = usize::try_from(*offset).expect("offset fits in memory");
            if bytes.len() < start + data.len() {
                bytes.resize(start + data.len(), 0);
            }
            bytes[start..start + data.len()].copy_from_slice(data);
        }
        Op::SetLen(len) => bytes.resize(usize::try_from(*len).expect("length fits in memory"), 0),
    }
}

impl FaultyBackend {
    /// A disk holding `bytes` (empty for a new one), all of it durable.
    pub fn with_bytes(bytes: Vec<u8>) -> Self {
        FaultyBackend(Arc::new(Mutex::new(State {
            live: bytes.clone(),
            durable: bytes,
            ..State::default()
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets `ops` more mutating operations succeed; the next one fails, and all after it.
    pub fn fail_after(&self, ops: u64) {
        self.state().countdown = Some(ops);
    }

    /// Cancels a failure armed with [`FaultyBackend::fail_after`] that has not happened yet
    /// (a failure that happened stays: the disk is dead until it is replaced).
    pub fn disarm(&self) {
        self.state().countdown = None;
    }

    /// Whether an injected failure happened.
    pub fn tripped(&self) -> bool {
        self.state().tripped
    }

    /// Mutating operations (write, set_len, sync_data) attempted so far.
    pub fn mutations(&self) -> u64 {
        self.state().mutations
    }

    /// The disk after a power loss: the durable bytes plus the pending writes that `keep`
    /// selects (by index), in order.
    pub fn crash_image(&self, mut keep: impl FnMut(usize) -> bool) -> Vec<u8> {
        let s = self.state();
        let mut bytes = s.durable.clone();
        for (i, op) in s.pending.iter().enumerate() {
            if matches!(op, Op::SetLen(_)) || keep(i) {
                apply(&mut bytes, op);
            }
        }
        bytes
    }

    /// Writes made since the last successful sync.
    pub fn pending_writes(&self) -> usize {
        self.state().pending.len()
    }

    /// Counts down one mutating operation; `Err` if it must fail.
    fn tick(s: &mut State, what: &str) -> std::io::Result<()> {
        s.mutations += 1;
        if s.tripped {
            return Err(fail(what));
        }
        match s.countdown {
            Some(0) => {
                s.tripped = true;
                Err(fail(what))
            }
            Some(n) => {
                s.countdown = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.state().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let s = self.state();
        let start = usize::try_from(offset).map_err(|_| fail("read"))?;
        let src = s
            .live
            .get(start..start + out.len())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut s = self.state();
        Self::tick(&mut s, "set_len")?;
        let op = Op::SetLen(len);
        apply(&mut s.live, &op);
        s.pending.push(op);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut s = self.state();
        Self::tick(&mut s, "sync_data")?;
        // The pending writes reach the disk: replay them rather than copy the whole disk.
        let pending = std::mem::take(&mut s.pending);
        for op in &pending {
            apply(&mut s.durable, op);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut s = self.state();
        Self::tick(&mut s, "write")?;
        let op = Op::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut s.live, &op);
        s.pending.push(op);
        Ok(())
    }
}
