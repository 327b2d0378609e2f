//! [`RedbStore`]: the [`Store`] on one redb file shared by every port.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::ops::Bound;
use std::path::Path;

use herald_core::{AttemptRecord, Change, DeliveryRecord, DeliveryStatus, EventKey, ExternalEvent, Timestamp};
use redb::backends::InMemoryBackend;
use redb::{
    Builder, Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, StorageBackend,
    Table, WriteTransaction,
};

use crate::encoding::{decode_attempt, decode_event, decode_record, encode_attempt, encode_event, encode_record};
use crate::error::{
    CheckError, CommitError, Corruption, KeyHex, Location, ReadError, RedriveError, Rejection, commit_storage, storage,
};
use crate::schema::{check_or_initialize, classify_storage};
use crate::store::{Applied, Cursor, History, Page, Store};
use crate::tables::{
    ATTEMPTS, ATTEMPTS_NAME, BY_STATUS, BY_STATUS_NAME, COUNTS, COUNTS_NAME, DELIVERIES, DELIVERIES_NAME, EVENTS,
    EVENTS_NAME, KeyBuf, index_key, index_time, split_port, split_status_suffix, validate_port,
};

/// How a [`RedbStore`] opens its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedbOptions {
    /// Bytes of redb's page cache. Reads and a transaction's dirty pages live there; the
    /// store itself keeps no records in memory. Default 64 MiB (redb's own default is
    /// 1 GiB, more than a delivery service should hold for pages it rarely rereads).
    pub cache_size: usize,
    /// Verify every page checksum when the file is opened (redb's
    /// `set_check_integrity_on_open`). A file damaged outside redb then fails to open with
    /// [`crate::OpenError::Corrupted`], where an unverified open may panic inside redb.
    /// Costs one read of the file per open. Default `true`.
    pub verify_on_open: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            cache_size: 64 << 20,
            verify_on_open: true,
        }
    }
}

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
    /// Opens the store at `path`, creating the file if it does not exist, with
    /// [`RedbOptions::default`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, crate::OpenError> {
        Self::open_with(path, &RedbOptions::default())
    }

    /// Opens the store at `path`, creating the file if it does not exist.
    ///
    /// Creation is atomic: the file is set up under a temporary name in the same
    /// directory and linked into place only once it is a complete, durable store. redb
    /// alone would leave a file it cannot open (no magic number yet) if the process died
    /// while creating it.
    pub fn open_with(path: impl AsRef<Path>, options: &RedbOptions) -> Result<Self, crate::OpenError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |source: std::io::Error| crate::OpenError::Io {
            db: name.clone(),
            source,
        };
        if path.is_dir() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "the path is a directory",
            )));
        }
        // An empty file holds nothing; it is replaced like a missing one.
        let empty = path.metadata().is_ok_and(|m| m.len() == 0);
        if empty || !path.exists() {
            create_atomically(path, options, &name, empty)?;
        }
        let db = builder(options)
            .open(path)
            .map_err(|e| classify_storage(&name, e.into()))?;
        check_or_initialize(&db, &name)?;
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
    ) -> Result<Self, crate::OpenError> {
        let db = builder(options)
            .create_with_backend(backend)
            .map_err(|e| classify_storage(name, e.into()))?;
        check_or_initialize(&db, name)?;
        Ok(RedbStore {
            db,
            name: name.to_owned(),
        })
    }

    /// A new, empty store in memory, for tests.
    pub fn in_memory() -> Result<Self, crate::OpenError> {
        Self::open_with_backend(InMemoryBackend::new(), "in-memory store", &RedbOptions::default())
    }

    /// Checks the file (redb verifies every page checksum and repairs what it can) and then
    /// the store's own invariants: every record decodes, has its event and exactly one
    /// index entry, every index entry and attempt belongs to a record, and the counts
    /// match. Needs `&mut` because redb checks with no transaction open.
    pub fn check_integrity(&mut self) -> Result<Integrity, CheckError> {
        let clean = self
            .db
            .check_integrity()
            .map_err(|e| CheckError::Storage { source: e.into() })?;
        let check_storage = |e: ReadError| match e {
            ReadError::Corrupt(c) => CheckError::Corrupt(c),
            ReadError::Storage { source } => CheckError::Storage { source },
            ReadError::Port(p) => CheckError::Inconsistent {
                problems: vec![p.to_string()],
            },
        };
        let mut report = crate::check::check_tables(&self.read().map_err(check_storage)?).map_err(check_storage)?;
        if !report.problems.is_empty() {
            return Err(CheckError::Inconsistent {
                problems: std::mem::take(&mut report.problems),
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

/// Creates a new store file at `path`: set up under a temporary name, made durable, then
/// hard-linked into place (which fails rather than replace a file another process created
/// meanwhile; an empty file is replaced) and the directory synced.
fn create_atomically(path: &Path, options: &RedbOptions, name: &str, replace: bool) -> Result<(), crate::OpenError> {
    let io = |source: std::io::Error| crate::OpenError::Io {
        db: name.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{file_name}.{}.{nanos}.creating", std::process::id()));
    let result = (|| {
        let db = builder(options)
            .create(&tmp)
            .map_err(|e| classify_storage(name, e.into()))?;
        check_or_initialize(&db, name)?;
        db.close().map_err(|e| classify_storage(name, e.into()))?;
        match if replace {
            std::fs::rename(&tmp, path)
        } else {
            std::fs::hard_link(&tmp, path)
        } {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // Some file systems have no hard links; a rename is atomic too, but replaces.
            Err(_) if !path.exists() => std::fs::rename(&tmp, path).map_err(io)?,
            Err(e) => return Err(io(e)),
        }
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)
    })();
    // Best effort: a leftover temporary file is harmless and clearly named.
    let _ = std::fs::remove_file(&tmp);
    result
}

fn builder(options: &RedbOptions) -> Builder {
    let mut b = Builder::new();
    b.set_cache_size(options.cache_size);
    b.set_check_integrity_on_open(options.verify_on_open);
    b
}

/// A failure of the storage or an undecodable record, in code shared by reads and writes;
/// it becomes a [`ReadError`] or a [`CommitError`] (inside a write transaction, before its
/// commit, so nothing is durable).
pub(crate) enum Fault {
    Storage(redb::Error),
    Corrupt(Corruption),
}

impl From<Fault> for CommitError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Storage(source) => CommitError::Storage { source },
            Fault::Corrupt(c) => CommitError::Corrupt(c),
        }
    }
}

impl From<Fault> for ReadError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Storage(source) => ReadError::Storage { source },
            Fault::Corrupt(c) => ReadError::Corrupt(c),
        }
    }
}

impl From<Corruption> for Fault {
    fn from(c: Corruption) -> Self {
        Fault::Corrupt(c)
    }
}

macro_rules! storage_fault {
    ($($t:ty),*) => {$(
        impl From<$t> for Fault {
            fn from(e: $t) -> Self {
                Fault::Storage(e.into())
            }
        }
    )*};
}
storage_fault!(redb::StorageError, redb::TableError, redb::TransactionError);

pub(crate) fn corrupt(table: &'static str, port: &str, key: EventKey) -> impl FnOnce(String) -> Corruption {
    let port = port.to_owned();
    move |detail| Corruption {
        table,
        location: Location::Delivery { port, key },
        detail,
    }
}

type Bytes = &'static [u8];

/// Looks up and decodes one delivery record.
fn load_record(
    deliveries: &impl ReadableTable<Bytes, Bytes>,
    port: &KeyBuf,
    name: &str,
    key: EventKey,
) -> Result<Option<DeliveryRecord>, Fault> {
    match deliveries.get(port.delivery(key).as_slice())? {
        None => Ok(None),
        Some(v) => Ok(Some(decode_record(v.value()).map_err(corrupt(
            DELIVERIES_NAME,
            name,
            key,
        ))?)),
    }
}

/// The range of keys starting with `prefix`.
fn prefix_range(prefix: &KeyBuf) -> (Bound<KeyBuf>, Bound<KeyBuf>) {
    (
        Bound::Included(*prefix),
        prefix.prefix_end().map_or(Bound::Unbounded, Bound::Excluded),
    )
}

fn as_slices(r: &(Bound<KeyBuf>, Bound<KeyBuf>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (r.0.as_ref().map(KeyBuf::as_slice), r.1.as_ref().map(KeyBuf::as_slice))
}

/// The tables of one write transaction, and the buffer records are encoded into.
struct Writer<'t> {
    events: Table<'t, Bytes, Bytes>,
    deliveries: Table<'t, Bytes, Bytes>,
    attempts: Table<'t, Bytes, Bytes>,
    by_status: Table<'t, Bytes, ()>,
    counts: Table<'t, Bytes, u64>,
    buf: Vec<u8>,
}

/// A delivery touched by the batch: its record as the batch has changed it so far.
struct Slot {
    record: DeliveryRecord,
    /// The status and index time before the batch; `None` if the batch accepted it.
    before: Option<(DeliveryStatus, Timestamp)>,
    /// The record differs from what is in the table.
    dirty: bool,
}

/// Whether an `Accepted` event is the one stored (a re-send) or something else.
fn same_event(stored: &DeliveryRecord, event: &ExternalEvent) -> Result<(), Rejection> {
    if stored.id != *event.id() {
        Err(Rejection::KeyCollision {
            id: event.id().clone(),
            stored: stored.id.clone(),
        })
    } else if stored.fingerprint != event.fingerprint() {
        Err(Rejection::Conflict { id: stored.id.clone() })
    } else {
        Ok(())
    }
}

impl<'t> Writer<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, Fault> {
        Ok(Writer {
            events: txn.open_table(EVENTS)?,
            deliveries: txn.open_table(DELIVERIES)?,
            attempts: txn.open_table(ATTEMPTS)?,
            by_status: txn.open_table(BY_STATUS)?,
            counts: txn.open_table(COUNTS)?,
            buf: Vec::with_capacity(512),
        })
    }

    /// Applies a batch: records are loaded once, changed in memory by
    /// [`DeliveryRecord::apply`] and written once at the end, with their index entries and
    /// the counts; events and attempt records are written as they come.
    fn apply_batch<'b>(&mut self, batch: &'b [(&'b str, Change)]) -> Result<Vec<Applied>, CommitError> {
        let mut slots: BTreeMap<(&'b str, EventKey), Slot> = BTreeMap::new();
        let mut out = Vec::with_capacity(batch.len());
        for (index, (port, change)) in batch.iter().enumerate() {
            let key = change.key();
            let reject = |reason: Rejection| CommitError::Rejected {
                index,
                port: (*port).to_owned(),
                key: KeyHex(key),
                reason,
            };
            validate_port(port).map_err(|e| reject(e.into()))?;
            let pk = KeyBuf::port(port);
            if let Change::Accepted { event, at } = change {
                if let Some(slot) = slots.get(&(*port, key)) {
                    same_event(&slot.record, event).map_err(reject)?;
                    out.push(Applied {
                        record: slot.record.clone(),
                        attempt: None,
                        existed: true,
                    });
                    continue;
                }
                let record = DeliveryRecord::accepted(event, *at);
                let dk = pk.delivery(key);
                encode_record(&record, &mut self.buf);
                // Insert first and look at what was there: a new delivery (the usual case)
                // then costs one tree walk instead of a lookup and an insert.
                let old = self
                    .deliveries
                    .insert(dk.as_slice(), self.buf.as_slice())
                    .map_err(commit_storage)?
                    .map(|g| g.value().to_vec());
                if let Some(old) = old {
                    self.deliveries
                        .insert(dk.as_slice(), old.as_slice())
                        .map_err(commit_storage)?;
                    let stored = decode_record(&old).map_err(corrupt(DELIVERIES_NAME, port, key))?;
                    same_event(&stored, event).map_err(reject)?;
                    out.push(Applied {
                        record: stored.clone(),
                        attempt: None,
                        existed: true,
                    });
                    slots.insert(
                        (*port, key),
                        Slot {
                            before: Some((stored.status, index_time(&stored))),
                            record: stored,
                            dirty: false,
                        },
                    );
                    continue;
                }
                encode_event(event, &mut self.buf);
                self.events
                    .insert(dk.as_slice(), self.buf.as_slice())
                    .map_err(commit_storage)?;
                out.push(Applied {
                    record: record.clone(),
                    attempt: None,
                    existed: false,
                });
                slots.insert(
                    (*port, key),
                    Slot {
                        record,
                        before: None,
                        dirty: false,
                    },
                );
                continue;
            }
            let slot = match slots.entry((*port, key)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(v) => {
                    let Some(record) = load_record(&self.deliveries, &pk, port, key)? else {
                        return Err(reject(Rejection::NotFound));
                    };
                    v.insert(Slot {
                        before: Some((record.status, index_time(&record))),
                        record,
                        dirty: false,
                    })
                }
            };
            let attempt = slot.record.apply(change).map_err(|e| reject(e.into()))?;
            slot.dirty = true;
            if let Some(a) = &attempt {
                encode_attempt(a, &mut self.buf);
                self.attempts
                    .insert(pk.attempt(key, a.attempt).as_slice(), self.buf.as_slice())
                    .map_err(commit_storage)?;
            }
            out.push(Applied {
                record: slot.record.clone(),
                attempt,
                existed: false,
            });
        }
        self.write_back(&slots)?;
        Ok(out)
    }

    fn write_back(&mut self, slots: &BTreeMap<(&str, EventKey), Slot>) -> Result<(), Fault> {
        let mut deltas: BTreeMap<KeyBuf, i64> = BTreeMap::new();
        for ((port, key), slot) in slots {
            let pk = KeyBuf::port(port);
            if slot.dirty {
                encode_record(&slot.record, &mut self.buf);
                self.deliveries
                    .insert(pk.delivery(*key).as_slice(), self.buf.as_slice())?;
            }
            let now = (slot.record.status, index_time(&slot.record));
            if slot.before == Some(now) {
                continue;
            }
            if let Some((status, since)) = slot.before {
                self.by_status.remove(pk.indexed(status, since, *key).as_slice())?;
                *deltas.entry(pk.status(status)).or_default() -= 1;
            }
            self.by_status.insert(index_key(&pk, &slot.record).as_slice(), ())?;
            *deltas.entry(pk.status(now.0)).or_default() += 1;
        }
        self.add_counts(deltas)
    }

    fn add_counts(&mut self, deltas: BTreeMap<KeyBuf, i64>) -> Result<(), Fault> {
        for (k, delta) in deltas {
            if delta == 0 {
                continue;
            }
            let current = self.counts.get(k.as_slice())?.map_or(0, |v| v.value());
            let Some(new) = current.checked_add_signed(delta) else {
                return Err(Fault::Corrupt(Corruption {
                    table: COUNTS_NAME,
                    location: Location::RawKey(k.as_slice().to_vec()),
                    detail: format!("count {current} cannot change by {delta}"),
                }));
            };
            if new == 0 {
                self.counts.remove(k.as_slice())?;
            } else {
                self.counts.insert(k.as_slice(), new)?;
            }
        }
        Ok(())
    }

    /// Deletes up to `limit` terminal deliveries last changed before `older_than`.
    fn prune_chunk(&mut self, older_than: Timestamp, limit: usize) -> Result<usize, Fault> {
        let ports = ports_of(&self.counts)?;
        let mut doomed: Vec<(KeyBuf, EventKey, DeliveryStatus, Timestamp)> = Vec::new();
        'ports: for port in &ports {
            let pk = KeyBuf::port(port);
            for status in DeliveryStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
                let range = (
                    Bound::Included(pk.status(status)),
                    Bound::Excluded(pk.indexed_from(status, older_than)),
                );
                for entry in self.by_status.range::<&[u8]>(as_slices(&range))? {
                    let (k, _) = entry?;
                    let k = k.value();
                    let (_, suffix) = split_port(k).ok_or_else(|| bad_index_key(k))?;
                    let (status, since, key) = split_status_suffix(suffix).ok_or_else(|| bad_index_key(k))?;
                    doomed.push((pk, key, status, since));
                    if doomed.len() == limit {
                        break 'ports;
                    }
                }
            }
        }
        let mut deltas: BTreeMap<KeyBuf, i64> = BTreeMap::new();
        for (pk, key, status, since) in &doomed {
            self.by_status.remove(pk.indexed(*status, *since, *key).as_slice())?;
            let dk = pk.delivery(*key);
            self.deliveries.remove(dk.as_slice())?;
            self.events.remove(dk.as_slice())?;
            let attempts = (
                Bound::Included(pk.attempt(*key, 0)),
                Bound::Included(pk.attempt(*key, u32::MAX)),
            );
            self.attempts
                .retain_in::<&[u8], _>(as_slices(&attempts), |_, _| false)?;
            *deltas.entry(pk.status(*status)).or_default() -= 1;
        }
        self.add_counts(deltas)?;
        Ok(doomed.len())
    }
}

fn bad_index_key(k: &[u8]) -> Fault {
    Fault::Corrupt(Corruption {
        table: BY_STATUS_NAME,
        location: Location::RawKey(k.to_vec()),
        detail: "the key does not have the index layout".to_owned(),
    })
}

/// The distinct ports in the counts table, sorted by name.
pub(crate) fn ports_of(counts: &impl ReadableTable<Bytes, u64>) -> Result<Vec<String>, Fault> {
    let mut ports: Vec<String> = Vec::new();
    for entry in counts.iter()? {
        let (k, _) = entry?;
        let k = k.value();
        let (port, _) = split_port(k).ok_or_else(|| {
            Fault::Corrupt(Corruption {
                table: COUNTS_NAME,
                location: Location::RawKey(k.to_vec()),
                detail: "the key does not start with a port name".to_owned(),
            })
        })?;
        if ports.last().map(String::as_str) != Some(port) {
            ports.push(port.to_owned());
        }
    }
    ports.sort();
    ports.dedup();
    Ok(ports)
}

/// The tables a read needs, from one read transaction.
struct Reader {
    deliveries: ReadOnlyTable<Bytes, Bytes>,
}

impl Reader {
    fn open(txn: &ReadTransaction) -> Result<Self, Fault> {
        Ok(Reader {
            deliveries: txn.open_table(DELIVERIES)?,
        })
    }

    /// Walks index entries in `range` (of `port`), loading each record; `f` returns
    /// `false` to stop.
    fn walk_index(
        &self,
        by_status: &ReadOnlyTable<Bytes, ()>,
        port: &str,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        f: &mut dyn FnMut(DeliveryRecord) -> bool,
    ) -> Result<(), Fault> {
        let pk = KeyBuf::port(port);
        for entry in by_status.range::<&[u8]>(range)? {
            let (k, _) = entry?;
            let k = k.value();
            let (_, suffix) = split_port(k).ok_or_else(|| bad_index_key(k))?;
            let (_, _, key) = split_status_suffix(suffix).ok_or_else(|| bad_index_key(k))?;
            let record = load_record(&self.deliveries, &pk, port, key)?.ok_or_else(|| Corruption {
                table: BY_STATUS_NAME,
                location: Location::Delivery {
                    port: port.to_owned(),
                    key,
                },
                detail: "index entry of a delivery that does not exist".to_owned(),
            })?;
            if !f(record) {
                break;
            }
        }
        Ok(())
    }
}

impl Store for RedbStore {
    fn commit(&self, batch: &[(&str, Change)]) -> Result<Vec<Applied>, CommitError> {
        let txn = self.write()?;
        let applied = Writer::open(&txn)?.apply_batch(batch)?;
        txn.commit()
            .map_err(|e| CommitError::OutcomeUnknown { source: e.into() })?;
        Ok(applied)
    }

    fn for_each_unfinished(&self, port: &str, f: &mut dyn FnMut(DeliveryRecord)) -> Result<u64, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let reader = Reader::open(&txn)?;
        let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
        let mut n = 0;
        for status in [DeliveryStatus::Pending, DeliveryStatus::Retrying] {
            let range = prefix_range(&KeyBuf::port(port).status(status));
            reader.walk_index(&by_status, port, as_slices(&range), &mut |r| {
                n += 1;
                f(r);
                true
            })?;
        }
        Ok(n)
    }

    fn event(&self, port: &str, key: EventKey) -> Result<Option<ExternalEvent>, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let events = txn.open_table(EVENTS).map_err(storage)?;
        let value = events
            .get(KeyBuf::port(port).delivery(key).as_slice())
            .map_err(storage)?;
        match value {
            None => Ok(None),
            Some(v) => Ok(Some(decode_event(v.value()).map_err(corrupt(
                EVENTS_NAME,
                port,
                key,
            ))?)),
        }
    }

    fn record(&self, port: &str, key: EventKey) -> Result<Option<DeliveryRecord>, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let reader = Reader::open(&txn)?;
        Ok(load_record(&reader.deliveries, &KeyBuf::port(port), port, key)?)
    }

    fn history(&self, port: &str, key: EventKey) -> Result<Option<History>, ReadError> {
        validate_port(port)?;
        let txn = self.read()?;
        let reader = Reader::open(&txn)?;
        let pk = KeyBuf::port(port);
        let Some(record) = load_record(&reader.deliveries, &pk, port, key)? else {
            return Ok(None);
        };
        let table = txn.open_table(ATTEMPTS).map_err(storage)?;
        let range = (
            Bound::Included(pk.attempt(key, 0)),
            Bound::Included(pk.attempt(key, u32::MAX)),
        );
        let mut attempts: Vec<AttemptRecord> = Vec::new();
        for entry in table.range::<&[u8]>(as_slices(&range)).map_err(storage)? {
            let (_, v) = entry.map_err(storage)?;
            attempts.push(decode_attempt(v.value()).map_err(corrupt(ATTEMPTS_NAME, port, key))?);
        }
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
            if from.as_slice() >= prefix.as_slice() {
                start = Bound::Excluded(from);
            }
        }
        let txn = self.read()?;
        let reader = Reader::open(&txn)?;
        let by_status = txn.open_table(BY_STATUS).map_err(storage)?;
        let mut items = Vec::new();
        let mut more = false;
        if limit > 0 {
            reader.walk_index(&by_status, port, as_slices(&(start, end)), &mut |r| {
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
        let counts = txn.open_table(COUNTS).map_err(storage)?;
        let pk = KeyBuf::port(port);
        let mut out = BTreeMap::new();
        for status in DeliveryStatus::ALL {
            let n = counts.get(pk.status(status).as_slice()).map_err(storage)?;
            out.insert(status, n.map_or(0, |v| v.value()));
        }
        Ok(out)
    }

    fn ports(&self) -> Result<Vec<String>, ReadError> {
        let txn = self.read()?;
        let counts = txn.open_table(COUNTS).map_err(storage)?;
        Ok(ports_of(&counts)?)
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
        let change = Change::Redriven { key, at: now };
        match self.commit(&[(port, change)]) {
            Ok(mut applied) => applied.pop().map(|a| a.record).ok_or(RedriveError::NotFound {
                port: port.to_owned(),
                key: KeyHex(key),
            }),
            Err(CommitError::Rejected {
                reason: Rejection::NotFound,
                ..
            }) => Err(RedriveError::NotFound {
                port: port.to_owned(),
                key: KeyHex(key),
            }),
            Err(CommitError::Rejected {
                reason: Rejection::Apply(herald_core::ApplyError::NotTerminal { id, status }),
                ..
            }) => Err(RedriveError::NotTerminal { id, status }),
            Err(e) => Err(RedriveError::Commit(e)),
        }
    }
}
