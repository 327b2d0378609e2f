//! Writing the tables inside one write transaction: applying a batch of changes, and
//! pruning.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;

use herald_core::{Change, DeliveryRecord, DeliveryStatus, EventKey, ExternalEvent, Timestamp};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::encoding::{decode_record, encode_attempt, encode_event, encode_record};
use crate::error::{CommitError, Corruption, KeyHex, Location, Rejection, commit_storage};
use crate::read::{Bytes, Fault, as_slices, corrupt, load_record, ports_of, status_row};
use crate::store::Applied;
use crate::tables::{
    ATTEMPTS, BY_STATUS, BY_STATUS_NAME, DELIVERIES, DELIVERIES_NAME, EVENTS, KeyBuf, StatusRow, index_time,
    validate_port,
};

/// The tables of one write transaction, and the buffer records are encoded into.
pub(crate) struct Writer<'t> {
    events: Table<'t, Bytes, Bytes>,
    deliveries: Table<'t, Bytes, Bytes>,
    attempts: Table<'t, Bytes, Bytes>,
    by_status: Table<'t, Bytes, u64>,
    buf: Vec<u8>,
}

/// A delivery touched by the batch: its record as the batch has changed it so far.
struct Slot {
    record: DeliveryRecord,
    /// The status and status time before the batch; `None` if the batch accepted it.
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
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Self, Fault> {
        Ok(Writer {
            events: txn.open_table(EVENTS)?,
            deliveries: txn.open_table(DELIVERIES)?,
            attempts: txn.open_table(ATTEMPTS)?,
            by_status: txn.open_table(BY_STATUS)?,
            buf: Vec::with_capacity(512),
        })
    }

    /// Applies a batch: records are loaded once, changed in memory by
    /// [`DeliveryRecord::apply`] and written once at the end, with their status entries
    /// and counts; events and attempt records are written as they come.
    pub(crate) fn apply_batch<'b>(&mut self, batch: &'b [(&'b str, Change)]) -> Result<Vec<Applied>, CommitError> {
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
                    .insert(pk.event(*at, key).as_slice(), self.buf.as_slice())
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
                let ak = pk.attempt(slot.record.accepted_at, key, a.attempt);
                self.attempts
                    .insert(ak.as_slice(), self.buf.as_slice())
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

    /// Writes the changed records, moves the status entries of those whose status
    /// changed, and adjusts the counts.
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
                *deltas.entry(pk.count_row(status)).or_default() -= 1;
            }
            self.by_status.insert(pk.indexed(now.0, now.1, *key).as_slice(), 0)?;
            *deltas.entry(pk.count_row(now.0)).or_default() += 1;
        }
        self.add_counts(deltas)
    }

    /// Adds to count rows; a count that reaches zero is removed, so a port with no
    /// deliveries left has no rows at all.
    fn add_counts(&mut self, deltas: BTreeMap<KeyBuf, i64>) -> Result<(), Fault> {
        for (k, delta) in deltas {
            if delta == 0 {
                continue;
            }
            let current = self.by_status.get(k.as_slice())?.map_or(0, |v| v.value());
            let Some(new) = current.checked_add_signed(delta) else {
                return Err(Fault::Corrupt(Corruption {
                    table: BY_STATUS_NAME,
                    location: Location::RawKey(k.as_slice().to_vec()),
                    detail: format!("count {current} cannot change by {delta}"),
                }));
            };
            if new == 0 {
                self.by_status.remove(k.as_slice())?;
            } else {
                self.by_status.insert(k.as_slice(), new)?;
            }
        }
        Ok(())
    }

    /// Deletes up to `limit` terminal deliveries (with their events and attempts) whose
    /// status time, which for a terminal record is its last change, is before
    /// `older_than`; returns how many.
    pub(crate) fn prune_chunk(&mut self, older_than: Timestamp, limit: usize) -> Result<usize, Fault> {
        let mut doomed: Vec<(String, DeliveryStatus, Timestamp, EventKey)> = Vec::new();
        'ports: for port in ports_of(&self.by_status)? {
            let pk = KeyBuf::port(&port);
            for status in DeliveryStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
                let range = (
                    Bound::Included(pk.status(status)),
                    Bound::Excluded(pk.indexed_from(status, older_than)),
                );
                for entry in self.by_status.range::<&[u8]>(as_slices(&range))? {
                    let (k, _) = entry?;
                    if let StatusRow::Entry(status, since, key) = status_row(k.value())? {
                        doomed.push((port.clone(), status, since, key));
                        if doomed.len() == limit {
                            break 'ports;
                        }
                    }
                }
            }
        }
        let mut deltas: BTreeMap<KeyBuf, i64> = BTreeMap::new();
        for (port, status, since, key) in &doomed {
            let pk = KeyBuf::port(port);
            self.by_status.remove(pk.indexed(*status, *since, *key).as_slice())?;
            *deltas.entry(pk.count_row(*status)).or_default() -= 1;
            let removed = self
                .deliveries
                .remove(pk.delivery(*key).as_slice())?
                .map(|v| decode_record(v.value()));
            // The event and attempts are found through the record's acceptance time.
            match removed {
                Some(Ok(record)) => {
                    let ek = pk.event(record.accepted_at, *key);
                    self.events.remove(ek.as_slice())?;
                    let (first, last) = (
                        pk.attempt(record.accepted_at, *key, 0),
                        pk.attempt(record.accepted_at, *key, u32::MAX),
                    );
                    let range = (Bound::Included(first.as_slice()), Bound::Included(last.as_slice()));
                    self.attempts.retain_in::<&[u8], _>(range, |_, _| false)?;
                }
                Some(Err(detail)) => return Err(corrupt(DELIVERIES_NAME, port, *key)(detail).into()),
                None => {
                    return Err(corrupt(BY_STATUS_NAME, port, *key)(
                        "a status entry of a delivery that does not exist".to_owned(),
                    )
                    .into());
                }
            }
        }
        self.add_counts(deltas)?;
        Ok(doomed.len())
    }
}
