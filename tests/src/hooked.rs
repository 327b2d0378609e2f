//! A [`RedbStore`] with a hook around its commits: what the simulator and the benchmarks
//! need to watch (or cut short) the driver's group commits, and what a test needs to make
//! record reads fail; every other read goes straight to the real store. One delegation of the whole [`Store`] trait, here, instead of one per
//! observer.

use std::collections::BTreeMap;

use herald::Timestamp;
use herald::core::{Change, DeliveryRecord, DeliveryStatus, EventKey, ExternalEvent};
use herald_store::{Applied, CommitError, Cursor, History, Page, ReadError, RedbStore, RedriveError, Store};

/// What happens around a commit.
pub trait CommitHook: Send + Sync + std::fmt::Debug {
    /// Commits `batch` to `store` (by calling [`Store::commit`] on it), observing what goes
    /// in and what comes out.
    fn commit(&self, store: &RedbStore, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError>;

    /// Called before each record read ([`Store::record`], and each key of
    /// [`Store::records`]); an error is that read's result.
    fn before_record_read(&self, port: &str, key: EventKey) -> Result<(), ReadError> {
        let _ = (port, key);
        Ok(())
    }
}

/// A store whose commits go through `H`.
#[derive(Debug)]
pub struct Hooked<H> {
    inner: RedbStore,
    hook: H,
}

impl<H: CommitHook> Hooked<H> {
    /// Wraps `inner`.
    pub fn new(inner: RedbStore, hook: H) -> Self {
        Hooked { inner, hook }
    }

    /// The wrapped store (reads that must not be observed).
    pub fn inner(&self) -> &RedbStore {
        &self.inner
    }

    /// The hook, for what it recorded.
    pub fn hook(&self) -> &H {
        &self.hook
    }
}

impl<H: CommitHook> Store for Hooked<H> {
    fn commit(&self, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError> {
        self.hook.commit(&self.inner, batch)
    }

    fn for_each_unfinished(&self, port: &str, f: &mut dyn FnMut(DeliveryRecord)) -> Result<u64, ReadError> {
        self.inner.for_each_unfinished(port, f)
    }

    fn event(&self, port: &str, key: EventKey) -> Result<Option<ExternalEvent>, ReadError> {
        self.inner.event(port, key)
    }

    fn record(&self, port: &str, key: EventKey) -> Result<Option<DeliveryRecord>, ReadError> {
        self.hook.before_record_read(port, key)?;
        self.inner.record(port, key)
    }

    fn records(&self, keys: &[(&str, EventKey)]) -> Vec<Result<Option<DeliveryRecord>, ReadError>> {
        keys.iter()
            .zip(self.inner.records(keys))
            .map(|((port, key), read)| self.hook.before_record_read(port, *key).and(read))
            .collect()
    }

    fn events(&self, keys: &[(&str, EventKey)]) -> Vec<Result<Option<ExternalEvent>, ReadError>> {
        self.inner.events(keys)
    }

    fn history(&self, port: &str, key: EventKey) -> Result<Option<History>, ReadError> {
        self.inner.history(port, key)
    }

    fn list(
        &self,
        port: &str,
        status: Option<DeliveryStatus>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, ReadError> {
        self.inner.list(port, status, after, limit)
    }

    fn count_by_status(&self, port: &str) -> Result<BTreeMap<DeliveryStatus, u64>, ReadError> {
        self.inner.count_by_status(port)
    }

    fn ports(&self) -> Result<Vec<String>, ReadError> {
        self.inner.ports()
    }

    fn prune(&self, older_than: Timestamp) -> Result<u64, CommitError> {
        self.inner.prune(older_than)
    }

    fn redrive(&self, port: &str, key: EventKey, now: Timestamp) -> Result<DeliveryRecord, RedriveError> {
        self.inner.redrive(port, key, now)
    }
}
