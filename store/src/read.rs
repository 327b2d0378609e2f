//! Reading the tables, shared by read transactions and write transactions: lookups that
//! decode, walks of the status index, and the list of ports.

use std::ops::Bound;

use herald_core::{AttemptRecord, DeliveryRecord, EventKey, ExternalEvent};
use redb::ReadableTable;

use crate::encoding::{decode_attempt, decode_event, decode_record};
use crate::error::{CommitError, Corruption, Location, ReadError};
use crate::tables::{
    ATTEMPTS_NAME, BY_STATUS_NAME, DELIVERIES_NAME, EVENTS_NAME, KeyBuf, StatusRow, split_port, split_status_suffix,
};

/// The key and value type of the byte-keyed tables.
pub(crate) type Bytes = &'static [u8];

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

/// Builds the [`Corruption`] of a delivery's value from a decoding error.
pub(crate) fn corrupt(table: &'static str, port: &str, key: EventKey) -> impl FnOnce(String) -> Corruption {
    let port = port.to_owned();
    move |detail| Corruption {
        table,
        location: Location::Delivery { port, key },
        detail,
    }
}

/// A status row whose key does not have the layout.
pub(crate) fn bad_status_key(k: &[u8]) -> Fault {
    Fault::Corrupt(Corruption {
        table: BY_STATUS_NAME,
        location: Location::RawKey(k.to_vec()),
        detail: "the key does not have the status index layout".to_owned(),
    })
}

/// The range of keys starting with `prefix`.
pub(crate) fn prefix_range(prefix: &KeyBuf) -> (Bound<KeyBuf>, Bound<KeyBuf>) {
    (
        Bound::Included(*prefix),
        prefix.prefix_end().map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// A range of owned keys as a range of slices, as redb takes them.
pub(crate) fn as_slices(r: &(Bound<KeyBuf>, Bound<KeyBuf>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (r.0.as_ref().map(KeyBuf::as_slice), r.1.as_ref().map(KeyBuf::as_slice))
}

/// Looks up and decodes one delivery record.
pub(crate) fn load_record(
    deliveries: &impl ReadableTable<Bytes, Bytes>,
    port_key: &KeyBuf,
    port: &str,
    key: EventKey,
) -> Result<Option<DeliveryRecord>, Fault> {
    match deliveries.get(port_key.delivery(key).as_slice())? {
        None => Ok(None),
        Some(v) => Ok(Some(decode_record(v.value()).map_err(corrupt(
            DELIVERIES_NAME,
            port,
            key,
        ))?)),
    }
}

/// Looks up and decodes the event of a record.
pub(crate) fn load_event(
    events: &impl ReadableTable<Bytes, Bytes>,
    port_key: &KeyBuf,
    port: &str,
    key: EventKey,
    record: &DeliveryRecord,
) -> Result<ExternalEvent, Fault> {
    let missing = || corrupt(EVENTS_NAME, port, key)("the event of a stored delivery is missing".to_owned());
    let value = events
        .get(port_key.event(record.accepted_at, key).as_slice())?
        .ok_or_else(missing)?;
    Ok(decode_event(value.value()).map_err(corrupt(EVENTS_NAME, port, key))?)
}

/// Loads and decodes the attempts of a record, oldest first.
pub(crate) fn load_attempts(
    attempts: &impl ReadableTable<Bytes, Bytes>,
    port_key: &KeyBuf,
    port: &str,
    key: EventKey,
    record: &DeliveryRecord,
) -> Result<Vec<AttemptRecord>, Fault> {
    let range = prefix_range(&port_key.event(record.accepted_at, key));
    let mut out = Vec::new();
    for entry in attempts.range::<&[u8]>(as_slices(&range))? {
        let (_, v) = entry?;
        out.push(decode_attempt(v.value()).map_err(corrupt(ATTEMPTS_NAME, port, key))?);
    }
    Ok(out)
}

/// Parses a key of the status index.
pub(crate) fn status_row(k: &[u8]) -> Result<StatusRow, Fault> {
    split_port(k)
        .and_then(|(_, suffix)| split_status_suffix(suffix))
        .ok_or_else(|| bad_status_key(k))
}

/// Walks the status entries of `port` in `range` (count rows are skipped), loading each
/// record; `f` returns `false` to stop.
pub(crate) fn walk_status(
    by_status: &impl ReadableTable<Bytes, u64>,
    deliveries: &impl ReadableTable<Bytes, Bytes>,
    port: &str,
    range: (Bound<&[u8]>, Bound<&[u8]>),
    f: &mut dyn FnMut(DeliveryRecord) -> bool,
) -> Result<(), Fault> {
    let pk = KeyBuf::port(port);
    for entry in by_status.range::<&[u8]>(range)? {
        let (k, _) = entry?;
        let StatusRow::Entry(_, _, key) = status_row(k.value())? else {
            continue;
        };
        let record = load_record(deliveries, &pk, port, key)?.ok_or_else(|| missing_record(port, key))?;
        if !f(record) {
            break;
        }
    }
    Ok(())
}

/// Like [`walk_status`], but looks the records up in key order, `chunk` entries of the
/// index at a time: the index lists deliveries by time, which is random order in the
/// record table (about one page read per record once the table outgrows the cache);
/// sorted, consecutive lookups share their pages. Memory is bounded by the chunk.
pub(crate) fn walk_status_by_key(
    by_status: &impl ReadableTable<Bytes, u64>,
    deliveries: &impl ReadableTable<Bytes, Bytes>,
    port: &str,
    range: (Bound<&[u8]>, Bound<&[u8]>),
    chunk: usize,
    f: &mut dyn FnMut(DeliveryRecord),
) -> Result<(), Fault> {
    let pk = KeyBuf::port(port);
    let mut keys: Vec<EventKey> = Vec::with_capacity(chunk);
    let mut flush = |keys: &mut Vec<EventKey>| -> Result<(), Fault> {
        keys.sort_unstable();
        for key in keys.drain(..) {
            let record = load_record(deliveries, &pk, port, key)?.ok_or_else(|| missing_record(port, key))?;
            f(record);
        }
        Ok(())
    };
    for entry in by_status.range::<&[u8]>(range)? {
        let (k, _) = entry?;
        if let StatusRow::Entry(_, _, key) = status_row(k.value())? {
            keys.push(key);
            if keys.len() == chunk {
                flush(&mut keys)?;
            }
        }
    }
    flush(&mut keys)
}

fn missing_record(port: &str, key: EventKey) -> Corruption {
    Corruption {
        table: BY_STATUS_NAME,
        location: Location::Delivery {
            port: port.to_owned(),
            key,
        },
        detail: "a status entry of a delivery that does not exist".to_owned(),
    }
}

/// The ports that have status rows, sorted by name: one seek per port, not a scan.
pub(crate) fn ports_of(by_status: &impl ReadableTable<Bytes, u64>) -> Result<Vec<String>, Fault> {
    let mut ports: Vec<String> = Vec::new();
    let mut from: Option<KeyBuf> = None;
    loop {
        let mut rows = match &from {
            None => by_status.iter()?,
            Some(k) => by_status.range::<&[u8]>(k.as_slice()..)?,
        };
        let Some(row) = rows.next() else { break };
        let (k, _) = row?;
        let k = k.value();
        let (port, _) = split_port(k).ok_or_else(|| bad_status_key(k))?;
        ports.push(port.to_owned());
        match KeyBuf::port(port).prefix_end() {
            Some(end) => from = Some(end),
            None => break,
        }
    }
    ports.sort();
    Ok(ports)
}
