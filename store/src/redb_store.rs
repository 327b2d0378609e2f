//! [`RedbStore`]: the [`Store`] on one redb file shared by every port.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::path::Path;

use herald_core::{Change, DeliveryRecord, DeliveryStatus, EventKey, ExternalEvent, Timestamp};
use redb::backends::InMemoryBackend;
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, StorageBackend, WriteTransaction};

use crate::error::{CheckError, CommitError, KeyHex, OpenError, ReadError, RedriveError, Rejection};
use crate::error::{commit_storage, storage};
use crate::open::{RedbOptions, open_backend, open_path};
use crate::read::{
    as_slices, load_attempts, load_event, load_record, ports_of, prefix_range, walk_status, walk_status_by_key,
};
use crate::store::{Applied, Cursor, History, Page, Store};
use crate::tables::{ATTEMPTS, BY_STATUS, DELIVERIES, EVENTS, KeyBuf, validate_port};
use crate::write::Writer;

/// What [`RedbStore::check_integrity`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Integrity {
    /// redb found damage and repaired it (rolled back to the last intact commit).
    pub repaired: bool,
    /// Deliveries checked.
    pub deliveries: u64,
    /// Attempt records checked.
    pub attempts: u64,
}

/// How many unfinished deliveries a restore looks up at a time, in key order (~1 MiB of
/// keys).
const RESTORE_CHUNK: usize = 65_536;

/// How many deliveries one prune transaction deletes at most.
const PRUNE_CHUNK: usize = 10_000;

/// The [`Store`] on redb. Several ports share one file; each commit is one durable
/// (`Durability::Immediate`) redb write transaction.
pub struct RedbStore {
    db: Database,
    name: String,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("db", &self.name)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store at `path` with [`RedbOptions::default`], creating the file if it
    /// is missing (see [`RedbStore::open_with`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, &RedbOptions::default())
    }

    /// Opens the store at `path`, creating the file if it is missing or empty.
    ///
    /// Creation is atomic: the file is set up under a temporary name in the same
    /// directory and linked into place only once it is a complete, durable store, so a
    /// crash while creating never leaves a file that cannot be opened.
    pub fn open_with(path: impl AsRef<Path>, options: &RedbOptions) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let db = open_path(path, options, &name)?;
        Ok(RedbStore { db, name })
    }

    /// Opens the store on a redb storage backend (an in-memory one, or one that injects
    /// faults in tests), setting it up if it is empty; `name` appears in error messages.
    /// Unlike [`RedbStore::open_with`], setting up is not atomic: a crash while the
    /// backend is being initialized can leave it unopenable.
    pub fn open_with_backend(
        backend: impl StorageBackend,
        name: &str,
        options: &RedbOptions,
    ) -> Result<Self, OpenError> {
        let db = open_backend(backend, options, name)?;
        Ok(RedbStore {
            db,
            name: name.to_owned(),
        })
    }

    /// A new, empty store in memory, for tests.
    pub fn in_memory() -> Result<Self, OpenError> {
        Self::open_with_backend(InMemoryBackend::new(), "in-memory store", &RedbOptions::default())
    }

    /// Checks the file (redb verifies every page checksum and repairs what it can) and then
    /// the store's own invariants: every record decodes and has its event and exactly one
    /// status entry, every status entry and attempt belongs to a record, and the counts
    /// match. Needs `&mut` because redb checks with no transaction open.
    pub fn check_integrity(&mut self) -> Result<Integrity, CheckError> {
        let clean = self
            .db
            .check_integrity()
            .map_err(|e| CheckError::Storage { source: e.into() })?;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| CheckError::Storage { source: e.into() })?;
        let report = crate::check::check_tables(&txn)?;
        if !report.problems.is_empty() {
            return Err(CheckError::Inconsistent {
                problems: report.problems,
            });
        }
        Ok(Integrity {
            repaired: !clean,
            deliveries: report.deliveries,
            attempts: report.attempts,
        })
    }

    fn read(&self) -> Result<ReadTransaction, ReadError> {
        self.db.begin_read().map_err(storage)
    }

    fn write(&self) -> Result<WriteTransaction, CommitError> {
        let mut txn = self.db.begin_write().map_err(commit_storage)?;
        txn.set_durability(Durability::Immediate).map_err(commit_storage)?;
        Ok(txn)
    }
}

impl Store for RedbStore {
    fn commit(&self, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.write()?;
        let applied = Writer::open(&txn)?.apply_batch(batch)?;
        txn.commit()
            .map_err(|e| CommitError::OutcomeUnknown { source: e.into() })?;
        Ok(applied)
    }

    fn for_each_unfinished(&self, port: &str, f: &mut dyn FnMut(DeliveryRecord)) -> Result<u64, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let deliveries = txn.open_table(DELIVERIES).map_err(storage)?;
        let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
        let mut n = 0;
        for status in [DeliveryStatus::Pending, DeliveryStatus::Retrying] {
            let range = prefix_range(&KeyBuf::port(port).status(status));
            walk_status_by_key(
                &by_status,
                &deliveries,
                port,
                as_slices(&range),
                RESTORE_CHUNK,
                &mut |r| {
                    n += 1;
                    f(r);
                },
            )?;
        }
        Ok(n)
    }

    fn event(&self, port: &str, key: EventKey) -> Result<Option<ExternalEvent>, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let deliveries = txn.open_table(DELIVERIES).map_err(storage)?;
        let pk = KeyBuf::port(port);
        let Some(record) = load_record(&deliveries, &pk, port, key)? else {
            return Ok(None);
        };
        let events = txn.open_table(EVENTS).map_err(storage)?;
        Ok(Some(load_event(&events, &pk, port, key, &record)?))
    }

    fn record(&self, port: &str, key: EventKey) -> Result<Option<DeliveryRecord>, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let deliveries = txn.open_table(DELIVERIES).map_err(storage)?;
        Ok(load_record(&deliveries, &KeyBuf::port(port), port, key)?)
    }

    fn records(&self, keys: &[(&str, EventKey)]) -> Vec<Result<Option<DeliveryRecord>, ReadError>> {
        let Ok(deliveries) = self.read().and_then(|txn| txn.open_table(DELIVERIES).map_err(storage)) else {
            // Each key then gets the failure as its own error.
            return keys.iter().map(|(port, key)| self.record(port, *key)).collect();
        };
        keys.iter()
            .map(|(port, key)| {
                validate_port(port)?;
                Ok(load_record(&deliveries, &KeyBuf::port(port), port, *key)?)
            })
            .collect()
    }

    fn events(&self, keys: &[(&str, EventKey)]) -> Vec<Result<Option<ExternalEvent>, ReadError>> {
        let Ok((deliveries, events)) = self.read().and_then(|txn| {
            Ok((
                txn.open_table(DELIVERIES).map_err(storage)?,
                txn.open_table(EVENTS).map_err(storage)?,
            ))
        }) else {
            return keys.iter().map(|(port, key)| self.event(port, *key)).collect();
        };
        keys.iter()
            .map(|(port, key)| {
                validate_port(port)?;
                let pk = KeyBuf::port(port);
                match load_record(&deliveries, &pk, port, *key)? {
                    Some(record) => Ok(Some(load_event(&events, &pk, port, *key, &record)?)),
                    None => Ok(None),
                }
            })
            .collect()
    }

    fn history(&self, port: &str, key: EventKey) -> Result<Option<History>, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let deliveries = txn.open_table(DELIVERIES).map_err(storage)?;
        let pk = KeyBuf::port(port);
        let Some(record) = load_record(&deliveries, &pk, port, key)? else {
            return Ok(None);
        };
        let table = txn.open_table(ATTEMPTS).map_err(storage)?;
        let attempts = load_attempts(&table, &pk, port, key, &record)?;
        Ok(Some(History { record, attempts }))
    }

    fn list(
        &self,
        port: &str,
        status: Option<DeliveryStatus>,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, ReadError> {
        validate_port(port)?;
        let pk = KeyBuf::port(port);
        let prefix = status.map_or(pk, |s| pk.status(s));
        let (mut start, end) = prefix_range(&prefix);
        if let Some(c) = after {
            let from = pk.suffix(&c.0);
            if from >= prefix {
                start = Bound::Excluded(from);
            }
        }
        let txn = self.read()?;
        let deliveries = txn.open_table(DELIVERIES).map_err(storage)?;
        let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
        let mut items = Vec::new();
        let mut more = false;
        if limit > 0 {
            walk_status(&by_status, &deliveries, port, as_slices(&(start, end)), &mut |r| {
                if items.len() == limit {
                    more = true;
                    return false;
                }
                items.push(r);
                true
            })?;
        }
        let next = if more { items.last().map(Cursor::after) } else { None };
        Ok(Page { items, next })
    }

    fn count_by_status(&self, port: &str) -> Result<BTreeMap<DeliveryStatus, u64>, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
        let pk = KeyBuf::port(port);
        let mut out = BTreeMap::new();
        for status in DeliveryStatus::ALL {
            let n = by_status.get(pk.count_row(status).as_slice()).map_err(storage)?;
            out.insert(status, n.map_or(0, |v| v.value()));
        }
        Ok(out)
    }

    fn ports(&self) -> Result<Vec<String>, ReadError> {
        let txn = self.read()?;
        let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
        Ok(ports_of(&by_status)?)
    }

    fn prune(&self, older_than: Timestamp) -> Result<u64, CommitError> {
        let mut total = 0u64;
        loop {
            let txn = self.write()?;
            let n = Writer::open(&txn)?.prune_chunk(older_than, PRUNE_CHUNK)?;
            if n == 0 {
                txn.abort().map_err(commit_storage)?;
                return Ok(total);
            }
            txn.commit()
                .map_err(|e| CommitError::OutcomeUnknown { source: e.into() })?;
            total += n as u64;
            if n < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn redrive(&self, port: &str, key: EventKey, now: Timestamp) -> Result<DeliveryRecord, RedriveError> {
        let not_found = || RedriveError::NotFound {
            port: port.to_owned(),
            key: KeyHex(key),
        };
        match self.commit(&[(port, Change::Redriven { key, at: now })]) {
            Ok(mut applied) => applied.pop().map(|a| a.record).ok_or_else(not_found),
            Err(CommitError::Rejected {
                reason: Rejection::NotFound,
                ..
            }) => Err(not_found()),
            Err(CommitError::Rejected {
                reason: Rejection::Apply(herald_core::ApplyError::NotTerminal { id, status }),
                ..
            }) => Err(RedriveError::NotTerminal { id, status }),
            Err(e) => Err(RedriveError::Commit(e)),
        }
    }
}
